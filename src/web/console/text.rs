//! The console's words in Japanese and English, held the way the person's pages hold
//! theirs: the page text lives in one template per language
//! (`templates/console/{ja,en}/NAME.hbs`, inside a shared layout that switches its few
//! words on `ja`), and what Rust must say (titles, banners, errors, CSV headers, the
//! names of states) is here, as `match` arms with both languages side by side so a
//! missing translation is visible in review.
//!
//! Also which language and which clock a console page uses: this view's `?lang=`, else
//! the operator's saved choice, else the browser's `Accept-Language`, else the configured
//! default; the zone is the operator's saved zone, else `flows.timezone_ja` for Japanese
//! (Asia/Tokyo unless configured) and `flows.timezone_en` for English. Every time in
//! every table is drawn by [`super::sentence::stamp`], so all read the same way.

use axum::http::HeaderMap;
use chrono_tz::Tz;

use super::sentence::Lang;
use crate::config::Config;
use crate::domain::Detail;

/// The language of one console page view.
pub fn choose_lang(
    asked: Option<&str>,
    saved: Option<&str>,
    headers: &HeaderMap,
    default: &str,
) -> Lang {
    let pick = |s: &str| matches!(s, "ja" | "en");
    asked
        .filter(|s| pick(s))
        .or(saved.filter(|s| pick(s)))
        .or_else(|| crate::web::pages::accepted_language(headers))
        .map(Lang::parse)
        .unwrap_or_else(|| Lang::parse(default))
}

/// The operator's clock: the saved zone, else the zone of the page's language.
pub fn zone(config: &Config, lang: Lang, saved: Option<&str>) -> Tz {
    saved
        .and_then(|z| z.parse::<Tz>().ok())
        .unwrap_or(match lang {
            Lang::Ja => config.flows.timezone_ja,
            Lang::En => config.flows.timezone_en,
        })
}

/// The zones offered on `/account` (any IANA name is accepted from the form).
pub const ZONES: [&str; 6] = [
    "Asia/Tokyo",
    "UTC",
    "Asia/Seoul",
    "Asia/Shanghai",
    "Europe/London",
    "America/Los_Angeles",
];

/// A page's title (also the heading of error pages).
pub fn title(lang: Lang, key: &str) -> &'static str {
    let ja = lang == Lang::Ja;
    match key {
        "support" if ja => "配信ログ",
        "support" => "Delivery log",
        "admin" if ja => "不達レポート",
        "admin" => "Bounce report",
        "queue" if ja => "送信待ち",
        "queue" => "Queue",
        "suppression" if ja => "送信停止リスト",
        "suppression" => "Suppression list",
        "account" if ja => "ログイン中の端末と表示設定",
        "account" => "Your sessions and settings",
        "webhooks" if ja => "Webhook",
        "webhooks" => "Webhooks",
        "operators" if ja => "担当者アカウント",
        "operators" => "Operators",
        "login" if ja => "コンソールにログイン",
        "login" => "Log in to the console",
        "message" if ja => "メッセージのヘッダーと配信記録",
        "message" => "Message headers and timeline",
        "invite" if ja => "招待メールの送信確認",
        "invite" => "Confirm an invitation",
        "forbidden" if ja => "この画面は使えません",
        "forbidden" => "Not allowed",
        "csrf" if ja => "送信を受け付けられませんでした",
        "csrf" => "Form refused",
        "bad_request" if ja => "この操作はできません",
        "bad_request" => "Cannot do that",
        "unavailable" if ja => "データベースに接続できません",
        "unavailable" => "The store is not available",
        _ if ja => "エラー",
        _ => "Something went wrong",
    }
}

/// A role as people read it.
pub fn role(lang: Lang, role: &str) -> &str {
    match (lang, role) {
        (Lang::Ja, "admin") => "管理者",
        (Lang::Ja, "support") => "サポート",
        (_, r) => r,
    }
}

/// A message status or timeline step as people read it (the page keeps the stored
/// word in a `data-` attribute).
pub fn status(lang: Lang, s: &str) -> String {
    if lang == Lang::En {
        return s.replace('_', " ");
    }
    match s {
        "queued" => "送信待ち",
        "sending" => "送信中",
        "delivered" => "配信済み",
        "deferred" => "遅延中",
        "bounced" => "不達",
        "failed" => "送信失敗",
        "expired" => "期限切れ",
        "suppressed" => "送信停止",
        "cancelled" => "取り消し",
        "delay_reported" => "遅延を通知",
        "retry_requested" => "再送を指示",
        "recovered" => "再開",
        "enabled" => "有効",
        "disabled" => "無効",
        other => return other.to_string(),
    }
    .to_string()
}

/// Yes or no, in a table cell.
pub fn yes_no(lang: Lang, b: bool) -> &'static str {
    match (lang, b) {
        (Lang::Ja, true) => "はい",
        (Lang::Ja, false) => "いいえ",
        (Lang::En, true) => "yes",
        (Lang::En, false) => "no",
    }
}

/// The periods of the bounce report's menu.
pub fn periods(lang: Lang) -> [(&'static str, &'static str); 4] {
    match lang {
        Lang::Ja => [
            ("24h", "24時間"),
            ("7d", "7日間"),
            ("30d", "30日間"),
            ("90d", "90日間"),
        ],
        Lang::En => [
            ("24h", "24 hours"),
            ("7d", "7 days"),
            ("30d", "30 days"),
            ("90d", "90 days"),
        ],
    }
}

/// The header row of the bounce CSV (and the bounce table) in `lang`; the English one
/// is that of `mailgate bounces --format csv`.
pub fn bounce_columns(lang: Lang) -> [&'static str; 10] {
    match lang {
        Lang::En => crate::report::BOUNCE_COLUMNS,
        Lang::Ja => [
            "日時",
            "アドレス",
            "ドメイン",
            "理由",
            "ステータス",
            "恒久的",
            "送信側の問題",
            "メッセージID",
            "相手サーバー",
            "応答",
        ],
    }
}

/// An audit action as the log shows it (the stored words are English; the page
/// translates the known ones, and shows any other as stored).
pub fn action(lang: Lang, a: &str) -> String {
    if lang == Lang::En {
        return a.to_string();
    }
    match a {
        "search" => "検索",
        "message view" => "メッセージの表示",
        "message headers" => "ヘッダーのダウンロード",
        "resend" => "リンク再送",
        "invite" => "招待",
        "login" => "ログイン",
        "logout" => "ログアウト",
        "logout everywhere" => "全端末からログアウト",
        "login failed" => "ログイン失敗",
        "login refused: locked" => "ログイン拒否（ロック中）",
        "preferences" => "表示設定の変更",
        "bounces csv" => "不達CSVのダウンロード",
        "queue retry" => "再送",
        "queue cancel" => "送信の取り消し",
        "suppression add" => "送信停止リストに追加",
        "suppression remove" => "送信停止リストから解除",
        "webhook replay" => "Webhookの再送",
        "webhook enable" => "Webhook送信先の再開",
        "operator add" => "担当者の追加",
        "operator disable" => "担当者の無効化",
        "operator enable" => "担当者の有効化",
        "operator remove" => "担当者の削除",
        "operator role" => "担当者の権限変更",
        "operator passwd" => "担当者のパスワード変更",
        "apikey add" => "APIキーの追加",
        "apikey revoke" => "APIキーの失効",
        other => return other.to_string(),
    }
    .to_string()
}

/// An audit entry's target with what came of it, in the operator's language. A note
/// is mailgate's own words, kept as a code; an operator's reason or a server's reply
/// inside it stays as written, behind a label. An entry without a note is shown as
/// stored.
pub fn audit_target(lang: Lang, entry: &crate::audit::AuditEntry) -> String {
    use crate::audit::AuditNote as N;
    let target = &entry.target;
    let Some(note) = &entry.note else {
        return target.clone();
    };
    let ja = lang == Lang::Ja;
    let said = match note {
        N::Sent { flow: Some(f) } if ja => format!("送信待ちに入れました、手続き {f}"),
        N::Sent { flow: Some(f) } => format!("sent, flow {f}"),
        N::Sent { flow: None } if ja => "送信待ちに入れました".into(),
        N::Sent { flow: None } => "sent".into(),
        N::NotSent { why } if ja => format!("送っていません：{}", refusal(lang, why)),
        N::NotSent { why } => format!("not sent: {}", refusal(lang, why)),
        N::Unsuppressed { reason, was } if ja => match reason {
            Some(r) => format!("解除の理由：{r}、登録時の理由：{was}"),
            None => format!("登録時の理由：{was}"),
        },
        N::Unsuppressed { reason, was } => match reason {
            Some(r) => format!("reason: {r}; was: {was}"),
            None => format!("was: {was}"),
        },
        N::Period { since, filters } if ja => {
            let period = periods(lang)
                .iter()
                .find(|(v, _)| v == since)
                .map(|(_, l)| l.to_string())
                .unwrap_or_else(|| since.clone());
            return format!("期間：{period}{filters}");
        }
        N::Period { since, filters } => return format!("since {since}{filters}"),
        N::Role { role: r } if ja => format!("権限：{}", role(lang, r)),
        N::Role { role } => role.clone(),
        N::Keys { count } if ja => format!("{count}件のキー"),
        N::Keys { count: 1 } => "1 key".into(),
        N::Keys { count } => format!("{count} keys"),
    };
    match (target.is_empty(), ja) {
        (true, _) => said,
        (false, true) => format!("{target}（{said}）"),
        (false, false) => format!("{target} ({said})"),
    }
}

/// Why nothing was sent, in the operator's language: the texts of the refusal the
/// operator saw on the page. A recorded reply stays verbatim, labelled.
pub fn refusal(lang: Lang, why: &crate::audit::Refusal) -> String {
    use super::ResendError as E;
    use crate::audit::Refusal as R;
    let ja = lang == Lang::Ja;
    let error = match why {
        R::TooSoon { minutes } => E::TooSoon { minutes: *minutes },
        R::Unknown => E::Unknown,
        R::Known if ja => {
            return "アカウントか過去の手続きがあるアドレスです（新しいリンクは配信ログから再送します）".into();
        }
        R::Known => return "the address is known".into(),
        R::Suppressed { since, reason } => E::Suppressed {
            since: since.clone(),
            reason: reason.clone(),
        },
        R::Undeliverable { detail } if ja => {
            return format!("メールを送れませんでした（記録された応答・エラーの原文：{detail}）");
        }
        R::Undeliverable { detail } => E::Undeliverable(detail.clone()),
        R::Invalid { detail } if ja => {
            return format!("手続きを始められませんでした（原文：{detail}）");
        }
        R::Invalid { detail } => E::Invalid(detail.clone()),
    };
    error.text(lang)
}

/// A bounce or suppression reason as a Japanese desk reads it: the reason's name in
/// Japanese with the stored name beside it (`宛先不明（userunknown）`), so it can be
/// matched with the report and the CSV. English pages show the stored name.
pub fn reason(lang: Lang, code: &str) -> String {
    if lang == Lang::En {
        return code.to_string();
    }
    if let Some(by) = code.strip_prefix("added by ") {
        return format!("{}が手動で追加", who(lang, by));
    }
    let ja = match code {
        "userunknown" => "宛先不明",
        "mailboxfull" => "メールボックスの容量超過",
        "hostunknown" => "ドメインが存在しない",
        "filtered" => "受信側のフィルターで拒否",
        "blocked" => "送信元として拒否",
        "spamdetected" => "迷惑メールと判定",
        "expired" => "配送期限切れ",
        "rejected" => "送信者を拒否",
        "policyviolation" => "受信側のポリシー違反",
        "securityerror" => "認証のエラー",
        "suspend" => "利用停止中のアドレス",
        "norelaying" => "中継を拒否",
        "toomanyconn" => "接続が多すぎる",
        "exceedlimit" | "mesgtoobig" => "メールが大きすぎる",
        "networkerror" => "ネットワークのエラー",
        "systemerror" => "受信側のシステムエラー",
        "systemfull" => "受信側の容量不足",
        "notaccept" => "メールを受け付けないドメイン",
        "contenterror" => "内容のエラー",
        "hasmoved" => "アドレスが移転済み",
        "syntaxerror" => "やり取りの誤り",
        "onhold" => "判定を保留",
        "vacation" => "自動応答",
        "feedback" | "complaint" => "迷惑メールとして報告",
        "undefined" => "理由不明",
        _ => return code.to_string(),
    };
    format!("{ja}（{code}）")
}

/// Who did it, as the log shows it: `operator aiko` becomes `担当者 aiko`.
pub fn who(lang: Lang, w: &str) -> String {
    match (lang, w.strip_prefix("operator ")) {
        (Lang::Ja, Some(name)) => format!("担当者 {name}"),
        (Lang::Ja, None) if w == "login form" => "ログイン画面".into(),
        (Lang::Ja, None) if w.starts_with("command line") => {
            // `command line (USER)`, the user unknown when the shell had no $USER.
            match w["command line".len()..]
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
            {
                Some("unknown user") => "コマンドライン（ユーザー名不明）".into(),
                Some(user) => format!("コマンドライン（{user}）"),
                None => "コマンドライン".into(),
            }
        }
        _ => w.to_string(),
    }
}

/// A timeline event's detail (or a flow's "why undeliverable") as the page shows it.
/// What mailgate itself wrote ([`Detail`], stored as English with UTC times) is said in
/// the operator's language with times in the operator's zone; what a receiving server
/// said stays verbatim inside it, as evidence. Text mailgate did not word (an outbox
/// file's path) is shown as it is, its UTC times in the operator's zone.
pub fn detail(lang: Lang, tz: Tz, detail: &str) -> String {
    match Detail::parse(detail) {
        Some(d) => say(lang, tz, &d),
        None => local_times(tz, detail),
    }
}

/// A reply column: what a server answered stays verbatim; what mailgate wrote there
/// because no server answered (a refused connection, a failed DNS lookup, TLS) is
/// said in the operator's language. A server's reply always starts with its code, so
/// it is never read as mailgate's words.
pub fn reply(lang: Lang, tz: Tz, reply: &str) -> String {
    match Detail::parse(reply) {
        Some(d) if !reply.starts_with(|c: char| c.is_ascii_digit()) => say(lang, tz, &d),
        _ => reply.to_string(),
    }
}

/// `text` with each RFC 3339 UTC time in it as a time in `tz`.
fn local_times(tz: Tz, text: &str) -> String {
    use std::sync::OnceLock;
    static TIME: OnceLock<regex::Regex> = OnceLock::new();
    let time = TIME.get_or_init(|| {
        regex::Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b")
            .expect("the time pattern compiles")
    });
    time.replace_all(text, |c: &regex::Captures| {
        chrono::DateTime::parse_from_rfc3339(&c[0])
            .map(|t| super::sentence::stamp(t.timestamp_millis() as u64, tz))
            .unwrap_or_else(|_| c[0].to_string())
    })
    .into_owned()
}

/// What mailgate said, in `lang`: the English as written (times local), or natural
/// Japanese worded from its parts.
pub fn say(lang: Lang, tz: Tz, d: &Detail) -> String {
    if lang == Lang::En {
        return local_times(tz, &d.to_string());
    }
    let at = |ms: u64| super::sentence::stamp(ms, tz);
    match d {
        Detail::ScheduledFor { at_ms } => format!("{}に送る予定です", at(*at_ms)),
        Detail::NextTry { why: None, at_ms } => format!("次の再送は{}です", at(*at_ms)),
        Detail::NextTry {
            why: Some(why),
            at_ms,
        } => format!("{}。次の再送は{}です", detail(lang, tz, why), at(*at_ms)),
        Detail::Recovered => "送信の途中で処理が止まったため、もう一度送ります".into(),
        Detail::LifetimeEnded => "受け取るサーバーがないまま期限が切れました".into(),
        Detail::By { who: w } => format!("{}による操作", who(lang, w)),
        Detail::Superseded { flow } => {
            format!("新しいリンク（手続き {flow}）を送ったため、送信を取りやめました")
        }
        Detail::Suppressed {
            address,
            since_ms,
            reason: why,
            evidence,
        } => format!(
            "送信していません：{address}は{}から送信停止リストに載っています（理由：{}、根拠の原文：{evidence}）",
            at(*since_ms),
            reason(lang, why)
        ),
        Detail::DelayReported { mta, reason: why } => format!(
            "{}から遅延の知らせがありました（{}）。このあと届く可能性があります",
            mta.as_deref().unwrap_or("受信側のサーバー"),
            reason(lang, why)
        ),
        Detail::Bounced {
            reason: why,
            authenticated,
        } => format!(
            "届かなかったという知らせが戻りました：{}（{}）",
            reason(lang, why),
            if *authenticated {
                "返送先アドレスの署名で照合済み"
            } else {
                "Message-IDで照合"
            }
        ),
        Detail::BytesMissing => "送るメールの本体が保存されていません".into(),
        Detail::BytesUnreadable { error } => {
            format!("送るメールの本体を読み取れません（{error}）")
        }
        Detail::Refused { reply } => {
            format!("受信側のサーバーが受け取りを拒否しました（応答の原文：{reply}）")
        }
        Detail::NeverAccepted => "期限までに受け取ったサーバーがありませんでした".into(),
        Detail::AddressSuppressed => {
            "送信していません：アドレスが送信停止リストに載っています".into()
        }
        Detail::ConnectFailed { addr, error } => {
            format!("{addr}に接続できませんでした（{error}）")
        }
        Detail::ConnectTimedOut { addr, after } => {
            format!("{addr}に接続できませんでした（{after}待っても応答がありません）")
        }
        Detail::NoAddress { host } => format!("{host}のIPアドレスが見つかりません"),
        Detail::CannotResolve { host, error } => {
            format!("{host}のIPアドレスを調べられませんでした（{error}）")
        }
        Detail::NoSuchDomain { domain } => format!("ドメイン{domain}は存在しません"),
        Detail::DnsFailed { domain, error } => {
            format!("{domain}のメールサーバーをDNSで調べられませんでした（{error}）")
        }
        Detail::NullMx { domain } => {
            format!("{domain}はメールを受け取らないと公開しています（null MX、RFC 7505）")
        }
        Detail::TlsFailed { host, error } => {
            format!("{host}との暗号化（TLS）に失敗しました（{error}）")
        }
        Detail::StartTlsFailed { host, error } => {
            format!("{host}との暗号化（STARTTLS）に失敗しました（{error}）")
        }
        Detail::NoStartTls { host } => format!(
            "{host}が暗号化（STARTTLS）に対応していないため送っていません（設定で暗号化を必須にしています）"
        ),
        Detail::HookAnswered {
            status,
            redirect: false,
        } => format!("送信先が {status} を返しました"),
        Detail::HookAnswered {
            status,
            redirect: true,
        } => format!("送信先が {status} を返しました（転送先へはたどりません）"),
        Detail::HookNoAnswer { seconds } => {
            format!("{seconds}秒待っても送信先から応答がありませんでした")
        }
        Detail::HookNotAUrl { error } => {
            format!("送信先のURLを読み取れません（{error}）")
        }
        Detail::HookForbiddenAddress { ip } => format!(
            "{ip}はリンクローカルまたはメタデータ用のアドレスのため送っていません。意図した送信先であれば、この [[webhooks]] の設定に allow_link_local = true を加えてください"
        ),
        Detail::HookNotConfigured => "この送信先は設定から外されています".into(),
        Detail::HookDisabled { why } => {
            format!("送信先を停止しています（{}）", detail(lang, tz, why))
        }
        Detail::HookEventGone => "イベントは保存期間を過ぎて残っていません".into(),
        Detail::HookGone => "送信先が 410 Gone を返したため、送信先を停止しました".into(),
        Detail::HookGoneAt { at_ms } => {
            format!("{}に送信先が 410 Gone を返しました", at(*at_ms))
        }
    }
}

/// A webhook delivery's state, as the console names it.
pub fn delivery_state(lang: Lang, state: crate::domain::DeliveryState) -> &'static str {
    use crate::domain::DeliveryState as S;
    match (lang, state) {
        (Lang::Ja, S::Pending) => "送信待ち",
        (Lang::Ja, S::Delivered) => "送信済み",
        (Lang::Ja, S::Failed) => "失敗",
        (Lang::En, s) => s.as_str(),
    }
}

/// The bounce report's status filter: value and label.
pub fn bounce_statuses(lang: Lang) -> [(&'static str, &'static str); 3] {
    match lang {
        Lang::Ja => [
            ("permanent", "恒久的（届かない）"),
            ("temporary", "一時的"),
            ("sender", "送信側の問題"),
        ],
        Lang::En => [
            ("permanent", "permanent"),
            ("temporary", "temporary"),
            ("sender", "sender problem"),
        ],
    }
}

/// Why a search is neither an address nor a message id, in the operator's language.
pub fn not_a_query(lang: Lang, query: &str, reason: &crate::domain::AddressError) -> String {
    use crate::domain::AddressError as E;
    if lang == Lang::En {
        return format!(
            "{query:?} is neither an address nor a message id: {reason}. A domain (@example.jp) or the start of an address (hanako@) lists the addresses that match."
        );
    }
    let why = match reason {
        E::Empty => "何も入力されていません",
        E::NoAt(_) => "@がありません",
        E::BadCharacter(_) => "空白、制御文字、または < > , ; が含まれています",
        E::EmptyLocal(_) => "@の前が空か、長すぎます",
        E::BadDomain(_) => "@の後ろがドメイン名になっていません",
        E::TooLong(_) => "254文字を超えています",
    };
    format!(
        "「{query}」はメールアドレスとしてもメッセージIDとしても読み取れません（{why}）。ドメイン（@example.jp）やアドレスの先頭（hanako@）を入れると、当てはまるアドレスの一覧が出ます。"
    )
}

/// The sentence over the addresses a domain or prefix search found.
pub fn matches(
    lang: Lang,
    pattern: &crate::domain::AddressPattern,
    found: usize,
    more: bool,
) -> String {
    use crate::domain::AddressPattern as P;
    let ja = lang == Lang::Ja;
    let what = match (pattern, ja) {
        (P::Domain(d), true) => format!("@{d} のアドレス"),
        (P::Domain(d), false) => format!("addresses at {d}"),
        (P::Prefix(p), true) => format!("「{p}」で始まるアドレス"),
        (P::Prefix(p), false) => format!("addresses beginning with {p:?}"),
    };
    match (found, more, ja) {
        (0, _, true) => format!("{what}あてのメールはありません。"),
        (0, _, false) => format!("No mail was sent to any {what}."),
        (n, false, true) => {
            format!("メールを送ったことのある{what}：{n}件。選ぶと配信ログが出ます。")
        }
        (n, false, false) => format!("{n} {what} had mail; choose one for its delivery log.",),
        (n, true, true) => format!(
            "メールを送ったことのある{what}のうち、先頭の{n}件です。続けて入力すると絞り込めます。"
        ),
        (n, true, false) => {
            format!("The first {n} {what} that had mail; type more to narrow the list.",)
        }
    }
}

/// "(unknown)" in a report's key column.
pub fn unknown(lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => "（不明）",
        Lang::En => "(unknown)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditNote, Refusal};
    use axum::http::HeaderValue;

    fn entry(target: &str, note: Option<AuditNote>) -> AuditEntry {
        AuditEntry {
            at_ms: 0,
            who: "operator aiko".into(),
            action: "resend".into(),
            target: target.into(),
            note,
        }
    }

    #[test]
    fn an_audit_note_reads_in_the_operators_language_and_old_entries_as_stored() {
        let suppressed = entry(
            "hanako@example.jp",
            Some(AuditNote::NotSent {
                why: Refusal::Suppressed {
                    since: "2026-12-07 10:00".into(),
                    reason: "userunknown".into(),
                },
            }),
        );
        let ja = audit_target(Lang::Ja, &suppressed);
        assert!(
            ja.starts_with("hanako@example.jp（送っていません：このアドレスは送信停止リストに載っているため（2026-12-07 10:00から、理由：宛先不明（userunknown））"),
            "{ja}"
        );
        assert!(
            !ja.contains("not sent") && !ja.contains("suppression"),
            "{ja}"
        );
        // English reads as the entries written before codes did.
        assert!(
            audit_target(Lang::En, &suppressed).starts_with(
                "hanako@example.jp (not sent: the address is on the suppression list (since 2026-12-07 10:00: userunknown)"
            ),
            "{}",
            audit_target(Lang::En, &suppressed)
        );
        let sent = entry(
            "a@b.jp",
            Some(AuditNote::Sent {
                flow: Some("f1".into()),
            }),
        );
        assert_eq!(
            audit_target(Lang::Ja, &sent),
            "a@b.jp（送信待ちに入れました、手続き f1）"
        );
        assert_eq!(audit_target(Lang::En, &sent), "a@b.jp (sent, flow f1)");
        // A recorded reply stays verbatim, behind a Japanese label.
        let refused = entry(
            "a@b.jp",
            Some(AuditNote::NotSent {
                why: Refusal::Undeliverable {
                    detail: "550 5.1.2 no such domain".into(),
                },
            }),
        );
        assert_eq!(
            audit_target(Lang::Ja, &refused),
            "a@b.jp（送っていません：メールを送れませんでした（記録された応答・エラーの原文：550 5.1.2 no such domain））"
        );
        let csv = entry(
            "",
            Some(AuditNote::Period {
                since: "7d".into(),
                filters: "&reason=userunknown".into(),
            }),
        );
        assert!(
            audit_target(Lang::Ja, &csv).starts_with("期間："),
            "{}",
            audit_target(Lang::Ja, &csv)
        );
        assert_eq!(audit_target(Lang::En, &csv), "since 7d&reason=userunknown");
        let old = entry("x@y.jp (not sent: whatever)", None);
        assert_eq!(audit_target(Lang::Ja, &old), "x@y.jp (not sent: whatever)");
    }

    #[test]
    fn a_reason_name_gets_its_japanese_words_and_keeps_its_name() {
        assert_eq!(reason(Lang::Ja, "userunknown"), "宛先不明（userunknown）");
        assert_eq!(reason(Lang::En, "userunknown"), "userunknown");
        assert_eq!(
            reason(Lang::Ja, "added by operator ben"),
            "担当者 benが手動で追加"
        );
        assert_eq!(reason(Lang::Ja, "somethingnew"), "somethingnew");
    }

    #[test]
    fn the_view_then_the_saved_choice_then_the_browser_then_the_default_decide() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-US,en;q=0.9,ja;q=0.5"),
        );
        assert_eq!(choose_lang(Some("ja"), Some("en"), &h, "en"), Lang::Ja);
        assert_eq!(choose_lang(Some("xx"), Some("ja"), &h, "en"), Lang::Ja);
        assert_eq!(choose_lang(None, None, &h, "ja"), Lang::En);
        assert_eq!(choose_lang(None, None, &HeaderMap::new(), "ja"), Lang::Ja);
    }

    #[test]
    fn a_detail_shows_its_utc_time_in_the_operators_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            detail(
                Lang::En,
                tokyo,
                "451 busy; next try at 2026-12-07T19:02:58Z"
            ),
            "451 busy; next try at 2026-12-08 04:02:58 JST"
        );
        assert_eq!(
            detail(Lang::Ja, tokyo, "next try at 2026-12-07T19:02:58Z"),
            "次の再送は2026-12-08 04:02:58 JSTです"
        );
    }

    #[test]
    fn mailgates_own_details_read_as_japanese_with_the_servers_words_kept() {
        let tokyo = chrono_tz::Asia::Tokyo;
        let english = regex::Regex::new("[A-Za-z]{3,}").unwrap();
        for d in crate::domain::detail::examples() {
            let ja = detail(Lang::Ja, tokyo, &d.to_string());
            // What a server, the store or a person said stays as it was: take it out,
            // and no English may be left.
            let mut verbatim: Vec<String> = match &d {
                Detail::NextTry { why: Some(w), .. } => match Detail::parse(w) {
                    Some(Detail::BytesUnreadable { error }) => vec![error],
                    _ => vec![w.clone()],
                },
                Detail::By { who } => vec![who.replace("operator ", "")],
                Detail::Superseded { flow } => vec![flow.clone()],
                Detail::Suppressed {
                    address,
                    reason,
                    evidence,
                    ..
                } => vec![address.clone(), reason.clone(), evidence.clone()],
                Detail::DelayReported { mta, reason } => {
                    vec![mta.clone().unwrap_or_default(), reason.clone()]
                }
                Detail::Bounced { reason, .. } => vec![reason.clone()],
                Detail::BytesUnreadable { error } => vec![error.clone()],
                Detail::Refused { reply } => vec![reply.clone()],
                Detail::ConnectFailed { addr, error } => vec![addr.clone(), error.clone()],
                Detail::ConnectTimedOut { addr, after } => vec![addr.clone(), after.clone()],
                Detail::NoAddress { host } | Detail::NoStartTls { host } => vec![host.clone()],
                Detail::NoSuchDomain { domain } | Detail::NullMx { domain } => {
                    vec![domain.clone()]
                }
                Detail::CannotResolve { host, error }
                | Detail::TlsFailed { host, error }
                | Detail::StartTlsFailed { host, error } => vec![host.clone(), error.clone()],
                Detail::DnsFailed { domain, error } => vec![domain.clone(), error.clone()],
                // An HTTP status is the endpoint's answer, kept as written.
                Detail::HookAnswered { status, .. } => vec![status.clone()],
                Detail::HookNotAUrl { error } => vec![error.clone()],
                Detail::HookForbiddenAddress { ip } => vec![ip.clone()],
                _ => vec![],
            };
            // The longest first: evidence may quote the address.
            verbatim.sort_by_key(|v| std::cmp::Reverse(v.len()));
            let mut rest = [
                "JST",
                "Message-ID",
                "STARTTLS",
                "TLS",
                "DNS",
                "null MX",
                "RFC",
                "410 Gone",
                "URL",
                "[[webhooks]]",
                "allow_link_local = true",
            ]
            .iter()
            .fold(ja.clone(), |t, term| t.replace(term, ""));
            for v in verbatim.iter().filter(|v| !v.is_empty()) {
                assert!(rest.contains(v.as_str()), "{v:?} is missing from {ja:?}");
                rest = rest.replace(v.as_str(), "");
            }
            assert!(!english.is_match(&rest), "English left in {ja:?} (for {d})");
        }
    }

    #[test]
    fn every_title_has_both_languages() {
        for key in [
            "support",
            "admin",
            "queue",
            "suppression",
            "account",
            "operators",
            "login",
            "invite",
            "forbidden",
            "csrf",
            "bad_request",
            "unavailable",
        ] {
            assert_ne!(title(Lang::Ja, key), title(Lang::En, key), "{key}");
            assert!(!title(Lang::Ja, key).is_ascii(), "{key}");
        }
    }
}

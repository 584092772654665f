//! The one plain sentence that answers "the mail never came", in Japanese or English,
//! derived from a message's timeline (the newest message leads the support page).
//!
//! Pure: the message view, the suppression entry, the language, the time zone and `now`
//! go in, text comes out, so every case is tested with values. The text holds reply
//! texts from remote servers; the page escapes it like everything else.

use chrono::TimeZone;
use chrono_tz::Tz;

use crate::domain::Event;
use crate::domain::Step;
use crate::domain::bounce::{SENDER_REASONS, Suppression};
use crate::timeline::MessageView;

/// The language of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// `ja` or `en`; anything else is English.
    pub fn parse(s: &str) -> Lang {
        if s == "ja" { Lang::Ja } else { Lang::En }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// A time for people: "12:02 today" when it is today in `tz`, else the date and time.
pub fn clock(ms: u64, tz: Tz, lang: Lang, now_ms: u64) -> String {
    let Some(t) = tz.timestamp_millis_opt(ms as i64).single() else {
        return ms.to_string();
    };
    let today = tz
        .timestamp_millis_opt(now_ms as i64)
        .single()
        .map(|n| n.date_naive());
    let hm = t.format("%H:%M").to_string();
    match (Some(t.date_naive()) == today, lang) {
        (true, Lang::En) => format!("{hm} today"),
        (true, Lang::Ja) => format!("今日 {hm}"),
        (false, _) => t.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// A full timestamp for timelines, with the zone's abbreviation.
pub fn stamp(ms: u64, tz: Tz) -> String {
    tz.timestamp_millis_opt(ms as i64)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The reply of an event as "250 2.0.0 queued as 4F2A…", shortened for a sentence.
fn reply_text(e: &Event, lang: Lang, tz: Tz) -> Option<String> {
    let reply = e.reply.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let text = match (e.smtp_code, reply) {
        (Some(code), Some(r)) if !r.starts_with(&code.to_string()) => format!("{code} {r}"),
        (Some(_), Some(r)) => r.to_string(),
        // No server answered: mailgate's own words, in the operator's language.
        (None, Some(r)) => super::text::reply(lang, tz, r),
        (Some(code), None) => code.to_string(),
        (None, None) => return None,
    };
    Some(shorten(&text, 60))
}

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    }
}

fn last_step<'a>(m: &'a MessageView, steps: &[Step]) -> Option<&'a Event> {
    m.events
        .iter()
        .rev()
        .find(|e| e.step.is_some_and(|s| steps.contains(&s)))
}

/// The bounce reason written by intake into the event's detail
/// ("bounced permanently: userunknown (…)"), else guessed from the enhanced status.
fn bounce_reason(e: &Event) -> String {
    if let Some(crate::domain::Detail::Bounced { reason, .. }) =
        e.detail.as_deref().and_then(crate::domain::Detail::parse)
    {
        return reason;
    }
    match e.enhanced_status.as_deref() {
        Some("5.1.1") | Some("5.1.10") => "userunknown".into(),
        Some("5.1.2") => "hostunknown".into(),
        Some("5.2.2") => "mailboxfull".into(),
        _ => "undefined".into(),
    }
}

/// The sentence for one message.
pub fn for_message(m: &MessageView, lang: Lang, tz: Tz, now_ms: u64) -> String {
    let at = |ms: u64| clock(ms, tz, lang, now_ms);
    let ja = lang == Lang::Ja;
    match m.status.as_str() {
        "delivered" => {
            let e = last_step(m, &[Step::Delivered]);
            let when = at(e.map(|e| e.at_ms).unwrap_or(m.created_ms));
            let host = e.and_then(|e| e.remote_host.clone());
            let reply = e.and_then(|e| reply_text(e, lang, tz));
            match (ja, host) {
                (false, Some(h)) => format!(
                    "Accepted by {h} at {when}{}. If it is not in the inbox, check the junk folder.",
                    reply.map(|r| format!(" ({r})")).unwrap_or_default()
                ),
                (false, None) => format!(
                    "Handed over at {when} (written to the outbox, not sent over the Internet)."
                ),
                (true, Some(h)) => format!(
                    "{when}に{h}が受け取りました{}。受信箱にない場合は迷惑メールフォルダを確認してください。",
                    reply.map(|r| format!("（{r}）")).unwrap_or_default()
                ),
                (true, None) => {
                    format!(
                        "{when}に送信済みです（アウトボックスに保存。インターネットには送っていません）。"
                    )
                }
            }
        }
        "queued" | "sending" => {
            let when = at(m.created_ms);
            if ja {
                format!("{when}に依頼され、送信を待っています。数分以内に届く見込みです。")
            } else {
                format!(
                    "Requested at {when} and waiting to be sent; it should arrive within minutes."
                )
            }
        }
        "deferred" => {
            let e = last_step(m, &[Step::Deferred]);
            let when = at(e.map(|e| e.at_ms).unwrap_or(m.created_ms));
            let who = e.and_then(|e| e.remote_host.clone()).unwrap_or_else(|| {
                if ja {
                    "受信側サーバー".into()
                } else {
                    "the receiving server".into()
                }
            });
            let reply = e
                .and_then(|e| reply_text(e, lang, tz))
                .or_else(|| {
                    e.and_then(|e| e.detail.as_deref())
                        .map(|d| shorten(&super::text::detail(lang, tz, d), 60))
                })
                .unwrap_or_default();
            let next = m.next_try_ms.map(at).unwrap_or_default();
            let until = at(m.expires_ms);
            // No SMTP code: no server answered (a refused connection, DNS, TLS), and
            // the words are mailgate's, not a reply to quote.
            let answered = e.is_some_and(|e| e.smtp_code.is_some());
            match (ja, answered) {
                (true, true) => format!(
                    "遅延中：{when}に{who}が「{reply}」と応答しました。次の再送は{next}、{until}まで再送を続けます。"
                ),
                (true, false) => format!(
                    "遅延中：{when}に送れませんでした（{reply}）。次の再送は{next}、{until}まで再送を続けます。"
                ),
                (false, true) => format!(
                    "Delayed: at {when} {who} answered \"{reply}\". The next try is at {next}; it keeps trying until {until}."
                ),
                (false, false) => format!(
                    "Delayed: at {when} it could not be sent ({reply}). The next try is at {next}; it keeps trying until {until}."
                ),
            }
        }
        "bounced" | "failed" => {
            let e = last_step(m, &[Step::Bounced, Step::Failed]);
            let reason = e.map(bounce_reason).unwrap_or_else(|| "undefined".into());
            let reply = e.and_then(|e| reply_text(e, lang, tz)).unwrap_or_default();
            bounced(&reason, &reply, lang)
        }
        "expired" => {
            let last = m.last_reply.as_deref().map(|r| shorten(r, 60));
            let until = at(m.expires_ms);
            match (ja, last) {
                (false, Some(r)) => format!(
                    "Expired: no server accepted it before {until} (last answer: \"{r}\"). Send a new link."
                ),
                (false, None) => {
                    format!("Expired: no server accepted it before {until}. Send a new link.")
                }
                (true, Some(r)) => format!(
                    "期限切れ：{until}までに受け取ったサーバーがありませんでした（最後の応答：「{r}」）。新しいリンクを送ってください。"
                ),
                (true, None) => format!(
                    "期限切れ：{until}までに受け取ったサーバーがありませんでした。新しいリンクを送ってください。"
                ),
            }
        }
        "suppressed" => {
            let when = at(m.created_ms);
            if ja {
                format!(
                    "送信していません：このアドレスは以前の不達により送信停止リストに載っています（{when}の依頼）。アドレスを確認し、直っていれば管理者に解除を依頼してください。"
                )
            } else {
                format!(
                    "Not sent: this address is on the suppression list after an earlier bounce (requested at {when}). Check the address; if it works again, ask an admin to remove it."
                )
            }
        }
        "cancelled" => {
            let e = last_step(m, &[Step::Cancelled]);
            let when = at(e.map(|e| e.at_ms).unwrap_or(m.created_ms));
            if ja {
                format!(
                    "{when}に担当者が送信を取り消しました。必要なら新しいリンクを送ってください。"
                )
            } else {
                format!(
                    "Cancelled by an operator at {when}. Send a new link if it is still needed."
                )
            }
        }
        other => {
            if ja {
                format!("状態：{other}")
            } else {
                format!("Status: {other}.")
            }
        }
    }
}

/// The sentence for a bounce, by reason.
fn bounced(reason: &str, reply: &str, lang: Lang) -> String {
    let ja = lang == Lang::Ja;
    match reason {
        "userunknown" if ja => "不達：受信側のサーバーが、このメールボックスは存在しないと答えています。アドレスを確認してください。".into(),
        "userunknown" => "Bounced: the receiving server says this mailbox does not exist. Check the address.".into(),
        "hostunknown" if ja => "不達：このアドレスのドメイン（@より後ろ）が存在しないか、メールを受け付けていません。アドレスを確認してください。".into(),
        "hostunknown" => "Bounced: the domain of this address (after the @) does not exist or takes no mail. Check the address.".into(),
        "mailboxfull" if ja => "不達：受信箱がいっぱいです。空きを作ってもらってから新しいリンクを送ってください。".into(),
        "mailboxfull" => "Bounced: the mailbox is full. Ask the person to make room, then send a new link.".into(),
        r if SENDER_REASONS.contains(&r) && ja => format!("不達：受信側のサーバーが、アドレスではなく当方の送信を拒否しました（{r}：「{reply}」）。管理者に連絡してください。"),
        r if SENDER_REASONS.contains(&r) => format!("Bounced: the receiving server refused our mail, not the address ({r}: \"{reply}\"). Tell the admin; a new link would be refused too."),
        r if ja => format!("不達（{r}）：受信側の応答は「{reply}」です。アドレスを確認してください。"),
        r => format!("Bounced ({r}): the receiving server answered \"{reply}\". Check the address."),
    }
}

/// The leading sentence: from the newest message, or the address's suppression entry,
/// or "never requested".
pub fn lead(
    newest: Option<&MessageView>,
    suppression: Option<&Suppression>,
    lang: Lang,
    tz: Tz,
    now_ms: u64,
) -> String {
    match (newest, suppression, lang) {
        (Some(m), _, _) => for_message(m, lang, tz, now_ms),
        (None, Some(s), Lang::En) => format!(
            "No mail was requested, and this address is on the suppression list since {} ({}). Check the address.",
            clock(s.since_ms, tz, lang, now_ms),
            s.reason
        ),
        (None, Some(s), Lang::Ja) => format!(
            "メールの依頼はありません。このアドレスは{}から送信停止リストに載っています（{}）。アドレスを確認してください。",
            clock(s.since_ms, tz, lang, now_ms),
            super::text::reason(lang, &s.reason)
        ),
        (None, None, Lang::En) => "No mail was ever requested for this address. Check the spelling with the caller; then send a new link.".into(),
        (None, None, Lang::Ja) => "このアドレスへのメールは一度も依頼されていません。綴りを確認してから、新しいリンクを送ってください。".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000; // 2026-11-19 in UTC

    fn view(status: &str, events: Vec<Event>) -> MessageView {
        MessageView {
            message_id: "0".repeat(32),
            message_id_header: "x@y".into(),
            to: "taro@example.jp".into(),
            template: "notice".into(),
            locale: "ja".into(),
            subject: "s".into(),
            status: status.into(),
            created_ms: NOW - 60_000,
            expires_ms: NOW + 3_600_000,
            attempts: 1,
            next_try_ms: Some(NOW + 600_000),
            last_reply: None,
            flow_id: None,
            events,
        }
    }

    fn event(step: Step, code: u16, status: &str, reply: &str) -> Event {
        Event {
            at_ms: NOW - 30_000,
            step: Some(step),
            remote_host: Some("mx.example.jp".into()),
            smtp_code: Some(code),
            enhanced_status: Some(status.into()),
            reply: Some(reply.into()),
            ..Event::default()
        }
    }

    #[test]
    fn delivered_names_the_server_the_time_and_the_reply() {
        let m = view(
            "delivered",
            vec![event(
                Step::Delivered,
                250,
                "2.0.0",
                "2.0.0 Ok: queued as 4F2A9C",
            )],
        );
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        let s = for_message(&m, Lang::En, tz, NOW);
        assert!(s.starts_with("Accepted by mx.example.jp at "), "{s}");
        assert!(s.contains("today (250 2.0.0 Ok: queued as 4F2A9C)"), "{s}");
        assert!(s.ends_with("check the junk folder."), "{s}");
        let ja = for_message(&m, Lang::Ja, tz, NOW);
        assert!(ja.contains("今日") && ja.contains("迷惑メール"), "{ja}");
    }

    #[test]
    fn a_userunknown_bounce_says_the_mailbox_does_not_exist() {
        let mut e = event(Step::Bounced, 550, "5.1.1", "550 5.1.1 User unknown");
        e.detail = Some("bounced permanently: userunknown (VERP-authenticated)".into());
        let s = for_message(&view("bounced", vec![e]), Lang::En, chrono_tz::UTC, NOW);
        assert_eq!(
            s,
            "Bounced: the receiving server says this mailbox does not exist. Check the address."
        );
    }

    #[test]
    fn deferred_gives_the_reply_and_the_next_try_and_never_requested_says_so() {
        let m = view(
            "deferred",
            vec![event(Step::Deferred, 451, "4.3.0", "4.3.0 Try again later")],
        );
        let s = for_message(&m, Lang::En, chrono_tz::UTC, NOW);
        assert!(s.starts_with("Delayed: at "), "{s}");
        assert!(s.contains("\"451 4.3.0 Try again later\""), "{s}");
        assert!(s.contains("The next try is at"), "{s}");
        assert!(
            lead(None, None, Lang::En, chrono_tz::UTC, NOW).contains("No mail was ever requested")
        );
    }

    #[test]
    fn long_replies_are_shortened_and_old_times_carry_a_date() {
        assert_eq!(shorten(&"a".repeat(70), 60).chars().count(), 61);
        let t = clock(NOW - 3 * 86_400_000, chrono_tz::UTC, Lang::En, NOW);
        assert!(t.starts_with("2026-"), "{t}");
    }
}

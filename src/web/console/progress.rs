//! How far a person got with one setup or reset flow, for the support page: link
//! mailed, link opened (by a mail scanner or in a browser), the button pressed, code
//! mailed, wrong codes and how many, completed, locked, or why it stopped.
//!
//! Read from the flow record alone (its state, notes, code and failure times), so no
//! store query is added: the notes already say when each step happened. Pure: the
//! record, the language, the zone and `now` go in, the rows come out.
//!
//! Who opened a link is a judgement the record can only support so far: a `HEAD`
//! fetch shows no page to anyone, so it is a scanner's; a `GET` may be a person or a
//! scanner that renders pages; pressing the button and entering a code are what a
//! person does. The rows say exactly that much.

use chrono_tz::Tz;
use serde::Serialize;

use super::sentence::{Lang, stamp};
use crate::domain::{FlowKind, FlowRecord, FlowState};
use crate::flow::machine::effective_state;

/// One step of the progress list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `done`, `todo` or `bad` (a step that went wrong): the page's marker.
    pub mark: &'static str,
    pub label: String,
    pub detail: String,
}

/// A flow's progress as the support page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub id: String,
    pub heading: String,
    /// The effective state's word, for a `data-state` attribute.
    pub state: &'static str,
    pub rows: Vec<Row>,
}

fn notes<'a>(
    flow: &'a FlowRecord,
    what: &'a str,
) -> impl Iterator<Item = &'a crate::domain::FlowNote> {
    flow.notes.iter().filter(move |n| n.what == what)
}

/// The progress of `flow` as of `now`.
pub fn of(flow: &FlowRecord, lang: Lang, tz: Tz, now: u64) -> Progress {
    let ja = lang == Lang::Ja;
    let at = |ms: u64| stamp(ms, tz);
    let first = |what: &str| notes(flow, what).next().map(|n| n.at_ms);
    let last = |what: &str| notes(flow, what).last().map(|n| n.at_ms);
    let state = effective_state(flow, now);
    // Why it could not be delivered, as mailgate wrote it, said in the operator's
    // language (the server's reply inside it stays as it was).
    let why = flow
        .undeliverable_reason
        .as_deref()
        .map(|r| super::text::detail(lang, tz, r));
    let mut rows = Vec::new();
    let mut row = |mark: &'static str, ja_label: &str, en_label: &str, detail: String| {
        rows.push(Row {
            mark,
            label: if ja { ja_label } else { en_label }.to_string(),
            detail,
        })
    };

    // 1. The link mail.
    match (first("mailed"), state) {
        (Some(t), _) => row(
            "done",
            "リンクのメール",
            "Link mail",
            if ja {
                format!("{}に受信側サーバーが受け取りました", at(t))
            } else {
                format!("accepted by the receiving server at {}", at(t))
            },
        ),
        (None, FlowState::Undeliverable) => row(
            "bad",
            "リンクのメール",
            "Link mail",
            match (ja, why.as_deref()) {
                (true, r) => format!("届きませんでした（{}）", r.unwrap_or("理由不明")),
                (false, r) => format!("could not be delivered ({})", r.unwrap_or("no reason")),
            },
        ),
        (None, _) => row(
            "todo",
            "リンクのメール",
            "Link mail",
            if ja {
                "まだ受け取られていません（送信待ちか遅延中）".into()
            } else {
                "not accepted yet (queued or delayed)".into()
            },
        ),
    }

    // 2. Who opened the link.
    let visits: Vec<_> = notes(flow, "link_visited").collect();
    let scanner = visits
        .iter()
        .filter(|n| n.detail.as_deref() == Some("HEAD"))
        .count();
    let browser: Vec<_> = visits
        .iter()
        .filter(|n| n.detail.as_deref() != Some("HEAD"))
        .collect();
    let pressed = first("code_requested");
    if visits.is_empty() && pressed.is_none() {
        row(
            "todo",
            "リンクを開いた",
            "Link opened",
            if ja {
                "まだ開かれていません".into()
            } else {
                "not opened yet".into()
            },
        );
    } else {
        let mut parts = Vec::new();
        if scanner > 0 {
            parts.push(if ja {
                format!("メールのスキャナーが確認のみ{scanner}回（画面は表示されていません）")
            } else {
                format!("fetched {scanner}× by a mail scanner (no page shown)")
            });
        }
        if let Some(first_view) = browser.first() {
            parts.push(if ja {
                format!(
                    "ブラウザで{}回表示（最初は{}。本人か、画面を開くスキャナー）",
                    browser.len(),
                    at(first_view.at_ms)
                )
            } else {
                format!(
                    "shown in a browser {}× (first at {}: the person, or a scanner that opens pages)",
                    browser.len(),
                    at(first_view.at_ms)
                )
            });
        }
        if let Some(t) = pressed {
            parts.push(if ja {
                format!("{}に本人がボタンを押してコードを求めました", at(t))
            } else {
                format!("a person pressed the button for a code at {}", at(t))
            });
        }
        let mark = if pressed.is_some() || !browser.is_empty() {
            "done"
        } else {
            "todo"
        };
        row(
            mark,
            "リンクを開いた",
            "Link opened",
            parts.join(if ja { "。" } else { "; " }),
        );
    }

    // 3. The code mail.
    let asked = notes(flow, "code_requested").count();
    match (last("code_sent"), pressed) {
        (Some(t), _) => row(
            "done",
            "確認コードのメール",
            "Code mail",
            if ja {
                format!("{}に受け取られました（コードの依頼{asked}回）", at(t))
            } else {
                format!("accepted at {} (asked for {asked}×)", at(t))
            },
        ),
        (None, Some(_)) => row(
            "todo",
            "確認コードのメール",
            "Code mail",
            if ja {
                "依頼済み、まだ受け取られていません".into()
            } else {
                "asked for, not accepted yet".into()
            },
        ),
        (None, None) => row(
            "todo",
            "確認コードのメール",
            "Code mail",
            if ja {
                "まだ依頼されていません".into()
            } else {
                "not asked for yet".into()
            },
        ),
    }

    // 4. Wrong codes: the notes keep up to their cap, the failure times those of the
    // last day; the larger is the better count.
    let wrong = notes(flow, "code_wrong")
        .count()
        .max(flow.failures_ms.len());
    if wrong > 0 {
        let when = last("code_wrong")
            .or(flow.failures_ms.last().copied())
            .map(at)
            .unwrap_or_default();
        row(
            "bad",
            "間違ったコード",
            "Wrong codes",
            if ja {
                format!("{wrong}回（最後は{when}）")
            } else {
                format!("{wrong} (the last at {when})")
            },
        );
    } else {
        row(
            "done",
            "間違ったコード",
            "Wrong codes",
            if ja { "なし".into() } else { "none".into() },
        );
    }
    if let Some(t) = first("code_verified") {
        row(
            "done",
            "確認コード",
            "Code",
            if ja {
                format!("{}に正しく入力されました", at(t))
            } else {
                format!("entered correctly at {}", at(t))
            },
        );
    }

    // 5. The end: completed, locked, or why it stopped.
    match state {
        FlowState::Completed => row(
            "done",
            "完了",
            "Completed",
            match (ja, flow.completed_ms) {
                (true, Some(t)) => format!("{}にパスワードが設定されました", at(t)),
                (false, Some(t)) => format!("the password was set at {}", at(t)),
                (true, None) => "パスワードが設定されました".into(),
                (false, None) => "the password was set".into(),
            },
        ),
        FlowState::Locked => row(
            "bad",
            "ロック",
            "Locked",
            match (ja, last("locked")) {
                (true, Some(t)) => format!(
                    "{}に、間違ったコードが多すぎたため止めました。新しいリンクを送ってください",
                    at(t)
                ),
                (false, Some(t)) => format!(
                    "stopped at {} after too many wrong codes; send a new link",
                    at(t)
                ),
                (true, None) => {
                    "間違ったコードが多すぎたため止めました。新しいリンクを送ってください".into()
                }
                (false, None) => "stopped after too many wrong codes; send a new link".into(),
            },
        ),
        FlowState::Expired => row(
            "bad",
            "期限切れ",
            "Expired",
            if ja {
                format!("リンクは{}に期限が切れました", at(flow.expires_ms))
            } else {
                format!("the link ran out at {}", at(flow.expires_ms))
            },
        ),
        FlowState::Superseded => row(
            "bad",
            "置き換え",
            "Replaced",
            if ja {
                "新しいリンクを送ったため、このリンクは使えません".into()
            } else {
                "a newer link was sent; this one no longer works".into()
            },
        ),
        FlowState::Undeliverable => row(
            "bad",
            "配信不能",
            "Undeliverable",
            why.clone().unwrap_or_default(),
        ),
        _ => row(
            "todo",
            "完了",
            "Completed",
            if ja {
                format!("まだです（リンクの期限は{}）", at(flow.expires_ms))
            } else {
                format!("not yet (the link works until {})", at(flow.expires_ms))
            },
        ),
    }

    let kind = match (flow.kind, ja) {
        (FlowKind::Setup, true) => "アカウント設定",
        (FlowKind::Setup, false) => "Account setup",
        (FlowKind::Reset, true) => "パスワード再設定",
        (FlowKind::Reset, false) => "Password reset",
    };
    Progress {
        id: flow.id.clone(),
        heading: if ja {
            format!("{kind}（{}開始）", at(flow.created_ms))
        } else {
            format!("{kind}, started {}", at(flow.created_ms))
        },
        state: state.as_str(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, FlowNote};

    const T0: u64 = 1_795_000_000_000;

    fn flow() -> FlowRecord {
        FlowRecord::issued(
            "f".repeat(32),
            FlowKind::Setup,
            Address::parse("hanako@example.jp").unwrap(),
            "ja".into(),
            T0,
            T0 + 86_400_000,
        )
    }

    fn note(f: &mut FlowRecord, s: u64, what: &str, detail: Option<&str>) {
        f.notes.push(FlowNote {
            at_ms: T0 + s * 1000,
            what: what.into(),
            detail: detail.map(str::to_string),
        });
    }

    fn row<'a>(p: &'a Progress, en: &str) -> &'a Row {
        p.rows
            .iter()
            .find(|r| r.label == en)
            .unwrap_or_else(|| panic!("{en}: {p:?}"))
    }

    #[test]
    fn a_scanner_fetch_a_person_two_wrong_codes_and_completion_are_told_apart() {
        let mut f = flow();
        note(&mut f, 1, "mailed", None);
        note(&mut f, 2, "link_visited", Some("HEAD"));
        note(&mut f, 60, "link_visited", Some("GET"));
        note(&mut f, 61, "code_requested", None);
        note(&mut f, 62, "code_sent", None);
        note(&mut f, 90, "code_wrong", None);
        note(&mut f, 95, "code_wrong", None);
        note(&mut f, 99, "code_verified", None);
        note(&mut f, 120, "completed", None);
        f.state = FlowState::Completed;
        f.completed_ms = Some(T0 + 120_000);
        let p = of(&f, Lang::En, chrono_tz::UTC, T0 + 200_000);
        let opened = &row(&p, "Link opened").detail;
        assert!(opened.contains("fetched 1× by a mail scanner"), "{opened}");
        assert!(opened.contains("shown in a browser 1×"), "{opened}");
        assert!(opened.contains("a person pressed the button"), "{opened}");
        let wrong = row(&p, "Wrong codes");
        assert_eq!(wrong.mark, "bad");
        assert!(
            wrong.detail.starts_with("2 (the last at "),
            "{}",
            wrong.detail
        );
        assert_eq!(row(&p, "Completed").mark, "done");
        assert_eq!(p.state, "completed");
        let ja = of(&f, Lang::Ja, chrono_tz::Asia::Tokyo, T0 + 200_000);
        assert!(
            ja.rows
                .iter()
                .any(|r| r.label == "間違ったコード" && r.detail.starts_with("2回"))
        );
        assert!(ja.heading.starts_with("アカウント設定"), "{}", ja.heading);
    }

    #[test]
    fn a_locked_flow_and_an_untouched_expired_one_say_so() {
        let mut f = flow();
        for s in 0..20 {
            note(&mut f, 10 + s, "code_wrong", None);
        }
        note(&mut f, 40, "locked", Some("20 wrong codes within a day"));
        f.state = FlowState::Locked;
        let p = of(&f, Lang::En, chrono_tz::UTC, T0 + 50_000);
        assert!(row(&p, "Wrong codes").detail.starts_with("20 "));
        assert!(row(&p, "Locked").detail.contains("too many wrong codes"));
        let p = of(&flow(), Lang::En, chrono_tz::UTC, T0 + 2 * 86_400_000);
        assert_eq!(row(&p, "Link opened").detail, "not opened yet");
        assert_eq!(row(&p, "Expired").mark, "bad");
        assert_eq!(p.state, "expired");
    }
}

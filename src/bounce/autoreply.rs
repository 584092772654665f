//! RFC 3834 automatic replies (vacation, out-of-office).
//!
//! Recognised by `Auto-Submitted: auto-replied` (RFC 3834 §5.1) or the older vendor headers
//! and subjects that mean the same. The replying mailbox (From) is the recipient, reason
//! `vacation`, and the report is not a bounce, unless the reply says the mailbox itself is no
//! longer in use (`mailbox_gone` in `rules.toml`): then it failed, reason `suspend`. Runs after the strong NDR markers, because many
//! MTAs (Exim among them) mark their failure notices `auto-replied` too.

use std::sync::LazyLock;

use regex::Regex;

use super::message::Mail;
use super::rules::rules;
use super::{Action, Found, RecipientResult, text};

static SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(auto(matic)?[ -]?(reply|response|respons)|out of (the )?office|vacation|away from|absence|abwesenheit|不在)",
    )
    .expect("constant regex")
});

pub(crate) fn detect(mail: &Mail) -> Option<Found> {
    if !is_autoreply(mail) {
        return None;
    }
    let mut r = RecipientResult::new(mail.sender_address());
    let body = mail.body_text();
    if let Some(m) = rules().ndr.mailbox_gone.find(body) {
        // "This inbox is no longer in use": the mailbox is gone, whoever answers for it.
        r.action = Action::Failed;
        r.reason = Some("suspend".into());
        let line = body[..m.start()].rfind('\n').map_or(0, |i| i + 1);
        let end = body[m.end()..]
            .find('\n')
            .map_or(body.len(), |i| m.end() + i);
        r.diagnostic = Some(text::collapse(&body[line..end]));
    } else {
        r.action = Action::Delivered;
        r.reason = Some("vacation".into());
        r.diagnostic = Some(mail.subject.trim().to_string()).filter(|s| !s.is_empty());
    }
    Some(Found {
        recipients: vec![r],
        hints: vec![String::new()],
        envelope_id: None,
    })
}

fn is_autoreply(mail: &Mail) -> bool {
    let header_says = |name: &str, want: &str| {
        mail.header(name)
            .is_some_and(|v| v.to_ascii_lowercase().contains(want))
    };
    header_says("auto-submitted", "auto-replied")
        || mail.header("x-autoreply").is_some()
        || mail.header("x-autorespond").is_some()
        || header_says("precedence", "auto_reply")
        || SUBJECT.is_match(&mail.subject)
}

#[cfg(test)]
mod tests {

    #[test]
    fn vacation_reply_is_not_a_bounce() {
        let raw = b"From: Kiji <kiji@example.net>\r\nTo: neko@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Away until May 5\r\n\r\nI am away.\r\n";
        let r = crate::bounce::parse(raw);
        assert!(!r.bounce);
        assert_eq!(r.kind, Some(crate::bounce::ReportKind::Autoreply));
        assert_eq!(r.recipients[0].address, "kiji@example.net");
        assert_eq!(r.recipients[0].reason.as_deref(), Some("vacation"));
    }
}

//! Classification of one recipient: its reason (Sisimai's names) and permanence.
//!
//! The reason is decided by [`reason::decide`] on the recipient's own diagnostic, the SMTP
//! command it answered, its status and reply codes; when that finds nothing, the surrounding
//! report text is matched; last the action (`delayed` means the message expired in the queue).

use super::reason::{self, Evidence};
use super::rules::{Rules, rules};
use super::{Action, RecipientResult, ReportKind};

/// Set `reason` (unless a detector already did) and `permanent`.
pub(crate) fn finish(r: &mut RecipientResult, kind: ReportKind, hint: &str) {
    let rules = rules();
    if r.reason.is_none() {
        r.reason = Some(reason_of(rules, r, hint));
    }
    r.permanent = match kind {
        ReportKind::Arf => false,
        ReportKind::Autoreply if r.action != Action::Failed => false,
        _ => permanent(rules, r, hint),
    };
}

fn reason_of(rules: &Rules, r: &RecipientResult, hint: &str) -> String {
    if r.action == Action::Delivered || r.status.as_deref().is_some_and(|s| s.starts_with('2')) {
        return "delivered".into();
    }
    let diag = r.diagnostic.as_deref().unwrap_or_default();
    let command = match reason::command(rules, diag) {
        "" => reason::command(rules, hint),
        c => c,
    };
    // Reason patterns are written for lower-case text (see `rules::alternation`).
    let diag_lower = diag.to_lowercase();
    let (status, reply) = (r.status.as_deref(), r.reply_code);
    if let Some(name) = reason::decide(rules, &Evidence::new(status, reply, &diag_lower, command)) {
        return name;
    }
    let hint_lower = hint.to_lowercase();
    if let Some(name) = reason::decide(rules, &Evidence::new(status, reply, &hint_lower, command)) {
        return name;
    }
    if r.action == Action::Delayed {
        return "expired".into();
    }
    if r.status.is_some() || r.reply_code.is_some() || !diag.is_empty() {
        "onhold".into()
    } else {
        "undefined".into()
    }
}

/// RFC 3463 §3.1: class 5 is permanent, 4 transient; else the reply code's first digit
/// (RFC 5321 §4.2.1); else what the text says; else a failure is taken as permanent.
fn permanent(rules: &Rules, r: &RecipientResult, hint: &str) -> bool {
    if let Some(s) = &r.status {
        return s.starts_with('5');
    }
    if let Some(c) = r.reply_code {
        return c >= 500;
    }
    match r.action {
        Action::Failed => {}
        _ => return false,
    }
    let text = r.diagnostic.as_deref().unwrap_or_default();
    for t in [text, hint] {
        if rules.temporary.is_match(t) {
            return false;
        }
        if rules.permanent.is_match(t) {
            return true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(status: Option<&str>, diag: Option<&str>) -> RecipientResult {
        let mut r = RecipientResult::new("a@b.c".into());
        r.status = status.map(str::to_string);
        r.diagnostic = diag.map(str::to_string);
        r
    }

    #[test]
    fn text_then_status() {
        let mut r = rcpt(Some("5.1.1"), Some("550 5.1.1 <a@b.c>... User Unknown"));
        finish(&mut r, ReportKind::Dsn, "");
        assert_eq!(r.reason.as_deref(), Some("userunknown"));
        assert!(r.permanent);
        let mut r = rcpt(Some("5.2.2"), Some("quota"));
        finish(&mut r, ReportKind::Dsn, "");
        assert_eq!(r.reason.as_deref(), Some("mailboxfull"));
        let mut r = rcpt(Some("4.4.7"), None);
        finish(&mut r, ReportKind::Dsn, "");
        assert!(!r.permanent);
    }

    #[test]
    fn unknown_user_needs_rcpt_else_filtered() {
        let mut r = rcpt(
            Some("5.0.0"),
            Some("550 user unknown (in reply to RCPT TO command)"),
        );
        finish(&mut r, ReportKind::Dsn, "");
        assert_eq!(r.reason.as_deref(), Some("userunknown"));
        let mut r = rcpt(
            Some("5.0.0"),
            Some("550 user unknown (in reply to end of DATA command)"),
        );
        finish(&mut r, ReportKind::Dsn, "");
        assert_eq!(r.reason.as_deref(), Some("filtered"));
    }

    #[test]
    fn no_code_uses_text_for_permanence() {
        let mut r = rcpt(None, Some("mailbox is full"));
        finish(&mut r, ReportKind::Ndr, "This is a temporary error");
        assert_eq!(r.reason.as_deref(), Some("mailboxfull"));
        assert!(!r.permanent);
    }
}

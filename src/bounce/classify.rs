//! The rules engine: reason and permanence of one recipient, from `rules.toml`.
//!
//! Order of evidence: a status code listed as authoritative; the ordered diagnostic-text
//! patterns on the recipient's own diagnostic; the status-code table (full code, then
//! `class.subject.*`, RFC 3463 §3); the patterns on the surrounding report text; and last the
//! action (`delayed` means the message expired in the queue).

use super::rules::{Rules, rules};
use super::{Action, RecipientResult, ReportKind};

/// Set `reason` (unless a detector already did) and `permanent`.
pub(crate) fn finish(r: &mut RecipientResult, kind: ReportKind, hint: &str) {
    let rules = rules();
    if r.reason.is_none() {
        let mut name = reason(rules, r, hint);
        let status_says_user = r
            .status
            .as_deref()
            .is_some_and(|s| s.get(1..4) == Some(".1."));
        if name == "userunknown" && !status_says_user && at_data(rules, r, hint) {
            name = "filtered".into();
        }
        r.reason = Some(name);
    }
    r.permanent = match kind {
        ReportKind::Arf | ReportKind::Autoreply => false,
        _ => permanent(rules, r, hint),
    };
}

fn reason(rules: &Rules, r: &RecipientResult, hint: &str) -> String {
    if r.action == Action::Delivered || r.status.as_deref().is_some_and(|s| s.starts_with('2')) {
        return "delivered".into();
    }
    let status = r.status.as_deref();
    if let Some(s) = status
        && rules.authoritative_status.iter().any(|a| a == s)
        && let Some(name) = by_status(rules, s)
    {
        return name;
    }
    if let Some(name) = r.diagnostic.as_deref().and_then(|d| by_text(rules, d)) {
        return name;
    }
    if let Some(name) = status.and_then(|s| by_status(rules, s)) {
        return name;
    }
    if let Some(name) = by_text(rules, hint) {
        return name;
    }
    if r.action == Action::Delayed {
        return "expired".into();
    }
    if status.is_some() || r.reply_code.is_some() {
        "onhold".into()
    } else {
        "undefined".into()
    }
}

/// Was the recipient refused in reply to DATA rather than RCPT? Then the address exists and
/// the "unknown user" is a filter's answer.
fn at_data(rules: &Rules, r: &RecipientResult, hint: &str) -> bool {
    let diag = r.diagnostic.as_deref().unwrap_or_default();
    rules.data_command.is_match(diag) || rules.data_command.is_match(hint)
}

/// First reason whose pattern matches.
pub(crate) fn by_text(rules: &Rules, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    rules
        .reasons
        .iter()
        .find(|rule| rule.pattern.is_match(text))
        .map(|rule| rule.name.clone())
}

/// The status table: the full code, then `class.subject.*`.
fn by_status(rules: &Rules, status: &str) -> Option<String> {
    if let Some(n) = rules.status.get(status) {
        return Some(n.clone());
    }
    let mut it = status.rsplitn(2, '.');
    let _detail = it.next();
    let prefix = it.next()?;
    rules.status.get(&format!("{prefix}.*")).cloned()
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
    fn no_code_uses_text_for_permanence() {
        let mut r = rcpt(None, Some("mailbox is full"));
        finish(&mut r, ReportKind::Ndr, "This is a temporary error");
        assert_eq!(r.reason.as_deref(), Some("mailboxfull"));
        assert!(!r.permanent);
    }
}

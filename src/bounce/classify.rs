//! Classification of one recipient: its reason (Sisimai's names) and permanence.
//!
//! The reason is decided by [`reason::decide`] on the recipient's own diagnostic, the SMTP
//! command it answered, its status and reply codes; when that finds nothing, the surrounding
//! report text is matched; last the action (`delayed` means the message expired in the queue).

use std::cell::OnceCell;

use super::prefilter::Candidates;
use super::reason::{self, Evidence};
use super::rules::{Rules, rules};
use super::{Action, RecipientResult, ReportKind};

/// The surrounding report text a recipient's classification falls back on, lowered once
/// when first needed: the recipients of one report share it, and lowering the whole report
/// once per recipient showed in the parse profile.
pub(crate) struct Hint<'a> {
    pub text: &'a str,
    lower: OnceCell<String>,
    /// The SMTP command the text shows a failure answered, and which reason regexes may
    /// match in it, found once for the same reason.
    command: OnceCell<&'static str>,
    cands: OnceCell<Candidates>,
}

impl<'a> Hint<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Hint {
            text,
            lower: OnceCell::new(),
            command: OnceCell::new(),
            cands: OnceCell::new(),
        }
    }

    fn cands(&self, rules: &Rules) -> Candidates {
        self.cands.get_or_init(|| rules.scan(self.lower())).clone()
    }

    fn lower(&self) -> &str {
        self.lower.get_or_init(|| self.text.to_lowercase())
    }

    fn command(&self, rules: &'static Rules) -> &'static str {
        self.command
            .get_or_init(|| reason::command(rules, self.text))
    }
}

/// Set `reason` (unless a detector already did) and `permanent`.
pub(crate) fn finish(r: &mut RecipientResult, kind: ReportKind, hint: &Hint) {
    let rules = rules();
    let diag_lower = OnceCell::new();
    let diag_lower = || -> &str {
        diag_lower.get_or_init(|| r.diagnostic.as_deref().unwrap_or_default().to_lowercase())
    };
    let reason = match r.reason.is_none() {
        true => Some(reason_of(rules, r, diag_lower(), hint)),
        false => None,
    };
    let permanent = match kind {
        ReportKind::Arf => false,
        ReportKind::Autoreply if r.action != Action::Failed => false,
        _ => permanent(rules, r, diag_lower, hint),
    };
    if reason.is_some() {
        r.reason = reason;
    }
    r.permanent = permanent;
}

fn reason_of(rules: &'static Rules, r: &RecipientResult, diag_lower: &str, hint: &Hint) -> String {
    if r.action == Action::Delivered || r.status.as_deref().is_some_and(|s| s.starts_with('2')) {
        return "delivered".into();
    }
    let diag = r.diagnostic.as_deref().unwrap_or_default();
    let command = match reason::command(rules, diag) {
        "" => hint.command(rules),
        c => c,
    };
    // Reason patterns are written for lower-case text (see `rules::alternation`).
    let (status, reply) = (r.status.as_deref(), r.reply_code);
    if let Some(name) = reason::decide(
        rules,
        &Evidence::new(status, reply, diag_lower, command, rules.scan(diag_lower)),
    ) {
        return name;
    }
    let ev = Evidence::new(status, reply, hint.lower(), command, hint.cands(rules));
    if let Some(name) = reason::decide(rules, &ev) {
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
/// The text patterns are written for lower-case text, like the reasons'.
fn permanent<'d>(
    rules: &Rules,
    r: &RecipientResult,
    diag_lower: impl FnOnce() -> &'d str,
    hint: &Hint,
) -> bool {
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
    for t in [diag_lower(), hint.lower()] {
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
        finish(&mut r, ReportKind::Dsn, &Hint::new(""));
        assert_eq!(r.reason.as_deref(), Some("userunknown"));
        assert!(r.permanent);
        let mut r = rcpt(Some("5.2.2"), Some("quota"));
        finish(&mut r, ReportKind::Dsn, &Hint::new(""));
        assert_eq!(r.reason.as_deref(), Some("mailboxfull"));
        let mut r = rcpt(Some("4.4.7"), None);
        finish(&mut r, ReportKind::Dsn, &Hint::new(""));
        assert!(!r.permanent);
    }

    #[test]
    fn unknown_user_needs_rcpt_else_filtered() {
        let mut r = rcpt(
            Some("5.0.0"),
            Some("550 user unknown (in reply to RCPT TO command)"),
        );
        finish(&mut r, ReportKind::Dsn, &Hint::new(""));
        assert_eq!(r.reason.as_deref(), Some("userunknown"));
        let mut r = rcpt(
            Some("5.0.0"),
            Some("550 user unknown (in reply to end of DATA command)"),
        );
        finish(&mut r, ReportKind::Dsn, &Hint::new(""));
        assert_eq!(r.reason.as_deref(), Some("filtered"));
    }

    #[test]
    fn no_code_uses_text_for_permanence() {
        let mut r = rcpt(None, Some("mailbox is full"));
        finish(
            &mut r,
            ReportKind::Ndr,
            &Hint::new("This is a temporary error"),
        );
        assert_eq!(r.reason.as_deref(), Some("mailboxfull"));
        assert!(!r.permanent);
    }
}

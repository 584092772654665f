//! Bounce parsing: turn a returned message into a [`BounceReport`].
//!
//! # Design
//!
//! A bounce is decoded once with `mail-parser` into a `message::Mail`: the top-level headers,
//! every leaf MIME part with its text (transfer encodings and charsets undone), and the returned
//! original message when one is attached. Detectors then run in a fixed order, the first that
//! recognises the message wins:
//!
//! 1. `dsn`: RFC 3464 `multipart/report; report-type=delivery-status` (machine-readable).
//! 2. `arf`: RFC 5965 `multipart/report; report-type=feedback-report` (abuse complaints).
//! 3. `ndr` with a *strong* marker of a known MTA's failure notice (qmail, Exim, Sendmail,
//!    Exchange, Gmail, ...). Bounces of those MTAs often carry `Auto-Submitted: auto-replied`,
//!    so they have to be recognised before step 4.
//! 4. `autoreply`: RFC 3834 auto-replies (vacation, out-of-office).
//! 5. `ndr` heuristics for free-text notices without a strong marker.
//!
//! Every detector only *extracts*: recipient, action, status, reply code, diagnostic text and
//! remote MTA. Classification into Sisimai's reason names is done afterwards, in one place,
//! by `classify` with `reason`, from rules kept as data in `rules.toml` (a status-code table,
//! per-reason text patterns and probe conditions, Sisimai's order of precedence, and the SMTP
//! command a failure answered). `permanent` follows the status code's class digit
//! (RFC 3463 §3.1), else the SMTP reply code's first digit (RFC 5321 §4.2.1).
//!
//! Feedback reports, auto-replies and delivery notices (`action: delivered`) are reported with
//! their kind and recipients but with `bounce: false`: they are not failures.
//!
//! [`parse`] never panics: all input handling is fallible-by-construction, and a last-resort
//! `catch_unwind` turns any unexpected panic in a dependency into an empty report.

mod arf;
mod autoreply;
mod classify;
mod dsn;
mod message;
mod ndr;
mod reason;
mod rules;
mod ses;
mod text;

use serde::{Deserialize, Serialize};

/// Which kind of report the message was recognised as.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// RFC 3464 delivery status notification.
    Dsn,
    /// RFC 5965 abuse feedback report.
    Arf,
    /// RFC 3834 automatic reply (vacation, out of office).
    Autoreply,
    /// Non-standard non-delivery report written by an MTA in free text.
    Ndr,
}

/// The per-recipient action (RFC 3464 §2.3.3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

/// What happened to one recipient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecipientResult {
    /// The recipient address (`local@domain`), as reported.
    pub address: String,
    pub action: Action,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// Permanent failure: status class 5, else reply code 5xx.
    pub permanent: bool,
    /// Sisimai reason name (`userunknown`, `mailboxfull`, ...).
    pub reason: Option<String>,
    /// The remote server's reply or the MTA's explanation, on one line.
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// SMTP reply code (RFC 5321 §4.2), e.g. 550.
    pub reply_code: Option<u16>,
}

/// The result of parsing one message.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BounceReport {
    /// True when at least one recipient failed or was delayed.
    pub bounce: bool,
    pub kind: Option<ReportKind>,
    pub recipients: Vec<RecipientResult>,
    /// Message-ID of the returned original message, without angle brackets.
    pub original_message_id: Option<String>,
    /// RFC 3464 §2.2.1 `Original-Envelope-Id`.
    pub original_envelope_id: Option<String>,
    /// Addresses from the report's own To / Delivered-To / X-Original-To (VERP correlation).
    pub envelope_to: Vec<String>,
}

impl BounceReport {
    /// One JSON object on one line, as `mailgate bounce parse --json` prints it.
    pub fn to_json_line(&self, file: &str) -> String {
        let recipients: Vec<serde_json::Value> = self
            .recipients
            .iter()
            .map(|r| {
                serde_json::json!({
                    "address": r.address,
                    "action": r.action,
                    "status": r.status,
                    "permanent": r.permanent,
                    "reason": r.reason,
                    "diagnostic": r.diagnostic,
                    "remote_mta": r.remote_mta,
                    "reply_code": r.reply_code,
                })
            })
            .collect();
        serde_json::json!({
            "file": file,
            "bounce": self.bounce,
            "kind": self.kind,
            "recipients": recipients,
            "original_message_id": self.original_message_id,
            "original_envelope_id": self.original_envelope_id,
            "envelope_to": self.envelope_to,
        })
        .to_string()
    }
}

/// Parse a raw message (RFC 5322 bytes). Never panics; a message that is not a report gives
/// `bounce: false`, `kind: None` and no recipients.
pub fn parse(raw: &[u8]) -> BounceReport {
    try_parse(raw).unwrap_or_default()
}

/// Like [`parse`], but says when the last-resort guard caught a panic, so tests and the
/// fuzz target can count them without a process-wide panic hook.
pub fn try_parse(raw: &[u8]) -> Result<BounceReport, String> {
    std::panic::catch_unwind(|| parse_inner(raw)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}

fn parse_inner(raw: &[u8]) -> BounceReport {
    let mail = message::Mail::parse(raw);
    let (kind, mut found) = detect(&mail);
    let Some(kind) = kind else {
        return BounceReport::default();
    };
    for (i, r) in found.recipients.iter_mut().enumerate() {
        let hint = found.hints.get(i).map(String::as_str).unwrap_or_default();
        classify::finish(r, kind, hint);
    }
    let bounce = kind != ReportKind::Arf
        && kind != ReportKind::Autoreply
        && found
            .recipients
            .iter()
            .any(|r| matches!(r.action, Action::Failed | Action::Delayed));
    BounceReport {
        bounce,
        kind: Some(kind),
        recipients: found.recipients,
        original_message_id: mail.original_message_id(),
        original_envelope_id: found.envelope_id,
        envelope_to: mail.envelope_to(),
    }
}

/// What a detector extracted before classification.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub recipients: Vec<RecipientResult>,
    /// Per recipient: surrounding report text the classifier may fall back on.
    pub hints: Vec<String>,
    pub envelope_id: Option<String>,
}

fn detect(mail: &message::Mail) -> (Option<ReportKind>, Found) {
    if let Some((kind, f)) = ses::detect(mail) {
        return (Some(kind), f);
    }
    if let Some(f) = dsn::detect(mail) {
        return (Some(ReportKind::Dsn), f);
    }
    if let Some(f) = arf::detect(mail) {
        return (Some(ReportKind::Arf), f);
    }
    if let Some(f) = ndr::detect(mail, true) {
        return (Some(ReportKind::Ndr), f);
    }
    if let Some(f) = autoreply::detect(mail) {
        return (Some(ReportKind::Autoreply), f);
    }
    if let Some(f) = ndr::detect(mail, false) {
        return (Some(ReportKind::Ndr), f);
    }
    (None, Found::default())
}

impl RecipientResult {
    /// A failed recipient with nothing else known yet.
    pub(crate) fn new(address: String) -> Self {
        RecipientResult {
            address,
            action: Action::Failed,
            status: None,
            permanent: false,
            reason: None,
            diagnostic: None,
            remote_mta: None,
            reply_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_inputs_give_no_bounce() {
        for raw in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Subject: hi\r\n\r\nhello",
            b"\n\n\n",
        ] {
            let r = parse(raw);
            assert!(!r.bounce);
            assert!(r.recipients.is_empty());
        }
    }

    #[test]
    fn json_line_has_design_fields() {
        let mut r = BounceReport {
            bounce: true,
            kind: Some(ReportKind::Dsn),
            ..Default::default()
        };
        r.recipients
            .push(RecipientResult::new("a@example.org".into()));
        let line = r.to_json_line("x.eml");
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid json");
        assert_eq!(v["kind"], "dsn");
        assert_eq!(v["recipients"][0]["action"], "failed");
        assert_eq!(v["file"], "x.eml");
        assert!(v.get("original_message_id").is_some());
        assert!(!line.contains('\n'));
    }
}

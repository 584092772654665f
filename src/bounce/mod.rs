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
//! their kind and recipients but with `bounce: false`: they are not failures. An auto-reply
//! that says the mailbox is no longer in use is one (reason `suspend`).
//!
//! [`parse`] reads one message; [`mbox::messages`] splits a file that holds several.
//!
//! [`parse`] never panics: all input handling is fallible-by-construction, and a last-resort
//! `catch_unwind` turns any unexpected panic in a dependency into an empty report.

mod arf;
mod autoreply;
mod classify;
mod dsn;
pub mod mbox;
mod message;
mod ndr;
mod prefilter;
mod reason;
mod rules;
mod ses;
mod status;
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
    /// The recipient address (`local@domain`): the DSN's `Original-Recipient` when the
    /// report carries one (the address mailgate sent to, the one to match and suppress),
    /// else the `Final-Recipient` or the address the notice names.
    pub address: String,
    /// RFC 3464 §2.3.2 `Final-Recipient`, when the report gave one: after aliases and
    /// forwarding it can differ from `address`.
    #[serde(default)]
    pub final_recipient: Option<String>,
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
    /// Why the input is not a mail message at all (empty, binary, no header block); set
    /// only then, and then nothing else is.
    #[serde(default)]
    pub not_mail: Option<String>,
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
                    "final_recipient": r.final_recipient,
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
            "not_mail": self.not_mail,
        })
        .to_string()
    }
}

/// Parse a raw message (RFC 5322 bytes). Never panics; a message that is not a report gives
/// `bounce: false`, `kind: None` and no recipients, and input that is not a mail message at
/// all also says why in `not_mail`.
pub fn parse(raw: &[u8]) -> BounceReport {
    try_parse(raw).unwrap_or_default()
}

/// The parser's last-resort guard caught a panic (a bug, never the input's fault); its
/// message.
#[derive(Debug, thiserror::Error)]
#[error("the bounce parser panicked: {0}")]
pub struct ParserPanicked(pub String);

/// Like [`parse`], but says when the last-resort guard caught a panic, so tests and the
/// fuzz target can count them without a process-wide panic hook.
pub fn try_parse(raw: &[u8]) -> Result<BounceReport, ParserPanicked> {
    std::panic::catch_unwind(|| parse_inner(raw)).map_err(|p| {
        ParserPanicked(
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()),
        )
    })
}

fn parse_inner(raw: &[u8]) -> BounceReport {
    if let Some(why) = not_mail(raw) {
        return BounceReport {
            not_mail: Some(why),
            ..Default::default()
        };
    }
    let raw = normalise_line_ends(raw);
    let mail = message::Mail::parse(&raw);
    let (kind, mut found) = detect(&mail);
    let Some(kind) = kind else {
        return BounceReport::default();
    };
    // Recipients of one report mostly share its text as their hint: one `Hint` serves a
    // run of equal ones, so the text is lowered once.
    let mut shared: Option<classify::Hint> = None;
    for (i, r) in found.recipients.iter_mut().enumerate() {
        let text = found.hints.get(i).map(String::as_str).unwrap_or_default();
        if shared.as_ref().is_none_or(|h| h.text != text) {
            shared = Some(classify::Hint::new(text));
        }
        if let Some(hint) = &shared {
            classify::finish(r, kind, hint);
        }
    }
    let bounce = kind != ReportKind::Arf
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
        not_mail: None,
    }
}

/// Why `raw` is not a mail message, or `None` when it may be one. Junk is refused before
/// anything is recorded (`bounce ingest`, `POST /api/v1/bounces`): an empty file, binary
/// data, or text that does not open with a header block (RFC 5322 §2.1; an mbox `From `
/// line before it is allowed).
pub fn not_mail(raw: &[u8]) -> Option<String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Some(if raw.is_empty() {
            "empty: no bytes at all".into()
        } else {
            "empty: only blank lines".into()
        });
    }
    // Mail is text (RFC 5322 §2.1; 8BITMIME and SMTPUTF8 allow bytes above 127). A stray NUL
    // turns up in real reports, so only a share of control bytes marks binary data.
    // The first 16 KiB tell binary from text as well as more would (the count was a
    // visible share of the parse profile over 64 KiB).
    let head = &raw[..raw.len().min(16 * 1024)];
    // Counted in byte lanes, 255 bytes at a time, which the compiler turns into vector code.
    let controls: usize = head
        .chunks(255)
        .map(|chunk| {
            let n: u8 = chunk
                .iter()
                .map(|&b| u8::from(b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n' | 0x0c | 0x1b)))
                .sum();
            usize::from(n)
        })
        .sum();
    if controls * 20 > head.len() {
        return Some(format!(
            "binary data, not a mail message ({controls} control bytes in the first {} bytes)",
            head.len()
        ));
    }
    // Read as bytes: only the first line or two matter, and a lossy UTF-8 copy of the
    // head showed up in the parse profile.
    let head = &head[..head.len().min(4096)];
    let mut lines = head
        .split(|&b| b == b'\r' || b == b'\n')
        .skip_while(|l| l.iter().all(u8::is_ascii_whitespace))
        .filter(|l| !l.is_empty());
    let mut first: &[u8] = lines.next().unwrap_or_default();
    if first.starts_with(b"From ") {
        first = lines.next().unwrap_or_default();
    }
    // RFC 5322 §3.6.8 allows any printable name; real ones are letters, digits and dashes,
    // and the stricter test keeps JSON, CSV and prose from passing as a header.
    let is_field = first.iter().position(|&b| b == b':').is_some_and(|colon| {
        colon > 0
            && first[..colon]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !is_field {
        let shown: String = String::from_utf8_lossy(first).chars().take(40).collect();
        return Some(format!(
            "not a mail message: it does not begin with a header field (`Name: value`); its first line is {shown:?}"
        ));
    }
    None
}

/// Line ends made uniform before anything reads the message: CRLF and a CR alone both become
/// LF, so a report written with any of the three gives the same answer (a CR alone would
/// otherwise hide the end of the header block from the MIME parser).
fn normalise_line_ends(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !raw.contains(&b'\r') {
        return std::borrow::Cow::Borrowed(raw);
    }
    // Copied a run at a time between the CRs (memchr finds them), not byte by byte: the
    // byte loop showed in the parse profile.
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = memchr::memchr(b'\r', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + 1..];
        if let Some(tail) = rest.strip_prefix(b"\n") {
            rest = tail;
        }
    }
    out.extend_from_slice(rest);
    std::borrow::Cow::Owned(out)
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
    // A read receipt (RFC 8098) says what a person did with a delivered message: never a
    // failure, and its sender is not a failed recipient.
    if mail.report_type.as_deref() == Some("disposition-notification") {
        return (None, Found::default());
    }
    if let Some((kind, f)) = ses::detect(mail) {
        return (Some(kind), f);
    }
    if let Some(f) = dsn::detect(mail) {
        return (Some(ReportKind::Dsn), f);
    }
    if let Some(f) = forwarded_dsn(mail) {
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

/// A delivery report forwarded as an attachment (someone passed the bounce on): the
/// notice around it only says that it failed, the attached report says who and why.
fn forwarded_dsn(mail: &message::Mail) -> Option<Found> {
    mail.parts.iter().find_map(|p| {
        // `Mail` keeps an original's text only when its headers say it is a report.
        if p.original.is_none() || p.text.is_empty() || p.ctype != "message/rfc822" {
            return None;
        }
        dsn::detect(&message::Mail::parse(p.text.as_bytes()))
    })
}

impl RecipientResult {
    /// A failed recipient with nothing else known yet.
    pub(crate) fn new(address: String) -> Self {
        RecipientResult {
            address,
            final_recipient: None,
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

//! RFC 5965 abuse feedback reports (ARF), and the two non-standard complaint formats that
//! stand in for them in the wild: Microsoft's JMRP (the complained-of message attached with an
//! `X-HmXmrOriginalRecipient` header) and Apple Mail's unsubscribe notice.
//!
//! A complaint is not a delivery failure: recipients are returned with reason `feedback`.

use super::message::Mail;
use super::{Action, Found, RecipientResult, text};

/// Recognise a feedback report; recipients are the complaining addresses.
pub(crate) fn detect(mail: &Mail) -> Option<Found> {
    let feedback = mail
        .parts
        .iter()
        .find(|p| p.ctype == "message/feedback-report");
    let is_report = mail.report_type.as_deref() == Some("feedback-report") || feedback.is_some();
    let addresses = if is_report {
        // RFC 5965 §3.2: Original-Rcpt-To, one per recipient; Removal-Recipient (RFC 6650 §5).
        let fields = feedback.map(|p| p.text.as_str()).unwrap_or_default();
        let mut a = field_addresses(fields, "original-rcpt-to");
        if a.is_empty() {
            a = field_addresses(fields, "removal-recipient");
        }
        if a.is_empty() {
            a = original_to(mail);
        }
        a
    } else if let Some(a) = jmrp_recipient(mail) {
        vec![a]
    } else if is_apple_unsubscribe(mail) {
        mail.envelope_to()
    } else {
        return None;
    };
    let mut found = Found::default();
    for a in addresses {
        let mut r = RecipientResult::new(a);
        r.action = Action::Failed;
        r.reason = Some("feedback".into());
        r.diagnostic = feedback.and_then(|p| feedback_type(&p.text));
        found.recipients.push(r);
        found.hints.push(String::new());
    }
    if found.recipients.is_empty() {
        // A report whose complainant is redacted is still a report.
        let mut r = RecipientResult::new(String::new());
        r.reason = Some("feedback".into());
        found.recipients.push(r);
        found.hints.push(String::new());
    }
    Some(found)
}

fn field_addresses(fields: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in fields.lines() {
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
            && let Some(a) = text::first_address(v)
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

fn feedback_type(fields: &str) -> Option<String> {
    fields.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("feedback-type")
            .then(|| format!("feedback-type: {}", v.trim()))
    })
}

fn original_to(mail: &Mail) -> Vec<String> {
    mail.original_headers()
        .and_then(|h| h.iter().find(|(n, _)| n == "to"))
        .map(|(_, v)| text::addresses(v))
        .unwrap_or_default()
}

/// Microsoft JMRP: "complaint about message from ..." with the message attached.
fn jmrp_recipient(mail: &Mail) -> Option<String> {
    let h = mail.original_headers()?;
    h.iter()
        .find(|(n, _)| n == "x-hmxmroriginalrecipient")
        .and_then(|(_, v)| text::first_address(v))
}

fn is_apple_unsubscribe(mail: &Mail) -> bool {
    mail.subject.trim().eq_ignore_ascii_case("unsubscribe")
        && mail
            .body_text()
            .contains("Apple Mail sent this email to unsubscribe")
}

//! Amazon SES notifications: JSON bodies (optionally wrapped in an SNS envelope whose
//! `Message` field holds the JSON as a string) of type Bounce, Complaint or Delivery.

use serde_json::Value;

use super::message::Mail;
use super::{Action, Found, RecipientResult, ReportKind, text};

/// Recognise an SES JSON notification. Complaints come back as `Arf`, the rest as `Ndr`.
pub(crate) fn detect(mail: &Mail) -> Option<(ReportKind, Found)> {
    let body = mail.body_text();
    let start = body.find('{')?;
    if !body.contains("notificationType") && !body.contains("eventType") {
        return None;
    }
    let mut v = first_json(&body[start..]).or_else(|| {
        // Over-long lines arrive broken as `!` + CRLF + space (an MTA's 998-octet limit,
        // RFC 5322 §2.1.1); join them back before reading the JSON again.
        first_json(&body[start..].replace("!\r\n ", "").replace("!\n ", ""))
    })?;
    // SNS envelope (`"Type": "Notification"`): the SES event is a JSON string in `Message`.
    if let Some(inner) = v.get("Message").and_then(Value::as_str) {
        v = serde_json::from_str(inner).ok()?;
    }
    let kind = v
        .get("notificationType")
        .or_else(|| v.get("eventType"))
        .and_then(Value::as_str)?;
    let mut found = Found::default();
    let out_kind = match kind {
        "Bounce" => {
            bounce(&v, &mut found);
            ReportKind::Ndr
        }
        "Complaint" => {
            complaint(&v, &mut found);
            ReportKind::Arf
        }
        "Delivery" => {
            delivery(&v, &mut found);
            ReportKind::Ndr
        }
        _ => return None,
    };
    found.hints = vec![String::new(); found.recipients.len()];
    (!found.recipients.is_empty()).then_some((out_kind, found))
}

/// The first JSON value in `s`, ignoring whatever text follows it.
fn first_json(s: &str) -> Option<Value> {
    serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .next()?
        .ok()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn bounce(v: &Value, found: &mut Found) {
    let b = &v["bounce"];
    let mta = str_at(b, "remoteMtaIp").map(str::to_string);
    for rcpt in b["bouncedRecipients"].as_array().into_iter().flatten() {
        let Some(addr) = str_at(rcpt, "emailAddress").and_then(text::first_address) else {
            continue;
        };
        let mut r = RecipientResult::new(addr);
        if str_at(b, "bounceType") == Some("Transient") {
            r.action = Action::Delayed;
        }
        // SES did not try: the address is on its own (global or account) suppression list.
        // Sisimai names this reason `suppressed`.
        if matches!(
            str_at(b, "bounceSubType"),
            Some("Suppressed" | "OnAccountSuppressionList")
        ) {
            r.reason = Some("suppressed".into());
        }
        r.status = str_at(rcpt, "status").and_then(text::status_code);
        if let Some(d) = str_at(rcpt, "diagnosticCode") {
            let d = d.split_once(';').map_or(d, |(_, rest)| rest).trim();
            r.reply_code = text::failure_reply_code(d);
            r.status = r.status.or_else(|| text::status_code(d));
            r.diagnostic = Some(text::collapse(d));
        }
        r.remote_mta = mta.clone();
        found.recipients.push(r);
    }
}

fn complaint(v: &Value, found: &mut Found) {
    let c = &v["complaint"];
    for rcpt in c["complainedRecipients"].as_array().into_iter().flatten() {
        if let Some(addr) = str_at(rcpt, "emailAddress").and_then(text::first_address) {
            let mut r = RecipientResult::new(addr);
            r.reason = Some("feedback".into());
            r.diagnostic =
                str_at(c, "complaintFeedbackType").map(|t| format!("feedback-type: {t}"));
            found.recipients.push(r);
        }
    }
}

fn delivery(v: &Value, found: &mut Found) {
    let d = &v["delivery"];
    let reply = str_at(d, "smtpResponse").unwrap_or_default();
    for addr in d["recipients"].as_array().into_iter().flatten() {
        if let Some(addr) = addr.as_str().and_then(text::first_address) {
            let mut r = RecipientResult::new(addr);
            r.action = Action::Delivered;
            r.reply_code = text::reply_code(reply);
            r.status = text::status_code(reply);
            r.diagnostic = Some(reply.to_string()).filter(|s| !s.is_empty());
            r.remote_mta = str_at(d, "remoteMtaIp").map(str::to_string);
            found.recipients.push(r);
        }
    }
}

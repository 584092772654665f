//! Which enhanced status code (RFC 3463) a recipient gets when a report gives several: the
//! `Status:` field, the codes in the remote server's reply, the class of its reply code.
//!
//! The choice follows the one Sisimai makes (`smtp/status` Find and Prefer), since its corpus
//! is what the parser is scored against: a class-only code (`x.0.0`, `x.y.0`) gives way to a
//! specific one, codes that only say "expired" (`4.4.7`) or "system/protocol trouble"
//! (`5.3.*`, `x.5.*`) give way to the reply that explains them, and when the field and the
//! reply disagree on the class, the SMTP reply code decides which to believe.

use super::text;

/// The code a message (a diagnostic or a notice's text) names: every code in it, the
/// class-only and "expired" ones put last, folded with [`prefer`].
pub(crate) fn in_message(s: &str) -> Option<String> {
    let mut codes: Vec<String> = Vec::new();
    let mut vague: Option<String> = None;
    for c in text::status_codes(s) {
        if c.get(1..5) == Some(".0.0") || c == "4.4.7" {
            vague = Some(c);
        } else {
            codes.push(c);
        }
    }
    codes.extend(vague);
    let mut it = codes.into_iter();
    let first = it.next()?;
    Some(it.fold(first, |a, b| prefer(&a, &b, None)))
}

/// The better of two codes: `field` (the report's `Status:`) or `message` (the one found in
/// the diagnostic), with the SMTP reply code as arbiter when their classes differ.
pub(crate) fn prefer(field: &str, message: &str, reply: Option<u16>) -> String {
    if field.len() < 5 {
        return message.to_string();
    }
    if message.len() < 5 {
        return field.to_string();
    }
    let (f0, m0) = (field.as_bytes()[0], message.as_bytes()[0]);
    if f0 != m0
        && let Some(r) = reply
    {
        let r0 = b'0' + (r / 100) as u8;
        if r0 == f0 {
            return field.to_string();
        }
        if r0 == m0 {
            return message.to_string();
        }
    }
    if field == message {
        return field.to_string();
    }
    let class_only = |c: &str| c.get(1..5) == Some(".0.0");
    // ".0" anywhere after the class: `x.0.z` or `x.y.0`.
    let vague = |c: &str| c[1..].contains(".0");
    if class_only(field) {
        return if class_only(message) { field } else { message }.to_string();
    }
    if vague(field) && !vague(message) {
        return message.to_string();
    }
    if class_only(message) {
        return field.to_string();
    }
    let subject = &field[1..];
    if field == "4.4.7"
        || field == "4.7.0"
        || field.starts_with("5.3.")
        || [".5.1", ".5.2", ".5.4", ".5.5"]
            .iter()
            .any(|p| subject.starts_with(p))
    {
        return message.to_string();
    }
    if field == "5.1.1" {
        // "User unknown" stands unless the reply is more specific and not about syntax.
        return if vague(message) || message.starts_with("5.5.") {
            field
        } else {
            message
        }
        .to_string();
    }
    if field == "5.1.3" && message.starts_with("5.7.") {
        return message.to_string();
    }
    field.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_in_the_diagnostic_beats_a_vague_field() {
        assert_eq!(prefer("5.0.0", "5.7.1", Some(550)), "5.7.1");
        assert_eq!(prefer("5.1.1", "5.7.1", Some(550)), "5.7.1");
        assert_eq!(prefer("5.1.1", "5.2.2", Some(552)), "5.2.2");
        assert_eq!(prefer("5.1.1", "5.5.0", Some(550)), "5.1.1");
        assert_eq!(prefer("5.2.2", "5.1.1", Some(550)), "5.2.2");
        // Classes differ: the reply code says which one the server meant.
        assert_eq!(prefer("4.5.0", "5.5.0", Some(550)), "5.5.0");
        assert_eq!(prefer("5.0.0", "4.2.2", Some(452)), "4.2.2");
    }

    #[test]
    fn a_message_names_its_most_specific_code() {
        // Amazon SES: its own `5.1.0` in front of the remote server's `5.7.1`.
        assert_eq!(
            in_message("5.1.0 - Unknown address error 550-'5.7.1 <a@b.c>... Access denied'")
                .as_deref(),
            Some("5.7.1")
        );
        assert_eq!(
            in_message("554 5.0.0 Service unavailable").as_deref(),
            Some("5.0.0")
        );
        assert_eq!(in_message("no code here"), None);
    }
}

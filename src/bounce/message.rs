//! The decoded view of a bounce that every detector works on.
//!
//! All MIME work (RFC 2045 transfer encodings, RFC 2046 multiparts, RFC 2047 encoded words,
//! charsets) is left to `mail-parser`; this module only flattens its result into top-level
//! headers, leaf parts with their text, and the returned original message.

use std::sync::LazyLock;

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders, PartType};

/// Parses only what the detectors read as structured values (the MIME headers, to split
/// and decode parts, and Subject); every other header is skipped, not even copied. The
/// default parser also tokenises each Received, address and date header, which profiling
/// showed among the costliest steps, and even a raw copy of each value was a tenth of the
/// parse profile, for values nothing here reads: headers are read from the raw text
/// (`headers_raw`), which keeps every header, parsed or skipped.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
        .default_header_ignore()
});

/// Headers whose addresses are never the failed recipient, in the report and in the
/// returned original: the sender (that is us), a mailing list's own addresses (RFC 2369) and
/// whoever asked for a read receipt (RFC 8098 §2.1). `ndr` skips them when it looks for
/// the recipient.
pub(crate) const NOT_RECIPIENT_HEADERS: [&str; 13] = [
    "from",
    "reply-to",
    "return-path",
    "sender",
    "errors-to",
    "list-post",
    "list-owner",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-id",
    "disposition-notification-to",
    "return-receipt-to",
];

/// The other headers of a returned original that a detector reads: its Message-ID, its
/// To, Microsoft's JMRP recipient and the Content-Type of a forwarded report.
const ORIGINAL_OWN_HEADERS: [&str; 4] = [
    "message-id",
    "to",
    "content-type",
    "x-hmxmroriginalrecipient",
];

/// The report's own headers that a detector reads besides the [`NOT_RECIPIENT_HEADERS`]:
/// where the report was sent (VERP), Exim's failed recipients and the auto-reply marks.
const REPORT_OWN_HEADERS: [&str; 8] = [
    "to",
    "delivered-to",
    "x-original-to",
    "x-failed-recipients",
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "precedence",
];

/// Whether a report's top-level header is kept: those read above and the
/// [`NOT_RECIPIENT_HEADERS`]. Unfolding and copying every header (Received, DKIM and
/// vendor headers, most of the block) was a twentieth of the parse profile.
pub(crate) fn kept_in_report(name: &str) -> bool {
    REPORT_OWN_HEADERS
        .iter()
        .chain(&NOT_RECIPIENT_HEADERS)
        .any(|k| name.eq_ignore_ascii_case(k))
}

/// Whether a returned original's header is kept: those read above and the
/// [`NOT_RECIPIENT_HEADERS`]. The rest (Received, DKIM and vendor headers, often most of
/// the block) is not unfolded or copied.
pub(crate) fn kept_in_original(name: &str) -> bool {
    ORIGINAL_OWN_HEADERS
        .iter()
        .chain(&NOT_RECIPIENT_HEADERS)
        .any(|k| name.eq_ignore_ascii_case(k))
}

use super::text;

/// One leaf MIME part.
#[derive(Debug, Default)]
pub(crate) struct Part {
    /// Lower-case `type/subtype`, `text/plain` when the part declares none (RFC 2045 §5.2).
    pub ctype: String,
    /// Decoded text of the part (binary parts are read as lossy UTF-8). For a returned
    /// message (`message/rfc822`) only when it is itself a delivery report (a forwarded
    /// bounce, which `dsn` reads again); otherwise empty, as nothing reads an original's body.
    pub text: String,
    /// Headers of a returned message (`message/rfc822`, `text/rfc822-headers`).
    pub original: Option<Vec<(String, String)>>,
}

/// A parsed message, reduced to what bounce detection needs.
#[derive(Debug, Default)]
pub(crate) struct Mail {
    /// Top-level headers that are read ([`kept_in_report`]): lower-case name, unfolded raw
    /// value.
    pub headers: Vec<(String, String)>,
    /// Decoded Subject.
    pub subject: String,
    /// The `report-type` parameter of a `multipart/report` (RFC 6522 §3).
    pub report_type: Option<String>,
    pub parts: Vec<Part>,
    /// `body_text`, once built.
    body: std::sync::OnceLock<String>,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        match PARSER.parse(raw) {
            Some(msg) if !msg.parts.is_empty() => from_message(&msg),
            _ => Mail {
                parts: vec![Part {
                    ctype: "text/plain".into(),
                    text: String::from_utf8_lossy(raw).into_owned(),
                    original: None,
                }],
                ..Default::default()
            },
        }
    }

    /// First value of a top-level header (name in lower case, one [`kept_in_report`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(kept_in_report(name), "{name} is not kept by kept_in_report");
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a top-level header (one [`kept_in_report`]).
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        debug_assert!(kept_in_report(name), "{name} is not kept by kept_in_report");
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The address in the From header, lower case.
    pub fn sender_address(&self) -> String {
        self.header("from")
            .and_then(|v| text::addresses(v).into_iter().next())
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// Text of all readable parts, in order, excluding returned originals. Several
    /// detectors read it; it is built once, on first use.
    pub fn body_text(&self) -> &str {
        self.body.get_or_init(|| self.build_body_text())
    }

    fn build_body_text(&self) -> String {
        let mut out = String::new();
        for p in self.parts.iter().filter(|p| p.original.is_none()) {
            // A leaf `multipart/*` is one whose boundary was lost (a parameter on an
            // unindented line): its raw text is all there is to read.
            if p.ctype.starts_with("text/")
                || p.ctype.is_empty()
                || p.ctype == "message/delivery-status"
                || p.ctype.starts_with("multipart/")
            {
                out.push_str(&p.text);
                out.push('\n');
            }
        }
        out
    }

    /// Headers of the returned original message, if one is attached as a MIME part.
    pub fn original_headers(&self) -> Option<&[(String, String)]> {
        self.parts.iter().find_map(|p| p.original.as_deref())
    }

    /// Message-ID of the returned original: from an attached message, else from a
    /// `Message-ID:` line quoted in the body.
    pub fn original_message_id(&self) -> Option<String> {
        if let Some(h) = self.original_headers()
            && let Some((_, v)) = h.iter().find(|(n, _)| n == "message-id")
            && let Some(id) = text::message_id(v)
        {
            return Some(id);
        }
        text::quoted_message_id(self.body_text())
    }

    /// Addresses the report itself was sent to (To, Delivered-To, X-Original-To).
    pub fn envelope_to(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in ["to", "delivered-to", "x-original-to"] {
            for v in self.header_all(name) {
                for a in text::addresses(v) {
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                        out.push(a);
                    }
                }
            }
        }
        out
    }
}

/// The report's headers that are read ([`kept_in_report`]).
fn headers_of(msg: &Message<'_>) -> Vec<(String, String)> {
    msg.headers_raw()
        .filter(|(n, _)| kept_in_report(n))
        .map(|(n, v)| (n.to_ascii_lowercase(), text::unfold(v)))
        .collect()
}

/// The headers of a returned original that are read ([`kept_in_original`]).
fn original_headers_of(msg: &Message<'_>) -> Vec<(String, String)> {
    msg.headers_raw()
        .filter(|(n, _)| kept_in_original(n))
        .map(|(n, v)| (n.to_ascii_lowercase(), text::unfold(v)))
        .collect()
}

/// A returned message's Content-Type says it is a delivery report.
fn is_report(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == "content-type" && v.to_ascii_lowercase().contains("delivery-status"))
}

/// Lower-case `type/subtype` of a part, `text/plain` when it declares none.
fn ctype_of(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let mut full = String::with_capacity(32);
            full.push_str(ct.ctype());
            if let Some(st) = ct.subtype() {
                full.push('/');
                full.push_str(st);
            }
            full.make_ascii_lowercase();
            full
        }
        None => "text/plain".into(),
    }
}

/// The part's Content-Type is `want` (lower case), without building the name.
fn ctype_is(part: &mail_parser::MessagePart<'_>, want: &str) -> bool {
    let Some(ct) = part.content_type() else {
        return want == "text/plain";
    };
    let (t, st) = want.split_once('/').unwrap_or((want, ""));
    ct.ctype().eq_ignore_ascii_case(t) && ct.subtype().unwrap_or_default().eq_ignore_ascii_case(st)
}

/// The `report-type` parameter of a `multipart/report` (RFC 6522 §3), lower case.
fn report_type_of(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    part.content_type()?
        .attribute("report-type")
        .map(|s| s.to_ascii_lowercase())
}

fn from_message(msg: &Message<'_>) -> Mail {
    let report_type = msg.parts.first().and_then(report_type_of);
    let shadowed = shadowed_html(msg);
    let mut parts = Vec::new();
    for (i, part) in msg.parts.iter().enumerate() {
        if shadowed.contains(&i) {
            continue;
        }
        let pt = ctype_of(part);
        let p = match &part.body {
            PartType::Multipart(_) => continue,
            PartType::Message(inner) => {
                let headers = original_headers_of(inner);
                let text = if is_report(&headers) {
                    String::from_utf8_lossy(inner.raw_message()).into_owned()
                } else {
                    String::new()
                };
                Part {
                    ctype: pt,
                    text,
                    original: Some(headers),
                }
            }
            PartType::Text(t) => text_part(pt, t),
            PartType::Html(h) => Part {
                ctype: pt,
                text: mail_parser::decoders::html::html_to_text(h),
                original: None,
            },
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                text_part(pt, &String::from_utf8_lossy(b))
            }
        };
        parts.push(p);
    }
    Mail {
        headers: headers_of(msg),
        subject: msg.subject().unwrap_or_default().to_string(),
        report_type,
        parts,
        ..Default::default()
    }
}

/// HTML parts that a `text/plain` part of the same `multipart/alternative` already says in
/// plain text (RFC 2046 §5.1.4): turning them into text too was a tenth of the parse
/// profile, for the same words read twice.
fn shadowed_html(msg: &Message<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    for part in &msg.parts {
        let PartType::Multipart(children) = &part.body else {
            continue;
        };
        if !ctype_is(part, "multipart/alternative") {
            continue;
        }
        let child = |id: &u32| msg.parts.get(*id as usize).map(|p| (*id as usize, p));
        let has_plain = children.iter().filter_map(child).any(|(_, p)| {
            matches!(&p.body, PartType::Text(t) if !t.trim().is_empty())
                && ctype_is(p, "text/plain")
        });
        if has_plain {
            out.extend(
                children
                    .iter()
                    .filter_map(child)
                    .filter(|(_, p)| matches!(p.body, PartType::Html(_)))
                    .map(|(i, _)| i),
            );
        }
    }
    out
}

/// A text part; `text/rfc822-headers` (RFC 6522 §4) is also read as the original's headers.
fn text_part(ctype: String, t: &str) -> Part {
    let original = if ctype.ends_with("rfc822-headers") || ctype == "message/rfc822" {
        PARSER
            .parse_headers(t.as_bytes())
            .map(|m| original_headers_of(&m))
    } else {
        None
    };
    Part {
        ctype,
        text: t.to_string(),
        original,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_report_and_finds_original_id() {
        let raw = b"From: MAILER-DAEMON@example.org\r\nTo: bounce+1-ab@b.example\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc@def>\r\nSubject: x\r\n\r\n\
--B--\r\n";
        let m = Mail::parse(raw);
        assert_eq!(m.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(m.original_message_id().as_deref(), Some("abc@def"));
        assert_eq!(m.envelope_to(), vec!["bounce+1-ab@b.example".to_string()]);
        assert!(m.parts.iter().any(|p| p.ctype == "message/delivery-status"));
    }
}

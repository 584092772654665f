//! A file that holds several messages in mbox form (each opened by a `From ` line, RFC 4155):
//! where one ends and the next begins.
//!
//! An mbox `From ` line is ambiguous: a bounce often quotes the returned original with its
//! own `From ` line, and an unescaped body line may start with `From ` too. So a message
//! ends at a `From ` line only where MIME says its content is over: after the closing
//! delimiter of its top-level multipart (RFC 2046 §5.1.1: what follows, the epilogue, is
//! to be ignored), where a `From ` line can only open the next message. A message that is
//! not multipart is never split: its body may quote anything.
//!
//! [`super::parse`] reads one message; this is for callers handed a mailbox file.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// An mbox separator: `From `, a sender, an asctime date (`Thu Jul  2 12:05:05 2020`).
static FROM_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^From \S+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{1,2}:\d{2}",
    )
    .expect("constant regex")
});

/// The top-level `boundary` parameter of a Content-Type header.
static BOUNDARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)^content-type:\s*multipart/[^\n]*(?:\n[ \t][^\n]*)*?\bboundary\s*=\s*(?:"([^"\r\n]+)"|([^\s;"]+))"#)
        .expect("constant regex")
});

/// The messages of `raw`, in order; `raw` itself when it holds one.
pub fn messages(raw: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(end) = end_of_first(rest) {
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out.push(rest);
    out
}

/// Where the first message of `raw` ends when another follows it: the start of a `From `
/// line after its top-level multipart's closing delimiter.
fn end_of_first(raw: &[u8]) -> Option<usize> {
    let boundary = top_boundary(raw)?;
    let mut close = Vec::with_capacity(boundary.len() + 5);
    close.extend_from_slice(b"\n--");
    close.extend_from_slice(boundary);
    close.extend_from_slice(b"--");
    let closed = find(raw, &close)? + close.len();
    let from = FROM_LINE.find_at(raw, closed)?.start();
    (from > 0).then_some(from)
}

/// The boundary of the top-level Content-Type, read from the first header block.
fn top_boundary(raw: &[u8]) -> Option<&[u8]> {
    let head_end = find(raw, b"\n\n")
        .or_else(|| find(raw, b"\r\n\r\n"))
        .unwrap_or(raw.len());
    let c = BOUNDARY.captures(head_from_content_type(&raw[..head_end])?)?;
    c.get(1).or_else(|| c.get(2)).map(|m| m.as_bytes())
}

/// `head` from its first line that opens a Content-Type field.
fn head_from_content_type(head: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    for line in head.split(|&b| b == b'\n') {
        if line.len() > 13 && line[..13].eq_ignore_ascii_case(b"content-type:") {
            return Some(&head[at..]);
        }
        at += line.len() + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::messages;

    const REPORT: &str = "From MAILER-DAEMON  Thu Apr 29 23:34:45 2015\nFrom: MAILER-DAEMON@a.example\nContent-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"B/a.example\"\n\n--B/a.example\nContent-Type: text/plain\n\nfailed\n--B/a.example--\n";

    #[test]
    fn a_from_line_after_the_closing_delimiter_opens_the_next_message() {
        let two = format!("{REPORT}\n{REPORT}");
        let got = messages(two.as_bytes());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], format!("{REPORT}\n").as_bytes());
        assert_eq!(got[1], REPORT.as_bytes());
        // Right after the delimiter, without a blank line, as Postfix's copies come.
        let two = format!("{REPORT}{REPORT}");
        assert_eq!(messages(two.as_bytes()).len(), 2);
    }

    #[test]
    fn a_quoted_from_line_inside_a_message_does_not_split_it() {
        // Not multipart: the body quotes the original with its `From ` line.
        let plain = "From: postmaster@a.example\nSubject: bounce\n\nbounced E-Mail:\n\nFrom bounce@b.example  Sat Oct  4 08:00:07 2025\nTo: x@a.example\n\nhi\n";
        assert_eq!(messages(plain.as_bytes()), vec![plain.as_bytes()]);
        // Multipart, the `From ` line inside a part (before the closing delimiter).
        let inside = "Content-Type: multipart/mixed; boundary=X\n\n--X\n\nFrom a@b.example  Sat Oct  4 08:00:07 2025\n--X--\n";
        assert_eq!(messages(inside.as_bytes()), vec![inside.as_bytes()]);
        assert_eq!(messages(b""), vec![&b""[..]]);
    }
}

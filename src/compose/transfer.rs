//! The Content-Transfer-Encoding of a text part (RFC 2045 §6), chosen and applied here
//! rather than by mail-builder. mail-builder's own encoders write byte by byte through
//! `io::Write` and format each escape into a fresh string: ~8% of the server's CPU per
//! message in the delivery benchmark. Here a vectorizable pass chooses the encoding and
//! quoted-printable copies runs of plain text as slices (the `quoted_printable` crate,
//! byte by byte, measured slower than mail-builder, so it only checks this one in the
//! tests); base64 comes from the `base64` crate. mail-builder then writes each part as
//! given, since it carries its own Content-Transfer-Encoding.
//!
//! The choice is the usual one: `7bit` for short-lined ASCII, else whichever of
//! quoted-printable and base64 comes out shorter (Japanese text takes base64).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The longest line sent unencoded (RFC 5322 §2.1.1 asks for 78 at most).
const MAX_7BIT_LINE: usize = 78;
/// Characters of an encoded quoted-printable line before its soft break "=" (76 in all).
const QP_LINE: usize = 75;
/// Input bytes per base64 line: 57 bytes make 76 characters (RFC 2045 §6.8).
const BASE64_LINE_INPUT: usize = 57;

/// A text part's body ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The Content-Transfer-Encoding value.
    pub encoding: &'static str,
    /// The encoded body, CRLF line endings, lines within 78 characters.
    pub body: String,
}

/// Encodes `text` (any line endings; they become CRLF) for a MIME text part.
pub fn encode_text(text: &str) -> Encoded {
    let text = crlf_line_endings(text);
    let bytes = text.as_bytes();
    let special = count_escapes(bytes);
    let line_ends = memchr::memchr_iter(b'\n', bytes);
    let mut longest_line = 0;
    let mut line_start = 0;
    let mut lines = 0;
    for end in line_ends {
        longest_line = longest_line.max(end - 1 - line_start);
        line_start = end + 1;
        lines += 1;
    }
    longest_line = longest_line.max(bytes.len() - line_start);
    // After CRLF normalization every LF follows a CR, so a CR beyond the LF count is
    // bare; `needs_escape` counts each CR.
    let bare_cr = special > lines && memchr::memchr_iter(b'\r', bytes).count() > lines;
    let escapes = special - lines; // the CRs of CRLF are not escaped
    if escapes == 0 && !bare_cr && longest_line <= MAX_7BIT_LINE {
        return Encoded {
            encoding: "7bit",
            body: text.into_owned(),
        };
    }
    let qp_len = bytes.len() + 2 * escapes + 3 * (bytes.len() / QP_LINE);
    let base64_len = bytes.len().div_ceil(3) * 4 + 2 * bytes.len().div_ceil(BASE64_LINE_INPUT);
    if qp_len <= base64_len {
        Encoded {
            encoding: "quoted-printable",
            body: quoted_printable(bytes),
        }
    } else {
        let mut body = String::with_capacity(base64_len);
        for line in bytes.chunks(BASE64_LINE_INPUT) {
            BASE64.encode_string(line, &mut body);
            body.push_str("\r\n");
        }
        Encoded {
            encoding: "base64",
            body,
        }
    }
}

/// Whether quoted-printable writes `b` as =XX wherever it stands (RFC 2045 §6.7 rules 1
/// and 2). CR is included: only the CR of a CRLF line break goes as it is. Written with
/// `|` and `&` rather than `||` and `&&`, so that loops over it vectorize.
fn needs_escape(b: u8) -> bool {
    (b == b'=') | (b >= 0x7f) | ((b < 0x20) & (b != b'\t') & (b != b'\n'))
}

/// How many bytes of `bytes` need an escape (counted 255 at a time in a u8, which
/// the compiler turns into vector code).
fn count_escapes(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(needs_escape(b) as u8)) as usize
        })
        .sum()
}

/// Where the first byte needing an escape is, looked for 32 bytes at a time.
fn first_escape(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(32);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        if chunk.iter().fold(false, |any, &b| any | needs_escape(b)) {
            return chunk
                .iter()
                .position(|&b| needs_escape(b))
                .map(|i| offset + i);
        }
        offset += 32;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|i| offset + i)
}

/// Quoted-printable (RFC 2045 §6.7) of `text`, whose line breaks are all CRLF. Runs of
/// plain characters are copied as slices; encoded lines end with a soft break before
/// they pass 76 characters, and a blank before a line break or the end is escaped.
fn quoted_printable(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len() + text.len() / 16 + 8);
    let mut column = 0;
    let mut i = 0;
    while i < text.len() {
        let stop = first_escape(&text[i..]).map_or(text.len(), |n| i + n);
        let line_ends = stop == text.len() || text[stop..].starts_with(b"\r\n");
        let plain_end = if line_ends && stop > i && matches!(text[stop - 1], b' ' | b'\t') {
            stop - 1
        } else {
            stop
        };
        while i < plain_end {
            if column == QP_LINE {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            let n = (plain_end - i).min(QP_LINE - column);
            out.extend_from_slice(&text[i..i + n]);
            column += n;
            i += n;
        }
        if i < stop {
            escape_byte(&mut out, &mut column, text[i]); // the blank before the line end
            i = stop;
        }
        if i == text.len() {
            break;
        }
        if text[i..].starts_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += 2;
        } else {
            escape_byte(&mut out, &mut column, text[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("quoted-printable output is ASCII")
}

/// Writes `b` as =XX, after a soft line break when it would not fit on the line.
fn escape_byte(out: &mut Vec<u8>, column: &mut usize, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if *column + 3 > QP_LINE {
        out.extend_from_slice(b"=\r\n");
        *column = 0;
    }
    out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
    *column += 3;
}

/// `text` with every line break as CRLF (templates are usually saved with LF).
fn crlf_line_endings(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let needs = memchr::memchr_iter(b'\n', bytes).any(|i| i == 0 || bytes[i - 1] != b'\r');
    if !needs {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        let line = &rest[..i];
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push_str("\r\n");
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(e: &Encoded) -> Vec<u8> {
        match e.encoding {
            "7bit" => e.body.as_bytes().to_vec(),
            "quoted-printable" => {
                quoted_printable::decode(&e.body, quoted_printable::ParseMode::Strict).unwrap()
            }
            "base64" => BASE64
                .decode(e.body.replace("\r\n", ""))
                .expect("valid base64"),
            other => panic!("unknown encoding {other}"),
        }
    }

    fn assert_round_trip(text: &str) -> &'static str {
        let e = encode_text(text);
        let expected = crlf_line_endings(text);
        assert_eq!(
            String::from_utf8(decode(&e)).unwrap(),
            expected,
            "{} of {text:?}",
            e.encoding
        );
        let limit = if e.encoding == "7bit" {
            MAX_7BIT_LINE
        } else {
            76
        };
        for line in e.body.split("\r\n") {
            assert!(line.len() <= limit, "{line:?} in {}", e.encoding);
            if e.encoding != "7bit" {
                assert!(!line.ends_with([' ', '\t']), "blank at the end of {line:?}");
            }
            assert!(
                !line.contains(['\r', '\n']),
                "bare line break in {:?}",
                e.body
            );
        }
        e.encoding
    }

    #[test]
    fn short_ascii_lines_go_as_they_are_with_crlf() {
        assert_eq!(assert_round_trip("Hello,\n\nsee you.\n"), "7bit");
        assert_eq!(encode_text("a\nb").body, "a\r\nb");
        assert_eq!(encode_text("a\r\nb").body, "a\r\nb");
    }

    #[test]
    fn long_lines_and_equals_signs_take_quoted_printable() {
        let long = "Your appointment is confirmed. ".repeat(40);
        assert_eq!(assert_round_trip(&long), "quoted-printable");
        assert_eq!(assert_round_trip("a=b\n"), "quoted-printable");
        assert_eq!(assert_round_trip("café au lait\n"), "quoted-printable");
    }

    #[test]
    fn japanese_text_takes_base64() {
        assert_eq!(
            assert_round_trip("受付時間が変わりました。\nご確認ください。\n"),
            "base64"
        );
    }

    #[test]
    fn any_text_decodes_to_itself_with_crlf_line_ends() {
        let pieces = [
            "a",
            " ",
            "\t",
            "=",
            "\n",
            "\r\n",
            "\r",
            ".",
            "日本語",
            "é",
            "x".repeat(90).leak(),
            "  \n",
            "=\r\n",
            "\u{7f}",
            "\u{1}",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            seed = seed.wrapping_add(1);
            assert_round_trip(&text);
        }
    }
}

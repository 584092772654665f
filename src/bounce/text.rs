//! Small text helpers shared by the detectors: unfolding, addresses, codes.

use std::sync::LazyLock;

use regex::Regex;

/// Compile a constant pattern. Every pattern is a literal in this file, exercised by the unit
/// tests, so this cannot fail on input data.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant regex")
}

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"#,
    )
});
static STATUS: LazyLock<Regex> = LazyLock::new(|| re(r"[245]\.\d{1,3}\.\d{1,3}"));
static REPLY: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|[^\w.#-])[245][0-5]\d(?:[ \-]|$)"));
static MESSAGE_ID_WORD: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["message-i"])
        .expect("constant pattern")
});
static QUOTED_ID: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?mi)^\s*Message-I[Dd]\s*:\s*<?([^\s<>]+@[^\s<>]+?)>?\s*$"));

/// RFC 5322 §2.2.3 unfolding: CRLF followed by white space becomes that white space.
pub(crate) fn unfold(v: &str) -> String {
    if !v.contains('\n') {
        return v.trim().to_string();
    }
    let mut out = String::with_capacity(v.len());
    for line in v.split('\n') {
        let line = line.trim_end_matches('\r');
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line.trim());
    }
    out.trim().to_string()
}

/// Collapse runs of white space into single spaces.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every e-mail address in `s`, in order, trimmed of dots and of what MTAs write around an
/// address that the address pattern would otherwise swallow: a leading quote or backtick
/// (`'user@…'`) and a `smtp=` / `rfc822=` / `mailto=` tag (`smtp=user@…`). `=` and `'` are
/// legal in a local part (RFC 5322 §3.2.3) but no real mailbox starts with them this way.
pub(crate) fn addresses(s: &str) -> Vec<String> {
    ADDRESS
        .find_iter(s)
        .map(|m| clean_address(m.as_str()))
        .filter(|a| a.contains('@') && !a.starts_with('@'))
        .collect()
}

fn clean_address(a: &str) -> String {
    let mut a = a.trim_matches('.');
    loop {
        let before = a;
        a = a.trim_start_matches(['\'', '`', '=', '.']);
        for tag in ["smtp=", "rfc822=", "mailto=", "smtp;", "rfc822;"] {
            if a.len() > tag.len() && a[..tag.len()].eq_ignore_ascii_case(tag) {
                a = &a[tag.len()..];
            }
        }
        if a == before {
            break;
        }
    }
    a.to_string()
}

/// The first address in `s`.
pub(crate) fn first_address(s: &str) -> Option<String> {
    addresses(s).into_iter().next()
}

/// A Message-ID value without angle brackets (RFC 5322 §3.6.4).
pub(crate) fn message_id(v: &str) -> Option<String> {
    let v = v.trim();
    let inner = match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if b > a => &v[a + 1..b],
        _ => v,
    };
    let inner = inner.trim();
    (!inner.is_empty() && !inner.contains(char::is_whitespace)).then(|| inner.to_string())
}

/// A `Message-ID:` line quoted in a body.
pub(crate) fn quoted_message_id(body: &str) -> Option<String> {
    // Most bodies have none: a literal search says so faster than the line regex, which
    // has no literal to start from (`^\s*`) and showed in the parse profile.
    // The regex then starts at the line of the first `message-i`: a match needs the word,
    // after only white space on its line, so none starts earlier.
    let first = MESSAGE_ID_WORD.find(body)?.start();
    let line = body[..first].rfind('\n').map_or(0, |i| i + 1);
    QUOTED_ID.captures_at(body, line).map(|c| c[1].to_string())
}

/// The first enhanced status code (RFC 3463 §2) that is not part of a longer dotted number
/// such as an IP address or a version.
pub(crate) fn status_code(s: &str) -> Option<String> {
    status_codes(s).next()
}

/// Every enhanced status code in `s`, in order, by the rules of [`status_code`].
pub(crate) fn status_codes(s: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = s.as_bytes();
    STATUS.find_iter(s).filter_map(move |m| {
        let before = m.start().checked_sub(1).and_then(|i| bytes.get(i));
        if matches!(before, Some(b) if b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-') {
            return None;
        }
        let after = bytes.get(m.end());
        let after2 = bytes.get(m.end() + 1);
        if matches!(after, Some(b) if b.is_ascii_alphanumeric() || *b == b'-')
            || (after == Some(&b'.') && matches!(after2, Some(b) if b.is_ascii_digit()))
        {
            return None;
        }
        let code = m.as_str();
        let mut it = code.split('.');
        let (subject, detail) = (it.nth(1), it.next());
        // Subjects go up to 7 (RFC 3463 §3.1); vendor details go beyond 9 (Microsoft 5.7.509).
        (subject
            .and_then(|x| x.parse::<u16>().ok())
            .is_some_and(|x| x <= 9)
            && detail.is_some())
        .then(|| code.to_string())
    })
}

/// The first SMTP reply code (RFC 5321 §4.2) in `s`, of any class: for a report of a
/// success (`250 2.1.5 Ok` of a delivered recipient). A failure's reply is
/// [`failure_reply_code`].
pub(crate) fn reply_code(s: &str) -> Option<u16> {
    reply_codes(s).next()
}

/// The first reply code of a failure (class 4 or 5) in `s`. The pattern also takes any
/// number of the right shape after a space (`Size (in bytes): 222`, `Number of lines: 250`),
/// and a transcript quotes the `2xx` replies to the steps that went well before the one
/// that failed: in the text of a failure, neither is its reply.
pub(crate) fn failure_reply_code(s: &str) -> Option<u16> {
    reply_codes(s).find(|&c| c >= 400)
}

/// Found with `find_iter`, not `captures_iter`: the same matches, without the slower
/// engine that reports groups (it showed in the parse profile). The code is the first digit
/// of the match on: the character before it, when there is one, is no word character.
fn reply_codes(s: &str) -> impl Iterator<Item = u16> + '_ {
    REPLY.find_iter(s).filter_map(|m| {
        let m = m.as_str();
        let at = m.bytes().position(|b| b.is_ascii_digit())?;
        m.get(at..at + 3)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_skip_ip_addresses() {
        assert_eq!(status_code("host 10.5.2.1 said"), None);
        assert_eq!(status_code("550 5.1.1 <a@b.c>"), Some("5.1.1".into()));
        assert_eq!(status_code("(#5.5.0)"), Some("5.5.0".into()));
        assert_eq!(
            status_code("550 5.7.509 Access denied"),
            Some("5.7.509".into())
        );
        assert_eq!(status_code("version 2.4.5.1"), None);
        assert_eq!(status_code("ends 4.4.7."), Some("4.4.7".into()));
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code("host x said: 550 Unknown user"), Some(550));
        assert_eq!(reply_code("550-5.1.1 The email"), Some(550));
        assert_eq!(reply_code("id 1550 x"), None);
        assert_eq!(reply_code("no code"), None);
    }

    #[test]
    fn a_failure_reply_is_of_class_4_or_5() {
        assert_eq!(reply_code("250 2.1.5 Ok"), Some(250));
        assert_eq!(failure_reply_code("250 2.1.5 Ok"), None);
        assert_eq!(failure_reply_code("Size (in bytes): 222"), None);
        assert_eq!(
            failure_reply_code("<<< 250 ok <<< 550 5.1.1 unknown user"),
            Some(550)
        );
    }

    #[test]
    fn addresses_and_ids() {
        assert_eq!(
            addresses("<kijitora@example.jp>: and x.y@z.example."),
            vec!["kijitora@example.jp", "x.y@z.example"]
        );
        assert_eq!(
            addresses("smtp=user@example.jp; 'neko@example.jp' `x@y.example`"),
            vec!["user@example.jp", "neko@example.jp", "x@y.example"]
        );
        assert_eq!(
            addresses("bounce+1-ab=c.example@b.example"),
            vec!["bounce+1-ab=c.example@b.example"]
        );
        assert_eq!(message_id(" <a@b> ").as_deref(), Some("a@b"));
        assert_eq!(
            quoted_message_id("x\nMessage-Id: <q@r.s>\n").as_deref(),
            Some("q@r.s")
        );
        assert_eq!(unfold("a\r\n b"), "a b");
    }
}

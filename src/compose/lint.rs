//! The template lint: reads a fully built message the way a receiver's filter would and
//! names what would make it look like spam or phishing.
//!
//! It works on the MIME bytes `Composer::compose` produced (parsed back with mail-parser),
//! not on the template sources, so it sees exactly what a recipient gets: headers added by
//! the builder, the From of the configuration, and the HTML after rendering. Each rule
//! mirrors a test that SpamAssassin and the big mailbox providers apply (named beside the
//! rule); the HTML is read with a few regular expressions, which is enough for mail
//! templates and keeps an HTML parser out of the build.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex::Regex;

/// Hosts of URL shorteners: a shortened link hides where it leads, so filters distrust
/// it (SpamAssassin `SHORT_SHORTNER`, `URI_PHISH`). A subdomain of one counts too.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "t.co",
    "tinyurl.com",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "t.ly",
    "tiny.cc",
    "rb.gy",
    "bl.ink",
    "lnkd.in",
    "s.id",
    "soo.gd",
    "x.gd",
    "qr.ae",
    "adf.ly",
    "shorte.st",
    "bc.vc",
    "po.st",
    "mcaf.ee",
    "su.pr",
    "tr.im",
    "cli.gs",
    "tiny.one",
    "shorturl.com",
    "dlvr.it",
    "ift.tt",
    "amzn.to",
    "youtu.be",
    "wp.me",
    "fb.me",
    "db.tt",
    "1url.com",
    "u.to",
    "clck.ru",
    "urlz.fr",
    "gg.gg",
];

/// Below this many bytes of visible text, HTML that shows an image is "image only".
/// SpamAssassin's smallest bucket (`HTML_IMAGE_ONLY_04`) is 0–400 bytes of words.
const IMAGE_ONLY_TEXT_BYTES: usize = 400;

/// A subject needs at least this many cased letters before "all capitals" means shouting
/// rather than an acronym.
const ALL_CAPS_MIN_LETTERS: usize = 5;

/// The rules, each with the name a finding prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// There must be a non-empty text/plain part (SpamAssassin `MIME_HTML_ONLY`).
    TextPart,
    /// A Message-ID whose right side is a fully qualified domain (`MSGID_NOFQDN1`).
    MessageId,
    /// A Date header that parses (`MISSING_DATE`, `INVALID_DATE`).
    Date,
    /// Link text that looks like a URL or host must show the host its href goes to.
    LinkTextHost,
    /// Link text that shows `https://` must not lead to plain `http://`
    /// (`HTTPS_HTTP_MISMATCH`).
    LinkTextScheme,
    /// No URL whose host is an IP address (`NORMAL_HTTP_TO_IP`).
    IpUrl,
    /// No URL shorteners ([`SHORTENERS`]).
    Shortener,
    /// HTML with images must also carry text (`HTML_IMAGE_ONLY_*`).
    ImageOnly,
    /// The subject must not be all capitals (`SUBJ_ALL_CAPS`).
    SubjectAllCaps,
    /// The From display name must not be an address (`T_PDS_FROM_2_EMAILS`).
    FromDisplayName,
}

impl Rule {
    /// The rule's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TextPart => "text-part",
            Rule::MessageId => "message-id",
            Rule::Date => "date",
            Rule::LinkTextHost => "link-text-host",
            Rule::LinkTextScheme => "link-text-scheme",
            Rule::IpUrl => "ip-url",
            Rule::Shortener => "shortener",
            Rule::ImageOnly => "image-only-html",
            Rule::SubjectAllCaps => "subject-all-caps",
            Rule::FromDisplayName => "from-display-name",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the lint found in one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub template: String,
    pub locale: String,
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template {}.{}: rule {}: {}",
            self.template, self.locale, self.rule, self.detail
        )
    }
}

static ANCHOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<a\b([^>]*)>(.*?)</a\s*>").expect("valid regex"));
static IMG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<img\b([^>]*)>").expect("valid regex"));
static URL_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)\b(?:href|src|background|action)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#)
        .expect("valid regex")
});
static HREF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#).expect("valid regex")
});
static BARE_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:https?|ftp)://[^\s<>"'()\[\]]*(?:\[[0-9a-f:.]+\][^\s<>"'()]*)?"#)
        .expect("valid regex")
});
static INVISIBLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?is)<!--.*?-->|<head\b.*?</head\s*>|<style\b.*?</style\s*>|<script\b.*?</script\s*>",
    )
    .expect("valid regex")
});
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("valid regex"));
static HOST_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:[a-z][a-z0-9+.-]*://\S+|(?:[a-z0-9-]+\.)+[a-z]{2,}\.?(?:[:/?#]\S*)?)$")
        .expect("valid regex")
});
static ADDRESS_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+").expect("valid regex"));

/// Lints one built message of template `template` in `locale`.
pub fn lint_message(template: &str, locale: &str, raw: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut find = |rule: Rule, detail: String| {
        out.push(Finding {
            template: template.to_string(),
            locale: locale.to_string(),
            rule,
            detail,
        })
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        find(Rule::TextPart, "the message cannot be parsed".into());
        return out;
    };

    let mut texts = Vec::new();
    let mut htmls = Vec::new();
    for part in &message.parts {
        match &part.body {
            PartType::Html(h) => htmls.push(h.as_ref()),
            PartType::Text(t)
                if part.content_type().is_none_or(|c| {
                    c.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
                }) =>
            {
                texts.push(t.as_ref())
            }
            _ => {}
        }
    }
    if !texts.iter().any(|t| !t.trim().is_empty()) {
        find(
            Rule::TextPart,
            "there is no text/plain part with text in it; add LOCALE.text.hbs".into(),
        );
    }

    match message.message_id() {
        None => find(Rule::MessageId, "the message has no Message-ID".into()),
        Some(id) => {
            if let Some(problem) = message_id_problem(id) {
                find(Rule::MessageId, format!("Message-ID <{id}> {problem}"));
            }
        }
    }
    if message.date().is_none() {
        find(
            Rule::Date,
            "the message has no Date header that parses".into(),
        );
    }

    if let Some(subject) = message.subject()
        && is_all_caps(subject)
    {
        find(
            Rule::SubjectAllCaps,
            format!("subject {subject:?} is in capitals only"),
        );
    }

    if let Some(name) = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.name())
        && ADDRESS_LIKE.is_match(name)
    {
        find(
            Rule::FromDisplayName,
            format!(
                "the From display name {name:?} looks like an address; use the organisation's name (sender.from)"
            ),
        );
    }

    // Every URL the recipient could follow, from both parts.
    let mut urls: Vec<String> = Vec::new();
    for text in &texts {
        urls.extend(BARE_URL.find_iter(text).map(|m| m.as_str().to_string()));
    }
    for html in &htmls {
        for c in URL_ATTR.captures_iter(html) {
            urls.push(decode_entities(first_group(&c)));
        }
        let visible = visible_text(html);
        urls.extend(BARE_URL.find_iter(&visible).map(|m| m.as_str().to_string()));

        for c in ANCHOR.captures_iter(html) {
            let Some(href) = HREF.captures(&c[1]) else {
                continue;
            };
            let href = decode_entities(first_group(&href));
            let shown = visible_text(&c[2]);
            let shown = shown.trim();
            if shown.is_empty() || shown.contains(char::is_whitespace) || !HOST_LIKE.is_match(shown)
            {
                continue;
            }
            let (Some(shown_host), Some(href_host)) = (host_of(shown), host_of(&href)) else {
                continue;
            };
            if strip_www(&shown_host) != strip_www(&href_host) {
                find(
                    Rule::LinkTextHost,
                    format!("link text {shown:?} points to {href_host}"),
                );
            } else if starts_with_ci(shown, "https://") && starts_with_ci(&href, "http://") {
                find(
                    Rule::LinkTextScheme,
                    format!("link text {shown:?} points to the unencrypted {href}"),
                );
            }
        }

        if IMG.is_match(html) {
            let words = visible.split_whitespace().collect::<Vec<_>>().join(" ");
            if words.len() < IMAGE_ONLY_TEXT_BYTES {
                find(
                    Rule::ImageOnly,
                    format!(
                        "the HTML shows images but only {} bytes of text (at least {IMAGE_ONLY_TEXT_BYTES} needed)",
                        words.len()
                    ),
                );
            }
        }
    }

    urls.sort();
    urls.dedup();
    for url in &urls {
        let Some(host) = url_host(url) else { continue };
        if is_ip_host(&host) {
            find(
                Rule::IpUrl,
                format!("URL {url} has an IP address for a host; use a domain name"),
            );
        }
        if let Some(s) = SHORTENERS
            .iter()
            .find(|s| host == **s || host.ends_with(&format!(".{s}")))
        {
            find(
                Rule::Shortener,
                format!("URL {url} goes through the shortener {s}; link to the real address"),
            );
        }
    }
    out
}

fn first_group<'h>(c: &regex::Captures<'h>) -> &'h str {
    (1..c.len())
        .find_map(|i| c.get(i))
        .map_or("", |m| m.as_str())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// Why a Message-ID (without brackets) is not `local@fully.qualified`, if it is not.
fn message_id_problem(id: &str) -> Option<&'static str> {
    let Some((local, domain)) = id.rsplit_once('@') else {
        return Some("has no @domain part");
    };
    if local.is_empty() || id.contains(char::is_whitespace) {
        return Some("is malformed");
    }
    let domain = domain.trim_end_matches('.');
    if domain.starts_with('[') || domain.parse::<Ipv4Addr>().is_ok() {
        return Some("names an IP address, not a fully qualified domain (set sender.hostname)");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || !l.chars().all(|c| c.is_alphanumeric() || c == '-'))
    {
        return Some("does not end in a fully qualified domain (set sender.hostname)");
    }
    None
}

/// True when the subject shouts: enough cased letters and not one in lower case.
fn is_all_caps(subject: &str) -> bool {
    let cased = subject
        .chars()
        .filter(|c| c.is_uppercase() || c.is_lowercase());
    let (mut upper, mut lower) = (0, 0);
    for c in cased {
        if c.is_uppercase() {
            upper += 1;
        } else {
            lower += 1;
        }
    }
    lower == 0 && upper >= ALL_CAPS_MIN_LETTERS
}

/// The text a reader sees: no head, style, script or comments; tags removed; entities
/// decoded.
fn visible_text(html: &str) -> String {
    let without = INVISIBLE.replace_all(html, " ");
    decode_entities(&TAG.replace_all(&without, " "))
}

/// Decodes the HTML entities a template produces: handlebars' escapes, `&nbsp;` and
/// numeric references.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The host of an absolute URL (`scheme://[user@]host[:port]/…`), lower case.
fn url_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    authority_host(rest)
}

/// The host shown by link text: a URL, or a bare host with an optional path.
fn host_of(shown: &str) -> Option<String> {
    if shown.contains("://") {
        url_host(shown)
    } else {
        authority_host(shown)
    }
}

fn authority_host(rest: &str) -> Option<String> {
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    // Userinfo hides the real host: "https://bank.example@evil.example/".
    let hostport = authority.rsplit('@').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        format!("[{}]", v6.split(']').next()?)
    } else {
        hostport.split(':').next()?.to_string()
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// True for an IPv4 or IPv6 literal, including the all-digit and hex forms browsers
/// accept (`http://3232235777/`).
fn is_ip_host(host: &str) -> bool {
    if host.starts_with('[') {
        return true;
    }
    let numeric = |p: &str| {
        !p.is_empty()
            && (p.chars().all(|c| c.is_ascii_digit())
                || p.strip_prefix("0x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())))
    };
    host.parse::<Ipv4Addr>().is_ok()
        || (host.split('.').count() <= 4 && host.split('.').all(numeric))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, from: &str, text: Option<&str>, html: &str) -> Vec<u8> {
        let mut m = format!(
            "From: {from}\r\nTo: a@example.jp\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 12:00:00 +0900\r\n\
             Message-ID: <x1@mail.example.jp>\r\nMIME-Version: 1.0\r\n"
        );
        match text {
            Some(t) => m.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{t}\r\n\
                 --B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--B--\r\n"
            )),
            None => m.push_str(&format!(
                "Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
            )),
        }
        m.into_bytes()
    }

    fn rules(raw: &[u8]) -> Vec<&'static str> {
        lint_message("notice", "en", raw)
            .into_iter()
            .map(|f| f.rule.name())
            .collect()
    }

    const FROM: &str = "Example Clinic <no-reply@example.jp>";

    #[test]
    fn a_plain_honest_message_has_no_findings() {
        let raw = message(
            "Clinic hours have changed",
            FROM,
            Some("Hello, see https://id.example.jp/v/abc"),
            "<p>Hello, see <a href=\"https://id.example.jp/v/abc\">https://id.example.jp/v/abc</a> \
             or <a href=\"https://id.example.jp/\">our site</a></p>",
        );
        assert_eq!(lint_message("notice", "en", &raw), vec![]);
    }

    #[test]
    fn link_text_showing_another_host_is_named_with_both_hosts() {
        let raw = message(
            "Your account",
            FROM,
            Some("t"),
            "<a href='http://evil.example/x'><b>https://a.example</b></a>",
        );
        let f = lint_message("notice", "en", &raw);
        assert_eq!(
            f[0].to_string(),
            "template notice.en: rule link-text-host: link text \"https://a.example\" points to evil.example"
        );
    }

    #[test]
    fn userinfo_in_a_href_does_not_hide_the_real_host() {
        let raw = message(
            "Your account",
            FROM,
            Some("t"),
            "<a href=\"https://bank.example@evil.example/\">bank.example</a>",
        );
        assert_eq!(rules(&raw), ["link-text-host"]);
    }

    #[test]
    fn https_text_on_an_http_link_is_a_scheme_finding() {
        let raw = message(
            "Your account",
            FROM,
            Some("t"),
            "<a href=\"http://id.example.jp/\">https://id.example.jp/</a>",
        );
        assert_eq!(rules(&raw), ["link-text-scheme"]);
    }

    #[test]
    fn ip_hosts_and_shorteners_are_found_in_both_parts() {
        let raw = message(
            "Your account",
            FROM,
            Some("go to http://192.0.2.1/x and https://bit.ly/abc"),
            "<a href=\"https://[2001:db8::1]/\">here</a> <a href=\"https://www.tinyurl.com/x\">here</a>",
        );
        let r = rules(&raw);
        assert_eq!(r.iter().filter(|r| **r == "ip-url").count(), 2, "{r:?}");
        assert_eq!(r.iter().filter(|r| **r == "shortener").count(), 2, "{r:?}");
    }

    #[test]
    fn html_only_image_only_caps_and_an_address_as_name_are_each_named() {
        let raw = message(
            "ACT NOW: VERIFY",
            "\"no-reply@example.jp\" <no-reply@example.jp>",
            None,
            "<html><head><title>A long title that is not shown</title></head><body><img src=\"https://id.example.jp/a.png\"> Hi</body></html>",
        );
        let mut r = rules(&raw);
        r.sort();
        assert_eq!(
            r,
            [
                "from-display-name",
                "image-only-html",
                "subject-all-caps",
                "text-part"
            ]
        );
    }

    #[test]
    fn a_message_id_without_a_qualified_domain_and_a_missing_date_are_found() {
        let raw = b"From: A <a@example.jp>\r\nSubject: Hi there\r\nMessage-ID: <x@localhost>\r\n\r\nhello\r\n";
        assert_eq!(rules(raw), ["message-id", "date"]);
    }

    #[test]
    fn acronyms_and_japanese_subjects_are_not_shouting() {
        assert!(!is_all_caps("NHK からのお知らせ"));
        assert!(!is_all_caps("Your PIN code"));
        assert!(is_all_caps("URGENT NOTICE"));
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            decode_entities("a&amp;b&#x41;&#66;&nbsp;&bogus"),
            "a&bAB &bogus"
        );
    }
}

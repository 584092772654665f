//! Non-standard non-delivery reports: the free-text notices of qmail, Exim, Sendmail,
//! Exchange, Gmail, Japanese carriers and the rest.
//!
//! There is no grammar to follow, so this is heuristics, with the marker phrases kept in
//! `rules.toml` (`[ndr]`):
//! 1. is it a failure notice at all (subject, sender, body markers);
//! 2. the report text is the readable part up to where the returned message begins;
//! 3. recipients are the addresses in that text, minus the sender's, the report's own and
//!    the mailer's; failing that `X-Failed-Recipients`, then the original's To;
//! 4. each recipient's diagnostic is the text after its address up to the next recipient.

use std::sync::LazyLock;

use regex::Regex;

use super::message::{Mail, NOT_RECIPIENT_HEADERS};
use super::rules::rules;
use super::{Action, Found, RecipientResult, text};

static REMOTE_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:(?-u:\b)host|(?-u:\b)server|(?-u:\b)by|remote host|(?-u:\b)mx)\s+\[?([a-z0-9][a-z0-9.-]*\.[a-z0-9-]{2,})\]?\s*(?:\[|\(|said|:)",
    )
    .expect("constant regex")
});

/// Most diagnostic text kept for one recipient.
const DIAG_MAX: usize = 600;

/// `strong`: only accept notices with an unmistakable failure marker (this runs before the
/// auto-reply check); otherwise accept any plausible notice.
pub(crate) fn detect(mail: &Mail, strong: bool) -> Option<Found> {
    let body = mail.body_text();
    let report = report_text(body);
    if !is_notice(mail, report, strong) {
        return None;
    }
    let addrs = recipients(mail, report);
    if addrs.is_empty() {
        return None;
    }
    let delayed = rules().ndr.delayed.is_match(report);
    let mut found = Found::default();
    let blocks = blocks(report, &addrs);
    let report_lower = report.to_ascii_lowercase();
    for (addr, block) in addrs.iter().zip(blocks) {
        let mut r = RecipientResult::new(addr.clone());
        fill(&mut r, &block, report);
        // Found only in the returned original's headers, in a notice without a code: the
        // notice says nothing about this recipient, and its boilerplate is no diagnostic
        // (Sisimai's `undefined`, not `onhold`).
        if !report_lower.contains(&addr.to_ascii_lowercase()) && !has_code(report) {
            r.diagnostic = None;
        }
        let own = own_reply(report, addr);
        if own.is_some() {
            r.reply_code = own;
        }
        // A notice can say "deferred" about one host while this recipient's own line shows
        // a permanent refusal.
        if delayed && own.is_none_or(|c| c < 500) {
            r.action = Action::Delayed;
        }
        found.recipients.push(r);
        found.hints.push(report.to_string());
    }
    Some(found)
}

fn is_notice(mail: &Mail, report: &str, strong: bool) -> bool {
    let nd = &rules().ndr;
    let subject = &mail.subject;
    if nd.strong_subject.is_match(subject) || nd.strong_body.is_match(report) {
        return true;
    }
    if strong {
        return false;
    }
    let from = mail.sender_address();
    nd.weak_from.is_match(&from)
        || nd.weak_subject.is_match(subject)
        || mail.header("x-failed-recipients").is_some()
}

/// The readable report: everything before the first line that starts the returned message.
fn report_text(body: &str) -> &str {
    let nd = &rules().ndr;
    let mut end = body.len();
    if let Some(m) = nd.original_marker.find(body) {
        end = m.start();
    }
    // A bare header block (Received:/Return-Path: at line start) also starts the original.
    if let Some(m) = nd.header_start.find(body)
        && m.start() < end
        && m.start() > 0
    {
        end = m.start();
    }
    &body[..end]
}

/// Candidate recipient addresses, in order of first appearance.
fn recipients(mail: &Mail, report: &str) -> Vec<String> {
    let exclude = excluded(mail);
    let nd = &rules().ndr;
    let mut out: Vec<String> = Vec::new();
    // The notice's own To is the sender; it is the failed recipient too only when someone
    // wrote to themselves, so it is kept aside and used when no other address is found.
    let mut to_self: Vec<String> = Vec::new();
    for line in report.lines() {
        // A line without `@` names no address; the line regexes are the costly part.
        if !line.contains('@') || nd.sender_line.is_match(line) || nd.prose_line.is_match(line) {
            continue;
        }
        for a in text::addresses(line) {
            let lower = a.to_ascii_lowercase();
            if to_self.is_empty() && exclude.contains(&lower) && is_only_to(mail, &lower) {
                to_self.push(a.clone());
            }
            if exclude.contains(&lower)
                || nd.mailer_address.is_match(&lower)
                || nd.list_address.is_match(&lower)
                || out.iter().any(|o| o.eq_ignore_ascii_case(&a))
            {
                continue;
            }
            out.push(a);
        }
    }
    if out.is_empty() {
        out = fallback_recipients(mail);
    }
    if out.is_empty() {
        out = to_self;
    }
    out
}

/// The address is excluded only as the notice's own To, not as a sender or list address.
fn is_only_to(mail: &Mail, lower: &str) -> bool {
    let named = |name: &str| {
        mail.header_all(name).any(|v| {
            text::addresses(v)
                .iter()
                .any(|a| a.eq_ignore_ascii_case(lower))
        })
    };
    named("to") && !NOT_RECIPIENT_HEADERS.iter().any(|n| named(n))
}

/// Addresses that are never the failed recipient: the report's own To and the
/// [`NOT_RECIPIENT_HEADERS`], in the report and in the original.
fn excluded(mail: &Mail) -> Vec<String> {
    let mut ex = Vec::new();
    for name in NOT_RECIPIENT_HEADERS.iter().chain(&["to"]) {
        for v in mail.header_all(name) {
            ex.extend(text::addresses(v));
        }
    }
    if let Some(h) = mail.original_headers() {
        for (n, v) in h {
            if NOT_RECIPIENT_HEADERS.contains(&n.as_str()) {
                ex.extend(text::addresses(v));
            }
        }
    }
    ex.iter().map(|a| a.to_ascii_lowercase()).collect()
}

fn fallback_recipients(mail: &Mail) -> Vec<String> {
    if let Some(v) = mail.header("x-failed-recipients") {
        let a = text::addresses(v);
        if !a.is_empty() {
            return a;
        }
    }
    if let Some(h) = mail.original_headers()
        && let Some((_, v)) = h.iter().find(|(n, _)| n == "to")
    {
        return text::addresses(v).into_iter().take(1).collect();
    }
    // The original quoted inline: its To line.
    let body = mail.body_text();
    body.lines()
        .find(|l| l.len() > 3 && l.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("to:")))
        .and_then(text::first_address)
        .into_iter()
        .collect()
}

/// The text block that belongs to each recipient: from just after its first mention to the
/// line of the next recipient's first mention.
fn blocks(report: &str, addrs: &[String]) -> Vec<String> {
    let lower = report.to_ascii_lowercase();
    let mut starts: Vec<(usize, usize)> = addrs
        .iter()
        .map(|a| {
            let a = a.to_ascii_lowercase();
            first_mention(report, &lower, &a)
                .map_or((report.len(), report.len()), |p| (p, p + a.len()))
        })
        .collect();
    let order = starts.clone();
    starts.sort_unstable();
    order
        .iter()
        .map(|&(pos, after)| {
            let next = starts
                .iter()
                .map(|&(p, _)| p)
                .find(|&p| p > pos)
                .unwrap_or(report.len());
            // Back up to the start of the next recipient's line.
            let end = report[..next]
                .rfind('\n')
                .filter(|&e| e > after)
                .unwrap_or(next);
            report.get(after..end).unwrap_or_default().to_string()
        })
        .collect()
}

/// Where `addr` is first named on a line that may name a recipient (not a quoted header line
/// of the original, not prose), else where it is first named at all.
fn first_mention(report: &str, lower: &str, addr: &str) -> Option<usize> {
    let nd = &rules().ndr;
    let first = lower.find(addr)?;
    let named = lower.match_indices(addr).map(|(p, _)| p).find(|&p| {
        let start = report[..p].rfind('\n').map_or(0, |s| s + 1);
        let end = report[p..].find('\n').map_or(report.len(), |e| p + e);
        let line = &report[start..end];
        !nd.sender_line.is_match(line)
            && !nd.prose_line.is_match(line)
            && !nd.quoted_to.is_match(line)
    });
    Some(named.unwrap_or(first))
}

/// Fill status, reply code, diagnostic and remote MTA from a recipient's block, falling back
/// to the whole report when the block says nothing.
fn fill(r: &mut RecipientResult, block: &str, report: &str) {
    let block = block.trim_start_matches(['>', ':', ')', ' ', '\t', '.', ',', '\'', '`']);
    let mut diag = text::collapse(block);
    // A block without a code, in a report that has one elsewhere (`Error message below:
    // 550 ...` before the address), says less than the whole report.
    if !has_code(&diag) && (has_code(report) || !has_substance(&diag)) {
        diag = text::collapse(report);
    }
    r.status = failure_status(&diag).or_else(|| failure_status(report));
    r.reply_code = text::failure_reply_code(&diag);
    r.remote_mta = REMOTE_HOST
        .captures(&diag)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches('.').to_string());
    if diag.len() > DIAG_MAX {
        let mut cut = DIAG_MAX;
        while !diag.is_char_boundary(cut) {
            cut -= 1;
        }
        diag.truncate(cut);
    }
    r.diagnostic = Some(diag).filter(|d| !d.is_empty());
}

/// The first status code of a failure: a transcript quotes the `2.x.x` replies that went
/// well before the one that failed, and those never say why a message was returned.
fn failure_status(s: &str) -> Option<String> {
    text::status_codes(s)
        .find(|c| !c.starts_with('2'))
        .or_else(|| text::status_code(s))
}

/// A block says something when it has a code or a few words.
fn has_substance(s: &str) -> bool {
    has_code(s) || s.split_whitespace().filter(|w| w.len() > 2).count() >= 3
}

/// The reply code in front of the recipient on its own line, as Sendmail writes a refused
/// recipient (`554 <user@example.org>... Remote protocol error`).
fn own_reply(report: &str, addr: &str) -> Option<u16> {
    report.lines().find_map(|line| {
        let (code, rest) = line.trim_start().split_at_checked(3)?;
        let rest = rest.strip_prefix([' ', '-'])?.trim_start_matches('<');
        let n: u16 = code.parse().ok()?;
        ((400..600).contains(&n)
            && rest.len() >= addr.len()
            && rest.is_char_boundary(addr.len())
            && rest[..addr.len()].eq_ignore_ascii_case(addr))
        .then_some(n)
    })
}

/// A failure's code: a 4xx/5xx reply or a status of class 4 or 5.
fn has_code(s: &str) -> bool {
    text::failure_reply_code(s).is_some() || text::status_codes(s).any(|c| !c.starts_with('2'))
}

#[cfg(test)]
mod tests {

    /// `Mail` keeps only the original's headers it lists; every one read here must be there.
    #[test]
    fn the_original_keeps_every_header_read_here() {
        for name in super::NOT_RECIPIENT_HEADERS {
            assert!(
                crate::bounce::message::kept_in_original(name),
                "{name} is read from the original but not kept by message::kept_in_original"
            );
        }
    }

    #[test]
    fn qmail_notice() {
        let raw = b"From: MAILER-DAEMON@mx.example.jp\r\nTo: nekochan@example.jp\r\nSubject: failure notice\r\n\r\n\
Hi. This is the qmail-send program at mx4.example.jp.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n\
<kijitora@example.ne.jp>:\r\n\
192.0.2.32 does not like recipient.\r\nRemote host said: 550 5.1.1 Unknown user kijitora\r\n\r\n\
--- Below this line is a copy of the message.\r\n\r\nMessage-ID: <orig@example.jp>\r\nFrom: nekochan@example.jp\r\n";
        let r = crate::bounce::parse(raw);
        assert!(r.bounce);
        assert_eq!(r.kind, Some(crate::bounce::ReportKind::Ndr));
        assert_eq!(r.recipients.len(), 1);
        let rc = &r.recipients[0];
        assert_eq!(rc.address, "kijitora@example.ne.jp");
        assert_eq!(rc.status.as_deref(), Some("5.1.1"));
        assert_eq!(rc.reply_code, Some(550));
        assert!(rc.permanent);
        assert_eq!(rc.reason.as_deref(), Some("userunknown"));
        assert_eq!(r.original_message_id.as_deref(), Some("orig@example.jp"));
    }

    /// A mailing list manager's loop alert (fml) refuses the message sent to the list: the
    /// list's address is the failed recipient, its admin address (the notice's From and To)
    /// is not, nor is anything in the original quoted after "Original mail as follows".
    #[test]
    fn a_list_loop_alert_fails_the_list_address() {
        let raw = b"From: tora-admin@lists.example.jp\r\nTo: tora-admin@lists.example.jp\r\n\
Subject: Loop Alert: Duplicated Message-ID (tora ML)\r\nX-MLServer: fml [fml 4.0.3]\r\n\r\n\
Duplicated Message-ID in <tora@lists.example.jp>.\r\n\r\n\r\n\
Original mail as follows:\r\n\r\n\
   From: <mike@example.org>\r\n   To: <other@example.net>\r\n   Subject: hi\r\n";
        let r = crate::bounce::parse(raw);
        assert!(r.bounce, "{r:?}");
        let got: Vec<&str> = r.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(got, ["tora@lists.example.jp"]);
        assert_eq!(r.recipients[0].reason.as_deref(), Some("systemerror"));
        assert!(r.recipients[0].permanent);
    }

    /// A notice without any code, whose message details end in a size: `222` is no SMTP
    /// reply, and a reply of class 2 would make the failure look temporary.
    #[test]
    fn a_size_is_no_reply_code() {
        let raw = b"From: MAILER-DAEMON@mx.example.jp\r\nTo: nekochan@example.jp\r\n\
Subject: Undeliverable mail\r\n\r\n\
Error: Invalid user address\r\n\r\n\
Message details:\r\n  Subject: Test\r\n\
  RCPT TO: kijitora@example.ne.jp\r\n\
  Size (in bytes): 222\r\n  Number of lines: 2\r\n";
        let r = crate::bounce::parse(raw);
        assert!(r.bounce);
        let rc = &r.recipients[0];
        assert_eq!(rc.address, "kijitora@example.ne.jp");
        assert_eq!(rc.reply_code, None, "{rc:?}");
        assert!(rc.permanent, "{rc:?}");
    }
}

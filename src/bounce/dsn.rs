//! RFC 3464 delivery status notifications.
//!
//! The `message/delivery-status` body (RFC 3464 §2.1) is a set of header-like field groups
//! separated by blank lines: first the per-message fields (§2.2), then one group of
//! per-recipient fields (§2.3) for each recipient. Some MTAs put the same fields in a plain
//! text part, or forget a blank line; both are tolerated.

use super::message::Mail;
use super::{Action, Found, RecipientResult, status, text};

type Group = Vec<(String, String)>;

/// Recognise a DSN and extract its per-recipient fields.
pub(crate) fn detect(mail: &Mail) -> Option<Found> {
    // A report can carry several status parts (one per notice, when an MTA bundles them):
    // each one's recipients count.
    let mut groups: Vec<Group> = mail
        .parts
        .iter()
        .filter(|p| {
            p.original.is_none()
                && (p.ctype == "message/delivery-status"
                    || p.ctype == "message/global-delivery-status")
        })
        .flat_map(|p| field_groups(&p.text))
        .collect();
    if groups.is_empty() {
        groups = field_groups(&embedded_fields(mail)?);
    }
    let mut found = Found::default();
    for g in &groups {
        if let Some(v) = field(g, "original-envelope-id") {
            found.envelope_id = Some(v.trim().to_string());
        }
    }
    let hint = human_text(mail);
    let rcpt_groups: Vec<&Group> = groups.iter().filter(|g| is_recipient_group(g)).collect();
    let alone = rcpt_groups.len() == 1;
    for g in rcpt_groups {
        if let Some(mut r) = recipient(g) {
            if r.diagnostic.is_none() {
                diagnostic_from_text(&mut r, &hint);
            }
            if alone {
                if r.diagnostic.is_none() {
                    r.diagnostic = transcript(&hint);
                }
                status_from_text(&mut r, &hint);
            }
            found.recipients.push(r);
            found.hints.push(hint.clone());
        }
    }
    (!found.recipients.is_empty()).then_some(found)
}

/// DSN fields written into a text part instead of a `message/delivery-status` part.
fn embedded_fields(mail: &Mail) -> Option<String> {
    mail.parts
        .iter()
        .filter(|p| p.original.is_none())
        .find_map(|p| {
            let lower = p.text.to_ascii_lowercase();
            let start = lower
                .find("\nreporting-mta:")
                .or_else(|| lower.find("\nfinal-recipient:"))?;
            (lower.contains("\naction:") && lower.contains("\nstatus:"))
                .then(|| p.text[start + 1..].to_string())
        })
}

/// The human-readable first part of a `multipart/report` (RFC 6522 §3), used as a hint; a
/// leaf `multipart/*` (its boundary never appears) is the whole body, read as text.
fn human_text(mail: &Mail) -> String {
    mail.parts
        .iter()
        .find(|p| {
            p.original.is_none()
                && (p.ctype.starts_with("text/") || p.ctype.starts_with("multipart/"))
        })
        .map(|p| p.text.clone())
        .unwrap_or_default()
}

/// Split into field groups; fold continuation lines (RFC 5322 §2.2.3). A second
/// `Final-Recipient` without a blank line before it starts a new group.
fn field_groups(body: &str) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut cur: Group = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.is_empty() {
                groups.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = cur.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.contains(' ') {
            continue;
        }
        if name == "final-recipient" && cur.iter().any(|(n, _)| n == "final-recipient") {
            groups.push(std::mem::take(&mut cur));
        }
        cur.push((name, value.trim().to_string()));
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

fn field<'a>(g: &'a Group, name: &str) -> Option<&'a str> {
    g.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

fn is_recipient_group(g: &Group) -> bool {
    g.iter()
        .any(|(n, _)| n == "final-recipient" || n == "original-recipient")
}

/// `type; value` fields (RFC 3464 §2.3.2, §2.3.5, §2.3.6): the part after the type.
fn typed_value(v: &str) -> &str {
    match v.split_once(';') {
        Some((_, rest)) => rest.trim(),
        None => v.trim(),
    }
}

fn recipient(g: &Group) -> Option<RecipientResult> {
    let addr_of = |name: &str| field(g, name).and_then(|v| text::first_address(typed_value(v)));
    let final_recipient = addr_of("final-recipient");
    // RFC 3464 §2.3.1: Original-Recipient is the address as the sender gave it, before any
    // alias or forwarding rewrote it into the Final-Recipient: the one mailgate sent to.
    let address = addr_of("original-recipient")
        .or_else(|| final_recipient.clone())
        .or_else(|| addr_of("x-actual-recipient"))?;
    let mut r = RecipientResult::new(address);
    r.final_recipient = final_recipient;
    r.action = field(g, "action").map_or(Action::Failed, parse_action);
    r.status = field(g, "status").and_then(text::status_code);
    r.remote_mta = field(g, "remote-mta")
        .map(|v| typed_value(v).trim_matches(['[', ']']).to_string())
        .filter(|v| !v.is_empty());
    // The `X-Unix` type says a local program (a pipe, procmail) failed, and its text may be
    // only an exit status (`X-Unix; 75`): the type stays, it is half of what is known.
    let diag = field(g, "diagnostic-code").map(|v| {
        let value = text::collapse(typed_value(v));
        match v.split_once(';') {
            Some((t, _)) if t.trim().eq_ignore_ascii_case("x-unix") => format!("X-Unix; {value}"),
            _ => value,
        }
    });
    if let Some(d) = diag.filter(|d| !d.is_empty()) {
        r.reply_code = reply_of(r.action, &d);
        r.status = preferred(r.status.take(), status::in_message(&d), r.reply_code);
        r.status = inner_status(r.status.take(), &d);
        r.diagnostic = Some(d);
    }
    Some(r)
}

/// No Diagnostic-Code field: take the rest of the human-readable line naming the recipient
/// (OpenSMTPD and others write the remote reply there).
fn diagnostic_from_text(r: &mut RecipientResult, human: &str) {
    let names = std::iter::once(&r.address).chain(r.final_recipient.as_ref());
    let Some((addr, line)) = names.map(|a| a.to_ascii_lowercase()).find_map(|addr| {
        let line = human
            .lines()
            .find(|l| l.to_ascii_lowercase().contains(&addr))?;
        Some((addr, line))
    }) else {
        return;
    };
    let lower = line.to_ascii_lowercase();
    let rest = lower
        .find(&addr)
        .and_then(|p| line.get(p + addr.len()..))
        .unwrap_or_default();
    let d = text::collapse(rest.trim_start_matches(['>', ':', ' ']));
    let reply = reply_of(r.action, &d);
    if reply.is_none() && text::status_code(&d).is_none() {
        return;
    }
    r.reply_code = reply;
    r.status = preferred(r.status.take(), status::in_message(&d), r.reply_code);
    r.diagnostic = Some(d);
}

/// The reply code in a recipient's diagnostic: a failure's (class 4 or 5) for a recipient
/// that failed or was delayed, any for one delivered or relayed (`250 2.1.5 Ok`).
fn reply_of(action: Action, diag: &str) -> Option<u16> {
    match action {
        Action::Failed | Action::Delayed => text::failure_reply_code(diag),
        _ => text::reply_code(diag),
    }
}

/// Sendmail's `----- Transcript of session follows -----` section of the human-readable
/// part, on one line: for a report's only recipient without a Diagnostic-Code, what the
/// remote server or the local mailer said (`mail.local: unknown user`, `Deferred:
/// Connection refused by ...`).
fn transcript(human: &str) -> Option<String> {
    let lower = human.to_ascii_lowercase();
    let at = lower.find("transcript of session follows")?;
    let start = human[at..].find('\n').map(|i| at + i + 1)?;
    let body: Vec<&str> = human[start..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| {
            let t = l.trim_start();
            !t.is_empty()
                && !t.starts_with("--")
                && !t.to_ascii_lowercase().starts_with("reporting-mta:")
        })
        .collect();
    let t = text::collapse(&body.join(" "));
    (!t.is_empty()).then_some(t)
}

/// The only recipient of a report whose Status says no more than the class (`x.0.0`, with no
/// code in the diagnostic) or "expired" (`4.4.7`, with no other code there): the human-readable part
/// often quotes the reply that failed (Sendmail's `554 5.3.0 unknown mailer error`,
/// Exchange's `441 4.4.1 Error encountered while communicating`). Its codes of the same
/// class are taken, the last one named.
fn status_from_text(r: &mut RecipientResult, human: &str) {
    let Some(f) = r.status.as_deref() else {
        return;
    };
    let diag = r.diagnostic.as_deref().unwrap_or_default();
    let vague = if f == "4.4.7" {
        text::status_codes(diag).all(|c| c == f)
    } else {
        f.get(1..5) == Some(".0.0") && text::status_code(diag).is_none()
    };
    if !vague {
        return;
    }
    let class = f.as_bytes()[0];
    let codes: Vec<String> = text::status_codes(human)
        .filter(|c| c.as_bytes()[0] == class && c != f && c.get(1..5) != Some(".0.0"))
        .collect();
    if let Some(c) = codes.last() {
        r.status = Some(c.clone());
    }
}

/// The Status field against the code in the diagnostic, by [`status::prefer`].
fn preferred(field: Option<String>, diag: Option<String>, reply: Option<u16>) -> Option<String> {
    match (field, diag) {
        (Some(f), Some(d)) => Some(status::prefer(&f, &d, reply)),
        (f, d) => f.or(d),
    }
}

/// A Status of "delivery time expired" (`x.4.7`) only says the MTA gave up; the reply
/// that kept failing, quoted in the diagnostic (`554 4.4.7 Message expired ... <421 4.4.2
/// Connection timed out>`), says why. Take the last other code of the same class there.
fn inner_status(field: Option<String>, diag: &str) -> Option<String> {
    let f = field?;
    if !f.ends_with(".4.7") {
        return Some(f);
    }
    let inner = text::status_codes(diag)
        .filter(|c| *c != f && c.as_bytes().first() == f.as_bytes().first())
        .last();
    Some(inner.unwrap_or(f))
}

/// RFC 3464 §2.3.3 action values; unknown spellings read as failed.
fn parse_action(v: &str) -> Action {
    let v = v.trim().to_ascii_lowercase();
    if v.starts_with("delay") {
        Action::Delayed
    } else if v.starts_with("deliver") {
        Action::Delivered
    } else if v.starts_with("relay") {
        Action::Relayed
    } else if v.starts_with("expand") {
        Action::Expanded
    } else {
        Action::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_status_gives_way_to_the_reply_that_kept_failing() {
        let d = "554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>";
        assert_eq!(
            inner_status(Some("4.4.7".into()), d).as_deref(),
            Some("4.4.2")
        );
        assert_eq!(
            inner_status(Some("4.4.7".into()), "450 4.7.1 Access denied").as_deref(),
            Some("4.7.1")
        );
        // Another class, or no other code: the field stands.
        assert_eq!(
            inner_status(Some("4.4.7".into()), "550 5.1.1 x").as_deref(),
            Some("4.4.7")
        );
        assert_eq!(
            inner_status(Some("5.1.1".into()), "550 5.2.2 x").as_deref(),
            Some("5.1.1")
        );
    }

    #[test]
    fn every_status_part_gives_its_recipients() {
        let raw = b"From: MAILER-DAEMON@mx.example.jp\r\nTo: a@example.jp\r\nSubject: Delivery Status\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nTwo notices.\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
Final-Recipient: rfc822; one@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
Final-Recipient: rfc822; two@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n\
--B--\r\n";
        let r = crate::bounce::parse(raw);
        let got: Vec<(&str, Option<&str>)> = r
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.status.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("one@example.org", Some("5.1.1")),
                ("two@example.org", Some("4.4.1"))
            ]
        );
    }

    #[test]
    fn a_transcript_is_the_lines_after_its_marker() {
        let human = "x\n   ----- Transcript of session follows -----\n\nmail.local: unknown user: k\n554 <k@e.x>... Service unavailable\n\nReporting-MTA: dns; m\n";
        assert_eq!(
            transcript(human).as_deref(),
            Some("mail.local: unknown user: k 554 <k@e.x>... Service unavailable")
        );
        assert_eq!(transcript("no marker"), None);
    }

    #[test]
    fn groups_fold_and_split() {
        let body = "Reporting-MTA: dns; mx\nOriginal-Envelope-Id: E1\n\nFinal-Recipient: rfc822; a@b.c\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.1.1\n  user unknown\nFinal-Recipient: rfc822; d@e.f\nAction: delayed\nStatus: 4.4.7\n";
        let g = field_groups(body);
        assert_eq!(g.len(), 3);
        let r = recipient(&g[1]).expect("recipient");
        assert_eq!(r.address, "a@b.c");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.reply_code, Some(550));
        assert_eq!(r.diagnostic.as_deref(), Some("550 5.1.1 user unknown"));
        let r2 = recipient(&g[2]).expect("recipient");
        assert_eq!(r2.action, Action::Delayed);
    }
}

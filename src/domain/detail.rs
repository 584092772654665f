//! mailgate's own words in a message's timeline (`Event::detail`), in a flow's
//! "why it could not be delivered", and in a webhook delivery's last error: what mailgate itself says, as opposed to what a
//! receiving server said (a reply, a suppression's evidence), which is a field of its
//! own here and is always shown verbatim.
//!
//! They are stored, served by the API and printed by `mailgate log` as English text,
//! as before this module: readers of the API and old records see no change. The
//! console says them in the operator's language by reading the text back
//! ([`Detail::parse`]) and wording the parts itself. Writing ([`fmt::Display`]) and
//! reading live side by side and a test round-trips every variant, so a new wording
//! cannot be written that the console would show untranslated.

use std::fmt;

use super::format_time_ms;

/// Who asked for a retry or a cancellation: `operator aiko`, `command line`.
pub type Actor = String;

/// One thing mailgate says about a message or a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Queued to go out at a later time.
    ScheduledFor { at_ms: u64 },
    /// A try failed for now; `why` is mailgate's own words when it has any.
    NextTry { why: Option<String>, at_ms: u64 },
    /// Found in flight after a restart or a reopen of the store.
    Recovered,
    /// The message's lifetime ended with no server having accepted it.
    LifetimeEnded,
    /// Who asked for it (a retry now, a cancellation: the step says which).
    By { who: Actor },
    /// A newer flow replaced this message's flow.
    Superseded { flow: String },
    /// Not sent: the address is on the suppression list. `evidence` is the receiving
    /// server's words (verbatim).
    Suppressed {
        address: String,
        since_ms: u64,
        reason: String,
        evidence: String,
    },
    /// A receiving server reported a delay.
    DelayReported { mta: Option<String>, reason: String },
    /// A permanent bounce, with how it was tied to the message.
    Bounced { reason: String, authenticated: bool },
    /// An open message whose bytes are gone.
    BytesMissing,
    /// The message's bytes could not be read (`error` is the store's own words).
    BytesUnreadable { error: String },
    /// A flow's mail was refused; `reply` is the receiving server's (verbatim).
    Refused { reply: String },
    /// A flow's mail expired before any server accepted it.
    NeverAccepted,
    /// A flow's mail was not sent: the address is suppressed.
    AddressSuppressed,
    // What went wrong before any server answered: written as the attempt's reply (no
    // SMTP code), the system's own error text (`error`) kept as it is.
    /// A TCP connection failed.
    ConnectFailed { addr: String, error: String },
    /// A TCP connection got no answer in time (`after` as written, e.g. `30s`).
    ConnectTimedOut { addr: String, after: String },
    /// The host resolved to no address.
    NoAddress { host: String },
    /// The host's name could not be resolved.
    CannotResolve { host: String, error: String },
    /// The recipient's domain does not exist.
    NoSuchDomain { domain: String },
    /// The MX lookup failed (for now).
    DnsFailed { domain: String, error: String },
    /// The domain publishes a null MX (RFC 7505).
    NullMx { domain: String },
    /// TLS (implicit) with the host failed.
    TlsFailed { host: String, error: String },
    /// STARTTLS with the host failed.
    StartTlsFailed { host: String, error: String },
    /// TLS is required and the host does not offer STARTTLS.
    NoStartTls { host: String },
    // A webhook delivery's last error and an endpoint's reason for being disabled.
    /// The endpoint answered a status that is not success (`status` as HTTP writes
    /// it, `500 Internal Server Error`); a redirect is not followed.
    HookAnswered { status: String, redirect: bool },
    /// The endpoint did not answer in time.
    HookNoAnswer { seconds: u64 },
    /// The configured URL does not parse (`error` is the parser's words).
    HookNotAUrl { error: String },
    /// The URL names a link-local or cloud metadata address, which is refused unless
    /// the entry allows it.
    HookForbiddenAddress { ip: String },
    /// The delivery's endpoint was removed from the configuration.
    HookNotConfigured,
    /// The delivery's endpoint is disabled; `why` is its own detail.
    HookDisabled { why: String },
    /// The event the delivery carried was forgotten (retention).
    HookEventGone,
    /// The endpoint answered 410 Gone, which disables it.
    HookGone,
    /// Why an endpoint is disabled: it answered 410 Gone then.
    HookGoneAt { at_ms: u64 },
}

const SCHEDULED: &str = "scheduled for ";
const NEXT_TRY: &str = "next try at ";
const RECOVERED: &str =
    "in flight when the last run stopped or the store was reopened; trying again";
/// The same, as written before a store could be reopened without a restart.
const RECOVERED_BEFORE: &str = "in flight when the last run stopped; trying again";
const LIFETIME: &str = "its lifetime ended before any server accepted it";
const SUPERSEDED: &str = "superseded by a newer link (flow ";
const SUPPRESSED: &str = "not sent: ";
const SUPPRESSED_MID: &str = " is on the suppression list since ";
const DELAY_MID: &str = " reported a delay (";
const DELAY_END: &str = "); mail may still arrive";
const A_REMOTE_SERVER: &str = "a remote server";
const BOUNCED: &str = "bounced permanently: ";
const VERP: &str = "VERP-authenticated";
const BY_ID: &str = "tied by Message-ID";
const BYTES_MISSING: &str = "the message's bytes are not in the store";
const BYTES_UNREADABLE: &str = "cannot read the message's bytes: ";
const REFUSED: &str = "the receiving server refused the mail: ";
const NEVER_ACCEPTED: &str = "no receiving server accepted the mail before it expired";
const ADDRESS_SUPPRESSED: &str = "not sent: the address is on the suppression list";
const CONNECT: &str = "connect to ";
const TIMED_OUT: &str = "timed out after ";
const NO_ADDRESS: &str = " has no address";
const CANNOT_RESOLVE: &str = "cannot resolve ";
const THE_DOMAIN: &str = "the domain ";
const DOES_NOT_EXIST: &str = " does not exist";
const DNS_LOOKUP: &str = "DNS lookup for ";
const FAILED: &str = " failed: ";
const NULL_MX: &str = " publishes a null MX: it accepts no mail (RFC 7505)";
const TLS_WITH: &str = "TLS with ";
const STARTTLS_WITH: &str = "STARTTLS with ";
const NO_STARTTLS: &str = " does not offer STARTTLS and TLS is required";
const ANSWERED: &str = "answered ";
const REDIRECT_NOT_FOLLOWED: &str = " (redirects are not followed)";
const NO_ANSWER_WITHIN: &str = "no answer within ";
const NOT_A_URL: &str = "not a URL: ";
const FORBIDDEN_ADDRESS: &str = " is a link-local or metadata address; set allow_link_local = true \
     on this [[webhooks]] entry if that is meant";
const HOOK_NOT_CONFIGURED: &str = "the endpoint is no longer configured";
const HOOK_DISABLED: &str = "the endpoint is disabled: ";
const HOOK_EVENT_GONE: &str = "the event is no longer in the store";
const HOOK_GONE: &str = "answered 410 Gone: the endpoint is disabled";
const HOOK_GONE_AT: &str = "answered 410 Gone at ";

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::ScheduledFor { at_ms } => write!(f, "{SCHEDULED}{}", format_time_ms(*at_ms)),
            Detail::NextTry {
                why: Some(w),
                at_ms,
            } => {
                write!(f, "{w}; {NEXT_TRY}{}", format_time_ms(*at_ms))
            }
            Detail::NextTry { why: None, at_ms } => {
                write!(f, "{NEXT_TRY}{}", format_time_ms(*at_ms))
            }
            Detail::Recovered => f.write_str(RECOVERED),
            Detail::LifetimeEnded => f.write_str(LIFETIME),
            Detail::By { who } => write!(f, "by {who}"),
            Detail::Superseded { flow } => write!(f, "{SUPERSEDED}{flow})"),
            Detail::Suppressed {
                address,
                since_ms,
                reason,
                evidence,
            } => write!(
                f,
                "{SUPPRESSED}{address}{SUPPRESSED_MID}{} ({reason}: {evidence})",
                format_time_ms(*since_ms)
            ),
            Detail::DelayReported { mta, reason } => write!(
                f,
                "{}{DELAY_MID}{reason}{DELAY_END}",
                mta.as_deref().unwrap_or(A_REMOTE_SERVER)
            ),
            Detail::Bounced {
                reason,
                authenticated,
            } => write!(
                f,
                "{BOUNCED}{reason} ({})",
                if *authenticated { VERP } else { BY_ID }
            ),
            Detail::BytesMissing => f.write_str(BYTES_MISSING),
            Detail::BytesUnreadable { error } => write!(f, "{BYTES_UNREADABLE}{error}"),
            Detail::Refused { reply } => write!(f, "{REFUSED}{reply}"),
            Detail::NeverAccepted => f.write_str(NEVER_ACCEPTED),
            Detail::AddressSuppressed => f.write_str(ADDRESS_SUPPRESSED),
            Detail::ConnectFailed { addr, error } => write!(f, "{CONNECT}{addr}: {error}"),
            Detail::ConnectTimedOut { addr, after } => {
                write!(f, "{CONNECT}{addr}: {TIMED_OUT}{after}")
            }
            Detail::NoAddress { host } => write!(f, "{host}{NO_ADDRESS}"),
            Detail::CannotResolve { host, error } => {
                write!(f, "{CANNOT_RESOLVE}{host}: {error}")
            }
            Detail::NoSuchDomain { domain } => write!(f, "{THE_DOMAIN}{domain}{DOES_NOT_EXIST}"),
            Detail::DnsFailed { domain, error } => write!(f, "{DNS_LOOKUP}{domain}{FAILED}{error}"),
            Detail::NullMx { domain } => write!(f, "{domain}{NULL_MX}"),
            Detail::TlsFailed { host, error } => write!(f, "{TLS_WITH}{host}: {error}"),
            Detail::StartTlsFailed { host, error } => write!(f, "{STARTTLS_WITH}{host}: {error}"),
            Detail::NoStartTls { host } => write!(f, "{host}{NO_STARTTLS}"),
            Detail::HookAnswered { status, redirect } => write!(
                f,
                "{ANSWERED}{status}{}",
                if *redirect { REDIRECT_NOT_FOLLOWED } else { "" }
            ),
            Detail::HookNoAnswer { seconds } => write!(f, "{NO_ANSWER_WITHIN}{seconds} s"),
            Detail::HookNotAUrl { error } => write!(f, "{NOT_A_URL}{error}"),
            Detail::HookForbiddenAddress { ip } => write!(f, "{ip}{FORBIDDEN_ADDRESS}"),
            Detail::HookNotConfigured => f.write_str(HOOK_NOT_CONFIGURED),
            Detail::HookDisabled { why } => write!(f, "{HOOK_DISABLED}{why}"),
            Detail::HookEventGone => f.write_str(HOOK_EVENT_GONE),
            Detail::HookGone => f.write_str(HOOK_GONE),
            Detail::HookGoneAt { at_ms } => write!(f, "{HOOK_GONE_AT}{}", format_time_ms(*at_ms)),
        }
    }
}

/// Milliseconds from the RFC 3339 text [`format_time_ms`] writes.
fn time(text: &str) -> Option<u64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
}

impl Detail {
    /// Reads text that mailgate wrote back into what it says; `None` for anything else
    /// (an outbox file's path, text from before a wording existed).
    pub fn parse(text: &str) -> Option<Detail> {
        let fixed = [
            (RECOVERED, Detail::Recovered),
            (RECOVERED_BEFORE, Detail::Recovered),
            (LIFETIME, Detail::LifetimeEnded),
            (BYTES_MISSING, Detail::BytesMissing),
            (NEVER_ACCEPTED, Detail::NeverAccepted),
            (ADDRESS_SUPPRESSED, Detail::AddressSuppressed),
            (HOOK_NOT_CONFIGURED, Detail::HookNotConfigured),
            (HOOK_EVENT_GONE, Detail::HookEventGone),
            (HOOK_GONE, Detail::HookGone),
        ];
        if let Some((_, d)) = fixed.into_iter().find(|(t, _)| *t == text) {
            return Some(d);
        }
        if let Some(at) = text.strip_prefix(HOOK_GONE_AT) {
            return time(at).map(|at_ms| Detail::HookGoneAt { at_ms });
        }
        if let Some(why) = text.strip_prefix(HOOK_DISABLED) {
            return Some(Detail::HookDisabled {
                why: why.to_string(),
            });
        }
        // An HTTP status as written: three digits, then its reason phrase.
        if let Some(rest) = text.strip_prefix(ANSWERED)
            && rest.len() >= 3
            && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit)
        {
            let (status, redirect) = match rest.strip_suffix(REDIRECT_NOT_FOLLOWED) {
                Some(status) => (status, true),
                None => (rest, false),
            };
            return Some(Detail::HookAnswered {
                status: status.to_string(),
                redirect,
            });
        }
        if let Some(seconds) = text
            .strip_prefix(NO_ANSWER_WITHIN)
            .and_then(|r| r.strip_suffix(" s"))
            .and_then(|n| n.parse().ok())
        {
            return Some(Detail::HookNoAnswer { seconds });
        }
        if let Some(error) = text.strip_prefix(NOT_A_URL) {
            return Some(Detail::HookNotAUrl {
                error: error.to_string(),
            });
        }
        if let Some(ip) = text.strip_suffix(FORBIDDEN_ADDRESS)
            && ip.parse::<std::net::IpAddr>().is_ok()
        {
            return Some(Detail::HookForbiddenAddress { ip: ip.to_string() });
        }
        if let Some(at) = text.strip_prefix(SCHEDULED) {
            return time(at).map(|at_ms| Detail::ScheduledFor { at_ms });
        }
        if let Some(at) = text.strip_prefix(NEXT_TRY) {
            return time(at).map(|at_ms| Detail::NextTry { why: None, at_ms });
        }
        if let Some((why, at)) = text.rsplit_once(&format!("; {NEXT_TRY}")) {
            return time(at).map(|at_ms| Detail::NextTry {
                why: Some(why.to_string()),
                at_ms,
            });
        }
        if let Some(who) = text.strip_prefix("by ") {
            return Some(Detail::By {
                who: who.to_string(),
            });
        }
        if let Some(flow) = text
            .strip_prefix(SUPERSEDED)
            .and_then(|r| r.strip_suffix(')'))
        {
            return Some(Detail::Superseded {
                flow: flow.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix(BOUNCED) {
            let (reason, how) = rest.split_once(" (")?;
            let authenticated = match how.strip_suffix(')')? {
                VERP => true,
                BY_ID => false,
                _ => return None,
            };
            return Some(Detail::Bounced {
                reason: reason.to_string(),
                authenticated,
            });
        }
        if let Some(error) = text.strip_prefix(BYTES_UNREADABLE) {
            return Some(Detail::BytesUnreadable {
                error: error.to_string(),
            });
        }
        if let Some(reply) = text.strip_prefix(REFUSED) {
            return Some(Detail::Refused {
                reply: reply.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix(SUPPRESSED)
            && let Some((address, rest)) = rest.split_once(SUPPRESSED_MID)
            && let Some((since, rest)) = rest.split_once(" (")
            && let Some((reason, evidence)) = rest.strip_suffix(')')?.split_once(": ")
        {
            return Some(Detail::Suppressed {
                address: address.to_string(),
                since_ms: time(since)?,
                reason: reason.to_string(),
                evidence: evidence.to_string(),
            });
        }
        // Host and domain names hold no spaces: a server's reply that happens to end
        // the same way is not taken for these.
        let name =
            |n: &str| (!n.is_empty() && !n.contains(char::is_whitespace)).then(|| n.to_string());
        if let Some((addr, rest)) = text.strip_prefix(CONNECT).and_then(|r| r.split_once(": ")) {
            let addr = name(addr)?;
            return Some(match rest.strip_prefix(TIMED_OUT) {
                Some(after) => Detail::ConnectTimedOut {
                    addr,
                    after: after.to_string(),
                },
                None => Detail::ConnectFailed {
                    addr,
                    error: rest.to_string(),
                },
            });
        }
        if let Some(host) = text.strip_suffix(NO_ADDRESS) {
            return name(host).map(|host| Detail::NoAddress { host });
        }
        if let Some((host, error)) = text
            .strip_prefix(CANNOT_RESOLVE)
            .and_then(|r| r.split_once(": "))
        {
            return Some(Detail::CannotResolve {
                host: name(host)?,
                error: error.to_string(),
            });
        }
        if let Some(domain) = text.strip_prefix(THE_DOMAIN).and_then(|r| {
            r.strip_suffix(DOES_NOT_EXIST)
                .or_else(|| r.strip_suffix(" does not exist (NXDOMAIN)"))
        }) {
            return name(domain).map(|domain| Detail::NoSuchDomain { domain });
        }
        if let Some((domain, error)) = text
            .strip_prefix(DNS_LOOKUP)
            .and_then(|r| r.split_once(FAILED))
        {
            return Some(Detail::DnsFailed {
                domain: name(domain)?,
                error: error.to_string(),
            });
        }
        if let Some(domain) = text.strip_suffix(NULL_MX) {
            return name(domain).map(|domain| Detail::NullMx { domain });
        }
        if let Some((host, error)) = text
            .strip_prefix(STARTTLS_WITH)
            .and_then(|r| r.split_once(": "))
        {
            return Some(Detail::StartTlsFailed {
                host: name(host)?,
                error: error.to_string(),
            });
        }
        if let Some((host, error)) = text.strip_prefix(TLS_WITH).and_then(|r| r.split_once(": ")) {
            return Some(Detail::TlsFailed {
                host: name(host)?,
                error: error.to_string(),
            });
        }
        if let Some(host) = text.strip_suffix(NO_STARTTLS) {
            return name(host).map(|host| Detail::NoStartTls { host });
        }
        if let Some(rest) = text.strip_suffix(DELAY_END)
            && let Some((mta, reason)) = rest.split_once(DELAY_MID)
        {
            return Some(Detail::DelayReported {
                mta: (mta != A_REMOTE_SERVER).then(|| mta.to_string()),
                reason: reason.to_string(),
            });
        }
        None
    }
}

/// One of each wording, with times in whole seconds (as they are written): for the
/// tests here and of those who say them.
#[cfg(test)]
pub(crate) fn examples() -> Vec<Detail> {
    let at_ms = 1_796_000_000_000;
    vec![
        Detail::HookAnswered {
            status: "500 Internal Server Error".into(),
            redirect: false,
        },
        Detail::HookAnswered {
            status: "302 Found".into(),
            redirect: true,
        },
        Detail::HookNoAnswer { seconds: 10 },
        Detail::HookNotAUrl {
            error: "empty host".into(),
        },
        Detail::HookForbiddenAddress {
            ip: "169.254.169.254".into(),
        },
        Detail::HookNotConfigured,
        Detail::HookDisabled {
            why: "answered 410 Gone at 2026-12-01T00:00:00Z".into(),
        },
        Detail::HookEventGone,
        Detail::HookGone,
        Detail::HookGoneAt { at_ms },
        Detail::ScheduledFor { at_ms },
        Detail::NextTry { why: None, at_ms },
        Detail::NextTry {
            why: Some("cannot read the message's bytes: disk gone; still".into()),
            at_ms,
        },
        Detail::Recovered,
        Detail::LifetimeEnded,
        Detail::By {
            who: "operator aiko".into(),
        },
        Detail::Superseded {
            flow: "0123456789abcdef".into(),
        },
        Detail::Suppressed {
            address: "hanako@example.jp".into(),
            since_ms: at_ms,
            reason: "userunknown".into(),
            evidence: "550 5.1.1 <hanako@example.jp>: user unknown (see: x)".into(),
        },
        Detail::DelayReported {
            mta: Some("mx.example.jp".into()),
            reason: "mailboxfull".into(),
        },
        Detail::DelayReported {
            mta: None,
            reason: "expired".into(),
        },
        Detail::Bounced {
            reason: "userunknown".into(),
            authenticated: true,
        },
        Detail::Bounced {
            reason: "undefined".into(),
            authenticated: false,
        },
        Detail::BytesMissing,
        Detail::BytesUnreadable {
            error: "store damaged: x".into(),
        },
        Detail::Refused {
            reply: "550 5.1.1 no such user".into(),
        },
        Detail::NeverAccepted,
        Detail::AddressSuppressed,
        Detail::ConnectFailed {
            addr: "192.0.2.1:25".into(),
            error: "Connection refused (os error 111)".into(),
        },
        Detail::ConnectTimedOut {
            addr: "[2001:db8::1]:25".into(),
            after: "30s".into(),
        },
        Detail::NoAddress {
            host: "mx.example.jp".into(),
        },
        Detail::CannotResolve {
            host: "relay.example.jp".into(),
            error: "failed to lookup address information".into(),
        },
        Detail::NoSuchDomain {
            domain: "example.invalid".into(),
        },
        Detail::DnsFailed {
            domain: "example.jp".into(),
            error: "request timed out".into(),
        },
        Detail::NullMx {
            domain: "example.jp".into(),
        },
        Detail::TlsFailed {
            host: "mx.example.jp".into(),
            error: "invalid peer certificate: UnknownIssuer".into(),
        },
        Detail::StartTlsFailed {
            host: "mx.example.jp".into(),
            error: "received fatal alert: HandshakeFailure".into(),
        },
        Detail::NoStartTls {
            host: "mx.example.jp".into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_written_before_store_reopens_still_reads() {
        assert_eq!(
            Detail::parse("in flight when the last run stopped; trying again"),
            Some(Detail::Recovered)
        );
    }

    #[test]
    fn every_detail_reads_back_as_written() {
        for d in examples() {
            assert_eq!(Detail::parse(&d.to_string()), Some(d.clone()), "{d}");
        }
    }

    #[test]
    fn the_english_is_what_older_records_hold() {
        assert_eq!(
            Detail::Bounced {
                reason: "userunknown".into(),
                authenticated: true
            }
            .to_string(),
            "bounced permanently: userunknown (VERP-authenticated)"
        );
        assert_eq!(
            Detail::NextTry {
                why: None,
                at_ms: 1_796_000_000_000
            }
            .to_string(),
            "next try at 2026-11-30T00:53:20Z"
        );
        assert_eq!(Detail::parse("/var/mailgate/outbox/1.eml"), None);
        // A server's reply that ends like one of ours is still the server's.
        assert_eq!(Detail::parse("550 5.1.1 this user has no address"), None);
        assert_eq!(
            Detail::parse("the domain example.jp does not exist (NXDOMAIN)"),
            Some(Detail::NoSuchDomain {
                domain: "example.jp".into()
            })
        );
    }
}

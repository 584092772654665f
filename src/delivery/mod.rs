//! Delivery: getting one message to the next hop and saying how it went.
//!
//! Three routes (`delivery.mode`): [`outbox`] writes files, [`smtp`] speaks SMTP to a
//! relay or to the recipient domain's MX hosts ([`mx`] finds them). Every attempt ends
//! in an [`Outcome`], decided in one place ([`classify`]) with exhaustive matches, so a
//! new error variant in mail-send breaks the build instead of being retried forever.

pub mod classify;
pub mod mx;
pub mod outbox;
pub mod smtp;

use serde::{Deserialize, Serialize};

pub use classify::{Class, classify_error, classify_reply};

/// The SMTP envelope of one message: one recipient per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The VERP return path `bounce+ID-MAC@bounce_domain`.
    pub mail_from: String,
    pub rcpt_to: String,
    /// The DSN envelope id (RFC 3461 §4.4): the message id.
    pub envid: String,
}

/// What one attempt learnt about the remote side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptReport {
    pub remote_host: Option<String>,
    pub remote_ip: Option<String>,
    pub smtp_code: Option<u16>,
    pub enhanced_status: Option<String>,
    /// The reply text, or the error for failures without a reply.
    pub reply: Option<String>,
    pub tls: Option<String>,
    pub duration_ms: u64,
    /// Where an outbox delivery wrote the file.
    pub detail: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by the next hop (2xx after DATA), or written to the outbox.
    Delivered(AttemptReport),
    /// Not accepted this time: a 4xx, a timeout, a connection or TLS error.
    Deferred(AttemptReport),
    /// Refused for good: a 5xx.
    Failed(AttemptReport),
}

impl Outcome {
    /// The report, whatever the outcome.
    pub fn report(&self) -> &AttemptReport {
        match self {
            Outcome::Delivered(r) | Outcome::Deferred(r) | Outcome::Failed(r) => r,
        }
    }

    /// The outcome named by a classification.
    pub fn from_class(class: Class, report: AttemptReport) -> Outcome {
        match class {
            Class::Success => Outcome::Delivered(report),
            Class::Temporary => Outcome::Deferred(report),
            Class::Permanent => Outcome::Failed(report),
        }
    }
}

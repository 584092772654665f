//! What mailgate keeps of a bounce and of a suppressed address.

use serde::{Deserialize, Serialize};

/// How a bounce reached mailgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceSource {
    /// The SMTP bounce listener.
    Listener,
    /// `mailgate bounce ingest`.
    Ingest,
    /// `POST /api/v1/bounces`.
    Api,
}

/// One recorded bounce (one per failed recipient of a report; one with no address when
/// nothing in the report could be read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BounceRecord {
    pub at_ms: u64,
    pub source: BounceSource,
    /// The report's kind: dsn, arf, autoreply, ndr.
    pub kind: Option<String>,
    /// Tied to a message by a valid VERP MAC.
    pub authenticated: bool,
    /// The message it is about, when it could be tied to one.
    pub message_id: Option<String>,
    pub flow_id: Option<String>,
    pub address: Option<String>,
    pub recipient_domain: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub permanent: bool,
    pub reason: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// Rejected for who sent it (policy, reputation, authentication), not for the
    /// address: the admin's problem.
    pub sender_problem: bool,
    /// What the bounce changed, in words.
    pub effects: Vec<String>,
}

/// An address mail is no longer sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    pub address: String,
    pub since_ms: u64,
    /// The bounce reason, or "added by NAME".
    pub reason: String,
    /// The evidence: the remote server's words, or the operator's note.
    pub evidence: String,
    /// The message whose bounce put it here.
    pub message_id: Option<String>,
}

/// Reasons that say the address itself is bad: it is suppressed. `suppressed` is a
/// provider's own suppression list (Sisimai's name): mail to it will not be delivered.
pub const ADDRESS_REASONS: [&str; 4] = ["userunknown", "hostunknown", "hasmoved", "suppressed"];

/// Reasons that say the receiver refused the sender: the admin must act, and the
/// address is not blamed.
pub const SENDER_REASONS: [&str; 8] = [
    "blocked",
    "spamdetected",
    "policyviolation",
    "authfailure",
    "securityerror",
    "rejected",
    "virusdetected",
    "norelaying",
];

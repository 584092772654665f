//! One entry of the audit log (who did what, when), as stored and shown on `/admin`.
//!
//! What mailgate itself says about an action (sent or not, and why) is kept as a code
//! with its facts ([`AuditNote`]), not as an English sentence, so a Japanese page words
//! it in Japanese; `target` then names only what the action was about. Words that came
//! from elsewhere (an operator's reason, a remote server's reply) stay as they were
//! written. Entries written before notes existed carry their whole text in `target`.

use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub who: String,
    pub action: String,
    pub target: String,
    /// What came of it, when mailgate has something to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<AuditNote>,
}

/// What came of an audited action, as a code and its facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AuditNote {
    /// A link or an invitation was queued (in this flow).
    Sent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flow: Option<String>,
    },
    /// Nothing was sent.
    NotSent { why: Refusal },
    /// An address left the suppression list: the operator's reason (their words) and
    /// the reason it was listed (a reason name).
    Unsuppressed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        was: String,
    },
    /// A bounce CSV of this period (`7d`), with these filters (query parameters).
    Period { since: String, filters: String },
    /// An operator's role, as set.
    Role { role: String },
    /// How many API keys a revocation ended.
    Keys { count: usize },
}

/// Why a link or an invitation was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// A link went to the address less than `minutes` ago.
    TooSoon { minutes: u64 },
    /// Neither an account nor an earlier flow: nothing to resend.
    Unknown,
    /// An invitation to an address that has an account or a flow.
    Known,
    /// On the suppression list since `since` (a time as shown), for `reason`.
    Suppressed { since: String, reason: String },
    /// The queue refused the mail at once; `detail` is the recorded reply or error,
    /// verbatim.
    Undeliverable { detail: String },
    /// The flow could not start; `detail` verbatim.
    Invalid { detail: String },
}

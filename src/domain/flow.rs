//! A setup or reset flow as stored: the plain record the state machine in `flow` works
//! on and the store keeps. Secrets appear here only as SHA-256 digests (hex); the link
//! token, the code and the browser-binding value themselves are never stored.

use serde::{Deserialize, Serialize};

use super::Address;

/// Why the flow exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// An invitation: the person sets a first password.
    Setup,
    /// A password reset.
    Reset,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Setup => "setup",
            FlowKind::Reset => "reset",
        }
    }

    /// The mail template that carries the link.
    pub fn link_template(self) -> &'static str {
        match self {
            FlowKind::Setup => "invite",
            FlowKind::Reset => "reset",
        }
    }
}

/// Where a flow is. `Issued` … `CodeVerified` are open; the rest are final.
///
/// `issued → mailed → opened → code_sent → code_verified → completed`, or one of
/// `expired`, `undeliverable`, `locked`, `superseded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Created; its link mail is queued.
    Issued,
    /// A server accepted the link mail (or it was written to the outbox).
    Mailed,
    /// The person pressed the button; a code mail is queued.
    Opened,
    /// A server accepted the code mail.
    CodeSent,
    /// The right code was entered in the browser that asked for it.
    CodeVerified,
    /// The password is set; the link is used up.
    Completed,
    /// The link's lifetime ended.
    Expired,
    /// Mail for this flow could not be delivered.
    Undeliverable,
    /// Too many wrong codes in a day.
    Locked,
    /// A newer flow for the same address replaced this one.
    Superseded,
}

impl FlowState {
    /// True while the person can still go on.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            FlowState::Issued
                | FlowState::Mailed
                | FlowState::Opened
                | FlowState::CodeSent
                | FlowState::CodeVerified
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Issued => "issued",
            FlowState::Mailed => "mailed",
            FlowState::Opened => "opened",
            FlowState::CodeSent => "code_sent",
            FlowState::CodeVerified => "code_verified",
            FlowState::Completed => "completed",
            FlowState::Expired => "expired",
            FlowState::Undeliverable => "undeliverable",
            FlowState::Locked => "locked",
            FlowState::Superseded => "superseded",
        }
    }
}

/// The code currently mailed for a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// SHA-256 of the flow id and the code, hex.
    pub hash: String,
    /// SHA-256 of the browser-binding value held in the asking browser's cookie, hex.
    pub binding_hash: String,
    pub issued_ms: u64,
    pub expires_ms: u64,
    /// Tries counted against this code so far.
    pub tries: u32,
    /// Set once the code has been accepted: it cannot be accepted again.
    pub used: bool,
}

/// One line of a flow's timeline: what happened, when. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowNote {
    pub at_ms: u64,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// 32 hex digits from the OS RNG.
    pub id: String,
    pub kind: FlowKind,
    pub address: Address,
    #[serde(default)]
    pub name: Option<String>,
    pub locale: String,
    pub state: FlowState,
    pub created_ms: u64,
    /// When the link stops working.
    pub expires_ms: u64,
    /// SHA-256 of the link token, hex.
    pub link_hash: String,
    /// Messages sent for this flow (link, codes, notice), oldest first.
    #[serde(default)]
    pub message_ids: Vec<String>,
    #[serde(default)]
    pub code: Option<CodeRecord>,
    /// Times of wrong or refused code tries, for the daily cap.
    #[serde(default)]
    pub failures_ms: Vec<u64>,
    #[serde(default)]
    pub undeliverable_reason: Option<String>,
    #[serde(default)]
    pub superseded_by: Option<String>,
    #[serde(default)]
    pub completed_ms: Option<u64>,
    #[serde(default)]
    pub notes: Vec<FlowNote>,
}

impl FlowRecord {
    /// A new flow in state `issued` for `address`: no name, link, code, message or note
    /// yet (the caller fills in what it has).
    pub fn issued(
        id: String,
        kind: FlowKind,
        address: Address,
        locale: String,
        created_ms: u64,
        expires_ms: u64,
    ) -> FlowRecord {
        FlowRecord {
            id,
            kind,
            address,
            name: None,
            locale,
            state: FlowState::Issued,
            created_ms,
            expires_ms,
            link_hash: String::new(),
            message_ids: Vec::new(),
            code: None,
            failures_ms: Vec::new(),
            undeliverable_reason: None,
            superseded_by: None,
            completed_ms: None,
            notes: Vec::new(),
        }
    }
}

/// A person's account as far as mailgate knows it: the argon2id hash of the password
/// set through a flow (a PHC string, which carries its own salt and parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub address: Address,
    pub password_hash: String,
    #[serde(default)]
    pub name: Option<String>,
    pub locale: String,
    pub updated_ms: u64,
}

//! The audit log: who did what, when. Every operator action that changes state or reads
//! a person's delivery log is written here (DESIGN.md: support and admin actions are
//! audited).

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::domain::now_ms;
use crate::store::{Store, StoreError, TreeName, keys};

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub who: String,
    pub action: String,
    pub target: String,
}

/// Appends an entry.
pub fn record(store: &Store, who: &str, action: &str, target: &str) -> Result<(), StoreError> {
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let entry = AuditEntry {
        at_ms: now_ms(),
        who: who.to_string(),
        action: action.to_string(),
        target: target.to_string(),
    };
    store.put_json(
        TreeName::Audit,
        &keys::time_ordered(entry.at_ms, &suffix),
        &entry,
    )
}

//! The audit log: who did what, when. Every operator action that changes state or reads
//! a person's delivery log is written here (DESIGN.md: support and admin actions are
//! audited).

pub use crate::domain::audit::{AuditEntry, AuditNote, Refusal};
use crate::domain::now_ms;
use crate::store::{Store, StoreError};

/// Appends an entry (durable with the caller's next flush).
pub async fn record(
    store: &Store,
    who: &str,
    action: &str,
    target: &str,
) -> Result<(), StoreError> {
    append(store, who, action, target, None).await
}

/// Appends an entry about `target` with what came of it, as a code (see [`AuditNote`]).
pub async fn record_note(
    store: &Store,
    who: &str,
    action: &str,
    target: &str,
    note: AuditNote,
) -> Result<(), StoreError> {
    append(store, who, action, target, Some(note)).await
}

async fn append(
    store: &Store,
    who: &str,
    action: &str,
    target: &str,
    note: Option<AuditNote>,
) -> Result<(), StoreError> {
    store
        .audit_append(&AuditEntry {
            at_ms: now_ms(),
            who: who.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            note,
        })
        .await
}

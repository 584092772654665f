//! Operator accounts and console sessions (the `operators` tree, under a kind prefix),
//! and the audit log (its own tree, in time order).
//!
//! Sessions are keyed by the SHA-256 of their token (never the token itself), so a copy
//! of the store does not let anyone in.

use async_trait::async_trait;
use rand::RngCore;

use crate::domain::audit::AuditEntry;
use crate::store::{OperatorKey, Operators, StoreError};

use super::{Sled, TreeName, decode, keys};

/// The key of an operator record: its kind's prefix, then the id.
fn operator_key(kind: OperatorKey, id: &str) -> Vec<u8> {
    let prefix: &[u8] = match kind {
        OperatorKey::Account => b"account\0",
        OperatorKey::Session => b"session\0",
        OperatorKey::Preferences => b"prefs\0",
    };
    let mut k = prefix.to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

#[async_trait]
impl Operators for Sled {
    async fn operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_json(TreeName::Operators, &operator_key(kind, id))
    }

    async fn put_operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.put_json(TreeName::Operators, &operator_key(kind, id), &value)
    }

    async fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError> {
        self.tree(TreeName::Operators)
            .remove(operator_key(kind, id))
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Sessions are listed with the digest they are stored under, so one can be ended
    /// without its token.
    async fn operator_values(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let prefix = operator_key(kind, "");
        self.tree(TreeName::Operators)
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item.map_err(|e| self.write_error(e))?;
                let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((id, decode(TreeName::Operators, &v)?))
            })
            .collect()
    }

    /// Appends an audit entry, keyed by its time (a random suffix keeps entries of the
    /// same millisecond apart).
    async fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        self.put_json(
            TreeName::Audit,
            &keys::time_ordered(entry.at_ms, &suffix),
            entry,
        )
    }

    /// The newest `limit` audit entries, newest first.
    async fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.tree(TreeName::Audit)
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Audit, &v)
            })
            .collect()
    }
}

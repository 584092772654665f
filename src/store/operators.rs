//! Operator accounts and console sessions (the `operators` tree, under a kind prefix),
//! and the audit log (its own tree, in time order).
//!
//! Sessions are keyed by the SHA-256 of their token (never the token itself), so a copy
//! of the store does not let anyone in.

use serde::Serialize;
use serde::de::DeserializeOwned;

use rand::RngCore;

use crate::domain::audit::AuditEntry;

use super::{Store, StoreError, TreeName, decode, keys};

/// The kinds of record kept in the operators tree.
#[derive(Debug, Clone, Copy)]
pub enum OperatorKey {
    /// An operator account, by name.
    Account,
    /// A session, by the hex SHA-256 of its token.
    Session,
    /// An operator's console language and time zone, by name: kept apart from the
    /// account so saving them can never undo a concurrent disable or new password.
    Preferences,
}

impl OperatorKey {
    fn key(self, id: &str) -> Vec<u8> {
        let prefix: &[u8] = match self {
            OperatorKey::Account => b"account\0",
            OperatorKey::Session => b"session\0",
            OperatorKey::Preferences => b"prefs\0",
        };
        let mut k = prefix.to_vec();
        k.extend_from_slice(id.as_bytes());
        k
    }
}

impl Store {
    /// Reads one record of the operators tree.
    pub fn operator_get<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_json(TreeName::Operators, &kind.key(id))
    }

    /// Writes one record of the operators tree (not durable until flushed).
    pub fn operator_put<T: Serialize>(
        &self,
        kind: OperatorKey,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        self.put_json(TreeName::Operators, &kind.key(id), value)
    }

    /// Removes one record of the operators tree.
    pub fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError> {
        self.tree(TreeName::Operators)
            .remove(kind.key(id))
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Every record of one kind, in key order.
    pub fn operator_all<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<T>, StoreError> {
        self.tree(TreeName::Operators)
            .scan_prefix(kind.key(""))
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Operators, &v)
            })
            .collect()
    }

    /// Every record of one kind with its id (the key without the kind's prefix), in key
    /// order: sessions are listed with the digest they are stored under, so one can be
    /// ended without its token.
    pub fn operator_entries<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let prefix = kind.key("");
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
    pub fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        self.put_json(
            TreeName::Audit,
            &keys::time_ordered(entry.at_ms, &suffix),
            entry,
        )
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
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

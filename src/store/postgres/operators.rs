//! Operator accounts and console sessions (one keyed table, kind prefix + id, as the
//! sled store keys them) and the audit log, in PostgreSQL.

use async_trait::async_trait;

use crate::domain::audit::AuditEntry;
use crate::store::{OperatorKey, Operators};

use super::{Postgres, StoreError, decode, encode, ms};

const TABLE: &str = "operators";

/// The key prefix of a kind: the bytes the sled store uses, so a copy keeps its keys.
fn prefix(kind: OperatorKey) -> &'static [u8] {
    match kind {
        OperatorKey::Account => b"account\0",
        OperatorKey::Session => b"session\0",
        OperatorKey::Preferences => b"prefs\0",
    }
}

fn key(kind: OperatorKey, id: &str) -> Vec<u8> {
    let mut k = prefix(kind).to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

impl Postgres {
    async fn operator_rows(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT key, record FROM operators
                 WHERE substring(key FROM 1 FOR octet_length($1::bytea)) = $1::bytea ORDER BY key",
                &[&prefix(kind)],
            )
            .await
            .map_err(self.query_error("listing operator records"))
    }
}

#[async_trait]
impl Operators for Postgres {
    /// Reads one operator record.
    async fn operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record FROM operators WHERE key = $1")
            .await
            .map_err(self.query_error("reading an operator record"))?;
        let row = client
            .query_opt(&stmt, &[&key(kind, id)])
            .await
            .map_err(self.query_error("reading an operator record"))?;
        row.map(|r| decode(TABLE, r.get(0))).transpose()
    }

    /// Writes one operator record.
    async fn put_operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        let json = value;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO operators (key, record) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record",
            )
            .await
            .map_err(self.query_error("writing an operator record"))?;
        client
            .execute(&stmt, &[&key(kind, id), &json])
            .await
            .map_err(self.query_error("writing an operator record"))?;
        Ok(())
    }

    /// Removes one operator record.
    async fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM operators WHERE key = $1", &[&key(kind, id)])
            .await
            .map_err(self.query_error("removing an operator record"))?;
        Ok(())
    }

    /// Every record of one kind with its id (the key without the kind's prefix), in key
    /// order.
    async fn operator_values(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let skip = prefix(kind).len();
        self.operator_rows(kind)
            .await?
            .into_iter()
            .map(|r| {
                let k: &[u8] = r.get(0);
                let id = String::from_utf8_lossy(&k[skip.min(k.len())..]).into_owned();
                Ok((id, decode(TABLE, r.get(1))?))
            })
            .collect()
    }

    /// Appends an audit entry.
    async fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let json = encode("audit", entry)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO audit (at_ms, record) VALUES ($1, $2)",
                &[&ms(entry.at_ms), &json],
            )
            .await
            .map_err(self.query_error("writing the audit log"))?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    async fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM audit ORDER BY at_ms DESC, seq DESC LIMIT $1",
                &[&ms(limit as u64)],
            )
            .await
            .map_err(self.query_error("reading the audit log"))?;
        rows.into_iter()
            .map(|r| decode("audit", r.get(0)))
            .collect()
    }
}

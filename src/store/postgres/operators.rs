//! Operator accounts and console sessions (one keyed table, kind prefix + id, as the
//! sled store keys them) and the audit log, in PostgreSQL.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::audit::AuditEntry;
use crate::store::operators::OperatorKey;

use super::{Postgres, StoreError, decode, encode, ms};

const TABLE: &str = "operators";

/// The key prefix of a kind: the bytes the sled store uses, so a copy keeps its keys.
fn prefix(kind: OperatorKey) -> &'static [u8] {
    match kind {
        OperatorKey::Account => b"account\0",
        OperatorKey::Session => b"session\0",
    }
}

fn key(kind: OperatorKey, id: &str) -> Vec<u8> {
    let mut k = prefix(kind).to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

impl Postgres {
    /// Reads one operator record.
    pub async fn operator_get<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
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
    pub async fn operator_put<T: Serialize + Sync>(
        &self,
        kind: OperatorKey,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = encode(TABLE, value)?;
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
    pub async fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM operators WHERE key = $1", &[&key(kind, id)])
            .await
            .map_err(self.query_error("removing an operator record"))?;
        Ok(())
    }

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

    /// Every record of one kind, in key order.
    pub async fn operator_all<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<T>, StoreError> {
        self.operator_rows(kind)
            .await?
            .into_iter()
            .map(|r| decode(TABLE, r.get(1)))
            .collect()
    }

    /// Every record of one kind with its id (the key without the kind's prefix), in key
    /// order.
    pub async fn operator_entries<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, T)>, StoreError> {
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
    pub async fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
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
    pub async fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
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

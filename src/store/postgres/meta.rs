//! API keys, settings, counters and the health probe, in PostgreSQL.
//!
//! A counter is a few shard rows per kind and label, each added to with one `INSERT …
//! ON CONFLICT DO UPDATE` (atomic however many nodes count at once), and read as their
//! sum.

use async_trait::async_trait;

use crate::domain::apikey::ApiKeyRecord;

use crate::store::{Keys, Meta};

use super::{Postgres, StoreError, count_sql, counter_shard, decode, encode, ms, unms};

#[async_trait]
impl Keys for Postgres {
    /// Stores an API key's record under the key's digest.
    async fn api_key_put(
        &self,
        digest: &[u8; 32],
        record: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let json = encode("api_keys", record)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO api_keys (hash, record) VALUES ($1, $2)
                 ON CONFLICT (hash) DO UPDATE SET record = EXCLUDED.record",
                &[&digest.as_slice(), &json],
            )
            .await
            .map_err(self.query_error("writing an API key"))?;
        Ok(())
    }

    /// The record of the key with this digest.
    async fn api_key_get(&self, digest: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record FROM api_keys WHERE hash = $1")
            .await
            .map_err(self.query_error("reading an API key"))?;
        let row = client
            .query_opt(&stmt, &[&digest.as_slice()])
            .await
            .map_err(self.query_error("reading an API key"))?;
        row.map(|r| decode("api_keys", r.get(0))).transpose()
    }

    /// Every API key's record with its digest, in digest order.
    async fn api_keys(&self) -> Result<Vec<([u8; 32], ApiKeyRecord)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT hash, record FROM api_keys ORDER BY hash", &[])
            .await
            .map_err(self.query_error("listing API keys"))?;
        rows.into_iter()
            .map(|r| {
                let k: &[u8] = r.get(0);
                let mut digest = [0u8; 32];
                if k.len() == 32 {
                    digest.copy_from_slice(k);
                }
                Ok((digest, decode("api_keys", r.get(1))?))
            })
            .collect()
    }
}

#[async_trait]
impl Meta for Postgres {
    /// Adds `n` to the counter `kind{label}` atomically.
    async fn counter_add(&self, kind: &str, label: &str, n: u64) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&count_sql(1, 2, 3, 4))
            .await
            .map_err(self.query_error("counting"))?;
        client
            .execute(&stmt, &[&kind, &label, &counter_shard(), &ms(n)])
            .await
            .map_err(self.query_error("counting"))?;
        Ok(())
    }

    /// Every label of the counter `kind` with its value, in label order (bytewise, as
    /// the sled store orders them).
    async fn counters(&self, kind: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT label, sum(value)::bigint FROM counters WHERE kind = $1
                 GROUP BY label ORDER BY label COLLATE \"C\"",
            )
            .await
            .map_err(self.query_error("reading counters"))?;
        let rows = client
            .query(&stmt, &[&kind])
            .await
            .map_err(self.query_error("reading counters"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), unms(r.get(1))))
            .collect())
    }

    /// The labels of `kind` in `from..to`, compared bytewise as sled compares them.
    async fn counters_between(
        &self,
        kind: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT label, sum(value)::bigint FROM counters
                 WHERE kind = $1 AND label COLLATE \"C\" >= $2 AND label COLLATE \"C\" < $3
                 GROUP BY label ORDER BY label COLLATE \"C\"",
            )
            .await
            .map_err(self.query_error("reading counters"))?;
        let rows = client
            .query(&stmt, &[&kind, &from, &to])
            .await
            .map_err(self.query_error("reading counters"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), unms(r.get(1))))
            .collect())
    }

    /// Deletes the labels of `kind` before `before` (bytewise).
    async fn forget_counters_before(&self, kind: &str, before: &str) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM counters WHERE kind = $1 AND label COLLATE \"C\" < $2",
                &[&kind, &before],
            )
            .await
            .map_err(self.query_error("forgetting old counters"))?;
        Ok(n as usize)
    }

    /// A setting the program keeps for itself, by name.
    async fn setting_value(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&name])
            .await
            .map_err(self.query_error("reading a setting"))?;
        row.map(|r| decode("settings", r.get(0))).transpose()
    }

    /// Writes a setting.
    async fn setting_or_insert_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        let client = self.client().await?;
        let failed = || self.query_error("creating a setting");
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&name, &value],
            )
            .await
            .map_err(failed())?;
        let row = client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&name])
            .await
            .map_err(failed())?;
        Ok(row.get(0))
    }

    async fn set_setting_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        let json = value;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&name, &json],
            )
            .await
            .map_err(self.query_error("writing a setting"))?;
        Ok(())
    }

    /// Proves the database answers (`SELECT 1` on a pooled connection).
    async fn check_health(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(self.query_error("the health probe"))?;
        Ok(())
    }
}

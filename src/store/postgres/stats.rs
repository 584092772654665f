//! Counts over the PostgreSQL store: open messages by status through the queue's
//! partial index (a scrape costs the size of the queue, not of the history), and the
//! whole-table counts reports use.

use std::collections::BTreeMap;

use crate::domain::MessageStatus;

use super::{Postgres, StoreError};

/// A status as stored in the `status` column, back to its `&'static str`.
fn status_name(text: &str) -> Result<&'static str, StoreError> {
    serde_json::from_value::<MessageStatus>(serde_json::Value::String(text.to_string()))
        .map(MessageStatus::as_str)
        .map_err(|e| StoreError::Corrupt {
            tree: "messages",
            detail: format!("status {text:?}: {e}"),
        })
}

impl Postgres {
    async fn status_counts(&self, sql: &str) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(sql, &[])
            .await
            .map_err(self.query_error("counting messages"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let n: i64 = r.get(1);
            *out.entry(status_name(r.get(0))?).or_insert(0) += n as u64;
        }
        Ok(out)
    }

    /// How many open messages (those in the queue) are in each status, read through the
    /// partial index on `due_ms`.
    pub(super) async fn count_open_by_status(
        &self,
    ) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        self.status_counts(
            "SELECT status, count(*) FROM messages WHERE due_ms IS NOT NULL GROUP BY status",
        )
        .await
    }

    /// How many messages are open (queued, being sent or waiting for a retry): one
    /// count over the queue's partial index, whatever the size of the history.
    pub async fn open_message_count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM messages WHERE due_ms IS NOT NULL")
            .await
            .map_err(self.query_error("counting open messages"))?;
        let n: i64 = client
            .query_one(&stmt, &[])
            .await
            .map_err(self.query_error("counting open messages"))?
            .get(0);
        Ok(n as u64)
    }

    /// How many messages are in each status.
    pub(super) async fn count_all_by_status(
        &self,
    ) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        self.status_counts("SELECT status, count(*) FROM messages GROUP BY status")
            .await
    }

    /// How many bounces were recorded for each reason (`undefined` when none was found).
    pub(super) async fn count_bounces_by_reason(
        &self,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT coalesce(record->>'reason', 'undefined'), count(*) FROM bounces
                 GROUP BY 1",
                &[],
            )
            .await
            .map_err(self.query_error("counting bounces"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect())
    }
}

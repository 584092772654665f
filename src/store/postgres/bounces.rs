//! Bounce records (in arrival order) and the suppression list, in PostgreSQL.

use crate::domain::EventRecord;
use crate::domain::bounce::{BounceRecord, Suppression};

use async_trait::async_trait;

use crate::store::Bounces;

use super::events::insert_event_sql;
use super::{Postgres, StoreError, count_sql, counter_shard, decode, encode, ms};

#[async_trait]
impl Bounces for Postgres {
    /// Appends a bounce record and counts it under its reason
    /// (`mailgate_bounces_total`), with its event if any, in one statement.
    async fn insert_bounce(
        &self,
        record: &BounceRecord,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError> {
        let json = encode("bounces", record)?;
        let reason = record.reason.as_deref().unwrap_or("undefined");
        let client = self.client().await?;
        let (event_id, event_json) = match &told {
            Some(e) => (Some(e.id.as_str()), Some(encode("events", e)?)),
            None => (None, None),
        };
        // The event row only when there is one ($7 null: none).
        let sql = format!(
            "WITH bounce AS (INSERT INTO bounces (at_ms, record) VALUES ($1, $2)),
                  event AS (INSERT INTO events (id, record) SELECT $7::text, $8::jsonb
                            WHERE $7::text IS NOT NULL)
             {}",
            count_sql(3, 4, 5, 6)
        );
        client
            .execute(
                &sql,
                &[
                    &ms(record.at_ms),
                    &json,
                    &"bounces",
                    &reason,
                    &counter_shard(),
                    &1i64,
                    &event_id,
                    &event_json,
                ],
            )
            .await
            .map_err(self.query_error("storing a bounce"))?;
        Ok(())
    }

    /// Bounces recorded at or after `since_ms`, oldest first.
    async fn bounces_since(&self, since_ms: u64) -> Result<Vec<BounceRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM bounces WHERE at_ms >= $1 ORDER BY at_ms, seq",
                &[&ms(since_ms)],
            )
            .await
            .map_err(self.query_error("reading bounces"))?;
        rows.into_iter()
            .map(|r| decode("bounces", r.get(0)))
            .collect()
    }

    async fn recent_bounces(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<BounceRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM (
                     SELECT record, at_ms, seq FROM bounces WHERE at_ms >= $1
                     ORDER BY at_ms DESC, seq DESC LIMIT $2
                 ) newest ORDER BY at_ms, seq",
                &[&ms(since_ms), &ms(limit as u64)],
            )
            .await
            .map_err(self.query_error("reading recent bounces"))?;
        rows.into_iter()
            .map(|r| decode("bounces", r.get(0)))
            .collect()
    }

    /// The suppression entry of an address, if any.
    async fn prune_bounces(&self, before_ms: u64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM bounces WHERE at_ms < $1", &[&ms(before_ms)])
            .await
            .map_err(self.query_error("forgetting old bounces"))?;
        Ok(n as usize)
    }

    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record FROM suppression WHERE address = $1")
            .await
            .map_err(self.query_error("reading the suppression list"))?;
        let row = client
            .query_opt(&stmt, &[&address])
            .await
            .map_err(self.query_error("reading the suppression list"))?;
        row.map(|r| decode("suppression", r.get(0))).transpose()
    }

    /// Adds or replaces a suppression entry, with its event, in one statement.
    async fn suppress(
        &self,
        entry: &Suppression,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError> {
        let json = encode("suppression", entry)?;
        let upsert = "INSERT INTO suppression (address, record) VALUES ($1, $2)
                      ON CONFLICT (address) DO UPDATE SET record = EXCLUDED.record";
        let client = self.client().await?;
        let failed = || self.query_error("writing the suppression list");
        match told {
            Some(event) => {
                let event_json = encode("events", &event)?;
                let sql = format!("WITH event AS ({}) {upsert}", insert_event_sql(3, 4));
                client
                    .execute(&sql, &[&entry.address, &json, &event.id, &event_json])
                    .await
                    .map_err(failed())?;
            }
            None => {
                client
                    .execute(upsert, &[&entry.address, &json])
                    .await
                    .map_err(failed())?;
            }
        }
        Ok(())
    }

    /// Removes an address from the list and returns the entry that was there, with its
    /// event, in one transaction.
    async fn unsuppress(
        &self,
        address: &str,
        told: &(dyn for<'s> Fn(&'s Suppression) -> EventRecord + Send + Sync),
    ) -> Result<Option<Suppression>, StoreError> {
        let mut client = self.client().await?;
        let failed = || self.query_error("writing the suppression list");
        let tx = client.transaction().await.map_err(failed())?;
        let row = tx
            .query_opt(
                "DELETE FROM suppression WHERE address = $1 RETURNING record",
                &[&address],
            )
            .await
            .map_err(failed())?;
        let Some(row) = row else {
            return Ok(None);
        };
        let old: Suppression = decode("suppression", row.get(0))?;
        let event = told(&old);
        let event_json = encode("events", &event)?;
        tx.execute(&insert_event_sql(1, 2), &[&event.id, &event_json])
            .await
            .map_err(failed())?;
        tx.commit().await.map_err(failed())?;
        Ok(Some(old))
    }

    /// The whole suppression list, by address (bytewise, as the sled store orders it).
    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM suppression ORDER BY address COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(self.query_error("reading the suppression list"))?;
        rows.into_iter()
            .map(|r| decode("suppression", r.get(0)))
            .collect()
    }

    async fn bounce_reason_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.count_bounces_by_reason().await
    }
}

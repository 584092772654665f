//! The event log and webhook deliveries, in PostgreSQL.
//!
//! An event is inserted without a number, by the statement that makes the change it
//! describes, so writers never wait for one another. Numbers are given afterwards by
//! [`Postgres::number_events`]: a short transaction under an advisory lock numbers the
//! committed events in insertion order, above every number given before. A reader
//! numbers what is pending before it reads and sees only numbered events, so numbers
//! appear in order and a feed cursor never passes an event committed late.
//! Deliveries are claimed as messages are: `FOR UPDATE SKIP LOCKED` hands each due one
//! to a single claimer, which moves its next try a lease ahead.

use async_trait::async_trait;
use tokio_postgres::Row;

use crate::domain::{DeliveryState, EventRecord, WebhookDelivery};
use crate::store::Events;

use super::{Postgres, StoreError, decode, encode, ms, unms};

/// The advisory lock held while events are numbered ("events" in ASCII).
const NUMBER_LOCK: i64 = 0x0000_6576_656e_7473;

/// At most this many events are numbered by one sequencer transaction.
const NUMBER_BATCH: i64 = 10_000;

/// The statement that inserts an unnumbered event, its id and record at `$id`, `$rec`.
pub(super) fn insert_event_sql(id: usize, rec: usize) -> String {
    format!("INSERT INTO events (id, record) VALUES (${id}, ${rec})")
}

/// An event row (`seq`, `record`): the record with the number the sequencer gave it.
fn numbered(row: &Row) -> Result<EventRecord, StoreError> {
    let mut event: EventRecord = decode("events", row.get(1))?;
    event.seq = unms(row.get(0));
    Ok(event)
}

impl Postgres {
    /// Numbers the committed events that have no number yet, in insertion order. One
    /// round trip: the lock and the update run as one implicit transaction, and the
    /// update's snapshot is taken after the lock is held, so it sees every number
    /// given before. Events committed meanwhile are numbered by the next call.
    pub(super) async fn number_events(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({NUMBER_LOCK});
                 WITH base AS (SELECT coalesce(max(seq), 0) AS n FROM events),
                      todo AS (
                          SELECT pos, row_number() OVER (ORDER BY pos) AS k FROM events
                          WHERE seq IS NULL ORDER BY pos LIMIT {NUMBER_BATCH}
                      )
                 UPDATE events e SET seq = base.n + todo.k
                 FROM todo, base WHERE e.pos = todo.pos"
            ))
            .await
            .map_err(self.query_error("numbering events"))
    }
}

#[async_trait]
impl Events for Postgres {
    /// Inserts the event unnumbered (see the module's note); returns 0.
    async fn append_event(&self, event: &mut EventRecord) -> Result<u64, StoreError> {
        let json = encode("events", event)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&insert_event_sql(1, 2))
            .await
            .map_err(self.query_error("appending an event"))?;
        client
            .execute(&stmt, &[&event.id, &json])
            .await
            .map_err(self.query_error("appending an event"))?;
        Ok(0)
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.number_events().await?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT seq, record FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .await
            .map_err(self.query_error("reading events"))?;
        let rows = client
            .query(&stmt, &[&ms(after), &(limit.min(i64::MAX as usize) as i64)])
            .await
            .map_err(self.query_error("reading events"))?;
        rows.iter().map(numbered).collect()
    }

    async fn event_by_id(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.number_events().await?;
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT seq, record FROM events WHERE id = $1 AND seq IS NOT NULL",
                &[&id],
            )
            .await
            .map_err(self.query_error("reading an event"))?;
        row.as_ref().map(numbered).transpose()
    }

    async fn last_event_seq(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT coalesce(max(seq), 0) FROM events", &[])
            .await
            .map_err(self.query_error("reading events"))?;
        Ok(unms(row.get(0)))
    }

    async fn put_delivery(&self, d: &WebhookDelivery) -> Result<(), StoreError> {
        let json = encode("webhook_deliveries", d)?;
        let next = match d.state {
            DeliveryState::Pending => d.next_try_ms.map(ms),
            _ => None,
        };
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO webhook_deliveries (endpoint, event_seq, next_try_ms, record)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (endpoint, event_seq) DO UPDATE
                 SET next_try_ms = EXCLUDED.next_try_ms, record = EXCLUDED.record",
                &[&d.endpoint, &ms(d.event_seq), &next, &json],
            )
            .await
            .map_err(self.query_error("writing a webhook delivery"))?;
        Ok(())
    }

    async fn delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM webhook_deliveries WHERE endpoint = $1 AND event_seq = $2",
                &[&endpoint, &ms(event_seq)],
            )
            .await
            .map_err(self.query_error("reading a webhook delivery"))?;
        row.map(|r| decode("webhook_deliveries", r.get(0)))
            .transpose()
    }

    async fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "WITH due AS (
                     SELECT endpoint, event_seq FROM webhook_deliveries
                     WHERE next_try_ms <= $1
                     ORDER BY next_try_ms LIMIT $3 FOR UPDATE SKIP LOCKED
                 )
                 UPDATE webhook_deliveries d SET next_try_ms = $2,
                     record = jsonb_set(d.record, '{next_try_ms}', to_jsonb($2::bigint))
                 FROM due WHERE d.endpoint = due.endpoint AND d.event_seq = due.event_seq
                 RETURNING d.record",
                &[
                    &ms(now_ms),
                    &ms(lease_until_ms),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await
            .map_err(self.query_error("claiming webhook deliveries"))?;
        let mut out: Vec<WebhookDelivery> = rows
            .into_iter()
            .map(|r| decode("webhook_deliveries", r.get(0)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|d| d.event_seq);
        Ok(out)
    }

    async fn recent_deliveries(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM webhook_deliveries WHERE endpoint = $1
                 ORDER BY event_seq DESC LIMIT $2",
                &[&endpoint, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(self.query_error("reading webhook deliveries"))?;
        rows.into_iter()
            .map(|r| decode("webhook_deliveries", r.get(0)))
            .collect()
    }

    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        // The cut is made among numbered events: number the ones still waiting first.
        self.number_events().await?;
        let mut client = self.client().await?;
        let failed = |what| self.query_error(what);
        // The oldest events that may go: below the last one and below the first that a
        // delivery is still pending for (both indexed, see migration 0004).
        let rows = client
            .query(
                "SELECT seq, record->>'timestamp' FROM events
                 WHERE seq < (SELECT max(seq) FROM events)
                   AND seq < coalesce((SELECT min(event_seq) FROM webhook_deliveries
                                       WHERE next_try_ms IS NOT NULL), 9223372036854775807)
                 ORDER BY seq LIMIT $1",
                &[&(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(failed("choosing old events to forget"))?;
        let mut cut = None;
        let mut gone = 0;
        for row in &rows {
            let timestamp: Option<String> = row.get(1);
            // Unreadable times count as old: their neighbours in the log bound them.
            let time = timestamp
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp_millis());
            if time.is_some_and(|t| t >= ms(before_ms)) {
                break;
            }
            cut = Some(row.get::<_, i64>(0));
            gone += 1;
        }
        let Some(cut) = cut else {
            return Ok(0);
        };
        let tx = client
            .transaction()
            .await
            .map_err(failed("forgetting old events"))?;
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE event_seq <= $1 AND next_try_ms IS NULL",
            &[&cut],
        )
        .await
        .map_err(failed("forgetting old webhook deliveries"))?;
        tx.execute("DELETE FROM events WHERE seq <= $1", &[&cut])
            .await
            .map_err(failed("forgetting old events"))?;
        tx.commit().await.map_err(failed("forgetting old events"))?;
        Ok(gone)
    }
}

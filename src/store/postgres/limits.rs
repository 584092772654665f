//! Rate limits in PostgreSQL: one row per key, so a limit holds across nodes.
//!
//! A take locks the key's row (an upsert that returns it), decides with the same fixed-window rule as the sled store and writes the
//! window back, all in one transaction: however many requests arrive at once, on
//! however many nodes, no more than `max` are let through per window.
//! The rule itself is `store::limits::Window`, shared with the sled backend.
//!
//! Connection slots to a destination are rows too (`domain_slots`), one per slot
//! number below the cap, each held by one node until its lease ends: the cap on
//! connections to one domain holds across the cluster, and a dead node's slots lapse.

use async_trait::async_trait;

use crate::store::Limits;
use crate::store::limits::{Grant, LimitKey, Rule, Window};

use super::{Postgres, StoreError, ms, unms};

#[async_trait]
impl Limits for Postgres {
    /// Takes up to `n` slots of `key` under `rule` at `now`, atomically across nodes.
    async fn limit_take_up_to(
        &self,
        key: &LimitKey,
        rule: Rule,
        now: u64,
        n: u32,
    ) -> Result<Grant, StoreError> {
        let bytes = key.bytes();
        let mut client = self.client().await?;
        let failed = |what| self.query_error(what);
        let tx = client
            .transaction()
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        // A window is not worth a disk flush: with the commit asynchronous the row's lock
        // is held for the statements only, not across a WAL flush, so requests under one
        // key (every call of an API key) do not queue behind each other's flushes. A
        // crash can forget the last fraction of a second of counts, never more.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        // Makes sure the row exists and locks it, in one statement.
        let lock = tx
            .prepare_cached(
                "INSERT INTO limits (key, start_ms, count, shut_until_ms) VALUES ($1, 0, 0, 0)
                 ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
                 RETURNING start_ms, count, shut_until_ms",
            )
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        let row = tx
            .query_one(&lock, &[&bytes])
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        let old = Window {
            start_ms: unms(row.get(0)),
            count: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
            shut_until_ms: unms(row.get(2)),
        };
        let (next, grant) = old.take_up_to(rule, now, n);
        if next != old {
            let update = tx
                .prepare_cached(
                    "UPDATE limits SET start_ms = $2, count = $3, shut_until_ms = $4
                     WHERE key = $1",
                )
                .await
                .map_err(failed("taking a rate-limit slot"))?;
            let count = i32::try_from(next.count).unwrap_or(i32::MAX);
            tx.execute(
                &update,
                &[&bytes, &ms(next.start_ms), &count, &ms(next.shut_until_ms)],
            )
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        }
        tx.commit()
            .await
            .map_err(failed("taking a rate-limit slot"))?;
        Ok(grant)
    }

    /// Gives back one slot taken from `key`; the key opens again if it had shut. One
    /// statement, so atomic.
    async fn limit_refund(&self, key: &LimitKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE limits SET count = greatest(count - 1, 0), shut_until_ms = 0
                 WHERE key = $1",
            )
            .await
            .map_err(self.query_error("refunding a rate-limit slot"))?;
        client
            .execute(&stmt, &[&key.bytes()])
            .await
            .map_err(self.query_error("refunding a rate-limit slot"))?;
        Ok(())
    }

    /// Forgets `key`'s window.
    async fn limit_clear(&self, key: &LimitKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM limits WHERE key = $1", &[&key.bytes()])
            .await
            .map_err(self.query_error("clearing a rate limit"))?;
        Ok(())
    }

    /// Forgets every window of `scope` whose subject starts with `first` as its first part.
    async fn limit_clear_prefix(&self, scope: &'static str, first: &str) -> Result<(), StoreError> {
        let prefix = LimitKey::new(scope, &[first, ""]).bytes();
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM limits WHERE substring(key FROM 1 FOR octet_length($1::bytea)) = $1::bytea",
                &[&prefix],
            )
            .await
            .map_err(self.query_error("clearing rate limits"))?;
        Ok(())
    }

    /// Forgets the windows that ended before `now`; returns how many went.
    async fn limit_prune(&self, longest_window_ms: u64, now: u64) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let gone = client
            .execute(
                "DELETE FROM limits WHERE greatest($1 - start_ms, 0) >= $2 AND $1 >= shut_until_ms",
                &[&ms(now), &ms(longest_window_ms)],
            )
            .await
            .map_err(self.query_error("pruning rate limits"))?;
        Ok(gone as usize)
    }

    /// Takes a free slot number below `cap` (one never taken, released, or lapsed), at
    /// random among the free ones so that takers at once rarely want the same; two that
    /// do meet on the row's primary key, and the loser tries again.
    async fn take_connection_slot(
        &self,
        destination: &str,
        holder: &str,
        cap: usize,
        until_ms: u64,
        now: u64,
    ) -> Result<Option<u32>, StoreError> {
        let client = self.client().await?;
        let failed = || self.query_error("taking a connection slot");
        let stmt = client
            .prepare_cached(
                "WITH free AS (
                     SELECT s FROM generate_series(0, $3::int - 1) s
                     WHERE NOT EXISTS (
                         SELECT 1 FROM domain_slots d
                         WHERE d.domain = $1 AND d.slot = s AND d.until_ms > $5)
                     ORDER BY random() LIMIT 1
                 )
                 INSERT INTO domain_slots (domain, node, slot, until_ms)
                 SELECT $1, $2, s, $4 FROM free
                 ON CONFLICT (domain, slot) DO UPDATE
                     SET node = EXCLUDED.node, until_ms = EXCLUDED.until_ms
                     WHERE domain_slots.until_ms <= $5
                 RETURNING slot",
            )
            .await
            .map_err(failed())?;
        let cap = i32::try_from(cap).unwrap_or(i32::MAX);
        for _ in 0..3 {
            let row = client
                .query_opt(
                    &stmt,
                    &[&destination, &holder, &cap, &ms(until_ms), &ms(now)],
                )
                .await
                .map_err(failed())?;
            if let Some(row) = row {
                return Ok(Some(row.get::<_, i32>(0).max(0) as u32));
            }
            // Nothing free, or another taker won the one this one chose: look again
            // only if some slot still looks free.
            let free: bool = client
                .query_one(
                    "SELECT count(*) < $2 FROM domain_slots WHERE domain = $1 AND until_ms > $3",
                    &[&destination, &(cap as i64), &ms(now)],
                )
                .await
                .map_err(failed())?
                .get(0);
            if !free {
                break;
            }
        }
        Ok(None)
    }

    async fn release_connection_slot(
        &self,
        destination: &str,
        slot: u32,
        holder: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM domain_slots WHERE domain = $1 AND slot = $2 AND node = $3",
                &[&destination, &(slot as i32), &holder],
            )
            .await
            .map_err(self.query_error("giving back a connection slot"))?;
        Ok(())
    }

    async fn renew_connection_slots(&self, holder: &str, until_ms: u64) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE domain_slots SET until_ms = $2 WHERE node = $1",
                &[&holder, &ms(until_ms)],
            )
            .await
            .map_err(self.query_error("renewing connection slots"))?;
        Ok(())
    }
}

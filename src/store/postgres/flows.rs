//! Flows, their link tokens, the current flow per address, and accounts, in PostgreSQL.
//!
//! Every change to a flow goes through `change_flow`: a transaction that
//! locks the flow's row (`SELECT … FOR UPDATE`), applies the change and writes it back.
//! Callers on other connections or other nodes wait for the lock and then see the
//! newer record, so "count a try" and "use the code up" stay atomic across nodes: of
//! many racing right answers exactly one sees the code unused.

use crate::domain::{AccountRecord, FlowRecord, FlowState};

use async_trait::async_trait;

use crate::store::{Flows, Tells};

use super::events::insert_event_sql;
use super::{Postgres, StoreError, count_sql, counter_shard, decode, encode};

const TABLE: &str = "flows";

#[async_trait]
impl Flows for Postgres {
    /// Stores a new flow and indexes its link token, in one statement.
    async fn insert_flow(&self, flow: &FlowRecord, link_hash: &[u8; 32]) -> Result<(), StoreError> {
        let json = encode(TABLE, flow)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH token AS (
                     INSERT INTO link_tokens (hash, flow_id) VALUES ($4, $1)
                     ON CONFLICT (hash) DO UPDATE SET flow_id = EXCLUDED.flow_id
                 )
                 INSERT INTO flows (id, state, record) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, record = EXCLUDED.record",
            )
            .await
            .map_err(self.query_error("storing a flow"))?;
        client
            .execute(
                &stmt,
                &[&flow.id, &flow.state.as_str(), &json, &link_hash.as_slice()],
            )
            .await
            .map_err(self.query_error("storing a flow"))?;
        Ok(())
    }

    /// How many flows are in `state` (for metrics), through the index on `state`.
    async fn count_flows_in_state(&self, state: FlowState) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM flows WHERE state = $1")
            .await
            .map_err(self.query_error("counting flows"))?;
        let n: i64 = client
            .query_one(&stmt, &[&state.as_str()])
            .await
            .map_err(self.query_error("counting flows"))?
            .get(0);
        Ok(n as u64)
    }

    /// Reads a flow by id.
    async fn flow(&self, id: &str) -> Result<Option<FlowRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record FROM flows WHERE id = $1")
            .await
            .map_err(self.query_error("reading a flow"))?;
        let row = client
            .query_opt(&stmt, &[&id])
            .await
            .map_err(self.query_error("reading a flow"))?;
        row.map(|r| decode(TABLE, r.get(0))).transpose()
    }

    /// The flow a link token (given as its SHA-256) belongs to.
    async fn flow_by_link_hash(&self, hash: &[u8; 32]) -> Result<Option<FlowRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT f.record FROM link_tokens t JOIN flows f ON f.id = t.flow_id
                 WHERE t.hash = $1",
            )
            .await
            .map_err(self.query_error("reading a flow by its link"))?;
        let row = client
            .query_opt(&stmt, &[&hash.as_slice()])
            .await
            .map_err(self.query_error("reading a flow by its link"))?;
        row.map(|r| decode(TABLE, r.get(0))).transpose()
    }

    /// Applies `change` to the stored flow atomically: the row is locked while the
    /// closure runs, so concurrent callers (on any node) apply their changes one after
    /// the other and none is lost. Returns the record as written and the closure's
    /// result, or `None` when there is no such flow. The closure runs once.
    async fn change_flow(
        &self,
        id: &str,
        change: &mut (dyn for<'r> FnMut(&'r mut FlowRecord) -> Tells + Send),
    ) -> Result<Option<FlowRecord>, StoreError> {
        let mut client = self.client().await?;
        let failed = |what| self.query_error(what);
        let tx = client
            .transaction()
            .await
            .map_err(failed("updating a flow"))?;
        let select = tx
            .prepare_cached("SELECT record FROM flows WHERE id = $1 FOR UPDATE")
            .await
            .map_err(failed("updating a flow"))?;
        let Some(row) = tx
            .query_opt(&select, &[&id])
            .await
            .map_err(failed("updating a flow"))?
        else {
            return Ok(None);
        };
        let old: serde_json::Value = row.get(0);
        let mut record: FlowRecord = decode(TABLE, old.clone())?;
        let tells = change(&mut record);
        let new = encode(TABLE, &record)?;
        if new == old {
            // Nothing changed: the transaction ends without a write (rolled back on drop).
            return Ok(Some(record));
        }
        let update = tx
            .prepare_cached("UPDATE flows SET state = $2, record = $3 WHERE id = $1")
            .await
            .map_err(failed("updating a flow"))?;
        tx.execute(&update, &[&id, &record.state.as_str(), &new])
            .await
            .map_err(failed("updating a flow"))?;
        // What the change tells commits with it.
        if let Some(event) = &tells.event {
            let json = encode("events", event)?;
            tx.execute(&insert_event_sql(1, 2), &[&event.id, &json])
                .await
                .map_err(failed("updating a flow"))?;
        }
        for (kind, label) in &tells.counts {
            tx.execute(
                &count_sql(1, 2, 3, 4),
                &[kind, label, &counter_shard(), &1i64],
            )
            .await
            .map_err(failed("updating a flow"))?;
        }
        tx.commit().await.map_err(failed("updating a flow"))?;
        Ok(Some(record))
    }

    /// Makes `id` the current flow of `address`; returns the flow it replaces. Atomic:
    /// of two concurrent swaps, the second sees the first's flow.
    async fn swap_current_flow(
        &self,
        address: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut client = self.client().await?;
        let failed = |what| self.query_error(what);
        loop {
            let tx = client
                .transaction()
                .await
                .map_err(failed("setting the current flow"))?;
            // A locking read waits for a concurrent swap and then sees its flow.
            let select = tx
                .prepare_cached("SELECT flow_id FROM current_flows WHERE address = $1 FOR UPDATE")
                .await
                .map_err(failed("setting the current flow"))?;
            let old: Option<String> = tx
                .query_opt(&select, &[&address])
                .await
                .map_err(failed("setting the current flow"))?
                .map(|r| r.get(0));
            let written = match &old {
                Some(_) => {
                    let update = tx
                        .prepare_cached("UPDATE current_flows SET flow_id = $2 WHERE address = $1")
                        .await
                        .map_err(failed("setting the current flow"))?;
                    tx.execute(&update, &[&address, &id])
                        .await
                        .map_err(failed("setting the current flow"))?
                }
                None => {
                    // Another caller may insert first: then nothing is written here, and
                    // the swap starts again on their row.
                    let insert = tx
                        .prepare_cached(
                            "INSERT INTO current_flows (address, flow_id) VALUES ($1, $2)
                             ON CONFLICT (address) DO NOTHING",
                        )
                        .await
                        .map_err(failed("setting the current flow"))?;
                    tx.execute(&insert, &[&address, &id])
                        .await
                        .map_err(failed("setting the current flow"))?
                }
            };
            if written == 1 {
                tx.commit()
                    .await
                    .map_err(failed("setting the current flow"))?;
                return Ok(old);
            }
        }
    }

    /// The id of the newest flow for `address`.
    async fn current_flow_id(&self, address: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT flow_id FROM current_flows WHERE address = $1")
            .await
            .map_err(self.query_error("reading the current flow"))?;
        let row = client
            .query_opt(&stmt, &[&address])
            .await
            .map_err(self.query_error("reading the current flow"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The account of `address`.
    async fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT record FROM accounts WHERE address = $1")
            .await
            .map_err(self.query_error("reading an account"))?;
        let row = client
            .query_opt(&stmt, &[&address])
            .await
            .map_err(self.query_error("reading an account"))?;
        row.map(|r| decode("accounts", r.get(0))).transpose()
    }

    /// Writes an account.
    async fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        let json = encode("accounts", account)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO accounts (address, record) VALUES ($1, $2)
                 ON CONFLICT (address) DO UPDATE SET record = EXCLUDED.record",
            )
            .await
            .map_err(self.query_error("writing an account"))?;
        client
            .execute(&stmt, &[&account.address.to_string(), &json])
            .await
            .map_err(self.query_error("writing an account"))?;
        Ok(())
    }

    async fn list_flows(
        &self,
        address: Option<&str>,
        states: &[FlowState],
        limit: usize,
    ) -> Result<Vec<FlowRecord>, StoreError> {
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM flows
                 WHERE ($1::text IS NULL OR record->>'address' = $1)
                   AND (cardinality($2::text[]) = 0 OR state = ANY($2))
                 ORDER BY (record->>'created_ms')::bigint DESC, id DESC
                 LIMIT $3",
                &[&address, &states, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(self.query_error("listing flows"))?;
        rows.into_iter()
            .map(|r| decode("flows", r.get(0)))
            .collect()
    }
}

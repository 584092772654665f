//! Messages, their bodies and the queue, in PostgreSQL.
//!
//! The queue is the `due_ms` column of `messages` (a partial index holds only the open
//! ones); its value is the record's `due_ms`, written together in every statement.
//! Work is shared between nodes by [`Postgres::claim_due`]: `FOR UPDATE SKIP LOCKED`
//! hands each due message to one claimer, and moving its due time to the end of a lease
//! keeps it away from the others until the lease runs out (a node that dies leaves its
//! claims to expire; another takes them).
//!
//! A message's header block lives in `message_headers`, not in the record's jsonb: the
//! record is rewritten at every step, the header block never, and only the message view
//! reads it ([`Messages::message`] joins it back).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::{Event, MessageId, MessageRecord};

use super::batch::Batcher;
use super::{Postgres, StoreError, counter_shard, decode, encode, ms, unms};

use crate::store::{CASE_SCAN_LIMIT, Claimed, Messages, Tells};

const TABLE: &str = "messages";

fn message_id(row: &Row, col: usize) -> Result<MessageId, StoreError> {
    let bytes: &[u8] = row.get(col);
    let b: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        tree: TABLE,
        detail: format!("a message id of {} bytes", bytes.len()),
    })?;
    Ok(MessageId::from_bytes(b))
}

/// The record as the `record` column holds it: without its header block, which is
/// written once to `message_headers`.
fn encode_record(record: &MessageRecord) -> Result<serde_json::Value, StoreError> {
    let mut json = encode(TABLE, record)?;
    if let Some(fields) = json.as_object_mut() {
        fields.remove("headers");
    }
    Ok(json)
}

/// `record` with its `due_ms` set to the statement's due parameter (`$N`).
fn with_due(param: usize) -> String {
    format!("jsonb_set(record, '{{due_ms}}', coalesce(to_jsonb(${param}::bigint), 'null'))")
}

/// One message change as the batched statement takes it: the record (status and due
/// time with it), whether its body goes, its event and its counts.
pub(super) struct Change {
    id: [u8; 16],
    status: &'static str,
    due: Option<i64>,
    record: serde_json::Value,
    drop_body: bool,
    event: Option<(String, serde_json::Value)>,
    counts: Vec<(&'static str, String)>,
}

impl Change {
    pub(super) fn new(record: &MessageRecord, tells: Tells) -> Result<Change, StoreError> {
        let event = tells
            .event
            .map(|e| Ok::<_, StoreError>((e.id.clone(), encode("events", &e)?)))
            .transpose()?;
        Ok(Change {
            id: *record.id.as_bytes(),
            status: record.status.as_str(),
            due: record.due_ms.map(ms),
            record: encode_record(record)?,
            drop_body: !record.status.is_open(),
            event,
            counts: tells.counts,
        })
    }
}

/// Message changes are written in batches of up to this many: a batch is one
/// statement, so its rows are locked for one commit rather than one each.
const CHANGE_BATCH: usize = 256;

/// The batcher of message changes: as many batches in flight as a quarter of the pool,
/// at least two, so one gathers while another commits and the pool keeps room for reads.
pub(super) fn change_batcher(pool_size: usize) -> std::sync::Arc<Batcher<Change>> {
    std::sync::Arc::new(Batcher::new(
        CHANGE_BATCH,
        (pool_size / 4).max(2),
        |pg, jobs| Box::pin(pg.write_changes(jobs)),
    ))
}

/// Rewrites records (status and due time with them) with what each change tells, in
/// one statement: the bodies of final records go, the events are inserted unnumbered
/// (see `events`), and the counts are summed per counter, so a batch adds to each
/// counter row once (one row lock for the batch, not one per message).
const WRITE_CHANGES: &str = "WITH u AS (
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::jsonb[])
             AS u (id, status, due_ms, record)
     ), updated AS (
         UPDATE messages m SET status = u.status, due_ms = u.due_ms, record = u.record
         FROM u WHERE m.id = u.id
     ), body AS (
         DELETE FROM message_bodies WHERE id = ANY($5::bytea[])
     ), event AS (
         INSERT INTO events (id, record)
         SELECT id, record FROM unnest($6::text[], $7::jsonb[]) AS e (id, record)
     )
     INSERT INTO counters (kind, label, shard, value)
     SELECT k, l, $8, n FROM unnest($9::text[], $10::text[], $11::bigint[]) AS c (k, l, n)
     ON CONFLICT (kind, label, shard) DO UPDATE SET value = counters.value + EXCLUDED.value";

/// A new message as the batched insert takes it (see [`Messages::insert_message`]).
pub(super) struct NewMessage {
    id: [u8; 16],
    address: String,
    created_ms: i64,
    status: &'static str,
    due: Option<i64>,
    record: serde_json::Value,
    body: Vec<u8>,
    headers: Option<String>,
}

/// New messages are stored in batches of up to this many (the API's concurrent
/// enqueues, one commit for all of them).
const INSERT_BATCH: usize = 128;

/// The batcher of new messages, shaped as [`change_batcher`].
pub(super) fn insert_batcher(pool_size: usize) -> std::sync::Arc<Batcher<NewMessage>> {
    std::sync::Arc::new(Batcher::new(
        INSERT_BATCH,
        (pool_size / 4).max(2),
        |pg, jobs| Box::pin(pg.insert_messages(jobs)),
    ))
}

/// Stores new messages, their bytes and header blocks, in one statement. The same id
/// twice in one statement would fail it (a row changed twice); the batcher then stores
/// them one by one.
const INSERT_MESSAGES: &str = "WITH u AS (
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],
                              $6::jsonb[], $7::bytea[], $8::text[])
             AS u (id, address, created_ms, status, due_ms, record, body, headers)
     ), body AS (
         INSERT INTO message_bodies (id, body) SELECT id, body FROM u
         ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body
     ), headers AS (
         INSERT INTO message_headers (id, headers)
         SELECT id, headers FROM u WHERE headers IS NOT NULL
         ON CONFLICT (id) DO UPDATE SET headers = EXCLUDED.headers
     )
     INSERT INTO messages (id, address, created_ms, status, due_ms, record)
     SELECT id, address, created_ms, status, due_ms, record FROM u
     ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address,
         created_ms = EXCLUDED.created_ms, status = EXCLUDED.status,
         due_ms = EXCLUDED.due_ms, record = EXCLUDED.record";

impl Postgres {
    /// Stores new messages (see [`INSERT_MESSAGES`]): one round trip and one commit.
    pub(super) async fn insert_messages(&self, jobs: &[NewMessage]) -> Result<(), StoreError> {
        let ids: Vec<&[u8]> = jobs.iter().map(|j| j.id.as_slice()).collect();
        let addresses: Vec<&str> = jobs.iter().map(|j| j.address.as_str()).collect();
        let created: Vec<i64> = jobs.iter().map(|j| j.created_ms).collect();
        let statuses: Vec<&str> = jobs.iter().map(|j| j.status).collect();
        let dues: Vec<Option<i64>> = jobs.iter().map(|j| j.due).collect();
        let records: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.record).collect();
        let bodies: Vec<&[u8]> = jobs.iter().map(|j| j.body.as_slice()).collect();
        let headers: Vec<Option<&str>> = jobs.iter().map(|j| j.headers.as_deref()).collect();
        let what = if jobs.len() == 1 {
            "storing a message"
        } else {
            "storing a batch of messages"
        };
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(INSERT_MESSAGES)
            .await
            .map_err(self.query_error(what))?;
        client
            .execute(
                &stmt,
                &[
                    &ids, &addresses, &created, &statuses, &dues, &records, &bodies, &headers,
                ],
            )
            .await
            .map_err(self.query_error(what))?;
        Ok(())
    }
}

impl Postgres {
    /// Writes message changes (see [`WRITE_CHANGES`]), in one statement per run of
    /// distinct messages: two changes of one message in one statement would leave which
    /// one wins to the planner, so a second change of a message starts the next
    /// statement, in the order the changes came. Several statements share one
    /// transaction, so a batch stays all or nothing (the batcher writes a failed batch
    /// again change by change, and a part already committed would fail on its event).
    pub(super) async fn write_changes(&self, jobs: &[Change]) -> Result<(), StoreError> {
        let mut runs = Vec::new();
        let mut from = 0;
        while from < jobs.len() {
            let mut seen = std::collections::HashSet::new();
            let mut to = from;
            while to < jobs.len() && seen.insert(jobs[to].id) {
                to += 1;
            }
            runs.push(&jobs[from..to]);
            from = to;
        }
        let mut client = self.client().await?;
        if let [run] = runs.as_slice() {
            return self.write_distinct_changes(&client, run).await;
        }
        let what = "writing a batch of messages";
        let tx = client.transaction().await.map_err(self.query_error(what))?;
        for run in runs {
            self.write_distinct_changes(&tx, run).await?;
        }
        tx.commit().await.map_err(self.query_error(what))
    }

    async fn write_distinct_changes(
        &self,
        client: &impl GenericClient,
        jobs: &[Change],
    ) -> Result<(), StoreError> {
        let ids: Vec<&[u8]> = jobs.iter().map(|j| j.id.as_slice()).collect();
        let statuses: Vec<&str> = jobs.iter().map(|j| j.status).collect();
        let dues: Vec<Option<i64>> = jobs.iter().map(|j| j.due).collect();
        let records: Vec<&serde_json::Value> = jobs.iter().map(|j| &j.record).collect();
        let finals: Vec<&[u8]> = jobs
            .iter()
            .filter(|j| j.drop_body)
            .map(|j| j.id.as_slice())
            .collect();
        let (event_ids, events): (Vec<&str>, Vec<&serde_json::Value>) = jobs
            .iter()
            .filter_map(|j| j.event.as_ref().map(|(id, e)| (id.as_str(), e)))
            .unzip();
        let mut sums: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for (kind, label) in jobs.iter().flat_map(|j| j.counts.iter()) {
            *sums.entry((kind, label.as_str())).or_default() += 1;
        }
        let kinds: Vec<&str> = sums.keys().map(|(k, _)| *k).collect();
        let labels: Vec<&str> = sums.keys().map(|(_, l)| *l).collect();
        let counts: Vec<i64> = sums.values().copied().collect();
        let shard = counter_shard();
        let what = if jobs.len() == 1 {
            "writing a message"
        } else {
            "writing a batch of messages"
        };
        let stmt = client
            .prepare_cached(WRITE_CHANGES)
            .await
            .map_err(self.query_error(what))?;
        client
            .execute(
                &stmt,
                &[
                    &ids, &statuses, &dues, &records, &finals, &event_ids, &events, &shard, &kinds,
                    &labels, &counts,
                ],
            )
            .await
            .map_err(self.query_error(what))?;
        Ok(())
    }
}

#[async_trait]
impl Messages for Postgres {
    /// Stores a new message, its bytes and its first event, queued at its `due_ms`, in
    /// one statement, with the other messages stored at the same time (see `batch`):
    /// durable when this returns.
    async fn insert_message(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
    ) -> Result<(), StoreError> {
        record.timeline = vec![first.clone()];
        let new = NewMessage {
            id: *record.id.as_bytes(),
            address: record.to.to_string(),
            created_ms: ms(record.created_ms),
            status: record.status.as_str(),
            due: record.due_ms.map(ms),
            record: encode_record(record)?,
            body: raw.to_vec(),
            headers: record.headers.as_deref().map(super::without_nul_text),
        };
        self.inner.inserts.clone().submit(self, new).await
    }

    /// Reads a message record, with its header block.
    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT m.record, h.headers FROM messages m
                 LEFT JOIN message_headers h ON h.id = m.id WHERE m.id = $1",
            )
            .await
            .map_err(self.query_error("reading a message"))?;
        let row = client
            .query_opt(&stmt, &[&id.as_bytes().as_slice()])
            .await
            .map_err(self.query_error("reading a message"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut record: MessageRecord = decode(TABLE, row.get(0))?;
        record.headers = row.get(1);
        Ok(Some(record))
    }

    /// Rewrites a message record (its status and due time with it). A final record drops
    /// its body in the same statement: the bytes may hold a link or a code, and nobody
    /// needs them any more.
    async fn put_message(&self, record: &mut MessageRecord) -> Result<(), StoreError> {
        let change = Change::new(record, Tells::default())?;
        self.inner.changes.clone().submit(self, change).await
    }

    /// The signed bytes of an open message (`None` once it is final).
    async fn body(&self, record: &MessageRecord) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT body FROM message_bodies WHERE id = $1")
            .await
            .map_err(self.query_error("reading a message body"))?;
        let row = client
            .query_opt(&stmt, &[&record.id.as_bytes().as_slice()])
            .await
            .map_err(self.query_error("reading a message body"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Forgets finished messages created before `before_ms` (at most `limit`), their
    /// header blocks with them (no foreign key does it: see migration 0007).
    async fn prune_finished(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "WITH gone AS (
                     DELETE FROM messages WHERE id IN (
                         SELECT id FROM messages
                         WHERE due_ms IS NULL AND created_ms < $1
                           AND status NOT IN ('queued', 'deferred', 'sending')
                         LIMIT $2)
                     RETURNING id
                 ), headers AS (
                     DELETE FROM message_headers WHERE id IN (SELECT id FROM gone)
                 )
                 SELECT count(*) FROM gone",
                &[&ms(before_ms), &ms(limit as u64)],
            )
            .await
            .map_err(self.query_error("forgetting finished messages"))?;
        Ok(unms(row.get(0)) as usize)
    }

    /// Nothing to reclaim: bodies are rows, and PostgreSQL's vacuum frees their space.
    async fn reclaim_space(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Moves a message to `new_due` (or out of the queue with `None`), in the database
    /// and in `record` (whose other changes the caller writes).
    async fn reschedule(
        &self,
        record: &mut MessageRecord,
        new_due: Option<u64>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE messages SET due_ms = $2, record = {} WHERE id = $1",
            with_due(2)
        );
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(self.query_error("rescheduling a message"))?;
        client
            .execute(&stmt, &[&record.id.as_bytes().as_slice(), &new_due.map(ms)])
            .await
            .map_err(self.query_error("rescheduling a message"))?;
        record.due_ms = new_due;
        Ok(())
    }

    /// Takes a message out of the queue if it is still due at `due`.
    async fn extend_claims(&self, ids: &[MessageId], until_ms: u64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        let client = self.client().await?;
        client
            .execute(
                "UPDATE messages SET due_ms = $2
                 WHERE id = ANY($1) AND status = 'sending' AND due_ms < $2",
                &[&ids, &ms(until_ms)],
            )
            .await
            .map_err(self.query_error("renewing claims"))?;
        Ok(())
    }

    async fn drop_entry(&self, due: u64, id: &MessageId) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE messages SET due_ms = NULL, record = {} WHERE id = $1 AND due_ms = $2",
            with_due(3)
        );
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(self.query_error("removing a queue entry"))?;
        client
            .execute(&stmt, &[&id.as_bytes().as_slice(), &ms(due), &None::<i64>])
            .await
            .map_err(self.query_error("removing a queue entry"))?;
        Ok(())
    }

    /// Claims up to `limit` messages due at or before `now_ms` for this node: their due
    /// time moves to `lease_until_ms` (column and record), so no other node claims them
    /// until the lease ends. Concurrent claimers never get the same message: rows locked
    /// by one are skipped by the others. Returns the claimed records, earliest due first.
    async fn claim_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH due AS (
                 SELECT id, due_ms FROM messages WHERE due_ms <= $1
                 ORDER BY due_ms LIMIT $3 FOR UPDATE SKIP LOCKED
             )
             UPDATE messages m SET due_ms = $2, record = {}
             FROM due WHERE m.id = due.id
             RETURNING due.due_ms, m.record",
            with_due(2).replace("record", "m.record")
        );
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(self.query_error("claiming due messages"))?;
        let rows = client
            .query(
                &stmt,
                &[&ms(now_ms), &ms(lease_until_ms), &ms(limit as u64)],
            )
            .await
            .map_err(self.query_error("claiming due messages"))?;
        let mut claimed = rows
            .into_iter()
            .map(|r| {
                Ok((
                    r.get::<_, i64>(0),
                    decode::<MessageRecord>(TABLE, r.get(1))?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        claimed.sort_by_key(|(due, r)| (*due, r.id));
        // The record as it was before the claim: the caller decides what it becomes.
        Ok(claimed
            .into_iter()
            .map(|(due, mut record)| {
                record.due_ms = Some(unms(due));
                Claimed {
                    due_ms: unms(due),
                    id: record.id,
                    record: Some(record),
                }
            })
            .collect())
    }

    /// Every queue entry, earliest first (for `queue list` and recovery).
    async fn queue_entries(&self) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT due_ms, id FROM messages WHERE due_ms IS NOT NULL ORDER BY due_ms, id",
                &[],
            )
            .await
            .map_err(self.query_error("reading the queue"))?;
        rows.iter()
            .map(|r| Ok((unms(r.get(0)), message_id(r, 1)?)))
            .collect()
    }

    async fn queue_entries_after(
        &self,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let client = self.client().await?;
        // A range of the due-time index from the cursor's time (its ties past its id),
        // in (due, id) order, a page at most.
        let rows = match after {
            Some((due, id)) => {
                let stmt = client
                    .prepare_cached(
                        "SELECT due_ms, id FROM messages
                         WHERE due_ms IS NOT NULL AND due_ms >= $1
                           AND (due_ms > $1 OR id > $2)
                         ORDER BY due_ms, id LIMIT $3",
                    )
                    .await
                    .map_err(self.query_error("reading a page of the queue"))?;
                client
                    .query(
                        &stmt,
                        &[&ms(due), &id.as_bytes().as_slice(), &ms(limit as u64)],
                    )
                    .await
            }
            None => {
                let stmt = client
                    .prepare_cached(
                        "SELECT due_ms, id FROM messages WHERE due_ms IS NOT NULL
                         ORDER BY due_ms, id LIMIT $1",
                    )
                    .await
                    .map_err(self.query_error("reading a page of the queue"))?;
                client.query(&stmt, &[&ms(limit as u64)]).await
            }
        }
        .map_err(self.query_error("reading a page of the queue"))?;
        rows.iter()
            .map(|r| Ok((unms(r.get(0)), message_id(r, 1)?)))
            .collect()
    }

    /// The earliest due time in the queue.
    async fn next_due(&self) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT min(due_ms) FROM messages WHERE due_ms IS NOT NULL")
            .await
            .map_err(self.query_error("reading the queue"))?;
        let row = client
            .query_one(&stmt, &[])
            .await
            .map_err(self.query_error("reading the queue"))?;
        Ok(row.get::<_, Option<i64>>(0).map(unms))
    }

    /// Addresses with mail that equal `address` ignoring case, other than itself (at most
    /// `limit`): support's "did you mean", through the index on `lower(address)`.
    async fn addresses_like(&self, address: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT address FROM (
                     SELECT address FROM messages WHERE lower(address) = lower($1)
                     LIMIT $3
                 ) candidates
                 WHERE address <> $1 GROUP BY address ORDER BY address COLLATE \"C\" LIMIT $2",
                &[&address, &ms(limit as u64), &ms(CASE_SCAN_LIMIT as u64)],
            )
            .await
            .map_err(self.query_error("looking up similar addresses"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Ids of the messages sent to `address`, newest first.
    async fn messages_for_address(&self, address: &str) -> Result<Vec<MessageId>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id FROM messages WHERE address = $1 ORDER BY created_ms DESC, id DESC",
            )
            .await
            .map_err(self.query_error("reading an address's messages"))?;
        let rows = client
            .query(&stmt, &[&address])
            .await
            .map_err(self.query_error("reading an address's messages"))?;
        rows.iter().map(|r| message_id(r, 0)).collect()
    }

    async fn open_status_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        self.count_open_by_status().await
    }

    async fn message_status_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        self.count_all_by_status().await
    }
}

/// Looks at the queue and moves entries by hand, for the tests of the claim.
#[cfg(test)]
impl Postgres {
    /// Moves a message's due time from `from` to `to` (a lease renewed); a message that
    /// moved on meanwhile is left alone.
    pub(crate) async fn move_queue_key(
        &self,
        id: &MessageId,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE messages SET due_ms = $3, record = {} WHERE id = $1 AND due_ms = $2",
            with_due(3)
        );
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(self.query_error("moving a queue entry"))?;
        client
            .execute(&stmt, &[&id.as_bytes().as_slice(), &ms(from), &ms(to)])
            .await
            .map_err(self.query_error("moving a queue entry"))?;
        Ok(())
    }

    /// Up to `limit` queue entries due at or before `now_ms`, earliest first (a look, not
    /// a claim: see [`Messages::claim_due`]).
    pub(crate) async fn due_messages(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT due_ms, id FROM messages WHERE due_ms <= $1
                 ORDER BY due_ms, id LIMIT $2",
            )
            .await
            .map_err(self.query_error("reading the queue"))?;
        let rows = client
            .query(&stmt, &[&ms(now_ms), &ms(limit as u64)])
            .await
            .map_err(self.query_error("reading the queue"))?;
        rows.iter()
            .map(|r| Ok((unms(r.get(0)), message_id(r, 1)?)))
            .collect()
    }
}

//! Messages, their bodies, the queue and the address index.
//!
//! A record carries its timeline, and a body's bytes go to the spool with their location
//! in the record; writing a final record releases them.
//!
//! Writes for a new message go body → index → record → queue key, queue key last: a
//! worker scans only the queue, so it never sees a half-written message. The caller
//! flushes before acknowledging.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use crate::domain::{Event, MessageId, MessageRecord, MessageStatus};
use crate::store::{CASE_SCAN_LIMIT, Claimed, Messages, StoreError};

use super::spool::BodyLocation;
use super::{Sled, TreeName, decode, keys};

/// A message as stored: the domain's record and, while the message is open, where its
/// bytes are, in one JSON value (one sled write per change).
#[derive(serde::Serialize)]
struct Stored<'a> {
    #[serde(flatten)]
    record: &'a MessageRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<BodyLocation>,
}

/// Only the body's location of a stored message (read at open).
#[derive(Deserialize)]
pub(super) struct BodyOnly {
    #[serde(default)]
    pub(super) body: Option<BodyLocation>,
}

#[derive(Deserialize)]
struct StatusOnly {
    status: MessageStatus,
}

impl Sled {
    fn bodies(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<MessageId, BodyLocation>> {
        self.inner.bodies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_record(
        &self,
        record: &MessageRecord,
        body: Option<BodyLocation>,
    ) -> Result<(), StoreError> {
        self.put_json(
            TreeName::Messages,
            record.id.as_bytes(),
            &Stored { record, body },
        )
    }

    /// Up to `limit` queue entries due at or before `now_ms`, earliest first.
    fn due_entries(&self, now_ms: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let end = keys::queue(now_ms.saturating_add(1), &MessageId::from_bytes([0; 16]));
        let mut out = Vec::new();
        for item in self.tree(TreeName::Queue).range(..end) {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            if let Some(entry) = keys::parse_queue(&k) {
                out.push(entry);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The spool's segment files (for tests).
    #[cfg(test)]
    pub(crate) fn spool_files(&self) -> Vec<std::path::PathBuf> {
        self.inner.spool.segment_files()
    }
}

#[async_trait]
impl Messages for Sled {
    /// Stores a new message, its bytes and its first event, and queues it at `due_ms`.
    /// Not durable until [`crate::store::Store::flush`].
    async fn insert_message(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
    ) -> Result<(), StoreError> {
        let id = record.id;
        let location = self.inner.spool.write(&id, raw)?;
        record.timeline = vec![first.clone()];
        self.tree(TreeName::AddressIndex)
            .insert(
                keys::address_index(&record.to.to_string(), record.created_ms, id.as_bytes()),
                &[],
            )
            .map_err(|e| self.write_error(e))?;
        self.index_reversed(&record.to.to_string(), record.created_ms, id.as_bytes())?;
        if let Err(e) = self.write_record(record, Some(location)) {
            self.inner.spool.release(location);
            return Err(e);
        }
        self.bodies().insert(id, location);
        if let Some(due) = record.due_ms {
            self.tree(TreeName::Queue)
                .insert(keys::queue(due, &id), &[])
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// Reads a message record.
    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        self.get_json(TreeName::Messages, id.as_bytes())
    }

    /// Rewrites a message record. A final record (delivered, failed, …) drops its body:
    /// the bytes may hold a link or a code, and nobody needs them any more.
    async fn put_message(&self, record: &mut MessageRecord) -> Result<(), StoreError> {
        if record.status.is_open() {
            let location = self.bodies().get(&record.id).copied();
            return self.write_record(record, location);
        }
        self.write_record(record, None)?;
        // After the record write: a crash before it keeps the bytes the record names.
        let location = self.bodies().remove(&record.id);
        self.inner.spool.release_opt(location);
        Ok(())
    }

    /// The signed bytes of an open message.
    async fn body(&self, record: &MessageRecord) -> Result<Option<Vec<u8>>, StoreError> {
        let location = self.bodies().get(&record.id).copied();
        match location {
            Some(location) => Ok(Some(self.inner.spool.read(&record.id, location)?)),
            None => Ok(None),
        }
    }

    /// Punches the dead records out of mostly dead spool segments (see the spool), on
    /// a blocking thread: it reads and rewrites files.
    async fn reclaim_space(&self) -> Result<u64, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.inner.spool.reclaim())
            .await
            .map_err(|e| StoreError::Flush {
                path: self.inner.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(StoreError::from)
    }

    /// Moves a message's queue entry to `new_due` (or removes it with `None`) and
    /// records the new due time in the record (the caller writes the record).
    async fn reschedule(
        &self,
        record: &mut MessageRecord,
        new_due: Option<u64>,
    ) -> Result<(), StoreError> {
        let queue = self.tree(TreeName::Queue);
        if let Some(old) = record.due_ms {
            queue
                .remove(keys::queue(old, &record.id))
                .map_err(|e| self.write_error(e))?;
        }
        if let Some(due) = new_due {
            queue
                .insert(keys::queue(due, &record.id), &[])
                .map_err(|e| self.write_error(e))?;
        }
        record.due_ms = new_due;
        Ok(())
    }

    async fn claim_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let queue = self.tree(TreeName::Queue);
        let mut out = Vec::new();
        for (due_ms, id) in self.due_entries(now_ms, limit)? {
            queue
                .insert(keys::queue(lease_until_ms, &id), &[])
                .map_err(|e| self.write_error(e))?;
            queue
                .remove(keys::queue(due_ms, &id))
                .map_err(|e| self.write_error(e))?;
            let record = self.get_json(TreeName::Messages, id.as_bytes())?;
            out.push(Claimed { due_ms, id, record });
        }
        Ok(out)
    }

    /// One node owns a sled store, and the lifecycle never hands a message it holds to
    /// a second claim, so there is nobody to keep its claims from.
    async fn extend_claims(&self, _ids: &[MessageId], _until_ms: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn drop_entry(&self, due_ms: u64, id: &MessageId) -> Result<(), StoreError> {
        self.tree(TreeName::Queue)
            .remove(keys::queue(due_ms, id))
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Every queue entry, earliest first (for `queue list` and recovery).
    async fn queue_entries(&self) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeName::Queue).iter() {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            if let Some(entry) = keys::parse_queue(&k) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    async fn queue_entries_after(
        &self,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
        use std::ops::Bound;
        let from = match after {
            Some((due, id)) => Bound::Excluded(keys::queue(due, &id)),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self
            .tree(TreeName::Queue)
            .range::<Vec<u8>, _>((from, Bound::Unbounded))
        {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            if let Some(entry) = keys::parse_queue(&k) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// The earliest due time in the queue.
    async fn next_due(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .tree(TreeName::Queue)
            .first()
            .map_err(|e| self.write_error(e))?
            .and_then(|(k, _)| keys::parse_queue(&k))
            .map(|(due, _)| due))
    }

    /// Addresses in the index that equal `address` ignoring case, other than itself
    /// (at most `limit`): support's "did you mean". Only the index ranges that start
    /// with the first character in either case are read, and at most
    /// [`CASE_SCAN_LIMIT`] keys of them, so a search never walks the whole index.
    async fn addresses_like(&self, address: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let want = address.to_lowercase();
        let Some(first) = address.chars().next() else {
            return Ok(Vec::new());
        };
        let mut starts: Vec<String> = first
            .to_lowercase()
            .chain(first.to_uppercase())
            .map(String::from)
            .collect();
        starts.dedup();
        let mut found: Vec<String> = Vec::new();
        for start in starts {
            let mut read = 0;
            for item in self
                .tree(TreeName::AddressIndex)
                .scan_prefix(start.as_bytes())
            {
                let (k, _) = item.map_err(|e| self.write_error(e))?;
                read += 1;
                let Some(end) = k.iter().position(|b| *b == 0) else {
                    continue;
                };
                let candidate = String::from_utf8_lossy(&k[..end]).into_owned();
                if candidate != address
                    && candidate.to_lowercase() == want
                    && !found.contains(&candidate)
                {
                    found.push(candidate);
                }
                if found.len() >= limit || read >= CASE_SCAN_LIMIT {
                    break;
                }
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Ids of the messages sent to `address`, newest first, read from the index.
    async fn messages_for_address(&self, address: &str) -> Result<Vec<MessageId>, StoreError> {
        let prefix = keys::address_prefix(address);
        let mut out = Vec::new();
        for item in self.tree(TreeName::AddressIndex).scan_prefix(&prefix) {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            let rest = &k[prefix.len()..];
            if rest.len() == 24 {
                let mut b = [0u8; 16];
                b.copy_from_slice(&rest[8..]);
                out.push(MessageId::from_bytes(b));
            }
        }
        out.reverse();
        Ok(out)
    }

    async fn prune_finished(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let mut gone = 0;
        for item in self.tree(TreeName::Messages).iter() {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            let record: MessageRecord = decode(TreeName::Messages, &v)?;
            if record.status.is_open() || record.created_ms >= before_ms {
                continue;
            }
            self.tree(TreeName::AddressIndex)
                .remove(keys::address_index(
                    &record.to.to_string(),
                    record.created_ms,
                    record.id.as_bytes(),
                ))
                .map_err(|e| self.write_error(e))?;
            self.unindex_reversed(
                &record.to.to_string(),
                record.created_ms,
                record.id.as_bytes(),
            )?;
            self.tree(TreeName::Messages)
                .remove(k)
                .map_err(|e| self.write_error(e))?;
            gone += 1;
            if gone >= limit {
                break;
            }
        }
        Ok(gone)
    }

    async fn open_status_counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for (_, id) in self.queue_entries().await? {
            let Some(v) = self
                .tree(TreeName::Messages)
                .get(id.as_bytes())
                .map_err(|e| self.write_error(e))?
            else {
                continue;
            };
            let s: StatusOnly = decode(TreeName::Messages, &v)?;
            *out.entry(s.status.as_str()).or_insert(0) += 1;
        }
        Ok(out)
    }

    async fn message_status_counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.tree(TreeName::Messages).iter() {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let s: StatusOnly = decode(TreeName::Messages, &v)?;
            *out.entry(s.status.as_str()).or_insert(0) += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageStatus, Step};
    use crate::store::Backend;

    fn record(to: &str, created: u64) -> MessageRecord {
        MessageRecord::example(to, created)
    }

    #[tokio::test]
    async fn queue_yields_due_work_first_and_the_index_finds_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sled::open(&dir.path().join("s"), false).unwrap();
        let mut late = record("a@example.jp", 200);
        let mut early = record("a@example.jp", 100);
        let mut other = record("b@example.jp", 150);
        for r in [&mut late, &mut early, &mut other] {
            store
                .insert_message(r, b"raw", &Event::new(Step::Queued, r.created_ms))
                .await
                .unwrap();
        }
        let due: Vec<_> = store
            .due_entries(150, 10)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(due, vec![early.id, other.id]);
        assert_eq!(
            store.messages_for_address("a@example.jp").await.unwrap(),
            vec![late.id, early.id]
        );

        store.reschedule(&mut early, None).await.unwrap();
        early.push_event(Event::new(Step::Delivered, 120));
        store.put_message(&mut early).await.unwrap();
        assert_eq!(
            store
                .message(&early.id)
                .await
                .unwrap()
                .unwrap()
                .timeline
                .len(),
            2
        );
        assert_eq!(store.due_entries(150, 10).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bodies_survive_a_reopen_and_a_final_record_gives_its_bytes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let body = |i: usize| format!("{i:06} ").repeat(150_000).into_bytes(); // ~1 MiB
        let mut kept = Vec::new();
        {
            let store = Sled::open(&path, true).unwrap();
            let mut records = Vec::new();
            for i in 0..20 {
                let mut r = record("a@example.jp", 100 + i as u64);
                store
                    .insert_message(&mut r, &body(i), &Event::new(Step::Queued, 100))
                    .await
                    .unwrap();
                records.push(r);
            }
            store.flush(None).await.unwrap();
            assert_eq!(store.spool_files().len(), 2, "20 MiB fill two segments");
            // All but two of the first segment's messages are final.
            for (i, r) in records.iter_mut().enumerate() {
                if (2..15).contains(&i) {
                    r.status = MessageStatus::Delivered;
                    store.reschedule(r, None).await.unwrap();
                    store.put_message(r).await.unwrap();
                    assert_eq!(store.body(r).await.unwrap(), None);
                    let raw = store.tree(TreeName::Messages).get(r.id.as_bytes()).unwrap();
                    let stored: BodyOnly = decode(TreeName::Messages, &raw.unwrap()).unwrap();
                    assert_eq!(stored.body, None, "a final record names no bytes");
                } else {
                    kept.push((i, r.id));
                }
            }
            store.flush(None).await.unwrap();
            assert!(store.reclaim_space().await.unwrap() > 10_000_000);
        }
        let store = Sled::open(&path, true).unwrap();
        for (i, id) in &kept {
            let record = store.message(id).await.unwrap().unwrap();
            assert_eq!(
                store.body(&record).await.unwrap().unwrap(),
                body(*i),
                "body {i}"
            );
        }
        assert_eq!(
            store.spool_files().len(),
            3,
            "both old segments live, and a new one"
        );
    }

    #[tokio::test]
    async fn a_segment_found_at_open_can_become_the_next_segment_and_take_writes() {
        // A segment opened at start, emptied, kept as a spare and renamed into place as
        // the next segment must take writes (it was opened read-only: every write into
        // it failed with EBADF and intake stopped until a restart; found by the soak).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut first = record("a@example.jp", 1);
        {
            let store = Sled::open(&path, false).unwrap();
            store
                .insert_message(&mut first, b"first body", &Event::new(Step::Queued, 1))
                .await
                .unwrap();
            store.flush(None).await.unwrap();
        }
        let store = Sled::open(&path, false).unwrap();
        let mut first = store.message(&first.id).await.unwrap().unwrap();
        first.status = MessageStatus::Delivered;
        store.reschedule(&mut first, None).await.unwrap();
        store.put_message(&mut first).await.unwrap();
        store.flush(None).await.unwrap();
        store.flush(None).await.unwrap();
        let big = vec![b'x'; 1 << 20];
        for i in 0..20 {
            let mut r = record("b@example.jp", 10 + i);
            store
                .insert_message(&mut r, &big, &Event::new(Step::Queued, 10))
                .await
                .unwrap_or_else(|e| panic!("body {i}: {e}"));
            store.flush(None).await.unwrap();
        }
    }
}

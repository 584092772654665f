//! Messages, their bodies, their timelines, the queue and the address index.
//!
//! Writes for a new message go body → event → index → record → queue key, queue key
//! last: a worker scans only the queue, so it never sees a half-written message. The
//! caller flushes before acknowledging.

use crate::domain::{Event, MessageId, MessageRecord};

use super::{Store, StoreError, TreeName, decode, keys};

impl Store {
    /// Stores a new message, its bytes and its first event, and queues it at `due_ms`.
    /// Not durable until [`Store::flush`].
    pub fn insert_message(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
    ) -> Result<(), StoreError> {
        let id = record.id;
        self.tree(TreeName::Bodies)
            .insert(id.as_bytes(), raw)
            .map_err(|e| self.write_error(e))?;
        self.put_json(TreeName::Events, &keys::event(&id, 0), first)?;
        record.events = 1;
        self.tree(TreeName::AddressIndex)
            .insert(
                keys::address_index(&record.to.to_string(), record.created_ms, id.as_bytes()),
                &[],
            )
            .map_err(|e| self.write_error(e))?;
        self.put_json(TreeName::Messages, id.as_bytes(), record)?;
        if let Some(due) = record.due_ms {
            self.tree(TreeName::Queue)
                .insert(keys::queue(due, &id), &[])
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// Reads a message record.
    pub fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        self.get_json(TreeName::Messages, id.as_bytes())
    }

    /// Rewrites a message record.
    pub fn put_message(&self, record: &MessageRecord) -> Result<(), StoreError> {
        self.put_json(TreeName::Messages, record.id.as_bytes(), record)
    }

    /// The signed bytes of an open message.
    pub fn body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree(TreeName::Bodies)
            .get(id.as_bytes())
            .map_err(|e| self.write_error(e))?
            .map(|v| v.to_vec()))
    }

    /// Drops the bytes of a message that will not be sent again: they may hold a link or
    /// a code, and nobody needs them once the message is final.
    pub fn remove_body(&self, id: &MessageId) -> Result<(), StoreError> {
        self.tree(TreeName::Bodies)
            .remove(id.as_bytes())
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Appends an event to a message's timeline and counts it in the record (the caller
    /// writes the record).
    pub fn append_event(
        &self,
        record: &mut MessageRecord,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.put_json(
            TreeName::Events,
            &keys::event(&record.id, record.events),
            event,
        )?;
        record.events += 1;
        Ok(())
    }

    /// A message's timeline, oldest first.
    pub fn events(&self, id: &MessageId) -> Result<Vec<Event>, StoreError> {
        self.tree(TreeName::Events)
            .scan_prefix(id.as_bytes())
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Events, &v)
            })
            .collect()
    }

    /// Moves a message's queue entry to `new_due` (or removes it with `None`) and
    /// records the new due time in the record (the caller writes the record).
    pub fn reschedule(
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

    /// Removes one queue key (a stale entry whose message moved on).
    pub fn remove_queue_key(&self, due: u64, id: &MessageId) -> Result<(), StoreError> {
        self.tree(TreeName::Queue)
            .remove(keys::queue(due, id))
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Up to `limit` queue entries due at or before `now_ms`, earliest first.
    pub fn due_messages(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>, StoreError> {
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

    /// Every queue entry, earliest first (for `queue list` and recovery).
    pub fn queue_entries(&self) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeName::Queue).iter() {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            if let Some(entry) = keys::parse_queue(&k) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// The earliest due time in the queue.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .tree(TreeName::Queue)
            .first()
            .map_err(|e| self.write_error(e))?
            .and_then(|(k, _)| keys::parse_queue(&k))
            .map(|(due, _)| due))
    }

    /// Ids of the messages sent to `address`, newest first, read from the index.
    pub fn messages_for_address(&self, address: &str) -> Result<Vec<MessageId>, StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, MessageStatus, Step};

    fn record(to: &str, created: u64) -> MessageRecord {
        MessageRecord {
            id: MessageId::random(),
            to: Address::parse(to).unwrap(),
            message_id_header: "x@y".into(),
            template: "notice".into(),
            locale: "en".into(),
            subject: "s".into(),
            created_ms: created,
            expires_ms: created + 1000,
            status: MessageStatus::Queued,
            attempts: 0,
            due_ms: Some(created),
            last_reply: None,
            flow_id: None,
            events: 0,
            size: 1,
        }
    }

    #[test]
    fn queue_yields_due_work_first_and_the_index_finds_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let mut late = record("a@example.jp", 200);
        let mut early = record("a@example.jp", 100);
        let mut other = record("b@example.jp", 150);
        for r in [&mut late, &mut early, &mut other] {
            store
                .insert_message(r, b"raw", &Event::new(Step::Queued, r.created_ms))
                .unwrap();
        }
        let due: Vec<_> = store
            .due_messages(150, 10)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(due, vec![early.id, other.id]);
        assert_eq!(
            store.messages_for_address("a@example.jp").unwrap(),
            vec![late.id, early.id]
        );

        store.reschedule(&mut early, None).unwrap();
        store
            .append_event(&mut early, &Event::new(Step::Delivered, 120))
            .unwrap();
        store.put_message(&early).unwrap();
        assert_eq!(store.events(&early.id).unwrap().len(), 2);
        assert_eq!(store.due_messages(150, 10).unwrap().len(), 1);
    }
}

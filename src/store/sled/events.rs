//! The event log and webhook deliveries.
//!
//! Layout: in `events`, `s` + seq (big-endian u64) → [`EventRecord`] and `i` + event id →
//! seq. The next number is the last key's plus one, taken and inserted under one lock,
//! so a reader never sees a number before a lower one (the feed's cursor skips
//! nothing), and the counter is the log itself: it survives a restart without a
//! separate write. In `deliveries`, `d` + endpoint + 0 + seq → [`WebhookDelivery`] and,
//! while it is pending, `t` + next try (ms, big-endian) + endpoint + 0 + seq → nothing,
//! which [`Events::claim_deliveries`] scans in time order; an index entry whose record has
//! moved on is stale and skipped. [`Events::prune_events`] cuts the log from its first
//! key, so the numbers kept run without a gap.

use async_trait::async_trait;

use crate::domain::{DeliveryState, EventRecord, WebhookDelivery};
use crate::store::{Events, StoreError};

use super::{Sled, TreeName, decode};

fn seq_key(seq: u64) -> [u8; 9] {
    let mut k = [b's'; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn id_key(id: &str) -> Vec<u8> {
    [b"i", id.as_bytes()].concat()
}

fn delivery_key(endpoint: &str, seq: u64) -> Vec<u8> {
    [b"d", endpoint.as_bytes(), &[0], &seq.to_be_bytes()].concat()
}

fn due_key(next_try_ms: u64, endpoint: &str, seq: u64) -> Vec<u8> {
    [
        b"t".as_slice(),
        &next_try_ms.to_be_bytes(),
        endpoint.as_bytes(),
        &[0],
        &seq.to_be_bytes(),
    ]
    .concat()
}

/// The (endpoint, seq) a due-index key names.
fn parse_due_key(k: &[u8]) -> Option<(String, u64)> {
    let rest = k.get(9..)?;
    let (endpoint, seq) = rest.split_at(rest.len().checked_sub(9)?);
    let seq = u64::from_be_bytes(seq.get(1..)?.try_into().ok()?);
    Some((String::from_utf8_lossy(endpoint).into_owned(), seq))
}

impl Sled {
    fn last_seq(&self) -> Result<u64, StoreError> {
        let last = self
            .tree(TreeName::Events)
            .scan_prefix(b"s")
            .next_back()
            .transpose()
            .map_err(|e| self.write_error(e))?;
        Ok(last
            .and_then(|(k, _)| k.get(1..9).and_then(|b| b.try_into().ok()))
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}

#[async_trait]
impl Events for Sled {
    async fn append_event(&self, event: &mut EventRecord) -> Result<u64, StoreError> {
        let _one_at_a_time = self
            .inner
            .event_append
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        event.seq = self.last_seq()? + 1;
        self.put_json(TreeName::Events, &seq_key(event.seq), event)?;
        self.tree(TreeName::Events)
            .insert(id_key(&event.id), &event.seq.to_be_bytes())
            .map_err(|e| self.write_error(e))?;
        Ok(event.seq)
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.tree(TreeName::Events)
            .range(seq_key(start)..=seq_key(u64::MAX))
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Events, &v)
            })
            .collect()
    }

    async fn event_by_id(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let seq = self
            .tree(TreeName::Events)
            .get(id_key(id))
            .map_err(|e| self.write_error(e))?;
        match seq.and_then(|s| <[u8; 8]>::try_from(s.as_ref()).ok()) {
            Some(s) => self.get_json(TreeName::Events, &seq_key(u64::from_be_bytes(s))),
            None => Ok(None),
        }
    }

    async fn last_event_seq(&self) -> Result<u64, StoreError> {
        self.last_seq()
    }

    async fn put_delivery(&self, d: &WebhookDelivery) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::Deliveries);
        let key = delivery_key(&d.endpoint, d.event_seq);
        let old: Option<WebhookDelivery> = self.get_json(TreeName::Deliveries, &key)?;
        if let Some(old_try) = old.and_then(|o| o.next_try_ms)
            && Some(old_try) != d.next_try_ms
        {
            tree.remove(due_key(old_try, &d.endpoint, d.event_seq))
                .map_err(|e| self.write_error(e))?;
        }
        self.put_json(TreeName::Deliveries, &key, d)?;
        if d.state == DeliveryState::Pending
            && let Some(at) = d.next_try_ms
        {
            tree.insert(due_key(at, &d.endpoint, d.event_seq), &[])
                .map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    async fn delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        self.get_json(TreeName::Deliveries, &delivery_key(endpoint, event_seq))
    }

    async fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        // One claimer at a time in this process; sled has no other.
        let _one_at_a_time = self.inner.delivery_claim.lock().await;
        let tree = self.tree(TreeName::Deliveries);
        let mut end = vec![b't'];
        end.extend_from_slice(&now_ms.saturating_add(1).to_be_bytes());
        let mut due = Vec::new();
        for item in tree.range(b"t".to_vec()..end) {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            let at = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            let current = match parse_due_key(&k) {
                Some((endpoint, seq)) => self.delivery(&endpoint, seq).await?,
                None => None,
            };
            match current {
                Some(d) if d.state == DeliveryState::Pending && d.next_try_ms == at => {
                    due.push(d);
                    if due.len() >= limit {
                        break;
                    }
                }
                // Stale: the record has moved on (or is gone).
                _ => {
                    tree.remove(&k).map_err(|e| self.write_error(e))?;
                }
            }
        }
        for d in &mut due {
            d.next_try_ms = Some(lease_until_ms);
            self.put_delivery(d).await?;
        }
        Ok(due)
    }

    async fn recent_deliveries(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let prefix = [b"d", endpoint.as_bytes(), &[0]].concat();
        self.tree(TreeName::Deliveries)
            .scan_prefix(prefix)
            .rev()
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Deliveries, &v)
            })
            .collect()
    }

    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let last = self.last_seq()?;
        let pending = self.lowest_pending_seq()?;
        let events = self.tree(TreeName::Events);
        let mut cut = None;
        let mut gone = 0;
        for item in events.scan_prefix(b"s").take(limit) {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            let event: EventRecord = decode(TreeName::Events, &v)?;
            // Unreadable times count as old: their neighbours in the log bound them.
            let newer = event.time_ms().is_some_and(|t| t >= before_ms);
            if event.seq >= last || pending.is_some_and(|p| event.seq >= p) || newer {
                break;
            }
            events.remove(&k).map_err(|e| self.write_error(e))?;
            events
                .remove(id_key(&event.id))
                .map_err(|e| self.write_error(e))?;
            cut = Some(event.seq);
            gone += 1;
        }
        if let Some(cut) = cut {
            self.prune_finished_deliveries(cut)?;
        }
        Ok(gone)
    }
}

impl Sled {
    /// The lowest event number a delivery is still pending for.
    fn lowest_pending_seq(&self) -> Result<Option<u64>, StoreError> {
        let mut lowest: Option<u64> = None;
        for item in self.tree(TreeName::Deliveries).scan_prefix(b"t").keys() {
            let k = item.map_err(|e| self.write_error(e))?;
            let Some((endpoint, seq)) = parse_due_key(&k) else {
                continue;
            };
            if lowest.is_some_and(|l| l <= seq) {
                continue;
            }
            let d: Option<WebhookDelivery> =
                self.get_json(TreeName::Deliveries, &delivery_key(&endpoint, seq))?;
            if d.is_some_and(|d| d.state == DeliveryState::Pending) {
                lowest = Some(seq);
            }
        }
        Ok(lowest)
    }

    /// Forgets every finished delivery, to any endpoint, of an event numbered `cut` or
    /// below. Endpoints are found by skipping from one to the next, not by reading
    /// every delivery.
    fn prune_finished_deliveries(&self, cut: u64) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::Deliveries);
        let mut from = b"d".to_vec();
        while let Some((k, _)) = tree
            .range(from.clone()..b"e".to_vec())
            .next()
            .transpose()
            .map_err(|e| self.write_error(e))?
        {
            let Some(end) = k.iter().position(|b| *b == 0) else {
                break;
            };
            let endpoint = String::from_utf8_lossy(&k[1..end]).into_owned();
            for item in tree.range(delivery_key(&endpoint, 0)..=delivery_key(&endpoint, cut)) {
                let (dk, v) = item.map_err(|e| self.write_error(e))?;
                let d: WebhookDelivery = decode(TreeName::Deliveries, &v)?;
                if d.state != DeliveryState::Pending {
                    tree.remove(&dk).map_err(|e| self.write_error(e))?;
                }
            }
            // The next endpoint: past every key of this one (its separator byte 0 + 1).
            from = [&k[..end], &[1]].concat();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventData, EventType};
    use crate::store::Store;

    fn delivery(endpoint: &str, seq: u64, next: Option<u64>) -> WebhookDelivery {
        WebhookDelivery {
            endpoint: endpoint.into(),
            event_id: format!("evt_{seq}"),
            event_seq: seq,
            event_type: EventType::MessageDelivered,
            state: if next.is_some() {
                DeliveryState::Pending
            } else {
                DeliveryState::Delivered
            },
            attempts: 0,
            next_try_ms: next,
            created_ms: 1,
            last_try_ms: None,
            last_status: None,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn events_get_growing_numbers_that_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let store = Store::open(&path, false).unwrap();
            for i in 0..3 {
                let e = store
                    .record_event(EventType::FlowMailed, EventData::default(), i)
                    .await
                    .unwrap();
                assert_eq!(e.seq, i + 1);
            }
            store.flush().await.unwrap();
        }
        let store = crate::store::sled::reopen(&path);
        let e = store
            .record_event(EventType::FlowOpened, EventData::default(), 9)
            .await
            .unwrap();
        assert_eq!(e.seq, 4);
        let after = store.events_after(1, 2).await.unwrap();
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(store.event_by_id(&e.id).await.unwrap(), Some(e));
        assert_eq!(store.last_event_seq().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn old_events_go_with_their_deliveries_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        crate::store::conformance::old_events_go_from_the_start_of_the_log(&store).await;
    }

    #[tokio::test]
    async fn claimed_deliveries_wait_for_their_lease_and_follow_the_latest_next_try() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        store
            .put_delivery(&delivery("https://a", 1, Some(100)))
            .await
            .unwrap();
        store
            .put_delivery(&delivery("https://b", 2, Some(50)))
            .await
            .unwrap();
        let due = store.claim_deliveries(100, 400, 10).await.unwrap();
        assert_eq!(due.iter().map(|d| d.event_seq).collect::<Vec<_>>(), [2, 1]);
        assert!(due.iter().all(|d| d.next_try_ms == Some(400)));
        // Claimed: not due again until the lease ends.
        assert!(
            store
                .claim_deliveries(399, 800, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Moved later: not due at the lease's end; delivered: never due again.
        store
            .put_delivery(&delivery("https://a", 1, Some(500)))
            .await
            .unwrap();
        store
            .put_delivery(&delivery("https://b", 2, None))
            .await
            .unwrap();
        assert!(
            store
                .claim_deliveries(400, 800, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.claim_deliveries(500, 800, 10).await.unwrap().len(), 1);
        let recent = store.recent_deliveries("https://b", 5).await.unwrap();
        assert_eq!(recent[0].state, DeliveryState::Delivered);
    }
}

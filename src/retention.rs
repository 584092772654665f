//! Forgetting what is no longer needed, so the store does not grow with its whole
//! history: finished messages (with their timelines), bounce records, events and the
//! finished webhook deliveries that carried them, older than `store.retention`. Open
//! messages are never touched, nor an event a delivery is still pending for, and the
//! counters behind `/metrics` keep their counts; accounts, suppression and the audit
//! log are kept. The admin chart's daily tallies go by whole days: a day is forgotten
//! once every zone's version of it is older than the retention (the cutoff's UTC date,
//! less one), so a tally outlives its messages by a day at most.
//!
//! Messages and events go in batches of at most `BATCH`, so one pass never holds a
//! transaction over the whole history. Events go from the start of the log only (see
//! [`crate::store::Events::prune_events`]): the feed's readers keep a gapless log, and
//! one whose cursor fell behind the forgotten part is told so (410) instead of
//! silently skipping.
//!
//! It runs an hour apart on every node; on a shared store the deletes of two nodes
//! simply find less to do.

use std::time::Duration;

use crate::domain::now_ms;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// How often a node forgets, and how many messages one pass forgets at most.
const EVERY: Duration = Duration::from_secs(3600);
const BATCH: usize = 10_000;

/// What one pass forgot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub messages: usize,
    pub bounces: usize,
    /// Daily tallies (one per day, outcome and provider).
    pub day_tallies: usize,
    /// Events, with the finished webhook deliveries of each.
    pub events: usize,
}

/// Forgets finished messages created, bounces taken, and events that happened before
/// `now - keep`.
pub async fn forget_old(store: &Store, keep: Duration, now: u64) -> Result<Forgotten, StoreError> {
    let before = now.saturating_sub(keep.as_millis() as u64);
    let mut forgotten = Forgotten::default();
    loop {
        let n = store.prune_finished(before, BATCH).await?;
        forgotten.messages += n;
        if n < BATCH {
            break;
        }
    }
    forgotten.bounces = store.prune_bounces(before).await?;
    let last_day = crate::domain::tally::day_of(before.saturating_sub(86_400_000), chrono_tz::UTC);
    for kind in [
        crate::domain::tally::DAY_KIND,
        crate::domain::tally::DAY_PROVIDER_KIND,
    ] {
        forgotten.day_tallies += store.forget_counters_before(kind, &last_day).await?;
    }
    loop {
        let n = store.prune_events(before, BATCH).await?;
        forgotten.events += n;
        if n < BATCH {
            break;
        }
    }
    store.flush().await?;
    Ok(forgotten)
}

/// Runs [`forget_old`] a minute after start and then every hour, until shutdown.
pub async fn run(store: Store, keep: Duration, mut shutdown: Shutdown) {
    let mut next = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next += EVERY;
        match forget_old(&store, keep, now_ms()).await {
            Ok(f) if f == Forgotten::default() => {}
            Ok(f) => tracing::info!(
                messages = f.messages,
                bounces = f.bounces,
                day_tallies = f.day_tallies,
                events = f.events,
                "forgot finished messages, bounces and events older than store.retention"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot forget old records; trying again in an hour")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, EventData, EventType, MessageRecord, MessageStatus, Step};

    const DAY: u64 = 86_400_000;

    #[tokio::test]
    async fn old_events_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        for at in [DAY, 2 * DAY, 9 * DAY] {
            store
                .record_event(EventType::FlowMailed, EventData::default(), at)
                .await
                .unwrap();
        }
        let f = forget_old(&store, Duration::from_millis(5 * DAY), 10 * DAY)
            .await
            .unwrap();
        assert_eq!(f.events, 2);
        let kept: Vec<u64> = store
            .events_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(kept, [3]);
    }

    #[tokio::test]
    async fn old_finished_messages_go_and_open_or_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let day = 86_400_000;
        let mut old_done = MessageRecord::example("a@example.jp", day);
        let mut old_open = MessageRecord::example("a@example.jp", day + 1);
        let mut new_done = MessageRecord::example("a@example.jp", 9 * day);
        for r in [&mut old_done, &mut old_open, &mut new_done] {
            store
                .insert_message(r, b"raw", &Event::new(Step::Queued, r.created_ms))
                .await
                .unwrap();
        }
        for r in [&mut old_done, &mut new_done] {
            r.status = MessageStatus::Delivered;
            store.reschedule(r, None).await.unwrap();
            store.put_message(r).await.unwrap();
        }
        // The cutoff is 1970-01-06 00:00 UTC: days before the 5th go (a day of slack).
        for label in ["1970-01-04 delivered", "1970-01-05 delivered"] {
            store.counter_add("day", label, 1).await.unwrap();
        }
        store
            .counter_add("day_provider", "1970-01-04 docomo delivered", 1)
            .await
            .unwrap();
        let f = forget_old(&store, Duration::from_millis(5 * day), 10 * day)
            .await
            .unwrap();
        assert_eq!(f.messages, 1);
        assert_eq!(f.day_tallies, 2);
        assert_eq!(
            store.counters("day").await.unwrap(),
            vec![("1970-01-05 delivered".to_string(), 1)]
        );
        assert!(store.message(&old_done.id).await.unwrap().is_none());
        assert!(store.message(&old_open.id).await.unwrap().is_some());
        assert!(store.message(&new_done.id).await.unwrap().is_some());
        assert_eq!(
            store
                .messages_for_address("a@example.jp")
                .await
                .unwrap()
                .len(),
            2,
            "the index forgets with the record"
        );
    }
}

//! The sled backend as the server holds it: one open [`Sled`] at a time (a
//! generation), reopened in-process when sled has latched a write error and the disk
//! takes writes again.
//!
//! Why: sled 0.34 keeps the first failed write of its log (ENOSPC while it grows) as a
//! global error and refuses every later write and flush until the database is opened
//! again; its log has a hole there. Reopening is the recovery a restart would do: sled
//! replays its log up to the last flush, and the spool and the open messages' body
//! locations are rebuilt from what is on disk (`Sled::open`), so nothing in memory
//! outlives the generation it described.
//!
//! Shape: every trait method takes the current generation once and runs on it to the
//! end, so one call never mixes two databases; a reopen takes the generation out of
//! the slot (calls meanwhile get [`StoreError::Reopening`], a 503), waits for the calls
//! that hold it, drops it (sled's lock on the folder goes with it) and opens the folder
//! again. It runs on a thread of its own, started by a failed write or flush, retried
//! every second until a probe write in the folder succeeds and the store opens.
//!
//! What was written and not flushed in the old generation is gone, as after a crash.
//! Nothing acknowledged is lost, because a flush that could cover such a write fails:
//! a flush announced with [`Backend::announce_write`] (intake) fails when it was
//! announced in an older generation; any other flush fails when its task wrote to an
//! older generation after that generation's last successful flush (tasks are told
//! apart by tokio's task id; a write and its flush in two different tasks must use an
//! announcement; a task whose unflushed write was lost and that never flushed it may so
//! see one failed flush later). Work recorded without acknowledgement (delivery
//! outcomes, claims) is done again, at least once, as after a restart: the worker
//! learns of a reopen through [`Backend::reopened_at`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::Sled;
use crate::domain::apikey::ApiKeyRecord;
use crate::domain::audit::AuditEntry;
use crate::domain::bounce::{BounceRecord, Suppression};
use crate::domain::{
    AccountRecord, AddressPattern, EventRecord, FlowRecord, FlowState, MessageId, MessageRecord,
    WebhookDelivery,
};
use crate::store::{
    Backend, Bounces, Claimed, Events, Flows, Grant, Keys, LimitKey, Limits, Messages, Meta,
    OperatorKey, Operators, Rule, Search, StoreError, Tells, WriteIntent,
};

/// How long a reopen waits for the calls still running on the old generation, and
/// for sled's background threads to let go of the folder's lock.
const DRAIN: Duration = Duration::from_secs(10);
/// Between two recovery attempts.
const RETRY: Duration = Duration::from_secs(1);

/// Why a recovery attempt did not reopen the store (it is tried again).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotReopened {
    #[error("the disk does not take writes yet: cannot write {path}: {source}")]
    Probe {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("calls on the store did not end within {}s, so it was left open", DRAIN.as_secs())]
    InUse,
    #[error("the store is closed and cannot open yet: {0}")]
    Open(#[source] StoreError),
}

/// The open generation, and its number (counted from 1; raised at each reopen).
struct Slot {
    number: u64,
    open: Option<Sled>,
}

/// Who wrote: a tokio task, or code outside one (a plain thread).
type Writer = Option<tokio::task::Id>;

struct Shared {
    path: PathBuf,
    fsync: bool,
    slot: RwLock<Slot>,
    /// For each task that wrote and is not yet known to be flushed: the generation
    /// and the order of its last write.
    writers: Mutex<HashMap<Writer, (u64, u64)>>,
    /// Orders writes against flush calls.
    writes: AtomicU64,
    /// A recovery thread is running.
    recovering: AtomicBool,
    /// When (ms since the epoch) the store was last reopened; 0 before the first time.
    reopened_at: AtomicU64,
}

/// The sled backend, reopening itself after a latched write error; cheap to clone.
#[derive(Clone)]
pub struct RecoveringSled {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RecoveringSled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveringSled")
            .field("path", &self.shared.path)
            .finish()
    }
}

/// One generation, held for the length of a call.
struct View {
    sled: Sled,
    number: u64,
}

/// What a call does to the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// An announcement made in generation `number`.
struct Announced {
    number: u64,
    intent: WriteIntent,
}

impl RecoveringSled {
    /// Opens (or creates) the store at `path` (see [`Sled::open`]).
    pub fn open(path: &Path, fsync: bool) -> Result<RecoveringSled, StoreError> {
        let sled = Sled::open(path, fsync)?;
        Ok(RecoveringSled {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                fsync,
                slot: RwLock::new(Slot {
                    number: 1,
                    open: Some(sled),
                }),
                writers: Mutex::default(),
                writes: AtomicU64::new(0),
                recovering: AtomicBool::new(false),
                reopened_at: AtomicU64::new(0),
            }),
        })
    }

    fn view(&self) -> Result<View, StoreError> {
        let slot = self.shared.slot.read().unwrap_or_else(|p| p.into_inner());
        match &slot.open {
            Some(sled) => Ok(View {
                sled: sled.clone(),
                number: slot.number,
            }),
            None => Err(StoreError::Reopening {
                path: self.shared.path.clone(),
            }),
        }
    }

    /// Bookkeeping after a call on `view`: who wrote, and whether sled failed.
    fn after<T>(&self, view: &View, access: Access, result: &Result<T, StoreError>) {
        if access == Access::Write {
            self.shared.note_write(view.number);
        }
        if let Err(e) = result {
            self.failed(e);
        }
    }

    /// Starts a recovery when `e` may be sled's latched error.
    fn failed(&self, e: &StoreError) {
        if matches!(e, StoreError::Write { .. } | StoreError::Flush { .. }) {
            Shared::start_recovery(&self.shared);
        }
    }

    /// The error of a flush that cannot cover writes made in an older generation.
    fn lost(&self) -> StoreError {
        StoreError::Flush {
            path: self.shared.path.clone(),
            source: std::io::Error::other(
                "the store was reopened after a write failure, and writes made before that \
                 were never flushed; they are gone",
            ),
        }
    }

    /// After a flush of generation `number` that began at `mark`: `Ok` unless the
    /// calling task (or the announcement) wrote to an older generation.
    fn settle(
        &self,
        number: u64,
        mark: u64,
        announced: Option<u64>,
        result: Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let me = tokio::task::try_id();
        let mut writers = self
            .shared
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                let mine_lost = writers.get(&me).is_some_and(|(g, _)| *g < number);
                if mine_lost {
                    writers.remove(&me);
                }
                // Every write that ended before the flush began is durable now.
                writers.retain(|_, (g, seq)| !(*g == number && *seq <= mark));
                if mine_lost || announced.is_some_and(|g| g != number) {
                    Err(self.lost())
                } else {
                    Ok(())
                }
            }
            Err(e) => {
                // The caller hears that its writes may not be durable: told once.
                writers.remove(&me);
                drop(writers);
                self.failed(&e);
                Err(e)
            }
        }
    }

    /// Reopens the store now if the disk takes writes (for tests: the recovery thread
    /// does this by itself after a failure).
    #[cfg(test)]
    pub(crate) fn reopen_now(&self) -> Result<(), NotReopened> {
        self.shared.reopen()
    }

    /// The generation now open (for tests).
    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.shared
            .slot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .number
    }
}

impl Shared {
    fn note_write(&self, number: u64) {
        let seq = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let me = tokio::task::try_id();
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        let entry = writers.entry(me).or_insert((number, seq));
        // A task that wrote to an older generation keeps that mark until it is told.
        if entry.0 == number {
            entry.1 = seq;
        }
    }

    fn start_recovery(this: &Arc<Shared>) {
        if this.recovering.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = this.clone();
        let spawned = std::thread::Builder::new()
            .name("store-recovery".into())
            .spawn(move || {
                // Said on the first failed attempt and then once a minute, not each second.
                for attempt in 0u64.. {
                    std::thread::sleep(RETRY);
                    match shared.recover_once() {
                        Ok(()) => break,
                        Err(why) if attempt % 60 == 0 => {
                            tracing::warn!(path = %shared.path.display(), error = %why, attempts = attempt + 1, "the store is not reopened yet; trying again each second")
                        }
                        Err(_) => {}
                    }
                }
                shared.recovering.store(false, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the store's recovery thread");
            this.recovering.store(false, Ordering::SeqCst);
        }
    }

    /// One recovery attempt: done when the open generation flushes; else, when the disk
    /// takes a probe write, the store is reopened.
    fn recover_once(&self) -> Result<(), NotReopened> {
        let open = self
            .slot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .open
            .clone();
        if let Some(sled) = open
            && sled.flush_now().is_ok()
        {
            // The failure was not sled's latched one (the spool's, a passing one).
            return Ok(());
        }
        self.reopen()
    }

    fn reopen(&self) -> Result<(), NotReopened> {
        self.probe()?;
        let old = self
            .slot
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .open
            .take();
        let deadline = Instant::now() + DRAIN;
        if let Some(mut old) = old {
            // Wait for the calls still on it; its last handle going closes sled.
            loop {
                match Arc::try_unwrap(old.inner) {
                    Ok(inner) => {
                        drop(inner);
                        break;
                    }
                    Err(held) if Instant::now() < deadline => {
                        old.inner = held;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(held) => {
                        old.inner = held;
                        self.slot.write().unwrap_or_else(|p| p.into_inner()).open = Some(old);
                        return Err(NotReopened::InUse);
                    }
                }
            }
        }
        let deadline = Instant::now() + DRAIN;
        loop {
            match Sled::open(&self.path, self.fsync) {
                Ok(sled) => {
                    // Stamped before the new generation takes calls: whatever is created
                    // after it was announced there (see `Backend::reopened_at`).
                    self.reopened_at
                        .store(crate::domain::now_ms(), Ordering::SeqCst);
                    let mut slot = self.slot.write().unwrap_or_else(|p| p.into_inner());
                    slot.number += 1;
                    slot.open = Some(sled);
                    tracing::warn!(
                        path = %self.path.display(),
                        generation = slot.number,
                        "the store was reopened after a write failure: writes are taken \
                         again; what was not flushed before it is gone (none of it was \
                         acknowledged)"
                    );
                    return Ok(());
                }
                // sled's background threads may hold the folder's lock a little longer.
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(NotReopened::Open(e)),
            }
        }
    }

    /// Writes 64 KiB in the store's folder and removes it: the disk takes writes.
    fn probe(&self) -> Result<(), NotReopened> {
        let probe = self.path.join("recovery.probe");
        let written =
            std::fs::write(&probe, vec![0u8; 64 * 1024]).map_err(|source| NotReopened::Probe {
                path: probe.clone(),
                source,
            });
        let _ = std::fs::remove_file(&probe);
        written
    }
}

/// Implements an aggregate trait by running each method on one generation.
macro_rules! on_one_generation {
    ($trait:ident { $( $access:ident fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )* }) => {
        #[async_trait]
        impl $trait for RecoveringSled {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let view = self.view()?;
                    let result = <Sled as $trait>::$name(&view.sled $(, $arg)*).await;
                    self.after(&view, Access::$access, &result);
                    result
                }
            )*
        }
    };
}

on_one_generation!(Messages {
    Write fn insert_message(&self, record: &mut MessageRecord, raw: &[u8], first: &crate::domain::Event) -> Result<(), StoreError>;
    Read fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError>;
    Write fn put_message(&self, record: &mut MessageRecord) -> Result<(), StoreError>;
    Read fn body(&self, record: &MessageRecord) -> Result<Option<Vec<u8>>, StoreError>;
    Write fn reschedule(&self, record: &mut MessageRecord, new_due: Option<u64>) -> Result<(), StoreError>;
    Write fn claim_due(&self, now_ms: u64, lease_until_ms: u64, limit: usize) -> Result<Vec<Claimed>, StoreError>;
    Write fn extend_claims(&self, ids: &[MessageId], until_ms: u64) -> Result<(), StoreError>;
    Write fn drop_entry(&self, due_ms: u64, id: &MessageId) -> Result<(), StoreError>;
    Read fn queue_entries(&self) -> Result<Vec<(u64, MessageId)>, StoreError>;
    Read fn queue_entries_after(&self, after: Option<(u64, MessageId)>, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError>;
    Read fn next_due(&self) -> Result<Option<u64>, StoreError>;
    Read fn addresses_like(&self, address: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    Read fn messages_for_address(&self, address: &str) -> Result<Vec<MessageId>, StoreError>;
    Read fn open_status_counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError>;
    Read fn message_status_counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError>;
    Read fn reclaim_space(&self) -> Result<u64, StoreError>;
    Write fn prune_finished(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;
});

on_one_generation!(Flows {
    Write fn insert_flow(&self, flow: &FlowRecord, link_hash: &[u8; 32]) -> Result<(), StoreError>;
    Read fn flow(&self, id: &str) -> Result<Option<FlowRecord>, StoreError>;
    Read fn flow_by_link_hash(&self, hash: &[u8; 32]) -> Result<Option<FlowRecord>, StoreError>;
    Write fn change_flow(&self, id: &str, change: &mut (dyn for<'r> FnMut(&'r mut FlowRecord) -> Tells + Send)) -> Result<Option<FlowRecord>, StoreError>;
    Write fn swap_current_flow(&self, address: &str, id: &str) -> Result<Option<String>, StoreError>;
    Read fn current_flow_id(&self, address: &str) -> Result<Option<String>, StoreError>;
    Read fn count_flows_in_state(&self, state: FlowState) -> Result<u64, StoreError>;
    Read fn list_flows(&self, address: Option<&str>, states: &[FlowState], limit: usize) -> Result<Vec<FlowRecord>, StoreError>;
    Read fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError>;
    Write fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
});

on_one_generation!(Bounces {
    Write fn insert_bounce(&self, record: &BounceRecord, told: Option<EventRecord>) -> Result<(), StoreError>;
    Read fn bounces_since(&self, since_ms: u64) -> Result<Vec<BounceRecord>, StoreError>;
    Read fn recent_bounces(&self, since_ms: u64, limit: usize) -> Result<Vec<BounceRecord>, StoreError>;
    Write fn prune_bounces(&self, before_ms: u64) -> Result<usize, StoreError>;
    Read fn bounce_reason_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError>;
    Read fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError>;
    Write fn suppress(&self, entry: &Suppression, told: Option<EventRecord>) -> Result<(), StoreError>;
    Write fn unsuppress(&self, address: &str, told: &(dyn for<'s> Fn(&'s Suppression) -> EventRecord + Send + Sync)) -> Result<Option<Suppression>, StoreError>;
    Read fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;
});

on_one_generation!(Operators {
    Read fn operator_value(&self, kind: OperatorKey, id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    Write fn put_operator_value(&self, kind: OperatorKey, id: &str, value: serde_json::Value) -> Result<(), StoreError>;
    Write fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError>;
    Read fn operator_values(&self, kind: OperatorKey) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    Write fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    Read fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
});

on_one_generation!(Keys {
    Write fn api_key_put(&self, digest: &[u8; 32], record: &ApiKeyRecord) -> Result<(), StoreError>;
    Read fn api_key_get(&self, digest: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError>;
    Read fn api_keys(&self) -> Result<Vec<([u8; 32], ApiKeyRecord)>, StoreError>;
});

on_one_generation!(Limits {
    Write fn limit_take_up_to(&self, key: &LimitKey, rule: Rule, now: u64, n: u32) -> Result<Grant, StoreError>;
    Write fn limit_refund(&self, key: &LimitKey) -> Result<(), StoreError>;
    Write fn limit_clear(&self, key: &LimitKey) -> Result<(), StoreError>;
    Write fn limit_clear_prefix(&self, scope: &'static str, first: &str) -> Result<(), StoreError>;
    Write fn limit_prune(&self, longest_window_ms: u64, now: u64) -> Result<usize, StoreError>;
});

on_one_generation!(Meta {
    Read fn setting_value(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    Write fn set_setting_value(&self, name: &str, value: serde_json::Value) -> Result<(), StoreError>;
    Write fn setting_or_insert_value(&self, name: &str, value: serde_json::Value) -> Result<serde_json::Value, StoreError>;
    Write fn counter_add(&self, kind: &str, label: &str, n: u64) -> Result<(), StoreError>;
    Read fn counters(&self, kind: &str) -> Result<Vec<(String, u64)>, StoreError>;
    Read fn counters_between(&self, kind: &str, from: &str, to: &str) -> Result<Vec<(String, u64)>, StoreError>;
    Write fn forget_counters_before(&self, kind: &str, before: &str) -> Result<usize, StoreError>;
    Read fn check_health(&self) -> Result<(), StoreError>;
});

on_one_generation!(Events {
    Write fn append_event(&self, event: &mut EventRecord) -> Result<u64, StoreError>;
    Read fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
    Read fn event_by_id(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    Read fn last_event_seq(&self) -> Result<u64, StoreError>;
    Write fn put_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    Read fn delivery(&self, endpoint: &str, event_seq: u64) -> Result<Option<WebhookDelivery>, StoreError>;
    Write fn claim_deliveries(&self, now_ms: u64, lease_until_ms: u64, limit: usize) -> Result<Vec<WebhookDelivery>, StoreError>;
    Read fn recent_deliveries(&self, endpoint: &str, limit: usize) -> Result<Vec<WebhookDelivery>, StoreError>;
    Write fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;
});

on_one_generation!(Search {
    Read fn addresses_matching(&self, pattern: &AddressPattern, limit: usize) -> Result<Vec<String>, StoreError>;
});

#[async_trait]
impl Backend for RecoveringSled {
    fn location(&self) -> String {
        self.shared.path.display().to_string()
    }

    fn folder(&self) -> Option<&Path> {
        Some(&self.shared.path)
    }

    fn shared(&self) -> bool {
        false
    }

    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(super::folder_bytes(&self.shared.path)))
    }

    fn announce_write(&self) -> WriteIntent {
        let slot = self.shared.slot.read().unwrap_or_else(|p| p.into_inner());
        let inner = match &slot.open {
            Some(sled) => sled.announce_write(),
            None => WriteIntent::none(),
        };
        WriteIntent::holding(Announced {
            number: slot.number,
            intent: inner,
        })
    }

    async fn flush(&self, intent: Option<WriteIntent>) -> Result<(), StoreError> {
        let (announced, intent) = match intent.map(|i| i.0.downcast::<Announced>()) {
            Some(Ok(a)) => (Some(a.number), Some(a.intent)),
            Some(Err(other)) => (None, Some(WriteIntent(other))),
            None => (None, None),
        };
        let view = self.view()?;
        let mark = self.shared.writes.load(Ordering::SeqCst);
        let result = view.sled.flush(intent).await;
        self.settle(view.number, mark, announced, result)
    }

    fn reopened_at(&self) -> Option<u64> {
        match self.shared.reopened_at.load(Ordering::SeqCst) {
            0 => None,
            at => Some(at),
        }
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        let view = self.view()?;
        let mark = self.shared.writes.load(Ordering::SeqCst);
        let result = view.sled.flush_now();
        self.settle(view.number, mark, None, result)
    }

    async fn write_message_change(
        &self,
        record: &mut MessageRecord,
        due_ms: Option<u64>,
        tells: Tells,
    ) -> Result<(), StoreError> {
        let view = self.view()?;
        let result = view.sled.write_message_change(record, due_ms, tells).await;
        self.after(&view, Access::Write, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_at(path: &Path) -> (Store, RecoveringSled) {
        let backend = RecoveringSled::open(path, false).unwrap();
        (Store::new(Arc::new(backend.clone())), backend)
    }

    #[tokio::test]
    async fn a_reopen_keeps_what_was_flushed_and_fails_flushes_that_would_cover_lost_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, backend) = store_at(&dir.path().join("s"));
        store.set_setting("kept", &1u32).await.unwrap();
        store.flush().await.unwrap();
        // Written, never flushed: a latched sled loses it at the reopen (this healthy one
        // flushes as it closes), so this task's flush after the reopen cannot say it is
        // durable.
        store.set_setting("unflushed", &2u32).await.unwrap();
        let announced = store.announce_write();
        backend.reopen_now().unwrap();
        assert_eq!(backend.generation(), 2);
        assert_eq!(store.setting::<u32>("kept").await.unwrap(), Some(1));
        let e = store.flush().await.unwrap_err();
        assert!(e.to_string().contains("reopened"), "{e}");
        // Told once: the task's next writes flush as usual.
        store.set_setting("after", &3u32).await.unwrap();
        store.flush().await.unwrap();
        // An announcement from before the reopen cannot be acknowledged after it.
        let e = store.flush_announced(announced).await.unwrap_err();
        assert!(e.to_string().contains("reopened"), "{e}");
        let fresh = store.announce_write();
        store.flush_announced(fresh).await.unwrap();
    }

    #[tokio::test]
    async fn a_flush_from_a_task_that_did_not_write_before_the_reopen_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (store, backend) = store_at(&dir.path().join("s"));
        let writer = store.clone();
        tokio::spawn(async move { writer.set_setting("lost", &1u32).await.unwrap() })
            .await
            .unwrap();
        backend.reopen_now().unwrap();
        store.flush().await.unwrap();
    }
}

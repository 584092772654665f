//! The store: what mailgate keeps, said as intents, behind one interface with one
//! implementation per kind of database.
//!
//! Callers hold a [`Store`] and ask it for what they mean ("claim the due messages",
//! "take a slot of this limit", "change this flow"), never for a key or a table. The
//! interface is cut per aggregate, one trait each ([`Messages`], [`Flows`],
//! [`Bounces`], [`Operators`], [`Keys`], [`Limits`], [`Meta`], [`Events`], [`Search`]);
//! [`Backend`] is all of
//! them plus the unit of durability, and an implementation lives in its own folder:
//! [`sled`] (one box, the default) and, beside it, a shared database.
//!
//! Durability is explicit: a write is not durable until [`Store::flush`] (or
//! [`Store::flush_announced`]) returns, and nothing may be acknowledged before that. A
//! backend that commits every statement answers a flush at once.
//!
//! Methods are async because a shared database answers over the network; the sled
//! backend answers at once. Typed conveniences that are generic (a setting of any
//! type, a flow change that returns a value) live on [`Store`] and reach the backend
//! through its dyn-safe methods.

pub mod copy;
pub mod limits;
pub mod postgres;
pub mod sled;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::apikey::ApiKeyRecord;
use crate::domain::audit::AuditEntry;
use crate::domain::bounce::{BounceRecord, Suppression};
use crate::domain::transition::{self, Transition};
use crate::domain::{
    AccountRecord, AddressPattern, Event, EventData, EventRecord, EventType, FlowRecord, FlowState,
    MessageId, MessageRecord, WebhookDelivery,
};

pub use limits::{Grant, LimitKey, Rule, Take};

/// Failures of the store, each naming where the store is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another process (is `mailgate serve` running? \
         other commands reach it through {path}/control.sock)"
    )]
    Locked { path: PathBuf },
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: ::sled::Error,
    },
    #[error(
        "the store at {path} is being reopened after a write failure; it takes requests \
         again in a moment"
    )]
    Reopening { path: PathBuf },
    #[error("cannot prepare the store folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store write failed at {path}: {source}; intake stops rather than lose mail")]
    Write {
        path: PathBuf,
        #[source]
        source: ::sled::Error,
    },
    #[error("store flush failed at {path}: {source}; nothing is acknowledged until it works")]
    Flush {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("message spool: {0}; intake stops rather than lose mail")]
    Spool(#[from] sled::spool::SpoolError),
    #[error("a record in {tree} is damaged: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    /// The PostgreSQL backend: `what` names `store.url` (password redacted) and says
    /// what failed in words an operator can act on.
    #[error("PostgreSQL store: {what}")]
    Database {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// True when stored bytes fail their check (a power loss before they were
    /// acknowledged, a bad disk): reading them again will not help.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Spool(sled::spool::SpoolError::Damaged { .. }) | StoreError::Corrupt { .. }
        )
    }
}

/// A write announced ahead of its flush (see [`Backend::announce_write`]); dropping it
/// ends the announcement.
pub struct WriteIntent(#[allow(dead_code)] Box<dyn std::any::Any + Send>);

impl WriteIntent {
    /// An announcement that waits for nothing (for backends without group commit).
    pub fn none() -> WriteIntent {
        WriteIntent(Box::new(()))
    }

    pub(crate) fn holding(guard: impl std::any::Any + Send) -> WriteIntent {
        WriteIntent(Box::new(guard))
    }
}

/// A queue entry the store has claimed for the caller: it is out of the due range
/// until the lease given to [`Messages::claim_due`], so no other claimer sees it.
#[derive(Debug)]
pub struct Claimed {
    /// The due time the entry had when it was claimed.
    pub due_ms: u64,
    pub id: MessageId,
    /// The record as stored (its `due_ms` may name an older entry: a stale one), or
    /// `None` when the message is gone.
    pub record: Option<MessageRecord>,
}

/// What a change tells besides the record it changes: the application's event and
/// counts. A backend writes them in the change's own unit (one
/// statement or transaction on a database), so none is lost or told twice.
#[derive(Debug, Default, Clone)]
pub struct Tells {
    pub event: Option<EventRecord>,
    /// (kind, label) of each counter that counts one (distinct).
    pub counts: Vec<(&'static str, String)>,
}

/// The most index keys one "did you mean" reads.
pub const CASE_SCAN_LIMIT: usize = 50_000;

/// Messages, their bodies, the queue of due work and the address index.
#[async_trait]
pub trait Messages {
    /// Stores a new message, its bytes and its first event, queued at its `due_ms`.
    async fn insert_message(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
    ) -> Result<(), StoreError>;
    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError>;
    /// Rewrites a record; a final record drops its bytes (they may hold a link or a code).
    async fn put_message(&self, record: &mut MessageRecord) -> Result<(), StoreError>;
    /// The signed bytes of an open message.
    async fn body(&self, record: &MessageRecord) -> Result<Option<Vec<u8>>, StoreError>;
    /// Moves the record's queue entry to `new_due` (or removes it) and sets the
    /// record's `due_ms`; the caller writes the record.
    async fn reschedule(
        &self,
        record: &mut MessageRecord,
        new_due: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Claims up to `limit` entries due at or before `now_ms`, earliest first: each
    /// moves to `lease_until_ms` (the record is not rewritten), so a second claimer,
    /// on this node or another, does not get it until the lease ends.
    async fn claim_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Moves the claims on `ids` that end before `until_ms` to end then: the worker
    /// still holds those messages (waiting behind a slow destination), and no other
    /// node may take them meanwhile. Entries of messages that moved on are left alone.
    async fn extend_claims(&self, ids: &[MessageId], until_ms: u64) -> Result<(), StoreError>;
    /// Drops one queue entry that no longer matches its message.
    async fn drop_entry(&self, due_ms: u64, id: &MessageId) -> Result<(), StoreError>;
    /// Every queue entry, earliest first (`queue list`, recovery).
    async fn queue_entries(&self) -> Result<Vec<(u64, MessageId)>, StoreError>;
    /// At most `limit` queue entries after `after` (a (due, id) entry; `None` starts at
    /// the earliest), earliest first: one page of the queue, read from the queue's
    /// order without touching the entries before it or past the page.
    async fn queue_entries_after(
        &self,
        after: Option<(u64, MessageId)>,
        limit: usize,
    ) -> Result<Vec<(u64, MessageId)>, StoreError>;
    /// The earliest due time in the queue.
    async fn next_due(&self) -> Result<Option<u64>, StoreError>;
    /// Addresses that equal `address` ignoring case, other than itself (support's "did
    /// you mean"), reading at most [`CASE_SCAN_LIMIT`] index entries.
    async fn addresses_like(&self, address: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Ids of the messages sent to `address`, newest first.
    async fn messages_for_address(&self, address: &str) -> Result<Vec<MessageId>, StoreError>;
    /// Counts of the open messages by status (queue depth).
    async fn open_status_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError>;
    /// Counts of every message by status.
    async fn message_status_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError>;
    /// Gives back space held by bodies no longer needed; returns the bytes freed.
    async fn reclaim_space(&self) -> Result<u64, StoreError>;
    /// Forgets up to `limit` finished messages (not open: queued, deferred or sending
    /// ones are never touched) created before `before_ms`, with their index entries;
    /// returns how many went (`store.retention`).
    async fn prune_finished(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;
}

/// Flows, their link tokens, the current flow per address, and accounts.
#[async_trait]
pub trait Flows {
    /// Stores a new flow and indexes its link token (by its SHA-256).
    async fn insert_flow(&self, flow: &FlowRecord, link_hash: &[u8; 32]) -> Result<(), StoreError>;
    async fn flow(&self, id: &str) -> Result<Option<FlowRecord>, StoreError>;
    async fn flow_by_link_hash(&self, hash: &[u8; 32]) -> Result<Option<FlowRecord>, StoreError>;
    /// Applies `change` to the stored flow atomically: no concurrent change is lost,
    /// on this node or another. `change` may run more than once; what its last run
    /// tells is written with the change. `None` when there is no such flow. The
    /// backend's primitive: above the store, a flow changes only by a named transition
    /// ([`Store::transition_flow`]), which is what passes `change` here.
    async fn change_flow(
        &self,
        id: &str,
        change: &mut (dyn for<'r> FnMut(&'r mut FlowRecord) -> Tells + Send),
    ) -> Result<Option<FlowRecord>, StoreError>;
    /// Makes `id` the current flow of `address`; returns the flow it replaces.
    async fn swap_current_flow(
        &self,
        address: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn current_flow_id(&self, address: &str) -> Result<Option<String>, StoreError>;
    async fn count_flows_in_state(&self, state: FlowState) -> Result<u64, StoreError>;
    /// Up to `limit` flows, newest first, of `address` when given, whose stored state
    /// is one of `states` when that is not empty (`GET /api/v1/flows`, and the sweep
    /// that ends expired flows).
    async fn list_flows(
        &self,
        address: Option<&str>,
        states: &[FlowState],
        limit: usize,
    ) -> Result<Vec<FlowRecord>, StoreError>;
    async fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError>;
    async fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
}

/// Bounce records and the suppression list.
#[async_trait]
pub trait Bounces {
    /// Stores a bounce and counts its reason, with the event it calls for (a
    /// complaint's) in the same unit.
    async fn insert_bounce(
        &self,
        record: &BounceRecord,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError>;
    async fn bounces_since(&self, since_ms: u64) -> Result<Vec<BounceRecord>, StoreError>;
    /// The newest `limit` bounces taken at or after `since_ms`, oldest first: a page's
    /// bounded read, whatever the period holds.
    async fn recent_bounces(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<BounceRecord>, StoreError>;
    /// Forgets the bounce records taken before `before_ms` (the counters keep their
    /// counts); returns how many went.
    async fn prune_bounces(&self, before_ms: u64) -> Result<usize, StoreError>;
    async fn bounce_reason_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError>;
    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError>;
    /// Adds or replaces an entry, with `told` (its event) in the same unit.
    async fn suppress(
        &self,
        entry: &Suppression,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError>;
    /// Removes an entry and returns it if there was one, with the event `told` makes
    /// of it in the same unit.
    async fn unsuppress(
        &self,
        address: &str,
        told: &(dyn for<'s> Fn(&'s Suppression) -> EventRecord + Send + Sync),
    ) -> Result<Option<Suppression>, StoreError>;
    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError>;
}

/// What operator records are kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKey {
    Account,
    Session,
    /// An operator's console language and time zone, by name: kept apart from the
    /// account so saving them can never undo a concurrent disable or new password.
    Preferences,
}

/// Operators, their sessions and the audit log. Records are JSON here; [`Store`]
/// gives them their types.
#[async_trait]
pub trait Operators {
    async fn operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    async fn put_operator_value(
        &self,
        kind: OperatorKey,
        id: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn operator_remove(&self, kind: OperatorKey, id: &str) -> Result<(), StoreError>;
    /// Every record of `kind` with its id, in id order.
    async fn operator_values(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    async fn audit_append(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The newest `limit` audit entries, newest first.
    async fn audit_recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
}

/// API keys, by the SHA-256 of the key.
#[async_trait]
pub trait Keys {
    async fn api_key_put(&self, digest: &[u8; 32], record: &ApiKeyRecord)
    -> Result<(), StoreError>;
    async fn api_key_get(&self, digest: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn api_keys(&self) -> Result<Vec<([u8; 32], ApiKeyRecord)>, StoreError>;
}

/// The one persisted rate limiter (see [`limits`]).
#[async_trait]
pub trait Limits {
    /// Takes one slot of `key` under `rule` at `now`, atomically across every caller.
    async fn limit_take(&self, key: &LimitKey, rule: Rule, now: u64) -> Result<Take, StoreError> {
        Ok(self.limit_take_up_to(key, rule, now, 1).await?.take)
    }
    /// Takes up to `n` slots of `key` at once (see [`limits::Grant`]), atomically across
    /// every caller.
    async fn limit_take_up_to(
        &self,
        key: &LimitKey,
        rule: Rule,
        now: u64,
        n: u32,
    ) -> Result<Grant, StoreError>;
    /// Gives back one slot (the work did not count); the key opens again if it had shut.
    async fn limit_refund(&self, key: &LimitKey) -> Result<(), StoreError>;
    async fn limit_clear(&self, key: &LimitKey) -> Result<(), StoreError>;
    /// Forgets every window of `scope` whose subject's first part is `first`.
    async fn limit_clear_prefix(&self, scope: &'static str, first: &str) -> Result<(), StoreError>;
    /// Forgets the windows that ended before `now`; returns how many went.
    async fn limit_prune(&self, longest_window_ms: u64, now: u64) -> Result<usize, StoreError>;

    /// Takes one of the `cap` connection slots to `destination` for `holder` until
    /// `until_ms`, atomically across every node; `None` while all are held (a slot
    /// whose holder let it lapse past `now` is free again). A store only one node uses
    /// grants every slot: that node's own count of connections is the cap.
    async fn take_connection_slot(
        &self,
        _destination: &str,
        _holder: &str,
        _cap: usize,
        _until_ms: u64,
        _now: u64,
    ) -> Result<Option<u32>, StoreError> {
        Ok(Some(0))
    }
    /// Gives back a slot taken with [`Limits::take_connection_slot`].
    async fn release_connection_slot(
        &self,
        _destination: &str,
        _slot: u32,
        _holder: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// Moves the end of every slot `holder` holds to `until_ms` (the holder lives on).
    async fn renew_connection_slots(
        &self,
        _holder: &str,
        _until_ms: u64,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Settings the program keeps for itself, counters that only grow, and health.
#[async_trait]
pub trait Meta {
    async fn setting_value(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    async fn set_setting_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError>;
    /// The stored setting, or `value` stored now when there was none: of nodes racing
    /// to create a setting (a secret made once), all end up with the same one.
    async fn setting_or_insert_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError>;
    /// Adds `n` to a persisted counter.
    async fn counter_add(&self, kind: &str, label: &str, n: u64) -> Result<(), StoreError>;
    /// A kind's counters, by label.
    async fn counters(&self, kind: &str) -> Result<Vec<(String, u64)>, StoreError>;
    /// The counters of `kind` whose labels sort (bytewise) at or after `from` and
    /// before `to`, in label order: a window of a kind whose labels begin with a date
    /// (the admin chart's days), read without the rest of the kind.
    async fn counters_between(
        &self,
        kind: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, u64)>, StoreError>;
    /// Forgets the counters of `kind` whose labels sort (bytewise) before `before`
    /// (days older than `store.retention`); returns how many went.
    async fn forget_counters_before(&self, kind: &str, before: &str) -> Result<usize, StoreError>;
    /// Reads and writes a little and makes it durable, as a request would: fails when
    /// the store cannot. Needs no flush after it.
    async fn check_health(&self) -> Result<(), StoreError>;
}

/// What the application is told: the event log and the webhook deliveries that carry
/// it (see `domain::notify`).
///
/// The log's sequence numbers only grow, and an event is visible to
/// [`Events::events_after`] only once every event with a lower number is: a reader
/// that moves its cursor to the last number it saw misses nothing. (A backend that
/// took numbers from a database sequence at insert would let readers skip an event
/// committed late; the PostgreSQL one numbers committed events afterwards instead.)
/// Numbers have no gaps but one: the oldest events, forgotten by
/// [`Events::prune_events`] after `store.retention`. The log is only ever cut from its
/// start, so what is kept runs without a gap from its first number to its last, and a
/// reader whose cursor is below the first number kept minus one can tell that it
/// missed events (the feed answers it 410).
#[async_trait]
pub trait Events {
    /// Appends `event`. Its sequence number is given now (written into it and
    /// returned) or, by a backend shared between nodes, once it is committed (0 is
    /// returned); either way before a reader sees it. Not durable until a flush, like
    /// the change it describes.
    async fn append_event(&self, event: &mut EventRecord) -> Result<u64, StoreError>;
    /// Up to `limit` events with a sequence number above `after`, in order.
    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
    /// The event with this id.
    async fn event_by_id(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;
    /// The highest sequence number given so far (0 when there is none).
    async fn last_event_seq(&self) -> Result<u64, StoreError>;
    /// Writes a delivery, keyed by (endpoint, event seq), and files it under its next
    /// try time while it is pending.
    async fn put_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    async fn delivery(
        &self,
        endpoint: &str,
        event_seq: u64,
    ) -> Result<Option<WebhookDelivery>, StoreError>;
    /// Claims up to `limit` pending deliveries whose next try is at or before
    /// `now_ms`, earliest first: each one's next try moves to `lease_until_ms` before it
    /// is returned, atomically across every claimer (on this node or another), so no
    /// two senders post it at once. The caller writes the outcome with
    /// [`Events::put_delivery`].
    async fn claim_deliveries(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// The newest `limit` deliveries to `endpoint`, newest first.
    async fn recent_deliveries(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    /// Forgets up to `limit` of the oldest events, with the finished deliveries that
    /// carried them (`store.retention`); returns how many events went. Only the start
    /// of the log goes: the cut stops at the first event that happened at or after
    /// `before_ms`, at the first one a delivery is still pending for (its sender needs
    /// it), and before the last event, whose number the next append counts on.
    async fn prune_events(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError>;
}

/// Support's forgiving search: the addresses that match a partial address.
#[async_trait]
pub trait Search {
    /// Distinct addresses with mail that match `pattern`, in byte order, at most
    /// `limit`. Answered from an index of addresses (a domain from one of reversed
    /// addresses) that skips from one address to the next, so it reads about one index
    /// entry per address listed however many messages each has.
    async fn addresses_matching(
        &self,
        pattern: &AddressPattern,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}

/// Every aggregate, and the unit of durability.
#[async_trait]
pub trait Backend:
    Messages
    + Flows
    + Bounces
    + Operators
    + Keys
    + Limits
    + Meta
    + Events
    + Search
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Where the store is, for messages (a folder, or a database with no password).
    fn location(&self) -> String;
    /// The store's folder when it has one (the control socket lives there).
    fn folder(&self) -> Option<&Path>;
    /// True when other nodes share the store: work in flight elsewhere is not ours to
    /// recover at start; a lease ends it.
    fn shared(&self) -> bool;
    /// The bytes the store takes on disk (its folder, or the database), if it can say.
    async fn size_bytes(&self) -> Result<Option<u64>, StoreError>;
    /// Announces a write that will ask for a flush soon, so a flush starting meanwhile
    /// may wait a little for it.
    fn announce_write(&self) -> WriteIntent;
    /// Makes every write made before this call durable.
    async fn flush(&self, intent: Option<WriteIntent>) -> Result<(), StoreError>;
    /// [`Backend::flush`] on the calling thread, for code that is not async.
    fn flush_blocking(&self) -> Result<(), StoreError>;
    /// When (ms) the store was last reopened in-process after a write failure, if ever
    /// (the sled backend): what was not flushed before then is gone, so the worker
    /// recovers the messages it does not hold, as at start.
    fn reopened_at(&self) -> Option<u64> {
        None
    }

    /// Writes a message's new state with what the change tells, as one unit: the
    /// record with its queue entry moved to `due_ms` (out of the queue with `None`; a
    /// final record drops its body), the application's event if any, and its counts.
    /// Durable with the next flush, like the writes it stands for. The default makes one
    /// call per part; a database writes them in one statement, so a finished message
    /// costs one commit.
    async fn write_message_change(
        &self,
        record: &mut MessageRecord,
        due_ms: Option<u64>,
        tells: Tells,
    ) -> Result<(), StoreError> {
        if record.due_ms != due_ms {
            self.reschedule(record, due_ms).await?;
        }
        self.put_message(record).await?;
        if let Some(mut event) = tells.event {
            self.append_event(&mut event).await?;
        }
        for (kind, label) in &tells.counts {
            self.counter_add(kind, label, 1).await?;
        }
        Ok(())
    }
}

/// A handle to the open store; cheap to clone. The aggregate traits' methods are
/// reached through it.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Slots of high limits this node took ahead (see [`Store::limit_take_chunked`]).
    in_hand: Arc<limits::InHand>,
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &(dyn Backend + 'static) {
        &*self.backend
    }
}

impl Store {
    /// A store over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            in_hand: Arc::default(),
        }
    }

    /// Opens (or creates) the embedded store in the folder `path`.
    pub fn open(path: &Path, fsync: bool) -> Result<Store, StoreError> {
        Ok(Store::new(Arc::new(sled::RecoveringSled::open(
            path, fsync,
        )?)))
    }

    /// The path of the control socket inside a store's folder.
    pub fn socket_path(store_path: &Path) -> PathBuf {
        store_path.join("control.sock")
    }

    /// Takes one slot of `key` under `rule`, for a limit called on every request: the
    /// node takes a hundredth of the limit at a time from the store and spends it here
    /// until its window ends, so most calls touch no store. Never lets more through
    /// than [`Limits::limit_take`] would; a limit under a hundred a window is taken
    /// one slot at a time, exactly as there.
    pub async fn limit_take_chunked(
        &self,
        key: &LimitKey,
        rule: Rule,
        now: u64,
    ) -> Result<Take, StoreError> {
        let bytes = key.bytes();
        if let Some(take) = self.in_hand.spend(&bytes, now) {
            return Ok(take);
        }
        let _one_refill = self.in_hand.refill.lock().await;
        if let Some(take) = self.in_hand.spend(&bytes, now) {
            return Ok(take);
        }
        let grant = self
            .backend
            .limit_take_up_to(key, rule, now, limits::InHand::chunk(rule))
            .await?;
        self.in_hand.keep(bytes, &grant);
        Ok(grant.take)
    }

    /// Makes every write made before this call durable. Concurrent callers share
    /// flushes where the backend can.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush(None).await
    }

    /// [`Store::flush`] for a write announced with [`Backend::announce_write`].
    pub async fn flush_announced(&self, intent: WriteIntent) -> Result<(), StoreError> {
        self.backend.flush(Some(intent)).await
    }

    /// Applies a named transition to a flow atomically (see [`Flows::change_flow`]),
    /// with the event and count its state change tells written in the same unit.
    /// Returns the record as written and the transition's outcome; `None` when there is
    /// no such flow. Not durable until the caller flushes.
    pub async fn transition_flow(
        &self,
        id: &str,
        transition: &Transition,
        now: u64,
    ) -> Result<Option<(FlowRecord, transition::Outcome)>, StoreError> {
        let mut out = None;
        let record = self
            .backend
            .change_flow(id, &mut |f: &mut FlowRecord| {
                let before = transition::Before::of(f);
                out = Some(transition.apply(f, now));
                let (event, completed) = transition::told(before, f);
                Tells {
                    event: event.map(|(kind, data)| Store::new_event(kind, data, now)),
                    counts: completed
                        .then(|| ("flows", "completed".to_string()))
                        .into_iter()
                        .collect(),
                }
            })
            .await?;
        Ok(record.and_then(|r| out.map(|o| (r, o))))
    }

    /// Applies any `change` to a flow atomically: the backends' own tests of the
    /// compare-and-swap, which need changes no transition makes.
    #[cfg(test)]
    pub async fn update_flow<T: Send>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut FlowRecord) -> T + Send,
    ) -> Result<Option<(FlowRecord, T)>, StoreError> {
        self.update_flow_telling(id, |f| (change(f), Tells::default()))
            .await
    }

    /// [`Store::update_flow`] for a change that also tells something.
    #[cfg(test)]
    pub async fn update_flow_telling<T: Send>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut FlowRecord) -> (T, Tells) + Send,
    ) -> Result<Option<(FlowRecord, T)>, StoreError> {
        let mut out = None;
        let record = self
            .backend
            .change_flow(id, &mut |f: &mut FlowRecord| {
                let (o, tells) = change(f);
                out = Some(o);
                tells
            })
            .await?;
        Ok(record.and_then(|r| out.map(|o| (r, o))))
    }

    /// What the store holds, kind by kind (`mailgate store stats`). Counts messages and
    /// flows record by record on sled: a command for an operator, not for a scrape.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        use crate::domain::FlowState as S;
        let mut flows = std::collections::BTreeMap::new();
        for state in [
            S::Issued,
            S::Mailed,
            S::Opened,
            S::CodeSent,
            S::CodeVerified,
            S::Completed,
            S::Expired,
            S::Undeliverable,
            S::Locked,
            S::Superseded,
        ] {
            let n = self.backend.count_flows_in_state(state).await?;
            if n > 0 {
                flows.insert(state.as_str().to_string(), n);
            }
        }
        Ok(Stats {
            location: self.backend.location(),
            messages: self
                .backend
                .message_status_counts()
                .await?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            flows,
            bounces: self.backend.bounce_reason_counts().await?.values().sum(),
            suppressed: self.backend.suppressions().await?.len() as u64,
            events: self.backend.last_event_seq().await?,
            size_bytes: self.backend.size_bytes().await?,
        })
    }

    /// Reads a typed operator record.
    pub async fn operator_get<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.backend.operator_value(kind, id).await? {
            Some(v) => from_value("operators", v).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a typed operator record.
    pub async fn operator_put<T: Serialize>(
        &self,
        kind: OperatorKey,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let v = to_value("operators", value)?;
        self.backend.put_operator_value(kind, id, v).await
    }

    /// Every typed operator record of `kind`.
    pub async fn operator_all<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<T>, StoreError> {
        Ok(self
            .operator_entries(kind)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Every typed operator record of `kind` with its id.
    pub async fn operator_entries<T: DeserializeOwned>(
        &self,
        kind: OperatorKey,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.backend
            .operator_values(kind)
            .await?
            .into_iter()
            .map(|(id, v)| Ok((id, from_value("operators", v)?)))
            .collect()
    }

    /// Appends an event of `kind` about `data` at `now` with a fresh id; durable with
    /// the caller's next flush, which is also the flush of the change it describes.
    pub async fn record_event(
        &self,
        kind: EventType,
        data: EventData,
        now: u64,
    ) -> Result<EventRecord, StoreError> {
        let mut event = Store::new_event(kind, data, now);
        self.backend.append_event(&mut event).await?;
        Ok(event)
    }

    /// An event of `kind` about `data` at `now` with a fresh id, not yet appended (see
    /// [`Backend::write_message_change`]).
    pub fn new_event(kind: EventType, data: EventData, now: u64) -> EventRecord {
        let id = format!("evt_{}", crate::secrets::random_hex::<12>());
        EventRecord::new(id, kind, now, data)
    }

    /// Puts an address on the suppression list and records `suppression.added` with it.
    pub async fn add_suppression(&self, entry: &Suppression, now: u64) -> Result<(), StoreError> {
        let data = EventData {
            address: Some(entry.address.clone()),
            reason: Some(entry.reason.clone()),
            message_id: entry.message_id.clone(),
            ..EventData::default()
        };
        let told = Store::new_event(EventType::SuppressionAdded, data, now);
        self.backend.suppress(entry, Some(told)).await
    }

    /// Takes an address off the suppression list and records `suppression.removed`;
    /// returns the entry if there was one.
    pub async fn remove_suppression(
        &self,
        address: &str,
        now: u64,
    ) -> Result<Option<Suppression>, StoreError> {
        let told = move |old: &Suppression| {
            let data = EventData {
                address: Some(old.address.clone()),
                reason: Some(old.reason.clone()),
                ..EventData::default()
            };
            Store::new_event(EventType::SuppressionRemoved, data, now)
        };
        self.backend.unsuppress(address, &told).await
    }

    /// Reads a typed setting.
    pub async fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.backend.setting_value(name).await? {
            Some(v) => from_value("meta", v).map(Some),
            None => Ok(None),
        }
    }

    /// The typed setting, or `value` stored now when there was none (see
    /// [`Meta::setting_or_insert_value`]; not durable until a flush).
    pub async fn setting_or_insert<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<T, StoreError> {
        let v = to_value("meta", value)?;
        from_value("meta", self.backend.setting_or_insert_value(name, v).await?)
    }

    /// Writes a typed setting (not durable until a flush).
    pub async fn set_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let v = to_value("meta", value)?;
        self.backend.set_setting_value(name, v).await
    }
}

/// What a store holds (see [`Store::stats`]).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Stats {
    pub location: String,
    /// Messages by status.
    pub messages: std::collections::BTreeMap<String, u64>,
    /// Flows by state (states with none left out).
    pub flows: std::collections::BTreeMap<String, u64>,
    /// Bounce records kept.
    pub bounces: u64,
    /// Addresses on the suppression list.
    pub suppressed: u64,
    /// Events recorded (the last sequence number).
    pub events: u64,
    /// Bytes on disk, when the backend can say.
    pub size_bytes: Option<u64>,
}

fn from_value<T: DeserializeOwned>(
    tree: &'static str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

fn to_value<T: Serialize>(tree: &'static str, v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt {
        tree,
        detail: e.to_string(),
    })
}

/// Checks of the store's intents that every backend must pass (each backend's tests
/// call them on its own store).
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::domain::{DeliveryState, EventType};

    const DAY: u64 = 86_400_000;

    fn delivery(
        endpoint: &str,
        event: &crate::domain::EventRecord,
        pending: bool,
    ) -> WebhookDelivery {
        WebhookDelivery {
            endpoint: endpoint.into(),
            event_id: event.id.clone(),
            event_seq: event.seq,
            event_type: event.kind,
            state: if pending {
                DeliveryState::Pending
            } else {
                DeliveryState::Delivered
            },
            attempts: 1,
            next_try_ms: pending.then_some(11 * DAY),
            created_ms: 1,
            last_try_ms: None,
            last_status: None,
            last_error: None,
        }
    }

    /// Old events go from the start of the log with their finished deliveries, in
    /// bounded batches; the cut stops at an event still being delivered, and the last
    /// event always stays, so numbering goes on.
    pub(crate) async fn old_events_go_from_the_start_of_the_log(store: &Store) {
        let (a, b) = ("https://a.example/hook", "https://b.example/hook");
        for at in [DAY, 2 * DAY, 3 * DAY, 4 * DAY, 9 * DAY] {
            store
                .record_event(EventType::FlowMailed, EventData::default(), at)
                .await
                .unwrap();
        }
        // As numbered (a shared store numbers events once they are committed).
        let events = store.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 5);
        let seq = |i: usize| events[i].seq;
        store
            .put_delivery(&delivery(a, &events[0], false))
            .await
            .unwrap();
        store
            .put_delivery(&delivery(b, &events[0], false))
            .await
            .unwrap();
        store
            .put_delivery(&delivery(a, &events[2], true))
            .await
            .unwrap();
        store
            .put_delivery(&delivery(b, &events[3], false))
            .await
            .unwrap();

        // One batch of one: batches are bounded.
        assert_eq!(store.prune_events(5 * DAY, 1).await.unwrap(), 1);
        assert_eq!(
            store.prune_events(5 * DAY, 1000).await.unwrap(),
            1,
            "the cut stops at the event still pending"
        );
        assert!(store.event_by_id(&events[0].id).await.unwrap().is_none());
        assert!(store.delivery(a, seq(0)).await.unwrap().is_none());
        assert!(store.delivery(b, seq(0)).await.unwrap().is_none());
        assert!(store.event_by_id(&events[2].id).await.unwrap().is_some());
        assert!(store.delivery(a, seq(2)).await.unwrap().is_some());
        assert!(store.delivery(b, seq(3)).await.unwrap().is_some());

        // Delivered at last: it goes, and the old events after it with their deliveries.
        store
            .put_delivery(&delivery(a, &events[2], false))
            .await
            .unwrap();
        assert_eq!(store.prune_events(5 * DAY, 1000).await.unwrap(), 2);
        assert!(store.delivery(a, seq(2)).await.unwrap().is_none());
        assert!(store.delivery(b, seq(3)).await.unwrap().is_none());
        let kept: Vec<u64> = store
            .events_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(kept, [seq(4)], "the recent event stays");

        // Long after: the last event stays, and the next one is numbered after it.
        assert_eq!(
            store.prune_events(100 * DAY, 1000).await.unwrap(),
            0,
            "the last event is kept"
        );
        store
            .record_event(EventType::FlowOpened, EventData::default(), 100 * DAY)
            .await
            .unwrap();
        let next = store.events_after(seq(4), 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].seq, seq(4) + 1);
    }
}

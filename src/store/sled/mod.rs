//! The embedded backend: one sled (0.34.7) database and a spool of bodies in one folder,
//! for a single box. Nothing outside `store/sled/` names a tree, a key or a spool file.
//!
//! One sled database holds one tree per kind of record (messages, queue, address index,
//! flows, …). Values are JSON, so a record can be read by eye while debugging; keys are
//! big-endian byte strings built in `keys`, so a range scan yields records in the
//! order they are needed (due work first, an address's messages by time).
//!
//! Message bodies are the exception: they live in append-only segment files
//! ([`spool`]); the message record says where.
//!
//! Durability: nothing may be acknowledged before [`crate::store::Store::flush`] returns. sled's own
//! `flush()` survives a killed process but uses `sync_file_range`, not fsync, so when
//! `store.fsync` is on the database file is also `fdatasync`ed. A flush syncs the
//! spool's segments before sled, so a durable record never points at bytes that are
//! not. Flushes are shared by concurrent callers (group commit, `commit`): one caller
//! flushes for every request made before it began, the others wait for it and are all
//! woken at once (a lock handed from waiter to waiter made each wait for every earlier
//! one); the flushing caller first waits up to a millisecond for writers that announced
//! themselves, so that under load one flush covers more of them. The flush
//! runs on a blocking thread because `flush_async` from many tasks deadlocked (sled
//! #1308). Once sled has failed a write it refuses all later ones until it is opened
//! again; [`RecoveringSled`] (`recovery`) does that in-process, and is what
//! [`crate::store::Store::open`] returns.

mod bounces;
mod commit;
mod events;
mod export;
mod flows;
mod keys;
mod limits;
mod messages;
mod meta;
mod operators;
mod recovery;
mod search;
pub mod spool;

pub use recovery::RecoveringSled;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Backend, StoreError, WriteIntent};

/// The kinds of record the store holds, one sled tree each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeName {
    /// Message records by message id.
    Messages,
    /// The queue: `(due time, message id)` → nothing; scanned in due order.
    Queue,
    /// Index: `(address, time, message id)` → nothing; answers "mail for this address".
    AddressIndex,
    /// Flows by flow id.
    Flows,
    /// Link tokens and codes by their SHA-256.
    Tokens,
    /// Accounts (password hashes) by address.
    Accounts,
    /// Suppressed addresses.
    Suppression,
    /// Bounce records by time.
    Bounces,
    /// Operator accounts by name.
    Operators,
    /// API keys by the SHA-256 of the key.
    ApiKeys,
    /// Operator actions, by time.
    Audit,
    /// Settings the program keeps for itself (secrets, schema version).
    Meta,
    /// Rate-limit windows by scope and subject (`limits`).
    Limits,
    /// Events by sequence number, and their ids (`events`).
    Events,
    /// Webhook deliveries by endpoint and event, and the pending ones by next try.
    Deliveries,
    /// Index: `(address reversed, time, message id)` → nothing; answers "mail for this
    /// domain" (see `search`).
    ReversedAddressIndex,
}

impl TreeName {
    /// Every tree, opened at start so a damaged store fails early.
    pub const ALL: [TreeName; 16] = [
        TreeName::Messages,
        TreeName::Queue,
        TreeName::AddressIndex,
        TreeName::Flows,
        TreeName::Tokens,
        TreeName::Accounts,
        TreeName::Suppression,
        TreeName::Bounces,
        TreeName::Operators,
        TreeName::ApiKeys,
        TreeName::Audit,
        TreeName::Meta,
        TreeName::Limits,
        TreeName::Events,
        TreeName::Deliveries,
        TreeName::ReversedAddressIndex,
    ];

    /// The tree's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            TreeName::Messages => "messages",
            TreeName::Queue => "queue",
            TreeName::AddressIndex => "address_index",
            TreeName::Flows => "flows",
            TreeName::Tokens => "tokens",
            TreeName::Accounts => "accounts",
            TreeName::Suppression => "suppression",
            TreeName::Bounces => "bounces",
            TreeName::Operators => "operators",
            TreeName::ApiKeys => "api_keys",
            TreeName::Audit => "audit",
            TreeName::Meta => "meta",
            TreeName::Limits => "limits",
            TreeName::Events => "events",
            TreeName::Deliveries => "deliveries",
            TreeName::ReversedAddressIndex => "address_reversed",
        }
    }
}

struct Inner {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    spool: spool::Spool,
    path: PathBuf,
    fsync: bool,
    /// The data file, kept open for fdatasync.
    data_file: Option<File>,
    /// Shared flushes (group commit).
    commit: Arc<commit::GroupCommit>,
    /// Held from taking an event's number to inserting it, so no reader sees a number
    /// before a lower one.
    event_append: std::sync::Mutex<()>,
    /// Held while deliveries are claimed, so two claimers never take the same one.
    delivery_claim: tokio::sync::Mutex<()>,
    /// Where each open message's bytes are. The location is also written into the
    /// message's stored JSON (no sled write of its own: see the spool) and read back
    /// from there at open; the domain's record does not carry it.
    bodies:
        std::sync::Mutex<std::collections::HashMap<crate::domain::MessageId, spool::BodyLocation>>,
}

/// The open sled store; cheap to clone.
#[derive(Clone)]
pub struct Sled {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Sled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sled")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Sled {
    /// Opens (or creates) the store at `path`. The folder is created owner-only, since it
    /// holds hashes, secrets and the control socket.
    pub fn open(path: &Path, fsync: bool) -> Result<Sled, StoreError> {
        create_private_dir(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| classify_open_error(path, source))?;
        let mut trees = Vec::with_capacity(TreeName::ALL.len());
        for t in TreeName::ALL {
            trees.push(
                db.open_tree(t.name())
                    .map_err(|source| classify_open_error(path, source))?,
            );
        }
        let bodies = open_bodies(path, &trees)?;
        let spool = spool::Spool::open(
            &path.join("spool"),
            fsync,
            bodies.iter().map(|(_, location)| *location),
        )?;
        let data_file = if fsync {
            File::open(path.join("db")).ok()
        } else {
            None
        };
        let sled = Sled {
            inner: Arc::new(Inner {
                db,
                trees,
                spool,
                path: path.to_path_buf(),
                fsync,
                data_file,
                commit: Arc::default(),
                event_append: std::sync::Mutex::new(()),
                delivery_claim: tokio::sync::Mutex::new(()),
                bodies: std::sync::Mutex::new(bodies.into_iter().collect()),
            }),
        };
        sled.ensure_reversed_index()?;
        Ok(sled)
    }

    /// The folder the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn tree(&self, t: TreeName) -> &sled::Tree {
        // `ALL` lists the trees in declaration order, so the discriminant is the index
        // (checked by `tree_names_index_the_opened_trees`).
        &self.inner.trees[t as usize]
    }

    /// Makes every write made before this call durable. Concurrent callers share
    /// flushes (group commit).
    async fn flush_shared(&self, intent: Option<WriteIntent>) -> Result<(), StoreError> {
        let inner = &self.inner;
        let commit = &inner.commit;
        let my_request = commit.requested.fetch_add(1, Ordering::SeqCst) + 1;
        // Counted as a request now, so the announcement is over.
        drop(intent);
        loop {
            // Listen before looking, so a flush that ends in between still wakes us.
            let flushed = commit.flushed.notified();
            tokio::pin!(flushed);
            flushed.as_mut().enable();
            if commit.completed.load(Ordering::SeqCst) >= my_request {
                return Ok(());
            }
            if commit
                .flushing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                // Someone flushes; theirs may not cover us, so look again when it ends.
                flushed.await;
                continue;
            }
            // This caller flushes for every request made before the flush begins, after
            // a short wait for announced writers. The blocking task finishes the flush
            // and wakes the waiters even if this caller goes away. A failure reaches the
            // waiters as their own attempt: each tries once more and reports its own
            // error.
            let this = self.clone();
            return tokio::task::spawn_blocking(move || {
                let commit = &this.inner.commit;
                let covered = commit.gather(commit::COMMIT_WAIT);
                let result = this.flush_now();
                if result.is_ok() {
                    commit.completed.fetch_max(covered, Ordering::SeqCst);
                }
                commit.flushing.store(false, Ordering::SeqCst);
                commit.flushed.notify_waiters();
                result
            })
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Flush {
                    path: inner.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        }
    }

    /// Flushes on the calling thread; for code that is not async (tests, shutdown).
    fn flush_now(&self) -> Result<(), StoreError> {
        let io = |source: std::io::Error| StoreError::Flush {
            path: self.inner.path.clone(),
            source,
        };
        let ticket = self.inner.spool.sync()?;
        let flushed = self
            .inner
            .db
            .flush()
            .map_err(|e| io(std::io::Error::other(e.to_string())))
            .and_then(|_| match (&self.inner.data_file, self.inner.fsync) {
                (Some(f), true) => f.sync_data().map_err(io),
                _ => Ok(()),
            });
        match flushed {
            // Only now are the record writes durable that released spool bodies.
            Ok(()) => self.inner.spool.flushed(ticket),
            Err(_) => self.inner.spool.flush_failed(ticket),
        }
        flushed
    }

    pub(crate) fn write_error(&self, source: sled::Error) -> StoreError {
        StoreError::Write {
            path: self.inner.path.clone(),
            source,
        }
    }

    /// Reads a JSON record.
    pub(crate) fn get_json<T: DeserializeOwned>(
        &self,
        t: TreeName,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.tree(t).get(key).map_err(|e| self.write_error(e))? {
            None => Ok(None),
            Some(v) => decode(t, &v).map(Some),
        }
    }

    /// Writes a JSON record (not yet durable: call [`crate::store::Store::flush`]).
    pub(crate) fn put_json<T: Serialize>(
        &self,
        t: TreeName,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            tree: t.name(),
            detail: e.to_string(),
        })?;
        self.tree(t)
            .insert(key, bytes)
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }
}

#[async_trait]
impl Backend for Sled {
    fn location(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn folder(&self) -> Option<&Path> {
        Some(&self.inner.path)
    }

    fn shared(&self) -> bool {
        false
    }

    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(folder_bytes(&self.inner.path)))
    }

    fn announce_write(&self) -> WriteIntent {
        WriteIntent::holding(self.inner.commit.announce())
    }

    async fn flush(&self, intent: Option<WriteIntent>) -> Result<(), StoreError> {
        self.flush_shared(intent).await
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        self.flush_now()
    }
}

/// The bytes the files under `dir` take on disk.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&e.path()),
            // Blocks in use: punched holes in spool segments take none.
            Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512,
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn decode<T: DeserializeOwned>(t: TreeName, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        tree: t.name(),
        detail: e.to_string(),
    })
}

/// The spool locations of the open messages (those in the queue), read at open.
fn open_bodies(
    path: &Path,
    trees: &[sled::Tree],
) -> Result<Vec<(crate::domain::MessageId, spool::BodyLocation)>, StoreError> {
    let read = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for item in trees[TreeName::Queue as usize].iter().keys() {
        let Some((_, id)) = keys::parse_queue(&item.map_err(read)?) else {
            continue;
        };
        let Some(v) = trees[TreeName::Messages as usize]
            .get(id.as_bytes())
            .map_err(read)?
        else {
            continue;
        };
        let stored: messages::BodyOnly = decode(TreeName::Messages, &v)?;
        out.extend(stored.body.map(|location| (id, location)));
    }
    Ok(out)
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StoreError::Folder {
            path: path.to_path_buf(),
            source,
        })
}

fn classify_open_error(path: &Path, source: sled::Error) -> StoreError {
    let text = source.to_string();
    let locked = match &source {
        sled::Error::Io(e) => {
            e.kind() == std::io::ErrorKind::WouldBlock || text.contains("could not acquire lock")
        }
        _ => false,
    };
    if locked {
        StoreError::Locked {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Opens the store at `path` again once the last handle's background work has let go
/// of its lock (a flush's blocking task may outlive the handle by a moment).
#[cfg(test)]
pub(crate) fn reopen(path: &Path) -> crate::store::Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match crate::store::Store::open(path, false) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.expect("the store opens again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_open_of_the_same_store_is_refused_with_its_path() {
        // sled's lock is per process (fcntl-style), so open it from a child process.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Sled::open(&path, false).unwrap();
        store.put_json(TreeName::Meta, b"k", &1u32).unwrap();
        store.flush_shared(None).await.unwrap();
        assert_eq!(
            store.get_json::<u32>(TreeName::Meta, b"k").unwrap(),
            Some(1)
        );
        let e = classify_open_error(
            &path,
            sled::Error::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "could not acquire lock",
            )),
        );
        assert!(e.to_string().contains(&path.display().to_string()));
        assert!(matches!(e, StoreError::Locked { .. }));
    }

    #[test]
    fn tree_names_index_the_opened_trees() {
        for (i, t) in TreeName::ALL.iter().enumerate() {
            assert_eq!(
                *t as usize,
                i,
                "{} is out of order in TreeName::ALL",
                t.name()
            );
        }
    }

    #[tokio::test]
    async fn concurrent_flushes_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sled::open(&dir.path().join("s"), true).unwrap();
        // What opening wrote there itself (the index flag).
        let before = store.tree(TreeName::Meta).len();
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.put_json(TreeName::Meta, &i.to_be_bytes(), &i).unwrap();
                s.flush_shared(None).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.tree(TreeName::Meta).len(), before + 50);
    }

    #[tokio::test]
    async fn a_flush_abandoned_by_its_caller_does_not_stop_later_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sled::open(&dir.path().join("s"), true).unwrap();
        for i in 0..40u32 {
            let s = store.clone();
            let task = tokio::spawn(async move {
                s.put_json(TreeName::Meta, &i.to_be_bytes(), &i).unwrap();
                s.flush_shared(None).await
            });
            if i % 2 == 0 {
                task.abort();
            }
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), store.flush_shared(None))
            .await
            .expect("a later flush must not wait forever")
            .unwrap();
    }

    #[test]
    fn an_unreadable_store_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"x").unwrap();
        let e = Sled::open(&file, false).unwrap_err();
        assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    }
}

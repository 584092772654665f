//! Group commit: the bookkeeping that lets one flush cover many writers.
//!
//! Every durable write pays for a flush (spool fdatasync, sled's flush, the database's
//! fdatasync), and on this kind of machine a flush costs far more CPU than the writes it
//! covers: thread wake-ups, block-layer requests, a virtio notify each. So flushes are
//! shared: one caller (the leader) flushes for every request made before it began, and
//! the others wait on one `Notify` woken all at once.
//!
//! A leader also waits a little (at most [`COMMIT_WAIT`]) for writers that have
//! announced themselves ([`GroupCommit::announce`]) but not yet asked for the flush, as
//! PostgreSQL's `commit_delay` does. Under load, composing and signing take long enough
//! that without it a flush covered ~9 messages; with it, ~24, and the CPU per message
//! fell by about a seventh (issue 4, `bench/run.sh delivery`). A lone writer never
//! waits: with nobody announced, the leader flushes at once.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a leader waits for other writers before it flushes.
pub const COMMIT_WAIT: Duration = Duration::from_millis(1);

/// A leader that saw no new request for this long stops waiting.
pub const QUIET: Duration = Duration::from_micros(200);

/// Flush requests and who is flushing, shared by every handle of one store.
#[derive(Debug, Default)]
pub(super) struct GroupCommit {
    /// Flush requests issued so far, and the highest request a finished flush covers.
    pub(super) requested: AtomicU64,
    pub(super) completed: AtomicU64,
    /// A caller is flushing for everyone; the others wait for `flushed`.
    pub(super) flushing: AtomicBool,
    pub(super) flushed: tokio::sync::Notify,
    /// Writers announced and not yet asking for a flush; `gathered` is signalled when
    /// the count reaches zero.
    announced: AtomicUsize,
    /// Requests the last flush covered: more than one means writers are about.
    last_batch: AtomicU64,
    /// A leader waits on `gathered`: only then does a writer ending its announcement
    /// take the lock and signal (a signal is a system call even with nobody waiting).
    leader_waiting: AtomicBool,
    gather_lock: Mutex<()>,
    gathered: Condvar,
}

impl GroupCommit {
    /// Announces a write that will soon ask for a flush.
    pub(super) fn announce(self: &Arc<Self>) -> Announcement {
        self.announced.fetch_add(1, Ordering::SeqCst);
        Announcement {
            commit: self.clone(),
        }
    }

    /// The leader's wait before it flushes, at most `limit` ([`COMMIT_WAIT`] in the
    /// store). A leader alone (nobody announced, and the last flush covered one request)
    /// does not wait. Otherwise it waits for the announced writers, then for a quiet
    /// moment ([`QUIET`] without a new request), whichever comes last. Returns the
    /// requests the flush will cover. Blocks the thread (the leader runs on a blocking
    /// thread).
    pub(super) fn gather(&self, limit: Duration) -> u64 {
        let mut seen = self.requested.load(Ordering::SeqCst);
        if self.others_about() {
            let deadline = Instant::now() + limit;
            let mut guard = self.gather_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.leader_waiting.store(true, Ordering::SeqCst);
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                // Woken early when the last announced writer arrives; it counted its
                // request before ending its announcement, so the loop goes round once
                // more for a quiet slice.
                guard = self
                    .gathered
                    .wait_timeout(guard, (deadline - now).min(QUIET))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                let now_seen = self.requested.load(Ordering::SeqCst);
                if now_seen == seen && self.announced.load(Ordering::SeqCst) == 0 {
                    break;
                }
                seen = now_seen;
            }
            self.leader_waiting.store(false, Ordering::SeqCst);
        }
        let covered = self.requested.load(Ordering::SeqCst);
        self.last_batch.store(
            covered.saturating_sub(self.completed.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
        covered
    }

    /// Whether other writers are about: some announced, more than one request waiting,
    /// or the last flush covered more than one.
    fn others_about(&self) -> bool {
        let waiting = self
            .requested
            .load(Ordering::SeqCst)
            .saturating_sub(self.completed.load(Ordering::SeqCst));
        self.announced.load(Ordering::SeqCst) > 0
            || waiting > 1
            || self.last_batch.load(Ordering::SeqCst) > 1
    }
}

/// A write under way that will ask for a flush (see [`super::Store::announce_write`]).
/// Dropping it, or passing it to [`super::Store::flush_announced`], ends the
/// announcement.
#[derive(Debug)]
pub struct Announcement {
    commit: Arc<GroupCommit>,
}

impl Drop for Announcement {
    fn drop(&mut self) {
        if self.commit.announced.fetch_sub(1, Ordering::SeqCst) == 1
            && self.commit.leader_waiting.load(Ordering::SeqCst)
        {
            // Take the lock so a leader between its check and its wait still hears this.
            // A leader that sets `leader_waiting` after the load above misses nothing
            // either: it looks at `announced` after each slice of at most QUIET.
            let _guard = self
                .commit
                .gather_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.commit.gathered.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A limit far longer than any test: returning early proves the wake-up.
    const FOREVER: Duration = Duration::from_secs(600);

    #[test]
    fn a_leader_waits_only_when_other_writers_are_about() {
        let commit = Arc::new(GroupCommit::default());
        // One request, nobody announced: a lone writer.
        commit.requested.store(1, Ordering::SeqCst);
        assert!(!commit.others_about());
        let intent = commit.announce();
        assert!(commit.others_about(), "a writer is announced");
        drop(intent);
        assert!(!commit.others_about());
        commit.requested.store(3, Ordering::SeqCst);
        assert!(commit.others_about(), "three requests wait");
        // That flush covers the three; the next lone request still waits for company.
        assert_eq!(commit.gather(Duration::ZERO), 3);
        commit.completed.store(3, Ordering::SeqCst);
        commit.requested.store(4, Ordering::SeqCst);
        assert!(commit.others_about(), "the last flush covered three");
        assert_eq!(commit.gather(Duration::ZERO), 4);
        commit.completed.store(4, Ordering::SeqCst);
        assert!(!commit.others_about(), "the last flush covered one");
    }

    #[test]
    fn the_last_announced_writer_arriving_wakes_the_leader() {
        let commit = Arc::new(GroupCommit::default());
        let first = commit.announce();
        let second = commit.announce();
        let leader = {
            let commit = commit.clone();
            std::thread::spawn(move || commit.gather(FOREVER))
        };
        drop(first);
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !leader.is_finished(),
            "the leader left with a writer still announced"
        );
        drop(second);
        leader.join().unwrap();
        assert_eq!(commit.announced.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_leader_stops_waiting_for_a_writer_that_never_comes() {
        let commit = Arc::new(GroupCommit::default());
        let _stuck = commit.announce();
        let started = Instant::now();
        commit.gather(Duration::from_millis(5));
        assert!(started.elapsed() >= Duration::from_millis(5));
    }
}

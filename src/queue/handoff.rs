//! The short way from enqueue to the delivery worker.
//!
//! A message due now, enqueued while the worker has room, is written already claimed
//! (`sending`, its queue key a lease ahead, as the worker's own claim would leave it) and,
//! once flushed, handed to the worker with its bytes. This saves the worker reading the
//! queue, rewriting the record and reading the bytes back: sled operations were most of
//! the cost of a message (issue 4). Crash safety is unchanged: the record and its queue
//! key are durable before the acknowledgement, and a restart makes every `sending`
//! message due again. Without a running worker (a command that opened the store
//! itself) nothing is reserved and messages wait in the queue as before.
//!
//! The worker holds many more records than bytes: a message handed over while few are
//! in flight carries its bytes; past that (the worker is behind) it carries only its
//! record, and the worker reads the bytes back from the spool when their turn comes.
//! Either way the message skips the queue: when delivery fell behind enqueue, messages
//! beyond a small cap went through the queue, and its scan, claim rewrite and reads
//! cost more CPU than the rest of their delivery (issue 4).
//!
//! The count of messages the worker holds lives here, shared by both ways in, so the
//! worker's cap on messages in flight covers both; so do their ids, so that a message
//! still waiting in the worker when its lease ends is not claimed a second time (its
//! lease is renewed instead: see `worker::claim`). A held message that is cancelled or
//! bounces meanwhile is marked withdrawn here, so the worker drops it without reading
//! its record back from the store before each send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use crate::domain::{MessageId, MessageRecord};

/// A message the worker holds: its record as claimed, and its bytes when at hand.
#[derive(Debug)]
pub struct Job {
    pub record: MessageRecord,
    pub body: Option<Vec<u8>>,
}

/// Shared between enqueue and the worker.
#[derive(Default)]
pub struct Handoff {
    in_flight: AtomicUsize,
    /// 0 while no worker runs.
    max_in_flight: AtomicUsize,
    /// A message handed over while no more than this many are in flight carries its
    /// bytes.
    max_with_bytes: AtomicUsize,
    sender: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    /// The messages the worker holds, each with whether it was withdrawn meanwhile.
    held: Mutex<HashMap<MessageId, bool>>,
    /// Rung when a slot frees.
    pub capacity_bell: Notify,
}

/// A place in the worker reserved by enqueue; given back unless [`Handoff::send`] uses it.
#[must_use]
pub struct Reservation {
    handoff: Arc<Handoff>,
    used: bool,
    carries_bytes: bool,
}

impl Reservation {
    /// Whether the job should carry its bytes (few in flight) or only its record.
    pub fn carries_bytes(&self) -> bool {
        self.carries_bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            self.handoff.done();
        }
    }
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("in_flight", &self.in_flight)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

impl Handoff {
    /// The worker starts taking jobs, up to `max_in_flight` messages, the first
    /// `max_with_bytes` of them with their bytes; returns the receiving end.
    pub fn attach(
        &self,
        max_in_flight: usize,
        max_with_bytes: usize,
    ) -> mpsc::UnboundedReceiver<Job> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.sender.lock().expect("handoff lock") = Some(tx);
        self.max_with_bytes.store(max_with_bytes, Ordering::SeqCst);
        self.max_in_flight.store(max_in_flight, Ordering::SeqCst);
        rx
    }

    /// The worker stops taking jobs (shutdown): enqueue leaves messages in the queue.
    pub fn detach(&self) {
        self.max_in_flight.store(0, Ordering::SeqCst);
        *self.sender.lock().expect("handoff lock") = None;
    }

    /// Takes one slot if the worker runs and has room.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        // Not `then_some`: it would build (and drop, giving back a slot) a reservation
        // even when none was taken.
        if self.take_slot() {
            Some(Reservation {
                handoff: self.clone(),
                used: false,
                carries_bytes: self.in_flight.load(Ordering::SeqCst)
                    <= self.max_with_bytes.load(Ordering::SeqCst),
            })
        } else {
            None
        }
    }

    /// Takes one slot for the worker's own claim from the queue; false when full.
    pub fn take_slot(&self) -> bool {
        let max = self.max_in_flight.load(Ordering::SeqCst);
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Free slots now.
    pub fn room(&self) -> usize {
        self.max_in_flight
            .load(Ordering::SeqCst)
            .saturating_sub(self.in_flight.load(Ordering::SeqCst))
    }

    /// Messages the worker holds.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Gives a durable, claimed message to the worker. If the worker stopped meanwhile,
    /// the message stays claimed in the store and the next start makes it due.
    pub fn send(&self, mut reservation: Reservation, job: Job) {
        let sender = self.sender.lock().expect("handoff lock").clone();
        let Some(tx) = sender else {
            return;
        };
        let id = job.record.id;
        self.hold(id);
        if tx.send(job).is_ok() {
            reservation.used = true;
        } else {
            self.held.lock().expect("held lock").remove(&id);
        }
    }

    /// The worker holds this message from now on (the claim's way in).
    pub fn hold(&self, id: MessageId) {
        self.held.lock().expect("held lock").insert(id, false);
    }

    /// Whether the worker holds this message.
    /// Every message the worker holds (their leases are renewed while they are held).
    pub fn held_ids(&self) -> Vec<MessageId> {
        self.held
            .lock()
            .expect("held lock")
            .keys()
            .copied()
            .collect()
    }

    pub fn is_held(&self, id: &MessageId) -> bool {
        self.held.lock().expect("held lock").contains_key(id)
    }

    /// A message became final while the worker may hold it (cancelled, bounced): the
    /// worker must not send it, nor write an outcome over its record.
    pub fn withdraw(&self, id: &MessageId) {
        if let Some(withdrawn) = self.held.lock().expect("held lock").get_mut(id) {
            *withdrawn = true;
        }
    }

    /// Whether a held message was withdrawn.
    pub fn is_withdrawn(&self, id: &MessageId) -> bool {
        self.held
            .lock()
            .expect("held lock")
            .get(id)
            .copied()
            .unwrap_or(false)
    }

    /// The worker is done with a message it held: its slot frees.
    pub fn finished(&self, id: &MessageId) {
        self.held.lock().expect("held lock").remove(id);
        self.done();
    }

    /// A slot frees (one taken for a claim that found nothing to send, or a message
    /// the worker held: see [`Handoff::finished`]).
    pub fn done(&self) {
        // Never below zero: a wrapped count would read as full and stop delivery.
        if self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            tracing::error!("the delivery worker settled more messages than it held (a bug)");
        }
        self.capacity_bell.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_slot_without_a_worker_and_never_more_than_the_cap() {
        let h = Arc::new(Handoff::default());
        assert!(h.try_reserve().is_none(), "no worker attached");
        let _rx = h.attach(2, 1);
        let a = h.try_reserve().unwrap();
        assert!(a.carries_bytes(), "the first carries its bytes");
        assert!(h.take_slot());
        for _ in 0..3 {
            assert!(h.try_reserve().is_none(), "full");
        }
        assert_eq!(h.in_flight(), 2, "a refused reservation gives nothing back");
        drop(a); // unused: given back
        assert_eq!(h.in_flight(), 1);
        let b = h.try_reserve().unwrap();
        assert!(!b.carries_bytes(), "past the bytes cap: the record only");
        drop(b);
        h.detach();
        assert!(h.try_reserve().is_none(), "detached");
    }

    #[test]
    fn a_sent_job_keeps_its_slot_until_done() {
        let h = Arc::new(Handoff::default());
        let mut rx = h.attach(4, 4);
        let r = h.try_reserve().unwrap();
        let record = MessageRecord::example("a@example.jp", 1);
        h.send(
            r,
            Job {
                record,
                body: Some(b"bytes".to_vec()),
            },
        );
        assert_eq!(h.in_flight(), 1);
        let job = rx.try_recv().unwrap();
        assert_eq!(job.body.as_deref(), Some(&b"bytes"[..]));
        assert!(h.is_held(&job.record.id), "held from the handoff on");
        assert!(!h.is_withdrawn(&job.record.id));
        h.withdraw(&job.record.id);
        assert!(h.is_withdrawn(&job.record.id), "cancelled while held");
        h.finished(&job.record.id);
        assert!(!h.is_held(&job.record.id));
        h.withdraw(&job.record.id);
        assert!(
            !h.is_withdrawn(&job.record.id),
            "only a held message is marked"
        );
        assert_eq!(h.in_flight(), 0);
    }
}

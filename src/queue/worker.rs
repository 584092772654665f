//! The delivery worker inside `serve`.
//!
//! A dispatcher claims due queue entries through the [`lifecycle`](super::lifecycle)
//! (the message becomes `sending` and its queue key moves an hour ahead, so it is not
//! claimed twice) and hands each to its destination ([`route`](super::route)): the
//! relay, the recipient's domain (MX), or the outbox. Each destination runs up to
//! `max_connections_per_domain` connection tasks, all under `max_connections`, and each
//! task first takes one of the destination's connection slots in the store, so on a
//! shared store the cap counts every node's connections; a task
//! keeps its SMTP connection for up to `messages_per_connection` messages and lingers
//! briefly for more before it says QUIT. Outcomes go back to the lifecycle. On start,
//! messages left `sending` by a killed process are made due again: delivery is at least
//! once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::Queue;
use super::route::{Route, open_connection};
use crate::delivery::smtp::Connection;
use crate::delivery::{AttemptReport, Envelope, Outcome};
use crate::domain::{Detail, MessageId, MessageRecord, now_ms};
use crate::queue::handoff::Job;
use crate::shutdown::Shutdown;
use crate::store::StoreError;

/// How long an idle connection waits for more work before QUIT.
const LINGER: Duration = Duration::from_millis(300);
/// How often the spool's mostly dead segments give their space back.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);

/// Messages waiting for one destination, and its connection tasks.
struct Destination {
    name: String,
    pending: Mutex<VecDeque<Job>>,
    active: AtomicUsize,
    bell: Notify,
}

impl Destination {
    fn pop(&self) -> Option<Job> {
        self.pending.lock().expect("pending lock").pop_front()
    }
}

struct Inner {
    queue: Queue,
    route: Route,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    connections: Arc<Semaphore>,
    /// This worker's name on the connection slots it holds in the store.
    holder: String,
}

/// Runs the worker until shutdown. Returns once connection tasks have finished their
/// current message (or after a grace period).
pub async fn run(queue: Queue, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let route = Route::from_config(&queue.config)?;
    let recovered = queue.lifecycle.recover(now_ms()).await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "messages left in flight by the last run are due again"
        );
        queue.store.flush().await?;
    }
    let d = &queue.config.delivery;
    let handoff = &queue.handoff;
    let inner = Arc::new(Inner {
        connections: Arc::new(Semaphore::new(d.max_connections)),
        queue: queue.clone(),
        route,
        destinations: Mutex::new(HashMap::new()),
        holder: format!("worker-{}", crate::secrets::random_hex::<8>()),
    });
    let mut jobs = handoff.attach(
        (d.max_connections * 512).max(4096),
        (d.max_connections * 64).max(256),
    );
    let mut next_reclaim = Instant::now() + RECLAIM_EVERY;
    // Claims are renewed three times a lease, so a held message's never lapses.
    let renew_every = (queue.lifecycle.lease() / 3).max(Duration::from_secs(1));
    let mut next_renewal = Instant::now() + renew_every;
    // When to look at the queue next, and whether the last look stopped for want of
    // room (then a freed slot is worth another look).
    let mut look_at = Instant::now();
    let mut starved = false;
    let mut reopen_seen = queue.store.reopened_at();
    loop {
        if let Some(at) = queue.store.reopened_at()
            && reopen_seen != Some(at)
        {
            // What the worker claimed or recorded before the reopen and was not flushed
            // is gone: messages it does not hold go back to the queue, as at start. The
            // first flush of this task after the reopen says its own writes were lost
            // (once); the recovery's writes are flushed by the next.
            let _ = queue.store.flush().await;
            match queue.lifecycle.recover_created_before(now_ms(), at).await {
                Ok(recovered) => {
                    reopen_seen = Some(at);
                    tracing::info!(
                        recovered,
                        "the store was reopened: messages in flight that the worker no longer holds are due again"
                    );
                    if let Err(e) = queue.store.flush().await {
                        tracing::warn!(error = %e, "cannot flush the recovered messages; they are recovered again at the next start");
                    }
                    look_at = Instant::now();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot recover the messages in flight after the store was reopened; trying again")
                }
            }
        }
        if Instant::now() >= next_reclaim {
            next_reclaim += RECLAIM_EVERY;
            reclaim_spool(&queue).await;
        }
        if Instant::now() >= next_renewal {
            next_renewal = Instant::now() + renew_every;
            if let Err(e) = queue.lifecycle.renew_claims(now_ms()).await {
                tracing::warn!(error = %e, "cannot renew the claims on the messages in hand");
            }
            let slots_until = now_ms() + queue.lifecycle.lease().as_millis() as u64;
            if let Err(e) = queue
                .store
                .renew_connection_slots(&inner.holder, slots_until)
                .await
            {
                tracing::warn!(error = %e, "cannot renew the connection slots in hand");
            }
        }
        if Instant::now() >= look_at {
            match claim_batch(&inner, now_ms()).await {
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the queue; retrying in 5s");
                    starved = false;
                    look_at = Instant::now() + Duration::from_secs(5);
                }
                Ok(claimed) => {
                    starved = handoff.room() == 0;
                    look_at = Instant::now()
                        + if starved {
                            Duration::from_secs(1)
                        } else if claimed > 0 {
                            Duration::ZERO
                        } else {
                            match queue.store.next_due().await {
                                Ok(Some(due)) => Duration::from_millis(
                                    due.saturating_sub(now_ms()).clamp(5, 1000),
                                ),
                                _ => Duration::from_secs(1),
                            }
                        };
                    if !starved && claimed > 0 {
                        tokio::task::yield_now().await;
                        continue;
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.recv() => break,
            Some(job) = jobs.recv() => {
                let name = inner.route.destination(&job.record);
                dispatch(&inner, name, job);
            }
            _ = queue.bell.notified() => look_at = Instant::now(),
            _ = handoff.capacity_bell.notified(), if starved => look_at = Instant::now(),
            _ = tokio::time::sleep_until(look_at) => {}
        }
    }
    // New messages stay in the queue; what the worker was given and has not started is
    // claimed in the store, and the next start makes it due again.
    handoff.detach();
    while let Ok(job) = jobs.try_recv() {
        handoff.finished(&job.record.id);
    }
    // Let connection tasks finish the message they hold.
    let deadline = Instant::now() + Duration::from_secs(10);
    while handoff.in_flight() > 0 && Instant::now() < deadline {
        for dest in inner.destinations.lock().expect("destinations").values() {
            let dropped = std::mem::take(&mut *dest.pending.lock().expect("pending"));
            for job in dropped {
                handoff.finished(&job.record.id);
            }
            dest.bell.notify_waiters();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Gives back the disk space of final messages that the backend still holds (the
/// sled backend's mostly dead spool segments).
async fn reclaim_spool(queue: &Queue) {
    // Outcomes are not flushed one by one: a flush here makes the releases of the last
    // minute durable, so emptied segments go now even when no mail comes in.
    if let Err(e) = queue.store.flush().await {
        tracing::warn!(error = %e, "cannot flush the store before reclaiming spool space");
        return;
    }
    match queue.store.reclaim_space().await {
        Ok(0) => {}
        Ok(bytes) => {
            tracing::info!(
                bytes,
                "spool: space of final messages given back in mostly empty segments"
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "spool space reclaim failed; the spool keeps its files")
        }
    }
}

/// Claims due messages up to the in-flight cap and hands them to destinations.
async fn claim_batch(inner: &Arc<Inner>, now: u64) -> Result<usize, StoreError> {
    let handoff = &inner.queue.handoff;
    let mut slots = 0;
    while slots < 512 && handoff.take_slot() {
        slots += 1;
    }
    if slots == 0 {
        return Ok(0);
    }
    let claimed = inner.queue.lifecycle.claim_due(now, slots).await;
    let records = match claimed {
        Ok(records) => records,
        Err(e) => {
            (0..slots).for_each(|_| handoff.done());
            return Err(e);
        }
    };
    let n = records.len();
    for record in records {
        handoff.hold(record.id);
        let name = inner.route.destination(&record);
        dispatch(inner, name, Job { record, body: None });
    }
    (n..slots).for_each(|_| handoff.done());
    Ok(n)
}

fn dispatch(inner: &Arc<Inner>, name: String, job: Job) {
    let dest = {
        let mut map = inner.destinations.lock().expect("destinations");
        map.entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Destination {
                    name,
                    pending: Mutex::new(VecDeque::new()),
                    active: AtomicUsize::new(0),
                    bell: Notify::new(),
                })
            })
            .clone()
    };
    let queued = {
        let mut p = dest.pending.lock().expect("pending");
        p.push_back(job);
        p.len()
    };
    dest.bell.notify_one();
    let cap = inner.queue.config.delivery.max_connections_per_domain;
    let active = dest.active.load(Ordering::SeqCst);
    // A new connection when none runs, or when work piles up behind the ones that do.
    if active < cap && (active == 0 || queued > active) {
        dest.active.fetch_add(1, Ordering::SeqCst);
        let inner = inner.clone();
        tokio::spawn(async move {
            let permit = inner.connections.clone().acquire_owned().await;
            if let Some(slot) = connection_slot(&inner, &dest).await {
                connection_task(&inner, &dest).await;
                let store = &inner.queue.store;
                if let Err(e) = store
                    .release_connection_slot(&dest.name, slot, &inner.holder)
                    .await
                {
                    // It lapses at the end of its lease instead.
                    tracing::warn!(error = %e, destination = %dest.name, "cannot give back a connection slot");
                }
            }
            drop(permit);
            dest.active.fetch_sub(1, Ordering::SeqCst);
            // Work may have arrived after this task decided to stop.
            if dest.active.load(Ordering::SeqCst) == 0
                && let Some(job) = dest.pop()
            {
                dispatch(&inner, dest.name.clone(), job);
            }
        });
    }
}

/// How long a connection waits before it looks again for a slot to its destination
/// while other nodes hold them all (plus up to as much again, so waiting nodes spread).
const SLOT_WAIT: Duration = Duration::from_millis(200);

/// A slot under the cluster's cap on connections to `dest`
/// (`delivery.max_connections_per_domain` counts every node's connections), waited
/// for while the others hold them all; `None` when no message is left waiting for it.
async fn connection_slot(inner: &Inner, dest: &Destination) -> Option<u32> {
    let store = &inner.queue.store;
    let cap = inner.queue.config.delivery.max_connections_per_domain;
    let lease = inner.queue.lifecycle.lease().as_millis() as u64;
    let mut told = false;
    loop {
        if dest.pending.lock().expect("pending").is_empty() {
            return None;
        }
        let now = now_ms();
        match store
            .take_connection_slot(&dest.name, &inner.holder, cap, now + lease, now)
            .await
        {
            Ok(Some(slot)) => return Some(slot),
            Ok(None) if !told => {
                told = true;
                tracing::debug!(destination = %dest.name, cap, "every connection slot is held by other nodes; waiting");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, destination = %dest.name, "cannot take a connection slot; trying again")
            }
        }
        let jitter = rand::random::<u64>() % SLOT_WAIT.as_millis() as u64;
        tokio::time::sleep(SLOT_WAIT + Duration::from_millis(jitter)).await;
    }
}

async fn next_message(dest: &Destination) -> Option<Job> {
    // The bell keeps a ring nobody heard, and another connection may have taken the job
    // it rang for: a ring with nothing to take waits on for the rest of the linger, or
    // the connection would close under load and a new one be opened for the next job.
    let deadline = Instant::now() + LINGER;
    loop {
        if let Some(job) = dest.pop() {
            return Some(job);
        }
        if tokio::time::timeout_at(deadline, dest.bell.notified())
            .await
            .is_err()
        {
            return dest.pop();
        }
    }
}

/// A message taken for sending: its record, bytes and envelope.
struct Ready {
    record: MessageRecord,
    body: Vec<u8>,
    envelope: Envelope,
}

/// Makes a job ready to send, or finishes with it when it cannot be sent: withdrawn
/// while it waited here (its record is final already), or its bytes unreadable.
async fn ready(inner: &Arc<Inner>, job: Job) -> Option<Ready> {
    let queue = &inner.queue;
    if queue.handoff.is_withdrawn(&job.record.id) {
        done(inner, &job.record.id);
        return None;
    }
    let body = match job.body {
        Some(b) => b,
        None => match bytes_of(queue, &job.record).await {
            Ok(b) => b,
            Err(outcome) => {
                settle(inner, job.record, &outcome).await;
                return None;
            }
        },
    };
    let envelope = envelope_for(queue, &job.record);
    Some(Ready {
        record: job.record,
        body,
        envelope,
    })
}

/// The destination's next message ready to send. With `wait`, waits a little for one
/// to come; without, takes only one waiting now (to announce with the one being sent).
async fn next_ready(inner: &Arc<Inner>, dest: &Destination, wait: bool) -> Option<Ready> {
    loop {
        let job = if wait {
            next_message(dest).await
        } else {
            dest.pop()
        }?;
        if let Some(message) = ready(inner, job).await {
            return Some(message);
        }
    }
}

/// One connection's life: take messages for the destination until none is left. Where
/// the server pipelines, each message goes out with the next one's MAIL, RCPT and DATA
/// when another is waiting (see `delivery::smtp`).
async fn connection_task(inner: &Arc<Inner>, dest: &Destination) {
    let queue = &inner.queue;
    let per_connection = queue.config.delivery.messages_per_connection;
    let mut conn: Option<Connection> = None;
    // The message announced on `conn` with the last one's content: it goes next.
    let mut announced: Option<Ready> = None;
    loop {
        let message = match announced.take() {
            Some(m) if queue.handoff.is_withdrawn(&m.record.id) => {
                // Cancelled after it was announced: the server waits for its content.
                // Dropping the connection mid-transaction makes the server discard it.
                tracing::info!(msg_id = %m.record.id, "withdrawn after it was announced to the server; closing the connection so that it is not sent");
                conn = None;
                done(inner, &m.record.id);
                continue;
            }
            Some(m) => m,
            None => match next_ready(inner, dest, true).await {
                Some(m) => {
                    // It may have waited: a server that hung up meanwhile gets a new
                    // connection rather than this message on the dead one.
                    if conn.as_ref().is_some_and(Connection::closed_by_peer) {
                        tracing::debug!(destination = %dest.name, "the server closed the idle connection; opening a new one");
                        conn = None;
                    }
                    m
                }
                None => break,
            },
        };
        let Ready {
            record,
            body,
            envelope,
        } = message;
        let outcome = match &inner.route {
            Route::Outbox(dir) => {
                let dir = dir.clone();
                let idtext = record.id.to_string();
                tokio::task::spawn_blocking(move || {
                    crate::delivery::outbox::deliver(&dir, &idtext, &envelope, &body)
                })
                .await
                .unwrap_or_else(|e| {
                    Outcome::Deferred(AttemptReport {
                        reply: Some(e.to_string()),
                        ..Default::default()
                    })
                })
            }
            Route::Relay { .. } | Route::Mx { .. } => {
                if conn.is_none() {
                    match open_connection(&inner.route, &record).await {
                        Ok(c) => conn = Some(c),
                        Err(outcome) => {
                            // The destination is unreachable: every message waiting for
                            // it gets the same outcome now, each in its own timeline.
                            settle(inner, record, &outcome).await;
                            while let Some(other) = dest.pop() {
                                settle(inner, other.record, &outcome).await;
                            }
                            break;
                        }
                    }
                }
                let c = conn.as_mut().expect("opened above");
                // Announced only when this connection will carry it.
                if c.pipelines() && c.sent + 1 < per_connection {
                    announced = next_ready(inner, dest, false).await;
                }
                let next = announced.as_ref().map(|m| &m.envelope);
                let (outcome, alive) = c.send(&envelope, &body, next).await;
                if (!alive || c.sent >= per_connection)
                    && let Some(c) = conn.take()
                {
                    c.close().await;
                }
                outcome
            }
        };
        settle(inner, record, &outcome).await;
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

/// A held message's bytes from the spool, or the outcome when they cannot be had.
async fn bytes_of(queue: &Queue, record: &MessageRecord) -> Result<Vec<u8>, Box<Outcome>> {
    let report = |detail: String| AttemptReport {
        detail: Some(detail),
        ..AttemptReport::default()
    };
    let outcome = match queue.store.body(record).await {
        Ok(Some(b)) => return Ok(b),
        // An open record without bytes: nothing can ever be sent for it.
        Ok(None) => Outcome::Failed(report(Detail::BytesMissing.to_string())),
        // Damaged bytes (a power loss before they were acknowledged, or a bad disk)
        // will not heal: the message fails, saying why. A read error may.
        Err(e) => {
            let unreadable = Detail::BytesUnreadable {
                error: e.to_string(),
            }
            .to_string();
            if e.is_damage() {
                Outcome::Failed(report(unreadable))
            } else {
                Outcome::Deferred(report(unreadable))
            }
        }
    };
    Err(Box::new(outcome))
}

/// The worker is done with a message it held.
fn done(inner: &Inner, id: &MessageId) {
    inner.queue.handoff.finished(id);
}

/// Records an outcome for a message the worker holds (its record as claimed or handed
/// over, so the hot path reads no record; a withdrawn message's stored record is final)
/// and frees its in-flight slot.
async fn settle(inner: &Arc<Inner>, record: MessageRecord, outcome: &Outcome) {
    let id = record.id;
    let queue = &inner.queue;
    // Withdrawn during the attempt (cancelled, bounced): the stored record is final.
    // Only a delivery is added to it, since the mail went out after all.
    let record = if queue.handoff.is_withdrawn(&id) {
        match (outcome, queue.store.message(&id).await) {
            (Outcome::Delivered(_), Ok(Some(stored))) => Some(stored),
            _ => None,
        }
    } else {
        Some(record)
    };
    if let Some(record) = record
        && let Err(e) = queue
            .lifecycle
            .record_outcome(record, outcome, now_ms())
            .await
    {
        tracing::error!(msg_id = %id, error = %e, "cannot record a delivery outcome; the message will be retried");
    }
    done(inner, &id);
}

/// The SMTP envelope of a message: VERP return path, one recipient, DSN envelope id.
pub fn envelope_for(queue: &Queue, record: &MessageRecord) -> Envelope {
    Envelope {
        mail_from: queue
            .verp
            .address(&record.id, &queue.config.sender.bounce_domain),
        rcpt_to: record.to.to_string(),
        envid: record.id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            record: MessageRecord::example("a@example.jp", 1),
            body: None,
        }
    }

    #[tokio::test]
    async fn a_ring_for_a_job_another_connection_took_does_not_end_the_linger() {
        let dest = Arc::new(Destination {
            name: "example.jp".into(),
            pending: Mutex::new(VecDeque::new()),
            active: AtomicUsize::new(0),
            bell: Notify::new(),
        });
        // Rung while every connection was busy; the job went to the first one free.
        dest.bell.notify_one();
        let later = dest.clone();
        tokio::spawn(async move {
            tokio::time::sleep(LINGER / 4).await;
            later.pending.lock().unwrap().push_back(job());
            later.bell.notify_one();
        });
        assert!(
            next_message(&dest).await.is_some(),
            "the connection gave up on the stale ring instead of lingering"
        );
    }
}

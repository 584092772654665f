//! A message's life: the only code that changes a message's status.
//!
//! Every way a message moves (enqueued, claimed by the worker, an attempt's outcome,
//! recovered after a crash, retried or cancelled by an operator, bounced, suppressed,
//! expired) is a named operation here, which writes the status, the queue entry, the
//! timeline event and the record together, and withdraws the message from the worker
//! when it no longer may be sent. Callers flush (the store's unit of durability) before
//! they acknowledge.
//!
//! The application's message events (`message.delivered`, `.failed`, `.bounced`,
//! `.expired`, and `.deferred` on a message's first deferral) are written here too, with
//! the record they describe, so they are durable with the same flush.
//!
//! The admin chart's daily tallies (delivered, first deferred, bounced, failed; overall
//! and per receiving provider, see `domain::tally`) are counted here as well, where the
//! outcome is decided, so the chart never scans messages.
//!
//! When a message reaches a final state, [`MessageFinished`] goes to the listeners
//! registered with [`Lifecycle::subscribe`] (flows follow their mail this way, wired in
//! `app` and `control`), so the queue does not call up into the modules that use it. The
//! words for why a message failed are made here once, whichever path (the worker's reply
//! or a bounce that came back) failed it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::Instrument;

use crate::delivery::Outcome;
use crate::domain::bounce::Suppression;
use crate::domain::tally::{self, DayOutcome};
use crate::domain::{
    Detail, Event, EventData, EventType, MessageId, MessageRecord, MessageStatus, Step,
    format_time_ms,
};
use crate::queue::handoff::Handoff;
use crate::queue::retry::{RetryDecision, next_attempt};
use crate::store::{Claimed, Store, StoreError, Tells};

/// How long a claimed message stays out of the due range.
pub(crate) const LEASE_MS: u64 = 3_600_000;

/// A message reached a final state (delivered, failed, expired, bounced, cancelled,
/// suppressed). Its record is written (not yet flushed) with the status and the event.
#[derive(Debug, Clone)]
pub struct MessageFinished {
    pub record: MessageRecord,
    pub at_ms: u64,
    /// Why it will not arrive, in words for people; `None` when it was delivered or
    /// cancelled.
    pub failure: Option<String>,
}

/// Follows finished messages; returns what it changed, in words, if anything.
pub type FinishedListener = Arc<
    dyn Fn(Arc<MessageFinished>) -> Pin<Box<dyn Future<Output = Option<String>> + Send>>
        + Send
        + Sync,
>;

/// Why a message will not arrive, the same words for every path that fails it.
fn failure_text(record: &MessageRecord) -> Option<String> {
    let reply = || record.last_reply.as_deref().unwrap_or("no reason given");
    let detail = match record.status {
        MessageStatus::Failed | MessageStatus::Bounced => Detail::Refused {
            reply: reply().to_string(),
        },
        MessageStatus::Expired => Detail::NeverAccepted,
        MessageStatus::Suppressed => Detail::AddressSuppressed,
        _ => return None,
    };
    Some(detail.to_string())
}

/// The application's event for a message that reached `status`; none for a cancelled
/// one (an operator's or a superseding flow's doing, told by its own event).
fn final_event(status: MessageStatus) -> Option<EventType> {
    match status {
        MessageStatus::Delivered => Some(EventType::MessageDelivered),
        MessageStatus::Failed | MessageStatus::Suppressed => Some(EventType::MessageFailed),
        MessageStatus::Bounced => Some(EventType::MessageBounced),
        MessageStatus::Expired => Some(EventType::MessageExpired),
        _ => None,
    }
}

/// An event's payload for a message at one timeline step: ids, address, the remote
/// server's words; never the body.
fn message_data(record: &MessageRecord, step: &Event, reason: Option<String>) -> EventData {
    EventData {
        reason,
        smtp_code: step.smtp_code,
        enhanced_status: step.enhanced_status.clone(),
        reply: step.reply.clone(),
        remote_host: step.remote_host.clone(),
        attempt: step.attempt,
        ..EventData::of_message(record)
    }
}

/// Why an operation on an open message was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotOpen {
    #[error("no message {0} in the queue")]
    Unknown(MessageId),
    #[error("message {id} is {status} and no longer in the queue")]
    Final { id: MessageId, status: &'static str },
    #[error("message {0} is being sent right now")]
    Sending(MessageId),
}

/// Errors of an operation on one message.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    NotOpen(#[from] NotOpen),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The owner of message status; cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    store: Store,
    handoff: Arc<Handoff>,
    retry_schedule: Arc<Vec<Duration>>,
    listeners: Arc<RwLock<Vec<FinishedListener>>>,
    /// How long a claimed message stays with this node.
    lease_ms: u64,
    /// How the daily tallies are kept.
    days: DayTally,
}

/// How the daily tallies are kept: the zone their days are in, and whether an
/// attempt's remote host is the recipient's own MX (so it may name the provider).
#[derive(Debug, Clone, Copy)]
struct DayTally {
    zone: chrono_tz::Tz,
    mx_is_receiver: bool,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").finish_non_exhaustive()
    }
}

impl Lifecycle {
    pub fn new(store: Store, handoff: Arc<Handoff>, retry_schedule: Vec<Duration>) -> Lifecycle {
        Lifecycle {
            store,
            handoff,
            retry_schedule: Arc::new(retry_schedule),
            listeners: Arc::default(),
            lease_ms: LEASE_MS,
            days: DayTally {
                zone: chrono_tz::Asia::Tokyo,
                mx_is_receiver: false,
            },
        }
    }

    /// The same lifecycle with claims that last `lease` (a shared store's `store.lease`).
    pub fn with_lease(mut self, lease: Duration) -> Lifecycle {
        self.lease_ms = lease.as_millis() as u64;
        self
    }

    /// The same lifecycle with daily tallies in `zone`; `mx_is_receiver` when mailgate
    /// delivers to the recipients' MX hosts itself (not through a relay or the outbox).
    pub fn with_days(mut self, zone: chrono_tz::Tz, mx_is_receiver: bool) -> Lifecycle {
        self.days = DayTally {
            zone,
            mx_is_receiver,
        };
        self
    }

    /// The day's tallies of `outcome` a message adds one to: overall and for the
    /// record's provider.
    fn tally(
        &self,
        record: &MessageRecord,
        outcome: DayOutcome,
        at_ms: u64,
        remote_host: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let day = tally::day_of(at_ms, self.days.zone);
        let mx = remote_host.filter(|_| self.days.mx_is_receiver);
        let provider = crate::domain::provider::provider_of(record.to.domain(), mx);
        vec![
            (tally::DAY_KIND, tally::day_label(&day, outcome)),
            (
                tally::DAY_PROVIDER_KIND,
                tally::provider_label(&day, provider, outcome),
            ),
        ]
    }

    /// Adds a listener for finished messages.
    pub fn subscribe(&self, listener: FinishedListener) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Stores a new message with its bytes and first event: queued at its due time, or
    /// written already claimed (`sending`, a lease ahead) when it is handed straight to
    /// the worker.
    pub async fn enqueue(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
        handed_to_worker: bool,
    ) -> Result<(), StoreError> {
        if handed_to_worker {
            record.status = MessageStatus::Sending;
            record.due_ms = Some(record.created_ms + self.lease_ms);
        } else {
            record.status = MessageStatus::Queued;
        }
        self.store.insert_message(record, raw, first).await
    }

    /// Stores a new message that is not sent, since its address is suppressed: it fails
    /// at once, and its timeline says why.
    pub async fn refuse_suppressed(
        &self,
        record: &mut MessageRecord,
        raw: &[u8],
        first: &Event,
        entry: &Suppression,
        now: u64,
    ) -> Result<(), StoreError> {
        record.due_ms = None;
        self.store.insert_message(record, raw, first).await?;
        let detail = Detail::Suppressed {
            address: record.to.to_string(),
            since_ms: entry.since_ms,
            reason: entry.reason.clone(),
            evidence: entry.evidence.clone(),
        }
        .to_string();
        self.finish(
            record,
            MessageStatus::Suppressed,
            Event::new(Step::Suppressed, now).with_detail(detail),
        )
        .await
        .map(drop)
    }

    /// Renews the claims on every message the worker holds, a lease ahead of `now`, so
    /// that on a shared store no other node takes one while it waits here.
    pub async fn renew_claims(&self, now: u64) -> Result<(), StoreError> {
        let held = self.handoff.held_ids();
        self.store.extend_claims(&held, now + self.lease_ms).await
    }

    /// How long a claim lasts.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// Makes every message left `sending` by a stopped process due now, with a
    /// `recovered` event. A shared store recovers nothing at start: the messages
    /// another node holds are its own until their lease ends.
    pub async fn recover(&self, now: u64) -> Result<usize, StoreError> {
        self.recover_where(now, |_| true).await
    }

    /// [`Lifecycle::recover`] for the messages created before `before_ms` that the
    /// worker does not hold: after the store was reopened in-process (the sled backend
    /// after a write error), its records are what the last flush left, as after a
    /// restart, while messages enqueued since are not touched.
    ///
    /// Besides `sending` records, a queue entry is recovered when it is the message's
    /// only one and its record names another due time: a claim moves the entry before
    /// it rewrites the record, and a restart (or a reopen) between the two keeps the
    /// moved entry with the old record, which a claim would then drop as stale and so
    /// leave the message with no entry at all.
    pub async fn recover_created_before(
        &self,
        now: u64,
        before_ms: u64,
    ) -> Result<usize, StoreError> {
        self.recover_where(now, |record| {
            record.created_ms < before_ms && !self.handoff.is_held(&record.id)
        })
        .await
    }

    /// Recovers the open messages left in flight (see [`Lifecycle::recover`]) that
    /// `wanted` picks.
    async fn recover_where(
        &self,
        now: u64,
        wanted: impl Fn(&MessageRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let store = &self.store;
        if store.shared() {
            return Ok(0);
        }
        let entries = store.queue_entries().await?;
        let present: std::collections::HashSet<(u64, MessageId)> =
            entries.iter().copied().collect();
        let mut done = std::collections::HashSet::new();
        for (due, id) in entries {
            if done.contains(&id) {
                continue;
            }
            let Some(mut record) = store.message(&id).await? else {
                continue;
            };
            if !record.status.is_open() || !wanted(&record) {
                continue;
            }
            let orphaned = record.due_ms != Some(due)
                && !record
                    .due_ms
                    .is_some_and(|own| present.contains(&(own, id)));
            if record.status != MessageStatus::Sending && !orphaned {
                continue;
            }
            if record.due_ms != Some(due) {
                // A lease renewed while the worker held the message, or a claim whose
                // record rewrite was lost: the record names another entry.
                store.drop_entry(due, &id).await?;
            }
            record.status = if record.attempts == 0 {
                MessageStatus::Queued
            } else {
                MessageStatus::Deferred
            };
            store.reschedule(&mut record, Some(now)).await?;
            record.push_event(
                Event::new(Step::Recovered, now).with_detail(Detail::Recovered.to_string()),
            );
            store.put_message(&mut record).await?;
            done.insert(id);
        }
        Ok(done.len())
    }

    /// Claims up to `limit` due messages for the worker: each becomes `sending` a lease
    /// ahead, or is finished off when it is no longer open or has expired. Returns the
    /// records to try.
    ///
    /// A message the worker still holds (its lease ended while it waited behind a slow
    /// destination) is not claimed again: its entry has moved a lease ahead and the
    /// record is not rewritten, since the connection task holding it may be writing its
    /// outcome; the record's own `due_ms` then names the old entry, and the moved entry
    /// is dropped as stale once the message moves on.
    pub async fn claim_due(
        &self,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let store = &self.store;
        let lease_until = now + self.lease_ms;
        let mut out = Vec::new();
        for Claimed { due_ms, id, record } in store.claim_due(now, lease_until, limit).await? {
            if self.handoff.is_held(&id) {
                continue;
            }
            let Some(mut record) = record else {
                store.drop_entry(lease_until, &id).await?;
                continue;
            };
            if !record.status.is_open() || record.due_ms != Some(due_ms) {
                store.drop_entry(lease_until, &id).await?;
                continue;
            }
            record.due_ms = Some(lease_until);
            if record.expires_ms <= now {
                self.finish(
                    &mut record,
                    MessageStatus::Expired,
                    Event::new(Step::Expired, now).with_detail(Detail::LifetimeEnded.to_string()),
                )
                .await?;
                continue;
            }
            record.status = MessageStatus::Sending;
            store.put_message(&mut record).await?;
            out.push(record);
        }
        Ok(out)
    }

    /// Records an attempt's outcome: the event, the new status, the next try.
    pub async fn record_outcome(
        &self,
        mut record: MessageRecord,
        outcome: &Outcome,
        now: u64,
    ) -> Result<(), StoreError> {
        let id = record.id;
        record.attempts += 1;
        let report = outcome.report();
        let mut event = Event {
            at_ms: now,
            step: None,
            attempt: Some(record.attempts),
            remote_host: report.remote_host.clone(),
            remote_ip: report.remote_ip.clone(),
            smtp_code: report.smtp_code,
            enhanced_status: report.enhanced_status.clone(),
            reply: report.reply.clone(),
            tls: report.tls.clone(),
            duration_ms: Some(report.duration_ms),
            detail: report.detail.clone(),
        };
        record.last_reply = report.reply.clone().or_else(|| report.detail.clone());
        // The span goes with the future (`instrument`), not the thread: a guard held
        // across the awaits below stayed entered while other outcomes ran on the same
        // thread, nesting spans until the stack overflowed.
        let span = tracing::info_span!("outcome", msg_id = %id, attempt = record.attempts);
        async {
            match outcome {
                Outcome::Delivered(_) => {
                    event.step = Some(Step::Delivered);
                    tracing::info!(
                        host = report.remote_host.as_deref().unwrap_or(""),
                        "delivered"
                    );
                    self.finish(&mut record, MessageStatus::Delivered, event)
                        .await
                        .map(drop)
                }
                Outcome::Failed(_) => {
                    event.step = Some(Step::Failed);
                    tracing::warn!(
                        reply = report.reply.as_deref().unwrap_or(""),
                        "failed permanently"
                    );
                    self.finish(&mut record, MessageStatus::Failed, event)
                        .await
                        .map(drop)
                }
                Outcome::Deferred(_) => {
                    match next_attempt(
                        &self.retry_schedule,
                        record.attempts,
                        now,
                        record.expires_ms,
                    ) {
                        RetryDecision::RetryAt(at) => {
                            event.step = Some(Step::Deferred);
                            let why = event.detail.take();
                            event.detail = Some(Detail::NextTry { why, at_ms: at }.to_string());
                            tracing::info!(reply = report.reply.as_deref().unwrap_or(""), next = %format_time_ms(at), "deferred");
                            record.status = MessageStatus::Deferred;
                            let mut tells = Tells::default();
                            if record.attempts == 1 {
                                let data = message_data(&record, &event, event.detail.clone());
                                tells.event =
                                    Some(Store::new_event(EventType::MessageDeferred, data, now));
                                tells.counts = self.tally(
                                    &record,
                                    DayOutcome::Deferred,
                                    now,
                                    event.remote_host.as_deref(),
                                );
                            }
                            record.push_event(event);
                            self.store
                                .write_message_change(&mut record, Some(at), tells)
                                .await
                        }
                        RetryDecision::Expire => {
                            event.step = Some(Step::Deferred);
                            record.push_event(event);
                            tracing::warn!("expired after its last try");
                            self.finish(
                                &mut record,
                                MessageStatus::Expired,
                                Event::new(Step::Expired, now)
                                    .with_detail(Detail::LifetimeEnded.to_string()),
                            )
                            .await
                            .map(drop)
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The record of an open message, or why it is not one.
    async fn open_message(&self, id: &MessageId) -> Result<MessageRecord, LifecycleError> {
        let r = self.store.message(id).await?.ok_or(NotOpen::Unknown(*id))?;
        if !r.status.is_open() {
            return Err(NotOpen::Final {
                id: *id,
                status: r.status.as_str(),
            }
            .into());
        }
        Ok(r)
    }

    /// Makes an open message due now, on `who`'s request.
    pub async fn retry_now(
        &self,
        id: &MessageId,
        who: &str,
        now: u64,
    ) -> Result<(), LifecycleError> {
        let mut r = self.open_message(id).await?;
        if r.status == MessageStatus::Sending {
            return Err(NotOpen::Sending(*id).into());
        }
        self.store.reschedule(&mut r, Some(now)).await?;
        r.push_event(
            Event::new(Step::RetryRequested, now).with_detail(
                Detail::By {
                    who: who.to_string(),
                }
                .to_string(),
            ),
        );
        self.store.put_message(&mut r).await?;
        Ok(())
    }

    /// Cancels an open message; `why` goes into its timeline. A message the worker
    /// holds is withdrawn, so it is not sent.
    pub async fn cancel(&self, id: &MessageId, why: &str, now: u64) -> Result<(), LifecycleError> {
        let mut r = self.open_message(id).await?;
        self.finish(
            &mut r,
            MessageStatus::Cancelled,
            Event::new(Step::Cancelled, now).with_detail(why),
        )
        .await?;
        self.handoff.withdraw(id);
        Ok(())
    }

    /// Notes a delay or temporary failure reported by a bounce: the timeline only.
    pub async fn note_delay(
        &self,
        record: &mut MessageRecord,
        event: Event,
    ) -> Result<(), StoreError> {
        record.push_event(event);
        self.store.put_message(record).await
    }

    /// A permanent bounce came back: the message is `bounced` (delivered or not), no
    /// longer tried, and withdrawn from the worker. `reply` is the receiver's words.
    /// Returns what the listeners changed.
    pub async fn bounce(
        &self,
        record: &mut MessageRecord,
        reply: Option<String>,
        event: Event,
    ) -> Result<Vec<String>, StoreError> {
        if reply.is_some() {
            record.last_reply = reply;
        }
        let changed = self.finish(record, MessageStatus::Bounced, event).await?;
        self.handoff.withdraw(&record.id);
        Ok(changed)
    }

    /// Puts a message in a final state: event, status, no queue entry, bytes dropped;
    /// then tells the listeners.
    async fn finish(
        &self,
        record: &mut MessageRecord,
        status: MessageStatus,
        event: Event,
    ) -> Result<Vec<String>, StoreError> {
        record.status = status;
        let at_ms = event.at_ms;
        let data = message_data(record, &event, failure_text(record));
        record.push_event(event);
        // The host the mail was offered to is the last attempt's: a bounce's reporting
        // MTA may be any server behind it, and the day it was delivered counted that host.
        let offered_to = record
            .timeline
            .iter()
            .rev()
            .find(|e| e.attempt.is_some())
            .and_then(|e| e.remote_host.clone());
        // `mailgate_deliveries_total` counts final states as they happen: a delivered
        // message that bounces later adds to "bounced" and never takes from "delivered".
        let mut counts = vec![("deliveries", status.as_str().to_string())];
        if let Some(outcome) = DayOutcome::of_final(status) {
            counts.extend(self.tally(record, outcome, at_ms, offered_to.as_deref()));
        }
        let tells = Tells {
            event: final_event(status).map(|kind| Store::new_event(kind, data, at_ms)),
            counts,
        };
        self.store.write_message_change(record, None, tells).await?;
        let finished = Arc::new(MessageFinished {
            record: record.clone(),
            at_ms,
            failure: failure_text(record),
        });
        let listeners: Vec<FinishedListener> = self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut changed = Vec::new();
        for listener in listeners {
            changed.extend(listener(finished.clone()).await);
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_and_a_bounce_give_the_same_words_for_a_refusal() {
        let mut r = MessageRecord::example("a@example.jp", 1);
        r.last_reply = Some("550 5.1.1 no such user".into());
        r.status = MessageStatus::Failed;
        let failed = failure_text(&r);
        r.status = MessageStatus::Bounced;
        assert_eq!(failure_text(&r), failed);
        assert_eq!(
            failed.as_deref(),
            Some("the receiving server refused the mail: 550 5.1.1 no such user")
        );
        r.status = MessageStatus::Delivered;
        assert_eq!(failure_text(&r), None);
    }

    #[tokio::test]
    async fn a_claim_whose_record_rewrite_was_lost_is_recovered_not_dropped_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let life = Lifecycle::new(store.clone(), Arc::default(), vec![]);
        let mut old = MessageRecord::example("a@example.jp", 10);
        old.expires_ms = 1_000_000;
        life.enqueue(&mut old, b"raw", &Event::new(Step::Queued, 10), false)
            .await
            .unwrap();
        // The claim moved the entry a lease ahead; the record (still `queued`, due at
        // 10) was never rewritten: what a reopen or a restart between the two leaves.
        let claimed = store.claim_due(20, 20 + LEASE_MS, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        // A message created after the reopen is not touched, though it looks the same.
        let mut new = MessageRecord::example("b@example.jp", 500);
        new.expires_ms = 1_000_000;
        life.enqueue(&mut new, b"raw", &Event::new(Step::Queued, 500), true)
            .await
            .unwrap();
        assert_eq!(life.recover_created_before(600, 400).await.unwrap(), 1);
        let recovered = store.message(&old.id).await.unwrap().unwrap();
        assert_eq!(recovered.status, MessageStatus::Queued);
        assert_eq!(recovered.due_ms, Some(600));
        assert_eq!(store.queue_entries().await.unwrap().len(), 2);
        let due: Vec<MessageId> = life
            .claim_due(700, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(due, vec![old.id]);
        let untouched = store.message(&new.id).await.unwrap().unwrap();
        assert_eq!(untouched.status, MessageStatus::Sending);
    }

    #[tokio::test]
    async fn finishing_tells_every_listener_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let life = Lifecycle::new(store.clone(), Arc::default(), vec![]);
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = heard.clone();
        life.subscribe(Arc::new(move |f: Arc<MessageFinished>| {
            h.lock().unwrap().push((f.record.status, f.failure.clone()));
            Box::pin(async { Some("heard".to_string()) })
        }));
        let mut r = MessageRecord::example("a@example.jp", 1);
        life.enqueue(&mut r, b"raw", &Event::new(Step::Queued, 1), false)
            .await
            .unwrap();
        life.cancel(&r.id, "by a test", 2).await.unwrap();
        assert!(matches!(
            life.cancel(&r.id, "again", 3).await,
            Err(LifecycleError::NotOpen(NotOpen::Final { .. }))
        ));
        let mut stored = store.message(&r.id).await.unwrap().unwrap();
        assert_eq!(stored.status, MessageStatus::Cancelled);
        assert_eq!(stored.due_ms, None);
        let changed = life
            .bounce(
                &mut stored,
                Some("550 gone".into()),
                Event::new(Step::Bounced, 4),
            )
            .await
            .unwrap();
        assert_eq!(changed, vec!["heard".to_string()]);
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len(), 2);
        assert_eq!(heard[0], (MessageStatus::Cancelled, None));
        assert_eq!(
            heard[1].1.as_deref(),
            Some("the receiving server refused the mail: 550 gone")
        );
    }

    #[tokio::test]
    async fn a_final_message_is_told_as_an_event_and_a_cancelled_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let life = Lifecycle::new(store.clone(), Arc::default(), vec![]);
        let mut cancelled = MessageRecord::example("a@example.jp", 1);
        life.enqueue(&mut cancelled, b"raw", &Event::new(Step::Queued, 1), false)
            .await
            .unwrap();
        life.cancel(&cancelled.id, "by a test", 2).await.unwrap();
        let mut bounced = MessageRecord::example("b@example.jp", 1);
        life.enqueue(&mut bounced, b"raw", &Event::new(Step::Queued, 1), false)
            .await
            .unwrap();
        let mut step = Event::new(Step::Bounced, 3);
        step.smtp_code = Some(550);
        step.remote_host = Some("mx.example.jp".into());
        life.bounce(&mut bounced, Some("550 5.1.1 no such user".into()), step)
            .await
            .unwrap();
        let events = store.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, EventType::MessageBounced);
        assert_eq!(events[0].data.message_id, Some(bounced.id.to_string()));
        assert_eq!(events[0].data.smtp_code, Some(550));
        assert_eq!(events[0].data.remote_host.as_deref(), Some("mx.example.jp"));
    }

    #[tokio::test]
    async fn only_a_messages_first_deferral_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let life = Lifecycle::new(
            store.clone(),
            Arc::default(),
            vec![Duration::from_secs(60); 3],
        );
        let mut r = MessageRecord::example("a@example.jp", 1);
        r.expires_ms = u64::MAX;
        life.enqueue(&mut r, b"raw", &Event::new(Step::Queued, 1), false)
            .await
            .unwrap();
        let busy = Outcome::Deferred(crate::delivery::AttemptReport {
            smtp_code: Some(451),
            reply: Some("451 4.7.1 try later".into()),
            ..Default::default()
        });
        for now in [10, 20] {
            let record = store.message(&r.id).await.unwrap().unwrap();
            life.record_outcome(record, &busy, now).await.unwrap();
        }
        let events = store.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, EventType::MessageDeferred);
        assert_eq!(events[0].data.smtp_code, Some(451));
        assert_eq!(events[0].data.attempt, Some(1));
    }

    #[tokio::test]
    async fn outcomes_are_tallied_by_day_and_provider_and_an_mx_host_counts_only_when_it_is_the_receivers()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let google = || crate::delivery::AttemptReport {
            remote_host: Some("aspmx.l.google.com".into()),
            ..Default::default()
        };
        // 1970-01-01 23:00 UTC is the 2nd in Tokyo.
        let late = 23 * 3_600_000;
        let mut ids = Vec::new();
        for (mx, to) in [
            (true, "a@clinic.example.jp"),
            (false, "b@clinic.example.jp"),
        ] {
            let life = Lifecycle::new(store.clone(), Arc::default(), vec![Duration::from_secs(60)])
                .with_days(chrono_tz::Asia::Tokyo, mx);
            let mut r = MessageRecord::example(to, 1);
            r.expires_ms = u64::MAX;
            life.enqueue(&mut r, b"raw", &Event::new(Step::Queued, 1), false)
                .await
                .unwrap();
            let record = store.message(&r.id).await.unwrap().unwrap();
            life.record_outcome(record, &Outcome::Deferred(google()), late)
                .await
                .unwrap();
            let record = store.message(&r.id).await.unwrap().unwrap();
            life.record_outcome(record, &Outcome::Delivered(google()), late + 1)
                .await
                .unwrap();
            ids.push(r.id);
        }
        // The bounce is reported by another server; the mail went to Google's.
        let life = Lifecycle::new(store.clone(), Arc::default(), vec![])
            .with_days(chrono_tz::Asia::Tokyo, true);
        let mut delivered = store.message(&ids[0]).await.unwrap().unwrap();
        let mut step = Event::new(Step::Bounced, late + 2);
        step.remote_host = Some("relay.clinic.example.jp".into());
        life.bounce(&mut delivered, None, step).await.unwrap();
        let mut refused = MessageRecord::example("c@docomo.ne.jp", 1);
        life.refuse_suppressed(
            &mut refused,
            b"raw",
            &Event::new(Step::Queued, 1),
            &Suppression {
                address: "c@docomo.ne.jp".into(),
                since_ms: 1,
                reason: "userunknown".into(),
                evidence: "550".into(),
                message_id: None,
            },
            late,
        )
        .await
        .unwrap();
        assert_eq!(
            store.counters(tally::DAY_KIND).await.unwrap(),
            vec![
                ("1970-01-02 bounced".to_string(), 1),
                ("1970-01-02 deferred".to_string(), 2),
                ("1970-01-02 delivered".to_string(), 2)
            ],
            "a suppressed message was never offered to a receiver"
        );
        assert_eq!(
            store.counters(tally::DAY_PROVIDER_KIND).await.unwrap(),
            vec![
                ("1970-01-02 gmail bounced".to_string(), 1),
                ("1970-01-02 gmail deferred".to_string(), 1),
                ("1970-01-02 gmail delivered".to_string(), 1),
                ("1970-01-02 other deferred".to_string(), 1),
                ("1970-01-02 other delivered".to_string(), 1),
            ]
        );
    }
}

//! The delivery worker inside `serve`.
//!
//! A dispatcher claims due queue entries (the message becomes `sending` and its queue key
//! moves an hour ahead, so it is not claimed twice) and hands each to its destination:
//! the relay, the recipient's domain (MX), or the outbox. Each destination runs up to
//! `max_connections_per_domain` connection tasks, all under `max_connections`; a task
//! keeps its SMTP connection for up to `messages_per_connection` messages and lingers
//! briefly for more before it says QUIT. On start, messages left `sending` by a killed
//! process are made due again: delivery is at least once.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::config::{DeliveryMode, RelayTls};
use crate::delivery::mx::{self, Route as MxRoute};
use crate::delivery::smtp::{Connection, SmtpSettings, TlsPolicy};
use crate::delivery::{AttemptReport, Envelope, Outcome};
use crate::domain::{Event, MessageId, MessageRecord, MessageStatus, Step, format_time_ms, now_ms};
use crate::queue::handoff::Job;
use crate::queue::retry::{RetryDecision, next_attempt};
use crate::services::Services;
use crate::shutdown::Shutdown;
use crate::store::StoreError;
use crate::store::spool::SpoolError;

/// How long a claimed message stays out of the due range.
pub(crate) const LEASE_MS: u64 = 3_600_000;
/// How long an idle connection waits for more work before QUIT.
const LINGER: Duration = Duration::from_millis(300);
/// How often the spool's mostly dead segments give their space back.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);

/// Where messages go.
#[derive(Clone)]
enum Route {
    Outbox(PathBuf),
    Relay {
        host: String,
        port: u16,
        settings: SmtpSettings,
    },
    Mx {
        resolver: Arc<hickory_resolver::TokioResolver>,
        settings: SmtpSettings,
    },
}

impl Route {
    fn from_services(services: &Services) -> anyhow::Result<Route> {
        let config = &services.config;
        let d = &config.delivery;
        let base = |tls: TlsPolicy, verify: bool| SmtpSettings {
            ehlo_name: config.sender.hostname.clone(),
            connect_timeout: d.connect_timeout,
            command_timeout: d.command_timeout,
            tls,
            verify_certificates: verify,
            credentials: None,
        };
        Ok(match d.mode {
            DeliveryMode::Outbox => Route::Outbox(d.outbox_dir.clone()),
            DeliveryMode::Relay => {
                let relay = d.relay.clone().unwrap_or_default();
                let (host, port) = relay
                    .rsplit_once(':')
                    .and_then(|(h, p)| {
                        Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
                    })
                    .ok_or_else(|| anyhow::anyhow!("delivery.relay: {relay:?} is not host:port"))?;
                let tls = match d.relay_tls {
                    RelayTls::None => TlsPolicy::Off,
                    RelayTls::Starttls => TlsPolicy::Required,
                    RelayTls::Implicit => TlsPolicy::Implicit,
                };
                let mut settings = base(tls, true);
                if let (Some(user), Some(file)) = (&d.relay_user, &d.relay_password_file) {
                    let password = std::fs::read_to_string(file).map_err(|e| {
                        anyhow::anyhow!(
                            "delivery.relay_password_file: cannot read {}: {e}",
                            file.display()
                        )
                    })?;
                    settings.credentials = Some((user.clone(), password.trim_end().to_string()));
                }
                Route::Relay {
                    host,
                    port,
                    settings,
                }
            }
            DeliveryMode::Mx => {
                // dns.nameservers applies to MX lookups too.
                let resolver = crate::dns::resolver(&config.dns.nameservers, false)?;
                let tls = if d.require_tls {
                    TlsPolicy::Required
                } else {
                    TlsPolicy::Opportunistic
                };
                Route::Mx {
                    resolver: Arc::new(resolver),
                    settings: base(tls, false),
                }
            }
        })
    }

    /// The destination a message is grouped under.
    fn destination(&self, record: &MessageRecord) -> String {
        match self {
            Route::Outbox(_) => "outbox".into(),
            Route::Relay { host, port, .. } => format!("{host}:{port}"),
            Route::Mx { .. } => record.to.domain().to_string(),
        }
    }
}

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
    services: Services,
    route: Route,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    connections: Arc<Semaphore>,
}

/// Runs the worker until shutdown. Returns once connection tasks have finished their
/// current message (or after a grace period).
pub async fn run(services: Services, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let route = Route::from_services(&services)?;
    let recovered = recover(&services, now_ms())?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "messages left in flight by the last run are due again"
        );
        services.store.flush().await?;
    }
    let d = &services.config.delivery;
    let handoff = &services.handoff;
    let inner = Arc::new(Inner {
        connections: Arc::new(Semaphore::new(d.max_connections)),
        services: services.clone(),
        route,
        destinations: Mutex::new(HashMap::new()),
    });
    let mut jobs = handoff.attach(
        (d.max_connections * 512).max(4096),
        (d.max_connections * 64).max(256),
    );
    let mut next_reclaim = Instant::now() + RECLAIM_EVERY;
    // When to look at the queue next, and whether the last look stopped for want of
    // room (then a freed slot is worth another look).
    let mut look_at = Instant::now();
    let mut starved = false;
    loop {
        if Instant::now() >= next_reclaim {
            next_reclaim += RECLAIM_EVERY;
            reclaim_spool(&services).await;
        }
        if Instant::now() >= look_at {
            match claim_batch(&inner, now_ms()) {
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
                            match services.store.next_due() {
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
            _ = services.queue_bell.notified() => look_at = Instant::now(),
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

/// Gives back the disk space of final messages in mostly dead spool segments (on a
/// blocking thread: it calls into the file system).
async fn reclaim_spool(services: &Services) {
    // Outcomes are not flushed one by one: a flush here makes the releases of the last
    // minute durable, so emptied segments go now even when no mail comes in.
    if let Err(e) = services.store.flush().await {
        tracing::warn!(error = %e, "cannot flush the store before reclaiming spool space");
        return;
    }
    let store = services.store.clone();
    match tokio::task::spawn_blocking(move || store.reclaim_spool()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(bytes)) => {
            tracing::info!(
                bytes,
                "spool: space of final messages given back in mostly empty segments"
            )
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "spool space reclaim failed; the spool keeps its files")
        }
        Err(e) => tracing::warn!(error = %e, "spool space reclaim stopped"),
    }
}

/// Makes every message left `sending` due now, with a `recovered` event.
pub fn recover(services: &Services, now: u64) -> Result<usize, StoreError> {
    let store = &services.store;
    let mut n = 0;
    for (due, id) in store.queue_entries()? {
        let Some(mut record) = store.message(&id)? else {
            continue;
        };
        if record.status != MessageStatus::Sending {
            continue;
        }
        if record.due_ms != Some(due) {
            // A lease renewed while the worker held the message: the record still
            // names the first lease's key.
            store.remove_queue_key(due, &id)?;
        }
        record.status = if record.attempts == 0 {
            MessageStatus::Queued
        } else {
            MessageStatus::Deferred
        };
        store.reschedule(&mut record, Some(now))?;
        record.push_event(
            Event::new(Step::Recovered, now)
                .with_detail("in flight when the last run stopped; trying again"),
        );
        store.put_message(&mut record)?;
        n += 1;
    }
    Ok(n)
}

/// Claims due messages up to the in-flight cap and hands them to destinations.
fn claim_batch(inner: &Arc<Inner>, now: u64) -> Result<usize, StoreError> {
    let handoff = &inner.services.handoff;
    let room = handoff.room();
    if room == 0 {
        return Ok(0);
    }
    let store = &inner.services.store;
    let mut claimed = 0;
    for (due, id) in store.due_messages(now, room.min(512))? {
        if !handoff.take_slot() {
            break;
        }
        match claim(&inner.services, due, &id, now) {
            Ok(Some(record)) => {
                handoff.hold(record.id);
                let name = inner.route.destination(&record);
                dispatch(inner, name, Job { record, body: None });
                claimed += 1;
            }
            Ok(None) => handoff.done(),
            Err(e) => {
                handoff.done();
                return Err(e);
            }
        }
    }
    Ok(claimed)
}

/// Claims one queue entry: the message becomes `sending`, or is finished off when it
/// is no longer open or has expired. Returns the record when it should be tried.
///
/// A message the worker still holds (its lease ended while it waited behind a slow
/// destination) is not claimed again: its queue key moves a lease ahead. The record is
/// not rewritten, since the connection task holding it may be writing its outcome; the
/// record's own `due_ms` then names the old key, and the moved key is removed as stale
/// once the message moves on.
pub fn claim(
    services: &Services,
    due: u64,
    id: &MessageId,
    now: u64,
) -> Result<Option<MessageRecord>, StoreError> {
    let store = &services.store;
    if services.handoff.is_held(id) {
        store.move_queue_key(id, due, now + LEASE_MS)?;
        return Ok(None);
    }
    let Some(mut record) = store.message(id)? else {
        store.remove_queue_key(due, id)?;
        return Ok(None);
    };
    if !record.status.is_open() || record.due_ms != Some(due) {
        store.remove_queue_key(due, id)?;
        return Ok(None);
    }
    if record.expires_ms <= now {
        finish(
            services,
            &mut record,
            MessageStatus::Expired,
            Event::new(Step::Expired, now)
                .with_detail("its lifetime ended before any server accepted it"),
        )?;
        return Ok(None);
    }
    record.status = MessageStatus::Sending;
    store.reschedule(&mut record, Some(now + LEASE_MS))?;
    store.put_message(&mut record)?;
    Ok(Some(record))
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
    let cap = inner.services.config.delivery.max_connections_per_domain;
    let active = dest.active.load(Ordering::SeqCst);
    // A new connection when none runs, or when work piles up behind the ones that do.
    if active < cap && (active == 0 || queued > active) {
        dest.active.fetch_add(1, Ordering::SeqCst);
        let inner = inner.clone();
        tokio::spawn(async move {
            let permit = inner.connections.clone().acquire_owned().await;
            connection_task(&inner, &dest).await;
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
    let services = &inner.services;
    if services.handoff.is_withdrawn(&job.record.id) {
        done(inner, &job.record.id);
        return None;
    }
    let body = match job.body {
        Some(b) => b,
        None => match bytes_of(services, &job.record) {
            Ok(b) => b,
            Err(outcome) => {
                settle(inner, job.record, &outcome).await;
                return None;
            }
        },
    };
    let envelope = envelope_for(services, &job.record);
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
    let services = &inner.services;
    let per_connection = services.config.delivery.messages_per_connection;
    let mut conn: Option<Connection> = None;
    // The message announced on `conn` with the last one's content: it goes next.
    let mut announced: Option<Ready> = None;
    loop {
        let message = match announced.take() {
            Some(m) if services.handoff.is_withdrawn(&m.record.id) => {
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
fn bytes_of(services: &Services, record: &MessageRecord) -> Result<Vec<u8>, Box<Outcome>> {
    let report = |detail: String| AttemptReport {
        detail: Some(detail),
        ..AttemptReport::default()
    };
    let outcome = match services.store.body(record) {
        Ok(Some(b)) => return Ok(b),
        // An open record without bytes: nothing can ever be sent for it.
        Ok(None) => Outcome::Failed(report("the message's bytes are not in the store".into())),
        // Damaged bytes (a power loss before they were acknowledged, or a bad disk)
        // will not heal: the message fails, saying why. A read error may.
        Err(e @ StoreError::Spool(SpoolError::Damaged { .. })) => {
            Outcome::Failed(report(format!("cannot read the message's bytes: {e}")))
        }
        Err(e) => Outcome::Deferred(report(format!("cannot read the message's bytes: {e}"))),
    };
    Err(Box::new(outcome))
}

/// The worker is done with a message it held.
fn done(inner: &Inner, id: &MessageId) {
    inner.services.handoff.finished(id);
}

/// Records an outcome for a message the worker holds (its record as claimed or handed
/// over, so the hot path reads no record; a withdrawn message's stored record is final)
/// and frees its in-flight slot.
async fn settle(inner: &Arc<Inner>, record: MessageRecord, outcome: &Outcome) {
    let id = record.id;
    let services = &inner.services;
    // Withdrawn during the attempt (cancelled, bounced): the stored record is final.
    // Only a delivery is added to it, since the mail went out after all.
    let record = if services.handoff.is_withdrawn(&id) {
        match (outcome, services.store.message(&id)) {
            (Outcome::Delivered(_), Ok(Some(stored))) => Some(stored),
            _ => None,
        }
    } else {
        Some(record)
    };
    if let Some(record) = record
        && let Err(e) = apply_outcome(services, record, outcome, now_ms())
    {
        tracing::error!(msg_id = %id, error = %e, "cannot record a delivery outcome; the message will be retried");
    }
    done(inner, &id);
}

/// Opens a connection to the relay, or to the first MX host of the recipient's domain
/// that answers.
async fn open_connection(route: &Route, record: &MessageRecord) -> Result<Connection, Outcome> {
    match route {
        Route::Outbox(_) => unreachable!("the outbox has no connections"),
        Route::Relay {
            host,
            port,
            settings,
        } => Connection::open(host, *port, settings).await,
        Route::Mx { resolver, settings } => {
            let domain = record.to.domain();
            let hosts = match mx::route(resolver, domain).await {
                Ok(MxRoute::Hosts(h)) => h,
                Ok(MxRoute::NullMx) => {
                    return Err(Outcome::Failed(AttemptReport {
                        reply: Some(format!(
                            "{domain} publishes a null MX: it accepts no mail (RFC 7505)"
                        )),
                        enhanced_status: Some("5.1.10".into()),
                        ..AttemptReport::default()
                    }));
                }
                Err(mx::RouteError::NoSuchDomain(d)) => {
                    return Err(Outcome::Failed(AttemptReport {
                        reply: Some(format!("the domain {d} does not exist")),
                        enhanced_status: Some("5.1.2".into()),
                        ..AttemptReport::default()
                    }));
                }
                Err(e) => {
                    return Err(Outcome::Deferred(AttemptReport {
                        reply: Some(e.to_string()),
                        ..AttemptReport::default()
                    }));
                }
            };
            let mut last = None;
            for host in hosts {
                match Connection::open(&host, 25, settings).await {
                    Ok(c) => return Ok(c),
                    Err(outcome) => last = Some(outcome),
                }
            }
            Err(last.unwrap_or_else(|| Outcome::Deferred(AttemptReport::default())))
        }
    }
}

/// The SMTP envelope of a message: VERP return path, one recipient, DSN envelope id.
pub fn envelope_for(services: &Services, record: &MessageRecord) -> Envelope {
    Envelope {
        mail_from: services
            .verp
            .address(&record.id, &services.config.sender.bounce_domain),
        rcpt_to: record.to.to_string(),
        envid: record.id.to_string(),
    }
}

/// Records an attempt's outcome: the event, the new status, the next try.
pub fn apply_outcome(
    services: &Services,
    mut record: MessageRecord,
    outcome: &Outcome,
    now: u64,
) -> Result<(), StoreError> {
    let store = &services.store;
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
    let span = tracing::info_span!("outcome", msg_id = %id, attempt = record.attempts);
    let _guard = span.enter();
    match outcome {
        Outcome::Delivered(_) => {
            event.step = Some(Step::Delivered);
            tracing::info!(
                host = report.remote_host.as_deref().unwrap_or(""),
                "delivered"
            );
            finish(services, &mut record, MessageStatus::Delivered, event)
        }
        Outcome::Failed(_) => {
            event.step = Some(Step::Failed);
            tracing::warn!(
                reply = report.reply.as_deref().unwrap_or(""),
                "failed permanently"
            );
            finish(services, &mut record, MessageStatus::Failed, event)
        }
        Outcome::Deferred(_) => {
            let schedule = &services.config.delivery.retry_schedule;
            match next_attempt(schedule, record.attempts, now, record.expires_ms) {
                RetryDecision::RetryAt(at) => {
                    event.step = Some(Step::Deferred);
                    let why = event.detail.take();
                    event.detail = Some(match why {
                        Some(w) => format!("{w}; next try at {}", format_time_ms(at)),
                        None => format!("next try at {}", format_time_ms(at)),
                    });
                    tracing::info!(reply = report.reply.as_deref().unwrap_or(""), next = %format_time_ms(at), "deferred");
                    record.status = MessageStatus::Deferred;
                    store.reschedule(&mut record, Some(at))?;
                    record.push_event(event);
                    store.put_message(&mut record)
                }
                RetryDecision::Expire => {
                    event.step = Some(Step::Deferred);
                    record.push_event(event);
                    tracing::warn!("expired after its last try");
                    finish(
                        services,
                        &mut record,
                        MessageStatus::Expired,
                        Event::new(Step::Expired, now)
                            .with_detail("its lifetime ended before any server accepted it"),
                    )
                }
            }
        }
    }
}

/// Puts a message in a final state: event, status, no queue entry, bytes dropped.
pub fn finish(
    services: &Services,
    record: &mut MessageRecord,
    status: MessageStatus,
    event: Event,
) -> Result<(), StoreError> {
    let store = &services.store;
    record.status = status;
    crate::flow::message_finished(services, record, status, event.at_ms);
    store.reschedule(record, None)?;
    record.push_event(event);
    store.put_message(record)
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

//! Webhooks: each event of the store's log, posted to each `[[webhooks]]` endpoint that
//! wants it, signed per Standard Webhooks ([`sign`]).
//!
//! Every step is a store record, so a restart or a SIGKILL loses nothing: per endpoint
//! a cursor (the last event seq queued for it) and one [`WebhookDelivery`] per event.
//! [`Sender::queue_new`] turns the events past each cursor into pending deliveries and
//! moves the cursor, in one flush; [`Sender::run`] claims due deliveries (moving their
//! next try a lease ahead, so a slow answer is not claimed twice), posts them with at
//! most [`CONCURRENCY`] in flight, and writes each outcome: 2xx delivered; 410 disables
//! the endpoint (its pending deliveries fail, and the state is shown by `webhooks
//! list`); anything else (a timeout of [`TIMEOUT`], a redirect, which is never
//! followed, a 5xx) is tried again after the endpoint's `retry_schedule`, about three
//! days in all, then failed, kept and replayable. A delivery is sent at least once: one
//! killed between the answer and its record is sent again, under the same
//! `webhook-id`, which receivers use to drop duplicates.

pub mod sign;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::WebhookConfig;
use crate::domain::{DeliveryState, Detail, EventRecord, WebhookDelivery, format_time_ms, now_ms};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

pub use sign::Secret;

/// How long one post may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Posts in flight at once, over every endpoint.
pub const CONCURRENCY: usize = 8;
/// How long a claimed delivery stays out of the due range: longer than a post.
const LEASE_MS: u64 = 30_000;
/// How often the sender looks for new events and due deliveries.
const POLL: Duration = Duration::from_millis(200);
/// Events queued per endpoint per look.
const BATCH: usize = 200;

fn cursor_setting(url: &str) -> String {
    format!("webhook.cursor:{url}")
}

fn disabled_setting(url: &str) -> String {
    format!("webhook.disabled:{url}")
}

/// Why an endpoint no longer gets events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disabled {
    pub at_ms: u64,
    pub why: String,
}

/// Why `url` is disabled, if it is (`enable` writes null over the note).
async fn disabled(store: &Store, url: &str) -> Result<Option<Disabled>, StoreError> {
    Ok(store
        .setting::<Option<Disabled>>(&disabled_setting(url))
        .await?
        .flatten())
}

/// A URL without its query, for logs and messages (a query may hold a token).
pub fn shown_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// What one post came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx status.
    Delivered(u16),
    /// 410 Gone: the endpoint does not want events any more.
    Gone,
    /// Anything else: worth another try.
    Failed { status: Option<u16>, error: String },
}

/// One configured endpoint, its secret read and its client built.
#[derive(Debug)]
pub struct Endpoint {
    pub config: WebhookConfig,
    secret: Secret,
    client: reqwest::Client,
}

impl Endpoint {
    /// Reads the endpoint's secret file and builds its client (no redirects, the
    /// [`TIMEOUT`], the guarded resolver).
    pub fn load(config: &WebhookConfig) -> anyhow::Result<Endpoint> {
        let where_ = || {
            format!(
                "[[webhooks]] {}: secret_file {}",
                shown_url(&config.url),
                config.secret_file.display()
            )
        };
        let text = std::fs::read_to_string(&config.secret_file).with_context(where_)?;
        let secret = Secret::parse(&text).with_context(where_)?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mailgate/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(target::GuardedResolver {
                allow_link_local: config.allow_link_local,
            }))
            .build()
            .context("cannot build the webhook HTTP client")?;
        Ok(Endpoint {
            config: config.clone(),
            secret,
            client,
        })
    }

    /// Posts `body` as message `id`, signed at `timestamp` (seconds).
    pub async fn post(&self, id: &str, timestamp: i64, body: Vec<u8>) -> Answer {
        let url = match reqwest::Url::parse(&self.config.url) {
            Ok(u) => u,
            Err(e) => {
                return Answer::Failed {
                    status: None,
                    error: Detail::HookNotAUrl {
                        error: e.to_string(),
                    }
                    .to_string(),
                };
            }
        };
        // An address written in the URL does not go through the resolver.
        let literal = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = literal
            && !self.config.allow_link_local
            && target::forbidden(ip)
        {
            return Answer::Failed {
                status: None,
                error: Detail::HookForbiddenAddress { ip: ip.to_string() }.to_string(),
            };
        }
        let signature = self.secret.sign(id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Answer::Delivered(r.status().as_u16()),
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Answer::Gone,
            Ok(r) => Answer::Failed {
                status: Some(r.status().as_u16()),
                error: Detail::HookAnswered {
                    status: r.status().to_string(),
                    redirect: r.status().is_redirection(),
                }
                .to_string(),
            },
            Err(e) => Answer::Failed {
                status: None,
                error: if e.is_timeout() {
                    Detail::HookNoAnswer {
                        seconds: TIMEOUT.as_secs(),
                    }
                    .to_string()
                } else {
                    error_chain(&e)
                },
            },
        }
    }
}

/// An error with its causes, one line (reqwest's own text hides the resolver's words).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The body posted for an event.
pub fn body_of(event: &EventRecord) -> Vec<u8> {
    serde_json::to_vec(event).unwrap_or_default()
}

/// The body of `mailgate webhooks test`: an event of type `webhook.test`, not stored.
pub fn test_body(id: &str, now: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "seq": 0,
        "type": "webhook.test",
        "timestamp": format_time_ms(now),
        "data": {},
    }))
    .unwrap_or_default()
}

/// One endpoint as `webhooks list` and the console show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub url: String,
    pub events: Vec<String>,
    pub disabled: Option<Disabled>,
    /// The last event seq queued for it.
    pub cursor: u64,
    pub recent: Vec<WebhookDelivery>,
}

/// The state of every configured endpoint with its `recent` newest deliveries.
pub async fn status(
    store: &Store,
    configs: &[WebhookConfig],
    recent: usize,
) -> Result<Vec<EndpointStatus>, StoreError> {
    let mut out = Vec::new();
    for c in configs {
        out.push(EndpointStatus {
            url: c.url.clone(),
            events: c.events.iter().map(|t| t.as_str().to_string()).collect(),
            disabled: disabled(store, &c.url).await?,
            cursor: store.setting(&cursor_setting(&c.url)).await?.unwrap_or(0),
            recent: store.recent_deliveries(&c.url, recent).await?,
        });
    }
    Ok(out)
}

/// Queues `event_id` again for every endpoint that wants its type (`webhooks replay`),
/// as a fresh delivery due now; returns the endpoints. Durable before it returns.
pub async fn replay(
    store: &Store,
    configs: &[WebhookConfig],
    event_id: &str,
    now: u64,
) -> Result<Option<Vec<String>>, StoreError> {
    let Some(event) = store.event_by_id(event_id).await? else {
        return Ok(None);
    };
    let mut to = Vec::new();
    for c in configs.iter().filter(|c| c.wants(event.kind)) {
        store.put_delivery(&pending(&c.url, &event, now)).await?;
        to.push(c.url.clone());
    }
    store.flush().await?;
    Ok(Some(to))
}

/// Lets a disabled endpoint get events again, from now on (`webhooks enable`).
pub async fn enable(store: &Store, url: &str) -> Result<bool, StoreError> {
    let was = disabled(store, url).await?;
    if was.is_some() {
        store
            .set_setting_value(&disabled_setting(url), serde_json::Value::Null)
            .await?;
        let last = store.last_event_seq().await?;
        store.set_setting(&cursor_setting(url), &last).await?;
        store.flush().await?;
    }
    Ok(was.is_some())
}

fn pending(url: &str, event: &EventRecord, now: u64) -> WebhookDelivery {
    WebhookDelivery {
        endpoint: url.to_string(),
        event_id: event.id.clone(),
        event_seq: event.seq,
        event_type: event.kind,
        state: DeliveryState::Pending,
        attempts: 0,
        next_try_ms: Some(now),
        created_ms: now,
        last_try_ms: None,
        last_status: None,
        last_error: None,
    }
}

/// The sender task's state.
#[derive(Debug, Clone)]
pub struct Sender {
    store: Store,
    endpoints: Arc<Vec<Arc<Endpoint>>>,
}

impl Sender {
    /// Loads every endpoint; fails naming the entry whose secret cannot be read.
    pub fn new(store: Store, configs: &[WebhookConfig]) -> anyhow::Result<Sender> {
        let endpoints = configs
            .iter()
            .map(|c| Endpoint::load(c).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Sender {
            store,
            endpoints: Arc::new(endpoints),
        })
    }

    fn endpoint(&self, url: &str) -> Option<&Arc<Endpoint>> {
        self.endpoints.iter().find(|e| e.config.url == url)
    }

    /// Turns the events past each endpoint's cursor into pending deliveries and moves
    /// the cursors; durable before it returns. An endpoint seen for the first time
    /// starts at the newest event: it gets what happens from now on.
    pub async fn queue_new(&self, now: u64) -> Result<usize, StoreError> {
        let mut queued = 0;
        let mut moved = false;
        for e in self.endpoints.iter() {
            let url = &e.config.url;
            if disabled(&self.store, url).await?.is_some() {
                continue;
            }
            let cursor: u64 = match self.store.setting(&cursor_setting(url)).await? {
                Some(c) => c,
                None => {
                    let last = self.store.last_event_seq().await?;
                    self.store.set_setting(&cursor_setting(url), &last).await?;
                    moved = true;
                    last
                }
            };
            let events = self.store.events_after(cursor, BATCH).await?;
            let Some(last) = events.last().map(|ev| ev.seq) else {
                continue;
            };
            // Only when no sender ran for longer than store.retention: the events
            // forgotten meanwhile cannot be sent.
            if events[0].seq > cursor + 1 && cursor > 0 {
                tracing::warn!(
                    endpoint = shown_url(url),
                    from = cursor + 1,
                    to = events[0].seq - 1,
                    "webhook: events past this endpoint's cursor were forgotten after store.retention; it goes on from the oldest kept"
                );
            }
            for event in events.iter().filter(|ev| e.config.wants(ev.kind)) {
                // Already there when another sender on a shared store queued it first.
                if self.store.delivery(url, event.seq).await?.is_none() {
                    self.store.put_delivery(&pending(url, event, now)).await?;
                    queued += 1;
                }
            }
            self.store.set_setting(&cursor_setting(url), &last).await?;
            moved = true;
        }
        if moved {
            self.store.flush().await?;
        }
        Ok(queued)
    }

    /// Claims up to `room` due deliveries (each moves a lease ahead). One to an
    /// endpoint no longer configured, or disabled, fails at once.
    async fn claim(
        &self,
        now: u64,
        room: usize,
    ) -> Result<Vec<(Arc<Endpoint>, WebhookDelivery)>, StoreError> {
        let mut out = Vec::new();
        for mut d in self
            .store
            .claim_deliveries(now, now + LEASE_MS, room)
            .await?
        {
            let why_not = match self.endpoint(&d.endpoint) {
                None => Some(Detail::HookNotConfigured.to_string()),
                Some(_) => disabled(&self.store, &d.endpoint)
                    .await?
                    .map(|x| Detail::HookDisabled { why: x.why }.to_string()),
            };
            match (why_not, self.endpoint(&d.endpoint)) {
                (None, Some(e)) => out.push((e.clone(), d)),
                (why, _) => {
                    d.state = DeliveryState::Failed;
                    d.next_try_ms = None;
                    d.last_error = why;
                    self.store.put_delivery(&d).await?;
                }
            }
        }
        Ok(out)
    }

    /// Posts one claimed delivery and records what came of it (durable).
    async fn deliver(&self, endpoint: &Endpoint, mut d: WebhookDelivery) -> Result<(), StoreError> {
        let Some(event) = self.store.event_by_id(&d.event_id).await? else {
            d.state = DeliveryState::Failed;
            d.next_try_ms = None;
            d.last_error = Some(Detail::HookEventGone.to_string());
            self.store.put_delivery(&d).await?;
            return self.store.flush().await;
        };
        let sent_at = now_ms();
        let answer = endpoint
            .post(&event.id, (sent_at / 1000) as i64, body_of(&event))
            .await;
        let now = now_ms();
        d.attempts += 1;
        d.last_try_ms = Some(now);
        let url = shown_url(&endpoint.config.url);
        match answer {
            Answer::Delivered(status) => {
                d.state = DeliveryState::Delivered;
                d.next_try_ms = None;
                d.last_status = Some(status);
                d.last_error = None;
                tracing::info!(endpoint = url, event_id = %d.event_id, status, attempt = d.attempts, "webhook delivered");
            }
            Answer::Gone => {
                d.state = DeliveryState::Failed;
                d.next_try_ms = None;
                d.last_status = Some(410);
                d.last_error = Some(Detail::HookGone.to_string());
                let why = Detail::HookGoneAt { at_ms: now }.to_string();
                self.store
                    .set_setting(
                        &disabled_setting(&endpoint.config.url),
                        &Disabled { at_ms: now, why },
                    )
                    .await?;
                tracing::warn!(
                    endpoint = url,
                    "webhook endpoint answered 410 Gone: disabled; `mailgate webhooks enable URL` turns it back on"
                );
            }
            Answer::Failed { status, error } => {
                d.last_status = status;
                match endpoint.config.retry_schedule.get(d.attempts as usize - 1) {
                    Some(wait) => {
                        d.next_try_ms = Some(now + wait.as_millis() as u64);
                        tracing::info!(endpoint = url, event_id = %d.event_id, attempt = d.attempts, error = %error, "webhook not delivered; will try again");
                    }
                    None => {
                        d.state = DeliveryState::Failed;
                        d.next_try_ms = None;
                        tracing::warn!(endpoint = url, event_id = %d.event_id, attempts = d.attempts, error = %error, "webhook failed for good");
                    }
                }
                d.last_error = Some(error);
            }
        }
        self.store.put_delivery(&d).await?;
        self.store.flush().await
    }

    /// Runs until `stop`: queues new events, claims due deliveries and posts them, at
    /// most [`CONCURRENCY`] at once. Store errors are logged and tried again.
    pub async fn run(self, mut stop: Shutdown) {
        if self.endpoints.is_empty() {
            return;
        }
        let mut in_flight = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.recv() => break,
                _ = tick.tick() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
            }
            let now = now_ms();
            if let Err(e) = self.queue_new(now).await {
                tracing::error!(error = %e, "webhooks: cannot queue new events; trying again");
                continue;
            }
            let room = CONCURRENCY.saturating_sub(in_flight.len());
            if room == 0 {
                continue;
            }
            match self.claim(now, room).await {
                Ok(claimed) => {
                    for (endpoint, d) in claimed {
                        let sender = self.clone();
                        in_flight.spawn(async move {
                            if let Err(e) = sender.deliver(&endpoint, d).await {
                                tracing::error!(error = %e, "webhooks: cannot record a delivery; it is tried again after its lease");
                            }
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "webhooks: cannot claim due deliveries"),
            }
        }
        // Posts in flight finish (bounded by the timeout): their outcome is recorded
        // rather than sent again after the restart.
        while in_flight.join_next().await.is_some() {}
    }
}

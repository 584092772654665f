//! Enqueue: the only way a message enters mailgate. The message's bytes are fixed here
//! (composed and DKIM-signed), stored with its queue entry and first event, flushed, and
//! only then acknowledged: a killed process loses nothing it acknowledged.

use std::time::Duration;

use serde_json::Value;

use super::Queue;
use crate::compose::{ComposeError, Draft};
use crate::domain::{Address, Event, MessageId, MessageRecord, MessageStatus, Step, now_ms};
use crate::queue::handoff::Job;
use crate::store::StoreError;

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: Address,
    pub to_name: Option<String>,
    pub template: String,
    pub locale: String,
    pub vars: Value,
    /// How long the message is worth trying; default `delivery.message_lifetime`.
    pub lifetime: Option<Duration>,
    pub flow_id: Option<String>,
    /// Do not send before this time (ms since the epoch): scheduled sending.
    pub not_before_ms: Option<u64>,
}

/// The acknowledgement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enqueued {
    pub message_id: MessageId,
    pub message_id_header: String,
    pub expires_ms: u64,
    pub status: MessageStatus,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The request is wrong: a 4xx for the API, a usage error for the CLI.
    #[error(transparent)]
    Invalid(#[from] ComposeError),
    #[error("locale {0:?} is not one of \"ja\", \"en\"")]
    Locale(String),
    /// Signing failed: a key problem the operator must fix (a 503).
    #[error("DKIM signing failed: {0}")]
    Sign(String),
    /// The store failed: intake stops rather than lose mail (a 503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates, composes, stores and flushes one message; returns once it is durable.
pub async fn enqueue(queue: &Queue, out: Outgoing) -> Result<Enqueued, EnqueueError> {
    if !crate::compose::templates::LOCALES.contains(&out.locale.as_str()) {
        return Err(EnqueueError::Locale(out.locale));
    }
    // A flush that starts while this message is composed and signed waits for it.
    let intent = queue.store.announce_write();
    let id = MessageId::random();
    let now = now_ms();
    let composed = queue.composer.compose(
        &id,
        Draft {
            to: &out.to,
            to_name: out.to_name.as_deref(),
            template: &out.template,
            locale: &out.locale,
            vars: out.vars,
        },
        (now / 1000) as i64,
    )?;
    let signed = queue
        .signers
        .sign(&composed.raw, now / 1000)
        .map_err(|e| EnqueueError::Sign(e.to_string()))?;
    let lifetime = out
        .lifetime
        .unwrap_or(queue.config.delivery.message_lifetime);
    let expires_ms = now + lifetime.as_millis() as u64;
    let due = out.not_before_ms.unwrap_or(now).max(now);
    let mut record = MessageRecord {
        id,
        to: out.to,
        message_id_header: queue.composer.message_id_header(&id),
        template: out.template,
        locale: out.locale,
        subject: composed.subject,
        created_ms: now,
        expires_ms: expires_ms.max(due + 1),
        status: MessageStatus::Queued,
        attempts: 0,
        due_ms: Some(due),
        last_reply: None,
        flow_id: out.flow_id,
        timeline: Vec::new(),
        size: signed.len(),
        headers: Some(crate::domain::header_block(&signed)),
    };
    let mut first = Event::new(Step::Queued, now);
    if due > now {
        first.detail = Some(crate::domain::Detail::ScheduledFor { at_ms: due }.to_string());
    }
    let suppressed = queue.store.suppression(&record.to.to_string()).await?;
    // Due now and the worker has room: written already claimed, handed over once durable.
    let handed = match (&suppressed, due > now) {
        (None, false) => queue.handoff.try_reserve(),
        _ => None,
    };
    match suppressed {
        // Sending to an address known to be dead hurts the sender's reputation.
        Some(entry) => {
            queue
                .lifecycle
                .refuse_suppressed(&mut record, &signed, &first, &entry, now)
                .await?
        }
        None => {
            queue
                .lifecycle
                .enqueue(&mut record, &signed, &first, handed.is_some())
                .await?
        }
    }
    let ack = Enqueued {
        message_id: id,
        message_id_header: record.message_id_header.clone(),
        expires_ms: record.expires_ms,
        status: record.status,
    };
    // Flush and hand over in a task of its own: a caller that goes away (a client that
    // hung up) must not leave a message written as claimed that nobody holds.
    let after = queue.clone();
    tokio::spawn(async move {
        after.store.flush_announced(intent).await?;
        tracing::info!(msg_id = %record.id, template = %record.template, status = record.status.as_str(), "queued");
        match handed {
            Some(reservation) => {
                let body = reservation.carries_bytes().then_some(signed);
                after.handoff.send(reservation, Job { record, body })
            }
            None => after.ring(),
        }
        Ok::<(), StoreError>(())
    })
    .await
    .map_err(|e| {
        StoreError::Flush {
            path: queue.store.location().into(),
            source: std::io::Error::other(e.to_string()),
        }
    })??;
    Ok(ack)
}

//! What operators do to the queue: list it, retry a message now, cancel one. Each
//! names an unknown id clearly and leaves an event in the message's timeline.

use serde::Serialize;

use crate::domain::{Event, MessageId, MessageRecord, MessageStatus, Step, now_ms};
use crate::services::Services;

/// One row of `mailgate queue list`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct QueueRow {
    pub id: String,
    pub to: String,
    pub status: String,
    pub attempts: u32,
    pub next_try_ms: u64,
    pub expires_ms: u64,
    pub last_reply: Option<String>,
}

/// The open messages, earliest due first.
pub fn list(services: &Services) -> Result<Vec<QueueRow>, String> {
    let store = &services.store;
    let mut rows = Vec::new();
    for (due, id) in store.queue_entries().map_err(|e| e.to_string())? {
        if let Some(r) = store.message(&id).map_err(|e| e.to_string())? {
            rows.push(QueueRow {
                id: id.to_string(),
                to: r.to.to_string(),
                status: r.status.as_str().to_string(),
                attempts: r.attempts,
                next_try_ms: due,
                expires_ms: r.expires_ms,
                last_reply: r.last_reply,
            });
        }
    }
    Ok(rows)
}

fn parse_id(id: &str) -> Result<MessageId, String> {
    MessageId::parse(id).ok_or_else(|| {
        format!("{id:?} is not a message id (32 hex digits, as `mailgate queue list` shows)")
    })
}

/// The record of an open message, or an error naming why it is not one.
fn open_message(services: &Services, id: &str) -> Result<MessageRecord, String> {
    let mid = parse_id(id)?;
    let r = services
        .store
        .message(&mid)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no message {id} in the queue"))?;
    if !r.status.is_open() {
        return Err(format!(
            "message {id} is {} and no longer in the queue",
            r.status.as_str()
        ));
    }
    Ok(r)
}

/// Makes an open message due now.
pub fn retry(services: &Services, id: &str, who: &str) -> Result<String, String> {
    let mut r = open_message(services, id)?;
    if r.status == MessageStatus::Sending {
        return Err(format!("message {id} is being sent right now"));
    }
    let store = &services.store;
    let now = now_ms();
    store
        .reschedule(&mut r, Some(now))
        .map_err(|e| e.to_string())?;
    r.push_event(Event::new(Step::RetryRequested, now).with_detail(format!("by {who}")));
    store.put_message(&mut r).map_err(|e| e.to_string())?;
    services.queue_bell.notify_one();
    Ok(format!("message {id} will be tried now"))
}

/// Cancels an open message on an operator's request.
pub fn cancel(services: &Services, id: &str, who: &str) -> Result<String, String> {
    cancel_because(services, id, &format!("by {who}"))
}

/// Cancels an open message; `why` goes into its timeline.
pub fn cancel_because(services: &Services, id: &str, why: &str) -> Result<String, String> {
    let mut r = open_message(services, id)?;
    crate::queue::worker::finish(
        services,
        &mut r,
        MessageStatus::Cancelled,
        Event::new(Step::Cancelled, now_ms()).with_detail(why),
    )
    .map_err(|e| e.to_string())?;
    services.handoff.withdraw(&r.id);
    Ok(format!("message {id} cancelled"))
}

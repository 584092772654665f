//! What operators do to the queue: list it, retry a message now, cancel one. Each
//! names an unknown id clearly and leaves an event in the message's timeline (the
//! status change itself is [`super::lifecycle`]'s).

use serde::Serialize;

use super::Queue;
use super::lifecycle::LifecycleError;
use crate::domain::{MessageId, now_ms};
use crate::store::StoreError;

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

/// Why an operator's queue action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0:?} is not a message id (32 hex digits, as `mailgate queue list` shows)")]
    NotAnId(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ControlError {
    /// True when the store failed (not the operator's request).
    pub fn is_store(&self) -> bool {
        matches!(
            self,
            ControlError::Store(_) | ControlError::Lifecycle(LifecycleError::Store(_))
        )
    }
}

/// The open messages, earliest due first.
pub async fn list(queue: &Queue) -> Result<Vec<QueueRow>, StoreError> {
    Ok(list_first(queue, usize::MAX).await?.0)
}

/// The first `limit` queue entries, earliest due first, as rows (the console's bounded
/// read); `true` when the queue holds more.
pub async fn list_first(queue: &Queue, limit: usize) -> Result<(Vec<QueueRow>, bool), StoreError> {
    let store = &queue.store;
    let entries = store.queue_entries().await?;
    let more = entries.len() > limit;
    let mut rows = Vec::new();
    for (due, id) in entries.into_iter().take(limit) {
        if let Some(r) = store.message(&id).await? {
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
    Ok((rows, more))
}

fn parse_id(id: &str) -> Result<MessageId, ControlError> {
    MessageId::parse(id).ok_or_else(|| ControlError::NotAnId(id.to_string()))
}

/// Makes an open message due now.
pub async fn retry(queue: &Queue, id: &str, who: &str) -> Result<String, ControlError> {
    queue
        .lifecycle
        .retry_now(&parse_id(id)?, who, now_ms())
        .await?;
    queue.ring();
    Ok(format!("message {id} will be tried now"))
}

/// Cancels an open message on an operator's request.
pub async fn cancel(queue: &Queue, id: &str, who: &str) -> Result<String, ControlError> {
    let by = crate::domain::Detail::By {
        who: who.to_string(),
    };
    cancel_because(queue, id, &by.to_string()).await
}

/// Cancels an open message; `why` goes into its timeline.
pub async fn cancel_because(queue: &Queue, id: &str, why: &str) -> Result<String, ControlError> {
    queue
        .lifecycle
        .cancel(&parse_id(id)?, why, now_ms())
        .await?;
    Ok(format!("message {id} cancelled"))
}

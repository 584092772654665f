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

/// The open messages, earliest due first (`mailgate queue list`: the whole queue).
pub async fn list(queue: &Queue) -> Result<Vec<QueueRow>, StoreError> {
    let store = &queue.store;
    let mut rows = Vec::new();
    for (due, id) in store.queue_entries().await? {
        if let Some(row) = row_of(queue, due, &id).await? {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The row of the open message `id` at its queue entry `due`; `None` when it is gone.
async fn row_of(queue: &Queue, due: u64, id: &MessageId) -> Result<Option<QueueRow>, StoreError> {
    Ok(queue.store.message(id).await?.map(|r| QueueRow {
        id: id.to_string(),
        to: r.to.to_string(),
        status: r.status.as_str().to_string(),
        attempts: r.attempts,
        next_try_ms: due,
        expires_ms: r.expires_ms,
        last_reply: r.last_reply,
    }))
}

/// Where a page of the queue ended: the last queue entry it read. In links as
/// `DUE-ID` (milliseconds, then the 32-hex id), so the next page starts after it
/// however the queue changed meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCursor {
    pub due_ms: u64,
    pub id: MessageId,
}

impl std::fmt::Display for QueueCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.due_ms, self.id)
    }
}

impl QueueCursor {
    /// Reads `DUE-ID`; `None` for anything else.
    pub fn parse(text: &str) -> Option<QueueCursor> {
        let (due, id) = text.split_once('-')?;
        Some(QueueCursor {
            due_ms: due.parse().ok()?,
            id: MessageId::parse(id)?,
        })
    }
}

/// One page of the queue, and where the next one starts when there may be more.
#[derive(Debug)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub next: Option<QueueCursor>,
}

/// Up to `rows` open messages after `after` that `keep` accepts, earliest due first.
/// Reads the queue a page at a time from the store and at most `scan` entries in all,
/// so a filter that matches little does not walk the whole queue: the page then ends
/// early and `next` goes on from where it stopped.
pub async fn page(
    queue: &Queue,
    after: Option<QueueCursor>,
    rows: usize,
    scan: usize,
    keep: impl Fn(&QueueRow) -> bool,
) -> Result<QueuePage, StoreError> {
    let mut cursor = after.map(|c| (c.due_ms, c.id));
    let mut out = Vec::new();
    let mut read = 0;
    let mut exhausted = false;
    'pages: while out.len() < rows && read < scan {
        let want = rows.min(scan - read);
        let batch = queue.store.queue_entries_after(cursor, want).await?;
        exhausted = batch.len() < want;
        for (due, id) in batch {
            read += 1;
            cursor = Some((due, id));
            if let Some(row) = row_of(queue, due, &id).await?
                && keep(&row)
            {
                out.push(row);
                if out.len() == rows {
                    // Entries may follow in this batch or after it: look below.
                    exhausted = false;
                    break 'pages;
                }
            }
        }
        if exhausted {
            break;
        }
    }
    // A full page or a spent scan may have stopped right at the end: look one ahead.
    if !exhausted && let Some(at) = cursor {
        exhausted = queue
            .store
            .queue_entries_after(Some(at), 1)
            .await?
            .is_empty();
    }
    let next = cursor
        .filter(|_| !exhausted)
        .map(|(due_ms, id)| QueueCursor { due_ms, id });
    Ok(QueuePage { rows: out, next })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_cursor_reads_back_as_written_and_nothing_else_reads() {
        let id = MessageId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let c = QueueCursor {
            due_ms: 1_893_456_000_000,
            id,
        };
        assert_eq!(
            c.to_string(),
            "1893456000000-0123456789abcdef0123456789abcdef"
        );
        assert_eq!(QueueCursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "nonsense",
            "12-",
            "-0123456789abcdef0123456789abcdef",
            "x-y",
        ] {
            assert_eq!(QueueCursor::parse(bad), None, "{bad}");
        }
    }
}

//! Group commit inside the node: writes of one kind that arrive while another is being
//! committed are gathered and written together, in one statement and one commit.
//!
//! Every caller still waits for the commit that holds its write (with
//! `synchronous_commit` as the write asks), so "returned" keeps meaning "committed":
//! what changes is how many writes share a round trip, a plan, a WAL flush and the
//! row locks of shared rows (the counters). Under light load a write goes alone at
//! once; under load, writes queue while the batches in flight are committed, and the
//! next batch takes every one that waited.
//!
//! Batches run in tasks of their own, so a caller that goes away (a client that hung
//! up) does not take the others' writes with it. When a batch fails, its writes are
//! tried one by one, so one bad write fails alone and the others get their own answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{Postgres, StoreError};

/// Writes a batch (all or nothing) or one write alone.
pub(super) type RunFn<J> =
    for<'a> fn(
        &'a Postgres,
        &'a [J],
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// One kind of write, batched.
pub(super) struct Batcher<J> {
    state: Mutex<State<J>>,
    /// At most this many writes in one batch.
    max_batch: usize,
    /// At most this many batches in flight: the next one gathers while these commit.
    max_running: usize,
    run: RunFn<J>,
}

struct State<J> {
    pending: Vec<(J, oneshot::Sender<Result<(), StoreError>>)>,
    running: usize,
}

impl<J: Send + Sync + 'static> Batcher<J> {
    pub(super) fn new(max_batch: usize, max_running: usize, run: RunFn<J>) -> Batcher<J> {
        Batcher {
            state: Mutex::new(State {
                pending: Vec::new(),
                running: 0,
            }),
            max_batch: max_batch.max(1),
            max_running: max_running.max(1),
            run,
        }
    }

    /// Writes `job` with whatever else is waiting; returns once its batch committed.
    pub(super) async fn submit(self: &Arc<Self>, pg: &Postgres, job: J) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().expect("batch lock");
            state.pending.push((job, tx));
            let start = state.running < self.max_running;
            if start {
                state.running += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().drain(pg.clone()));
        }
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Database {
                what: format!(
                    "a batched write at store.url = {} was dropped before it was committed \
                     (the node is stopping)",
                    pg.url()
                ),
                source: None,
            })
        })
    }

    /// Writes batches until nothing waits.
    async fn drain(self: Arc<Self>, pg: Postgres) {
        loop {
            let batch: Vec<_> = {
                let mut state = self.state.lock().expect("batch lock");
                if state.pending.is_empty() {
                    state.running -= 1;
                    return;
                }
                let n = state.pending.len().min(self.max_batch);
                state.pending.drain(..n).collect()
            };
            let (jobs, replies): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
            let result = (self.run)(&pg, &jobs).await;
            match result {
                Ok(()) => {
                    for reply in replies {
                        let _ = reply.send(Ok(()));
                    }
                }
                Err(e) if jobs.len() == 1 => {
                    let _ = replies.into_iter().next().map(|r| r.send(Err(e)));
                }
                Err(e) => {
                    tracing::debug!(error = %e, writes = jobs.len(), "a batched write failed; writing its parts one by one");
                    for (job, reply) in jobs.iter().zip(replies) {
                        let one = (self.run)(&pg, std::slice::from_ref(job)).await;
                        let _ = reply.send(one);
                    }
                }
            }
        }
    }
}

//! The outgoing queue: enqueue (validate, compose, store, flush, then acknowledge), the
//! worker that delivers due messages, the retry policy, the operator's controls, and
//! [`lifecycle`], the one owner of a message's status.
//!
//! [`Queue`] is the handle the rest of the program holds: what enqueue, the worker and
//! the controls need, and nothing above them, so the queue depends on no module that
//! uses it.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::compose::Composer;
use crate::config::Config;
use crate::dkim::Signers;
use crate::store::Store;
use crate::verp::VerpKey;

pub mod control;
pub mod enqueue;
pub mod handoff;
pub mod lifecycle;
pub mod retry;
pub mod route;
pub mod worker;

pub use enqueue::{EnqueueError, Enqueued, Outgoing, enqueue};
pub use lifecycle::{FinishedListener, Lifecycle, MessageFinished};

/// What the queue is doing at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Activity {
    /// Messages the delivery worker holds (being sent, or waiting for a connection).
    pub in_flight: usize,
    /// A message in the queue is due now: the worker will take it.
    pub due_now: bool,
    /// The earliest due time in the queue (a lease or a retry may be in the future).
    pub next_due_ms: Option<u64>,
}

impl Activity {
    /// Nothing being sent and nothing due.
    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && !self.due_now
    }
}

/// The queue's handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) composer: Arc<Composer>,
    pub(crate) signers: Arc<Signers>,
    pub(crate) verp: VerpKey,
    /// Enqueue's short way to a running delivery worker.
    pub(crate) handoff: Arc<handoff::Handoff>,
    /// Rung after enqueue so the worker looks at the queue at once.
    pub(crate) bell: Arc<Notify>,
    pub lifecycle: Lifecycle,
}

impl Queue {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        composer: Arc<Composer>,
        signers: Arc<Signers>,
        verp: VerpKey,
    ) -> Queue {
        let handoff: Arc<handoff::Handoff> = Arc::default();
        let mut lifecycle = Lifecycle::new(
            store.clone(),
            handoff.clone(),
            config.delivery.retry_schedule.clone(),
        );
        lifecycle = lifecycle.with_days(
            config.flows.home_zone(),
            config.delivery.mode == crate::config::DeliveryMode::Mx,
        );
        if let crate::config::StoreBackend::Postgres(settings) = &config.store.backend {
            lifecycle = lifecycle.with_lease(settings.lease);
        }
        Queue {
            config,
            store,
            composer,
            signers,
            verp,
            handoff,
            bell: Arc::new(Notify::new()),
            lifecycle,
        }
    }

    /// The way from enqueue to the worker (for tests that play the worker's part).
    pub fn handoff(&self) -> &handoff::Handoff {
        &self.handoff
    }

    /// What the queue is doing now: messages the worker holds, and whether any message
    /// in the queue is due. Idle (neither) is what a test or a script waits for before
    /// it looks for mail that must not have been sent.
    pub async fn activity(&self, now: u64) -> Result<Activity, crate::store::StoreError> {
        let next_due_ms = self.store.next_due().await?;
        Ok(Activity {
            in_flight: self.handoff.in_flight(),
            due_now: next_due_ms.is_some_and(|d| d <= now),
            next_due_ms,
        })
    }

    /// Wakes the worker to look at the queue now.
    pub fn ring(&self) {
        self.bell.notify_one();
    }
}

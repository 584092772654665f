//! The outgoing queue: enqueue (validate, compose, store, flush, then acknowledge), the
//! worker that delivers due messages, the retry policy, and the operator's controls.

pub mod control;
pub mod enqueue;
pub mod handoff;
pub mod retry;
pub mod worker;

pub use enqueue::{EnqueueError, Enqueued, Outgoing, enqueue};

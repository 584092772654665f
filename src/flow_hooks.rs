//! Placeholder until the flow module lands: marks nothing.

use crate::services::Services;
use crate::store::StoreError;

/// Marks a flow undeliverable; returns what was done, in words.
pub fn undeliverable(
    _services: &Services,
    flow_id: &str,
    reason: &str,
    _now: u64,
) -> Result<String, StoreError> {
    Ok(format!("flow {flow_id} affected ({reason})"))
}

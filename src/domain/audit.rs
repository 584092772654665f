//! One entry of the audit log (who did what, when), as stored and shown on `/admin`.

use serde::{Deserialize, Serialize};

/// One audited action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub who: String,
    pub action: String,
    pub target: String,
}

//! What is stored for one of the application's API keys (never the key itself).

use serde::{Deserialize, Serialize};

/// A key's record, stored under the SHA-256 of the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub name: String,
    pub created_ms: u64,
    /// When the key was revoked; a revoked key is refused at once (records written
    /// before revocation existed read as not revoked).
    #[serde(default)]
    pub revoked_ms: Option<u64>,
}

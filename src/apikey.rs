//! API keys for the application. A key is shown once, when created; the store keeps
//! only its SHA-256, so a copy of the store does not give access. A lookup by hash
//! compares no secret bytes, so it leaks nothing through timing.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::now_ms;
use crate::store::{Store, StoreError, TreeName};

/// What is stored for a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub name: String,
    pub created_ms: u64,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Creates a key named `name` and returns it (the only time it is visible).
pub fn create(store: &Store, name: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("mg_{}", hex::encode(bytes));
    store.put_json(
        TreeName::ApiKeys,
        &hash(&key),
        &ApiKeyRecord {
            name: name.to_string(),
            created_ms: now_ms(),
        },
    )?;
    Ok(key)
}

/// The key's record, if the key is valid.
pub fn verify(store: &Store, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    store.get_json(TreeName::ApiKeys, &hash(key))
}

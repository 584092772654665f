//! API keys for the application. A key is shown once, when created; the store keeps
//! only its SHA-256, so a copy of the store does not give access. A lookup by hash
//! compares no secret bytes, so it leaks nothing through timing.

pub use crate::domain::apikey::ApiKeyRecord;
use crate::domain::now_ms;
use crate::secrets::{digest, random_token};
use crate::store::{Store, StoreError};

/// Creates a key named `name` and returns it (the only time it is visible).
pub fn create(store: &Store, name: &str) -> Result<String, StoreError> {
    let key = format!("mg_{}", random_token());
    store.api_key_put(
        &digest(&key),
        &ApiKeyRecord {
            name: name.to_string(),
            created_ms: now_ms(),
        },
    )?;
    Ok(key)
}

/// The key's record, if the key is valid.
pub fn verify(store: &Store, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    store.api_key_get(&digest(key))
}

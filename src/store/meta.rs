//! Small things the store keeps for the program and about itself: API keys (by the
//! SHA-256 of the key), settings the program generates once (the VERP secret), and a
//! health probe.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::apikey::ApiKeyRecord;

use super::{Store, StoreError, TreeName};

impl Store {
    /// Stores an API key's record under the key's digest (durable with the next flush).
    pub fn api_key_put(&self, digest: &[u8; 32], record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.put_json(TreeName::ApiKeys, digest, record)
    }

    /// The record of the key with this digest.
    pub fn api_key_get(&self, digest: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_json(TreeName::ApiKeys, digest)
    }

    /// A setting the program keeps for itself, by name.
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.get_json(TreeName::Meta, name.as_bytes())
    }

    /// Writes a setting (durable with the next flush).
    pub fn set_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        self.put_json(TreeName::Meta, name.as_bytes(), value)
    }

    /// Proves the store answers and takes writes (blocking): reads a record, then writes
    /// 4 KiB beside the spool, where intake's bytes go, so a full disk fails here as it
    /// fails intake. The caller flushes after it.
    pub fn check_health(&self) -> Result<(), StoreError> {
        self.get_json::<serde_json::Value>(TreeName::Meta, b"health")?;
        let probe = self.path().join("healthz.probe");
        let written = std::fs::write(&probe, [0u8; 4096]).map_err(|source| StoreError::Flush {
            path: probe.clone(),
            source,
        });
        let _ = std::fs::remove_file(&probe);
        written
    }
}

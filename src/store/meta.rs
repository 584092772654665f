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

    /// Every API key's record with its digest, in digest order (a handful of keys: a
    /// scan is fine).
    pub fn api_keys(&self) -> Result<Vec<([u8; 32], ApiKeyRecord)>, StoreError> {
        self.tree(TreeName::ApiKeys)
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.write_error(e))?;
                let mut digest = [0u8; 32];
                if k.len() == 32 {
                    digest.copy_from_slice(&k);
                }
                Ok((digest, super::decode(TreeName::ApiKeys, &v)?))
            })
            .collect()
    }

    /// A setting the program keeps for itself, by name.
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.get_json(TreeName::Meta, name.as_bytes())
    }

    /// Writes a setting (durable with the next flush).
    pub fn set_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        self.put_json(TreeName::Meta, name.as_bytes(), value)
    }

    /// Reads a record, to prove the store is open and answers.
    pub fn check_health(&self) -> Result<(), StoreError> {
        self.get_json::<serde_json::Value>(TreeName::Meta, b"health")
            .map(drop)
    }
}

//! API keys for the application. A key is shown once, when created; the store keeps
//! only its SHA-256, so a copy of the store does not give access. A lookup by hash
//! compares no secret bytes, so it leaks nothing through timing.
//!
//! A key is revoked by name (the only handle an operator has: the key itself is not
//! kept). Revocation marks the record rather than deleting it, so `apikey list` still
//! shows when it was revoked; [`verify`] reads the record on every request, so a
//! revoked key is refused from the next request on.

use serde::{Deserialize, Serialize};

pub use crate::domain::apikey::ApiKeyRecord;
use crate::domain::now_ms;
use crate::secrets::{digest, random_token};
use crate::store::{Store, StoreError};

/// Creates a key named `name` and returns it (the only time it is visible).
pub async fn create(store: &Store, name: &str) -> Result<String, StoreError> {
    let key = format!("mg_{}", random_token());
    store
        .api_key_put(
            &digest(&key),
            &ApiKeyRecord {
                name: name.to_string(),
                created_ms: now_ms(),
                revoked_ms: None,
            },
        )
        .await?;
    Ok(key)
}

/// The key's record, if the key is valid (known and not revoked).
pub async fn verify(store: &Store, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(store
        .api_key_get(&digest(key))
        .await?
        .filter(|r| r.revoked_ms.is_none()))
}

/// One line of `mailgate apikey list`: never the key, only a short prefix of its
/// digest to tell keys of the same name apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub name: String,
    pub id: String,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

/// Every key, oldest first.
pub async fn list(store: &Store) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut rows: Vec<ApiKeyRow> = store
        .api_keys()
        .await?
        .into_iter()
        .map(|(d, r)| ApiKeyRow {
            name: r.name,
            id: d[..4].iter().map(|b| format!("{b:02x}")).collect(),
            created_ms: r.created_ms,
            revoked_ms: r.revoked_ms,
        })
        .collect();
    rows.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.name.cmp(&b.name)));
    Ok(rows)
}

/// Revokes every live key called `name`; returns how many. Zero means no live key has
/// that name (the caller says so).
pub async fn revoke(store: &Store, name: &str, now: u64) -> Result<usize, StoreError> {
    let mut n = 0;
    for (d, mut r) in store.api_keys().await? {
        if r.name == name && r.revoked_ms.is_none() {
            r.revoked_ms = Some(now);
            store.api_key_put(&d, &r).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revoked_key_no_longer_verifies_and_others_still_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let a = create(&store, "app").await.unwrap();
        let b = create(&store, "batch").await.unwrap();
        assert!(verify(&store, &a).await.unwrap().is_some());
        assert_eq!(revoke(&store, "app", 5).await.unwrap(), 1);
        assert!(verify(&store, &a).await.unwrap().is_none());
        assert!(verify(&store, &b).await.unwrap().is_some());
        assert_eq!(revoke(&store, "app", 6).await.unwrap(), 0);
        let rows = list(&store).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .any(|r| r.name == "app" && r.revoked_ms == Some(5))
        );
    }
}

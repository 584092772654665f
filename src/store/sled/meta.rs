//! Small things the store keeps for the program and about itself: API keys (by the
//! SHA-256 of the key), settings the program generates once (the VERP secret),
//! monotonic counters for `/metrics`, and a health probe.
//!
//! Counters are kept as things happen (one atomic read-modify-write per event, under
//! `counter\0KIND\0LABEL`) so a scrape reads a few keys instead of every record, and
//! they live in the store so they survive a restart.

use async_trait::async_trait;

use crate::domain::apikey::ApiKeyRecord;
use crate::store::{Keys, Meta, StoreError};

use super::{Sled, TreeName};

/// A counter key's label (what follows its kind's prefix) and its value.
fn counter_row(label: &[u8], value: &[u8]) -> (String, u64) {
    let n = <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    (String::from_utf8_lossy(label).into_owned(), n)
}

#[async_trait]
impl Keys for Sled {
    /// Stores an API key's record under the key's digest (durable with the next flush).
    async fn api_key_put(
        &self,
        digest: &[u8; 32],
        record: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        self.put_json(TreeName::ApiKeys, digest, record)
    }

    /// The record of the key with this digest.
    async fn api_key_get(&self, digest: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get_json(TreeName::ApiKeys, digest)
    }

    /// Every API key's record with its digest, in digest order (a handful of keys: a
    /// scan is fine).
    async fn api_keys(&self) -> Result<Vec<([u8; 32], ApiKeyRecord)>, StoreError> {
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
}

#[async_trait]
impl Meta for Sled {
    /// Adds `n` to the counter `kind{label}` atomically (sled's compare-and-swap loop),
    /// durable with the next flush.
    async fn counter_add(&self, kind: &str, label: &str, n: u64) -> Result<(), StoreError> {
        let key = format!("counter\0{kind}\0{label}");
        self.tree(TreeName::Meta)
            .update_and_fetch(key.as_bytes(), |old| {
                let v = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some(v.saturating_add(n).to_be_bytes().to_vec())
            })
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Every label of the counter `kind` with its value, in label order.
    async fn counters(&self, kind: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = format!("counter\0{kind}\0");
        self.tree(TreeName::Meta)
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (k, v) = item.map_err(|e| self.write_error(e))?;
                Ok(counter_row(&k[prefix.len()..], &v))
            })
            .collect()
    }

    /// The labels of `kind` in `from..to`: one range of keys.
    async fn counters_between(
        &self,
        kind: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = format!("counter\0{kind}\0");
        let (start, end) = (format!("{prefix}{from}"), format!("{prefix}{to}"));
        if start >= end {
            return Ok(Vec::new());
        }
        self.tree(TreeName::Meta)
            .range(start.as_bytes()..end.as_bytes())
            .map(|item| {
                let (k, v) = item.map_err(|e| self.write_error(e))?;
                Ok(counter_row(&k[prefix.len()..], &v))
            })
            .collect()
    }

    /// Removes the keys of `kind` before `before`, one range (durable with the next
    /// flush).
    async fn forget_counters_before(&self, kind: &str, before: &str) -> Result<usize, StoreError> {
        let prefix = format!("counter\0{kind}\0");
        let end = format!("{prefix}{before}");
        let tree = self.tree(TreeName::Meta);
        let keys: Vec<_> = tree
            .range(prefix.as_bytes()..end.as_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.write_error(e))?;
        for key in &keys {
            tree.remove(key).map_err(|e| self.write_error(e))?;
        }
        Ok(keys.len())
    }

    /// A setting the program keeps for itself, by name.
    async fn setting_value(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get_json(TreeName::Meta, name.as_bytes())
    }

    /// Writes a setting (durable with the next flush).
    async fn setting_or_insert_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        let bytes = serde_json::to_vec(&value).map_err(|e| StoreError::Corrupt {
            tree: TreeName::Meta.name(),
            detail: e.to_string(),
        })?;
        let tree = self.tree(TreeName::Meta);
        match tree
            .compare_and_swap(name.as_bytes(), None as Option<&[u8]>, Some(bytes))
            .map_err(|e| self.write_error(e))?
        {
            Ok(()) => Ok(value),
            Err(found) => match found.current {
                Some(v) => super::decode(TreeName::Meta, &v),
                None => Ok(value),
            },
        }
    }

    async fn set_setting_value(
        &self,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.put_json(TreeName::Meta, name.as_bytes(), &value)
    }

    /// Proves the store answers and takes writes: reads a record, writes 4 KiB beside
    /// the spool, where intake's bytes go, so a full disk fails here as it fails intake,
    /// and flushes (sled refuses that once it has latched a write error).
    async fn check_health(&self) -> Result<(), StoreError> {
        self.get_json::<serde_json::Value>(TreeName::Meta, b"health")?;
        let probe = self.inner.path.join("healthz.probe");
        let written = std::fs::write(&probe, [0u8; 4096]).map_err(|source| StoreError::Flush {
            path: probe.clone(),
            source,
        });
        let _ = std::fs::remove_file(&probe);
        written?;
        self.flush_shared(None).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn counters_add_up_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let store = Store::open(&path, false).unwrap();
            store
                .counter_add("deliveries", "delivered", 1)
                .await
                .unwrap();
            store
                .counter_add("deliveries", "delivered", 2)
                .await
                .unwrap();
            store.counter_add("deliveries", "bounced", 1).await.unwrap();
            store
                .counter_add("bounces", "userunknown", 1)
                .await
                .unwrap();
            store.flush_blocking().unwrap();
        }
        let store = crate::store::sled::reopen(&path);
        assert_eq!(
            store.counters("deliveries").await.unwrap(),
            vec![("bounced".to_string(), 1), ("delivered".to_string(), 3)]
        );
    }

    #[tokio::test]
    async fn a_window_of_dated_labels_is_read_and_older_days_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        for (kind, label) in [
            ("day", "2026-11-30 delivered"),
            ("day", "2026-12-01 delivered"),
            ("day", "2026-12-02 bounced"),
            ("day_provider", "2026-12-01 docomo delivered"),
        ] {
            store.counter_add(kind, label, 1).await.unwrap();
        }
        assert_eq!(
            store
                .counters_between("day", "2026-12-01", "2026-12-02")
                .await
                .unwrap(),
            vec![("2026-12-01 delivered".to_string(), 1)]
        );
        assert_eq!(
            store
                .forget_counters_before("day", "2026-12-02")
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store.counters("day").await.unwrap(),
            vec![("2026-12-02 bounced".to_string(), 1)]
        );
        assert_eq!(store.counters("day_provider").await.unwrap().len(), 1);
    }
}

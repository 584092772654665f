//! Support's forgiving search on sled: the addresses under a prefix of the address
//! index, or of the reversed address index for a domain. Both indexes hold one key per
//! message, so the scan jumps past each address's keys ([`keys::after_address`]) and
//! reads about one key per address listed, not one per message.
//!
//! The reversed index came after stores with mail existed: a store opened without it
//! builds it once from the address index (a meta flag records that it is whole, so a
//! build cut short by a crash starts again).

use async_trait::async_trait;

use super::{Sled, TreeName, keys};
use crate::domain::AddressPattern;
use crate::store::{Search, StoreError};

/// Set in the meta tree once the reversed index holds every address index entry.
const REVERSED_BUILT: &[u8] = b"index.address_reversed";

impl Sled {
    /// Builds the reversed address index from the address index, unless done before.
    pub(super) fn ensure_reversed_index(&self) -> Result<(), StoreError> {
        let meta = self.tree(TreeName::Meta);
        if meta
            .get(REVERSED_BUILT)
            .map_err(|e| self.write_error(e))?
            .is_some()
        {
            return Ok(());
        }
        let reversed = self.tree(TreeName::ReversedAddressIndex);
        for item in self.tree(TreeName::AddressIndex).iter() {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            let Some(address) = keys::address_of(&k) else {
                continue;
            };
            let rest = &k[address.len() + 1..];
            if rest.len() != 24 {
                continue;
            }
            let created = u64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
            let address = String::from_utf8_lossy(address);
            reversed
                .insert(
                    keys::reversed_address_index(&address, created, &rest[8..]),
                    &[],
                )
                .map_err(|e| self.write_error(e))?;
        }
        meta.insert(REVERSED_BUILT, &[1u8])
            .map_err(|e| self.write_error(e))?;
        self.flush_now()
    }

    /// Indexes one message under its address reversed.
    pub(super) fn index_reversed(
        &self,
        address: &str,
        created_ms: u64,
        id: &[u8],
    ) -> Result<(), StoreError> {
        self.tree(TreeName::ReversedAddressIndex)
            .insert(keys::reversed_address_index(address, created_ms, id), &[])
            .map_err(|e| self.write_error(e))
            .map(drop)
    }

    /// Forgets one message's reversed index entry.
    pub(super) fn unindex_reversed(
        &self,
        address: &str,
        created_ms: u64,
        id: &[u8],
    ) -> Result<(), StoreError> {
        self.tree(TreeName::ReversedAddressIndex)
            .remove(keys::reversed_address_index(address, created_ms, id))
            .map_err(|e| self.write_error(e))
            .map(drop)
    }

    /// The distinct address parts of the keys under `prefix` in `tree`, at most `limit`.
    fn addresses_under(
        &self,
        tree: TreeName,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let tree = self.tree(tree);
        let mut out = Vec::new();
        let mut from = prefix.to_vec();
        while out.len() < limit {
            let Some(item) = tree.range(from.as_slice()..).next() else {
                break;
            };
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            let Some(address) = keys::address_of(&k) else {
                // Not an index key; step over it.
                from = k.to_vec();
                from.push(0);
                continue;
            };
            out.push(String::from_utf8_lossy(address).into_owned());
            from = keys::after_address(address);
        }
        Ok(out)
    }
}

#[async_trait]
impl Search for Sled {
    async fn addresses_matching(
        &self,
        pattern: &AddressPattern,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = pattern.index_prefix();
        if pattern.is_domain() {
            let found =
                self.addresses_under(TreeName::ReversedAddressIndex, prefix.as_bytes(), limit)?;
            let mut found: Vec<String> = found
                .iter()
                .map(|r| crate::domain::address::reversed(r))
                .collect();
            // Read backwards, the addresses come in the order of their local parts
            // reversed; the page lists them in plain order.
            found.sort();
            Ok(found)
        } else {
            self.addresses_under(TreeName::AddressIndex, prefix.as_bytes(), limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Event, MessageRecord, Step};
    use crate::store::{Messages, Search};

    async fn store_with(dir: &std::path::Path, addresses: &[&str]) -> Sled {
        let store = Sled::open(dir, false).unwrap();
        for (i, a) in addresses.iter().enumerate() {
            let created = 100 + i as u64;
            let mut r = MessageRecord::example(a, created);
            store
                .insert_message(&mut r, b"raw", &Event::new(Step::Queued, created))
                .await
                .unwrap();
        }
        store
    }

    fn pattern(q: &str) -> AddressPattern {
        AddressPattern::parse(q).unwrap()
    }

    #[tokio::test]
    async fn a_domain_and_a_prefix_list_each_address_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            &dir.path().join("s"),
            &[
                "hanako@example.jp",
                "hanako@example.jp",
                "hanae@example.jp",
                "hanako@sub.example.jp",
                "hanako@other.jp",
                "taro@example.jp",
            ],
        )
        .await;
        let found = |q: &'static str, limit| {
            let store = store.clone();
            async move { store.addresses_matching(&pattern(q), limit).await.unwrap() }
        };
        assert_eq!(
            found("@example.jp", 10).await,
            ["hanae@example.jp", "hanako@example.jp", "taro@example.jp"]
        );
        assert_eq!(
            found("hanako@", 10).await,
            [
                "hanako@example.jp",
                "hanako@other.jp",
                "hanako@sub.example.jp"
            ]
        );
        assert_eq!(
            found("hana", 2).await,
            ["hanae@example.jp", "hanako@example.jp"]
        );
        assert!(found("@nowhere.jp", 10).await.is_empty());
    }

    #[tokio::test]
    async fn a_store_without_the_reversed_index_builds_it_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let store = store_with(&path, &["a@example.jp", "b@example.jp"]).await;
            // As a store written before the index existed.
            store.tree(TreeName::ReversedAddressIndex).clear().unwrap();
            store.tree(TreeName::Meta).remove(REVERSED_BUILT).unwrap();
            store.flush_now().unwrap();
        }
        let store = Sled::open(&path, false).unwrap();
        assert_eq!(
            store
                .addresses_matching(&pattern("@example.jp"), 10)
                .await
                .unwrap(),
            ["a@example.jp", "b@example.jp"]
        );
    }
}

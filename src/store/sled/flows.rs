//! Flows, their link-token index, the current flow per address, and accounts.
//!
//! Layout: in the `flows` tree, `f` + flow id → [`FlowRecord`] and `a` + address + 0 →
//! the id of the address's newest flow; in `tokens`, SHA-256(link token) → flow id; in
//! `accounts`, the address → [`AccountRecord`].
//!
//! Every change to a flow goes through `change_flow`, a compare-and-swap loop:
//! the closure sees the record as stored and its result is written only if nobody wrote
//! in between, else it runs again on the newer record. That is what makes "count a try"
//! and "use the code up" atomic: of fifty racing right answers exactly one sees the code
//! unused.

use async_trait::async_trait;

use crate::domain::{AccountRecord, FlowRecord, FlowState};
use crate::store::{Events, Flows, Meta, StoreError, Tells};

use super::{Sled, TreeName, decode};

fn flow_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(b'f');
    k.extend_from_slice(id.as_bytes());
    k
}

fn address_key(address: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + address.len());
    k.push(b'a');
    k.extend_from_slice(address.as_bytes());
    k.push(0);
    k
}

#[async_trait]
impl Flows for Sled {
    /// Stores a new flow and indexes its link token. Not durable until a flush.
    async fn insert_flow(&self, flow: &FlowRecord, link_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.put_json(TreeName::Flows, &flow_key(&flow.id), flow)?;
        self.tree(TreeName::Tokens)
            .insert(link_hash, flow.id.as_bytes())
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Reads a flow by id.
    /// How many flows are in `state` (for metrics; a scan, fine at tens of
    /// thousands of flows).
    async fn count_flows_in_state(&self, state: FlowState) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.tree(TreeName::Flows).scan_prefix(b"f") {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let record: FlowRecord = decode(TreeName::Flows, &v)?;
            if record.state == state {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn flow(&self, id: &str) -> Result<Option<FlowRecord>, StoreError> {
        self.get_json(TreeName::Flows, &flow_key(id))
    }

    /// The flow a link token (given as its SHA-256) belongs to.
    async fn flow_by_link_hash(&self, hash: &[u8; 32]) -> Result<Option<FlowRecord>, StoreError> {
        let id = self
            .tree(TreeName::Tokens)
            .get(hash)
            .map_err(|e| self.write_error(e))?;
        match id {
            Some(id) => self.flow(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    /// Applies `change` to the stored flow atomically (compare-and-swap, retried on a
    /// race). Returns the record as written and the closure's result, or `None` when
    /// there is no such flow. The closure may run more than once.
    async fn change_flow(
        &self,
        id: &str,
        change: &mut (dyn for<'r> FnMut(&'r mut FlowRecord) -> Tells + Send),
    ) -> Result<Option<FlowRecord>, StoreError> {
        let tree = self.tree(TreeName::Flows);
        let key = flow_key(id);
        loop {
            let Some(old) = tree.get(&key).map_err(|e| self.write_error(e))? else {
                return Ok(None);
            };
            let mut record: FlowRecord = decode(TreeName::Flows, &old)?;
            let tells = change(&mut record);
            let new = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt {
                tree: TreeName::Flows.name(),
                detail: e.to_string(),
            })?;
            if new.as_slice() == old.as_ref() {
                return Ok(Some(record));
            }
            if tree
                .compare_and_swap(&key, Some(old), Some(new))
                .map_err(|e| self.write_error(e))?
                .is_err()
            {
                continue;
            }
            // Durable with the change: both wait for the same flush.
            if let Some(mut event) = tells.event {
                self.append_event(&mut event).await?;
            }
            for (kind, label) in &tells.counts {
                self.counter_add(kind, label, 1).await?;
            }
            return Ok(Some(record));
        }
    }

    /// Makes `id` the current flow of `address`; returns the flow it replaces.
    async fn swap_current_flow(
        &self,
        address: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let old = self
            .tree(TreeName::Flows)
            .insert(address_key(address), id.as_bytes())
            .map_err(|e| self.write_error(e))?;
        Ok(old.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The id of the newest flow for `address`.
    async fn current_flow_id(&self, address: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tree(TreeName::Flows)
            .get(address_key(address))
            .map_err(|e| self.write_error(e))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The account of `address`.
    async fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.get_json(TreeName::Accounts, address.as_bytes())
    }

    /// Writes an account.
    async fn put_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        self.put_json(
            TreeName::Accounts,
            account.address.to_string().as_bytes(),
            account,
        )
    }

    /// A scan of every flow (fine at tens of thousands of flows, as the metrics' count).
    async fn list_flows(
        &self,
        address: Option<&str>,
        states: &[FlowState],
        limit: usize,
    ) -> Result<Vec<FlowRecord>, StoreError> {
        let mut out: Vec<FlowRecord> = Vec::new();
        for item in self.tree(TreeName::Flows).scan_prefix(b"f") {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let flow: FlowRecord = decode(TreeName::Flows, &v)?;
            if address.is_some_and(|a| flow.address.to_string() != a)
                || (!states.is_empty() && !states.contains(&flow.state))
            {
                continue;
            }
            out.push(flow);
        }
        out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, FlowKind};
    use crate::store::Store;

    fn flow(id: &str) -> FlowRecord {
        FlowRecord::issued(
            id.into(),
            FlowKind::Setup,
            Address::parse("a@example.jp").unwrap(),
            "ja".into(),
            1,
            2,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_are_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        store.insert_flow(&flow("x"), &[7; 32]).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    store
                        .update_flow("x", |f| f.failures_ms.push(1))
                        .await
                        .unwrap()
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            store.flow("x").await.unwrap().unwrap().failures_ms.len(),
            200
        );
        assert_eq!(
            store.flow_by_link_hash(&[7; 32]).await.unwrap().unwrap().id,
            "x"
        );
        assert_eq!(
            store.swap_current_flow("a@example.jp", "x").await.unwrap(),
            None
        );
        assert_eq!(
            store.swap_current_flow("a@example.jp", "y").await.unwrap(),
            Some("x".into())
        );
    }
}

//! The rate limiter on sled: one key per window, changed with sled's atomic
//! read-modify-write (`fetch_and_update`), so parallel takes never overwrite each other.

use async_trait::async_trait;

use crate::store::limits::{Grant, LimitKey, Rule, Window};
use crate::store::{Limits, StoreError};

use super::{Sled, TreeName};

#[async_trait]
impl Limits for Sled {
    /// Takes up to `n` slots of `key` under `rule` at `now`, atomically (not yet
    /// durable: a limit lost in a crash only gives back a few slots).
    async fn limit_take_up_to(
        &self,
        key: &LimitKey,
        rule: Rule,
        now: u64,
        n: u32,
    ) -> Result<Grant, StoreError> {
        let mut decided = None;
        self.tree(TreeName::Limits)
            .fetch_and_update(key.bytes(), |old| {
                let (next, grant) = Window::decode(old).take_up_to(rule, now, n);
                decided = Some(grant);
                Some(next.encode())
            })
            .map_err(|e| self.write_error(e))?;
        Ok(decided.expect("fetch_and_update runs its closure"))
    }

    /// Gives back one slot taken from `key` (the work did not count against it); the
    /// key opens again if it had shut.
    async fn limit_refund(&self, key: &LimitKey) -> Result<(), StoreError> {
        self.tree(TreeName::Limits)
            .fetch_and_update(key.bytes(), |old| {
                old.map(|o| Window::decode(Some(o)).refund().encode())
            })
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Forgets `key`'s window.
    async fn limit_clear(&self, key: &LimitKey) -> Result<(), StoreError> {
        self.tree(TreeName::Limits)
            .remove(key.bytes())
            .map_err(|e| self.write_error(e))?;
        Ok(())
    }

    /// Forgets every window of `scope` whose subject starts with `first` as its first part.
    async fn limit_clear_prefix(&self, scope: &'static str, first: &str) -> Result<(), StoreError> {
        let prefix = LimitKey::new(scope, &[first, ""]).bytes();
        let tree = self.tree(TreeName::Limits);
        for item in tree.scan_prefix(&prefix).keys() {
            let k = item.map_err(|e| self.write_error(e))?;
            tree.remove(k).map_err(|e| self.write_error(e))?;
        }
        Ok(())
    }

    /// Forgets the windows that ended before `now` (so strangers' keys do not grow the
    /// store for ever); returns how many went.
    async fn limit_prune(&self, longest_window_ms: u64, now: u64) -> Result<usize, StoreError> {
        let tree = self.tree(TreeName::Limits);
        let mut gone = 0;
        for item in tree.iter() {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            let w = Window::decode(Some(&v));
            let ended =
                now.saturating_sub(w.start_ms) >= longest_window_ms && now >= w.shut_until_ms;
            if ended
                && tree
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)
                    .map_err(|e| self.write_error(e))?
                    .is_ok()
            {
                gone += 1;
            }
        }
        Ok(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, Take};

    const RULE: Rule = Rule {
        max: 3,
        window_ms: 1000,
        lock_ms: 5000,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_takes_never_let_more_than_max_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let key = LimitKey::new("test", &["a", "b"]);
        let allowed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, key, allowed) = (store.clone(), key.clone(), allowed.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    if matches!(
                        store.limit_take(&key, RULE, 100).await.unwrap(),
                        Take::Allowed { .. }
                    ) {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(allowed.load(std::sync::atomic::Ordering::SeqCst), 3);
        store.limit_clear_prefix("test", "a").await.unwrap();
        assert_eq!(
            store.limit_take(&key, RULE, 100).await.unwrap(),
            Take::Allowed { remaining: 2 }
        );
        assert_eq!(store.limit_prune(1000, 100_000).await.unwrap(), 1);
    }
}

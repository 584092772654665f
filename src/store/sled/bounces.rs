//! Bounce records (time-ordered) and the suppression list (by address).

use rand::RngCore;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use crate::domain::EventRecord;
use crate::domain::bounce::{BounceRecord, Suppression};
use crate::store::{Bounces, Events, Meta, StoreError};

use super::{Sled, TreeName, decode, keys};

/// Only the reason of a bounce record.
#[derive(Deserialize)]
struct ReasonOnly {
    reason: Option<String>,
}

#[async_trait]
impl Bounces for Sled {
    /// Appends a bounce record.
    async fn insert_bounce(
        &self,
        record: &BounceRecord,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError> {
        if let Some(mut event) = told {
            self.append_event(&mut event).await?;
        }
        let mut suffix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        self.put_json(
            TreeName::Bounces,
            &keys::time_ordered(record.at_ms, &suffix),
            record,
        )?;
        // `mailgate_bounces_total`, kept as bounces arrive.
        let reason = record.reason.as_deref().unwrap_or("undefined");
        self.counter_add("bounces", reason, 1).await
    }

    /// Bounces recorded at or after `since_ms`, oldest first.
    async fn bounces_since(&self, since_ms: u64) -> Result<Vec<BounceRecord>, StoreError> {
        self.tree(TreeName::Bounces)
            .range(keys::time_ordered(since_ms, &[])..)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Bounces, &v)
            })
            .collect()
    }

    async fn recent_bounces(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<BounceRecord>, StoreError> {
        let mut out = self
            .tree(TreeName::Bounces)
            .range(keys::time_ordered(since_ms, &[])..)
            .rev()
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Bounces, &v)
            })
            .collect::<Result<Vec<BounceRecord>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    /// The suppression entry of an address, if any.
    async fn prune_bounces(&self, before_ms: u64) -> Result<usize, StoreError> {
        let tree = self.tree(TreeName::Bounces);
        let mut gone = 0;
        for item in tree.range(..keys::time_ordered(before_ms, &[])) {
            let (k, _) = item.map_err(|e| self.write_error(e))?;
            tree.remove(k).map_err(|e| self.write_error(e))?;
            gone += 1;
        }
        Ok(gone)
    }

    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        self.get_json(TreeName::Suppression, address.as_bytes())
    }

    /// Adds or replaces a suppression entry; its event waits for the same flush.
    async fn suppress(
        &self,
        entry: &Suppression,
        told: Option<EventRecord>,
    ) -> Result<(), StoreError> {
        self.put_json(TreeName::Suppression, entry.address.as_bytes(), entry)?;
        if let Some(mut event) = told {
            self.append_event(&mut event).await?;
        }
        Ok(())
    }

    /// Removes an address from the list; returns the entry that was there.
    async fn unsuppress(
        &self,
        address: &str,
        told: &(dyn for<'s> Fn(&'s Suppression) -> EventRecord + Send + Sync),
    ) -> Result<Option<Suppression>, StoreError> {
        let Some(v) = self
            .tree(TreeName::Suppression)
            .remove(address.as_bytes())
            .map_err(|e| self.write_error(e))?
        else {
            return Ok(None);
        };
        let old: Suppression = decode(TreeName::Suppression, &v)?;
        self.append_event(&mut told(&old)).await?;
        Ok(Some(old))
    }

    /// The whole suppression list, by address.
    async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.tree(TreeName::Suppression)
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Suppression, &v)
            })
            .collect()
    }

    async fn bounce_reason_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.tree(TreeName::Bounces).iter() {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let r: ReasonOnly = decode(TreeName::Bounces, &v)?;
            *out.entry(r.reason.unwrap_or_else(|| "undefined".into()))
                .or_insert(0) += 1;
        }
        Ok(out)
    }
}

//! Counts over the store: messages by status and bounces by reason (whole-tree scans,
//! for reports), and the open messages by status for `/metrics`, read through the
//! queue's index, so a scrape costs the size of the queue, not of the history.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::MessageStatus;

use super::{Store, StoreError, TreeName, decode};

/// Only the field a count needs; the rest of the record is skipped by serde.
#[derive(Deserialize)]
struct StatusOnly {
    status: MessageStatus,
}

/// Only the reason of a bounce record.
#[derive(Deserialize)]
struct ReasonOnly {
    reason: Option<String>,
}

impl Store {
    /// How many open messages (those with a queue entry) are in each status: reads the
    /// queue index and the records it names, never the finished history.
    pub fn open_status_counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for (_, id) in self.queue_entries()? {
            let Some(v) = self
                .tree(TreeName::Messages)
                .get(id.as_bytes())
                .map_err(|e| self.write_error(e))?
            else {
                continue;
            };
            let s: StatusOnly = decode(TreeName::Messages, &v)?;
            *out.entry(s.status.as_str()).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// How many messages are in each status.
    pub fn message_status_counts(&self) -> Result<BTreeMap<&'static str, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.tree(TreeName::Messages).iter() {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let s: StatusOnly = decode(TreeName::Messages, &v)?;
            *out.entry(s.status.as_str()).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// How many bounces were recorded for each reason (`undefined` when none was found).
    pub fn bounce_reason_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
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

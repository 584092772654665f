//! Whole-tree counts for `/metrics`: messages by status and bounces by reason. Each
//! scrape scans the trees, so the numbers are always what the store holds, across
//! restarts, at the cost of a scan (fine for tens of thousands of messages).

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

//! Reading a whole sled store out, record kind by record kind, for `mailgate store copy`
//! (the shared database is filled through its own store intents). Only what the
//! intents cannot list is read here: messages with their bytes, flows with their link
//! token's digest, the current flow per address, accounts and settings.

use crate::domain::{AccountRecord, FlowRecord, MessageRecord};
use crate::store::StoreError;

use super::{Sled, TreeName, decode};

/// A flow and the SHA-256 of its link token, when the store still has it.
pub type FlowExport = (FlowRecord, Option<[u8; 32]>);

/// A message and, while it is open, its signed bytes.
pub type MessageExport = (MessageRecord, Option<Vec<u8>>);

impl Sled {
    /// Every message, with the signed bytes of the open ones.
    pub fn export_messages(&self) -> Result<Vec<MessageExport>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeName::Messages).iter() {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let record: MessageRecord = decode(TreeName::Messages, &v)?;
            let location = self
                .inner
                .bodies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&record.id)
                .copied();
            let body = match location {
                Some(l) => Some(self.inner.spool.read(&record.id, l)?),
                None => None,
            };
            out.push((record, body));
        }
        Ok(out)
    }

    /// Every flow with its link token's digest.
    pub fn export_flows(&self) -> Result<Vec<FlowExport>, StoreError> {
        let mut hashes: std::collections::HashMap<String, [u8; 32]> = Default::default();
        for item in self.tree(TreeName::Tokens).iter() {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            if let Ok(hash) = <[u8; 32]>::try_from(&k[..]) {
                hashes.insert(String::from_utf8_lossy(&v).into_owned(), hash);
            }
        }
        let mut out = Vec::new();
        for item in self.tree(TreeName::Flows).scan_prefix(b"f") {
            let (_, v) = item.map_err(|e| self.write_error(e))?;
            let flow: FlowRecord = decode(TreeName::Flows, &v)?;
            let hash = hashes.get(&flow.id).copied();
            out.push((flow, hash));
        }
        Ok(out)
    }

    /// The current flow of each address: (address, flow id).
    pub fn export_current_flows(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeName::Flows).scan_prefix(b"a") {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            let address = k[1..].strip_suffix(&[0]).unwrap_or(&k[1..]);
            out.push((
                String::from_utf8_lossy(address).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    pub fn export_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.tree(TreeName::Accounts)
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|e| self.write_error(e))?;
                decode(TreeName::Accounts, &v)
            })
            .collect()
    }

    /// The program's settings (secrets made once), not its counters or probes.
    pub fn export_settings(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeName::Meta).iter() {
            let (k, v) = item.map_err(|e| self.write_error(e))?;
            if k.starts_with(b"counter\0") || k.as_ref() == b"health" {
                continue;
            }
            if let Ok(value) = serde_json::from_slice(&v) {
                out.push((String::from_utf8_lossy(&k).into_owned(), value));
            }
        }
        Ok(out)
    }
}

//! `mailgate store copy`: every record of a stopped sled store into an empty shared
//! database, so a single box can move to several nodes without losing its queue or
//! stranding the flows in progress.
//!
//! The target is written through the store intents (the same calls the server makes),
//! so the copy is what a node would have written; only reading the sled side needs its
//! own export (`sled::export`). Rate-limit windows are not copied: they are minutes
//! long, and starting them afresh gives nobody more than one window's worth.

use crate::domain::Event;
use crate::store::sled::Sled;
use crate::store::{OperatorKey, Store, StoreError};

/// How many records of one kind were copied.
pub type Copied = (&'static str, usize);

/// Why a copy did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target database already holds {0} messages or flows: `store copy` fills an \
         empty database only (a copy over a live cluster would mix two stores)"
    )]
    NotEmpty(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies every record of `from` into `to`; `progress` hears each kind as it is done.
pub async fn copy(
    from: &Sled,
    to: &Store,
    mut progress: impl FnMut(Copied),
) -> Result<Vec<Copied>, CopyError> {
    let held = to.queue_entries().await?.len() + to.message_status_counts().await?.len();
    if held > 0 {
        return Err(CopyError::NotEmpty(held));
    }
    let source = Store::new(std::sync::Arc::new(from.clone()));
    let mut done = Vec::new();
    let mut note = |kind: &'static str, n: usize| {
        progress((kind, n));
        done.push((kind, n));
    };

    // Settings first: the VERP secret must match the links and return paths in flight.
    let settings = from.export_settings()?;
    for (name, value) in &settings {
        to.set_setting_value(name, value.clone()).await?;
    }
    note("settings", settings.len());

    let messages = from.export_messages()?;
    for (record, body) in &messages {
        let mut r = record.clone();
        let first = r
            .timeline
            .first()
            .cloned()
            .unwrap_or_else(|| Event::new(crate::domain::Step::Queued, r.created_ms));
        to.insert_message(&mut r, body.as_deref().unwrap_or_default(), &first)
            .await?;
        // The whole record as it stood: status, due time, every event.
        let mut r = record.clone();
        to.put_message(&mut r).await?;
    }
    note("messages", messages.len());

    let flows = from.export_flows()?;
    for (flow, hash) in &flows {
        // A flow whose token is gone gets an unreachable digest: no link finds it.
        let hash = hash.unwrap_or_else(|| crate::secrets::digest(&format!("gone:{}", flow.id)));
        to.insert_flow(flow, &hash).await?;
    }
    note("flows", flows.len());
    let current = from.export_current_flows()?;
    for (address, id) in &current {
        to.swap_current_flow(address, id).await?;
    }
    note("current flows", current.len());

    let accounts = from.export_accounts()?;
    for a in &accounts {
        to.put_account(a).await?;
    }
    note("accounts", accounts.len());

    let suppressions = source.suppressions().await?;
    for s in &suppressions {
        to.suppress(s, None).await?;
    }
    note("suppressions", suppressions.len());

    // Each bounce counts itself in the target's bounce counters.
    let bounces = source.bounces_since(0).await?;
    for b in &bounces {
        to.insert_bounce(b, None).await?;
    }
    note("bounces", bounces.len());
    let deliveries = source.counters("deliveries").await?;
    for (label, n) in &deliveries {
        to.counter_add("deliveries", label, *n).await?;
    }
    note("delivery counters", deliveries.len());
    let mut tallies = 0;
    for kind in [
        crate::domain::tally::DAY_KIND,
        crate::domain::tally::DAY_PROVIDER_KIND,
    ] {
        for (label, n) in source.counters(kind).await? {
            to.counter_add(kind, &label, n).await?;
            tallies += 1;
        }
    }
    note("daily tallies", tallies);

    let mut operators = 0;
    for kind in [
        OperatorKey::Account,
        OperatorKey::Session,
        OperatorKey::Preferences,
    ] {
        for (id, value) in source.operator_values(kind).await? {
            to.put_operator_value(kind, &id, value).await?;
            operators += 1;
        }
    }
    note("operator records", operators);

    let keys = source.api_keys().await?;
    for (digest, record) in &keys {
        to.api_key_put(digest, record).await?;
    }
    note("api keys", keys.len());

    let mut audit = source.audit_recent(usize::MAX).await?;
    audit.reverse();
    for entry in &audit {
        to.audit_append(entry).await?;
    }
    note("audit entries", audit.len());

    to.flush().await?;
    Ok(done)
}

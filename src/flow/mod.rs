//! Setup and reset flows: what happens between "here is your link" and "your password is
//! set".
//!
//! `issued → mailed → opened → code_sent → code_verified → completed`, or `expired`,
//! `undeliverable`, `locked`, `superseded`. The rules live in [`machine`] as pure
//! functions of a record and `now`, and a stored flow changes only by one of its named
//! [`Transition`]s, which the store applies atomically (`Store::transition_flow`); this
//! module decides which transition each step is and sends the mail each step needs through the queue
//! (`enqueue`, with the flow's id, and a lifetime equal to what the mail carries: a link
//! mail lives as long as its link, a code mail as long as its code).
//!
//! A new flow supersedes the address's open one at once, except a link asked for at
//! `/reset` ([`Supersede::WhenUsed`]): a stranger can ask for one, so it takes over only
//! when its button is pressed, and the person's open form keeps working meanwhile.
//!
//! The store writes the application's `flow.*` event that a transition calls for in
//! the same unit as the change (before the caller's flush, so the event is durable with
//! it); [`expire_due`] makes lapsed flows `expired` so that they too are told.
//!
//! Secrets ([`secret`]) are never stored, logged, or put in an event: only digests.
//! Passwords ([`password`]) are checked and hashed off the async threads.

pub mod mail;
pub mod password;
pub use crate::domain::transition as machine;
pub use crate::secrets as secret;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::{
    AccountRecord, Address, FlowKind, FlowNote, FlowRecord, FlowState, MessageStatus,
    format_time_ms,
};
use crate::queue::Queue;
use crate::queue::{EnqueueError, FinishedListener, MessageFinished, Outgoing, enqueue};
use crate::store::{LimitKey, Rule, Take};
use crate::store::{Store, StoreError};

pub use machine::{ButtonRefusal, CodeOutcome, Outcome, Transition};
pub use password::{HashError, Hasher, Problem, Verdict};

/// What the flows touch, and only that: the store, the queue their mail goes through,
/// and the configuration their links and mails are made from. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Flows {
    pub store: Store,
    pub queue: Queue,
    pub config: Arc<Config>,
}

/// Why a flow operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("locale {0:?} is not one of \"ja\", \"en\"")]
    Locale(String),
    #[error("there is no flow {0}")]
    NotFound(String),
    #[error(
        "{0} has no account, so there is no password to reset: start a setup flow \
         (an invitation) instead"
    )]
    NoAccount(Address),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// A request to start a flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartFlow {
    pub kind: FlowKind,
    pub address: Address,
    #[serde(default)]
    pub name: Option<String>,
    /// `ja` or `en`; else the account's, else `flows.default_locale`.
    #[serde(default)]
    pub locale: Option<String>,
    /// Send the link mail no earlier than this (ms since the epoch).
    #[serde(default)]
    pub not_before_ms: Option<u64>,
    /// Skip an address that already has an open or completed flow, or an account
    /// (a CSV run again mails nobody twice).
    #[serde(default)]
    pub only_if_new: bool,
    /// Decide, but start nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What [`start`] did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Started {
    /// A flow was started and its link mail queued.
    Started {
        flow_id: String,
        message_id: String,
        expires_ms: u64,
    },
    /// Nothing was done: the address already has a flow or an account.
    Skipped { reason: String },
    /// A dry run that would have started a flow.
    WouldStart,
}

/// When a new flow ends the address's open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supersede {
    /// At once: the application, an admin or the link's holder asked for it.
    Now,
    /// When the new link is first used (its button pressed): anyone may ask `/reset`
    /// for a link, and a stranger's request must not end the person's open form
    /// (issue 15). Until then both links work.
    WhenUsed,
}

/// Starts a flow: a new link, its mail queued, and any open flow of the address
/// superseded. Returns once the flow and its mail are on disk.
pub async fn start(flows: &Flows, req: StartFlow, now: u64) -> Result<Started, FlowError> {
    start_with(flows, req, Supersede::Now, now).await
}

/// Makes `flow` the address's current flow, superseding the open one it replaces. Not
/// durable until the caller flushes.
async fn make_current(flows: &Flows, flow: &FlowRecord, now: u64) -> Result<(), FlowError> {
    let store = &flows.store;
    let address = flow.address.to_string();
    if store.current_flow_id(&address).await?.as_deref() == Some(flow.id.as_str()) {
        return Ok(());
    }
    if let Some(old) = store.swap_current_flow(&address, &flow.id).await?
        && old != flow.id
        && let Some((old_flow, Outcome::Changed(true))) = change(
            store,
            &old,
            now,
            Transition::Supersede {
                by: flow.id.clone(),
            },
        )
        .await?
    {
        // Its link no longer works: a link mail still waiting to go would only
        // confuse the person, so it is cancelled (already sent mail stays sent).
        for id in &old_flow.message_ids {
            let why = crate::domain::Detail::Superseded {
                flow: flow.id.clone(),
            }
            .to_string();
            let _ = crate::queue::control::cancel_because(&flows.queue, id, &why).await;
        }
    }
    Ok(())
}

/// [`start`], choosing when the address's open flow is superseded.
pub async fn start_with(
    flows: &Flows,
    req: StartFlow,
    supersede: Supersede,
    now: u64,
) -> Result<Started, FlowError> {
    let store = &flows.store;
    let address_text = req.address.to_string();
    let account = store.account(&address_text).await?;
    let previous = match store.current_flow_id(&address_text).await? {
        Some(id) => store.flow(&id).await?,
        None => None,
    };
    // Language and name: as asked, else as the account or the last flow had them.
    let locale = req
        .locale
        .clone()
        .or_else(|| account.as_ref().map(|a| a.locale.clone()))
        .or_else(|| previous.as_ref().map(|f| f.locale.clone()))
        .unwrap_or_else(|| flows.config.flows.default_locale.clone());
    if !crate::compose::templates::LOCALES.contains(&locale.as_str()) {
        return Err(FlowError::Locale(locale));
    }
    // As the public `/reset` page never mails an address without an account.
    if req.kind == FlowKind::Reset && account.is_none() {
        return Err(FlowError::NoAccount(req.address));
    }
    if req.only_if_new {
        if account.is_some() {
            return Ok(Started::Skipped {
                reason: "already has an account".into(),
            });
        }
        if let Some(current) = &previous {
            let state = machine::effective_state(current, now);
            if state.is_open() || state == FlowState::Completed {
                return Ok(Started::Skipped {
                    reason: format!(
                        "already invited (flow {} is {})",
                        current.id,
                        state.as_str()
                    ),
                });
            }
        }
    }
    if req.dry_run {
        return Ok(Started::WouldStart);
    }
    let send_at = req.not_before_ms.unwrap_or(now).max(now);
    let token = secret::new_token();
    let link_hash = secret::digest(&token);
    let mut flow = FlowRecord {
        name: req
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| account.as_ref().and_then(|a| a.name.clone()))
            .or_else(|| previous.as_ref().and_then(|f| f.name.clone())),
        link_hash: hex::encode(link_hash),
        ..FlowRecord::issued(
            secret::new_flow_id(),
            req.kind,
            req.address.clone(),
            locale,
            now,
            send_at + flows.config.flows.link_lifetime.as_millis() as u64,
        )
    };
    let detail = (send_at > now).then(|| format!("mail scheduled for {}", format_time_ms(send_at)));
    machine::note(&mut flow, now, "issued", detail);
    store.insert_flow(&flow, &link_hash).await?;
    let done = enqueue(
        &flows.queue,
        Outgoing {
            to: flow.address.clone(),
            to_name: flow.name.clone(),
            template: flow.kind.link_template().into(),
            locale: flow.locale.clone(),
            vars: mail::link_vars(&flows.config, &flow, &token),
            lifetime: Some(Duration::from_millis(flow.expires_ms - now)),
            flow_id: Some(flow.id.clone()),
            not_before_ms: (send_at > now).then_some(send_at),
        },
    )
    .await?;
    let message_id = done.message_id.to_string();
    change(
        store,
        &flow.id,
        now,
        Transition::AddMessage {
            message_id: message_id.clone(),
        },
    )
    .await?;
    // A flow in progress elsewhere is left alone until this link is used; with none,
    // this one is current at once.
    let in_progress = previous
        .as_ref()
        .is_some_and(|p| machine::effective_state(p, now).is_open());
    if supersede == Supersede::Now || !in_progress {
        make_current(flows, &flow, now).await?;
    }
    store.flush().await?;
    tracing::info!(flow_id = %flow.id, kind = flow.kind.as_str(), msg_id = %message_id, "flow started");
    Ok(Started::Started {
        flow_id: flow.id,
        message_id,
        expires_ms: flow.expires_ms,
    })
}

/// Applies a named transition to a flow atomically, with the event its state change
/// calls for written in the same unit (`Store::transition_flow`). Not durable until the
/// caller flushes.
async fn change(
    store: &Store,
    id: &str,
    now: u64,
    transition: Transition,
) -> Result<Option<(FlowRecord, Outcome)>, StoreError> {
    store.transition_flow(id, &transition, now).await
}

/// Makes every open flow whose link lifetime has ended `expired` (each with its
/// `flow.expired` event), then flushes; returns how many. Run now and then by `serve`.
pub async fn expire_due(store: &Store, now: u64) -> Result<usize, StoreError> {
    let open = [
        FlowState::Issued,
        FlowState::Mailed,
        FlowState::Opened,
        FlowState::CodeSent,
        FlowState::CodeVerified,
    ];
    let mut n = 0;
    for flow in store.list_flows(None, &open, usize::MAX).await? {
        if flow.expires_ms <= now
            && let Some((_, Outcome::Changed(true))) =
                change(store, &flow.id, now, Transition::Expire).await?
        {
            n += 1;
        }
    }
    if n > 0 {
        store.flush().await?;
    }
    Ok(n)
}

/// The listener that makes flows follow their mail (registered with the queue's
/// [`Lifecycle`](crate::queue::Lifecycle) where the program is wired): a delivered link
/// or code mail moves its flow on; one that will not arrive (failed, bounced, expired,
/// suppressed) makes the flow undeliverable, with the queue's words for why. Writes are
/// durable with the finishing caller's flush; errors are logged, not returned, since the
/// message's own record is written regardless.
pub fn follow_messages(store: Store) -> FinishedListener {
    Arc::new(move |finished: Arc<MessageFinished>| {
        let store = store.clone();
        Box::pin(async move { follow_message(&store, &finished).await })
    })
}

async fn follow_message(store: &Store, finished: &MessageFinished) -> Option<String> {
    let record = &finished.record;
    let flow_id = record.flow_id.as_deref()?;
    if !matches!(record.template.as_str(), "invite" | "reset" | "code") {
        return None;
    }
    let now = finished.at_ms;
    let result = match (&finished.failure, record.status) {
        (None, MessageStatus::Delivered) => {
            let delivered = Transition::MessageDelivered {
                template: record.template.clone(),
            };
            change(store, flow_id, now, delivered).await.map(|_| None)
        }
        (Some(reason), _) => {
            let undeliverable = Transition::MarkUndeliverable {
                reason: reason.clone(),
            };
            change(store, flow_id, now, undeliverable)
                .await
                .map(|changed| match changed.map(|(_, o)| o.changed()) {
                    Some(true) => {
                        tracing::warn!(flow_id, reason = %reason, "flow undeliverable");
                        Some(format!("flow {flow_id} marked undeliverable"))
                    }
                    Some(false) => Some(format!("flow {flow_id} was already closed: unchanged")),
                    None => None,
                })
        }
        _ => Ok(None),
    };
    result.unwrap_or_else(|e| {
        tracing::error!(flow_id, error = %e, "cannot record a flow's mail outcome");
        None
    })
}

/// The flow a link token belongs to; `None` for anything that is not a live token.
pub async fn find(flows: &Flows, token: &str) -> Result<Option<FlowRecord>, FlowError> {
    if !secret::looks_like_token(token) {
        return Ok(None);
    }
    let digest = secret::digest(token);
    let flow = flows.store.flow_by_link_hash(&digest).await?;
    Ok(flow.filter(|f| secret::same(&f.link_hash, &hex::encode(digest))))
}

/// Records that the link was fetched (a person or a mail scanner). Changes nothing else.
/// Once the flow holds as many visit notes as it keeps, nothing is written at all, so a
/// link fetched over and over costs a read, not a store write.
pub async fn note_visit(
    flows: &Flows,
    flow: &FlowRecord,
    method: &str,
    now: u64,
) -> Result<(), FlowError> {
    if machine::notes_full(flow, "link_visited") {
        return Ok(());
    }
    let visit = Transition::NoteVisit {
        method: method.to_string(),
    };
    change(&flows.store, &flow.id, now, visit).await?;
    Ok(())
}

/// What the button did.
#[derive(Debug)]
pub enum Button {
    /// A code is on its way; keep this binding value in the browser's cookie.
    Mailed {
        binding: String,
    },
    Refused(ButtonRefusal),
}

/// Code mails per flow, whichever browsers asked: the resend interval binds only the
/// browser that asked, so this caps what button-pressing scanners can mail to an inbox.
pub const CODES_PER_FLOW: Rule = Rule {
    max: 10,
    window_ms: 3_600_000,
    lock_ms: 3_600_000,
};

/// The button: mails a new code bound to the asking browser. `held` is the binding the
/// browser already holds (its cookie), which the resend interval is tied to; the first
/// use of a link requested anonymously makes it the address's current flow
/// ([`Supersede::WhenUsed`]).
pub async fn press_button(
    flows: &Flows,
    flow_id: &str,
    held: Option<&str>,
    now: u64,
) -> Result<Button, FlowError> {
    let code = secret::new_code();
    let binding = secret::new_binding();
    let cfg = &flows.config.flows;
    let new = machine::NewCode {
        hash: secret::code_digest_hex(flow_id, &code),
        binding_hash: secret::digest_hex(&binding),
        asked_by: held.map(secret::digest_hex),
        lifetime_ms: cfg.code_lifetime.as_millis() as u64,
        resend_interval_ms: cfg.code_resend_interval.as_millis() as u64,
    };
    let cap = LimitKey::new("code-flow", &[flow_id]);
    if let Take::Refused { until_ms } = flows.store.limit_take(&cap, CODES_PER_FLOW, now).await? {
        return Ok(Button::Refused(ButtonRefusal::TooSoon {
            wait_s: until_ms.saturating_sub(now).div_ceil(1000),
        }));
    }
    let (flow, outcome) = change(&flows.store, flow_id, now, Transition::PressButton(new))
        .await?
        .ok_or_else(|| FlowError::NotFound(flow_id.to_string()))?;
    let Outcome::Button(result) = outcome else {
        unreachable!("the button answers with Outcome::Button, not {outcome:?}")
    };
    if let Err(refusal) = result {
        flows.store.limit_refund(&cap).await?;
        return Ok(Button::Refused(refusal));
    }
    make_current(flows, &flow, now).await?;
    let expires_ms = flow.code.as_ref().map(|c| c.expires_ms).unwrap_or(now);
    let done = enqueue(
        &flows.queue,
        Outgoing {
            to: flow.address.clone(),
            to_name: flow.name.clone(),
            template: "code".into(),
            locale: flow.locale.clone(),
            vars: mail::code_vars(&flows.config, &flow, &code, now, expires_ms),
            lifetime: Some(Duration::from_millis(expires_ms.saturating_sub(now))),
            flow_id: Some(flow.id.clone()),
            not_before_ms: None,
        },
    )
    .await?;
    let added = Transition::AddMessage {
        message_id: done.message_id.to_string(),
    };
    change(&flows.store, flow_id, now, added).await?;
    flows.store.flush().await?;
    Ok(Button::Mailed { binding })
}

/// Counts and decides one code try; durable before it returns.
pub async fn submit_code(
    flows: &Flows,
    flow_id: &str,
    typed: &str,
    binding: Option<&str>,
    now: u64,
) -> Result<CodeOutcome, FlowError> {
    let typed_hash = secret::code_digest_hex(flow_id, &secret::normalise_code(typed));
    let binding_hash = binding.map(secret::digest_hex);
    let try_code = Transition::SubmitCode {
        typed_hash,
        binding_hash,
    };
    let (_, outcome) = change(&flows.store, flow_id, now, try_code)
        .await?
        .ok_or_else(|| FlowError::NotFound(flow_id.to_string()))?;
    flows.store.flush().await?;
    let Outcome::Code(outcome) = outcome else {
        unreachable!("a code try answers with Outcome::Code, not {outcome:?}")
    };
    Ok(outcome)
}

/// True when this browser asked for the flow's current code (holds its binding).
pub fn holds_code(flow: &FlowRecord, binding: Option<&str>) -> bool {
    flow.code.as_ref().is_some_and(|c| {
        binding.is_some_and(|b| secret::same(&secret::digest_hex(b), &c.binding_hash))
    })
}

/// True when this browser may see the password form of the flow.
pub fn may_set_password(flow: &FlowRecord, binding: Option<&str>, now: u64) -> bool {
    let bh = binding.map(secret::digest_hex);
    machine::may_set_password(flow, now, bh.as_deref())
}

/// What setting the password did.
#[derive(Debug)]
pub enum SetPassword {
    Done,
    /// The rules it breaks; nothing was changed.
    Refused(Vec<Problem>),
    /// This browser may not (or no longer) set the password.
    NotAllowed,
}

/// Checks, hashes and stores the new password, completes the flow (using the link up)
/// and mails a "your password was changed" notice.
pub async fn set_password(
    flows: &Flows,
    hasher: &Hasher,
    flow_id: &str,
    password: String,
    again: String,
    binding: Option<&str>,
    now: u64,
) -> Result<SetPassword, FlowError> {
    let store = &flows.store;
    let flow = store
        .flow(flow_id)
        .await?
        .ok_or_else(|| FlowError::NotFound(flow_id.to_string()))?;
    if !may_set_password(&flow, binding, now) {
        return Ok(SetPassword::NotAllowed);
    }
    let address = flow.address.clone();
    let (password, problems) = tokio::task::spawn_blocking(move || {
        let problems = password::check(&password, &again, &address);
        (password, problems)
    })
    .await
    .map_err(|e| HashError::Internal(e.to_string()))?;
    if !problems.is_empty() {
        return Ok(SetPassword::Refused(problems));
    }
    let phc = hasher.hash(password).await?;
    let bh = binding.map(secret::digest_hex);
    let (flow, outcome) = change(
        store,
        flow_id,
        now,
        Transition::Complete { binding_hash: bh },
    )
    .await?
    .ok_or_else(|| FlowError::NotFound(flow_id.to_string()))?;
    if !outcome.changed() {
        return Ok(SetPassword::NotAllowed);
    }
    store
        .put_account(&AccountRecord {
            address: flow.address.clone(),
            password_hash: phc,
            name: flow.name.clone(),
            locale: flow.locale.clone(),
            updated_ms: now,
        })
        .await?;
    store.flush().await?;
    tracing::info!(flow_id, "flow completed; password set");
    let notice = enqueue(
        &flows.queue,
        Outgoing {
            to: flow.address.clone(),
            to_name: flow.name.clone(),
            template: "password_changed".into(),
            locale: flow.locale.clone(),
            vars: mail::changed_vars(&flows.config, &flow, now),
            lifetime: None,
            flow_id: Some(flow.id.clone()),
            not_before_ms: None,
        },
    )
    .await;
    match notice {
        Ok(done) => {
            let added = Transition::AddMessage {
                message_id: done.message_id.to_string(),
            };
            change(store, flow_id, now, added).await?;
            store.flush().await?;
        }
        // The password is set; a notice that cannot be queued must not undo that.
        Err(e) => tracing::error!(flow_id, error = %e, "cannot queue the password-changed notice"),
    }
    Ok(SetPassword::Done)
}

/// A new link for the address of a flow whose link no longer works (expired, used,
/// superseded): a reset when the address has an account, else an invitation.
pub async fn renew(flows: &Flows, flow: &FlowRecord, now: u64) -> Result<Started, FlowError> {
    let has_account = flows
        .store
        .account(&flow.address.to_string())
        .await?
        .is_some();
    let kind = if has_account {
        FlowKind::Reset
    } else {
        FlowKind::Setup
    };
    start(
        flows,
        StartFlow {
            kind,
            address: flow.address.clone(),
            name: flow.name.clone(),
            locale: Some(flow.locale.clone()),
            not_before_ms: None,
            only_if_new: false,
            dry_run: false,
        },
        now,
    )
    .await
}

/// The public "send me a new link" request: a reset link when the address has an
/// account, a new invitation when it was invited but never finished, nothing otherwise.
/// The caller answers the same whatever this finds.
pub async fn request_link(
    flows: &Flows,
    address: Address,
    now: u64,
) -> Result<Option<Started>, FlowError> {
    let text = address.to_string();
    let kind = if flows.store.account(&text).await?.is_some() {
        FlowKind::Reset
    } else if let Some(id) = flows.store.current_flow_id(&text).await?
        && flows.store.flow(&id).await?.is_some()
    {
        // Invited, never finished (a reset needs an account): invited again.
        FlowKind::Setup
    } else {
        return Ok(None);
    };
    start_with(
        flows,
        StartFlow {
            kind,
            address,
            name: None,
            locale: None,
            not_before_ms: None,
            only_if_new: false,
            dry_run: false,
        },
        Supersede::WhenUsed,
        now,
    )
    .await
    .map(Some)
}

/// Checks an address's password (for the application). Unknown addresses take the same
/// work as known ones. A hash made before passwords were normalised is replaced by one
/// of the normalised form once the password is seen to match it.
pub async fn verify_credentials(
    flows: &Flows,
    hasher: &Hasher,
    address: &Address,
    password: String,
) -> Result<bool, FlowError> {
    let text = address.to_string();
    let account = flows.store.account(&text).await?;
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let verdict = hasher.verify(password.clone(), stored.clone()).await?;
    if verdict == Verdict::Stale
        && let Some(account) = account
    {
        let phc = hasher.hash(password).await?;
        // Only if the hash is still the one checked: a password set meanwhile wins.
        if flows.store.account(&text).await?.map(|a| a.password_hash) == stored {
            flows
                .store
                .put_account(&AccountRecord {
                    password_hash: phc,
                    ..account
                })
                .await?;
            flows.store.flush().await?;
        }
    }
    Ok(verdict.is_right())
}

/// A flow as the application and support see it: state, times, messages, timeline;
/// never a digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowView {
    pub flow_id: String,
    pub kind: FlowKind,
    pub address: String,
    pub state: FlowState,
    pub created_at: String,
    pub expires_at: String,
    pub completed_at: Option<String>,
    pub undeliverable_reason: Option<String>,
    pub superseded_by: Option<String>,
    pub message_ids: Vec<String>,
    pub timeline: Vec<FlowNote>,
}

impl FlowView {
    pub fn new(flow: &FlowRecord, now: u64) -> FlowView {
        FlowView {
            flow_id: flow.id.clone(),
            kind: flow.kind,
            address: flow.address.to_string(),
            state: machine::effective_state(flow, now),
            created_at: format_time_ms(flow.created_ms),
            expires_at: format_time_ms(flow.expires_ms),
            completed_at: flow.completed_ms.map(format_time_ms),
            undeliverable_reason: flow.undeliverable_reason.clone(),
            superseded_by: flow.superseded_by.clone(),
            message_ids: flow.message_ids.clone(),
            timeline: flow.notes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventType;

    /// The event a flow's move from `before` to `after` tells.
    fn transition_event(before: FlowState, after: FlowState) -> Option<EventType> {
        let mut flow = FlowRecord::issued(
            "f".into(),
            FlowKind::Setup,
            Address::parse("a@example.jp").unwrap(),
            "en".into(),
            0,
            100,
        );
        let before = machine::Before {
            state: before,
            mailed: false,
        };
        flow.state = after;
        machine::told(before, &flow).0.map(|(kind, _)| kind)
    }

    #[test]
    fn opened_is_told_at_the_first_button_press_only() {
        use FlowState::*;
        assert_eq!(
            transition_event(Mailed, Opened),
            Some(EventType::FlowOpened)
        );
        assert_eq!(transition_event(CodeSent, Opened), None);
        assert_eq!(transition_event(Opened, CodeSent), None);
        assert_eq!(
            transition_event(Issued, Mailed),
            Some(EventType::FlowMailed)
        );
        assert_eq!(transition_event(Completed, Completed), None);
    }

    #[tokio::test]
    async fn the_sweep_expires_lapsed_open_flows_once_and_tells_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let address = Address::parse("a@example.jp").unwrap();
        let lapsed = FlowRecord::issued(
            "f1".into(),
            FlowKind::Setup,
            address.clone(),
            "en".into(),
            0,
            100,
        );
        let running =
            FlowRecord::issued("f2".into(), FlowKind::Setup, address, "en".into(), 0, 1_000);
        store.insert_flow(&lapsed, &[1; 32]).await.unwrap();
        store.insert_flow(&running, &[2; 32]).await.unwrap();
        assert_eq!(expire_due(&store, 500).await.unwrap(), 1);
        assert_eq!(expire_due(&store, 500).await.unwrap(), 0);
        assert_eq!(
            store.flow("f1").await.unwrap().unwrap().state,
            FlowState::Expired
        );
        assert_eq!(
            store.flow("f2").await.unwrap().unwrap().state,
            FlowState::Issued
        );
        let events = store.events_after(0, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, EventType::FlowExpired);
        assert_eq!(events[0].data.flow_id.as_deref(), Some("f1"));
    }
}

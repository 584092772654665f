//! Bounce intake: what happens when a report comes back, whichever door it came through
//! (the SMTP listener, `mailgate bounce ingest`, `POST /api/v1/bounces`).
//!
//! 1. Parse ([`crate::bounce::parse`]).
//! 2. Tie it to a message: by a VERP return path whose MAC checks (authenticated), else
//!    by the returned Message-ID or DSN envelope id, when it names a message of ours to
//!    the same recipient.
//! 3. Apply effects for a permanent failure: the message becomes `bounced`, its flow
//!    `undeliverable`; address reasons (`userunknown`, `hostunknown`, `hasmoved`)
//!    suppress the address; policy and reputation reasons are flagged as the sender's
//!    problem and do not blame the address. Delay notices and temporary failures only
//!    add to the timeline.
//! 4. Record every recipient's result in the bounce log, tied or not, and flush before
//!    the caller acknowledges. A report tied to nothing changes nothing else.

use crate::bounce::{Action, BounceReport, RecipientResult};
use crate::domain::bounce::{
    ADDRESS_REASONS, BounceRecord, BounceSource, SENDER_REASONS, Suppression,
};
use crate::domain::{Event, EventData, EventType, MessageId, MessageRecord, Step, now_ms};
use crate::queue::Lifecycle;
use crate::store::{Store, StoreError};
use crate::verp::VerpKey;

/// What intake touches, and only that: the store, the queue's owner of message status,
/// and the VERP key and names that tie a report to a message of ours. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Intake {
    pub store: Store,
    pub lifecycle: Lifecycle,
    pub verp: VerpKey,
    /// `sender.bounce_domain`: the domain of our VERP return paths.
    pub bounce_domain: String,
    /// `sender.hostname`: the host part of our Message-IDs.
    pub hostname: String,
}

/// Input that is not a mail message at all (empty, binary, no header block).
#[derive(Debug, thiserror::Error)]
#[error("not a mail message, nothing recorded: {0}")]
pub struct NotMail(pub String);

/// Refuses junk before it reaches [`take`], for the doors where a person hands in a file
/// (`mailgate bounce ingest`, `POST /api/v1/bounces`) and can be told why. The SMTP listener
/// records whatever a peer sends, so that a report it cannot read is still on file.
pub fn refuse_junk(raw: &[u8]) -> Result<(), NotMail> {
    match crate::bounce::not_mail(raw) {
        Some(why) => Err(NotMail(why)),
        None => Ok(()),
    }
}

/// What intake did with one report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IntakeResult {
    pub bounce: bool,
    pub kind: Option<String>,
    pub message_id: Option<String>,
    pub authenticated: bool,
    pub recipients: usize,
    pub effects: Vec<String>,
}

/// Finds the message a report is about. `verified` are ids whose VERP MAC the caller
/// already checked (the listener's RCPT TO).
async fn correlate(
    intake: &Intake,
    report: &BounceReport,
    verified: &[MessageId],
) -> Result<(Option<MessageRecord>, bool), StoreError> {
    let store = &intake.store;
    let domain = &intake.bounce_domain;
    let authenticated = verified
        .iter()
        .copied()
        .chain(
            report
                .envelope_to
                .iter()
                .filter_map(|a| intake.verp.verify(a, domain)),
        )
        .next();
    if let Some(id) = authenticated {
        return Ok((store.message(&id).await?, true));
    }
    // Unauthenticated: the returned Message-ID under our host name, or our ENVID.
    let host = &intake.hostname;
    let by_header = report.original_message_id.as_deref().and_then(|m| {
        let m = m.trim_matches(['<', '>']);
        let (_, h) = m.rsplit_once('@')?;
        h.eq_ignore_ascii_case(host)
            .then(|| MessageId::parse(m))
            .flatten()
    });
    let by_envid = report
        .original_envelope_id
        .as_deref()
        .and_then(MessageId::parse);
    for id in by_header.into_iter().chain(by_envid) {
        if let Some(record) = store.message(&id).await? {
            return Ok((Some(record), false));
        }
    }
    Ok((None, false))
}

/// Takes one raw report through parsing, correlation, effects and recording.
pub async fn take(
    intake: &Intake,
    raw: &[u8],
    source: BounceSource,
    verified: &[MessageId],
) -> Result<IntakeResult, StoreError> {
    let report = crate::bounce::parse(raw);
    let now = now_ms();
    let (mut message, authenticated) = correlate(intake, &report, verified).await?;
    let kind = report.kind.map(|k| format!("{k:?}").to_lowercase());
    let mut all_effects = Vec::new();
    let recipients: Vec<Option<&RecipientResult>> = if report.recipients.is_empty() {
        vec![None]
    } else {
        report.recipients.iter().map(Some).collect()
    };
    for r in &recipients {
        let mut record = BounceRecord {
            at_ms: now,
            source,
            kind: kind.clone(),
            authenticated,
            message_id: message.as_ref().map(|m| m.id.to_string()),
            flow_id: message.as_ref().and_then(|m| m.flow_id.clone()),
            address: r.map(|r| r.address.clone()).filter(|a| !a.is_empty()),
            recipient_domain: r.and_then(|r| {
                r.address
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
            }),
            action: r.map(|r| format!("{:?}", r.action).to_lowercase()),
            status: r.and_then(|r| r.status.clone()),
            permanent: r.is_some_and(|r| r.permanent),
            reason: r.and_then(|r| r.reason.clone()),
            diagnostic: r.and_then(|r| r.diagnostic.clone()),
            remote_mta: r.and_then(|r| r.remote_mta.clone()),
            sender_problem: r
                .and_then(|r| r.reason.as_deref())
                .is_some_and(|reason| SENDER_REASONS.contains(&reason) && report.bounce),
            effects: Vec::new(),
        };
        // The event this report calls for, written with its record.
        let mut told = None;
        match (&mut message, r) {
            (Some(m), Some(r)) if report.bounce && same_recipient(m, r, report.recipients.len()) => {
                record.effects = apply(intake, m, r, &record, now).await?;
                if record.address.is_none() {
                    record.address = Some(m.to.to_string());
                }
            }
            (Some(m), _) if report.kind == Some(crate::bounce::ReportKind::Arf) => {
                // A complaint changes nothing here; the application hears of it.
                let data = EventData {
                    reason: record.reason.clone().or_else(|| Some("feedback".into())),
                    ..EventData::of_message(m)
                };
                told = Some(Store::new_event(EventType::MessageComplaint, data, now));
                record.effects.push("a complaint: recorded, and told as message.complaint".into());
            }
            (Some(_), _) if !report.bounce => record.effects.push("not a bounce (a complaint or an automatic reply): recorded only".into()),
            (Some(_), _) => record.effects.push("names another recipient than the message's: recorded only".into()),
            (None, _) => record
                .effects
                .push("could not be tied to a message of ours (no valid VERP MAC, unknown Message-ID): recorded only".into()),
        }
        all_effects.extend(record.effects.iter().cloned());
        intake.store.insert_bounce(&record, told).await?;
    }
    intake.store.flush().await?;
    tracing::info!(
        kind = kind.as_deref().unwrap_or("none"),
        authenticated,
        msg_id = message
            .as_ref()
            .map(|m| m.id.to_string())
            .unwrap_or_default(),
        "bounce taken in"
    );
    Ok(IntakeResult {
        bounce: report.bounce,
        kind,
        message_id: message.map(|m| m.id.to_string()),
        authenticated,
        recipients: report.recipients.len(),
        effects: all_effects,
    })
}

/// The report's recipient is the message's (or the report names only one recipient,
/// which some MTAs rewrite).
fn same_recipient(m: &MessageRecord, r: &RecipientResult, count: usize) -> bool {
    r.address.is_empty() || r.address.eq_ignore_ascii_case(&m.to.to_string()) || count == 1
}

/// The effects of one recipient's result on its message.
async fn apply(
    intake: &Intake,
    m: &mut MessageRecord,
    r: &RecipientResult,
    record: &BounceRecord,
    now: u64,
) -> Result<Vec<String>, StoreError> {
    let store = &intake.store;
    let mut effects = Vec::new();
    let mut event = Event::new(Step::Bounced, now);
    event.enhanced_status = r.status.clone();
    event.smtp_code = r.reply_code;
    event.reply = r.diagnostic.clone();
    event.remote_host = r.remote_mta.clone();
    let reason = r.reason.clone().unwrap_or_else(|| "undefined".into());
    if r.action == Action::Delayed || (r.action == Action::Failed && !r.permanent) {
        event.step = Some(Step::DelayReported);
        event.detail = Some(
            crate::domain::Detail::DelayReported {
                mta: r.remote_mta.clone(),
                reason: reason.clone(),
            }
            .to_string(),
        );
        intake.lifecycle.note_delay(m, event).await?;
        effects.push("delay noted in the timeline".into());
        return Ok(effects);
    }
    if r.action != Action::Failed {
        return Ok(vec![
            format!("a {:?} notice: nothing to change", r.action).to_lowercase(),
        ]);
    }
    event.detail = Some(
        crate::domain::Detail::Bounced {
            reason: reason.clone(),
            authenticated: record.authenticated,
        }
        .to_string(),
    );
    let reply = r.diagnostic.clone().or_else(|| Some(reason.clone()));
    let changed = intake.lifecycle.bounce(m, reply, event).await?;
    effects.push(format!("message {} marked bounced", m.id));
    effects.extend(changed);
    if ADDRESS_REASONS.contains(&reason.as_str()) {
        store
            .add_suppression(
                &Suppression {
                    address: m.to.to_string(),
                    since_ms: now,
                    reason: reason.clone(),
                    evidence: r
                        .diagnostic
                        .clone()
                        .unwrap_or_else(|| r.status.clone().unwrap_or_default()),
                    message_id: Some(m.id.to_string()),
                },
                now,
            )
            .await?;
        effects.push(format!("{} suppressed ({reason})", m.to));
    } else if record.sender_problem {
        effects.push(format!("the receiver refused the sender ({reason}): flagged for the admin; the address is not suppressed"));
    }
    Ok(effects)
}

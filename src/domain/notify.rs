//! What the application is told: events (a flow or a message changed, an address was
//! suppressed) and the webhook deliveries that carry them.
//!
//! An event is written in the same store commit as the change it describes, and gets a
//! sequence number from the store that only grows, so the feed (`after=SEQ`) and the
//! webhook sender read them in order without gaps. Its payload is a fixed set of typed
//! fields (ids, address, flow kind, reason, SMTP status and reply, remote host): there is
//! no field a token, a code, a password or a body could go into.
//!
//! Named `notify` because [`super::Event`] is already a message's timeline step.

use serde::{Deserialize, Serialize};

use super::{FlowKind, FlowRecord, MessageRecord, format_time_ms};

/// The kinds of event, as named on the wire (`flow.mailed`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "flow.mailed")]
    FlowMailed,
    #[serde(rename = "flow.opened")]
    FlowOpened,
    #[serde(rename = "flow.completed")]
    FlowCompleted,
    #[serde(rename = "flow.undeliverable")]
    FlowUndeliverable,
    #[serde(rename = "flow.expired")]
    FlowExpired,
    #[serde(rename = "flow.locked")]
    FlowLocked,
    #[serde(rename = "flow.superseded")]
    FlowSuperseded,
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    #[serde(rename = "message.deferred")]
    MessageDeferred,
    #[serde(rename = "message.failed")]
    MessageFailed,
    #[serde(rename = "message.bounced")]
    MessageBounced,
    #[serde(rename = "message.expired")]
    MessageExpired,
    #[serde(rename = "message.complaint")]
    MessageComplaint,
    #[serde(rename = "suppression.added")]
    SuppressionAdded,
    #[serde(rename = "suppression.removed")]
    SuppressionRemoved,
}

impl EventType {
    /// Every type, in the order the README lists them.
    pub const ALL: [EventType; 15] = [
        EventType::FlowMailed,
        EventType::FlowOpened,
        EventType::FlowCompleted,
        EventType::FlowUndeliverable,
        EventType::FlowExpired,
        EventType::FlowLocked,
        EventType::FlowSuperseded,
        EventType::MessageDelivered,
        EventType::MessageDeferred,
        EventType::MessageFailed,
        EventType::MessageBounced,
        EventType::MessageExpired,
        EventType::MessageComplaint,
        EventType::SuppressionAdded,
        EventType::SuppressionRemoved,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::FlowMailed => "flow.mailed",
            EventType::FlowOpened => "flow.opened",
            EventType::FlowCompleted => "flow.completed",
            EventType::FlowUndeliverable => "flow.undeliverable",
            EventType::FlowExpired => "flow.expired",
            EventType::FlowLocked => "flow.locked",
            EventType::FlowSuperseded => "flow.superseded",
            EventType::MessageDelivered => "message.delivered",
            EventType::MessageDeferred => "message.deferred",
            EventType::MessageFailed => "message.failed",
            EventType::MessageBounced => "message.bounced",
            EventType::MessageExpired => "message.expired",
            EventType::MessageComplaint => "message.complaint",
            EventType::SuppressionAdded => "suppression.added",
            EventType::SuppressionRemoved => "suppression.removed",
        }
    }

    /// The type named `name`, if there is one.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is about. Every field is optional and left out when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_kind: Option<FlowKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The message's template (`invite`, `code`, `notice`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why, in words for people (a bounce reason, why a flow ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced_status: Option<String>,
    /// The receiving server's reply, one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<String>,
    /// The attempt a message event follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The flow that replaced a superseded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

impl EventData {
    /// The ids and address of a flow.
    pub fn of_flow(flow: &FlowRecord) -> EventData {
        EventData {
            flow_id: Some(flow.id.clone()),
            flow_kind: Some(flow.kind),
            address: Some(flow.address.to_string()),
            ..EventData::default()
        }
    }

    /// The ids, template and address of a message.
    pub fn of_message(record: &MessageRecord) -> EventData {
        EventData {
            message_id: Some(record.id.to_string()),
            flow_id: record.flow_id.clone(),
            template: Some(record.template.clone()),
            address: Some(record.to.to_string()),
            ..EventData::default()
        }
    }
}

/// One event as stored and as sent: `{"id", "seq", "type", "timestamp", "data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// `evt_` and 24 hex digits; the `webhook-id` of its deliveries.
    pub id: String,
    /// Given by the store when the event is appended; 0 before.
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339 UTC.
    pub timestamp: String,
    pub data: EventData,
}

impl EventRecord {
    /// A new event of `kind` at `now_ms`, with an id from `id` (random; see
    /// `secrets::new_event_id`).
    pub fn new(id: String, kind: EventType, now_ms: u64, data: EventData) -> EventRecord {
        EventRecord {
            id,
            seq: 0,
            kind,
            timestamp: format_time_ms(now_ms),
            data,
        }
    }

    /// When it happened (ms since the epoch), read back from `timestamp`; `None` when
    /// the stored text is not RFC 3339.
    pub fn time_ms(&self) -> Option<u64> {
        chrono::DateTime::parse_from_rfc3339(&self.timestamp)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
    }
}

/// Where a webhook delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next try.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every try failed over about three days, or the endpoint is disabled: kept to be
    /// seen and replayed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One event on its way to one webhook endpoint, keyed by (endpoint, event seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// The endpoint's URL, as configured.
    pub endpoint: String,
    pub event_id: String,
    pub event_seq: u64,
    pub event_type: EventType,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When it is tried next, while pending.
    pub next_try_ms: Option<u64>,
    pub created_ms: u64,
    pub last_try_ms: Option<u64>,
    /// The endpoint's HTTP status at the last try.
    pub last_status: Option<u16>,
    /// Why the last try failed (a timeout, a refused address, a status).
    pub last_error: Option<String>,
}

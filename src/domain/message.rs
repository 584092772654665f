//! A queued message and its timeline, as stored and as shown to support staff.
//!
//! Delivery status is data (as in stalwart's queue): the record keeps the status, the
//! attempt count, when the next try is due and the last reply; every step also appends an
//! [`Event`] with the SMTP facts (code, enhanced status, reply, host, IP, TLS), so the
//! timeline can answer "what happened to the mail for this address?" without logs.

use serde::{Deserialize, Serialize};

use super::{Address, MessageId};

/// Where a message is in its life. `Queued`, `Sending` and `Deferred` are open;
/// the rest are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its first try.
    Queued,
    /// Claimed by a worker; a restart retries it.
    Sending,
    /// A try failed temporarily; another is scheduled.
    Deferred,
    /// A server accepted it (2xx after DATA), or it was written to the outbox.
    Delivered,
    /// A server refused it permanently (5xx).
    Failed,
    /// Its lifetime ended before any server accepted it.
    Expired,
    /// Accepted, then a bounce came back for it.
    Bounced,
    /// Cancelled by an operator.
    Cancelled,
    /// Not sent: the address is on the suppression list.
    Suppressed,
}

impl MessageStatus {
    /// True for the states that still expect a delivery attempt.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            MessageStatus::Queued | MessageStatus::Sending | MessageStatus::Deferred
        )
    }

    /// The lower-case name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Expired => "expired",
            MessageStatus::Bounced => "bounced",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Suppressed => "suppressed",
        }
    }
}

/// The stored record of one message (its bytes are kept apart, see the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub to: Address,
    /// The Message-ID header value, without brackets.
    pub message_id_header: String,
    pub template: String,
    pub locale: String,
    pub subject: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// After this the message is not tried again (a code mail lives as long as its code).
    pub expires_ms: u64,
    pub status: MessageStatus,
    pub attempts: u32,
    /// The queue key's due time while the message is open.
    pub due_ms: Option<u64>,
    /// The last SMTP reply or error, one line.
    pub last_reply: Option<String>,
    /// The flow this message belongs to, if any.
    pub flow_id: Option<String>,
    /// What happened to the message, oldest first. Kept in the record, which is written
    /// at every step anyway: a separate event write per step was a tenth of the CPU per
    /// message (issue 4).
    #[serde(default)]
    pub timeline: Vec<Event>,
    pub size: usize,
    /// The header block as signed, without the body (the body holds the link or the
    /// code): the console's message view shows it after the bytes are gone. `None` for
    /// messages stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<String>,
}

/// The header block of a raw message: everything before the first empty line, as text.
/// Never the body.
pub fn header_block(raw: &[u8]) -> String {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl MessageRecord {
    /// Appends a step to the timeline (the caller writes the record).
    pub fn push_event(&mut self, event: Event) {
        self.timeline.push(event);
    }

    /// A queued `notice` to `to`, created and due at `created_ms`, for unit tests.
    #[cfg(test)]
    pub(crate) fn example(to: &str, created_ms: u64) -> MessageRecord {
        MessageRecord {
            id: MessageId::random(),
            to: Address::parse(to).unwrap(),
            message_id_header: "x@mail.example.jp".into(),
            template: "notice".into(),
            locale: "en".into(),
            subject: "s".into(),
            created_ms,
            expires_ms: created_ms + 1000,
            status: MessageStatus::Queued,
            attempts: 0,
            due_ms: Some(created_ms),
            last_reply: None,
            flow_id: None,
            timeline: Vec::new(),
            size: 1,
            headers: None,
        }
    }
}

/// What happened in one step of a message's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Queued,
    Delivered,
    Deferred,
    Failed,
    Expired,
    Bounced,
    /// A delay notice (DSN action "delayed") arrived: the timeline only.
    DelayReported,
    Cancelled,
    RetryRequested,
    Suppressed,
    /// Tried again after a restart found it in flight.
    Recovered,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Queued => "queued",
            Step::Delivered => "delivered",
            Step::Deferred => "deferred",
            Step::Failed => "failed",
            Step::Expired => "expired",
            Step::Bounced => "bounced",
            Step::DelayReported => "delay_reported",
            Step::Cancelled => "cancelled",
            Step::RetryRequested => "retry_requested",
            Step::Suppressed => "suppressed",
            Step::Recovered => "recovered",
        }
    }
}

/// One entry of a message's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Anything else worth reading: an error, the outbox file, the next try, who acted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    /// An event with only a step and a time.
    pub fn new(step: Step, at_ms: u64) -> Event {
        Event {
            at_ms,
            step: Some(step),
            ..Event::default()
        }
    }

    /// Adds detail text.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }
}

#[cfg(test)]
mod header_tests {
    use super::header_block;

    #[test]
    fn the_header_block_stops_at_the_first_empty_line() {
        let raw = b"Subject: hi\r\nTo: a@b.jp\r\n\r\nhttps://x/v/SECRET\r\n\r\nmore";
        assert_eq!(header_block(raw), "Subject: hi\r\nTo: a@b.jp\r\n");
        assert_eq!(header_block(b"A: 1\n\nbody"), "A: 1\n");
        assert_eq!(header_block(b"A: 1\r\n"), "A: 1\r\n");
    }
}

//! Plain types shared by every other module: addresses, identifiers, statuses.
//! Nothing here does I/O, so everything here can be tested with values alone.

pub mod address;
pub mod apikey;
pub mod audit;
pub mod bounce;
pub mod detail;
pub mod duration;
pub mod flow;
pub mod ids;
pub mod message;
pub mod notify;
pub mod provider;
pub mod tally;
pub mod transition;

pub use address::{Address, AddressError, AddressPattern, Mailbox};
pub use detail::Detail;
pub use flow::{AccountRecord, CodeRecord, FlowKind, FlowNote, FlowRecord, FlowState};
pub use ids::MessageId;
pub use message::{Event, MessageRecord, MessageStatus, Step, header_block};
pub use notify::{DeliveryState, EventData, EventRecord, EventType, WebhookDelivery};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A time as RFC 3339 UTC text, for events and messages.
pub fn format_time_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

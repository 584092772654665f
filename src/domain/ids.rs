//! Identifiers. A message id is 128 random bits from the OS RNG, written as 32 lower-case
//! hex digits; it names the message in the store, in the VERP return path and (with the
//! sending host name) in the Message-ID header, so one value answers every lookup.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The id of one queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId([u8; 16]);

impl MessageId {
    /// A fresh id from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS):
    /// one is made per message, and asking the OS each time cost a system call.
    pub fn random() -> MessageId {
        let mut b = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut b);
        MessageId(b)
    }

    /// The raw bytes, as used in store keys.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Rebuilds an id from store-key bytes.
    pub fn from_bytes(b: [u8; 16]) -> MessageId {
        MessageId(b)
    }

    /// Parses the 32-hex-digit form; also accepts a full Message-ID header value
    /// (`<hex@host>`), so support can paste whichever they have.
    pub fn parse(s: &str) -> Option<MessageId> {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let hex_part = s.split('@').next().unwrap_or("");
        if hex_part.len() != 32 {
            return None;
        }
        let v = hex::decode(hex_part).ok()?;
        let mut b = [0u8; 16];
        b.copy_from_slice(&v);
        Some(MessageId(b))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl TryFrom<String> for MessageId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        MessageId::parse(&s).ok_or_else(|| format!("{s:?} is not a message id"))
    }
}

impl From<MessageId> for String {
    fn from(m: MessageId) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_header_form() {
        let id = MessageId::random();
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        assert_eq!(
            MessageId::parse(&format!("<{id}@mail.example.jp>")),
            Some(id)
        );
        assert_ne!(MessageId::random(), id);
        assert_eq!(MessageId::parse("xyz"), None);
    }
}

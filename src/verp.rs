//! VERP return paths: `bounce+<message id>-<mac>@<bounce domain>`.
//!
//! Each message gets its own return path, so a bounce names the message it is about
//! even when the report itself is unreadable. The MAC (HMAC-SHA256 of the id under a
//! secret, truncated to 80 bits, hex) makes the address unforgeable: the bounce
//! listener accepts mail only for addresses whose MAC checks, and an attacker cannot
//! make mailgate believe a message bounced. Compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::MessageId;

/// Bytes of the HMAC kept in the address.
const MAC_BYTES: usize = 10;

/// The VERP secret.
#[derive(Clone)]
pub struct VerpKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for VerpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerpKey(..)")
    }
}

impl VerpKey {
    pub fn new(secret: Vec<u8>) -> VerpKey {
        VerpKey { secret }
    }

    fn mac(&self, id: &MessageId) -> [u8; MAC_BYTES] {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        m.update(b"mailgate-verp-v1:");
        m.update(id.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// The return path for a message.
    pub fn address(&self, id: &MessageId, bounce_domain: &str) -> String {
        format!("bounce+{id}-{}@{bounce_domain}", hex::encode(self.mac(id)))
    }

    /// The message id named by a return path, if the address is one of ours for
    /// `bounce_domain` and its MAC is right. `None` for anything else.
    pub fn verify(&self, address: &str, bounce_domain: &str) -> Option<MessageId> {
        let (local, domain) = address.trim().trim_matches(['<', '>']).rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(bounce_domain) {
            return None;
        }
        let rest = local
            .strip_prefix("bounce+")
            .or_else(|| local.strip_prefix("BOUNCE+"))?;
        let (id_text, mac_text) = rest.split_once('-')?;
        let id = MessageId::parse(&id_text.to_ascii_lowercase())?;
        let given = hex::decode(mac_text.to_ascii_lowercase()).ok()?;
        let expected = self.mac(&id);
        (given.len() == MAC_BYTES && bool::from(given.as_slice().ct_eq(&expected))).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_verifies_and_a_forged_one_does_not() {
        let key = VerpKey::new(b"secret".to_vec());
        let id = MessageId::random();
        let addr = key.address(&id, "bounces.example.jp");
        assert_eq!(key.verify(&addr, "bounces.example.jp"), Some(id));
        assert_eq!(
            key.verify(&addr.to_uppercase(), "bounces.example.jp"),
            Some(id)
        );
        assert_eq!(key.verify(&addr, "other.example.jp"), None);
        let other = VerpKey::new(b"other".to_vec());
        assert_eq!(other.verify(&addr, "bounces.example.jp"), None);
        let forged = format!("bounce+{id}-00000000000000000000@bounces.example.jp");
        assert_eq!(key.verify(&forged, "bounces.example.jp"), None);
        assert_eq!(
            key.verify("postmaster@bounces.example.jp", "bounces.example.jp"),
            None
        );
    }
}

//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256>` over
//! `id.timestamp.body`, keyed with the bytes of a `whsec_<base64>` secret. Pure, so the
//! spec's own example is a test.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A signing secret's key bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret was refused (never quoting it).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret does not start with \"whsec_\"")]
    Prefix,
    #[error("the part after \"whsec_\" is not base64")]
    Base64,
    #[error("the secret holds {0} bytes; at least 24 are needed (Standard Webhooks: 24 to 64)")]
    Short(usize),
}

impl Secret {
    /// Reads `whsec_<base64>` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let b64 = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
        if key.len() < 24 {
            return Err(SecretError::Short(key.len()));
        }
        Ok(Secret(key))
    }

    /// A new random secret, as `whsec_<base64>` (32 bytes).
    pub fn generate() -> String {
        format!(
            "whsec_{}",
            STANDARD.encode(hex::decode(crate::secrets::random_hex::<32>()).unwrap_or_default())
        )
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_the_same() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_without_its_prefix_or_too_short_is_refused() {
        assert!(matches!(
            Secret::parse("MfKQ9r8G"),
            Err(SecretError::Prefix)
        ));
        assert!(matches!(
            Secret::parse("whsec_AAAA"),
            Err(SecretError::Short(3))
        ));
        assert!(Secret::parse(&Secret::generate()).is_ok());
    }
}

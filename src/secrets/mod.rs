//! Secrets, in one place: link tokens, codes, browser bindings, session and API tokens,
//! request ids. Each comes from the OS RNG; only its SHA-256 is stored, and a stored
//! digest is compared with a presented one in constant time (`subtle`), so neither a
//! copy of the store nor the timing of an answer gives a secret away. Passwords are
//! hashed in [`passwords`], one argon2id set-up for all of them.

pub mod passwords;

use base64::Engine;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a link token: 192 bits, well over the 128 the design asks for.
const TOKEN_BYTES: usize = 24;

/// A fresh link token, URL-safe base64 (32 characters).
pub fn new_token() -> String {
    let mut b = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// True when `s` has the shape of a link token; anything else is not looked up at all.
pub fn looks_like_token(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `N` random bytes from the OS RNG, as hex.
pub fn random_hex<const N: usize>() -> String {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A fresh 256-bit token (sessions, CSRF values, API keys), as hex.
pub fn random_token() -> String {
    random_hex::<32>()
}

/// A fresh request id (64 bits, hex): shown with an error and logged with its details,
/// so the two can be matched without the details reaching the answer.
pub fn request_id() -> String {
    random_hex::<8>()
}

/// A fresh flow id: 128 random bits as 32 hex digits.
pub fn new_flow_id() -> String {
    random_hex::<16>()
}

/// A fresh browser-binding value (128 bits, hex), kept in the browser's cookie.
pub fn new_binding() -> String {
    new_flow_id()
}

/// A fresh 6-digit code, uniform over 000000–999999.
pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// SHA-256 of a secret.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// SHA-256 of a secret, hex, as stored.
pub fn digest_hex(secret: &str) -> String {
    hex::encode(digest(secret))
}

/// The stored form of a code: the digest of the flow id and the code, so equal codes of
/// two flows do not share a digest.
pub fn code_digest_hex(flow_id: &str, code: &str) -> String {
    digest_hex(&format!("{flow_id}:{code}"))
}

/// Constant-time equality of two secrets or digests (the length is not secret). An
/// empty value matches nothing, not even another empty one: a missing cookie and a
/// missing form field must not pass a check together.
pub fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Keeps only the digits of what a person typed as a code ("123 456" → "123456").
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            // Full-width digits, as a Japanese keyboard may type them.
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_recognisable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("../../etc/passwd"));
        assert_eq!(new_code().len(), 6);
    }

    #[test]
    fn code_digests_depend_on_the_flow_and_compare_equal_only_when_equal() {
        let x = code_digest_hex("f1", "123456");
        assert!(same(&x, &code_digest_hex("f1", "123456")));
        assert!(!same(&x, &code_digest_hex("f2", "123456")));
        assert!(!same(&x, &code_digest_hex("f1", "123457")));
        assert_eq!(normalise_code(" 12 34５６ "), "123456");
        assert!(!same("", ""), "an empty value matches nothing");
    }
}

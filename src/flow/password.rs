//! Passwords: the rules a new one must meet, and argon2id hashing off the async threads.
//!
//! Every password is NFKC-normalised before it is checked, counted or hashed (NIST SP
//! 800-63B-4 §3.1.1.2): a Japanese input method types full-width spaces and letters, and
//! a phone may send kana decomposed, yet the person typed the same password. Hashes made
//! before normalisation still verify: the normalised form is tried, then the raw one,
//! and a match on the raw one is reported so the caller re-hashes ([`Verdict::Stale`]).
//!
//! Rules (DESIGN.md): 12 to 128 characters (after normalisation), a zxcvbn score of 3
//! or more, and not the address or its local part; no composition rules. Hashing uses argon2id at
//! m=19456 KiB, t=2, p=1 (OWASP's minimum). Each hash holds 19 MiB for tens of
//! milliseconds, so hashes run on blocking threads behind a semaphore: a burst neither
//! stalls the pages nor exhausts memory. A request that cannot get a permit within
//! [`Hasher::wait`] gets [`HashError::Busy`], which the pages show as a friendly 503.

use crate::domain::Address;
pub use crate::secrets::passwords::{HashError, Hasher, Verdict, hash_phc, normalise, verify_phc};

/// The shortest password accepted (characters).
pub const MIN_CHARS: usize = 12;
/// The longest password accepted (characters).
pub const MAX_CHARS: usize = 128;
/// The lowest zxcvbn score accepted (0–4).
pub const MIN_SCORE: u8 = 3;

/// Why a new password is refused. Several may apply at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    TooShort,
    TooLong,
    /// zxcvbn thinks it easy to guess.
    TooWeak,
    /// It contains the address or its local part.
    ContainsAddress,
    /// The two copies typed differ.
    Mismatch,
}

impl Problem {
    /// A stable name, used by the pages to pick their wording.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::TooShort => "too_short",
            Problem::TooLong => "too_long",
            Problem::TooWeak => "too_weak",
            Problem::ContainsAddress => "contains_address",
            Problem::Mismatch => "mismatch",
        }
    }
}

/// Checks a new password against the rules, on its normalised form; every problem
/// found is returned. Runs zxcvbn, which takes milliseconds: call it from a blocking
/// thread.
pub fn check(password: &str, again: &str, address: &Address) -> Vec<Problem> {
    let (password, again) = (normalise(password), normalise(again));
    let (password, again) = (password.as_str(), again.as_str());
    let mut problems = Vec::new();
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        problems.push(Problem::TooShort);
    }
    if chars > MAX_CHARS {
        problems.push(Problem::TooLong);
    }
    let lower = password.to_lowercase();
    let address_text = address.to_string().to_lowercase();
    let local = address.local().to_lowercase();
    if lower.contains(&address_text) || (local.chars().count() >= 3 && lower.contains(&local)) {
        problems.push(Problem::ContainsAddress);
    }
    if (MIN_CHARS..=MAX_CHARS).contains(&chars) {
        let inputs = [address_text.as_str(), local.as_str(), address.domain()];
        if u8::from(zxcvbn::zxcvbn(password, &inputs).score()) < MIN_SCORE {
            problems.push(Problem::TooWeak);
        }
    }
    if password != again {
        problems.push(Problem::Mismatch);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::passwords::samples::*;

    fn addr() -> Address {
        Address::parse("hanako.yamada@clinic.example.jp").unwrap()
    }

    #[test]
    fn the_rules_name_each_problem() {
        assert_eq!(check("short", "short", &addr()), vec![Problem::TooShort]);
        assert!(check("password1234", "password1234", &addr()).contains(&Problem::TooWeak));
        assert!(
            check(
                "hanako.yamada-was-here-2024!",
                "hanako.yamada-was-here-2024!",
                &addr()
            )
            .contains(&Problem::ContainsAddress)
        );
        let long = "x".repeat(129);
        assert!(check(&long, &long, &addr()).contains(&Problem::TooLong));
        assert_eq!(
            check(
                "correct horse battery staple",
                "correct horse battery stapel",
                &addr()
            ),
            vec![Problem::Mismatch]
        );
        assert!(
            check(
                "correct horse battery staple",
                "correct horse battery staple",
                &addr()
            )
            .is_empty()
        );
    }

    #[test]
    fn full_width_and_decomposed_forms_are_the_same_password() {
        let phc = hash_phc(ASCII_SPACES).unwrap();
        assert_eq!(verify_phc(&phc, FULL_WIDTH_SPACES), Verdict::Right);
        assert_eq!(verify_phc(&phc, DECOMPOSED), Verdict::Right);
        let phc = hash_phc(DECOMPOSED).unwrap();
        assert_eq!(verify_phc(&phc, ASCII_SPACES), Verdict::Right);
        assert_eq!(verify_phc(&phc, "みかん 電車 雪だるま 湊"), Verdict::Wrong);
        // Full-width letters count as the letters they are.
        assert_eq!(normalise("ｐａｓｓｗｏｒｄ１２３４"), "password1234");
        assert!(
            check("ｐａｓｓｗｏｒｄ１２３４", "password1234", &addr()).contains(&Problem::TooWeak)
        );
        assert!(!check(FULL_WIDTH_SPACES, ASCII_SPACES, &addr()).contains(&Problem::Mismatch));
    }
}

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

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

use crate::domain::Address;

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

/// The form of a password that is checked and hashed: NFKC (full-width `Ａ` and `　`
/// become `A` and a space, a decomposed `か゛` becomes `が`).
pub fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Wrong,
    Right,
    /// Right, but the hash is of the password as typed before normalisation: hash the
    /// normalised form and store that.
    Stale,
}

impl Verdict {
    pub fn is_right(self) -> bool {
        self != Verdict::Wrong
    }
}

/// Checks `password` against a PHC string (blocking: argon2 takes tens of milliseconds,
/// twice when the normalised form differs from the typed one and does not match). The
/// PHC string carries its own parameters, so operator and account hashes both use it.
pub fn verify_phc(phc: &str, password: &str) -> Verdict {
    let Ok(hash) = PasswordHash::new(phc) else {
        return Verdict::Wrong;
    };
    let matches = |candidate: &str| {
        argon2()
            .verify_password(candidate.as_bytes(), &hash)
            .is_ok()
    };
    let normal = normalise(password);
    if matches(&normal) {
        Verdict::Right
    } else if normal != password && matches(password) {
        Verdict::Stale
    } else {
        Verdict::Wrong
    }
}

/// Hashes a password's normalised form with argon2id (blocking).
pub fn hash_phc(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(normalise(password).as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Internal(e.to_string()))
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

/// Hashing failures.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many passwords are being checked at once; try again in a moment")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// argon2id with the parameters above, on blocking threads under a concurrency limit.
#[derive(Clone, Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    wait: Duration,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, verified against when an address has no account,
/// so "no such account" takes as long as "wrong password".
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2()
            .hash_password(crate::flow::secret::new_token().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl Hasher {
    /// At most `concurrent` hashes at once; a request waits up to `wait` for its turn.
    pub fn new(concurrent: usize, wait: Duration) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            wait,
        }
    }

    /// Sized for this machine: one hash per core, at least two.
    pub fn for_this_machine() -> Hasher {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Hasher::new(cores.max(2), Duration::from_secs(5))
    }

    /// How long a request waits for a permit before it is told the server is busy.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|e| HashError::Internal(e.to_string()))?;
        let out = tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashError::Internal(e.to_string()))?;
        Ok(out)
    }

    /// Hashes a new password's normalised form; the PHC string carries salt and
    /// parameters.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_phc(&password)).await?
    }

    /// Checks a password against a stored hash; with no hash, checks against a decoy
    /// (same work) and answers wrong.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verdict, HashError> {
        self.run(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| decoy().to_string());
            let verdict = verify_phc(&phc, &password);
            if known { verdict } else { Verdict::Wrong }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_an_unknown_account_never_does() {
        let h = Hasher::new(2, Duration::from_secs(30));
        let phc = h.hash("correct horse battery staple".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            h.verify("correct horse battery staple".into(), Some(phc.clone()))
                .await
                .unwrap(),
            Verdict::Right
        );
        assert_eq!(
            h.verify("wrong horse battery staple".into(), Some(phc))
                .await
                .unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            h.verify("anything".into(), None).await.unwrap(),
            Verdict::Wrong
        );
    }

    /// Set with ASCII spaces, typed with an IME's full-width spaces; set decomposed,
    /// typed composed.
    const ASCII_SPACES: &str = "みかん 電車 雪だるま 港";
    const FULL_WIDTH_SPACES: &str = "みかん\u{3000}電車\u{3000}雪だるま\u{3000}港";
    const DECOMPOSED: &str = "みかん 電車 雪た\u{3099}るま 港";

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

    #[test]
    fn a_hash_of_the_raw_form_still_verifies_and_asks_to_be_redone() {
        // A hash made before normalisation: of the password exactly as typed.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let old = argon2()
            .hash_password(FULL_WIDTH_SPACES.as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(verify_phc(&old, FULL_WIDTH_SPACES), Verdict::Stale);
        assert_eq!(verify_phc(&old, ASCII_SPACES), Verdict::Wrong);
        let new = hash_phc(FULL_WIDTH_SPACES).unwrap();
        assert_eq!(verify_phc(&new, ASCII_SPACES), Verdict::Right);
    }

    #[tokio::test]
    async fn excess_work_is_told_the_server_is_busy() {
        let h = Hasher::new(1, Duration::from_millis(1));
        let held = h.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(h.hash("x".into()).await, Err(HashError::Busy)));
        drop(held);
    }
}

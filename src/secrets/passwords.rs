//! Password hashing, one set-up for every password mailgate keeps (a person's and an
//! operator's): argon2id at m=19456 KiB, t=2, p=1 (OWASP's minimum), on blocking threads
//! under one process-wide concurrency limit ([`Hasher::shared`]), since each hash holds
//! 19 MiB for tens of milliseconds.
//!
//! Every password is NFKC-normalised before it is hashed or checked (NIST SP 800-63B-4
//! §3.1.1.2): a Japanese input method types full-width spaces and letters, and a phone
//! may send kana decomposed, yet the person typed the same password. Hashes made before
//! normalisation still verify: the normalised form is tried, then the raw one, and a
//! match on the raw one is reported so the caller re-hashes ([`Verdict::Stale`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

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
            .hash_password(super::new_token().as_bytes(), &salt)
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

    /// The process's hasher: every password check shares its limit.
    pub fn shared() -> Hasher {
        static SHARED: OnceLock<Hasher> = OnceLock::new();
        SHARED.get_or_init(Hasher::for_this_machine).clone()
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

/// Passwords that are one password typed three ways, for tests.
#[cfg(test)]
pub(crate) mod samples {
    /// Set with ASCII spaces, typed with an IME's full-width spaces; set decomposed,
    /// typed composed.
    pub const ASCII_SPACES: &str = "みかん 電車 雪だるま 港";
    pub const FULL_WIDTH_SPACES: &str = "みかん\u{3000}電車\u{3000}雪だるま\u{3000}港";
    pub const DECOMPOSED: &str = "みかん 電車 雪た\u{3099}るま 港";
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

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

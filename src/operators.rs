//! Operator accounts and console sessions: who may open the console, with which role,
//! and how a login is checked.
//!
//! - Passwords are argon2id (m=19456 KiB, t=2, p=1), hashed and verified on blocking
//!   threads under a small concurrency limit, so a burst of logins cannot starve the
//!   async workers. The command line hashes before it talks to a running server, so the
//!   password never crosses the control socket.
//! - A session is a 256-bit token from the OS RNG in an HttpOnly cookie; the store keeps
//!   only its SHA-256. Each session carries its own CSRF token for the console's forms.
//! - Failed logins are counted per name (known or not, so the answer does not reveal
//!   which names exist): every failure costs a delay, and [`MAX_FAILURES`] within
//!   [`FAILURE_WINDOW_MS`] lock the name for [`LOCK_MS`].

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::operators::OperatorKey;
use crate::store::{Store, StoreError};

/// Failures allowed within the window before the name is locked.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const FAILURE_WINDOW_MS: u64 = 15 * 60 * 1000;
/// How long a locked name stays locked.
pub const LOCK_MS: u64 = 15 * 60 * 1000;
/// How long a failed login waits before it answers.
pub const FAILURE_DELAY_MS: u64 = 1000;
/// A session ends this long after login, however busy.
pub const SESSION_LIFETIME_MS: u64 = 8 * 60 * 60 * 1000;
/// The shortest operator password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// What an operator may see: support sees `/support`, admin sees everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Support,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
        }
    }

    /// True when this role may open pages meant for `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

impl std::str::FromStr for Role {
    type Err = OperatorError;
    fn from_str(s: &str) -> Result<Role, OperatorError> {
        match s {
            "admin" => Ok(Role::Admin),
            "support" => Ok(Role::Support),
            other => Err(OperatorError::BadRole(other.to_string())),
        }
    }
}

/// A stored operator account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorRecord {
    pub name: String,
    pub role: Role,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub created_ms: u64,
}

/// A stored session (keyed by the SHA-256 of its token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub operator: String,
    /// The token every console form must carry.
    pub csrf: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// Failed logins for one name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginFailures {
    pub count: u32,
    pub first_ms: u64,
    pub locked_until_ms: u64,
}

impl LoginFailures {
    /// True while the name is locked.
    pub fn is_locked(&self, now: u64) -> bool {
        now < self.locked_until_ms
    }

    /// Counts one failure at `now`; the count restarts when the window has passed, and
    /// reaching [`MAX_FAILURES`] locks the name.
    pub fn register(&mut self, now: u64) {
        if self.count == 0 || now.saturating_sub(self.first_ms) > FAILURE_WINDOW_MS {
            self.count = 0;
            self.first_ms = now;
        }
        self.count += 1;
        if self.count >= MAX_FAILURES {
            self.locked_until_ms = now + LOCK_MS;
            self.count = 0;
        }
    }
}

/// Errors of operator management and login.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("an operator name is 1 to 64 letters, digits, '.', '_' or '-' (got {0:?})")]
    BadName(String),
    #[error("the role must be admin or support (got {0:?})")]
    BadRole(String),
    #[error("the password is too short: use at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    #[error("the password hash is not an argon2id hash")]
    BadHash,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an operator name.
pub fn validate_name(name: &str) -> Result<(), OperatorError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(OperatorError::BadName(name.to_string()))
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19456, 2, 1, None).expect("fixed argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id (blocking: call from a blocking thread).
pub fn hash_password(password: &str) -> Result<String, OperatorError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(OperatorError::ShortPassword);
    }
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| OperatorError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| OperatorError::Hash(e.to_string()))
}

/// Verifies a password against a PHC hash (blocking).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Hashing runs on blocking threads, at most this many at once.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A hash to verify against when the name is unknown, so an unknown name takes as long
/// as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password("not a password of anyone").expect("hashing a fixed password works")
    })
}

/// Creates an operator, or replaces the role and password of an existing one. The hash
/// must be an argon2id PHC string (made by [`hash_password`]). Returns true when the
/// operator already existed.
pub fn add(
    store: &Store,
    name: &str,
    role: Role,
    hash: &str,
    now: u64,
) -> Result<bool, OperatorError> {
    validate_name(name)?;
    let parsed = PasswordHash::new(hash).map_err(|_| OperatorError::BadHash)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(OperatorError::BadHash);
    }
    let existed = get(store, name)?.is_some();
    store.operator_put(
        OperatorKey::Account,
        name,
        &OperatorRecord {
            name: name.to_string(),
            role,
            password_hash: hash.to_string(),
            created_ms: now,
        },
    )?;
    // A new password lifts a lock.
    store.operator_remove(OperatorKey::Failures, name)?;
    Ok(existed)
}

/// The operator called `name`.
pub fn get(store: &Store, name: &str) -> Result<Option<OperatorRecord>, StoreError> {
    store.operator_get(OperatorKey::Account, name)
}

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    Success(OperatorRecord),
    /// Unknown name or wrong password: the same answer for both.
    Refused,
    /// Too many failures; try again after this time.
    Locked {
        until_ms: u64,
    },
}

/// Checks a name and password. Failures are counted (and may lock the name) before the
/// answer is given; the caller adds the delay.
pub async fn login(
    store: &Store,
    name: &str,
    password: &str,
    now: u64,
) -> Result<LoginOutcome, OperatorError> {
    let key = name.chars().take(64).collect::<String>();
    let mut failures: LoginFailures = store
        .operator_get(OperatorKey::Failures, &key)?
        .unwrap_or_default();
    if failures.is_locked(now) {
        return Ok(LoginOutcome::Locked {
            until_ms: failures.locked_until_ms,
        });
    }
    let record = get(store, name)?;
    let hash = record
        .as_ref()
        .map(|r| r.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let password = password.to_string();
    let ok = {
        let _permit = HASHING
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false)
    };
    match record {
        Some(r) if ok => {
            store.operator_remove(OperatorKey::Failures, &key)?;
            Ok(LoginOutcome::Success(r))
        }
        _ => {
            failures.register(now);
            store.operator_put(OperatorKey::Failures, &key, &failures)?;
            if failures.is_locked(now) {
                Ok(LoginOutcome::Locked {
                    until_ms: failures.locked_until_ms,
                })
            } else {
                Ok(LoginOutcome::Refused)
            }
        }
    }
}

/// A random 256-bit value as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session for `operator`; returns the token for the cookie.
pub fn start_session(
    store: &Store,
    operator: &str,
    now: u64,
) -> Result<(String, Session), StoreError> {
    let token = random_token();
    let session = Session {
        operator: operator.to_string(),
        csrf: random_token(),
        created_ms: now,
        expires_ms: now + SESSION_LIFETIME_MS,
    };
    store.operator_put(OperatorKey::Session, &token_hash(&token), &session)?;
    Ok((token, session))
}

/// The live session of a token and its operator's current record; `None` when the
/// token is unknown, the session has expired or the operator is gone.
pub fn session(
    store: &Store,
    token: &str,
    now: u64,
) -> Result<Option<(Session, OperatorRecord)>, StoreError> {
    let key = token_hash(token);
    let Some(session) = store.operator_get::<Session>(OperatorKey::Session, &key)? else {
        return Ok(None);
    };
    if now >= session.expires_ms {
        store.operator_remove(OperatorKey::Session, &key)?;
        return Ok(None);
    }
    Ok(get(store, &session.operator)?.map(|op| (session, op)))
}

/// Ends a session.
pub fn end_session(store: &Store, token: &str) -> Result<(), StoreError> {
    store.operator_remove(OperatorKey::Session, &token_hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_the_window_lock_the_name_and_the_lock_ends() {
        let mut f = LoginFailures::default();
        for i in 0..4 {
            f.register(1_000 + i);
            assert!(!f.is_locked(1_000 + i));
        }
        f.register(2_000);
        assert!(f.is_locked(2_000));
        assert!(f.is_locked(2_000 + LOCK_MS - 1));
        assert!(!f.is_locked(2_000 + LOCK_MS));
    }

    #[test]
    fn failures_spread_over_more_than_the_window_do_not_lock() {
        let mut f = LoginFailures::default();
        for i in 0..10u64 {
            f.register(i * (FAILURE_WINDOW_MS / 3));
            assert!(!f.is_locked(i * (FAILURE_WINDOW_MS / 3)), "failure {i}");
        }
    }

    #[test]
    fn a_hash_is_argon2id_with_the_required_cost_and_verifies() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(matches!(
            hash_password("short"),
            Err(OperatorError::ShortPassword)
        ));
    }

    #[tokio::test]
    async fn sessions_store_only_a_hash_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let hash = hash_password("a long enough password").unwrap();
        add(&store, "aiko", Role::Support, &hash, 0).unwrap();
        let (token, s) = start_session(&store, "aiko", 10).unwrap();
        assert!(
            store
                .operator_get::<Session>(OperatorKey::Session, &token)
                .unwrap()
                .is_none()
        );
        let (found, op) = session(&store, &token, 11).unwrap().unwrap();
        assert_eq!(found.csrf, s.csrf);
        assert_eq!(op.role, Role::Support);
        assert!(
            session(&store, &token, 10 + SESSION_LIFETIME_MS)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            login(&store, "aiko", "wrong password!", 20).await.unwrap(),
            LoginOutcome::Refused
        ));
        assert!(matches!(
            login(&store, "aiko", "a long enough password", 21)
                .await
                .unwrap(),
            LoginOutcome::Success(_)
        ));
    }
}

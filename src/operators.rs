//! Operator accounts and console sessions: who may open the console, with which role,
//! and how a login is checked.
//!
//! - Passwords are hashed and verified by [`crate::secrets::passwords`] (argon2id,
//!   NFKC), under the process's one hashing limit, so a burst of logins cannot starve
//!   the async workers. The command line hashes before it talks to a running server, so the
//!   password never crosses the control socket.
//! - A session is a 256-bit token from the OS RNG in an HttpOnly cookie; the store keeps
//!   only its SHA-256. Each session carries its own CSRF token for the console's forms.
//! - Login attempts are throttled with the store's atomic limiter, a slot taken *before*
//!   the password is checked, so parallel guesses cannot outrun the count (OWASP ASVS
//!   5.0 V6.3, NIST SP 800-63B-4 §3.2.2). Three windows, all counting names known or
//!   not (the answer does not reveal which names exist): [`PER_NAME_AND_CLIENT`] (a
//!   guesser locks out only its own address, not the operator's), [`PER_CLIENT`] (one
//!   address spraying many names) and [`PER_NAME`], a ceiling across addresses high
//!   enough that it is no denial-of-service tool. A success gives its slots back, so
//!   the windows count failures; every failure also costs a delay.
//! - Revocation: each account carries a `generation`, copied into every session it
//!   starts. Disabling, removing, a new password or a new role raises the generation
//!   and deletes the account's sessions, and [`session`] accepts a session only while
//!   its generation matches and the account is enabled, so every old session ends at
//!   once, even one being started while the change is made.

use argon2::password_hash::PasswordHash;
use serde::{Deserialize, Serialize};

use crate::secrets::passwords::{self as password, Hasher, Verdict};
use crate::store::OperatorKey;
use crate::store::{LimitKey, Rule, Take};
use crate::store::{Store, StoreError};

/// Password checks per operator name from one client address: five per 15 minutes,
/// then that address is locked out of that name for 15 minutes.
pub const PER_NAME_AND_CLIENT: Rule = Rule {
    max: 5,
    window_ms: 15 * 60 * 1000,
    lock_ms: 15 * 60 * 1000,
};
/// Password checks from one client address across every name.
pub const PER_CLIENT: Rule = Rule {
    max: 20,
    window_ms: 15 * 60 * 1000,
    lock_ms: 15 * 60 * 1000,
};
/// Password checks for one name across every address (NIST: at most 100 failed
/// attempts before a stronger measure); a new password from an admin lifts it.
pub const PER_NAME: Rule = Rule {
    max: 100,
    window_ms: 60 * 60 * 1000,
    lock_ms: 60 * 60 * 1000,
};
const SCOPE_NAME_AND_CLIENT: &str = "login-name-client";
const SCOPE_CLIENT: &str = "login-client";
const SCOPE_NAME: &str = "login-name";
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
    /// A disabled operator cannot log in and has no live session.
    #[serde(default)]
    pub disabled: bool,
    /// Raised by every change that must end the operator's sessions.
    #[serde(default)]
    pub generation: u64,
}

/// How an operator reads the console: language and time zone. Absent fields follow
/// the browser's language and that language's zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// `ja` or `en`.
    #[serde(default)]
    pub lang: Option<String>,
    /// An IANA zone name.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A stored session (keyed by the SHA-256 of its token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub operator: String,
    /// The token every console form must carry.
    pub csrf: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// The account's generation when the session started.
    #[serde(default)]
    pub generation: u64,
}

/// Errors of operator management and login.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("an operator name is 1 to 64 letters, digits, '.', '_' or '-' (got {0:?})")]
    BadName(String),
    #[error("the role must be admin or support (got {0:?})")]
    BadRole(String),
    #[error("unknown operator action {0:?}")]
    BadAction(String),
    #[error("the password is too short: use at least {MIN_PASSWORD_LEN} characters")]
    ShortPassword,
    #[error("operator {0}")]
    Unchanged(String),
    #[error("there is no operator called {0:?}")]
    Unknown(String),
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

/// Hashes a password's NFKC form with argon2id (blocking: call from a blocking
/// thread); its length is counted after normalisation, as the flow's passwords are.
pub fn hash_password(password: &str) -> Result<String, OperatorError> {
    if password::normalise(password).chars().count() < MIN_PASSWORD_LEN {
        return Err(OperatorError::ShortPassword);
    }
    password::hash_phc(password).map_err(|e| OperatorError::Hash(e.to_string()))
}

/// Verifies a password against a PHC hash (blocking): its normalised form, then (for a
/// hash made before normalisation) the form typed.
pub fn verify_password(hash: &str, password: &str) -> Verdict {
    password::verify_phc(hash, password)
}

/// Creates an operator, or replaces the role and password of an existing one. The hash
/// must be an argon2id PHC string (made by [`hash_password`]). Returns true when the
/// operator already existed.
pub async fn add(
    store: &Store,
    name: &str,
    role: Role,
    hash: &str,
    now: u64,
) -> Result<bool, OperatorError> {
    validate_name(name)?;
    check_hash(hash)?;
    let old = get(store, name).await?;
    let existed = old.is_some();
    let record = match old {
        // A new password and role: the old sessions end.
        Some(old) => OperatorRecord {
            role,
            password_hash: hash.to_string(),
            generation: old.generation + 1,
            ..old
        },
        None => OperatorRecord {
            name: name.to_string(),
            role,
            password_hash: hash.to_string(),
            created_ms: now,
            disabled: false,
            generation: 0,
        },
    };
    store
        .operator_put(OperatorKey::Account, name, &record)
        .await?;
    end_sessions_of(store, name).await?;
    // A new password lifts every lock on the name.
    clear_login_limits(store, name).await?;
    Ok(existed)
}

/// Checks that a hash is an argon2id PHC string.
fn check_hash(hash: &str) -> Result<(), OperatorError> {
    let parsed = PasswordHash::new(hash).map_err(|_| OperatorError::BadHash)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(OperatorError::BadHash);
    }
    Ok(())
}

/// Applies `change` to an existing operator, raises its generation and ends its
/// sessions.
async fn revise(
    store: &Store,
    name: &str,
    change: impl FnOnce(&mut OperatorRecord),
) -> Result<OperatorRecord, OperatorError> {
    let mut record = get(store, name)
        .await?
        .ok_or_else(|| OperatorError::Unknown(name.into()))?;
    change(&mut record);
    record.generation += 1;
    store
        .operator_put(OperatorKey::Account, name, &record)
        .await?;
    end_sessions_of(store, name).await?;
    Ok(record)
}

/// Sets a new password (an argon2id hash); every session of the operator ends and the
/// name's login locks lift.
pub async fn set_password(store: &Store, name: &str, hash: &str) -> Result<(), OperatorError> {
    check_hash(hash)?;
    revise(store, name, |r| r.password_hash = hash.to_string()).await?;
    clear_login_limits(store, name).await?;
    Ok(())
}

/// Sets a new role; every session of the operator ends.
pub async fn set_role(store: &Store, name: &str, role: Role) -> Result<(), OperatorError> {
    revise(store, name, |r| r.role = role).await.map(drop)
}

/// Disables or enables an operator; disabling ends every session at once. Returns
/// false when the operator was already in that state (nothing changed).
pub async fn set_disabled(
    store: &Store,
    name: &str,
    disabled: bool,
) -> Result<bool, OperatorError> {
    let record = get(store, name)
        .await?
        .ok_or_else(|| OperatorError::Unknown(name.into()))?;
    if record.disabled == disabled {
        return Ok(false);
    }
    revise(store, name, |r| r.disabled = disabled).await?;
    Ok(true)
}

/// Removes an operator and every session of it.
pub async fn remove(store: &Store, name: &str) -> Result<OperatorRecord, OperatorError> {
    let record = get(store, name)
        .await?
        .ok_or_else(|| OperatorError::Unknown(name.into()))?;
    store.operator_remove(OperatorKey::Account, name).await?;
    store
        .operator_remove(OperatorKey::Preferences, name)
        .await?;
    end_sessions_of(store, name).await?;
    Ok(record)
}

/// What `operator disable|enable|remove` and the console's buttons do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Disable,
    Enable,
    Remove,
}

impl Change {
    /// The word in commands, forms and the audit log ("operator disable").
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Disable => "disable",
            Change::Enable => "enable",
            Change::Remove => "remove",
        }
    }
}

impl std::str::FromStr for Change {
    type Err = OperatorError;
    fn from_str(s: &str) -> Result<Change, OperatorError> {
        match s {
            "disable" => Ok(Change::Disable),
            "enable" => Ok(Change::Enable),
            "remove" => Ok(Change::Remove),
            other => Err(OperatorError::BadAction(other.to_string())),
        }
    }
}

/// Applies a [`Change`]; the answer is a sentence for the operator, an error says why
/// nothing changed. The caller writes the audit entry.
pub async fn apply(store: &Store, name: &str, change: Change) -> Result<String, OperatorError> {
    Ok(match change {
        Change::Disable if set_disabled(store, name, true).await? => {
            format!("operator {name} disabled; every session of it has ended")
        }
        Change::Enable if set_disabled(store, name, false).await? => {
            format!("operator {name} enabled; it can log in again")
        }
        Change::Disable => {
            return Err(OperatorError::Unchanged(format!(
                "{name} is already disabled"
            )));
        }
        Change::Enable => {
            return Err(OperatorError::Unchanged(format!("{name} is not disabled")));
        }
        Change::Remove => {
            remove(store, name).await?;
            format!("operator {name} removed; every session of it has ended")
        }
    })
}

/// One operator as `operator list` and the console show it (never the hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorRow {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_ms: u64,
    /// Live sessions now.
    pub sessions: usize,
}

/// Every operator, by name, with its live sessions counted.
pub async fn list(store: &Store, now: u64) -> Result<Vec<OperatorRow>, StoreError> {
    let sessions = store
        .operator_entries::<Session>(OperatorKey::Session)
        .await?;
    store
        .operator_all::<OperatorRecord>(OperatorKey::Account)
        .await?
        .into_iter()
        .map(|r| {
            let live = sessions
                .iter()
                .filter(|(_, s)| {
                    s.operator == r.name && s.generation == r.generation && now < s.expires_ms
                })
                .count();
            Ok(OperatorRow {
                name: r.name,
                role: r.role,
                disabled: r.disabled,
                created_ms: r.created_ms,
                sessions: if r.disabled { 0 } else { live },
            })
        })
        .collect()
}

/// One live session as its operator sees it: a short id (a prefix of the token's
/// digest, never the token) and its times.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// The live sessions of `name`, newest first.
pub async fn sessions_of(
    store: &Store,
    name: &str,
    now: u64,
) -> Result<Vec<SessionRow>, StoreError> {
    let generation = get(store, name).await?.map(|r| r.generation);
    let mut rows: Vec<SessionRow> = store
        .operator_entries::<Session>(OperatorKey::Session)
        .await?
        .into_iter()
        .filter(|(_, s)| {
            s.operator == name && Some(s.generation) == generation && now < s.expires_ms
        })
        .map(|(id, s)| SessionRow {
            id: id.chars().take(12).collect(),
            created_ms: s.created_ms,
            expires_ms: s.expires_ms,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
    Ok(rows)
}

/// The short id [`sessions_of`] shows for a session token.
pub fn session_id(token: &str) -> String {
    token_hash(token).chars().take(12).collect()
}

/// Deletes every session of `name` (expired ones too); returns how many.
pub async fn end_sessions_of(store: &Store, name: &str) -> Result<usize, StoreError> {
    let mut n = 0;
    for (id, s) in store
        .operator_entries::<Session>(OperatorKey::Session)
        .await?
    {
        if s.operator == name {
            store.operator_remove(OperatorKey::Session, &id).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The saved console preferences of `name` (the defaults when none were saved).
pub async fn preferences(store: &Store, name: &str) -> Result<Preferences, StoreError> {
    Ok(store
        .operator_get(OperatorKey::Preferences, name)
        .await?
        .unwrap_or_default())
}

/// Saves an operator's console language and time zone. Unlike the other changes this
/// ends no session: it is how the operator reads the console, not who may use it.
pub async fn set_preferences(
    store: &Store,
    name: &str,
    prefs: &Preferences,
) -> Result<(), StoreError> {
    store
        .operator_put(OperatorKey::Preferences, name, prefs)
        .await
}

/// "Log out everywhere": ends every session of `name`, raising the generation so a
/// session that slips in meanwhile ends too.
pub async fn log_out_everywhere(store: &Store, name: &str) -> Result<(), OperatorError> {
    revise(store, name, |_| {}).await.map(drop)
}

/// The operator called `name`.
pub async fn get(store: &Store, name: &str) -> Result<Option<OperatorRecord>, StoreError> {
    store.operator_get(OperatorKey::Account, name).await
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

/// The name as throttled: what the form sent, cut to an operator name's length.
fn throttled_name(name: &str) -> String {
    name.chars().take(64).collect()
}

async fn clear_login_limits(store: &Store, name: &str) -> Result<(), StoreError> {
    let name = throttled_name(name);
    store
        .limit_clear(&LimitKey::new(SCOPE_NAME, &[&name]))
        .await?;
    store.limit_clear_prefix(SCOPE_NAME_AND_CLIENT, &name).await
}

/// Checks a name and password from `client` (its IP address). A slot of each login
/// window is taken before the password is checked; a refused slot answers
/// [`LoginOutcome::Locked`] without a check, so the attempt after the last allowed
/// failure is the first to hear of the lock. The caller adds the delay.
pub async fn login(
    store: &Store,
    name: &str,
    client: &str,
    password: &str,
    now: u64,
) -> Result<LoginOutcome, OperatorError> {
    let key = throttled_name(name);
    let windows = [
        (
            LimitKey::new(SCOPE_NAME_AND_CLIENT, &[&key, client]),
            PER_NAME_AND_CLIENT,
        ),
        (LimitKey::new(SCOPE_CLIENT, &[client]), PER_CLIENT),
        (LimitKey::new(SCOPE_NAME, &[&key]), PER_NAME),
    ];
    for (i, (limit, rule)) in windows.iter().enumerate() {
        match store.limit_take(limit, *rule, now).await? {
            Take::Allowed { .. } => {}
            Take::Refused { until_ms } => {
                // Slots of the windows before this one go back: nothing was checked.
                for (taken, _) in &windows[..i] {
                    store.limit_refund(taken).await?;
                }
                return Ok(LoginOutcome::Locked { until_ms });
            }
        }
    }
    let record = get(store, name).await?;
    let hasher = Hasher::shared();
    // An unknown name is checked against a decoy hash: it takes as long as a wrong
    // password.
    let verdict = match hasher
        .verify(
            password.to_string(),
            record.as_ref().map(|r| r.password_hash.clone()),
        )
        .await
    {
        Ok(v) => v,
        Err(e) => {
            // Nothing was checked: the slots go back.
            for (taken, _) in &windows {
                store.limit_refund(taken).await?;
            }
            return Err(OperatorError::Hash(e.to_string()));
        }
    };
    // A hash of the form typed before normalisation is redone on success.
    let rehashed = match verdict {
        Verdict::Stale => hasher.hash(password.to_string()).await.ok(),
        _ => None,
    };
    match record {
        // A disabled operator hears the same answer as a wrong password.
        Some(mut r) if verdict.is_right() && !r.disabled => {
            // The windows count failures: a success gives its slots back.
            for (limit, _) in &windows {
                store.limit_refund(limit).await?;
            }
            if let Some(phc) = rehashed {
                r.password_hash = phc;
                store.operator_put(OperatorKey::Account, name, &r).await?;
            }
            Ok(LoginOutcome::Success(r))
        }
        _ => Ok(LoginOutcome::Refused),
    }
}

pub use crate::secrets::random_token;

fn token_hash(token: &str) -> String {
    crate::secrets::digest_hex(token)
}

/// Starts a session for `operator` (as logged in, at its generation then); returns
/// the token for the cookie.
pub async fn start_session(
    store: &Store,
    operator: &OperatorRecord,
    now: u64,
) -> Result<(String, Session), StoreError> {
    let token = random_token();
    let session = Session {
        operator: operator.name.clone(),
        csrf: random_token(),
        created_ms: now,
        expires_ms: now + SESSION_LIFETIME_MS,
        generation: operator.generation,
    };
    store
        .operator_put(OperatorKey::Session, &token_hash(&token), &session)
        .await?;
    Ok((token, session))
}

/// The live session of a token and its operator's current record; `None` when the
/// token is unknown, the session has expired, the operator is gone or disabled, or the
/// account changed since the session started.
pub async fn session(
    store: &Store,
    token: &str,
    now: u64,
) -> Result<Option<(Session, OperatorRecord)>, StoreError> {
    let key = token_hash(token);
    let Some(session) = store
        .operator_get::<Session>(OperatorKey::Session, &key)
        .await?
    else {
        return Ok(None);
    };
    if now >= session.expires_ms {
        store.operator_remove(OperatorKey::Session, &key).await?;
        return Ok(None);
    }
    Ok(get(store, &session.operator)
        .await?
        .filter(|op| !op.disabled && op.generation == session.generation)
        .map(|op| (session, op)))
}

/// Ends a session.
pub async fn end_session(store: &Store, token: &str) -> Result<(), StoreError> {
    store
        .operator_remove(OperatorKey::Session, &token_hash(token))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh store holding one operator with `password`.
    async fn store_with(name: &str, role: Role, password: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        add(&store, name, role, &hash_password(password).unwrap(), 0)
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_with_the_required_cost_and_verifies() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery").is_right());
        assert!(!verify_password(&h, "correct horse battery!").is_right());
        assert!(matches!(
            hash_password("short"),
            Err(OperatorError::ShortPassword)
        ));
    }

    #[tokio::test]
    async fn a_guessing_address_locks_only_itself_and_the_name_has_a_ceiling() {
        let right = "a long enough password";
        let (_dir, store) = store_with("ben", Role::Admin, right).await;
        let refused = |o: LoginOutcome| matches!(o, LoginOutcome::Refused);
        let locked = |o: LoginOutcome| matches!(o, LoginOutcome::Locked { .. });
        for _ in 0..PER_NAME_AND_CLIENT.max {
            assert!(refused(
                login(&store, "ben", "192.0.2.9", "guess", 1).await.unwrap()
            ));
        }
        assert!(locked(
            login(&store, "ben", "192.0.2.9", right, 2).await.unwrap()
        ));
        // The operator's own address is not locked out by the guesser.
        assert!(matches!(
            login(&store, "ben", "192.0.2.1", right, 3).await.unwrap(),
            LoginOutcome::Success(_)
        ));
        // One address spraying names runs out across names.
        let mut checked = 0;
        for i in 0..PER_CLIENT.max + 5 {
            let name = format!("n{i}");
            if refused(login(&store, &name, "192.0.2.7", "guess", 4).await.unwrap()) {
                checked += 1;
            }
        }
        assert_eq!(checked, PER_CLIENT.max);
        // Many addresses together reach the name's ceiling, which then holds for all.
        let mut checked = 0;
        'spread: for client in 0.. {
            for _ in 0..PER_NAME_AND_CLIENT.max {
                let ip = format!("198.51.100.{client}");
                match login(&store, "ben", &ip, "guess", 5).await.unwrap() {
                    LoginOutcome::Refused => checked += 1,
                    _ => break 'spread,
                }
            }
        }
        // The guesser's five failures count towards the ceiling too.
        assert_eq!(checked + PER_NAME_AND_CLIENT.max, PER_NAME.max);
        assert!(locked(
            login(&store, "ben", "192.0.2.1", right, 6).await.unwrap()
        ));
        // A new password lifts every lock on the name.
        add(
            &store,
            "ben",
            Role::Admin,
            &hash_password(right).unwrap(),
            7,
        )
        .await
        .unwrap();
        assert!(matches!(
            login(&store, "ben", "192.0.2.9", right, 8).await.unwrap(),
            LoginOutcome::Success(_)
        ));
    }

    #[tokio::test]
    async fn a_password_typed_full_width_logs_in_and_an_old_raw_hash_is_redone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let ascii = "みかん 電車 雪だるま 港";
        let ime = "みかん\u{3000}電車\u{3000}雪た\u{3099}るま\u{3000}港";
        add(
            &store,
            "aiko",
            Role::Admin,
            &hash_password(ascii).unwrap(),
            0,
        )
        .await
        .unwrap();
        assert!(matches!(
            login(&store, "aiko", "192.0.2.1", ime, 1).await.unwrap(),
            LoginOutcome::Success(_)
        ));
        // A hash of the form typed, made before passwords were normalised.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let params = argon2::Params::new(19456, 2, 1, None).unwrap();
        let raw = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(ime.as_bytes(), &salt)
            .unwrap()
            .to_string();
        add(&store, "ben", Role::Admin, &raw, 0).await.unwrap();
        assert!(matches!(
            login(&store, "ben", "192.0.2.1", ime, 2).await.unwrap(),
            LoginOutcome::Success(_)
        ));
        let redone = get(&store, "ben").await.unwrap().unwrap().password_hash;
        assert_ne!(redone, raw);
        assert_eq!(verify_password(&redone, ascii), Verdict::Right);
        assert!(matches!(
            login(&store, "ben", "192.0.2.1", ascii, 3).await.unwrap(),
            LoginOutcome::Success(_)
        ));
    }

    #[tokio::test]
    async fn sessions_store_only_a_hash_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let hash = hash_password("a long enough password").unwrap();
        add(&store, "aiko", Role::Support, &hash, 0).await.unwrap();
        let aiko = get(&store, "aiko").await.unwrap().unwrap();
        let (token, s) = start_session(&store, &aiko, 10).await.unwrap();
        assert!(
            store
                .operator_get::<Session>(OperatorKey::Session, &token)
                .await
                .unwrap()
                .is_none()
        );
        let (found, op) = session(&store, &token, 11).await.unwrap().unwrap();
        assert_eq!(found.csrf, s.csrf);
        assert_eq!(op.role, Role::Support);
        assert!(
            session(&store, &token, 10 + SESSION_LIFETIME_MS)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            login(&store, "aiko", "192.0.2.1", "wrong password!", 20)
                .await
                .unwrap(),
            LoginOutcome::Refused
        ));
        assert!(matches!(
            login(&store, "aiko", "192.0.2.1", "a long enough password", 21)
                .await
                .unwrap(),
            LoginOutcome::Success(_)
        ));
    }

    #[tokio::test]
    async fn disabling_a_new_password_a_new_role_or_removal_ends_every_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s"), false).unwrap();
        let hash = hash_password("a long enough password").unwrap();
        add(&store, "aiko", Role::Support, &hash, 0).await.unwrap();
        async fn start(store: &Store) -> String {
            let op = get(store, "aiko").await.unwrap().unwrap();
            start_session(store, &op, 10).await.unwrap().0
        }
        async fn live(store: &Store, t: &str) -> bool {
            session(store, t, 11).await.unwrap().is_some()
        }
        for what in ["disable", "passwd", "role", "everywhere"] {
            let _ = set_disabled(&store, "aiko", false).await;
            let (a, b) = (start(&store).await, start(&store).await);
            assert!(live(&store, &a).await && live(&store, &b).await, "{what}");
            assert_eq!(
                sessions_of(&store, "aiko", 11).await.unwrap().len(),
                2,
                "{what}"
            );
            match what {
                "disable" => assert!(set_disabled(&store, "aiko", true).await.unwrap()),
                "passwd" => set_password(&store, "aiko", &hash).await.unwrap(),
                "role" => set_role(&store, "aiko", Role::Admin).await.unwrap(),
                _ => log_out_everywhere(&store, "aiko").await.unwrap(),
            }
            assert!(
                !live(&store, &a).await && !live(&store, &b).await,
                "{what}: an old session still works"
            );
        }
        // Disabled and enabled again, a new login works; removal ends it.
        assert!(set_disabled(&store, "aiko", true).await.unwrap());
        assert!(!set_disabled(&store, "aiko", true).await.unwrap());
        assert!(set_disabled(&store, "aiko", false).await.unwrap());
        let c = start(&store).await;
        assert!(live(&store, &c).await);
        remove(&store, "aiko").await.unwrap();
        assert!(!live(&store, &c).await);
        assert!(matches!(
            set_disabled(&store, "aiko", true).await,
            Err(OperatorError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn a_disabled_operator_cannot_log_in() {
        let right = "a long enough password";
        let (_dir, store) = store_with("aiko", Role::Support, right).await;
        set_disabled(&store, "aiko", true).await.unwrap();
        assert!(matches!(
            login(&store, "aiko", "192.0.2.1", right, 1).await.unwrap(),
            LoginOutcome::Refused
        ));
    }
}

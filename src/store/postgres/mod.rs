//! The PostgreSQL backend: every store intent as SQL on one shared database, so any
//! number of `mailgate serve` nodes can share the work (issue 20).
//!
//! Shaped to mirror the sled store method for method (same names, same argument and
//! return types, but `async`), so both can sit behind one store trait. Records are the
//! sled store's serde JSON, kept as `jsonb`, beside the columns that are searched or
//! ordered on; every write keeps those columns and the JSON in step (a message's
//! `due_ms` column is always its record's `due_ms`).
//!
//! Durability: each write is a committed statement or transaction, with
//! `synchronous_commit` left on, so a write that returned is acknowledged: `flush` has
//! nothing left to do. Enqueues and message changes that arrive together share one
//! statement and one commit (`batch`); each still returns only after that commit. Message bodies live in their own table (the hot queue table
//! stays narrow); there is no spool.
//!
//! Migrations are SQL files embedded in the binary, applied in order under a
//! PostgreSQL advisory lock, so nodes starting together take turns; a database whose
//! schema is newer than the binary knows is refused.
//!
//! Connections come from a `deadpool-postgres` pool; statements are prepared once per
//! connection (`prepare_cached`).

mod batch;
mod bounces;
mod events;
mod flows;
mod limits;
mod messages;
mod meta;
mod operators;
mod search;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio_postgres::error::SqlState;

use super::StoreError;

/// The migrations, in order: (version, SQL). A new one is appended, never edited.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_events.sql")),
    (3, include_str!("migrations/0003_unserialized_appends.sql")),
    (4, include_str!("migrations/0004_prune_events.sql")),
    (5, include_str!("migrations/0005_address_search.sql")),
    (6, include_str!("migrations/0006_message_headers.sql")),
    (
        7,
        include_str!("migrations/0007_headers_without_key_check.sql"),
    ),
    (8, include_str!("migrations/0008_message_bytes_lz4.sql")),
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key held while migrating ("mailgate" in ASCII). Advisory locks
/// are per database, so databases on one server do not wait for each other.
const MIGRATION_LOCK: i64 = 0x6d61_696c_6761_7465;

/// Whether the connection to PostgreSQL is encrypted (`store.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP (or a Unix socket): a database on the same host or a private network.
    Disable,
    /// TLS, the server's certificate checked against the system's roots.
    Require,
}

/// How to reach the database: the `store.*` keys of a postgres-backed node.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `store.url`, e.g. `postgres://mailgate@127.0.0.1:5432/mailgate`.
    pub url: String,
    /// From `store.password_file`; when absent, a password in the URL or `PGPASSWORD`.
    pub password: Option<SecretString>,
    /// `store.pool_size`: connections at most, per node.
    pub pool_size: usize,
    /// `store.lease`: how long a claimed message stays with the node that claimed it.
    pub lease: Duration,
    /// `store.tls`.
    pub tls: PgTls,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("pool_size", &self.pool_size)
            .field("lease", &self.lease)
            .field("tls", &self.tls)
            .finish()
    }
}

struct Inner {
    pool: Pool,
    /// `store.url` with any password replaced by `***`: the only form that is shown.
    url: String,
    lease: Duration,
    /// Held while the store is open: the node's own folder lock (see `services`).
    held: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
    /// Message changes gathered into shared commits (see `batch`).
    changes: Arc<batch::Batcher<messages::Change>>,
    /// New messages gathered into shared commits.
    inserts: Arc<batch::Batcher<messages::NewMessage>>,
}

/// A handle to the PostgreSQL store; cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// A pooled connection.
pub(crate) type Client = deadpool_postgres::Object;

#[async_trait::async_trait]
impl crate::store::Backend for Postgres {
    fn location(&self) -> String {
        format!("store.url = {}", self.inner.url)
    }

    fn folder(&self) -> Option<&std::path::Path> {
        None
    }

    /// Other nodes share the database.
    fn shared(&self) -> bool {
        true
    }

    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(self.query_error("measuring the database"))?
            .get(0);
        Ok(Some(n.max(0) as u64))
    }

    fn announce_write(&self) -> crate::store::WriteIntent {
        crate::store::WriteIntent::none()
    }

    /// Nothing to do: every write was committed (with `synchronous_commit` on) before it
    /// returned.
    async fn flush(&self, _intent: Option<crate::store::WriteIntent>) -> Result<(), StoreError> {
        Ok(())
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The record, its body dropped when final, the event and the count, in one
    /// statement: one round trip and one commit for a finished message.
    async fn write_message_change(
        &self,
        record: &mut crate::domain::MessageRecord,
        due_ms: Option<u64>,
        tells: crate::store::Tells,
    ) -> Result<(), StoreError> {
        record.due_ms = due_ms;
        let change = messages::Change::new(record, tells)?;
        self.inner.changes.clone().submit(self, change).await
    }
}

/// A counter is the sum of this many rows (migration 0003), so that writers counting the
/// same thing at once do not queue on one row lock held across each commit.
const COUNTER_SHARDS: u16 = 16;

/// The shard a count goes to: any, as long as writers spread over them.
pub(crate) fn counter_shard() -> i16 {
    (rand::random::<u16>() % COUNTER_SHARDS) as i16
}

/// The statement that adds `$n` to the counter (`$kind`, `$label`) in shard `$shard`
/// (parameter numbers).
pub(crate) fn count_sql(kind: usize, label: usize, shard: usize, n: usize) -> String {
    format!(
        "INSERT INTO counters (kind, label, shard, value) VALUES (${kind}, ${label}, ${shard}, ${n})
         ON CONFLICT (kind, label, shard) DO UPDATE SET value = counters.value + EXCLUDED.value"
    )
}

impl Postgres {
    /// Builds the pool and proves one connection works, so a wrong URL, a refused login
    /// or a missing database fails here, named, rather than at the first request.
    pub async fn connect(settings: &PostgresSettings) -> Result<Postgres, StoreError> {
        let url = redact_url(&settings.url);
        let mut config: tokio_postgres::Config =
            settings
                .url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Database {
                    what: format!(
                        "store.url = {url} is not a PostgreSQL URL such as \
                         postgres://mailgate@127.0.0.1:5432/mailgate ({})",
                        redact_url(&e.to_string())
                    ),
                    source: None,
                })?;
        match &settings.password {
            Some(p) => {
                config.password(p.expose_secret());
            }
            None if config.get_password().is_none() => {
                if let Ok(p) = std::env::var("PGPASSWORD") {
                    config.password(p);
                }
            }
            None => {}
        }
        if config.get_application_name().is_none() {
            config.application_name("mailgate");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match settings.tls {
            PgTls::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            PgTls::Require => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let (tls, _unreadable) =
                    tokio_postgres_rustls::MakeRustlsConnect::with_native_certs().map_err(
                        |errors| StoreError::Database {
                            what: format!(
                                "store.tls = \"require\", but the system's root certificates \
                                 could not be read ({} error(s), first: {})",
                                errors.len(),
                                errors.first().map(|e| e.to_string()).unwrap_or_default()
                            ),
                            source: None,
                        },
                    )?;
                Manager::from_config(config, tls, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| StoreError::Database {
                what: format!("cannot build the connection pool for store.url = {url}: {e}"),
                source: None,
            })?;
        let pg = Postgres {
            inner: Arc::new(Inner {
                pool,
                url,
                lease: settings.lease,
                held: std::sync::OnceLock::new(),
                changes: messages::change_batcher(settings.pool_size),
                inserts: messages::insert_batcher(settings.pool_size),
            }),
        };
        let client = pg.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(pg.query_error("the first query"))?;
        Ok(pg)
    }

    /// Keeps `guard` (a lock, a handle) as long as this store is open.
    pub fn hold(&self, guard: impl std::any::Any + Send + Sync) {
        let _ = self.inner.held.set(Box::new(guard));
    }

    /// `store.url` with the password redacted.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How long a claimed message stays with this node (`store.lease`).
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], under the migration advisory lock:
    /// a second node starting at the same time waits, then finds nothing to do.
    /// Refuses a schema newer than this binary knows. Returns the version in force.
    pub async fn migrate(&self) -> Result<i32, StoreError> {
        // The lock belongs to the session, so this connection leaves the pool and is
        // closed at the end: an error half way cannot hand a locked session to others.
        let mut client = deadpool_postgres::Object::take(self.client().await?);
        let locked = self.query_error("taking the migration lock");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(locked)?;
        // "relation already exists, skipping" notices are expected here, not news.
        let _ = client
            .batch_execute("SET client_min_messages TO warning")
            .await;
        let result = self.migrate_locked(&mut client).await;
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        result
    }

    async fn migrate_locked(
        &self,
        client: &mut deadpool_postgres::ClientWrapper,
    ) -> Result<i32, StoreError> {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (
                     version    integer PRIMARY KEY,
                     applied_ms bigint NOT NULL
                 )",
            )
            .await
            .map_err(self.query_error("creating the schema_version table"))?;
        let mut current = self.read_version(client).await?;
        if current > SCHEMA_VERSION {
            return Err(self.too_new(current));
        }
        for (version, sql) in MIGRATIONS {
            if *version <= current {
                continue;
            }
            let what = format!("applying migration {version}");
            let tx = client
                .transaction()
                .await
                .map_err(self.query_error(&what))?;
            tx.batch_execute(sql)
                .await
                .map_err(self.query_error(&what))?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
                &[version, &ms(crate::domain::now_ms())],
            )
            .await
            .map_err(self.query_error(&what))?;
            tx.commit().await.map_err(self.query_error(&what))?;
            tracing::info!(version, url = %self.inner.url, "store schema migrated");
            current = *version;
        }
        Ok(current)
    }

    /// The schema version of the database (0 when it was never migrated). Refuses a
    /// schema newer than this binary knows, as [`Postgres::migrate`] does.
    pub async fn schema_version(&self) -> Result<i32, StoreError> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .await
            .map_err(self.query_error("reading the schema version"))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let version = self.read_version(&client).await?;
        if version > SCHEMA_VERSION {
            return Err(self.too_new(version));
        }
        Ok(version)
    }

    async fn read_version(&self, client: &tokio_postgres::Client) -> Result<i32, StoreError> {
        let row = client
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(self.query_error("reading the schema version"))?;
        Ok(row.get(0))
    }

    fn too_new(&self, found: i32) -> StoreError {
        StoreError::Database {
            what: format!(
                "the database at store.url = {} has schema version {found}, newer than this \
                 mailgate knows ({SCHEMA_VERSION}): a newer mailgate migrated it; run that \
                 version here too",
                self.inner.url
            ),
            source: None,
        }
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<Client, StoreError> {
        self.inner.pool.get().await.map_err(|e| self.pool_error(e))
    }

    fn pool_error(&self, e: PoolError) -> StoreError {
        let url = &self.inner.url;
        match e {
            PoolError::Backend(e) => StoreError::Database {
                what: format!("cannot connect to store.url = {url}: {}", describe(&e)),
                source: Some(Box::new(e)),
            },
            PoolError::Timeout(kind) => StoreError::Database {
                what: format!(
                    "no connection to store.url = {url} within the time allowed ({kind:?}): \
                     the database is slow or unreachable, or store.pool_size is too small"
                ),
                source: None,
            },
            other => StoreError::Database {
                what: format!("cannot get a connection to store.url = {url}: {other}"),
                source: None,
            },
        }
    }

    /// Maps a failed statement to an error that names the store and what was being done.
    pub(crate) fn query_error(
        &self,
        what: &str,
    ) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        let text = format!("{what} failed at store.url = {}", self.inner.url);
        move |e| StoreError::Database {
            what: format!("{text}: {}", describe(&e)),
            source: Some(Box::new(e)),
        }
    }

    /// Counts the rows of a table (for tests).
    #[cfg(test)]
    pub(crate) async fn count_rows(&self, table: &str) -> Result<usize, StoreError> {
        let sql = format!("SELECT count(*) FROM {table}");
        let client = self.client().await?;
        let n: i64 = client
            .query_one(&sql, &[])
            .await
            .map_err(self.query_error("counting records"))?
            .get(0);
        Ok(n as usize)
    }
}

/// What went wrong, in words an operator can act on: a refused connection, a wrong
/// password, a missing database, a missing role.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let hint = if *code == SqlState::INVALID_PASSWORD {
            "wrong password: check store.password_file (or PGPASSWORD)"
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            "the login was refused: check the user in store.url and the server's pg_hba.conf"
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            "the database does not exist: create it (createdb) or fix its name in store.url"
        } else {
            ""
        };
        return if hint.is_empty() {
            redact_url(db.message())
        } else {
            format!("{hint} (server said: {})", redact_url(db.message()))
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "the connection was refused: is PostgreSQL running and listening on the \
                     host and port of store.url?"
                        .to_string()
                }
                std::io::ErrorKind::TimedOut => {
                    "the connection timed out: is the host of store.url reachable?".to_string()
                }
                _ => format!("{io}"),
            };
        }
        source = s.source();
    }
    // The whole chain: tokio-postgres puts the cause (e.g. "server does not support
    // TLS") in the source, not in its own text.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = redact_url(&text);
    if text.contains("server does not support TLS") {
        return "store.tls is \"require\" but the server does not offer TLS: enable ssl on \
                the server, or set store.tls = \"disable\" on a trusted network"
            .to_string();
    }
    if text.contains("TLS handshake") {
        return format!(
            "{text} (store.tls is \"require\": is the server's certificate \
                        signed by a root this system trusts?)"
        );
    }
    if text.contains("password missing") {
        return "the server asks for a password and none was given: set store.password_file \
                (or PGPASSWORD)"
            .to_string();
    }
    text
}

/// `url` with any password replaced by `***`: in the user part of a URL
/// (`postgres://user:secret@host/db`), and in `password=` parameters of a URL's query
/// or of a key=value connection string.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let from = rest_start + colon + 1;
                out.replace_range(from..rest_start + at, "***");
            }
        }
    }
    // `password=…` in a query string or key=value form (quoted values included).
    static PASSWORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)")
            .expect("a fixed pattern")
    });
    PASSWORD.replace_all(&out, "${1}***").into_owned()
}

/// A time or count as PostgreSQL's `bigint` (no mailgate value comes near the limit).
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `bigint` read back as the `u64` the records use.
pub(crate) fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Decodes a `jsonb` record, naming its table when it does not fit.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        tree: table,
        detail: e.to_string(),
    })
}

/// Encodes a record as `jsonb`.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(
    table: &'static str,
    v: &T,
) -> Result<serde_json::Value, StoreError> {
    let mut value = serde_json::to_value(v).map_err(|e| StoreError::Corrupt {
        tree: table,
        detail: e.to_string(),
    })?;
    without_nul(&mut value);
    Ok(value)
}

/// jsonb refuses U+0000 in a string, and some texts come from outside (a receiving
/// server's reply, a bounce's words): a NUL there would make the record unwritable, so
/// it is stored as U+FFFD, as a lossy decoder shows bad bytes.
/// A text for a `text` column, which refuses U+0000 as jsonb does.
fn without_nul_text(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

fn without_nul(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_nul),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(without_nul),
        _ => {}
    }
}

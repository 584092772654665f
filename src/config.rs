//! Configuration: one TOML file, overridden by `MAILGATE__SECTION__KEY` environment
//! variables, overridden in turn by `--set section.key=value` flags.
//!
//! Shaped like ripgrep's `LowArgs → HiArgs`: `RawConfig` is what serde reads (strings
//! for durations and addresses, so a bad value is our error, not serde's), and
//! [`Config`] is the validated result the rest of the program uses. Loading never stops
//! at the first problem: unknown keys, type errors (one per section), bad durations,
//! bad addresses and missing key files are all collected and reported together, each
//! with its key path, because an operator fixing a config wants the whole list at once.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::domain::address::is_host_name;
use crate::domain::duration::parse_duration;
use crate::domain::{Address, EventType, Mailbox};
use crate::store::postgres::{PgTls, PostgresSettings, redact_url};

/// Where the configuration file is looked for when neither `--config` nor
/// `MAILGATE_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/mailgate.toml";
/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "MAILGATE__";

/// One configuration problem, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `flows.link_lifetime` or `dkim[0].key_file`; empty for the
    /// file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found while loading, and the file they were found in.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub source: Option<PathBuf>,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(p) => writeln!(
                f,
                "{} problem(s) in the configuration {}:",
                self.problems.len(),
                p.display()
            )?,
            None => writeln!(
                f,
                "{} problem(s) in the configuration:",
                self.problems.len()
            )?,
        }
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// ---------------------------------------------------------------------------------
// Raw: what the file says.

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawServer {
    listen: Option<String>,
    public_url: Option<String>,
    header_timeout: Option<String>,
    keepalive_timeout: Option<String>,
    body_timeout: Option<String>,
    max_connections: Option<u32>,
    api_requests_per_minute: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawStore {
    path: Option<String>,
    fsync: Option<bool>,
    retention: Option<String>,
    backend: Option<String>,
    url: Option<String>,
    password_file: Option<String>,
    pool_size: Option<u32>,
    lease: Option<String>,
    tls: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawSender {
    from: Option<String>,
    bounce_domain: Option<String>,
    hostname: Option<String>,
    organization: Option<String>,
    contact: Option<String>,
    verp_secret_file: Option<String>,
    ip: Option<String>,
    max_message_size: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawDns {
    nameservers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawWebhook {
    url: Option<String>,
    secret_file: Option<String>,
    events: Option<Vec<String>>,
    allow_link_local: Option<bool>,
    retry_schedule: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    algorithm: Option<String>,
    key_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawDelivery {
    mode: Option<String>,
    outbox_dir: Option<String>,
    relay: Option<String>,
    relay_tls: Option<String>,
    relay_user: Option<String>,
    relay_password_file: Option<String>,
    max_connections: Option<u32>,
    max_connections_per_domain: Option<u32>,
    messages_per_connection: Option<u32>,
    retry_schedule: Option<Vec<String>>,
    message_lifetime: Option<String>,
    connect_timeout: Option<String>,
    command_timeout: Option<String>,
    require_tls: Option<bool>,
    mx_port: Option<u16>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawInbound {
    listen: Option<String>,
    max_message_size: Option<u64>,
    max_connections: Option<u32>,
    max_connections_per_address: Option<u32>,
    timeout: Option<String>,
    session_timeout: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawFlows {
    link_lifetime: Option<String>,
    code_lifetime: Option<String>,
    app_url: Option<String>,
    timezone_ja: Option<String>,
    timezone_en: Option<String>,
    default_locale: Option<String>,
    code_resend_interval: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawTemplates {
    dir: Option<String>,
}

// ---------------------------------------------------------------------------------
// Validated.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub sender: SenderConfig,
    pub dkim: Vec<DkimKeyConfig>,
    pub webhooks: Vec<WebhookConfig>,
    pub delivery: DeliveryConfig,
    pub inbound: InboundConfig,
    pub flows: FlowsConfig,
    pub log: LogConfig,
    pub templates: TemplatesConfig,
    pub dns: DnsConfig,
}

/// One `[[webhooks]]` endpoint: where events are posted, signed per Standard Webhooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Holds the signing secret, `whsec_` and base64 (read when `serve` starts).
    pub secret_file: PathBuf,
    /// The event types sent; empty for all.
    pub events: Vec<EventType>,
    /// Allows a host that resolves to a link-local or cloud metadata address.
    pub allow_link_local: bool,
    /// The waits between tries; after the last the delivery is failed. About three
    /// days by default.
    pub retry_schedule: Vec<Duration>,
}

impl WebhookConfig {
    /// True when events of `kind` go to this endpoint.
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// The default waits between webhook tries: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
/// then a day twice: the last try is about three days after the first.
pub const WEBHOOK_RETRY_SCHEDULE: &[&str] =
    &["5s", "5m", "30m", "2h", "5h", "10h", "10h", "24h", "24h"];

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Base of every link in mail: never taken from a Host header.
    pub public_url: String,
    /// A request's head must arrive within this, counted from when the server waits
    /// for it (a new connection, or a kept-alive one after its last response).
    pub header_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub keepalive_timeout: Duration,
    /// A request's whole body must arrive within this.
    pub body_timeout: Duration,
    /// Open HTTP connections at most; past it new ones get a quick 503.
    pub max_connections: usize,
    /// `server.api_requests_per_minute`: requests one API key may make per minute,
    /// counted across every node; past it the API answers 429. 0 turns the limit off.
    pub api_requests_per_minute: u32,
    /// `server.trusted_proxies`: the load balancers (addresses or networks) whose
    /// `X-Forwarded-For` names the client; empty (the default) believes no header, so
    /// the per-client limits count the connection's own address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// fdatasync the store's files after each flush, so acknowledged mail survives
    /// power loss and not only a killed process (DESIGN.md, Reliability).
    pub fsync: bool,
    /// `store.backend`: sled (default) or PostgreSQL with its settings.
    pub backend: StoreBackend,
    /// `store.retention`: how long finished messages, bounce records and events (with
    /// their finished webhook deliveries) are kept (default 180 days); accounts,
    /// suppression and the audit log are kept.
    pub retention: Duration,
}

/// Where a node keeps its records (`store.backend`).
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// The embedded sled store at `store.path`: one node.
    Sled,
    /// One PostgreSQL database shared by every node (`store.url` and the keys beside
    /// it). Its `Debug` redacts the password.
    Postgres(PostgresSettings),
}

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub from: Mailbox,
    pub bounce_domain: String,
    pub hostname: String,
    /// Who is writing, shown in mail and pages ("Example City Health Office").
    pub organization: String,
    /// Who to contact, shown in mail and pages.
    pub contact: String,
    /// A file holding the VERP MAC secret; when absent, one is generated in the store.
    pub verp_secret_file: Option<PathBuf>,
    /// The address mail leaves from (`sender.ip`): what receivers check SPF and PTR
    /// against. When absent, `dns --check` resolves `hostname` instead.
    pub ip: Option<std::net::IpAddr>,
    /// The largest composed message, in bytes (before its DKIM signatures).
    pub max_message_size: u64,
}

/// The `[dns]` section.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// `dns.nameservers`: the servers every lookup asks (`dns --check`, `mx` delivery);
    /// empty means the system's (`/etc/resolv.conf`). Port 53 unless given.
    pub nameservers: Vec<SocketAddr>,
}

pub use crate::dkim::{Algorithm as DkimAlgorithm, DkimKeyConfig};

/// How messages leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Signed `.eml` files written to a folder: works on any machine.
    Outbox,
    /// Every message to one smart host.
    Relay,
    /// Direct to each recipient domain's MX.
    Mx,
}

/// TLS towards the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    None,
    Starttls,
    Implicit,
}

/// The smart host of `delivery.relay`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `host:port` (`[v6]:port` for an IPv6 address).
fn parse_relay(text: &str) -> Result<Relay, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} needs a port, as in \"smtp.example.jp:587\""))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{text:?} has no host before the port"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?}: {port:?} is not a port number (1 to 65535)"))?;
    Ok(Relay {
        host: host.to_string(),
        port,
    })
}

/// The relay login: `delivery.relay_user` and the password read from
/// `delivery.relay_password_file` when the configuration is loaded. The password is a
/// `SecretString`: it never appears in `Debug` output or logs.
#[derive(Debug, Clone)]
pub struct RelayLogin {
    pub user: String,
    pub password: secrecy::SecretString,
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub mode: DeliveryMode,
    pub outbox_dir: PathBuf,
    pub relay: Option<Relay>,
    pub relay_tls: RelayTls,
    pub relay_user: Option<String>,
    pub relay_password_file: Option<PathBuf>,
    /// The login, when both `relay_user` and `relay_password_file` are set.
    pub relay_login: Option<RelayLogin>,
    pub max_connections: usize,
    pub max_connections_per_domain: usize,
    pub messages_per_connection: usize,
    pub retry_schedule: Vec<Duration>,
    pub message_lifetime: Duration,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Refuse to send in clear text where STARTTLS is not offered.
    pub require_tls: bool,
    /// The SMTP port of MX hosts in `mx` mode: 25, as every receiver listens; another port
    /// is for tests and odd setups (a local receiver that cannot bind 25).
    pub mx_port: u16,
}

#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// The bounce listener; `None` when the key is empty.
    pub listen: Option<SocketAddr>,
    pub max_message_size: u64,
    pub max_connections: usize,
    /// Sessions one client address (an IPv6 /64) may hold at once.
    pub max_connections_per_address: usize,
    /// Each command line (and each line of DATA) must arrive within this.
    pub timeout: Duration,
    /// A whole session ends after this, however busy.
    pub session_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct FlowsConfig {
    pub link_lifetime: Duration,
    pub code_lifetime: Duration,
    /// The application's sign-in page; empty when not set.
    pub app_url: String,
    pub timezone_ja: chrono_tz::Tz,
    pub timezone_en: chrono_tz::Tz,
    pub default_locale: String,
    /// The shortest wait between two codes for one flow (default 1m; "0s" for tests).
    pub code_resend_interval: Duration,
}

impl FlowsConfig {
    /// The zone of the people the service mails (that of `flows.default_locale`): the
    /// admin chart's days are calendar days here.
    pub fn home_zone(&self) -> chrono_tz::Tz {
        if self.default_locale == "en" {
            self.timezone_en
        } else {
            self.timezone_ja
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct TemplatesConfig {
    /// A folder whose files replace the built-in templates of the same name.
    pub dir: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------
// Loading.

/// Where a configuration comes from: the file, the environment, and `--set` flags.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    /// `--config PATH`.
    pub path: Option<PathBuf>,
    /// Environment variables to consider (normally `std::env::vars()`).
    pub env: Vec<(String, String)>,
    /// `--set section.key=value` flags, in order.
    pub overrides: Vec<String>,
}

impl ConfigSources {
    /// The sources of a normal run: flags given, and this process's environment.
    pub fn from_process(path: Option<PathBuf>, overrides: Vec<String>) -> ConfigSources {
        ConfigSources {
            path,
            env: std::env::vars().collect(),
            overrides,
        }
    }

    /// The file to read: `--config`, else `MAILGATE_CONFIG`, else the default path.
    pub fn resolve_path(&self) -> PathBuf {
        if let Some(p) = &self.path {
            return p.clone();
        }
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == "MAILGATE_CONFIG")
            && !v.is_empty()
        {
            return PathBuf::from(v);
        }
        PathBuf::from(DEFAULT_CONFIG_PATH)
    }
}

impl Config {
    /// Reads, merges and validates the configuration, reporting every problem at once.
    pub fn load(sources: &ConfigSources) -> Result<Config, ConfigErrors> {
        let path = sources.resolve_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigErrors {
                    source: Some(path.clone()),
                    problems: vec![ConfigProblem {
                        key: String::new(),
                        message: format!("cannot read {}: {e}", path.display()),
                    }],
                });
            }
        };
        Config::from_toml_str(&text, sources)
            .map_err(|mut e| {
                e.source = Some(path.clone());
                e
            })
            .map(|mut c| {
                c.source = Some(path);
                c
            })
    }

    /// Validates a configuration given as TOML text, with the environment and flag
    /// overrides of `sources` applied on top (the file path in `sources` is ignored).
    pub fn from_toml_str(text: &str, sources: &ConfigSources) -> Result<Config, ConfigErrors> {
        let mut problems = Vec::new();
        let mut table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigErrors {
                    source: None,
                    problems: vec![ConfigProblem {
                        key: String::new(),
                        message: format!("not valid TOML: {e}"),
                    }],
                });
            }
        };
        let mut origins = Vec::new();
        apply_env_overrides(&mut table, &sources.env, &mut problems, &mut origins);
        for o in &sources.overrides {
            match o.split_once('=') {
                Some((key, value)) => {
                    let key = key.trim();
                    let path: Vec<String> = key.split('.').map(str::to_string).collect();
                    let (value, note) = parse_override_value(value);
                    origins.push(Origin {
                        key: key_path(&path),
                        source: format!("the flag --set {key}"),
                        note,
                    });
                    set_path(&mut table, &path, value, &mut problems, key);
                }
                None => problems.push(ConfigProblem {
                    key: o.clone(),
                    message: "a --set flag must look like section.key=value".into(),
                }),
            }
        }
        let config = validate(table, &mut problems);
        for p in &mut problems {
            name_the_override(p, &origins);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors {
                source: None,
                problems,
            })
        }
    }
}

/// Where an overridden key got its value, so that a problem with it says so.
struct Origin {
    /// The key as problems name it (`delivery.retry_schedule`, `dkim[0].key_file`).
    key: String,
    /// `the flag --set K` or `the environment variable MAILGATE__K`.
    source: String,
    /// Why the value was read as text, when it looked like TOML but was not.
    note: Option<String>,
}

/// A key path as problems name it: dotted, with array indexes in brackets.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Adds to a problem the override that set its key (or a key under it, or the
/// section it is in), so the operator knows which of file, environment and flags to fix.
fn name_the_override(p: &mut ConfigProblem, origins: &[Origin]) {
    let related = |o: &&Origin| {
        o.key == p.key
            || o.key.starts_with(&format!("{}.", p.key))
            || p.key.starts_with(&format!("{}.", o.key))
    };
    // The last override of a key is the one in force (flags come after the environment).
    if let Some(o) = origins.iter().rev().find(related) {
        p.message.push_str(&format!(" (set by {}", o.source));
        if let Some(note) = &o.note {
            p.message.push_str(&format!("; {note}"));
        }
        p.message.push(')');
    }
}

/// A value given in the environment or a flag: TOML when it parses as TOML (numbers,
/// booleans, arrays, quoted strings), else the text itself as a string. When the text
/// looks like TOML that does not parse (`[1`), the note says why it became text.
fn parse_override_value(v: &str) -> (toml::Value, Option<String>) {
    match format!("v = {v}").parse::<toml::Table>() {
        Ok(mut t) => (
            t.remove("v")
                .unwrap_or_else(|| toml::Value::String(v.to_string())),
            None,
        ),
        Err(e) => {
            let looks_like_toml = v.trim_start().starts_with(['[', '{', '"', '\'']);
            let note = looks_like_toml.then(|| {
                let why = e.message().lines().next().unwrap_or("").to_string();
                format!("the value is not valid TOML ({why}), so it was read as text")
            });
            (toml::Value::String(v.to_string()), note)
        }
    }
}

fn apply_env_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
    problems: &mut Vec<ConfigProblem>,
    origins: &mut Vec<Origin>,
) {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let (value, note) = parse_override_value(value);
        origins.push(Origin {
            key: key_path(&path),
            source: format!("the environment variable {name}"),
            note,
        });
        set_path(table, &path, value, problems, name);
    }
}

/// Sets `path` in the table. A numeric segment indexes an array of tables
/// (`MAILGATE__DKIM__0__KEY_FILE`).
fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    problems: &mut Vec<ConfigProblem>,
    origin: &str,
) {
    if path.is_empty() || path.iter().any(|p| p.is_empty()) {
        problems.push(ConfigProblem {
            key: origin.to_string(),
            message: "an override must name a section and a key".into(),
        });
        return;
    }
    let mut cur = table;
    for (i, seg) in path[..path.len() - 1].iter().enumerate() {
        let next_is_index = path[i + 1].parse::<usize>().is_ok();
        let entry = cur.entry(seg.clone()).or_insert_with(|| {
            if next_is_index {
                toml::Value::Array(Vec::new())
            } else {
                toml::Value::Table(toml::Table::new())
            }
        });
        match entry {
            toml::Value::Table(t) => cur = t,
            toml::Value::Array(arr) if next_is_index => {
                let idx: usize = path[i + 1].parse().unwrap_or(0);
                while arr.len() <= idx {
                    arr.push(toml::Value::Table(toml::Table::new()));
                }
                let rest = &path[i + 2..];
                if let toml::Value::Table(t) = &mut arr[idx] {
                    if rest.is_empty() {
                        problems.push(ConfigProblem {
                            key: origin.to_string(),
                            message: "an override must end in a key".into(),
                        });
                    } else {
                        set_path(t, rest, value, problems, origin);
                    }
                }
                return;
            }
            _ => {
                problems.push(ConfigProblem {
                    key: path[..=i].join("."),
                    message: format!("{origin} treats it as a section, but it is a value"),
                });
                return;
            }
        }
    }
    cur.insert(path[path.len() - 1].clone(), value);
}

/// Deserializes one section, collecting unknown keys (every one) and a type error.
fn section<T: DeserializeOwned + Default>(
    value: Option<toml::Value>,
    prefix: &str,
    problems: &mut Vec<ConfigProblem>,
) -> T {
    let Some(value) = value else {
        return T::default();
    };
    let mut unknown = Vec::new();
    let result: Result<T, _> =
        serde_ignored::deserialize(value, |path| unknown.push(path.to_string()));
    for u in unknown {
        problems.push(ConfigProblem {
            key: format!("{prefix}.{u}"),
            message: "unknown key".into(),
        });
    }
    match result {
        Ok(t) => t,
        Err(e) => {
            // toml names the key on a last line, "in `retry_schedule`": move it into
            // the problem's key, where every other problem has it.
            let text = e.to_string();
            let (message, key) = match text.trim_end().rsplit_once("\nin `") {
                Some((m, k)) => {
                    let k = k.trim_end_matches('`');
                    let sep = if k.starts_with('[') { "" } else { "." };
                    (m.trim_end().to_string(), format!("{prefix}{sep}{k}"))
                }
                None => (text.trim_end().to_string(), prefix.to_string()),
            };
            problems.push(ConfigProblem { key, message });
            T::default()
        }
    }
}

/// Collects values and problems for one section's keys.
struct Checker<'a> {
    prefix: String,
    problems: &'a mut Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: format!("{}.{key}", self.prefix),
            message: message.into(),
        });
    }

    fn duration(&mut self, key: &str, v: Option<String>, default: &str) -> Duration {
        let s = v.unwrap_or_else(|| default.to_string());
        match parse_duration(&s) {
            Ok(d) if d.is_zero() => {
                self.problem(key, "must be longer than zero");
                parse_duration(default).unwrap_or_default()
            }
            Ok(d) => d,
            Err(e) => {
                self.problem(key, e.to_string());
                parse_duration(default).unwrap_or_default()
            }
        }
    }

    fn socket(&mut self, key: &str, v: &str) -> Option<SocketAddr> {
        match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    key,
                    format!("{v:?} is not an address and port such as \"127.0.0.1:8080\""),
                );
                None
            }
        }
    }

    fn host(&mut self, key: &str, v: Option<String>, default: &str) -> String {
        let s = v.unwrap_or_else(|| default.to_string());
        if !is_host_name(&s) {
            self.problem(key, format!("{s:?} is not a host name"));
        }
        s.to_ascii_lowercase()
    }

    fn url(&mut self, key: &str, v: Option<String>, default: &str) -> String {
        let s = v.unwrap_or_else(|| default.to_string());
        let ok = (s.starts_with("https://") || s.starts_with("http://"))
            && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
        if !ok {
            self.problem(key, format!("{s:?} is not an http:// or https:// URL"));
        }
        s.trim_end_matches('/').to_string()
    }

    /// An IP network (`10.0.0.0/8`) or one address (`192.0.2.7`, a network of one).
    fn network(&mut self, key: &str, text: &str) -> Option<ipnet::IpNet> {
        let text = text.trim();
        let parsed = text.parse::<ipnet::IpNet>().ok().or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        });
        if parsed.is_none() {
            self.problem(
                key,
                format!("{text:?} is not an IP address or network (such as \"10.0.0.0/8\")"),
            );
        }
        parsed
    }

    fn count(&mut self, key: &str, v: Option<u32>, default: u32) -> usize {
        match v.unwrap_or(default) {
            0 => {
                self.problem(key, "must be at least 1");
                default as usize
            }
            n => n as usize,
        }
    }

    fn timezone(&mut self, key: &str, v: Option<String>, default: &str) -> chrono_tz::Tz {
        let s = v.unwrap_or_else(|| default.to_string());
        match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                self.problem(
                    key,
                    format!("{s:?} is not a time zone name such as \"Asia/Tokyo\""),
                );
                chrono_tz::UTC
            }
        }
    }
}

/// Reads every section first (so unknown keys and type errors come first, in section
/// order), then checks each section's values with its own `*_section` function, which
/// names each problem by its key path. No section's check reads another section.
fn validate(mut table: toml::Table, problems: &mut Vec<ConfigProblem>) -> Config {
    const SECTIONS: &[&str] = &[
        "server",
        "store",
        "sender",
        "dkim",
        "delivery",
        "inbound",
        "flows",
        "log",
        "templates",
        "dns",
        "webhooks",
    ];
    let mut unknown: Vec<String> = table
        .keys()
        .filter(|k| !SECTIONS.contains(&k.as_str()))
        .cloned()
        .collect();
    unknown.sort();
    for k in unknown {
        problems.push(ConfigProblem {
            key: k.clone(),
            message: format!("unknown key (the sections are: {})", SECTIONS.join(", ")),
        });
    }

    let raw_server: RawServer = section(table.remove("server"), "server", problems);
    let raw_store: RawStore = section(table.remove("store"), "store", problems);
    let raw_sender: RawSender = section(table.remove("sender"), "sender", problems);
    let raw_delivery: RawDelivery = section(table.remove("delivery"), "delivery", problems);
    let raw_inbound: RawInbound = section(table.remove("inbound"), "inbound", problems);
    let raw_flows: RawFlows = section(table.remove("flows"), "flows", problems);
    let raw_log: RawLog = section(table.remove("log"), "log", problems);
    let raw_templates: RawTemplates = section(table.remove("templates"), "templates", problems);
    let raw_dns: RawDns = section(table.remove("dns"), "dns", problems);
    let raw_dkim: Vec<RawDkim> = match table.remove("dkim") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| section(Some(v), &format!("dkim[{i}]"), problems))
            .collect(),
        Some(_) => {
            problems.push(ConfigProblem {
                key: "dkim".into(),
                message: "must be written as [[dkim]] tables, one per key".into(),
            });
            Vec::new()
        }
    };

    let raw_webhooks: Vec<RawWebhook> = match table.remove("webhooks") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| section(Some(v), &format!("webhooks[{i}]"), problems))
            .collect(),
        Some(_) => {
            problems.push(ConfigProblem {
                key: "webhooks".into(),
                message: "must be written as [[webhooks]] tables, one per endpoint".into(),
            });
            Vec::new()
        }
    };
    let webhooks = webhooks_section(raw_webhooks, problems);
    let server = server_section(raw_server, problems);
    let store = store_section(raw_store, problems);
    let sender = sender_section(raw_sender, problems);
    let dkim = dkim_section(raw_dkim, problems);
    let delivery = delivery_section(raw_delivery, problems);
    let inbound = inbound_section(raw_inbound, problems);
    let flows = flows_section(raw_flows, problems);
    let log = log_section(raw_log, problems);
    let templates = templates_section(raw_templates, problems);
    let dns = dns_section(raw_dns, problems);

    Config {
        source: None,
        server,
        store,
        sender,
        dkim,
        webhooks,
        delivery,
        inbound,
        flows,
        log,
        templates,
        dns,
    }
}

/// `[[webhooks]]`: each endpoint's URL (unique), secret file, event filter and retry waits.
fn webhooks_section(
    raw_webhooks: Vec<RawWebhook>,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<WebhookConfig> {
    let mut webhooks: Vec<WebhookConfig> = Vec::new();
    for (i, w) in raw_webhooks.into_iter().enumerate() {
        let mut c = Checker {
            prefix: format!("webhooks[{i}]"),
            problems,
        };
        let url = w.url.unwrap_or_default();
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => c.problem(
                "url",
                format!("{url:?} is not an http:// or https:// URL such as \"https://app.example.jp/hooks/mailgate\""),
            ),
        }
        if webhooks.iter().any(|o| o.url == url) {
            c.problem(
                "url",
                format!("{url} is already an earlier [[webhooks]] entry"),
            );
        }
        let secret_file = match w.secret_file {
            Some(f) => {
                let p = PathBuf::from(f);
                check_readable_file(&mut c, "secret_file", &p);
                p
            }
            None => {
                c.problem(
                    "secret_file",
                    "missing: a file holding the signing secret (whsec_ and base64)",
                );
                PathBuf::new()
            }
        };
        let mut events = Vec::new();
        for name in w.events.unwrap_or_default() {
            match EventType::parse(&name) {
                Some(t) => events.push(t),
                None => c.problem(
                    "events",
                    format!(
                        "{name:?} is not an event type (they are: {})",
                        EventType::ALL.map(|t| t.as_str()).join(", ")
                    ),
                ),
            }
        }
        let retry_schedule = w
            .retry_schedule
            .unwrap_or_else(|| {
                WEBHOOK_RETRY_SCHEDULE
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .into_iter()
            .map(|d| c.duration("retry_schedule", Some(d), "5s"))
            .collect();
        webhooks.push(WebhookConfig {
            url,
            secret_file,
            events,
            allow_link_local: w.allow_link_local.unwrap_or(false),
            retry_schedule,
        });
    }
    webhooks
}

/// `[server]`: the HTTP listener, its limits and the public URL of links.
fn server_section(raw_server: RawServer, problems: &mut Vec<ConfigProblem>) -> ServerConfig {
    let mut c = Checker {
        prefix: "server".into(),
        problems,
    };
    let listen = raw_server.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    ServerConfig {
        listen: c
            .socket("listen", &listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        public_url: c.url("public_url", raw_server.public_url, "http://localhost:8080"),
        header_timeout: c.duration("header_timeout", raw_server.header_timeout, "10s"),
        keepalive_timeout: c.duration("keepalive_timeout", raw_server.keepalive_timeout, "15s"),
        body_timeout: c.duration("body_timeout", raw_server.body_timeout, "30s"),
        max_connections: c.count("max_connections", raw_server.max_connections, 1024),
        api_requests_per_minute: raw_server.api_requests_per_minute.unwrap_or(60_000),
        trusted_proxies: raw_server
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .filter_map(|text| c.network("trusted_proxies", text))
            .collect(),
    }
}

/// `[store]`: where records live, and for how long.
fn store_section(raw_store: RawStore, problems: &mut Vec<ConfigProblem>) -> StoreConfig {
    let mut c = Checker {
        prefix: "store".into(),
        problems,
    };
    let backend = store_backend(&mut c, &raw_store);
    StoreConfig {
        path: PathBuf::from(raw_store.path.unwrap_or_else(|| "data/store".into())),
        fsync: raw_store.fsync.unwrap_or(true),
        retention: c.duration("retention", raw_store.retention.clone(), "180d"),
        backend,
    }
}

/// `[sender]`: who mail is from and where its bounces go.
fn sender_section(raw_sender: RawSender, problems: &mut Vec<ConfigProblem>) -> SenderConfig {
    let mut c = Checker {
        prefix: "sender".into(),
        problems,
    };
    let from_text = raw_sender
        .from
        .unwrap_or_else(|| "mailgate <no-reply@example.com>".into());
    let from = match Mailbox::parse(&from_text) {
        Ok(m) => {
            if m.name.as_deref().is_some_and(|n| n.contains('@')) {
                c.problem(
                    "from",
                    "the display name looks like an address, which reads as phishing: use a name such as \"Example City Health Office\"",
                );
            }
            m
        }
        Err(e) => {
            c.problem("from", e.to_string());
            Mailbox {
                name: None,
                address: Address::parse("no-reply@example.com").expect("valid literal"),
            }
        }
    };
    let bounce_domain = c.host(
        "bounce_domain",
        raw_sender.bounce_domain,
        "bounces.example.com",
    );
    let hostname = c.host("hostname", raw_sender.hostname, "mail.example.com");
    let organization = raw_sender
        .organization
        .or_else(|| from.name.clone())
        .unwrap_or_else(|| "mailgate".into());
    let ip = raw_sender.ip.and_then(|v| match v.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            c.problem(
                "ip",
                format!("{v:?} is not an IP address such as \"192.0.2.10\""),
            );
            None
        }
    });
    SenderConfig {
        from,
        bounce_domain,
        hostname,
        organization,
        contact: raw_sender.contact.unwrap_or_default(),
        verp_secret_file: raw_sender.verp_secret_file.map(PathBuf::from),
        ip,
        max_message_size: match raw_sender.max_message_size {
            Some(n) if n < 16 * 1024 => {
                c.problem(
                    "max_message_size",
                    format!("{n} bytes cannot hold a message; give at least 16384"),
                );
                1024 * 1024
            }
            Some(n) => n,
            None => 1024 * 1024,
        },
    }
}

/// `[[dkim]]`: each signing key's domain, selector, algorithm and file.
fn dkim_section(raw_dkim: Vec<RawDkim>, problems: &mut Vec<ConfigProblem>) -> Vec<DkimKeyConfig> {
    let mut dkim = Vec::new();
    for (i, d) in raw_dkim.into_iter().enumerate() {
        let mut c = Checker {
            prefix: format!("dkim[{i}]"),
            problems,
        };
        let domain = match d.domain {
            Some(s) => c.host("domain", Some(s), ""),
            None => {
                c.problem("domain", "missing: the d= domain of this key");
                String::new()
            }
        };
        let selector = d.selector.unwrap_or_default();
        if selector.is_empty() || !is_host_name(&selector) {
            c.problem(
                "selector",
                format!("{selector:?} is not a DNS label such as \"mg2026a\""),
            );
        }
        let algorithm = match d.algorithm.as_deref().unwrap_or("ed25519") {
            "ed25519" => DkimAlgorithm::Ed25519,
            "rsa" | "rsa-sha256" => DkimAlgorithm::Rsa,
            other => {
                c.problem(
                    "algorithm",
                    format!("{other:?} is not one of \"ed25519\", \"rsa\""),
                );
                DkimAlgorithm::Ed25519
            }
        };
        let key_file = match d.key_file {
            Some(f) => {
                let p = PathBuf::from(f);
                check_readable_file(&mut c, "key_file", &p);
                p
            }
            None => {
                c.problem("key_file", "missing: the PEM file of the private key");
                PathBuf::new()
            }
        };
        dkim.push(DkimKeyConfig {
            domain,
            selector,
            algorithm,
            key_file,
        });
    }
    dkim
}

/// `[delivery]`: how mail leaves (outbox, relay, MX), its retries and limits.
fn delivery_section(
    raw_delivery: RawDelivery,
    problems: &mut Vec<ConfigProblem>,
) -> DeliveryConfig {
    let mut c = Checker {
        prefix: "delivery".into(),
        problems,
    };
    let mode = match raw_delivery.mode.as_deref().unwrap_or("outbox") {
        "outbox" => DeliveryMode::Outbox,
        "relay" => DeliveryMode::Relay,
        "mx" => DeliveryMode::Mx,
        other => {
            c.problem(
                "mode",
                format!("{other:?} is not one of \"outbox\", \"relay\", \"mx\""),
            );
            DeliveryMode::Outbox
        }
    };
    let relay_tls = match raw_delivery.relay_tls.as_deref().unwrap_or("starttls") {
        "none" => RelayTls::None,
        "starttls" => RelayTls::Starttls,
        "implicit" => RelayTls::Implicit,
        other => {
            c.problem(
                "relay_tls",
                format!("{other:?} is not one of \"none\", \"starttls\", \"implicit\""),
            );
            RelayTls::Starttls
        }
    };
    let relay = match &raw_delivery.relay {
        Some(r) => match parse_relay(r) {
            Ok(relay) => Some(relay),
            Err(e) => {
                c.problem("relay", e);
                None
            }
        },
        None => {
            if mode == DeliveryMode::Relay {
                c.problem(
                    "relay",
                    "missing: delivery.mode is \"relay\", so name the host:port",
                );
            }
            None
        }
    };
    let relay_password_file = raw_delivery.relay_password_file.map(PathBuf::from);
    let mut relay_password = None;
    if let Some(p) = &relay_password_file {
        check_readable_file(&mut c, "relay_password_file", p);
        if let Ok(text) = std::fs::read_to_string(p) {
            relay_password = Some(text.trim_end().to_string());
        }
    }
    let relay_login = match (&raw_delivery.relay_user, relay_password) {
        (Some(user), Some(password)) => Some(RelayLogin {
            user: user.clone(),
            password: password.into(),
        }),
        _ => None,
    };
    let schedule_text = raw_delivery.retry_schedule.unwrap_or_else(|| {
        ["1m", "2m", "5m", "10m", "20m", "40m", "1h"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut retry_schedule = Vec::new();
    for (i, s) in schedule_text.into_iter().enumerate() {
        match parse_duration(&s) {
            Ok(d) => retry_schedule.push(d),
            Err(e) => c.problem(&format!("retry_schedule[{i}]"), e.to_string()),
        }
    }
    if retry_schedule.is_empty() {
        retry_schedule.push(Duration::from_secs(3600));
    }
    DeliveryConfig {
        mode,
        outbox_dir: PathBuf::from(
            raw_delivery
                .outbox_dir
                .unwrap_or_else(|| "data/outbox".into()),
        ),
        relay,
        relay_tls,
        relay_user: raw_delivery.relay_user,
        relay_password_file,
        relay_login,
        max_connections: c.count("max_connections", raw_delivery.max_connections, 32),
        max_connections_per_domain: c.count(
            "max_connections_per_domain",
            raw_delivery.max_connections_per_domain,
            4,
        ),
        messages_per_connection: c.count(
            "messages_per_connection",
            raw_delivery.messages_per_connection,
            100,
        ),
        retry_schedule,
        message_lifetime: c.duration("message_lifetime", raw_delivery.message_lifetime, "24h"),
        connect_timeout: c.duration("connect_timeout", raw_delivery.connect_timeout, "30s"),
        command_timeout: c.duration("command_timeout", raw_delivery.command_timeout, "5m"),
        require_tls: raw_delivery.require_tls.unwrap_or(false),
        mx_port: match raw_delivery.mx_port {
            Some(0) => {
                c.problem("mx_port", "0 is not a port; leave the key out for 25");
                25
            }
            Some(p) => p,
            None => 25,
        },
    }
}

/// `[inbound]`: the bounce listener and its limits.
fn inbound_section(raw_inbound: RawInbound, problems: &mut Vec<ConfigProblem>) -> InboundConfig {
    let mut c = Checker {
        prefix: "inbound".into(),
        problems,
    };
    let listen = match raw_inbound.listen.as_deref() {
        None | Some("") => None,
        Some(s) => c.socket("listen", s),
    };
    InboundConfig {
        listen,
        max_message_size: raw_inbound.max_message_size.unwrap_or(10 * 1024 * 1024),
        max_connections: c.count("max_connections", raw_inbound.max_connections, 64),
        max_connections_per_address: c.count(
            "max_connections_per_address",
            raw_inbound.max_connections_per_address,
            4,
        ),
        timeout: c.duration("timeout", raw_inbound.timeout, "1m"),
        session_timeout: c.duration("session_timeout", raw_inbound.session_timeout, "10m"),
    }
}

/// `[flows]`: link and code lifetimes, time zones and the default locale.
fn flows_section(raw_flows: RawFlows, problems: &mut Vec<ConfigProblem>) -> FlowsConfig {
    let mut c = Checker {
        prefix: "flows".into(),
        problems,
    };
    let link_lifetime = c.duration("link_lifetime", raw_flows.link_lifetime, "24h");
    if link_lifetime > Duration::from_secs(24 * 3600) {
        c.problem(
            "link_lifetime",
            "at most 24h: a link that lives longer is a standing risk",
        );
    }
    let default_locale = raw_flows.default_locale.unwrap_or_else(|| "ja".into());
    if default_locale != "ja" && default_locale != "en" {
        c.problem(
            "default_locale",
            format!("{default_locale:?} is not one of \"ja\", \"en\""),
        );
    }
    FlowsConfig {
        link_lifetime,
        code_lifetime: c.duration("code_lifetime", raw_flows.code_lifetime, "10m"),
        // Unset (empty): the done page says the page can be closed, with no link.
        app_url: match raw_flows.app_url {
            Some(u) if !u.is_empty() => c.url("app_url", Some(u), ""),
            _ => String::new(),
        },
        timezone_ja: c.timezone("timezone_ja", raw_flows.timezone_ja, "Asia/Tokyo"),
        timezone_en: c.timezone("timezone_en", raw_flows.timezone_en, "UTC"),
        default_locale,
        code_resend_interval: match raw_flows.code_resend_interval.as_deref() {
            None => Duration::from_secs(60),
            Some("0s") => Duration::ZERO,
            Some(v) => c.duration("code_resend_interval", Some(v.to_string()), "1m"),
        },
    }
}

/// `[log]`: format and level.
fn log_section(raw_log: RawLog, problems: &mut Vec<ConfigProblem>) -> LogConfig {
    let mut c = Checker {
        prefix: "log".into(),
        problems,
    };
    let format = match raw_log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            c.problem(
                "format",
                format!("{other:?} is not one of \"text\", \"json\""),
            );
            LogFormat::Text
        }
    };
    LogConfig {
        format,
        level: raw_log.level.unwrap_or_else(|| "info".into()),
    }
}

/// `[templates]`: a folder of templates that replace the built-in ones.
fn templates_section(
    raw_templates: RawTemplates,
    problems: &mut Vec<ConfigProblem>,
) -> TemplatesConfig {
    let mut c = Checker {
        prefix: "templates".into(),
        problems,
    };
    let dir = raw_templates.dir.map(PathBuf::from);
    if let Some(d) = &dir
        && !d.is_dir()
    {
        c.problem("dir", format!("{} is not a folder", d.display()));
    }
    TemplatesConfig { dir }
}

/// `[dns]`: the name servers every lookup asks.
fn dns_section(raw_dns: RawDns, problems: &mut Vec<ConfigProblem>) -> DnsConfig {
    let mut c = Checker {
        prefix: "dns".into(),
        problems,
    };
    let nameservers = raw_dns
        .nameservers
        .unwrap_or_default()
        .iter()
        .filter_map(|v| match parse_nameserver(v) {
            Some(a) => Some(a),
            None => {
                c.problem(
                    "nameservers",
                    format!("{v:?} is not an IP address, with an optional port, such as \"127.0.0.1:5353\" or \"192.0.2.53\""),
                );
                None
            }
        })
        .collect();
    DnsConfig { nameservers }
}

/// A name server as `dns.nameservers` and `--nameserver` take it: `IP`, `IP:PORT` or
/// `[IPv6]:PORT`; port 53 when none is given.
pub fn parse_nameserver(v: &str) -> Option<SocketAddr> {
    let v = v.trim();
    v.parse::<SocketAddr>().ok().or_else(|| {
        v.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// `store.backend` and, for PostgreSQL, `store.url`, `store.password_file`,
/// `store.pool_size`, `store.lease` and `store.tls`. No problem text shows a password.
fn store_backend(c: &mut Checker<'_>, raw: &RawStore) -> StoreBackend {
    let pool_size = c.count("pool_size", raw.pool_size, 16);
    let lease = c.duration("lease", raw.lease.clone(), "60s");
    let tls = match raw.tls.as_deref().unwrap_or("disable") {
        "disable" => PgTls::Disable,
        "require" => PgTls::Require,
        other => {
            c.problem(
                "tls",
                format!("{other:?} is not one of \"disable\", \"require\""),
            );
            PgTls::Disable
        }
    };
    match raw.backend.as_deref().unwrap_or("sled") {
        "sled" => return StoreBackend::Sled,
        "postgres" => {}
        other => {
            c.problem(
                "backend",
                format!("{other:?} is not one of \"sled\", \"postgres\""),
            );
            return StoreBackend::Sled;
        }
    }
    let url = match &raw.url {
        Some(url) => {
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                c.problem(
                    "url",
                    format!(
                        "{} is not a PostgreSQL URL such as \
                         postgres://mailgate@127.0.0.1:5432/mailgate ({})",
                        redact_url(url),
                        redact_url(&e.to_string())
                    ),
                );
            }
            url.clone()
        }
        None => {
            c.problem(
                "url",
                "missing: store.backend is \"postgres\", so name the database, e.g. \
                 postgres://mailgate@127.0.0.1:5432/mailgate",
            );
            String::new()
        }
    };
    let mut password = None;
    if let Some(p) = raw.password_file.as_deref().map(PathBuf::from) {
        check_readable_file(c, "password_file", &p);
        if let Ok(text) = std::fs::read_to_string(&p) {
            password = Some(text.trim_end_matches(['\r', '\n']).to_string().into());
        }
    }
    StoreBackend::Postgres(PostgresSettings {
        url,
        password,
        pool_size,
        lease,
        tls,
    })
}

fn check_readable_file(c: &mut Checker<'_>, key: &str, p: &Path) {
    match std::fs::File::open(p) {
        Ok(_) if p.is_file() => {}
        Ok(_) => c.problem(key, format!("{} is not a file", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            c.problem(key, format!("{} does not exist", p.display()))
        }
        Err(e) => c.problem(key, format!("cannot read {}: {e}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)], flags: &[&str]) -> Result<Config, ConfigErrors> {
        let sources = ConfigSources {
            path: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            overrides: flags.iter().map(|s| s.to_string()).collect(),
        };
        Config::from_toml_str(text, &sources)
    }

    fn keys(e: &ConfigErrors) -> Vec<String> {
        e.problems.iter().map(|p| p.key.clone()).collect()
    }

    #[test]
    fn an_empty_file_gives_working_defaults() {
        let c = load("", &[], &[]).unwrap();
        assert_eq!(c.delivery.mode, DeliveryMode::Outbox);
        assert_eq!(c.flows.link_lifetime, Duration::from_secs(86_400));
        assert_eq!(c.flows.code_lifetime, Duration::from_secs(600));
        assert_eq!(c.store.path, PathBuf::from("data/store"));
    }

    #[test]
    fn overrides_apply_file_then_environment_then_flag() {
        let file = "[server]\nlisten = \"127.0.0.1:1000\"\n[flows]\nlink_lifetime = \"12h\"\n";
        let c = load(file, &[], &[]).unwrap();
        assert_eq!(c.server.listen.port(), 1000);

        let env = [("MAILGATE__SERVER__LISTEN", "127.0.0.1:2000")];
        let c = load(file, &env, &[]).unwrap();
        assert_eq!(c.server.listen.port(), 2000);
        assert_eq!(c.flows.link_lifetime, Duration::from_secs(12 * 3600));

        let c = load(file, &env, &["server.listen=127.0.0.1:3000"]).unwrap();
        assert_eq!(c.server.listen.port(), 3000);
    }

    #[test]
    fn environment_values_are_typed_when_they_parse_as_toml() {
        let c = load(
            "",
            &[
                ("MAILGATE__DELIVERY__MAX_CONNECTIONS", "7"),
                ("MAILGATE__STORE__FSYNC", "false"),
                ("MAILGATE__DELIVERY__RELAY", "127.0.0.1:2525"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.delivery.max_connections, 7);
        assert!(!c.store.fsync);
        assert_eq!(
            c.delivery.relay.as_ref().map(|r| r.to_string()).as_deref(),
            Some("127.0.0.1:2525")
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let e = load(
            "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"x\"\n",
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(keys(&e), vec!["server.lisen"]);
        let e = load("[sever]\nlisten = 1\n", &[], &[]).unwrap_err();
        assert_eq!(keys(&e), vec!["sever"]);
    }

    #[test]
    fn a_bad_duration_is_named() {
        let e = load("[flows]\nlink_lifetime = \"tomorrow\"\n", &[], &[]).unwrap_err();
        assert_eq!(keys(&e), vec!["flows.link_lifetime"]);
        assert!(e.problems[0].message.contains("tomorrow"));
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let text = "[[dkim]]\ndomain = \"example.jp\"\nselector = \"s1\"\nalgorithm = \"ed25519\"\nkey_file = \"/nonexistent/s1.pem\"\n";
        let e = load(text, &[], &[]).unwrap_err();
        assert_eq!(keys(&e), vec!["dkim[0].key_file"]);
        assert!(e.problems[0].message.contains("/nonexistent/s1.pem"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = "[server]\nlisten = \"nowhere\"\nextra = 1\n[flows]\ncode_lifetime = \"10\"\n[delivery]\nmode = \"pigeon\"\nretry_schedule = [\"1m\", \"later\"]\n";
        let e = load(text, &[], &[]).unwrap_err();
        let k = keys(&e);
        for expected in [
            "server.extra",
            "server.listen",
            "flows.code_lifetime",
            "delivery.mode",
            "delivery.retry_schedule[1]",
        ] {
            assert!(
                k.contains(&expected.to_string()),
                "{expected} missing from {k:?}"
            );
        }
    }

    #[test]
    fn an_override_problem_names_its_key_and_where_it_was_set() {
        let e = load(
            "[inbound]\nmax_connections = \"many\"\n",
            &[("MAILGATE__FLOWS__CODE_LIFETIME", "[5m")],
            &["delivery.retry_schedule=[1"],
        )
        .unwrap_err();
        let find = |key: &str| {
            e.problems
                .iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no problem named {key}: {e}"))
                .message
                .clone()
        };
        let flag = find("delivery.retry_schedule");
        assert!(
            flag.contains("the flag --set delivery.retry_schedule")
                && flag.contains("not valid TOML"),
            "{flag}"
        );
        let env = find("flows.code_lifetime");
        assert!(
            env.contains("the environment variable MAILGATE__FLOWS__CODE_LIFETIME"),
            "{env}"
        );
        // A key set in the file names no override: the file is named above the list.
        let file = find("inbound.max_connections");
        assert!(!file.contains("set by"), "{file}");
    }

    #[test]
    fn an_unknown_environment_key_is_an_error_too() {
        let e = load("", &[("MAILGATE__SERVER__LISTN", "x")], &[]).unwrap_err();
        assert_eq!(keys(&e), vec!["server.listn"]);
    }

    #[test]
    fn the_shipped_configuration_is_valid() {
        let text = include_str!("../config/mailgate.toml");
        let c = load(text, &[], &[]).unwrap();
        assert_eq!(c.delivery.mode, DeliveryMode::Outbox);
        assert!(c.store.path.starts_with("data"));
    }

    #[test]
    fn dns_nameservers_and_sender_ip_are_parsed_and_checked() {
        let c = load(
            "[dns]\nnameservers = [\"127.0.0.1:5353\", \"192.0.2.53\", \"[::1]:53\"]\n[sender]\nip = \"192.0.2.10\"\n",
            &[],
            &[],
        )
        .unwrap();
        let shown: Vec<String> = c.dns.nameservers.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["127.0.0.1:5353", "192.0.2.53:53", "[::1]:53"]);
        assert_eq!(c.sender.ip, Some("192.0.2.10".parse().unwrap()));
        let e = load(
            "[dns]\nnameservers = [\"ns1.example.jp\"]\n[sender]\nip = \"mail\"\n",
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(keys(&e), ["sender.ip", "dns.nameservers"]);
        assert!(load("", &[], &[]).unwrap().dns.nameservers.is_empty());
    }

    #[test]
    fn mx_port_is_25_unless_set_and_never_0() {
        assert_eq!(load("", &[], &[]).unwrap().delivery.mx_port, 25);
        let c = load("[delivery]\nmx_port = 2525\n", &[], &[]).unwrap();
        assert_eq!(c.delivery.mx_port, 2525);
        let e = load("[delivery]\nmx_port = 0\n", &[], &[]).unwrap_err();
        assert_eq!(keys(&e), ["delivery.mx_port"]);
    }

    #[test]
    fn the_store_backend_defaults_to_sled_and_postgres_keys_are_read() {
        assert!(matches!(
            load("", &[], &[]).unwrap().store.backend,
            StoreBackend::Sled
        ));
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pg.pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let text = format!(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://mailgate@db.example.jp/mailgate\"\n\
             password_file = \"{}\"\npool_size = 4\nlease = \"90s\"\ntls = \"require\"\n",
            pw.display()
        );
        let c = load(&text, &[], &[]).unwrap();
        let StoreBackend::Postgres(pg) = &c.store.backend else {
            panic!("{:?}", c.store.backend)
        };
        assert_eq!(pg.url, "postgres://mailgate@db.example.jp/mailgate");
        use secrecy::ExposeSecret;
        assert_eq!(pg.password.as_ref().unwrap().expose_secret(), "s3cret");
        assert_eq!((pg.pool_size, pg.lease), (4, Duration::from_secs(90)));
        assert_eq!(pg.tls, PgTls::Require);
        assert!(!format!("{c:?}").contains("s3cret"));
        let defaults = load(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://h/db\"\n",
            &[],
            &[],
        )
        .unwrap();
        let StoreBackend::Postgres(pg) = defaults.store.backend else {
            panic!()
        };
        assert_eq!((pg.pool_size, pg.lease), (16, Duration::from_secs(60)));
        assert_eq!(pg.tls, PgTls::Disable);
    }

    #[test]
    fn bad_store_keys_are_named_without_the_password() {
        let e = load("[store]\nbackend = \"mysql\"\n", &[], &[]).unwrap_err();
        assert_eq!(keys(&e), ["store.backend"]);
        let e = load("[store]\nbackend = \"postgres\"\n", &[], &[]).unwrap_err();
        assert_eq!(keys(&e), ["store.url"]);
        let text = "[store]\nbackend = \"postgres\"\nurl = \"postgres://u:hunter2@h:99999/db\"\n\
                    pool_size = 0\nlease = \"soon\"\ntls = \"maybe\"\npassword_file = \"/nonexistent/pw\"\n";
        let e = load(text, &[], &[]).unwrap_err();
        assert_eq!(
            keys(&e),
            [
                "store.pool_size",
                "store.lease",
                "store.tls",
                "store.url",
                "store.password_file"
            ]
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("postgres://u:***@h:99999/db"), "{e}");
    }
}

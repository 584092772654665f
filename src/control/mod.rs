//! The control channel: how `mailgate queue list` and the other commands reach the store
//! while `serve` holds it (sled lets one process open it), as `postqueue` talks to
//! Postfix.
//!
//! A command is a [`Request`]. [`Backend::connect`] picks the way to run it: through the
//! server's Unix socket (`control.sock` in the store's folder, mode 0600) when a server
//! answers there, else by opening the store itself. Both ways end in the same
//! [`execute`], so a command behaves the same with the server up or down. The wire
//! format is one JSON request line and one JSON response line per connection.

mod server;

pub use server::serve_socket;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::config::Config;
use crate::domain::address::AddressError;
use crate::services::Services;
use crate::store::{Store, StoreError};

/// Why a command did not run, in words for the operator who typed it: each variant
/// says what was wrong and with what (the address, the file, the event, the URL); a
/// store failure names where the store is. It crosses the control socket as its text,
/// so a command reads the same with the server up or down.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `send --to` is not an address.
    #[error("--to: {0}")]
    To(#[source] AddressError),
    /// An address argument (invite, reset, suppression) is not an address.
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Enqueue(#[from] crate::queue::EnqueueError),
    #[error(transparent)]
    Queue(#[from] crate::queue::control::ControlError),
    #[error(transparent)]
    Lookup(#[from] crate::timeline::LookupError),
    #[error(transparent)]
    Flow(#[from] crate::flow::FlowError),
    #[error(transparent)]
    Operator(#[from] crate::operators::OperatorError),
    #[error("an API key needs a name saying who uses it")]
    ApiKeyNeedsName,
    #[error("no live API key is called {name:?} (see mailgate apikey list)")]
    NoApiKey { name: String },
    /// A bounce file that is not a mail message.
    #[error("{file}: {source}")]
    NotMail {
        file: String,
        #[source]
        source: crate::intake::NotMail,
    },
    /// A bounce file the store could not take.
    #[error("{file}: {source}")]
    BounceStore {
        file: String,
        #[source]
        source: StoreError,
    },
    /// The bytes of a bounce were damaged on their way over the socket.
    #[error("the message did not arrive intact: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("{address} is not on the suppression list")]
    NotSuppressed { address: String },
    #[error("no event {event_id} in the store")]
    NoEvent { event_id: String },
    #[error("no [[webhooks]] entry wants event {event_id}'s type")]
    NoEndpointWants { event_id: String },
    #[error("{url} is not a [[webhooks]] url of this configuration")]
    NotAWebhook { url: String },
    /// The answer could not be written as JSON (a bug, not the operator's doing).
    #[error("cannot write the answer as JSON: {0}")]
    Answer(#[source] serde_json::Error),
}

/// A command that needs the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who holds the store.
    Status,
    /// Enqueue one message from a template.
    Send {
        to: String,
        name: Option<String>,
        template: String,
        locale: String,
        vars: Value,
    },
    /// The open messages.
    QueueList,
    /// What the queue is doing now (idle or not).
    QueueStatus,
    /// What the store holds, kind by kind.
    StoreStats,
    /// Try an open message now.
    QueueRetry { id: String },
    /// Cancel an open message.
    QueueCancel { id: String },
    /// The delivery timeline of an address or a message.
    Log { query: String },
    /// Create an API key; the answer holds the key.
    ApiKeyCreate { name: String },
    /// Take in one bounce message (base64, so any bytes survive JSON).
    BounceIngest { name: String, raw_base64: String },
    /// Bounces recorded since a time (ms since the epoch).
    Bounces { since_ms: u64 },
    /// The suppression list.
    SuppressionList,
    /// Suppress an address by hand.
    SuppressionAdd {
        address: String,
        note: String,
        who: String,
    },
    /// Take an address off the list.
    SuppressionRemove { address: String, who: String },
    /// Start a setup flow (an invitation); the answer is a `flow::Started`.
    Invite {
        address: String,
        name: Option<String>,
        locale: Option<String>,
        not_before_ms: Option<u64>,
        /// Skip addresses already invited or with an account (CSV runs).
        only_if_new: bool,
        dry_run: bool,
    },
    /// Start a reset flow; the answer is a `flow::Started`.
    Reset { address: String },
    /// Create an operator or replace its role and password; the password arrives
    /// already hashed (argon2id), so it never crosses the socket.
    OperatorAdd {
        name: String,
        role: String,
        password_hash: String,
        who: String,
    },
    /// Every operator (never a hash).
    OperatorList,
    /// Disable, enable or remove an operator (`action`: disable, enable, remove);
    /// every session of it ends.
    OperatorChange {
        name: String,
        action: String,
        who: String,
    },
    /// A new password (already hashed); every session of the operator ends.
    OperatorPasswd {
        name: String,
        password_hash: String,
        who: String,
    },
    /// Every API key (names and digest prefixes, never a key).
    ApiKeyList,
    /// Revoke every live key of this name.
    ApiKeyRevoke { name: String, who: String },
    /// Every webhook endpoint with its state and recent deliveries.
    WebhooksList,
    /// Send an event to every endpoint that wants it again.
    WebhookReplay { event_id: String, who: String },
    /// Let an endpoint disabled by a 410 get events again.
    WebhookEnable { url: String, who: String },
}

/// The answer on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(Value),
    Error(String),
}

/// Runs a request against open services.
pub async fn execute(services: &Services, request: Request) -> Result<Value, CommandError> {
    match request {
        Request::Status => Ok(serde_json::json!({
            "store": services.store.location(),
            "pid": std::process::id(),
        })),
        Request::Send {
            to,
            name,
            template,
            locale,
            vars,
        } => {
            let to = crate::domain::Address::parse(&to).map_err(CommandError::To)?;
            let out = crate::queue::Outgoing {
                to,
                to_name: name,
                template,
                locale,
                vars,
                lifetime: None,
                flow_id: None,
                not_before_ms: None,
            };
            let done = crate::queue::enqueue(&services.queue, out).await?;
            to_value(&done)
        }
        Request::QueueList => to_value(&crate::queue::control::list(&services.queue).await?),
        Request::StoreStats => to_value(&services.store.stats().await?),
        Request::QueueStatus => to_value(&services.queue.activity(crate::domain::now_ms()).await?),
        Request::QueueRetry { id } => {
            crate::queue::control::retry(&services.queue, &id, "command line")
                .await
                .map(Value::String)
                .map_err(CommandError::from)
        }
        Request::QueueCancel { id } => {
            crate::queue::control::cancel(&services.queue, &id, "command line")
                .await
                .map(Value::String)
                .map_err(CommandError::from)
        }
        Request::Log { query } => {
            to_value(&crate::timeline::search(&services.store, &query).await?)
        }
        Request::ApiKeyCreate { name } => {
            if name.trim().is_empty() {
                return Err(CommandError::ApiKeyNeedsName);
            }
            crate::apikey::create(&services.store, &name)
                .await
                .map(Value::String)
                .map_err(CommandError::from)
        }
        Request::BounceIngest { name, raw_base64 } => {
            let raw = decode_base64(&raw_base64)?;
            crate::intake::refuse_junk(&raw).map_err(|source| CommandError::NotMail {
                file: name.clone(),
                source,
            })?;
            let result = crate::intake::take(
                &services.intake,
                &raw,
                crate::domain::bounce::BounceSource::Ingest,
                &[],
            )
            .await
            .map_err(|source| CommandError::BounceStore { file: name, source })?;
            to_value(&result)
        }
        Request::Bounces { since_ms } => to_value(&services.store.bounces_since(since_ms).await?),
        Request::SuppressionList => to_value(&services.store.suppressions().await?),
        Request::SuppressionAdd { address, note, who } => {
            let a = parse_address(&address)?;
            let entry = crate::domain::bounce::Suppression {
                address: a.to_string(),
                since_ms: crate::domain::now_ms(),
                reason: format!("added by {who}"),
                evidence: note,
                message_id: None,
            };
            services
                .store
                .add_suppression(&entry, entry.since_ms)
                .await?;
            crate::audit::record(&services.store, &who, "suppression add", &a.to_string()).await?;
            Ok(Value::String(format!(
                "{a} is suppressed: mail to it now fails at once"
            )))
        }
        Request::SuppressionRemove { address, who } => {
            let a = parse_address(&address)?;
            match services
                .store
                .remove_suppression(&a.to_string(), crate::domain::now_ms())
                .await?
            {
                Some(old) => {
                    crate::audit::record_note(
                        &services.store,
                        &who,
                        "suppression remove",
                        &a.to_string(),
                        crate::audit::AuditNote::Unsuppressed {
                            reason: None,
                            was: old.reason.clone(),
                        },
                    )
                    .await?;
                    Ok(Value::String(format!(
                        "{a} removed from the suppression list (it was there for: {})",
                        old.reason
                    )))
                }
                None => Err(CommandError::NotSuppressed {
                    address: a.to_string(),
                }),
            }
        }
        Request::Invite {
            address,
            name,
            locale,
            not_before_ms,
            only_if_new,
            dry_run,
        } => {
            let request = crate::flow::StartFlow {
                kind: crate::domain::FlowKind::Setup,
                address: parse_address(&address)?,
                name,
                locale,
                not_before_ms,
                only_if_new,
                dry_run,
            };
            start_flow(services, request).await
        }
        Request::Reset { address } => {
            let request = crate::flow::StartFlow {
                kind: crate::domain::FlowKind::Reset,
                address: parse_address(&address)?,
                name: None,
                locale: None,
                not_before_ms: None,
                only_if_new: false,
                dry_run: false,
            };
            start_flow(services, request).await
        }
        Request::OperatorAdd {
            name,
            role,
            password_hash,
            who,
        } => operator_add(services, &name, &role, &password_hash, &who).await,
        Request::OperatorList => {
            to_value(&crate::operators::list(&services.store, crate::domain::now_ms()).await?)
        }
        Request::OperatorChange { name, action, who } => {
            operator_change(&services.store, &name, &action, &who)
                .await
                .map(Value::String)
        }
        Request::OperatorPasswd {
            name,
            password_hash,
            who,
        } => {
            crate::operators::set_password(&services.store, &name, &password_hash).await?;
            crate::audit::record(&services.store, &who, "operator passwd", &name).await?;
            Ok(Value::String(format!(
                "operator {name} has a new password; every session of it has ended"
            )))
        }
        Request::WebhooksList => to_value(
            &crate::webhooks::status(&services.store, &services.config.webhooks, 10).await?,
        ),
        Request::WebhookReplay { event_id, who } => {
            let now = crate::domain::now_ms();
            let to =
                crate::webhooks::replay(&services.store, &services.config.webhooks, &event_id, now)
                    .await?
                    .ok_or_else(|| CommandError::NoEvent {
                        event_id: event_id.clone(),
                    })?;
            if to.is_empty() {
                return Err(CommandError::NoEndpointWants { event_id });
            }
            crate::audit::record(&services.store, &who, "webhook replay", &event_id).await?;
            Ok(Value::String(format!(
                "event {event_id} queued again for {}",
                to.iter()
                    .map(|u| crate::webhooks::shown_url(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        Request::WebhookEnable { url, who } => {
            if !services.config.webhooks.iter().any(|w| w.url == url) {
                return Err(CommandError::NotAWebhook { url });
            }
            if !crate::webhooks::enable(&services.store, &url).await? {
                return Ok(Value::String(format!(
                    "{} was not disabled",
                    crate::webhooks::shown_url(&url)
                )));
            }
            crate::audit::record(
                &services.store,
                &who,
                "webhook enable",
                crate::webhooks::shown_url(&url),
            )
            .await?;
            Ok(Value::String(format!(
                "{} enabled: it gets the events from now on",
                crate::webhooks::shown_url(&url)
            )))
        }
        Request::ApiKeyList => to_value(&crate::apikey::list(&services.store).await?),
        Request::ApiKeyRevoke { name, who } => {
            let n = crate::apikey::revoke(&services.store, &name, crate::domain::now_ms()).await?;
            if n == 0 {
                return Err(CommandError::NoApiKey { name });
            }
            crate::audit::record_note(
                &services.store,
                &who,
                "apikey revoke",
                &name,
                crate::audit::AuditNote::Keys { count: n },
            )
            .await?;
            Ok(Value::String(format!(
                "{n} API key{} called {name} revoked: {} refused from now on",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it is" } else { "they are" }
            )))
        }
    }
}

/// Disables, enables or removes an operator, and audits it.
async fn operator_change(
    store: &Store,
    name: &str,
    action: &str,
    who: &str,
) -> Result<String, CommandError> {
    let change: crate::operators::Change = action.parse()?;
    let text = crate::operators::apply(store, name, change).await?;
    crate::audit::record(store, who, &format!("operator {}", change.as_str()), name).await?;
    Ok(text)
}

async fn operator_add(
    services: &Services,
    name: &str,
    role: &str,
    password_hash: &str,
    who: &str,
) -> Result<Value, CommandError> {
    let role: crate::operators::Role = role.parse()?;
    let existed = crate::operators::add(
        &services.store,
        name,
        role,
        password_hash,
        crate::domain::now_ms(),
    )
    .await?;
    let action = if existed {
        "operator update"
    } else {
        "operator add"
    };
    crate::audit::record_note(
        &services.store,
        who,
        action,
        name,
        crate::audit::AuditNote::Role {
            role: role.as_str().to_string(),
        },
    )
    .await?;
    Ok(Value::String(if existed {
        format!(
            "operator {name} updated: role {}, new password",
            role.as_str()
        )
    } else {
        format!("operator {name} added with role {}", role.as_str())
    }))
}

/// The raw bytes of a message sent over the socket as base64.
fn decode_base64(raw_base64: &str) -> Result<Vec<u8>, CommandError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(raw_base64)
        .map_err(CommandError::Base64)
}

fn parse_address(address: &str) -> Result<crate::domain::Address, CommandError> {
    Ok(crate::domain::Address::parse(address)?)
}

async fn start_flow(
    services: &Services,
    request: crate::flow::StartFlow,
) -> Result<Value, CommandError> {
    let started = crate::flow::start(&services.flows, request, crate::domain::now_ms()).await?;
    to_value(&started)
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, CommandError> {
    serde_json::to_value(v).map_err(CommandError::Answer)
}

/// How a command reaches the store.
pub enum Backend {
    /// Through a running server's socket.
    Remote(PathBuf),
    /// The store opened by this process.
    Local(Box<Services>),
}

impl Backend {
    /// Connects to a running server if one answers on the socket; otherwise opens the
    /// store directly (which fails, naming the path, if another process holds it).
    pub async fn connect(config: Config) -> anyhow::Result<Backend> {
        let socket = Store::socket_path(&config.store.path);
        if socket.exists() && UnixStream::connect(&socket).await.is_ok() {
            return Ok(Backend::Remote(socket));
        }
        let services = Services::open(config).await?;
        // As in `serve`: flows follow their mail.
        services
            .queue
            .lifecycle
            .subscribe(crate::flow::follow_messages(services.store.clone()));
        Ok(Backend::Local(Box::new(services)))
    }

    /// Runs one request.
    pub async fn call(&self, request: Request) -> anyhow::Result<Value> {
        match self {
            Backend::Local(services) => {
                let result = execute(services, request).await;
                services.store.flush().await?;
                // As text, as the socket carries it: the same words either way.
                result.map_err(|e| anyhow::Error::msg(e.to_string()))
            }
            Backend::Remote(socket) => call_socket(socket, &request).await,
        }
    }
}

async fn call_socket(socket: &Path, request: &Request) -> anyhow::Result<Value> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", socket.display()))?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut reader = BufReader::new(read);
    let mut answer = String::new();
    reader.read_line(&mut answer).await?;
    if answer.is_empty() {
        anyhow::bail!(
            "the server at {} closed the connection without answering",
            socket.display()
        );
    }
    match serde_json::from_str::<Response>(&answer)? {
        Response::Ok(v) => Ok(v),
        Response::Error(e) => Err(anyhow::Error::msg(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    async fn services(dir: &Path) -> Services {
        let text = format!(
            "[store]\npath = \"{}\"\nfsync = false\n[delivery]\noutbox_dir = \"{}\"\n",
            dir.join("store").display(),
            dir.join("outbox").display()
        );
        let config = Config::from_toml_str(&text, &ConfigSources::default()).unwrap();
        Services::open(config).await.unwrap()
    }

    #[tokio::test]
    async fn a_refused_command_says_what_and_with_what() {
        let dir = tempfile::tempdir().unwrap();
        let services = services(dir.path()).await;
        let err = execute(
            &services,
            Request::SuppressionRemove {
                address: "a@example.jp".into(),
                who: "test".into(),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, CommandError::NotSuppressed { address } if address == "a@example.jp"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "a@example.jp is not on the suppression list"
        );
        let err = execute(
            &services,
            Request::Send {
                to: "no-at-sign".into(),
                name: None,
                template: "notice".into(),
                locale: "en".into(),
                vars: Value::Null,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::To(_)), "{err:?}");
        assert_eq!(err.to_string(), "--to: the address \"no-at-sign\" has no @");
        let err = execute(
            &services,
            Request::BounceIngest {
                name: "empty.eml".into(),
                raw_base64: String::new(),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, CommandError::NotMail { file, .. } if file == "empty.eml"),
            "{err:?}"
        );
    }
}

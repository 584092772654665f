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
use crate::services::Services;
use crate::store::Store;

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
    /// Try an open message now.
    QueueRetry { id: String },
    /// Cancel an open message.
    QueueCancel { id: String },
    /// The delivery timeline of an address or a message.
    Log { query: String },
    /// Create an API key; the answer holds the key.
    ApiKeyCreate { name: String },
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
}

/// The answer on the wire.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(Value),
    Error(String),
}

/// Runs a request against open services. Errors are text meant for the operator.
pub async fn execute(services: &Services, request: Request) -> Result<Value, String> {
    match request {
        Request::Status => Ok(serde_json::json!({
            "store": services.store.path().display().to_string(),
            "pid": std::process::id(),
        })),
        Request::Send {
            to,
            name,
            template,
            locale,
            vars,
        } => {
            let to = crate::domain::Address::parse(&to).map_err(|e| format!("--to: {e}"))?;
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
            let done = crate::queue::enqueue(services, out)
                .await
                .map_err(|e| e.to_string())?;
            to_value(&done)
        }
        Request::QueueList => to_value(&crate::queue::control::list(services)?),
        Request::QueueRetry { id } => {
            crate::queue::control::retry(services, &id, "command line").map(Value::String)
        }
        Request::QueueCancel { id } => {
            crate::queue::control::cancel(services, &id, "command line").map(Value::String)
        }
        Request::Log { query } => to_value(&crate::timeline::lookup(services, &query)?),
        Request::ApiKeyCreate { name } => {
            if name.trim().is_empty() {
                return Err("an API key needs a name saying who uses it".into());
            }
            crate::apikey::create(&services.store, &name)
                .map(Value::String)
                .map_err(|e| e.to_string())
        }
        Request::Invite {
            address,
            name,
            locale,
            not_before_ms,
            only_if_new,
            dry_run,
        } => {
            start_flow(
                services,
                crate::domain::FlowKind::Setup,
                &address,
                name,
                locale,
                not_before_ms,
                only_if_new,
                dry_run,
            )
            .await
        }
        Request::Reset { address } => {
            start_flow(
                services,
                crate::domain::FlowKind::Reset,
                &address,
                None,
                None,
                None,
                false,
                false,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn start_flow(
    services: &Services,
    kind: crate::domain::FlowKind,
    address: &str,
    name: Option<String>,
    locale: Option<String>,
    not_before_ms: Option<u64>,
    only_if_new: bool,
    dry_run: bool,
) -> Result<Value, String> {
    let address = crate::domain::Address::parse(address).map_err(|e| e.to_string())?;
    let started = crate::flow::start(
        services,
        crate::flow::StartFlow {
            kind,
            address,
            name,
            locale,
            not_before_ms,
            only_if_new,
            dry_run,
        },
        crate::domain::now_ms(),
    )
    .await
    .map_err(|e| e.to_string())?;
    to_value(&started)
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// How a command reaches the store.
pub enum Backend {
    /// Through a running server's socket.
    Remote(PathBuf),
    /// The store opened by this process.
    Local(Services),
}

impl Backend {
    /// Connects to a running server if one answers on the socket; otherwise opens the
    /// store directly (which fails, naming the path, if another process holds it).
    pub async fn connect(config: Config) -> anyhow::Result<Backend> {
        let socket = Store::socket_path(&config.store.path);
        if socket.exists() && UnixStream::connect(&socket).await.is_ok() {
            return Ok(Backend::Remote(socket));
        }
        Ok(Backend::Local(Services::open(config)?))
    }

    /// True when the request went through a running server.
    pub fn is_remote(&self) -> bool {
        matches!(self, Backend::Remote(_))
    }

    /// Runs one request.
    pub async fn call(&self, request: Request) -> anyhow::Result<Value> {
        match self {
            Backend::Local(services) => {
                let result = execute(services, request).await;
                services.store.flush().await?;
                result.map_err(anyhow::Error::msg)
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

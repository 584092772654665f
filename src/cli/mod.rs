//! The command line (clap). Each subcommand parses its flags here and calls into the
//! library; output formatting for people (tables) and machines (`--json`) lives here too.

mod bounce;
mod check;
mod dkim;
mod dns;
mod invite;
mod operator;
mod outbox;
pub mod report;
mod store_commands;
mod store_migrate;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigSources, LogFormat};

/// mailgate: the mail that must arrive (account setup and password reset).
#[derive(Debug, Parser)]
#[command(name = "mailgate", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file (else MAILGATE_CONFIG, else config/mailgate.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Override one configuration key, e.g. --set delivery.mode=relay (repeatable;
    /// wins over the file and MAILGATE__ variables).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Write logs as JSON lines (same as log.format = "json").
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web pages, the API, the queue workers and the bounce listener.
    Serve,
    /// Check the configuration, keys and templates; print every problem.
    Check,
    /// Queue one message from a template (as the API's POST /api/v1/messages).
    Send {
        /// The recipient.
        #[arg(long)]
        to: String,
        /// The template: notice, invite, reset, code, password_changed.
        #[arg(long)]
        template: String,
        /// ja or en (default flows.default_locale).
        #[arg(long)]
        locale: Option<String>,
        /// The recipient's name.
        #[arg(long)]
        name: Option<String>,
        /// A template variable, as name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// The delivery timeline of an address or a message, newest message first; a
    /// domain or the start of an address lists the addresses that had mail.
    Log {
        /// An address, a message id, a Message-ID header value, a domain (@example.jp)
        /// or the start of an address (hanako@, hana).
        query: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Invite a person (a setup flow), or everyone in a CSV file.
    Invite {
        /// The address to invite (or use --csv).
        #[arg(required_unless_present = "csv", conflicts_with = "csv")]
        address: Option<String>,
        /// The person's name, used in the mail.
        #[arg(long)]
        name: Option<String>,
        /// ja or en (default flows.default_locale).
        #[arg(long)]
        locale: Option<String>,
        /// A CSV file with a header row: address,name,locale.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Send at this time: "2026-05-01 09:00" (flows.default_locale's zone) or RFC 3339.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Check the rows and report; mail nobody.
        #[arg(long)]
        dry_run: bool,
        /// With --csv: send a new link even to addresses already invited.
        #[arg(long)]
        resend: bool,
    },
    /// Mail a password-reset link to an address.
    Reset {
        /// The address.
        address: String,
    },
    /// The outgoing queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// API keys for the application.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Bounce reports.
    #[command(subcommand)]
    Bounce(BounceCommand),
    /// DKIM keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// The outbox folder (delivery.mode = "outbox").
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The bounce report: which addresses bounced, and why.
    Bounces {
        /// How far back, e.g. 7d or 24h.
        #[arg(long, default_value = "7d")]
        since: String,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Addresses mail is no longer sent to.
    #[command(subcommand)]
    Suppression(SuppressionCommand),
    /// Operators of the console.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The application's webhook endpoints (`[[webhooks]]`).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The store itself.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The DNS records to publish (DKIM, SPF, DMARC, MX, PTR).
    Dns {
        /// Resolve each record and say what is missing or differs.
        #[arg(long)]
        check: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Ask this DNS server (`IP` or `IP:PORT`; repeatable) instead of `dns.nameservers`.
        #[arg(long = "nameserver", value_name = "IP[:PORT]")]
        nameservers: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Generate a private key (PEM, mode 0600) and print its DNS record.
    Keygen {
        #[arg(long)]
        domain: String,
        /// A dated selector, e.g. mg2026a, so keys can be rotated.
        #[arg(long)]
        selector: String,
        /// ed25519 (RFC 8463) or rsa.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
        /// RSA key size (2048, 3072 or 4096).
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// The folder to write `SELECTOR.pem` into.
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Print the newest mail to an address (its text part), to follow its link.
    Show { address: String },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Bring the PostgreSQL schema up to this mailgate's version (store.backend =
    /// "postgres"; several nodes may run it at once) and print the version.
    Migrate,
    /// What the store holds: messages by status, flows by state, bounces, the
    /// suppression list, events, and its size on disk.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy every record of this configuration's sled store (the server stopped), open
    /// messages with their bytes, into an empty PostgreSQL database; prints counts.
    Copy {
        /// The target database, e.g. postgres://mailgate@db:5432/mailgate (a password
        /// from PGPASSWORD rather than the URL).
        #[arg(long)]
        to: String,
        /// TLS to the target: disable or require.
        #[arg(long, default_value = "disable")]
        tls: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// The open messages with their next try and last reply.
    List,
    /// Whether the worker is idle: nothing being sent, nothing due.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Try a message now.
    Retry { id: String },
    /// Cancel a message.
    Cancel { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key; it is printed once, and only its hash is stored.
    Create { name: String },
    /// Every key: name, a short id, created, revoked.
    List,
    /// Revoke every live key of this name: refused from the next request on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BounceCommand {
    /// Parse bounce messages and print what they say; needs no config or store.
    Parse {
        /// Message files; an mbox file's messages are parsed one by one (`FILE#1`, `FILE#2`).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// One JSON object per message, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Parse and record bounce messages (files, or - for standard input).
    Ingest {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator (or set a new role and password); the password is read from
    /// the terminal, or as one line from standard input.
    Add {
        name: String,
        /// admin (everything) or support (the delivery log).
        #[arg(long)]
        role: String,
    },
    /// Every operator with role, state and live sessions.
    List,
    /// Stop an operator logging in; every session of it ends at once.
    Disable { name: String },
    /// Let a disabled operator log in again.
    Enable { name: String },
    /// Remove an operator; every session of it ends at once.
    Remove { name: String },
    /// Set a new password (read as `add` reads it); every session of it ends at once.
    Passwd { name: String },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Each endpoint: enabled or not, and its recent deliveries.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Post a signed `webhook.test` event to URL now, with the secret of its
    /// [[webhooks]] entry, and print the answer.
    Test { url: String },
    /// Send a stored event again to every endpoint that wants it.
    Replay { event_id: String },
    /// Let an endpoint disabled by a 410 answer get events again.
    Enable { url: String },
    /// Print a new random signing secret (`whsec_...`) for a secret_file.
    Secret,
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// Every suppressed address with its reason and evidence.
    List,
    /// Stop sending to an address.
    Add {
        address: String,
        /// Why (kept as evidence).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Send to an address again.
    Remove { address: String },
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    use crate::control::Request;
    let result = match &cli.command {
        Command::Check => return check::run(&cli).await,
        Command::Store(StoreCommand::Migrate) => return store_migrate::migrate(&cli).await,
        Command::Store(StoreCommand::Copy { to, tls }) => {
            return store_migrate::copy(&cli, to, tls).await;
        }
        Command::Outbox(OutboxCommand::Show { address }) => return outbox::show(&cli, address),
        Command::Bounce(BounceCommand::Parse { files, json }) => {
            return bounce::parse(files, *json);
        }
        Command::Dkim(DkimCommand::Keygen {
            domain,
            selector,
            algorithm,
            bits,
            out,
        }) => return dkim::keygen(domain, selector, algorithm, *bits, out),
        Command::Dns {
            check,
            json,
            nameservers,
        } => return dns::dns(&cli, *check, *json, nameservers).await,
        Command::Bounce(BounceCommand::Ingest { files }) => {
            return bounce::ingest(&cli, files).await;
        }
        Command::Bounces { since, format } => return report::bounces(&cli, since, format).await,
        Command::Operator(OperatorCommand::Add { name, role }) => {
            return operator::add(&cli, name, role).await;
        }
        Command::Operator(OperatorCommand::Passwd { name }) => {
            return operator::passwd(&cli, name).await;
        }
        Command::Operator(OperatorCommand::List) => {
            return store_commands::run(&cli, Request::OperatorList, operator::print_list).await;
        }
        Command::Operator(
            OperatorCommand::Disable { name }
            | OperatorCommand::Enable { name }
            | OperatorCommand::Remove { name },
        ) => {
            let action = match &cli.command {
                Command::Operator(OperatorCommand::Disable { .. }) => "disable",
                Command::Operator(OperatorCommand::Enable { .. }) => "enable",
                _ => "remove",
            };
            let request = Request::OperatorChange {
                name: name.clone(),
                action: action.into(),
                who: operator_name(),
            };
            return store_commands::run(&cli, request, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Apikey(ApikeyCommand::List) => {
            return store_commands::run(&cli, Request::ApiKeyList, operator::print_keys).await;
        }
        Command::Apikey(ApikeyCommand::Revoke { name }) => {
            let request = Request::ApiKeyRevoke {
                name: name.clone(),
                who: operator_name(),
            };
            return store_commands::run(&cli, request, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Webhooks(command) => return webhooks::run(&cli, command).await,
        Command::Suppression(SuppressionCommand::List) => {
            return store_commands::run(&cli, Request::SuppressionList, report::print_suppressions)
                .await;
        }
        Command::Suppression(SuppressionCommand::Add { address, note }) => {
            let request = Request::SuppressionAdd {
                address: address.clone(),
                note: note.clone(),
                who: operator_name(),
            };
            return store_commands::run(&cli, request, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Suppression(SuppressionCommand::Remove { address }) => {
            let request = Request::SuppressionRemove {
                address: address.clone(),
                who: operator_name(),
            };
            return store_commands::run(&cli, request, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Send {
            to,
            template,
            locale,
            name,
            vars,
        } => {
            let mut map = serde_json::Map::new();
            for v in vars {
                match v.split_once('=') {
                    Some((k, val)) => {
                        map.insert(k.to_string(), serde_json::Value::String(val.to_string()));
                    }
                    None => {
                        eprintln!("mailgate: --var {v:?} must look like name=value");
                        return ExitCode::from(2);
                    }
                }
            }
            let request = Request::Send {
                to: to.clone(),
                name: name.clone(),
                template: template.clone(),
                locale: locale.clone().unwrap_or_else(|| "ja".into()),
                vars: serde_json::Value::Object(map),
            };
            return store_commands::run(&cli, request, |v| {
                println!("queued {}", v["message_id"].as_str().unwrap_or("?"));
            })
            .await;
        }
        Command::Log { query, json } => {
            let json = *json;
            return store_commands::run(
                &cli,
                Request::Log {
                    query: query.clone(),
                },
                |v| store_commands::print_log(v, json),
            )
            .await;
        }
        Command::Invite {
            address,
            name,
            locale,
            csv,
            at,
            dry_run,
            resend,
        } => {
            return invite::run(
                &cli,
                invite::InviteArgs {
                    address: address.as_deref(),
                    name: name.as_deref(),
                    locale: locale.as_deref(),
                    csv: csv.as_deref(),
                    at: at.as_deref(),
                    dry_run: *dry_run,
                    resend: *resend,
                },
            )
            .await;
        }
        Command::Reset { address } => return invite::reset(&cli, address).await,
        Command::Queue(QueueCommand::List) => {
            return store_commands::run(&cli, Request::QueueList, store_commands::print_queue)
                .await;
        }
        Command::Store(StoreCommand::Stats { json }) => {
            let json = *json;
            return store_commands::run(&cli, Request::StoreStats, move |v| {
                store_commands::print_store_stats(v, json)
            })
            .await;
        }
        Command::Queue(QueueCommand::Status { json }) => {
            let json = *json;
            return store_commands::run(&cli, Request::QueueStatus, move |v| {
                store_commands::print_queue_status(v, json)
            })
            .await;
        }
        Command::Queue(QueueCommand::Retry { id }) => {
            return store_commands::run(&cli, Request::QueueRetry { id: id.clone() }, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Queue(QueueCommand::Cancel { id }) => {
            return store_commands::run(&cli, Request::QueueCancel { id: id.clone() }, |v| {
                println!("{}", v.as_str().unwrap_or(""))
            })
            .await;
        }
        Command::Apikey(ApikeyCommand::Create { name }) => {
            return store_commands::run(&cli, Request::ApiKeyCreate { name: name.clone() }, |v| {
                println!("{}", v.as_str().unwrap_or(""));
                eprintln!(
                    "mailgate: this key is shown once; store it where the application reads it"
                );
            })
            .await;
        }
        Command::Serve => match load_config(&cli) {
            Ok(config) => crate::app::serve(config).await,
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where this command line takes its configuration from: `--config`, the environment,
/// `--set` flags, and `--log-json` as `log.format = "json"`.
pub fn config_sources(cli: &Cli) -> ConfigSources {
    let mut overrides = cli.overrides.clone();
    if cli.log_json {
        overrides.push("log.format=\"json\"".into());
    }
    ConfigSources::from_process(cli.config.clone(), overrides)
}

/// Keys whose override a command uses even when a server runs the command: where the
/// store (and so the server's socket) is, and this process's own logging.
fn applies_here(key: &str) -> bool {
    key.starts_with("store.") || key.starts_with("log.")
}

/// When `backend` is a running server, the command runs with the server's configuration:
/// says so on standard error, naming each `--set` flag and `MAILGATE__` variable this
/// command was given that therefore did nothing (a `flows.link_lifetime` set here does
/// not change the link the server mails).
pub fn note_server_config(cli: &Cli, backend: &crate::control::Backend) {
    if !matches!(backend, crate::control::Backend::Remote(_)) {
        return;
    }
    let flags = cli
        .overrides
        .iter()
        .filter_map(|o| o.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| !applies_here(k))
        .map(|k| format!("--set {k}"));
    let env = std::env::vars().filter_map(|(k, _)| {
        let key = k
            .strip_prefix("MAILGATE__")?
            .to_lowercase()
            .replace("__", ".");
        (!applies_here(&key)).then_some(k)
    });
    let ignored: Vec<String> = flags.chain(env).collect();
    if !ignored.is_empty() {
        eprintln!(
            "mailgate: a running server did this with its own configuration; ignored: {}",
            ignored.join(", ")
        );
    }
}

/// Who runs a command, for the audit log.
pub fn operator_name() -> String {
    format!(
        "command line ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    )
}

/// Loads the configuration and starts logging; on failure prints every problem.
pub fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    match Config::load(&config_sources(cli)) {
        Ok(config) => {
            crate::logging::init(config.log.format, &config.log.level);
            Ok(config)
        }
        Err(errors) => {
            crate::logging::init(LogFormat::Text, "warn");
            eprint!("mailgate: {errors}");
            Err(ExitCode::from(2))
        }
    }
}

//! Where the worker sends a message: the outbox, one relay, or the MX hosts of the
//! recipient's domain. Built once from the configuration (which has parsed and checked
//! every setting); a route names the destination messages are grouped under and opens
//! connections to it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{DeliveryMode, RelayTls};
use crate::delivery::Outcome;
use crate::delivery::mx;
use crate::delivery::smtp::{Connection, SmtpSettings, TlsPolicy};
use crate::domain::MessageRecord;

/// Where messages go.
#[derive(Clone)]
pub(crate) enum Route {
    Outbox(PathBuf),
    Relay {
        host: String,
        port: u16,
        settings: SmtpSettings,
    },
    Mx {
        resolver: Arc<hickory_resolver::TokioResolver>,
        port: u16,
        settings: SmtpSettings,
    },
}

impl Route {
    pub(crate) fn from_config(config: &crate::config::Config) -> anyhow::Result<Route> {
        let d = &config.delivery;
        let base = |tls: TlsPolicy, verify: bool| SmtpSettings {
            ehlo_name: config.sender.hostname.clone(),
            connect_timeout: d.connect_timeout,
            command_timeout: d.command_timeout,
            tls,
            verify_certificates: verify,
            credentials: None,
        };
        Ok(match d.mode {
            DeliveryMode::Outbox => Route::Outbox(d.outbox_dir.clone()),
            DeliveryMode::Relay => {
                let relay = d.relay.clone().ok_or_else(|| {
                    anyhow::anyhow!("delivery.relay: missing, and delivery.mode is \"relay\"")
                })?;
                let tls = match d.relay_tls {
                    RelayTls::None => TlsPolicy::Off,
                    RelayTls::Starttls => TlsPolicy::Required,
                    RelayTls::Implicit => TlsPolicy::Implicit,
                };
                let mut settings = base(tls, true);
                settings.credentials = d
                    .relay_login
                    .as_ref()
                    .map(|l| (l.user.clone(), l.password.clone()));
                Route::Relay {
                    host: relay.host,
                    port: relay.port,
                    settings,
                }
            }
            DeliveryMode::Mx => {
                // dns.nameservers applies to MX lookups too.
                let resolver = crate::dns::resolver(&config.dns.nameservers, false)?;
                let tls = if d.require_tls {
                    TlsPolicy::Required
                } else {
                    TlsPolicy::Opportunistic
                };
                Route::Mx {
                    resolver: Arc::new(resolver),
                    port: d.mx_port,
                    settings: base(tls, false),
                }
            }
        })
    }

    /// The destination a message is grouped under.
    pub(crate) fn destination(&self, record: &MessageRecord) -> String {
        match self {
            Route::Outbox(_) => "outbox".into(),
            Route::Relay { host, port, .. } => format!("{host}:{port}"),
            Route::Mx { .. } => record.to.domain().to_string(),
        }
    }
}

/// Opens a connection to the relay, or to the first MX host of the recipient's domain
/// that answers.
pub(crate) async fn open_connection(
    route: &Route,
    record: &MessageRecord,
) -> Result<Connection, Outcome> {
    match route {
        Route::Outbox(_) => unreachable!("the outbox has no connections"),
        Route::Relay {
            host,
            port,
            settings,
        } => Connection::open(host, *port, settings).await,
        Route::Mx {
            resolver,
            port,
            settings,
        } => mx::connect(resolver, record.to.domain(), *port, settings).await,
    }
}

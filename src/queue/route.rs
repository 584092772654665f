//! Where the worker sends a message: the outbox, one relay, or the MX hosts of the
//! recipient's domain. Built once from the configuration (which has parsed and checked
//! every setting); a route names the destination messages are grouped under and opens
//! connections to it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{DeliveryMode, RelayTls};
use crate::delivery::mx::{self, Route as MxRoute};
use crate::delivery::smtp::{Connection, SmtpSettings, TlsPolicy};
use crate::delivery::{AttemptReport, Outcome};
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
        Route::Mx { resolver, settings } => {
            let domain = record.to.domain();
            let hosts = match mx::route(resolver, domain).await {
                Ok(MxRoute::Hosts(h)) => h,
                Ok(MxRoute::NullMx) => {
                    return Err(Outcome::Failed(AttemptReport {
                        reply: Some(format!(
                            "{domain} publishes a null MX: it accepts no mail (RFC 7505)"
                        )),
                        enhanced_status: Some("5.1.10".into()),
                        ..AttemptReport::default()
                    }));
                }
                Err(mx::RouteError::NoSuchDomain(d)) => {
                    return Err(Outcome::Failed(AttemptReport {
                        reply: Some(format!("the domain {d} does not exist")),
                        enhanced_status: Some("5.1.2".into()),
                        ..AttemptReport::default()
                    }));
                }
                Err(e) => {
                    return Err(Outcome::Deferred(AttemptReport {
                        reply: Some(e.to_string()),
                        ..AttemptReport::default()
                    }));
                }
            };
            let mut last = None;
            for host in hosts {
                match Connection::open(&host, 25, settings).await {
                    Ok(c) => return Ok(c),
                    Err(outcome) => last = Some(outcome),
                }
            }
            Err(last.unwrap_or_else(|| Outcome::Deferred(AttemptReport::default())))
        }
    }
}

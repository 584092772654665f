//! Where to deliver for a domain: its MX hosts in preference order, or the domain itself
//! when it has none (RFC 5321 §5.1: the implicit MX). A null MX (RFC 7505: a single MX
//! of ".") means the domain accepts no mail: a permanent failure.

use std::net::SocketAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use super::smtp::{Connection, SmtpSettings};
use super::{AttemptReport, Outcome};
use crate::domain::Detail;

/// The hosts to try for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Host names, most preferred first.
    Hosts(Vec<String>),
    /// The domain publishes a null MX.
    NullMx,
}

/// Why no route was found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// The domain does not exist: permanent.
    #[error("the domain {0} does not exist (NXDOMAIN)")]
    NoSuchDomain(String),
    /// DNS did not answer: temporary.
    #[error("DNS lookup for {domain} failed: {detail}")]
    Lookup { domain: String, detail: String },
}

/// Looks up the route for `domain`.
pub async fn route(resolver: &TokioResolver, domain: &str) -> Result<Route, RouteError> {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    match resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => {
            let mut mx: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(m) => Some((
                        m.preference,
                        m.exchange.to_ascii().trim_end_matches('.').to_string(),
                    )),
                    _ => None,
                })
                .collect();
            mx.sort();
            Ok(order_hosts(domain, mx))
        }
        Err(e) if e.is_nx_domain() => Err(RouteError::NoSuchDomain(domain.to_string())),
        Err(e) if e.is_no_records_found() => Ok(Route::Hosts(vec![domain.to_string()])),
        Err(e) => Err(RouteError::Lookup {
            domain: domain.to_string(),
            detail: e.to_string(),
        }),
    }
}

/// Opens a connection to the first host of `domain`'s route that answers on `port`,
/// most preferred first, every name resolved through `resolver` (so `dns.nameservers`
/// governs the whole of MX delivery). A null MX or a domain that does not exist fails at
/// once; a host that has no address, refuses the connection or refuses in its greeting
/// gives way to the next; when none answers, the last host's outcome stands.
pub async fn connect(
    resolver: &TokioResolver,
    domain: &str,
    port: u16,
    settings: &SmtpSettings,
) -> Result<Connection, Outcome> {
    let hosts = match route(resolver, domain).await {
        Ok(Route::Hosts(h)) => h,
        Ok(Route::NullMx) => {
            return Err(Outcome::Failed(AttemptReport {
                reply: Some(
                    Detail::NullMx {
                        domain: domain.to_string(),
                    }
                    .to_string(),
                ),
                enhanced_status: Some("5.1.10".into()),
                ..AttemptReport::default()
            }));
        }
        Err(RouteError::NoSuchDomain(d)) => {
            return Err(Outcome::Failed(AttemptReport {
                reply: Some(Detail::NoSuchDomain { domain: d }.to_string()),
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
        let attempt = match addresses(resolver, &host, port).await {
            Ok(addrs) => Connection::open_at(&host, addrs, settings).await,
            Err(detail) => Err(Outcome::Deferred(AttemptReport {
                remote_host: Some(host.clone()),
                reply: Some(detail),
                ..AttemptReport::default()
            })),
        };
        match attempt {
            Ok(c) => return Ok(c),
            Err(outcome) => last = Some(outcome),
        }
    }
    Err(last.unwrap_or_else(|| Outcome::Deferred(AttemptReport::default())))
}

/// The host's addresses from the resolver; an IP literal stands for itself.
async fn addresses(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(l) => {
            let addrs: Vec<SocketAddr> = l.iter().map(|ip| SocketAddr::new(ip, port)).collect();
            if addrs.is_empty() {
                Err(Detail::NoAddress {
                    host: host.to_string(),
                }
                .to_string())
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(Detail::CannotResolve {
            host: host.to_string(),
            error: e.to_string(),
        }
        .to_string()),
    }
}

/// Orders MX answers (already sorted by preference) into a route.
pub fn order_hosts(domain: &str, mx: Vec<(u16, String)>) -> Route {
    if mx.len() == 1 && mx[0].1.is_empty() {
        return Route::NullMx;
    }
    let hosts: Vec<String> = mx
        .into_iter()
        .map(|(_, h)| h)
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        Route::Hosts(vec![domain.to_string()])
    } else {
        Route::Hosts(hosts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_preference_order_and_null_mx_is_recognised() {
        let r = order_hosts(
            "example.jp",
            vec![(5, "a.example.jp".into()), (10, "b.example.jp".into())],
        );
        assert_eq!(
            r,
            Route::Hosts(vec!["a.example.jp".into(), "b.example.jp".into()])
        );
        assert_eq!(
            order_hosts("example.jp", vec![(0, "".into())]),
            Route::NullMx
        );
        assert_eq!(
            order_hosts("example.jp", vec![]),
            Route::Hosts(vec!["example.jp".into()])
        );
    }
}

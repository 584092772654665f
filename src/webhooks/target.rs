//! Where a webhook may be posted. Private addresses are fine (the application usually
//! lives there); link-local and cloud metadata addresses are refused unless the endpoint
//! allows them, since a configured URL that resolves there would hand the metadata
//! service's answers (credentials) to whoever controls the name. The check runs in the
//! HTTP client's resolver, so it holds for the address actually connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for link-local and known metadata addresses.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => {
                (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                    || v6.is_unspecified()
            }
        },
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200) || v4.is_unspecified()
}

/// The system resolver, refusing names that resolve to a forbidden address.
#[derive(Debug, Default)]
pub struct GuardedResolver {
    pub allow_link_local: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_link_local;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow && let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a link-local or metadata address; set \
                     allow_link_local = true on this [[webhooks]] entry if that is meant",
                    bad.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_refused_and_private_is_not() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "100.100.100.200",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "10.0.0.5",
            "192.168.1.2",
            "127.0.0.1",
            "fd00::1",
            "203.0.113.9",
        ] {
            assert!(!forbidden(ok.parse().unwrap()), "{ok}");
        }
    }
}

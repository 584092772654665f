//! The DNS records an operator must publish for mail that passes every receiver's
//! checks: DKIM for each key (RFC 6376), SPF for the return-path (bounce) domain and for
//! the EHLO name (RFC 7208 §2.3, §2.4), DMARC for the From domain (RFC 7489), MX for the
//! bounce domain so bounces come back, and a reminder about the sending address's PTR.
//! `--check` resolves each one and says what is missing or differs.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use serde::Serialize;

use crate::config::Config;
use crate::dkim::Signers;

/// One record to publish.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// `TXT`, `MX` or `PTR`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: String,
    /// The TXT value split into strings of at most 255 bytes (RFC 1035 §3.3.14).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strings: Vec<String>,
    /// Why it is needed, in a line.
    pub purpose: String,
}

impl Record {
    /// The record as a zone-file line, ready to paste.
    pub fn zone_line(&self) -> String {
        match self.kind {
            "TXT" => {
                let quoted: Vec<String> = self
                    .strings
                    .iter()
                    .map(|s| format!("\"{}\"", s.replace('"', "\\\"")))
                    .collect();
                format!("{}. IN TXT {}", self.name, quoted.join(" "))
            }
            "MX" => format!("{}. IN MX {}.", self.name, self.value),
            _ => format!("; {} {}: {}", self.kind, self.name, self.value),
        }
    }
}

fn txt(name: String, value: String, purpose: &str) -> Record {
    let dkim_like = crate::dkim::DnsRecord {
        name: name.clone(),
        value: value.clone(),
    };
    Record {
        kind: "TXT",
        strings: dkim_like
            .strings()
            .into_iter()
            .map(str::to_string)
            .collect(),
        name,
        value,
        purpose: purpose.to_string(),
    }
}

/// Every record for this configuration and these signers.
pub fn records(config: &Config, signers: &Signers) -> Vec<Record> {
    let from_domain = config.sender.from.address.domain().to_string();
    let bounce = &config.sender.bounce_domain;
    let host = &config.sender.hostname;
    let mut out = Vec::new();
    for r in signers.dns_records() {
        out.push(txt(
            r.name.clone(),
            r.value.clone(),
            "DKIM public key: receivers check every signature with it",
        ));
    }
    out.push(txt(
        bounce.clone(),
        format!("v=spf1 a:{host} -all"),
        "SPF for the return path (MAIL FROM is bounce+…@this domain): only the sending host may use it",
    ));
    out.push(txt(
        host.clone(),
        "v=spf1 a -all".to_string(),
        "SPF for the EHLO name, which receivers check too",
    ));
    out.push(txt(
        format!("_dmarc.{from_domain}"),
        format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{from_domain}; adkim=r; aspf=r"),
        "DMARC: start at p=none and read the reports; after two clean weeks move to p=quarantine, then p=reject",
    ));
    out.push(Record {
        kind: "MX",
        name: bounce.clone(),
        value: format!("10 {host}"),
        strings: Vec::new(),
        purpose: "bounces come back to mailgate's bounce listener ([inbound] listen, reachable on port 25)".into(),
    });
    out.push(Record {
        kind: "PTR",
        name: "(the sending IP address)".into(),
        value: host.to_string(),
        strings: Vec::new(),
        purpose: format!("ask the IP's owner: its reverse name must be {host}, and {host} must resolve back to the IP"),
    });
    out
}

/// Warnings about the configuration's alignment (DMARC relaxed alignment, RFC 7489 §3.1).
pub fn alignment_warnings(
    config: &Config,
    signers_keys: &[crate::dkim::DkimKeyConfig],
) -> Vec<String> {
    let from_domain = config.sender.from.address.domain();
    let mut w = crate::dkim::alignment_warnings(signers_keys, from_domain);
    let bounce = &config.sender.bounce_domain;
    if !(bounce == from_domain || bounce.ends_with(&format!(".{from_domain}"))) {
        w.push(format!(
            "sender.bounce_domain {bounce} is not {from_domain} or under it: SPF will pass but not align with the From domain; DMARC then rests on DKIM alone"
        ));
    }
    w
}

/// The result of checking one record against DNS: what was found, what is expected, and
/// what a receiver will do about it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ok: bool,
    pub found: Vec<String>,
    pub message: String,
    pub expected: String,
    /// What a receiver does with the mail because of this record.
    pub receiver: String,
}

impl CheckResult {
    fn new(kind: &'static str, name: &str, found: Vec<String>) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            kind,
            ok: true,
            found,
            message: "published".into(),
            expected: String::new(),
            receiver: String::new(),
        }
    }

    fn fail(mut self, message: String, expected: String, receiver: &str) -> CheckResult {
        self.ok = false;
        self.message = message;
        self.expected = expected;
        self.receiver = receiver.to_string();
        self
    }
}

/// How long `dns --check` waits for the first answer before it says no server answers.
const REACHABLE_WITHIN: Duration = Duration::from_secs(5);

/// The resolver every lookup uses: `dns.nameservers` when set, else the system's.
/// `quick` (for `dns --check`): one attempt of 2 s per server, so an unreachable server
/// is reported at once; delivery keeps the resolver's usual patience.
pub fn resolver(nameservers: &[SocketAddr], quick: bool) -> anyhow::Result<TokioResolver> {
    let (config, options) = resolver_config(nameservers, quick)?;
    Ok(
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()?,
    )
}

fn resolver_config(
    nameservers: &[SocketAddr],
    quick: bool,
) -> anyhow::Result<(ResolverConfig, ResolverOpts)> {
    let (config, mut options) = if nameservers.is_empty() {
        hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| anyhow::anyhow!("cannot read the system DNS configuration: {e}"))?
    } else {
        let servers = nameservers
            .iter()
            .map(|a| {
                let mut udp = ConnectionConfig::udp();
                udp.port = a.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = a.port();
                NameServerConfig::new(a.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_parts(None, Vec::new(), servers),
            ResolverOpts::default(),
        )
    };
    if quick {
        options.timeout = Duration::from_secs(2);
        options.attempts = 1;
    }
    Ok((config, options))
}

/// An error that means no server answered (as opposed to an answer saying "no such
/// record").
fn unreachable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Timeout | NetError::NoConnections | NetError::Io(_) | NetError::Busy
    )
}

/// TXT values at `name`, each record's strings joined (RFC 7208 §3.3).
async fn txt_values(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, NetError> {
    match resolver.txt_lookup(format!("{name}.").as_str()).await {
        Ok(l) => Ok(l
            .answers()
            .iter()
            .filter_map(|a| match &a.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|b| String::from_utf8_lossy(b).to_string())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

async fn addresses(resolver: &TokioResolver, name: &str) -> Vec<IpAddr> {
    resolver
        .lookup_ip(format!("{name}.").as_str())
        .await
        .map(|l| l.iter().collect())
        .unwrap_or_default()
}

async fn mx_hosts(resolver: &TokioResolver, name: &str) -> Vec<(u16, String)> {
    resolver
        .mx_lookup(format!("{name}.").as_str())
        .await
        .map(|l| {
            l.answers()
                .iter()
                .filter_map(|a| match &a.data {
                    RData::MX(m) => Some((
                        m.preference,
                        m.exchange
                            .to_ascii()
                            .trim_end_matches('.')
                            .to_ascii_lowercase(),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves every record and judges it as a receiver would: DKIM keys and their type, SPF
/// evaluated for the sending address (exactly one record), DMARC parsed strictly and its
/// report address able to receive mail, the MX host exact, and the sending address's PTR
/// forward-confirmed. An error only when no DNS server answers at all.
pub async fn check(config: &Config, records: &[Record]) -> anyhow::Result<Vec<CheckResult>> {
    let ns = &config.dns.nameservers;
    let servers = if ns.is_empty() {
        "the system's DNS servers".to_string()
    } else {
        ns.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let resolver = resolver(ns, true)?;
    let bounce = &config.sender.bounce_domain;
    let host = &config.sender.hostname;
    // One question first, bounded, so an unreachable server is one clear error.
    match tokio::time::timeout(REACHABLE_WITHIN, txt_values(&resolver, bounce)).await {
        Err(_) => anyhow::bail!(
            "no DNS server answered within {} s (asked {servers}); set dns.nameservers or --nameserver",
            REACHABLE_WITHIN.as_secs()
        ),
        Ok(Err(e)) if unreachable(&e) => anyhow::bail!(
            "no DNS server answered (asked {servers}): {e}; set dns.nameservers or --nameserver"
        ),
        _ => {}
    }

    let ips: Vec<IpAddr> = match config.sender.ip {
        Some(ip) => vec![ip],
        None => addresses(&resolver, host).await,
    };
    let mut out = Vec::new();
    for r in records {
        let result = match r.kind {
            "TXT" if r.name.contains("._domainkey.") => check_dkim(&resolver, r).await?,
            "TXT" if r.name.starts_with("_dmarc.") => check_dmarc(&resolver, r).await?,
            "TXT" => {
                let ehlo = r.name == *host && r.name != *bounce;
                check_spf(config, ns, &resolver, r, &ips, ehlo).await?
            }
            "MX" => check_mx(&resolver, r).await,
            _ => check_ptr(&resolver, host, &ips, config.sender.ip.is_some()).await,
        };
        out.push(result);
    }
    Ok(out)
}

async fn check_dkim(resolver: &TokioResolver, r: &Record) -> anyhow::Result<CheckResult> {
    let found = txt_values(resolver, &r.name).await?;
    let res = CheckResult::new("TXT", &r.name, found.clone());
    let keys: Vec<&String> = found.iter().filter(|v| tag(v, "p").is_some()).collect();
    let expected = r.value.clone();
    let [v] = keys.as_slice() else {
        return Ok(if keys.is_empty() {
            res.fail("missing: no DKIM key record".into(), expected, "finds no key: every signature with this selector is dkim=permerror, and DMARC rests on SPF alone")
        } else {
            res.fail(
                format!("{} key records at one name", keys.len()),
                expected,
                "cannot tell which key is meant: the signature may fail (dkim=permerror)",
            )
        });
    };
    let want_p = tag(&r.value, "p").unwrap_or_default();
    if tag(v, "p").unwrap_or_default() != want_p {
        return Ok(res.fail(
            "a different key than the one mailgate signs with".into(),
            expected,
            "checks the signature with this key and fails it: dkim=fail on every message",
        ));
    }
    // RFC 6376 §3.6.1: k= defaults to rsa. The expected record names the key's type.
    let k_of = |v: &str| {
        tag(v, "k")
            .unwrap_or_else(|| "rsa".into())
            .to_ascii_lowercase()
    };
    let (k, want) = (k_of(v), k_of(&r.value));
    if k != want {
        return Ok(res.fail(
            format!("k={k}, but the key is {want}"),
            expected,
            "reads the key as the wrong type and fails every signature (dkim=permerror)",
        ));
    }
    Ok(res)
}

/// The value of `name=` in a tag list (`a=b; c=d`), spaces removed.
fn tag(record: &str, name: &str) -> Option<String> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.split_whitespace().collect())
    })
}

async fn check_spf(
    config: &Config,
    ns: &[SocketAddr],
    resolver: &TokioResolver,
    r: &Record,
    ips: &[IpAddr],
    ehlo: bool,
) -> anyhow::Result<CheckResult> {
    let found = txt_values(resolver, &r.name).await?;
    let res = CheckResult::new("TXT", &r.name, found.clone());
    let spf: Vec<&String> = found
        .iter()
        .filter(|v| {
            let l = v.trim_start().to_ascii_lowercase();
            l == "v=spf1" || l.starts_with("v=spf1 ")
        })
        .collect();
    let expected = r.value.clone();
    match spf.len() {
        0 => {
            return Ok(res.fail(
                "missing: no SPF record".into(),
                expected,
                "gets spf=none: the mail is not authorized by SPF and looks like spam",
            ));
        }
        1 => {}
        n => {
            return Ok(res.fail(
                format!("{n} SPF records at one name"),
                format!("exactly one: {expected}"),
                "stops at spf=permerror (RFC 7208 §4.5): SPF fails for every message",
            ));
        }
    }
    let host = &config.sender.hostname;
    if ips.is_empty() {
        return Ok(res.fail(
            format!("cannot be evaluated: {host} has no A or AAAA record and sender.ip is not set"),
            format!("an A record for {host} pointing at the sending address, or sender.ip"),
            "finds no address for the host SPF names: spf=fail",
        ));
    }
    let (rc, ro) = resolver_config(ns, true)?;
    let auth = mail_auth::MessageAuthenticator::new(rc, ro)
        .map_err(|e| anyhow::anyhow!("cannot start the SPF verifier: {e}"))?;
    for ip in ips {
        let sender = format!("bounce@{}", r.name);
        let params = if ehlo {
            mail_auth::spf::verify::SpfParameters::verify_ehlo(*ip, host, host)
        } else {
            mail_auth::spf::verify::SpfParameters::verify_mail_from(*ip, host, host, &sender)
        };
        let output = auth.verify_spf(params).await;
        let result = output.result();
        if result != mail_auth::SpfResult::Pass {
            let who = if ehlo {
                format!("the EHLO name {host}")
            } else {
                format!("MAIL FROM bounce+…@{}", r.name)
            };
            return Ok(res.fail(
                format!("SPF for {who} from {ip} evaluates to {}", spf_name(result)),
                format!("a record that passes for {ip}, e.g. {expected}"),
                "evaluates SPF for the sending address and does not get pass: spf=fail, the mail is distrusted or rejected",
            ));
        }
    }
    let mut res = res;
    if !spf.iter().any(|v| same_words(v, &expected)) {
        res.message = format!(
            "published, differs from the suggestion but passes for {}",
            ips.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(res)
}

fn spf_name(r: mail_auth::SpfResult) -> &'static str {
    use mail_auth::SpfResult::*;
    match r {
        Pass => "pass",
        Fail => "fail",
        SoftFail => "softfail",
        Neutral => "neutral",
        TempError => "temperror",
        PermError => "permerror",
        None => "none",
    }
}

fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// RFC 7489 §6.3: the tags receivers read, each with its allowed values.
fn dmarc_problems(v: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let tags: Vec<(String, String)> = v
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (t.to_ascii_lowercase(), String::new()),
        })
        .collect();
    if tags.first().is_none_or(|(k, v)| k != "v" || v != "DMARC1") {
        problems.push("v=DMARC1 must come first".to_string());
    }
    let policy = |v: &str| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "none" | "quarantine" | "reject"
        )
    };
    match tags.iter().find(|(k, _)| k == "p") {
        None => problems.push("p= is missing".into()),
        Some((_, v)) if !policy(v) => {
            problems.push(format!("p={v} is not none, quarantine or reject"))
        }
        _ => {}
    }
    for (k, v) in &tags {
        let bad = match k.as_str() {
            "sp" | "np" => !policy(v),
            "adkim" | "aspf" => !matches!(v.to_ascii_lowercase().as_str(), "r" | "s"),
            "pct" => v.parse::<u8>().map_or(true, |n| n > 100),
            "ri" => v.parse::<u32>().is_err(),
            "fo" => !v
                .split(':')
                .all(|o| matches!(o.trim(), "0" | "1" | "d" | "s")),
            "rf" => !v.eq_ignore_ascii_case("afrf"),
            "rua" | "ruf" => !v
                .split(',')
                .all(|u| u.trim().to_ascii_lowercase().starts_with("mailto:") && u.contains('@')),
            _ => false,
        };
        if bad {
            problems.push(format!("{k}={v} is not a valid value"));
        }
    }
    problems
}

async fn check_dmarc(resolver: &TokioResolver, r: &Record) -> anyhow::Result<CheckResult> {
    let found = txt_values(resolver, &r.name).await?;
    let res = CheckResult::new("TXT", &r.name, found.clone());
    let dmarc: Vec<&String> = found
        .iter()
        .filter(|v| v.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
        .collect();
    let expected = r.value.clone();
    let [v] = dmarc.as_slice() else {
        return Ok(if dmarc.is_empty() {
            res.fail("missing: no DMARC record".into(), expected, "applies no DMARC policy and sends no reports; some receivers (Gmail, Yahoo) refuse bulk mail without one")
        } else {
            res.fail(
                format!("{} DMARC records at one name", dmarc.len()),
                expected,
                "ignores DMARC for the domain (RFC 7489 §6.6.3), as if none were published",
            )
        });
    };
    let problems = dmarc_problems(v);
    if !problems.is_empty() {
        return Ok(res.fail(
            format!("invalid: {}", problems.join("; ")),
            expected,
            "discards a record it cannot parse: no DMARC policy applies and no reports are sent",
        ));
    }
    // Aggregate reports must have somewhere to go.
    let rua = tag(v, "rua").unwrap_or_default();
    for uri in rua.split(',').filter(|u| !u.is_empty()) {
        let Some((_, domain)) = uri.rsplit_once('@') else {
            continue;
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if mx_hosts(resolver, &domain).await.is_empty()
            && addresses(resolver, &domain).await.is_empty()
        {
            return Ok(res.fail(
                format!("rua domain {domain} has neither MX nor A record"),
                format!("an MX (or A) record for {domain}"),
                "cannot deliver its aggregate reports: you never see who sends as your domain",
            ));
        }
    }
    Ok(res)
}

async fn check_mx(resolver: &TokioResolver, r: &Record) -> CheckResult {
    let mx = mx_hosts(resolver, &r.name).await;
    let found: Vec<String> = mx.iter().map(|(p, h)| format!("{p} {h}")).collect();
    let res = CheckResult::new("MX", &r.name, found);
    let host = r
        .value
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_ascii_lowercase();
    if mx.iter().any(|(_, h)| *h == host) {
        return res;
    }
    let message = if mx.is_empty() {
        "missing: no MX record".to_string()
    } else {
        format!("points elsewhere, not to {host}")
    };
    res.fail(
        message,
        r.value.clone(),
        "sends bounces for your mail to another host (or nowhere): mailgate never learns of failures",
    )
}

/// Forward-confirmed reverse DNS (RFC 8601 §3, "iprev"): the sending address's PTR names
/// `host`, and `host` resolves back to it.
async fn check_ptr(
    resolver: &TokioResolver,
    host: &str,
    ips: &[IpAddr],
    configured: bool,
) -> CheckResult {
    if ips.is_empty() {
        return CheckResult::new("PTR", "(the sending IP address)", Vec::new()).fail(
            format!("no sending address known: set sender.ip, or publish an A record for {host}"),
            format!("a PTR for the sending address naming {host}"),
            "finds no reverse name for the address the mail comes from: iprev=fail, many refuse the connection",
        );
    }
    let forward = addresses(resolver, host).await;
    let mut checked = Vec::new();
    for ip in ips {
        let names: Vec<String> = resolver
            .reverse_lookup(*ip)
            .await
            .map(|l| {
                l.answers()
                    .iter()
                    .filter_map(|a| match &a.data {
                        RData::PTR(p) => {
                            Some(p.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let named = names.iter().any(|n| n == host);
        if !named || !forward.contains(ip) {
            let message = if names.is_empty() {
                format!("{ip} has no PTR record")
            } else if !named {
                format!("{ip} points to {}, not {host}", names.join(", "))
            } else {
                format!("{host} does not resolve back to {ip}")
            };
            return CheckResult::new("PTR", &ip.to_string(), names).fail(
                message,
                format!("PTR {ip} → {host}, and {host} → {ip}"),
                "sees no forward-confirmed reverse name (iprev=fail): many refuse the connection or score the mail as spam",
            );
        }
        checked.extend(names.into_iter().map(|n| format!("{ip} → {n}")));
    }
    let shown: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
    let mut res = CheckResult::new("PTR", &shown.join(", "), checked);
    if !configured {
        res.message = format!("published (address taken from {host}'s A record)");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmarc_values_are_checked_as_receivers_parse_them() {
        assert!(
            dmarc_problems("v=DMARC1; p=none; rua=mailto:d@example.jp; adkim=r; aspf=r").is_empty()
        );
        assert!(dmarc_problems("v=DMARC1; p=reject; pct=50; fo=0:d").is_empty());
        for bad in [
            "v=DMARC1; p=nonee",
            "v=DMARC1",
            "p=none; v=DMARC1",
            "v=DMARC1; p=none; adkim=x",
            "v=DMARC1; p=none; pct=120",
            "v=DMARC1; p=none; rua=dmarc@example.jp",
        ] {
            assert!(!dmarc_problems(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn tags_are_read_without_spaces() {
        assert_eq!(
            tag("v=DKIM1; k=ed25519; p=ab c", "p").as_deref(),
            Some("abc")
        );
        assert_eq!(tag("v=DKIM1; p=abc", "k"), None);
    }
}

//! The DNS records an operator must publish for mail that passes every receiver's
//! checks: DKIM for each key (RFC 6376), SPF for the return-path (bounce) domain and for
//! the EHLO name (RFC 7208 §2.3, §2.4), DMARC for the From domain (RFC 7489), MX for the
//! bounce domain so bounces come back, and a reminder about the sending address's PTR.
//! `--check` resolves each one and says what is missing or differs.

use hickory_resolver::TokioResolver;
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

/// The result of checking one record against DNS.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ok: bool,
    pub found: Vec<String>,
    pub message: String,
}

/// Resolves every record and compares.
pub async fn check(records: &[Record]) -> anyhow::Result<Vec<CheckResult>> {
    let resolver = TokioResolver::builder_tokio()?.build()?;
    let mut out = Vec::new();
    for r in records {
        let fqdn = format!("{}.", r.name);
        let (found, ok, message): (Vec<String>, bool, String) = match r.kind {
            "TXT" => match resolver.txt_lookup(fqdn.as_str()).await {
                Ok(l) => {
                    let values: Vec<String> = l
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
                        .collect();
                    let ok = values.iter().any(|v| txt_matches(&r.value, v));
                    let msg = if ok {
                        "published".to_string()
                    } else if values.is_empty() {
                        "missing".to_string()
                    } else {
                        "differs from what mailgate expects".to_string()
                    };
                    (values, ok, msg)
                }
                Err(e) => (Vec::new(), false, format!("missing ({e})")),
            },
            "MX" => match resolver.mx_lookup(fqdn.as_str()).await {
                Ok(l) => {
                    let values: Vec<String> = l
                        .answers()
                        .iter()
                        .filter_map(|a| match &a.data {
                            RData::MX(m) => Some(format!(
                                "{} {}",
                                m.preference,
                                m.exchange.to_ascii().trim_end_matches('.')
                            )),
                            _ => None,
                        })
                        .collect();
                    let host = r.value.split_whitespace().last().unwrap_or("");
                    let ok = values.iter().any(|v| v.ends_with(host));
                    (
                        values,
                        ok,
                        if ok {
                            "published".into()
                        } else {
                            "missing or points elsewhere".into()
                        },
                    )
                }
                Err(e) => (Vec::new(), false, format!("missing ({e})")),
            },
            _ => (
                Vec::new(),
                true,
                "check by hand with `dig -x <sending IP>`".into(),
            ),
        };
        out.push(CheckResult {
            name: r.name.clone(),
            kind: r.kind,
            ok,
            found,
            message,
        });
    }
    Ok(out)
}

/// True when a published TXT value says the same as the expected one: same tags and
/// values, whitespace aside; for DKIM the key (`p=`) must be equal.
pub fn txt_matches(expected: &str, found: &str) -> bool {
    let tags = |s: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = s
            .split(';')
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.split_whitespace().collect::<String>(),
                )
            })
            .collect();
        v.sort();
        v
    };
    if expected.starts_with("v=spf1") {
        return found.split_whitespace().collect::<Vec<_>>()
            == expected.split_whitespace().collect::<Vec<_>>();
    }
    let (e, f) = (tags(expected), tags(found));
    if expected.starts_with("v=DKIM1") {
        let p =
            |v: &Vec<(String, String)>| v.iter().find(|(k, _)| k == "p").map(|(_, v)| v.clone());
        return p(&e).is_some() && p(&e) == p(&f);
    }
    // DMARC: published as expected, or already tightened (quarantine/reject).
    f.iter().any(|(k, v)| k == "v" && v == "DMARC1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_values_match_despite_whitespace_and_dmarc_may_be_stricter() {
        assert!(txt_matches(
            "v=DKIM1; k=ed25519; p=abc",
            "v=DKIM1;k=ed25519;p=abc"
        ));
        assert!(!txt_matches(
            "v=DKIM1; k=ed25519; p=abc",
            "v=DKIM1; k=ed25519; p=xyz"
        ));
        assert!(txt_matches(
            "v=spf1 a:mail.example.jp -all",
            "v=spf1  a:mail.example.jp -all"
        ));
        assert!(txt_matches("v=DMARC1; p=none", "v=DMARC1; p=reject"));
    }
}

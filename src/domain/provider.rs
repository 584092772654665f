//! Which provider receives an address's mail (docomo, au/KDDI, SoftBank, Rakuten,
//! Gmail, Yahoo! JAPAN, Microsoft, or other), for the admin chart's share per provider.
//!
//! The grouping is data, in `providers.toml` beside this file and compiled in, so a
//! new carrier domain is a line there rather than a code branch (as the bounce rules
//! are). A domain decides first; the receiving MX host decides only where mailgate
//! itself chose it (`delivery.mode = "mx"`): a relay's host name says nothing about
//! the recipient.

use std::sync::LazyLock;

use serde::Deserialize;

/// The label of mail that no provider of the table receives.
pub const OTHER: &str = "other";

/// One provider of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// The stable name counters are kept under.
    pub id: String,
    /// Its name in Japanese and in English.
    pub ja: String,
    pub en: String,
    domains: Vec<String>,
    mx: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    provider: Vec<Provider>,
}

static TABLE: LazyLock<Vec<Provider>> = LazyLock::new(|| {
    let table: Table = toml::from_str(include_str!("providers.toml"))
        .unwrap_or_else(|e| panic!("src/domain/providers.toml does not parse: {e}"));
    table.provider
});

/// Every provider, in the table's order ("other" is not among them).
pub fn providers() -> &'static [Provider] {
    &TABLE
}

/// A provider's name in `lang` ("ja" or anything else for English); `other` and ids
/// no longer in the table are named as such.
pub fn name(id: &str, ja: bool) -> String {
    match providers().iter().find(|p| p.id == id) {
        Some(p) if ja => p.ja.clone(),
        Some(p) => p.en.clone(),
        None if id == OTHER && ja => "その他".into(),
        None if id == OTHER => "other".into(),
        None => id.to_string(),
    }
}

/// True when `host` is `name` or one of its subdomains (ASCII case ignored).
fn within(host: &str, name: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case(name)
        || (host.len() > name.len()
            && host.as_bytes()[host.len() - name.len() - 1] == b'.'
            && host[host.len() - name.len()..].eq_ignore_ascii_case(name))
}

/// The id of the provider that receives mail for `domain`, delivered to `mx_host`
/// when mailgate chose that host from the domain's MX records; [`OTHER`] when none.
pub fn provider_of(domain: &str, mx_host: Option<&str>) -> &'static str {
    let table = providers();
    if let Some(p) = table
        .iter()
        .find(|p| p.domains.iter().any(|d| within(domain, d)))
    {
        return &p.id;
    }
    mx_host
        .and_then(|host| table.iter().find(|p| p.mx.iter().any(|m| within(host, m))))
        .map_or(OTHER, |p| &p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_domains_and_their_subdomains_group_by_provider() {
        assert_eq!(provider_of("docomo.ne.jp", None), "docomo");
        assert_eq!(provider_of("EZweb.ne.jp", None), "au");
        assert_eq!(provider_of("au.com", None), "au");
        assert_eq!(provider_of("d.vodafone.ne.jp", None), "softbank");
        assert_eq!(provider_of("i.softbank.jp", None), "softbank");
        assert_eq!(provider_of("rakumail.jp", None), "rakuten");
        assert_eq!(provider_of("gmail.com", None), "gmail");
        assert_eq!(provider_of("yahoo.co.jp", None), "yahoo_japan");
        assert_eq!(provider_of("hotmail.co.jp", None), "microsoft");
        assert_eq!(provider_of("example.jp", None), OTHER);
    }

    #[test]
    fn a_lookalike_domain_is_not_a_subdomain() {
        assert_eq!(provider_of("notdocomo.ne.jp", None), OTHER);
        assert_eq!(provider_of("gmail.com.example.jp", None), OTHER);
    }

    #[test]
    fn an_mx_host_groups_a_company_domain_and_the_domain_wins_over_it() {
        assert_eq!(
            provider_of("city.example.lg.jp", Some("aspmx.l.google.com.")),
            "gmail"
        );
        assert_eq!(
            provider_of(
                "clinic.example.jp",
                Some("clinic-example-jp.mail.protection.outlook.com")
            ),
            "microsoft"
        );
        assert_eq!(
            provider_of("docomo.ne.jp", Some("aspmx.l.google.com")),
            "docomo"
        );
        assert_eq!(provider_of("example.jp", Some("mx.example.jp")), OTHER);
    }

    #[test]
    fn the_table_names_every_provider_in_both_languages_once() {
        let ids: Vec<&str> = providers().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "docomo",
                "au",
                "softbank",
                "rakuten",
                "gmail",
                "yahoo_japan",
                "microsoft"
            ]
        );
        for p in providers() {
            assert!(!p.ja.is_empty() && !p.en.is_empty(), "{}", p.id);
            assert!(!p.domains.is_empty(), "{}", p.id);
        }
        assert_eq!(name("au", false), "au/KDDI");
        assert_eq!(name(OTHER, true), "その他");
    }
}

//! Mail addresses as mailgate accepts them: one `local@domain` mailbox, no display
//! name, no comments, no CR or LF. Parsing happens once at the edge (API, CLI, CSV) so
//! everything inside works with a value that is known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated mailbox address. The domain part is kept lower-case, because domains are
/// case-insensitive (RFC 5321 §2.4) and the address index must find `A@Example.JP`
/// under `A@example.jp`; the local part is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    local: String,
    domain: String,
}

/// Why a string is not an address mailgate will send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is empty")]
    Empty,
    #[error("the address {0:?} has no @")]
    NoAt(String),
    #[error("the address {0:?} contains a space, a control character or a line break")]
    BadCharacter(String),
    #[error("the address {0:?} has an empty local part")]
    EmptyLocal(String),
    #[error("the address {0:?} has a domain that is not a host name")]
    BadDomain(String),
    #[error("the address {0:?} is longer than 254 characters")]
    TooLong(String),
}

impl Address {
    /// Parses a bare address (`user@example.jp`); surrounding spaces are trimmed.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 254 {
            return Err(AddressError::TooLong(s.to_string()));
        }
        if s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        {
            return Err(AddressError::BadCharacter(s.to_string()));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(AddressError::NoAt(s.to_string()));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(AddressError::EmptyLocal(s.to_string()));
        }
        if !is_host_name(domain) {
            return Err(AddressError::BadDomain(s.to_string()));
        }
        Ok(Address {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// The part before the @.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lower-case.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// A partial address that lists the addresses matching it (support's forgiving search):
/// every address at a domain (`@example.jp`), or every address that begins a certain
/// way (`hanako@`, `hana`). Both are answered from an index, in byte order, so the
/// store reads one index entry per address listed, not every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPattern {
    /// Addresses at exactly this domain (lower-case, without the `@`).
    Domain(String),
    /// Addresses that begin with this text, as written (local parts keep their case).
    Prefix(String),
}

impl AddressPattern {
    /// Reads a query already normalised (NFKC, trimmed) as a pattern: `@domain` is a
    /// domain, a text with no `@` or ending in its only `@` is a prefix. A whole address,
    /// a message id or anything with a space is not a pattern (`None`).
    pub fn parse(query: &str) -> Option<AddressPattern> {
        if query.is_empty()
            || query
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        {
            return None;
        }
        if let Some(domain) = query.strip_prefix('@') {
            return is_host_name(domain)
                .then(|| AddressPattern::Domain(domain.to_ascii_lowercase()));
        }
        match query.split_once('@') {
            None => Some(AddressPattern::Prefix(query.to_string())),
            Some((_, "")) => Some(AddressPattern::Prefix(query.to_string())),
            Some(_) => None,
        }
    }

    /// What the addresses matching this pattern begin with, read backwards for a domain
    /// (`@example.jp` is `pj.elpmaxe@`): the prefix to look up in an index of addresses,
    /// or of addresses reversed (see [`reversed`]).
    pub fn index_prefix(&self) -> String {
        match self {
            AddressPattern::Domain(d) => reversed(&format!("@{d}")),
            AddressPattern::Prefix(p) => p.clone(),
        }
    }

    /// True when the pattern is looked up among reversed addresses.
    pub fn is_domain(&self) -> bool {
        matches!(self, AddressPattern::Domain(_))
    }

    /// True when `address` matches (what an index lookup must agree with).
    pub fn matches(&self, address: &str) -> bool {
        match self {
            AddressPattern::Domain(d) => address
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain == d),
            AddressPattern::Prefix(p) => address.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPattern::Domain(d) => write!(f, "@{d}"),
            AddressPattern::Prefix(p) => f.write_str(p),
        }
    }
}

/// `text` with its characters in reverse order: the key of the reversed address index,
/// where every address at one domain shares a prefix (`pj.elpmaxe@…`).
pub fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

/// True for a DNS host name: labels of letters, digits and hyphens (or non-ASCII, for
/// internationalised names), none empty or longer than 63, at most 253 in all.
pub fn is_host_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 || s.starts_with('.') || s.ends_with('.') {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
    })
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Address::parse(&s)
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// A display name with an address, as in `From: Example Clinic <no-reply@example.jp>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Address,
}

impl Mailbox {
    /// Parses `Name <addr>` or a bare `addr`. The name may not contain CR, LF, `<` or `>`.
    pub fn parse(input: &str) -> Result<Mailbox, AddressError> {
        let s = input.trim();
        if s.contains(['\r', '\n']) {
            return Err(AddressError::BadCharacter(s.to_string()));
        }
        match (s.rfind('<'), s.ends_with('>')) {
            (Some(open), true) => {
                let name = s[..open].trim().trim_matches('"').trim();
                let address = Address::parse(&s[open + 1..s.len() - 1])?;
                Ok(Mailbox {
                    name: (!name.is_empty()).then(|| name.to_string()),
                    address,
                })
            }
            _ => Ok(Mailbox {
                name: None,
                address: Address::parse(s)?,
            }),
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_or_a_beginning_is_a_pattern_and_a_whole_address_is_not() {
        assert_eq!(
            AddressPattern::parse("@Example.JP"),
            Some(AddressPattern::Domain("example.jp".into()))
        );
        assert_eq!(
            AddressPattern::parse("hanako@"),
            Some(AddressPattern::Prefix("hanako@".into()))
        );
        assert_eq!(
            AddressPattern::parse("hana"),
            Some(AddressPattern::Prefix("hana".into()))
        );
        assert_eq!(AddressPattern::parse("hanako@example.jp"), None);
        assert_eq!(AddressPattern::parse("@"), None);
        assert_eq!(AddressPattern::parse("@not a domain"), None);
        assert_eq!(AddressPattern::parse("hana ko"), None);
        assert_eq!(AddressPattern::parse(""), None);
    }

    #[test]
    fn a_domain_pattern_is_a_prefix_of_its_addresses_reversed() {
        let p = AddressPattern::parse("@example.jp").unwrap();
        assert_eq!(p.index_prefix(), "pj.elpmaxe@");
        assert!(reversed("hanako@example.jp").starts_with(&p.index_prefix()));
        // A longer domain that ends the same way is not the domain.
        assert!(!reversed("hanako@myexample.jp").starts_with(&p.index_prefix()));
        assert!(!reversed("hanako@sub.example.jp").starts_with(&p.index_prefix()));
        assert!(p.matches("hanako@example.jp"));
        assert!(!p.matches("hanako@sub.example.jp"));
        // Characters, not bytes, are reversed: the key stays text.
        assert_eq!(reversed("山田@例え.jp"), "pj.え例@田山");
    }

    #[test]
    fn domain_is_lower_cased_and_local_part_kept() {
        let a = Address::parse(" Taro.Yamada@Clinic.Example.JP ").unwrap();
        assert_eq!(a.to_string(), "Taro.Yamada@clinic.example.jp");
    }

    #[test]
    fn header_injection_and_junk_are_refused() {
        assert!(matches!(
            Address::parse("a@b.jp\r\nBcc: x@y.jp"),
            Err(AddressError::BadCharacter(_))
        ));
        assert!(matches!(
            Address::parse("nobody"),
            Err(AddressError::NoAt(_))
        ));
        assert!(matches!(
            Address::parse("@b.jp"),
            Err(AddressError::EmptyLocal(_))
        ));
        assert!(matches!(
            Address::parse("a@-b.jp"),
            Err(AddressError::BadDomain(_))
        ));
        assert!(matches!(Address::parse(""), Err(AddressError::Empty)));
    }

    #[test]
    fn mailbox_with_display_name_parses() {
        let m = Mailbox::parse("\"Example Clinic\" <no-reply@example.jp>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Example Clinic"));
        assert_eq!(m.address.to_string(), "no-reply@example.jp");
        let bare = Mailbox::parse("no-reply@example.jp").unwrap();
        assert!(bare.name.is_none());
    }
}

//! DKIM: signing outgoing mail, loading and generating keys, and the DNS
//! records an operator publishes for them.
//!
//! Mail is signed once, at enqueue, so a retry sends the very bytes that were
//! signed. Every configured key adds one `DKIM-Signature` header: Ed25519
//! (RFC 8463) and RSA-SHA256 (RFC 6376), both `c=relaxed/relaxed`, over
//! [`SIGNED_HEADERS`], each oversigned (named once more than the message has
//! it) so that an added `From`, `Subject`, `Reply-To`, ... breaks the signature.
//!
//! The pieces:
//! - [`DkimKeyConfig`]: one `[[dkim]]` entry of the configuration.
//! - [`Signers::load`] parses every key once, reporting every problem at once,
//!   each naming the key and its file; [`Signers::sign`] then signs messages.
//! - [`alignment_warnings`]: keys whose `d=` would not count for DMARC.
//! - [`generate`] and [`write_key_file`]: `mailgate dkim keygen` and the
//!   development key of a fresh install.
//! - [`txt_record`], [`DnsRecord::zone_line`] and [`public_key_from_private`]:
//!   the TXT records of `mailgate dkim keygen` and `mailgate dns`.
//!
//! Keys are PEM files: RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8
//! (`BEGIN PRIVATE KEY`), 2048 to 4096 bits; Ed25519 as PKCS#8 v1 or v2
//! (`BEGIN PRIVATE KEY`). [`generate`] writes Ed25519 as v1 (RFC 8410), as
//! `openssl genpkey -algorithm ed25519` does, since OpenSSL 3.0 and Python's
//! cryptography refuse the v2 form that ring produces.

mod keys;
mod records;
mod sign;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use keys::{
    GeneratedKey, KeyProblem, MAX_RSA_BITS, MIN_RSA_BITS, RSA_DEFAULT_BITS, generate,
    public_key_from_private, write_key_file,
};
pub use records::{DnsRecord, txt_record};
pub use sign::{SIGNED_HEADERS, Signers};

/// A key algorithm a `[[dkim]]` entry can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519-SHA256 (RFC 8463): small keys, fast signing; `k=ed25519`.
    Ed25519,
    /// RSA-SHA256 (RFC 6376), 2048 bits or more; `k=rsa`.
    Rsa,
}

impl Algorithm {
    /// The configuration name: `"ed25519"` or `"rsa"` (also the `k=` tag).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    /// Parses `ed25519` or `rsa`, ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("ed25519") {
            Ok(Algorithm::Ed25519)
        } else if s.eq_ignore_ascii_case("rsa") {
            Ok(Algorithm::Rsa)
        } else {
            Err(format!(
                "unknown DKIM algorithm \"{s}\": expected \"ed25519\" or \"rsa\""
            ))
        }
    }
}

/// One `[[dkim]]` entry: which key signs for which domain under which selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeyConfig {
    /// The signing domain, `d=`. It should be the From domain or a parent or
    /// subdomain of it (see [`alignment_warnings`]).
    pub domain: String,
    /// The selector, `s=`: the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The key's algorithm; the key file must hold a key of this type.
    pub algorithm: Algorithm,
    /// The PEM private key.
    pub key_file: PathBuf,
}

/// Names one configured key in messages: its index in `[[dkim]]` and where
/// its public key lives, as in `dkim[1] (s2025a._domainkey.example.org)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// Position in the `[[dkim]]` list, from 0.
    pub index: usize,
    /// The key's `d=` domain.
    pub domain: String,
    /// The key's selector.
    pub selector: String,
}

impl KeyRef {
    /// The reference for entry `index` of a configuration list.
    pub fn new(index: usize, key: &DkimKeyConfig) -> Self {
        KeyRef {
            index,
            domain: key.domain.clone(),
            selector: key.selector.clone(),
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dkim[{}] ({}._domainkey.{})",
            self.index, self.selector, self.domain
        )
    }
}

/// Everything that can go wrong in this module.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    /// A key file cannot be used.
    #[error("{key}: key file {}: {problem}", path.display())]
    Key {
        /// Which key.
        key: KeyRef,
        /// Its file, as configured.
        path: PathBuf,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A key's domain or selector is not usable.
    #[error("{key}: {reason}")]
    Config {
        /// Which key.
        key: KeyRef,
        /// What is wrong.
        reason: String,
    },
    /// The message cannot be signed as it is (for instance it has no From).
    #[error("cannot sign the message: {0}")]
    Message(String),
    /// The cryptographic library failed to sign.
    #[error("{key}: signing failed: {reason}")]
    Signing {
        /// Which key.
        key: KeyRef,
        /// The library's message.
        reason: String,
    },
    /// A key could not be generated.
    #[error("cannot generate a DKIM key: {0}")]
    Generate(String),
    /// A selector or domain given to a function is not usable.
    #[error("invalid {what} \"{value}\": {reason}")]
    InvalidName {
        /// `"selector"` or `"domain"`.
        what: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`write_key_file`] found a file in its way and left it alone.
    #[error(
        "key file {} already exists and is left as it is: a key in use must not be \
         replaced; rotate with a new, dated selector instead",
        path.display()
    )]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A generated key could not be written.
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Warnings for keys whose `d=` does not align with `from_domain` under DMARC
/// relaxed alignment (RFC 7489 §3.1.1), one per key, plus one when there is no
/// key at all.
///
/// Alignment is judged simply: `d=` equal to the From domain, or one of the
/// two a parent domain of the other, ignoring case and a trailing dot. Sibling
/// subdomains (`d=mail.example.org` for `From: a@news.example.org`) do align
/// under the organisational-domain rule but get a warning here: sign with the
/// From domain itself or its parent to be sure.
pub fn alignment_warnings(keys: &[DkimKeyConfig], from_domain: &str) -> Vec<String> {
    let from = normalise_domain(from_domain);
    let mut warnings = Vec::new();
    if keys.is_empty() {
        warnings.push(format!(
            "no [[dkim]] key is configured: mail from {from} will be unsigned and fail DMARC"
        ));
    }
    for (index, key) in keys.iter().enumerate() {
        let d = normalise_domain(&key.domain);
        if !relaxed_aligned(&d, &from) {
            warnings.push(format!(
                "{}: d={d} does not align with the From domain {from} (DMARC relaxed \
                 alignment): receivers will not count this signature for DMARC; sign with \
                 {from} or a parent domain of it",
                KeyRef::new(index, key)
            ));
        }
    }
    warnings
}

/// Checks a domain or selector: dot-separated labels of ASCII letters, digits,
/// `-` and `_`, each 1 to 63 bytes, 253 bytes in all. Internationalised
/// domains must be given in their A-label (`xn--`) form.
pub(crate) fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err("it is longer than 253 bytes".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading, trailing or double dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("label \"{label}\" is longer than 63 bytes"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "it contains {c:?}; use letters, digits, '-', '_' and dots \
                 (internationalised names in their xn-- form)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label \"{label}\" starts or ends with '-'"));
        }
    }
    Ok(())
}

fn normalise_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `a` and `b` are normalised: equal, or one ends with `.` + the other.
fn relaxed_aligned(a: &str, b: &str) -> bool {
    fn is_parent(parent: &str, child: &str) -> bool {
        !parent.is_empty()
            && child.len() > parent.len() + 1
            && child.ends_with(parent)
            && child.as_bytes()[child.len() - parent.len() - 1] == b'.'
    }
    !a.is_empty() && (a == b || is_parent(a, b) || is_parent(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(domain: &str) -> DkimKeyConfig {
        DkimKeyConfig {
            domain: domain.into(),
            selector: "s1".into(),
            algorithm: Algorithm::Ed25519,
            key_file: "k.pem".into(),
        }
    }

    #[test]
    fn alignment() {
        let keys = [
            key("example.org"),
            key("Mail.Example.ORG."),
            key("vendor.example"),
            key("org"),
            key("ample.org"),
        ];
        let warnings = alignment_warnings(&keys, "example.org");
        // "org" is a parent (the simple rule has no public-suffix list).
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("dkim[2] (s1._domainkey.vendor.example): d=vendor.example")
        );
        assert!(warnings[1].starts_with("dkim[4] "), "{}", warnings[1]);

        assert!(alignment_warnings(&[key("example.org")], "news.EXAMPLE.org").is_empty());
        assert_eq!(alignment_warnings(&[], "example.org").len(), 1);
        assert_eq!(alignment_warnings(&[key("")], "example.org").len(), 1);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!("ED25519".parse::<Algorithm>(), Ok(Algorithm::Ed25519));
        assert_eq!("rsa".parse::<Algorithm>(), Ok(Algorithm::Rsa));
        assert!("dsa".parse::<Algorithm>().is_err());
        assert_eq!(Algorithm::Rsa.to_string(), "rsa");
    }
}

//! The DKIM TXT record of a key, as text to publish.

use super::Algorithm;

/// A TXT record to publish: `name` is the owner name without a trailing dot,
/// `value` the record's text as one string (as most DNS web forms want it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name, e.g. `s2025a._domainkey.example.org`.
    pub name: String,
    /// The full text, e.g. `v=DKIM1; k=ed25519; p=...`.
    pub value: String,
}

/// The longest character-string a TXT record can hold (RFC 1035 §3.3).
const MAX_STRING: usize = 255;

impl DnsRecord {
    /// The value cut into character-strings of at most 255 bytes, as a TXT
    /// record holds it; receivers join them without separator
    /// (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
    pub fn strings(&self) -> Vec<&str> {
        let mut rest = self.value.as_str();
        let mut out = Vec::with_capacity(rest.len() / MAX_STRING + 1);
        while rest.len() > MAX_STRING {
            let mut cut = MAX_STRING;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (head, tail) = rest.split_at(cut);
            out.push(head);
            rest = tail;
        }
        out.push(rest);
        out
    }

    /// The record as a zone-file line, for example
    /// `s1._domainkey.example.org. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...AQAB"`:
    /// values longer than 255 bytes become several quoted strings, with `"`
    /// and `\` escaped.
    pub fn zone_line(&self) -> String {
        let quoted: Vec<String> = self
            .strings()
            .into_iter()
            .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{}. IN TXT {}", self.name, quoted.join(" "))
    }
}

/// The DKIM key record (RFC 6376 §3.6.1) for `public_key_b64` (the `p=` of
/// [`public_key_from_private`](super::public_key_from_private) or
/// [`GeneratedKey`](super::GeneratedKey)), published at
/// `<selector>._domainkey.<domain>`.
pub fn txt_record(
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    public_key_b64: &str,
) -> DnsRecord {
    DnsRecord {
        name: format!(
            "{}._domainkey.{}",
            selector,
            domain.trim().trim_end_matches('.')
        ),
        value: format!("v=DKIM1; k={}; p={}", algorithm.as_str(), public_key_b64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_record_is_one_string() {
        let record = txt_record("Example.org.", "s1", Algorithm::Ed25519, "AAAA");
        assert_eq!(record.name, "s1._domainkey.Example.org");
        assert_eq!(record.value, "v=DKIM1; k=ed25519; p=AAAA");
        assert_eq!(
            record.zone_line(),
            "s1._domainkey.Example.org. IN TXT \"v=DKIM1; k=ed25519; p=AAAA\""
        );
    }

    #[test]
    fn long_record_is_split_at_255_bytes() {
        let p = "A".repeat(392); // a 2048-bit SubjectPublicKeyInfo in base64
        let record = txt_record("example.org", "s1", Algorithm::Rsa, &p);
        let strings = record.strings();
        assert_eq!(strings.len(), 2);
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), record.value);
        let line = record.zone_line();
        assert_eq!(
            line,
            format!(
                "s1._domainkey.example.org. IN TXT \"{}\" \"{}\"",
                strings[0], strings[1]
            )
        );

        for (len, count) in [(255, 1), (256, 2), (510, 2), (511, 3), (0, 1)] {
            let r = DnsRecord {
                name: "n".into(),
                value: "x".repeat(len),
            };
            assert_eq!(r.strings().len(), count, "{len}");
            assert!(r.strings().iter().all(|s| s.len() <= 255));
        }
    }

    #[test]
    fn split_respects_characters_and_escapes() {
        let r = DnsRecord {
            name: "n".into(),
            value: format!("{}é\"\\", "x".repeat(254)),
        };
        let strings = r.strings();
        assert_eq!(strings[0].len(), 254);
        assert_eq!(strings[1], "é\"\\");
        assert!(
            r.zone_line().ends_with(" \"é\\\"\\\\\""),
            "{}",
            r.zone_line()
        );
    }
}

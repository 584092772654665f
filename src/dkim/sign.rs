//! Signing messages with every configured key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{HashAlgorithm, SigningKey as _};
use mail_auth::common::headers::{HeaderWriter as _, Writable as _};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use super::keys::{SigningKey, load_key};
use super::records::{DnsRecord, txt_record};
use super::{Algorithm, DkimError, DkimKeyConfig, KeyProblem, KeyRef, check_dns_name};

/// The header fields every signature covers, each *oversigned*: `h=` names
/// every instance the message has, bottom up, and then each name once more.
/// That extra, unmatched entry signs the absence of one more instance
/// (RFC 6376 §5.4.2, §8.15), so a forger cannot add a second `Subject`, a
/// `Reply-To` the message lacked or another `To` without breaking the
/// signature, whether the added field goes above or below the signed one.
pub const SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "Content-Type",
    "MIME-Version",
    "Auto-Submitted",
];

/// One ready key: parsed once at load, used for every message.
struct KeySigner {
    key_ref: KeyRef,
    algorithm: Algorithm,
    public_key_b64: String,
    signer: DkimSigner<SigningKey, Done>,
}

/// The signing keys of the configuration, parsed once and shared by every
/// message (`Signers` is `Send + Sync`; wrap it in an `Arc`).
pub struct Signers {
    signers: Vec<KeySigner>,
}

impl fmt::Debug for Signers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.signers.iter().map(|s| (&s.key_ref, s.algorithm)))
            .finish()
    }
}

impl Signers {
    /// Parses every key of `keys`. All problems are reported at once, each
    /// naming the key (`dkim[i] (selector._domainkey.domain)`) and its file:
    /// a missing or unreadable file, a key of the other algorithm, an RSA key
    /// under 2048 bits, a file that is not a PEM private key, an invalid
    /// domain or selector, or two entries with the same selector and domain.
    ///
    /// Relative `key_file` paths are read from the current directory.
    /// An empty `keys` gives `Signers` that sign nothing.
    pub fn load(keys: &[DkimKeyConfig]) -> Result<Signers, Vec<DkimError>> {
        let mut errors = Vec::new();
        let mut signers = Vec::with_capacity(keys.len());
        for (index, config) in keys.iter().enumerate() {
            let key_ref = KeyRef::new(index, config);
            let errors_before = errors.len();
            for (what, value) in [("domain", &config.domain), ("selector", &config.selector)] {
                if let Err(reason) = check_dns_name(value) {
                    errors.push(DkimError::Config {
                        key: key_ref.clone(),
                        reason: format!("invalid {what} \"{value}\": {reason}"),
                    });
                }
            }
            if let Some(first) = keys[..index].iter().position(|k| {
                k.domain.eq_ignore_ascii_case(&config.domain)
                    && k.selector.eq_ignore_ascii_case(&config.selector)
            }) {
                errors.push(DkimError::Config {
                    key: key_ref.clone(),
                    reason: format!(
                        "same selector and domain as dkim[{first}]; each key needs its own selector"
                    ),
                });
            }
            let loaded = std::fs::read(&config.key_file)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => KeyProblem::Missing,
                    _ => KeyProblem::Unreadable(e),
                })
                .and_then(|pem| load_key(config.algorithm, &pem));
            match loaded {
                Err(problem) => errors.push(DkimError::Key {
                    key: key_ref,
                    path: config.key_file.clone(),
                    problem,
                }),
                Ok(_) if errors.len() > errors_before => {}
                Ok(loaded) => signers.push(KeySigner {
                    algorithm: config.algorithm,
                    public_key_b64: loaded.public_key_b64,
                    signer: DkimSigner::from_key(loaded.key)
                        .domain(config.domain.clone())
                        .selector(config.selector.clone())
                        .headers(SIGNED_HEADERS)
                        .header_canonicalization(Canonicalization::Relaxed)
                        .body_canonicalization(Canonicalization::Relaxed),
                    key_ref,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Signers { signers })
        } else {
            Err(errors)
        }
    }

    /// How many keys sign each message.
    pub fn len(&self) -> usize {
        self.signers.len()
    }

    /// True when no key is configured: [`sign`](Self::sign) then returns the
    /// message unchanged.
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }

    /// The DKIM TXT record of each key, in configuration order.
    pub fn dns_records(&self) -> Vec<DnsRecord> {
        self.signers
            .iter()
            .map(|s| {
                txt_record(
                    &s.key_ref.domain,
                    &s.key_ref.selector,
                    s.algorithm,
                    &s.public_key_b64,
                )
            })
            .collect()
    }

    /// Signs `message` (CRLF line endings, as sent over SMTP) with every key
    /// and returns it with one `DKIM-Signature` header per key prepended, in
    /// configuration order. `now` (seconds since the Unix epoch) becomes
    /// `t=`; the output depends only on the keys, the message and `now`.
    ///
    /// The message must have exactly one `From` header field.
    pub fn sign(&self, message: &[u8], now: u64) -> Result<Vec<u8>, DkimError> {
        if self.signers.is_empty() {
            return Ok(message.to_vec());
        }
        let parsed = split_message(message)?;
        let from_count = parsed
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"From"))
            .count();
        if from_count != 1 {
            return Err(DkimError::Message(format!(
                "it has {from_count} From header fields; exactly one is required"
            )));
        }

        // The fields to sign, in message order, and the h= list: the fields
        // found, bottom up, then every name of SIGNED_HEADERS once more
        // (signed as absent: the oversigning entries).
        let mut selected = Vec::with_capacity(SIGNED_HEADERS.len() + 4);
        let mut h = Vec::with_capacity(2 * SIGNED_HEADERS.len() + 4);
        for &(name, value) in &parsed.headers {
            if SIGNED_HEADERS
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
            {
                selected.push((name, value));
                // The name matched an ASCII string, so it is ASCII.
                h.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        h.reverse();
        h.extend(SIGNED_HEADERS.iter().map(|s| s.to_string()));

        // Every key uses relaxed body canonicalization and SHA-256: hash once.
        let mut buffer = Vec::with_capacity(parsed.body.len() + 2);
        relaxed_body(parsed.body, &mut buffer);
        let body_hash = HashAlgorithm::Sha256.hash(&buffer[..]);
        let bh = BASE64.encode(body_hash.as_ref()).into_bytes();

        let mut out = Vec::with_capacity(message.len() + 700 * self.signers.len());
        for s in &self.signers {
            let mut signature = s.signer.template.clone();
            signature.bh = bh.clone();
            signature.t = now;
            signature.h = h.clone();
            // What is signed: the canonical header fields, then this
            // signature's own header with an empty b= (RFC 6376 §3.7).
            buffer.clear();
            Canonicalization::Relaxed
                .canonical_headers(selected.clone())
                .write(&mut buffer);
            signature.write(&mut buffer, false);
            let b = s
                .signer
                .key
                .sign(&buffer[..])
                .map_err(|e| DkimError::Signing {
                    key: s.key_ref.clone(),
                    reason: e.to_string(),
                })?;
            signature.b = BASE64.encode(b).into_bytes();
            signature.write_header(&mut out);
        }
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// Appends the relaxed canonical form of `body` (RFC 6376 §3.4.4) to `out`:
/// in each line, runs of spaces and tabs become one space and those at the
/// end of the line go; empty lines at the end go; a non-empty body ends with
/// CRLF; an empty one stays empty. A line ends at LF, with or without CR
/// before it; a CR elsewhere is data.
///
/// mail-auth 0.12.1 has its own, but it drops every CR and keeps empty lines
/// at the end when they held whitespace (`"text\r\n \r\n"`), so receivers
/// computed another body hash; it also hashes byte by byte (slow).
fn relaxed_body(body: &[u8], out: &mut Vec<u8>) {
    let is_wsp = |c: &u8| *c == b' ' || *c == b'\t';
    let mut empty_lines = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let line = &rest[..i];
                (line.strip_suffix(b"\r").unwrap_or(line), &rest[i + 1..])
            }
            None => (rest, &[][..]),
        };
        rest = next;
        if line.iter().all(is_wsp) {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        // Most lines have nothing to fold: no tab, no run of spaces, no space at the end.
        if !line.ends_with(b" ")
            && memchr::memchr(b'\t', line).is_none()
            && memchr::memmem::find(line, b"  ").is_none()
        {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
            continue;
        }
        let mut part = line;
        let mut space = false;
        loop {
            let text = part.iter().position(is_wsp).unwrap_or(part.len());
            if text > 0 {
                if space {
                    out.push(b' ');
                }
                out.extend_from_slice(&part[..text]);
            }
            part = &part[text..];
            let wsp = part.iter().position(|c| !is_wsp(c)).unwrap_or(part.len());
            if wsp == 0 {
                break;
            }
            space = true;
            part = &part[wsp..];
        }
        out.extend_from_slice(b"\r\n");
    }
}

struct ParsedMessage<'a> {
    /// (name, value) with the value running from after the colon through
    /// the field's final line ending, as mail-auth's canonicalizer expects.
    headers: Vec<(&'a [u8], &'a [u8])>,
    body: &'a [u8],
}

/// Splits a message into header fields and body (RFC 5322 §2.2: a field's
/// continuation lines start with a space or tab; an empty line ends the
/// header section). Accepts CRLF and bare LF line endings.
fn split_message(message: &[u8]) -> Result<ParsedMessage<'_>, DkimError> {
    let mut headers = Vec::with_capacity(16);
    let mut pos = 0;
    let body = loop {
        let rest = &message[pos..];
        if rest.is_empty() {
            break rest;
        }
        if let Some(body) = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
        {
            break body;
        }
        if matches!(rest[0], b' ' | b'\t') {
            return Err(DkimError::Message(
                "the header section starts with a continuation line".into(),
            ));
        }
        // The field ends at a line feed not followed by a space or tab.
        let mut end = pos;
        loop {
            match message[end..].iter().position(|&c| c == b'\n') {
                Some(i) => {
                    end += i + 1;
                    if !matches!(message.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = message.len();
                    break;
                }
            }
        }
        let field = &message[pos..end];
        let first_line = field.split(|&c| c == b'\n').next().unwrap_or_default();
        match first_line.iter().position(|&c| c == b':') {
            Some(colon) if colon > 0 => headers.push((&field[..colon], &field[colon + 1..])),
            _ => {
                return Err(DkimError::Message(format!(
                    "header field {} is not \"Name: value\": {:?}",
                    headers.len() + 1,
                    String::from_utf8_lossy(&first_line[..first_line.len().min(60)])
                )));
            }
        }
        pos = end;
    };
    Ok(ParsedMessage { headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::keys::tests::ED25519_OPENSSL_PEM;
    use crate::dkim::{MIN_RSA_BITS, generate};
    use std::path::{Path, PathBuf};

    const MESSAGE: &str = concat!(
        "From: Example <no-reply@example.org>\r\n",
        "To: someone@example.net\r\n",
        "Subject: Complete your account\r\n",
        "Date: Mon, 24 Nov 2025 09:00:00 +0000\r\n",
        "Message-ID: <abc@mail.example.org>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "Hello.\r\n",
    );

    fn config(domain: &str, selector: &str, algorithm: Algorithm, path: &Path) -> DkimKeyConfig {
        DkimKeyConfig {
            domain: domain.into(),
            selector: selector.into(),
            algorithm,
            key_file: path.into(),
        }
    }

    fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn every_load_problem_is_reported_naming_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let rsa = generate(Algorithm::Rsa, MIN_RSA_BITS).unwrap();
        let small = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(1024).unwrap();
        let small_pem = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            BASE64.encode(small.private_key())
        );
        let keys = [
            config(
                "example.org",
                "missing",
                Algorithm::Ed25519,
                &d.join("nope.pem"),
            ),
            config(
                "example.org",
                "rsa-as-ed",
                Algorithm::Ed25519,
                &write(d, "rsa.pem", rsa.private_pem.as_bytes()),
            ),
            config(
                "example.org",
                "ed-as-rsa",
                Algorithm::Rsa,
                &write(d, "ed.pem", ED25519_OPENSSL_PEM.as_bytes()),
            ),
            config(
                "example.org",
                "small",
                Algorithm::Rsa,
                &write(d, "small.pem", small_pem.as_bytes()),
            ),
            config(
                "example.org",
                "garbage",
                Algorithm::Ed25519,
                &write(d, "garbage.pem", b"\x00\xffnot a key"),
            ),
            config("example.org", "dir", Algorithm::Ed25519, d),
            config("example.org", "good", Algorithm::Ed25519, &d.join("ed.pem")),
            config("example.org", "good", Algorithm::Ed25519, &d.join("ed.pem")),
            config("bad domain", "s", Algorithm::Ed25519, &d.join("ed.pem")),
        ];
        let errors = Signers::load(&keys).unwrap_err();
        let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 8, "{messages:#?}");

        let expect = |i: usize, selector: &str, file: &str, fragment: &str| {
            let m = &messages[i];
            assert!(
                m.starts_with(&format!(
                    "dkim[{i}] ({selector}._domainkey.example.org): key file "
                )),
                "{m}"
            );
            assert!(m.contains(file), "{m}");
            assert!(m.contains(fragment), "{m}");
        };
        expect(0, "missing", "nope.pem", "does not exist");
        expect(
            1,
            "rsa-as-ed",
            "rsa.pem",
            "holds an RSA key, but algorithm = \"ed25519\"",
        );
        expect(
            2,
            "ed-as-rsa",
            "ed.pem",
            "holds an Ed25519 key, but algorithm = \"rsa\"",
        );
        expect(3, "small", "small.pem", "1024 bits; at least 2048");
        expect(4, "garbage", "garbage.pem", "no PEM private key found");
        expect(5, "dir", &d.display().to_string(), "cannot read the file");
        assert!(matches!(
            errors[0],
            DkimError::Key {
                problem: KeyProblem::Missing,
                ..
            }
        ));
        assert!(matches!(
            errors[3],
            DkimError::Key {
                problem: KeyProblem::RsaTooSmall(1024),
                ..
            }
        ));
        assert_eq!(
            messages[6],
            "dkim[7] (good._domainkey.example.org): same selector and domain as dkim[6]; \
             each key needs its own selector"
        );
        assert!(messages[7].starts_with("dkim[8] (s._domainkey.bad domain): invalid domain"));
    }

    #[test]
    fn signs_deterministically_with_every_header_oversigned() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ed.pem", ED25519_OPENSSL_PEM.as_bytes());
        let signers =
            Signers::load(&[config("example.org", "ed1", Algorithm::Ed25519, &path)]).unwrap();
        let signed = signers.sign(MESSAGE.as_bytes(), 1_764_000_000).unwrap();
        assert_eq!(
            signers.sign(MESSAGE.as_bytes(), 1_764_000_000).unwrap(),
            signed
        );
        // Checked with dkimpy against the RFC 8463 key record
        // "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".
        // Ed25519 signatures are deterministic (RFC 8032), so this is exact.
        let expected_header = concat!(
            "DKIM-Signature: v=1; a=ed25519-sha256; s=ed1; d=example.org; c=relaxed/relaxed;\r\n",
            "\th=Content-Type:MIME-Version:Message-ID:Date:Subject:To:From:From:To\r\n",
            "\t:Subject:Date:Message-ID:Reply-To:Content-Type:MIME-Version:Auto-Submitted;\r\n",
            "\tt=1764000000; bh=yZQq1c8wjBl0fZ4Wc/oraMCAG1mZJv5v/hlvyFy+t6A=; b=tOtCI6bP/L\r\n",
            "\tzgKX0S2YccGEPhzFHvrEXOC14eDGyk/NANOTkmu7Sl/f5fP9duw16LCTEPt6CHREkAReMJXI7MA\r\n",
            "\tA==;\r\n",
        );
        assert_eq!(
            String::from_utf8(signed.clone()).unwrap(),
            format!("{expected_header}{MESSAGE}")
        );
        assert_ne!(
            signers.sign(MESSAGE.as_bytes(), 1_764_000_001).unwrap(),
            signed
        );
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "ed.pem", ED25519_OPENSSL_PEM.as_bytes());
        let signers =
            Signers::load(&[config("example.org", "ed1", Algorithm::Ed25519, &path)]).unwrap();
        for bad in [
            &b""[..],
            b"\r\n\r\nbody",
            b"To: a@b\r\n\r\nno from",
            b"From: a@b\r\nFrom: c@d\r\n\r\n",
            b" From: a@b\r\n\r\n",
            b"From a@b\r\n\r\n",
            b"\xff\xfe\x00",
        ] {
            assert!(
                matches!(signers.sign(bad, 1), Err(DkimError::Message(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Headers only, no body; folded fields; bare LF.
        for ok in [
            &b"From: a@b"[..],
            b"From: a@b\r\nSubject: one\r\n two\r\n",
            b"From: a@b\nSubject: x\n\nbody\n",
        ] {
            assert!(
                signers.sign(ok, 1).is_ok(),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    #[test]
    fn no_keys_sign_nothing_and_signers_are_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Signers>();
        let signers = Signers::load(&[]).unwrap();
        assert!(signers.is_empty());
        assert_eq!(signers.sign(b"anything", 1).unwrap(), b"anything");
    }

    /// RFC 6376 §3.4.4 step by step, as dkimpy does it, for comparison.
    fn reference_relaxed_body(body: &[u8]) -> Vec<u8> {
        let text: String = body.iter().map(|&b| b as char).collect();
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let last = lines.pop().unwrap_or_default(); // after the last LF
        let mut lines: Vec<String> = lines
            .into_iter()
            .map(|l| l.strip_suffix('\r').map(str::to_string).unwrap_or(l))
            .collect();
        if !last.is_empty() {
            lines.push(last);
        }
        let mut out: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut c = String::new();
                let mut space = false;
                for ch in l.chars() {
                    if ch == ' ' || ch == '\t' {
                        space = true;
                    } else {
                        if space {
                            c.push(' ');
                        }
                        space = false;
                        c.push(ch);
                    }
                }
                c
            })
            .collect();
        while out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        let mut result = String::new();
        for l in out {
            result.push_str(&l);
            result.push_str("\r\n");
        }
        result.chars().map(|c| c as u8).collect()
    }

    #[test]
    fn relaxed_body_canonicalization() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"\r\n", b""),
            (b" \r\n\t\r\n", b""),
            (b"text", b"text\r\n"),
            (b"text\r\n \r\n", b"text\r\n"),
            (b"text \t\r\n\t\r\n\r\n", b"text\r\n"),
            (b" a  b\t\tc \r\n\r\nd\r\n\r\n", b" a b c\r\n\r\nd\r\n"),
            (b"a\rb\r\n", b"a\rb\r\n"),
            (b"x\n\ny  z\n", b"x\r\n\r\ny z\r\n"),
            (b"a\r\r\n", b"a\r\r\n"),
        ];
        for (body, expected) in cases {
            let mut out = Vec::new();
            relaxed_body(body, &mut out);
            assert_eq!(out, *expected, "{:?}", String::from_utf8_lossy(body));
            assert_eq!(reference_relaxed_body(body), *expected);
        }
        // Random bodies over the characters that matter.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"ab \t\r\n\n";
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let body: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 2 % 60)) as usize + i) % alphabet.len()])
                .collect();
            let mut out = Vec::new();
            relaxed_body(&body, &mut out);
            assert_eq!(out, reference_relaxed_body(&body), "{body:?}");
        }
    }

    #[test]
    fn split_message_fields() {
        let parsed = split_message(b"A: 1\r\nB:2\r\n\t3\r\nC: x:y\r\n\r\nbody\r\n\r\n").unwrap();
        assert_eq!(
            parsed.headers,
            vec![
                (&b"A"[..], &b" 1\r\n"[..]),
                (b"B", b"2\r\n\t3\r\n"),
                (b"C", b" x:y\r\n")
            ]
        );
        assert_eq!(parsed.body, b"body\r\n\r\n");
    }
}

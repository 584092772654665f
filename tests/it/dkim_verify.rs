//! Signed mail checked by an independent verifier: Python's `dkim` (dkimpy),
//! through `tests/support/dkim_verify.py`, which verifies every
//! `DKIM-Signature` with DNS answered from the records mailgate prints.
//!
//! The verifier is a required test peer: when it is missing these tests fail
//! and name the install step (`scripts/install-test-peers.sh`).
//! `MAILGATE_TEST_PYTHON` picks the interpreter (default `python3`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{python, require_python_modules};
use mailgate::dkim::{
    Algorithm, DkimKeyConfig, DnsRecord, RSA_DEFAULT_BITS, Signers, generate,
    public_key_from_private, write_key_file,
};

const NOW: u64 = 1_764_000_000; // 2025-11-24T16:00:00Z

/// A message as mailgate sends it: multipart/alternative, UTF-8 text and
/// HTML, an encoded-word subject, a folded header.
const MESSAGE: &str = concat!(
    "From: =?utf-8?b?5Y6a55Sf5Yq05YON55yB?= <no-reply@example.org>\r\n",
    "To: =?utf-8?b?5bGx55Sw6Iqx5a2Q?= <hanako@clinic.example.net>\r\n",
    "Subject: =?utf-8?b?44OR44K544Ov44O844OJ44Gu6Kit5a6a?=\r\n",
    "Date: Mon, 24 Nov 2025 16:00:00 +0000\r\n",
    "Message-ID: <0193a1b2c3d4e5f6.setup@mail.example.org>\r\n",
    "MIME-Version: 1.0\r\n",
    "Auto-Submitted: auto-generated\r\n",
    "Content-Type: multipart/alternative;\r\n",
    "\tboundary=\"=_mailgate_b1\"\r\n",
    "\r\n",
    "--=_mailgate_b1\r\n",
    "Content-Type: text/plain; charset=utf-8\r\n",
    "Content-Transfer-Encoding: 8bit\r\n",
    "\r\n",
    "山田 花子 様\r\n",
    "\r\n",
    "Hello. Please set your password within 24 hours  \r\n",
    "(until 2025-11-25 16:00 UTC): パスワードを設定してください。\r\n",
    "\r\n",
    "https://accounts.example.org/v/Qm9ndXNUb2tlbkZvclRlc3Rz\r\n",
    "\r\n",
    "\r\n",
    "--=_mailgate_b1\r\n",
    "Content-Type: text/html; charset=utf-8\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "\r\n",
    "PHA+5bGx55SwIOiKseWtkCDmp5g8L3A+PHA+PGEgaHJlZj0iaHR0cHM6Ly9hY2NvdW50cy5leGFt\r\n",
    "cGxlLm9yZy92L1FtOW5kWE5VYjJ0bGJrWnZjbFJsYzNSeiI+44OR44K544Ov44O844OJ44KS6Kit\r\n",
    "5a6a44GZ44KLPC9hPjwvcD4=\r\n",
    "--=_mailgate_b1--\r\n",
);

/// Fails (never skips) when the verifier cannot run.
pub(crate) fn require_verifier() {
    require_python_modules(
        "dkim, nacl",
        "dkimpy pynacl",
        "the independent DKIM verifier",
    );
}

pub(crate) struct Verdict {
    pub(crate) success: bool,
    pub(crate) lines: Vec<String>,
}

pub(crate) fn verify(dir: &Path, message: &[u8], records: &[DnsRecord]) -> Verdict {
    let message_path = dir.join("message.eml");
    std::fs::write(&message_path, message).unwrap();
    let keys_path = dir.join("keys.json");
    let entries: Vec<String> = records
        .iter()
        .map(|r| {
            // As a resolver returns it: the character-strings of the record.
            let strings: Vec<String> = r.strings().iter().map(|s| json_string(s)).collect();
            format!("{}: [{}]", json_string(&r.name), strings.join(", "))
        })
        .collect();
    std::fs::write(&keys_path, format!("{{{}}}", entries.join(",\n"))).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let output = Command::new(python())
        .arg(&script)
        .arg(&message_path)
        .arg(&keys_path)
        .output()
        .expect("run dkim_verify.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "dkim_verify.py failed to run ({}): {stderr}",
        output.status
    );
    Verdict {
        success: output.status.success(),
        lines: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Generates and writes an Ed25519 and an RSA key as `mailgate dkim keygen`
/// would, and returns their configuration.
fn dual_keys(dir: &Path) -> Vec<DkimKeyConfig> {
    [("ed2025", Algorithm::Ed25519), ("rsa2025", Algorithm::Rsa)]
        .into_iter()
        .map(|(selector, algorithm)| {
            let key = generate(algorithm, RSA_DEFAULT_BITS).unwrap();
            let key_file: PathBuf = write_key_file(&dir.join("keys"), selector, &key).unwrap();
            let pem = std::fs::read(&key_file).unwrap();
            assert_eq!(
                public_key_from_private(algorithm, &pem).unwrap(),
                key.public_key_b64
            );
            DkimKeyConfig {
                domain: "example.org".into(),
                selector: selector.into(),
                algorithm,
                key_file,
            }
        })
        .collect()
}

fn replace_once(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    [&haystack[..at], to, &haystack[at + from.len()..]].concat()
}

#[test]
fn both_signatures_pass_and_any_change_fails() {
    require_verifier();
    let dir = tempfile::tempdir().unwrap();
    let signers = Signers::load(&dual_keys(dir.path())).unwrap();
    let records = signers.dns_records();
    assert_eq!(records.len(), 2);
    assert!(records[1].strings().len() >= 2, "RSA record is split");

    let signed = signers.sign(MESSAGE.as_bytes(), NOW).unwrap();
    assert_eq!(
        signers.sign(MESSAGE.as_bytes(), NOW).unwrap(),
        signed,
        "deterministic"
    );

    let verdict = verify(dir.path(), &signed, &records);
    assert!(verdict.success, "{:#?}", verdict.lines);
    assert_eq!(
        verdict.lines,
        [
            "signature 0: pass a=ed25519-sha256 d=example.org s=ed2025",
            "signature 1: pass a=rsa-sha256 d=example.org s=rsa2025",
        ]
    );

    // One body byte changed after signing.
    let altered = replace_once(&signed, b"Hello.", b"Jello.");
    let verdict = verify(dir.path(), &altered, &records);
    assert!(!verdict.success, "{:#?}", verdict.lines);
    assert_eq!(verdict.lines.len(), 2);
    assert!(
        verdict.lines.iter().all(|l| l.contains(": fail ")),
        "{:#?}",
        verdict.lines
    );

    // A second From added after signing (From is oversigned).
    let added = replace_once(
        &signed,
        b"\r\nTo: ",
        b"\r\nFrom: attacker <x@evil.example>\r\nTo: ",
    );
    let verdict = verify(dir.path(), &added, &records);
    assert!(!verdict.success, "{:#?}", verdict.lines);

    // A header a message lacked cannot be added either; Subject cannot change.
    let subject = replace_once(&signed, b"Subject: =?utf-8?b?", b"Subject: =?utf-8?B?");
    assert!(!verify(dir.path(), &subject, &records).success);

    // Only one key published: the other signature fails, and so does the run.
    let verdict = verify(dir.path(), &signed, &records[..1]);
    assert!(!verdict.success);
    assert!(verdict.lines[0].contains(": pass "), "{:#?}", verdict.lines);
    assert!(verdict.lines[1].contains(": fail "), "{:#?}", verdict.lines);
}

#[test]
fn relaxed_canonicalization_survives_whitespace_changes_in_transit() {
    require_verifier();
    let dir = tempfile::tempdir().unwrap();
    let signers = Signers::load(&dual_keys(dir.path())).unwrap();
    let records = signers.dns_records();
    let signed = signers.sign(MESSAGE.as_bytes(), NOW).unwrap();
    // Trailing whitespace stripped and a header refolded, as relays may do.
    let refolded = replace_once(&signed, b"24 hours  \r\n", b"24 hours\r\n");
    let refolded = replace_once(
        &refolded,
        b"multipart/alternative;\r\n\tboundary",
        b"multipart/alternative;  boundary",
    );
    let verdict = verify(dir.path(), &refolded, &records);
    assert!(verdict.success, "{:#?}", verdict.lines);
}

/// Bodies and header fields where canonicalization is easy to get wrong
/// (mail-auth 0.12.1's own relaxed body form fails the first three).
#[test]
fn edge_cases_of_canonicalization_verify() {
    require_verifier();
    let dir = tempfile::tempdir().unwrap();
    let signers = Signers::load(&dual_keys(dir.path())).unwrap();
    let records = signers.dns_records();
    let bodies: &[&[u8]] = &[
        b"text\r\n \r\n",
        b" \r\n",
        b"a\rb\r\n",
        b"text \t\r\n\t\r\n\r\n",
        b"",
        b"\r\n\r\n",
        b"no final line ending",
        b"  leading\tand  inner   spaces \r\n\r\n\r\nafter blank lines\r\n",
    ];
    let headers: &[&str] = &[
        "From: a@example.org\r\nSubject: plain\r\n",
        "From:a@example.org\r\nSUBJECT:   spaced \t out  \r\nto: b@example.net\r\n",
        "From: a@example.org\r\nSubject: folded\r\n  over\r\n\tthree lines\r\nX-Other: x\r\n",
        "From: a@example.org\r\nTo: one@example.net\r\nTo: two@example.net\r\n",
    ];
    for (i, header) in headers.iter().enumerate() {
        for (j, body) in bodies.iter().enumerate() {
            let message = [header.as_bytes(), b"\r\n", body].concat();
            let signed = signers.sign(&message, NOW).unwrap();
            let verdict = verify(dir.path(), &signed, &records);
            assert!(
                verdict.success,
                "headers {i}, body {j} {:?}: {:#?}",
                String::from_utf8_lossy(body),
                verdict.lines
            );
        }
    }
}

/// OpenDKIM, the second independent verifier (`opendkim -t`, keys from `TestPublicKeys`).
/// Returns its one-line verdict; fails (never skips) when it is not installed.
fn opendkim_verdict(dir: &Path, message: &[u8], records: &[DnsRecord]) -> String {
    let binary = ["/usr/sbin/opendkim", "/usr/bin/opendkim"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("OpenDKIM is missing: run scripts/install-test-peers.sh (Debian opendkim)")
        });
    let keys = dir.join("opendkim-keys");
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {}\n",
                r.name.trim_end_matches('.'),
                r.strings().concat()
            )
        })
        .collect();
    std::fs::write(&keys, lines.concat()).unwrap();
    let conf = dir.join("opendkim.conf");
    std::fs::write(
        &conf,
        format!(
            "Mode v\nTestPublicKeys {}\nSyslog no\nMinimumKeyBits 1024\n",
            keys.display()
        ),
    )
    .unwrap();
    let path = dir.join("opendkim-message.eml");
    std::fs::write(&path, message).unwrap();
    let out = Command::new(binary)
        .arg("-x")
        .arg(&conf)
        .arg("-t")
        .arg(&path)
        .output()
        .expect("run opendkim -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("verification"),
        "opendkim -t gave no verdict ({}): {text}",
        out.status
    );
    text
}

/// Every header a forger would add is oversigned: one more `Subject`, `To` or `Reply-To`
/// (above or below the signed one) fails both dkimpy and OpenDKIM, for both key types,
/// while the message as signed passes both.
#[test]
fn an_added_subject_to_or_reply_to_fails_dkimpy_and_opendkim() {
    require_verifier();
    let dir = tempfile::tempdir().unwrap();
    for config in dual_keys(dir.path()) {
        let algorithm = config.algorithm;
        let signers = Signers::load(&[config]).unwrap();
        let records = signers.dns_records();
        let signed = signers.sign(MESSAGE.as_bytes(), NOW).unwrap();
        assert!(
            verify(dir.path(), &signed, &records).success,
            "{algorithm}: dkimpy"
        );
        let verdict = opendkim_verdict(dir.path(), &signed, &records);
        assert!(verdict.contains("succeeded"), "{algorithm}: {verdict}");

        let forgeries: [(&str, &[u8], &[u8]); 5] = [
            (
                "a second Subject above",
                b"\r\nSubject: ",
                b"\r\nSubject: Urgent: verify now\r\nSubject: ",
            ),
            (
                "a second Subject below",
                b"\r\nDate: ",
                b"\r\nSubject: Urgent: verify now\r\nDate: ",
            ),
            (
                "a second To",
                b"\r\nSubject: ",
                b"\r\nTo: victim@example.net\r\nSubject: ",
            ),
            (
                "an added Reply-To",
                b"\r\nSubject: ",
                b"\r\nReply-To: attacker@evil.example\r\nSubject: ",
            ),
            (
                "an added Reply-To at the end",
                b"\r\n\r\n--=_mailgate_b1",
                b"\r\nReply-To: attacker@evil.example\r\n\r\n--=_mailgate_b1",
            ),
        ];
        for (what, from, to) in forgeries {
            let forged = replace_once(&signed, from, to);
            let dkimpy = verify(dir.path(), &forged, &records);
            assert!(
                !dkimpy.success,
                "{algorithm}, {what}: dkimpy passed {:?}",
                dkimpy.lines
            );
            let verdict = opendkim_verdict(dir.path(), &forged, &records);
            assert!(
                verdict.contains("failed") && !verdict.contains("succeeded"),
                "{algorithm}, {what}: OpenDKIM: {verdict}"
            );
        }
    }
}

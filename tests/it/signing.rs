//! Signing end to end: keys made by `mailgate dkim keygen`, records printed by
//! `mailgate dns`, messages captured at smtp-sink, all checked by dkimpy.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mailgate::dkim::DnsRecord;

use crate::dkim_verify::{require_verifier, verify};
use crate::support::{Instance, Sink, parse_capture, relay_config};

fn keygen(dir: &Path, selector: &str, algorithm: &str) -> (std::process::Output, String) {
    let out = std::process::Command::new(crate::support::binary())
        .args([
            "dkim",
            "keygen",
            "--domain",
            "example.jp",
            "--selector",
            selector,
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let path = dir.join(format!("{selector}.pem")).display().to_string();
    (out, path)
}

fn dkim_config(keys: &[(&str, &str, String)]) -> String {
    keys.iter()
        .map(|(sel, alg, path)| {
            format!("[[dkim]]\ndomain = \"example.jp\"\nselector = \"{sel}\"\nalgorithm = \"{alg}\"\nkey_file = \"{path}\"\n")
        })
        .collect()
}

/// The DKIM records `mailgate dns --json` prints, as the verifier's DNS.
fn published(inst: &Instance) -> Vec<DnsRecord> {
    let out = inst.run(&["dns", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"].as_str().unwrap_or("").contains("._domainkey."))
        .map(|r| DnsRecord {
            name: r["name"].as_str().unwrap().to_string(),
            value: r["value"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn mail_captured_at_the_sink_passes_both_signatures_and_fails_when_altered() {
    require_verifier();
    let keys = tempfile::tempdir().unwrap();
    let (o1, ed) = keygen(keys.path(), "mg2026a", "ed25519");
    let (o2, rsa) = keygen(keys.path(), "mg2026r", "rsa");
    assert!(o1.status.success() && o2.status.success());
    let sink = Sink::start(&[]);
    let inst = Instance::new(
        &(relay_config(sink.port, "\"1s\"")
            + &dkim_config(&[("mg2026a", "ed25519", ed), ("mg2026r", "rsa", rsa)])),
    );
    let records = published(&inst);
    assert_eq!(records.len(), 2, "{records:?}");
    let _server = inst.serve();
    let first = inst.send_notice("hanako@example.jp");
    let out = inst.run(&[
        "send",
        "--to",
        "taro@example.jp",
        "--template",
        "notice",
        "--locale",
        "ja",
        "--var",
        "subject=受付時間の変更のお知らせ",
        "--var",
        "body=12月から受付は9時からです。",
    ]);
    assert!(out.status.success());
    let second = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("queued ")
        .to_string();
    inst.wait_delivered(&first);
    inst.wait_delivered(&second);
    assert_eq!(sink.count(), 2);
    let scratch = tempfile::tempdir().unwrap();
    for dump in sink.messages() {
        let message = parse_capture(&dump).message;
        let text = String::from_utf8_lossy(&message);
        assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
        for sig in text.split("DKIM-Signature:").skip(1) {
            let unfolded: String = sig
                .split(";")
                .find(|t| t.trim_start().starts_with("h="))
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let lf = text.replace("\r\n", "\n");
            let head = lf.split("\n\n").next().unwrap_or("");
            for name in mailgate::dkim::SIGNED_HEADERS {
                let signed = unfolded
                    .trim_start_matches("h=")
                    .split(':')
                    .filter(|h| h.eq_ignore_ascii_case(name))
                    .count();
                let present = head
                    .split('\n')
                    .filter(|l| {
                        l.len() > name.len()
                            && l[..name.len()].eq_ignore_ascii_case(name)
                            && l.as_bytes()[name.len()] == b':'
                    })
                    .count();
                assert_eq!(
                    signed,
                    present + 1,
                    "{name} must be oversigned so another cannot be added: {unfolded}"
                );
            }
        }
        let verdict = verify(scratch.path(), &message, &records);
        assert!(verdict.success, "{:?}", verdict.lines);
        assert_eq!(
            verdict
                .lines
                .iter()
                .filter(|l| l.contains(": pass"))
                .count(),
            2,
            "{:?}",
            verdict.lines
        );
        let altered = String::from_utf8_lossy(&message).replacen("\n\n", "\n\nX", 1);
        let verdict = verify(scratch.path(), altered.as_bytes(), &records);
        assert!(
            !verdict.success,
            "an altered message must fail: {:?}",
            verdict.lines
        );
    }
}

#[test]
fn a_fresh_install_signs_with_a_development_key_that_dns_prints() {
    require_verifier();
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_config(sink.port, "\"1s\""));
    let server = inst.serve();
    assert!(
        server
            .log_text()
            .contains("generated a development Ed25519 key"),
        "{}",
        server.log_text()
    );
    let id = inst.send_notice("dev@example.jp");
    inst.wait_delivered(&id);
    let records = published(&inst);
    assert_eq!(records.len(), 1);
    let message = parse_capture(&sink.messages()[0]).message;
    let scratch = tempfile::tempdir().unwrap();
    assert!(verify(scratch.path(), &message, &records).success);
}

#[test]
fn keygen_writes_an_owner_only_key_and_splits_long_rsa_records() {
    let dir = tempfile::tempdir().unwrap();
    let (out, path) = keygen(dir.path(), "mg2026r", "rsa");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("mg2026r._domainkey.example.jp. IN TXT \"v=DKIM1; k=rsa; p="),
        "{line}"
    );
    assert!(
        line.matches('"').count() >= 4,
        "a 2048-bit record needs several strings: {line}"
    );
    let (again, _) = keygen(dir.path(), "mg2026r", "rsa");
    assert!(
        !again.status.success(),
        "an existing key must not be overwritten"
    );
}

#[test]
fn check_names_a_key_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rsa) = keygen(dir.path(), "mg2026r", "rsa");
    let inst = Instance::new(&dkim_config(&[("mg2026r", "ed25519", rsa)]));
    let out = inst.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("dkim[0]") && text.contains("mg2026r"),
        "{text}"
    );
    let out = inst.run(&["serve"]);
    assert!(!out.status.success(), "serve must refuse a bad key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dkim[0]"));
}

#[test]
fn dns_prints_spf_dmarc_mx_and_a_ptr_reminder() {
    let inst = Instance::new("");
    let _ = inst.serve(); // makes the development key
    let out = inst.run(&["dns"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("bounces.example.jp. IN TXT \"v=spf1 a:mail.example.jp -all\""),
        "{text}"
    );
    assert!(
        text.contains("_dmarc.example.jp. IN TXT \"v=DMARC1; p=none"),
        "{text}"
    );
    assert!(
        text.contains("bounces.example.jp. IN MX 10 mail.example.jp."),
        "{text}"
    );
    assert!(text.contains("PTR"), "{text}");
}

/// The `p=` value of a printed record line (`… IN TXT "v=DKIM1; k=…; p=…" "…"`).
fn record_key(line: &str) -> String {
    let joined: String = line
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    joined
        .split(';')
        .find_map(|t| t.trim().strip_prefix("p="))
        .expect("p= in the record")
        .to_string()
}

/// Keys from `dkim keygen` are read by OpenSSL (`openssl pkey`) and by Python's
/// `cryptography`, and the public key they derive is the one in the printed record.
#[test]
fn keygen_keys_are_read_by_openssl_and_cryptography_with_the_records_public_key() {
    use base64::Engine as _;
    crate::support::require_python_modules("cryptography", "cryptography", "the key-format check");
    let dir = tempfile::tempdir().unwrap();
    for (selector, algorithm) in [("mg2026e", "ed25519"), ("mg2026r", "rsa")] {
        let (out, path) = keygen(dir.path(), selector, algorithm);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let published = record_key(&String::from_utf8(out.stdout).unwrap());

        let openssl = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in", &path])
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl is missing ({e}): run scripts/install-test-peers.sh")
            });
        assert!(
            openssl.status.success(),
            "openssl pkey refused the {algorithm} key: {}",
            String::from_utf8_lossy(&openssl.stderr)
        );
        // p= is the SubjectPublicKeyInfo for RSA and the raw 32 bytes for Ed25519 (RFC 8463).
        let spki = openssl.stdout;
        let from_openssl = if algorithm == "ed25519" {
            &spki[spki.len() - 32..]
        } else {
            &spki[..]
        };
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(from_openssl),
            published,
            "{algorithm}: OpenSSL's public key differs from the record's"
        );

        let script = r#"
import base64, sys
from cryptography.hazmat.primitives import serialization as s
key = s.load_pem_private_key(open(sys.argv[1], "rb").read(), password=None)
pub = key.public_key()
if sys.argv[2] == "ed25519":
    raw = pub.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
else:
    raw = pub.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
print(base64.b64encode(raw).decode())
"#;
        let py = std::process::Command::new(crate::support::python())
            .args(["-c", script, &path, algorithm])
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "cryptography refused the {algorithm} key: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&py.stdout).trim(),
            published,
            "{algorithm}: cryptography's public key differs from the record's"
        );
    }
}

//! Bounces end to end: a message delivered to smtp-sink, a DSN for it sent to the
//! bounce listener over SMTP (or ingested), and what that changes.

use serde_json::Value;

use crate::support::{Instance, Sink, TestApp, dsn, relay_with_inbound, smtp_send, wait_for};

/// Starts a server delivering to a sink, sends one notice, and returns its id, its
/// Message-ID header and its VERP return path as captured.
fn delivered(inst: &Instance, sink: &Sink, to: &str) -> (String, String, String) {
    let id = inst.send_notice(to);
    inst.wait_delivered(&id);
    let (verp, header) = inst.return_path_of(sink, &id);
    (id, header, verp)
}

fn message(inst: &Instance, id: &str) -> Value {
    inst.log_json(id)["messages"][0].clone()
}

#[test]
fn a_dsn_to_the_verp_address_bounces_the_message_and_suppresses_the_address() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_with_inbound(sink.port, 0));
    let app = TestApp::start(&inst);
    let inbound = app.inbound_port();
    // Commands below reach the app through this socket.
    assert!(app.control_socket.exists());
    let (id, header, verp) = delivered(&inst, &sink, "gone@example.jp");
    let report = dsn(
        &verp,
        "gone@example.jp",
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <gone@example.jp>: Recipient address rejected: User unknown in virtual mailbox table",
    );
    let replies = smtp_send(inbound, "", &[&verp], &report);
    assert!(
        replies.iter().any(|r| r.starts_with("250 2.0.0")),
        "{replies:?}"
    );
    assert!(
        wait_for(1, || message(&inst, &id)["status"] == "bounced"),
        "{}",
        message(&inst, &id)
    );
    let events = message(&inst, &id)["events"].as_array().unwrap().clone();
    let bounced = events
        .iter()
        .find(|e| e["step"] == "bounced")
        .expect("bounce event");
    assert_eq!(bounced["enhanced_status"], "5.1.1");
    assert!(
        bounced["detail"].as_str().unwrap().contains("userunknown"),
        "{bounced}"
    );
    let list = inst.run(&["suppression", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("gone@example.jp") && text.contains("userunknown"),
        "{text}"
    );
    // The text log shows it too.
    let log = String::from_utf8_lossy(&inst.run(&["log", "gone@example.jp"]).stdout).to_string();
    assert!(log.contains("bounced"), "{log}");
    // Later mail to the address fails at once, saying why.
    let later = inst.send_notice("gone@example.jp");
    let m = message(&inst, &later);
    assert_eq!(m["status"], "suppressed", "{m}");
    assert!(m["events"].as_array().unwrap().iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("suppression list")
    }));
}

#[test]
fn the_listener_refuses_forged_random_and_foreign_addresses() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_with_inbound(sink.port, 0));
    let app = TestApp::start(&inst);
    let inbound = app.inbound_port();
    let (id, header, verp) = delivered(&inst, &sink, "taro@example.jp");
    let forged = format!("bounce+{id}-00000000000000000000@bounces.example.jp");
    let report = dsn(
        &forged,
        "taro@example.jp",
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 User unknown",
    );
    for rcpt in [
        forged.as_str(),
        "random@bounces.example.jp",
        "someone@elsewhere.example",
    ] {
        let replies = smtp_send(inbound, "", &[rcpt], &report);
        assert!(
            replies.iter().any(|r| r.starts_with("550")),
            "{rcpt}: {replies:?}"
        );
        assert!(
            !replies.iter().any(|r| r.starts_with("354")),
            "{rcpt}: {replies:?}"
        );
    }
    assert_eq!(message(&inst, &id)["status"], "delivered");
    // The genuine address is accepted.
    let replies = smtp_send(
        inbound,
        "",
        &[&verp],
        &dsn(
            &verp,
            "taro@example.jp",
            &header,
            "delayed",
            "4.4.1",
            "connect timed out",
        ),
    );
    assert!(
        replies.iter().any(|r| r.starts_with("250 2.0.0")),
        "{replies:?}"
    );
    // A delay changes nothing but the timeline.
    let m = message(&inst, &id);
    assert_eq!(m["status"], "delivered");
    assert!(
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["step"] == "delay_reported"),
        "{m}"
    );
}

#[test]
fn a_bounce_with_a_wrong_mac_and_an_unknown_message_id_changes_nothing() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_with_inbound(sink.port, 0));
    let server = TestApp::start(&inst);
    let (id, _header, _verp) = delivered(&inst, &sink, "hanako@example.jp");
    drop(server);
    let forged = format!("bounce+{id}-00000000000000000000@bounces.example.jp");
    let report = dsn(
        &forged,
        "hanako@example.jp",
        "0123456789abcdef0123456789abcdef@mail.example.jp",
        "failed",
        "5.1.1",
        "550 5.1.1 User unknown",
    );
    let file = inst.path().join("forged.eml");
    std::fs::write(&file, report).unwrap();
    let out = inst.run(&["bounce", "ingest", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tied to no message"), "{text}");
    assert_eq!(message(&inst, &id)["status"], "delivered");
    let list = String::from_utf8_lossy(&inst.run(&["suppression", "list"]).stdout).to_string();
    assert!(list.contains("empty"), "{list}");
    // Recorded all the same.
    let json: Value =
        serde_json::from_slice(&inst.run(&["bounces", "--format", "json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["authenticated"], false);
}

#[test]
fn a_policy_rejection_is_the_senders_problem_and_does_not_suppress() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_with_inbound(sink.port, 0));
    let server = TestApp::start(&inst);
    let (id, header, verp) = delivered(&inst, &sink, "ken@example.jp");
    drop(server);
    let report = dsn(
        &verp,
        "ken@example.jp",
        &header,
        "failed",
        "5.7.1",
        "550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org",
    );
    let file = inst.path().join("policy.eml");
    std::fs::write(&file, report).unwrap();
    let out = inst.run(&["bounce", "ingest", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(message(&inst, &id)["status"], "bounced");
    let json: Value =
        serde_json::from_slice(&inst.run(&["bounces", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["sender_problem"], true, "{json}");
    assert_eq!(json[0]["authenticated"], true, "{json}");
    let list = String::from_utf8_lossy(&inst.run(&["suppression", "list"]).stdout).to_string();
    assert!(list.contains("empty"), "{list}");
}

#[test]
fn ingest_reports_a_bad_file_and_takes_the_rest() {
    let inst = Instance::new("");
    let good = inst.path().join("good.eml");
    std::fs::write(
        &good,
        dsn(
            "x@example.net",
            "a@example.jp",
            "unknown@mail.example.jp",
            "failed",
            "5.1.1",
            "550 5.1.1 unknown",
        ),
    )
    .unwrap();
    let out = inst.run(&[
        "bounce",
        "ingest",
        "/nonexistent/bounce.eml",
        good.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bounce.eml"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.eml: bounce"));
}

#[test]
fn suppression_can_be_added_and_removed_by_hand() {
    let inst = Instance::new("");
    let out = inst.run(&[
        "suppression",
        "add",
        "x@example.jp",
        "--note",
        "asked us to stop",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&inst.run(&["suppression", "list"]).stdout)
            .contains("asked us to stop")
    );
    assert!(
        inst.run(&["suppression", "remove", "x@example.jp"])
            .status
            .success()
    );
    let again = inst.run(&["suppression", "remove", "x@example.jp"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not on the suppression list"));
}

#[test]
fn a_bounced_invitation_makes_its_flow_undeliverable_within_a_second() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_with_inbound(sink.port, 0));
    let key = inst.api_key();
    let server = TestApp::start(&inst);
    let inbound = server.inbound_port();
    let client = reqwest::blocking::Client::new();
    let started: Value = client
        .post(server.url("/api/v1/flows"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"kind": "setup", "address": "nobody-here@example.jp", "name": "Taro", "locale": "ja"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let flow_id = started["flow_id"].as_str().expect("flow id").to_string();
    let id = started["message_id"].as_str().unwrap().to_string();
    inst.wait_delivered(&id);
    let (verp, header) = inst.return_path_of(&sink, &id);
    let report = dsn(
        &verp,
        "nobody-here@example.jp",
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <nobody-here@example.jp>: User unknown",
    );
    assert!(
        smtp_send(inbound, "", &[&verp], &report)
            .iter()
            .any(|r| r.starts_with("250 2.0.0"))
    );
    let flow = || -> Value {
        client
            .get(server.url(&format!("/api/v1/flows/{flow_id}")))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(
        wait_for(1, || flow()["state"] == "undeliverable"),
        "{}",
        flow()
    );
    assert!(
        String::from_utf8_lossy(&inst.run(&["suppression", "list"]).stdout)
            .contains("nobody-here@example.jp")
    );
    let log =
        String::from_utf8_lossy(&inst.run(&["log", "nobody-here@example.jp"]).stdout).to_string();
    assert!(log.contains("bounced"), "{log}");
}

/// Junk files: empty, binary, and text that is no mail message.
fn junk_files(inst: &Instance) -> Vec<(std::path::PathBuf, &'static str)> {
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.eml", b"", "empty"),
        (
            "image.eml",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00",
            "binary",
        ),
        (
            "notes.eml",
            b"call the clinic back on monday\n",
            "header field",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, bytes, why)| {
            let p = inst.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            (p, why)
        })
        .collect()
}

#[test]
fn ingest_refuses_junk_with_the_reason_and_records_nothing() {
    let inst = Instance::new("");
    for (file, why) in junk_files(&inst) {
        let out = inst.run(&["bounce", "ingest", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was taken in", file.display());
        assert!(
            err.contains("not a mail message") && err.contains(why),
            "{err}"
        );
        let parsed = inst.run(&["bounce", "parse", file.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&parsed.stdout);
        assert!(
            said.contains("not a bounce") && said.contains(why),
            "{said}"
        );
    }
    let json: Value =
        serde_json::from_slice(&inst.run(&["bounces", "--format", "json"]).stdout).unwrap();
    assert_eq!(json, serde_json::json!([]), "junk was recorded");
}

#[test]
fn the_api_answers_422_to_junk_and_records_nothing() {
    let inst = Instance::new("");
    let key = inst.api_key();
    let server = inst.serve();
    let client = reqwest::blocking::Client::new();
    for (file, why) in junk_files(&inst) {
        let body = std::fs::read(&file).unwrap();
        let res = client
            .post(server.url("/api/v1/bounces"))
            .bearer_auth(&key)
            .body(body)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().unwrap();
        assert!(
            (400..500).contains(&status),
            "{}: {status} {text}",
            file.display()
        );
        assert!(text.contains(why) || why == "empty", "{text}");
    }
    let list: Value = client
        .get(server.url("/api/v1/bounces?since=1d"))
        .bearer_auth(&key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list, serde_json::json!([]), "junk was recorded");
}

/// `bounce parse` on an mbox file: each message gets its own result (`FILE#1`, `FILE#2`),
/// and a plain message file keeps its name. The corpus file holds two Cox bounces, each
/// failing one recipient and sent to its own bounce address.
#[test]
fn bounce_parse_reads_every_message_of_an_mbox_file() {
    let inst = Instance::new("");
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sisimai/maildir/bsd");
    let mbox = corpus.join("rhost-cox-01.eml");
    let single = corpus.join("lhost-postfix-01.eml");
    let out = inst.run(&[
        "bounce",
        "parse",
        "--json",
        mbox.to_str().unwrap(),
        single.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let files: Vec<String> = lines
        .iter()
        .map(|v| {
            v["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        files,
        [
            "rhost-cox-01.eml#1",
            "rhost-cox-01.eml#2",
            "lhost-postfix-01.eml"
        ]
    );
    for v in &lines[..2] {
        assert_eq!(v["bounce"], true, "{v}");
        assert_eq!(v["recipients"].as_array().unwrap().len(), 1, "{v}");
    }
    // Told apart by where each report was sent.
    assert_eq!(
        lines[0]["envelope_to"],
        serde_json::json!(["bounce@mailer.cnt1.example.com"])
    );
    assert_eq!(
        lines[1]["envelope_to"],
        serde_json::json!(["bounce@mailer.example.com"])
    );
}

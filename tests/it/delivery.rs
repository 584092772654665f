//! Delivery to real SMTP peers: Postfix's `smtp-sink`, with its fault switches, and
//! aiosmtpd where a peer must offer STARTTLS.

use std::collections::HashSet;

use serde_json::Value;

use crate::support::{Instance, Server, Sink, TlsSink, lf, parse_capture, relay_config, wait_for};

fn status_of(inst: &Instance, id: &str) -> String {
    let v = inst.log_json(id);
    v["messages"][0]["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn events(inst: &Instance, id: &str) -> Vec<Value> {
    inst.log_json(id)["messages"][0]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (bounded) until message `id` has failed; returns its `failed` event.
fn wait_failed(inst: &Instance, id: &str) -> Value {
    assert!(
        wait_for(30, || status_of(inst, id) == "failed"),
        "status {}",
        status_of(inst, id)
    );
    events(inst, id)
        .into_iter()
        .find(|e| e["step"] == "failed")
        .expect("failed event")
}

/// An instance relaying to `port` over one connection at a time, so that each message
/// after the first is announced along with the content of the one before.
fn one_connection(port: u16, retry: &str) -> Instance {
    Instance::new(
        &relay_config(port, retry)
            .replace("[inbound]", "max_connections_per_domain = 1\n[inbound]"),
    )
}

/// Waits (bounded) until message `id` is deferred; returns its only attempt's event.
fn the_deferred_attempt(inst: &Instance, id: &str) -> Value {
    assert!(
        wait_for(30, || status_of(inst, id) == "deferred"),
        "status {}",
        status_of(inst, id)
    );
    let ev = events(inst, id);
    let attempts: Vec<&Value> = ev.iter().filter(|e| e["attempt"].is_number()).collect();
    assert_eq!(attempts.len(), 1, "one attempt: {ev:?}");
    attempts[0].clone()
}

fn stored_body(inst: &Instance, id: &str) -> Vec<u8> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(stored_body_async(inst, id))
}

async fn stored_body_async(inst: &Instance, id: &str) -> Vec<u8> {
    let config = mailgate::config::Config::load(&mailgate::config::ConfigSources {
        path: Some(inst.config_path.clone()),
        ..Default::default()
    })
    .unwrap();
    let services = mailgate::services::Services::open(config).await.unwrap();
    let mid = mailgate::domain::MessageId::parse(id).unwrap();
    let record = services
        .store
        .message(&mid)
        .await
        .unwrap()
        .expect("the record");
    services
        .store
        .body(&record)
        .await
        .unwrap()
        .expect("body of an open message")
}

#[test]
fn every_message_arrives_byte_identical_with_verp_and_dsn_parameters() {
    let sink = Sink::start(&[]);
    // Messages 2 to 5 are each announced (MAIL, RCPT, DATA) with the one before.
    let inst = one_connection(sink.port, "\"1s\"");
    let mut sent = Vec::new();
    for i in 0..5 {
        let id = inst.send_notice(&format!("user{i}@example.jp"));
        sent.push((id.clone(), stored_body(&inst, &id)));
    }
    let _server = inst.serve();
    for (id, _) in &sent {
        inst.wait_delivered(id);
    }
    let captures: Vec<_> = sink.messages().iter().map(|m| parse_capture(m)).collect();
    for (id, body) in &sent {
        let c = captures
            .iter()
            .find(|c| c.mail_args.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no capture with MAIL FROM for {id}"));
        assert!(
            c.mail_args.starts_with(&format!("<bounce+{id}-")),
            "{}",
            c.mail_args
        );
        assert!(
            c.mail_args.contains("@bounces.example.jp>"),
            "{}",
            c.mail_args
        );
        assert!(
            c.mail_args.contains(&format!("RET=HDRS ENVID={id}")),
            "{}",
            c.mail_args
        );
        assert!(
            c.rcpt_args.contains("NOTIFY=FAILURE,DELAY"),
            "{}",
            c.rcpt_args
        );
        assert!(c.rcpt_args.contains("ORCPT=rfc822;user"), "{}", c.rcpt_args);
        // smtp-sink ends its dump with one newline of its own.
        let got = String::from_utf8_lossy(&c.message)
            .trim_end_matches('\n')
            .to_string();
        let want = String::from_utf8_lossy(&lf(body))
            .trim_end_matches('\n')
            .to_string();
        assert!(
            got == want,
            "message {id} changed on the way:\n--- sent\n{want}\n--- captured\n{got}"
        );
        assert_eq!(status_of(&inst, id), "delivered");
    }
    // The sink's reply is kept: it names its queue id.
    let ev = events(&inst, &sent[0].0);
    let delivered = ev
        .iter()
        .find(|e| e["step"] == "delivered")
        .expect("delivered event");
    assert_eq!(delivered["smtp_code"], 250);
    assert!(delivered["remote_ip"] == "127.0.0.1");
    assert!(
        delivered["reply"].as_str().unwrap().contains("250"),
        "{delivered}"
    );
}

#[test]
fn a_hard_rejection_fails_the_message_without_retry() {
    let sink = Sink::start(&[
        "-f",
        "RCPT",
        "-B",
        "550 5.1.1 <user0@example.jp>: Recipient address rejected: User unknown",
    ]);
    let inst = Instance::new(&relay_config(sink.port, "\"1s\""));
    let _server = inst.serve();
    let id = inst.send_notice("user0@example.jp");
    let failed = wait_failed(&inst, &id);
    assert_eq!(failed["smtp_code"], 550);
    assert_eq!(failed["enhanced_status"], "5.1.1");
    // No retry: once the worker is idle, the message holds no queue entry and one
    // attempt.
    inst.wait_queue_idle();
    let queue = inst.run(&["queue", "list"]);
    assert!(!String::from_utf8_lossy(&queue.stdout).contains(&id));
    let ev = events(&inst, &id);
    assert_eq!(
        ev.iter().filter(|e| e["attempt"].is_number()).count(),
        1,
        "{ev:?}"
    );
    assert_eq!(sink.count(), 0);
}

#[test]
fn a_soft_rejection_defers_and_the_message_goes_once_the_peer_accepts() {
    let port = crate::support::free_port();
    let refusing = Sink::start_on(port, &["-r", "RCPT", "-b", "451 4.3.0 Try again later"]);
    let inst = Instance::new(&relay_config(port, "\"1s\""));
    let _server = inst.serve();
    let id = inst.send_notice("soft@example.jp");
    assert!(wait_for(30, || events(&inst, &id)
        .iter()
        .any(|e| e["step"] == "deferred")));
    let deferred = events(&inst, &id)
        .into_iter()
        .find(|e| e["step"] == "deferred")
        .unwrap();
    assert_eq!(deferred["smtp_code"], 451);
    refusing.stop();
    let accepting = Sink::start_on(port, &[]);
    assert!(
        wait_for(30, || status_of(&inst, &id) == "delivered"),
        "status {}",
        status_of(&inst, &id)
    );
    assert_eq!(accepting.count(), 1);
}

/// A sink started with `fault` closes with 421 at some command: the message is deferred
/// and the timeline keeps the 421.
fn deferred_with_421(fault: &[&str], to: &str) {
    let sink = Sink::start(fault);
    let inst = Instance::new(&relay_config(sink.port, "\"1h\""));
    let _server = inst.serve();
    let id = inst.send_notice(to);
    assert!(
        wait_for(30, || status_of(&inst, &id) == "deferred"),
        "status {}",
        status_of(&inst, &id)
    );
    let ev = events(&inst, &id);
    let d = ev.iter().find(|e| e["step"] == "deferred").unwrap();
    assert_eq!(d["smtp_code"], 421, "{d}");
}

#[test]
fn a_421_disconnect_defers() {
    deferred_with_421(&["-Q", "MAIL"], "q@example.jp");
}

#[test]
fn nothing_listening_defers_with_the_connect_error() {
    let port = crate::support::free_port();
    let inst = Instance::new(&relay_config(port, "\"1h\""));
    let _server = inst.serve();
    let id = inst.send_notice("nobody@example.jp");
    assert!(
        wait_for(30, || status_of(&inst, &id) == "deferred"),
        "status {}",
        status_of(&inst, &id)
    );
    let ev = events(&inst, &id);
    let d = ev.iter().find(|e| e["step"] == "deferred").unwrap();
    let reply = d["reply"].as_str().unwrap_or("");
    assert!(
        reply.contains("connect to 127.0.0.1") && reply.contains("refused"),
        "{reply}"
    );
    assert!(
        d["detail"].as_str().unwrap_or("").contains("next try at"),
        "{d}"
    );
}

#[test]
fn queue_commands_list_retry_and_cancel_and_name_unknown_ids() {
    let port = crate::support::free_port();
    let inst = Instance::new(&relay_config(port, "\"1h\""));
    let id = inst.send_notice("list@example.jp");
    let out = inst.run(&["queue", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = inst.run(&["queue", "retry", "0123456789abcdef0123456789abcdef"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no message 0123456789abcdef0123456789abcdef")
    );
    let out = inst.run(&["queue", "cancel", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status_of(&inst, &id), "cancelled");
    let out = inst.run(&["queue", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("the queue is empty"));
}

#[test]
fn a_message_cancelled_while_the_worker_holds_it_is_not_sent() {
    // One connection, held 3 s at DATA: the second message waits in the worker.
    let sink = Sink::start(&["-w", "3"]);
    let inst = one_connection(sink.port, "\"1s\"");
    let first = inst.send_notice("first@example.jp");
    let second = inst.send_notice("second@example.jp");
    let _server = inst.serve();
    assert!(
        wait_for(20, || status_of(&inst, &second) == "sending"),
        "the worker did not take the second message: {}",
        status_of(&inst, &second)
    );
    let out = inst.run(&["queue", "cancel", &second]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.wait_delivered(&first);
    // The connection is free now: the worker has nothing left once it is idle.
    inst.wait_queue_idle();
    assert_eq!(status_of(&inst, &second), "cancelled");
    let steps: Vec<String> = events(&inst, &second)
        .iter()
        .map(|e| e["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !steps.iter().any(|s| s == "delivered" || s == "deferred"),
        "{steps:?}"
    );
    let arrived: Vec<_> = sink.messages().iter().map(|m| parse_capture(m)).collect();
    assert_eq!(arrived.len(), 1, "only the first message is sent");
    assert!(
        arrived[0].mail_args.contains(&first),
        "{}",
        arrived[0].mail_args
    );
}

#[test]
fn a_killed_server_loses_no_acknowledged_message() {
    const N: usize = 2000;
    // A sink that waits a second before each DATA reply, on one connection at a
    // time: delivery is under way at the kill however fast the rest of the run
    // is, and cannot have finished. After the kill a prompt sink takes its place.
    let sink = Sink::start(&["-w", "1"]);
    let config = relay_config(sink.port, "\"1s\"").replace(
        "[inbound]",
        "max_connections_per_domain = 1\nmessages_per_connection = 50\n[inbound]",
    );
    let inst = Instance::new(&config);
    let key = inst.api_key();
    let mut server = inst.serve();
    let url = server.url("/api/v1/messages");
    let acknowledged: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (url, key) = (url.clone(), key.clone());
                s.spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    let mut ids = Vec::new();
                    for i in (t..N).step_by(8) {
                        let resp = client
                            .post(&url)
                            .bearer_auth(&key)
                            .json(&serde_json::json!({"to": format!("k{i}@example.jp"), "template": "notice", "locale": "en",
                                   "vars": {"subject": "Kill test", "body": format!("message {i}")}}))
                            .send()
                            .expect("POST");
                        assert_eq!(resp.status(), 202);
                        let v: Value = resp.json().unwrap();
                        ids.push(v["message_id_header"].as_str().unwrap().to_string());
                    }
                    ids
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(acknowledged.len(), N);
    assert!(
        wait_for(30, || sink.count() >= 1),
        "nothing was delivered before the kill; the test proves nothing"
    );
    let before_kill = sink.count();
    server.signal_and_wait(libc::SIGKILL);
    assert!(
        before_kill < N,
        "delivery finished before the kill; the test proves nothing"
    );
    let sink = sink.restart_with(&[]);
    let _restarted = inst.serve();
    let distinct = |sink: &Sink| -> HashSet<String> {
        sink.messages()
            .iter()
            .filter_map(|m| {
                let text = String::from_utf8_lossy(m);
                // Only complete captures: a multipart message ends with its closing
                // boundary; one cut by the kill does not.
                if !text.trim_end().ends_with("--") {
                    return None;
                }
                text.lines()
                    .find(|l| l.starts_with("Message-ID: <"))
                    .map(|l| {
                        l.trim_start_matches("Message-ID: <")
                            .trim_end_matches('>')
                            .to_string()
                    })
            })
            .collect()
    };
    assert!(
        wait_for(240, || distinct(&sink).len() >= N),
        "only {} of {N} arrived",
        distinct(&sink).len()
    );
    let got = distinct(&sink);
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !got.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages never arrived",
        missing.len()
    );
    let total = sink.count();
    println!(
        "kill test: {N} acknowledged, {} delivered before the kill, {} distinct at the sink, {} duplicates",
        before_kill,
        got.len(),
        total - got.len()
    );
}

#[test]
fn a_421_in_the_middle_of_a_pipelined_transaction_defers_with_its_reply() {
    // Without -f/-r, smtp-sink offers PIPELINING, so MAIL, RCPT and DATA go together.
    deferred_with_421(&["-Q", "RCPT"], "pipelined@example.jp");
}

#[test]
fn a_421_after_the_content_defers_each_message_once_including_the_one_announced_with_it() {
    // One connection at a time; each message's content goes with the next one's MAIL,
    // RCPT and DATA, and the sink answers the content with 421 and hangs up. The message
    // announced is then sent again on a new connection, and meets the same 421.
    let sink = Sink::start(&["-Q", "."]);
    let inst = one_connection(sink.port, "\"1h\"");
    let ids: Vec<String> = (0..3)
        .map(|i| inst.send_notice(&format!("announced{i}@example.jp")))
        .collect();
    let _server = inst.serve();
    for id in &ids {
        let attempt = the_deferred_attempt(&inst, id);
        assert_eq!(attempt["smtp_code"], 421, "{attempt}");
    }
}

#[test]
fn a_message_announced_on_a_connection_that_ends_is_tried_again_on_a_new_one() {
    // The sink exits after one message: the second message's MAIL, RCPT and DATA went
    // with the first one's content, and their replies never come.
    let sink = Sink::start(&["-M", "1"]);
    let inst = one_connection(sink.port, "\"1h\"");
    let first = inst.send_notice("first@example.jp");
    let second = inst.send_notice("second@example.jp");
    let _server = inst.serve();
    let reply_of = |id: &str| {
        the_deferred_attempt(&inst, id)["reply"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let reply = reply_of(&first);
    assert!(
        reply.contains("closed the connection without replying"),
        "{reply}"
    );
    // Not tried on the dead connection (an I/O error there), but on a new one, which
    // finds the sink gone.
    let reply = reply_of(&second);
    assert!(
        reply.starts_with("greeting:") || reply.starts_with("connect to"),
        "{reply}"
    );
}

#[test]
fn damaged_bytes_in_the_spool_fail_the_message_and_nothing_is_sent() {
    let sink = Sink::start(&[]);
    // The spool's segment files are the sled backend's.
    let inst = Instance::on_sled(&relay_config(sink.port, "\"1s\""));
    let id = inst.send_notice("user0@example.jp"); // no server: it waits in the queue
    // Flip one byte of the stored message, as a bad disk would.
    let spool = inst.dir.path().join("store/spool");
    let segment = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .expect("a spool segment holding the message");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[200] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();

    let _server = inst.serve();
    let failed = wait_failed(&inst, &id);
    let detail = failed["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("checksum mismatch") && detail.contains(".seg"),
        "{failed:?}"
    );
    assert_eq!(sink.count(), 0, "garbage must not be sent");
}

#[tokio::test]
async fn a_message_the_worker_still_holds_when_its_lease_ends_is_not_claimed_twice() {
    use mailgate::domain::{MessageId, MessageStatus};
    // Recovery at start is the single node's (a shared store waits for the lease).
    let inst = Instance::on_sled(&relay_config(crate::support::free_port(), "\"1s\""));
    let id = inst.send_notice("user0@example.jp"); // no server: it waits in the queue
    let config = mailgate::config::Config::load(&mailgate::config::ConfigSources {
        path: Some(inst.config_path.clone()),
        ..Default::default()
    })
    .unwrap();
    let services = mailgate::services::Services::open(config).await.unwrap();
    let store = &services.store;
    let mid = MessageId::parse(&id).unwrap();
    let (due, _) = store.queue_entries().await.unwrap()[0];
    let life = &services.queue.lifecycle;
    let mut claimed = life.claim_due(due, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let record = claimed.pop().expect("claimed");
    assert_eq!(record.status, MessageStatus::Sending);
    services.queue.handoff().hold(mid);

    // The lease ends while the message still waits in the worker (a slow destination).
    let lease = record.due_ms.expect("a lease");
    assert_eq!(store.queue_entries().await.unwrap(), vec![(lease, mid)]);
    assert!(
        life.claim_due(lease + 1, 10).await.unwrap().is_empty(),
        "claimed a second time"
    );
    let renewed = store.queue_entries().await.unwrap();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert!(
        renewed[0].0 > lease + 1,
        "the lease is renewed: {renewed:?}"
    );
    assert_eq!(
        store.message(&mid).await.unwrap().unwrap().due_ms,
        Some(lease)
    );

    // A restart finds it through the renewed key and makes it due, with one key left.
    assert_eq!(life.recover(lease + 2).await.unwrap(), 1);
    assert_eq!(store.queue_entries().await.unwrap(), vec![(lease + 2, mid)]);
    let r = store.message(&mid).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.due_ms),
        (MessageStatus::Queued, Some(lease + 2))
    );
}

/// A relay over STARTTLS (`relay_tls = "starttls"`: TLS required, certificate checked).
fn starttls_relay(port: u16) -> Instance {
    Instance::new(
        &relay_config(port, "\"1h\"").replace("relay_tls = \"none\"", "relay_tls = \"starttls\""),
    )
}

/// Starts the server trusting `sink`'s CA, as an operator adds their own CA to the
/// system's trust: rustls reads SSL_CERT_FILE.
fn serve_trusting(inst: &Instance, sink: &TlsSink) -> Server {
    let ca = sink.ca_file();
    Server::start(
        &inst.config_path,
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    )
}

/// The one message `sink` captured.
fn the_only_capture(sink: &TlsSink) -> String {
    let mut arrived = sink.messages();
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    arrived.remove(0)
}

#[test]
fn starttls_to_a_relay_whose_certificate_is_trusted_sends_encrypted_and_records_the_tls_version() {
    let sink = TlsSink::start();
    // One message per connection: the second connection's TLS is set up again.
    let inst = Instance::new(
        &relay_config(sink.port, "\"1h\"")
            .replace("relay_tls = \"none\"", "relay_tls = \"starttls\"")
            .replace("[inbound]", "messages_per_connection = 1\n[inbound]"),
    );
    let _server = serve_trusting(&inst, &sink);
    let ids = [
        inst.send_notice("tls@example.jp"),
        inst.send_notice("tls2@example.jp"),
    ];
    let mut headers = Vec::new();
    for id in &ids {
        inst.wait_delivered(id);
        let ev = events(&inst, id);
        let delivered = ev.iter().find(|e| e["step"] == "delivered").unwrap();
        assert_eq!(delivered["tls"], "TLSv1.3", "{delivered}");
        assert_eq!(delivered["smtp_code"], 250, "{delivered}");
        headers.push(
            inst.log_json(id)["messages"][0]["message_id_header"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 2, "{arrived:?}");
    for header in headers {
        let capture = arrived
            .iter()
            .find(|m| m.contains(&format!("Message-ID: <{header}>")))
            .unwrap_or_else(|| panic!("{header} did not arrive: {arrived:?}"));
        assert!(
            capture.starts_with("X-TLS: TLSv1.3\r\n"),
            "the peer saw another session: {capture}"
        );
    }
}

#[test]
fn implicit_tls_to_a_relay_sends_encrypted_from_the_first_byte() {
    let sink = TlsSink::start_with(&["implicit"]);
    let inst = Instance::new(
        &relay_config(sink.port, "\"1h\"")
            .replace("relay_tls = \"none\"", "relay_tls = \"implicit\""),
    );
    let _server = serve_trusting(&inst, &sink);
    let id = inst.send_notice("implicit@example.jp");
    inst.wait_delivered(&id);
    let ev = events(&inst, &id);
    let delivered = ev.iter().find(|e| e["step"] == "delivered").unwrap();
    assert_eq!(delivered["tls"], "TLSv1.3", "{delivered}");
    let capture = the_only_capture(&sink);
    assert!(capture.starts_with("X-TLS: TLSv1.3\r\n"), "{capture}");
}

#[test]
fn starttls_to_a_relay_with_an_untrusted_certificate_defers_and_sends_nothing() {
    let sink = TlsSink::start();
    let inst = starttls_relay(sink.port);
    let _server = inst.serve();
    let id = inst.send_notice("untrusted@example.jp");
    let attempt = the_deferred_attempt(&inst, &id);
    let reply = attempt["reply"].as_str().unwrap_or_default();
    assert!(
        reply.starts_with("STARTTLS with 127.0.0.1") && reply.contains("certificate"),
        "{attempt}"
    );
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
}

#[test]
fn a_relay_that_does_not_offer_starttls_gets_nothing_in_clear_text() {
    let sink = Sink::start(&[]);
    let inst = starttls_relay(sink.port);
    let _server = inst.serve();
    let id = inst.send_notice("clear@example.jp");
    let attempt = the_deferred_attempt(&inst, &id);
    assert!(
        attempt["reply"]
            .as_str()
            .unwrap_or_default()
            .contains("does not offer STARTTLS and TLS is required"),
        "{attempt}"
    );
    assert_eq!(sink.count(), 0);
}

/// A STARTTLS relay that wants the login `mailgate` / `right-password`, and an instance
/// that logs in to it with `password` (read from a file, as configured). The instance
/// trusts the relay's CA.
fn relay_with_login(password: &str) -> (TlsSink, Instance, Server, tempfile::TempDir) {
    let sink = TlsSink::start_with(&["auth=mailgate:right-password"]);
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("relay-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let inst = Instance::new(
        &relay_config(sink.port, "\"1h\"")
            .replace("relay_tls = \"none\"", "relay_tls = \"starttls\"")
            .replace(
                "[inbound]",
                &format!(
                    "relay_user = \"mailgate\"\nrelay_password_file = \"{}\"\n[inbound]",
                    password_file.display()
                ),
            ),
    );
    let server = serve_trusting(&inst, &sink);
    (sink, inst, server, secrets)
}

#[test]
fn a_relay_login_over_starttls_sends_as_that_user() {
    let (sink, inst, _server, _secrets) = relay_with_login("right-password");
    let id = inst.send_notice("login@example.jp");
    inst.wait_delivered(&id);
    let capture = the_only_capture(&sink);
    assert!(
        capture.starts_with("X-TLS: TLSv1.3\r\nX-Auth: mailgate\r\n"),
        "{capture}"
    );
}

#[test]
fn a_refused_relay_login_defers_the_message_for_the_operator_to_fix_and_logs_no_password() {
    let (sink, inst, server, _secrets) = relay_with_login("wrong-password");
    let id = inst.send_notice("refused@example.jp");
    // Postfix's smtp_sasl_auth_soft_bounce: the credentials are the operator's to fix,
    // and the mail waits for them rather than failing.
    let attempt = the_deferred_attempt(&inst, &id);
    let reply = attempt["reply"].as_str().unwrap_or_default();
    assert!(
        reply.contains("authentication at 127.0.0.1") && reply.contains("535"),
        "{attempt}"
    );
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
    let log = server.log_text();
    assert!(
        !log.contains("wrong-password"),
        "the password is in the log:\n{log}"
    );
    let timeline = inst.log_json(&id).to_string();
    assert!(!timeline.contains("wrong-password"), "{timeline}");
}

#[test]
fn a_connection_the_server_closed_while_it_waited_for_work_is_not_used_again() {
    let sink = Sink::start(&[]);
    let inst = Instance::new(&relay_config(sink.port, "\"1h\""));
    let _server = inst.serve();
    let first = inst.send_notice("first@example.jp");
    inst.wait_delivered(&first);
    // The server restarts while mailgate keeps the connection for more work.
    let sink = sink.restart_with(&[]);
    let second = inst.send_notice("second@example.jp");
    inst.wait_delivered(&second);
    let steps: Vec<Value> = events(&inst, &second)
        .iter()
        .map(|e| e["step"].clone())
        .collect();
    assert_eq!(
        steps,
        ["queued", "delivered"],
        "{:?}",
        events(&inst, &second)
    );
    assert_eq!(sink.count(), 2);
}

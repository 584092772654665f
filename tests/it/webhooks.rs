//! Events and webhooks with a real receiver: `tests/support/webhook_receiver.py` checks
//! every request with the PyPI `standardwebhooks` library, so mailgate's signatures are
//! verified by an implementation of the scheme that is not its own.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::journey::*;
use crate::support::{python, require_python_modules, wait_for};

/// The receiver process, its secret and what it has seen.
pub struct Receiver {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver answering `answers` (e.g. "500,500,200": then the last for ever).
    pub fn start(answers: &str) -> Receiver {
        require_python_modules(
            "standardwebhooks",
            "standardwebhooks",
            "the webhook receiver's verifier (PyPI standardwebhooks)",
        );
        let dir = tempfile::tempdir().unwrap();
        use base64::Engine;
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        std::fs::write(dir.path().join("secret"), format!("{secret}\n")).unwrap();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook_receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--secret", &secret, "--answers", answers, "--out"])
            .arg(dir.path().join("seen.jsonl"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not say its port: {line:?}"));
        Receiver { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/mailgate", self.port)
    }

    /// The `[[webhooks]]` entry for this receiver, with `extra` lines.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "[[webhooks]]\nurl = \"{}\"\nsecret_file = \"{}\"\n{extra}\n",
            self.url(),
            self.dir.path().join("secret").display()
        )
    }

    /// Every request so far.
    fn seen(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("seen.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The verified bodies of type `kind` that the receiver took (answered 200).
    fn events(&self, kind: &str) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|r| r["verified"] == true && r["status"] == 200 && r["body"]["type"] == kind)
            .map(|r| r["body"].clone())
            .collect()
    }

    fn wait_event(&self, kind: &str) -> Value {
        assert!(
            wait_for(30, || !self.events(kind).is_empty()),
            "no verified {kind} event reached the receiver; it saw: {:#?}",
            self.seen()
        );
        self.events(kind).remove(0)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn api(_: &Setup) -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn get_json(s: &Setup, path: &str) -> Value {
    api(s)
        .get(s.server.url(path))
        .bearer_auth(&s.key)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// `mailgate webhooks list --json`.
fn webhooks_list(s: &Setup) -> Value {
    let out = s.inst.run(&["webhooks", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_whole_journey_is_told_to_a_receiver_that_verifies_every_signature() {
    let r = Receiver::start("200");
    let s = Setup::start(&r.config(""));
    let to = "hooked@example.jp";
    let started: Value = api(&s)
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "setup", "address": to, "locale": "en"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let flow_id = started["flow_id"].as_str().unwrap().to_string();
    let token = token_in(&wait_for_mail(&s.outbox(), to, "set up your account", 1));
    // The mail is in the outbox a moment before its delivery is recorded; the journey
    // starts after that, so the feed below is in the journey's order. (A link used
    // sooner still tells `flow.mailed`, late: `domain::transition`'s tests.)
    r.wait_event("flow.mailed");
    let b = Browser::new(&s.server);
    finish_journey(&b, &token, &s.outbox(), to, 0);
    let code = code_in(&wait_for_code(&s.outbox(), to, 1));

    for kind in ["flow.mailed", "flow.opened", "flow.completed"] {
        let e = r.wait_event(kind);
        assert_eq!(e["data"]["flow_id"], flow_id.as_str(), "{e}");
        assert_eq!(e["data"]["address"], to, "{e}");
        assert_eq!(e["data"]["flow_kind"], "setup", "{e}");
    }
    let delivered = r.wait_event("message.delivered");
    assert_eq!(delivered["data"]["address"], to);
    let seen = r.seen();
    for req in &seen {
        assert_eq!(req["verified"], true, "standardwebhooks refused: {req}");
        assert_eq!(
            req["tampered_rejected"], true,
            "a changed body passed: {req}"
        );
        assert_eq!(
            req["old_rejected"], true,
            "an hour-old timestamp passed: {req}"
        );
        let text = req["body"].to_string();
        for secret in [token.as_str(), code.as_str(), PASSWORD] {
            assert!(!text.contains(secret), "an event carries a secret: {text}");
        }
    }
    // The feed holds the same events, in order.
    let feed = get_json(&s, "/api/v1/events?after=0&limit=1000");
    let feed_types: Vec<&str> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["flow_id"] == flow_id.as_str())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let opened = feed_types.iter().position(|t| *t == "flow.opened");
    let completed = feed_types.iter().position(|t| *t == "flow.completed");
    assert!(
        feed_types.first() == Some(&"message.delivered")
            && feed_types.get(1) == Some(&"flow.mailed")
            && opened < completed,
        "{feed_types:?}"
    );
    let listed = get_json(&s, &format!("/api/v1/flows?address={to}&state=completed"));
    assert_eq!(listed["flows"][0]["flow_id"], flow_id.as_str(), "{listed}");
}

#[test]
fn a_receiver_that_answers_500_twice_gets_the_event_on_the_third_try() {
    let r = Receiver::start("500,500,200");
    let s = Setup::start(&r.config("retry_schedule = [\"200ms\", \"200ms\"]"));
    s.inst.send_notice("retried@example.jp");
    let e = r.wait_event("message.delivered");
    let tries: Vec<Value> = r
        .seen()
        .into_iter()
        .filter(|q| q["webhook_id"] == e["id"])
        .collect();
    assert_eq!(
        tries
            .iter()
            .map(|t| t["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [500, 500, 200],
        "{tries:#?}"
    );
    assert!(
        wait_for(10, || {
            let list = webhooks_list(&s);
            let d = &list[0]["recent"][0];
            d["state"] == "delivered" && d["attempts"] == 3 && d["last_status"] == 200
        }),
        "{:#}",
        webhooks_list(&s)
    );
}

#[test]
fn a_410_answer_disables_the_endpoint_and_the_list_says_so() {
    let r = Receiver::start("410");
    let s = Setup::start(&r.config(""));
    s.inst.send_notice("gone@example.jp");
    assert!(
        wait_for(30, || !webhooks_list(&s)[0]["disabled"].is_null()),
        "{:#}",
        webhooks_list(&s)
    );
    let list = webhooks_list(&s);
    assert_eq!(list[0]["recent"][0]["state"], "failed", "{list:#}");
    assert_eq!(list[0]["recent"][0]["last_status"], 410, "{list:#}");
    let text = s.inst.run(&["webhooks", "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("DISABLED"));
}

#[test]
fn deliveries_pending_when_mailgate_is_killed_are_sent_after_the_restart() {
    let r = Receiver::start("500,200");
    let mut s = Setup::start(&r.config("retry_schedule = [\"2s\"]"));
    s.inst.send_notice("killed@example.jp");
    // Killed once the failed first try is on record, its next try pending.
    assert!(
        wait_for(30, || webhooks_list(&s)[0]["recent"][0]["attempts"] == 1),
        "the first try never came: {:#}",
        webhooks_list(&s)
    );
    s.server.signal_and_wait(libc::SIGKILL);
    s.server = s.inst.serve();
    let e = r.wait_event("message.delivered");
    let tries: Vec<u64> = r
        .seen()
        .iter()
        .filter(|q| q["webhook_id"] == e["id"])
        .map(|q| q["status"].as_u64().unwrap())
        .collect();
    assert_eq!(tries, [500, 200]);
}

#[test]
fn a_flow_to_a_suppressed_address_ends_undeliverable_and_is_told_within_a_second() {
    let r = Receiver::start("200");
    let s = Setup::start(&r.config(""));
    let to = "suppressed@example.jp";
    let out = s.inst.run(&["suppression", "add", to, "--note", "test"]);
    assert!(out.status.success());
    let added = r.wait_event("suppression.added");
    assert_eq!(added["data"]["address"], to);
    let started = std::time::Instant::now();
    let resp = api(&s)
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "setup", "address": to}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 202);
    let flow_id = resp.json::<Value>().unwrap()["flow_id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = r.wait_event("flow.undeliverable");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "told after {:?}",
        started.elapsed()
    );
    assert_eq!(e["data"]["flow_id"], flow_id.as_str());
    assert!(
        e["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("suppression list"),
        "{e}"
    );
    assert_eq!(s.flow(&flow_id)["state"], "undeliverable");
}

#[test]
fn the_event_feed_pages_without_gaps() {
    let s = Setup::start("");
    for i in 0..7 {
        s.inst.send_notice(&format!("feed{i}@example.jp"));
    }
    let all = || get_json(&s, "/api/v1/events?limit=1000")["events"].clone();
    assert!(
        wait_for(30, || all().as_array().unwrap().len() >= 7),
        "{}",
        all()
    );
    let whole: Vec<Value> = all().as_array().unwrap().clone();
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = get_json(&s, &format!("/api/v1/events?after={after}&limit=2"));
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page["next_after"], after);
            break;
        }
        assert!(events.len() <= 2);
        after = page["next_after"].as_u64().unwrap();
        assert_eq!(after, events.last().unwrap()["seq"].as_u64().unwrap());
        paged.extend(events);
        if paged.len() >= whole.len() {
            break;
        }
    }
    let ids = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&paged[..whole.len()]), ids(&whole));
    let seqs: Vec<u64> = whole.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let bad = api(&s)
        .get(s.server.url("/api/v1/events?after=x"))
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().unwrap()["error"]["code"] == "bad_request");
}

#[test]
fn a_permanent_bounce_of_a_flows_mail_is_told_as_bounced_and_undeliverable() {
    let r = Receiver::start("200");
    let s = Setup::start(&r.config(""));
    let to = "bounced@example.jp";
    let started: Value = api(&s)
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "setup", "address": to}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let flow_id = started["flow_id"].as_str().unwrap();
    let message_id = started["message_id"].as_str().unwrap();
    r.wait_event("flow.mailed");
    let header = get_json(&s, &format!("/api/v1/messages/{message_id}"))["message_id_header"]
        .as_str()
        .unwrap()
        .to_string();
    let report = crate::support::dsn(
        "bounces@bounces.example.jp",
        to,
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <bounced@example.jp>: Recipient address rejected: User unknown",
    );
    let taken = api(&s)
        .post(s.server.url("/api/v1/bounces"))
        .bearer_auth(&s.key)
        .body(report)
        .send()
        .unwrap();
    assert_eq!(taken.status(), 202, "{}", taken.text().unwrap());
    let bounced = r.wait_event("message.bounced");
    assert_eq!(bounced["data"]["message_id"], message_id, "{bounced}");
    assert_eq!(bounced["data"]["enhanced_status"], "5.1.1", "{bounced}");
    let ended = r.wait_event("flow.undeliverable");
    assert_eq!(ended["data"]["flow_id"], flow_id, "{ended}");
    assert!(
        ended["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("User unknown"),
        "{ended}"
    );
    let suppressed = r.wait_event("suppression.added");
    assert_eq!(suppressed["data"]["address"], to, "{suppressed}");
}

#[test]
fn webhooks_test_posts_a_signed_test_event_and_refuses_a_metadata_address() {
    let r = Receiver::start("200");
    let metadata = "http://169.254.169.254/latest/meta-data";
    let inst = crate::support::Instance::new(&format!(
        "{}[[webhooks]]\nurl = \"{metadata}\"\nsecret_file = \"{}\"\n",
        r.config(""),
        r.dir.path().join("secret").display()
    ));
    let out = inst.run(&["webhooks", "test", &r.url()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("answered 200"), "{said}");
    let test = r.wait_event("webhook.test");
    assert!(
        test["id"].as_str().unwrap().starts_with("evt_test_"),
        "{test}"
    );

    let out = inst.run(&["webhooks", "test", metadata]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("169.254.169.254 is a link-local or metadata address"),
        "{said}"
    );
}

//! The API's contract: one JSON error shape for every error status under `/api/` (403,
//! 410 and 429 each have a test of their own, as they need a set-up; 503, a database
//! gone from under a node, is in `cluster`), and
//! the OpenAPI document (`openapi.json`) served as kept in the repository, valid per
//! the PyPI `openapi-spec-validator`, and true of the running server.

use serde_json::Value;

use crate::journey::Setup;
use crate::support::{Instance, Server, python, require_python_modules};

/// Asserts `resp` is `status` with `{"error": {"code", "message", "request_id"}}`.
fn assert_error(resp: reqwest::blocking::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "{resp:?}");
    let request_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let headers_ok = resp.headers().get("x-content-type-options").is_some();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp
        .json()
        .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}); {content_type:?}"));
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(
        error["request_id"].as_str(),
        request_id.as_deref(),
        "{body}"
    );
    assert!(
        headers_ok,
        "{status}: the security headers are missing from the error answer"
    );
    message.to_string()
}

#[test]
fn every_error_status_under_the_api_answers_the_json_shape() {
    let s = Setup::start("");
    let c = reqwest::blocking::Client::new();
    let url = |p: &str| s.server.url(p);

    let m = assert_error(
        c.get(url("/api/v1/log"))
            .bearer_auth(&s.key)
            .send()
            .unwrap(),
        400,
        "bad_request",
    );
    assert!(m.contains("address"), "{m}");
    assert_error(
        c.get(url("/api/v1/events")).send().unwrap(),
        401,
        "unauthorized",
    );
    let m = assert_error(
        c.get(url("/api/v1/nothing-here"))
            .bearer_auth(&s.key)
            .send()
            .unwrap(),
        404,
        "not_found",
    );
    assert!(m.contains("openapi.json"), "{m}");
    assert_error(
        c.get(url("/api/v1/flows/0123456789abcdef0123456789abcdef"))
            .bearer_auth(&s.key)
            .send()
            .unwrap(),
        404,
        "not_found",
    );
    let resp = c
        .delete(url("/api/v1/events"))
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    let allow = resp.headers().get("allow").cloned();
    let m = assert_error(resp, 405, "method_not_allowed");
    assert!(m.contains("DELETE"), "{m}");
    assert!(
        allow.is_some_and(|a| a.to_str().unwrap().contains("GET")),
        "405 keeps its Allow header"
    );
    // 2 MiB of JSON: over the 1 MiB cap.
    let big = serde_json::json!({
        "to": "big@example.jp", "template": "notice",
        "vars": {"subject": "x", "body": "x".repeat(2 * 1024 * 1024)}
    });
    let m = assert_error(
        c.post(url("/api/v1/messages"))
            .bearer_auth(&s.key)
            .json(&big)
            .send()
            .unwrap(),
        413,
        "payload_too_large",
    );
    assert!(m.contains("1024 KiB"), "{m}");
    assert_error(
        c.post(url("/api/v1/flows"))
            .bearer_auth(&s.key)
            .body(r#"{"kind": "setup", "address": "a@example.jp"}"#)
            .send()
            .unwrap(),
        415,
        "unsupported_media_type",
    );
    assert_error(
        c.post(url("/api/v1/flows"))
            .bearer_auth(&s.key)
            .json(&serde_json::json!({"kind": "setup", "address": "not an address"}))
            .send()
            .unwrap(),
        422,
        "unprocessable",
    );
    assert_error(
        c.post(url("/api/v1/flows"))
            .bearer_auth(&s.key)
            .json(&serde_json::json!({"kind": "reset", "address": "nobody@example.jp"}))
            .send()
            .unwrap(),
        409,
        "conflict",
    );
    // Outside /api/ the pages keep their own answers.
    let page = c.get(url("/nothing-here")).send().unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        !page
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"))
    );
}

/// `apikey create NAME` on a running instance; returns the key.
fn create_key(inst: &Instance, name: &str) -> String {
    let out = inst.run(&["apikey", "create", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_template_only_flows_send_is_forbidden_to_the_api() {
    let s = Setup::start("");
    let c = reqwest::blocking::Client::new();
    for template in ["invite", "reset", "code", "password_changed"] {
        let m = assert_error(
            c.post(s.server.url("/api/v1/messages"))
                .bearer_auth(&s.key)
                .json(&serde_json::json!({
                    "to": "victim@example.jp", "template": template,
                    "vars": {"link": "https://evil.example/steal", "code": "123456"}
                }))
                .send()
                .unwrap(),
            403,
            "forbidden",
        );
        assert!(m.contains("POST /api/v1/flows"), "{m}");
    }
    let log: Value = c
        .get(s.server.url("/api/v1/log?address=victim@example.jp"))
        .bearer_auth(&s.key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        log["messages"],
        serde_json::json!([]),
        "nothing was queued: {log}"
    );
    // A notice is still the caller's to send.
    let sent = c
        .post(s.server.url("/api/v1/messages"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({
            "to": "victim@example.jp", "template": "notice",
            "vars": {"subject": "Maintenance", "body": "Tonight at 22:00."}
        }))
        .send()
        .unwrap();
    assert_eq!(sent.status(), 202);
}

#[test]
fn an_api_key_past_its_requests_per_minute_gets_429_with_retry_after() {
    let inst = Instance::new("");
    let server = Server::start(
        &inst.config_path,
        &[("MAILGATE__SERVER__API_REQUESTS_PER_MINUTE", "3")],
    );
    let (busy, other) = (create_key(&inst, "busy"), create_key(&inst, "other"));
    let c = reqwest::blocking::Client::new();
    let events = |key: &str| {
        c.get(server.url("/api/v1/events"))
            .bearer_auth(key)
            .send()
            .unwrap()
    };
    for i in 0..3 {
        assert_eq!(
            events(&busy).status(),
            200,
            "request {i} is within the limit"
        );
    }
    let refused = events(&busy);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .expect("a 429 says when to come back")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let m = assert_error(refused, 429, "rate_limited");
    assert!(m.contains("api_requests_per_minute"), "{m}");
    // The limit is per key: another application is not held up by this one.
    assert_eq!(events(&other).status(), 200);
}

#[test]
fn a_feed_cursor_behind_forgotten_events_gets_410_and_after_0_reads_on() {
    use mailgate::domain::{EventData, EventType};
    let inst = Instance::new("");
    let day = 86_400_000;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let config = mailgate::config::Config::load(&mailgate::config::ConfigSources {
            path: Some(inst.config_path.clone()),
            ..Default::default()
        })
        .unwrap();
        let services = mailgate::services::Services::open(config).await.unwrap();
        for at in [day, 2 * day, 3 * day] {
            services
                .store
                .record_event(EventType::FlowMailed, EventData::default(), at)
                .await
                .unwrap();
        }
        let f = mailgate::retention::forget_old(
            &services.store,
            std::time::Duration::from_millis(5 * day),
            100 * day,
        )
        .await
        .unwrap();
        assert_eq!(f.events, 2, "all but the last event go");
    });
    let server = inst.serve();
    let key = create_key(&inst, "feed");
    let c = reqwest::blocking::Client::new();
    let page = |after: u64| {
        c.get(server.url(&format!("/api/v1/events?after={after}")))
            .bearer_auth(&key)
            .send()
            .unwrap()
    };
    let m = assert_error(page(1), 410, "gone");
    assert!(m.contains("events 2 to 2") && m.contains("after=2"), "{m}");
    for after in [0, 2] {
        let body: Value = page(after).json().unwrap();
        assert_eq!(body["events"][0]["seq"], 3, "after={after}: {body}");
        assert_eq!(body["next_after"], 3, "{body}");
    }
}

#[test]
fn the_openapi_document_is_served_as_kept_and_is_valid() {
    require_python_modules(
        "openapi_spec_validator",
        "openapi-spec-validator",
        "the OpenAPI validator (PyPI openapi-spec-validator)",
    );
    let s = Setup::start("");
    let served: Value = reqwest::blocking::get(s.server.url("/api/v1/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(served, kept);
    assert_eq!(served["openapi"], "3.1.0");
    let out = std::process::Command::new(python())
        .args([
            "-c",
            "import sys\nfrom openapi_spec_validator import validate\n\
             from openapi_spec_validator.readers import read_from_filename\n\
             validate(read_from_filename(sys.argv[1])[0])\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every documented route exists: with a key, none answers 404 for want of a route
    // or 405 for its documented method.
    let c = reqwest::blocking::Client::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "0123456789abcdef0123456789abcdef");
            let req = c.request(
                method.to_uppercase().parse().unwrap(),
                s.server.url(&concrete),
            );
            let resp = req.bearer_auth(&s.key).send().unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(
                status != 404
                    || body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.contains("openapi.json")),
                "{method} {path} is documented but not routed: {body}"
            );
            assert!(
                item[method]["responses"].get(status.to_string()).is_some(),
                "{method} {path} answered {status}, which it does not document: {body}"
            );
        }
    }
    // Every event type the code knows is documented.
    let documented = served["components"]["schemas"]["Event"]["properties"]["type"]["enum"].clone();
    let out = s.inst.run(&["webhooks", "list", "--json"]);
    assert!(out.status.success());
    for t in [
        "flow.mailed",
        "flow.opened",
        "flow.completed",
        "flow.undeliverable",
        "flow.expired",
        "flow.locked",
        "flow.superseded",
        "message.delivered",
        "message.deferred",
        "message.failed",
        "message.bounced",
        "message.expired",
        "message.complaint",
        "suppression.added",
        "suppression.removed",
    ] {
        assert!(
            documented.as_array().unwrap().iter().any(|d| d == t),
            "{t} is not in openapi.json"
        );
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    require_python_modules(
        "schemathesis",
        "schemathesis",
        "the API fuzzer (PyPI schemathesis)",
    );
    let s = Setup::start("");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let out = std::process::Command::new(python())
        .args([
            "-c",
            "import sys\nfrom schemathesis.cli import schemathesis\nsys.exit(schemathesis())",
            "run",
        ])
        .arg(&file)
        .args(["--url", &s.server.url("")])
        .args(["-H", &format!("Authorization: Bearer {}", s.key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "30",
            "--workers",
            "2",
            "--seed",
            "1",
        ])
        .env("NO_COLOR", "1")
        // It keeps a cache in its working folder: not in the repository.
        .current_dir(s.inst.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("passed"), "{text}");
}

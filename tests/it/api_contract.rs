//! The API's contract: one JSON error shape for every error status under `/api/`, and
//! the OpenAPI document (`openapi.json`) served as kept in the repository, valid per
//! the PyPI `openapi-spec-validator`, and true of the running server.

use serde_json::Value;

use crate::journey::Setup;
use crate::support::{python, require_python_modules};

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

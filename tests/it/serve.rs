//! `serve` and `check` as an operator starts them.

use crate::support::Instance;

#[test]
fn serve_binds_a_free_port_and_answers_healthz() {
    let inst = Instance::new("");
    let server = inst.serve();
    let resp = reqwest::blocking::get(server.url("/healthz")).expect("GET /healthz");
    assert_eq!(resp.status(), 200);
    assert!(inst.path().join("store").join("control.sock").exists());
}

#[test]
fn sigterm_stops_the_server_cleanly_and_removes_its_socket() {
    let inst = Instance::new("");
    let mut server = inst.serve();
    let status = server.signal_and_wait(libc::SIGTERM);
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log_text()
    );
    assert!(server.log_text().contains("store flushed"));
    assert!(!inst.path().join("store").join("control.sock").exists());
}

#[test]
fn sigint_stops_the_server_cleanly() {
    let inst = Instance::new("");
    let mut server = inst.serve();
    let status = server.signal_and_wait(libc::SIGINT);
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn check_names_an_unknown_key_and_fails() {
    let inst = Instance::new("[flows]\nlink_lifetme = \"24h\"\n");
    let out = inst.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("flows.link_lifetme: unknown key"), "{text}");
}

#[test]
fn check_accepts_the_shipped_configuration() {
    let out = std::process::Command::new(crate::support::binary())
        .args(["--config", "config/mailgate.toml", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_second_server_on_the_same_store_is_refused_naming_the_store() {
    let inst = Instance::new("");
    let _server = inst.serve();
    let out = inst.run(&["serve"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&inst.path().join("store").display().to_string()),
        "{err}"
    );
}

#[test]
fn store_stats_says_what_the_store_holds_with_or_without_a_server() {
    let inst = Instance::new("");
    inst.send_notice("stats@example.jp");
    let out = inst.run(&["store", "stats"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("messages: 1 (queued 1)"), "{text}");
    assert!(text.contains("flows: 0 (none)"), "{text}");
    assert!(text.contains("on disk:"), "{text}");
    // Through a running server's control socket, as JSON.
    let _server = inst.serve();
    inst.wait_queue_idle();
    let out = inst.run(&["store", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(stats["messages"]["delivered"], 1, "{stats}");
    assert!(stats["size_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
}

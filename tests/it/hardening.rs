//! Holding under attack and under faults (issue 15): security headers on every
//! response, HTTP and SMTP connection limits against slow and idle clients, override
//! errors that name their key, size limits on outgoing mail, reserved template
//! variables, and a full disk. The concurrency tests print their figures.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::support::Instance;

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn every_response_carries_the_security_headers_and_hsts_when_public_url_is_https() {
    let inst = Instance::new("");
    // The public URL is https (a proxy terminates TLS); the server itself speaks http.
    let text = std::fs::read_to_string(&inst.config_path)
        .unwrap()
        .replace("http://localhost:9", "https://mail.example.jp");
    std::fs::write(&inst.config_path, text).unwrap();
    let server = inst.serve();
    let client = no_redirects();
    for (path, want) in [
        ("/healthz", 200),
        ("/metrics", 200),
        ("/no-such-page", 404),
        ("/admin", 303),
        ("/api/v1/log?address=a@example.jp", 401),
        ("/login", 200),
        ("/reset", 200),
        ("/static/console.css", 200),
    ] {
        let r = client.get(server.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
        let h = r.headers();
        let get = |name: &str| {
            h.get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        let csp = get("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'"),
            "{path}: CSP {csp:?}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: CSP {csp:?}");
        assert!(
            get("strict-transport-security").starts_with("max-age="),
            "{path}: no HSTS"
        );
    }
    // The console's styles come from its stylesheet, which the CSP allows; nothing
    // inline is left for the browser to refuse.
    let login = client.get(server.url("/login")).send().unwrap();
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("style-src 'self'"), "{csp}");
    let body = login.text().unwrap();
    assert!(body.contains("/static/console.css"), "{body}");
    assert!(
        !body.contains("<style") && !body.contains("style="),
        "{body}"
    );
}

/// A raw client socket and when the server closed it.
struct Held {
    stream: std::net::TcpStream,
    /// "slow" (headers a byte at a time), "body" (a body a byte at a time) or "idle".
    kind: &'static str,
    closed_after: Option<Duration>,
}

/// Sends one keep-alive GET and reads its whole answer; the connection stays open.
fn request_and_keep(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// One request on a new connection: the status line and how long the answer took.
fn status_of_new_connection(addr: std::net::SocketAddr) -> (String, Duration) {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    (
        text.lines().next().unwrap_or("").to_string(),
        start.elapsed(),
    )
}

#[test]
fn slow_header_and_idle_http_connections_are_closed_and_the_cap_refuses_quickly() {
    const SLOW: usize = 25;
    const BODY: usize = 5;
    const IDLE: usize = 20;
    const CAP: usize = 60;
    const IDLE_ALL: usize = CAP - SLOW - BODY;
    let inst = Instance::new("");
    let text = std::fs::read_to_string(&inst.config_path).unwrap().replace(
        "public_url = \"http://localhost:9\"\n",
        &format!(
            "public_url = \"http://localhost:9\"\nheader_timeout = \"4s\"\n\
             keepalive_timeout = \"2s\"\nbody_timeout = \"4s\"\nmax_connections = {CAP}\n"
        ),
    );
    std::fs::write(&inst.config_path, text).unwrap();
    let server = inst.serve();
    let addr = server.addr;
    let start = Instant::now();

    let mut held: Vec<Held> = Vec::new();
    for _ in 0..IDLE {
        held.push(Held {
            stream: request_and_keep(addr),
            kind: "idle",
            closed_after: None,
        });
    }
    for _ in 0..SLOW {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").unwrap();
        held.push(Held {
            stream: s,
            kind: "slow",
            closed_after: None,
        });
    }
    for _ in 0..BODY {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(
            b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100000\r\n\r\nname=",
        )
        .unwrap();
        held.push(Held {
            stream: s,
            kind: "body",
            closed_after: None,
        });
    }
    // With 50 of 60 slots held, the server still answers.
    let (during, _) = status_of_new_connection(addr);
    assert!(during.contains(" 200 "), "healthz while held: {during:?}");

    // Fill the remaining slots with idle connections; the next one is refused at once.
    for _ in 0..CAP - SLOW - BODY - IDLE {
        held.push(Held {
            stream: request_and_keep(addr),
            kind: "idle",
            closed_after: None,
        });
    }
    let (refused, refusal_time) = status_of_new_connection(addr);
    assert!(refused.contains(" 503 "), "at the cap: {refused:?}");

    // Trickle a byte every 500 ms on the slow ones (so only the header or body timeout
    // can end them, not idleness) until the server closes every connection.
    for h in &held {
        h.stream.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_trickle = Instant::now();
    while held.iter().any(|h| h.closed_after.is_none()) && Instant::now() < deadline {
        let trickle = last_trickle.elapsed() >= Duration::from_millis(500);
        if trickle {
            last_trickle = Instant::now();
        }
        for h in held.iter_mut().filter(|h| h.closed_after.is_none()) {
            let mut buf = [0u8; 512];
            let closed = match h.stream.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            let closed =
                closed || (h.kind != "idle" && trickle && h.stream.write_all(b"a").is_err());
            if closed {
                h.closed_after = Some(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let times = |kind: &str| -> Vec<Duration> {
        held.iter()
            .filter(|h| h.kind == kind)
            .filter_map(|h| h.closed_after)
            .collect()
    };
    let (slow_closed, body_closed, idle_closed) = (times("slow"), times("body"), times("idle"));
    let (after, _) = status_of_new_connection(addr);
    println!(
        "held {SLOW} slow-header + {BODY} slow-body + {IDLE_ALL} idle connections (cap \
         {CAP}, header and body timeout 4s, keep-alive 2s); at the cap a new one got \
         {refused:?} in {refusal_time:?}; closed by the server: slow-header {}/{SLOW} \
         (last at {:?}), slow-body {}/{BODY} (last at {:?}), idle {}/{IDLE_ALL} (last at \
         {:?}); /healthz afterwards: {after:?}",
        slow_closed.len(),
        slow_closed.iter().max(),
        body_closed.len(),
        body_closed.iter().max(),
        idle_closed.len(),
        idle_closed.iter().max(),
    );
    assert_eq!(slow_closed.len(), SLOW, "slow-header connections left open");
    assert_eq!(body_closed.len(), BODY, "slow-body connections left open");
    assert_eq!(idle_closed.len(), IDLE_ALL, "idle connections left open");
    assert!(after.contains(" 200 "), "healthz after: {after:?}");
}

/// A connection to the bounce listener from the loopback address `source`.
async fn smtp_from(source: &str, port: u16) -> tokio::io::BufReader<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    tokio::io::BufReader::new(stream)
}

/// The next reply line, or "" when the server closed the connection.
async fn reply_line(c: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), c.read_line(&mut line))
        .await
        .expect("no reply within 30 s")
        .unwrap_or(0);
    line.trim_end().to_string()
}

/// Sends a command and reads replies up to the last line of a multi-line one.
async fn command(c: &mut tokio::io::BufReader<tokio::net::TcpStream>, text: &str) -> String {
    use tokio::io::AsyncWriteExt;
    c.get_mut()
        .write_all(format!("{text}\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        let line = reply_line(c).await;
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noop_trickler_cannot_starve_the_bounce_listener() {
    use tokio::io::AsyncWriteExt;
    let port = crate::support::free_port();
    let inst = Instance::new(&format!(
        "[inbound]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 8\n\
         max_connections_per_address = 2\ntimeout = \"2s\"\nsession_timeout = \"6s\"\n"
    ));
    let _server = tokio::task::block_in_place(|| inst.serve());

    // One address tries to take every slot: it gets its share, the rest hear 421 at once.
    let mut attacker = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..8 {
        let mut c = smtp_from("127.0.0.2", port).await;
        let banner = reply_line(&mut c).await;
        if banner.starts_with("220") {
            attacker.push(c);
        } else {
            refused.push(banner);
        }
    }
    // Another client is served meanwhile.
    let mut legit = smtp_from("127.0.0.1", port).await;
    let legit_banner = reply_line(&mut legit).await;
    let legit_ehlo = command(&mut legit, "EHLO mx.example.net").await;
    let legit_quit = command(&mut legit, "QUIT").await;

    // The held ones trickle NOOP a byte every 500 ms: the per-command timeout ends them.
    let start = Instant::now();
    let mut cut = Vec::new();
    for mut c in attacker.drain(..) {
        let trickle = tokio::spawn(async move {
            for b in b"NOOP\r\n" {
                if c.get_mut().write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (reply_line(&mut c).await, start.elapsed())
        });
        cut.push(trickle);
    }
    let mut trickler_replies = Vec::new();
    for t in cut {
        trickler_replies.push(t.await.unwrap());
    }

    // A client sending whole NOOPs every 200 ms is ended by the session limit.
    let mut spinner = smtp_from("127.0.0.3", port).await;
    reply_line(&mut spinner).await;
    let spin_start = Instant::now();
    let mut noops = 0;
    let spinner_end = loop {
        let r = command(&mut spinner, "NOOP").await;
        if !r.starts_with("250") {
            break r;
        }
        noops += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let spin_time = spin_start.elapsed();

    println!(
        "bounce listener (8 slots, 2 per address, command timeout 2s, session 6s): one \
         address asked for 8 and held {} ({} refused: {:?}); another client got {legit_banner:?} \
         / {legit_ehlo:?} / {legit_quit:?}; tricklers cut with {:?}; a NOOP spinner \
         answered {noops} times, then {spinner_end:?} after {spin_time:?}",
        8 - refused.len(),
        refused.len(),
        refused.first(),
        trickler_replies,
    );
    assert_eq!(refused.len(), 6, "one address held more than its share");
    assert!(refused.iter().all(|r| r.starts_with("421")), "{refused:?}");
    assert!(legit_banner.starts_with("220"), "{legit_banner}");
    assert!(legit_ehlo.starts_with("250"), "{legit_ehlo}");
    assert!(legit_quit.starts_with("221"), "{legit_quit}");
    for (r, _) in &trickler_replies {
        assert!(r.starts_with("421 4.4.2") && r.contains("timeout"), "{r:?}");
    }
    assert!(
        spinner_end.starts_with("421 4.4.2") && spinner_end.contains("session"),
        "{spinner_end:?}"
    );
}

#[test]
fn outgoing_mail_has_size_limits_and_reserved_variables_answered_naming_the_field() {
    let inst = Instance::new("");
    let text = std::fs::read_to_string(&inst.config_path)
        .unwrap()
        .replace("[sender]\n", "[sender]\nmax_message_size = 40000\n");
    std::fs::write(&inst.config_path, text).unwrap();
    let key = inst.api_key();
    let server = inst.serve();
    let client = Client::new();
    let send = |body: serde_json::Value| {
        let r = client
            .post(server.url("/api/v1/messages"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let json: serde_json::Value = r.json().unwrap();
        (
            status,
            json["error"]["message"].as_str().unwrap_or("").to_string(),
        )
    };
    let notice = |name: &str, vars: serde_json::Value| {
        serde_json::json!({"to": "taro@example.jp", "template": "notice", "locale": "en",
                           "name": name, "vars": vars})
    };
    let cases = [
        // A 5,000-character name made a 5,020-character To: line.
        (
            notice(
                &"a".repeat(5_000),
                serde_json::json!({"subject": "s", "body": "b"}),
            ),
            422,
            "name",
        ),
        // A 10 MB request queued a 21.8 MB message: now over the API's 1 MiB body cap
        // (1.5 MB, which loopback buffers take whole, so the client reads the answer).
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s", "body": "x".repeat(1_500_000)}),
            ),
            413,
            "1024 KiB",
        ),
        // Within the body cap, over the variable's own limit.
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s", "body": "x".repeat(60_000)}),
            ),
            422,
            "vars.body",
        ),
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s".repeat(300), "body": "b"}),
            ),
            422,
            "vars.subject",
        ),
        // Within every variable's limit, but the composed message is over 40,000 bytes.
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s", "body": "本".repeat(20_000)}),
            ),
            413,
            "sender.max_message_size",
        ),
        // The footer says who sent the notice; the caller cannot change it.
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s", "body": "b", "organization": "Evil Corp"}),
            ),
            422,
            "vars.organization",
        ),
        (
            notice(
                "Taro",
                serde_json::json!({"subject": "s", "body": "b", "public_url": "https://evil.example"}),
            ),
            422,
            "vars.public_url",
        ),
    ];
    for (body, want_status, want_field) in cases {
        let (status, error) = send(body);
        assert_eq!(status, want_status, "{want_field}: {error}");
        assert!(error.contains(want_field), "{want_field}: {error}");
    }
    // A flow with an overlong name is refused before anything is stored.
    let r = client
        .post(server.url("/api/v1/flows"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"kind": "setup", "address": "hanako@example.jp",
                                   "name": "山".repeat(201)}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().unwrap().contains("name"));
    // A long name within its limit goes out folded: no header line over 78.
    let (status, error) = send(notice(
        &"山田 ".repeat(60),
        serde_json::json!({"subject": "s", "body": "b"}),
    ));
    assert_eq!(status, 202, "{error}");
    let outbox = inst.path().join("outbox");
    let mut eml = None;
    crate::support::wait_for(30, || {
        eml = std::fs::read_dir(&outbox).ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| e.path())
        });
        eml.is_some()
    });
    let raw = std::fs::read_to_string(eml.expect("the message reached the outbox")).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    let to: Vec<&str> = head
        .split("\r\n")
        .skip_while(|l| !l.starts_with("To:"))
        .take_while(|l| l.starts_with("To:") || l.starts_with(' '))
        .collect();
    assert!(to.len() > 1 && to.iter().all(|l| l.len() <= 78), "{head}");
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "this test fills a real disk: it mounts a {megabytes} MiB tmpfs, which needs root \
             (run scripts/test.sh as root, as .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        // The last blocks, smaller than 64 KiB.
        while f.write_all(&block[..512]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_stops_intake_until_space_returns_and_sigterm_still_exits_0() {
    let disk = SmallDisk::mount(48);
    // The full disk is the sled store's folder.
    let inst = Instance::on_sled("");
    let text = std::fs::read_to_string(&inst.config_path).unwrap().replace(
        &format!("path = \"{}\"", inst.path().join("store").display()),
        &format!("path = \"{}\"", disk.path().join("store").display()),
    );
    // Delivery goes nowhere (a closed port, retried in an hour): everything stays queued.
    let text = text.replace(
        &format!(
            "[delivery]\nmode = \"outbox\"\noutbox_dir = \"{}\"\n",
            inst.path().join("outbox").display()
        ),
        "[delivery]\nmode = \"relay\"\nrelay = \"127.0.0.1:9\"\nretry_schedule = [\"1h\"]\n",
    );
    std::fs::write(&inst.config_path, text).unwrap();
    let key = inst.api_key();
    let mut server = inst.serve();
    let client = Client::new();
    let messages_url = server.url("/api/v1/messages");
    let send = |i: usize| {
        let to = format!("p{i}@example.jp");
        post_notice(&client, &messages_url, &key, &to, 30_000)
    };
    let healthz_url = server.url("/healthz");
    let healthz = || status_of(&client, &healthz_url);
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let (status, id) = send(i);
        assert_eq!(status, 202);
        acknowledged.push(id.unwrap());
    }
    let filler = disk.fill();
    let mut refused = 0;
    for i in 10..60 {
        match send(i) {
            (202, Some(id)) => acknowledged.push(id),
            (503, _) => refused += 1,
            other => panic!("on a full disk: {other:?}"),
        }
    }
    let health_full = healthz();
    std::fs::remove_file(&filler).unwrap();
    let mut resumed_after = None;
    let start = Instant::now();
    crate::support::wait_for(30, || {
        if healthz() != 200 {
            return false;
        }
        match send(1000) {
            (202, Some(id)) => {
                acknowledged.push(id);
                resumed_after = Some(start.elapsed());
                true
            }
            _ => false,
        }
    });
    println!(
        "full disk: {refused} of 50 enqueues refused with 503, /healthz {health_full}; space \
         freed: intake resumed after {resumed_after:?}; {} messages acknowledged in all",
        acknowledged.len()
    );
    assert!(refused > 0, "the disk never filled");
    assert_eq!(health_full, 503, "/healthz while writes fail");
    assert!(
        resumed_after.is_some(),
        "intake did not resume once space returned"
    );
    let status = server.signal_and_wait(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    drop(server);

    // Nothing acknowledged was lost.
    let server = inst.serve();
    for id in &acknowledged {
        let r = client
            .get(server.url(&format!("/api/v1/messages/{id}")))
            .bearer_auth(&key)
            .send()
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "acknowledged message {id} is gone"
        );
    }
}

/// Posts one notice to `url` (the API's messages endpoint); its status and id.
fn post_notice(
    client: &Client,
    url: &str,
    key: &str,
    to: &str,
    body_len: usize,
) -> (u16, Option<String>) {
    let r = client
        .post(url)
        .bearer_auth(key)
        .json(
            &serde_json::json!({"to": to, "template": "notice", "locale": "en",
               "vars": {"subject": "s", "body": "x".repeat(body_len)}}),
        )
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let json: serde_json::Value = r.json().unwrap_or_default();
    (status, json["message_id"].as_str().map(str::to_string))
}

/// The status `GET url` answers.
fn status_of(client: &Client, url: &str) -> u16 {
    client.get(url).send().unwrap().status().as_u16()
}

/// sled itself (not only the spool) fails a write on a full disk: it refuses every
/// later write until it is opened again. mailgate reopens it in-process once space
/// returns, without a restart, and loses nothing it acknowledged, though enqueues
/// keep coming all along.
#[test]
fn sled_failing_a_write_on_a_full_disk_is_reopened_without_a_restart_and_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let disk = SmallDisk::mount(48);
    // Nothing listens on the relay's port yet: every message is deferred and tried
    // again each second, so the worker writes to sled while the disk is full.
    let port = crate::support::free_port();
    let inst = Instance::on_sled(&crate::support::relay_config(port, "\"1s\""));
    let text = std::fs::read_to_string(&inst.config_path).unwrap().replace(
        &format!("path = \"{}\"", inst.path().join("store").display()),
        &format!("path = \"{}\"", disk.path().join("store").display()),
    );
    std::fs::write(&inst.config_path, text).unwrap();
    let key = inst.api_key();
    let mut server = inst.serve();
    let client = Client::new();
    let messages_url = server.url("/api/v1/messages");
    let send = |i: usize| {
        post_notice(
            &client,
            &messages_url,
            &key,
            &format!("p{i}@example.jp"),
            2_000,
        )
    };
    let healthz_url = server.url("/healthz");
    let healthz = || status_of(&client, &healthz_url);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (status, id) = send(i);
        assert_eq!(status, 202);
        acknowledged.push(id.unwrap());
    }
    // Four clients enqueue all along: before the disk fills, while it is full, while
    // the store reopens and after. Each keeps what was acknowledged to it.
    let stop = AtomicBool::new(false);
    let (ids, statuses, sled_failed, health_full, resumed_after) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, url, key) = (&stop, &messages_url, &key);
                scope.spawn(move || {
                    let client = Client::new();
                    let mut ids = Vec::new();
                    let mut statuses = std::collections::BTreeMap::new();
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let (status, id) =
                            post_notice(&client, url, key, &format!("c{c}-{i}@example.jp"), 2_000);
                        *statuses.entry(status).or_insert(0) += 1;
                        if status == 202 {
                            ids.push(id.expect("a 202 names its message"));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    (ids, statuses)
                })
            })
            .collect();
        let filler = disk.fill();
        // sled's own write fails (the worker's deferrals, /healthz's flush), not only
        // the spool's; a failure "at" the store's folder itself is sled's (the spool's
        // and the health probe's name their files).
        let sled_error = format!("failed at {}: ", disk.path().join("store").display());
        let sled_failed = crate::support::wait_for(60, || {
            let _ = healthz();
            server.log_text().contains(&sled_error)
        });
        let health_full = healthz();
        std::fs::remove_file(&filler).unwrap();
        let start = Instant::now();
        let mut resumed_after = None;
        crate::support::wait_for(60, || {
            if healthz() != 200 {
                return false;
            }
            match send(1000) {
                (202, Some(id)) => {
                    acknowledged.push(id);
                    resumed_after = Some(start.elapsed());
                    true
                }
                _ => false,
            }
        });
        // The clients go on a little on the reopened store.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        let mut ids = Vec::new();
        let mut statuses = std::collections::BTreeMap::new();
        for c in clients {
            let (i, s) = c.join().unwrap();
            ids.extend(i);
            for (k, v) in s {
                *statuses.entry(k).or_insert(0) += v;
            }
        }
        (ids, statuses, sled_failed, health_full, resumed_after)
    });
    println!(
        "sled failed on a full disk: /healthz {health_full}; space freed: intake resumed \
         after {resumed_after:?} without a restart; concurrent enqueues by status: \
         {statuses:?}; {} messages acknowledged in all",
        acknowledged.len() + ids.len()
    );
    assert!(
        sled_failed,
        "sled never failed a write: {}",
        server.log_text()
    );
    assert_eq!(health_full, 503, "/healthz while writes fail");
    assert!(
        resumed_after.is_some(),
        "intake did not resume once space returned: {}",
        server.log_text()
    );
    assert!(
        statuses.keys().all(|s| *s == 202 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.get(&503).is_some_and(|n| *n > 0), "{statuses:?}");
    assert!(
        server.log_text().contains("the store was reopened"),
        "{}",
        server.log_text()
    );
    acknowledged.extend(ids);
    // Every message acknowledged, before the disk filled, while it was full or after,
    // is delivered.
    let sink = crate::support::Sink::start_on(port, &[]);
    let status_of = |id: &str| -> String {
        let r = client
            .get(server.url(&format!("/api/v1/messages/{id}")))
            .bearer_auth(&key)
            .send()
            .unwrap();
        let json: serde_json::Value = r.json().unwrap_or_default();
        json["status"].as_str().unwrap_or("gone").to_string()
    };
    for id in &acknowledged {
        let delivered = crate::support::wait_for(60, || status_of(id) == "delivered");
        assert!(
            delivered,
            "acknowledged message {id} is {}: {}",
            status_of(id),
            server.log_text()
        );
    }
    let captured: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    for id in &acknowledged {
        assert!(
            captured.iter().any(|m| m.contains(id.as_str())),
            "acknowledged message {id} never reached the relay"
        );
    }
    for line in server.log_text().lines() {
        if line.contains("the store was reopened") {
            println!("{line}");
        }
    }
    let status = server.signal_and_wait(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
}

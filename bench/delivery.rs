//! Delivery benchmark: mailgate (API enqueue → queue → SMTP) against two references,
//! all sending the same count of messages of the same size to `smtp-sink` on loopback,
//! in the same run: Postfix's `smtp-source` straight to the sink (the load generator's
//! own ceiling), and a Postfix relay (durable queue, no DKIM) fed by `smtp-source`.
//! Prints every rate and the ratios, the enqueue latency p50/p99, and the servers' peak
//! RSS and CPU.
//!
//! Run: `bench/run.sh delivery [--messages N] [--size BYTES] [--signing ed25519|rsa|both]
//! [--store sled|postgres|both] [--nodes N] [--no-fsync] [--progress]`
//! (or `cargo bench --bench delivery -- ...`). Not part of the tests.
//!
//! The references and PostgreSQL are started here, each private to the run, so a
//! figure never depends on a service left running on the machine:
//! - PostgreSQL: a throwaway cluster as `scripts/test.sh` makes one (initdb as the
//!   `postgres` user into a temporary folder, a free loopback port), with `fsync` and
//!   `synchronous_commit` on since durability is measured (`--no-fsync` turns
//!   `synchronous_commit` off), stopped at the end. `MAILGATE_BENCH_PG_URL` names a
//!   server instead (a database its role may `CREATE DATABASE` from). Each mailgate run
//!   gets a fresh database.
//! - Postfix: an instance with its own `config_directory` and `queue_directory` in a
//!   temporary folder (`postfix -c DIR`), listening on a free loopback port and relaying
//!   to the sink; the system's Postfix, if any, is not touched. It needs root.

#[path = "delivery/postfix.rs"]
mod postfix;
#[path = "delivery/postgres.rs"]
mod postgres;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    messages: usize,
    size: usize,
    clients: usize,
    signing: String,
    /// `--no-fsync`: store.fsync off, to see what durability on power loss costs.
    fsync: bool,
    /// `--progress`: after the run, print enqueued and delivered counts and the server's
    /// CPU every 100 ms, to see where the run spent its time.
    progress: bool,
    /// `--store sled|postgres|both`: the backends measured, each in its own run.
    store: String,
    /// `--nodes N` (N > 1): also N `mailgate serve` nodes on one PostgreSQL database,
    /// the clients spread over them, beside the one-node PostgreSQL run.
    nodes: usize,
}

fn args() -> Args {
    let mut a = Args {
        messages: 20_000,
        size: 4096,
        clients: 64,
        signing: "ed25519".into(),
        fsync: true,
        progress: false,
        store: "sled".into(),
        nodes: 1,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--messages" => a.messages = next.parse().expect("--messages N"),
            "--size" => a.size = next.parse().expect("--size BYTES"),
            "--clients" => a.clients = next.parse().expect("--clients N"),
            "--signing" => a.signing = next,
            "--store" => a.store = next,
            "--nodes" => a.nodes = next.parse().expect("--nodes N"),
            "--no-fsync" => {
                a.fsync = false;
                i += 1;
                continue;
            }
            "--progress" => {
                a.progress = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(
        ["sled", "postgres", "both"].contains(&a.store.as_str()),
        "--store sled|postgres|both, not {:?}",
        a.store
    );
    assert!(a.nodes >= 1, "--nodes is 1 or more");
    if a.nodes > 1 && a.store == "sled" {
        a.store = "both".into();
        println!("--nodes {} runs on PostgreSQL: --store both", a.nodes);
    }
    a
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn tool(name: &str) -> PathBuf {
    for d in ["/usr/sbin", "/usr/bin"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/install-test-peers.sh");
}

/// smtp-sink with running counters (-c); returns the child and the count of messages
/// it has received, read from its counter output ("sess=1 quit=1 mesg=5\r").
fn sink(port: u16) -> (Child, Arc<AtomicUsize>) {
    let mut cmd = Command::new(tool("smtp-sink"));
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["-u", "nobody"]);
    }
    let mut child = cmd
        .args(["-c", &format!("127.0.0.1:{port}"), "1024"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink");
    let count = Arc::new(AtomicUsize::new(0));
    let mut out = child.stdout.take().unwrap();
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut pending = Vec::new();
        while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\r') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                if let Some(m) = text
                    .split("mesg=")
                    .nth(1)
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    c.store(m, Ordering::SeqCst);
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smtp-sink did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, count)
}

/// Waits until the sink has received `n` messages.
fn wait_count(count: &AtomicUsize, n: usize, limit: Duration) {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < limit,
            "the sink received {} of {n} messages within {limit:?}",
            count.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// smtp-source with 20 parallel sessions, reusing connections (-d), sending
/// `a.messages` of `a.size` bytes to `127.0.0.1:port`.
fn smtp_source(a: &Args, port: u16) {
    let status = Command::new(tool("smtp-source"))
        .args([
            "-d",
            "-s",
            "20",
            "-m",
            &a.messages.to_string(),
            "-l",
            &a.size.to_string(),
            "-f",
            "bench@example.jp",
            "-t",
            "sink@example.jp",
            &format!("127.0.0.1:{port}"),
        ])
        .status()
        .expect("smtp-source");
    assert!(status.success(), "smtp-source failed: {status}");
}

/// The load generator's ceiling: smtp-source straight to the sink.
fn reference(a: &Args) -> f64 {
    let port = free_port();
    let (s, count) = sink(port);
    let started = Instant::now();
    smtp_source(a, port);
    wait_count(&count, a.messages, Duration::from_secs(600));
    let rate = a.messages as f64 / started.elapsed().as_secs_f64();
    stop(s);
    rate
}

/// The relay reference: smtp-source → a private Postfix relay → the sink, timed until
/// the sink has every message.
fn postfix_relay(a: &Args) -> Result<f64, String> {
    let sink_port = free_port();
    let (s, count) = sink(sink_port);
    let relay = postfix::Postfix::start(sink_port)?;
    let started = Instant::now();
    smtp_source(a, relay.port);
    let limit = Duration::from_secs(900);
    while count.load(Ordering::SeqCst) < a.messages {
        if started.elapsed() > limit || relay.not_sent() > 0 {
            return Err(format!(
                "the sink received {} of {} messages through Postfix ({} deferred or \
                 bounced); the end of its log:\n{}",
                count.load(Ordering::SeqCst),
                a.messages,
                relay.not_sent(),
                relay.log_tail(30)
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let rate = a.messages as f64 / started.elapsed().as_secs_f64();
    drop(relay);
    stop(s);
    Ok(rate)
}

/// Where the mailgate nodes of one run keep their records.
enum Backend {
    Sled,
    /// The URL of a fresh database.
    Postgres(String),
}

/// Node `node`'s configuration in `dir`, with the `[[dkim]]` tables `dkim` (the same
/// key files on every node).
fn write_config(
    dir: &Path,
    node: usize,
    port: u16,
    a: &Args,
    backend: &Backend,
    dkim: &str,
) -> PathBuf {
    let store_dir = dir.join(format!("node{node}"));
    let fsync = a.fsync;
    let store = match backend {
        Backend::Sled => format!("path = \"{}\"\nfsync = {fsync}\n", store_dir.display()),
        Backend::Postgres(url) => format!(
            "backend = \"postgres\"\nurl = \"{url}\"\npath = \"{}\"\n",
            store_dir.display()
        ),
    };
    // The per-key API limit stays on, so its store write is in every request's cost,
    // but high enough never to refuse the load. MAILGATE_BENCH_API_LIMIT=0 turns it off,
    // to measure what it costs.
    let api_limit = std::env::var("MAILGATE_BENCH_API_LIMIT").unwrap_or_else(|_| "1000000".into());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://id.example.jp\"\napi_requests_per_minute = {api_limit}\n\
         [store]\n{store}\
         [sender]\nfrom = \"Example Clinic <no-reply@example.jp>\"\nbounce_domain = \"bounces.example.jp\"\nhostname = \"mail.example.jp\"\n\
         [delivery]\nmode = \"relay\"\nrelay = \"127.0.0.1:{port}\"\nrelay_tls = \"none\"\nmax_connections = 32\nmax_connections_per_domain = 20\nmessages_per_connection = 1000\n\
         [inbound]\nlisten = \"\"\n[log]\nlevel = \"warn,mailgate::app=info\"\n{dkim}"
    );
    let p = dir.join(format!("mailgate-node{node}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// The mailgate measured: this build, or `MAILGATE_BENCH_BINARY` (another build, such as
/// the one before a change, run in the same period as this one for a before/after).
fn mailgate_binary() -> String {
    std::env::var("MAILGATE_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mailgate").to_string())
}

/// Makes the DKIM keys of the signing mode in `dir`; returns their `[[dkim]]` tables.
fn dkim_keys(dir: &Path, signing: &str) -> String {
    let mut text = String::new();
    let bin = mailgate_binary();
    for (alg, sel) in [("ed25519", "bench-ed"), ("rsa", "bench-rsa")] {
        if signing == alg || signing == "both" {
            let out = Command::new(&bin)
                .args([
                    "dkim",
                    "keygen",
                    "--domain",
                    "example.jp",
                    "--selector",
                    sel,
                    "--algorithm",
                    alg,
                    "--out",
                ])
                .arg(dir)
                .output()
                .expect("dkim keygen");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text.push_str(&format!(
                "[[dkim]]\ndomain = \"example.jp\"\nselector = \"{sel}\"\nalgorithm = \"{alg}\"\nkey_file = \"{}\"\n",
                dir.join(format!("{sel}.pem")).display()
            ));
        }
    }
    text
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

struct Measured {
    /// CPU seconds of every node together.
    cpu_s: f64,
    /// CPU seconds of the PostgreSQL cluster during the run (a cluster made here only).
    pg_cpu_s: Option<f64>,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Peak RSS of every node together.
    rss_kib: u64,
}

/// One node: its child and the address its HTTP server listens on.
fn serve(config: &Path, log_name: &str) -> (Child, String) {
    let bin = mailgate_binary();
    let mut server = Command::new(&bin)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let stderr = server.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!(
                "mailgate serve ({}) stopped before listening:\n{}",
                config.display(),
                seen.join("\n")
            ),
        };
        if let Some(rest) = line.split("http listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    // The server's log goes to a file, for when a run looks wrong.
    let log_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(log_name);
    let mut log = std::fs::File::create(&log_path).unwrap();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
        }
    });
    (server, addr)
}

/// One mailgate run: `nodes` servers on `backend`, the clients spread over them.
fn mailgate(
    a: &Args,
    backend: &Backend,
    nodes: usize,
    pg: Option<&postgres::Postgres>,
) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dkim = dkim_keys(dir.path(), &a.signing);
    let configs: Vec<PathBuf> = (0..nodes)
        .map(|n| write_config(dir.path(), n, port, a, backend, &dkim))
        .collect();
    let bin = mailgate_binary();
    let key_out = Command::new(&bin)
        .arg("--config")
        .arg(&configs[0])
        .args(["apikey", "create", "bench"])
        .output()
        .unwrap();
    assert!(
        key_out.status.success(),
        "{}",
        String::from_utf8_lossy(&key_out.stderr)
    );
    let key = String::from_utf8(key_out.stdout)
        .unwrap()
        .trim()
        .to_string();

    let (s, count) = sink(port);
    let kind = match backend {
        Backend::Sled => "sled",
        Backend::Postgres(_) => "postgres",
    };
    let (servers, addrs): (Vec<Child>, Vec<String>) = configs
        .iter()
        .enumerate()
        .map(|(n, c)| {
            serve(
                c,
                &format!("bench-delivery-server-{kind}-{nodes}-node{n}.log"),
            )
        })
        .unzip();
    let pg_cpu_before = pg.and_then(|p| p.cpu_seconds());
    // A body that makes the whole message about `size` bytes.
    let body: String =
        "Your appointment is confirmed. ".repeat(a.size.saturating_sub(1500) / 31 + 1);
    let urls: Vec<String> = addrs
        .iter()
        .map(|addr| format!("http://{addr}/api/v1/messages"))
        .collect();
    let client_cpu_before = cpu_seconds(std::process::id());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let enqueued = Arc::new(AtomicUsize::new(0));
    let sampler = a.progress.then(|| {
        let (enqueued, count, pids, n) = (
            enqueued.clone(),
            count.clone(),
            servers.iter().map(|s| s.id()).collect::<Vec<_>>(),
            a.messages,
        );
        std::thread::spawn(move || {
            let mut rows = Vec::new();
            while count.load(Ordering::SeqCst) < n && started.elapsed() < Duration::from_secs(600) {
                std::thread::sleep(Duration::from_millis(100));
                rows.push((
                    started.elapsed().as_secs_f64(),
                    enqueued.load(Ordering::SeqCst),
                    count.load(Ordering::SeqCst),
                    pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>(),
                ));
            }
            rows
        })
    });
    let latencies: Vec<f64> = rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(a.clients).build().unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let url = urls[c % urls.len()].clone();
            let (client, key, body, next) = (client.clone(), key.clone(), body.clone(), next.clone());
            let enqueued = enqueued.clone();
            let n = a.messages;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&serde_json::json!({"to": format!("user{i}@example.jp"), "template": "notice", "locale": "en",
                               "vars": {"subject": "Appointment confirmed", "body": body}}))
                        .send()
                        .await
                        .expect("POST");
                    assert_eq!(resp.status(), 202, "enqueue failed");
                    enqueued.fetch_add(1, Ordering::SeqCst);
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let enqueued_in = started.elapsed();
    let client_cpu = cpu_seconds(std::process::id()) - client_cpu_before;
    wait_count(&count, a.messages, Duration::from_secs(900));
    let elapsed = started.elapsed();
    stop(s);
    if let Some(rows) = sampler.and_then(|t| t.join().ok()) {
        eprintln!("  time s   enqueued  delivered  server CPU s");
        for (t, e, d, c) in rows {
            eprintln!("  {t:6.2} {e:10} {d:10} {c:13.2}");
        }
    }
    let rss = servers.iter().map(|s| peak_rss_kib(s.id())).sum();
    let cpu_s = servers.iter().map(|s| cpu_seconds(s.id())).sum();
    let pg_cpu_s = pg
        .and_then(|p| p.cpu_seconds())
        .zip(pg_cpu_before)
        .map(|(after, before)| after - before);
    for mut server in servers {
        let _ = server.kill();
        let _ = server.wait();
    }
    let mut l = latencies;
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| l[((l.len() as f64 - 1.0) * p) as usize];
    eprintln!(
        "  (mailgate on {kind}, {nodes} node(s): enqueued all in {:.2}s, delivered all in {:.2}s; the load generator used {client_cpu:.2} CPU s)",
        enqueued_in.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    Measured {
        rate: a.messages as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        rss_kib: rss,
        cpu_s,
        pg_cpu_s,
    }
}

/// The signing ceiling: messages of `size` bytes signed per second on one core with the
/// keys of this signing mode, measured in-process with mailgate's own signer.
fn signing_ceiling(a: &Args) -> f64 {
    use mailgate::dkim::{
        Algorithm, DkimKeyConfig, RSA_DEFAULT_BITS, Signers, generate, write_key_file,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    for (alg, name, sel) in [
        (Algorithm::Ed25519, "ed25519", "ceil-ed"),
        (Algorithm::Rsa, "rsa", "ceil-rsa"),
    ] {
        if a.signing == name || a.signing == "both" {
            let key = generate(alg, RSA_DEFAULT_BITS).unwrap();
            let key_file = write_key_file(dir.path(), sel, &key).unwrap();
            keys.push(DkimKeyConfig {
                domain: "example.jp".into(),
                selector: sel.into(),
                algorithm: alg,
                key_file,
            });
        }
    }
    let signers = Signers::load(&keys).map_err(|e| format!("{e:?}")).unwrap();
    let line = "Your appointment is confirmed. Please bring your card.\r\n";
    let body = line.repeat(a.size / line.len() + 1);
    let message = format!(
        "From: Example Clinic <no-reply@example.jp>\r\nTo: <user@example.jp>\r\nSubject: Appointment\r\n\
         Date: Tue, 24 Nov 2026 12:00:00 +0900\r\nMessage-ID: <x@mail.example.jp>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    );
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        signers.sign(message.as_bytes(), 1_795_000_000).unwrap();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    // `cargo test` runs bench targets only when asked; refuse to run as a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `bench/run.sh delivery` or `cargo bench --bench delivery`");
        return;
    }
    let a = args();
    println!(
        "delivery benchmark: {} messages of ~{} bytes to smtp-sink on loopback, signing: {}, \
         durability: {}, store: {}{}",
        a.messages,
        a.size,
        a.signing,
        if a.fsync { "on" } else { "off" },
        a.store,
        if a.nodes > 1 {
            format!(", also {} nodes", a.nodes)
        } else {
            String::new()
        }
    );
    if let Ok(other) = std::env::var("MAILGATE_BENCH_BINARY") {
        println!("  mailgate measured: {other} (MAILGATE_BENCH_BINARY)");
    }
    let _ = std::io::stdout().flush();
    let reference_rate = reference(&a);
    println!(
        "  smtp-source -d -s 20 → sink:          {reference_rate:>9.0} msg/s   (the load generator's ceiling)"
    );
    let _ = std::io::stdout().flush();
    let relay_rate = match postfix_relay(&a) {
        Ok(rate) => {
            println!(
                "  Postfix relay (smtp-source → postfix): {rate:>9.0} msg/s   (durable queue, no DKIM)"
            );
            Some(rate)
        }
        Err(e) => {
            println!("  Postfix relay: not measured: {e}");
            None
        }
    };
    let _ = std::io::stdout().flush();

    // (label, measurement) per mailgate run, in the order run.
    let mut runs: Vec<(String, Measured)> = Vec::new();
    if a.store != "postgres" {
        runs.push((
            "mailgate sled".into(),
            mailgate(&a, &Backend::Sled, 1, None),
        ));
        print_run(&a, &runs[runs.len() - 1]);
    }
    if a.store != "sled" {
        let mut pg = postgres::Postgres::start(a.fsync);
        println!("  (PostgreSQL: {})", pg.describe());
        let mut node_counts = vec![1];
        if a.nodes > 1 {
            node_counts.push(a.nodes);
        }
        for nodes in node_counts {
            let backend = Backend::Postgres(pg.fresh_database());
            let m = mailgate(&a, &backend, nodes, Some(&pg));
            let label = if nodes == 1 {
                "mailgate postgres".to_string()
            } else {
                format!("mailgate postgres, {nodes} nodes")
            };
            runs.push((label, m));
            print_run(&a, &runs[runs.len() - 1]);
        }
    }

    println!("  ratios:");
    let rate_of = |label: &str| runs.iter().find(|(l, _)| l == label).map(|(_, m)| m.rate);
    for (label, m) in &runs {
        if let Some(relay) = relay_rate {
            println!("    {label} / Postfix relay: {:>6.2}", m.rate / relay);
        }
    }
    if let (Some(pg), Some(sled)) = (rate_of("mailgate postgres"), rate_of("mailgate sled")) {
        println!("    mailgate postgres / mailgate sled: {:>6.2}", pg / sled);
    }
    if let (Some(many), Some(one)) = (
        rate_of(&format!("mailgate postgres, {} nodes", a.nodes)),
        rate_of("mailgate postgres"),
    ) {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        println!(
            "    postgres {} nodes / 1 node: {:>6.2}   (every node, PostgreSQL and the load \
             generator share these {cores} cores: {})",
            a.nodes,
            many / one,
            if cores <= 4 {
                "this shows contention, not scaling"
            } else {
                "few cores left for scaling"
            }
        );
    }
    for (label, m) in &runs {
        println!(
            "    {label} / smtp-source → sink: {:>6.2}",
            m.rate / reference_rate
        );
    }
    let ceiling = signing_ceiling(&a);
    println!(
        "  signing alone ({}), one core: {ceiling:>7.0} msg/s",
        a.signing
    );
    for (label, m) in &runs {
        println!(
            "    {label} end to end / signing ceiling: {:.2}",
            m.rate / ceiling
        );
    }
    let _ = std::io::stdout().flush();
}

/// One mailgate run's lines.
fn print_run(a: &Args, (label, m): &(String, Measured)) {
    println!("  {label:<38} {:>9.0} msg/s", m.rate);
    println!(
        "    enqueue latency p50 {:.2} ms, p99 {:.2} ms ({} concurrent clients)",
        m.p50_ms, m.p99_ms, a.clients
    );
    println!(
        "    server peak RSS {} MiB; server CPU {:.2} s in all, {:.0} µs per message",
        m.rss_kib / 1024,
        m.cpu_s,
        m.cpu_s * 1e6 / a.messages as f64
    );
    if let Some(pg) = m.pg_cpu_s {
        println!(
            "    PostgreSQL CPU {:.2} s in all, {:.0} µs per message",
            pg,
            pg * 1e6 / a.messages as f64
        );
    }
    let _ = std::io::stdout().flush();
}

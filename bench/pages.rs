//! Page benchmark: requests per second and p99 latency of the landing page of a flow link
//! (`GET /v/{token}`) served by `mailgate serve` (the release binary, shipped log level,
//! outbox delivery), beside a bare hyper 1.x server in this process answering the same
//! bytes as a fixed page, both loaded by `wrk` with the same settings in the same run.
//! Then the landing page's p99 while 64 password checks run at once, wave after wave,
//! for the whole measurement.
//!
//! The password burst uses `POST /api/v1/credentials/verify` with 64 concurrent requests
//! (for addresses without an account, so each is checked against the decoy hash): it
//! goes through the same per-process `Hasher` as the password form (same semaphore, same
//! blocking threads, one argon2id m=19456 KiB t=2 p=1 each), without having to drive 64
//! flows through mail, button and code first. The form adds a zxcvbn check and a store
//! write per submission, both small beside argon2id.
//!
//! Run: `bench/run.sh pages [--seconds S] [--connections N] [--threads T]` (or
//! `cargo bench --bench pages -- --bench ...`). Needs `wrk` (Debian package `wrk`;
//! bench/run.sh installs it when missing). Not part of the tests.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Bytes, Frame, SizeHint};

struct Args {
    seconds: u64,
    connections: usize,
    threads: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        connections: 32,
        threads: 1,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = next.parse().expect("--seconds S"),
            "--connections" => a.connections = next.parse().expect("--connections N"),
            "--threads" => a.threads = next.parse().expect("--threads T"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

// ---- wrk ----

fn wrk_path() -> PathBuf {
    ["/usr/bin/wrk", "/usr/local/bin/wrk"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("wrk is missing: apt-get install wrk (bench/run.sh does it)"))
}

/// What one wrk run reported.
#[derive(Debug, Default)]
struct Load {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    requests: u64,
    /// Responses other than 2xx/3xx, and socket errors.
    bad: u64,
}

/// "1.23ms", "456.00us", "1.02s", "2.00m" in milliseconds.
fn ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => f64::NAN,
    }
}

fn parse_wrk(out: &str) -> Load {
    let mut l = Load::default();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", r, ..] => l.rate = r.parse().unwrap_or(f64::NAN),
            ["50%", v] => l.p50_ms = ms(v),
            ["99%", v] => l.p99_ms = ms(v),
            ["Latency", _avg, _stdev, max, ..] => l.max_ms = ms(max),
            [n, "requests", "in", ..] => l.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => l.bad += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                l.bad += rest
                    .iter()
                    .filter_map(|v| v.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    l
}

/// Loads `url` with wrk for `seconds`; returns what it reported.
fn wrk(a: &Args, url: &str, seconds: u64) -> Load {
    let out = Command::new(wrk_path())
        .args([
            "--latency",
            "-t",
            &a.threads.to_string(),
            "-c",
            &a.connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            url,
        ])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = parse_wrk(&text);
    assert!(
        l.rate.is_finite() && l.requests > 0,
        "cannot read wrk's output:\n{text}"
    );
    l
}

// ---- the bare hyper server ----

/// tokio's TcpStream as hyper 1.x's IO (what hyper-util's `TokioIo` does).
struct Io(tokio::net::TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // SAFETY: tokio's ReadBuf only writes initialised bytes into the uninitialised
        // part, and `advance` is called with the count it filled.
        let n = unsafe {
            let mut tbuf = tokio::io::ReadBuf::uninit(buf.as_mut());
            match tokio::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, &mut tbuf) {
                Poll::Ready(Ok(())) => tbuf.filled().len(),
                other => return other,
            }
        };
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}

/// A whole body in one frame (what http-body-util's `Full` does).
struct Fixed(Option<Bytes>);

impl Body for Fixed {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// Serves `page` as `text/html` to every request, on a runtime with as many workers as
/// `mailgate serve` has (one per core); returns its address and the runtime.
fn bare_server(page: Bytes) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let page = page.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let page = page.clone();
                    async move {
                        hyper::Response::builder()
                            .header(hyper::header::CONTENT_TYPE, "text/html; charset=utf-8")
                            .body(Fixed(Some(page)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(Io(stream), service)
                    .await;
            });
        }
    });
    (addr, rt)
}

// ---- mailgate ----

struct Mailgate {
    child: Child,
    addr: String,
    key: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Mailgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailgate"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mailgate");
    assert!(
        out.status.success(),
        "mailgate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The link token in the first mail of the outbox (decoded, as the tests read mail).
fn token_in_outbox(outbox: &Path) -> String {
    let re = regex::Regex::new(r"/v/([A-Za-z0-9_-]{32})").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for e in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
            let raw = std::fs::read(e.path()).unwrap_or_default();
            if let Some(m) = mail_parser::MessageParser::default().parse(&raw) {
                let text = m.body_text(0).unwrap_or_default();
                if let Some(c) = re.captures(&text) {
                    return c[1].to_string();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no invitation in {}",
            outbox.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `mailgate serve` with a temporary store, the shipped log level and outbox delivery;
/// an API key, and one invitation's link token.
fn mailgate() -> Mailgate {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("mailgate.toml");
    std::fs::write(
        &config,
        // The per-key API limit stays on, so its store write is in every request's cost,
        // but high enough never to refuse the load.
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://id.example.jp\"\napi_requests_per_minute = 1000000\n\
             [store]\npath = \"{store}\"\nfsync = true\n\
             [sender]\nfrom = \"Example Clinic <no-reply@example.jp>\"\nbounce_domain = \"bounces.example.jp\"\nhostname = \"mail.example.jp\"\n\
             [delivery]\nmode = \"outbox\"\noutbox_dir = \"{outbox}\"\n\
             [inbound]\nlisten = \"\"\n[log]\nformat = \"text\"\nlevel = \"info\"\n",
            store = root.join("store").display(),
            outbox = root.join("outbox").display(),
        ),
    )
    .unwrap();
    let key = run(&config, &["apikey", "create", "bench"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailgate"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailgate serve");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server log").unwrap();
        if let Some(rest) = line.split("http listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    run(&config, &["invite", "hanako@example.jp", "--locale", "en"]);
    let token = token_in_outbox(&root.join("outbox"));
    Mailgate {
        child,
        addr,
        key,
        token,
        _dir: dir,
    }
}

/// What the password burst did while wrk ran.
struct Burst {
    waves: usize,
    ok: usize,
    busy: usize,
    other: usize,
    p99_ms: f64,
    seconds: f64,
}

/// Waves of 64 concurrent `POST /api/v1/credentials/verify` until `stop` is set.
async fn password_burst(base: String, key: String, stop: Arc<AtomicBool>) -> Burst {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("{base}/api/v1/credentials/verify");
    let mut b = Burst {
        waves: 0,
        ok: 0,
        busy: 0,
        other: 0,
        p99_ms: 0.0,
        seconds: 0.0,
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut wave = Vec::new();
        for i in 0..64 {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            wave.push(tokio::spawn(async move {
                let t = Instant::now();
                let status = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&serde_json::json!({
                        "address": format!("nobody{i}@example.jp"),
                        "password": "correct horse battery staple 42",
                    }))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                (status, t.elapsed().as_secs_f64() * 1000.0)
            }));
        }
        for t in wave {
            let (status, ms) = t.await.unwrap();
            latencies.push(ms);
            match status {
                200 => b.ok += 1,
                503 => b.busy += 1,
                _ => b.other += 1,
            }
        }
        b.waves += 1;
    }
    b.seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(|x, y| x.partial_cmp(y).unwrap());
    if !latencies.is_empty() {
        b.p99_ms = latencies[((latencies.len() - 1) as f64 * 0.99) as usize];
    }
    b
}

fn show(name: &str, l: &Load) {
    println!(
        "  {name:<30} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms{}",
        l.rate,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        if l.bad > 0 {
            format!("   ({} bad responses or socket errors)", l.bad)
        } else {
            String::new()
        }
    );
}

fn main() {
    // `cargo test` runs bench targets only when asked; refuse to run as a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `bench/run.sh pages` or `cargo bench --bench pages`");
        return;
    }
    let a = args();
    wrk_path();
    let mg = mailgate();
    let landing_url = format!("http://{}/v/{}", mg.addr, mg.token);

    // The landing page as a person's browser gets it; the bare server answers these bytes.
    let page = reqwest::blocking::get(&landing_url).expect("GET the landing page");
    assert_eq!(page.status(), 200, "the landing page");
    let page = page.bytes().unwrap();
    let (bare_addr, bare_rt) = bare_server(Bytes::from(page.to_vec()));
    let bare_url = format!("http://{bare_addr}/");

    println!(
        "page benchmark: wrk -t{} -c{} -d{}s --latency, landing page of {} bytes; {} cores",
        a.threads,
        a.connections,
        a.seconds,
        page.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Warm-up (also fills the flow's capped "link visited" notes, after which a GET
    // writes nothing).
    wrk(&a, &bare_url, 2);
    wrk(&a, &landing_url, 2);

    let bare = wrk(&a, &bare_url, a.seconds);
    show("bare hyper, fixed page:", &bare);
    let landing = wrk(&a, &landing_url, a.seconds);
    show("mailgate GET /v/{token}:", &landing);
    println!(
        "  ratio mailgate/bare:           {:>9.2}   (goal: 0.50 or more)",
        landing.rate / bare.rate
    );
    drop(bare_rt);

    // The same load on the landing page while 64 password checks run at once, in waves,
    // for the whole run.
    let stop = Arc::new(AtomicBool::new(false));
    let burst_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let burst = {
        let stop2 = stop.clone();
        let base = format!("http://{}", mg.addr);
        let key = mg.key.clone();
        std::thread::spawn(move || burst_rt.block_on(password_burst(base, key, stop2)))
    };
    // Let the first wave reach the hasher before measuring.
    std::thread::sleep(Duration::from_millis(200));
    let under = wrk(&a, &landing_url, a.seconds);
    stop.store(true, Ordering::SeqCst);
    let b = burst.join().unwrap();
    show("mailgate, 64 passwords at once:", &under);
    println!(
        "  p99 under the password burst:  {:>9.2} ms   (goal: below 50 ms; {:.2} ms without it)",
        under.p99_ms, landing.p99_ms
    );
    println!(
        "  password checks: {} waves of 64, {} answered 200, {} busy (503), {} other; p99 {:.0} ms; {:.1} checks/s",
        b.waves,
        b.ok,
        b.busy,
        b.other,
        b.p99_ms,
        (b.ok + b.busy + b.other) as f64 / b.seconds
    );
    let _ = std::io::stdout().flush();
}

//! Shared test helpers: a temporary mailgate instance started as a real process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The mailgate binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailgate"))
}

/// A folder with a config file and a store, removed when dropped.
///
/// The store is sled, or with `MAILGATE_TEST_BACKEND=postgres` a fresh database on the
/// server at `MAILGATE_TEST_PG_URL` (the test script starts one), dropped with the
/// instance: the same tests run against either backend.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    database: Option<TestDatabase>,
}

/// The backend the suite runs against (`MAILGATE_TEST_BACKEND`, default `sled`).
pub fn backend() -> String {
    std::env::var("MAILGATE_TEST_BACKEND").unwrap_or_else(|_| "sled".into())
}

/// A database of its own on the test server, dropped at the end.
pub struct TestDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let server = std::env::var("MAILGATE_TEST_PG_URL").unwrap_or_else(|_| {
            panic!(
                "MAILGATE_TEST_PG_URL is not set: run the suite with `bash scripts/test.sh`, \
                 which starts a throwaway PostgreSQL (apt-get install postgresql)"
            )
        });
        let name = format!(
            "mg_it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        psql(&server, &format!("CREATE DATABASE {name}"));
        let base = server.rsplit_once('/').expect("a database in the URL").0;
        let url = format!("{base}/{name}");
        TestDatabase { server, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", &self.server, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Instance {
    /// A config for tests: free ports, everything under a temporary folder, no fsync
    /// (the tests kill processes, they do not cut power). `extra` is appended as TOML.
    pub fn new(extra: &str) -> Instance {
        let database = (backend() == "postgres").then(TestDatabase::create);
        Instance::with_store(extra, database)
    }

    /// An instance on the sled store whatever the suite's backend (for what only sled
    /// has: its spool files, its folder lock).
    pub fn on_sled(extra: &str) -> Instance {
        Instance::with_store(extra, None)
    }

    /// An instance on `database` (shared by several nodes when each gets a clone of its
    /// URL), or on sled with `None`.
    pub fn with_store(extra: &str, database: Option<TestDatabase>) -> Instance {
        let url = database.as_ref().map(|d| d.url.clone());
        let mut inst = Instance::with_url(extra, url.as_deref());
        inst.database = database;
        inst
    }

    /// An instance whose store is the PostgreSQL database at `url` (not dropped with it).
    pub fn with_url(extra: &str, url: Option<&str>) -> Instance {
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        let postgres = url
            .map(|u| format!("backend = \"postgres\"\nurl = \"{u}\"\npool_size = 4\n"))
            .unwrap_or_default();
        // The per-key API limit stays on but never fills: the cluster tests post
        // thousands of notices a minute with one key (its own test sets it low).
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://localhost:9\"\napi_requests_per_minute = 1000000\n\
             [store]\npath = \"{store}\"\nfsync = false\n{postgres}\
             [sender]\nfrom = \"Example Clinic <no-reply@example.jp>\"\nbounce_domain = \"bounces.example.jp\"\nhostname = \"mail.example.jp\"\n\
             [log]\nformat = \"text\"\nlevel = \"info\"\n",
            store = root.join("store").display(),
        );
        text.push_str(extra);
        if !extra.contains("[delivery]") {
            text.push_str(&format!(
                "[delivery]\nmode = \"outbox\"\noutbox_dir = \"{}\"\n",
                root.join("outbox").display()
            ));
        }
        let config_path = root.join("mailgate.toml");
        std::fs::write(&config_path, text).expect("write config");
        Instance {
            dir,
            config_path,
            database: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs a mailgate command with this config to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run mailgate")
    }

    /// Waits until the delivery worker is idle (`mailgate queue status`: nothing being
    /// sent, nothing due), so a test can then look for mail that must not have gone out
    /// without sleeping a guessed time. Panics after 30 s.
    pub fn wait_queue_idle(&self) {
        let status = || {
            let out = self.run(&["queue", "status", "--json"]);
            assert!(
                out.status.success(),
                "queue status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("status JSON")
        };
        assert!(
            wait_for(30, || {
                let s = status();
                s["in_flight"] == 0 && s["due_now"] == false
            }),
            "the queue did not become idle: {}",
            status()
        );
    }

    /// Starts `mailgate serve` and waits until it logs its HTTP address.
    pub fn serve(&self) -> Server {
        Server::start(&self.config_path, &[])
    }
}

/// A running `mailgate serve` process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(binary());
        cmd.arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start mailgate serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("http listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("address in log"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "mailgate serve did not log its address; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Server { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a signal and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, sig: i32) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
        let mut status = None;
        assert!(
            wait_for(30, || {
                status = self.child.try_wait().expect("wait");
                status.is_some()
            }),
            "server did not exit after signal {sig}"
        );
        status.expect("exited")
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mailgate in this test process: `app::start` on a runtime of its own. Its bound
/// addresses (HTTP, bounce listener, control socket) come back from the start itself,
/// so there is no log to scrape and no port to guess; commands run with the instance's
/// config reach it through its control socket. Stopped (store flushed) when dropped.
/// Tests of the process itself (signals, kills, logs) use [`Server`].
pub struct TestApp {
    pub http: SocketAddr,
    pub inbound: Option<SocketAddr>,
    pub control_socket: PathBuf,
    running: Option<mailgate::app::Running>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestApp {
    pub fn start(inst: &Instance) -> TestApp {
        let config = mailgate::config::Config::load(&mailgate::config::ConfigSources {
            path: Some(inst.config_path.clone()),
            ..Default::default()
        })
        .expect("the test config loads");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the app");
        let running = runtime
            .block_on(mailgate::app::start(config))
            .expect("mailgate starts");
        TestApp {
            http: running.http_addr,
            inbound: running.inbound_addr,
            control_socket: running.control_socket.clone(),
            running: Some(running),
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The bounce listener's port (the config must set `inbound.listen`).
    pub fn inbound_port(&self) -> u16 {
        self.inbound.expect("inbound.listen is set").port()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let (Some(runtime), Some(running)) = (self.runtime.take(), self.running.take()) {
            let stopped = runtime.block_on(running.stop());
            runtime.shutdown_timeout(Duration::from_secs(5));
            if let Err(e) = stopped
                && !std::thread::panicking()
            {
                panic!("mailgate did not stop cleanly: {e:#}");
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; a peer binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .unwrap()
        .port()
}

/// Finds a peer program or fails the test naming the install step.
pub fn peer(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the test peer `{name}` is missing: run scripts/install-test-peers.sh (it installs Debian's postfix, spamassassin, chromium and Python dkimpy)"
    );
}

/// The Python that runs the Python test peers: `MAILGATE_TEST_PYTHON`, or `python3`.
pub fn python() -> String {
    std::env::var("MAILGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails (never skips) when `modules` (as `import` names them) cannot be imported,
/// naming the pip packages that hold them and the install step.
pub fn require_python_modules(modules: &str, packages: &str, what: &str) {
    let python = python();
    let output = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output();
    let problem = match output {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        Err(e) => format!("cannot run {python}: {e}"),
    };
    panic!(
        "{what} is missing ({problem}).\n\
         Install the test peers with scripts/install-test-peers.sh \
         (it runs: {python} -m pip install {packages}), then run the tests again."
    );
}

/// Waits (bounded) until something listens on `port` of 127.0.0.1.
pub fn wait_listening(port: u16, what: &str) {
    wait_listening_at("127.0.0.1", port, what);
}

/// Like [`wait_listening`], on another loopback address (`127.0.0.2`, …).
pub fn wait_listening_at(ip: &str, port: u16, what: &str) {
    assert!(
        wait_for(10, || std::net::TcpStream::connect((ip, port)).is_ok()),
        "{what} did not listen on {ip}:{port}"
    );
}

/// Postfix's `smtp-sink` on a free port, capturing every message to a folder.
pub struct Sink {
    pub child: Child,
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Sink {
    /// Starts smtp-sink with extra fault switches (e.g. `["-f", "RCPT"]`).
    pub fn start(extra: &[&str]) -> Sink {
        Sink::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Sink {
        Sink::start_at("127.0.0.1", port, extra)
    }

    /// On another loopback address: several sinks share one port, as MX hosts share 25.
    pub fn start_at(ip: &str, port: u16, extra: &[&str]) -> Sink {
        let dir = tempfile::tempdir().expect("sink folder");
        // smtp-sink drops root privileges to the -u user, who must write the dumps.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let child = Sink::spawn(dir.path(), ip, port, extra);
        Sink {
            child,
            ip: ip.to_string(),
            port,
            dir,
        }
    }

    fn spawn(dir: &Path, ip: &str, port: u16, extra: &[&str]) -> Child {
        let mut cmd = Command::new(peer("smtp-sink"));
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "nobody"]);
        }
        let template = format!("{}/%H%M%S.", dir.display());
        cmd.args(["-d", &template])
            .args(extra)
            .arg(format!("{ip}:{port}"))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start smtp-sink");
        wait_listening_at(ip, port, "smtp-sink");
        child
    }

    /// Stops this sink and starts another on the same port and folder with other
    /// switches (the receiving server changes its mind).
    pub fn restart_with(mut self, extra: &[&str]) -> Sink {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        assert!(
            wait_for(10, || std::net::TcpStream::connect((
                self.ip.as_str(),
                port
            ))
            .is_err()),
            "the old sink still listens"
        );
        self.child = Sink::spawn(self.dir.path(), &self.ip, self.port, extra);
        self
    }

    /// Every captured message file's bytes.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
        out
    }

    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMTP server offering STARTTLS (aiosmtpd, `tests/support/tls_sink.py`) on a free
/// port, with a certificate for 127.0.0.1 from a throwaway CA; captures every message.
pub struct TlsSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TlsSink {
    pub fn start() -> TlsSink {
        TlsSink::start_with(&[])
    }

    /// With `["implicit"]`, TLS from the first byte (port 465 style) instead of STARTTLS.
    pub fn start_with(extra: &[&str]) -> TlsSink {
        require_python_modules(
            "aiosmtpd, trustme",
            "aiosmtpd trustme",
            "the STARTTLS test peer",
        );
        let dir = tempfile::tempdir().expect("TLS sink folder");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_sink.py");
        let child = Command::new(python())
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tls_sink.py");
        wait_listening(port, "the STARTTLS peer (tests/support/tls_sink.py)");
        TlsSink { child, port, dir }
    }

    /// The certificate of the CA that issued the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every captured message: `X-TLS`, `X-Mail-From` and `X-Rcpt-To` lines, then the
    /// message as received.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "eml") {
                out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
            }
        }
        out
    }
}

impl Drop for TlsSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A capture file split into smtp-sink's envelope lines and the message as received.
pub struct Captured {
    pub mail_args: String,
    pub rcpt_args: String,
    pub message: Vec<u8>,
}

/// Splits a smtp-sink dump: `X-…` envelope lines, its own Received header, then the
/// message itself.
pub fn parse_capture(dump: &[u8]) -> Captured {
    let text = String::from_utf8_lossy(dump);
    let mut mail_args = String::new();
    let mut rcpt_args = String::new();
    let mut offset = 0;
    let mut in_received = false;
    for line in text.split_inclusive('\n') {
        if let Some(v) = line.strip_prefix("X-Mail-Args: ") {
            mail_args = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("X-Rcpt-Args: ") {
            rcpt_args = v.trim().to_string();
        } else if line.starts_with("X-") {
        } else if line.starts_with("Received:") {
            in_received = true;
        } else if in_received && (line.starts_with('\t') || line.starts_with(' ')) {
        } else {
            break;
        }
        offset += line.len();
    }
    Captured {
        mail_args,
        rcpt_args,
        message: dump[offset..].to_vec(),
    }
}

/// CRLF → LF, as smtp-sink writes its dumps.
pub fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Polls `cond` until it holds or `secs` pass; returns whether it held.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A relay configuration pointing at `port`, with a fast retry schedule.
pub fn relay_config(port: u16, retry: &str) -> String {
    format!(
        "[delivery]\nmode = \"relay\"\nrelay = \"127.0.0.1:{port}\"\nrelay_tls = \"none\"\nretry_schedule = [{retry}]\nconnect_timeout = \"2s\"\ncommand_timeout = \"10s\"\n[inbound]\nlisten = \"\"\n"
    )
}

impl Instance {
    /// `mailgate log QUERY --json`, parsed.
    pub fn log_json(&self, query: &str) -> serde_json::Value {
        let out = self.run(&["log", query, "--json"]);
        assert!(
            out.status.success(),
            "mailgate log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("log JSON")
    }

    /// Waits (bounded) until message `id` is delivered; the sink has then closed its
    /// capture file (smtp-sink writes captures while it receives them).
    pub fn wait_delivered(&self, id: &str) {
        let status = || {
            self.log_json(id)["messages"][0]["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        assert!(
            wait_for(60, || status() == "delivered"),
            "message {id} is {}",
            status()
        );
    }

    /// The VERP return path and the Message-ID header of delivered message `id`, as
    /// the sink captured them: what a real bounce would be addressed to and quote.
    pub fn return_path_of(&self, sink: &Sink, id: &str) -> (String, String) {
        let capture = sink
            .messages()
            .into_iter()
            .map(|m| parse_capture(&m))
            .find(|c| c.mail_args.contains(id))
            .unwrap_or_else(|| panic!("message {id} was not captured"));
        let verp = capture
            .mail_args
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches(['<', '>'])
            .to_string();
        let header = self.log_json(id)["messages"][0]["message_id_header"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (verp, header)
    }

    /// Creates an API key (server up or down) and returns it.
    pub fn api_key(&self) -> String {
        let out = self.run(&["apikey", "create", "tests"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `mailgate send` a notice; returns the message id.
    pub fn send_notice(&self, to: &str) -> String {
        let out = self.run(&[
            "send",
            "--to",
            to,
            "--template",
            "notice",
            "--locale",
            "en",
            "--var",
            "subject=Clinic hours",
            "--var",
            "body=We open at nine.",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .trim_start_matches("queued ")
            .to_string()
    }
}

/// A relay configuration plus the bounce listener on `inbound_port`.
/// With `inbound_port` 0 the listener takes a free port, which [`TestApp`] reports.
pub fn relay_with_inbound(port: u16, inbound_port: u16) -> String {
    relay_config(port, "\"1s\"").replace(
        "[inbound]\nlisten = \"\"\n",
        &format!("[inbound]\nlisten = \"127.0.0.1:{inbound_port}\"\n"),
    )
}

/// A plain SMTP client for the bounce listener: returns each reply line group.
pub fn smtp_send(port: u16, mail_from: &str, rcpts: &[&str], data: &str) -> Vec<String> {
    use std::io::{BufRead, Write};
    let stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the bounce listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut replies = Vec::new();
    let read_reply = |reader: &mut BufReader<std::net::TcpStream>| {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        all.trim_end().to_string()
    };
    replies.push(read_reply(&mut reader));
    let cmd =
        |w: &mut std::net::TcpStream, reader: &mut BufReader<std::net::TcpStream>, c: &str| {
            w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
            read_reply(reader)
        };
    replies.push(cmd(&mut w, &mut reader, "EHLO mx.example.net"));
    replies.push(cmd(
        &mut w,
        &mut reader,
        &format!("MAIL FROM:<{mail_from}>"),
    ));
    let mut accepted = 0;
    for r in rcpts {
        let reply = cmd(&mut w, &mut reader, &format!("RCPT TO:<{r}>"));
        if reply.starts_with('2') {
            accepted += 1;
        }
        replies.push(reply);
    }
    if accepted > 0 {
        replies.push(cmd(&mut w, &mut reader, "DATA"));
        let mut body = String::new();
        for line in data.replace("\r\n", "\n").split('\n') {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        w.write_all(body.as_bytes()).unwrap();
        replies.push(read_reply(&mut reader));
    }
    replies.push(cmd(&mut w, &mut reader, "QUIT"));
    replies
}

/// A delivery status notification (RFC 3464) for one recipient.
pub fn dsn(
    to: &str,
    rcpt: &str,
    message_id_header: &str,
    action: &str,
    status: &str,
    diagnostic: &str,
) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
To: {to}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Date: Tue, 24 Nov 2026 12:00:00 +0900\r\n\
Message-ID: <dsn.{n}@mx.example.net>\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"\r\n\
\r\n\
--BOUNDARY\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
This is the mail system at host mx.example.net.\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
\r\n\
--BOUNDARY\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
Arrival-Date: Tue, 24 Nov 2026 12:00:00 +0900\r\n\
\r\n\
Final-Recipient: rfc822; {rcpt}\r\n\
Original-Recipient: rfc822;{rcpt}\r\n\
Action: {action}\r\n\
Status: {status}\r\n\
Remote-MTA: dns; mx.example.net\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\
\r\n\
--BOUNDARY\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: Example Clinic <no-reply@example.jp>\r\n\
To: <{rcpt}>\r\n\
Subject: Clinic hours\r\n\
Message-ID: <{message_id_header}>\r\n\
\r\n\
--BOUNDARY--\r\n",
        n = rand_suffix()
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

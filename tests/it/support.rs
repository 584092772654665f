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
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Instance {
    /// A config for tests: free ports, everything under a temporary folder, no fsync
    /// (the tests kill processes, they do not cut power). `extra` is appended as TOML.
    pub fn new(extra: &str) -> Instance {
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://localhost:9\"\n\
             [store]\npath = \"{store}\"\nfsync = false\n\
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
        Instance { dir, config_path }
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

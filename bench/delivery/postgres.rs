//! The PostgreSQL server the benchmark's PostgreSQL runs use: a throwaway cluster made
//! the way `scripts/test.sh` makes one (initdb as the `postgres` user into a temporary
//! folder, pg_ctl on a free loopback port), but with `fsync` and `synchronous_commit`
//! on, since the benchmark measures durable delivery; or the server that
//! `MAILGATE_BENCH_PG_URL` names. Every run gets a database of its own, so no run sees
//! another's queue. Dropping the value stops the cluster (or drops the databases made on
//! the named server), also when a run panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Postgres {
    /// A URL to a database the role may connect to and `CREATE DATABASE` from.
    admin_url: String,
    psql: PathBuf,
    own: Option<OwnCluster>,
    made: Vec<String>,
}

struct OwnCluster {
    bin: PathBuf,
    data: PathBuf,
    dir: tempfile::TempDir,
}

/// The newest installed PostgreSQL's bin folder (Debian puts it under /usr/lib).
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

/// A PostgreSQL program; as root it runs as the `postgres` user, as initdb demands.
fn as_pg(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str, log: Option<&Path>) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if !out.status.success() {
        let log = log
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        panic!(
            "{what} failed ({}):\n{}{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Postgres {
    /// The server named by `MAILGATE_BENCH_PG_URL`, or a new throwaway cluster;
    /// `synchronous_commit` is set only on a cluster made here.
    pub fn start(synchronous_commit: bool) -> Postgres {
        let bin = pg_bin();
        let psql = bin
            .as_ref()
            .map(|b| b.join("psql"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("psql"));
        if let Ok(url) = std::env::var("MAILGATE_BENCH_PG_URL") {
            return Postgres {
                admin_url: url,
                psql,
                own: None,
                made: Vec::new(),
            };
        }
        let bin = bin.expect(
            "PostgreSQL is missing: run bash scripts/install-test-peers.sh \
             (or set MAILGATE_BENCH_PG_URL)",
        );
        let dir = tempfile::Builder::new()
            .prefix("mailgate-bench-pg.")
            .tempdir()
            .unwrap();
        if unsafe { libc::geteuid() } == 0 {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(dir.path());
                    c
                },
                "chown postgres: of the cluster's folder",
                None,
            );
        }
        let data = dir.path().join("data");
        let mut initdb = as_pg(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"]);
        run(initdb, "initdb", None);
        let port = crate::free_port();
        let log = dir.path().join("server.log");
        let sync = if synchronous_commit { "on" } else { "off" };
        let mut start = as_pg(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=on \
                 -c synchronous_commit={sync} -c max_connections=200",
                dir.path().display()
            ))
            .arg("start");
        let own = OwnCluster { bin, data, dir };
        run(start, "pg_ctl start", Some(&log));
        Postgres {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            psql,
            own: Some(own),
            made: Vec::new(),
        }
    }

    /// What the runs print about the server.
    pub fn describe(&self) -> String {
        match &self.own {
            Some(c) => format!(
                "a throwaway cluster in {} (fsync on)",
                c.dir.path().display()
            ),
            None => "the server MAILGATE_BENCH_PG_URL names".into(),
        }
    }

    fn psql(&self, sql: &str) {
        let mut c = Command::new(&self.psql);
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(&self.admin_url)
            .arg("-c")
            .arg(sql);
        run(c, &format!("psql -c {sql:?}"), None);
    }

    /// A new empty database; returns its URL.
    pub fn fresh_database(&mut self) -> String {
        let name = format!(
            "mailgate_bench_{}_{}",
            std::process::id(),
            self.made.len() + 1
        );
        self.psql(&format!("CREATE DATABASE {name}"));
        self.made.push(name.clone());
        with_database(&self.admin_url, &name)
    }

    /// CPU seconds (user + system) the cluster's processes have used so far: the
    /// postmaster, its reaped children and its live ones. None for a server not made here.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let own = self.own.as_ref()?;
        let pid_file = std::fs::read_to_string(own.data.join("postmaster.pid")).ok()?;
        let pm: u32 = pid_file.lines().next()?.trim().parse().ok()?;
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut total = 0u64;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            // After the state: ppid is f[0]; utime, stime, cutime, cstime are f[10..14].
            if pid == pm {
                total += f[10] + f[11] + f[12] + f[13];
            } else if f.first() == Some(&(pm as u64)) {
                total += f[10] + f[11];
            }
        }
        Some(total as f64 / ticks)
    }
}

/// `url` with its database replaced by `name` (the query, if any, kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

impl Drop for Postgres {
    fn drop(&mut self) {
        match &self.own {
            Some(c) => {
                let _ = as_pg(&c.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(&c.data)
                    .args(["-m", "fast", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            None => {
                for name in std::mem::take(&mut self.made) {
                    let _ = Command::new(&self.psql)
                        .args(["-X", "-q", "-d"])
                        .arg(&self.admin_url)
                        .arg("-c")
                        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

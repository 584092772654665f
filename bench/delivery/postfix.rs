//! The Postfix relay reference: a private Postfix instance (`postfix -c DIR`) with its
//! own `config_directory`, `queue_directory` and `data_directory` in a temporary folder,
//! listening on a free loopback port and relaying everything to the sink
//! (`relayhost = [127.0.0.1]:SINK`): a durable queue (Postfix's cleanup fsyncs each
//! queue file before the 250), no DKIM, Debian's stock `master.cf` with chroot off (a
//! chroot would need copies of /etc files in the queue folder). Its log goes to
//! `maillog` in that folder (no syslog here). The system's Postfix, if any, is not
//! touched: nothing under /etc/postfix is written. Starting Postfix needs root.
//! Dropping the value stops the instance, also when a run panics.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// A running instance relaying to `127.0.0.1:sink_port`.
    pub fn start(sink_port: u16) -> Result<Postfix, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("starting a Postfix instance needs root".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("mailgate-bench-postfix.")
            .tempdir()
            .map_err(|e| e.to_string())?;
        // Postfix's daemons (user postfix) must reach the folders below.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let root = dir.path();
        for d in ["etc", "queue", "data"] {
            std::fs::create_dir(root.join(d)).map_err(|e| e.to_string())?;
        }
        let status = Command::new("chown")
            .arg("postfix:")
            .arg(root.join("data"))
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("chown postfix: {}", root.join("data").display()));
        }
        let port = crate::free_port();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {root}/queue\n\
             data_directory = {root}/data\n\
             maillog_file = {root}/maillog\n\
             maillog_file_prefixes = {root}\n\
             myhostname = relay.bench.invalid\n\
             mydomain = bench.invalid\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             relayhost = [127.0.0.1]:{sink_port}\n\
             smtp_dns_support_level = disabled\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n",
            root = root.display()
        );
        std::fs::write(root.join("etc/main.cf"), main_cf).map_err(|e| e.to_string())?;
        let stock = ["/etc/postfix/master.cf", "/etc/postfix/master.cf.proto"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .ok_or("no /etc/postfix/master.cf: run scripts/install-test-peers.sh")?;
        std::fs::write(root.join("etc/master.cf"), master_cf(&stock, port))
            .map_err(|e| e.to_string())?;
        let pf = Postfix { dir, port };
        pf.postfix("start")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "Postfix did not listen on 127.0.0.1:{port}:\n{}",
                    pf.maillog()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(pf)
    }

    fn postfix(&self, verb: &str) -> Result<(), String> {
        let out = Command::new(crate::tool("postfix"))
            .arg("-c")
            .arg(self.etc())
            .arg(verb)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("postfix {verb}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        // A fatal error before the log is set up goes to syslog only; say how to see it.
        Err(format!(
            "postfix -c {} {verb} failed ({}); its log:\n{}{}\n(postfix prints why only \
             on a terminal: script -qc 'postfix -c {} {verb}' /dev/null)",
            self.etc().display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.maillog(),
            self.etc().display(),
        ))
    }

    /// How many messages Postfix deferred or bounced, from its log: a run with any is
    /// not a clean measurement.
    pub fn not_sent(&self) -> usize {
        self.maillog()
            .lines()
            .filter(|l| l.contains("status=deferred") || l.contains("status=bounced"))
            .count()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.maillog();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Debian's master.cf with every service's chroot off and the SMTP server on
/// 127.0.0.1:`port` instead of port 25.
fn master_cf(stock: &str, port: u16) -> String {
    let mut out = String::new();
    for line in stock.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let service = !line.starts_with('#') && !line.starts_with(char::is_whitespace);
        if service && f.len() >= 8 {
            let mut f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            if f[0] == "smtp" && f[1] == "inet" {
                f[0] = format!("127.0.0.1:{port}");
            }
            f[4] = "n".into();
            out.push_str(&f.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if let Err(e) = self.postfix("stop") {
            eprintln!("{e}");
        }
    }
}

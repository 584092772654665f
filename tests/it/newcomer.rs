//! The README's "Try the journey yourself", run as written: its commands are read from
//! the README, `cargo run --release --` stands for the built binary, and they run in an
//! empty folder holding only the shipped `config/mailgate.toml`. The only change is the
//! listening ports (tests never take fixed ports): `serve` gets free ones from the
//! environment.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::journey::*;
use crate::support::{Server, binary};

const README: &str = include_str!("../../README.md");
const SHIPPED_CONFIG: &str = include_str!("../../config/mailgate.toml");
const AS_WRITTEN: &str = "cargo run --release -- ";

/// The commands of the first `sh` block under `heading`, as argument lists.
fn commands_under(heading: &str) -> Vec<Vec<String>> {
    let section = README
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?} in the README"));
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    block
        .lines()
        .map(|l| l.split(" #").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let rest = l
                .strip_prefix(AS_WRITTEN)
                .unwrap_or_else(|| panic!("{l:?} does not use the same build as \"Run it\""));
            words(rest)
        })
        .collect()
}

/// Splits a command line into words, with double quotes.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

fn run_in(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mailgate")
}

/// Starts `serve` as written in `dir`, on free ports.
fn serve_in(dir: &Path, args: &[String]) -> Server {
    let mut child = Command::new(binary())
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env("MAILGATE__SERVER__LISTEN", "127.0.0.1:0")
        .env("MAILGATE__INBOUND__LISTEN", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailgate serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("http listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("serve did not start:\n{}", log.lock().unwrap()))
        .parse()
        .expect("an address");
    Server { child, addr, log }
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_readmes_journey_runs_as_written_with_the_same_build_as_run_it() {
    let run_it = commands_under("## Run it");
    assert_eq!(run_it, vec![vec!["serve".to_string()]]);
    let journey = commands_under("## Try the journey yourself");
    assert_eq!(journey[0], vec!["serve".to_string()], "{journey:?}");
    let show = journey
        .iter()
        .find(|c| c.starts_with(&["outbox".into(), "show".into()]))
        .expect("the README shows the outbox")
        .clone();

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/mailgate.toml"), SHIPPED_CONFIG).unwrap();
    let server = serve_in(dir.path(), &journey[0]);
    for c in &journey[1..] {
        if c == &show {
            // The mail is written by the server's worker a moment after `invite`
            // returns; a person typing the next command never sees the gap.
            assert!(
                crate::support::wait_for(30, || run_in(dir.path(), c, &[]).status.success()),
                "outbox show found no mail"
            );
        } else {
            stdout(&run_in(dir.path(), c, &[]));
        }
    }
    // The invitation's link, printed by `outbox show`.
    let invitation = stdout(&run_in(dir.path(), &show, &[]));
    let token = regex::Regex::new(r"http://localhost:8080/v/([A-Za-z0-9_-]{20,})")
        .unwrap()
        .captures(&invitation)
        .unwrap_or_else(|| panic!("no link in:\n{invitation}"))[1]
        .to_string();
    let b = Browser::new(&server);
    assert_eq!(b.get(&format!("/v/{token}")).status, 200);
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    // The code mail, the newest now.
    let to = &show[2];
    let subject_has_code = crate::support::wait_for(30, || {
        stdout(&run_in(dir.path(), &show, &[]))
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("Subject:") && l.contains("code"))
    });
    assert!(subject_has_code, "no code mail");
    let code_mail = stdout(&run_in(dir.path(), &show, &[]));
    let code = regex::Regex::new(r"\b(\d{6})\b")
        .unwrap()
        .captures(&code_mail)
        .unwrap_or_else(|| panic!("no code in:\n{code_mail}"))[1]
        .to_string();
    assert_eq!(
        b.post(&format!("/v/{token}/code"), &[("code", &code)])
            .status,
        303
    );
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", PASSWORD), ("password2", PASSWORD)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    let done = b.get(&format!("/v/{token}/done"));
    assert!(
        done.body.contains("You can close this page"),
        "{}",
        done.body
    );
    stdout(&run_in(dir.path(), &["log".to_string(), to.clone()], &[]));
    // No link or code reached the server's log.
    let log = server.log_text();
    assert!(!log.contains(&token) && !log.contains(&code), "{log}");

    // Through the running server, overrides given to the command are named as ignored.
    let invite = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend(["invite", "later@example.com"].map(String::from));
        let o = run_in(dir.path(), &args, env);
        stdout(&o);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let said = invite(&[("MAILGATE__FLOWS__LINK_LIFETIME", "20s")], &[]);
    assert!(
        said.contains("own configuration") && said.contains("MAILGATE__FLOWS__LINK_LIFETIME"),
        "{said}"
    );
    let said = invite(&[], &["--set", "flows.link_lifetime=20s"]);
    assert!(said.contains("--set flows.link_lifetime"), "{said}");
    let said = invite(&[], &[]);
    assert!(!said.contains("ignored"), "{said}");
}

#[test]
fn outbox_show_refuses_outside_outbox_mode() {
    let inst = crate::support::Instance::new(
        "[delivery]\nmode = \"relay\"\nrelay = \"127.0.0.1:9\"\n[inbound]\nlisten = \"\"\n",
    );
    let o = inst.run(&["outbox", "show", "a@example.jp"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("outbox mode only"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

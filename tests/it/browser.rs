//! The journey in a real browser: headless Chromium (Debian `chromium`), driven over the
//! DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages separated by NUL
//! on file descriptors 3 and 4), so no driver beyond Chromium itself is needed. The pages
//! run no JavaScript; the test uses DevTools only to type and to press buttons, as a
//! person would. A screenshot of each page, at a phone's size, is saved to
//! `target/tmp/browser-journey/`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::journey::*;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with one page, spoken to over the DevTools pipe.
struct Chromium {
    child: Child,
    to: File,
    from: Receiver<Value>,
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    (fds[0], fds[1])
}

impl Chromium {
    fn start() -> Chromium {
        let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| panic!("chromium is missing: run scripts/install-test-peers.sh"));
        let profile = tempfile::tempdir().unwrap();
        // Chromium reads commands on fd 3 and writes answers on fd 4.
        let (cmd_read, cmd_write) = pipe();
        let (ans_read, ans_write) = pipe();
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-pipe",
            "about:blank",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(move || {
                // Move both ends out of the way first, in case either is already 3 or 4.
                let a = libc::fcntl(cmd_read, libc::F_DUPFD, 10);
                let b = libc::fcntl(ans_write, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        unsafe {
            libc::close(cmd_read);
            libc::close(ans_write);
        }
        let to = unsafe { File::from_raw_fd(cmd_write) };
        let from_file = unsafe { File::from_raw_fd(ans_read) };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_file);
            let mut buf = Vec::new();
            while let Ok(n) = reader.read_until(0, &mut buf) {
                if n == 0 {
                    break;
                }
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut c = Chromium {
            child,
            to,
            from: rx,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = c.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = c.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        c.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        c.call("Page.enable", json!({}));
        c.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        );
        c
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let m = self
                .from
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if m["id"].as_u64() == Some(id) {
                assert!(m.get("error").is_none(), "{method} failed: {m}");
                return m["result"].clone();
            }
            self.events.push_back(m);
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    fn wait_event(&mut self, method: &str) {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            self.events.drain(..=i);
            return;
        }
        self.events.clear();
        loop {
            let m = self
                .from
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no {method} from chromium"));
            if m["method"] == method {
                return;
            }
        }
    }

    /// Runs `script` in the page (DevTools evaluation is not bound by the page's CSP)
    /// and returns its value.
    fn eval(&mut self, script: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired");
    }

    /// Runs `script`, which starts a navigation (a click), and waits for the new page.
    fn act(&mut self, script: &str) {
        self.events.clear();
        self.eval(script);
        self.wait_event("Page.loadEventFired");
    }

    fn url(&mut self) -> String {
        self.eval("location.pathname")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("png data"))
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-journey");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn set_field(name: &str, value: &str) -> String {
    format!(
        "document.querySelector('input[name={name}]').value = {};",
        serde_json::to_string(value).unwrap()
    )
}

const PRESS: &str = "document.querySelector('main form button[type=submit]').click();";

#[test]
fn the_journey_in_headless_chromium_with_a_screenshot_of_each_page() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &[]);
    let s = Setup::start(&format!(
        "{}[flows]\napp_url = \"https://app.example.jp/login\"\n",
        sink.delivery_config()
    ));
    let to = "sakura@example.jp";
    s.invite(&[to, "--name", "佐藤 さくら", "--locale", "ja"]);
    let token = token_in(&wait_for_mail(&sink.dir, to, "アカウント設定", 1));
    let out = output_dir();
    let mut chrome = Chromium::start();

    chrome.navigate(&s.server.url(&format!("/v/{token}")));
    assert!(
        chrome.text().contains("確認コードをメールで受け取る"),
        "{}",
        chrome.text()
    );
    chrome.screenshot(&out.join("1-landing.png"));

    chrome.act(PRESS);
    assert_eq!(chrome.url(), format!("/v/{token}/code"));
    chrome.screenshot(&out.join("2-code.png"));

    let code = code_in(&wait_for_code(&sink.dir, to, 1));
    chrome.act(&format!("{} {PRESS}", set_field("code", &code)));
    assert_eq!(chrome.url(), format!("/v/{token}/password"));
    assert!(chrome.text().contains("12文字以上"));
    chrome.screenshot(&out.join("3-password.png"));

    chrome.act(&format!(
        "document.querySelector('form[action$=password]').noValidate = true; {} {} {PRESS}",
        set_field("password", "password1234"),
        set_field("password2", "password1234")
    ));
    assert!(
        chrome.text().contains("推測されやすい"),
        "{}",
        chrome.text()
    );
    chrome.screenshot(&out.join("4-password-refused.png"));

    chrome.act(&format!(
        "{} {} {PRESS}",
        set_field("password", PASSWORD),
        set_field("password2", PASSWORD)
    ));
    assert_eq!(chrome.url(), format!("/v/{token}/done"));
    assert!(chrome.text().contains("パスワードを設定しました"));
    chrome.screenshot(&out.join("5-done.png"));

    // The language switch.
    chrome.act("document.querySelector('nav.lang a').click();");
    assert!(chrome.text().contains("All done"), "{}", chrome.text());
    chrome.screenshot(&out.join("6-done-en.png"));

    // The used link, as the person sees it if they click the mail again.
    chrome.navigate(&s.server.url(&format!("/v/{token}")));
    assert!(
        chrome.text().contains("This link has been used"),
        "{}",
        chrome.text()
    );
    chrome.screenshot(&out.join("7-used-link.png"));

    assert!(s.credentials_valid(to, PASSWORD));
    for n in [
        "1-landing",
        "2-code",
        "3-password",
        "4-password-refused",
        "5-done",
        "6-done-en",
        "7-used-link",
    ] {
        let p = out.join(format!("{n}.png"));
        assert!(
            std::fs::metadata(&p)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{}",
            p.display()
        );
    }
    println!("screenshots in {}", out.display());
}

//! A headless Chromium driven over the DevTools protocol through
//! `--remote-debugging-pipe` (JSON messages ended by a NUL byte on file descriptors 3
//! and 4), so no websocket client and no network are needed. Just enough of the
//! protocol to open pages, fill and submit forms, read text, take screenshots and
//! download a file. Used by the journey test and the console test alike.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the console tests leave their screenshots and downloads.
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/console");
    std::fs::create_dir_all(&dir).expect("create the test output folder");
    dir
}

/// One browser with one page.
pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: BufReader<File>,
    next_id: u64,
    session: String,
    /// Events seen while waiting for answers.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own; O_CLOEXEC keeps them out of
    // processes other tests start at the same time.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2 failed");
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium (failing the test, naming the install script, when it is
    /// missing) and opens a blank page.
    pub fn start() -> Browser {
        let chromium = crate::support::peer("chromium");
        let profile = tempfile::tempdir().expect("browser profile folder");
        let (cmd_read, cmd_write) = pipe();
        let (out_read, out_write) = pipe();
        let (a, b) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());
        let mut command = Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Move both ends above 4 first, so dup2 cannot clobber one with the other.
                let a2 = libc::fcntl(a, libc::F_DUPFD, 10);
                let b2 = libc::fcntl(b, libc::F_DUPFD, 10);
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start chromium ({e}): run scripts/install-test-peers.sh")
        });
        drop(cmd_read);
        drop(out_write);
        let mut browser = Browser {
            child,
            to_browser: File::from(cmd_write),
            from_browser: BufReader::new(File::from(out_read)),
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
            _profile: profile,
        };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("target id").to_string();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        browser.page("Page.enable", json!({}));
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from_browser
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the DevTools pipe during {method}");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).expect("DevTools JSON");
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("DevTools {method} failed: {e}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// A command to the page.
    fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Evaluates JavaScript in the page and returns its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("script {js:?} failed: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Runs `action` (JavaScript that navigates: a click, a submit) and waits for the
    /// next page to load.
    pub fn navigate_by(&mut self, action: &str) {
        self.events.clear();
        self.eval(action);
        self.wait_load();
    }

    /// Opens a URL and waits for it to load.
    pub fn goto(&mut self, url: &str) {
        self.events.clear();
        self.page("Page.navigate", json!({"url": url}));
        self.wait_load();
    }

    fn wait_load(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .events
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            assert!(Instant::now() < deadline, "the page did not load");
            // A cheap round trip collects the events that arrived meanwhile.
            std::thread::sleep(Duration::from_millis(30));
            self.page("Runtime.evaluate", json!({"expression": "1"}));
        }
    }

    /// The visible text of the page.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The path of the current page.
    pub fn path(&mut self) -> String {
        self.eval("location.pathname")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Sets a form field's value by element id.
    pub fn fill(&mut self, id: &str, value: &str) {
        let js = format!(
            "document.getElementById({}).value = {}; true",
            json!(id),
            json!(value)
        );
        assert_eq!(self.eval(&js), json!(true), "no field #{id}");
    }

    /// Makes the page phone-sized (390×844, touch), as most people open mailed links.
    pub fn phone(&mut self) {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        );
    }

    /// Sets the viewport's width (a phone's height, touch); the page lays out again.
    pub fn width(&mut self, width: u32) {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
        );
    }

    /// Lets scripts run by [`Browser::eval`] past the page's CSP (which allows none), so
    /// a checker such as axe-core can be injected; the page's own markup is unchanged.
    pub fn bypass_csp(&mut self) {
        self.page("Page.setBypassCSP", json!({"enabled": true}));
    }

    /// Saves a PNG of the whole page into the console tests' output folder.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        self.screenshot_to(&output_dir().join(name))
    }

    /// Saves a PNG of the whole page at `path`.
    pub fn screenshot_to(&mut self, path: &Path) -> PathBuf {
        let shot = self.page(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        std::fs::write(path, png).expect("write screenshot");
        path.to_path_buf()
    }

    /// Lets downloads land in `dir`.
    pub fn download_to(&mut self, dir: &Path) {
        self.call(
            None,
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": dir.display().to_string()}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

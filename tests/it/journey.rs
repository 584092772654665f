//! Helpers for the flow tests: a reader for captured mail (`support::Sink` dumps or the
//! outbox), and a small cookie-keeping HTTP "browser" that does not follow redirects, so
//! each 303 can be checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::support::{Instance, Server, wait_for};
pub use crate::support::{Sink, relay_config};

/// The `public_url` of test instances (see `support::Instance`).
pub const PUBLIC_URL: &str = "http://localhost:9";

/// One captured message, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
}

/// Every complete message under `dir` (sink dumps or outbox files), oldest first.
pub fn mails(dir: &Path) -> Vec<Mail> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort_by_key(|p| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
    });
    files
        .into_iter()
        .filter_map(|path| {
            let raw = std::fs::read(&path).ok()?;
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let html = m.body_html(0)?.to_string();
            // A dump still being written has no closing HTML yet.
            if !html.contains("</html>") {
                return None;
            }
            let to = m
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_string();
            Some(Mail {
                to,
                subject: m.subject().unwrap_or_default().to_string(),
                text: m.body_text(0).unwrap_or_default().to_string(),
                html,
            })
        })
        .collect()
}

/// Mail to `to` whose subject contains `subject`.
pub fn mails_to(dir: &Path, to: &str, subject: &str) -> Vec<Mail> {
    mails(dir)
        .into_iter()
        .filter(|m| m.to == to && m.subject.contains(subject))
        .collect()
}

/// Waits (up to 30 s) until there are `n` such mails; returns the newest.
pub fn wait_for_mail(dir: &Path, to: &str, subject: &str, n: usize) -> Mail {
    assert!(
        wait_for(30, || mails_to(dir, to, subject).len() >= n),
        "no mail #{n} to {to} with subject containing {subject:?} in {}; found: {:?}",
        dir.display(),
        mails(dir)
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
    mails_to(dir, to, subject).last().cloned().expect("n >= 1")
}

/// The link token in a flow mail; asserts the link is built from `public_url`.
pub fn token_in(mail: &Mail) -> String {
    let re = regex::Regex::new(r"(https?://[^\s/]+)/v/([A-Za-z0-9_-]{32})").unwrap();
    let c = re
        .captures(&mail.text)
        .unwrap_or_else(|| panic!("no link in mail:\n{}", mail.text));
    assert_eq!(&c[1], PUBLIC_URL, "links come from server.public_url");
    c[2].to_string()
}

/// The code in a code mail.
pub fn code_in(mail: &Mail) -> String {
    let re = regex::Regex::new(r"(?:確認コード|Code): (\d{6})").unwrap();
    re.captures(&mail.text)
        .unwrap_or_else(|| panic!("no code in mail:\n{}", mail.text))[1]
        .to_string()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// An HTTP client with a cookie jar that does not follow redirects.
pub struct Browser {
    client: reqwest::blocking::Client,
    base: String,
    cookies: Mutex<HashMap<String, String>>,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url(""),
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// The same browser (its cookies) talking to another node.
    pub fn moved_to(self, server: &Server) -> Browser {
        Browser {
            base: server.url(""),
            ..self
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// The `Cookie` header this browser sends.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Page {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            if let Some((k, rest)) = v.to_str().unwrap_or("").split_once('=') {
                let value = rest.split(';').next().unwrap_or("");
                self.cookies
                    .lock()
                    .unwrap()
                    .insert(k.to_string(), value.to_string());
            }
        }
        let body = resp.text().unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
    }

    /// Posts a form with this browser's CSRF value added.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[])
    }

    /// [`Browser::post`] with extra request headers (what a proxy in front adds).
    pub fn post_with(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let csrf = self.cookie("mg_csrf").unwrap_or_default();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        let mut request = self.client.post(format!("{}{path}", self.base)).form(&form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
    }
}

/// An instance whose mail goes to the outbox, with `extra` TOML, started, with an API key.
pub struct Setup {
    pub inst: Instance,
    pub server: Server,
    pub key: String,
}

impl Setup {
    pub fn start(extra: &str) -> Setup {
        let inst = Instance::new(extra);
        let server = inst.serve();
        let out = inst.run(&["apikey", "create", "tests"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Setup { inst, server, key }
    }

    /// Where mail lands: the outbox folder.
    pub fn outbox(&self) -> PathBuf {
        self.inst.path().join("outbox")
    }

    /// `mailgate invite ARGS...`; returns the flow id it printed.
    pub fn invite(&self, args: &[&str]) -> String {
        let mut all = vec!["invite"];
        all.extend_from_slice(args);
        let out = self.inst.run(&all);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "invite failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let re = regex::Regex::new(r"flow ([0-9a-f]{32})").unwrap();
        re.captures(&text)
            .unwrap_or_else(|| panic!("no flow id in {text}"))[1]
            .to_string()
    }

    /// `GET /api/v1/flows/{id}` as JSON.
    pub fn flow(&self, id: &str) -> serde_json::Value {
        reqwest::blocking::Client::new()
            .get(self.server.url(&format!("/api/v1/flows/{id}")))
            .bearer_auth(&self.key)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// `POST /api/v1/credentials/verify`.
    pub fn credentials_valid(&self, address: &str, password: &str) -> bool {
        let v: serde_json::Value = reqwest::blocking::Client::new()
            .post(self.server.url("/api/v1/credentials/verify"))
            .bearer_auth(&self.key)
            .json(&serde_json::json!({"address": address, "password": password}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["valid"].as_bool().expect("valid is a bool")
    }
}

/// A strong password for the tests.
pub const PASSWORD: &str = "plum kettle orbit seven lanterns";

/// Presses the button, reads the code from `mail_dir`, enters it and sets `PASSWORD`;
/// asserts each step. `codes_before` is how many code mails the address already had.
pub fn finish_journey(b: &Browser, token: &str, mail_dir: &Path, to: &str, codes_before: usize) {
    let landing = b.get(&format!("/v/{token}"));
    assert_eq!(landing.status, 200, "{}", landing.body);
    let pressed = b.post(&format!("/v/{token}"), &[]);
    assert_eq!(pressed.status, 303, "{}", pressed.body);
    assert_eq!(pressed.location(), format!("/v/{token}/code"));
    let code_mail = wait_for_code(mail_dir, to, codes_before + 1);
    let code = code_in(&code_mail);
    let entered = b.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_eq!(entered.status, 303, "{}", entered.body);
    assert_eq!(entered.location(), format!("/v/{token}/password"));
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", PASSWORD), ("password2", PASSWORD)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    assert_eq!(set.location(), format!("/v/{token}/done"));
    // The "your password was set" notice (either language) arrives last.
    let notice = || {
        mails(mail_dir).iter().any(|m| {
            m.to == to
                && (m.subject.contains("パスワードを設定")
                    || m.subject.contains("password was set"))
        })
    };
    assert!(wait_for(30, notice), "no password notice to {to}");
}

/// Waits for the `n`th code mail to `to` (either language).
pub fn wait_for_code(dir: &Path, to: &str, n: usize) -> Mail {
    let codes = || -> Vec<Mail> {
        mails(dir)
            .into_iter()
            .filter(|m| {
                m.to == to && (m.subject.contains("確認コード") || m.subject.contains("code"))
            })
            .collect()
    };
    assert!(
        wait_for(30, || codes().len() >= n),
        "no code mail #{n} to {to}"
    );
    codes().last().cloned().expect("n >= 1")
}

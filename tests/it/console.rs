//! The operators' console over HTTP: accounts from the command line, login, roles,
//! CSRF, escaping of strangers' text, the report against `mailgate bounces`, metrics;
//! and the whole thing in headless Chromium.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::cdp::{Browser, output_dir};
use crate::support::{
    Instance, Server, Sink, binary, dsn, free_port, relay_config, smtp_send, wait_for,
};

pub(crate) const SUPPORT_PASSWORD: &str = "support staff password 1";
pub(crate) const ADMIN_PASSWORD: &str = "admin staff password 22";

/// `mailgate operator add NAME --role ROLE` with the password on standard input.
fn add_operator(inst: &Instance, name: &str, role: &str, password: &str) -> std::process::Output {
    operator_with_password(inst, &["operator", "add", name, "--role", role], password)
}

/// A mailgate command that reads a password from standard input; panics unless it
/// succeeds.
fn operator_with_password(inst: &Instance, args: &[&str], password: &str) -> std::process::Output {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&inst.config_path)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailgate operator add");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A page as the server answered it.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: String,
    pub(crate) body: String,
}

/// A cookie-keeping HTTP client that does not follow redirects; it asks for
/// `accept_language` (English unless a test says otherwise).
pub(crate) struct Agent {
    pub(crate) base: String,
    pub(crate) client: Client,
    cookies: HashMap<String, String>,
    accept_language: &'static str,
}

impl Agent {
    pub(crate) fn new(server: &Server) -> Agent {
        Agent::from_address(server, "127.0.0.1")
    }

    /// An agent whose connections come from `source` (any loopback address works).
    fn from_address(server: &Server, source: &str) -> Agent {
        Agent {
            base: server.url(""),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(source.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            accept_language: "en-US,en;q=0.9",
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, r: reqwest::blocking::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: r.text().unwrap(),
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .send()
            .unwrap();
        self.take(r)
    }

    pub(crate) fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .form(form)
            .send()
            .unwrap();
        self.take(r)
    }

    /// Logs in through the form; panics unless it lands on `home`.
    fn login(server: &Server, name: &str, password: &str, home: &str) -> Agent {
        Agent::login_in(server, "en-US,en;q=0.9", name, password, home)
    }

    /// Logs in from a browser that asks for `accept_language`.
    pub(crate) fn login_in(
        server: &Server,
        accept_language: &'static str,
        name: &str,
        password: &str,
        home: &str,
    ) -> Agent {
        let mut a = Agent::new(server);
        a.accept_language = accept_language;
        let form = a.get("/login");
        assert_eq!(form.status, 200);
        let token = csrf(&form.body);
        let done = a.post(
            "/login",
            &[("csrf", &token), ("name", name), ("password", password)],
        );
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location, home);
        a
    }
}

/// The CSRF token in a page's first form.
pub(crate) fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A console with one support and one admin operator, added with the server down.
pub(crate) fn console(extra: &str) -> (Instance, Server) {
    let inst = Instance::new(extra);
    add_operator(&inst, "aiko", "support", SUPPORT_PASSWORD);
    add_operator(&inst, "ben", "admin", ADMIN_PASSWORD);
    let server = inst.serve();
    (inst, server)
}

/// The address of the three-message history, and how it is searched for (the domain
/// part in another case).
const TARO: &str = "taro@example.jp";
const TARO_SEARCH: &str = "taro@EXAMPLE.JP";

/// A running console whose store holds, for [`TARO`], a delivered, a bounced
/// (userunknown) and a deferred message, newest last. Returns the sink so it lives on.
fn three_messages() -> (Instance, Server, Sink) {
    let port = free_port();
    let sink = Sink::start_on(port, &[]);
    let inbound = free_port();
    let config = relay_config(port, "\"10m\"").replace(
        "[inbound]\nlisten = \"\"\n",
        &format!("[inbound]\nlisten = \"127.0.0.1:{inbound}\"\n"),
    );
    let (inst, server) = console(&config);
    let first = inst.send_notice(TARO);
    inst.wait_delivered(&first);
    let second = inst.send_notice(TARO);
    inst.wait_delivered(&second);
    let (verp, header) = inst.return_path_of(&sink, &second);
    sink.stop();
    let refusing = Sink::start_on(port, &["-r", "RCPT", "-b", "451 4.3.0 Try again later"]);
    let third = inst.send_notice(TARO);
    let status = |id: &str| {
        inst.log_json(id)["messages"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        wait_for(60, || status(&third) == "deferred"),
        "{}",
        status(&third)
    );
    let report = dsn(
        &verp,
        TARO,
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <taro@example.jp>: Recipient address rejected: User unknown in virtual mailbox table",
    );
    let replies = smtp_send(inbound, "", &[&verp], &report);
    assert!(
        replies.iter().any(|r| r.starts_with("250 2.0.0")),
        "{replies:?}"
    );
    assert!(wait_for(10, || status(&second) == "bounced"));
    (inst, server, refusing)
}

const DELIVERED: &str = "Accepted by ";
const BOUNCED: &str =
    "Bounced: the receiving server says this mailbox does not exist. Check the address.";
const DEFERRED: &str = "Delayed: at ";

#[test]
fn a_support_operator_gets_403_on_admin_pages_and_logged_out_requests_go_to_login() {
    let (_inst, server) = console("");
    let mut nobody = Agent::new(&server);
    for path in [
        "/support",
        "/admin",
        "/admin/queue",
        "/admin/suppression",
        "/admin/bounces.csv",
    ] {
        let p = nobody.get(path);
        assert_eq!((p.status, p.location.as_str()), (303, "/login"), "{path}");
    }
    let mut support = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    assert_eq!(support.get("/support").status, 200);
    for path in [
        "/admin",
        "/admin/queue",
        "/admin/suppression",
        "/admin/bounces.csv",
    ] {
        let p = support.get(path);
        assert_eq!(p.status, 403, "{path}");
        assert!(p.body.contains("for admin operators"), "{}", p.body);
    }
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    for path in ["/support", "/admin", "/admin/queue", "/admin/suppression"] {
        assert_eq!(admin.get(path).status, 200, "{path}");
    }
    // Logging out ends the session on the server, not only in the browser.
    let stolen = admin.cookies.clone();
    let page = admin.get("/admin");
    let out = admin.post("/logout", &[("csrf", &csrf(&page.body))]);
    assert_eq!((out.status, out.location.as_str()), (303, "/login"));
    let mut replay = Agent::new(&server);
    replay.cookies = stolen;
    assert_eq!(replay.get("/admin").status, 303);
}

#[test]
fn a_forged_csrf_token_is_refused() {
    let (inst, server) = console("");
    assert!(
        inst.run(&["suppression", "add", "x@example.jp"])
            .status
            .success()
    );
    // The login form's token must match its cookie.
    let mut a = Agent::new(&server);
    a.get("/login");
    let p = a.post(
        "/login",
        &[
            ("csrf", "forged"),
            ("name", "ben"),
            ("password", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(p.status, 403);
    assert!(!a.cookies.contains_key("mailgate_session"));
    // A logged-in form with another token changes nothing.
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let forged = "0".repeat(64);
    for (path, form) in [
        (
            "/admin/suppression/remove",
            vec![
                ("csrf", forged.as_str()),
                ("address", "x@example.jp"),
                ("reason", "r"),
            ],
        ),
        (
            "/admin/suppression/remove",
            vec![("address", "x@example.jp"), ("reason", "r")],
        ),
        (
            "/support/resend",
            vec![("csrf", forged.as_str()), ("address", "x@example.jp")],
        ),
        ("/logout", vec![("csrf", forged.as_str())]),
    ] {
        let p = admin.post(path, &form);
        assert_eq!(p.status, 403, "{path}: {}", p.body);
    }
    let list = admin.get("/admin/suppression");
    assert!(list.body.contains("x@example.jp"));
    // The real token works, and the removal is audited with its reason.
    let token = csrf(&list.body);
    let done = admin.post(
        "/admin/suppression/remove",
        &[
            ("csrf", &token),
            ("address", "x@example.jp"),
            ("reason", "fixed mailbox"),
        ],
    );
    assert_eq!(done.status, 200);
    assert!(done.body.contains("removed from the suppression list"));
    let report = admin.get("/admin");
    assert!(
        report.body.contains("suppression remove"),
        "{}",
        report.body
    );
    assert!(report.body.contains("fixed mailbox"));
}

#[test]
fn bounce_texts_with_script_and_addresses_with_quotes_render_as_text() {
    let (inst, server) = console("");
    let odd = "o'brien\"x@example.jp";
    let id = inst.send_notice(odd);
    let header = inst.log_json(&id)["messages"][0]["message_id_header"]
        .as_str()
        .unwrap()
        .to_string();
    let file = inst.path().join("script.eml");
    std::fs::write(
        &file,
        dsn(
            "x@example.net",
            odd,
            &header,
            "failed",
            "5.1.1",
            "550 5.1.1 <script>alert(1)</script> no such user",
        ),
    )
    .unwrap();
    let out = inst.run(&["bounce", "ingest", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(inst.run(&["suppression", "add", odd]).status.success());

    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let support_page = format!("/support?q={}&lang=en", url_encode(odd));
    for path in ["/admin", support_page.as_str(), "/admin/suppression"] {
        let p = admin.get(path);
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains("<script"), "{path}: {}", p.body);
        assert!(!p.body.contains(odd), "{path}");
        if path != "/admin/suppression" {
            assert!(
                p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{path}: {}",
                p.body
            );
        }
        if path != "/admin" {
            // The bounce parser reads only part of a quoted local part, so the
            // report's address column is not checked for it.
            assert!(p.body.contains("o&#x27;brien&quot;x@example.jp"), "{path}");
        }
    }
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cells of the page's bounce list.
pub(crate) fn page_rows(body: &str) -> Vec<Vec<String>> {
    body.split("<tr class=\"bounce\">")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap()];
            row.split("<td class=\"text\"")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    unescape(&c[..c.find("</td>").unwrap()])
                })
                .collect()
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x3D;", "=")
        .replace("&#x60;", "`")
        .replace("&amp;", "&")
}

#[test]
fn the_page_csv_and_json_of_mailgate_bounces_hold_the_same_rows() {
    let (inst, server, _sink) = three_messages();
    // One more, unauthenticated, from elsewhere, with a comma and quotes in its text.
    let file = inst.path().join("other.eml");
    std::fs::write(
        &file,
        dsn(
            "x@example.net",
            "hana@Example.ORG",
            "unknown@mail.example.jp",
            "failed",
            "5.7.1",
            "550 5.7.1 \"Message rejected\", see https://example.org/policy",
        ),
    )
    .unwrap();
    assert!(
        inst.run(&["bounce", "ingest", file.to_str().unwrap()])
            .status
            .success()
    );

    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let page = admin.get("/admin?since=7d");
    let rows = page_rows(&page.body);
    let csv_page = admin.get("/admin/bounces.csv?since=7d");
    assert_eq!(csv_page.status, 200);
    let cli_csv = inst.run(&["bounces", "--since", "7d", "--format", "csv"]);
    assert!(cli_csv.status.success());
    assert_eq!(csv_page.body, String::from_utf8(cli_csv.stdout).unwrap());
    let json: Value = serde_json::from_slice(
        &inst
            .run(&["bounces", "--since", "7d", "--format", "json"])
            .stdout,
    )
    .unwrap();
    let json = json.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", page.body);
    assert_eq!(json.len(), rows.len());
    assert_eq!(csv_page.body.lines().count(), rows.len() + 1);
    for (row, record) in rows.iter().zip(json) {
        assert_eq!(row[1], record["address"].as_str().unwrap_or(""));
        assert_eq!(row[3], record["reason"].as_str().unwrap_or(""));
        assert_eq!(row[9], record["diagnostic"].as_str().unwrap_or(""));
    }
    // The report counts, and the sender alert quotes the policy rejection.
    assert!(page.body.contains("userunknown"));
    assert!(page.body.contains("id=\"sender-alert\""), "{}", page.body);
    assert!(page.body.contains("&quot;Message rejected&quot;, see"));
}

#[test]
fn support_searches_and_resends_are_audited_and_a_resend_starts_a_new_flow() {
    let (inst, server, _sink) = three_messages();
    let mut support = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    let page = support.get(&format!("/support?q={}&lang=en", url_encode(TARO_SEARCH)));
    assert_eq!(page.status, 200);
    let lead = &page.body[page.body.find("id=\"answer\"").unwrap()..];
    assert!(
        lead[..lead.find("</p>").unwrap()].contains("Delayed: at "),
        "{lead}"
    );
    for s in [DELIVERED, BOUNCED, DEFERRED] {
        assert!(page.body.contains(s), "{s}");
    }
    assert_eq!(page.body.matches("<table class=\"timeline\">").count(), 3);
    let ja = support.get(&format!("/support?q={}&lang=ja", url_encode(TARO)));
    assert!(ja.body.contains("遅延中"), "{}", ja.body);
    assert!(ja.body.contains("メールボックスは存在しない"));
    // Notices alone make no account or flow: no new link is offered.
    assert!(!page.body.contains("id=\"resend-button\""));
    assert!(page.body.contains("no account and no earlier link"));
    // Off the suppression list (the bounce put it there) and invited, the address
    // may get a new link from support.
    let out = inst.run(&["suppression", "remove", TARO]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = inst.run(&["invite", TARO]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let invited = support.get(&format!("/support?q={}&lang=en", url_encode(TARO)));
    assert!(
        invited.body.contains("id=\"resend-button\""),
        "{}",
        invited.body
    );
    let resent = support.post(
        "/support/resend",
        &[
            ("csrf", &csrf(&page.body)),
            ("address", TARO),
            ("lang", "en"),
        ],
    );
    assert_eq!(resent.status, 200);
    assert!(
        resent.body.contains("A new link was queued for"),
        "{}",
        resent.body
    );
    // The new flow's invitation is in the delivery log now, beside the CLI's.
    let after = support.get(&format!("/support?q={}&lang=en", url_encode(TARO)));
    assert_eq!(after.body.matches("<table class=\"timeline\">").count(), 5);
    // Nothing secret reaches the page: message bodies are never read here.
    assert!(!page.body.contains("We open at nine"));
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let report = admin.get("/admin");
    let audit = &report.body[report.body.find("id=\"audit\"").unwrap()..];
    assert!(
        audit.contains("operator aiko</td><td data-label=\"action\">search</td><td class=\"text\" data-label=\"target\">taro@EXAMPLE.JP"),
        "{audit}"
    );
    assert!(audit.contains(">resend</td>"), "{audit}");
}

#[test]
fn operator_add_works_with_the_server_up_and_repeated_failures_lock_the_name() {
    let (inst, server) = console("");
    // With the server running, the command goes through its socket.
    let out = add_operator(&inst, "chie", "support", "a third operator password");
    assert!(String::from_utf8_lossy(&out.stdout).contains("operator chie added"));
    Agent::login(&server, "chie", "a third operator password", "/support");
    // The password is never an argument.
    let refused = inst.run(&[
        "operator",
        "add",
        "dan",
        "--role",
        "admin",
        "--password",
        "x",
    ]);
    assert!(!refused.status.success());
    let short = Command::new(binary())
        .arg("--config")
        .arg(&inst.config_path)
        .args(["operator", "add", "dan", "--role", "admin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!short.status.success());

    let mut a = Agent::new(&server);
    let token = csrf(&a.get("/login").body);
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let p = a.post(
            "/login",
            &[
                ("csrf", &token),
                ("name", "chie"),
                ("password", "wrong password here"),
            ],
        );
        assert_eq!(p.status, 200);
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "each failure waits"
    );
    let p = a.post(
        "/login",
        &[
            ("csrf", &token),
            ("name", "chie"),
            ("password", "a third operator password"),
        ],
    );
    assert_eq!(p.status, 200, "locked: the right password is refused too");
    assert!(p.body.contains("Too many failed logins"), "{}", p.body);
    // A new password from the command line lifts the lock.
    add_operator(&inst, "chie", "support", "a fourth operator password");
    Agent::login(&server, "chie", "a fourth operator password", "/support");
}

#[test]
fn a_resend_to_an_unknown_or_a_suppressed_address_says_it_was_not_sent_and_why() {
    let (inst, server) = console("");
    let mut support = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    let timelines = |a: &mut Agent, q: &str| {
        a.get(&format!("/support?q={}&lang=en", url_encode(q)))
            .body
            .matches("<table class=\"timeline\">")
            .count()
    };
    // Unknown: no button, the reason on the page; a forced POST sends nothing.
    let stranger = "stranger@example.jp";
    let page = support.get(&format!("/support?q={stranger}&lang=en"));
    assert!(!page.body.contains("id=\"resend-button\""), "{}", page.body);
    assert!(
        page.body.contains("no account and no earlier link"),
        "{}",
        page.body
    );
    let forced = support.post(
        "/support/resend",
        &[
            ("csrf", &csrf(&page.body)),
            ("address", stranger),
            ("lang", "en"),
        ],
    );
    assert!(
        forced
            .body
            .contains("No new link was sent: mailgate has no account"),
        "{}",
        forced.body
    );
    assert!(!forced.body.contains("A new link was"), "{}", forced.body);
    assert_eq!(timelines(&mut support, stranger), 0);
    // Suppressed: invited once, then put on the list.
    let hanako = "hanako@example.jp";
    for args in [
        &["invite", hanako][..],
        &["suppression", "add", hanako, "--note", "mailbox gone"][..],
    ] {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(timelines(&mut support, hanako), 1);
    let page = support.get(&format!("/support?q={hanako}&lang=en"));
    assert!(!page.body.contains("id=\"resend-button\""), "{}", page.body);
    let forced = support.post(
        "/support/resend",
        &[
            ("csrf", &csrf(&page.body)),
            ("address", hanako),
            ("lang", "en"),
        ],
    );
    assert!(
        forced
            .body
            .contains("No new link was sent: the address is on the suppression list"),
        "{}",
        forced.body
    );
    assert!(!forced.body.contains("A new link was"), "{}", forced.body);
    assert_eq!(timelines(&mut support, hanako), 1, "a message was queued");
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let report = admin.get("/admin");
    let audit = &report.body[report.body.find("id=\"audit\"").unwrap()..];
    assert!(
        audit.contains("stranger@example.jp (not sent: mailgate has no account"),
        "{audit}"
    );
    assert!(
        audit.contains("hanako@example.jp (not sent: the address is on the suppression list"),
        "{audit}"
    );
}

#[test]
fn a_full_width_search_finds_the_address_and_another_case_is_offered_as_did_you_mean() {
    let (inst, server) = console("");
    let out = inst.run(&["invite", "hanako@example.jp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut support = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    // Full-width letters and signs, with an ideographic space around them.
    let page = support.get(&format!(
        "/support?q={}&lang=en",
        url_encode("\u{3000}ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ ")
    ));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<h2>hanako@example.jp</h2>"),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("<table class=\"timeline\">").count(), 1);
    // Another case of the local part: nothing exact, the stored address offered.
    let other = support.get(&format!(
        "/support?q={}&lang=en",
        url_encode("HANAKO@example.jp")
    ));
    assert_eq!(other.body.matches("<table class=\"timeline\">").count(), 0);
    let offer = &other.body[other
        .body
        .find("id=\"did-you-mean\"")
        .expect("did you mean")..];
    assert!(offer.contains(">hanako@example.jp</a>"), "{offer}");
    // A message id with or without <> finds the message.
    let log = inst.log_json("hanako@example.jp");
    let header = log["messages"][0]["message_id_header"]
        .as_str()
        .unwrap()
        .to_string();
    for q in [format!("<{header}>"), header.clone()] {
        let p = support.get(&format!("/support?q={}&lang=en", url_encode(&q)));
        assert_eq!(
            p.body.matches("<table class=\"timeline\">").count(),
            1,
            "{q}"
        );
    }
}

/// True when the agent's next request is sent to the login page.
fn logged_out(agent: &mut Agent) -> bool {
    let p = agent.get("/support");
    (p.status, p.location.as_str()) == (303, "/login")
}

#[test]
fn operator_disable_remove_and_passwd_end_the_sessions_of_a_logged_in_operator() {
    let (inst, server) = console("");
    let password = "a shared operator password";
    for name in ["chie", "dan", "emi"] {
        add_operator(&inst, name, "support", password);
    }
    let mut chie = Agent::login(&server, "chie", password, "/support");
    let mut dan = Agent::login(&server, "dan", password, "/support");
    let mut emi = Agent::login(&server, "emi", password, "/support");
    let mut emi_too = Agent::login(&server, "emi", password, "/support");
    // The commands run through the server's socket; each ends the sessions at once.
    let ok = |args: &[&str]| {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ok(&["operator", "disable", "chie"]).contains("disabled"));
    assert!(
        logged_out(&mut chie),
        "a disabled operator's session still works"
    );
    assert!(ok(&["operator", "remove", "dan"]).contains("removed"));
    assert!(
        logged_out(&mut dan),
        "a removed operator's session still works"
    );
    operator_with_password(
        &inst,
        &["operator", "passwd", "emi"],
        "a brand new password",
    );
    assert!(
        logged_out(&mut emi),
        "the old password's session still works"
    );
    assert!(logged_out(&mut emi_too));
    // The new password works; the old does not; a disabled operator cannot log in.
    Agent::login(&server, "emi", "a brand new password", "/support");
    let mut again = Agent::new(&server);
    let token = csrf(&again.get("/login").body);
    let p = again.post(
        "/login",
        &[("csrf", &token), ("name", "chie"), ("password", password)],
    );
    assert_eq!(p.status, 200, "a disabled operator logged in");
    ok(&["operator", "enable", "chie"]);
    Agent::login(&server, "chie", password, "/support");
    let list = ok(&["operator", "list"]);
    assert!(
        list.contains("chie") && list.contains("emi") && !list.contains("dan"),
        "{list}"
    );
    assert!(!list.contains("argon2"), "{list}");
    // An unknown name is an error that names it.
    let out = inst.run(&["operator", "disable", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nobody\""));

    // An admin in the console: disabling aiko ends her session; audited.
    let mut aiko = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let page = admin.get("/admin/operators");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("aiko"), "{}", page.body);
    let forged = admin.post(
        "/admin/operators/change",
        &[("csrf", "forged"), ("name", "aiko"), ("action", "disable")],
    );
    assert_eq!(forged.status, 403);
    assert!(!logged_out(&mut aiko), "a forged form changed something");
    let done = admin.post(
        "/admin/operators/change",
        &[
            ("csrf", &csrf(&page.body)),
            ("name", "aiko"),
            ("action", "disable"),
        ],
    );
    assert_eq!(done.status, 200);
    assert!(
        done.body.contains("operator aiko disabled"),
        "{}",
        done.body
    );
    assert!(logged_out(&mut aiko));
    let report = admin.get("/admin");
    let audit = &report.body[report.body.find("id=\"audit\"").unwrap()..];
    assert!(audit.contains(">operator disable</td>"), "{audit}");
    assert!(audit.contains(">operator passwd</td>"), "{audit}");
    assert!(audit.contains(">operator remove</td>"), "{audit}");

    // Log out everywhere: every browser of chie goes to the login page (the one that
    // logged in after `enable` above too).
    let mut chie = Agent::login(&server, "chie", password, "/support");
    let mut chie_too = Agent::login(&server, "chie", password, "/support");
    let own = chie.get("/account");
    assert_eq!(
        own.body.matches("<td data-label=\"session\"").count(),
        3,
        "{}",
        own.body
    );
    assert!(own.body.contains("this browser"));
    let out = chie.post("/account/logout-everywhere", &[("csrf", &csrf(&own.body))]);
    assert_eq!((out.status, out.location.as_str()), (303, "/login"));
    assert!(logged_out(&mut chie_too));
}

#[test]
fn a_revoked_api_key_gets_401_on_the_next_call() {
    let (inst, server) = console("");
    let key = inst.api_key();
    let client = Client::new();
    let call = || {
        client
            .get(server.url("/api/v1/bounces?since=7d"))
            .bearer_auth(&key)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(call(), 200);
    let out = inst.run(&["apikey", "revoke", "tests"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(call(), 401);
    let list = inst.run(&["apikey", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("tests"), "{text}");
    assert!(!text.contains(&key[3..]), "the key itself is listed");
    // Revoking again names the missing key.
    let again = inst.run(&["apikey", "revoke", "tests"]);
    assert!(!again.status.success());
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    assert!(admin.get("/admin").body.contains(">apikey revoke</td>"));
}

/// What a burst of logins answered: successes, "wrong" (a password was checked and
/// refused) and "locked" (refused before any check).
#[derive(Debug, Default)]
struct Burst {
    success: usize,
    wrong: usize,
    locked: usize,
}

/// Sends every password of `passwords` for `name` at once from `source`.
fn login_burst(server: &Server, source: &str, name: &str, passwords: &[String]) -> Burst {
    let mut a = Agent::from_address(server, source);
    let token = csrf(&a.get("/login").body);
    let a = &a;
    let pages: Vec<Page> = std::thread::scope(|s| {
        let handles: Vec<_> = passwords
            .iter()
            .map(|p| {
                let token = &token;
                s.spawn(move || {
                    let r = a
                        .client
                        .post(format!("{}/login", a.base))
                        .header("cookie", a.cookie_header())
                        .header("accept-language", a.accept_language)
                        .form(&[("csrf", token.as_str()), ("name", name), ("password", p)])
                        .send()
                        .unwrap();
                    Page {
                        status: r.status().as_u16(),
                        location: String::new(),
                        body: r.text().unwrap(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut burst = Burst::default();
    for p in pages {
        if p.status == 303 {
            burst.success += 1;
        } else if p.body.contains("Too many failed logins") {
            burst.locked += 1;
        } else if p.body.contains("The name or the password is wrong.") {
            burst.wrong += 1;
        } else {
            panic!("unexpected answer {}: {}", p.status, p.body);
        }
    }
    burst
}

#[test]
fn parallel_login_guesses_check_at_most_five_passwords_and_lock_only_the_guessing_address() {
    let (_inst, server) = console("");
    let guesses: Vec<String> = (0..60).map(|i| format!("wrong guess number {i}")).collect();
    let burst = login_burst(&server, "127.0.0.2", "ben", &guesses);
    println!("60 parallel wrong passwords from 127.0.0.2: {burst:?}");
    assert_eq!(burst.success, 0);
    assert!(
        burst.wrong <= 5,
        "{} passwords were checked: {burst:?}",
        burst.wrong
    );
    assert_eq!(burst.wrong + burst.locked, 60);
    // The guessing address is locked out, even with the right password …
    let right = login_burst(&server, "127.0.0.2", "ben", &[ADMIN_PASSWORD.to_string()]);
    assert_eq!(right.locked, 1, "{right:?}");
    // … while the admin's own address is not.
    Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    // The right password hidden among 40 wrong ones from a fresh address: still at most
    // five wrong passwords checked, however the requests interleave.
    let mut mixed: Vec<String> = (0..40).map(|i| format!("another guess {i}")).collect();
    mixed.insert(20, ADMIN_PASSWORD.to_string());
    let burst = login_burst(&server, "127.0.0.3", "ben", &mixed);
    println!("40 wrong and the right password from 127.0.0.3: {burst:?}");
    assert!(burst.wrong <= 5 && burst.success <= 1, "{burst:?}");
    assert_eq!(burst.wrong + burst.success + burst.locked, 41);
}

#[test]
fn session_cookies_are_httponly_strict_and_secure_behind_https() {
    let (_inst, server) = console("");
    let a = Agent::new(&server);
    let form = a.client.get(server.url("/login")).send().unwrap();
    let set = form.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    assert_eq!(form.headers()["cache-control"], "no-store");
    let https = Instance::new("");
    std::fs::write(
        &https.config_path,
        std::fs::read_to_string(&https.config_path)
            .unwrap()
            .replace("http://localhost:9", "https://mail.example.jp"),
    )
    .unwrap();
    let s2 = https.serve();
    let r = Agent::new(&s2).client.get(s2.url("/login")).send().unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    drop(a);
}

#[test]
fn metrics_report_queue_depth_deliveries_bounces_and_latency() {
    let (_inst, server, _sink) = three_messages();
    let text = reqwest::blocking::get(server.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    for line in [
        "mailgate_queue_depth{state=\"deferred\"} 1",
        // Two were delivered, and one of them bounced later: a counter never falls,
        // so "delivered" stays 2 (it was recounted from the records as 1 before).
        "mailgate_deliveries_total{outcome=\"delivered\"} 2",
        "mailgate_deliveries_total{outcome=\"bounced\"} 1",
        "mailgate_bounces_total{reason=\"userunknown\"} 1",
        "# TYPE mailgate_http_request_duration_seconds histogram",
        "mailgate_http_request_duration_seconds_bucket{area=\"ops\",le=\"+Inf\"}",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn support_and_admin_work_in_a_real_browser() {
    let (inst, server, _sink) = three_messages();
    let mut b = Browser::start();
    // Logged out: the console sends the browser to the login page.
    b.goto(&server.url("/support"));
    assert_eq!(b.path(), "/login");
    b.fill("name", "aiko");
    b.fill("password", SUPPORT_PASSWORD);
    b.navigate_by("document.getElementById('login').submit()");
    assert_eq!(b.path(), "/support");
    b.fill("q", TARO_SEARCH);
    b.eval("document.querySelector('input[name=lang]').value = 'en'; true");
    b.navigate_by("document.getElementById('search').submit()");
    let text = b.text();
    let lead = b.eval("document.getElementById('answer').innerText");
    assert!(lead.as_str().unwrap().starts_with(DEFERRED), "{lead}");
    for s in [DELIVERED, BOUNCED, DEFERRED] {
        assert!(text.contains(s), "{s} not in:\n{text}");
    }
    assert_eq!(
        b.eval("document.querySelectorAll('table.timeline').length"),
        3
    );
    assert!(text.contains("451 4.3.0 Try again later"), "{text}");
    assert!(
        text.contains("User unknown in virtual mailbox table"),
        "{text}"
    );
    b.screenshot("support-search.png");
    // Taro was only sent notices and is suppressed: no button, the reason instead.
    assert_eq!(
        b.eval("document.getElementById('resend-button') === null"),
        true
    );
    let why = b.eval("document.getElementById('no-resend').innerText");
    assert!(
        why.as_str().unwrap().contains("No new link can be sent"),
        "{why}"
    );
    b.screenshot("support-resend.png");
    b.navigate_by("document.querySelector('form[action=\"/logout\"] button').click()");
    assert_eq!(b.path(), "/login");

    b.fill("name", "ben");
    b.fill("password", ADMIN_PASSWORD);
    b.navigate_by("document.getElementById('login').submit()");
    assert_eq!(b.path(), "/admin");
    let report = b.text();
    assert!(report.contains("userunknown"), "{report}");
    assert!(report.contains("example.jp"), "{report}");
    assert_eq!(b.eval("document.getElementById('total').innerText"), "1");
    b.screenshot("admin-report.png");
    let downloads = tempfile::tempdir().unwrap();
    b.download_to(downloads.path());
    b.eval("document.getElementById('csv').click(); true");
    let file = downloads.path().join("mailgate-bounces-7d.csv");
    assert!(wait_for(20, || file.exists()), "the CSV was not downloaded");
    let cli = inst.run(&["bounces", "--since", "7d", "--format", "csv"]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        String::from_utf8(cli.stdout).unwrap()
    );
    std::fs::copy(&file, output_dir().join("mailgate-bounces-7d.csv")).unwrap();
    b.goto(&server.url("/admin/queue"));
    assert!(b.text().contains("Try again later"));
    b.screenshot("admin-queue.png");
}

#[test]
fn the_admin_sees_a_disabled_webhook_endpoint_replays_an_event_and_enables_it() {
    let r = crate::webhooks::Receiver::start("410");
    let (inst, server) = console(&r.config(""));
    inst.send_notice("hooked@example.jp");
    let mut admin = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    assert!(
        wait_for(30, || admin
            .get("/admin/webhooks")
            .body
            .contains("Disabled")),
        "{}",
        admin.get("/admin/webhooks").body
    );
    // In Japanese, mailgate's own words about the deliveries and the endpoint read in
    // Japanese; the endpoint's answer (410 Gone) stays as it was.
    let ja = visible_text(&admin.get("/admin/webhooks?lang=ja").body);
    assert!(ja.contains("410 Gone を返しました"), "{ja}");
    assert!(ja.contains("失敗"), "{ja}");
    for english in ["answered", "the endpoint is disabled", "failed"] {
        assert!(!ja.contains(english), "{english:?} in {ja}");
    }
    let page = admin.get("/admin/webhooks?lang=en");
    assert!(page.body.contains("410"), "{}", page.body);
    let at = page.body.find("name=\"event_id\" value=\"").unwrap();
    let rest = &page.body[at + "name=\"event_id\" value=\"".len()..];
    let event_id = rest[..rest.find('"').unwrap()].to_string();
    assert!(event_id.starts_with("evt_"), "{event_id}");
    let token = csrf(&page.body);
    let replayed = admin.post(
        "/admin/webhooks/replay",
        &[("csrf", &token), ("event_id", &event_id)],
    );
    assert!(
        replayed
            .body
            .contains(&format!("Event {event_id} queued again.")),
        "{}",
        replayed.body
    );
    let listed = || -> Value {
        serde_json::from_slice(&inst.run(&["webhooks", "list", "--json"]).stdout).unwrap()
    };
    let disabled_at = listed()[0]["disabled"]["at_ms"].as_u64().expect("disabled");
    let enabled = admin.post(
        "/admin/webhooks/enable",
        &[("csrf", &token), ("url", &r.url())],
    );
    assert!(enabled.body.contains("enabled"), "{}", enabled.body);
    // Enabled: the endpoint is tried again (this receiver answers 410 to everything, so
    // the replayed event may disable it anew, but not with the old time).
    let list = listed();
    assert!(
        list[0]["disabled"].is_null() || list[0]["disabled"]["at_ms"].as_u64() > Some(disabled_at),
        "{list:#}"
    );
    // A support operator may not.
    let mut support = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    assert_eq!(support.get("/admin/webhooks").status, 403);
}

/// The words a page shows a person: the text between tags, without the `<code>` of
/// commands (which stay as typed) and the attribute values.
pub(crate) fn visible_text(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        out.push(' ');
        let tail = &rest[at..];
        if tail.starts_with("<code>") {
            rest = &tail[tail.find("</code>").map(|e| e + 7).unwrap_or(tail.len())..];
        } else if tail.starts_with("<title>") {
            out.push_str(&tail[7..tail.find("</title>").unwrap()]);
            rest = &tail[tail.find("</title>").unwrap()..];
            rest = &rest[rest.find('>').unwrap() + 1..];
        } else {
            rest = &tail[tail.find('>').map(|e| e + 1).unwrap_or(tail.len())..];
        }
    }
    out.push_str(rest);
    unescape(&out)
}

/// Labels, buttons and headings of the English console.
const ENGLISH_LABELS: &[&str] = &[
    "Delivery log",
    "Bounce report",
    "Suppression list",
    "Operators",
    "Your sessions",
    "Log out",
    "Search",
    "Address or message id",
    "Send a new link",
    "Times are in",
    "Period",
    "Show",
    "Download CSV",
    "By reason",
    "By recipient domain",
    "By day",
    "Undeliverable flows",
    "Every bounce",
    "Recent operator actions",
    "Retry now",
    "Cancel",
    "Remove",
    "Enable",
    "Disable",
    "Set role",
    "Set password",
    "new password",
    "Log out everywhere",
    "Language",
    "Time zone",
    "Save",
    "this browser",
    "started",
    "ends",
    "bounces",
    "reason",
    "address",
    "domain",
    "requested",
    "expires",
    "status",
    "The queue is empty",
    "is empty",
    "Did you mean",
    "No new link",
];

/// True when `text` holds a time stamped with `zone` ("12:00:05 JST").
fn time_in(text: &str, zone: &str) -> bool {
    text.match_indices(&format!(" {zone}"))
        .any(|(at, _)| text[..at].ends_with(|c: char| c.is_ascii_digit()))
}

/// True for a kana or kanji.
fn is_japanese(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{9fff}' | '\u{ff01}'..='\u{ff60}')
}

/// The console's pages for an admin with one message and one suppressed address.
fn every_console_page(agent: &mut Agent) -> Vec<(String, String)> {
    [
        "/support",
        "/support?q=hanako%40example.jp",
        "/support?q=HANAKO%40example.jp",
        "/support?q=stranger%40example.jp",
        "/admin",
        "/admin/queue",
        "/admin/suppression",
        "/admin/webhooks",
        "/admin/operators",
        "/account",
    ]
    .iter()
    .map(|p| {
        let page = agent.get(p);
        assert_eq!(page.status, 200, "{p}: {}", page.body);
        (p.to_string(), page.body)
    })
    .collect()
}

#[test]
fn the_console_speaks_one_language_per_operator_and_the_switch_persists() {
    let (inst, server) = console("");
    for args in [
        // The mail is data: an English invitation, so neither page holds the
        // other language through it.
        &["invite", "hanako@example.jp", "--locale", "en"][..],
        &[
            "suppression",
            "add",
            "gone@example.jp",
            "--note",
            "mailbox gone",
        ][..],
    ] {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A browser that asks for Japanese gets the console in Japanese, times in JST.
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");
    for (path, body) in every_console_page(&mut ben) {
        assert!(body.contains("<html lang=\"ja\">"), "{path}");
        let text = visible_text(&body);
        for label in ENGLISH_LABELS {
            assert!(
                !text.contains(label),
                "{path}: English {label:?} in:\n{text}"
            );
        }
        assert!(!time_in(&text, "UTC"), "{path}: a UTC time in:\n{text}");
    }
    let support = ben.get("/support?q=hanako%40example.jp");
    assert!(
        visible_text(&support.body).contains(" JST"),
        "{}",
        support.body
    );

    // The switch in the header saves English for ben: every page, in any browser.
    let token = csrf(&support.body);
    let switched = ben.post(
        "/account/preferences",
        &[
            ("csrf", &token),
            ("lang", "en"),
            ("keep_zone", "1"),
            ("back", "/support?q=hanako%40example.jp&lang=ja"),
        ],
    );
    assert_eq!(switched.status, 303, "{}", switched.body);
    assert_eq!(switched.location, "/support?q=hanako%40example.jp");
    let mut again = Agent::login_in(&server, "ja", "ben", ADMIN_PASSWORD, "/admin");
    for (path, body) in every_console_page(&mut again) {
        assert!(body.contains("<html lang=\"en\">"), "{path}");
        // The switch names Japanese in Japanese; nothing else is.
        let text = visible_text(&body).replace("日本語", "");
        let found: String = text.chars().filter(|c| is_japanese(*c)).collect();
        assert!(found.is_empty(), "{path}: Japanese {found:?} in:\n{text}");
    }
    // English times are in the configured zone (UTC here); a saved zone wins.
    let admin = again.get("/admin/suppression");
    assert!(time_in(&visible_text(&admin.body), "UTC"), "{}", admin.body);
    let saved = again.post(
        "/account/preferences",
        &[
            ("csrf", &csrf(&admin.body)),
            ("lang", "en"),
            ("timezone", "Asia/Tokyo"),
            ("back", "/admin/suppression"),
        ],
    );
    assert_eq!(saved.status, 303);
    let admin = again.get("/admin/suppression");
    let text = visible_text(&admin.body);
    assert!(time_in(&text, "JST") && !time_in(&text, "UTC"), "{text}");
    // A zone that does not exist is refused with its name.
    let bad = again.post(
        "/account/preferences",
        &[
            ("csrf", &csrf(&admin.body)),
            ("lang", "en"),
            ("timezone", "Mars/Olympus"),
        ],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Mars/Olympus"), "{}", bad.body);

    // The CSV speaks the operator's language too: Japanese headers (with the mark
    // Excel needs) for a Japanese operator, the CLI's for an English one.
    let mut aiko = Agent::login_in(&server, "ja", "aiko", SUPPORT_PASSWORD, "/support");
    let login = Agent::new(&server).get("/login?lang=ja");
    assert!(
        visible_text(&login.body).contains("担当者名"),
        "{}",
        login.body
    );
    let refused = aiko.get("/admin");
    assert_eq!(refused.status, 403);
    assert!(
        visible_text(&refused.body).contains("管理者向け"),
        "{}",
        refused.body
    );
    let csv = ben.get("/admin/bounces.csv?since=7d");
    assert!(csv.body.starts_with("time,address,"), "{}", csv.body);
    let mut ja_admin = Agent::login_in(&server, "en", "ben", ADMIN_PASSWORD, "/admin");
    let page = ja_admin.get("/admin");
    ja_admin.post(
        "/account/preferences",
        &[
            ("csrf", &csrf(&page.body)),
            ("lang", "ja"),
            ("timezone", ""),
        ],
    );
    let csv = ja_admin.get("/admin/bounces.csv?since=7d");
    assert!(
        csv.body.starts_with("\u{feff}日時,アドレス,"),
        "{}",
        csv.body
    );
}

/// The `href` of the first link whose text is `text`, unescaped.
fn href_of(body: &str, text: &str) -> String {
    let end = body
        .find(&format!(">{text}</a>"))
        .unwrap_or_else(|| panic!("no link {text:?} in {body}"));
    let start = body[..end].rfind("href=\"").unwrap() + "href=\"".len();
    let len = body[start..].find('"').unwrap();
    unescape(&body[start..start + len])
}

#[test]
fn support_links_carry_an_address_with_a_plus_to_the_support_page_intact() {
    let (inst, server) = console("");
    let plus = "taro+desk@example.jp";
    for args in [
        &["invite", plus][..],
        &[
            "suppression",
            "add",
            "hana+old@example.jp",
            "--note",
            "gone",
        ][..],
    ] {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ben = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    // "Did you mean" for another case of the address: its link finds the address.
    let other = ben.get("/support?q=TARO%2Bdesk%40example.jp");
    let link = href_of(&other.body, plus);
    assert_eq!(link, "/support?q=taro%2Bdesk%40example.jp&lang=en");
    let found = ben.get(&link);
    assert!(
        found.body.contains(&format!("<h2>{plus}</h2>")),
        "{}",
        found.body
    );
    assert_eq!(found.body.matches("<table class=\"timeline\">").count(), 1);
    // The suppression list links each address to its delivery log, encoded too.
    let list = ben.get("/admin/suppression");
    let link = href_of(&list.body, "hana+old@example.jp");
    assert_eq!(link, "/support?q=hana%2Bold%40example.jp");
    let log = ben.get(&link);
    assert!(
        log.body.contains("<h2>hana+old@example.jp</h2>"),
        "{}",
        log.body
    );
    // The language switch comes back to the same search, the `+` intact.
    let back = ben.post(
        "/account/preferences",
        &[
            ("csrf", &csrf(&found.body)),
            ("lang", "ja"),
            ("keep_zone", "1"),
            ("back", "/support?q=taro%2Bdesk%40example.jp&lang=en"),
        ],
    );
    assert_eq!(back.location, "/support?q=taro%2Bdesk%40example.jp");
    let ja = ben.get(&back.location);
    assert!(ja.body.contains(&format!("<h2>{plus}</h2>")), "{}", ja.body);
    assert!(ja.body.contains("<html lang=\"ja\">"));
}

#[test]
fn an_admin_invites_an_unknown_address_only_through_a_confirmation_page() {
    let (inst, server) = console("");
    let stranger = "new+person@example.jp";
    let log = |a: &mut Agent| a.get(&format!("/support?q={}", url_encode(stranger)));
    // Support: no button, no invitation, the reason.
    let mut aiko = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    let page = log(&mut aiko);
    assert!(!page.body.contains("id=\"resend-button\""), "{}", page.body);
    assert!(!page.body.contains("id=\"invite-link\""), "{}", page.body);
    assert!(
        page.body.contains("ask an admin to invite it"),
        "{}",
        page.body
    );
    assert_eq!(aiko.get("/admin/invite?address=x%40example.jp").status, 403);
    // Admin: a link to the confirmation page, which sends nothing by itself.
    let mut ben = Agent::login(&server, "ben", ADMIN_PASSWORD, "/admin");
    let page = log(&mut ben);
    assert!(!page.body.contains("id=\"resend-button\""), "{}", page.body);
    let link = href_of(
        &page.body,
        &format!("Invite {stranger} (asks for confirmation first)"),
    );
    assert_eq!(link, "/admin/invite?address=new%2Bperson%40example.jp");
    let confirm = ben.get(&link);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("id=\"invite-button\""),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("mailgate has never sent anything"));
    assert_eq!(
        log(&mut ben)
            .body
            .matches("<table class=\"timeline\">")
            .count(),
        0
    );
    // A POST without the confirmation sends nothing either.
    let token = csrf(&confirm.body);
    let unconfirmed = ben.post("/admin/invite", &[("csrf", &token), ("address", stranger)]);
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert_eq!(
        log(&mut ben)
            .body
            .matches("<table class=\"timeline\">")
            .count(),
        0
    );
    // Confirmed: one invitation, in the log and the audit log.
    let sent = ben.post(
        "/admin/invite",
        &[("csrf", &token), ("address", stranger), ("confirm", "yes")],
    );
    assert_eq!(sent.status, 200);
    assert!(
        sent.body
            .contains("An invitation to new+person@example.jp was queued"),
        "{}",
        sent.body
    );
    assert_eq!(
        log(&mut ben)
            .body
            .matches("<table class=\"timeline\">")
            .count(),
        1
    );
    // Now known: support may send a new link; an invitation is refused with why.
    assert!(log(&mut aiko).body.contains("id=\"resend-button\""));
    let again = ben.get(&link);
    assert!(
        !again.body.contains("id=\"invite-button\""),
        "{}",
        again.body
    );
    assert!(
        again.body.contains("has an account or an earlier link"),
        "{}",
        again.body
    );
    let twice = ben.post(
        "/admin/invite",
        &[("csrf", &token), ("address", stranger), ("confirm", "yes")],
    );
    assert!(twice.body.contains("id=\"refusal\""), "{}", twice.body);
    assert_eq!(
        log(&mut ben)
            .body
            .matches("<table class=\"timeline\">")
            .count(),
        1
    );
    // A suppressed stranger gets no invitation; the page says so.
    let out = inst.run(&["suppression", "add", "gone@example.jp", "--note", "gone"]);
    assert!(out.status.success());
    let gone = ben.get("/admin/invite?address=gone%40example.jp");
    assert!(gone.body.contains("suppression list"), "{}", gone.body);
    assert!(!gone.body.contains("id=\"invite-button\""));
    let audit = ben.get("/admin").body;
    assert!(
        audit.contains("new+person@example.jp (sent, flow "),
        "{audit}"
    );
    assert!(audit.contains("new+person@example.jp (not sent: the address is known)"));
}

/// The text of the progress row `label` of the newest flow on a support page.
fn progress_row(body: &str, label: &str) -> String {
    let at = body
        .find(&format!("<strong>{label}</strong>"))
        .unwrap_or_else(|| panic!("no row {label:?} in {body}"));
    let row = &body[at..];
    visible_text(&row[..row.find("</li>").unwrap()])
}

#[test]
fn the_support_page_shows_how_far_each_flow_got() {
    use crate::journey::{code_in, token_in, wait_for_code, wait_for_mail};
    let (inst, server) = console("");
    let to = "hanako@example.jp";
    let out = inst.run(&["invite", to, "--locale", "ja"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outbox = inst.path().join("outbox");
    let token = token_in(&wait_for_mail(&outbox, to, "", 1));
    let mut aiko = Agent::login(&server, "aiko", SUPPORT_PASSWORD, "/support");
    let page = aiko.get("/support?q=hanako%40example.jp");
    assert!(progress_row(&page.body, "Link mail").contains("accepted by the receiving server"));
    assert!(progress_row(&page.body, "Link opened").ends_with(": not opened yet"));
    // A scanner's HEAD, then the person: the page, the button, two wrong codes.
    let link = server.url(&format!("/v/{token}"));
    assert_eq!(Client::new().head(&link).send().unwrap().status(), 200);
    let person = crate::journey::Browser::new(&server);
    assert_eq!(person.get(&format!("/v/{token}")).status, 200);
    assert_eq!(person.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(&outbox, to, 1));
    for wrong in ["000000", "111111", "222222"]
        .iter()
        .filter(|w| **w != code)
        .take(2)
    {
        let p = person.post(&format!("/v/{token}/code"), &[("code", wrong)]);
        assert_eq!(p.status, 422, "{}", p.body);
    }
    let page = aiko.get("/support?q=hanako%40example.jp");
    let opened = progress_row(&page.body, "Link opened");
    assert!(opened.contains("fetched 1× by a mail scanner"), "{opened}");
    assert!(opened.contains("shown in a browser 1×"), "{opened}");
    assert!(opened.contains("a person pressed the button"), "{opened}");
    assert!(
        wait_for(10, || progress_row(
            &aiko.get("/support?q=hanako%40example.jp").body,
            "Code mail"
        )
        .contains("accepted at")),
        "the code mail was not accepted"
    );
    let wrong = progress_row(&page.body, "Wrong codes");
    assert!(wrong.contains(": 2 (the last at "), "{wrong}");
    assert!(progress_row(&page.body, "Completed").contains("not yet"));
    // The right code and a password: completed. In Japanese, the same rows.
    let ok = person.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_eq!(ok.status, 303, "{}", ok.body);
    let pw = crate::journey::PASSWORD;
    let set = person.post(
        &format!("/v/{token}/password"),
        &[("password", pw), ("password2", pw)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    let page = aiko.get("/support?q=hanako%40example.jp");
    assert!(progress_row(&page.body, "Completed").contains("the password was set at"));
    let ja = aiko.get("/support?q=hanako%40example.jp&lang=ja");
    assert!(
        progress_row(&ja.body, "間違ったコード").contains("2回"),
        "{}",
        ja.body
    );
    assert!(progress_row(&ja.body, "完了").contains("パスワードが設定されました"));
}

#[test]
fn a_japanese_support_desk_works_in_a_real_browser() {
    let (inst, server) = console("");
    for args in [
        &["invite", "hanako@example.jp"][..],
        &["invite", "gone@example.jp"][..],
        &[
            "suppression",
            "add",
            "gone@example.jp",
            "--note",
            "mailbox gone",
        ][..],
    ] {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut b = Browser::start();
    b.goto(&server.url("/login?lang=ja"));
    assert!(b.text().contains("担当者名"), "{}", b.text());
    b.fill("name", "aiko");
    b.fill("password", SUPPORT_PASSWORD);
    b.navigate_by("document.getElementById('login').submit()");
    assert_eq!(b.path(), "/support");
    // The browser asks for English; the switch keeps Japanese for aiko.
    b.navigate_by("document.getElementById('lang-ja').click()");
    assert_eq!(b.eval("document.documentElement.lang"), "ja");
    // A full-width address, as a Japanese input method types it.
    b.fill("q", "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ");
    b.navigate_by("document.getElementById('search').submit()");
    let text = b.text();
    for label in [
        "配信ログ",
        "検索",
        "手続きの進み具合",
        "リンクのメール",
        "間違ったコード",
        "新しいリンクを再送",
    ] {
        assert!(text.contains(label), "{label} not in:\n{text}");
    }
    assert_eq!(
        b.eval("document.querySelector('main h2').innerText"),
        "hanako@example.jp"
    );
    b.screenshot("support-ja-search.png");
    // An address mailgate never saw: no button, the reason in Japanese.
    b.goto(&server.url("/support?q=stranger%40example.jp"));
    assert_eq!(
        b.eval("document.getElementById('resend-button') === null"),
        true
    );
    let why = b.eval("document.getElementById('no-resend').innerText");
    assert!(
        why.as_str()
            .unwrap()
            .contains("アカウントも過去のリンクもない"),
        "{why}"
    );
    b.screenshot("support-ja-unknown.png");
    // A suppressed one: no button either; a resend forced from the page says it was
    // not sent, and why.
    b.goto(&server.url("/support?q=gone%40example.jp"));
    assert_eq!(
        b.eval("document.getElementById('resend-button') === null"),
        true
    );
    b.navigate_by(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/support/resend';
         for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value],
                               ['address', 'gone@example.jp']]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
           f.appendChild(i);
         }
         document.body.appendChild(f); f.submit();",
    );
    let flash = b.eval("document.getElementById('flash').innerText");
    let flash = flash.as_str().unwrap();
    assert!(flash.starts_with("新しいリンクは送っていません"), "{flash}");
    assert!(flash.contains("送信停止リスト"), "{flash}");
    b.screenshot("support-ja-suppressed.png");
}

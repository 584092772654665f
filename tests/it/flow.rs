//! The verification flow over HTTP, as a person and as the application go through it:
//! mail captured at a real `smtp-sink` (or the outbox), pages fetched with a cookie-keeping
//! client, the application's API checked at the end.

use crate::support::wait_for;

use crate::journey::*;

fn security_headers_are_set(p: &Page) {
    assert_eq!(p.header("referrer-policy"), "no-referrer");
    assert_eq!(p.header("cache-control"), "no-store");
    let csp = p.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(!p.body.contains("<script"));
}

fn csrf_field(body: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([0-9a-f]{32})""#)
        .unwrap()
        .captures(body)
        .unwrap_or_else(|| panic!("no csrf field in {body}"))[1]
        .to_string()
}

#[test]
fn the_whole_journey_over_smtp_ends_with_a_password_the_application_accepts() {
    let sink = Sink::start(&[]);
    let s = Setup::start(&format!(
        "{}[flows]\napp_url = \"https://app.example.jp/login\"\n",
        relay_config(sink.port, "\"1s\"")
    ));
    let to = "hanako@example.jp";
    let flow_id = s.invite(&[to, "--name", "山田 花子", "--locale", "ja"]);

    // The invitation: honest Japanese mail, the link from public_url, the expiry in JST.
    let invite = wait_for_mail(sink.dir.path(), to, "アカウント設定のご案内", 1);
    let token = token_in(&invite);
    assert!(invite.text.contains("山田 花子 様"), "{}", invite.text);
    assert!(invite.text.contains("日本時間"), "{}", invite.text);
    let link = format!("{PUBLIC_URL}/v/{token}");
    assert!(
        invite
            .html
            .contains(&format!("<a href=\"{link}\">{link}</a>")),
        "link text shows the link"
    );
    let seen = s.flow(&flow_id);
    assert!(
        seen["state"] == "mailed" || seen["state"] == "issued",
        "{seen}"
    );

    // The landing page: who writes, what happens, when the link expires, one button.
    let b = Browser::new(&s.server);
    let landing = b.get(&format!("/v/{token}"));
    assert_eq!(landing.status, 200);
    security_headers_are_set(&landing);
    assert!(landing.body.contains("hanako@example.jp"));
    assert!(landing.body.contains("有効期限"));
    assert_eq!(csrf_field(&landing.body), b.cookie("mg_csrf").unwrap());

    // The button: a code is mailed and bound to this browser.
    let pressed = b.post(&format!("/v/{token}"), &[]);
    assert_eq!(pressed.status, 303, "{}", pressed.body);
    assert_eq!(pressed.location(), format!("/v/{token}/code"));
    security_headers_are_set(&pressed);
    assert!(b.cookie("mg_bind").is_some());
    let form = b.get(&format!("/v/{token}/code"));
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"code\""));
    let code_mail = wait_for_code(sink.dir.path(), to, 1);
    let code = code_in(&code_mail);

    // Another browser cannot use this code.
    let other = Browser::new(&s.server);
    other.get(&format!("/v/{token}"));
    let stolen = other.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_ne!(stolen.status, 303);

    // The code opens the password form, rules on screen.
    let entered = b.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_eq!(entered.status, 303, "{}", entered.body);
    let pw_form = b.get(&format!("/v/{token}/password"));
    assert_eq!(pw_form.status, 200);
    assert!(pw_form.body.contains("12文字以上"), "{}", pw_form.body);
    let weak = b.post(
        &format!("/v/{token}/password"),
        &[("password", "password1234"), ("password2", "password1234")],
    );
    assert_eq!(weak.status, 422);
    assert!(weak.body.contains("推測されやすい"));
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", PASSWORD), ("password2", PASSWORD)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    let done = b.get(&format!("/v/{token}/done"));
    assert_eq!(done.status, 200);
    assert!(done.body.contains("https://app.example.jp/login"));

    // The notice, the flow's state, and the application's check.
    wait_for_mail(sink.dir.path(), to, "パスワードを設定しました", 1);
    assert_eq!(s.flow(&flow_id)["state"], "completed");
    let metrics = reqwest::blocking::get(s.server.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("mailgate_flow_completions_total 1\n"),
        "{metrics}"
    );
    assert!(s.credentials_valid(to, PASSWORD));
    assert!(!s.credentials_valid(to, "plum kettle orbit seven lantern"));
    assert!(!s.credentials_valid("nobody@example.jp", PASSWORD));

    // The link is used up, and no secret reached the log.
    assert_eq!(b.get(&format!("/v/{token}")).status, 410);
    let log = s.server.log_text();
    for secret in [token.as_str(), code.as_str(), PASSWORD] {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
    }
}

#[test]
fn a_mail_scanner_fetching_the_link_first_spoils_nothing_and_is_on_the_timeline() {
    let s = Setup::start("");
    let to = "scanned@example.jp";
    let flow_id = s.invite(&[to, "--locale", "en"]);
    let token = token_in(&wait_for_mail(&s.outbox(), to, "set up your account", 1));
    let url = s.server.url(&format!("/v/{token}"));
    let scanner = reqwest::blocking::Client::new();
    assert_eq!(scanner.head(&url).send().unwrap().status(), 200);
    assert_eq!(scanner.get(&url).send().unwrap().status(), 200);
    let seen = s.flow(&flow_id);
    assert_eq!(seen["state"], "mailed", "{seen}");
    let visits: Vec<String> = seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["what"] == "link_visited")
        .map(|n| n["detail"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(visits, vec!["HEAD", "GET"]);
    assert!(
        wait_mails_settle(&s, to)
            .iter()
            .all(|m| !m.subject.contains("code"))
    );

    let b = Browser::new(&s.server);
    finish_journey(&b, &token, &s.outbox(), to, 0);
    assert!(s.credentials_valid(to, PASSWORD));
}

/// The mail so far to `to`, once the worker is idle (a wrongly sent one has landed).
fn wait_mails_settle(s: &Setup, to: &str) -> Vec<Mail> {
    s.inst.wait_queue_idle();
    mails_to(&s.outbox(), to, "")
}

fn pressed(s: &Setup, to: &str) -> (Browser, String, String) {
    let token = token_in(&wait_for_mail(&s.outbox(), to, "", 1));
    let b = Browser::new(&s.server);
    b.get(&format!("/v/{token}"));
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(&s.outbox(), to, 1));
    (b, token, code)
}

#[test]
fn fifty_concurrent_right_codes_give_exactly_one_success() {
    let s = Setup::start("");
    let to = "racer@example.jp";
    let flow_id = s.invite(&[to]);
    let (b, token, code) = pressed(&s, to);
    let cookie = b.cookie_header();
    let csrf = b.cookie("mg_csrf").unwrap();
    let url = s.server.url(&format!("/v/{token}/code"));
    let barrier = std::sync::Barrier::new(50);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                scope.spawn(|| {
                    let client = reqwest::blocking::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap();
                    barrier.wait();
                    client
                        .post(&url)
                        .header("cookie", &cookie)
                        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 303 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(s.flow(&flow_id)["state"], "code_verified");
}

#[test]
fn the_sixth_try_on_a_code_is_refused_even_when_right() {
    let s = Setup::start("");
    let to = "sixth@example.jp";
    s.invite(&[to, "--locale", "en"]);
    let (b, token, code) = pressed(&s, to);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let p = b.post(&format!("/v/{token}/code"), &[("code", wrong)]);
        assert_eq!(p.status, 422);
        assert!(p.body.contains(&format!("{left} more time")), "{}", p.body);
    }
    let sixth = b.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_eq!(sixth.status, 422);
    assert!(
        sixth.body.contains("tried too many times"),
        "{}",
        sixth.body
    );
}

#[test]
fn twenty_wrong_codes_in_a_day_lock_the_flow() {
    let s = Setup::start("[flows]\ncode_resend_interval = \"0s\"\n");
    let to = "locked@example.jp";
    let flow_id = s.invite(&[to, "--locale", "en"]);
    let token = token_in(&wait_for_mail(&s.outbox(), to, "", 1));
    let b = Browser::new(&s.server);
    b.get(&format!("/v/{token}"));
    let mut last = None;
    for round in 0..4 {
        assert_eq!(
            b.post(&format!("/v/{token}"), &[]).status,
            303,
            "round {round}"
        );
        let code = code_in(&wait_for_code(&s.outbox(), to, round + 1));
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            last = Some(b.post(&format!("/v/{token}/code"), &[("code", wrong)]));
        }
    }
    let last = last.unwrap();
    assert_eq!(last.status, 410, "{}", last.body);
    assert!(last.body.contains("stopped this link"), "{}", last.body);
    assert_eq!(s.flow(&flow_id)["state"], "locked");
    // Locked: the button mails nothing more.
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 410);
    assert_eq!(b.get(&format!("/v/{token}")).status, 410);
}

#[test]
fn an_expired_link_shows_its_page_changes_nothing_and_offers_a_new_one() {
    let s = Setup::start("[flows]\nlink_lifetime = \"2s\"\n");
    let to = "late@example.jp";
    let flow_id = s.invite(&[to, "--locale", "en"]);
    let token = token_in(&wait_for_mail(&s.outbox(), to, "set up", 1));
    // The API reads the flow without changing it: wait until it says the link expired.
    assert!(
        wait_for(10, || s.flow(&flow_id)["state"] == "expired"),
        "{}",
        s.flow(&flow_id)
    );
    let b = Browser::new(&s.server);
    let page = b.get(&format!("/v/{token}"));
    assert_eq!(page.status, 410);
    assert!(page.body.contains("stopped working"), "{}", page.body);
    security_headers_are_set(&page);
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 410);
    assert_eq!(s.flow(&flow_id)["state"], "expired");
    assert_eq!(mails_to(&s.outbox(), to, "").len(), 1, "no code was mailed");
    // The page offers a new link by mail.
    let renewed = b.post(&format!("/v/{token}/renew"), &[]);
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let again = wait_for_mail(&s.outbox(), to, "set up", 2);
    assert_ne!(token_in(&again), token);
}

#[test]
fn a_used_link_shows_its_page_and_changes_nothing() {
    let s = Setup::start("");
    let to = "used@example.jp";
    let flow_id = s.invite(&[to]);
    let token = token_in(&wait_for_mail(&s.outbox(), to, "", 1));
    let b = Browser::new(&s.server);
    finish_journey(&b, &token, &s.outbox(), to, 0);
    let before = mails_to(&s.outbox(), to, "").len();
    let page = b.get(&format!("/v/{token}"));
    assert_eq!(page.status, 410);
    assert!(page.body.contains("使用済み"), "{}", page.body);
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 410);
    assert_eq!(
        b.post(
            &format!("/v/{token}/password"),
            &[
                ("password", "another fine long phrase"),
                ("password2", "another fine long phrase")
            ]
        )
        .status,
        410
    );
    assert_eq!(s.flow(&flow_id)["state"], "completed");
    assert!(s.credentials_valid(to, PASSWORD));
    s.inst.wait_queue_idle();
    assert_eq!(mails_to(&s.outbox(), to, "").len(), before);
}

#[test]
fn a_superseded_link_shows_its_page_and_changes_nothing() {
    let s = Setup::start("");
    let to = "twice@example.jp";
    let first_id = s.invite(&[to, "--locale", "en"]);
    let first = token_in(&wait_for_mail(&s.outbox(), to, "", 1));
    let second_id = s.invite(&[to, "--locale", "en"]);
    let second = token_in(&wait_for_mail(&s.outbox(), to, "", 2));
    assert_ne!(first, second);
    let b = Browser::new(&s.server);
    let old = b.get(&format!("/v/{first}"));
    assert_eq!(old.status, 410);
    assert!(old.body.contains("newer link"), "{}", old.body);
    assert_eq!(b.post(&format!("/v/{first}"), &[]).status, 410);
    assert_eq!(s.flow(&first_id)["state"], "superseded");
    assert_eq!(s.flow(&first_id)["superseded_by"], second_id.as_str());
    assert_eq!(b.get(&format!("/v/{second}")).status, 200);
    assert_eq!(mails_to(&s.outbox(), to, "").len(), 2, "no code was mailed");
}

#[test]
fn reset_answers_the_same_for_known_and_unknown_addresses_and_mails_only_the_known() {
    let s = Setup::start("");
    let known = "known@example.jp";
    s.invite(&[known]);
    let token = token_in(&wait_for_mail(&s.outbox(), known, "", 1));
    finish_journey(&Browser::new(&s.server), &token, &s.outbox(), known, 0);

    let ask = |address: &str| {
        let b = Browser::new(&s.server);
        let form = b.get("/reset");
        assert_eq!(form.status, 200);
        security_headers_are_set(&form);
        b.post("/reset", &[("address", address)])
    };
    // The unknown address first: /reset's work runs in order after the answer, so once
    // the known address's mail is there, the unknown one's request has been handled.
    let u = ask("unknown@example.jp");
    let k = ask(known);
    assert_eq!(k.status, 200);
    assert_eq!(k.status, u.status);
    assert_eq!(k.body, u.body);
    wait_for_mail(&s.outbox(), known, "パスワード再設定", 1);
    s.inst.wait_queue_idle();
    assert!(mails_to(&s.outbox(), "unknown@example.jp", "").is_empty());

    // A malformed address is told so; too many requests for one address are refused.
    let b = Browser::new(&s.server);
    b.get("/reset");
    assert_eq!(
        b.post("/reset", &[("address", "not an address")]).status,
        422
    );
    // Past three links an hour for one address, requests are answered as always (the
    // answer comes before any per-address work) and mail nobody.
    let statuses: Vec<u16> = (0..4)
        .map(|_| b.post("/reset", &[("address", known)]).status)
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 200]);
    // The worker takes requests in turn: once a later one is handled, these were too.
    let sentinel = "sentinel@example.jp";
    s.invite(&[sentinel]);
    b.post("/reset", &[("address", sentinel)]);
    wait_for_mail(&s.outbox(), sentinel, "", 2);
    let resets = s.inst.log_json(known)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["template"] == "reset")
        .count();
    assert_eq!(resets, 3, "three reset links an hour for one address");
    // A POST without the CSRF cookie is refused.
    let bare = reqwest::blocking::Client::new()
        .post(s.server.url("/reset"))
        .form(&[
            ("csrf", "00000000000000000000000000000000"),
            ("address", known),
        ])
        .send()
        .unwrap();
    assert_eq!(bare.status(), 403);
}

#[test]
fn the_api_starts_a_flow_and_reports_it() {
    let s = Setup::start("");
    let client = reqwest::blocking::Client::new();
    let unauth = client
        .post(s.server.url("/api/v1/flows"))
        .json(&serde_json::json!({"kind": "setup", "address": "api@example.jp"}))
        .send()
        .unwrap();
    assert_eq!(unauth.status(), 401);
    // No account yet: a reset is refused, naming the address and what to do instead.
    let refused = client
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "reset", "address": "api@example.jp"}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 409);
    let why: serde_json::Value = refused.json().unwrap();
    assert_eq!(why["error"]["code"], "conflict", "{why}");
    let message = why["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("api@example.jp") && message.contains("setup flow"),
        "{message}"
    );
    let resp = client
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "setup", "address": "api@example.jp", "name": "API", "locale": "en"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: serde_json::Value = resp.json().unwrap();
    let id = v["flow_id"].as_str().unwrap();
    assert!(
        v["message_id"].as_str().is_some() && v["expires_at"].as_str().is_some(),
        "{v}"
    );
    let mail = wait_for_mail(&s.outbox(), "api@example.jp", "set up your account", 1);
    assert!(mail.text.contains("Dear API,"));
    let flow = s.flow(id);
    assert_eq!(flow["kind"], "setup");
    assert_eq!(flow["address"], "api@example.jp");
    assert!(
        flow.get("link_hash").is_none(),
        "no digest is shown: {flow}"
    );
    let bad = client
        .post(s.server.url("/api/v1/flows"))
        .bearer_auth(&s.key)
        .json(&serde_json::json!({"kind": "setup", "address": "nope"}))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[test]
fn a_refused_code_mail_makes_the_flow_undeliverable_and_the_page_says_what_to_do() {
    let sink = Sink::start(&[]);
    let s = Setup::start(&relay_config(sink.port, "\"1s\""));
    let to = "gone@example.jp";
    let flow_id = s.invite(&[to, "--locale", "en"]);
    let token = token_in(&wait_for_mail(sink.dir.path(), to, "set up", 1));
    // The receiving server now refuses every recipient with a 5xx.
    let _sink = sink.restart_with(&["-f", "RCPT"]);
    let b = Browser::new(&s.server);
    b.get(&format!("/v/{token}"));
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    assert!(
        wait_for(30, || s.flow(&flow_id)["state"] == "undeliverable"),
        "{}",
        s.flow(&flow_id)
    );
    let reason = s.flow(&flow_id)["undeliverable_reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("refused"), "{reason}");
    let page = b.get(&format!("/v/{token}/code"));
    assert_eq!(page.status, 410);
    assert!(
        page.body.contains("could not be delivered"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("check that the address is right"),
        "{}",
        page.body
    );
    // mailgate's own words in the page's language, the server's reply verbatim.
    assert!(
        page.body
            .contains("The receiving mail server refused our mail")
            && page.body.contains("The receiving server said: 5"),
        "{}",
        page.body
    );
    let ja = b.get(&format!("/v/{token}/code?lang=ja"));
    assert_eq!(ja.status, 410);
    assert!(
        ja.body.contains("メールの受け取りを断りました")
            && ja
                .body
                .contains("受信側サーバーの返答（そのまま表示しています）: <span lang=\"en\">5"),
        "{}",
        ja.body
    );
    assert!(!ja.body.contains("refused the mail"), "{}", ja.body);
}

#[test]
fn a_newer_link_cancels_the_older_links_mail_still_in_the_queue() {
    // No server runs, so the first invitation is still queued when the reset comes.
    let inst = crate::support::Instance::new("");
    assert!(inst.run(&["invite", "mika@example.jp"]).status.success());
    assert!(inst.run(&["invite", "mika@example.jp"]).status.success());
    let log = inst.log_json("mika@example.jp");
    let messages = log["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{log}");
    // Newest first: the new invitation waits; the first is cancelled, saying why.
    assert_eq!(messages[0]["status"], "queued", "{log}");
    assert_eq!(messages[1]["status"], "cancelled", "{log}");
    let events = messages[1]["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("superseded by a newer link")),
        "{log}"
    );
}

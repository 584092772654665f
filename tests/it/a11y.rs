//! Every page of the person's journey and of the operators' console, in Japanese and
//! English, at 390 and 320 px wide,
//! checked by axe-core (npm `axe-core`, installed by `scripts/install-test-peers.sh`)
//! inside headless Chromium over the DevTools protocol, at WCAG 2.2 AA: zero
//! violations, the rules run printed. Each page is also checked for horizontal
//! scrolling at 320 px, with normal text and at 200% text size. Screenshots of the
//! Japanese journey at 320 px go to `target/tmp/browser-journey-320/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cdp::Browser;
use crate::journey::*;

/// The WCAG 2.0, 2.1 and 2.2 A and AA rules of axe-core.
const TAGS: &str = "['wcag2a','wcag2aa','wcag21a','wcag21aa','wcag22a','wcag22aa']";

fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-peers/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}); run scripts/install-test-peers.sh",
            path.display()
        )
    })
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-journey-320");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the audits found.
#[derive(Default)]
struct Findings {
    pages: usize,
    violations: Vec<String>,
    rules_run: BTreeSet<String>,
}

/// Audits the page now open: at 390 and 320 px, axe-core's WCAG 2.2 AA rules and no
/// horizontal scrolling (also at 200% text at 320 px). A Japanese page's 320 px view is
/// saved as `NAME.png`.
fn audit(chrome: &mut Browser, axe: &str, lang: &str, name: &str, found: &mut Findings) {
    found.pages += 1;
    let html_lang = chrome.eval("document.documentElement.lang");
    assert_eq!(
        html_lang,
        Value::String(lang.into()),
        "{name}: page language"
    );
    chrome.eval(&format!("{axe}\n;true"));
    for width in [390, 320] {
        chrome.width(width);
        let run = chrome.eval(&format!(
            "axe.run(document, {{runOnly: {{type: 'tag', values: {TAGS}}}, resultTypes: ['violations']}})
               .then(r => ({{
                 violations: r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                   + v.nodes.map(n => n.target.join(' ')).join(', ')),
                 rules: [].concat(r.violations, r.passes, r.incomplete, r.inapplicable).map(x => x.id)
               }}))"
        ));
        for v in run["violations"].as_array().expect("violations") {
            found.violations.push(format!(
                "{lang} {name} at {width}px: {}",
                v.as_str().unwrap_or("")
            ));
        }
        for r in run["rules"].as_array().expect("rules") {
            found.rules_run.insert(r.as_str().unwrap_or("").to_string());
        }
        let fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth";
        if chrome.eval(fits) != Value::Bool(true) {
            found
                .violations
                .push(format!("{lang} {name} at {width}px scrolls sideways"));
        }
        if width == 320 {
            if lang == "ja" {
                chrome.screenshot_to(&screenshots().join(format!("{name}.png")));
            }
            chrome.eval("document.documentElement.style.fontSize = '200%'; true");
            if chrome.eval(fits) != Value::Bool(true) {
                found.violations.push(format!(
                    "{lang} {name} at {width}px with 200% text scrolls sideways"
                ));
            }
            chrome.eval("document.documentElement.style.fontSize = ''; true");
        }
    }
}

fn set_field(name: &str, value: &str) -> String {
    format!(
        "document.querySelector('input[name={name}]').value = {};",
        serde_json::to_string(value).unwrap()
    )
}

const PRESS: &str = "document.querySelector('main form button[type=submit]').click();";
/// Submits without the browser's own checks (minlength), as a too-short password would
/// be sent by a browser that does not check.
const NO_CHECKS: &str = "document.querySelectorAll('form').forEach(f => f.noValidate = true);";

/// The journey in `lang`, page by page, each audited.
fn walk(lang: &str, axe: &str, found: &mut Findings) {
    let s = Setup::start("");
    let short = Setup::start("[flows]\nlink_lifetime = \"1s\"\n");
    let to = format!("a11y-{lang}@example.jp");
    s.invite(&[&to, "--name", "佐藤 さくら", "--locale", lang]);
    let token = token_in(&wait_for_mail(&s.outbox(), &to, "", 1));
    let mut chrome = Browser::start();
    chrome.bypass_csp();
    chrome.phone();

    chrome.goto(&s.server.url(&format!("/v/{token}")));
    audit(&mut chrome, axe, lang, "1-landing", found);
    chrome.navigate_by(PRESS);
    assert_eq!(chrome.path(), format!("/v/{token}/code"));
    // A phone offers digits, and the code from the mail, for the code field.
    let code_field = "!!document.querySelector('input[name=code][inputmode=numeric][autocomplete=one-time-code]')";
    assert_eq!(chrome.eval(code_field), Value::Bool(true), "code field");
    audit(&mut chrome, axe, lang, "2-code", found);
    let code = code_in(&wait_for_code(&s.outbox(), &to, 1));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    chrome.navigate_by(&format!("{} {PRESS}", set_field("code", wrong)));
    audit(&mut chrome, axe, lang, "3-code-wrong", found);
    chrome.navigate_by(&format!("{} {PRESS}", set_field("code", &code)));
    assert_eq!(chrome.path(), format!("/v/{token}/password"));
    // A password manager may fill both fields, and paste is not blocked.
    let fields = "[...document.querySelectorAll('input[type=password]')].every(i => \
                  i.autocomplete === 'new-password' && !i.hasAttribute('onpaste')) \
                  && !!document.querySelector('input[autocomplete=username]')";
    assert_eq!(chrome.eval(fields), Value::Bool(true), "password fields");
    audit(&mut chrome, axe, lang, "4-password", found);
    chrome.navigate_by(&format!(
        "{NO_CHECKS} {} {} {PRESS}",
        set_field("password", "short"),
        set_field("password2", "shorter")
    ));
    audit(&mut chrome, axe, lang, "5-password-refused", found);
    chrome.navigate_by(&format!(
        "{} {} {PRESS}",
        set_field("password", PASSWORD),
        set_field("password2", PASSWORD)
    ));
    assert_eq!(chrome.path(), format!("/v/{token}/done"));
    audit(&mut chrome, axe, lang, "6-done", found);
    chrome.goto(&s.server.url(&format!("/v/{token}")));
    audit(&mut chrome, axe, lang, "7-used-link", found);
    chrome.navigate_by(PRESS);
    audit(&mut chrome, axe, lang, "8-renewed", found);

    // A superseded link, a link that is no link, an expired one.
    let other = format!("twice-{lang}@example.jp");
    s.invite(&[&other, "--locale", lang]);
    let first = token_in(&wait_for_mail(&s.outbox(), &other, "", 1));
    s.invite(&[&other, "--locale", lang]);
    chrome.goto(&s.server.url(&format!("/v/{first}")));
    audit(&mut chrome, axe, lang, "9-superseded-link", found);
    chrome.goto(&s.server.url(&format!("/v/not-a-token?lang={lang}")));
    audit(&mut chrome, axe, lang, "10-unknown-link", found);
    let late = format!("late-{lang}@example.jp");
    short.invite(&[&late, "--locale", lang]);
    let expired = token_in(&wait_for_mail(&short.outbox(), &late, "", 1));
    let plain = crate::journey::Browser::new(&short.server);
    assert!(crate::support::wait_for(10, || {
        plain.get(&format!("/v/{expired}")).status == 410
    }));
    chrome.goto(&short.server.url(&format!("/v/{expired}")));
    audit(&mut chrome, axe, lang, "11-expired-link", found);

    // "Send me a new link".
    chrome.goto(&s.server.url(&format!("/reset?lang={lang}")));
    audit(&mut chrome, axe, lang, "12-reset", found);
    chrome.navigate_by(&format!(
        "{NO_CHECKS} {} {PRESS}",
        set_field("address", "nope")
    ));
    audit(&mut chrome, axe, lang, "13-reset-bad-address", found);
    chrome.navigate_by(&format!("{} {PRESS}", set_field("address", &to)));
    audit(&mut chrome, axe, lang, "14-reset-sent", found);
}

#[test]
fn every_journey_page_passes_axe_core_at_wcag_2_2_aa_in_both_languages_on_narrow_phones() {
    let axe = axe_source();
    let mut found = Findings::default();
    for lang in ["ja", "en"] {
        walk(lang, &axe, &mut found);
    }
    let version = axe
        .split("axe v")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("?");
    println!(
        "axe-core {version}, WCAG 2.2 AA ({TAGS}): {} pages × 2 widths, {} rules run: {}",
        found.pages,
        found.rules_run.len(),
        found
            .rules_run
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("screenshots at 320 px (ja) in {}", screenshots().display());
    assert!(
        found.violations.is_empty(),
        "{} violation(s):\n{}",
        found.violations.len(),
        found.violations.join("\n")
    );
}

/// The console in `lang` for an admin, page by page, each audited: the login form, the
/// delivery log (empty, an address with a flow and a timeline, "did you mean", an
/// unknown address), the invitation's confirmation, the bounce report, the queue, the
/// suppression list, the operators, the account page and an error page.
fn walk_console(lang: &str, server: &crate::support::Server, axe: &str, found: &mut Findings) {
    use crate::console::ADMIN_PASSWORD;
    let mut chrome = Browser::start();
    chrome.bypass_csp();
    chrome.phone();
    chrome.goto(&server.url(&format!("/login?lang={lang}")));
    audit(&mut chrome, axe, lang, "console-01-login", found);
    chrome.fill("name", "ben");
    chrome.fill("password", ADMIN_PASSWORD);
    chrome.navigate_by("document.getElementById('login').submit()");
    assert_eq!(chrome.path(), "/admin");
    // The header's switch saves the language for this operator.
    chrome.navigate_by(&format!("document.getElementById('lang-{lang}').click()"));
    assert_eq!(chrome.path(), "/admin");
    for (name, path) in [
        ("console-02-support", "/support"),
        (
            "console-03-support-address",
            "/support?q=hanako%40example.jp",
        ),
        ("console-04-did-you-mean", "/support?q=HANAKO%40example.jp"),
        ("console-05-unknown", "/support?q=stranger%40example.jp"),
        (
            "console-06-invite",
            "/admin/invite?address=stranger%40example.jp",
        ),
        ("console-07-report", "/admin?since=30d"),
        ("console-08-queue", "/admin/queue"),
        ("console-09-suppression", "/admin/suppression"),
        ("console-10-operators", "/admin/operators"),
        ("console-11-account", "/account"),
        ("console-12-error", "/admin?since=bogus"),
        ("console-13-webhooks", "/admin/webhooks"),
        ("console-14-domain-search", "/support?q=%40example.jp"),
    ] {
        chrome.goto(&server.url(path));
        if name == "console-07-report" {
            // The report's pictures are audited with it: both charts and their tables.
            assert_eq!(
                chrome.eval(
                    "['days-chart', 'days-table', 'providers-chart', 'providers-table']
                       .every(id => document.getElementById(id) !== null)"
                ),
                true,
                "{lang}: the report shows its charts"
            );
        }
        audit(&mut chrome, axe, lang, name, found);
    }
    // The message view, reached from the delivery log's link.
    chrome.goto(&server.url("/support?q=hanako%40example.jp"));
    let link = chrome
        .eval("document.querySelector('a[href^=\"/support/message/\"]').getAttribute('href')");
    let link = link
        .as_str()
        .expect("a message view link on the delivery log");
    chrome.goto(&server.url(link));
    audit(&mut chrome, axe, lang, "console-15-message", found);
}

#[test]
fn every_console_page_passes_axe_core_at_wcag_2_2_aa_in_both_languages_on_narrow_phones() {
    use crate::support::{dsn, free_port, relay_config};
    let axe = axe_source();
    // Mail waits in the queue (nothing listens at the relay), so the queue has rows.
    let (inst, server) = crate::console::console(&relay_config(free_port(), "\"10m\""));
    let run = |args: &[&str]| {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["invite", "hanako@example.jp", "--name", "佐藤 花子"]);
    run(&[
        "suppression",
        "add",
        "gone.away.for.good+old@example.jp",
        "--note",
        "mailbox gone",
    ]);
    // A policy rejection with a long reply: the report's sender alert and bounce rows.
    let file = inst.path().join("policy.eml");
    std::fs::write(
        &file,
        dsn(
            "x@example.net",
            "hana@example.org",
            "unknown@mail.example.jp",
            "failed",
            "5.7.1",
            "550 5.7.1 Message rejected under policy: see https://example.org/a-very-long-policy-address-that-does-not-break",
        ),
    )
    .unwrap();
    run(&["bounce", "ingest", file.to_str().unwrap()]);
    let mut found = Findings::default();
    for lang in ["ja", "en"] {
        walk_console(lang, &server, &axe, &mut found);
    }
    println!(
        "console: {} pages × 2 widths, {} rules run: {}",
        found.pages,
        found.rules_run.len(),
        found
            .rules_run
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("screenshots at 320 px (ja) in {}", screenshots().display());
    assert!(
        found.violations.is_empty(),
        "{} violation(s):\n{}",
        found.violations.len(),
        found.violations.join("\n")
    );
}

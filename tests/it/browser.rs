//! The journey in a real browser: headless Chromium (Debian `chromium`), driven over the
//! DevTools protocol by [`crate::cdp`]. The pages run no JavaScript; the test uses
//! DevTools only to type and to press buttons, as a person would. A screenshot of each
//! page, at a phone's size, is saved to `target/tmp/browser-journey/`.

use std::path::{Path, PathBuf};

use crate::cdp::Browser;
use crate::journey::*;

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
    let sink = Sink::start(&[]);
    let s = Setup::start(&format!(
        "{}[flows]\napp_url = \"https://app.example.jp/login\"\n",
        relay_config(sink.port, "\"1s\"")
    ));
    let to = "sakura@example.jp";
    s.invite(&[to, "--name", "佐藤 さくら", "--locale", "ja"]);
    let token = token_in(&wait_for_mail(sink.dir.path(), to, "アカウント設定", 1));
    let out = output_dir();
    let mut chrome = Browser::start();
    chrome.phone();

    chrome.goto(&s.server.url(&format!("/v/{token}")));
    assert!(
        chrome.text().contains("確認コードをメールで受け取る"),
        "{}",
        chrome.text()
    );
    chrome.screenshot_to(&out.join("1-landing.png"));

    chrome.navigate_by(PRESS);
    assert_eq!(chrome.path(), format!("/v/{token}/code"));
    chrome.screenshot_to(&out.join("2-code.png"));

    let code = code_in(&wait_for_code(sink.dir.path(), to, 1));
    chrome.navigate_by(&format!("{} {PRESS}", set_field("code", &code)));
    assert_eq!(chrome.path(), format!("/v/{token}/password"));
    assert!(chrome.text().contains("12文字以上"));
    chrome.screenshot_to(&out.join("3-password.png"));

    chrome.navigate_by(&format!(
        "document.querySelector('form[action$=password]').noValidate = true; {} {} {PRESS}",
        set_field("password", "password1234"),
        set_field("password2", "password1234")
    ));
    assert!(
        chrome.text().contains("推測されやすい"),
        "{}",
        chrome.text()
    );
    chrome.screenshot_to(&out.join("4-password-refused.png"));

    chrome.navigate_by(&format!(
        "{} {} {PRESS}",
        set_field("password", PASSWORD),
        set_field("password2", PASSWORD)
    ));
    assert_eq!(chrome.path(), format!("/v/{token}/done"));
    assert!(chrome.text().contains("パスワードを設定しました"));
    chrome.screenshot_to(&out.join("5-done.png"));

    // The language switch.
    chrome.navigate_by("document.querySelector('nav.lang a').click();");
    assert!(chrome.text().contains("All done"), "{}", chrome.text());
    chrome.screenshot_to(&out.join("6-done-en.png"));

    // The used link, as the person sees it if they click the mail again.
    chrome.goto(&s.server.url(&format!("/v/{token}")));
    assert!(
        chrome.text().contains("This link has been used"),
        "{}",
        chrome.text()
    );
    chrome.screenshot_to(&out.join("7-used-link.png"));

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

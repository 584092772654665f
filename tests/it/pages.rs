//! The person's pages as Japanese users meet them: passwords typed with an input method,
//! and the holes an adversarial test found in "send me a new link" (issue 15: a
//! stranger's `/reset` must not end or slow the person's journey).

use crate::journey::*;

/// Invites `to`, presses the button and enters the code in a new browser: the password
/// form is open in it. Returns the browser and the link's token.
fn at_password_form(s: &Setup, to: &str, locale: &str) -> (Browser, String) {
    s.invite(&[to, "--locale", locale]);
    let token = token_in(&wait_for_mail(&s.outbox(), to, "", 1));
    let b = Browser::new(&s.server);
    b.get(&format!("/v/{token}"));
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(&s.outbox(), to, 1));
    let entered = b.post(&format!("/v/{token}/code"), &[("code", &code)]);
    assert_eq!(entered.status, 303, "{}", entered.body);
    (b, token)
}

/// The words of issue 18, as set with ASCII spaces, as an IME types them (full-width
/// spaces) and with the dakuten of だ decomposed (as some phones send kana).
const ASCII_SPACES: &str = "みかん 電車 雪だるま 港";
const FULL_WIDTH: &str = "みかん\u{3000}電車\u{3000}雪だるま\u{3000}港";
const DECOMPOSED: &str = "みかん 電車 雪た\u{3099}るま 港";

#[test]
fn a_password_set_with_ascii_spaces_verifies_typed_full_width_or_decomposed() {
    let s = Setup::start("");
    let to = "mikan@example.jp";
    let (b, token) = at_password_form(&s, to, "ja");
    let form = b.get(&format!("/v/{token}/password"));
    assert!(form.body.contains("全角と半角"), "{}", form.body);
    // The second copy typed with the IME still matches the first.
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", ASCII_SPACES), ("password2", FULL_WIDTH)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    assert!(s.credentials_valid(to, ASCII_SPACES));
    assert!(s.credentials_valid(to, FULL_WIDTH));
    assert!(s.credentials_valid(to, DECOMPOSED));
    assert!(!s.credentials_valid(to, "みかん 電車 雪だるま 湊"));
}

#[test]
fn a_password_set_decomposed_verifies_composed() {
    let s = Setup::start("");
    let to = "yuki@example.jp";
    let (b, token) = at_password_form(&s, to, "en");
    let form = b.get(&format!("/v/{token}/password"));
    assert!(
        form.body.contains("Full-width and half-width"),
        "{}",
        form.body
    );
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", DECOMPOSED), ("password2", DECOMPOSED)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    assert!(s.credentials_valid(to, ASCII_SPACES));
    assert!(s.credentials_valid(to, FULL_WIDTH));
}

//! The template lint through `mailgate check`: deliberately bad templates in a
//! `templates.dir` override each produce the named finding; the shipped ones produce none.

use std::path::Path;

use crate::support::Instance;

/// Writes `files` ((locale.part, source)) over the shipped `notice` template and returns
/// the `[templates]` config that points at them.
fn override_notice(root: &Path, files: &[(&str, &str)]) -> String {
    let dir = root.join("templates");
    let notice = dir.join("mail/notice");
    std::fs::create_dir_all(&notice).unwrap();
    for (part, source) in files {
        std::fs::write(notice.join(format!("{part}.hbs")), source).unwrap();
    }
    format!("[templates]\ndir = \"{}\"\n", dir.display())
}

/// Runs `mailgate check` and returns (success, stdout).
fn check(inst: &Instance) -> (bool, String) {
    let out = inst.run(&["check"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn shipped_templates_pass_the_lint() {
    let inst = Instance::new("");
    let (ok, text) = check(&inst);
    assert!(ok, "{text}");
    assert!(!text.contains("rule "), "{text}");
}

#[test]
fn link_text_showing_a_bank_on_an_ip_address_link_is_named() {
    let root = scratch();
    let cfg = override_notice(
        root.path(),
        &[(
            "en.html",
            "<p>{{body}}</p><p>Sign in at <a href=\"http://192.0.2.1/x\">https://bank.example</a>.</p>",
        )],
    );
    let (ok, text) = check(&Instance::new(&cfg));
    assert!(!ok, "findings are problems: {text}");
    assert!(
        text.contains(
            "template notice.en: rule link-text-host: link text \"https://bank.example\" points to 192.0.2.1"
        ),
        "{text}"
    );
    assert!(
        text.contains("template notice.en: rule ip-url: URL http://192.0.2.1/x"),
        "{text}"
    );
    assert!(
        !text.contains("notice.ja: rule"),
        "only the bad locale: {text}"
    );
}

#[test]
fn a_shortener_link_is_named_in_html_and_in_text() {
    let root = scratch();
    let cfg = override_notice(
        root.path(),
        &[
            (
                "ja.html",
                "<p>{{body}}</p><p><a href=\"https://bit.ly/3abcDEF\">こちら</a></p>",
            ),
            ("ja.text", "{{body}}\n\nhttps://tinyurl.com/y7x9\n"),
        ],
    );
    let (ok, text) = check(&Instance::new(&cfg));
    assert!(!ok);
    assert!(
        text.contains(
            "template notice.ja: rule shortener: URL https://bit.ly/3abcDEF goes through the shortener bit.ly"
        ),
        "{text}"
    );
    assert!(
        text.contains("template notice.ja: rule shortener: URL https://tinyurl.com/y7x9"),
        "{text}"
    );
}

#[test]
fn image_only_html_and_an_all_caps_subject_are_named() {
    let root = scratch();
    let cfg = override_notice(
        root.path(),
        &[
            (
                "en.html",
                "<html><body><a href=\"https://id.example.jp/\"><img src=\"https://id.example.jp/notice.png\" alt=\"\"></a></body></html>",
            ),
            ("en.subject", "IMPORTANT ACCOUNT NOTICE"),
        ],
    );
    let (ok, text) = check(&Instance::new(&cfg));
    assert!(!ok);
    assert!(
        text.contains("template notice.en: rule image-only-html:"),
        "{text}"
    );
    assert!(
        text.contains(
            "template notice.en: rule subject-all-caps: subject \"IMPORTANT ACCOUNT NOTICE\""
        ),
        "{text}"
    );
}

#[test]
fn an_empty_text_part_is_named() {
    let root = scratch();
    let cfg = override_notice(root.path(), &[("en.text", "{{#if false}}{{body}}{{/if}}")]);
    let (ok, text) = check(&Instance::new(&cfg));
    assert!(!ok);
    assert!(
        text.contains("template notice.en: rule text-part:"),
        "{text}"
    );
}

/// The configuration already refuses such a From, before the lint sees a message; the
/// lint's own rule (`from-display-name`) covers messages built some other way.
#[test]
fn an_address_as_the_from_display_name_is_refused() {
    let inst = Instance::new("");
    let config = std::fs::read_to_string(&inst.config_path).unwrap().replace(
        "from = \"Example Clinic <no-reply@example.jp>\"",
        "from = \"\\\"no-reply@example.jp\\\" <no-reply@example.jp>\"",
    );
    std::fs::write(&inst.config_path, config).unwrap();
    let (ok, text) = check(&inst);
    assert!(!ok);
    assert!(
        text.contains("sender.from: the display name looks like an address"),
        "{text}"
    );
}

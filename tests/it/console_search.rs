//! The support desk's forgiving search and the message view, in Japanese: a domain or
//! the start of an address lists the matching addresses (from an index, on either
//! store backend), and a message's headers and timeline show, and download, without
//! its link token or its code.

use crate::console::{Agent, SUPPORT_PASSWORD, console, url_encode, visible_text};
use crate::journey::{code_in, token_in, wait_for_code, wait_for_mail};

/// Invites each address from the command line.
fn invite(inst: &crate::support::Instance, addresses: &[&str]) {
    for a in addresses {
        let out = inst.run(&["invite", a, "--locale", "ja"]);
        assert!(
            out.status.success(),
            "invite {a}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The addresses a search listed, in page order.
fn listed(body: &str) -> Vec<String> {
    let Some(at) = body.find("<ul id=\"matches\">") else {
        return Vec::new();
    };
    let list = &body[at..at + body[at..].find("</ul>").unwrap()];
    list.split("<li>")
        .skip(1)
        .map(|li| {
            visible_text(&li[..li.find("</li>").unwrap()])
                .trim()
                .to_string()
        })
        .collect()
}

/// The paragraph with `id` as text.
fn paragraph(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    visible_text(&rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()])
}

#[test]
fn a_domain_or_the_start_of_an_address_lists_the_addresses_in_japanese() {
    let (inst, server) = console("");
    invite(
        &inst,
        &[
            "hanako@example.jp",
            "hanae@example.jp",
            "taro@example.jp",
            "hanako@other.jp",
            "hanako@sub.example.jp",
        ],
    );
    // A second message to one address: it is still listed once.
    invite(&inst, &["taro@example.jp"]);
    let mut aiko = Agent::login_in(&server, "ja,en;q=0.5", "aiko", SUPPORT_PASSWORD, "/support");
    let search = |aiko: &mut Agent, q: &str| {
        let page = aiko.get(&format!("/support?q={}", url_encode(q)));
        assert_eq!(page.status, 200, "{q}: {}", page.body);
        page.body
    };
    // A domain, typed as is and in full width: that domain only, not its subdomains.
    for q in ["@example.jp", "＠ＥＸＡＭＰＬＥ．ｊｐ"] {
        let body = search(&mut aiko, q);
        assert_eq!(
            listed(&body),
            ["hanae@example.jp", "hanako@example.jp", "taro@example.jp"],
            "{q}"
        );
        assert_eq!(
            paragraph(&body, "matches-answer"),
            "メールを送ったことのある@example.jp のアドレス：3件。選ぶと配信ログが出ます。"
        );
        // Each address leads to its delivery log.
        assert!(body.contains("href=\"/support?q=taro%40example.jp&amp;lang=ja\""));
    }
    // The start of an address, with and without its @.
    assert_eq!(
        listed(&search(&mut aiko, "hanako@")),
        [
            "hanako@example.jp",
            "hanako@other.jp",
            "hanako@sub.example.jp"
        ]
    );
    assert_eq!(
        listed(&search(&mut aiko, "hana")),
        [
            "hanae@example.jp",
            "hanako@example.jp",
            "hanako@other.jp",
            "hanako@sub.example.jp"
        ]
    );
    // Nothing there: said so, in Japanese.
    let none = search(&mut aiko, "@nowhere.example");
    assert!(listed(&none).is_empty());
    assert_eq!(
        paragraph(&none, "matches-answer"),
        "@nowhere.example のアドレスあてのメールはありません。"
    );
    // An address with its domain cut short offers the addresses that begin so.
    let short = search(&mut aiko, "hanako@example.j");
    assert!(
        paragraph(&short, "did-you-mean").contains("hanako@example.jp"),
        "{short}"
    );
    // What is neither: the error is Japanese, with no English reason inside.
    let bad = search(&mut aiko, "hana ko@example.jp");
    let error = paragraph(&bad, "search-error");
    assert!(
        error.starts_with(
            "「hana ko@example.jp」はメールアドレスとしてもメッセージIDとしても読み取れません（空白"
        ),
        "{error}"
    );
    assert!(!error.contains("address"), "{error}");
}

#[test]
fn the_message_view_shows_headers_and_timeline_but_never_the_token_or_the_code() {
    let (inst, server) = console("");
    let to = "hanako@example.jp";
    invite(&inst, &[to]);
    let outbox = inst.path().join("outbox");
    let token = token_in(&wait_for_mail(&outbox, to, "", 1));
    // The person presses the button: a code mail follows.
    let person = crate::journey::Browser::new(&server);
    assert_eq!(person.get(&format!("/v/{token}")).status, 200);
    assert_eq!(person.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(&outbox, to, 1));
    let mut aiko = Agent::login_in(&server, "ja,en;q=0.5", "aiko", SUPPORT_PASSWORD, "/support");
    let log = aiko.get("/support?q=hanako%40example.jp").body;
    let links: Vec<String> = log
        .match_indices("href=\"/support/message/")
        .map(|(at, _)| {
            let rest = &log[at + "href=\"".len()..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect();
    assert_eq!(links.len(), 2, "the link mail and the code mail: {log}");
    for link in &links {
        let page = aiko.get(link);
        assert_eq!(page.status, 200, "{link}: {}", page.body);
        let text = visible_text(&page.body);
        assert!(text.contains("メッセージのヘッダーと配信記録"), "{text}");
        assert!(text.contains("本文は表示しません"), "{text}");
        for field in ["DKIM-Signature", "Message-ID", "Subject", "From", "To"] {
            assert!(
                page.body
                    .contains(&format!("<th scope=\"row\" class=\"id\">{field}</th>")),
                "{field} missing in {link}"
            );
        }
        assert!(page.body.contains("<table class=\"timeline\""));
        assert!(text.contains("配信済み"), "{text}");
        assert!(!page.body.contains(&token), "{link} shows the link token");
        assert!(!page.body.contains(&code), "{link} shows the code");
        // The headers as a file.
        let id = link
            .trim_start_matches("/support/message/")
            .split('?')
            .next()
            .unwrap();
        let download = aiko
            .client
            .get(format!("{}/support/message/{id}/headers.txt", aiko.base))
            .header("cookie", aiko.cookie_header())
            .send()
            .unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(
            download.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert!(
            download.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
        let headers = download.text().unwrap();
        assert!(headers.contains("DKIM-Signature:"), "{headers}");
        assert!(headers.contains(&format!("To: {to}")) || headers.contains(&format!("<{to}>")));
        assert!(
            !headers.contains(&token),
            "the download holds the link token"
        );
        assert!(!headers.contains(&code), "the download holds the code");
        assert!(
            !headers.contains("/v/"),
            "the download holds a link: {headers}"
        );
        // Header lines only: no empty line, so no body behind them.
        assert!(!headers.trim_end().contains("\r\n\r\n") && !headers.trim_end().contains("\n\n"));
    }
    // A wrong id is answered in Japanese.
    let wrong = aiko.get("/support/message/not-an-id");
    assert_eq!(wrong.status, 400);
    assert!(visible_text(&wrong.body).contains("メッセージIDとして読み取れません"));
}

//! The support desk's forgiving search and the message view, in Japanese: a domain or
//! the start of an address lists the matching addresses (from an index, on either
//! store backend), and a message's headers and timeline show, and download, without
//! its link token or its code. The admin's lists filter by period, reason, kind and
//! recipient domain.

use crate::console::{
    ADMIN_PASSWORD, Agent, SUPPORT_PASSWORD, console, csrf, page_rows, url_encode, visible_text,
};
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

#[test]
fn the_bounce_report_and_its_csv_filter_by_reason_kind_and_recipient_domain() {
    use crate::support::dsn;
    let (inst, server) = console("");
    for (i, (rcpt, action, status, reply)) in [
        (
            "hana@example.org",
            "failed",
            "5.1.1",
            "550 5.1.1 <hana@example.org>: User unknown",
        ),
        (
            "jiro@example.org",
            "failed",
            "5.7.1",
            "550 5.7.1 Message rejected under policy",
        ),
        (
            "saburo@example.net",
            "delayed",
            "4.2.2",
            "452 4.2.2 Mailbox full",
        ),
    ]
    .iter()
    .enumerate()
    {
        let file = inst.path().join(format!("dsn{i}.eml"));
        std::fs::write(
            &file,
            dsn(
                "x@example.net",
                rcpt,
                "unknown@mail.example.jp",
                action,
                status,
                reply,
            ),
        )
        .unwrap();
        let out = inst.run(&["bounce", "ingest", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");
    let addresses = |ben: &mut Agent, query: &str| -> Vec<String> {
        let page = ben.get(&format!("/admin?since=7d{query}"));
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let mut a: Vec<String> = page_rows(&page.body)
            .into_iter()
            .map(|r| r[1].clone())
            .collect();
        a.sort();
        a
    };
    assert_eq!(addresses(&mut ben, "").len(), 3);
    assert_eq!(
        addresses(&mut ben, "&domain=%EF%BC%A5xample.ORG"),
        ["hana@example.org", "jiro@example.org"],
        "a full-width, upper-case domain filters as typed"
    );
    assert_eq!(
        addresses(&mut ben, "&reason=userunknown"),
        ["hana@example.org"]
    );
    assert_eq!(
        addresses(&mut ben, "&status=temporary"),
        ["saburo@example.net"]
    );
    assert_eq!(
        addresses(&mut ben, "&status=permanent&domain=example.org"),
        ["hana@example.org", "jiro@example.org"]
    );
    // The page says the list is filtered, and its CSV link keeps the filters.
    let page = ben.get("/admin?since=7d&reason=userunknown");
    assert!(
        visible_text(&page.body).contains("条件に合う不達だけを数え"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("/admin/bounces.csv?since=7d&amp;reason=userunknown")
    );
    let csv = ben
        .get("/admin/bounces.csv?since=7d&reason=userunknown")
        .body;
    assert_eq!(csv.lines().count(), 2, "the header and one row: {csv}");
    assert!(csv.contains("hana@example.org"));
    // A kind that does not exist is refused in Japanese.
    let bad = ben.get("/admin?since=7d&status=lost");
    assert_eq!(bad.status, 400);
    assert!(visible_text(&bad.body).contains("状態（status）「lost」は使えません"));
}

#[test]
fn the_queue_filters_by_status_and_recipient_domain() {
    use crate::support::{free_port, relay_config, wait_for};
    // Nothing listens at the relay: the mail waits in the queue, deferred.
    let (inst, server) = console(&relay_config(free_port(), "\"10m\""));
    invite(&inst, &["hanako@example.jp", "taro@example.org"]);
    let status = |a: &str| {
        inst.log_json(a)["messages"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(wait_for(30, || {
        status("hanako@example.jp") == "deferred" && status("taro@example.org") == "deferred"
    }));
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");
    let rows = |ben: &mut Agent, query: &str| -> Vec<String> {
        let page = ben.get(&format!("/admin/queue{query}"));
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let mut to: Vec<String> = page
            .body
            .split("<td data-label=\"宛先\">")
            .skip(1)
            .map(|c| {
                visible_text(&c[..c.find("</td>").unwrap()])
                    .trim()
                    .to_string()
            })
            .collect();
        to.sort();
        to
    };
    assert_eq!(
        rows(&mut ben, ""),
        ["hanako@example.jp", "taro@example.org"]
    );
    assert_eq!(rows(&mut ben, "?domain=example.jp"), ["hanako@example.jp"]);
    assert_eq!(
        rows(&mut ben, "?status=deferred&domain=%40example.org"),
        ["taro@example.org"]
    );
    let none = ben.get("/admin/queue?status=queued");
    assert!(
        visible_text(&none.body).contains("条件に合う送信待ちのメッセージはありません。"),
        "{}",
        none.body
    );
}

/// The recipients listed on a queue page, in page order.
fn queue_rows(body: &str) -> Vec<String> {
    cells(body, "<td data-label=\"宛先\">", "</td>")
}

/// The `href` of the link with `id`, unescaped, if the page has one.
fn link(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let start = body[..at].rfind("<a href=\"")? + "<a href=\"".len();
    let end = start + body[start..].find('"')?;
    // As a browser reads the attribute (handlebars writes `=` as `&#x3D;`).
    Some(
        body[start..end]
            .replace("&#x3D;", "=")
            .replace("&amp;", "&"),
    )
}

#[test]
fn the_queue_page_shows_the_first_page_and_a_link_to_the_next() {
    let (inst, server) = console("");
    // 60 messages due at the same later time (so they stay queued, and the pages
    // must order ties by id), 5 of them to another domain.
    let mut csv = String::from("address\n");
    let mut everyone = Vec::new();
    for i in 0..60 {
        let domain = if i % 12 == 0 {
            "other.jp"
        } else {
            "example.jp"
        };
        let a = format!("staff{i:02}@{domain}");
        csv.push_str(&a);
        csv.push('\n');
        everyone.push(a);
    }
    let path = inst.path().join("staff.csv");
    std::fs::write(&path, csv).unwrap();
    let out = inst.run(&[
        "invite",
        "--csv",
        path.to_str().unwrap(),
        "--at",
        "2030-01-01 09:00",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");

    let first = ben.get("/admin/queue");
    assert_eq!(first.status, 200, "{}", first.body);
    let page1 = queue_rows(&first.body);
    assert_eq!(page1.len(), 50, "{page1:?}");
    assert!(link(&first.body, "first-page").is_none());
    let next = link(&first.body, "next-page").expect("a link to the next page");
    assert!(visible_text(&first.body).contains("次のページへ"));

    let second = ben.get(&next);
    assert_eq!(second.status, 200, "{next}: {}", second.body);
    let page2 = queue_rows(&second.body);
    assert_eq!(page2.len(), 10, "{page2:?}");
    assert!(link(&second.body, "next-page").is_none(), "the last page");
    assert_eq!(
        link(&second.body, "first-page").as_deref(),
        Some("/admin/queue?")
    );
    // Together the pages list every message once.
    let mut seen: Vec<String> = page1.into_iter().chain(page2).collect();
    seen.sort();
    assert_eq!(seen, everyone);

    // A filter keeps to its rows, and its links keep the filter.
    let other = ben.get("/admin/queue?domain=other.jp");
    let mut at_other = queue_rows(&other.body);
    at_other.sort();
    assert_eq!(
        at_other,
        [
            "staff00@other.jp",
            "staff12@other.jp",
            "staff24@other.jp",
            "staff36@other.jp",
            "staff48@other.jp"
        ]
    );
    assert!(link(&other.body, "next-page").is_none());
    let mut example = ben.get("/admin/queue?domain=example.jp");
    let mut pages = 1;
    while let Some(next) = link(&example.body, "next-page") {
        assert!(next.contains("&domain=example.jp"), "{next}");
        example = ben.get(&next);
        pages += 1;
    }
    assert_eq!(pages, 2);
    assert_eq!(queue_rows(&example.body).len(), 5);

    // A position that cannot be read is named, in Japanese.
    let bad = ben.get("/admin/queue?after=nonsense");
    assert_eq!(bad.status, 400);
    assert!(visible_text(&bad.body).contains("ページの位置「nonsense」が読み取れません"));
}

#[test]
fn what_mailgate_wrote_in_the_audit_log_reads_in_japanese_on_a_japanese_page() {
    let (inst, server) = console("");
    let hanako = "hanako@example.jp";
    invite(&inst, &[hanako]);
    let out = inst.run(&["suppression", "add", hanako, "--note", "mailbox gone"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Support, in Japanese, presses a resend that cannot be sent.
    let mut aiko = Agent::login_in(&server, "ja,en;q=0.5", "aiko", SUPPORT_PASSWORD, "/support");
    let page = aiko.get("/support?q=hanako%40example.jp");
    let suppressed = paragraph(&page.body, "suppressed");
    assert!(
        suppressed.contains("理由：") && suppressed.contains("が手動で追加"),
        "{suppressed}"
    );
    let forced = aiko.post(
        "/support/resend",
        &[("csrf", &csrf(&page.body)), ("address", hanako)],
    );
    assert_eq!(forced.status, 200, "{}", forced.body);
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");
    let report = ben.get("/admin").body;
    let audit = visible_text(&report[report.find("id=\"audit\"").unwrap()..]);
    assert!(
        audit.contains(
            "hanako@example.jp（送っていません：このアドレスは送信停止リストに載っているため"
        ),
        "{audit}"
    );
    assert!(!audit.contains("not sent"), "{audit}");
    // The same entry on an English page reads as it always did.
    let english = ben.get("/admin?lang=en").body;
    assert!(
        english.contains("hanako@example.jp (not sent: the address is on the suppression list"),
        "{english}"
    );
}

#[test]
fn a_japanese_desk_finds_an_address_by_its_domain_and_opens_a_message_in_a_real_browser() {
    use crate::cdp::{Browser, output_dir};
    use crate::support::wait_for;
    let (inst, server) = console("");
    invite(&inst, &["hanako@example.jp", "taro@example.jp"]);
    let token = token_in(&wait_for_mail(
        &inst.path().join("outbox"),
        "hanako@example.jp",
        "",
        1,
    ));
    let mut b = Browser::start();
    b.goto(&server.url("/login?lang=ja"));
    b.fill("name", "aiko");
    b.fill("password", SUPPORT_PASSWORD);
    b.navigate_by("document.getElementById('login').submit()");
    b.navigate_by("document.getElementById('lang-ja').click()");
    // The domain, in full width as a Japanese input method types it.
    b.fill("q", "＠ｅｘａｍｐｌｅ．ｊｐ");
    b.navigate_by("document.getElementById('search').submit()");
    assert_eq!(
        b.eval("document.getElementById('matches-answer').innerText"),
        "メールを送ったことのある@example.jp のアドレス：2件。選ぶと配信ログが出ます。"
    );
    b.screenshot("support-ja-domain.png");
    b.navigate_by("document.querySelector('#matches a').click()");
    assert_eq!(
        b.eval("document.querySelector('main h2').innerText"),
        "hanako@example.jp"
    );
    b.navigate_by("document.querySelector('a[href^=\"/support/message/\"]').click()");
    let text = b.text();
    for label in [
        "メッセージのヘッダーと配信記録",
        "配信記録",
        "ヘッダー",
        "DKIM-Signature",
    ] {
        assert!(text.contains(label), "{label} not in:\n{text}");
    }
    assert!(!text.contains(&token), "the page shows the link token");
    b.screenshot("support-ja-message.png");
    // The header download, as the browser saves it.
    let downloads = tempfile::tempdir().unwrap();
    b.download_to(downloads.path());
    b.eval("document.getElementById('headers-download').click(); true");
    let saved = || {
        std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "txt"))
    };
    assert!(
        wait_for(20, || saved().is_some()),
        "the headers were not downloaded"
    );
    let file = saved().unwrap();
    let headers = std::fs::read_to_string(&file).unwrap();
    assert!(headers.contains("DKIM-Signature:"), "{headers}");
    assert!(
        !headers.contains(&token),
        "the download holds the link token"
    );
    std::fs::copy(&file, output_dir().join("message-headers.txt")).unwrap();
}

/// The text of every element that opens with `marker` (up to its closing `close`).
fn cells(body: &str, marker: &str, close: &str) -> Vec<String> {
    body.match_indices(marker)
        .map(|(at, _)| {
            let rest = &body[at + marker.len()..];
            visible_text(&rest[..rest.find(close).unwrap()])
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn mailgates_own_timeline_details_read_in_japanese_on_a_japanese_page() {
    let (inst, server) = console("");
    let run = |args: &[&str]| {
        let out = inst.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A suppressed address: its mail is not sent, and its flow cannot be delivered.
    let evidence = "550 5.1.1 mailbox unavailable";
    run(&[
        "suppression",
        "add",
        "blocked@example.jp",
        "--note",
        evidence,
    ]);
    run(&["invite", "blocked@example.jp", "--locale", "ja"]);
    // A message scheduled for later, then cancelled from the command line.
    run(&[
        "invite",
        "later@example.jp",
        "--locale",
        "ja",
        "--at",
        "2030-01-01 09:00",
    ]);
    let later = inst.log_json("later@example.jp")["messages"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&["queue", "cancel", &later]);

    let mut aiko = Agent::login_in(&server, "ja,en;q=0.5", "aiko", SUPPORT_PASSWORD, "/support");
    let blocked = aiko.get("/support?q=blocked%40example.jp").body;
    let later_page = aiko.get("/support?q=later%40example.jp").body;
    let details: Vec<String> = [&blocked, &later_page]
        .iter()
        .flat_map(|b| cells(b, "data-label=\"詳細\">", "</td>"))
        .filter(|d| !d.is_empty())
        .collect();
    let rows: Vec<String> = cells(&blocked, "<li class=\"bad\">", "</li>");
    let all = details.iter().chain(&rows).cloned().collect::<Vec<_>>();
    // Mailgate's own words, in Japanese.
    for want in [
        "送信していません：blocked@example.jpは",
        "から送信停止リストに載っています（理由：コマンドライン（",
        "）が手動で追加、根拠の原文：550 5.1.1 mailbox unavailable）",
        "2030-01-01 09:00:00 JSTに送る予定です",
        "コマンドラインによる操作",
        "届きませんでした（送信していません：アドレスが送信停止リストに載っています）",
    ] {
        assert!(all.iter().any(|d| d.contains(want)), "{want:?} in {all:#?}");
    }
    // And nothing English left but what others wrote (the address, the evidence).
    let english = regex::Regex::new("[A-Za-z]{3,}").unwrap();
    let user = std::env::var("USER").unwrap_or_default();
    for d in &all {
        let rest = d
            .replace(evidence, "")
            .replace(&format!("（{user}）"), "")
            .replace("blocked@example.jp", "")
            .replace("JST", "");
        assert!(!english.is_match(&rest), "English in {d:?}");
    }
    // The English page says the same in English, its time as every other time there.
    let en = aiko.get("/support?q=later%40example.jp&lang=en").body;
    assert!(en.contains("scheduled for 2030-01-01 "), "{en}");
    assert!(!en.contains("2030-01-01T00:00:00Z"), "{en}");
}

#[test]
fn a_connection_no_server_answered_reads_in_japanese_and_is_not_quoted_as_a_reply() {
    use crate::support::{free_port, relay_config, wait_for};
    // Nothing listens at the relay: each try is refused before any server speaks.
    let (inst, server) = console(&relay_config(free_port(), "\"10m\""));
    invite(&inst, &["hanako@example.jp"]);
    assert!(wait_for(30, || {
        inst.log_json("hanako@example.jp")["messages"][0]["status"] == "deferred"
    }));
    let mut ben = Agent::login_in(&server, "ja,en;q=0.5", "ben", ADMIN_PASSWORD, "/admin");
    let log = ben.get("/support?q=hanako%40example.jp").body;
    let replies: Vec<String> = cells(&log, "data-label=\"相手サーバーの応答（原文）\">", "</td>")
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    assert!(
        replies
            .iter()
            .any(|r| r.starts_with("127.0.0.1:") && r.contains("に接続できませんでした（")),
        "{replies:?}"
    );
    let details = cells(&log, "data-label=\"詳細\">", "</td>");
    assert!(
        details.iter().any(|d| d.starts_with("次の再送は")),
        "{details:?}"
    );
    let lead = visible_text(&log);
    assert!(lead.contains("に送れませんでした（127.0.0.1:"), "{lead}");
    assert!(!lead.contains("と応答しました"), "{lead}");
    // The queue's last reply says the same.
    let queue = ben.get("/admin/queue").body;
    let last = cells(&queue, "data-label=\"最後の応答（原文）\">", "</td>");
    assert!(
        last.iter().any(|r| r.contains("に接続できませんでした（")),
        "{last:?}"
    );
    for text in replies.iter().chain(&details).chain(&last) {
        assert!(!text.contains("connect to"), "{text}");
        assert!(!text.contains("next try"), "{text}");
    }
}

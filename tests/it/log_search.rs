//! `mailgate log` and `GET /api/v1/log` search as the support console does (they share
//! `timeline::search`): full-width input is normalised, an address without mail offers
//! "did you mean" addresses, and a domain or the start of an address lists the
//! addresses that had mail, at most 50 with a flag that there are more.

use serde_json::Value;

use crate::journey::Setup;

/// Invites every address in one CSV run (one process, however many rows).
fn invite_all(s: &Setup, addresses: &[String]) {
    let path = s.inst.path().join("people.csv");
    let mut csv = String::from("address\n");
    for a in addresses {
        csv.push_str(a);
        csv.push('\n');
    }
    std::fs::write(&path, csv).unwrap();
    let out = s.inst.run(&["invite", "--csv", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "invite --csv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mailgate log ARGS...`'s standard output.
fn log(s: &Setup, args: &[&str]) -> String {
    let mut all = vec!["log"];
    all.extend_from_slice(args);
    let out = s.inst.run(&all);
    assert!(
        out.status.success(),
        "log {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The indented lines of `log`'s text output: the addresses it listed.
fn listed(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_string)
        .collect()
}

/// `GET /api/v1/log?address=Q` as JSON.
fn api(s: &Setup, q: &str) -> Value {
    let resp = reqwest::blocking::Client::new()
        .get(s.server.url("/api/v1/log"))
        .query(&[("address", q)])
        .bearer_auth(&s.key)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{q}");
    resp.json().unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn mailgate_log_and_the_api_list_a_domain_or_a_prefix_and_offer_did_you_mean() {
    let s = Setup::start("");
    let mut people: Vec<String> = [
        "hanako@example.jp",
        "hanae@example.jp",
        "Sato.Taro@example.jp",
        "hanako@other.jp",
        "hanako@sub.example.jp",
    ]
    .map(String::from)
    .to_vec();
    // One more than a listing shows, at a domain of their own.
    people.extend((0..51).map(|i| format!("staff{i:02}@many.example.jp")));
    invite_all(&s, &people);

    // A domain, typed in full width: that domain only, in byte order.
    let at_domain = [
        "Sato.Taro@example.jp",
        "hanae@example.jp",
        "hanako@example.jp",
    ];
    assert_eq!(listed(&log(&s, &["＠ＥＸＡＭＰＬＥ．ｊｐ"])), at_domain);
    let v = api(&s, " @example.jp ");
    assert_eq!(v["pattern"], "domain");
    assert_eq!(v["query"], "@example.jp");
    assert_eq!(strings(&v["matches"]), at_domain);
    assert_eq!(v["more_matches"], false);
    assert_eq!(v["messages"].as_array().unwrap().len(), 0);

    // The start of an address, with and without its @.
    let hanako = [
        "hanako@example.jp",
        "hanako@other.jp",
        "hanako@sub.example.jp",
    ];
    assert_eq!(listed(&log(&s, &["hanako@"])), hanako);
    assert_eq!(strings(&api(&s, "hanako@")["matches"]), hanako);
    let v: Value = serde_json::from_str(&log(&s, &["hana", "--json"])).unwrap();
    assert_eq!(v["pattern"], "prefix");
    assert_eq!(
        strings(&v["matches"]),
        [
            "hanae@example.jp",
            "hanako@example.jp",
            "hanako@other.jp",
            "hanako@sub.example.jp"
        ]
    );

    // Bounded: 50 of the 51, and a flag (and a sentence) that there are more.
    let v = api(&s, "@many.example.jp");
    let many = strings(&v["matches"]);
    assert_eq!(many.len(), 50);
    assert_eq!(many[0], "staff00@many.example.jp");
    assert_eq!(many[49], "staff49@many.example.jp");
    assert_eq!(v["more_matches"], true);
    let text = log(&s, &["@many.example.jp"]);
    assert!(
        text.starts_with("the first 50 addresses at many.example.jp"),
        "{text}"
    );
    assert_eq!(listed(&text).len(), 50);

    // An exact address, in full width: its own messages, no suggestions.
    let v = api(&s, "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ");
    assert_eq!(v["query"], "hanako@example.jp");
    assert_eq!(v["pattern"], Value::Null);
    assert_eq!(v["messages"][0]["to"], "hanako@example.jp");
    assert_eq!(strings(&v["did_you_mean"]), Vec::<String>::new());

    // No mail for the address as typed: the one differing in case is offered, and so
    // is the one a domain typed short begins.
    let v = api(&s, "sato.taro@example.jp");
    assert_eq!(v["messages"].as_array().unwrap().len(), 0);
    assert_eq!(strings(&v["did_you_mean"]), ["Sato.Taro@example.jp"]);
    let text = log(&s, &["sato.taro@example.jp"]);
    assert!(
        text.starts_with("no mail was ever requested for sato.taro@example.jp\ndid you mean:\n"),
        "{text}"
    );
    assert_eq!(listed(&text), ["Sato.Taro@example.jp"]);
    assert_eq!(
        strings(&api(&s, "hanako@example.j")["did_you_mean"]),
        ["hanako@example.jp"]
    );

    // Nothing at a domain: said so, and an empty list.
    assert_eq!(
        log(&s, &["@nowhere.example"]).trim(),
        "no mail was sent to any address at nowhere.example"
    );
    assert_eq!(
        strings(&api(&s, "@nowhere.example")["matches"]),
        Vec::<String>::new()
    );
}

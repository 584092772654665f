//! The admin page's pictures after real mail: deliveries to several providers, a
//! bounce that came back, a refusal and a deferral, through smtp-sink and the bounce
//! listener; then the page in Japanese in headless Chromium, read as text.

use serde_json::Value;

use crate::cdp::Browser;
use crate::console::{ADMIN_PASSWORD, console};
use crate::support::{Sink, dsn, free_port, relay_config, smtp_send, wait_for};

/// The texts of one table row's cells.
fn cells(b: &mut Browser, selector: &str) -> Vec<String> {
    let v = b.eval(&format!(
        "Array.from(document.querySelector('{selector}').cells).map(c => c.innerText.trim())"
    ));
    v.as_array()
        .unwrap_or_else(|| panic!("no row {selector}: {v}"))
        .iter()
        .map(|c| c.as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_admin_sees_a_month_of_outcomes_and_each_providers_share_in_japanese() {
    let port = free_port();
    let sink = Sink::start_on(port, &[]);
    let inbound = free_port();
    let config = relay_config(port, "\"10m\"").replace(
        "[inbound]\nlisten = \"\"\n",
        &format!("[inbound]\nlisten = \"127.0.0.1:{inbound}\"\n"),
    );
    let (inst, server) = console(&config);
    let status = |id: &str| {
        inst.log_json(id)["messages"][0]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    // Delivered: two to docomo, one to Gmail, one to au (which then bounces).
    let mut au = String::new();
    for to in [
        "hanako@docomo.ne.jp",
        "ichiro@docomo.ne.jp",
        "taro@gmail.com",
        "jiro@ezweb.ne.jp",
    ] {
        let id = inst.send_notice(to);
        inst.wait_delivered(&id);
        au = id;
    }
    let (verp, header) = inst.return_path_of(&sink, &au);
    let report = dsn(
        &verp,
        "jiro@ezweb.ne.jp",
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <jiro@ezweb.ne.jp>: user unknown",
    );
    let replies = smtp_send(inbound, "", &[&verp], &report);
    assert!(replies.iter().any(|r| r.starts_with("250")), "{replies:?}");
    assert!(wait_for(20, || status(&au) == "bounced"), "{}", status(&au));

    // Failed: Rakuten's server refuses the recipient for good.
    let sink = sink.restart_with(&["-f", "RCPT", "-B", "550 5.1.1 User unknown"]);
    let refused = inst.send_notice("saburo@rakumail.jp");
    assert!(
        wait_for(60, || status(&refused) == "failed"),
        "{}",
        status(&refused)
    );
    // Deferred: SoftBank's server asks to try later.
    let _sink = sink.restart_with(&["-r", "RCPT", "-b", "451 4.3.0 Try again later"]);
    let later = inst.send_notice("shiro@i.softbank.jp");
    assert!(
        wait_for(60, || status(&later) == "deferred"),
        "{}",
        status(&later)
    );

    let mut b = Browser::start();
    b.goto(&server.url("/login?lang=ja"));
    b.fill("name", "ben");
    b.fill("password", ADMIN_PASSWORD);
    b.navigate_by("document.getElementById('login').submit()");
    b.goto(&server.url("/admin?lang=ja"));
    assert_eq!(b.path(), "/admin");
    let text = b.text();
    for words in [
        "直近30日の配信状況",
        "受信側の事業者別",
        "「配信済み」は受信箱に届いたという意味ではありません。",
        "迷惑メールフォルダ",
    ] {
        assert!(text.contains(words), "{words} not in:\n{text}");
    }

    // The chart: an image with a name, 30 days, the legend in Japanese, and bars.
    assert_eq!(
        b.eval("document.getElementById('days-chart').getAttribute('role')"),
        "img"
    );
    let legend = b.eval("document.getElementById('days-chart').textContent");
    for name in ["配信済み", "遅延", "不達", "送信失敗"] {
        assert!(legend.as_str().unwrap().contains(name), "{legend}");
    }
    assert_eq!(
        b.eval("document.querySelectorAll('#days-table tbody tr').length"),
        30
    );
    let heights = b.eval(
        "Array.from(document.querySelectorAll('#days-chart rect'))
           .filter(r => r.getAttribute('height') > 1 && r.getAttribute('y') > 20)
           .map(r => Number(r.getAttribute('height')))",
    );
    let heights: Vec<f64> = heights
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    // Today's stack: delivered 4, deferred 1, bounced 1, failed 1, on a scale to 10.
    assert_eq!(heights.len(), 4, "{heights:?}");
    assert!((heights[0] - 4.0 * heights[1]).abs() < 0.2, "{heights:?}");

    // The table beside it: the newest day first, and the month's sums.
    let today = cells(&mut b, "#days-table tbody tr");
    assert_eq!(today[1..], ["4", "1", "1", "1"], "{today:?}");
    assert_eq!(
        b.eval("document.getElementById('days-total').innerText"),
        "7"
    );

    // Each provider's row: delivered, deferred, bounced, failed, total, share.
    let row =
        |b: &mut Browser, id: &str| cells(b, &format!("#providers-table tr[data-provider={id}]"));
    assert_eq!(
        row(&mut b, "docomo"),
        ["ドコモ", "2", "0", "0", "0", "2", "28.6%"]
    );
    assert_eq!(
        row(&mut b, "au"),
        ["au（KDDI）", "1", "0", "1", "0", "2", "28.6%"]
    );
    assert_eq!(
        row(&mut b, "gmail"),
        ["Gmail", "1", "0", "0", "0", "1", "14.3%"]
    );
    assert_eq!(
        row(&mut b, "rakuten"),
        ["楽天モバイル", "0", "0", "0", "1", "1", "14.3%"]
    );
    assert_eq!(
        row(&mut b, "softbank"),
        ["ソフトバンク", "0", "1", "0", "0", "1", "14.3%"]
    );
    assert_eq!(row(&mut b, "other")[5], "0");
    let shares = b.eval("document.getElementById('providers-chart').textContent");
    assert!(
        shares.as_str().unwrap().contains("28.6%（2通）"),
        "{shares}"
    );
    b.screenshot("admin-charts-ja.png");
}

//! Golden files: the full result for a few representative messages of each kind, so a change
//! in extraction (not only in scores) is noticed.

use std::path::Path;

use mailgate::bounce::{Action, BounceReport, ReportKind, parse};

fn load(rel: &str) -> BounceReport {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/sisimai/maildir")
        .join(rel);
    parse(&std::fs::read(p).expect("corpus file"))
}

#[test]
fn qmail_free_text_notice() {
    let r = load("bsd/lhost-qmail-01.eml");
    assert!(r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Ndr));
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("000000000.9999999999999.JavaMail.postmaster@mailhub")
    );
    assert_eq!(r.envelope_to, vec!["nekochan@example.jp".to_string()]);
    let [rc] = r.recipients.as_slice() else {
        panic!("one recipient: {r:?}")
    };
    assert_eq!(rc.address, "kijitora@example.ne.jp");
    assert_eq!(rc.action, Action::Failed);
    assert_eq!(rc.status.as_deref(), Some("5.5.0"));
    assert_eq!(rc.reply_code, Some(550));
    assert!(rc.permanent);
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    assert_eq!(rc.remote_mta.as_deref(), Some("192.0.2.32"));
}

#[test]
fn exim_notice() {
    let r = load("bsd/lhost-exim-01.eml");
    assert_eq!(r.kind, Some(ReportKind::Ndr));
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("E1P1ce6-000Egt-GZ@e1.example.org")
    );
    let rc = &r.recipients[0];
    assert_eq!(rc.address, "kijitora@example.ed.jp");
    assert_eq!(rc.status.as_deref(), Some("5.7.0"));
    assert_eq!(rc.reason.as_deref(), Some("blocked"));
    assert_eq!(rc.remote_mta.as_deref(), Some("mx.example.jp"));
}

#[test]
fn postfix_dsn() {
    let r = load("bsd/lhost-postfix-01.eml");
    assert!(r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Dsn));
    let rc = &r.recipients[0];
    assert_eq!(rc.address, "r@p351355.pool.example.ne.jp");
    assert_eq!(rc.status.as_deref(), Some("5.1.1"));
    assert_eq!(rc.reason.as_deref(), Some("mailererror"));
}

#[test]
fn arf_complaint_is_reported_but_not_a_bounce() {
    let r = load("bsd/arf-02.eml");
    assert!(!r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Arf));
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("000000000000000000000000.smtp@example.com")
    );
    assert_eq!(
        r.recipients[0].address,
        "this-local-part-does-not-exist-on-yahoo@yahoo.com"
    );
    assert_eq!(r.recipients[0].reason.as_deref(), Some("feedback"));
    assert!(!r.recipients[0].permanent);
}

#[test]
fn vacation_reply() {
    let r = load("bsd/rfc3834-01.eml");
    assert!(!r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Autoreply));
    assert_eq!(r.recipients[0].address, "kijitora@example.net");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("vacation"));
}

#[test]
fn amazon_ses_json() {
    let r = load("bsd/lhost-amazonses-09.eml");
    assert!(r.bounce);
    let [rc] = r.recipients.as_slice() else {
        panic!("one recipient: {r:?}")
    };
    assert_eq!(rc.address, "bounce@simulator.amazonses.com");
    assert_eq!(rc.status.as_deref(), Some("5.1.1"));
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    let delivered = load("bsd/lhost-amazonses-12.eml");
    assert!(!delivered.bounce);
    assert_eq!(delivered.recipients[0].action, Action::Delivered);
}

#[test]
fn not_bounces() {
    for f in [
        "not/is-not-bounce-01.eml",
        "not/is-not-bounce-02.eml",
        "not/rb-issue-368-bug.eml",
    ] {
        assert!(!load(f).bounce, "{f}");
    }
}

#[test]
fn json_line_shape() {
    let line = load("bsd/lhost-qmail-01.eml").to_json_line("lhost-qmail-01.eml");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json");
    for key in [
        "file",
        "bounce",
        "kind",
        "recipients",
        "original_message_id",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    let r = &v["recipients"][0];
    for key in [
        "address",
        "action",
        "status",
        "permanent",
        "reason",
        "diagnostic",
        "remote_mta",
    ] {
        assert!(r.get(key).is_some(), "{key}");
    }
    assert_eq!(v["kind"], "ndr");
    assert_eq!(r["action"], "failed");
}

#[test]
fn japanese_carrier_kddi_mailbox_full() {
    // au/KDDI writes a free-text notice with no status code at all.
    let r = load("bsd/lhost-kddi-01.eml");
    assert!(r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Ndr));
    let [rc] = r.recipients.as_slice() else {
        panic!("one recipient: {r:?}")
    };
    assert_eq!(rc.address, "kijitora@x0000000000000.dion.ne.jp");
    assert_eq!(rc.action, Action::Failed);
    assert_eq!(rc.reason.as_deref(), Some("mailboxfull"));
}

#[test]
fn japanese_carrier_ezweb_user_unknown() {
    let r = load("bsd/lhost-ezweb-02.eml");
    assert!(r.bounce);
    let [rc] = r.recipients.as_slice() else {
        panic!("one recipient: {r:?}")
    };
    assert_eq!(
        rc.address,
        "this-local-part-does-not-exist-on-the-server@ezweb.ne.jp"
    );
    assert_eq!(rc.reply_code, Some(550));
    assert!(rc.permanent);
}

#[test]
fn a_report_with_three_recipients_keeps_each_its_own_reason() {
    let r = load("bsd/lhost-x2-02.eml");
    assert!(r.bounce);
    let got: Vec<(&str, Option<&str>)> = r
        .recipients
        .iter()
        .map(|rc| (rc.address.as_str(), rc.reason.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("kijitora@example.com", Some("filtered")),
            ("mikeneko@example.com", Some("suspend")),
            ("sabineko@example.com", Some("filtered")),
        ]
    );
}

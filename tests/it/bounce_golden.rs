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
    // Original-Recipient is the address the sender used; the alias it became is kept beside.
    assert_eq!(rc.address, "kijitora@example.org");
    assert_eq!(
        rc.final_recipient.as_deref(),
        Some("r@p351355.pool.example.ne.jp")
    );
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

/// A report written for mailgate in a real MTA's shape (`tests/corpus/golden`).
fn golden(name: &str) -> BounceReport {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/golden")
        .join(name);
    parse(&std::fs::read(p).expect("golden file"))
}

fn only(r: &BounceReport) -> &mailgate::bounce::RecipientResult {
    let [rc] = r.recipients.as_slice() else {
        panic!("one recipient: {r:?}")
    };
    rc
}

#[test]
fn original_recipient_is_the_address_and_final_recipient_is_kept() {
    let r = golden("o365-original-recipient.eml");
    assert!(r.bounce);
    assert_eq!(r.kind, Some(ReportKind::Dsn));
    let rc = only(&r);
    assert_eq!(rc.address, "info@clinic.example.net");
    assert_eq!(
        rc.final_recipient.as_deref(),
        Some("taro.yamada@clinic.example.net")
    );
    assert_eq!(rc.status.as_deref(), Some("5.1.10"));
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    assert!(rc.permanent);
    let v: serde_json::Value = serde_json::from_str(&r.to_json_line("x")).unwrap();
    assert_eq!(
        v["recipients"][0]["final_recipient"],
        "taro.yamada@clinic.example.net"
    );
}

#[test]
fn exim_delay_warning_is_a_temporary_delay() {
    let r = golden("exim-delay-warning.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "hanako@example.net");
    assert_eq!(rc.action, Action::Delayed);
    assert_eq!(rc.status.as_deref(), Some("4.7.1"));
    assert_eq!(rc.reply_code, Some(451));
    assert!(!rc.permanent);
}

#[test]
fn still_trying_notice_is_a_delay_for_the_recipient_not_the_help_desk() {
    let r = golden("still-trying-notice.eml");
    assert!(r.bounce, "{r:?}");
    assert_eq!(r.kind, Some(ReportKind::Ndr));
    let rc = only(&r);
    assert_eq!(rc.address, "jiro@example.co.jp");
    assert_eq!(rc.action, Action::Delayed);
    assert_eq!(rc.status.as_deref(), Some("4.4.2"));
    assert!(!rc.permanent);
}

#[test]
fn gmail_plain_text_delay_is_a_delay() {
    let r = golden("gmail-delay-text.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "kuro@example.org");
    assert_eq!(rc.action, Action::Delayed);
    assert_eq!(rc.reply_code, Some(421));
    assert!(!rc.permanent);
}

#[test]
fn addresses_in_explanatory_prose_are_not_recipients() {
    let r = golden("prose-helpdesk.eml");
    let rc = only(&r);
    assert_eq!(rc.address, "saburo@example.ne.jp");
    assert_eq!(rc.status.as_deref(), Some("5.2.1"));
    assert_eq!(rc.reason.as_deref(), Some("suspend"));
}

#[test]
fn a_mailing_lists_own_addresses_are_not_recipients() {
    let r = golden("list-member-failure.eml");
    let rc = only(&r);
    assert_eq!(rc.address, "shiro@example.com");
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    assert_eq!(rc.remote_mta.as_deref(), Some("mx.example.com"));
}

#[test]
fn quoted_original_headers_give_no_recipient_of_their_own() {
    let r = golden("quoted-original-headers.eml");
    let rc = only(&r);
    assert_eq!(rc.address, "goro@example.com");
    assert_eq!(
        rc.diagnostic.as_deref(),
        Some("Reason: 550 5.1.1 <goro@example.com>... User unknown")
    );
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
}

#[test]
fn smtp_tags_and_quotes_around_addresses_are_dropped() {
    let r = golden("junk-around-address.eml");
    let got: Vec<&str> = r.recipients.iter().map(|rc| rc.address.as_str()).collect();
    assert_eq!(
        got,
        vec!["rokuro@notes.example.co.jp", "shichiro@notes.example.co.jp"]
    );
    assert!(
        r.recipients
            .iter()
            .all(|rc| rc.status.as_deref() == Some("5.1.1"))
    );
}

#[test]
fn a_read_receipt_is_not_a_bounce() {
    let r = golden("read-receipt.eml");
    assert!(!r.bounce);
    assert!(r.recipients.is_empty(), "{r:?}");
}

/// Every corpus and golden file gives the same answer with LF, CRLF and CR-alone line ends.
#[test]
fn line_ends_lf_crlf_and_cr_alone_give_the_same_answer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut checked = 0;
    let mut seen_cr_only = 0;
    for dir in ["sisimai/maildir/bsd", "sisimai/maildir/not", "golden"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("corpus folder") {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            let lf: Vec<u8> = String::from_utf8_lossy(&raw)
                .replace("\r\n", "\n")
                .into_bytes();
            let crlf = String::from_utf8_lossy(&lf).replace('\n', "\r\n");
            let cr = String::from_utf8_lossy(&lf).replace('\n', "\r");
            let want = parse(&lf);
            assert_eq!(
                parse(crlf.as_bytes()),
                want,
                "CRLF copy of {}",
                path.display()
            );
            let got = parse(cr.as_bytes());
            assert_eq!(got, want, "CR-alone copy of {}", path.display());
            checked += 1;
            seen_cr_only += usize::from(got.bounce);
        }
    }
    assert!(checked > 600, "only {checked} files checked");
    assert!(
        seen_cr_only > 500,
        "only {seen_cr_only} CR-alone copies seen as bounces"
    );
}

#[test]
fn junk_is_not_mail_and_says_why() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty"),
        (b"\r\n\r\n  \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00", "binary"),
        (b"just some words in a file\nand another line\n", "header field"),
        (b"{\"json\": true}\n", "header field"),
    ];
    for (raw, why) in cases {
        let r = parse(raw);
        assert!(!r.bounce);
        assert!(r.recipients.is_empty());
        let said = r.not_mail.unwrap_or_default();
        assert!(said.contains(why), "{raw:?}: {said}");
    }
    // Real reports are mail, even one with a stray NUL byte (lhost-x2-04.eml has one).
    for f in ["bsd/lhost-x2-04.eml", "bsd/lhost-qmail-01.eml"] {
        assert_eq!(load(f).not_mail, None, "{f}");
    }
}

#[test]
fn a_providers_own_suppression_list_is_reason_suppressed() {
    let r = golden("amazonses-suppressed.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "hachi@example.org");
    assert_eq!(rc.reason.as_deref(), Some("suppressed"));
    assert!(rc.permanent);
}

#[test]
fn exim_retry_timeout_is_expired_and_temporary() {
    // Exim says "permanent error" above, but what timed out is the host, not the address:
    // a later message to it may well arrive.
    let r = golden("exim-retry-timeout.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "saburo@example.net");
    assert_eq!(rc.reason.as_deref(), Some("expired"));
    assert!(!rc.permanent);
}

#[test]
fn a_notice_to_someone_who_wrote_to_themselves_names_them() {
    let r = golden("qmail-self-sent.eml");
    assert!(r.bounce, "{r:?}");
    let rc = only(&r);
    assert_eq!(rc.address, "shiro@mail.example.jp");
    assert_eq!(rc.reason.as_deref(), Some("mailboxfull"));
    assert_eq!(rc.reply_code, Some(552));
    assert!(rc.permanent);
}

#[test]
fn gmail_address_not_found_without_a_diagnostic_is_userunknown() {
    let r = golden("gmail-address-not-found.eml");
    assert_eq!(r.kind, Some(ReportKind::Dsn));
    let rc = only(&r);
    assert_eq!(rc.address, "shiro.kuro@example.com");
    assert_eq!(rc.status.as_deref(), Some("5.0.0"));
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    assert!(rc.permanent);
}

#[test]
fn a_receiver_without_tls_is_failedstarttls() {
    let r = golden("gmail-no-tls.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "nanami@example.org");
    assert_eq!(rc.reason.as_deref(), Some("failedstarttls"));
    assert!(rc.permanent);
}

// Classes of the Sisimai corpus the parser once got wrong, each pinned on a real MTA's file.

#[test]
fn the_remote_replys_code_beats_the_status_field_when_more_specific() {
    // Amazon SES writes its own 5.1.0 before the remote server's 5.7.1.
    let r = load("bsd/lhost-amazonses-01.eml");
    assert_eq!(r.recipients[0].status.as_deref(), Some("5.7.1"));
    // Sendmail's Status: 5.1.1 beside a `550 5.7.1 IP address blacklisted` reply.
    let r = load("bsd/lhost-sendmail-33.eml");
    assert_eq!(r.recipients[0].status.as_deref(), Some("5.7.1"));
    // Postfix's Status: 4.5.0 beside a `550 5.5.0` reply: the 550 says it is permanent.
    let r = load("bsd/rhost-franceptt-10.eml");
    let rc = &r.recipients[0];
    assert_eq!(rc.status.as_deref(), Some("5.5.0"));
    assert!(rc.permanent);
}

#[test]
fn a_class_only_status_takes_the_code_the_human_text_quotes() {
    // Sendmail: Status 5.0.0, Diagnostic-Code `X-Unix; 255`, text `554 5.3.0 unknown mailer error`.
    let r = load("bsd/lhost-sendmail-18.eml");
    let rc = &r.recipients[0];
    assert_eq!(rc.status.as_deref(), Some("5.3.0"));
    assert_eq!(rc.diagnostic.as_deref(), Some("X-Unix; 255"));
    assert_eq!(rc.reason.as_deref(), Some("mailererror"));
    // Exchange 2007: Status 4.4.7 (expired); its text quotes `441 4.4.1 Error encountered`.
    let r = load("bsd/lhost-exchange2007-05.eml");
    assert_eq!(r.recipients[0].status.as_deref(), Some("4.4.1"));
}

#[test]
fn a_transcripts_success_replies_are_not_the_failures_status() {
    let r = load("bsd/lhost-postfix-75.eml");
    let rc = only(&r);
    assert_eq!(rc.status.as_deref(), Some("4.3.0"));
    assert_eq!(rc.reason.as_deref(), Some("systemerror"));
    assert!(!rc.permanent);
}

#[test]
fn a_bounce_forwarded_as_an_attachment_is_read() {
    let r = load("bsd/lhost-x5-01.eml");
    assert_eq!(r.kind, Some(ReportKind::Dsn));
    let rc = only(&r);
    assert_eq!(rc.address, "kijitora@neko.example.org");
    assert_eq!(rc.status.as_deref(), Some("5.1.1"));
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
}

#[test]
fn a_part_whose_boundary_was_lost_is_read_as_text() {
    // Verizon's MMS gateway folds `boundary=` onto an unindented line.
    let r = load("bsd/lhost-verizon-02.eml");
    assert!(r.bounce);
    let rc = only(&r);
    assert_eq!(rc.address, "may-be-straycat-nyaaaaaan@vtext.com");
    assert_eq!(rc.reply_code, Some(550));
    assert!(rc.permanent);
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
    // A multipart/report whose boundary never appears: Sendmail's transcript is the diagnostic.
    let r = load("bsd/rfc3464-06.eml");
    let rc = only(&r);
    assert_eq!(
        rc.diagnostic.as_deref(),
        Some(
            "mail.local: unknown user: kijitora 554 <kijitora@example.net>... Service unavailable"
        )
    );
    assert_eq!(rc.reason.as_deref(), Some("userunknown"));
}

#[test]
fn sendmails_transcript_says_why_an_expired_message_failed() {
    let r = load("bsd/lhost-sendmail-11.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("networkerror"));
    let r = load("bsd/lhost-sendmail-21.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("blocked"));
}

#[test]
fn a_recipients_own_5xx_line_outweighs_a_deferral_of_another_host() {
    let r = load("bsd/lhost-v5sendmail-06.eml");
    let rc = only(&r);
    assert_eq!(rc.address, "kijitora@example.edu");
    assert_eq!(rc.action, Action::Failed);
    assert_eq!(rc.reply_code, Some(554));
    assert!(rc.permanent);
}

#[test]
fn opensmtpds_temporary_failure_report_is_a_delay() {
    let r = load("bsd/lhost-opensmtpd-04.eml");
    let rc = only(&r);
    assert_eq!(rc.action, Action::Delayed);
    assert!(!rc.permanent);
}

#[test]
fn provider_specific_texts_name_their_reason() {
    // Yahoo's [TSS04] deferral: it refuses the sender for now.
    let r = load("bsd/lhost-postfix-74.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("rejected"));
    // Gmail's "(state 18)": refused at DATA.
    let r = load("bsd/lhost-gmail-03.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("filtered"));
    // Google Groups in Japanese, fml's non-member notice.
    let r = load("bsd/lhost-googlegroups-01.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("rejected"));
    let r = load("bsd/lhost-fml-02.eml");
    assert_eq!(r.recipients[0].reason.as_deref(), Some("rejected"));
}

#[test]
fn a_recipient_the_notice_never_names_has_no_diagnostic() {
    let r = load("bsd/lhost-postfix-64.eml");
    let rc = only(&r);
    assert_eq!(rc.diagnostic, None);
    assert_eq!(rc.reason.as_deref(), Some("undefined"));
}

#[test]
fn an_auto_reply_saying_the_mailbox_is_gone_is_a_failure() {
    for (file, address) in [
        (
            "autoreply-inbox-no-longer-in-use.eml",
            "helpdesk@example.com",
        ),
        (
            "autoreply-address-retired-ja.eml",
            "funakoshi@example.co.jp",
        ),
    ] {
        let r = golden(file);
        assert!(r.bounce, "{file}: {r:?}");
        assert_eq!(r.kind, Some(ReportKind::Autoreply));
        let rc = only(&r);
        assert_eq!(rc.address, address);
        assert_eq!(rc.action, Action::Failed);
        assert_eq!(rc.reason.as_deref(), Some("suspend"));
        assert!(rc.permanent);
    }
    // The corpus's own: Mimecast's "This email inbox ... is no longer in use".
    assert!(load("bsd/rfc3834-06.eml").bounce);
    // An out-of-office reply stays a vacation.
    let r = golden("autoreply-vacation-mentions-old-address.eml");
    assert!(!r.bounce);
    assert_eq!(only(&r).reason.as_deref(), Some("vacation"));
}

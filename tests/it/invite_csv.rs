//! `mailgate invite --csv`: the spreadsheet case, through a running server's socket.

use crate::journey::*;

const FILE: &str = "address,name,locale\n\
                    hanako@example.jp,山田 花子,ja\n\
                    not-an-address,Taro,ja\n\
                    kate@example.com,Kate Smith,en\n\
                    HANAKO@example.jp,Hanako again,ja\n\
                    jiro@example.jp,Jiro\n";

fn run_csv(s: &Setup, path: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["invite", "--csv", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = s.inst.run(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn a_csv_with_bad_rows_names_each_line_and_a_second_run_mails_nobody() {
    let s = Setup::start("");
    let path = s.inst.path().join("staff.csv");
    std::fs::write(&path, FILE).unwrap();

    let (ok, report) = run_csv(&s, &path, &[]);
    assert!(!ok, "bad rows make the run fail: {report}");
    assert!(
        report.contains("line 3: the address \"not-an-address\" has no @"),
        "{report}"
    );
    assert!(
        report.contains("line 5: HANAKO@example.jp is a duplicate of line 2"),
        "{report}"
    );
    assert!(
        report.contains("line 6: 2 field(s), but the header has 3"),
        "{report}"
    );
    assert!(
        report.contains("line 2: invited hanako@example.jp"),
        "{report}"
    );
    assert!(
        report.contains("line 4: invited kate@example.com"),
        "{report}"
    );
    assert!(report.contains("2 invited, 0 skipped"), "{report}");
    let hanako = wait_for_mail(&s.outbox(), "hanako@example.jp", "アカウント設定", 1);
    assert!(hanako.text.contains("山田 花子 様"));
    wait_for_mail(&s.outbox(), "kate@example.com", "set up your account", 1);

    let (_, again) = run_csv(&s, &path, &[]);
    assert!(again.contains("0 invited, 2 skipped"), "{again}");
    assert!(
        again.contains("line 2: skipped hanako@example.jp: already invited"),
        "{again}"
    );
    s.inst.wait_queue_idle();
    assert_eq!(mails(&s.outbox()).len(), 2, "nobody was mailed twice");

    let (_, resent) = run_csv(&s, &path, &["--resend"]);
    assert!(resent.contains("2 invited"), "{resent}");
    wait_for_mail(&s.outbox(), "kate@example.com", "set up your account", 2);
}

#[test]
fn a_dry_run_reports_and_mails_nobody() {
    let s = Setup::start("");
    let path = s.inst.path().join("staff.csv");
    std::fs::write(&path, FILE).unwrap();
    let (_, report) = run_csv(&s, &path, &["--dry-run"]);
    assert!(
        report.contains("line 2: would invite hanako@example.jp"),
        "{report}"
    );
    assert!(report.contains("2 would be invited"), "{report}");
    s.inst.wait_queue_idle();
    assert!(mails(&s.outbox()).is_empty());
    // Without a dry run the same file then invites both.
    let (_, report) = run_csv(&s, &path, &[]);
    assert!(report.contains("2 invited"), "{report}");
}

#[test]
fn at_schedules_the_mail_for_later() {
    let s = Setup::start("");
    let path = s.inst.path().join("one.csv");
    std::fs::write(&path, "address\nlater@example.jp\n").unwrap();
    let at = chrono::Utc::now() + chrono::Duration::hours(2);
    let (ok, report) = run_csv(&s, &path, &["--at", &at.to_rfc3339()]);
    assert!(ok, "{report}");
    assert!(report.contains("mail scheduled for"), "{report}");
    let queue = s.inst.run(&["queue", "list"]);
    assert!(String::from_utf8_lossy(&queue.stdout).contains("later@example.jp"));
    s.inst.wait_queue_idle();
    assert!(mails(&s.outbox()).is_empty());
    let (ok, past) = run_csv(&s, &path, &["--at", "2001-01-01 09:00"]);
    assert!(!ok, "{past}");
}

#[test]
fn invite_works_with_the_server_down_and_reset_refuses_an_address_without_account() {
    let inst = crate::support::Instance::new("");
    let out = inst.run(&["invite", "offline@example.jp", "--locale", "en"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("invited offline@example.jp"));
    // No account yet: nothing to reset, and the command says what to do instead.
    let out = inst.run(&["reset", "offline@example.jp"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("offline@example.jp has no account") && said.contains("setup flow"),
        "{said}"
    );
    // Once the server runs, the queued invitation goes out.
    let _server = inst.serve();
    wait_for_mail(
        &inst.path().join("outbox"),
        "offline@example.jp",
        "set up your account",
        1,
    );
}

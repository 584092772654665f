//! `mailgate store migrate` against the PostgreSQL server of `MAILGATE_TEST_PG_URL`
//! (`bash scripts/test.sh` starts a throwaway one): it sets up an empty database, a
//! second run finds nothing to do, and an unreachable server is named by its key with
//! the password redacted.

use crate::support::{Instance, TestDatabase};

fn migrate(inst: &Instance, url: &str) -> std::process::Output {
    inst.run(&[
        "--set",
        "store.backend=postgres",
        "--set",
        &format!("store.url={url}"),
        "store",
        "migrate",
    ])
}

#[test]
fn store_migrate_sets_up_an_empty_database_once() {
    // An empty database of its own, dropped at the end like every test's.
    let db = TestDatabase::create();
    let inst = Instance::on_sled("");
    let url = db.url.clone();
    let outputs = [migrate(&inst, &url), migrate(&inst, &url)];
    for out in outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.trim(),
            format!(
                "{url}: schema version {}",
                mailgate::store::postgres::SCHEMA_VERSION
            )
        );
    }
}

#[test]
fn store_migrate_names_an_unreachable_server_without_its_password() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let inst = Instance::new("");
    let out = migrate(
        &inst,
        &format!("postgres://mailgate:hunter2@127.0.0.1:{port}/mailgate"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "store.url = postgres://mailgate:***@127.0.0.1:{port}/mailgate"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

//! `mailgate store migrate` against the PostgreSQL server of `MAILGATE_TEST_PG_URL`
//! (`bash scripts/test.sh` starts a throwaway one): it sets up an empty database, a
//! second run finds nothing to do, and an unreachable server is named by its key with
//! the password redacted.

use crate::support::Instance;

/// The server's URL, or a failure that says how to get one.
fn server_url() -> String {
    std::env::var("MAILGATE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "MAILGATE_TEST_PG_URL is not set: run the tests with `bash scripts/test.sh`, which \
             installs Debian's postgresql when missing (apt-get install postgresql) and starts \
             a throwaway cluster"
        )
    })
}

/// Runs SQL statements, one at a time, on the test server's own database.
fn admin(statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
            .await
            .expect("connect to MAILGATE_TEST_PG_URL");
        tokio::spawn(conn);
        for sql in statements {
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    });
}

/// The test server's URL with database `name`.
fn database_url(name: &str) -> String {
    let url = server_url();
    let base = url.split('?').next().unwrap();
    let cut = base.rfind('/').unwrap();
    format!("{}/{name}", &base[..cut])
}

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
    let name = format!("mailgate_it_{}", std::process::id());
    admin(&[
        &format!("DROP DATABASE IF EXISTS {name}"),
        &format!("CREATE DATABASE {name}"),
    ]);
    let inst = Instance::new("");
    let url = database_url(&name);
    let outputs = [migrate(&inst, &url), migrate(&inst, &url)];
    admin(&[&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")]);
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

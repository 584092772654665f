//! `mailgate store migrate`: connects to the PostgreSQL store named by the configuration
//! and brings its schema up to this binary's version, under the store's advisory lock,
//! so it is safe beside nodes that migrate at start. Talks to the database directly:
//! there is no server to ask.
//!
//! `mailgate store copy --to URL`: the configuration's sled store (its server stopped:
//! the store's lock says so otherwise) into an empty PostgreSQL database at `URL`.

use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use crate::config::StoreBackend;
use crate::store::postgres::{PgTls, Postgres, PostgresSettings, redact_url};
use crate::store::sled::Sled;
use crate::store::{Store, copy};

use super::{Cli, load_config};

/// Runs the migration and prints the schema version in force.
pub async fn migrate(cli: &Cli) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let StoreBackend::Postgres(settings) = &config.store.backend else {
        eprintln!(
            "mailgate: `store migrate` is for store.backend = \"postgres\"; the sled store at \
             {} needs no migration",
            config.store.path.display()
        );
        return ExitCode::from(2);
    };
    let migrated = async {
        let pg = Postgres::connect(settings).await?;
        let version = pg.migrate().await?;
        Ok::<_, crate::store::StoreError>((pg, version))
    }
    .await;
    match migrated {
        Ok((pg, version)) => {
            println!("{}: schema version {version}", pg.url());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Copies the sled store into the database at `to`, printing each kind as it is done.
pub async fn copy(cli: &Cli, to: &str, tls: &str) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !matches!(config.store.backend, StoreBackend::Sled) {
        eprintln!(
            "mailgate: `store copy` reads a sled store: run it with the configuration whose \
             store.backend is \"sled\" (store.path names the store to copy)"
        );
        return ExitCode::from(2);
    }
    let tls = match tls {
        "disable" => PgTls::Disable,
        "require" => PgTls::Require,
        other => {
            eprintln!("mailgate: --tls {other:?}: expected disable or require");
            return ExitCode::from(2);
        }
    };
    let settings = PostgresSettings {
        url: to.to_string(),
        password: None,
        pool_size: 4,
        lease: Duration::from_secs(60),
        tls,
    };
    let target = redact_url(to);
    let result = async {
        let from = Sled::open(&config.store.path, config.store.fsync)?;
        let pg = Postgres::connect(&settings).await?;
        pg.migrate().await?;
        let to = Store::new(Arc::new(pg));
        eprintln!(
            "copying the store at {} into {target}",
            config.store.path.display()
        );
        copy::copy(&from, &to, |(kind, n)| println!("{kind}: {n}"))
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    match result {
        Ok(_) => {
            eprintln!("done: point store.backend = \"postgres\" and store.url at {target}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailgate: store copy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

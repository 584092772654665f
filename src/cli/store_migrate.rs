//! `mailgate store migrate`: connects to the PostgreSQL store named by the configuration
//! and brings its schema up to this binary's version, under the store's advisory lock,
//! so it is safe beside nodes that migrate at start. Talks to the database directly:
//! there is no server to ask.

use std::process::ExitCode;

use crate::config::StoreBackend;
use crate::store::postgres::Postgres;

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

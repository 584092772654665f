//! `mailgate check`: configuration, keys and templates, and with the PostgreSQL backend
//! the database itself (reachable, the login accepted, the schema not newer than this
//! binary), every problem printed.

use std::process::ExitCode;

use crate::config::{Config, StoreBackend};
use crate::store::postgres::{Postgres, SCHEMA_VERSION};

use super::Cli;

pub async fn run(cli: &Cli) -> ExitCode {
    let sources = super::config_sources(cli);
    let path = sources.resolve_path();
    match Config::load(&sources) {
        Ok(config) => {
            let mut findings = crate::checks::run(&config);
            if let StoreBackend::Postgres(settings) = &config.store.backend {
                match database_problem(settings).await {
                    Ok(Some(warning)) => findings.warnings.push(warning),
                    Ok(None) => {}
                    Err(problem) => findings.problems.push(problem),
                }
            }
            for w in findings
                .warnings
                .iter()
                .chain(app_url_warning(&config).iter())
            {
                println!("warning: {w}");
            }
            if findings.problems.is_empty() {
                println!(
                    "{}: configuration, keys and templates are fine",
                    path.display()
                );
                ExitCode::SUCCESS
            } else {
                println!(
                    "{} problem(s) found for {}:",
                    findings.problems.len(),
                    path.display()
                );
                for p in &findings.problems {
                    println!("  - {p}");
                }
                ExitCode::FAILURE
            }
        }
        Err(errors) => {
            print!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to the shared store as a node would: a refused connection, a wrong
/// password or a missing database is a problem naming `store.url` (password redacted);
/// a schema older than this binary is a warning (a node migrates it at start).
async fn database_problem(
    settings: &crate::store::postgres::PostgresSettings,
) -> Result<Option<String>, String> {
    let pg = Postgres::connect(settings)
        .await
        .map_err(|e| e.to_string())?;
    let version = pg.schema_version().await.map_err(|e| e.to_string())?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "store.url = {}: the database's schema is version {version}, newer than this \
             mailgate knows ({SCHEMA_VERSION}); upgrade mailgate",
            pg.url()
        ));
    }
    Ok((version < SCHEMA_VERSION).then(|| {
        format!(
            "store.url = {}: schema version {version}, this mailgate brings it to \
             {SCHEMA_VERSION} at start (or run `mailgate store migrate`)",
            pg.url()
        )
    }))
}

/// `flows.app_url` at mailgate's own `server.public_url`: the done page's "Go to sign
/// in" would lead to a page mailgate does not have (issue 18).
fn app_url_warning(config: &Config) -> Option<String> {
    let app = config.flows.app_url.trim_end_matches('/');
    let own = config.server.public_url.trim_end_matches('/');
    let inside = app == own
        || app
            .strip_prefix(own)
            .is_some_and(|rest| rest.starts_with('/'));
    (!app.is_empty() && inside).then(|| {
        format!(
            "flows.app_url ({app}) is mailgate's own server.public_url: the done page's \
             sign-in link would lead nowhere; set your application's sign-in page, or \
             leave it unset and the done page says the page can be closed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    fn config(flows: &str) -> Config {
        let text = format!("[server]\npublic_url = \"https://mail.example.jp\"\n[flows]\n{flows}");
        Config::from_toml_str(&text, &ConfigSources::default()).unwrap()
    }

    #[test]
    fn an_app_url_at_mailgates_own_address_is_warned_about() {
        assert!(app_url_warning(&config("app_url = \"https://mail.example.jp/\"\n")).is_some());
        assert!(
            app_url_warning(&config("app_url = \"https://mail.example.jp/login\"\n")).is_some()
        );
        assert!(
            app_url_warning(&config("app_url = \"https://mail.example.jp.evil/\"\n")).is_none()
        );
        assert!(app_url_warning(&config("app_url = \"https://app.example.jp/login\"\n")).is_none());
        assert!(app_url_warning(&config("")).is_none());
    }
}

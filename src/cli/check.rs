//! `mailgate check`: configuration, keys and templates, every problem printed.

use std::process::ExitCode;

use crate::config::Config;

use super::Cli;

pub fn run(cli: &Cli) -> ExitCode {
    let sources = super::config_sources(cli);
    let path = sources.resolve_path();
    match Config::load(&sources) {
        Ok(config) => {
            let findings = crate::checks::run(&config);
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

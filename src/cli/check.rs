//! `mailgate check`: configuration, key files and templates, every problem printed.

use std::process::ExitCode;

use crate::config::{Config, ConfigSources};

use super::Cli;

pub fn run(cli: &Cli) -> ExitCode {
    let mut overrides = cli.overrides.clone();
    if cli.log_json {
        overrides.push("log.format=\"json\"".into());
    }
    let sources = ConfigSources::from_process(cli.config.clone(), overrides);
    let path = sources.resolve_path();
    match Config::load(&sources) {
        Ok(config) => {
            let problems = crate::checks::run(&config);
            if problems.is_empty() {
                println!(
                    "{}: configuration, keys and templates are fine",
                    path.display()
                );
                ExitCode::SUCCESS
            } else {
                println!(
                    "{} problem(s) found for {}:",
                    problems.len(),
                    path.display()
                );
                for p in &problems {
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

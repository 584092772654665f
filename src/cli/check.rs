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
            for w in &findings.warnings {
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

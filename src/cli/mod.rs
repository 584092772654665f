//! The command line (clap). Each subcommand parses its flags here and calls into the
//! library; output formatting for people (tables) and machines (`--json`) lives here too.

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigSources, LogFormat};

/// mailgate: the mail that must arrive (account setup and password reset).
#[derive(Debug, Parser)]
#[command(name = "mailgate", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file (else MAILGATE_CONFIG, else config/mailgate.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Override one configuration key, e.g. --set delivery.mode=relay (repeatable;
    /// wins over the file and MAILGATE__ variables).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Write logs as JSON lines (same as log.format = "json").
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web pages, the API, the queue workers and the bounce listener.
    Serve,
    /// Check the configuration, keys and templates; print every problem.
    Check,
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Check => return check::run(&cli),
        Command::Serve => match load_config(&cli) {
            Ok(config) => crate::app::serve(config).await,
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration and starts logging; on failure prints every problem.
pub fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    let mut overrides = cli.overrides.clone();
    if cli.log_json {
        overrides.push("log.format=\"json\"".into());
    }
    match Config::load(&ConfigSources::from_process(cli.config.clone(), overrides)) {
        Ok(config) => {
            crate::logging::init(config.log.format, &config.log.level);
            Ok(config)
        }
        Err(errors) => {
            crate::logging::init(LogFormat::Text, "warn");
            eprint!("mailgate: {errors}");
            Err(ExitCode::from(2))
        }
    }
}

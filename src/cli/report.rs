//! `mailgate bounces` and `mailgate suppression`: the admin's answers on the terminal.

use std::process::ExitCode;

use serde_json::Value;

use crate::control::Request;
use crate::domain::bounce::{BounceRecord, Suppression};
use crate::domain::{format_time_ms, now_ms};
use crate::report::{bounce_row, bounces_csv};

use super::Cli;

/// Parses `--since` (`7d`, `24h`) into a start time.
pub fn since_ms(since: &str) -> Result<u64, crate::domain::duration::DurationError> {
    crate::domain::duration::period_start(since, now_ms())
}

pub async fn bounces(cli: &Cli, since: &str, format: &str) -> ExitCode {
    let since_ms = match since_ms(since) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailgate: --since: {e}");
            return ExitCode::from(2);
        }
    };
    if !["table", "csv", "json"].contains(&format) {
        eprintln!("mailgate: --format must be table, csv or json");
        return ExitCode::from(2);
    }
    let format = format.to_string();
    super::store_commands::run(cli, Request::Bounces { since_ms }, move |v: Value| {
        let list: Vec<BounceRecord> = serde_json::from_value(v).unwrap_or_default();
        match format.as_str() {
            "json" => println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            ),
            "csv" => print!("{}", bounces_csv(&list)),
            _ => {
                if list.is_empty() {
                    println!("no bounces since {}", format_time_ms(since_ms));
                }
                for b in &list {
                    let r = bounce_row(b);
                    println!(
                        "{}  {:<32} {:<14} {:<6} {}{}",
                        r[0],
                        r[1],
                        r[3],
                        r[4],
                        if b.sender_problem {
                            "[sender problem] "
                        } else {
                            ""
                        },
                        r[9]
                    );
                }
            }
        }
    })
    .await
}

pub fn print_suppressions(v: Value) {
    let list: Vec<Suppression> = serde_json::from_value(v).unwrap_or_default();
    if list.is_empty() {
        println!("the suppression list is empty");
    }
    for s in list {
        println!(
            "{:<40} since {}  {}  {}",
            s.address,
            format_time_ms(s.since_ms),
            s.reason,
            s.evidence
        );
    }
}

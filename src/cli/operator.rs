//! `mailgate operator add NAME --role admin|support`: the password is read from the
//! terminal (twice, without echo) or, when standard input is not a terminal, as one
//! line from it; never from an argument, where `ps` and shell history would keep it.
//! It is hashed here, so only the argon2id hash reaches the store or the server.
//! `operator passwd NAME` reads and hashes the same way; `operator list` and
//! `apikey list` print what the store keeps (never a hash or a key).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use crate::apikey::ApiKeyRow;
use crate::control::Request;
use crate::domain::format_time_ms;
use crate::operators::{OperatorRow, Role, hash_password};

use super::Cli;

pub async fn add(cli: &Cli, name: &str, role: &str) -> ExitCode {
    if let Err(e) = crate::operators::validate_name(name) {
        eprintln!("mailgate: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = role.parse::<Role>() {
        eprintln!("mailgate: --role: {e}");
        return ExitCode::from(2);
    }
    let hash = match read_and_hash(name).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    let request = Request::OperatorAdd {
        name: name.to_string(),
        role: role.to_string(),
        password_hash: hash,
        who: super::operator_name(),
    };
    super::store_commands::run(cli, request, |v| {
        println!("{}", v.as_str().unwrap_or(""));
    })
    .await
}

/// `mailgate operator passwd NAME`: a new password, read as `add` reads it.
pub async fn passwd(cli: &Cli, name: &str) -> ExitCode {
    if let Err(e) = crate::operators::validate_name(name) {
        eprintln!("mailgate: {e}");
        return ExitCode::from(2);
    }
    let hash = match read_and_hash(name).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    let request = Request::OperatorPasswd {
        name: name.to_string(),
        password_hash: hash,
        who: super::operator_name(),
    };
    super::store_commands::run(cli, request, |v| {
        println!("{}", v.as_str().unwrap_or(""));
    })
    .await
}

/// Reads the password and hashes it on a blocking thread; errors are printed.
async fn read_and_hash(name: &str) -> Result<String, ExitCode> {
    let password = read_password(name).map_err(|e| {
        eprintln!("mailgate: {e}");
        ExitCode::from(2)
    })?;
    match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => {
            eprintln!("mailgate: {e}");
            Err(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("mailgate: hashing failed: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Prints `mailgate operator list`.
pub fn print_list(v: serde_json::Value) {
    let rows: Vec<OperatorRow> = serde_json::from_value(v).unwrap_or_default();
    if rows.is_empty() {
        println!("no operators (add one with mailgate operator add NAME --role admin)");
        return;
    }
    println!(
        "{:<24}  {:<8}  {:<8}  {:>8}  created (UTC)",
        "name", "role", "state", "sessions"
    );
    for r in rows {
        println!(
            "{:<24}  {:<8}  {:<8}  {:>8}  {}",
            r.name,
            r.role.as_str(),
            if r.disabled { "disabled" } else { "enabled" },
            r.sessions,
            format_time_ms(r.created_ms)
        );
    }
}

/// Prints `mailgate apikey list`.
pub fn print_keys(v: serde_json::Value) {
    let rows: Vec<ApiKeyRow> = serde_json::from_value(v).unwrap_or_default();
    if rows.is_empty() {
        println!("no API keys (create one with mailgate apikey create NAME)");
        return;
    }
    println!(
        "{:<24}  {:<8}  {:<20}  revoked (UTC)",
        "name", "id", "created (UTC)"
    );
    for r in rows {
        println!(
            "{:<24}  {:<8}  {:<20}  {}",
            r.name,
            r.id,
            format_time_ms(r.created_ms),
            r.revoked_ms
                .map(format_time_ms)
                .unwrap_or_else(|| "-".into())
        );
    }
}

/// The password from the terminal (asked twice) or from one line of standard input.
fn read_password(name: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err("no password on standard input (give it as one line)".into());
        }
        return Ok(p);
    }
    let first = prompt(&format!("Password for {name}: "))?;
    let second = prompt("Again: ")?;
    if first != second {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(first)
}

/// Asks on the terminal and reads a line with echo turned off (`rpassword`).
fn prompt(text: &str) -> Result<String, String> {
    rpassword::prompt_password(text).map_err(|e| format!("cannot read the password: {e}"))
}

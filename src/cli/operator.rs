//! `mailgate operator add NAME --role admin|support`: the password is read from the
//! terminal (twice, without echo) or, when standard input is not a terminal, as one
//! line from it; never from an argument, where `ps` and shell history would keep it.
//! It is hashed here, so only the argon2id hash reaches the store or the server.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use crate::control::Request;
use crate::operators::{Role, hash_password};

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
    let password = match read_password(name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::from(2);
        }
    };
    let hash = match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            eprintln!("mailgate: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("mailgate: hashing failed: {e}");
            return ExitCode::FAILURE;
        }
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

//! `mailgate operator add NAME --role admin|support`: the password is read from the
//! terminal (twice, without echo) or, when standard input is not a terminal, as one
//! line from it; never from an argument, where `ps` and shell history would keep it.
//! It is hashed here, so only the argon2id hash reaches the store or the server.

use std::io::{BufRead, IsTerminal, Write};
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

/// Asks on standard error and reads a line with echo turned off.
fn prompt(text: &str) -> Result<String, String> {
    let mut err = std::io::stderr();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    let fd = 0;
    // SAFETY: termios is a plain C struct; tcgetattr fills it, and we restore the saved
    // settings before returning.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_tty {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

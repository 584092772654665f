//! `mailgate outbox show ADDRESS`: the newest mail to an address in the outbox, its text
//! part on standard output, so a developer following the journey can open the link
//! without a mail program. Outbox mode only: in relay or mx mode there is no local copy,
//! and the command says so. The text holds a live link or code, so it goes to standard
//! output only, never to a log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use crate::config::DeliveryMode;

use super::{Cli, load_config};

/// Prints the newest outbox mail to `address`: its subject, date, file and text part.
pub fn show(cli: &Cli, address: &str) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if config.delivery.mode != DeliveryMode::Outbox {
        eprintln!(
            "mailgate: outbox show works in outbox mode only (delivery.mode is not \"outbox\"): \
             mail was sent, not written to a folder; see `mailgate log {address}`"
        );
        return ExitCode::FAILURE;
    }
    let dir = &config.delivery.outbox_dir;
    let wanted = address.trim().to_lowercase();
    let newest = eml_files(dir)
        .into_iter()
        .filter_map(|(path, modified)| {
            let raw = std::fs::read(&path).ok()?;
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let to_it = m
                .to()?
                .iter()
                .any(|a| a.address().is_some_and(|x| x.to_lowercase() == wanted));
            to_it.then(|| {
                let shown = format!(
                    "Subject: {}\nDate: {}\nFile: {}\n\n{}",
                    m.subject().unwrap_or_default(),
                    m.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
                    path.display(),
                    m.body_text(0).unwrap_or_default().trim_end()
                );
                (modified, shown)
            })
        })
        .max_by_key(|(modified, _)| *modified);
    match newest {
        Some((_, shown)) => {
            println!("{shown}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("mailgate: no mail to {address} in {}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The finished `.eml` files of the outbox (not the hidden files being written), with
/// when each was written.
fn eml_files(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "eml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| {
            let modified = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((p, modified))
        })
        .collect()
}

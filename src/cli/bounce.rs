//! `mailgate bounce parse`: what a bounce says, without config or store.

use std::path::PathBuf;
use std::process::ExitCode;

/// Parses each file and prints one line per file (JSON with `--json`).
pub fn parse(files: &[PathBuf], json: bool) -> ExitCode {
    let mut failed = false;
    for f in files {
        let raw = match std::fs::read(f) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailgate: cannot read {}: {e}", f.display());
                failed = true;
                continue;
            }
        };
        let report = crate::bounce::parse(&raw);
        let name = f.display().to_string();
        if json {
            println!("{}", report.to_json_line(&name));
            continue;
        }
        if report.recipients.is_empty() {
            println!("{name}: not a bounce");
            continue;
        }
        let kind = report
            .kind
            .map(|k| format!("{k:?}").to_lowercase())
            .unwrap_or_else(|| "?".into());
        for r in &report.recipients {
            println!(
                "{name}: {kind} {} {:?} status={} reason={} {}{}",
                r.address,
                r.action,
                r.status.as_deref().unwrap_or("-"),
                r.reason.as_deref().unwrap_or("-"),
                if r.permanent {
                    "permanent"
                } else {
                    "temporary"
                },
                r.diagnostic
                    .as_deref()
                    .map(|d| format!(" \"{d}\""))
                    .unwrap_or_default()
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

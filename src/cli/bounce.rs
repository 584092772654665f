//! `mailgate bounce parse`: what a bounce says, without config or store.

use std::path::PathBuf;
use std::process::ExitCode;

/// Parses each file (each message of an mbox file) and prints what it says: a line per
/// recipient, or one JSON object per message with `--json`.
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
        // A mailbox file (mbox, several messages each opened by a `From ` line) gives one
        // result per message, named `FILE#N`; a single message keeps the file's name.
        let messages = crate::bounce::mbox::messages(&raw);
        let several = messages.len() > 1;
        for (i, message) in messages.into_iter().enumerate() {
            let name = match several {
                true => format!("{}#{}", f.display(), i + 1),
                false => f.display().to_string(),
            };
            show(&name, &crate::bounce::parse(message), json);
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One parsed message, as `bounce parse` prints it: a JSON line, or a line per recipient.
fn show(name: &str, report: &crate::bounce::BounceReport, json: bool) {
    if json {
        println!("{}", report.to_json_line(name));
        return;
    }
    if let Some(why) = &report.not_mail {
        println!("{name}: not a bounce ({why})");
        return;
    }
    if report.recipients.is_empty() {
        println!("{name}: not a bounce");
        return;
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

/// `mailgate bounce ingest FILE...|-`: each file is taken in on its own; a bad one is
/// reported and the rest proceed.
pub async fn ingest(cli: &super::Cli, files: &[PathBuf]) -> ExitCode {
    use base64::Engine;
    use std::io::Read;
    let config = match super::load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let backend = match crate::control::Backend::connect(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    super::note_server_config(cli, &backend);
    let mut failed = 0;
    for f in files {
        let name = f.display().to_string();
        let raw = if name == "-" {
            let mut v = Vec::new();
            std::io::stdin().read_to_end(&mut v).map(|_| v)
        } else {
            std::fs::read(f)
        };
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailgate: {name}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let request = crate::control::Request::BounceIngest {
            name: name.clone(),
            raw_base64: base64::engine::general_purpose::STANDARD.encode(&raw),
        };
        match backend.call(request).await {
            Ok(v) => {
                let effects: Vec<String> =
                    serde_json::from_value(v["effects"].clone()).unwrap_or_default();
                println!(
                    "{name}: {} {}; {}",
                    if v["bounce"].as_bool() == Some(true) {
                        "bounce"
                    } else {
                        "not a bounce"
                    },
                    v["message_id"]
                        .as_str()
                        .map(|m| format!("for message {m}"))
                        .unwrap_or_else(|| "tied to no message".into()),
                    effects.join("; ")
                );
            }
            Err(e) => {
                eprintln!("mailgate: {name}: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

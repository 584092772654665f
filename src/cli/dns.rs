//! `mailgate dns`: the records to publish, and `--check` against what DNS answers.

use std::process::ExitCode;

use crate::dkim::Signers;

use super::Cli;

/// `mailgate dns [--check] [--json] [--nameserver IP[:PORT]]...`.
pub async fn dns(cli: &Cli, check: bool, json: bool, nameservers: &[String]) -> ExitCode {
    let mut config = match super::load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !nameservers.is_empty() {
        let mut parsed = Vec::new();
        for v in nameservers {
            match crate::config::parse_nameserver(v) {
                Some(a) => parsed.push(a),
                None => {
                    eprintln!(
                        "mailgate: --nameserver {v:?} is not an IP address, with an optional port, such as 127.0.0.1:5353"
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        config.dns.nameservers = parsed;
    }
    let keys = match crate::services::signing_keys(&config, false) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if keys.is_empty() {
        eprintln!(
            "mailgate: no DKIM key yet: configure [[dkim]] (see `mailgate dkim keygen`) or start `serve` once to make a development key"
        );
    }
    let signers = match Signers::load(&keys) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("mailgate: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let records = crate::dns::records(&config, &signers);
    if check {
        let results = match crate::dns::check(&config, &records).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mailgate: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&results).unwrap_or_default()
            );
        } else {
            for r in &results {
                println!(
                    "{} {:<4} {:<45} {}",
                    if r.ok { "ok  " } else { "FAIL" },
                    r.kind,
                    r.name,
                    r.message
                );
                for f in &r.found {
                    println!("       found: {f}");
                }
                if !r.ok {
                    println!("       expected: {}", r.expected);
                    println!("       a receiver: {}", r.receiver);
                }
            }
        }
        return if results.iter().all(|r| r.ok) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
    } else {
        for w in crate::dns::alignment_warnings(&config, &keys) {
            println!("; warning: {w}");
        }
        for r in &records {
            println!("; {}", r.purpose);
            println!("{}\n", r.zone_line());
        }
    }
    ExitCode::SUCCESS
}

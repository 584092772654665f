//! Commands that need the store: they run through [`Backend`], so they work the same
//! with `serve` running (over its socket) or not (opening the store).

use std::process::ExitCode;

use serde_json::Value;

use crate::control::{Backend, Request};
use crate::domain::format_time_ms;
use crate::queue::control::QueueRow;
use crate::timeline::LogView;

use super::{Cli, load_config};

/// Runs one request and prints its answer with `print`.
pub async fn run(cli: &Cli, request: Request, print: impl FnOnce(Value)) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let backend = match Backend::connect(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    super::note_server_config(cli, &backend);
    match backend.call(request).await {
        Ok(v) => {
            print(v);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `mailgate queue list`.
pub fn print_queue(v: Value) {
    let rows: Vec<QueueRow> = serde_json::from_value(v).unwrap_or_default();
    if rows.is_empty() {
        println!("the queue is empty");
        return;
    }
    println!(
        "{:<32}  {:<9}  {:>3}  {:<20}  {:<30}  last reply",
        "id", "status", "try", "next try (UTC)", "to"
    );
    for r in rows {
        println!(
            "{:<32}  {:<9}  {:>3}  {:<20}  {:<30}  {}",
            r.id,
            r.status,
            r.attempts,
            format_time_ms(r.next_try_ms),
            r.to,
            r.last_reply.unwrap_or_default()
        );
    }
}

/// Prints `mailgate queue status`: idle, or what keeps the worker busy.
pub fn print_queue_status(v: Value, json: bool) {
    if json {
        println!("{v}");
        return;
    }
    let Ok(a) = serde_json::from_value::<crate::queue::Activity>(v) else {
        println!("the queue's status could not be read");
        return;
    };
    if a.is_idle() {
        match a.next_due_ms {
            Some(at) => println!("idle; the next message is due at {}", format_time_ms(at)),
            None => println!("idle; the queue is empty"),
        }
    } else {
        println!(
            "busy: {} message(s) being sent{}",
            a.in_flight,
            if a.due_now { ", more due now" } else { "" }
        );
    }
}

/// Prints `mailgate log` as a readable timeline, or the addresses a domain or prefix
/// matched, or the "did you mean" addresses when an address had no mail.
pub fn print_log(v: Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let Ok(view) = serde_json::from_value::<LogView>(v) else {
        println!("(unreadable answer)");
        return;
    };
    if let Some(kind) = view.pattern {
        let what = match kind {
            crate::timeline::PatternKind::Domain => format!("at {}", &view.query[1..]),
            crate::timeline::PatternKind::Prefix => format!("beginning with {:?}", view.query),
        };
        match (view.matches.len(), view.more_matches) {
            (0, _) => println!("no mail was sent to any address {what}"),
            (n, false) => println!("{n} address(es) {what} had mail:"),
            (n, true) => {
                println!("the first {n} addresses {what} that had mail (type more to narrow):")
            }
        }
        for a in &view.matches {
            println!("  {a}");
        }
        return;
    }
    if view.messages.is_empty() {
        println!("no mail was ever requested for {}", view.query);
        if !view.did_you_mean.is_empty() {
            println!("did you mean:");
            for a in &view.did_you_mean {
                println!("  {a}");
            }
        }
        return;
    }
    for m in view.messages {
        println!(
            "message {}  to {}  [{}]  {} ({}, {})",
            m.message_id, m.to, m.status, m.subject, m.template, m.locale
        );
        println!(
            "  Message-ID: <{}>  expires {}",
            m.message_id_header,
            format_time_ms(m.expires_ms)
        );
        for e in &m.events {
            let mut line = format!(
                "  {}  {:<15}",
                format_time_ms(e.at_ms),
                e.step.map(|s| s.as_str()).unwrap_or("?")
            );
            if let Some(a) = e.attempt {
                line.push_str(&format!(" try {a}"));
            }
            if let Some(h) = &e.remote_host {
                line.push_str(&format!(" {h}"));
                if let Some(ip) = &e.remote_ip {
                    line.push_str(&format!(" [{ip}]"));
                }
            }
            if let Some(t) = &e.tls {
                line.push_str(&format!(" {t}"));
            }
            if let Some(r) = &e.reply {
                line.push_str(&format!(" \"{r}\""));
            }
            if let Some(d) = &e.detail {
                line.push_str(&format!(" ({d})"));
            }
            println!("{line}");
        }
        println!();
    }
}

/// Prints `store stats`: a line per kind, or the JSON.
pub fn print_store_stats(v: Value, json: bool) {
    if json {
        println!("{v}");
        return;
    }
    let Ok(s) = serde_json::from_value::<crate::store::Stats>(v) else {
        eprintln!(
            "mailgate: the server answered store stats in a form this mailgate does not know"
        );
        return;
    };
    let joined = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!("store: {}", s.location);
    println!(
        "messages: {} ({})",
        s.messages.values().sum::<u64>(),
        joined(&s.messages)
    );
    println!(
        "flows: {} ({})",
        s.flows.values().sum::<u64>(),
        joined(&s.flows)
    );
    println!("bounces kept: {}", s.bounces);
    println!("suppressed addresses: {}", s.suppressed);
    println!("events: {}", s.events);
    if let Some(bytes) = s.size_bytes {
        println!("on disk: {:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
    }
}

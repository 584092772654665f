//! `mailgate webhooks`: list the endpoints, test one, replay an event, enable one again.
//! `test` posts from this process with the entry's secret (no store needed); the others
//! go through the store, as every store command does.

use std::process::ExitCode;

use serde_json::Value;

use crate::control::Request;
use crate::domain::format_time_ms;
use crate::webhooks::{Answer, Endpoint, EndpointStatus, shown_url};

use super::{Cli, WebhooksCommand, load_config, operator_name, store_commands};

pub async fn run(cli: &Cli, command: &WebhooksCommand) -> ExitCode {
    let said = |v: Value| println!("{}", v.as_str().unwrap_or(""));
    match command {
        WebhooksCommand::List { json } => {
            let json = *json;
            store_commands::run(cli, Request::WebhooksList, move |v| print_list(v, json)).await
        }
        WebhooksCommand::Replay { event_id } => {
            let request = Request::WebhookReplay {
                event_id: event_id.clone(),
                who: operator_name(),
            };
            store_commands::run(cli, request, said).await
        }
        WebhooksCommand::Enable { url } => {
            let request = Request::WebhookEnable {
                url: url.clone(),
                who: operator_name(),
            };
            store_commands::run(cli, request, said).await
        }
        WebhooksCommand::Secret => {
            println!("{}", crate::webhooks::Secret::generate());
            ExitCode::SUCCESS
        }
        WebhooksCommand::Test { url } => test(cli, url).await,
    }
}

async fn test(cli: &Cli, url: &str) -> ExitCode {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(entry) = config.webhooks.iter().find(|w| w.url == url) else {
        eprintln!(
            "mailgate: {} is not a [[webhooks]] url of {} (its secret signs the test)",
            shown_url(url),
            config
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the configuration".into())
        );
        return ExitCode::FAILURE;
    };
    let endpoint = match Endpoint::load(entry) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let now = crate::domain::now_ms();
    let id = format!("evt_test_{}", crate::secrets::random_hex::<8>());
    match endpoint
        .post(
            &id,
            (now / 1000) as i64,
            crate::webhooks::test_body(&id, now),
        )
        .await
    {
        Answer::Delivered(status) => {
            println!("{}: answered {status}: delivered", shown_url(url));
            ExitCode::SUCCESS
        }
        Answer::Gone => {
            println!(
                "{}: answered 410 Gone: mailgate would disable this endpoint",
                shown_url(url)
            );
            ExitCode::FAILURE
        }
        Answer::Failed { error, .. } => {
            println!("{}: not delivered: {error}", shown_url(url));
            ExitCode::FAILURE
        }
    }
}

fn print_list(v: Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let list: Vec<EndpointStatus> = serde_json::from_value(v).unwrap_or_default();
    if list.is_empty() {
        println!("no [[webhooks]] endpoints are configured");
    }
    for e in list {
        let events = if e.events.is_empty() {
            "all events".to_string()
        } else {
            e.events.join(", ")
        };
        let state = match &e.disabled {
            Some(d) => format!("DISABLED ({})", d.why),
            None => "enabled".into(),
        };
        println!("{}  {state}  {events}", shown_url(&e.url));
        for d in e.recent {
            println!(
                "  {:<28} {:<20} {:<9} tries {:>2}  answer {:<4} next {}  {}",
                d.event_id,
                d.event_type.as_str(),
                d.state.as_str(),
                d.attempts,
                d.last_status.map(|s| s.to_string()).unwrap_or("-".into()),
                d.next_try_ms.map(format_time_ms).unwrap_or("-".into()),
                d.last_error.unwrap_or_default()
            );
        }
    }
}

//! `/admin/webhooks`: each `[[webhooks]]` endpoint, enabled or disabled by a 410, with
//! its recent deliveries (state, answer code, next try, error) and a replay button per
//! event; a disabled endpoint has an enable button. The same functions as `mailgate
//! webhooks list | replay | enable` do the work.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::admin::admin_tz;
use super::sentence::stamp;
use super::session::ConsoleUser;
use super::{ConsoleError, pages};
use crate::domain::now_ms;
use crate::operators::Role;
use crate::services::Services;
use crate::webhooks::shown_url;

/// Deliveries shown per endpoint.
const RECENT: usize = 20;

async fn page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tz = admin_tz(services);
    let status =
        crate::webhooks::status(&services.store, &services.config.webhooks, RECENT).await?;
    let endpoints: Vec<_> = status
        .into_iter()
        .map(|e| {
            let rows: Vec<_> = e
                .recent
                .iter()
                .map(|d| {
                    json!({
                        "event_id": d.event_id,
                        "event_type": d.event_type.as_str(),
                        "state": d.state.as_str(),
                        "attempts": d.attempts,
                        "answer": d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                        "next_try": d.next_try_ms.map(|t| stamp(t, tz)).unwrap_or_else(|| "-".into()),
                        "error": d.last_error.clone().unwrap_or_default(),
                    })
                })
                .collect();
            json!({
                "url": e.url,
                "shown_url": shown_url(&e.url),
                "events": if e.events.is_empty() { "all events".to_string() } else { e.events.join(", ") },
                "disabled": e.disabled.map(|d| d.why).unwrap_or_default(),
                "rows": rows,
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "webhooks",
        &pages::for_user(
            user,
            "Webhooks",
            json!({"endpoints": endpoints, "flash": flash}),
        ),
    )))
}

/// `GET /admin/webhooks`.
pub async fn list(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    event_id: String,
}

/// `POST /admin/webhooks/replay`: sends the event again to every endpoint that wants it.
pub async fn replay(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<ReplayForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let id = form.event_id.trim();
    let flash =
        match crate::webhooks::replay(&services.store, &services.config.webhooks, id, now_ms())
            .await?
        {
            Some(to) if !to.is_empty() => {
                crate::audit::record(&services.store, &user.who(), "webhook replay", id).await?;
                services.store.flush().await?;
                format!("Event {id} queued again.")
            }
            Some(_) => format!("No endpoint wants event {id}'s type: nothing queued."),
            None => format!("There is no event {id}."),
        };
    page(&services, &user, Some(flash)).await
}

#[derive(Debug, Deserialize)]
pub struct EnableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
}

/// `POST /admin/webhooks/enable`: an endpoint disabled by a 410 gets events again.
pub async fn enable(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<EnableForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let flash = if !services.config.webhooks.iter().any(|w| w.url == form.url) {
        "That endpoint is not configured.".to_string()
    } else if crate::webhooks::enable(&services.store, &form.url).await? {
        crate::audit::record(
            &services.store,
            &user.who(),
            "webhook enable",
            shown_url(&form.url),
        )
        .await?;
        services.store.flush().await?;
        format!(
            "{} enabled: it gets the events from now on.",
            shown_url(&form.url)
        )
    } else {
        format!("{} was not disabled.", shown_url(&form.url))
    };
    page(&services, &user, Some(flash)).await
}

//! `/admin/webhooks`: each `[[webhooks]]` endpoint, enabled or disabled by a 410, with
//! its recent deliveries (state, answer code, next try, error) and a replay button per
//! event; a disabled endpoint has an enable button. The same functions as `mailgate
//! webhooks list | replay | enable` do the work.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::sentence::{Lang, stamp};
use super::session::ConsoleUser;
use super::text;
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
    let tz = user.tz;
    let ja = user.lang == Lang::Ja;
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
                        "state": text::delivery_state(user.lang, d.state),
                        "attempts": d.attempts,
                        "answer": d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                        "next_try": d.next_try_ms.map(|t| stamp(t, tz)).unwrap_or_else(|| "-".into()),
                        "error": d.last_error.as_deref().map(|e| text::detail(user.lang, tz, e)).unwrap_or_default(),
                    })
                })
                .collect();
            json!({
                "url": e.url,
                "shown_url": shown_url(&e.url),
                "events": match (e.events.is_empty(), ja) {
                    (true, true) => "すべてのイベント".to_string(),
                    (true, false) => "all events".to_string(),
                    (false, _) => e.events.join(", "),
                },
                "disabled": e.disabled.map(|d| text::detail(user.lang, tz, &d.why)).unwrap_or_default(),
                "rows": rows,
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "webhooks",
        &pages::for_user(
            user,
            "webhooks",
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
    let ja = user.lang == Lang::Ja;
    let shown = shown_url(&form.url);
    let flash = if !services.config.webhooks.iter().any(|w| w.url == form.url) {
        if ja {
            "その送信先は設定にありません。".to_string()
        } else {
            "That endpoint is not configured.".to_string()
        }
    } else if crate::webhooks::enable(&services.store, &form.url).await? {
        crate::audit::record(&services.store, &user.who(), "webhook enable", shown).await?;
        services.store.flush().await?;
        if ja {
            format!("{shown} を有効に戻しました。これからのイベントを送ります。")
        } else {
            format!("{shown} enabled: it gets the events from now on.")
        }
    } else if ja {
        format!("{shown} は停止していません。")
    } else {
        format!("{shown} was not disabled.")
    };
    page(&services, &user, Some(flash)).await
}

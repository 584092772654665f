//! `/admin`: the bounce report for a chosen period (counts by reason, recipient domain
//! and day; undeliverable flows; an alert when receivers refuse the sender, with their
//! replies as evidence; every bounce, and its CSV), the queue (retry, cancel) and the
//! suppression list (remove, with a reason). The list and the CSV are built by the same
//! functions as `mailgate bounces`, so they hold the same rows for the same period.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::sentence::{Lang, stamp};
use super::session::ConsoleUser;
use super::{ConsoleError, pages};
use crate::domain::bounce::BounceRecord;
use crate::domain::now_ms;
use crate::operators::Role;
use crate::report::{BOUNCE_COLUMNS, bounce_row, bounces_csv};
use crate::services::Services;

/// The periods offered in the report's menu.
const PERIODS: [(&str, &str); 4] = [
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
];

#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    since: Option<String>,
}

/// The admin's time zone: that of the default locale.
pub(super) fn admin_tz(services: &Services) -> chrono_tz::Tz {
    match Lang::parse(&services.config.flows.default_locale) {
        Lang::Ja => services.config.flows.timezone_ja,
        Lang::En => services.config.flows.timezone_en,
    }
}

/// The period asked for (default 7d) and the bounces in it.
async fn period(
    services: &Services,
    q: &PeriodQuery,
) -> Result<(String, u64, Vec<BounceRecord>), ConsoleError> {
    let since = q.since.clone().unwrap_or_else(|| "7d".into());
    let since_ms = crate::domain::duration::period_start(&since, now_ms())
        .map_err(|e| ConsoleError::BadRequest(format!("since: {e}")))?;
    let list = services.store.bounces_since(since_ms).await?;
    Ok((since, since_ms, list))
}

fn counts(keys: impl Iterator<Item = String>) -> Vec<Value> {
    let mut map: BTreeMap<String, u64> = BTreeMap::new();
    for k in keys {
        *map.entry(k).or_insert(0) += 1;
    }
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter()
        .map(|(key, count)| json!({"key": key, "count": count}))
        .collect()
}

/// `GET /admin?since=7d`: the bounce report.
pub async fn report(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let (since, since_ms, list) = period(&services, &q).await?;
    let tz = admin_tz(&services);
    let unknown = |s: &Option<String>| s.clone().unwrap_or_else(|| "(unknown)".into());
    let by_day = {
        let mut days = counts(list.iter().map(|b| {
            use chrono::TimeZone;
            tz.timestamp_millis_opt(b.at_ms as i64)
                .single()
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }));
        days.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        days
    };
    let sender: Vec<&BounceRecord> = list.iter().filter(|b| b.sender_problem).collect();
    let flows: Vec<Value> = list
        .iter()
        .filter(|b| b.permanent && b.flow_id.is_some())
        .map(|b| {
            json!({"flow_id": b.flow_id, "address": b.address, "reason": b.reason, "diagnostic": b.diagnostic})
        })
        .collect();
    let audit: Vec<Value> = services
        .store
        .audit_recent(50).await?
        .into_iter()
        .map(|a| json!({"time": stamp(a.at_ms, tz), "who": a.who, "action": a.action, "target": a.target}))
        .collect();
    let mut periods: Vec<Value> = PERIODS
        .iter()
        .map(|(v, l)| json!({"value": v, "label": l, "selected": *v == since}))
        .collect();
    if !PERIODS.iter().any(|(v, _)| *v == since) {
        periods.push(json!({"value": since, "label": since, "selected": true}));
    }
    let data = json!({
        "since": since,
        "since_text": stamp(since_ms, tz),
        "periods": periods,
        "total": list.len(),
        "tz": tz.name(),
        "by_reason": counts(list.iter().map(|b| unknown(&b.reason))),
        "by_domain": counts(list.iter().map(|b| unknown(&b.recipient_domain))),
        "by_day": by_day,
        "sender_alert": !sender.is_empty(),
        "sender_count": sender.len(),
        "sender_evidence": sender.iter().map(|b| json!({
            "time": stamp(b.at_ms, tz), "domain": b.recipient_domain, "reason": b.reason,
            "diagnostic": b.diagnostic,
        })).collect::<Vec<_>>(),
        "flows": flows,
        "columns": BOUNCE_COLUMNS,
        "rows": list.iter().map(bounce_row).collect::<Vec<_>>(),
        "audit": audit,
    });
    Ok(pages::respond(pages::render(
        "admin",
        &pages::for_user(&user, "Bounce report", data),
    )))
}

/// `GET /admin/bounces.csv?since=7d`: the same rows as `mailgate bounces --format csv`.
pub async fn csv(
    State(services): State<Services>,
    user: ConsoleUser,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let (since, _, list) = period(&services, &q).await?;
    crate::audit::record(
        &services.store,
        &user.who(),
        "bounces csv",
        &format!("since {since}"),
    )
    .await?;
    services.store.flush().await?;
    let filename: String = since
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"mailgate-bounces-{filename}.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bounces_csv(&list),
    )
        .into_response())
}

async fn queue_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tz = admin_tz(services);
    let rows: Vec<Value> = crate::queue::control::list(&services.queue)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "to": r.to, "status": r.status, "attempts": r.attempts,
                "next_try": stamp(r.next_try_ms, tz), "expires": stamp(r.expires_ms, tz),
                "last_reply": r.last_reply,
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "queue",
        &pages::for_user(user, "Queue", json!({"rows": rows, "flash": flash})),
    )))
}

/// `GET /admin/queue`.
pub async fn queue(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    queue_page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct IdForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

async fn queue_action(
    services: Services,
    user: ConsoleUser,
    form: IdForm,
    action: &str,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let who = user.who();
    let result = match action {
        "retry" => crate::queue::control::retry(&services.queue, &form.id, &who).await,
        _ => crate::queue::control::cancel(&services.queue, &form.id, &who).await,
    };
    let flash = match result {
        Ok(ref text) => text.clone(),
        Err(e) if e.is_store() => {
            return Err(ConsoleError::Unavailable(Box::new(e)));
        }
        Err(ref e) => format!("Nothing done: {e}"),
    };
    if result.is_ok() {
        crate::audit::record(&services.store, &who, &format!("queue {action}"), &form.id).await?;
    }
    services.store.flush().await?;
    queue_page(&services, &user, Some(flash)).await
}

/// `POST /admin/queue/retry`.
pub async fn queue_retry(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<IdForm>,
) -> Result<Response, ConsoleError> {
    queue_action(services, user, form, "retry").await
}

/// `POST /admin/queue/cancel`.
pub async fn queue_cancel(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<IdForm>,
) -> Result<Response, ConsoleError> {
    queue_action(services, user, form, "cancel").await
}

async fn suppression_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tz = admin_tz(services);
    let rows: Vec<Value> = services
        .store
        .suppressions().await?
        .into_iter()
        .map(|s| {
            json!({"address": s.address, "since": stamp(s.since_ms, tz), "reason": s.reason, "evidence": s.evidence})
        })
        .collect();
    Ok(pages::respond(pages::render(
        "suppression",
        &pages::for_user(
            user,
            "Suppression list",
            json!({"rows": rows, "flash": flash}),
        ),
    )))
}

/// `GET /admin/suppression`.
pub async fn suppression(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    suppression_page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/suppression/remove`: needs a reason, which the audit log keeps.
pub async fn suppression_remove(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<RemoveForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let reason = form.reason.trim();
    if reason.is_empty() {
        return suppression_page(
            &services,
            &user,
            Some("Nothing removed: say why the address may be used again.".into()),
        )
        .await;
    }
    let flash = match services
        .store
        .remove_suppression(form.address.trim(), crate::domain::now_ms())
        .await?
    {
        Some(old) => {
            crate::audit::record(
                &services.store,
                &user.who(),
                "suppression remove",
                &format!("{} (reason: {reason}; was: {})", old.address, old.reason),
            )
            .await?;
            services.store.flush().await?;
            format!("{} removed from the suppression list.", old.address)
        }
        None => format!("{} is not on the suppression list.", form.address.trim()),
    };
    suppression_page(&services, &user, Some(flash)).await
}

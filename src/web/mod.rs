//! HTTP: the router and its state. Pages, API and console live in submodules; this file
//! wires them and holds the one place that turns errors into responses.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub mod api;
pub mod console;
pub mod cookie;
pub mod flow_api;
pub mod headers;
pub mod pages;
pub mod server;

use crate::services::Services;

/// Builds the application's router.
pub fn router(services: Services) -> Router {
    let public_url = services.config.server.public_url.clone();
    let api = Router::new()
        .route("/api/v1/messages", post(api::post_message))
        .route("/api/v1/messages/{id}", get(api::get_message))
        .route("/api/v1/log", get(api::get_log))
        .route("/api/v1/events", get(api::get_events))
        .route("/api/v1/openapi.json", get(api::openapi))
        .layer(axum::extract::DefaultBodyLimit::max(api::BODY_LIMIT))
        .route(
            "/api/v1/bounces",
            post(api::post_bounce)
                .get(api::get_bounces)
                .layer(axum::extract::DefaultBodyLimit::max(api::BOUNCE_BODY_LIMIT)),
        );
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .route("/metrics", get(crate::metrics::handler))
        .merge(
            console::routes(&services.config.flows.default_locale)
                .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024)),
        )
        .with_state(services.clone())
        .merge(
            pages::router()
                .merge(flow_api::router())
                .with_state(pages::FlowWeb::new(services)),
        )
        .layer(axum::middleware::from_fn(api::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            headers::Policy::for_public_url(&public_url),
            headers::add,
        ))
        .layer(axum::middleware::from_fn(crate::metrics::track))
}

/// Readiness: 200 while the store reads and writes; 503 while it cannot (a full disk,
/// a failing device), so a balancer sends the work elsewhere. It tries a write, so it
/// turns back to 200 by itself once writes succeed again; at most one try a second,
/// shared by every caller, so hammering `/healthz` cannot make the disk work harder.
async fn healthz(State(services): State<Services>) -> impl IntoResponse {
    static LAST: tokio::sync::Mutex<Option<(std::time::Instant, bool)>> =
        tokio::sync::Mutex::const_new(None);
    let mut last = LAST.lock().await;
    let ok = match *last {
        Some((at, ok)) if at.elapsed() < std::time::Duration::from_secs(1) => ok,
        _ => {
            let ok = match write_probe(&services).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "healthz: the store cannot take writes");
                    false
                }
            };
            *last = Some((std::time::Instant::now(), ok));
            ok
        }
    };
    if ok {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
    }
}

/// The store's health probe (a read, a 4 KiB write where intake's bytes go, a
/// flush): on a full disk this fails as intake does.
async fn write_probe(services: &Services) -> anyhow::Result<()> {
    services.store.check_health().await?;
    Ok(())
}

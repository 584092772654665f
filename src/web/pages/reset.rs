//! `GET|POST /reset`: a new link asked for by address. Anyone may ask, so the answer
//! is the same, at once, whether or not the address is known: the client is counted
//! before the answer, and every per-address step (the address's limit, the lookup, the
//! mail) is left to one background worker, so the timing tells nothing either. A link
//! asked for here takes over the address's open flow only when it is used.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::domain::{Address, now_ms};
use crate::flow::{self, Flows};
use crate::store::{LimitKey, Rule, Take};

use super::render::PageName;
use super::{ClientIp, FlowWeb, HOUR_MS, LangQuery, PageResult, ResetForm, form};

/// `/reset` requests per client address (answered 429 past it: it says nothing about
/// any mail address).
pub const RESET_PER_CLIENT: Rule = Rule {
    max: 30,
    window_ms: HOUR_MS,
    lock_ms: HOUR_MS,
};
/// `/reset` links mailed per address: past it, requests are answered as always and
/// mail nobody (the answer must not depend on the address).
pub const RESET_PER_ADDRESS: Rule = Rule {
    max: 3,
    window_ms: HOUR_MS,
    lock_ms: HOUR_MS,
};
/// `/reset` requests waiting for the worker; past it they are dropped (and logged).
const RESET_BACKLOG: usize = 1024;

impl FlowWeb {
    /// Hands a `/reset` request to the one worker that does every per-address step
    /// (the address's limit, the lookup, the mail), started on first use. The page
    /// answers without waiting, so its timing is the same for known and unknown
    /// addresses; one worker, taking requests in turn, also keeps a burst of them from
    /// taking the server's cores.
    fn queue_reset(&self, address: Address, now: u64) {
        let tx = self.resets.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<(Address, u64)>(RESET_BACKLOG);
            let flows = self.services.flows.clone();
            tokio::spawn(async move {
                while let Some((address, now)) = rx.recv().await {
                    reset_in_background(&flows, address, now).await;
                }
            });
            tx
        });
        if tx.try_send((address, now)).is_err() {
            tracing::warn!("too many password-reset requests waiting; one was dropped");
        }
    }
}

/// `GET /reset`: the form asking for an address.
pub(super) async fn reset_form(
    State(web): State<FlowWeb>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> PageResult {
    let ctx = web.reset_ctx(&headers, &q);
    Ok(web
        .page(&ctx, StatusCode::OK, PageName::Reset, "request", json!({}))
        .into_response())
}

/// `POST /reset`: answers the same, at once, whether or not the address is known; the
/// lookup and any mail happen after the answer, so its timing tells nothing either.
pub(super) async fn reset_submit(
    State(web): State<FlowWeb>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<ResetForm>, FormRejection>,
) -> PageResult {
    let now = now_ms();
    let ctx = web.reset_ctx(&headers, &LangQuery::default());
    let f = form(&web, &ctx, &headers, body, |f| &f.csrf)?;
    let Ok(address) = Address::parse(&f.address) else {
        return Ok(web
            .page(
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                PageName::Reset,
                "request",
                json!({"bad_address": true}),
            )
            .into_response());
    };
    let client = LimitKey::new("reset-client", &[&ip]);
    web.take_limit(&ctx, &client, RESET_PER_CLIENT, now).await?;
    web.queue_reset(address, now);
    let vars = json!({
        "reset": true,
        "lifetime": flow::mail::span(&ctx.lang, web.services.config.flows.link_lifetime),
    });
    Ok(web
        .page(&ctx, StatusCode::OK, PageName::Sent, "sent", vars)
        .into_response())
}

/// The per-address part of `POST /reset`, after the answer: the address's limit, then a
/// new link if the address is known. Forgets expired limit windows once an hour, so
/// strangers' addresses do not grow the store.
async fn reset_in_background(flows: &Flows, address: Address, now: u64) {
    static PRUNED_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = LimitKey::new("reset-address", &[&address.to_string().to_lowercase()]);
    match flows.store.limit_take(&key, RESET_PER_ADDRESS, now).await {
        Ok(Take::Allowed { .. }) => {
            if let Err(e) = flow::request_link(flows, address, now).await {
                tracing::error!(error = %e, "cannot start a requested flow");
            }
        }
        Ok(Take::Refused { .. }) => {}
        Err(e) => tracing::error!(error = %e, "cannot count a password-reset request"),
    }
    let last = PRUNED_MS.load(std::sync::atomic::Ordering::Relaxed);
    if now.saturating_sub(last) >= HOUR_MS
        && PRUNED_MS
            .compare_exchange(
                last,
                now,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
        && let Err(e) = flows.store.limit_prune(HOUR_MS, now).await
    {
        tracing::warn!(error = %e, "cannot forget old rate-limit windows");
    }
}

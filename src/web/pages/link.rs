//! The link's own pages: the landing page a mailed link opens, its button (a code is
//! mailed and bound to this browser), the done page, and a new link for one that no
//! longer works. A GET changes nothing but a "link visited" note: mail scanners fetch
//! every link, and only a person presses the button.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::{FlowKind, FlowState, now_ms};
use crate::flow::{self, Button, machine};
use crate::store::LimitKey;

use super::render::PageName;
use super::{
    CsrfForm, FlowWeb, LangQuery, LinkRequest, PageResult, RENEW_PER_ADDRESS, cookies, form,
    see_other,
};

/// `GET /v/{token}` (and HEAD): the landing page. Changes nothing but a visit note.
pub(super) async fn landing(
    State(web): State<FlowWeb>,
    method: Method,
    mut link: LinkRequest,
) -> PageResult {
    let now = now_ms();
    let flow = link.flow(&web)?;
    if let Err(e) = flow::note_visit(&web.services.flows, &flow, method.as_str(), now).await {
        tracing::warn!(flow_id = %flow.id, error = %e, "cannot note a link visit");
    }
    let state = machine::effective_state(&flow, now);
    if !state.is_open() {
        return Err(web
            .problem(&link.ctx, &link.token, Some(&flow), state)
            .into());
    }
    Ok(web
        .landing_page(&link.ctx, &link.token, &flow, json!({}), StatusCode::OK)
        .into_response())
}

/// `POST /v/{token}`: the button. Mails a code bound to this browser; 303 to the form.
pub(super) async fn button(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let now = now_ms();
    form(&web, &link.ctx, &headers, body, |f| &f.csrf)?;
    let flow = link.open_flow(&web, now)?;
    let (ctx, token) = (&link.ctx, &link.token);
    let held = cookies::get(&headers, cookies::BIND);
    let pressed = flow::press_button(&web.services.flows, &flow.id, held.as_deref(), now)
        .await
        .map_err(|e| web.internal(ctx, &e))?;
    Ok(match pressed {
        Button::Mailed { binding } => {
            let max_age = web.services.config.flows.link_lifetime.as_secs();
            let mut set = ctx.cookies.clone();
            set.push(cookies::set(cookies::BIND, &binding, web.secure(), max_age));
            see_other(format!("/v/{token}/code"), set)
        }
        Button::Refused(flow::ButtonRefusal::TooSoon { wait_s }) => web
            .landing_page(
                ctx,
                token,
                &flow,
                json!({"too_soon": true, "wait_s": wait_s}),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .into_response(),
        Button::Refused(flow::ButtonRefusal::Closed(state)) => {
            web.problem(ctx, token, Some(&flow), state).into_response()
        }
    })
}

/// `GET /v/{token}/done`: the done page, linking to the application.
pub(super) async fn done(State(web): State<FlowWeb>, mut link: LinkRequest) -> PageResult {
    let flow = link.flow(&web)?;
    if flow.state != FlowState::Completed {
        return Ok(see_other(format!("/v/{}", link.token), link.ctx.cookies));
    }
    let vars = json!({
        "app_url": web.services.config.flows.app_url,
        "setup": flow.kind == FlowKind::Setup,
    });
    Ok(web
        .page(&link.ctx, StatusCode::OK, PageName::Done, "done", vars)
        .into_response())
}

/// `POST /v/{token}/renew`: a new link by mail, for a link that no longer works. The
/// link's holder renews from a budget of its own, which `/reset` requests do not spend.
pub(super) async fn renew(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> PageResult {
    let now = now_ms();
    form(&web, &link.ctx, &headers, body, |f| &f.csrf)?;
    let flow = link.flow(&web)?;
    let (ctx, token) = (&link.ctx, &link.token);
    if machine::effective_state(&flow, now).is_open() {
        return Ok(see_other(format!("/v/{token}"), link.ctx.cookies));
    }
    let budget = LimitKey::new("renew-address", &[&flow.address.to_string().to_lowercase()]);
    web.take_limit(ctx, &budget, RENEW_PER_ADDRESS, now).await?;
    flow::renew(&web.services.flows, &flow, now)
        .await
        .map_err(|e| web.internal(ctx, &e))?;
    let vars = json!({
        "renewed": true,
        "address": flow.address.to_string(),
        "lifetime": flow::mail::span(&ctx.lang, web.services.config.flows.link_lifetime),
    });
    Ok(web
        .page(ctx, StatusCode::OK, PageName::Sent, "sent", vars)
        .into_response())
}

/// `GET /v/{token}/renew`: only reached by the language switch on the page a renewal
/// answered; the link's page in the language chosen (the switch is kept for the link).
pub(super) async fn renew_switch(
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = q.lang.filter(|l| matches!(l.as_str(), "ja" | "en"));
    let path = match lang {
        Some(l) => format!("/v/{token}?lang={l}"),
        None => format!("/v/{token}"),
    };
    see_other(path, Vec::new())
}

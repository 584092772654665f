//! The code step: the form, shown only in the browser that asked for the code, and one
//! counted try per submission (the store counts it atomically before it answers).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::domain::{FlowState, now_ms};
use crate::flow::{self, CodeOutcome};

use super::{CodeForm, FlowWeb, LinkRequest, PageResult, cookies, form, see_other};

/// `GET /v/{token}/code`: the code form, in the browser that asked for the code.
pub(super) async fn code_form(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
) -> PageResult {
    let now = now_ms();
    let flow = link.open_flow(&web, now)?;
    let (ctx, token) = (&link.ctx, &link.token);
    let binding = cookies::get(&headers, cookies::BIND);
    if flow::may_set_password(&flow, binding.as_deref(), now) {
        return Ok(see_other(format!("/v/{token}/password"), link.ctx.cookies));
    }
    if !flow::holds_code(&flow, binding.as_deref()) {
        let wrong_browser = flow.code.is_some();
        return Ok(web
            .landing_page(
                ctx,
                token,
                &flow,
                json!({"wrong_browser": wrong_browser}),
                StatusCode::OK,
            )
            .into_response());
    }
    Ok(web
        .code_page(ctx, token, &flow, json!({}), StatusCode::OK)
        .into_response())
}

/// `POST /v/{token}/code`: one try of the code.
pub(super) async fn code_submit(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
    body: Result<Form<CodeForm>, FormRejection>,
) -> PageResult {
    let now = now_ms();
    let f = form(&web, &link.ctx, &headers, body, |f| &f.csrf)?;
    let flow = link.flow(&web)?;
    let (ctx, token) = (&link.ctx, &link.token);
    let binding = cookies::get(&headers, cookies::BIND);
    let outcome = flow::submit_code(
        &web.services.flows,
        &flow.id,
        &f.code,
        binding.as_deref(),
        now,
    )
    .await
    .map_err(|e| web.internal(ctx, &e))?;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let page = match outcome {
        CodeOutcome::Verified => {
            return Ok(see_other(format!("/v/{token}/password"), link.ctx.cookies));
        }
        CodeOutcome::Wrong { tries_left } => web.code_page(
            ctx,
            token,
            &flow,
            json!({"wrong": true, "tries_left": tries_left}),
            unprocessable,
        ),
        CodeOutcome::TriesUsedUp => {
            web.code_page(ctx, token, &flow, json!({"used_up": true}), unprocessable)
        }
        CodeOutcome::CodeExpired => {
            web.code_page(ctx, token, &flow, json!({"expired": true}), unprocessable)
        }
        CodeOutcome::CodeUsed => web.code_page(
            ctx,
            token,
            &flow,
            json!({"already_used": true}),
            StatusCode::CONFLICT,
        ),
        CodeOutcome::NoCode | CodeOutcome::WrongBrowser => web.landing_page(
            ctx,
            token,
            &flow,
            json!({"wrong_browser": true}),
            StatusCode::FORBIDDEN,
        ),
        CodeOutcome::Locked => web.problem(ctx, token, Some(&flow), FlowState::Locked),
        CodeOutcome::Closed(state) => web.problem(ctx, token, Some(&flow), state),
    };
    Ok(page.into_response())
}

//! The password step: the form with its rules, shown only in the browser whose code was
//! verified, and the submission (checked, hashed with argon2id off the async threads,
//! stored; the flow is completed and the link used up).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;

use crate::domain::now_ms;
use crate::flow::{self, SetPassword};

use super::{FlowWeb, LinkRequest, PageResult, PasswordForm, cookies, form, see_other};

/// `GET /v/{token}/password`: the password form with its rules.
pub(super) async fn password_form(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
) -> PageResult {
    let now = now_ms();
    let flow = link.open_flow(&web, now)?;
    let binding = cookies::get(&headers, cookies::BIND);
    if !flow::may_set_password(&flow, binding.as_deref(), now) {
        return Ok(see_other(format!("/v/{}", link.token), link.ctx.cookies));
    }
    Ok(web
        .password_page(&link.ctx, &link.token, &flow, &[])
        .into_response())
}

/// `POST /v/{token}/password`: checks, hashes and stores the password.
pub(super) async fn password_submit(
    State(web): State<FlowWeb>,
    mut link: LinkRequest,
    headers: HeaderMap,
    body: Result<Form<PasswordForm>, FormRejection>,
) -> PageResult {
    let now = now_ms();
    let f = form(&web, &link.ctx, &headers, body, |f| &f.csrf)?;
    let flow = link.open_flow(&web, now)?;
    let binding = cookies::get(&headers, cookies::BIND);
    let result = flow::set_password(
        &web.services.flows,
        &web.hasher,
        &flow.id,
        f.password,
        f.password2,
        binding.as_deref(),
        now,
    )
    .await
    .map_err(|e| web.internal(&link.ctx, &e))?;
    let token = &link.token;
    Ok(match result {
        SetPassword::Done => see_other(format!("/v/{token}/done"), link.ctx.cookies),
        SetPassword::Refused(problems) => web
            .password_page(&link.ctx, token, &flow, &problems)
            .into_response(),
        SetPassword::NotAllowed => see_other(format!("/v/{token}"), link.ctx.cookies),
    })
}

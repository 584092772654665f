//! The operators' console: `/login`, `/support` (the delivery log, for support staff)
//! and `/admin` (bounce report, queue, suppression list, webhooks, operators), and `/account`
//! (an operator's own sessions). Plain server-rendered HTML
//! from handlebars templates compiled into the binary, escaped everywhere because bounce
//! texts and addresses come from strangers; no JavaScript, and a CSP that forbids it.
//!
//! Every page goes through [`ConsoleUser`] (a session cookie, else a redirect to the
//! login page) and checks the role it needs ([`ConsoleUser::require`], 403 otherwise).
//! Every form carries the session's CSRF token ([`ConsoleUser::check_csrf`]). Every
//! operator action is written to the audit log.

mod accounts;
mod admin;
mod login;
mod pages;
pub mod sentence;
mod session;
mod support;
mod webhooks;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use session::ConsoleUser;

use crate::services::Services;
use crate::store::StoreError;

/// The console's routes, merged into the main router.
pub fn routes() -> Router<Services> {
    Router::new()
        .route("/static/console.css", get(pages::stylesheet))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/support", get(support::search))
        .route("/support/resend", post(support::resend))
        .route("/admin", get(admin::report))
        .route("/admin/bounces.csv", get(admin::csv))
        .route("/admin/queue", get(admin::queue))
        .route("/admin/queue/retry", post(admin::queue_retry))
        .route("/admin/queue/cancel", post(admin::queue_cancel))
        .route("/admin/suppression", get(admin::suppression))
        .route("/admin/suppression/remove", post(admin::suppression_remove))
        .route("/admin/webhooks", get(webhooks::list))
        .route("/admin/webhooks/replay", post(webhooks::replay))
        .route("/admin/webhooks/enable", post(webhooks::enable))
        .route("/account", get(accounts::own_sessions))
        .route(
            "/account/logout-everywhere",
            post(accounts::log_out_everywhere),
        )
        .route("/admin/operators", get(accounts::operators))
        .route("/admin/operators/change", post(accounts::operator_change))
}

/// Why sending a new link did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("a new link was sent to this address less than {minutes} minutes ago")]
    TooSoon { minutes: u64 },
    /// Support resends; it does not invite strangers.
    #[error(
        "mailgate has no account and no earlier link for this address, so there is nothing to resend; check the spelling, or ask an admin to invite it"
    )]
    Unknown,
    #[error(
        "the address is on the suppression list (since {since}: {reason}), so the mail would not be sent; an admin can remove it from the list once the address works again"
    )]
    Suppressed { since: String, reason: String },
    #[error("the mail could not be sent: {0}")]
    Undeliverable(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a new link cannot be sent to `address` now, if it cannot: an address with
/// neither an account nor an earlier flow is not one support resends to, and a
/// suppressed address would get nothing. The page uses it to offer the button or say
/// why not; [`resend_link`] checks it again.
pub async fn resend_refusal(
    services: &Services,
    address: &crate::domain::Address,
    tz: chrono_tz::Tz,
) -> Result<Option<ResendError>, StoreError> {
    let key = address.to_string();
    let known = services.store.account(&key).await?.is_some()
        || services.store.current_flow_id(&key).await?.is_some();
    if !known {
        return Ok(Some(ResendError::Unknown));
    }
    Ok(services
        .store
        .suppression(&key)
        .await?
        .map(|s| ResendError::Suppressed {
            since: sentence::stamp(s.since_ms, tz),
            reason: s.reason,
        }))
}

/// Starts a new flow for `address` on behalf of `operator`: the support console's
/// "send a new link". An address with an account gets a reset link, one with an
/// earlier flow a new invitation; either supersedes the address's open flow. Refused
/// (nothing started) as [`resend_refusal`] says. The caller has already checked the
/// rate limit and writes the audit entry.
pub async fn resend_link(
    services: &Services,
    address: &crate::domain::Address,
    operator: &str,
    tz: chrono_tz::Tz,
) -> Result<String, ResendError> {
    if let Some(refusal) = resend_refusal(services, address, tz).await? {
        return Err(refusal);
    }
    let kind = if services
        .store
        .account(&address.to_string())
        .await?
        .is_some()
    {
        crate::domain::FlowKind::Reset
    } else {
        crate::domain::FlowKind::Setup
    };
    let started = crate::flow::start(
        services,
        crate::flow::StartFlow {
            kind,
            address: address.clone(),
            name: None,
            locale: None,
            not_before_ms: None,
            only_if_new: false,
            dry_run: false,
        },
        crate::domain::now_ms(),
    )
    .await
    .map_err(|e| ResendError::Invalid(e.to_string()))?;
    match started {
        crate::flow::Started::Started {
            flow_id,
            message_id,
            ..
        } => {
            // The queue refuses some mail at once (a domain that cannot receive, a
            // suppression made meanwhile): that is not a sent link.
            let refused = match crate::domain::MessageId::parse(&message_id) {
                Some(id) => services.store.message(&id).await?,
                None => None,
            }
            .filter(|m| m.status == crate::domain::MessageStatus::Failed);
            if let Some(m) = refused {
                return Err(ResendError::Undeliverable(
                    m.last_reply.unwrap_or_else(|| "refused".into()),
                ));
            }
            tracing::info!(flow_id = %flow_id, operator, "support sent a new link");
            Ok(format!(
                "A new link was queued for {address} (flow {flow_id}); its delivery shows in the timeline below."
            ))
        }
        other => Err(ResendError::Invalid(format!("nothing was sent: {other:?}"))),
    }
}

/// What a console request can end in; one mapping to responses.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session: go to the login page.
    #[error("not logged in")]
    LoggedOut,
    /// Logged in, but the role does not allow the page.
    #[error("this page is for {needed} operators; you are logged in as {name} ({role})")]
    Forbidden {
        needed: &'static str,
        name: String,
        role: &'static str,
    },
    /// The form's CSRF token is missing or wrong.
    #[error(
        "the form was not sent from this console session (its security token does not match); reload the page and try again"
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("the store is not available: {0}")]
    Store(#[from] StoreError),
    /// Something under the console failed (the store, most often); the details go to
    /// the log, never to the page.
    #[error("{0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, heading, text) = match &self {
            ConsoleError::LoggedOut => {
                return axum::response::Redirect::to("/login").into_response();
            }
            ConsoleError::Forbidden { .. } => {
                (StatusCode::FORBIDDEN, "Not allowed", self.to_string())
            }
            ConsoleError::Csrf => (StatusCode::FORBIDDEN, "Form refused", self.to_string()),
            ConsoleError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "Cannot do that", self.to_string())
            }
            ConsoleError::Store(_) | ConsoleError::Unavailable(_) => {
                // The page says what happened and how to refer to it; the details (a
                // path, an OS error) go to the log under the same request id.
                let request_id = crate::secrets::request_id();
                tracing::error!(request_id = %request_id, error = %self, "console request failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The store is not available",
                    format!(
                        "mailgate cannot reach its store right now, so nothing was changed. \
                         Try again in a minute; if it goes on, tell the administrator \
                         (request {request_id})."
                    ),
                )
            }
        };
        let body = pages::render(
            "error",
            &pages::bare(
                heading,
                serde_json::json!({ "heading": heading, "text": text, "back": "/support" }),
            ),
        );
        let mut response = pages::respond(body);
        *response.status_mut() = status;
        response
    }
}

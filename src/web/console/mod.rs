//! The operators' console: `/login`, `/support` (the delivery log, for support staff)
//! and `/admin` (bounce report, queue, suppression list, webhooks, operators, the invitation of
//! an unknown address), and `/account` (an operator's own sessions, language and
//! zone). Plain server-rendered HTML
//! from handlebars templates compiled into the binary, escaped everywhere because bounce
//! texts and addresses come from strangers; no JavaScript, and a CSP that forbids it.
//!
//! Every page is in the operator's language and clock ([`text`] says how they are
//! chosen); an error page drawn where no operator is at hand finds the language the
//! request started in through a task-local set around every console request.
//!
//! Every page goes through [`ConsoleUser`] (a session cookie, else a redirect to the
//! login page) and checks the role it needs ([`ConsoleUser::require`], 403 otherwise).
//! Every form carries the session's CSRF token ([`ConsoleUser::check_csrf`]). Every
//! operator action is written to the audit log.

mod accounts;
mod admin;
mod charts;
mod invite;
mod login;
mod message;
mod pages;
mod progress;
pub mod sentence;
mod session;
mod support;
pub mod text;
mod webhooks;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use session::ConsoleUser;

use crate::services::Services;
use crate::store::StoreError;
use sentence::Lang;

tokio::task_local! {
    /// The language of the console page being answered, so an error page (drawn
    /// where no operator is at hand) speaks it too.
    static PAGE_LANG: std::cell::Cell<Lang>;
}

/// Sets the language of the page being answered (the operator's, once known).
pub(crate) fn set_page_lang(lang: Lang) {
    let _ = PAGE_LANG.try_with(|l| l.set(lang));
}

fn page_lang() -> Lang {
    PAGE_LANG.try_with(|l| l.get()).unwrap_or(Lang::En)
}

/// Starts every console request in the browser's language (else `default`); the
/// session, once read, may change it.
async fn with_page_lang(
    axum::extract::State(default): axum::extract::State<&'static str>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let lang = text::choose_lang(None, None, request.headers(), default);
    PAGE_LANG
        .scope(std::cell::Cell::new(lang), next.run(request))
        .await
}

/// The console's routes, merged into the main router; `default_locale` is the
/// language of a page for a browser that states none.
pub fn routes(default_locale: &str) -> Router<Services> {
    let default: &'static str = if default_locale == "ja" { "ja" } else { "en" };
    Router::new()
        .route("/static/console.css", get(pages::stylesheet))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/support", get(support::search))
        .route("/support/resend", post(support::resend))
        .route("/support/message/{id}", get(message::view))
        .route("/support/message/{id}/headers.txt", get(message::headers))
        .route("/admin/invite", get(invite::confirm).post(invite::send))
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
        .route("/account/preferences", post(accounts::save_preferences))
        .layer(axum::middleware::from_fn_with_state(
            default,
            with_page_lang,
        ))
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

impl ResendError {
    /// The reason in the operator's language (the audit log keeps it as a code, see
    /// [`ResendError::refusal`], and words it the same way).
    pub fn text(&self, lang: Lang) -> String {
        if lang == Lang::En {
            return self.to_string();
        }
        match self {
            ResendError::TooSoon { minutes } => {
                format!("このアドレスには{minutes}分以内に新しいリンクを送ったばかりです")
            }
            ResendError::Unknown => "このアドレスにはアカウントも過去のリンクもないため、再送するものがありません。綴りを確認してください。新しく招待する場合は管理者に依頼してください".into(),
            ResendError::Suppressed { since, reason } => format!(
                "このアドレスは送信停止リストに載っているため（{since}から、理由：{}）、メールは送られません。アドレスが使えるようになったら、管理者がリストから外せます",
                text::reason(lang, reason)
            ),
            ResendError::Undeliverable(why) => format!("メールを送れませんでした：{why}"),
            ResendError::Invalid(why) => why.clone(),
            ResendError::Store(_) => "データベースに接続できません".into(),
        }
    }
}

impl ResendError {
    /// The refusal as the audit log keeps it: a code with its facts.
    pub fn refusal(&self) -> crate::audit::Refusal {
        use crate::audit::Refusal as R;
        match self {
            ResendError::TooSoon { minutes } => R::TooSoon { minutes: *minutes },
            ResendError::Unknown => R::Unknown,
            ResendError::Suppressed { since, reason } => R::Suppressed {
                since: since.clone(),
                reason: reason.clone(),
            },
            ResendError::Undeliverable(detail) => R::Undeliverable {
                detail: detail.clone(),
            },
            ResendError::Invalid(detail) => R::Invalid {
                detail: detail.clone(),
            },
            ResendError::Store(e) => R::Invalid {
                detail: e.to_string(),
            },
        }
    }
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
/// rate limit and writes the audit entry. The answer is the new flow's id.
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
    start_link(services, address, kind, operator).await
}

/// Why an admin's invitation of `address` would send nothing: an address mailgate
/// already knows gets "send a new link" instead, and a suppressed one gets no mail.
pub async fn invite_refusal(
    services: &Services,
    address: &crate::domain::Address,
    tz: chrono_tz::Tz,
) -> Result<Option<InviteRefusal>, StoreError> {
    match resend_refusal(services, address, tz).await? {
        Some(ResendError::Unknown) => {}
        _ => return Ok(Some(InviteRefusal::Known)),
    }
    Ok(services
        .store
        .suppression(&address.to_string())
        .await?
        .map(|s| {
            InviteRefusal::Refused(ResendError::Suppressed {
                since: sentence::stamp(s.since_ms, tz),
                reason: s.reason,
            })
        }))
}

/// Why an invitation was not sent.
#[derive(Debug)]
pub enum InviteRefusal {
    /// The address has an account or an earlier flow: support's "send a new link"
    /// is the way, and it picks a reset or a new invitation itself.
    Known,
    Refused(ResendError),
}

/// An admin's explicit invitation of an address mailgate has never seen (after the
/// confirmation page): a setup flow. The answer is the new flow's id.
pub async fn invite_link(
    services: &Services,
    address: &crate::domain::Address,
    operator: &str,
    tz: chrono_tz::Tz,
) -> Result<String, InviteRefusal> {
    if let Some(refusal) = invite_refusal(services, address, tz)
        .await
        .map_err(|e| InviteRefusal::Refused(ResendError::Store(e)))?
    {
        return Err(refusal);
    }
    start_link(services, address, crate::domain::FlowKind::Setup, operator)
        .await
        .map_err(InviteRefusal::Refused)
}

/// Starts a flow of `kind` and checks that its mail was not refused at once.
async fn start_link(
    services: &Services,
    address: &crate::domain::Address,
    kind: crate::domain::FlowKind,
    operator: &str,
) -> Result<String, ResendError> {
    let started = crate::flow::start(
        &services.flows,
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
            tracing::info!(flow_id = %flow_id, operator, kind = kind.as_str(), "an operator sent a new link");
            Ok(flow_id.to_string())
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

impl ConsoleError {
    /// What the page says, in `lang`: its heading key and its text.
    fn heading_and_text(&self, lang: Lang) -> (StatusCode, &'static str, String) {
        let ja = lang == Lang::Ja;
        match self {
            ConsoleError::LoggedOut => (StatusCode::SEE_OTHER, "forbidden", String::new()),
            ConsoleError::Forbidden { needed, name, role } if ja => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "この画面は{}向けです。いまは{name}（{}）としてログインしています。",
                    text::role(lang, needed),
                    text::role(lang, role)
                ),
            ),
            ConsoleError::Forbidden { .. } => {
                (StatusCode::FORBIDDEN, "forbidden", self.to_string())
            }
            ConsoleError::Csrf if ja => (
                StatusCode::FORBIDDEN,
                "csrf",
                "このフォームはいまのログインから送られたものではありません（確認用の値が一致しません）。ページを読み込み直してから、もう一度お試しください。".into(),
            ),
            ConsoleError::Csrf => (StatusCode::FORBIDDEN, "csrf", self.to_string()),
            ConsoleError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "bad_request", self.to_string())
            }
            ConsoleError::Store(_) | ConsoleError::Unavailable(_) => {
                // The page says what happened and how to refer to it; the details (a
                // path, an OS error) go to the log under the same request id.
                let request_id = crate::secrets::request_id();
                tracing::error!(request_id = %request_id, error = %self, "console request failed");
                let text = if ja {
                    format!(
                        "いまデータベースに接続できないため、何も変更していません。1分ほどしてからもう一度お試しください。続く場合は管理者に連絡してください（問い合わせ番号 {request_id}）。"
                    )
                } else {
                    format!(
                        "mailgate cannot reach its store right now, so nothing was changed. \
                         Try again in a minute; if it goes on, tell the administrator \
                         (request {request_id})."
                    )
                };
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", text)
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::LoggedOut = self {
            return axum::response::Redirect::to("/login").into_response();
        }
        let lang = page_lang();
        let (status, key, text) = self.heading_and_text(lang);
        let body = pages::render(
            "error",
            &pages::bare(
                lang,
                key,
                "/support",
                serde_json::json!({ "heading": text::title(lang, key), "text": text, "back": "/support" }),
            ),
        );
        let mut response = pages::respond(body);
        *response.status_mut() = status;
        response
    }
}

//! The pages a person reaches from a mailed link, and the public "send me a new link"
//! page, one file per step: [`link`] (landing, button, done, renew), [`code`],
//! [`password`] and [`reset`].
//!
//! `GET /v/{token}` (landing) → `POST /v/{token}` (the button: a code is mailed and bound
//! to this browser) → `/v/{token}/code` → `/v/{token}/password` → `/v/{token}/done`;
//! `POST /v/{token}/renew` mails a new link when this one no longer works;
//! `GET|POST /reset` asks for one by address.
//!
//! This module holds what every step shares. A link's handlers take a [`LinkRequest`],
//! extracted once per request (the token, the token's flow read once, the page's
//! language and CSRF value), and return [`PageResult`]: a step that cannot go on
//! returns with `?` the page to show instead ([`PageError`]: a link that no longer
//! works, a refused form, a limit, a store that cannot answer, which is a 503 page and
//! logged, never its text on the page).
//!
//! A GET changes nothing but a "link visited" note (mail scanners fetch every link).
//! Every POST carries a CSRF token. Each page view has one language (the switch is kept
//! for that link in that browser; `/reset` starts from `Accept-Language`) and shows
//! times in that language's zone. Limits use the store's atomic limiter. Every page
//! sends the security headers of `render`. Redirects go to fixed paths on this server;
//! links in mail come from `server.public_url`. Nothing here logs a token, a code or a
//! password.

mod code;
mod cookies;
mod link;
mod password;
mod render;
mod reset;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{Address, Detail, FlowKind, FlowRecord, FlowState};
use crate::flow::{self, FlowError, HashError, Hasher, machine};
use crate::services::Services;
use crate::store::{LimitKey, Rule, Take};

pub use render::{CSP, STYLESHEET};
use render::{Html, PageName, Pages, SeeOther, title};
pub use reset::{RESET_PER_ADDRESS, RESET_PER_CLIENT};

const HOUR_MS: u64 = 3_600_000;

/// New links asked for from a link that no longer works, per address: the link
/// holder's own budget, which anonymous `/reset` requests do not spend.
pub const RENEW_PER_ADDRESS: Rule = Rule {
    max: 3,
    window_ms: HOUR_MS,
    lock_ms: HOUR_MS,
};
/// The state of the flow pages and the flow API: services, the password hasher (one
/// per process: its semaphore bounds argon2's memory), the pages, and the queue of
/// `/reset` requests.
#[derive(Clone)]
pub struct FlowWeb {
    pub services: Services,
    pub hasher: Hasher,
    pages: Arc<Pages>,
    resets: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<(Address, u64)>>>,
}

impl FlowWeb {
    pub fn new(services: Services) -> FlowWeb {
        let pages = Pages::new(
            &services.config.sender.organization,
            &services.config.sender.contact,
        );
        FlowWeb {
            services,
            hasher: Hasher::shared(),
            pages: Arc::new(pages),
            resets: Arc::new(std::sync::OnceLock::new()),
        }
    }

    fn secure(&self) -> bool {
        self.services
            .config
            .server
            .public_url
            .starts_with("https://")
    }
}

/// The page routes.
pub fn router() -> Router<FlowWeb> {
    Router::new()
        .route("/static/mailgate.css", get(stylesheet))
        .route("/v/{token}", get(link::landing).post(link::button))
        .route(
            "/v/{token}/code",
            get(code::code_form).post(code::code_submit),
        )
        .route(
            "/v/{token}/password",
            get(password::password_form).post(password::password_submit),
        )
        .route("/v/{token}/done", get(link::done))
        .route(
            "/v/{token}/renew",
            get(link::renew_switch).post(link::renew),
        )
        .route("/reset", get(reset::reset_form).post(reset::reset_submit))
}

/// The client's IP address as the per-client limits count it: the address the server
/// worked out (the forwarded client behind a trusted proxy, see `web::server`), else
/// the connection's peer.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client = parts
            .extensions
            .get::<crate::web::server::ClientAddr>()
            .map(|c| c.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            });
        Ok(ClientIp(
            client.map_or_else(|| "unknown".into(), |ip| ip.to_string()),
        ))
    }
}

#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// Where a language switch is remembered: a cookie path, and for how long (`None`:
/// the browser session).
struct LangScope {
    path: String,
    max_age_s: Option<u64>,
}

/// The first of `ja` and `en` in the browser's `Accept-Language`, by weight.
pub(crate) fn accepted_language(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(f32, &'static str)> = None;
    for item in value.split(',') {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = match tag.split('-').next() {
            Some("ja") => "ja",
            Some("en") => "en",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// What every page of one request shares: language, CSRF value, cookies to set.
struct Ctx {
    lang: String,
    csrf: String,
    cookies: Vec<String>,
}

/// Why a flow's mail did not arrive, in the page's language, and the receiving server's
/// own words (verbatim, in whatever language it wrote) when there are any. The flow keeps
/// mailgate's English wording ([`Detail`]); the person reads it in theirs.
fn undeliverable_words(lang: &str, reason: &str) -> (&'static str, Option<String>) {
    let ja = lang == "ja";
    match Detail::parse(reason) {
        Some(Detail::Refused { reply }) => (
            if ja {
                "受信側のメールサーバーが、このアドレスあてのメールの受け取りを断りました。"
            } else {
                "The receiving mail server refused our mail to this address."
            },
            Some(reply),
        ),
        Some(Detail::NeverAccepted) => (
            if ja {
                "お届けの期限までに、メールを受け取れるサーバーが見つかりませんでした。"
            } else {
                "No receiving mail server accepted our mail before it expired."
            },
            None,
        ),
        Some(Detail::AddressSuppressed) => (
            if ja {
                "以前このアドレスあてのメールが届かなかったため、送信を止めています。"
            } else {
                "Earlier mail to this address could not be delivered, so we stopped sending to it."
            },
            None,
        ),
        _ => (
            if ja {
                "メールの送信に失敗しました。"
            } else {
                "Sending our mail failed."
            },
            Some(reason.to_string()),
        ),
    }
}

impl FlowWeb {
    /// Looks the token's flow up once, and builds the page context: the language this
    /// browser chose for this flow, else the flow's own.
    async fn token_ctx(&self, headers: &HeaderMap, q: &LangQuery, token: &str) -> (Ctx, Found) {
        let found = flow::find(&self.services.flows, token).await;
        let fallback = match &found {
            Ok(Some(f)) => f.locale.clone(),
            _ => self.services.config.flows.default_locale.clone(),
        };
        // The switch is remembered for this link only (its pages share the path), for
        // as long as a link lives: another link, or /reset, starts from its own default.
        let scope = LangScope {
            path: format!("/v/{token}"),
            max_age_s: Some(self.services.config.flows.link_lifetime.as_secs()),
        };
        (self.ctx(headers, q, &fallback, &scope), found)
    }

    /// The context of `/reset`: the browser's `Accept-Language`, else the default; a
    /// switch lasts for the browser session, on `/reset` only.
    fn reset_ctx(&self, headers: &HeaderMap, q: &LangQuery) -> Ctx {
        let fallback = accepted_language(headers)
            .unwrap_or(&self.services.config.flows.default_locale)
            .to_string();
        let scope = LangScope {
            path: "/reset".into(),
            max_age_s: None,
        };
        self.ctx(headers, q, &fallback, &scope)
    }

    fn ctx(&self, headers: &HeaderMap, q: &LangQuery, fallback: &str, scope: &LangScope) -> Ctx {
        let secure = self.secure();
        let mut set = Vec::new();
        let chosen = q.lang.as_deref().filter(|l| matches!(*l, "ja" | "en"));
        let lang = match chosen {
            Some(l) => {
                set.push(cookies::set_lang(l, &scope.path, secure, scope.max_age_s));
                l.to_string()
            }
            None => cookies::get(headers, cookies::LANG)
                .filter(|l| matches!(l.as_str(), "ja" | "en"))
                .unwrap_or_else(|| fallback.to_string()),
        };
        let (csrf, csrf_cookie) = cookies::csrf_for_page(headers, secure);
        set.extend(csrf_cookie);
        Ctx {
            lang,
            csrf,
            cookies: set,
        }
    }

    fn page(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        page: PageName,
        key: &str,
        mut vars: Value,
    ) -> Html {
        if let Value::Object(m) = &mut vars {
            m.insert("csrf".into(), Value::String(ctx.csrf.clone()));
            m.insert(
                "from".into(),
                Value::String(self.services.config.sender.from.address.to_string()),
            );
        }
        let body = self
            .pages
            .render(&ctx.lang, page, title(&ctx.lang, key), vars);
        Html::new(status, body).with_cookies(ctx.cookies.clone())
    }

    fn message(&self, ctx: &Ctx, status: StatusCode, key: &str) -> Html {
        let mut vars = serde_json::Map::new();
        vars.insert(key.into(), Value::Bool(true));
        self.page(ctx, status, PageName::Message, key, Value::Object(vars))
    }

    /// Takes a slot of a rate limit for this request; the page to answer instead when
    /// the limit is full (429) or the store fails (503).
    async fn take_limit(
        &self,
        ctx: &Ctx,
        key: &LimitKey,
        rule: Rule,
        now: u64,
    ) -> Result<(), PageError> {
        match self.services.store.limit_take(key, rule, now).await {
            Ok(Take::Allowed { .. }) => Ok(()),
            Ok(Take::Refused { .. }) => Err(self
                .message(ctx, StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                .into()),
            Err(e) => Err(self.internal(ctx, &FlowError::Store(e))),
        }
    }

    /// The page for a failure that is not the person's: 503, "busy" when the password
    /// hasher is full, else a generic page; the error itself goes to the log only.
    fn internal(&self, ctx: &Ctx, e: &FlowError) -> PageError {
        if let FlowError::Hash(HashError::Busy) = e {
            let mut html = self.message(ctx, StatusCode::SERVICE_UNAVAILABLE, "busy");
            html.retry_after = Some(30);
            return html.into();
        }
        tracing::error!(error = %e, "flow page failed");
        self.message(ctx, StatusCode::SERVICE_UNAVAILABLE, "internal")
            .into()
    }

    /// A moment in the page's language and that language's zone (never the flow's:
    /// one page, one language, one clock).
    fn local(&self, ctx: &Ctx, ms: u64) -> String {
        flow::mail::local_time(&self.services.config, &ctx.lang, ms)
    }

    /// The page of a link that cannot be used (or does not exist).
    fn problem(&self, ctx: &Ctx, token: &str, flow: Option<&FlowRecord>, state: FlowState) -> Html {
        let Some(flow) = flow else {
            return self.page(
                ctx,
                StatusCode::NOT_FOUND,
                PageName::Problem,
                "unknown",
                json!({"unknown": true}),
            );
        };
        let key = match state {
            FlowState::Expired => "expired",
            FlowState::Completed => "used",
            FlowState::Superseded => "superseded",
            FlowState::Locked => "locked",
            FlowState::Undeliverable => "undeliverable",
            _ => "unknown",
        };
        let mut vars = json!({
            "token": token,
            "can_renew": true,
            "expires_local": self.local(ctx, flow.expires_ms),
            // A code the person may be about to type ended with the link: the page
            // says so beside its one button.
            "had_code": flow.code.as_ref().is_some_and(|c| !c.used),
        });
        if let Some(reason) = &flow.undeliverable_reason {
            let (why, reply) = undeliverable_words(&ctx.lang, reason);
            vars["reason"] = Value::from(why);
            vars["reply"] = reply.map(Value::from).unwrap_or(Value::Null);
        }
        vars[key] = Value::Bool(true);
        self.page(ctx, StatusCode::GONE, PageName::Problem, key, vars)
    }

    fn landing_page(
        &self,
        ctx: &Ctx,
        token: &str,
        flow: &FlowRecord,
        extra: Value,
        status: StatusCode,
    ) -> Html {
        let mut vars = json!({
            "token": token,
            "setup": flow.kind == FlowKind::Setup,
            "address": flow.address.to_string(),
            "expires_local": self.local(ctx, flow.expires_ms),
            "has_code": flow.code.as_ref().is_some_and(|c| !c.used),
        });
        merge(&mut vars, extra);
        let key = if flow.kind == FlowKind::Setup {
            "setup"
        } else {
            "reset"
        };
        self.page(ctx, status, PageName::Landing, key, vars)
    }

    fn code_page(
        &self,
        ctx: &Ctx,
        token: &str,
        flow: &FlowRecord,
        extra: Value,
        status: StatusCode,
    ) -> Html {
        let mut vars = json!({
            "token": token,
            "address": flow.address.to_string(),
            "code_expires_local": flow.code.as_ref().map(|c| self.local(ctx, c.expires_ms)).unwrap_or_default(),
        });
        merge(&mut vars, extra);
        self.page(ctx, status, PageName::Code, "code", vars)
    }

    fn password_page(
        &self,
        ctx: &Ctx,
        token: &str,
        flow: &FlowRecord,
        problems: &[flow::Problem],
    ) -> Html {
        let mut vars = json!({
            "token": token,
            "address": flow.address.to_string(),
            "min": flow::password::MIN_CHARS,
            "max": flow::password::MAX_CHARS,
            "any_problem": !problems.is_empty(),
        });
        for p in problems {
            vars[p.as_str()] = Value::Bool(true);
        }
        let status = if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        self.page(ctx, status, PageName::Password, "password", vars)
    }
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, extra) {
        a.extend(b);
    }
}

fn see_other(path: String, cookies: Vec<String>) -> Response {
    SeeOther { path, cookies }.into_response()
}

/// What a page handler answers: the page asked for, or the page to show instead.
type PageResult = Result<Response, PageError>;

/// The page to show instead of the one asked for: a link that no longer works, a
/// refused form, a limit reached, or a failure that is not the person's (a 503 page;
/// the error goes to the log, never to the page). Boxed: it travels through every `?`.
struct PageError(Box<Response>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Html> for PageError {
    fn from(page: Html) -> PageError {
        PageError(Box::new(page.into_response()))
    }
}

/// A token's flow, looked up once per request (the flow record is the costly read).
type Found = Result<Option<FlowRecord>, FlowError>;

/// One request for a link's page: the token, the page's context, and the token's flow,
/// read once before the handler runs. A language switch comes with a GET (the switch's
/// links); a form's POST keeps the language the page had.
struct LinkRequest {
    token: String,
    ctx: Ctx,
    found: Option<Found>,
}

impl FromRequestParts<FlowWeb> for LinkRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &FlowWeb) -> Result<Self, Response> {
        let Path(token) = Path::<String>::from_request_parts(parts, web)
            .await
            .map_err(IntoResponse::into_response)?;
        let q = if parts.method == Method::GET || parts.method == Method::HEAD {
            Query::<LangQuery>::try_from_uri(&parts.uri)
                .map(|Query(q)| q)
                .unwrap_or_default()
        } else {
            LangQuery::default()
        };
        let (ctx, found) = web.token_ctx(&parts.headers, &q, &token).await;
        Ok(LinkRequest {
            token,
            ctx,
            found: Some(found),
        })
    }
}

impl LinkRequest {
    /// The token's flow; `Err` is the page to show instead (an unknown link, or a
    /// store that cannot answer).
    fn flow(&mut self, web: &FlowWeb) -> Result<FlowRecord, PageError> {
        match self.found.take().unwrap_or(Ok(None)) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(web
                .problem(&self.ctx, &self.token, None, FlowState::Expired)
                .into()),
            Err(e) => Err(web.internal(&self.ctx, &e)),
        }
    }

    /// The token's flow, which must still be open; `Err` is the page to show instead.
    fn open_flow(&mut self, web: &FlowWeb, now: u64) -> Result<FlowRecord, PageError> {
        let f = self.flow(web)?;
        let state = machine::effective_state(&f, now);
        if state.is_open() {
            Ok(f)
        } else {
            Err(web.problem(&self.ctx, &self.token, Some(&f), state).into())
        }
    }
}

async fn stylesheet() -> Response {
    let mut resp = STYLESHEET.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
}

/// Reads a form and checks its CSRF field; `Err` is the page to show instead.
fn form<T>(
    web: &FlowWeb,
    ctx: &Ctx,
    headers: &HeaderMap,
    form: Result<Form<T>, FormRejection>,
    csrf: impl Fn(&T) -> &str,
) -> Result<T, PageError> {
    let Ok(Form(f)) = form else {
        return Err(web
            .message(ctx, StatusCode::BAD_REQUEST, "bad_request")
            .into());
    };
    if !cookies::csrf_ok(headers, csrf(&f)) {
        return Err(web
            .message(ctx, StatusCode::FORBIDDEN, "csrf_failed")
            .into());
    }
    Ok(f)
}

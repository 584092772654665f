//! The pages a person reaches from a mailed link, and the public "send me a new link"
//! page.
//!
//! `GET /v/{token}` (landing) → `POST /v/{token}` (the button: a code is mailed and bound
//! to this browser) → `/v/{token}/code` → `/v/{token}/password` → `/v/{token}/done`;
//! `POST /v/{token}/renew` mails a new link when this one no longer works;
//! `GET|POST /reset` asks for one by address.
//!
//! A GET changes nothing but a "link visited" note (mail scanners fetch every link).
//! Every POST carries a CSRF token. Each page view has one language (the switch is kept
//! for that link in that browser; `/reset` starts from `Accept-Language`) and shows
//! times in that language's zone. Limits use the store's atomic limiter: `/reset`
//! counts the client before it answers and leaves every per-address step to one
//! background worker, so known and unknown addresses answer alike; a link's holder
//! renews from a budget of its own. Every page sends the security headers of
//! `render`. Redirects go to fixed paths on this server; links in mail come from
//! `server.public_url`. Nothing here logs a token, a code or a password.

// Helpers return the page to show instead as their `Err`; it is sent at once, so its
// size does not matter.
#![allow(clippy::result_large_err)]

mod cookies;
mod render;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{Address, FlowKind, FlowRecord, FlowState, now_ms};
use crate::flow::{self, Button, CodeOutcome, FlowError, HashError, Hasher, SetPassword, machine};
use crate::services::Services;
use crate::store::{LimitKey, Rule, Take};

pub use render::{CSP, STYLESHEET};
use render::{Html, PageName, Pages, SeeOther, title};

const HOUR_MS: u64 = 3_600_000;

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
/// New links asked for from a link that no longer works, per address: the link
/// holder's own budget, which anonymous `/reset` requests do not spend.
pub const RENEW_PER_ADDRESS: Rule = Rule {
    max: 3,
    window_ms: HOUR_MS,
    lock_ms: HOUR_MS,
};
/// `/reset` requests waiting for the worker; past it they are dropped (and logged).
const RESET_BACKLOG: usize = 1024;

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

    /// Hands a `/reset` request to the one worker that does every per-address step
    /// (the address's limit, the lookup, the mail), started on first use. The page
    /// answers without waiting, so its timing is the same for known and unknown
    /// addresses; one worker, taking requests in turn, also keeps a burst of them from
    /// taking the server's cores.
    fn queue_reset(&self, address: Address, now: u64) {
        let tx = self.resets.get_or_init(|| {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<(Address, u64)>(RESET_BACKLOG);
            let services = self.services.clone();
            tokio::spawn(async move {
                while let Some((address, now)) = rx.recv().await {
                    reset_in_background(&services, address, now).await;
                }
            });
            tx
        });
        if tx.try_send((address, now)).is_err() {
            tracing::warn!("too many password-reset requests waiting; one was dropped");
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
        .route("/v/{token}", get(landing).post(button))
        .route("/v/{token}/code", get(code_form).post(code_submit))
        .route(
            "/v/{token}/password",
            get(password_form).post(password_submit),
        )
        .route("/v/{token}/done", get(done))
        .route("/v/{token}/renew", get(renew_switch).post(renew))
        .route("/reset", get(reset_form).post(reset_submit))
}

/// The client's IP address, when the server was started with connect info.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "unknown".into()),
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
    ) -> Result<(), Response> {
        match self.services.store.limit_take(key, rule, now).await {
            Ok(Take::Allowed { .. }) => Ok(()),
            Ok(Take::Refused { .. }) => Err(self
                .message(ctx, StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                .into_response()),
            Err(e) => Err(self.internal(ctx, &FlowError::Store(e))),
        }
    }

    fn internal(&self, ctx: &Ctx, e: &FlowError) -> Response {
        if let FlowError::Hash(HashError::Busy) = e {
            let mut html = self.message(ctx, StatusCode::SERVICE_UNAVAILABLE, "busy");
            html.retry_after = Some(30);
            return html.into_response();
        }
        tracing::error!(error = %e, "flow page failed");
        self.message(ctx, StatusCode::SERVICE_UNAVAILABLE, "internal")
            .into_response()
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
            "reason": flow.undeliverable_reason.clone().unwrap_or_default(),
        });
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

/// Looks a token up; `Err` is the page to show instead.
/// A token's flow, looked up once per request (the flow record is the costly read).
type Found = Result<Option<FlowRecord>, flow::FlowError>;

fn lookup(web: &FlowWeb, ctx: &Ctx, token: &str, found: Found) -> Result<FlowRecord, Response> {
    match found {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(web
            .problem(ctx, token, None, FlowState::Expired)
            .into_response()),
        Err(e) => Err(web.internal(ctx, &e)),
    }
}

/// Looks a token up and requires the flow to be open; `Err` is the page to show.
fn lookup_open(
    web: &FlowWeb,
    ctx: &Ctx,
    token: &str,
    found: Found,
    now: u64,
) -> Result<FlowRecord, Response> {
    let f = lookup(web, ctx, token, found)?;
    let state = machine::effective_state(&f, now);
    if state.is_open() {
        Ok(f)
    } else {
        Err(web.problem(ctx, token, Some(&f), state).into_response())
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

/// `GET /v/{token}` (and HEAD): the landing page. Changes nothing but a visit note.
async fn landing(
    State(web): State<FlowWeb>,
    method: Method,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &q, &token).await;
    let flow = match lookup(&web, &ctx, &token, found) {
        Ok(f) => f,
        Err(page) => return page,
    };
    if let Err(e) = flow::note_visit(&web.services.flows, &flow, method.as_str(), now).await {
        tracing::warn!(flow_id = %flow.id, error = %e, "cannot note a link visit");
    }
    let state = machine::effective_state(&flow, now);
    if !state.is_open() {
        return web
            .problem(&ctx, &token, Some(&flow), state)
            .into_response();
    }
    web.landing_page(&ctx, &token, &flow, json!({}), StatusCode::OK)
        .into_response()
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
) -> Result<T, Response> {
    let Ok(Form(f)) = form else {
        return Err(web
            .message(ctx, StatusCode::BAD_REQUEST, "bad_request")
            .into_response());
    };
    if !cookies::csrf_ok(headers, csrf(&f)) {
        return Err(web
            .message(ctx, StatusCode::FORBIDDEN, "csrf_failed")
            .into_response());
    }
    Ok(f)
}

/// `POST /v/{token}`: the button. Mails a code bound to this browser; 303 to the form.
async fn button(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &LangQuery::default(), &token).await;
    if let Err(page) = form(&web, &ctx, &headers, body, |f| &f.csrf) {
        return page;
    }
    let flow = match lookup_open(&web, &ctx, &token, found, now) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let held = cookies::get(&headers, cookies::BIND);
    match flow::press_button(&web.services.flows, &flow.id, held.as_deref(), now).await {
        Ok(Button::Mailed { binding }) => {
            let max_age = web.services.config.flows.link_lifetime.as_secs();
            let mut set = ctx.cookies.clone();
            set.push(cookies::set(cookies::BIND, &binding, web.secure(), max_age));
            see_other(format!("/v/{token}/code"), set)
        }
        Ok(Button::Refused(flow::ButtonRefusal::TooSoon { wait_s })) => web
            .landing_page(
                &ctx,
                &token,
                &flow,
                json!({"too_soon": true, "wait_s": wait_s}),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .into_response(),
        Ok(Button::Refused(flow::ButtonRefusal::Closed(state))) => web
            .problem(&ctx, &token, Some(&flow), state)
            .into_response(),
        Err(e) => web.internal(&ctx, &e),
    }
}

/// `GET /v/{token}/code`: the code form, in the browser that asked for the code.
async fn code_form(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &q, &token).await;
    let flow = match lookup_open(&web, &ctx, &token, found, now) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let binding = cookies::get(&headers, cookies::BIND);
    if flow::may_set_password(&flow, binding.as_deref(), now) {
        return see_other(format!("/v/{token}/password"), ctx.cookies);
    }
    if !flow::holds_code(&flow, binding.as_deref()) {
        let wrong_browser = flow.code.is_some();
        return web
            .landing_page(
                &ctx,
                &token,
                &flow,
                json!({"wrong_browser": wrong_browser}),
                StatusCode::OK,
            )
            .into_response();
    }
    web.code_page(&ctx, &token, &flow, json!({}), StatusCode::OK)
        .into_response()
}

/// `POST /v/{token}/code`: one try of the code.
async fn code_submit(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &LangQuery::default(), &token).await;
    let f = match form(&web, &ctx, &headers, body, |f| &f.csrf) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let flow = match lookup(&web, &ctx, &token, found) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let binding = cookies::get(&headers, cookies::BIND);
    let outcome = match flow::submit_code(
        &web.services.flows,
        &flow.id,
        &f.code,
        binding.as_deref(),
        now,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return web.internal(&ctx, &e),
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    match outcome {
        CodeOutcome::Verified => see_other(format!("/v/{token}/password"), ctx.cookies),
        CodeOutcome::Wrong { tries_left } => web
            .code_page(
                &ctx,
                &token,
                &flow,
                json!({"wrong": true, "tries_left": tries_left}),
                unprocessable,
            )
            .into_response(),
        CodeOutcome::TriesUsedUp => web
            .code_page(&ctx, &token, &flow, json!({"used_up": true}), unprocessable)
            .into_response(),
        CodeOutcome::CodeExpired => web
            .code_page(&ctx, &token, &flow, json!({"expired": true}), unprocessable)
            .into_response(),
        CodeOutcome::CodeUsed => web
            .code_page(
                &ctx,
                &token,
                &flow,
                json!({"already_used": true}),
                StatusCode::CONFLICT,
            )
            .into_response(),
        CodeOutcome::NoCode | CodeOutcome::WrongBrowser => web
            .landing_page(
                &ctx,
                &token,
                &flow,
                json!({"wrong_browser": true}),
                StatusCode::FORBIDDEN,
            )
            .into_response(),
        CodeOutcome::Locked => web
            .problem(&ctx, &token, Some(&flow), FlowState::Locked)
            .into_response(),
        CodeOutcome::Closed(state) => web
            .problem(&ctx, &token, Some(&flow), state)
            .into_response(),
    }
}

/// `GET /v/{token}/password`: the password form with its rules.
async fn password_form(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &q, &token).await;
    let flow = match lookup_open(&web, &ctx, &token, found, now) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let binding = cookies::get(&headers, cookies::BIND);
    if !flow::may_set_password(&flow, binding.as_deref(), now) {
        return see_other(format!("/v/{token}"), ctx.cookies);
    }
    web.password_page(&ctx, &token, &flow, &[]).into_response()
}

/// `POST /v/{token}/password`: checks, hashes and stores the password.
async fn password_submit(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &LangQuery::default(), &token).await;
    let f = match form(&web, &ctx, &headers, body, |f| &f.csrf) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let flow = match lookup_open(&web, &ctx, &token, found, now) {
        Ok(f) => f,
        Err(page) => return page,
    };
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
    .await;
    match result {
        Ok(SetPassword::Done) => see_other(format!("/v/{token}/done"), ctx.cookies),
        Ok(SetPassword::Refused(problems)) => web
            .password_page(&ctx, &token, &flow, &problems)
            .into_response(),
        Ok(SetPassword::NotAllowed) => see_other(format!("/v/{token}"), ctx.cookies),
        Err(e) => web.internal(&ctx, &e),
    }
}

/// `GET /v/{token}/done`: the done page, linking to the application.
async fn done(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (ctx, found) = web.token_ctx(&headers, &q, &token).await;
    let flow = match lookup(&web, &ctx, &token, found) {
        Ok(f) => f,
        Err(page) => return page,
    };
    if flow.state != FlowState::Completed {
        return see_other(format!("/v/{token}"), ctx.cookies);
    }
    let vars = json!({
        "app_url": web.services.config.flows.app_url,
        "setup": flow.kind == FlowKind::Setup,
    });
    web.page(&ctx, StatusCode::OK, PageName::Done, "done", vars)
        .into_response()
}

/// `POST /v/{token}/renew`: a new link by mail, for a link that no longer works.
async fn renew(
    State(web): State<FlowWeb>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let (ctx, found) = web.token_ctx(&headers, &LangQuery::default(), &token).await;
    if let Err(page) = form(&web, &ctx, &headers, body, |f| &f.csrf) {
        return page;
    }
    let flow = match lookup(&web, &ctx, &token, found) {
        Ok(f) => f,
        Err(page) => return page,
    };
    if machine::effective_state(&flow, now).is_open() {
        return see_other(format!("/v/{token}"), ctx.cookies);
    }
    let budget = LimitKey::new("renew-address", &[&flow.address.to_string().to_lowercase()]);
    if let Err(page) = web.take_limit(&ctx, &budget, RENEW_PER_ADDRESS, now).await {
        return page;
    }
    match flow::renew(&web.services.flows, &flow, now).await {
        Ok(_) => {
            let vars = json!({
                "renewed": true,
                "address": flow.address.to_string(),
                "lifetime": flow::mail::span(&ctx.lang, web.services.config.flows.link_lifetime),
            });
            web.page(&ctx, StatusCode::OK, PageName::Sent, "sent", vars)
                .into_response()
        }
        Err(e) => web.internal(&ctx, &e),
    }
}

/// `GET /v/{token}/renew`: only reached by the language switch on the page a renewal
/// answered; the link's page in the language chosen (the switch is kept for the link).
async fn renew_switch(Path(token): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang.filter(|l| matches!(l.as_str(), "ja" | "en"));
    let path = match lang {
        Some(l) => format!("/v/{token}?lang={l}"),
        None => format!("/v/{token}"),
    };
    see_other(path, Vec::new())
}

/// `GET /reset`: the form asking for an address.
async fn reset_form(
    State(web): State<FlowWeb>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let ctx = web.reset_ctx(&headers, &q);
    web.page(&ctx, StatusCode::OK, PageName::Reset, "request", json!({}))
        .into_response()
}

/// `POST /reset`: answers the same, at once, whether or not the address is known; the
/// lookup and any mail happen after the answer, so its timing tells nothing either.
async fn reset_submit(
    State(web): State<FlowWeb>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<ResetForm>, FormRejection>,
) -> Response {
    let now = now_ms();
    let ctx = web.reset_ctx(&headers, &LangQuery::default());
    let f = match form(&web, &ctx, &headers, body, |f| &f.csrf) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Ok(address) = Address::parse(&f.address) else {
        return web
            .page(
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                PageName::Reset,
                "request",
                json!({"bad_address": true}),
            )
            .into_response();
    };
    let client = LimitKey::new("reset-client", &[&ip]);
    if let Err(page) = web.take_limit(&ctx, &client, RESET_PER_CLIENT, now).await {
        return page;
    }
    web.queue_reset(address, now);
    let vars = json!({
        "reset": true,
        "lifetime": flow::mail::span(&ctx.lang, web.services.config.flows.link_lifetime),
    });
    web.page(&ctx, StatusCode::OK, PageName::Sent, "sent", vars)
        .into_response()
}

/// The per-address part of `POST /reset`, after the answer: the address's limit, then a
/// new link if the address is known. Forgets expired limit windows once an hour, so
/// strangers' addresses do not grow the store.
async fn reset_in_background(services: &Services, address: Address, now: u64) {
    static PRUNED_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = LimitKey::new("reset-address", &[&address.to_string().to_lowercase()]);
    match services
        .store
        .limit_take(&key, RESET_PER_ADDRESS, now)
        .await
    {
        Ok(Take::Allowed { .. }) => {
            if let Err(e) = flow::request_link(&services.flows, address, now).await {
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
        && let Err(e) = services.store.limit_prune(HOUR_MS, now).await
    {
        tracing::warn!(error = %e, "cannot forget old rate-limit windows");
    }
}

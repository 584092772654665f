//! The application's JSON API under `/api/v1`, behind `Authorization: Bearer <key>`.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{Address, MessageId};
use crate::queue::{EnqueueError, Outgoing, enqueue};
use crate::services::Services;
use crate::store::{LimitKey, Rule, Take};

/// The one mapping from API errors to responses: a status and
/// `{"error": {"code", "message", "request_id"}}`, the request id also in the
/// `x-request-id` header. An internal failure's details (a path, an OS error) go to the
/// log under that request id, never into the body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// What went wrong inside, for the log only.
    internal: Option<String>,
    /// Seconds to wait before asking again (`Retry-After`), for a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            internal: None,
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    /// The store (or signing) cannot take the request: 503, nothing acknowledged.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server cannot take this request now; nothing was accepted. \
                      Try again later."
                .into(),
            internal: Some(e.to_string()),
            retry_after: None,
        }
    }

    /// 429 for a client whose limit is full until `until_ms`, with `Retry-After` in
    /// whole seconds (at least 1).
    pub fn rate_limited(message: impl Into<String>, until_ms: u64, now: u64) -> ApiError {
        ApiError {
            retry_after: Some(until_ms.saturating_sub(now).div_ceil(1000).max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// The machine-readable name of the status.
    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::GONE => "gone",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = crate::secrets::request_id();
        match &self.internal {
            Some(detail) => {
                tracing::error!(request_id = %request_id, status = self.status.as_u16(), error = %detail, "API request failed")
            }
            None => {
                tracing::debug!(request_id = %request_id, status = self.status.as_u16(), message = %self.message, "API request refused")
            }
        }
        let body = json!({ "error": {
            "code": self.code(),
            "message": self.message,
            "request_id": request_id,
        }});
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(v) = request_id.parse() {
            response.headers_mut().insert("x-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// The most a JSON request body may hold.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The most a raw bounce report may hold (it carries the returned message).
pub const BOUNCE_BODY_LIMIT: usize = 16 * 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than {} KiB (a raw bounce may be {} MiB)",
            BODY_LIMIT / 1024,
            BOUNCE_BODY_LIMIT / 1024 / 1024
        ),
    )
}

/// A body that is not the JSON asked for: 400 (not JSON), 413 (too large), 415 (no
/// `Content-Type: application/json`) or 422 (JSON of the wrong shape), as axum tells.
impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            status => ApiError::new(status, e.body_text()),
        }
    }
}

/// A query string that does not parse: 400, naming the field.
impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::bad_request(e.body_text())
    }
}

/// Gives every error answer under `/api/` the JSON shape, including those made before
/// a handler runs: an unknown route (404), a wrong method (405, keeping `Allow`), a
/// body over the limit (413). Answers already in JSON pass unchanged.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // The rest of an oversized body is not read, so the connection cannot carry another
    // request: say so, or a client reusing it gets a broken answer to its next one.
    let close = status == StatusCode::PAYLOAD_TOO_LARGE;
    if close {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    // A 405's `Allow` header is added by the router around this layer, and stays.
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::new(
            status,
            format!("there is no {path} in the API; /api/v1/openapi.json lists every route"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            format!("{path} does not take {method}; the Allow header lists what it takes"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        s => ApiError::new(s, s.canonical_reason().unwrap_or("error").to_string()),
    };
    let mut out = error.into_response();
    if close {
        out.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    out
}

/// `GET /api/v1/openapi.json`: the API's description, kept in the repository as
/// `openapi.json`. Public, as the routes it describes are.
pub async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> ApiError {
        match e {
            EnqueueError::Invalid(crate::compose::ComposeError::TooLarge { .. }) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            EnqueueError::Invalid(_) | EnqueueError::Locale(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            EnqueueError::Store(s) => ApiError::internal(s),
            EnqueueError::Sign(s) => ApiError::internal(s),
        }
    }
}

/// An authenticated application: the name of its API key. Taking one also takes a
/// slot of the key's request limit (`server.api_requests_per_minute`).
pub struct ApiClient(pub String);

/// The scope of the per-key request limit in the store's limiter.
const API_KEY_LIMIT: &str = "api-key";

/// The per-key request limit: a fixed window of a minute, open again as soon as the
/// window ends.
fn per_key_rule(per_minute: u32) -> Rule {
    Rule {
        max: per_minute,
        window_ms: 60_000,
        lock_ms: 0,
    }
}

/// Takes a slot of `name`'s request limit: 429 when the key has made its requests for
/// this minute, counted in the store so every node and every restart sees one count.
async fn take_request_slot(services: &Services, name: &str) -> Result<(), ApiError> {
    let per_minute = services.config.server.api_requests_per_minute;
    if per_minute == 0 {
        return Ok(());
    }
    let now = crate::domain::now_ms();
    let key = LimitKey::new(API_KEY_LIMIT, &[name]);
    match services
        .store
        .limit_take_chunked(&key, per_key_rule(per_minute), now)
        .await
        .map_err(ApiError::internal)?
    {
        Take::Allowed { .. } => Ok(()),
        Take::Refused { until_ms } => Err(ApiError::rate_limited(
            format!(
                "the API key {name:?} has made its {per_minute} requests for this minute \
                 (server.api_requests_per_minute); try again after Retry-After seconds"
            ),
            until_ms,
            now,
        )),
    }
}

impl FromRequestParts<Services> for ApiClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send an API key as `Authorization: Bearer <key>` (create one with `mailgate apikey create NAME`)",
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let key = header
            .strip_prefix("Bearer ")
            .ok_or_else(unauthorized)?
            .trim();
        match crate::apikey::verify(&services.store, key)
            .await
            .map_err(ApiError::internal)?
        {
            Some(record) => {
                take_request_slot(services, &record.name).await?;
                Ok(ApiClient(record.name))
            }
            None => Err(unauthorized()),
        }
    }
}

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub to: String,
    pub template: String,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub vars: Value,
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /api/v1/messages` → 202 `{"message_id"}` once the message is on disk.
pub async fn post_message(
    State(services): State<Services>,
    _client: ApiClient,
    body: Result<Json<SendRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(req) = body?;
    if crate::flow::mail::FLOW_TEMPLATES.contains(&req.template.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the template {:?} is sent only by flows, with a link or code mailgate makes \
                 itself: start one with POST /api/v1/flows",
                req.template
            ),
        ));
    }
    let to = Address::parse(&req.to)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("to: {e}")))?;
    let locale = req
        .locale
        .unwrap_or_else(|| services.config.flows.default_locale.clone());
    let done = enqueue(
        &services.queue,
        Outgoing {
            to,
            to_name: req.name,
            template: req.template,
            locale,
            vars: req.vars,
            lifetime: None,
            flow_id: None,
            not_before_ms: None,
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "message_id": done.message_id.to_string(),
            "message_id_header": done.message_id_header,
            "status": done.status.as_str(),
        })),
    ))
}

/// `GET /api/v1/messages/{id}` → status and events.
pub async fn get_message(
    State(services): State<Services>,
    _client: ApiClient,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let mid = MessageId::parse(&id)
        .ok_or_else(|| ApiError::bad_request(format!("{id:?} is not a message id")))?;
    match crate::timeline::message_view(&services.store, &mid)
        .await
        .map_err(ApiError::internal)?
    {
        Some(view) => Ok(Json(view)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no message {id}"),
        )),
    }
}

/// The query of `GET /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The most events one page holds.
const EVENTS_LIMIT_MAX: usize = 1000;

/// `GET /api/v1/events?after=SEQ&limit=N` → `{"events": [...], "next_after": SEQ}`:
/// the events numbered above `after`, in order; ask again with `next_after` (the last
/// number of the page, or `after` itself when the page is empty) to go on. Nothing is
/// skipped between pages.
///
/// Events older than `store.retention` are forgotten from the start of the log. A
/// cursor that fell behind them gets 410 Gone, never a page that silently skips: the
/// reader catches up from `GET /api/v1/flows` and goes on from the number the message
/// gives. `after=0` means "from the oldest event kept" and never gets 410.
pub async fn get_events(
    State(services): State<Services>,
    _client: ApiClient,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > EVENTS_LIMIT_MAX {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is not between 1 and {EVENTS_LIMIT_MAX}"
        )));
    }
    let events = services
        .store
        .events_after(q.after, limit)
        .await
        .map_err(ApiError::internal)?;
    // Numbers run without a gap but for the forgotten start (store::Events), so a
    // first event past after + 1 means the reader missed the ones between.
    if let Some(first) = events.first()
        && q.after > 0
        && first.seq > q.after + 1
    {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "events {} to {} were forgotten after store.retention, so this cursor cannot \
                 go on without missing them: catch up from GET /api/v1/flows, then read on \
                 with after={} (or after=0, the oldest event kept)",
                q.after + 1,
                first.seq - 1,
                first.seq - 1
            ),
        ));
    }
    let next_after = events.last().map(|e| e.seq).unwrap_or(q.after);
    Ok(Json(json!({ "events": events, "next_after": next_after })))
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    pub address: String,
}

/// `GET /api/v1/log?address=` → every message to the address (or the one message)
/// with its timeline; a domain or an address prefix lists the matching addresses; an
/// address without mail offers "did you mean" addresses ([`crate::timeline::search`]).
pub async fn get_log(
    State(services): State<Services>,
    _client: ApiClient,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query?;
    use crate::timeline::LookupError;
    match crate::timeline::search(&services.store, &q.address).await {
        Ok(view) => Ok(Json(view)),
        Err(e @ LookupError::NotAQuery { .. }) => Err(ApiError::bad_request(e.to_string())),
        Err(LookupError::Store(e)) => Err(ApiError::internal(e)),
    }
}

/// `POST /api/v1/bounces`: a raw bounce message as the body.
pub async fn post_bounce(
    State(services): State<Services>,
    _client: ApiClient,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::new(status, e.body_text()),
    })?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "send the raw bounce message as the request body",
        ));
    }
    crate::intake::refuse_junk(&body)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let result = crate::intake::take(
        &services.intake,
        &body,
        crate::domain::bounce::BounceSource::Api,
        &[],
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, Json(result)))
}

#[derive(Debug, Deserialize)]
pub struct BouncesQuery {
    #[serde(default)]
    pub since: Option<String>,
}

/// `GET /api/v1/bounces?since=7d`.
pub async fn get_bounces(
    State(services): State<Services>,
    _client: ApiClient,
    query: Result<Query<BouncesQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query?;
    let since = q.since.unwrap_or_else(|| "7d".into());
    let since_ms = crate::domain::duration::period_start(&since, crate::domain::now_ms())
        .map_err(|e| ApiError::bad_request(format!("since: {e}")))?;
    let list = services
        .store
        .bounces_since(since_ms)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(list))
}

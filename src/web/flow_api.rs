//! The application's flow API: start a flow, read one, check a password.
//!
//! `POST /api/v1/flows` `{"kind", "address", "name", "locale"}` → 202
//! `{"flow_id", "message_id", "expires_at"}`; `GET /api/v1/flows/{id}` → the flow's
//! state and timeline; `POST /api/v1/credentials/verify` `{"address", "password"}` →
//! `{"valid": bool}`; `GET /api/v1/flows?address=&state=&limit=` → `{"flows": [...]}`,
//! newest first. All behind the same bearer keys as the rest of `/api/v1`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Address, FlowKind, FlowState, format_time_ms, now_ms};
use crate::flow::{self, FlowError, FlowView, HashError, StartFlow, Started};
use crate::web::api::{ApiClient, ApiError};
use crate::web::pages::FlowWeb;

/// The flow API routes.
pub fn router() -> Router<FlowWeb> {
    Router::new()
        .route("/api/v1/flows", post(post_flow).get(list_flows))
        .route("/api/v1/flows/{id}", get(get_flow))
        .route("/api/v1/credentials/verify", post(verify_credentials))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::web::api::BODY_LIMIT,
        ))
}

/// An authenticated application, checked as [`ApiClient`] is.
pub struct FlowClient(#[allow(dead_code)] pub String);

impl FromRequestParts<FlowWeb> for FlowClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &FlowWeb) -> Result<Self, ApiError> {
        let ApiClient(name) = ApiClient::from_request_parts(parts, &web.services).await?;
        Ok(FlowClient(name))
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> ApiError {
        match e {
            FlowError::Locale(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            FlowError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            FlowError::NoAccount(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            FlowError::Enqueue(q) => q.into(),
            FlowError::Hash(HashError::Busy) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            FlowError::Store(_) | FlowError::Hash(_) => ApiError::internal(e),
        }
    }
}

/// Body of `POST /api/v1/flows`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRequest {
    pub kind: FlowKind,
    pub address: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

async fn post_flow(
    State(web): State<FlowWeb>,
    _client: FlowClient,
    body: Result<Json<FlowRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(req) = body?;
    let address = Address::parse(&req.address)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("address: {e}")))?;
    // Checked before the flow is stored: its mail would be refused after.
    if let Some(name) = &req.name {
        crate::compose::check_name("name", name)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    }
    let started = flow::start(
        &web.services.flows,
        StartFlow {
            kind: req.kind,
            address,
            name: req.name,
            locale: req.locale,
            not_before_ms: None,
            only_if_new: false,
            dry_run: false,
        },
        now_ms(),
    )
    .await?;
    match started {
        Started::Started {
            flow_id,
            message_id,
            expires_ms,
        } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "flow_id": flow_id,
                "message_id": message_id,
                "expires_at": format_time_ms(expires_ms),
            })),
        )),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn get_flow(
    State(web): State<FlowWeb>,
    _client: FlowClient,
    Path(id): Path<String>,
) -> Result<Json<FlowView>, ApiError> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let flow = if valid {
        web.services
            .store
            .flow(&id)
            .await
            .map_err(ApiError::internal)?
    } else {
        None
    };
    flow.map(|f| Json(FlowView::new(&f, now_ms())))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no flow {id}")))
}

/// The query of `GET /api/v1/flows`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsQuery {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub state: Option<FlowState>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The most flows one list answers.
const FLOWS_LIMIT_MAX: usize = 1000;

/// `GET /api/v1/flows`: flows by address and state (as `GET /api/v1/flows/{id}` shows
/// it: a lapsed link reads `expired` even before the sweep writes it), newest first.
async fn list_flows(
    State(web): State<FlowWeb>,
    _client: FlowClient,
    query: Result<Query<FlowsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > FLOWS_LIMIT_MAX {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is not between 1 and {FLOWS_LIMIT_MAX}"
        )));
    }
    let address = match &q.address {
        Some(a) => Some(
            Address::parse(a)
                .map_err(|e| ApiError::bad_request(format!("address: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    // An open state's flows may read `expired`: ask for them all, then filter.
    let stored: Vec<FlowState> = match q.state {
        None => vec![],
        Some(FlowState::Expired) => vec![
            FlowState::Issued,
            FlowState::Mailed,
            FlowState::Opened,
            FlowState::CodeSent,
            FlowState::CodeVerified,
            FlowState::Expired,
        ],
        Some(s) => vec![s],
    };
    let now = now_ms();
    let flows: Vec<FlowView> = web
        .services
        .store
        .list_flows(address.as_deref(), &stored, usize::MAX)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(|f| FlowView::new(f, now))
        .filter(|v| q.state.is_none_or(|s| v.state == s))
        .take(limit)
        .collect();
    Ok(Json(json!({ "flows": flows })))
}

/// Body of `POST /api/v1/credentials/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequest {
    pub address: String,
    pub password: String,
}

async fn verify_credentials(
    State(web): State<FlowWeb>,
    _client: FlowClient,
    body: Result<Json<CredentialsRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body?;
    // An address that does not parse is checked against the decoy like an unknown one.
    let address = Address::parse(&req.address)
        .unwrap_or_else(|_| Address::parse("nobody@invalid.invalid").expect("valid"));
    let valid =
        flow::verify_credentials(&web.services.flows, &web.hasher, &address, req.password).await?;
    Ok(Json(json!({ "valid": valid })))
}

//! Accounts that can be revoked, in the console: `/account` shows an operator's own
//! live sessions and ends them all ("log out everywhere"); `/admin/operators` lets an
//! admin disable, enable, remove, re-role or re-password an operator. The changes are
//! those of `mailgate operator …` (both call [`crate::operators`]), so both ways end
//! the same sessions and write the same audit entries.

use axum::Form;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::admin_tz;
use super::sentence::stamp;
use super::session::{ConsoleUser, SESSION_COOKIE, set_cookie};
use super::{ConsoleError, pages};
use crate::domain::now_ms;
use crate::operators::{self, OperatorError, Role};
use crate::services::Services;

fn op_error(e: OperatorError) -> ConsoleError {
    match e {
        OperatorError::Store(s) => ConsoleError::Store(s),
        other => ConsoleError::BadRequest(other.to_string()),
    }
}

/// `GET /account`: this operator's live sessions.
pub async fn own_sessions(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    let tz = admin_tz(&services);
    let current = operators::session_id(&user.token);
    let rows: Vec<Value> = operators::sessions_of(&services.store, &user.operator.name, now_ms())
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id, "created": stamp(s.created_ms, tz), "expires": stamp(s.expires_ms, tz),
                "current": s.id == current,
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "account",
        &pages::for_user(&user, "Your sessions", json!({ "rows": rows })),
    )))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /account/logout-everywhere`: ends every session of this operator, this one
/// too, and goes to the login page.
pub async fn log_out_everywhere(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    operators::log_out_everywhere(&services.store, &user.operator.name)
        .await
        .map_err(op_error)?;
    crate::audit::record(&services.store, &user.who(), "logout everywhere", "").await?;
    services.store.flush().await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&services, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn operators_page(
    services: &Services,
    user: &ConsoleUser,
    flash: Option<String>,
) -> Result<Response, ConsoleError> {
    let tz = admin_tz(services);
    let rows: Vec<Value> = operators::list(&services.store, now_ms())
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "name": r.name, "role": r.role.as_str(), "disabled": r.disabled,
                "state": if r.disabled { "disabled" } else { "enabled" },
                "sessions": r.sessions, "created": stamp(r.created_ms, tz),
            })
        })
        .collect();
    Ok(pages::respond(pages::render(
        "operators",
        &pages::for_user(user, "Operators", json!({ "rows": rows, "flash": flash })),
    )))
}

/// `GET /admin/operators`.
pub async fn operators(
    State(services): State<Services>,
    user: ConsoleUser,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    operators_page(&services, &user, None).await
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// `POST /admin/operators/change`: `action` is disable, enable, remove, role or
/// passwd. An admin may not disable or remove themself here (the console would lock
/// its last admin out); the command line can.
pub async fn operator_change(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<ChangeForm>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    user.check_csrf(&form.csrf)?;
    let name = form.name.trim();
    let store = &services.store;
    let flash = match form.action.as_str() {
        "disable" | "remove" if name == user.operator.name => format!(
            "Nothing changed: you cannot {} your own account here; ask another admin or use mailgate operator {} {name}.",
            form.action, form.action
        ),
        "disable" | "enable" | "remove" => {
            let change: operators::Change =
                form.action.parse().map_err(ConsoleError::BadRequest)?;
            match operators::apply(store, name, change).await {
                Ok(text) => {
                    crate::audit::record(
                        store,
                        &user.who(),
                        &format!("operator {}", change.as_str()),
                        name,
                    )
                    .await?;
                    text
                }
                Err(OperatorError::Store(e)) => return Err(ConsoleError::Store(e)),
                Err(e) => format!("Nothing changed: {e}."),
            }
        }
        "role" => {
            let role: Role = form
                .role
                .parse()
                .map_err(|e: OperatorError| ConsoleError::BadRequest(e.to_string()))?;
            operators::set_role(store, name, role)
                .await
                .map_err(op_error)?;
            crate::audit::record(
                store,
                &user.who(),
                "operator role",
                &format!("{name} ({})", role.as_str()),
            )
            .await?;
            format!(
                "operator {name} now has the role {}; every session of it has ended",
                role.as_str()
            )
        }
        "passwd" => {
            let password = form.password.clone();
            let hash = tokio::task::spawn_blocking(move || operators::hash_password(&password))
                .await
                .map_err(|e| ConsoleError::Unavailable(Box::new(e)))?;
            match hash {
                Ok(hash) => {
                    operators::set_password(store, name, &hash)
                        .await
                        .map_err(op_error)?;
                    crate::audit::record(store, &user.who(), "operator passwd", name).await?;
                    format!("operator {name} has a new password; every session of it has ended")
                }
                Err(e) => format!("Nothing changed: {e}."),
            }
        }
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "unknown action {other:?}"
            )));
        }
    };
    services.store.flush().await?;
    // A change to one's own account ended this session too: to the login page.
    if operators::session(store, &user.token, now_ms())
        .await?
        .is_none()
    {
        return Ok(Redirect::to("/login").into_response());
    }
    operators_page(&services, &user, Some(flash)).await
}

//! `GET|POST /login` and `POST /logout`.
//!
//! The login form is protected by a double-submit token (a cookie and a hidden field
//! that must match), since there is no session yet. A failed login waits
//! [`FAILURE_DELAY_MS`] before answering; repeated failures lock the name (see
//! [`crate::operators`]). The answer is the same for an unknown name and a wrong
//! password.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::ConsoleError;
use super::pages;
use super::sentence::Lang;
use super::session::{ConsoleUser, Cookies, LOGIN_COOKIE, SESSION_COOKIE, same, set_cookie};
use super::text::choose_lang;
use crate::domain::now_ms;
use crate::operators::{FAILURE_DELAY_MS, LoginOutcome, Role, SESSION_LIFETIME_MS};
use crate::services::Services;
use crate::web::pages::ClientIp;

/// Where an operator lands after logging in.
fn home(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Support => "/support",
    }
}

fn login_page(
    services: &Services,
    lang: Lang,
    token: &str,
    name: &str,
    error: Option<&str>,
) -> Response {
    let html = pages::render(
        "login",
        &pages::bare(
            lang,
            "login",
            "/login",
            json!({ "login_csrf": token, "name": name, "error": error }),
        ),
    );
    let mut response = pages::respond(html);
    if let Ok(v) = set_cookie(services, LOGIN_COOKIE, token, 3600).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default)]
    lang: Option<String>,
}

/// The login page's language: the link's `?lang=` (or the form's), else the browser's.
fn login_lang(services: &Services, asked: Option<&str>, headers: &HeaderMap) -> Lang {
    let lang = choose_lang(asked, None, headers, &services.config.flows.default_locale);
    super::set_page_lang(lang);
    lang
}

/// `GET /login`: the form (or the operator's home when already logged in).
pub async fn form(
    State(services): State<Services>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    user: Result<ConsoleUser, ConsoleError>,
) -> Response {
    if let Ok(user) = user {
        return Redirect::to(home(user.operator.role)).into_response();
    }
    let lang = login_lang(&services, q.lang.as_deref(), &headers);
    login_page(&services, lang, &crate::operators::random_token(), "", None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /login`.
pub async fn submit(
    State(services): State<Services>,
    ClientIp(client): ClientIp,
    cookies: Cookies,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let lang = login_lang(&services, form.lang.as_deref(), &cookies.0);
    let expected = cookies.get(LOGIN_COOKIE).unwrap_or_default();
    if !same(&form.csrf, &expected) {
        return Err(ConsoleError::Csrf);
    }
    let name = form.name.trim().to_string();
    let now = now_ms();
    let outcome = crate::operators::login(&services.store, &name, &client, &form.password, now)
        .await
        .map_err(|e| match e {
            crate::operators::OperatorError::Store(s) => ConsoleError::Store(s),
            other => ConsoleError::BadRequest(other.to_string()),
        })?;
    let target: String = name.chars().take(64).collect();
    let failed = |services: &Services, text: &'static str| {
        let store = services.store.clone();
        let target = target.clone();
        async move { crate::audit::record(&store, "login form", text, &target).await }
    };
    match outcome {
        LoginOutcome::Success(op) => {
            let (token, _) = crate::operators::start_session(&services.store, &op, now).await?;
            crate::audit::record(
                &services.store,
                &format!("operator {}", op.name),
                "login",
                "",
            )
            .await?;
            services.store.flush().await?;
            let mut response = Redirect::to(home(op.role)).into_response();
            let headers = response.headers_mut();
            for v in [
                set_cookie(
                    &services,
                    SESSION_COOKIE,
                    &token,
                    SESSION_LIFETIME_MS / 1000,
                ),
                set_cookie(&services, LOGIN_COOKIE, "", 0),
            ] {
                if let Ok(v) = v.parse() {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        LoginOutcome::Refused => {
            failed(&services, "login failed").await?;
            services.store.flush().await?;
            tokio::time::sleep(std::time::Duration::from_millis(FAILURE_DELAY_MS)).await;
            let wrong = match lang {
                Lang::Ja => "担当者名またはパスワードが違います。",
                Lang::En => "The name or the password is wrong.",
            };
            Ok(login_page(&services, lang, &expected, &name, Some(wrong)))
        }
        LoginOutcome::Locked { until_ms } => {
            failed(&services, "login refused: locked").await?;
            services.store.flush().await?;
            tokio::time::sleep(std::time::Duration::from_millis(FAILURE_DELAY_MS)).await;
            let tz = super::text::zone(&services.config, lang, None);
            let until = super::sentence::clock(until_ms, tz, lang, now);
            let text = match lang {
                Lang::Ja => format!(
                    "この担当者名で、この接続元からのログイン失敗が続いたため、一時的にログインできません。{until}以降にもう一度お試しいただくか、管理者に新しいパスワードの設定を依頼してください。"
                ),
                Lang::En => format!(
                    "Too many failed logins for this name from this address. Try again after {until}, or ask an admin to set a new password."
                ),
            };
            Ok(login_page(&services, lang, &expected, &name, Some(&text)))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(services): State<Services>,
    user: ConsoleUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    crate::operators::end_session(&services.store, &user.token).await?;
    crate::audit::record(&services.store, &user.who(), "logout", "").await?;
    services.store.flush().await?;
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&services, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

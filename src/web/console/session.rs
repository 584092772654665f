//! Who is asking: the session cookie, the role check and the CSRF check.
//!
//! Cookies: `mailgate_session` (the session token) and, before login,
//! `mailgate_login` (a double-submit token for the login form). Both are HttpOnly,
//! SameSite=Strict, Path=/, and Secure when `server.public_url` is https.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::web::cookie;

use super::ConsoleError;
use super::sentence::Lang;
use super::text::{choose_lang, zone};
use crate::domain::now_ms;
use crate::operators::{OperatorRecord, Role, Session};
use crate::services::Services;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailgate_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "mailgate_login";

/// A logged-in operator.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub operator: OperatorRecord,
    pub session: Session,
    /// The raw session token (to end the session on logout).
    pub token: String,
    /// The language of this page view (see [`super::text::choose_lang`]).
    pub lang: Lang,
    /// The operator's clock: every time on the page is in it.
    pub tz: chrono_tz::Tz,
    /// The path and query of this request, where the language switch comes back to.
    pub here: String,
}

impl ConsoleUser {
    /// Refuses with 403 unless the operator's role allows pages for `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ConsoleError> {
        if self.operator.role.allows(needed) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden {
                needed: needed.as_str(),
                name: self.operator.name.clone(),
                role: self.operator.role.as_str(),
            })
        }
    }

    /// Refuses with 403 unless `sent` is this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ConsoleError> {
        if same(sent, &self.session.csrf) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }

    /// The name written to the audit log.
    pub fn who(&self) -> String {
        format!("operator {}", self.operator.name)
    }
}

pub use crate::secrets::same;

/// A `Set-Cookie` value; an empty value with `max_age` 0 deletes the cookie.
pub fn set_cookie(services: &Services, name: &str, value: &str, max_age_s: u64) -> String {
    let scope = cookie::Scope {
        path: "/",
        same_site: cookie::SameSite::Strict,
        max_age_s: Some(max_age_s),
        secure: services.config.server.public_url.starts_with("https://"),
    };
    cookie::set(name, value, scope)
}

impl FromRequestParts<Services> for ConsoleUser {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, ConsoleError> {
        let token = cookie::value(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::LoggedOut)?;
        let (session, operator) = crate::operators::session(&services.store, &token, now_ms())
            .await?
            .ok_or(ConsoleError::LoggedOut)?;
        let asked = axum::extract::Query::<LangQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.lang);
        let prefs = crate::operators::preferences(&services.store, &operator.name).await?;
        let lang = choose_lang(
            asked.as_deref(),
            prefs.lang.as_deref(),
            &parts.headers,
            &services.config.flows.default_locale,
        );
        super::set_page_lang(lang);
        let tz = zone(&services.config, lang, prefs.timezone.as_deref());
        let here = return_path(&parts.method, &parts.uri);
        Ok(ConsoleUser {
            operator,
            session,
            token,
            lang,
            tz,
            here,
        })
    }
}

/// Where the language switch of this page leads back to: the page itself for a GET;
/// for a page drawn by a form's POST (`/support/resend`), the page the form lives on
/// (`/support`), since the POST's own path answers no GET.
fn return_path(method: &axum::http::Method, uri: &axum::http::Uri) -> String {
    if method == axum::http::Method::GET {
        return uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
    }
    match uri.path().rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() => parent.to_string(),
        _ => "/".into(),
    }
}

#[derive(serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// A request's cookie jar, for handlers that need a cookie without a session.
pub struct Cookies(pub HeaderMap);

impl<S: Send + Sync> FromRequestParts<S> for Cookies {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Cookies(parts.headers.clone()))
    }
}

impl Cookies {
    pub fn get(&self, name: &str) -> Option<String> {
        cookie::value(&self.0, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, Uri};

    #[test]
    fn a_page_drawn_by_a_post_switches_language_back_to_a_page_that_answers_get() {
        let at = |m: Method, u: &str| return_path(&m, &u.parse::<Uri>().unwrap());
        assert_eq!(
            at(Method::GET, "/support?q=a%2Bb%40x.jp"),
            "/support?q=a%2Bb%40x.jp"
        );
        assert_eq!(at(Method::POST, "/support/resend"), "/support");
        assert_eq!(at(Method::POST, "/admin/queue/retry"), "/admin/queue");
        assert_eq!(at(Method::POST, "/login"), "/");
    }
}

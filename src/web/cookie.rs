//! The web layer's one cookie implementation, on the `cookie` crate: reading a value
//! from a request's `Cookie` headers, and writing a `Set-Cookie` value. The pages and
//! the console both use it; what each cookie holds, and for how long, is theirs to say
//! (`pages::cookies`, `console::session`). Every cookie mailgate sets is `HttpOnly`
//! (no script reads it) and `Secure` when `server.public_url` is https.

use axum::http::{HeaderMap, header};
use cookie::Cookie;
pub use cookie::SameSite;

/// A cookie's value from the request, if sent (the first of that name).
pub fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Where a cookie is sent, and for how long.
pub struct Scope<'a> {
    /// The path it is sent on (`/` for every page).
    pub path: &'a str,
    pub same_site: SameSite,
    /// Seconds it lives; `None` ends it with the browser session, `Some(0)` deletes it.
    pub max_age_s: Option<u64>,
    pub secure: bool,
}

/// A `Set-Cookie` value, always `HttpOnly`.
pub fn set(name: &str, value: &str, scope: Scope<'_>) -> String {
    let mut c = Cookie::build((name, value))
        .path(scope.path)
        .http_only(true)
        .same_site(scope.same_site)
        .secure(scope.secure);
    if let Some(s) = scope.max_age_s {
        let seconds = i64::try_from(s).unwrap_or(i64::MAX);
        c = c.max_age(cookie::time::Duration::seconds(seconds));
    }
    c.build().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_from_any_cookie_header_and_a_set_cookie_says_its_scope() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; mg_csrf=abc".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(value(&headers, "mg_csrf").as_deref(), Some("abc"));
        assert_eq!(value(&headers, "b").as_deref(), Some("2"));
        assert_eq!(value(&headers, "c"), None);
        let set = set(
            "mg_lang",
            "ja",
            Scope {
                path: "/v/t",
                same_site: SameSite::Lax,
                max_age_s: Some(60),
                secure: true,
            },
        );
        for part in [
            "mg_lang=ja",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/v/t",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{part} not in {set}");
        }
    }
}

//! The three cookies of the person's pages, and CSRF.
//!
//! - `mg_csrf`: a random value; every form carries it in a hidden field and a POST is
//!   accepted only when field and cookie agree (double submit; the cookie is
//!   `SameSite=Strict`, so another site's form cannot send it).
//! - `mg_bind`: the browser-binding value set when the button is pressed; only its
//!   SHA-256 is stored with the code, so the code works only in this browser.
//! - `mg_lang`: the language the person chose with the switch, kept on the path of
//!   what it was chosen for (one link's pages, or `/reset`), not site-wide.
//!
//! All are `HttpOnly`, and `Secure` when `server.public_url` is https.

use crate::web::cookie::{self, SameSite, Scope};
use axum::http::HeaderMap;

use crate::flow::secret;

pub const CSRF: &str = "mg_csrf";
pub const BIND: &str = "mg_bind";
pub const LANG: &str = "mg_lang";

/// A cookie's value from the request, if sent.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie::value(headers, name).filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A `Set-Cookie` value for a secret: `SameSite=Strict`, on every path.
pub fn set(name: &str, value: &str, secure: bool, max_age_s: u64) -> String {
    let scope = Scope {
        path: "/",
        same_site: SameSite::Strict,
        max_age_s: Some(max_age_s),
        secure,
    };
    cookie::set(name, value, scope)
}

/// The `Set-Cookie` value of a language switch, on `path` only; without `max_age_s`
/// it ends with the browser session.
pub fn set_lang(value: &str, path: &str, secure: bool, max_age_s: Option<u64>) -> String {
    let scope = Scope {
        path,
        same_site: SameSite::Lax,
        max_age_s,
        secure,
    };
    cookie::set(LANG, value, scope)
}

/// The CSRF value for a page with a form: the browser's, or a new one to set.
pub fn csrf_for_page(headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match get(headers, CSRF).filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(v) => (v, None),
        None => {
            let v = secret::new_binding();
            let cookie = set(CSRF, &v, secure, 86_400);
            (v, Some(cookie))
        }
    }
}

/// True when a POST's hidden field matches the browser's CSRF cookie.
pub fn csrf_ok(headers: &HeaderMap, field: &str) -> bool {
    get(headers, CSRF).is_some_and(|c| secret::same(&c, field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::http::header::COOKIE;

    #[test]
    fn cookies_are_read_by_name_and_csrf_must_match() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; mg_csrf=00112233445566778899aabbccddeeff; b=2"),
        );
        assert_eq!(get(&h, "b").as_deref(), Some("2"));
        assert!(csrf_ok(&h, "00112233445566778899aabbccddeeff"));
        assert!(!csrf_ok(&h, "00112233445566778899aabbccddeefe"));
        assert!(!csrf_ok(&HeaderMap::new(), ""));
        let (v, set_cookie) = csrf_for_page(&h, true);
        assert_eq!(v, "00112233445566778899aabbccddeeff");
        assert!(set_cookie.is_none());
        let (_, set_cookie) = csrf_for_page(&HeaderMap::new(), true);
        let c = set_cookie.unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
    }
}

//! The security headers every response carries, set in one layer around the whole
//! router so that no route can forget them: `/healthz`, `/metrics`, a 404, a redirect
//! to the login page and API JSON get the same floor as the pages (OWASP ASVS 5.0
//! V3.4). A handler that sets a stricter or more specific value (the pages' own CSP,
//! their `Referrer-Policy`) keeps it: the layer only fills in what is missing.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The CSP of a response that did not set one: it loads nothing and may not be framed.
/// JSON and text need no more; HTML routes set their own (with `style-src 'self'`).
const FLOOR_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// HSTS for a year: sent only when `server.public_url` is https, since browsers
/// ignore it over http and a local http setup must stay reachable.
const HSTS: &str = "max-age=31536000";

/// What the layer needs to know: whether the public URL is https.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub hsts: bool,
}

impl Policy {
    /// The policy for a server whose mailed links start with `public_url`.
    pub fn for_public_url(public_url: &str) -> Policy {
        Policy {
            hsts: public_url.to_ascii_lowercase().starts_with("https://"),
        }
    }
}

/// The middleware: runs the request, then fills in the headers the response lacks.
pub async fn add(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    apply(policy, response.headers_mut());
    response
}

fn apply(policy: Policy, h: &mut axum::http::HeaderMap) {
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, FLOOR_CSP),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if policy.hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn hsts_only_for_an_https_public_url() {
        let mut h = HeaderMap::new();
        apply(Policy::for_public_url("http://localhost:8080"), &mut h);
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none());
        apply(Policy::for_public_url("HTTPS://mail.example.jp"), &mut h);
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }

    #[test]
    fn a_csp_set_by_the_handler_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'self'"),
        );
        apply(Policy { hsts: false }, &mut h);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

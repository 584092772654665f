//! The console's templates (compiled into the binary) and the headers every console
//! page carries. Handlebars escapes every `{{value}}` (`& < > " ' = \``); the templates
//! never use the unescaped `{{{…}}}` form, because bounce texts come from strangers.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{Value, json};

use super::ConsoleUser;
use crate::operators::Role;

const TEMPLATES: [(&str, &str); 10] = [
    (
        "layout",
        include_str!("../../../templates/console/layout.hbs"),
    ),
    (
        "login",
        include_str!("../../../templates/console/login.hbs"),
    ),
    (
        "error",
        include_str!("../../../templates/console/error.hbs"),
    ),
    (
        "support",
        include_str!("../../../templates/console/support.hbs"),
    ),
    (
        "admin",
        include_str!("../../../templates/console/admin.hbs"),
    ),
    (
        "queue",
        include_str!("../../../templates/console/queue.hbs"),
    ),
    (
        "suppression",
        include_str!("../../../templates/console/suppression.hbs"),
    ),
    (
        "webhooks",
        include_str!("../../../templates/console/webhooks.hbs"),
    ),
    (
        "account",
        include_str!("../../../templates/console/account.hbs"),
    ),
    (
        "operators",
        include_str!("../../../templates/console/operators.hbs"),
    ),
];

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        for (name, text) in TEMPLATES.iter() {
            h.register_template_string(name, *text)
                .unwrap_or_else(|e| panic!("console template {name} does not compile: {e}"));
        }
        h
    })
}

/// Renders a page; a template error is a bug, shown as plain text rather than a panic.
pub fn render(name: &str, data: &Value) -> String {
    registry().render(name, data).unwrap_or_else(|e| {
        tracing::error!(template = name, error = %e, "console template failed");
        format!("<!doctype html><title>error</title><p>The page {name} could not be drawn.</p>")
    })
}

/// The layout's fields for a page seen by nobody logged in, merged with `extra`.
pub fn bare(title: &str, extra: Value) -> Value {
    merge(
        json!({
            "title": title, "lang": "en", "operator": null, "role": null, "csrf": null,
            "is_admin": false, "can_support": false,
        }),
        extra,
    )
}

/// The layout's fields for a logged-in operator, merged with `extra`.
pub fn for_user(user: &ConsoleUser, title: &str, extra: Value) -> Value {
    merge(
        json!({
            "title": title, "lang": "en",
            "operator": user.operator.name, "role": user.operator.role.as_str(),
            "csrf": user.session.csrf,
            "is_admin": user.operator.role == Role::Admin,
            "can_support": user.operator.role.allows(Role::Support),
        }),
        extra,
    )
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The console's CSP: its own stylesheet and forms, nothing inline, no script.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The console's stylesheet, served at `/static/console.css` (the CSP allows no
/// inline style, so a `<style>` block would be ignored).
const STYLESHEET: &str = include_str!("../../../templates/console/style.css");

/// `GET /static/console.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// An HTML response with the console's headers: nothing cached, no scripts, no framing,
/// no referrer (a search URL holds an address).
pub fn respond(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes_strangers_text() {
        let html = render(
            "error",
            &bare(
                "t",
                json!({"heading": "h", "text": "<script>alert('x')</script>", "back": null}),
            ),
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}

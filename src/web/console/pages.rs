//! The console's templates (compiled into the binary) and the headers every console
//! page carries. Handlebars escapes every `{{value}}` (`& < > " ' = \``); the templates
//! never use the unescaped `{{{…}}}` form, because bounce texts come from strangers.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{Value, json};

use super::ConsoleUser;
use super::sentence::Lang;
use super::text::title;
use crate::operators::Role;

/// The pages, each in `templates/console/ja/` and `templates/console/en/`.
macro_rules! console_sources {
    ($($name:literal),*) => {
        &[$(
            ("ja", $name, include_str!(concat!("../../../templates/console/ja/", $name, ".hbs"))),
            ("en", $name, include_str!(concat!("../../../templates/console/en/", $name, ".hbs"))),
        )*]
    };
}

const SOURCES: &[(&str, &str, &str)] = console_sources!(
    "login",
    "error",
    "support",
    "admin",
    "queue",
    "suppression",
    "account",
    "operators",
    "invite",
    "webhooks",
    "message"
);
const LAYOUT: &str = include_str!("../../../templates/console/layout.hbs");
/// The partial that draws a chart of `charts` as inline SVG.
const CHART: &str = include_str!("../../../templates/console/chart.hbs");

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_helper("url", Box::new(url_helper));
        h.register_template_string("layout", LAYOUT)
            .unwrap_or_else(|e| panic!("console layout does not compile: {e}"));
        h.register_template_string("chart", CHART)
            .unwrap_or_else(|e| panic!("console chart partial does not compile: {e}"));
        for (lang, name, text) in SOURCES {
            h.register_template_string(&format!("{lang}/{name}"), *text)
                .unwrap_or_else(|e| panic!("console template {lang}/{name} does not compile: {e}"));
        }
        h
    })
}

/// `{{url value}}`: `value` percent-encoded for a query string, so an address with a
/// `+`, `&` or `#` in it reaches the server as typed (the page then HTML-escapes it).
fn url_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let value = h.param(0).map(|p| p.value()).unwrap_or(&Value::Null);
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    out.write(&query_encode(&text))?;
    Ok(())
}

/// Percent-encodes everything but the unreserved characters of RFC 3986 section 2.3.
pub fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Renders a page; a template error is a bug, shown as plain text rather than a panic.
/// The page is drawn in the language of `data["lang"]`.
pub fn render(name: &str, data: &Value) -> String {
    let lang = Lang::parse(data["lang"].as_str().unwrap_or("en"));
    let full = format!("{}/{name}", lang.as_str());
    registry().render(&full, data).unwrap_or_else(|e| {
        tracing::error!(template = name, error = %e, "console template failed");
        format!("<!doctype html><title>error</title><p>The page {name} could not be drawn.</p>")
    })
}

/// The layout's fields for a page seen by nobody logged in, merged with `extra`.
/// `here` is the page's own path, for the language links.
pub fn bare(lang: Lang, key: &str, here: &str, extra: Value) -> Value {
    merge(
        json!({
            "title": title(lang, key), "lang": lang.as_str(), "ja": lang == Lang::Ja,
            "operator": null, "role": null, "csrf": null, "here": here,
            "is_admin": false, "can_support": false,
        }),
        extra,
    )
}

/// The layout's fields for a logged-in operator, merged with `extra`: the page is in
/// the operator's language, and `nav` names the page (`support`, `admin`, …) so the
/// menu marks it.
pub fn for_user(user: &ConsoleUser, key: &str, extra: Value) -> Value {
    let lang = user.lang;
    merge(
        json!({
            "title": title(lang, key), "lang": lang.as_str(), "ja": lang == Lang::Ja,
            "operator": user.operator.name,
            "role": super::text::role(lang, user.operator.role.as_str()),
            "csrf": user.session.csrf, "here": user.here, "tz": user.tz.name(),
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
    fn a_query_keeps_its_plus_ampersand_and_non_ascii_letters() {
        assert_eq!(
            query_encode("taro+desk@example.jp"),
            "taro%2Bdesk%40example.jp"
        );
        assert_eq!(query_encode("a&b=c #d"), "a%26b%3Dc%20%23d");
        assert_eq!(query_encode("はな"), "%E3%81%AF%E3%81%AA");
    }

    #[test]
    fn every_template_compiles_and_escapes_strangers_text() {
        let html = render(
            "error",
            &bare(
                Lang::Ja,
                "forbidden",
                "/",
                json!({"heading": "h", "text": "<script>alert('x')</script>", "back": null}),
            ),
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}

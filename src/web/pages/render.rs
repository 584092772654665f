//! The person's pages as HTML: handlebars templates compiled into the binary
//! (`templates/pages/{ja,en}/NAME.hbs` inside `templates/pages/layout.hbs`), and the one
//! place that turns a page into a response with the security headers every flow page
//! carries: no referrer (the URL holds the token), no caching, a CSP that allows no
//! script, no framing and forms only to this origin.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{Map, Value};

/// The pages, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageName {
    Landing,
    Code,
    Password,
    Done,
    Problem,
    Reset,
    Sent,
    Message,
}

impl PageName {
    #[cfg(test)]
    const ALL: [PageName; 8] = [
        PageName::Landing,
        PageName::Code,
        PageName::Password,
        PageName::Done,
        PageName::Problem,
        PageName::Reset,
        PageName::Sent,
        PageName::Message,
    ];

    fn file(self) -> &'static str {
        match self {
            PageName::Landing => "landing",
            PageName::Code => "code",
            PageName::Password => "password",
            PageName::Done => "done",
            PageName::Problem => "problem",
            PageName::Reset => "reset",
            PageName::Sent => "sent",
            PageName::Message => "message",
        }
    }
}

macro_rules! page_sources {
    ($($name:literal),*) => {
        &[$(
            ("ja", $name, include_str!(concat!("../../../templates/pages/ja/", $name, ".hbs"))),
            ("en", $name, include_str!(concat!("../../../templates/pages/en/", $name, ".hbs"))),
        )*]
    };
}

const SOURCES: &[(&str, &str, &str)] = page_sources!(
    "landing", "code", "password", "done", "problem", "reset", "sent", "message"
);
const LAYOUT: &str = include_str!("../../../templates/pages/layout.hbs");
/// The stylesheet, served at `/static/mailgate.css` (the CSP allows no inline style).
pub const STYLESHEET: &str = include_str!("../../../templates/pages/style.css");

/// The Content-Security-Policy of every page: nothing but this origin's stylesheet and
/// forms; no script at all.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The compiled page templates and the values every page shows.
#[derive(Debug)]
pub struct Pages {
    registry: Handlebars<'static>,
    organization: String,
    contact: String,
}

impl Pages {
    /// Compiles the shipped pages; a broken template is a bug in the binary.
    pub fn new(organization: &str, contact: &str) -> Pages {
        let mut registry = Handlebars::new();
        registry
            .register_partial("layout", LAYOUT)
            .expect("the page layout compiles");
        for (lang, name, source) in SOURCES {
            registry
                .register_template_string(&format!("{lang}/{name}"), *source)
                .unwrap_or_else(|e| panic!("page {lang}/{name} does not compile: {e}"));
        }
        Pages {
            registry,
            organization: organization.to_string(),
            contact: contact.to_string(),
        }
    }

    /// Renders a page in `lang` with `vars` plus the shared values.
    pub fn render(&self, lang: &str, page: PageName, title: &str, vars: Value) -> String {
        let mut map = match vars {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        map.insert("lang".into(), Value::String(lang.into()));
        map.insert("ja".into(), Value::Bool(lang == "ja"));
        map.insert("title".into(), Value::String(title.into()));
        map.insert(
            "organization".into(),
            Value::String(self.organization.clone()),
        );
        map.insert("contact".into(), Value::String(self.contact.clone()));
        self.registry
            .render(&format!("{lang}/{}", page.file()), &Value::Object(map))
            .unwrap_or_else(|e| {
                tracing::error!(page = page.file(), error = %e, "page template failed");
                "<!DOCTYPE html><title>Error</title><p>Error / エラー</p>".into()
            })
    }
}

/// A page ready to send: status, body, cookies to set.
#[derive(Debug)]
pub struct Html {
    pub status: StatusCode,
    pub body: String,
    pub cookies: Vec<String>,
    pub retry_after: Option<u64>,
}

impl Html {
    pub fn new(status: StatusCode, body: String) -> Html {
        Html {
            status,
            body,
            cookies: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_cookies(mut self, cookies: Vec<String>) -> Html {
        self.cookies.extend(cookies);
        self
    }
}

/// A 303 to a path on this server (never a URL taken from the request).
#[derive(Debug)]
pub struct SeeOther {
    pub path: String,
    pub cookies: Vec<String>,
}

/// The headers of every flow page.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn add_cookies(h: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        security_headers(h);
        add_cookies(h, &self.cookies);
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl IntoResponse for SeeOther {
    fn into_response(self) -> Response {
        let mut resp = StatusCode::SEE_OTHER.into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.path) {
            h.insert(header::LOCATION, v);
        }
        security_headers(h);
        add_cookies(h, &self.cookies);
        resp
    }
}

/// Page titles, per language.
pub fn title(lang: &str, key: &str) -> &'static str {
    let ja = lang == "ja";
    match key {
        "setup" => {
            if ja {
                "アカウントの設定"
            } else {
                "Set up your account"
            }
        }
        "reset" => {
            if ja {
                "パスワードの再設定"
            } else {
                "Reset your password"
            }
        }
        "code" => {
            if ja {
                "確認コードの入力"
            } else {
                "Enter your code"
            }
        }
        "password" => {
            if ja {
                "パスワードを決める"
            } else {
                "Choose your password"
            }
        }
        "done" => {
            if ja {
                "設定が完了しました"
            } else {
                "All done"
            }
        }
        "expired" => {
            if ja {
                "リンクの有効期限が切れています"
            } else {
                "This link has expired"
            }
        }
        "used" => {
            if ja {
                "このリンクは使用済みです"
            } else {
                "This link has been used"
            }
        }
        "superseded" => {
            if ja {
                "新しいリンクをお送りしています"
            } else {
                "A newer link was sent"
            }
        }
        "locked" => {
            if ja {
                "このリンクは止められています"
            } else {
                "This link is stopped"
            }
        }
        "undeliverable" => {
            if ja {
                "メールをお届けできませんでした"
            } else {
                "We could not deliver our mail"
            }
        }
        "unknown" => {
            if ja {
                "このリンクは使えません"
            } else {
                "This link does not work"
            }
        }
        "request" => {
            if ja {
                "新しいリンクの申し込み"
            } else {
                "Ask for a new link"
            }
        }
        "sent" => {
            if ja {
                "メールをお送りしました"
            } else {
                "Mail sent"
            }
        }
        "busy" => {
            if ja {
                "混み合っています"
            } else {
                "Busy"
            }
        }
        "csrf_failed" => {
            if ja {
                "もう一度お試しください"
            } else {
                "Please try again"
            }
        }
        "rate_limited" => {
            if ja {
                "しばらくお待ちください"
            } else {
                "Please wait a while"
            }
        }
        "bad_request" => {
            if ja {
                "送信内容を読み取れませんでした"
            } else {
                "We could not read the form"
            }
        }
        _ => {
            if ja {
                "エラー"
            } else {
                "Something went wrong"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_page_renders_in_both_languages_inside_the_layout() {
        let pages = Pages::new("Example Clinic", "help@example.jp");
        for lang in ["ja", "en"] {
            for page in PageName::ALL {
                let html = pages.render(
                    lang,
                    page,
                    "T<itle>",
                    json!({"token": "tok", "csrf": "c", "address": "a@example.jp", "expired": true}),
                );
                assert!(html.starts_with("<!DOCTYPE html>"), "{lang} {page:?}");
                assert!(html.contains(&format!("<html lang=\"{lang}\">")));
                assert!(html.contains("T&lt;itle&gt;"), "titles are escaped");
                assert!(html.contains("Example Clinic"));
                assert!(!html.contains("<script"));
            }
        }
    }
}

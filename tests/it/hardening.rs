//! Holding under attack and under faults (issue 15): security headers on every
//! response, HTTP and SMTP connection limits against slow and idle clients, override
//! errors that name their key, size limits on outgoing mail, reserved template
//! variables, and a full disk. The concurrency tests print their figures.

use reqwest::blocking::Client;

use crate::support::Instance;

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn every_response_carries_the_security_headers_and_hsts_when_public_url_is_https() {
    let inst = Instance::new("");
    // The public URL is https (a proxy terminates TLS); the server itself speaks http.
    let text = std::fs::read_to_string(&inst.config_path)
        .unwrap()
        .replace("http://localhost:9", "https://mail.example.jp");
    std::fs::write(&inst.config_path, text).unwrap();
    let server = inst.serve();
    let client = no_redirects();
    for (path, want) in [
        ("/healthz", 200),
        ("/metrics", 200),
        ("/no-such-page", 404),
        ("/admin", 303),
        ("/api/v1/log?address=a@example.jp", 401),
        ("/login", 200),
        ("/reset", 200),
        ("/static/console.css", 200),
    ] {
        let r = client.get(server.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
        let h = r.headers();
        let get = |name: &str| {
            h.get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        let csp = get("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'"),
            "{path}: CSP {csp:?}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: CSP {csp:?}");
        assert!(
            get("strict-transport-security").starts_with("max-age="),
            "{path}: no HSTS"
        );
    }
    // The console's styles come from its stylesheet, which the CSP allows; nothing
    // inline is left for the browser to refuse.
    let login = client.get(server.url("/login")).send().unwrap();
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("style-src 'self'"), "{csp}");
    let body = login.text().unwrap();
    assert!(body.contains("/static/console.css"), "{body}");
    assert!(
        !body.contains("<style") && !body.contains("style="),
        "{body}"
    );
}

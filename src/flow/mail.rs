//! What a flow's mail says: the template variables of the link, code and
//! password-changed mails, and times written as a person in the flow's zone reads them
//! (`Asia/Tokyo` for Japanese by default). Links are built only from
//! `server.public_url`, never from a request.

use std::time::Duration;

use chrono::TimeZone;
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::{FlowKind, FlowRecord};

/// The templates only flows send: their mail carries a link or a code that mailgate
/// made and stored, so an API caller may not send them with its own (that would be its
/// link under our DKIM signature). `POST /api/v1/messages` answers 403 for them.
pub const FLOW_TEMPLATES: [&str; 4] = ["invite", "reset", "code", "password_changed"];

/// The time zone a locale's mail and pages use.
pub fn zone(config: &Config, locale: &str) -> chrono_tz::Tz {
    if locale == "ja" {
        config.flows.timezone_ja
    } else {
        config.flows.timezone_en
    }
}

/// A moment as a person reads it: `2026年5月1日 14:30（日本時間）` or
/// `1 May 2026, 05:30 UTC`.
pub fn local_time(config: &Config, locale: &str, ms: u64) -> String {
    let tz = zone(config, locale);
    let Some(t) = tz.timestamp_millis_opt(ms as i64).single() else {
        return crate::domain::format_time_ms(ms);
    };
    if locale == "ja" {
        let zone_name = if tz == chrono_tz::Asia::Tokyo {
            "日本時間".to_string()
        } else {
            tz.name().to_string()
        };
        format!("{}（{zone_name}）", t.format("%Y年%-m月%-d日 %H:%M"))
    } else {
        t.format("%-d %B %Y, %H:%M %Z").to_string()
    }
}

/// A duration in words: `24時間` / `24 hours`, `10分` / `10 minutes`.
pub fn span(locale: &str, d: Duration) -> String {
    let s = d.as_secs();
    let (n, ja, en) = if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "時間", "hour")
    } else if s >= 60 {
        (s.div_ceil(60), "分", "minute")
    } else {
        (s, "秒", "second")
    };
    if locale == "ja" {
        format!("{n}{ja}")
    } else if n == 1 {
        format!("1 {en}")
    } else {
        format!("{n} {en}s")
    }
}

/// The link a flow's mail carries.
pub fn link(config: &Config, token: &str) -> String {
    format!(
        "{}/v/{token}",
        config.server.public_url.trim_end_matches('/')
    )
}

/// Variables of the invite or reset mail.
pub fn link_vars(config: &Config, flow: &FlowRecord, token: &str) -> Value {
    json!({
        "name": flow.name.clone().unwrap_or_default(),
        "link": link(config, token),
        "expires_local": local_time(config, &flow.locale, flow.expires_ms),
        "lifetime": span(&flow.locale, config.flows.link_lifetime),
        "reset_url": format!("{}/reset", config.server.public_url.trim_end_matches('/')),
        "setup": flow.kind == FlowKind::Setup,
    })
}

/// Variables of the code mail. `issued_ms` and `expires_ms` are the code's: when the
/// link ends first, the code ends with it and the mail says so.
pub fn code_vars(
    config: &Config,
    flow: &FlowRecord,
    code: &str,
    issued_ms: u64,
    expires_ms: u64,
) -> Value {
    let left = Duration::from_millis(expires_ms.saturating_sub(issued_ms));
    json!({
        "name": flow.name.clone().unwrap_or_default(),
        "code": code,
        "expires_local": local_time(config, &flow.locale, expires_ms),
        "lifetime": span(&flow.locale, left),
        "ends_with_link": expires_ms >= flow.expires_ms,
    })
}

/// Variables of the "your password was changed" mail.
pub fn changed_vars(config: &Config, flow: &FlowRecord, at_ms: u64) -> Value {
    json!({
        "name": flow.name.clone().unwrap_or_default(),
        "changed_local": local_time(config, &flow.locale, at_ms),
        "reset_url": format!("{}/reset", config.server.public_url.trim_end_matches('/')),
        "app_url": config.flows.app_url,
        "setup": flow.kind == FlowKind::Setup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSources;

    #[test]
    fn times_are_written_in_the_locale_zone() {
        let config = Config::from_toml_str("", &ConfigSources::default()).unwrap();
        // 2026-05-01T05:30:00Z
        let ms = 1_777_613_400_000;
        assert_eq!(
            local_time(&config, "ja", ms),
            "2026年5月1日 14:30（日本時間）"
        );
        assert_eq!(local_time(&config, "en", ms), "1 May 2026, 05:30 UTC");
        assert_eq!(span("en", Duration::from_secs(86_400)), "24 hours");
        assert_eq!(span("ja", Duration::from_secs(600)), "10分");
    }
}

//! Durations as operators write them in the configuration: `"24h"`, `"10m"`, `"90s"`,
//! `"1h 30m"`, `"7d"`. Parsing is delegated to `humantime`; this module adds the error
//! wording and the inverse formatting used in messages and `mailgate check`.

use std::time::Duration;

/// Parses an operator-written duration. A bare number without a unit is refused,
/// because `"10"` could mean seconds or minutes and a wrong guess expires links.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: write it like \"24h\", \"10m\" or \"90s\"".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{t:?} has no unit: write it like \"{t}s\", \"{t}m\" or \"{t}h\""
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("{t:?} is not a duration ({e}): write it like \"24h\", \"10m\" or \"90s\"")
    })
}

/// The start (ms since the epoch) of a period written like `"7d"` that ends at `now_ms`:
/// the bounce report's `--since`, `?since=` and period menu all mean this.
pub fn period_start(since: &str, now_ms: u64) -> Result<u64, String> {
    let d = parse_duration(since)?;
    Ok(now_ms.saturating_sub(d.as_millis() as u64))
}

/// Formats a duration the way it would be written in the configuration.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_parse() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn a_number_without_unit_is_refused_with_a_hint() {
        let e = parse_duration("10").unwrap_err();
        assert!(e.contains("no unit"), "{e}");
    }

    #[test]
    fn junk_is_refused() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5m").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1day");
        assert_eq!(
            parse_duration(&format_duration(Duration::from_secs(600))).unwrap(),
            Duration::from_secs(600)
        );
    }
}

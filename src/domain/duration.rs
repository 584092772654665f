//! Durations as operators write them in the configuration: `"24h"`, `"10m"`, `"90s"`,
//! `"1h 30m"`, `"7d"`. Parsing is delegated to `humantime`; this module adds the error
//! wording and the inverse formatting used in messages and `mailgate check`.

use std::time::Duration;

/// Why a text is not a duration; each says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: write it like \"24h\", \"10m\" or \"90s\"")]
    Empty,
    #[error("{0:?} has no unit: write it like \"{0}s\", \"{0}m\" or \"{0}h\"")]
    NoUnit(String),
    #[error("{text:?} is not a duration ({why}): write it like \"24h\", \"10m\" or \"90s\"")]
    Invalid { text: String, why: String },
}

/// Parses an operator-written duration. A bare number without a unit is refused,
/// because `"10"` could mean seconds or minutes and a wrong guess expires links.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(DurationError::NoUnit(t.to_string()));
    }
    humantime::parse_duration(t).map_err(|e| DurationError::Invalid {
        text: t.to_string(),
        why: e.to_string(),
    })
}

/// The start (ms since the epoch) of a period written like `"7d"` that ends at `now_ms`:
/// the bounce report's `--since`, `?since=` and period menu all mean this.
pub fn period_start(since: &str, now_ms: u64) -> Result<u64, DurationError> {
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
        let e = parse_duration("10").unwrap_err().to_string();
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

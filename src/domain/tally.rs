//! The per-day tallies behind the admin page's chart: how many messages were
//! delivered, first deferred, bounced or failed each day, overall and per receiving
//! provider, kept as counters while it happens so the page reads a month of days
//! instead of every message.
//!
//! A tally is a store counter whose label begins with its day (`2026-12-07 delivered`,
//! `2026-12-07 docomo delivered`), so the days of a window are one range of labels
//! and retention forgets old days by range. The day is the calendar day in the zone
//! of the people the service mails (that of `flows.default_locale`: Asia/Tokyo unless
//! configured): a counter's day is fixed when it is written, so it cannot follow each
//! operator's zone, and "yesterday" should mean the recipients' yesterday.

use chrono::{Duration, TimeZone};

use super::MessageStatus;
use super::provider::{OTHER, providers};

/// The counter kind of the daily tallies, all providers together.
pub const DAY_KIND: &str = "day";
/// The counter kind of the daily tallies per provider.
pub const DAY_PROVIDER_KIND: &str = "day_provider";

/// What the chart shows of a message's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOutcome {
    /// A receiving server accepted it (or it was written to the outbox).
    Delivered,
    /// Its first try was put off (each message counts once, on that day).
    Deferred,
    /// A bounce came back for it (it may have counted as delivered on an earlier day).
    Bounced,
    /// Refused for good by the receiving server, or expired untried or undelivered.
    Failed,
}

impl DayOutcome {
    /// The outcomes, in the chart's order.
    pub const ALL: [DayOutcome; 4] = [
        DayOutcome::Delivered,
        DayOutcome::Deferred,
        DayOutcome::Bounced,
        DayOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DayOutcome::Delivered => "delivered",
            DayOutcome::Deferred => "deferred",
            DayOutcome::Bounced => "bounced",
            DayOutcome::Failed => "failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The tally a final status adds to; none for mail that was never offered to a
    /// receiver (cancelled, or not sent because the address is suppressed).
    pub fn of_final(status: MessageStatus) -> Option<DayOutcome> {
        match status {
            MessageStatus::Delivered => Some(DayOutcome::Delivered),
            MessageStatus::Bounced => Some(DayOutcome::Bounced),
            MessageStatus::Failed | MessageStatus::Expired => Some(DayOutcome::Failed),
            MessageStatus::Queued
            | MessageStatus::Sending
            | MessageStatus::Deferred
            | MessageStatus::Cancelled
            | MessageStatus::Suppressed => None,
        }
    }
}

/// The calendar day of `at_ms` in `tz`, as `YYYY-MM-DD`.
pub fn day_of(at_ms: u64, tz: chrono_tz::Tz) -> String {
    tz.timestamp_millis_opt(at_ms as i64)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "0000-00-00".into())
}

/// The label of a day's tally, all providers together.
pub fn day_label(day: &str, outcome: DayOutcome) -> String {
    format!("{day} {}", outcome.as_str())
}

/// The label of a day's tally for one provider.
pub fn provider_label(day: &str, provider: &str, outcome: DayOutcome) -> String {
    format!("{day} {provider} {}", outcome.as_str())
}

/// The `n` days that end with the day of `now_ms` in `tz`, oldest first.
pub fn last_days(now_ms: u64, tz: chrono_tz::Tz, n: u32) -> Vec<String> {
    let Some(today) = tz.timestamp_millis_opt(now_ms as i64).single() else {
        return Vec::new();
    };
    let today = today.date_naive();
    (0..n)
        .rev()
        .map(|back| {
            (today - Duration::days(back.into()))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect()
}

/// The day after `day` (`YYYY-MM-DD`), the end of a label range that includes `day`.
pub fn next_day(day: &str) -> String {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(|d| (d + Duration::days(1)).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| format!("{day}~"))
}

/// Counts by outcome, in [`DayOutcome::ALL`]'s order.
pub type Counts = [u64; 4];

/// A window of days read back from the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Every day of the window, oldest first, with its counts (zero when none).
    pub days: Vec<(String, Counts)>,
    /// Every provider of the table and then "other", with its counts over the window.
    pub providers: Vec<(String, Counts)>,
}

impl Window {
    /// Puts the counters read for `days` (kinds [`DAY_KIND`] and
    /// [`DAY_PROVIDER_KIND`]) into place; labels outside the days are ignored.
    pub fn from_counters(
        days: &[String],
        by_day: &[(String, u64)],
        by_provider: &[(String, u64)],
    ) -> Window {
        let outcome = |s: &str| DayOutcome::ALL.into_iter().find(|o| o.as_str() == s);
        let mut day_rows: Vec<(String, Counts)> =
            days.iter().map(|d| (d.clone(), [0; 4])).collect();
        for (label, n) in by_day {
            let mut parts = label.split(' ');
            if let (Some(day), Some(Some(o)), None) =
                (parts.next(), parts.next().map(outcome), parts.next())
                && let Some(row) = day_rows.iter_mut().find(|(d, _)| d == day)
            {
                row.1[o.index()] += n;
            }
        }
        let mut provider_rows: Vec<(String, Counts)> = providers()
            .iter()
            .map(|p| (p.id.clone(), [0; 4]))
            .chain(std::iter::once((OTHER.to_string(), [0; 4])))
            .collect();
        for (label, n) in by_provider {
            let mut parts = label.split(' ');
            if let (Some(day), Some(provider), Some(Some(o)), None) = (
                parts.next(),
                parts.next(),
                parts.next().map(outcome),
                parts.next(),
            ) && days.iter().any(|d| d == day)
            {
                // A provider since taken out of the table counts as other.
                let at = provider_rows
                    .iter()
                    .position(|(id, _)| id == provider)
                    .unwrap_or(provider_rows.len() - 1);
                provider_rows[at].1[o.index()] += n;
            }
        }
        Window {
            days: day_rows,
            providers: provider_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKYO: chrono_tz::Tz = chrono_tz::Asia::Tokyo;

    #[test]
    fn a_day_is_the_calendar_day_in_the_zone_given() {
        // 2026-12-06 15:30 UTC is already the 7th in Tokyo.
        let at = 1_796_571_000_000;
        assert_eq!(day_of(at, chrono_tz::UTC), "2026-12-06");
        assert_eq!(day_of(at, TOKYO), "2026-12-07");
        assert_eq!(
            last_days(at, TOKYO, 3),
            ["2026-12-05", "2026-12-06", "2026-12-07"]
        );
        assert_eq!(next_day("2026-12-31"), "2027-01-01");
    }

    #[test]
    fn labels_read_back_into_their_day_and_provider_and_strangers_are_other() {
        let days = last_days(1_796_571_000_000, TOKYO, 2);
        let by_day = vec![
            (day_label("2026-12-07", DayOutcome::Delivered), 5),
            (day_label("2026-12-07", DayOutcome::Bounced), 1),
            (day_label("2026-12-06", DayOutcome::Deferred), 2),
            (day_label("2026-11-01", DayOutcome::Delivered), 99),
        ];
        let by_provider = vec![
            (
                provider_label("2026-12-07", "docomo", DayOutcome::Delivered),
                3,
            ),
            (
                provider_label("2026-12-06", "docomo", DayOutcome::Failed),
                1,
            ),
            (
                provider_label("2026-12-07", "gone", DayOutcome::Delivered),
                2,
            ),
            (
                provider_label("2026-12-07", "other", DayOutcome::Delivered),
                1,
            ),
            (
                provider_label("2026-11-01", "docomo", DayOutcome::Delivered),
                99,
            ),
        ];
        let w = Window::from_counters(&days, &by_day, &by_provider);
        assert_eq!(
            w.days,
            [
                ("2026-12-06".to_string(), [0, 2, 0, 0]),
                ("2026-12-07".to_string(), [5, 0, 1, 0])
            ]
        );
        assert_eq!(w.providers[0], ("docomo".to_string(), [3, 0, 0, 1]));
        assert_eq!(
            w.providers.last().unwrap(),
            &("other".to_string(), [3, 0, 0, 0])
        );
    }

    #[test]
    fn only_mail_offered_to_a_receiver_is_tallied() {
        assert_eq!(
            DayOutcome::of_final(MessageStatus::Expired),
            Some(DayOutcome::Failed)
        );
        assert_eq!(DayOutcome::of_final(MessageStatus::Suppressed), None);
        assert_eq!(DayOutcome::of_final(MessageStatus::Cancelled), None);
    }
}

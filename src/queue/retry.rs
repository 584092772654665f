//! The retry policy, as pure functions of the attempt count and the clock, so it can be
//! tested without waiting. The schedule's last step repeats until the message's
//! lifetime ends; a try that would fall after the end is not scheduled.

use std::time::Duration;

/// What to do after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this time (ms since the epoch).
    RetryAt(u64),
    /// The lifetime is over: give up.
    Expire,
}

/// The decision after `attempts` tries (1 after the first), at `now_ms`, for a
/// message that expires at `expires_ms`.
pub fn next_attempt(
    schedule: &[Duration],
    attempts: u32,
    now_ms: u64,
    expires_ms: u64,
) -> RetryDecision {
    if now_ms >= expires_ms || schedule.is_empty() {
        return RetryDecision::Expire;
    }
    let idx = (attempts.max(1) as usize - 1).min(schedule.len() - 1);
    let wait = schedule[idx].as_millis() as u64;
    let at = now_ms.saturating_add(wait);
    if at >= expires_ms {
        // One last try right at the end is worth more than none: the remote may
        // have recovered, and the message is still useful until it expires.
        let last = expires_ms.saturating_sub(1);
        if last > now_ms {
            RetryDecision::RetryAt(last)
        } else {
            RetryDecision::Expire
        }
    } else {
        RetryDecision::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Vec<Duration> {
        [60, 120, 300, 600, 1200, 2400, 3600]
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect()
    }

    #[test]
    fn waits_follow_the_schedule_then_repeat_the_last_step() {
        let s = schedule();
        let day = 86_400_000;
        assert_eq!(next_attempt(&s, 1, 0, day), RetryDecision::RetryAt(60_000));
        assert_eq!(next_attempt(&s, 2, 0, day), RetryDecision::RetryAt(120_000));
        assert_eq!(
            next_attempt(&s, 7, 0, day),
            RetryDecision::RetryAt(3_600_000)
        );
        assert_eq!(
            next_attempt(&s, 30, 0, day),
            RetryDecision::RetryAt(3_600_000)
        );
    }

    #[test]
    fn a_code_mail_expires_with_its_code() {
        let s = schedule();
        let ten_minutes = 600_000;
        // Third failure at 9 minutes: a 5-minute wait would pass the end, so one last
        // try just before it.
        assert_eq!(
            next_attempt(&s, 3, 540_000, ten_minutes),
            RetryDecision::RetryAt(599_999)
        );
        assert_eq!(
            next_attempt(&s, 4, 599_999, ten_minutes),
            RetryDecision::Expire
        );
        assert_eq!(
            next_attempt(&s, 1, ten_minutes, ten_minutes),
            RetryDecision::Expire
        );
    }

    #[test]
    fn a_full_day_of_failures_ends_in_expiry() {
        let s = schedule();
        let end = 86_400_000;
        let (mut now, mut attempts) = (0, 1);
        while let RetryDecision::RetryAt(t) = next_attempt(&s, attempts, now, end) {
            assert!(t > now && t < end);
            now = t;
            attempts += 1;
        }
        // 1+2+5+10+20+40 minutes, then hourly to the end of the day.
        assert!((25..=30).contains(&attempts), "{attempts}");
    }
}

//! Fixed-window rate limits kept in memory, keyed by text (an address, a client IP).
//! Enough for one process: the limits protect inboxes from being flooded through the
//! public "send me a link" forms, not the server from load.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most `max` hits per key in each window of `window_ms`.
#[derive(Debug)]
pub struct RateLimit {
    max: u32,
    window_ms: u64,
    hits: Mutex<HashMap<String, (u64, u32)>>,
}

/// Above this many keys, expired windows are dropped.
const PRUNE_AT: usize = 10_000;

impl RateLimit {
    pub fn new(max: u32, window_ms: u64) -> RateLimit {
        RateLimit {
            max,
            window_ms,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit for `key` at `now_ms`; false when the key is over its limit.
    pub fn allow(&self, key: &str, now_ms: u64) -> bool {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() > PRUNE_AT {
            let window = self.window_ms;
            hits.retain(|_, (start, _)| now_ms.saturating_sub(*start) < window);
        }
        let entry = hits.entry(key.to_string()).or_insert((now_ms, 0));
        if now_ms.saturating_sub(entry.0) >= self.window_ms {
            *entry = (now_ms, 0);
        }
        if entry.1 >= self.max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_limit_waits_for_the_next_window() {
        let l = RateLimit::new(2, 1000);
        assert!(l.allow("a", 0));
        assert!(l.allow("a", 10));
        assert!(!l.allow("a", 20));
        assert!(l.allow("b", 20));
        assert!(l.allow("a", 1000));
    }
}

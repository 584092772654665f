//! Rate limits kept in the store: one persisted limiter that every caller uses (console
//! logins, "send me a link", support resends), so a limit holds across restarts and is
//! the same limit wherever the request arrived.
//!
//! A limit is a fixed window counted per key. Taking a slot is one atomic
//! read-modify-write of the key's record (sled's compare-and-swap loop), made *before*
//! the work it guards: however many requests arrive at once, no more than `max` of them
//! are let through per window. Parallel requests cannot overwrite each other's counts,
//! which a read, a slow check and a later write would allow.

use serde::{Deserialize, Serialize};

/// How many takes a key allows per window, and how long it stays shut once full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Takes allowed in one window.
    pub max: u32,
    /// The window's length, from its first take.
    pub window_ms: u64,
    /// Once the `max`-th take is made, the key refuses for this long from then.
    pub lock_ms: u64,
}

/// What a take decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Counted; the work may go ahead, and this many more takes fit in the window.
    Allowed { remaining: u32 },
    /// Not counted: the key is full until this time (ms since the epoch).
    Refused { until_ms: u64 },
}

/// A limit's kind and subject, e.g. ("login-name-client", "aiko\0192.0.2.1").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitKey {
    scope: &'static str,
    subject: String,
}

impl LimitKey {
    /// A key for `subject` under `scope`. Parts of a compound subject are joined with
    /// NUL, so one scope can be cleared by its first part ([`super::Limits::limit_clear_prefix`]).
    pub fn new(scope: &'static str, parts: &[&str]) -> LimitKey {
        LimitKey {
            scope,
            subject: parts.join("\0"),
        }
    }

    /// The key as stored: scope, NUL, subject (both backends use these bytes).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.scope.len() + 1 + self.subject.len());
        k.extend_from_slice(self.scope.as_bytes());
        k.push(0);
        k.extend_from_slice(self.subject.as_bytes());
        k
    }
}

/// One key's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Window {
    pub(crate) start_ms: u64,
    pub(crate) count: u32,
    pub(crate) shut_until_ms: u64,
}

impl Window {
    pub(crate) fn decode(bytes: Option<&[u8]>) -> Window {
        bytes
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a window always serializes")
    }

    /// The window after a take at `now`, and whether the take was allowed. Pure, since
    /// the compare-and-swap loop may run it more than once.
    pub(crate) fn take(self, rule: Rule, now: u64) -> (Window, Take) {
        if now < self.shut_until_ms {
            return (
                self,
                Take::Refused {
                    until_ms: self.shut_until_ms,
                },
            );
        }
        let mut w = if self.count == 0 || now.saturating_sub(self.start_ms) >= rule.window_ms {
            Window {
                start_ms: now,
                count: 0,
                shut_until_ms: 0,
            }
        } else {
            self
        };
        if w.count >= rule.max {
            let until_ms = w.start_ms + rule.window_ms;
            return (w, Take::Refused { until_ms });
        }
        w.count += 1;
        if w.count >= rule.max {
            w.shut_until_ms = now + rule.lock_ms;
        }
        let remaining = rule.max - w.count;
        (w, Take::Allowed { remaining })
    }

    /// The window after a take is given back (the work it guarded did not count).
    pub(crate) fn refund(self) -> Window {
        Window {
            count: self.count.saturating_sub(1),
            shut_until_ms: 0,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        max: 3,
        window_ms: 1000,
        lock_ms: 5000,
    };

    #[test]
    fn a_full_window_shuts_for_the_lock_and_then_opens() {
        let mut w = Window::default();
        for t in 0..3 {
            let (next, take) = w.take(RULE, 10 + t);
            assert_eq!(
                take,
                Take::Allowed {
                    remaining: 2 - t as u32
                },
                "take {t}"
            );
            w = next;
        }
        assert_eq!(w.take(RULE, 20).1, Take::Refused { until_ms: 5012 });
        assert_eq!(w.take(RULE, 5011).1, Take::Refused { until_ms: 5012 });
        assert_eq!(w.take(RULE, 5012).1, Take::Allowed { remaining: 2 });
    }

    #[test]
    fn a_refund_gives_the_slot_back_and_reopens() {
        let mut w = Window::default();
        for t in 0..3 {
            w = w.take(RULE, t).0;
        }
        w = w.refund();
        assert_eq!(w.take(RULE, 4).1, Take::Allowed { remaining: 0 });
    }
}

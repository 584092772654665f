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
/// What a take of several slots got: the answer, how many slots (0 when refused), and
/// when the window they belong to ends (they may not be spent after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub take: Take,
    pub granted: u32,
    pub window_end_ms: u64,
}

impl Grant {
    fn refused(until_ms: u64) -> Grant {
        Grant {
            take: Take::Refused { until_ms },
            granted: 0,
            window_end_ms: until_ms,
        }
    }
}

/// Slots of high limits this node took ahead, spent one request at a time, so that a
/// limit called on every request (an API key's) costs a store write per chunk, not per
/// request. A chunk is a hundredth of the limit and is kept only until its window ends:
/// nothing is ever let through beyond the rule; at worst the nodes' unspent chunks at a
/// window's end go unused.
#[derive(Debug, Default)]
pub(crate) struct InHand {
    slots: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (u32, u64)>>,
    /// Held while a chunk is taken from the store, so that a burst of requests waits
    /// for one chunk instead of each taking its own (and being refused while the
    /// others' sit unspent).
    pub(crate) refill: tokio::sync::Mutex<()>,
}

impl InHand {
    /// The chunk a take under `rule` asks for: one below a hundred slots a window.
    pub(crate) fn chunk(rule: Rule) -> u32 {
        (rule.max / 100).max(1)
    }

    /// Spends one slot of `key` in hand at `now`, if there is one.
    pub(crate) fn spend(&self, key: &[u8], now: u64) -> Option<Take> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let (left, until) = slots.get_mut(key)?;
        if *left == 0 || now >= *until {
            slots.remove(key);
            return None;
        }
        *left -= 1;
        Some(Take::Allowed { remaining: *left })
    }

    /// Keeps the slots of `grant` beyond the one being spent now.
    pub(crate) fn keep(&self, key: Vec<u8>, grant: &Grant) {
        if grant.granted <= 1 {
            return;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let entry = slots.entry(key).or_insert((0, grant.window_end_ms));
        if entry.1 != grant.window_end_ms {
            *entry = (0, grant.window_end_ms);
        }
        entry.0 += grant.granted - 1;
    }
}

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
    #[cfg(test)]
    pub(crate) fn take(self, rule: Rule, now: u64) -> (Window, Take) {
        let (w, grant) = self.take_up_to(rule, now, 1);
        (w, grant.take)
    }

    /// Takes up to `n` slots at once (fewer when fewer are left): the same rule as
    /// [`Window::take`], for a node that keeps a few slots of a high limit in hand.
    pub(crate) fn take_up_to(self, rule: Rule, now: u64, n: u32) -> (Window, Grant) {
        if now < self.shut_until_ms {
            let until_ms = self.shut_until_ms;
            return (self, Grant::refused(until_ms));
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
        let window_end_ms = w.start_ms + rule.window_ms;
        if w.count >= rule.max {
            return (w, Grant::refused(window_end_ms));
        }
        let granted = n.max(1).min(rule.max - w.count);
        w.count += granted;
        if w.count >= rule.max {
            w.shut_until_ms = now + rule.lock_ms;
        }
        let remaining = rule.max - w.count;
        let grant = Grant {
            take: Take::Allowed { remaining },
            granted,
            window_end_ms,
        };
        (w, grant)
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
    fn several_slots_are_taken_at_once_but_never_beyond_the_rule() {
        let rule = Rule {
            max: 10,
            window_ms: 1000,
            lock_ms: 0,
        };
        let (w, g) = Window::default().take_up_to(rule, 100, 4);
        assert_eq!((g.granted, g.window_end_ms), (4, 1100));
        let (w, g) = w.take_up_to(rule, 200, 8);
        assert_eq!(g.granted, 6, "only what is left");
        assert_eq!(g.take, Take::Allowed { remaining: 0 });
        let (_, g) = w.take_up_to(rule, 300, 1);
        assert_eq!(g.take, Take::Refused { until_ms: 1100 });
        assert_eq!(g.granted, 0);
    }

    #[test]
    fn slots_in_hand_are_spent_once_and_not_after_their_window() {
        let hand = InHand::default();
        let grant = Grant {
            take: Take::Allowed { remaining: 7 },
            granted: 3,
            window_end_ms: 1000,
        };
        hand.keep(b"k".to_vec(), &grant);
        assert_eq!(hand.spend(b"k", 10), Some(Take::Allowed { remaining: 1 }));
        assert_eq!(hand.spend(b"k", 999), Some(Take::Allowed { remaining: 0 }));
        assert_eq!(hand.spend(b"k", 999), None, "two kept, two spent");
        hand.keep(b"k".to_vec(), &grant);
        assert_eq!(hand.spend(b"k", 1000), None, "the window ended");
        assert_eq!(hand.spend(b"other", 10), None);
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

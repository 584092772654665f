//! Sisimai's reason decision, driven by the `[[reason]]`, `[[command]]` and `[status]` data of
//! `rules.toml`.
//!
//! First, text that an MTA writes only for one reason (`final_patterns`, the message tables
//! of Sisimai's per-MTA modules) decides. Then two passes, as Sisimai's `reason.Find` makes them:
//!
//! 1. **Probe** (`probe_order`): each reason looks at the status code's reason, the SMTP
//!    command the failure answered, the reply code and the diagnostic text, under the
//!    conditions its rule states (e.g. an "unknown user" text means `userunknown` only in reply
//!    to RCPT; after DATA it is a content filter's answer, `filtered`).
//! 2. **Fallback**: when no probe matched, a status code whose reason is settled (not listed in
//!    `unsettled`) decides; otherwise the text is matched against `fallback_order`, then the
//!    unsettled status reason, then the status class and subject (`5.7.*`), then the command.

use std::cell::RefCell;

use super::prefilter::Candidates;
use super::rules::{ByStatus, ReasonRule, Rules};

/// What the decision looks at for one recipient.
pub(crate) struct Evidence<'a> {
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: Option<&'a str>,
    pub reply_code: Option<u16>,
    /// The diagnostic text (the recipient's own, else the report's), in lower case.
    pub text: &'a str,
    /// The SMTP command the failure answered, `""` when unknown.
    pub command: &'a str,
    /// Which reason regexes may match in `text` at all ([`Rules::scan`]).
    cands: Candidates,
    /// Which reasons' text matched already: the probes, their `yield_to` and `text_also`,
    /// and the fallback ask about the same reasons again, and each ask is a regex search.
    seen: RefCell<Vec<(*const ReasonRule, bool)>>,
}

impl<'a> Evidence<'a> {
    /// `cands` is [`Rules::scan`] of `text`.
    pub(crate) fn new(
        status: Option<&'a str>,
        reply_code: Option<u16>,
        text: &'a str,
        command: &'a str,
        cands: Candidates,
    ) -> Self {
        Evidence {
            status,
            reply_code,
            text,
            command,
            cands,
            seen: RefCell::new(Vec::new()),
        }
    }

    /// `rule.matches(self.text)`, searched once per rule.
    fn says(&self, rule: &ReasonRule) -> bool {
        let key = rule as *const ReasonRule;
        if let Some(&(_, hit)) = self.seen.borrow().iter().find(|(k, _)| *k == key) {
            return hit;
        }
        let hit = rule.matches(self.text, &self.cands);
        self.seen.borrow_mut().push((key, hit));
        hit
    }
}

/// The reason, or `None` when neither pass finds one.
pub(crate) fn decide(rules: &Rules, ev: &Evidence) -> Option<String> {
    if let Some(name) = final_text(rules, ev) {
        return Some(name);
    }
    let named = ev.status.and_then(|s| status_name(rules, s));
    rules
        .each(&rules.probe_order)
        .find(|rule| rule.probe && probe(rules, rule, ev, named.as_deref()))
        .map(|rule| rule.name.clone())
        .or_else(|| fallback(rules, ev, named))
}

/// The first reason of `final_order` whose `final_patterns` match: what an MTA module of
/// Sisimai decides from its own message table. Searched one reason at a time: each
/// reason's patterns get a literal prefilter, and the two ways tried to make it one pass
/// (a `RegexSet`, one alternation of them all) measured slower under callgrind over the
/// bounce bench: neither gets the per-reason literal prefilters.
fn final_text(rules: &Rules, ev: &Evidence) -> Option<String> {
    rules
        .each(&rules.final_order)
        .find(|r| {
            r.final_pattern
                .as_ref()
                .is_some_and(|p| p.is_match(ev.text, &ev.cands))
        })
        .map(|r| r.name.clone())
}

/// The SMTP command the text shows the failure answered: the one mentioned last.
pub(crate) fn command<'a>(rules: &'a Rules, text: &str) -> &'a str {
    let named = rules.command_set.matches(text);
    rules
        .commands
        .iter()
        .enumerate()
        .filter(|(i, _)| named.matched(*i))
        .filter_map(|(_, c)| {
            c.pattern
                .find_iter(text)
                .last()
                .map(|m| (m.start(), &c.name))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, name)| name.as_str())
        .unwrap_or_default()
}

/// The reason the exact status code names (Sisimai's `status.Name`).
pub(crate) fn status_name(rules: &Rules, status: &str) -> Option<String> {
    rules.status.get(status).cloned()
}

/// The reason the status class and subject name (`5.7.*`), used last.
fn subject_name(rules: &Rules, status: &str) -> Option<String> {
    let (prefix, _detail) = status.rsplit_once('.')?;
    rules.status.get(&format!("{prefix}.*")).cloned()
}

fn probe(rules: &Rules, rule: &ReasonRule, ev: &Evidence, named: Option<&str>) -> bool {
    let named_str = named.unwrap_or_default();
    if rule.not_statuses.iter().any(|s| s == named_str) {
        return false;
    }
    if rule.needs_status && ev.status.is_none() {
        return false;
    }
    if rules
        .each(&rule.yield_to)
        .any(|other| probe(rules, other, ev, named))
    {
        return false;
    }
    if ev.reply_code.is_some_and(|c| rule.reply_codes.contains(&c)) {
        return true;
    }
    if named == Some(rule.name.as_str()) && rule.by_status != ByStatus::Never {
        return match rule.by_status {
            ByStatus::WithText => says(rules, rule, ev),
            _ => !rules.each(&rule.status_veto).any(|v| ev.says(v)),
        };
    }
    text_allowed(rule, ev.command, named_str) && says(rules, rule, ev)
}

/// May the text alone select the reason, given the command and the status's reason?
fn text_allowed(rule: &ReasonRule, command: &str, named: &str) -> bool {
    if rule.skip_commands.iter().any(|c| c == command) {
        return false;
    }
    if rule.text_commands.is_empty() && rule.text_statuses.is_empty() {
        return true;
    }
    rule.text_commands.iter().any(|c| c == command) || rule.text_statuses.iter().any(|s| s == named)
}

/// The text matches the rule, or one of the rules it borrows (`text_also`).
fn says(rules: &Rules, rule: &ReasonRule, ev: &Evidence) -> bool {
    ev.says(rule) || rules.each(&rule.text_also).any(|r| ev.says(r))
}

fn fallback(rules: &Rules, ev: &Evidence, named: Option<String>) -> Option<String> {
    if let Some(n) = &named
        && !rules.unsettled.contains(n)
    {
        return named;
    }
    if let Some(name) = by_text(rules, ev) {
        return Some(name);
    }
    named
        .or_else(|| ev.status.and_then(|s| subject_name(rules, s)))
        .or_else(|| {
            rules
                .each(&rules.late_text)
                .find(|r| ev.says(r))
                .map(|r| r.name.clone())
        })
        .or_else(|| rules.command_reason.get(ev.command).cloned())
}

/// The first reason of `fallback_order` whose text matches.
fn by_text(rules: &Rules, ev: &Evidence) -> Option<String> {
    if ev.text.trim().is_empty() {
        return None;
    }
    rules
        .each(&rules.fallback_order)
        .find(|r| ev.says(r))
        .map(|r| r.name.clone())
}

//! Loads `rules.toml` (compiled in with `include_str!`) once, and compiles its patterns.
//!
//! The file is constant data shipped with the binary; a unit test loads it, so a broken rule
//! fails the build's tests rather than a parse at run time. Should it still fail to load, the
//! rules are empty and parsing goes on without classification rather than panicking.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::prefilter::{self, Candidates, Prefilter, Slot};

const RULES_TOML: &str = include_str!("rules.toml");

#[derive(Debug, Deserialize)]
struct RawRules {
    ndr: RawNdr,
    classify: RawClassify,
    status: HashMap<String, String>,
    reason: Vec<RawReason>,
    command: Vec<RawCommand>,
}

#[derive(Debug, Deserialize)]
struct RawNdr {
    strong_subject: String,
    strong_body: String,
    weak_subject: String,
    weak_from: String,
    original_marker: String,
    header_start: String,
    sender_line: String,
    mailer_address: String,
    list_address: String,
    prose_line: String,
    quoted_to: String,
    mailbox_gone: String,
    delayed: String,
}

#[derive(Debug, Deserialize)]
struct RawClassify {
    permanent: String,
    temporary: String,
    final_order: Vec<String>,
    probe_order: Vec<String>,
    fallback_order: Vec<String>,
    unsettled: Vec<String>,
    late_text: Vec<String>,
    command_reason: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RawCommand {
    name: String,
    pattern: String,
}

/// How a reason's first-pass probe treats a status code that maps to it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ByStatus {
    /// The status alone selects the reason.
    #[default]
    Always,
    /// The status selects it only when the text matches too.
    WithText,
    /// The status is not looked at in the first pass.
    Never,
}

#[derive(Debug, Deserialize)]
struct RawReason {
    name: String,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    unless: Vec<String>,
    #[serde(default)]
    final_patterns: Vec<String>,
    #[serde(default)]
    probe: bool,
    #[serde(default)]
    by_status: ByStatus,
    #[serde(default)]
    status_veto: Vec<String>,
    #[serde(default)]
    not_statuses: Vec<String>,
    #[serde(default)]
    text_commands: Vec<String>,
    #[serde(default)]
    text_statuses: Vec<String>,
    #[serde(default)]
    skip_commands: Vec<String>,
    #[serde(default)]
    text_also: Vec<String>,
    #[serde(default)]
    reply_codes: Vec<u16>,
    #[serde(default)]
    needs_status: bool,
    #[serde(default)]
    yield_to: Vec<String>,
}

/// Marker phrases for free-text notices.
#[derive(Debug)]
pub(crate) struct NdrRules {
    pub strong_subject: Regex,
    pub strong_body: Regex,
    pub weak_subject: Regex,
    pub weak_from: Regex,
    pub original_marker: Regex,
    pub header_start: Regex,
    pub sender_line: Regex,
    pub mailer_address: Regex,
    pub list_address: Regex,
    pub prose_line: Regex,
    pub quoted_to: Regex,
    pub mailbox_gone: Regex,
    pub delayed: Regex,
}

/// One reason: the diagnostic text that names it and the conditions of its first-pass probe
/// (see `rules.toml` for the meaning of each field).
#[derive(Debug)]
pub(crate) struct ReasonRule {
    pub name: String,
    /// Any of the reason's phrases or patterns, case-insensitive.
    pub pattern: Gated,
    /// Text that vetoes `pattern`.
    pub unless: Option<Gated>,
    /// Text an MTA writes only for this reason: it decides before any probe.
    pub final_pattern: Option<Gated>,
    pub probe: bool,
    pub by_status: ByStatus,
    /// Indices into [`Rules::reasons`], like the other reason lists here.
    pub status_veto: Vec<usize>,
    pub not_statuses: Vec<String>,
    pub text_commands: Vec<String>,
    pub text_statuses: Vec<String>,
    pub skip_commands: Vec<String>,
    pub text_also: Vec<usize>,
    pub reply_codes: Vec<u16>,
    pub needs_status: bool,
    pub yield_to: Vec<usize>,
}

impl ReasonRule {
    /// Does the text (in lower case) name this reason (its own patterns, without
    /// `text_also`)? `cands` is [`Rules::scan`] of the same text.
    pub fn matches(&self, text: &str, cands: &Candidates) -> bool {
        self.pattern.is_match(text, cands)
            && !self
                .unless
                .as_ref()
                .is_some_and(|u| u.is_match(text, cands))
    }
}

/// A reason regex registered with the rules' [`Prefilter`]: run only when the scan of the
/// text says it may match.
#[derive(Debug)]
pub(crate) struct Gated {
    pub regex: Regex,
    slot: Slot,
}

impl Gated {
    pub fn is_match(&self, text: &str, cands: &Candidates) -> bool {
        cands.may(self.slot) && self.regex.is_match(text)
    }
}

/// An SMTP command and the text that shows a failure was the reply to it.
#[derive(Debug)]
pub(crate) struct CommandRule {
    pub name: String,
    /// Not gated by a [`Prefilter`]: it is matched in the text as written, where its
    /// case-insensitive parts only give short literals in every case (`afte`, `AFTE`, ...)
    /// that most texts hold, and the gate measured slower than the regexes.
    pub pattern: Regex,
}

#[derive(Debug)]
pub(crate) struct Rules {
    pub ndr: NdrRules,
    /// Text (in lower case) that says the failure is permanent / temporary, when there is no
    /// code.
    pub permanent: Regex,
    pub temporary: Regex,
    /// Reasons whose `final_patterns` decide before anything else, in order.
    pub final_order: Vec<usize>,
    /// Reasons probed first, in order, with status, command and text.
    pub probe_order: Vec<usize>,
    /// Reasons matched on text alone when the status settles nothing, in order.
    pub fallback_order: Vec<usize>,
    /// Reasons a status code names that do not settle the question.
    pub unsettled: Vec<String>,
    /// Reasons matched on text after every status fallback.
    pub late_text: Vec<usize>,
    /// The reason of a failure answering a command, as the very last resort.
    pub command_reason: HashMap<String, String>,
    /// Enhanced status code (full, or `class.subject.*`) to reason.
    pub status: HashMap<String, String>,
    /// One rule per reason name.
    pub reasons: Vec<ReasonRule>,
    /// Which SMTP command a failure answered.
    pub commands: Vec<CommandRule>,
    /// The same patterns as one set: one pass says which commands are named at all, so
    /// only those are searched for their last mention (five full searches of a report
    /// were 8% of the parse profile).
    pub command_set: regex::RegexSet,
    /// The literals of every reason regex (`pattern`, `unless`, `final_pattern`).
    gate: Prefilter,
}

impl Rules {
    /// Which reason regexes may match in `text` (lower case): one pass, shared by every
    /// question asked about the text.
    pub fn scan(&self, text: &str) -> Candidates {
        self.gate.scan(text)
    }

    /// The rule of one reason.
    #[cfg(test)]
    pub fn reason(&self, name: &str) -> Option<&ReasonRule> {
        self.reasons.iter().find(|r| r.name == name)
    }

    /// The rules at `indices` (one of the resolved reason lists), in order.
    pub fn each<'a>(&'a self, indices: &'a [usize]) -> impl Iterator<Item = &'a ReasonRule> + 'a {
        indices.iter().filter_map(|&i| self.reasons.get(i))
    }
}

fn compile(p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| format!("{p}: {e}"))
}

fn load() -> Result<Rules, String> {
    let raw: RawRules = toml::from_str(RULES_TOML).map_err(|e| e.to_string())?;
    let n = &raw.ndr;
    let ndr = NdrRules {
        strong_subject: compile(&n.strong_subject)?,
        strong_body: compile(&n.strong_body)?,
        weak_subject: compile(&n.weak_subject)?,
        weak_from: compile(&n.weak_from)?,
        original_marker: compile(&n.original_marker)?,
        header_start: compile(&n.header_start)?,
        sender_line: compile(&n.sender_line)?,
        mailer_address: compile(&n.mailer_address)?,
        list_address: compile(&n.list_address)?,
        prose_line: compile(&n.prose_line)?,
        quoted_to: compile(&n.quoted_to)?,
        mailbox_gone: compile(&n.mailbox_gone)?,
        delayed: compile(&n.delayed)?,
    };
    let mut gate = prefilter::Builder::default();
    // Reason lists name reasons; they are resolved to indices here, once, rather than
    // looked up by name at every step of every decision (which showed in the profile).
    let links: Vec<[Vec<String>; 3]> = raw
        .reason
        .iter()
        .map(|r| {
            [
                r.status_veto.clone(),
                r.text_also.clone(),
                r.yield_to.clone(),
            ]
        })
        .collect();
    let mut reasons = raw
        .reason
        .into_iter()
        .map(|r| reason_rule(r, &mut gate))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = reasons.iter().map(|r| r.name.clone()).collect();
    let index = |list: &[String]| -> Result<Vec<usize>, String> {
        list.iter()
            .map(|n| {
                names
                    .iter()
                    .position(|x| x == n)
                    .ok_or_else(|| format!("rules.toml: no [[reason]] named {n}"))
            })
            .collect()
    };
    for (rule, [veto, also, yield_to]) in reasons.iter_mut().zip(&links) {
        rule.status_veto = index(veto)?;
        rule.text_also = index(also)?;
        rule.yield_to = index(yield_to)?;
    }
    let commands = raw
        .command
        .into_iter()
        .map(|c| {
            Ok(CommandRule {
                name: c.name,
                pattern: compile(&c.pattern)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let c = raw.classify;
    Ok(Rules {
        ndr,
        permanent: compile(&c.permanent)?,
        temporary: compile(&c.temporary)?,
        final_order: index(&c.final_order)?,
        probe_order: index(&c.probe_order)?,
        fallback_order: index(&c.fallback_order)?,
        unsettled: c.unsettled,
        late_text: index(&c.late_text)?,
        command_reason: c.command_reason,
        status: raw.status,
        reasons,
        command_set: regex::RegexSet::new(commands.iter().map(|c| c.pattern.as_str()))
            .map_err(|e| e.to_string())?,
        commands,
        gate: gate.build(),
    })
}

/// One alternation of literal phrases and regex patterns, matched against text already in
/// lower case (`classify` lowers it once per recipient). Profiling showed why: with `(?i)`
/// the regex engine cannot turn a long list of phrases into a literal prefilter (every
/// phrase has too many case variants) and scans each text with its lazy DFA, once per
/// reason; in lower case the phrases are plain literals, found by Aho-Corasick. Phrases
/// are lowered here; patterns are written in lower case (a unit test checks).
fn alternation(
    phrases: &[String],
    patterns: &[String],
    gate: &mut prefilter::Builder,
) -> Result<Option<Gated>, String> {
    let alts: Vec<String> = phrases
        .iter()
        .map(|p| regex::escape(&p.to_lowercase()))
        .chain(patterns.iter().cloned())
        .collect();
    if alts.is_empty() {
        return Ok(None);
    }
    let pattern = format!("(?:{})", alts.join(")|(?:"));
    Ok(Some(Gated {
        regex: compile(&pattern)?,
        slot: gate.add(&pattern),
    }))
}

fn reason_rule(r: RawReason, gate: &mut prefilter::Builder) -> Result<ReasonRule, String> {
    let pattern = match alternation(&r.phrases, &r.patterns, gate)? {
        Some(p) => p,
        // Matches nothing: `[^\s\S]` is a valid, empty character class.
        None => Gated {
            regex: compile(r"[^\s\S]")?,
            slot: gate.add(r"[^\s\S]"),
        },
    };
    Ok(ReasonRule {
        pattern,
        unless: alternation(&r.unless, &[], gate)?,
        final_pattern: alternation(&[], &r.final_patterns, gate)?,
        name: r.name,
        probe: r.probe,
        by_status: r.by_status,
        status_veto: Vec::new(),
        not_statuses: r.not_statuses,
        text_commands: r.text_commands,
        text_statuses: r.text_statuses,
        skip_commands: r.skip_commands,
        text_also: Vec::new(),
        reply_codes: r.reply_codes,
        needs_status: r.needs_status,
        yield_to: Vec::new(),
    })
}

fn empty() -> Rules {
    // Matches nothing: `[^\s\S]` is a valid, empty character class.
    let none = || Regex::new(r"[^\s\S]").expect("constant regex");
    Rules {
        ndr: NdrRules {
            strong_subject: none(),
            strong_body: none(),
            weak_subject: none(),
            weak_from: none(),
            original_marker: none(),
            header_start: none(),
            sender_line: none(),
            mailer_address: none(),
            list_address: none(),
            prose_line: none(),
            quoted_to: none(),
            mailbox_gone: none(),
            delayed: none(),
        },
        permanent: none(),
        temporary: none(),
        final_order: Vec::new(),
        probe_order: Vec::new(),
        fallback_order: Vec::new(),
        unsettled: Vec::new(),
        late_text: Vec::new(),
        command_reason: HashMap::new(),
        status: HashMap::new(),
        reasons: Vec::new(),
        commands: Vec::new(),
        command_set: regex::RegexSet::empty(),
        gate: prefilter::Builder::default().build(),
    }
}

static RULES: LazyLock<Rules> = LazyLock::new(|| load().unwrap_or_else(|_| empty()));

/// The compiled rules.
pub(crate) fn rules() -> &'static Rules {
    &RULES
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_toml_loads() {
        let r = super::load().expect("rules.toml must load");
        assert!(r.reasons.len() > 20);
        // Every name in a list resolved (load fails on an unknown one).
        assert!(!r.final_order.is_empty() && !r.probe_order.is_empty());
        assert!(!r.fallback_order.is_empty());
        assert_eq!(
            r.status.get("5.1.1").map(String::as_str),
            Some("userunknown")
        );
    }

    /// Reason patterns are matched against lower-cased text without `(?i)`: a capital
    /// letter outside an escape (`\S`, `\d`, ...) could never match.
    #[test]
    fn reason_patterns_are_written_in_lower_case() {
        let raw: super::RawRules = toml::from_str(super::RULES_TOML).expect("rules.toml");
        let escape = regex::Regex::new(r"\\[A-Za-z]").unwrap();
        for r in &raw.reason {
            for p in r.patterns.iter().chain(&r.final_patterns) {
                let bare = escape.replace_all(p, "");
                assert_eq!(bare, bare.to_lowercase(), "{}: {p}", r.name);
            }
        }
        for p in [&raw.classify.permanent, &raw.classify.temporary] {
            let bare = escape.replace_all(p, "");
            assert_eq!(bare, bare.to_lowercase(), "[classify]: {p}");
        }
    }

    /// The reason regexes are gated by their literals (`bounce::prefilter`): a rule that
    /// has none is run on every text, the cost the gate is there to save.
    #[test]
    fn nearly_every_reason_regex_is_gated() {
        let r = super::rules();
        let gated = r.reasons.len()
            + r.reasons.iter().filter(|x| x.unless.is_some()).count()
            + r.reasons
                .iter()
                .filter(|x| x.final_pattern.is_some())
                .count();
        assert!(
            r.gate.ungated() <= 2,
            "{} of {gated} reason regexes ungated",
            r.gate.ungated()
        );
    }

    #[test]
    fn phrases_match_lowered_text() {
        let rules = super::rules();
        let r = rules.reason("mailboxfull").expect("mailboxfull");
        let text = "552 User's Space Has Been Used Up".to_lowercase();
        assert!(r.matches(&text, &rules.scan(&text)));
    }
}

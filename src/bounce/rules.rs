//! Loads `rules.toml` (compiled in with `include_str!`) once, and compiles its patterns.
//!
//! The file is constant data shipped with the binary; a unit test loads it, so a broken rule
//! fails the build's tests rather than a parse at run time. Should it still fail to load, the
//! rules are empty and parsing goes on without classification rather than panicking.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

const RULES_TOML: &str = include_str!("rules.toml");

#[derive(Debug, Deserialize)]
struct RawRules {
    ndr: RawNdr,
    classify: RawClassify,
    status: HashMap<String, String>,
    reason: Vec<RawReason>,
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
    delayed: String,
}

#[derive(Debug, Deserialize)]
struct RawClassify {
    permanent: String,
    temporary: String,
    data_command: String,
    authoritative_status: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawReason {
    name: String,
    patterns: Vec<String>,
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
    pub delayed: Regex,
}

/// One reason and the diagnostic patterns that select it.
#[derive(Debug)]
pub(crate) struct ReasonRule {
    pub name: String,
    pub pattern: Regex,
}

#[derive(Debug)]
pub(crate) struct Rules {
    pub ndr: NdrRules,
    /// Text that says the failure is permanent / temporary, when there is no code.
    pub permanent: Regex,
    pub temporary: Regex,
    /// A failure reported in reply to the DATA command (RFC 5321 §4.1.1.4).
    pub data_command: Regex,
    /// Status codes whose table reason wins over any text pattern.
    pub authoritative_status: Vec<String>,
    /// Enhanced status code (full, or `class.subject`) to reason.
    pub status: HashMap<String, String>,
    /// Ordered: the first rule whose pattern matches the diagnostic wins.
    pub reasons: Vec<ReasonRule>,
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
        delayed: compile(&n.delayed)?,
    };
    let mut reasons = Vec::new();
    for r in &raw.reason {
        let joined = format!("(?i)(?:{})", r.patterns.join(")|(?:"));
        reasons.push(ReasonRule {
            name: r.name.clone(),
            pattern: compile(&joined)?,
        });
    }
    Ok(Rules {
        ndr,
        permanent: compile(&raw.classify.permanent)?,
        temporary: compile(&raw.classify.temporary)?,
        data_command: compile(&raw.classify.data_command)?,
        authoritative_status: raw.classify.authoritative_status,
        status: raw.status,
        reasons,
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
            delayed: none(),
        },
        permanent: none(),
        temporary: none(),
        data_command: none(),
        authoritative_status: Vec::new(),
        status: HashMap::new(),
        reasons: Vec::new(),
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
        assert_eq!(
            r.status.get("5.1.1").map(String::as_str),
            Some("userunknown")
        );
    }
}

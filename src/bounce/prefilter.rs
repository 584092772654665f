//! One pass over a text that tells which of many regexes can match in it.
//!
//! Classification asks up to a few dozen reason regexes about the same lower-cased text
//! (a diagnostic, or a whole report), and each regex scanned the whole text with its own
//! literal prefilter: in the parse profile that was a third of the time, mostly spent
//! rejecting. Here the prefix literals of every regex (what `regex` itself uses as its
//! prefilter, extracted the same way with `regex-syntax`) go into one Aho-Corasick
//! automaton; one overlapping scan of the text marks the regexes whose literals occur, and
//! only those are run. Where the prefix literals say little (a regex that can start with
//! a class), the suffix literals serve the same way; a regex with neither (or one that
//! matches the empty string) is always run. The answer is the regex's own: a regex is
//! skipped only when none of the literals every match must start (or end) with occurs.

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// A regex registered with [`Builder::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

/// Collects regexes' prefix literals, then builds the [`Prefilter`].
#[derive(Debug, Default)]
pub(crate) struct Builder {
    /// Distinct literals, and the slots each one lets through.
    literals: Vec<(Vec<u8>, Vec<usize>)>,
    always: Vec<usize>,
    slots: usize,
}

impl Builder {
    /// Register a regex (the pattern as given to `Regex::new`, with the same default
    /// flags). A pattern `regex-syntax` cannot parse is always run.
    pub(crate) fn add(&mut self, pattern: &str) -> Slot {
        let slot = self.slots;
        self.slots += 1;
        let literals = regex_syntax::Parser::new()
            .parse(pattern)
            .ok()
            .and_then(|hir| {
                // Every match starts with one of the prefix literals and ends with one of
                // the suffix literals: either set tells a text the regex cannot match. The
                // one whose shortest literal is longer is rarer in text.
                [ExtractKind::Prefix, ExtractKind::Suffix]
                    .into_iter()
                    .filter_map(|kind| {
                        let seq = Extractor::new().kind(kind).extract(&hir);
                        let lits: Vec<Vec<u8>> = seq
                            .literals()?
                            .iter()
                            .map(|l| l.as_bytes().to_vec())
                            .collect();
                        let shortest = lits.iter().map(Vec::len).min()?;
                        (shortest > 0).then_some((shortest, lits))
                    })
                    .reduce(|a, b| if b.0 > a.0 { b } else { a })
                    .map(|(_, lits)| lits)
            });
        match literals {
            Some(lits) => {
                for lit in lits {
                    match self.literals.iter_mut().find(|(l, _)| *l == lit) {
                        Some((_, owners)) => owners.push(slot),
                        None => self.literals.push((lit, vec![slot])),
                    }
                }
            }
            None => self.always.push(slot),
        }
        Slot(slot)
    }

    pub(crate) fn build(self) -> Prefilter {
        let words = self.slots.div_ceil(64);
        let mut always = vec![0u64; words];
        for s in &self.always {
            always[s / 64] |= 1 << (s % 64);
        }
        // Should the automaton fail to build, every regex is always run: slower, same answers.
        // A DFA: the scan is a large share of classification, and a DFA's transitions cost
        // the least per byte (its memory, a few MB for rules.toml, is paid once).
        let ac = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(self.literals.iter().map(|(l, _)| l))
            .ok();
        if ac.is_none() {
            always.iter_mut().for_each(|w| *w = u64::MAX);
        }
        Prefilter {
            ac,
            owners: self.literals.into_iter().map(|(_, o)| o).collect(),
            always,
        }
    }
}

/// The automaton over every registered regex's prefix literals.
#[derive(Debug)]
pub(crate) struct Prefilter {
    ac: Option<AhoCorasick>,
    /// Per automaton pattern: the slots its literal lets through.
    owners: Vec<Vec<usize>>,
    /// Slots run whatever the text holds.
    always: Vec<u64>,
}

impl Prefilter {
    /// How many registered regexes are always run (no literal to gate them).
    #[cfg(test)]
    pub(crate) fn ungated(&self) -> usize {
        self.always.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The regexes that may match somewhere in `text`.
    pub(crate) fn scan(&self, text: &str) -> Candidates {
        let mut bits = self.always.clone();
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text) {
                for &s in &self.owners[m.pattern().as_usize()] {
                    bits[s / 64] |= 1 << (s % 64);
                }
            }
        }
        Candidates(bits)
    }
}

/// Which registered regexes may match in one text ([`Prefilter::scan`]).
#[derive(Debug, Clone)]
pub(crate) struct Candidates(Vec<u64>);

impl Candidates {
    /// May the regex in `slot` match? `false` means it cannot.
    pub(crate) fn may(&self, slot: Slot) -> bool {
        self.0
            .get(slot.0 / 64)
            .is_none_or(|w| w & (1 << (slot.0 % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_only_regexes_whose_literals_are_absent() {
        let mut b = Builder::default();
        let full = b.add("(?:mailbox (is )?full)|(?:quota)");
        let user = b.add("user unknown");
        let class = b.add(r"\d+ retries");
        let nothing = b.add(r"\d+");
        let pf = b.build();
        let c = pf.scan("550 your mailbox full, sorry");
        assert!(c.may(full));
        assert!(!c.may(user));
        assert!(!c.may(class), "gated by its suffix");
        assert!(c.may(nothing), "no literal at all: always run");
        let c = pf.scan("over quota after 5 retries");
        assert!(c.may(full) && c.may(class));
    }

    /// Case-insensitive groups give their case variants.
    #[test]
    fn case_insensitive_literals() {
        let mut b = Builder::default();
        let data = b.add(r"(?i:after (end of )?data)|(?-u:\b)DATA(?-u:\b)");
        let pf = b.build();
        assert!(pf.scan("354 After End Of Data").may(data));
        assert!(pf.scan("x DATA y").may(data));
        assert!(!pf.scan("550 user unknown").may(data));
    }

    /// Overlapping literals are all seen: a leftmost search would report `mailbox full`
    /// and miss the `ail` inside it.
    #[test]
    fn overlapping_literals_all_count() {
        let mut b = Builder::default();
        let short = b.add("ail");
        let long = b.add("mailbox full");
        let pf = b.build();
        let c = pf.scan("x mailbox full");
        assert!(c.may(short) && c.may(long));
    }
}

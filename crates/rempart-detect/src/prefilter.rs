//! The literal prefilter: which rules an event can possibly match, found in one pass over it.
//!
//! Most Sigma rules cannot match unless some literal of theirs occurs in the event: a rule
//! `Image|endswith: '\rundll32.exe' and CommandLine|contains: 'javascript:'` needs both, and a
//! rule `1 of selection_*` needs one literal of each selection. [`Need`] is that necessary
//! condition, derived from the compiled rule: a set of literals of which at least one must
//! occur (lowercased) somewhere in the event's values, or [`Need::Always`] when no literal is
//! necessary (a negation, a numeric comparison, a field reference, a regular expression
//! without a literal prefix, a literal too short to be worth indexing).
//!
//! [`Prefilter`] indexes every rule's literals in one Aho-Corasick automaton. For an event,
//! the lowercased values are scanned once; the rules whose literals occurred, and the
//! `Always` rules, are the candidates, and only they go to `rsigma`'s matchers, which decide.
//! The prefilter never decides a match, so it cannot add one; it cannot lose one either, as
//! long as each [`Need`] is truly necessary, which is what the derivation below keeps to:
//!
//! - a case-insensitive matcher compares `value.to_lowercase()` with a literal `rsigma` has
//!   already lowercased, and the haystack holds exactly `value.to_lowercase()`;
//! - a case-sensitive matcher's literal is used lowercased only when it is ASCII, where
//!   lowercasing maps each character on its own (Unicode's only context-dependent lowercasing,
//!   the final sigma, is not ASCII);
//! - numbers and booleans enter the haystack as `rsigma` turns them into strings.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rsigma_eval::matcher::GroupMode;
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};
use serde_json::Value;

use crate::view::SigmaView;

/// Literals shorter than this (in bytes) are not indexed: they occur in nearly every event,
/// so a rule that needs one is evaluated for every event its route admits.
const MIN_LITERAL: usize = 3;

/// What an event must contain for a rule (or part of one) to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing the prefilter can check: always evaluate.
    Always,
    /// At least one of these lowercase literals occurs in the event's values. Empty: the part
    /// can never match (`1 of` a pattern naming no selection).
    AnyOf(BTreeSet<String>),
}

impl Need {
    fn literal(s: &str) -> Need {
        if s.is_empty() {
            return Need::Always;
        }
        Need::AnyOf(BTreeSet::from([s.to_owned()]))
    }

    /// How selective the need is: its shortest literal (longer is rarer), `usize::MAX` for a
    /// part that never matches, 0 for `Always`.
    fn score(&self) -> usize {
        match self {
            Need::Always => 0,
            Need::AnyOf(set) => set.iter().map(String::len).min().unwrap_or(usize::MAX),
        }
    }

    /// Either part may match: the literals of both.
    fn or(parts: impl IntoIterator<Item = Need>) -> Need {
        let mut all = BTreeSet::new();
        for part in parts {
            match part {
                Need::Always => return Need::Always,
                Need::AnyOf(set) => all.extend(set),
            }
        }
        Need::AnyOf(all)
    }

    /// Every part must match: the most selective part's need is enough to require.
    fn and(parts: impl IntoIterator<Item = Need>) -> Need {
        parts
            .into_iter()
            .max_by(|a, b| {
                a.score().cmp(&b.score()).then_with(|| match (a, b) {
                    // Of two equally selective sets, the smaller one hits less often.
                    (Need::AnyOf(x), Need::AnyOf(y)) => y.len().cmp(&x.len()),
                    _ => std::cmp::Ordering::Equal,
                })
            })
            .unwrap_or(Need::Always)
    }
}

/// The need of a whole rule: any of its conditions may match.
pub(crate) fn need_of_rule(rule: &CompiledRule) -> Need {
    let need = Need::or(rule.conditions.iter().map(|c| need_of_condition(c, rule)));
    match need {
        Need::AnyOf(set) if set.iter().any(|s| s.len() < MIN_LITERAL) => Need::Always,
        need => need,
    }
}

fn need_of_condition(condition: &ConditionExpr, rule: &CompiledRule) -> Need {
    match condition {
        ConditionExpr::And(parts) => Need::and(parts.iter().map(|c| need_of_condition(c, rule))),
        ConditionExpr::Or(parts) => Need::or(parts.iter().map(|c| need_of_condition(c, rule))),
        ConditionExpr::Not(_) => Need::Always,
        ConditionExpr::Identifier(name) => rule.detections.get(name).map_or(Need::Always, need_of_detection),
        ConditionExpr::Selector { quantifier, pattern } => {
            let named = rule
                .detections
                .iter()
                .filter(|(name, _)| pattern.matches_detection_name(name))
                .map(|(_, d)| need_of_detection(d));
            match quantifier {
                Quantifier::Any | Quantifier::Count(1) => Need::or(named),
                // `all of` no selection is true; `and` of nothing is `Always`, as it must be.
                Quantifier::All => Need::and(named),
                // `N of`: at least one of them matches, for N ≥ 1; `0 of` is always true.
                Quantifier::Count(0) => Need::Always,
                Quantifier::Count(_) => Need::or(named),
            }
        }
    }
}

fn need_of_detection(detection: &CompiledDetection) -> Need {
    match detection {
        CompiledDetection::AllOf(items) => Need::and(items.iter().map(|i| need_of_matcher(&i.matcher))),
        CompiledDetection::AnyOf(parts) => Need::or(parts.iter().map(need_of_detection)),
        CompiledDetection::Keywords(matcher) => need_of_matcher(matcher),
        CompiledDetection::And(parts) => Need::and(parts.iter().map(need_of_detection)),
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => Need::Always,
    }
}

/// The literal a string matcher needs in the lowercased haystack.
fn needle(value: &str, case_insensitive: bool) -> Need {
    if case_insensitive {
        Need::literal(value)
    } else if value.is_ascii() {
        Need::literal(&value.to_ascii_lowercase())
    } else {
        Need::Always
    }
}

fn need_of_matcher(matcher: &CompiledMatcher) -> Need {
    match matcher {
        CompiledMatcher::Exact {
            value,
            case_insensitive,
        }
        | CompiledMatcher::Contains {
            value,
            case_insensitive,
        }
        | CompiledMatcher::StartsWith {
            value,
            case_insensitive,
        }
        | CompiledMatcher::EndsWith {
            value,
            case_insensitive,
        } => needle(value, *case_insensitive),
        CompiledMatcher::AhoCorasickSet {
            needles,
            case_insensitive,
            ..
        } => Need::or(needles.iter().map(|n| needle(n, *case_insensitive))),
        CompiledMatcher::AnyOf(parts)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: parts,
            mode: GroupMode::Any,
        } => Need::or(parts.iter().map(need_of_matcher)),
        CompiledMatcher::AllOf(parts)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: parts,
            mode: GroupMode::All,
        } => Need::and(parts.iter().map(need_of_matcher)),
        CompiledMatcher::Regex(re) => need_of_regex(re.as_str()),
        CompiledMatcher::RegexSetMatch { set, mode } => {
            let parts = set.patterns().iter().map(|p| need_of_regex(p));
            match mode {
                GroupMode::Any => Need::or(parts),
                GroupMode::All => Need::and(parts),
            }
        }
        _ => Need::Always,
    }
}

/// What a regular expression's matches all begin with: one of the prefixes `regex-syntax`
/// extracts from it (flags such as `(?i)` are inline in the pattern), lowercased. A match of
/// the expression in a value begins with one of them, so the lowercased value holds it.
fn need_of_regex(pattern: &str) -> Need {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else {
        return Need::Always;
    };
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let Some(literals) = seq.literals() else {
        return Need::Always;
    };
    Need::or(literals.iter().map(|l| match std::str::from_utf8(l.as_bytes()) {
        // The final sigma is the one character whose lowercase depends on its neighbours.
        Ok(text) if !text.contains('Σ') => Need::literal(&text.to_lowercase()),
        _ => Need::Always,
    }))
}

/// The rules' literals in one automaton, and the rules without any.
#[derive(Debug)]
pub(crate) struct Prefilter {
    automaton: Option<AhoCorasick>,
    /// For each pattern of the automaton, the rules that need it.
    rules_of: Vec<Vec<u32>>,
    /// The rules evaluated for every event (bit per rule).
    always: Vec<u64>,
}

/// The rules an event may match, one bit per rule.
#[derive(Debug)]
pub(crate) struct Candidates(Vec<u64>);

impl Candidates {
    /// The candidate rules in `range`, in order.
    pub(crate) fn in_range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        range.filter(|&i| self.0[i / 64] & (1 << (i % 64)) != 0)
    }
}

impl Prefilter {
    /// Indexes the needs of rules `0..needs.len()`.
    pub(crate) fn build(needs: &[Need]) -> Prefilter {
        let words = needs.len().div_ceil(64);
        let mut always = vec![0u64; words];
        let mut patterns: std::collections::BTreeMap<&str, Vec<u32>> = std::collections::BTreeMap::new();
        for (i, need) in needs.iter().enumerate() {
            match need {
                Need::Always => always[i / 64] |= 1 << (i % 64),
                Need::AnyOf(set) => {
                    let rule = u32::try_from(i).unwrap_or(u32::MAX);
                    for literal in set {
                        patterns.entry(literal).or_default().push(rule);
                    }
                }
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(patterns.keys())
                .ok()
        };
        if automaton.is_none() {
            // Without an automaton (none needed, or it could not be built) every rule is a
            // candidate: slower, never wrong.
            for (i, need) in needs.iter().enumerate() {
                if matches!(need, Need::AnyOf(_)) {
                    always[i / 64] |= 1 << (i % 64);
                }
            }
        }
        Prefilter {
            automaton,
            rules_of: patterns.into_values().collect(),
            always,
        }
    }

    /// The rules `event`, seen through `view`, may match.
    pub(crate) fn candidates(&self, view: &SigmaView<'_>) -> Candidates {
        let mut bits = self.always.clone();
        let Some(automaton) = &self.automaton else {
            return Candidates(bits);
        };
        let mut haystack = String::with_capacity(4096);
        for v in view.scan_values() {
            push_lowercase(v, &mut haystack);
        }
        let mut seen = vec![0u64; self.rules_of.len().div_ceil(64)];
        for m in automaton.find_overlapping_iter(&haystack) {
            let p = m.pattern().as_usize();
            let (word, bit) = (p / 64, 1 << (p % 64));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                for &r in &self.rules_of[p] {
                    let r = r as usize;
                    bits[r / 64] |= 1 << (r % 64);
                }
            }
        }
        Candidates(bits)
    }
}

/// Appends every scalar under `v`, as `rsigma` reads it as a string, lowercased, each followed
/// by a NUL (a literal spanning two values only makes a rule a candidate for nothing).
fn push_lowercase(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if s.is_ascii() {
                let start = out.len();
                out.push_str(s);
                out[start..].make_ascii_lowercase();
            } else {
                out.push_str(&s.to_lowercase());
            }
            out.push('\0');
        }
        Value::Number(n) => {
            use std::fmt::Write as _;
            let _ = match n.as_i64() {
                Some(i) => write!(out, "{i}"),
                None => write!(out, "{}", n.as_f64().unwrap_or(f64::NAN)),
            };
            out.push('\0');
        }
        Value::Bool(b) => {
            out.push_str(if *b { "true" } else { "false" });
            out.push('\0');
        }
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|i| push_lowercase(i, out)),
        Value::Object(map) => map.values().for_each(|i| push_lowercase(i, out)),
    }
}

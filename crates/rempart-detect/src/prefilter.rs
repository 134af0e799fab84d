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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rempart_model::{Event, Format};
    use serde_json::{Map, Value};

    use crate::RuleSet;

    /// Characters that test lowercasing: ASCII of both cases, characters whose lowercase is
    /// longer or ASCII (`İ`, the Kelvin sign), the context-dependent final sigma, wildcards
    /// and regex syntax.
    const ALPHABET: &[char] = &[
        'a', 'b', 'A', 'B', 'x', '\\', '.', ' ', '-', 'Σ', 'σ', 'ς', 'İ', 'i', 'K', 'k', 'ß', 'é', 'É', '1',
    ];

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..max).prop_map(|c| c.into_iter().collect())
    }

    fn yaml_quoted(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    /// One selection: `field|modifiers: value or list`.
    fn selection() -> impl Strategy<Value = String> {
        let modifier = proptest::sample::select(vec![
            "",
            "|contains",
            "|startswith",
            "|endswith",
            "|contains|all",
            "|contains|cased",
            "|endswith|cased",
            "|cased",
            "|re",
            "|re|i",
            "|windash",
            "|contains|windash",
        ]);
        let field = proptest::sample::select(vec!["A", "B", "C"]);
        let value = text(6).prop_map(|v| {
            // Keep regexes valid: only literal characters, maybe a class or a repetition.
            v.replace('\\', "\\\\").replace('.', "\\.")
        });
        (
            field,
            modifier,
            proptest::collection::vec(value, 1..4),
            proptest::option::of(text(4)),
            any::<bool>(),
        )
            .prop_map(|(field, modifier, values, wildcard, regex_class)| {
                let mut values = values;
                if let Some(w) = wildcard
                    && !modifier.contains("|re")
                {
                    values.push(format!("{w}*{w}"));
                }
                if regex_class && modifier.contains("|re") {
                    values.push("a[bB]+x".into());
                }
                let list: Vec<String> = values.iter().map(|v| format!("      - {}", yaml_quoted(v))).collect();
                format!("    {field}{modifier}:\n{}\n", list.join("\n"))
            })
    }

    fn rule() -> impl Strategy<Value = String> {
        let condition = proptest::sample::select(vec![
            "sel1",
            "sel1 and sel2",
            "sel1 or sel2",
            "sel1 and not sel2",
            "not sel1",
            "1 of sel*",
            "all of sel*",
            "1 of them",
            "(sel1 or sel2) and sel3",
            "keywords",
            "keywords and sel1",
        ]);
        (selection(), selection(), selection(), text(5), condition).prop_map(|(s1, s2, s3, keyword, condition)| {
            format!(
                "title: Generated\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n  product: test\ndetection:\n  sel1:\n{s1}  sel2:\n{s2}  sel3:\n{s3}  keywords:\n    - {}\n  condition: {condition}\nlevel: low\n",
                yaml_quoted(&format!("*{keyword}*"))
            )
        })
    }

    fn event() -> impl Strategy<Value = Event> {
        let value = prop_oneof![
            text(12).prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            proptest::collection::vec(text(8), 0..3).prop_map(Value::from),
            text(8).prop_map(|t| serde_json::json!({ "inner": t })),
        ];
        proptest::collection::vec((proptest::sample::select(vec!["A", "B", "C", "D"]), value), 0..5).prop_map(
            |fields| {
                let map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                Event::new(
                    Format::Json,
                    jiff::Timestamp::UNIX_EPOCH,
                    jiff::Timestamp::UNIX_EPOCH,
                    map,
                )
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the rule and the event, the prefilter keeps every rule that matches: the
        /// prefiltered evaluation finds exactly what evaluating every rule finds.
        #[test]
        fn the_prefilter_never_drops_a_rule_that_matches(rules in proptest::collection::vec(rule(), 1..4), events in proptest::collection::vec(event(), 1..6)) {
            let texts: Vec<(String, String)> = rules.iter().enumerate().map(|(i, t)| (format!("r{i}.yml"), t.clone())).collect();
            let (set, _) = RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
            for e in &events {
                prop_assert_eq!(set.evaluate(e), set.evaluate_exhaustively(e), "event {:?}", e.fields);
            }
        }
    }

    #[test]
    fn a_case_sensitive_final_sigma_still_matches() {
        // `"ΑΣ".to_lowercase()` ends in a final sigma, `"Σ".to_lowercase()` is a plain one: the
        // lowercased literal is not in the lowercased value, so the rule must not need it.
        let text =
            "title: T\nlogsource:\n  product: test\ndetection:\n  a:\n    A|contains|cased: 'ΑΣ'\n  condition: a\n";
        let (set, report) = RuleSet::load([("t.yml", text)]);
        assert_eq!(report.loaded.len(), 1, "{:?}", report.rejected);
        let Value::Object(map) = serde_json::json!({"A": "ΟΔΟΣ ΑΣ"}) else {
            unreachable!()
        };
        let event = Event::new(
            Format::Json,
            jiff::Timestamp::UNIX_EPOCH,
            jiff::Timestamp::UNIX_EPOCH,
            map,
        );
        assert_eq!(set.evaluate_exhaustively(&event).len(), 1);
        assert_eq!(set.evaluate(&event).len(), 1);
    }

    #[test]
    fn a_rule_needs_the_literals_of_its_most_selective_part() {
        let text = "title: T\nlogsource:\n  product: test\ndetection:\n  a:\n    Image|endswith: '\\evil.exe'\n  b:\n    CommandLine|contains:\n      - ' -enc '\n      - ' -e '\n  filter:\n    User: SYSTEM\n  condition: a and b and not filter\n";
        let (set, report) = RuleSet::load([("t.yml", text)]);
        assert_eq!(report.loaded.len(), 1, "{:?}", report.rejected);
        let need = super::need_of_rule(&set.compiled[0]);
        assert_eq!(need, super::Need::AnyOf(["\\evil.exe".to_owned()].into()));
        let event = |image: &str| {
            let Value::Object(map) = serde_json::json!({"Image": image, "CommandLine": "x -enc y"}) else {
                unreachable!()
            };
            Event::new(
                Format::Json,
                jiff::Timestamp::UNIX_EPOCH,
                jiff::Timestamp::UNIX_EPOCH,
                map,
            )
        };
        assert_eq!(set.candidates(&event("C:\\EVIL.EXE")), (1, 1));
        assert_eq!(set.candidates(&event("C:\\good.exe")), (0, 1));
        assert_eq!(set.evaluate(&event("C:\\EVIL.EXE")).len(), 1);
    }
}

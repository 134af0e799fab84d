//! The literal prefilter: which rules an event can possibly match, found in one pass over it.
//!
//! Most Sigma rules cannot match unless some literal of theirs occurs in the event: a rule
//! `Image|endswith: '\rundll32.exe' and CommandLine|contains: 'javascript:'` needs both, and a
//! rule `1 of selection_*` needs one literal of some selection. [`Need`] is that necessary
//! condition, derived from the compiled rule: up to two clauses, each a set of literals of
//! which at least one must occur (lowercased) somewhere in the event's values; no clause when
//! no literal is necessary (a negation, a numeric comparison, a field reference, a regular
//! expression without a literal prefix, a literal too short to be worth indexing).
//!
//! [`Prefilter`] indexes every rule's literals in one Aho-Corasick automaton. For an event,
//! the lowercased values are scanned once; the rules all of whose clauses a literal satisfied,
//! and the rules without clauses, are the candidates, and only they go to `rsigma`'s matchers,
//! which decide.
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

use daachorse::DoubleArrayAhoCorasick;
use rsigma_eval::EventValue;
use rsigma_eval::matcher::GroupMode;
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};
use serde_json::Value;

use crate::view::SigmaView;

/// Literals shorter than this (in bytes) are not indexed: they occur in nearly every event,
/// so a rule that needs one is evaluated for every event its route admits.
const MIN_LITERAL: usize = 3;

/// Whether a literal is too short to be worth indexing. A single non-ASCII character (a
/// Cyrillic homoglyph, an emoji) is rare in logs, unlike one or two ASCII characters.
fn too_common(literal: &str) -> bool {
    literal.len() < MIN_LITERAL && literal.is_ascii()
}

/// Most clauses kept per rule: a rule is a candidate when each holds.
const CLAUSES: usize = 2;

/// How selective a number compared with a field is taken to be, as a literal's length: a
/// Windows event id is rarer than `.exe`, commoner than `\rundll32.exe`.
const NUMBER_SCORE: usize = 6;

/// One thing a clause may find in an event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Atom {
    /// A lowercase literal in what `rsigma` reads of a field: the value of the view's top-level
    /// name `field` ([`Field::Named`]), or any value ([`Field::Any`]).
    Literal(String, Field),
    /// A number, by its bits, among the numbers `field` holds as `rsigma` reads them.
    Number { field: String, bits: u64 },
}

/// Where a literal must occur.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    /// In the value of one of these top-level names of the view, nested values included: the
    /// field itself, and for a path (`actor.id`, `name[0]`) also its first segment, under which
    /// `rsigma` looks when the view has no such name.
    Named(Vec<String>),
    /// In any value (keywords, or a path too unusual to be sure of its root).
    Any,
}

impl Field {
    fn of(field: Option<&str>) -> Field {
        match field {
            None => Field::Any,
            // A backslash escapes a dot or a bracket: the root is then not a plain prefix.
            Some(field) if field.contains('\\') => Field::Any,
            Some(field) => match field.split(['.', '[']).next() {
                Some(root) if root == field => Field::Named(vec![field.to_owned()]),
                Some(root) if !root.is_empty() => Field::Named(vec![field.to_owned(), root.to_owned()]),
                _ => Field::Any,
            },
        }
    }
}

impl Atom {
    fn score(&self) -> usize {
        match self {
            Atom::Literal(l, _) => l.len(),
            Atom::Number { .. } => NUMBER_SCORE,
        }
    }
}

/// What an event must contain for a rule (or part of one) to match: every clause, each a set of
/// lowercase literals of which at least one occurs in the event's values. No clause: nothing
/// the prefilter can check, always evaluate. An empty clause: the part never matches (`1 of` a
/// pattern naming no selection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need(Vec<BTreeSet<Atom>>);

/// How selective a clause is: its shortest literal (longer is rarer), `usize::MAX` for one that
/// never holds.
fn score(clause: &BTreeSet<Atom>) -> usize {
    clause.iter().map(Atom::score).min().unwrap_or(usize::MAX)
}

impl Need {
    pub(crate) fn always() -> Need {
        Need(Vec::new())
    }

    fn literal(s: &str, field: Option<&str>) -> Need {
        if s.is_empty() {
            return Need::always();
        }
        Need(vec![BTreeSet::from([Atom::Literal(s.to_owned(), Field::of(field))])])
    }

    /// `field` holds the number `n`. `rsigma` compares numbers within `f64::EPSILON`, which
    /// for `|n| ≥ 1` is equality (no other `f64` is that close); smaller ones are not indexed.
    fn number(field: Option<&str>, n: f64) -> Need {
        match field {
            Some(field) if n.is_finite() && n.abs() >= 1.0 => Need(vec![BTreeSet::from([Atom::Number {
                field: field.to_owned(),
                bits: n.to_bits(),
            }])]),
            _ => Need::always(),
        }
    }

    /// The clauses, most selective first (of two equally selective, the smaller one hits less
    /// often), at most `CLAUSES`: leaving a clause out keeps the need necessary.
    fn ranked(mut clauses: Vec<BTreeSet<Atom>>) -> Need {
        // Ties broken by the atoms themselves, so that the same rule always needs the same.
        clauses.sort_by(|a, b| {
            score(b)
                .cmp(&score(a))
                .then_with(|| a.len().cmp(&b.len()))
                .then_with(|| a.cmp(b))
        });
        let mut kept: Vec<BTreeSet<Atom>> = Vec::with_capacity(CLAUSES);
        for clause in clauses {
            if kept.len() == CLAUSES {
                break;
            }
            if !kept.contains(&clause) {
                kept.push(clause);
            }
        }
        Need(kept)
    }

    /// Either part may match. The `k`-th clause holds one atom of each part's `k`-th clause
    /// (its first if it has fewer): `(a1 ∧ a2) ∨ (b1 ∧ b2)` implies `(a1 ∨ b1) ∧ (a2 ∨ b2)`.
    /// No part: the empty clause, which never holds.
    fn or(parts: impl IntoIterator<Item = Need>) -> Need {
        let parts: Vec<Need> = parts.into_iter().collect();
        if parts.iter().any(|p| p.0.is_empty()) {
            return Need::always();
        }
        let width = parts.iter().map(|p| p.0.len()).max().unwrap_or(1);
        let clauses = (0..width)
            .map(|k| {
                parts
                    .iter()
                    .flat_map(|p| p.0.get(k).unwrap_or(&p.0[0]))
                    .cloned()
                    .collect::<BTreeSet<Atom>>()
            })
            .collect();
        Need::ranked(clauses)
    }

    /// Every part must match: every part's clauses.
    fn and(parts: impl IntoIterator<Item = Need>) -> Need {
        Need::ranked(parts.into_iter().flat_map(|p| p.0).collect())
    }
}

/// The need of a whole rule: any of its conditions may match. Clauses holding a literal too
/// short to index are left out.
pub(crate) fn need_of_rule(rule: &CompiledRule) -> Need {
    let Need(clauses) = match rule.conditions.as_slice() {
        // One condition: all its clauses, not only the best one `or` keeps.
        [condition] => need_of_condition(condition, rule),
        conditions => Need::or(conditions.iter().map(|c| need_of_condition(c, rule))),
    };
    Need(
        clauses
            .into_iter()
            .filter(|c| c.iter().all(|a| !matches!(a, Atom::Literal(l, _) if too_common(l))))
            .collect(),
    )
}

fn need_of_condition(condition: &ConditionExpr, rule: &CompiledRule) -> Need {
    match condition {
        ConditionExpr::And(parts) => Need::and(parts.iter().map(|c| need_of_condition(c, rule))),
        ConditionExpr::Or(parts) => Need::or(parts.iter().map(|c| need_of_condition(c, rule))),
        ConditionExpr::Not(_) => Need::always(),
        ConditionExpr::Identifier(name) => rule.detections.get(name).map_or(Need::always(), need_of_detection),
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
                Quantifier::Count(0) => Need::always(),
                Quantifier::Count(_) => Need::or(named),
            }
        }
    }
}

fn need_of_detection(detection: &CompiledDetection) -> Need {
    match detection {
        // An item with `exists` checks presence only, whatever its matcher.
        CompiledDetection::AllOf(items) => Need::and(items.iter().map(|i| match i.exists {
            Some(_) => Need::always(),
            None => need_of_matcher(&i.matcher, i.field.as_deref()),
        })),
        CompiledDetection::AnyOf(parts) => Need::or(parts.iter().map(need_of_detection)),
        CompiledDetection::Keywords(matcher) => need_of_matcher(matcher, None),
        CompiledDetection::And(parts) => Need::and(parts.iter().map(need_of_detection)),
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => Need::always(),
    }
}

/// The literal a string matcher applied to `field` needs in the lowercased haystack.
fn needle(value: &str, case_insensitive: bool, field: Option<&str>) -> Need {
    if case_insensitive {
        Need::literal(value, field)
    } else if value.is_ascii() {
        Need::literal(&value.to_ascii_lowercase(), field)
    } else {
        Need::always()
    }
}

/// What `matcher` needs, applied to `field` (`None`: to every string value, as keywords are).
fn need_of_matcher(matcher: &CompiledMatcher, field: Option<&str>) -> Need {
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
        } => needle(value, *case_insensitive, field),
        CompiledMatcher::AhoCorasickSet {
            needles,
            case_insensitive,
            ..
        } => Need::or(needles.iter().map(|n| needle(n, *case_insensitive, field))),
        CompiledMatcher::AnyOf(parts)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: parts,
            mode: GroupMode::Any,
        } => Need::or(parts.iter().map(|m| need_of_matcher(m, field))),
        CompiledMatcher::AllOf(parts)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: parts,
            mode: GroupMode::All,
        } => Need::and(parts.iter().map(|m| need_of_matcher(m, field))),
        CompiledMatcher::Regex(re) => need_of_regex(re.as_str(), field),
        CompiledMatcher::RegexSetMatch { set, mode } => {
            let parts = set.patterns().iter().map(|p| need_of_regex(p, field));
            match mode {
                GroupMode::Any => Need::or(parts),
                GroupMode::All => Need::and(parts),
            }
        }
        CompiledMatcher::NumericEq(n) => Need::number(field, *n),
        _ => Need::always(),
    }
}

/// What a regular expression's matches all contain (flags such as `(?i)` are inline in the
/// pattern): see [`need_of_hir`].
fn need_of_regex(pattern: &str, field: Option<&str>) -> Need {
    match regex_syntax::Parser::new().parse(pattern) {
        Ok(hir) => need_of_hir(&hir, field),
        Err(_) => Need::always(),
    }
}

/// Most parts of a concatenation looked at for literals: enough for the patterns rules write,
/// and a bound on the work an unusual one costs at load.
const MAX_PARTS: usize = 64;

/// What every match of `hir` contains. A match of an alternation is a match of one of its
/// branches. A match of a concatenation `c0 c1 … cn` contains a match of each tail `ci … cn`,
/// which begins with one of the prefixes `regex-syntax` extracts from that tail: each tail
/// gives a clause, and the most selective are kept, so that `\.exe\s+.*werfault\.exe`
/// needs `werfault.exe` as well as `.exe`. Literals are lowercased, as the haystack is.
fn need_of_hir(hir: &regex_syntax::hir::Hir, field: Option<&str>) -> Need {
    use regex_syntax::hir::{Hir, HirKind};
    match hir.kind() {
        HirKind::Capture(c) => need_of_hir(&c.sub, field),
        HirKind::Alternation(branches) => Need::or(branches.iter().map(|b| need_of_hir(b, field))),
        HirKind::Concat(parts) => Need::and(
            (0..parts.len().min(MAX_PARTS)).map(|i| need_of_prefixes(&Hir::concat(parts[i..].to_vec()), field)),
        ),
        _ => need_of_prefixes(hir, field),
    }
}

/// One of the prefixes of `hir`'s matches, lowercased.
fn need_of_prefixes(hir: &regex_syntax::hir::Hir, field: Option<&str>) -> Need {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let Some(literals) = seq.literals() else {
        return Need::always();
    };
    // One clause of the lowercased literals (case variants of `(?i)` collapse into one).
    let field = Field::of(field);
    let mut clause = BTreeSet::new();
    for l in literals {
        match std::str::from_utf8(l.as_bytes()) {
            // The final sigma is the one character whose lowercase depends on its neighbours.
            Ok(text) if !text.is_empty() && !text.contains('Σ') => {
                clause.insert(Atom::Literal(text.to_lowercase(), field.clone()));
            }
            _ => return Need::always(),
        }
    }
    Need(vec![clause])
}

/// The rules and clauses each number (by its bits) satisfies.
type ByNumber = std::collections::HashMap<u64, Vec<(u32, u8)>>;

/// Literals in one automaton, each with the rules and clauses it satisfies.
struct Literals {
    automaton: DoubleArrayAhoCorasick<u32>,
    /// For each pattern of the automaton, the rules and clauses it satisfies, with those of
    /// every pattern it ends with: the automaton reports only the longest pattern ending at a
    /// position, and the others ending there are its suffixes.
    rules_of: Vec<Vec<(u32, u8)>>,
    /// Whether a literal may occur in a number written out (digits, `-`, `.`); if not,
    /// numbers are not scanned.
    in_numbers: bool,
    /// Whether a literal may occur in `true` or `false`.
    in_booleans: bool,
}

impl Literals {
    /// `None` without literals; an error if the automaton cannot be built.
    fn build(patterns: std::collections::BTreeMap<&str, Vec<(u32, u8)>>) -> Result<Option<Literals>, ()> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = DoubleArrayAhoCorasick::new(patterns.keys()).map_err(|_| ())?;
        let in_numbers = patterns
            .keys()
            .any(|l| l.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'.'));
        let in_booleans = patterns.keys().any(|l| "true".contains(l) || "false".contains(l));
        // A pattern's suffixes that are patterns too start at one of its character boundaries
        // (a UTF-8 string cannot start inside a character).
        let rules_of = patterns
            .iter()
            .map(|(pattern, rules)| {
                let mut all = rules.clone();
                for (at, _) in pattern.char_indices().skip(1) {
                    all.extend(patterns.get(&pattern[at..]).into_iter().flatten());
                }
                all.sort_unstable();
                all.dedup();
                all
            })
            .collect();
        Ok(Some(Literals {
            automaton,
            rules_of,
            in_numbers,
            in_booleans,
        }))
    }
}

/// The rules' literals and numbers, indexed, and the rules without any.
pub(crate) struct Prefilter {
    /// The literals that must occur in the value of a named field.
    named: Option<Literals>,
    /// The literals that may occur in any value (keywords).
    anywhere: Option<Literals>,
    /// For each field compared with numbers: the rules and clauses each number satisfies.
    numbers: Vec<(String, ByNumber)>,
    /// For each clause number, the rules that clause already holds for (a rule with fewer
    /// clauses, or none), one bit per rule.
    held: [Vec<u64>; CLAUSES],
    /// The view's top-level names under which a literal of `named` must occur: the only
    /// values `named` scans.
    names: foldhash::HashSet<String>,
    /// The rules with a literal of `anywhere`, one bit per rule.
    reads_anywhere: Vec<u64>,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |l: &Option<Literals>| l.as_ref().map_or(0, |l| l.rules_of.len());
        let bytes = |l: &Option<Literals>| l.as_ref().map_or(0, |l| l.automaton.heap_bytes());
        f.debug_struct("Prefilter")
            .field("named_literals", &count(&self.named))
            .field("named_automaton_bytes", &bytes(&self.named))
            .field("names", &self.names.len())
            .field("anywhere_literals", &count(&self.anywhere))
            .field("number_fields", &self.numbers.len())
            .finish_non_exhaustive()
    }
}

/// Sets bit `i` of a bitset.
fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

/// Whether bit `i` of a bitset is set.
fn bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// The rules an event may match, one bit per rule.
#[derive(Debug)]
pub(crate) struct Candidates(Vec<u64>);

impl Candidates {
    /// The candidate rules in `range`, in order: word by word, each set bit once.
    pub(crate) fn in_range(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        let (start, end) = (range.start, range.end);
        (start / 64..end.div_ceil(64)).flat_map(move |w| {
            let mut bits = self.0[w];
            // Only the bits of rules in the range.
            if w == start / 64 {
                bits &= u64::MAX << (start % 64);
            }
            if w == end / 64 {
                bits &= (1u64 << (end % 64)) - 1;
            }
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }
}

impl Prefilter {
    /// Indexes the needs of rules `0..needs.len()`.
    pub(crate) fn build(needs: &[Need]) -> Prefilter {
        use std::collections::BTreeMap;
        let words = needs.len().div_ceil(64);
        let mut held: [Vec<u64>; CLAUSES] = std::array::from_fn(|_| vec![0u64; words]);
        let mut named: BTreeMap<&str, Vec<(u32, u8)>> = BTreeMap::new();
        let mut anywhere: BTreeMap<&str, Vec<(u32, u8)>> = BTreeMap::new();
        let mut numbers: BTreeMap<&str, ByNumber> = BTreeMap::new();
        let mut names = foldhash::HashSet::default();
        let mut reads_anywhere = vec![0u64; words];
        for (i, need) in needs.iter().enumerate() {
            let rule = u32::try_from(i).unwrap_or(u32::MAX);
            for (c, slot) in held.iter_mut().enumerate() {
                let Some(clause) = need.0.get(c) else {
                    set_bit(slot, i);
                    continue;
                };
                let satisfied = (rule, c as u8);
                for atom in clause {
                    match atom {
                        Atom::Literal(l, Field::Named(n)) => {
                            named.entry(l).or_default().push(satisfied);
                            names.extend(n.iter().cloned());
                        }
                        Atom::Literal(l, Field::Any) => {
                            anywhere.entry(l).or_default().push(satisfied);
                            set_bit(&mut reads_anywhere, i);
                        }
                        Atom::Number { field, bits } => numbers
                            .entry(field)
                            .or_default()
                            .entry(*bits)
                            .or_default()
                            .push(satisfied),
                    }
                }
            }
        }
        let (named, anywhere) = match (Literals::build(named), Literals::build(anywhere)) {
            (Ok(named), Ok(anywhere)) => (named, anywhere),
            _ => {
                // An automaton that cannot be built makes every rule a candidate: slower,
                // never wrong.
                for slot in &mut held {
                    slot.iter_mut().for_each(|w| *w = u64::MAX);
                }
                (None, None)
            }
        };
        Prefilter {
            named,
            anywhere,
            numbers: numbers.into_iter().map(|(f, n)| (f.to_owned(), n)).collect(),
            held,
            names,
            reads_anywhere,
        }
    }

    /// Whether a rule in `rules` needs a literal that may occur in any value.
    pub(crate) fn reads_anywhere(&self, rules: std::ops::Range<usize>) -> bool {
        rules.into_iter().any(|i| bit(&self.reads_anywhere, i))
    }

    /// The rules `view` may match, among those evaluated. `every_value` when one of those
    /// [reads anywhere](Prefilter::reads_anywhere), so that its literals are looked for in every
    /// value; otherwise only the named fields are scanned. The candidates outside the rules
    /// evaluated are not to be relied on.
    pub(crate) fn candidates(&self, view: &SigmaView<'_>, every_value: bool) -> Candidates {
        let mut held = self.held.clone();
        let mut buffer = String::new();
        if let Some(literals) = &self.named {
            let mut scan = Scan::new(literals, &mut held, &mut buffer);
            view.entries()
                .filter(|(name, _)| self.names.contains(*name))
                .for_each(|(_, v)| scan.value(v));
        }
        if let Some(literals) = self.anywhere.as_ref().filter(|_| every_value) {
            let mut scan = Scan::new(literals, &mut held, &mut buffer);
            view.scan_values().for_each(|v| scan.value(v));
        }
        let mut found = Vec::new();
        for (field, rules) in &self.numbers {
            found.clear();
            if let Some(value) = rsigma_eval::Event::get_field(view, field) {
                numbers_in(&value, &mut found);
            }
            for n in &found {
                for &(r, c) in rules.get(&n.to_bits()).into_iter().flatten() {
                    set_bit(&mut held[c as usize], r as usize);
                }
            }
        }
        let [first, rest @ ..] = held;
        let mut bits = first;
        for clause in rest {
            bits.iter_mut().zip(clause).for_each(|(b, c)| *b &= c);
        }
        Candidates(bits)
    }
}

/// The numbers `rsigma` reads in a field's value when comparing it with a number.
fn numbers_in(value: &EventValue<'_>, out: &mut Vec<f64>) {
    match value {
        EventValue::Int(n) => out.push(*n as f64),
        EventValue::Float(f) => out.push(*f),
        EventValue::Str(s) => out.extend(s.parse::<f64>().ok()),
        EventValue::Array(items) => items.iter().for_each(|i| numbers_in(i, out)),
        _ => {}
    }
}

/// One event's scan: each scalar value, as `rsigma` reads it as a string, lowercased, searched
/// for every literal on its own.
struct Scan<'a> {
    found: Found<'a>,
    /// Where values that are not already lowercase are lowercased.
    buffer: &'a mut String,
}

/// The literals found in an event so far, and the clauses they satisfy.
struct Found<'a> {
    literals: &'a Literals,
    seen: Vec<u64>,
    held: &'a mut [Vec<u64>; CLAUSES],
}

impl<'a> Scan<'a> {
    fn new(literals: &'a Literals, held: &'a mut [Vec<u64>; CLAUSES], buffer: &'a mut String) -> Scan<'a> {
        Scan {
            found: Found {
                literals,
                seen: vec![0u64; literals.rules_of.len().div_ceil(64)],
                held,
            },
            buffer,
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) if !s.is_ascii() => self.found.search(&s.to_lowercase()),
            Value::String(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.buffer.clear();
                self.buffer.push_str(s);
                self.buffer.make_ascii_lowercase();
                self.found.search(self.buffer);
            }
            Value::String(s) => self.found.search(s),
            Value::Number(n) if self.found.literals.in_numbers => {
                use std::fmt::Write as _;
                self.buffer.clear();
                let _ = match n.as_i64() {
                    Some(i) => write!(self.buffer, "{i}"),
                    None => write!(self.buffer, "{}", n.as_f64().unwrap_or(f64::NAN)),
                };
                self.found.search(self.buffer);
            }
            Value::Bool(b) if self.found.literals.in_booleans => self.found.search(if *b { "true" } else { "false" }),
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
            Value::Array(items) => items.iter().for_each(|i| self.value(i)),
            Value::Object(map) => map.values().for_each(|i| self.value(i)),
        }
    }
}

impl Found<'_> {
    fn search(&mut self, lowercase: &str) {
        for m in self.literals.automaton.find_overlapping_no_suffix_iter(lowercase) {
            let p = m.value() as usize;
            if !bit(&self.seen, p) {
                set_bit(&mut self.seen, p);
                for &(r, c) in &self.literals.rules_of[p] {
                    set_bit(&mut self.held[c as usize], r as usize);
                }
            }
        }
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
        // `D.inner` is a path: a rule reading it reads under `D`.
        let field = proptest::sample::select(vec!["A", "B", "C", "D.inner"]);
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

    /// Text over three characters: literals made of it often end one another (`b`, `ab`,
    /// `bab`), which is what the automaton's reporting of only the longest pattern ending at a
    /// position must not lose.
    fn dense_text(min: usize, max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(&['a', 'b', 'B'][..]), min..max)
            .prop_map(|c| c.into_iter().collect())
    }

    fn dense_selection() -> impl Strategy<Value = String> {
        let modifier = proptest::sample::select(vec!["|contains", "|endswith", "|startswith", "", "|contains|all"]);
        (modifier, proptest::collection::vec(dense_text(1, 5), 1..4)).prop_map(|(m, values)| {
            let list: Vec<String> = values.iter().map(|v| format!("      - {}", yaml_quoted(v))).collect();
            format!("    A{m}:\n{}\n", list.join("\n"))
        })
    }

    fn dense_rule() -> impl Strategy<Value = String> {
        let condition = proptest::sample::select(vec!["sel1", "sel1 and sel2", "sel1 or sel2", "sel1 and not sel2"]);
        (dense_selection(), dense_selection(), condition).prop_map(|(s1, s2, condition)| {
            format!(
                "title: Dense\nid: 22222222-2222-4222-8222-222222222222\nlogsource:\n  product: test\ndetection:\n  sel1:\n{s1}  sel2:\n{s2}  condition: {condition}\nlevel: low\n"
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// Rules whose literals end one another: the prefiltered evaluation still finds exactly
        /// what evaluating every rule finds.
        #[test]
        fn literals_ending_one_another_are_all_found(rules in proptest::collection::vec(dense_rule(), 1..6), values in proptest::collection::vec(dense_text(0, 10), 1..6)) {
            let texts: Vec<(String, String)> = rules.iter().enumerate().map(|(i, t)| (format!("r{i}.yml"), t.clone())).collect();
            let (set, _) = RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
            for v in &values {
                let e = json_event(serde_json::json!({ "A": v }));
                prop_assert_eq!(set.evaluate(&e), set.evaluate_exhaustively(&e), "value {:?}", v);
            }
        }
    }

    proptest! {
        /// Candidates in a range, found word by word, are the set bits in it, in order.
        #[test]
        fn candidates_in_a_range_are_its_set_bits(words in proptest::collection::vec(any::<u64>(), 0..4), a in 0usize..257, b in 0usize..257) {
            let bits = words.len() * 64;
            let (start, end) = (a.min(b).min(bits), a.max(b).min(bits));
            let candidates = super::Candidates(words.clone());
            let naive: Vec<usize> = (start..end).filter(|&i| super::bit(&words, i)).collect();
            prop_assert_eq!(candidates.in_range(start..end).collect::<Vec<_>>(), naive);
        }
    }

    #[test]
    fn a_case_sensitive_final_sigma_still_matches() {
        // `"ΑΣ".to_lowercase()` ends in a final sigma, `"Σ".to_lowercase()` is a plain one: the
        // lowercased literal is not in the lowercased value, so the rule must not need it.
        let set = one_rule("  a:\n    A|contains|cased: 'ΑΣ'\n  condition: a\n");
        let event = json_event(serde_json::json!({"A": "ΟΔΟΣ ΑΣ"}));
        assert_eq!(set.evaluate_exhaustively(&event).len(), 1);
        assert_eq!(set.evaluate(&event).len(), 1);
    }

    #[test]
    fn a_rule_needs_the_literals_of_its_most_selective_part() {
        let set = one_rule(
            "  a:\n    Image|endswith: '\\evil.exe'\n  b:\n    CommandLine|contains:\n      - ' -enc '\n      - ' -e '\n  filter:\n    User: SYSTEM\n  condition: a and b and not filter\n",
        );
        let need = super::need_of_rule(&set.compiled[0]);
        let lit = |l: &str, f: &str| super::Atom::Literal(l.to_owned(), super::Field::Named(vec![f.to_owned()]));
        assert_eq!(
            need,
            super::Need(vec![
                [lit("\\evil.exe", "Image")].into(),
                [lit(" -enc ", "CommandLine"), lit(" -e ", "CommandLine")].into()
            ])
        );
        let event = |image: &str| json_event(serde_json::json!({"Image": image, "CommandLine": "x -enc y"}));
        assert_eq!(set.candidates(&event("C:\\EVIL.EXE")), (1, 1));
        assert_eq!(set.candidates(&event("C:\\good.exe")), (0, 1));
        let without_flag = json_event(serde_json::json!({"Image": "C:\\evil.exe", "CommandLine": "x"}));
        assert_eq!(set.candidates(&without_flag), (0, 1), "both clauses must hold");
        assert_eq!(set.evaluate(&event("C:\\EVIL.EXE")).len(), 1);
    }

    fn json_event(fields: Value) -> Event {
        let Value::Object(map) = fields else {
            panic!("fixture must be an object")
        };
        Event::new(
            Format::Json,
            jiff::Timestamp::UNIX_EPOCH,
            jiff::Timestamp::UNIX_EPOCH,
            map,
        )
    }

    fn one_rule(detection: &str) -> RuleSet {
        let text = format!("title: T\nlogsource:\n  product: test\ndetection:\n{detection}");
        let (set, report) = RuleSet::load([("t.yml", text.as_str())]);
        assert_eq!(report.loaded.len(), 1, "{:?}", report.rejected);
        set
    }

    #[test]
    fn a_choice_of_selections_needs_one_of_their_literals_and_one_of_their_numbers() {
        // As SigmaHQ's "Security Eventlog Cleared": a Security event of another id has the
        // provider's literal but neither number, and is not a candidate.
        let set = one_rule(
            "  a:\n    EventID: 517\n    Provider_Name: Security\n  b:\n    EventID: 1102\n    Provider_Name: Microsoft-Windows-Eventlog\n  condition: a or b\n",
        );
        let other =
            json_event(serde_json::json!({"EventID": 4624, "Provider_Name": "Microsoft-Windows-Security-Auditing"}));
        assert_eq!(set.candidates(&other), (0, 1));
        let cleared = json_event(serde_json::json!({"EventID": 1102, "Provider_Name": "Microsoft-Windows-Eventlog"}));
        assert_eq!(set.candidates(&cleared), (1, 1));
        assert_eq!(set.evaluate(&cleared).len(), 1);
        let old = json_event(serde_json::json!({"EventID": "517", "Provider_Name": "Security"}));
        assert_eq!(
            set.evaluate(&old).len(),
            1,
            "a number written as a string still matches"
        );
    }

    #[test]
    fn a_regex_needs_a_literal_from_inside_it_not_only_its_prefix() {
        let set = one_rule(
            "  a:\n    CommandLine|re: '(?i)\\.exe[\"'']?\\s+[^\"]{0,64}werfaultsecure\\.exe[\"'']?\\s+\\d{2,10}'\n  condition: a\n",
        );
        let plain = json_event(serde_json::json!({"CommandLine": "C:\\x.exe /c dir"}));
        assert_eq!(set.candidates(&plain), (0, 1), ".exe alone is not enough");
        let wsass = json_event(serde_json::json!({"CommandLine": "wsass.exe C:\\WerFaultSecure.exe 672"}));
        assert_eq!(set.candidates(&wsass), (1, 1));
        assert_eq!(set.evaluate(&wsass).len(), 1);
    }

    #[test]
    fn one_non_ascii_character_is_worth_indexing() {
        // A Cyrillic `а` among Latin letters (a homoglyph): two bytes, rare in logs.
        let set = one_rule("  a:\n    CommandLine|contains: 'а'\n  condition: a\n");
        assert_eq!(
            set.candidates(&json_event(serde_json::json!({"CommandLine": "whoami"}))),
            (0, 1)
        );
        let homoglyph = json_event(serde_json::json!({"CommandLine": "whоаmi"}));
        assert_eq!(set.candidates(&homoglyph), (1, 1));
        assert_eq!(set.evaluate(&homoglyph).len(), 1);
    }

    #[test]
    fn numbers_and_booleans_are_scanned_as_written_out() {
        let set = one_rule("  a:\n    A|contains: '123'\n  b:\n    B|startswith: 'tru'\n  condition: a and b\n");
        let event = json_event(serde_json::json!({"A": -41234.5, "B": true}));
        assert_eq!(
            set.evaluate_exhaustively(&event).len(),
            1,
            "rsigma reads both as strings"
        );
        assert_eq!(set.candidates(&event), (1, 1));
        assert_eq!(set.evaluate(&event).len(), 1);
        let other = json_event(serde_json::json!({"A": 4124, "B": true}));
        assert_eq!(set.candidates(&other), (0, 1));
    }
}

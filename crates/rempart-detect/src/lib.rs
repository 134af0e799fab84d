//! Detection: Sigma rules, through `rsigma-parser` and `rsigma-eval`, over Rempart events.
//!
//! [`RuleSet::load`] takes rule texts (the caller reads the files) and reports every rule as
//! loaded or rejected with its file, line and reason: a rejected rule never vanishes silently.
//! [`RuleSet::evaluate`] matches one [`rempart_model::Event`] against every loaded rule,
//! through [`sigma_view`], which presents the event with the field names Sigma rules use.
//!
//! Correlation rules (`event_count`, `value_count`, `temporal`, `temporal_ordered`, `value_sum`,
//! `value_avg`, `value_percentile`, with group-by, aliases and chaining) run in a [`Correlator`],
//! the state of one stream: it is fed every event with the detections [`RuleSet`] found in it,
//! and its windows slide on the events' own times, never the wall clock.
//!
//! Architecture invariant: this crate does no I/O and never awaits.

pub mod attack;
mod partition;
mod prefilter;
mod route;
mod view;

use rempart_model::Event;
use rsigma_eval::{CompiledRule, CorrelationConfig, CorrelationEngine, EvaluationResult};
use serde::Serialize;

pub use attack::AttackCatalog;
pub use partition::Found;
pub use route::{Route, route};
pub use rsigma_eval::{ConditionTrace, DetectionTrace, ItemTrace, MatchReason, RuleExplanation};
pub use view::{SigmaView, sigma_view};

/// A rule that loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedRule {
    pub id: Option<String>,
    pub title: String,
    pub level: Option<String>,
    pub file: String,
    pub line: usize,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub falsepositives: Vec<String>,
}

/// A rule, or a document, that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRule {
    pub file: String,
    pub line: usize,
    pub title: Option<String>,
    pub reason: String,
}

/// The outcome of loading rule files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub loaded: Vec<LoadedRule>,
    pub rejected: Vec<RejectedRule>,
    /// Correlation rules that loaded.
    pub correlations: usize,
    pub filters: usize,
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    pub rule_id: Option<String>,
    pub rule_title: String,
    pub level: Option<String>,
    pub tags: Vec<String>,
    /// The fields and values that matched (a correlation: its group and aggregated value).
    pub matched: Vec<rempart_model::MatchedField>,
}

/// Compiled detection rules, grouped by route: an event is evaluated only by the rules whose
/// route admits it, so a Sysmon process creation never runs the registry or Linux rules, and
/// among those only by the candidates the literal [`prefilter`] finds in it.
pub struct RuleSet {
    /// Each route's rules.
    groups: Vec<Group>,
    compiled: Vec<CompiledRule>,
    rules: Vec<LoadedRule>,
    attack: Option<AttackCatalog>,
    /// Correlation rules, and the detection rules they refer to (by id or name).
    correlations: Vec<rsigma_parser::CorrelationRule>,
    referenced: Vec<rsigma_parser::SigmaRule>,
    /// Ids of the rules and correlations that only feed correlations (`generate: false`):
    /// with a correlator their matches raise nothing themselves.
    silent: std::collections::HashSet<String>,
    /// The correlation state of the live stream [`RuleSet::alerts`] is fed (created on first
    /// use; a new rule set starts with fresh windows).
    stream: std::sync::Mutex<Option<Correlator>>,
    /// Which cluster partition each correlation's groups belong to.
    partitioning: partition::Partitioning,
}

/// The rules of one route, a range of [`RuleSet::compiled`].
#[derive(Debug)]
struct Group {
    route: Route,
    rules: std::ops::Range<usize>,
    /// The literal prefilter of these rules alone (its rule `i` is `rules.start + i`): an
    /// event is scanned only for the literals, and under the field names, of the rules its
    /// routes admit.
    prefilter: prefilter::Prefilter,
    /// Whether one of the rules needs a literal that may occur in any value (keywords): the
    /// prefilter then scans every value of an event this route admits.
    every_value: bool,
}

impl Group {
    /// The rules of this group `view` may match, as indices of [`RuleSet::compiled`], in order.
    fn candidates(&self, view: &SigmaView<'_>) -> Vec<usize> {
        let candidates = self.prefilter.candidates(view, self.every_value);
        candidates
            .in_range(0..self.rules.len())
            .map(|i| self.rules.start + i)
            .collect()
    }
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field(
                "groups",
                &self
                    .groups
                    .iter()
                    .map(|g| (&g.route, g.rules.len()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Compiles the rules in `sources` (file name, YAML text), reporting each one.
    pub fn load<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> (RuleSet, LoadReport) {
        RuleSet::load_on(sources, 1)
    }

    /// [`RuleSet::load`] on up to `threads` threads: the files parsed and compiled side by
    /// side, then each route's prefilter built side by side. The rule set and the report are
    /// the same whatever the number of threads, in the files' order.
    pub fn load_on<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>, threads: usize) -> (RuleSet, LoadReport) {
        let sources: Vec<(&str, &str)> = sources.into_iter().collect();
        let files = rempart_model::parallel::map_ordered(&sources, threads, |(file, text)| load_file(file, text));
        let mut by_route: Vec<(Route, Vec<CompiledRule>)> = Vec::new();
        let mut report = LoadReport::default();
        let mut correlations: Vec<(String, usize, rsigma_parser::CorrelationRule)> = Vec::new();
        let mut all_rules: Vec<rsigma_parser::SigmaRule> = Vec::new();
        for file in files {
            report.rejected.extend(file.rejected);
            report.filters += file.filters;
            correlations.extend(file.correlations);
            for (rule_route, compiled, rule, loaded) in file.rules {
                match by_route.iter_mut().find(|(r, _)| *r == rule_route) {
                    Some((_, rules)) => rules.push(compiled),
                    None => by_route.push((rule_route, vec![compiled])),
                }
                all_rules.push(rule);
                report.loaded.push(loaded);
            }
        }
        // A correlation loads if it compiles and every rule it refers to loaded.
        let mut kept = Vec::new();
        let mut referenced: Vec<rsigma_parser::SigmaRule> = Vec::new();
        for (file, line, corr) in correlations {
            let refs = &corr.rules;
            let missing: Vec<&String> = refs
                .iter()
                .filter(|r| {
                    !all_rules
                        .iter()
                        .any(|d| d.id.as_deref() == Some(r.as_str()) || d.name.as_deref() == Some(r.as_str()))
                        && !kept.iter().any(|c: &rsigma_parser::CorrelationRule| {
                            c.id.as_deref() == Some(r.as_str()) || c.name.as_deref() == Some(r.as_str())
                        })
                })
                .collect();
            let check = if missing.is_empty() {
                let mut probe = CorrelationEngine::new(CorrelationConfig::default());
                probe.add_correlation(&corr).map_err(|e| e.to_string())
            } else {
                Err(format!(
                    "refers to rules that did not load: {}",
                    missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                ))
            };
            match check {
                Ok(()) => {
                    for r in refs {
                        if let Some(d) = all_rules
                            .iter()
                            .find(|d| d.id.as_deref() == Some(r.as_str()) || d.name.as_deref() == Some(r.as_str()))
                            && !referenced.iter().any(|x| x.id == d.id && x.name == d.name)
                        {
                            referenced.push(d.clone());
                        }
                    }
                    report.correlations += 1;
                    report.loaded.push(LoadedRule {
                        id: corr.id.clone(),
                        title: corr.title.clone(),
                        level: corr.level.as_ref().map(level_name),
                        file: file.clone(),
                        line,
                        tags: corr.tags.clone(),
                        description: corr.description.clone(),
                        falsepositives: corr.falsepositives.clone(),
                    });
                    kept.push(corr);
                }
                Err(reason) => report.rejected.push(RejectedRule {
                    file,
                    line,
                    title: Some(corr.title.clone()),
                    reason,
                }),
            }
        }
        // Silent: referred to only by correlations that do not `generate`.
        let mut silent = std::collections::HashSet::new();
        let mut generating = std::collections::HashSet::new();
        for c in &kept {
            for r in &c.rules {
                let rule = all_rules
                    .iter()
                    .find(|d| d.id.as_deref() == Some(r.as_str()) || d.name.as_deref() == Some(r.as_str()))
                    .and_then(|d| d.id.clone());
                let corr = kept
                    .iter()
                    .find(|d| d.id.as_deref() == Some(r.as_str()) || d.name.as_deref() == Some(r.as_str()))
                    .and_then(|d| d.id.clone());
                let ids = rule.into_iter().chain(corr);
                if c.generate {
                    generating.extend(ids);
                } else {
                    silent.extend(ids);
                }
            }
        }
        silent.retain(|id| !generating.contains(id));
        let mut groups = Vec::with_capacity(by_route.len());
        let mut compiled = Vec::new();
        for (route, rules) in by_route {
            let start = compiled.len();
            compiled.extend(rules);
            groups.push((route, start..compiled.len()));
        }
        let partitioning = partition::Partitioning::new(&kept, &referenced);
        let needs: Vec<prefilter::Need> = compiled.iter().map(prefilter::need_of_rule).collect();
        let prefilters = rempart_model::parallel::map_ordered(&groups, threads, |(_, rules)| {
            prefilter::Prefilter::build(&needs[rules.clone()])
        });
        let groups = groups
            .into_iter()
            .zip(prefilters)
            .map(|((route, rules), prefilter)| Group {
                every_value: prefilter.reads_anywhere(0..rules.len()),
                prefilter,
                route,
                rules,
            })
            .collect();
        (
            RuleSet {
                groups,
                compiled,
                rules: report.loaded.clone(),
                attack: None,
                correlations: kept,
                referenced,
                silent,
                stream: std::sync::Mutex::new(None),
                partitioning,
            },
            report,
        )
    }

    /// The state for correlating one stream of events; `None` without correlation rules.
    pub fn correlator(&self) -> Option<Correlator> {
        if self.correlations.is_empty() {
            return None;
        }
        Some(self.correlator_unchecked())
    }

    fn correlator_unchecked(&self) -> Correlator {
        // Which matches raise nothing themselves is decided by `silent`, for rules referred to by
        // id and by name alike.
        let config = CorrelationConfig::default();
        let mut engine = CorrelationEngine::new(config);
        for r in &self.referenced {
            // Compiled once already by `load`; here only to name the rules for the correlations.
            let _ = engine.add_rule(r);
        }
        for c in &self.correlations {
            let _ = engine.add_correlation(c);
        }
        Correlator { engine }
    }

    /// Whether `rule` is the id or the title of a detection rule that loaded.
    pub fn is_detection(&self, rule: &str) -> bool {
        self.compiled
            .iter()
            .any(|c| c.id.as_deref() == Some(rule) || c.title.eq_ignore_ascii_case(rule))
    }

    /// Whether `rule` is the id or the title of a correlation rule that loaded.
    pub fn is_correlation(&self, rule: &str) -> bool {
        self.correlations
            .iter()
            .any(|c| c.id.as_deref() == Some(rule) || c.title.eq_ignore_ascii_case(rule))
    }

    /// The rules that loaded, in load order.
    pub fn rules(&self) -> &[LoadedRule] {
        &self.rules
    }

    /// Every rule that matches `event` (no correlation: see [`RuleSet::evaluate_with`]).
    pub fn evaluate(&self, event: &Event) -> Vec<RuleMatch> {
        self.evaluate_with(event, None)
    }

    /// Every rule that matches `event`, each rule its route admits evaluated in full, without
    /// the literal prefilter: the reference [`RuleSet::evaluate`] is held to (same matches, in
    /// the same order), and slower.
    pub fn evaluate_exhaustively(&self, event: &Event) -> Vec<RuleMatch> {
        let view = SigmaView::new(event);
        self.admitted(event, &view)
            .flat_map(|g| g.rules.clone())
            .filter_map(|i| rsigma_eval::evaluate_rule(&self.compiled[i], &view))
            .map(|m| rule_match(&m))
            .collect()
    }

    /// How many rules the prefilter leaves to evaluate for `event`, of those its route admits.
    pub fn candidates(&self, event: &Event) -> (usize, usize) {
        let view = SigmaView::new(event);
        self.admitted(event, &view)
            .map(|g| (g.candidates(&view).len(), g.rules.len()))
            .fold((0, 0), |(left, all), (l, a)| (left + l, all + a))
    }

    /// The groups whose route admits `event`.
    fn admitted<'s>(&'s self, event: &'s Event, view: &'s SigmaView<'_>) -> impl Iterator<Item = &'s Group> + 's {
        let key = route::RouteKey::of(event, view);
        self.groups.iter().filter(move |g| g.route.admits(event, view, key))
    }

    /// The detection rules that match `event` (seen through `view`), routed and prefiltered.
    fn detections(&self, event: &Event, view: &SigmaView<'_>) -> Vec<EvaluationResult> {
        self.admitted(event, view)
            .flat_map(|g| g.candidates(view))
            .filter_map(|i| rsigma_eval::evaluate_rule(&self.compiled[i], view))
            .collect()
    }

    /// Every rule that matches `event`, and, with a correlator, every correlation it completes.
    pub fn evaluate_with(&self, event: &Event, correlator: Option<&mut Correlator>) -> Vec<RuleMatch> {
        let view = SigmaView::new(event);
        let detections = self.detections(event, &view);
        match correlator {
            Some(c) => c
                .engine
                .process_with_detections(&view, detections, event.time.as_second())
                .iter()
                // Sigma: what a correlation refers to raises nothing itself unless the
                // correlation says `generate: true`.
                .filter(|m| !m.header.rule_id.as_ref().is_some_and(|id| self.silent.contains(id)))
                .map(rule_match)
                .collect(),
            None => detections.iter().map(rule_match).collect(),
        }
    }
}

/// Why a rule did or did not match an event, step by step as [`RuleSet::evaluate`] decides:
/// the rule's route and whether it admits the event, whether the literal prefilter leaves the
/// rule to evaluate, and the rule's condition with every selection's items against the value
/// the event's Sigma view holds under the rule's field names (absent, different, matched). An
/// analyst sees from it a mapping gap or a routing gap for themselves.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub rule_id: Option<String>,
    pub title: String,
    /// Where the rule was loaded from.
    pub file: String,
    pub line: usize,
    /// The events the rule's logsource routes it to.
    pub route: String,
    /// The event's source as routing reads it (format; a Windows event's channel and id).
    pub source: String,
    /// Whether the route admits the event.
    pub routed: bool,
    /// Whether the prefilter leaves the rule to evaluate on this event (`false`: no literal the
    /// rule needs occurs in it, so the rule cannot match and is not evaluated).
    pub candidate: bool,
    /// The rule's condition and selections against the event's fields, evaluated in full
    /// whatever the route and the prefilter decided.
    pub detection: rsigma_eval::RuleExplanation,
    /// The verdict, as [`RuleSet::evaluate`] reports it: routed, and the condition holds.
    pub matched: bool,
}

impl RuleSet {
    /// Explains every loaded detection rule whose id, or else title, is `rule` against
    /// `event`; empty when no detection rule has that id or title (a correlation rule is
    /// explained through the rules it refers to).
    pub fn explain(&self, rule: &str, event: &Event) -> Vec<Explanation> {
        let view = SigmaView::new(event);
        let key = route::RouteKey::of(event, &view);
        let by_id = self.compiled.iter().any(|c| c.id.as_deref() == Some(rule));
        let chosen = |c: &CompiledRule| {
            if by_id {
                c.id.as_deref() == Some(rule)
            } else {
                c.title.eq_ignore_ascii_case(rule)
            }
        };
        let mut out = Vec::new();
        for g in &self.groups {
            let mut candidates: Option<Vec<usize>> = None;
            for i in g.rules.clone() {
                let compiled = &self.compiled[i];
                if !chosen(compiled) {
                    continue;
                }
                let loaded = self
                    .rules
                    .iter()
                    .find(|r| r.id == compiled.id && r.title == compiled.title);
                let routed = g.route.admits(event, &view, key);
                let candidate = routed && candidates.get_or_insert_with(|| g.candidates(&view)).contains(&i);
                let detection = rsigma_eval::explain_rule(compiled, &view);
                out.push(Explanation {
                    rule_id: compiled.id.clone(),
                    title: compiled.title.clone(),
                    file: loaded.map(|r| r.file.clone()).unwrap_or_default(),
                    line: loaded.map_or(0, |r| r.line),
                    route: g.route.to_string(),
                    source: route::describe(event, key),
                    routed,
                    candidate,
                    matched: routed && detection.matched,
                    detection,
                });
            }
        }
        out
    }
}

/// Most matched fields kept per match.
const MAX_MATCHED: usize = 32;

fn rule_match(m: &EvaluationResult) -> RuleMatch {
    use rempart_model::MatchedField;
    let mut matched: Vec<MatchedField> = Vec::new();
    if let Some(d) = m.as_detection() {
        for f in d.matched_fields.iter().take(MAX_MATCHED) {
            let value = match &f.value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            let field = MatchedField::new(f.field.clone(), value);
            if !matched.contains(&field) {
                matched.push(field);
            }
        }
        // The evaluator reports a rule's fields in no fixed order: sorted, the same event under
        // the same rule gives the same alert in every process and every run.
        matched.sort_by(|a, b| a.field.cmp(&b.field).then_with(|| a.value.cmp(&b.value)));
    } else if let Some(c) = m.as_correlation() {
        matched.extend(
            c.group_key
                .iter()
                .take(MAX_MATCHED)
                .map(|(k, v)| MatchedField::new(k.clone(), v.clone())),
        );
        matched.push(MatchedField::new(
            format!("{:?}", c.correlation_type).to_lowercase(),
            format!("{} in {} s", c.aggregated_value, c.timespan_secs),
        ));
    }
    RuleMatch {
        rule_id: m.header.rule_id.clone(),
        rule_title: m.header.rule_title.clone(),
        level: m.header.level.as_ref().map(level_name),
        tags: m.header.tags.clone(),
        matched,
    }
}

/// The correlation state of one stream of events: windows per correlation rule and group,
/// sliding on the events' times. Feed it events in time order.
pub struct Correlator {
    engine: CorrelationEngine,
}

impl std::fmt::Debug for Correlator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlator")
            .field("states", &self.engine.state_count())
            .finish_non_exhaustive()
    }
}

impl Correlator {
    /// Open windows (per rule and group).
    pub fn states(&self) -> usize {
        self.engine.state_count()
    }
}

impl RuleSet {
    /// Evaluates every event of the live stream and returns the alerts raised, stamped
    /// `created`; correlation rules see the events in time order, in this rule set's one
    /// stream state (batches may interleave, so the state is held for the batch's duration).
    pub fn alerts(&self, events: &[Event], created: jiff::Timestamp) -> Vec<rempart_model::Alert> {
        if self.correlations.is_empty() {
            return self.alerts_with(events, created, None);
        }
        let mut order: Vec<&Event> = events.iter().collect();
        order.sort_by_key(|e| e.time);
        let mut stream = self.stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let correlator = stream.get_or_insert_with(|| self.correlator_unchecked());
        let mut out = Vec::new();
        for e in order {
            for m in self.evaluate_with(e, Some(correlator)) {
                out.push(self.alert(e, created, m));
            }
        }
        out
    }

    /// Whether correlation rules loaded.
    pub fn has_correlations(&self) -> bool {
        !self.correlations.is_empty()
    }

    /// Like [`RuleSet::alerts`], correlating through `correlator` (events in time order); a
    /// correlation's alert refers to the event that completed it.
    pub fn alerts_with(
        &self,
        events: &[Event],
        created: jiff::Timestamp,
        mut correlator: Option<&mut Correlator>,
    ) -> Vec<rempart_model::Alert> {
        let mut out = Vec::new();
        for e in events {
            for m in self.evaluate_with(e, correlator.as_deref_mut()) {
                out.push(self.alert(e, created, m));
            }
        }
        out
    }

    /// The alert a match raises on `event`.
    fn alert(&self, event: &Event, created: jiff::Timestamp, m: RuleMatch) -> rempart_model::Alert {
        let mut alert = rempart_model::Alert::for_event(event, created, m.rule_id, m.rule_title, m.level, m.tags);
        alert.techniques = self.techniques(&alert.tags);
        alert.matched = m.matched;
        alert
    }

    /// Resolves ATT&CK technique tags to names and tactics with `catalog` from now on.
    pub fn with_attack(mut self, catalog: AttackCatalog) -> Self {
        self.attack = Some(catalog);
        self
    }

    /// The ATT&CK techniques of a rule's tags (ids only without a catalogue).
    pub fn techniques(&self, tags: &[String]) -> Vec<rempart_model::Technique> {
        match &self.attack {
            Some(c) => c.resolve(tags),
            None => AttackCatalog::default().resolve(tags),
        }
    }
}

/// Sigma: a temporal correlation without a condition fires when every rule it refers to has
/// matched in the window. The parser writes that default as `gte: 1` (any one rule, which would
/// make the correlation no more than its rules); it is read here as all of them. An explicit
/// `gte: 1` is read the same way, being otherwise pointless.
/// `?` and `*` inside a `startswith` or `endswith` value are wildcards, as the Sigma
/// specification says (and pySigma does: `'1????'` is a `1` and four characters); `rsigma-eval`
/// 0.23 matches them literally under those two modifiers (under `contains` and with no modifier
/// it does not). Such an item becomes the plain match it stands for, with a `*` at its open
/// end: `startswith: 'net?user'` is `'net?user*'`. Items with other modifiers (encodings,
/// `re`, `cidr`, …) or with values that are not strings are left as they are.
fn wildcard_ends(detection: &mut rsigma_parser::Detection) {
    use rsigma_parser::{Detection, Modifier, SigmaValue, SpecialChar, StringPart};
    match detection {
        Detection::AllOf(items) => {
            for item in items {
                let modifiers = &item.field.modifiers;
                let starts = modifiers.contains(&Modifier::StartsWith);
                let ends = modifiers.contains(&Modifier::EndsWith);
                let others = modifiers.iter().any(|m| {
                    !matches!(
                        m,
                        Modifier::StartsWith | Modifier::EndsWith | Modifier::All | Modifier::Cased
                    )
                });
                let strings = item.values.iter().all(|v| matches!(v, SigmaValue::String(_)));
                let wild = item
                    .values
                    .iter()
                    .any(|v| matches!(v, SigmaValue::String(s) if !s.is_plain()));
                if starts == ends || others || !strings || !wild {
                    continue;
                }
                for value in &mut item.values {
                    if let SigmaValue::String(s) = value {
                        let any = StringPart::Special(SpecialChar::WildcardMulti);
                        if starts {
                            s.parts.push(any);
                            s.original.push('*');
                        } else {
                            s.parts.insert(0, any);
                            s.original.insert(0, '*');
                        }
                    }
                }
                item.field
                    .modifiers
                    .retain(|m| !matches!(m, Modifier::StartsWith | Modifier::EndsWith));
            }
        }
        Detection::AnyOf(all) | Detection::And(all) => all.iter_mut().for_each(wildcard_ends),
        Detection::ArrayMatch { body, .. } => wildcard_ends(body),
        Detection::Conditional { named, .. } => named.values_mut().for_each(wildcard_ends),
        _ => {}
    }
}

fn all_rules_must_match(corr: &mut rsigma_parser::CorrelationRule) {
    use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType};
    if matches!(
        corr.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    ) && let CorrelationCondition::Threshold {
        predicates,
        field: None,
        ..
    } = &mut corr.condition
        && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
    {
        predicates[0].1 = u64::try_from(corr.rules.len()).unwrap_or(u64::MAX);
    }
}

/// What one rule file gave, in the file's order.
#[derive(Default)]
struct FileRules {
    rejected: Vec<RejectedRule>,
    filters: usize,
    /// Each detection rule that compiled: its route, the rule compiled, the rule itself (for
    /// the correlations that refer to it) and how the report lists it.
    rules: Vec<(Route, CompiledRule, rsigma_parser::SigmaRule, LoadedRule)>,
    /// Each correlation rule with its file and line, checked once every file is read.
    correlations: Vec<(String, usize, rsigma_parser::CorrelationRule)>,
}

/// Parses one rule file and compiles its detection rules; the correlations are checked by the
/// caller, once every rule they may refer to is known.
fn load_file(file: &str, text: &str) -> FileRules {
    let mut out = FileRules::default();
    let mut collection = match rsigma_parser::parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            let reason = e.to_string();
            out.rejected.push(RejectedRule {
                file: file.to_owned(),
                line: line_in(&reason),
                title: None,
                reason,
            });
            return out;
        }
    };
    for reason in &collection.errors {
        out.rejected.push(RejectedRule {
            file: file.to_owned(),
            line: line_in(reason),
            title: None,
            reason: reason.clone(),
        });
    }
    out.filters = collection.filters.len();
    // A rule with a name but no id is known by its name: correlations refer to it so.
    for rule in &mut collection.rules {
        if rule.id.is_none() {
            rule.id.clone_from(&rule.name);
        }
        for detection in rule.detection.named.values_mut() {
            wildcard_ends(detection);
        }
    }
    for mut corr in collection.correlations {
        if corr.id.is_none() {
            corr.id.clone_from(&corr.name);
        }
        all_rules_must_match(&mut corr);
        out.correlations
            .push((file.to_owned(), title_line(text, &corr.title), corr));
    }
    for rule in collection.rules {
        let line = title_line(text, &rule.title);
        let ls = &rule.logsource;
        let (product, category, service) = (ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref());
        if let Some(reason) = route::unroutable(product, category, service) {
            out.rejected.push(RejectedRule {
                file: file.to_owned(),
                line,
                title: Some(rule.title.clone()),
                reason,
            });
            continue;
        }
        let rule_route = route(product, category, service);
        match rsigma_eval::compile_rule(&rule) {
            Ok(compiled) => {
                let loaded = LoadedRule {
                    id: rule.id.clone(),
                    title: rule.title.clone(),
                    level: rule.level.as_ref().map(level_name),
                    file: file.to_owned(),
                    line,
                    tags: rule.tags.clone(),
                    description: rule.description.clone(),
                    falsepositives: rule.falsepositives.clone(),
                };
                out.rules.push((rule_route, compiled, rule, loaded));
            }
            Err(e) => out.rejected.push(RejectedRule {
                file: file.to_owned(),
                line,
                title: Some(rule.title.clone()),
                reason: e.to_string(),
            }),
        }
    }
    out
}

fn level_name(level: &rsigma_parser::Level) -> String {
    match level {
        rsigma_parser::Level::Informational => "informational",
        rsigma_parser::Level::Low => "low",
        rsigma_parser::Level::Medium => "medium",
        rsigma_parser::Level::High => "high",
        rsigma_parser::Level::Critical => "critical",
    }
    .to_owned()
}

/// The line a YAML error message points at (`… at line 12 column 3`), or 1.
fn line_in(message: &str) -> usize {
    message
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The line of `title: <title>` in the file, or 1.
fn title_line(text: &str, title: &str) -> usize {
    text.lines()
        .position(|l| {
            l.strip_prefix("title:")
                .is_some_and(|t| t.trim().trim_matches(['\'', '"']) == title)
        })
        .map_or(1, |i| i + 1)
}

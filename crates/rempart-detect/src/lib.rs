//! Detection: Sigma rules, through `rsigma-parser` and `rsigma-eval`, over Rempart events.
//!
//! [`RuleSet::load`] takes rule texts (the caller reads the files) and reports every rule as
//! loaded or rejected with its file, line and reason: a rejected rule never vanishes silently.
//! [`RuleSet::evaluate`] matches one [`rempart_model::Event`] against every loaded rule,
//! through [`sigma_view`], which presents the event with the field names Sigma rules use.
//!
//! Architecture invariant: this crate does no I/O and never awaits.

pub mod attack;
mod route;
mod view;

use rempart_model::Event;
use rsigma_eval::Engine;
use rsigma_eval::event::JsonEvent;
use serde::Serialize;

pub use attack::AttackCatalog;
pub use route::{Route, route};
pub use view::sigma_view;

/// A rule that loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedRule {
    pub id: Option<String>,
    pub title: String,
    pub level: Option<String>,
    pub file: String,
    pub line: usize,
    pub tags: Vec<String>,
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
    /// Correlation rules and filters parsed (evaluated in a later release).
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
}

/// Compiled detection rules, grouped by route: an event is evaluated only by the engines
/// whose route admits it, so a Sysmon process creation never runs the registry or Linux rules.
pub struct RuleSet {
    groups: Vec<(Route, Engine)>,
    rules: Vec<LoadedRule>,
    attack: Option<AttackCatalog>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Compiles the rules in `sources` (file name, YAML text), reporting each one.
    pub fn load<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> (RuleSet, LoadReport) {
        let mut groups: Vec<(Route, Engine)> = Vec::new();
        let mut report = LoadReport::default();
        for (file, text) in sources {
            let collection = match rsigma_parser::parse_sigma_yaml(text) {
                Ok(c) => c,
                Err(e) => {
                    let reason = e.to_string();
                    report.rejected.push(RejectedRule {
                        file: file.to_owned(),
                        line: line_in(&reason),
                        title: None,
                        reason,
                    });
                    continue;
                }
            };
            for reason in &collection.errors {
                report.rejected.push(RejectedRule {
                    file: file.to_owned(),
                    line: line_in(reason),
                    title: None,
                    reason: reason.clone(),
                });
            }
            report.correlations += collection.correlations.len();
            report.filters += collection.filters.len();
            for rule in &collection.rules {
                let line = title_line(text, &rule.title);
                let ls = &rule.logsource;
                let rule_route = route(ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref());
                let group = match groups.iter().position(|(r, _)| *r == rule_route) {
                    Some(i) => i,
                    None => {
                        groups.push((rule_route, Engine::new()));
                        groups.len() - 1
                    }
                };
                match groups[group].1.add_rule(rule) {
                    Ok(()) => {
                        report.loaded.push(LoadedRule {
                            id: rule.id.clone(),
                            title: rule.title.clone(),
                            level: rule.level.as_ref().map(level_name),
                            file: file.to_owned(),
                            line,
                            tags: rule.tags.clone(),
                        });
                    }
                    Err(e) => report.rejected.push(RejectedRule {
                        file: file.to_owned(),
                        line,
                        title: Some(rule.title.clone()),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        (
            RuleSet {
                groups,
                rules: report.loaded.clone(),
                attack: None,
            },
            report,
        )
    }

    /// The rules that loaded, in load order.
    pub fn rules(&self) -> &[LoadedRule] {
        &self.rules
    }

    /// Every rule that matches `event`.
    pub fn evaluate(&self, event: &Event) -> Vec<RuleMatch> {
        let view = sigma_view(event);
        let json = JsonEvent::borrow(&view);
        self.groups
            .iter()
            .filter(|(route, _)| route.admits(event, &view))
            .flat_map(|(_, engine)| engine.evaluate(&json))
            .map(|m| RuleMatch {
                rule_id: m.header.rule_id.clone(),
                rule_title: m.header.rule_title.clone(),
                level: m.header.level.as_ref().map(level_name),
                tags: m.header.tags.clone(),
            })
            .collect()
    }
}

impl RuleSet {
    /// Evaluates every event and returns the alerts raised, stamped `created`.
    pub fn alerts(&self, events: &[Event], created: jiff::Timestamp) -> Vec<rempart_model::Alert> {
        events
            .iter()
            .flat_map(|e| {
                self.evaluate(e).into_iter().map(move |m| {
                    let mut alert =
                        rempart_model::Alert::for_event(e, created, m.rule_id, m.rule_title, m.level, m.tags);
                    alert.techniques = self.techniques(&alert.tags);
                    alert
                })
            })
            .collect()
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

//! Conditions on an incident, its verdict, its assets and the outcomes of earlier steps:
//! what triggers a playbook and what decides whether a step runs.
//!
//! A condition is written as a YAML mapping whose keys must all hold; `any`, `all` and `not`
//! combine mappings. A verdict can satisfy a condition; it can never add an action.

use std::collections::BTreeMap;

use rempart_model::{Classification, EntityKind, Incident, IncidentSeverity, TriageMode, Verdict};
use rempart_triage::severity::{AssetMatch, Criticality};
use serde::Deserialize;

use crate::playbook::Problems;
use crate::run::Outcome;

/// What a condition is evaluated on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub incident: &'a Incident,
    /// The incident's latest verdict, if it has one.
    pub verdict: Option<&'a Verdict>,
    /// Entities of the incident found in the asset inventory.
    pub assets: &'a [AssetMatch],
    /// Outcomes of the run's steps so far, by step id.
    pub outcomes: &'a BTreeMap<String, Outcome>,
}

/// A validated condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// The incident is at least this severe.
    Severity(IncidentSeverity),
    /// The latest verdict classifies the incident as one of these.
    Classification(Vec<Classification>),
    /// The latest verdict is at least this confident (0 to 1).
    Confidence(f64),
    /// The latest verdict came from a model, or from the deterministic fallback.
    Triage(TriageMode),
    /// The incident shows one of these ATT&CK techniques (`T1059` also covers `T1059.001`).
    Techniques(Vec<String>),
    /// The incident shows one of these tactics.
    Tactics(Vec<String>),
    /// The incident has an entity of one of these kinds.
    Entities(Vec<EntityKind>),
    /// An asset of the incident is at least this critical.
    AssetCriticality(Criticality),
    /// An asset of the incident carries one of these tags.
    AssetTags(Vec<String>),
    /// One of these rules (by title, as the incident lists them; case-insensitive) raised an
    /// alert of the incident.
    Rules(Vec<String>),
    /// An earlier step ended in one of these outcomes.
    Outcome(String, Vec<Outcome>),
}

impl Condition {
    /// Whether the condition holds.
    pub fn holds(&self, f: &Facts<'_>) -> bool {
        match self {
            Condition::All(cs) => cs.iter().all(|c| c.holds(f)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(f)),
            Condition::Not(c) => !c.holds(f),
            Condition::Severity(s) => f.incident.severity >= *s,
            Condition::Classification(cs) => classification(f).is_some_and(|c| cs.contains(&c)),
            Condition::Confidence(min) => f.verdict.is_some_and(|v| v.confidence >= *min),
            Condition::Triage(mode) => {
                f.verdict.map(|v| v.mode).or(f.incident.triage.as_ref().map(|t| t.mode)) == Some(*mode)
            }
            Condition::Techniques(ts) => f.incident.techniques.iter().any(|seen| {
                ts.iter().any(|t| {
                    seen.eq_ignore_ascii_case(t)
                        || (seen.len() > t.len()
                            && seen.as_bytes()[t.len()] == b'.'
                            && seen[..t.len()].eq_ignore_ascii_case(t))
                })
            }),
            Condition::Tactics(ts) => f
                .incident
                .tactics
                .iter()
                .any(|seen| ts.iter().any(|t| same_tactic(seen, t))),
            Condition::Entities(kinds) => f.incident.entities.iter().any(|e| kinds.contains(&e.kind)),
            Condition::AssetCriticality(min) => f.assets.iter().any(|a| a.criticality >= *min),
            Condition::AssetTags(tags) => f
                .assets
                .iter()
                .any(|a| a.tags.iter().any(|t| tags.iter().any(|w| w.eq_ignore_ascii_case(t)))),
            Condition::Rules(titles) => f
                .incident
                .rules
                .iter()
                .any(|r| titles.iter().any(|t| t.eq_ignore_ascii_case(r))),
            Condition::Outcome(step, outcomes) => f.outcomes.get(step).is_some_and(|o| outcomes.contains(o)),
        }
    }

    /// The steps whose outcomes this condition reads.
    pub fn steps_read(&self, out: &mut Vec<String>) {
        match self {
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.steps_read(out)),
            Condition::Not(c) => c.steps_read(out),
            Condition::Outcome(s, _) => out.push(s.clone()),
            _ => {}
        }
    }
}

fn classification(f: &Facts<'_>) -> Option<Classification> {
    f.verdict
        .map(|v| v.classification)
        .or(f.incident.triage.as_ref().map(|t| t.classification))
}

fn same_tactic(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace('_', "-").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A condition as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    severity: Option<String>,
    classification: Option<OneOrMany<String>>,
    confidence: Option<f64>,
    triage: Option<String>,
    techniques: Option<OneOrMany<String>>,
    tactics: Option<OneOrMany<String>>,
    entities: Option<OneOrMany<String>>,
    asset_criticality: Option<String>,
    asset_tags: Option<OneOrMany<String>>,
    rules: Option<OneOrMany<String>>,
    outcome: Option<BTreeMap<String, OneOrMany<String>>>,
    any: Option<Vec<RawCondition>>,
    all: Option<Vec<RawCondition>>,
    not: Option<Box<RawCondition>>,
}

const TACTICS: &[&str] = rempart_triage::severity::KILL_CHAIN;

impl RawCondition {
    /// Validates into a condition; problems are reported under `path`.
    pub(crate) fn validate(self, path: &str, problems: &mut Problems) -> Condition {
        let mut all = Vec::new();
        if let Some(s) = self.severity {
            match s.parse::<IncidentSeverity>() {
                Ok(s) => all.push(Condition::Severity(s)),
                Err(e) => problems.push(format!("{path}.severity"), e),
            }
        }
        if let Some(cs) = self.classification {
            let mut out = Vec::new();
            for c in cs.into_vec() {
                match c.parse::<Classification>() {
                    Ok(c) => out.push(c),
                    Err(e) => problems.push(format!("{path}.classification"), e),
                }
            }
            all.push(Condition::Classification(out));
        }
        if let Some(c) = self.confidence {
            if (0.0..=1.0).contains(&c) {
                all.push(Condition::Confidence(c));
            } else {
                problems.push(format!("{path}.confidence"), format!("{c} is outside 0 to 1"));
            }
        }
        if let Some(t) = self.triage {
            match t.as_str() {
                "model" => all.push(Condition::Triage(TriageMode::Model)),
                "degraded" => all.push(Condition::Triage(TriageMode::Degraded)),
                _ => problems.push(format!("{path}.triage"), format!("`{t}` is not `model` or `degraded`")),
            }
        }
        if let Some(ts) = self.techniques {
            let ts = ts.into_vec();
            for t in &ts {
                if !is_technique(t) {
                    problems.push(
                        format!("{path}.techniques"),
                        format!("`{t}` is not an ATT&CK technique id such as `T1059` or `T1059.001`"),
                    );
                }
            }
            all.push(Condition::Techniques(ts));
        }
        if let Some(ts) = self.tactics {
            let ts = ts.into_vec();
            for t in &ts {
                if rempart_triage::severity::stage(t).is_none() {
                    problems.push(
                        format!("{path}.tactics"),
                        format!("`{t}` is not an ATT&CK tactic ({})", TACTICS.join(", ")),
                    );
                }
            }
            all.push(Condition::Tactics(ts));
        }
        if let Some(ks) = self.entities {
            let mut out = Vec::new();
            for k in ks.into_vec() {
                match k.parse::<EntityKind>() {
                    Ok(k) => out.push(k),
                    Err(e) => problems.push(format!("{path}.entities"), e),
                }
            }
            all.push(Condition::Entities(out));
        }
        if let Some(c) = self.asset_criticality {
            match Criticality::from_name(&c) {
                Some(c) => all.push(Condition::AssetCriticality(c)),
                None => problems.push(
                    format!("{path}.asset_criticality"),
                    format!("`{c}` is not low, medium, high or critical"),
                ),
            }
        }
        if let Some(ts) = self.asset_tags {
            all.push(Condition::AssetTags(ts.into_vec()));
        }
        if let Some(rs) = self.rules {
            all.push(Condition::Rules(rs.into_vec()));
        }
        for (step, outcomes) in self.outcome.unwrap_or_default() {
            let mut out = Vec::new();
            for o in outcomes.into_vec() {
                match o.parse::<Outcome>() {
                    Ok(o) => out.push(o),
                    Err(e) => problems.push(format!("{path}.outcome.{step}"), e),
                }
            }
            all.push(Condition::Outcome(step, out));
        }
        if let Some(cs) = self.any {
            if cs.is_empty() {
                problems.push(format!("{path}.any"), "empty: name at least one condition".into());
            }
            all.push(Condition::Any(
                cs.into_iter()
                    .enumerate()
                    .map(|(i, c)| c.validate(&format!("{path}.any[{i}]"), problems))
                    .collect(),
            ));
        }
        if let Some(cs) = self.all {
            all.push(Condition::All(
                cs.into_iter()
                    .enumerate()
                    .map(|(i, c)| c.validate(&format!("{path}.all[{i}]"), problems))
                    .collect(),
            ));
        }
        if let Some(c) = self.not {
            all.push(Condition::Not(Box::new(c.validate(&format!("{path}.not"), problems))));
        }
        if all.len() == 1 {
            all.pop().unwrap_or(Condition::All(Vec::new()))
        } else {
            Condition::All(all)
        }
    }
}

fn is_technique(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b {
        [b'T' | b't', rest @ ..] if rest.len() == 4 => digits(rest),
        [b'T' | b't', rest @ ..] if rest.len() == 8 => digits(&rest[..4]) && rest[4] == b'.' && digits(&rest[5..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids() {
        for ok in ["T1059", "T1059.001", "t1003"] {
            assert!(is_technique(ok), "{ok}");
        }
        for bad in ["T105", "T1059.1", "1059", "T1059.0011", "TA0001x"] {
            assert!(!is_technique(bad), "{bad}");
        }
    }

    #[test]
    fn tactics_compare_in_either_spelling() {
        assert!(same_tactic("lateral_movement", "lateral-movement"));
        assert!(!same_tactic("execution", "persistence"));
    }
}

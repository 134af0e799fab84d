//! Storage of incidents, the alerts they group, triage verdicts and analysts' feedback. Each
//! incident, verdict and feedback is kept whole as JSON (`rempart-model` owns the shapes) with
//! the columns queries filter on beside it.

use jiff::Timestamp;
use rempart_model::{Alert, EventId, Feedback, Incident, IncidentSeverity, IncidentStatus, Verdict};
use serde::{Deserialize, Serialize};

use crate::{BoxFuture, Result};

/// What the correlator decided, written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct IncidentWrite<'a> {
    /// Incidents created or changed, in their new state.
    pub incidents: &'a [Incident],
    /// (alert, incident): the alert belongs to the incident.
    pub links: &'a [(EventId, EventId)],
    /// (from, to): every alert of `from` now belongs to `to` (a merge).
    pub moves: &'a [(EventId, EventId)],
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentQuery {
    /// Only these statuses; all but `merged` when empty.
    #[serde(default)]
    pub status: Vec<IncidentStatus>,
    /// Only incidents active (last alert) at or after this time.
    pub since: Option<Timestamp>,
    pub limit: Option<u32>,
    /// Only incidents that began (first alert) before this time.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Only incidents of this severity or above.
    #[serde(default)]
    pub min_severity: Option<IncidentSeverity>,
    /// Only incidents whose owner contains this (ASCII letters in any case); `-` for those
    /// with none.
    #[serde(default)]
    pub owner: Option<String>,
    /// Only incidents with a rule title containing this (ASCII letters in any case).
    #[serde(default)]
    pub rule: Option<String>,
    /// Only incidents with an entity value containing this (ASCII letters in any case).
    #[serde(default)]
    pub entity: Option<String>,
    /// Only incidents with a tactic containing this (ASCII letters in any case).
    #[serde(default)]
    pub tactic: Option<String>,
    /// Only incidents ordered after this one, most recently active first: the `(last_seen, id)`
    /// of the last incident of the previous page.
    #[serde(default)]
    pub before: Option<crate::Position>,
}

impl IncidentQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 10_000;

    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }

    /// Open incidents (new, triaged, investigating, contained).
    pub fn open() -> IncidentQuery {
        IncidentQuery {
            status: IncidentStatus::ALL.into_iter().filter(|s| s.is_open()).collect(),
            limit: Some(Self::MAX_LIMIT),
            ..IncidentQuery::default()
        }
    }

    /// Whether `i` passes every filter but status, `since` and the limit: the reference the
    /// stores' own filtering is held to.
    pub fn admits(&self, i: &Incident) -> bool {
        // ASCII folding only, as SQL's `lower()` does, so that every store filters alike.
        let has = |hay: &str, needle: &str| hay.to_ascii_lowercase().contains(&needle.to_ascii_lowercase());
        self.until.is_none_or(|u| i.first_seen < u)
            && self.min_severity.is_none_or(|m| i.severity >= m)
            && self.owner.as_deref().is_none_or(|o| match o {
                "-" => i.owner.is_none(),
                o => i.owner.as_deref().is_some_and(|x| has(x, o)),
            })
            && self.rule.as_deref().is_none_or(|r| i.rules.iter().any(|x| has(x, r)))
            && self
                .entity
                .as_deref()
                .is_none_or(|e| i.entities.iter().any(|x| has(&x.value, e)))
            && self
                .tactic
                .as_deref()
                .is_none_or(|t| i.tactics.iter().any(|x| has(x, t)))
    }
}

pub trait IncidentStore: Send + Sync + std::fmt::Debug {
    /// Writes incidents, alert links and merges, all or nothing.
    fn incidents_write<'a>(&'a self, write: IncidentWrite<'a>) -> BoxFuture<'a, Result<()>>;
    fn incident_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Incident>>>;
    /// Incidents by `query`, the most recently active first.
    fn incidents_list<'a>(&'a self, query: &'a IncidentQuery) -> BoxFuture<'a, Result<Vec<Incident>>>;
    /// The alerts of an incident, oldest first, at most `limit`.
    fn incident_alerts(&self, id: EventId, limit: u32) -> BoxFuture<'_, Result<Vec<Alert>>>;
    /// The incident an alert belongs to.
    fn incident_of_alert(&self, alert: EventId) -> BoxFuture<'_, Result<Option<EventId>>>;
    fn verdict_put<'a>(&'a self, verdict: &'a Verdict) -> BoxFuture<'a, Result<()>>;
    fn verdict_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<Verdict>>>;
    /// An incident's verdicts, newest first.
    fn verdicts_of(&self, incident: EventId) -> BoxFuture<'_, Result<Vec<Verdict>>>;
    fn feedback_put<'a>(&'a self, feedback: &'a Feedback) -> BoxFuture<'a, Result<()>>;
    /// All feedback with the verdict it judges (for agreement rates).
    fn feedback_all(&self) -> BoxFuture<'_, Result<Vec<(Feedback, Verdict)>>>;
}

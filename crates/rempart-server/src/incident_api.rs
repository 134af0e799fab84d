//! `/api/v1/incidents` and `/api/v1/verdicts`: incidents, their lifecycle, triage on demand and
//! analysts' feedback on verdicts.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use rempart_audit::{Draft, kind};
use rempart_model::{Classification, EventId, Feedback, IncidentStatus, Verdict};
use rempart_store::{IncidentQuery, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::incidents::{IncidentError, Incidents};
use crate::page::List;
use crate::{ApiError, AppState, auth};

impl From<IncidentError> for ApiError {
    fn from(e: IncidentError) -> Self {
        match e {
            IncidentError::NotFound(id) => ApiError::NotFound(format!("incident {id}")),
            IncidentError::Invalid(m) => ApiError::Conflict(m),
            IncidentError::Store(e) => ApiError::Store(e),
            IncidentError::Audit(m) => ApiError::LedgerRefused(m),
        }
    }
}

pub(crate) fn incidents(state: &AppState) -> Result<&Incidents, ApiError> {
    state
        .incidents
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured("this server keeps no incidents".into()))
}

fn parse_id(s: &str, what: &str) -> Result<EventId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{s}` is not a {what} id (a UUID)")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Comma-separated statuses, exactly (default, or empty: all but `merged`).
    status: Option<String>,
    /// Only incidents active at or after this time (RFC 3339).
    since: Option<String>,
    /// Only incidents that began before this time (RFC 3339).
    until: Option<String>,
    /// Only incidents of this severity or above.
    severity: Option<String>,
    /// Owner, rule title, entity value, tactic: substrings, ASCII letters in any case
    /// (`owner=-` for incidents with none).
    owner: Option<String>,
    rule: Option<String>,
    entity: Option<String>,
    tactic: Option<String>,
    limit: Option<u32>,
    /// Where the page starts: the `next` of the page before.
    cursor: Option<String>,
}

/// `GET /api/v1/incidents` (role viewer): incidents, most recently active first.
pub async fn list(State(state): State<AppState>, Query(p): Query<ListParams>) -> Result<Json<Value>, ApiError> {
    let status = p
        .status
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| s.split(','))
        .map(|s| s.parse::<IncidentStatus>().map_err(ApiError::BadRequest))
        .collect::<Result<Vec<_>, _>>()?;
    let time = |s: Option<String>, what: &str| {
        s.map(|s| {
            s.parse()
                .map_err(|e| ApiError::BadRequest(format!("`{what}` is not an RFC 3339 time: {e}")))
        })
        .transpose()
    };
    let min_severity = p
        .severity
        .map(|s| {
            rempart_model::IncidentSeverity::from_level(&s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown severity `{s}` (informational, low, medium, high, critical)"
                ))
            })
        })
        .transpose()?;
    let query = IncidentQuery {
        status,
        since: time(p.since, "since")?,
        until: time(p.until, "until")?,
        min_severity,
        owner: p.owner,
        rule: p.rule,
        entity: p.entity,
        tactic: p.tactic,
        before: List::Incidents.past(p.cursor.as_deref())?,
        limit: Some(crate::error::limit(p.limit, 100, 10_000)?),
    };
    let list = incidents(&state)?.store().incidents_list(&query).await?;
    let next = List::Incidents.next(&list, query.effective_limit(), |i| (i.last_seen, i.id));
    Ok(Json(json!({"incidents": list, "next": next})))
}

/// The triage service, if this server runs one.
pub(crate) fn triage_service(state: &AppState) -> Result<&crate::triage::Triage, ApiError> {
    state
        .triage
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured("this server runs no triage".into()))
}

/// Whether a role may read verdicts re-identified (analyst, approver, admin; not viewer).
pub(crate) fn may_reveal(caller: &auth::Caller) -> bool {
    matches!(caller.0.role, Role::Analyst | Role::Approver | Role::Admin)
}

/// Re-identifies verdicts, one vault lookup per verdict, and records that it did for `actor`.
pub async fn reveal_verdicts(state: &AppState, actor: &str, verdicts: &mut [Verdict]) -> Result<(), ApiError> {
    let Some(privacy) = state.privacy.as_ref() else {
        return Ok(());
    };
    let mut revealed_ids = Vec::new();
    let mut pseudonyms = 0usize;
    for v in verdicts.iter_mut() {
        let Some(domain) = v.domain.clone() else { continue };
        let redactor = privacy
            .redactor(&domain)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let text = serde_json::to_string(v).map_err(|e| ApiError::Internal(e.to_string()))?;
        let (lines, r) = privacy
            .vault()
            .reveal_lines(redactor.domain(), &[text])
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if r.revealed.is_empty() {
            continue;
        }
        let line = lines.into_iter().next().unwrap_or_default();
        *v = serde_json::from_str(&line).map_err(|e| ApiError::Internal(format!("re-identified verdict: {e}")))?;
        revealed_ids.push(v.id);
        pseudonyms += r.revealed.len();
    }
    if !revealed_ids.is_empty() {
        state
            .ledger
            .append(Draft::new(
                actor,
                kind::PRIVACY_REVEAL,
                json!({"verdicts": revealed_ids, "pseudonyms": pseudonyms}),
            ))
            .await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowParams {
    /// Most alerts returned (default 500).
    alerts: Option<u32>,
}

/// `GET /api/v1/incidents/{id}` (role viewer): the incident, its alerts (oldest first) and its
/// verdicts (newest first; re-identified for analysts).
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Query(p): Query<ShowParams>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let service = incidents(&state)?;
    let incident = service.get(id).await?;
    let alerts = service
        .store()
        .incident_alerts(id, crate::error::limit(p.alerts, 500, 10_000)?)
        .await?;
    let mut verdicts = service.store().verdicts_of(id).await?;
    if may_reveal(&caller) {
        reveal_verdicts(&state, &caller.actor(), &mut verdicts).await?;
    }
    // Reporting deadlines appear with the incident.
    let deadlines = match &state.response {
        Some(r) => r.deadlines(id).await.map_err(ApiError::from)?.1,
        None => Vec::new(),
    };
    Ok(Json(
        json!({"incident": incident, "alerts": alerts, "verdicts": verdicts, "deadlines": deadlines}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    status: Option<IncidentStatus>,
    owner: Option<String>,
    reason: String,
}

/// `POST /api/v1/incidents/{id}` (role analyst): change status and/or owner, with a reason.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    if body.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("`reason` is required".into()));
    }
    if body.status.is_none() && body.owner.is_none() {
        return Err(ApiError::BadRequest("give `status`, `owner` or both".into()));
    }
    let incident = incidents(&state)?
        .update(id, body.status, body.owner, &caller.actor(), &body.reason)
        .await?;
    Ok(Json(json!({"incident": incident})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitBody {
    alerts: Vec<String>,
    reason: String,
}

/// `POST /api/v1/incidents/{id}/split` (role analyst): move alerts into a new incident.
pub async fn split(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<SplitBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    if body.reason.trim().is_empty() || body.alerts.is_empty() {
        return Err(ApiError::BadRequest("`alerts` and `reason` are required".into()));
    }
    let alerts = body
        .alerts
        .iter()
        .map(|a| parse_id(a, "alert"))
        .collect::<Result<Vec<_>, _>>()?;
    let (kept, split) = incidents(&state)?
        .split(id, &alerts, &caller.actor(), &body.reason)
        .await?;
    Ok(Json(json!({"incident": kept, "split": split})))
}

/// `POST /api/v1/incidents/{id}/triage` (role analyst): triage now; the verdict, re-identified.
pub async fn triage(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let triage = triage_service(&state)?;
    let verdict = triage.triage(id, &caller.actor()).await?;
    let mut one = [verdict];
    if may_reveal(&caller) {
        reveal_verdicts(&state, &caller.actor(), &mut one).await?;
    }
    let [verdict] = one;
    Ok(Json(json!({"verdict": verdict})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// Whether the verdict's classification is right.
    agrees: bool,
    /// The right classification, when it is not.
    classification: Option<Classification>,
    reason: String,
}

/// `POST /api/v1/verdicts/{id}/feedback` (role analyst): confirm or override a verdict.
pub async fn feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<FeedbackBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "verdict")?;
    let service = incidents(&state)?;
    let verdict = service
        .store()
        .verdict_get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("verdict {id}")))?;
    let f = record_feedback(
        &state,
        service,
        &verdict,
        &caller.actor(),
        body.agrees,
        body.classification,
        &body.reason,
    )
    .await?;
    Ok(Json(json!({"feedback": f})))
}

/// Stores and records an analyst's judgement of a verdict; counts it in the metrics.
pub async fn record_feedback(
    state: &AppState,
    service: &Incidents,
    verdict: &Verdict,
    actor: &str,
    agrees: bool,
    classification: Option<Classification>,
    reason: &str,
) -> Result<Feedback, ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::BadRequest("`reason` is required".into()));
    }
    let classification = match (agrees, classification) {
        // Against the verdict as it stands: a conflict with the resource, not a malformed body.
        (true, Some(c)) if c != verdict.classification => {
            return Err(ApiError::Conflict(format!(
                "agreeing with a `{}` verdict cannot classify it `{c}`",
                verdict.classification
            )));
        }
        (true, _) => verdict.classification,
        (false, Some(c)) if c == verdict.classification => {
            return Err(ApiError::Conflict(format!(
                "disagreeing needs a classification other than the verdict's `{c}`"
            )));
        }
        (false, Some(c)) => c,
        (false, None) => {
            return Err(ApiError::BadRequest(
                "disagreeing needs the right `classification`".into(),
            ));
        }
    };
    let f = Feedback {
        verdict: verdict.id,
        incident: verdict.incident,
        time: jiff::Timestamp::now(),
        actor: actor.to_owned(),
        agrees,
        classification,
        reason: reason.to_owned(),
    };
    state
        .ledger
        .append(Draft::new(
            actor,
            kind::TRIAGE_FEEDBACK,
            json!({"verdict": f.verdict, "incident": f.incident, "agrees": agrees,
                   "classification": classification, "reason": reason}),
        ))
        .await?;
    service.store().feedback_put(&f).await?;
    let incident = service.get(verdict.incident).await.ok();
    for rule in incident.iter().flat_map(|i| i.rules.iter().take(1)) {
        state
            .metrics
            .feedback
            .get_or_create(&vec![
                ("model", verdict.model.clone().unwrap_or_else(|| "degraded".into())),
                ("rule", rule.clone()),
                ("verdict", verdict.classification.as_str().to_owned()),
                ("analyst", classification.as_str().to_owned()),
                ("agrees", agrees.to_string()),
            ])
            .inc();
    }
    Ok(f)
}

/// Agreement between verdicts and analysts, for one model or rule.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Agreement {
    pub judged: u64,
    pub agreed: u64,
    /// Share of verdicts the analysts agreed with.
    pub agreement_rate: Option<f64>,
    /// Incidents analysts called false positives.
    pub false_positives: u64,
    /// Of those, how many the verdict had already called false positive or benign.
    pub false_positives_rejected: u64,
    pub false_positive_rejection_rate: Option<f64>,
}

impl Agreement {
    fn add(&mut self, f: &Feedback, v: &Verdict) {
        self.judged += 1;
        self.agreed += u64::from(f.agrees);
        if f.classification == Classification::FalsePositive {
            self.false_positives += 1;
            if v.classification != Classification::TruePositive {
                self.false_positives_rejected += 1;
            }
        }
        self.agreement_rate = Some(self.agreed as f64 / self.judged as f64);
        self.false_positive_rejection_rate =
            (self.false_positives > 0).then(|| self.false_positives_rejected as f64 / self.false_positives as f64);
    }
}

/// Agreement overall, per model and per rule (the incident's first rule).
pub async fn agreement(service: &Incidents) -> Result<Value, ApiError> {
    let all = service.store().feedback_all().await?;
    let mut total = Agreement::default();
    let mut per_model: BTreeMap<String, Agreement> = BTreeMap::new();
    let mut per_rule: BTreeMap<String, Agreement> = BTreeMap::new();
    let mut rules_of: BTreeMap<EventId, Vec<String>> = BTreeMap::new();
    for (f, v) in &all {
        total.add(f, v);
        per_model
            .entry(v.model.clone().unwrap_or_else(|| "degraded".into()))
            .or_default()
            .add(f, v);
        if let std::collections::btree_map::Entry::Vacant(slot) = rules_of.entry(f.incident) {
            slot.insert(service.get(f.incident).await.map(|i| i.rules).unwrap_or_default());
        }
        for r in rules_of.get(&f.incident).into_iter().flatten() {
            per_rule.entry(r.clone()).or_default().add(f, v);
        }
    }
    Ok(json!({"overall": total, "per_model": per_model, "per_rule": per_rule}))
}

/// `GET /api/v1/triage/stats` (role viewer): agreement and false-positive rejection rates.
pub async fn stats(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(agreement(incidents(&state)?).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldBody {
    /// Put the held model verdict in force (`true`) or set it aside (`false`).
    accept: bool,
    reason: String,
}

/// `POST /api/v1/incidents/{id}/held` (role analyst): decide on a model verdict held for review.
pub async fn held(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<HeldBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let triage = triage_service(&state)?;
    let incident = triage
        .decide_held(id, body.accept, &caller.actor(), &body.reason)
        .await?;
    Ok(Json(json!({"incident": incident})))
}

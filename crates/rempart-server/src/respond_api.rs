//! `/api/v1/playbooks`, `/api/v1/runs`, `/api/v1/approvals`, `/api/v1/deadlines` and an
//! incident's regulatory assessment and reports.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{Html, IntoResponse};
use jiff::Timestamp;
use rempart_model::EventId;
use rempart_respond::approval::{ApprovalError, ApprovalStatus};
use rempart_respond::clocks::{ReportKind, dora_major};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::page::List;
use crate::respond::{AssessmentChange, Response, ResponseError};
use crate::{ApiError, AppState, auth};

impl From<ResponseError> for ApiError {
    fn from(e: ResponseError) -> Self {
        match e {
            ResponseError::NotFound(m) => ApiError::NotFound(m),
            ResponseError::Invalid(m) => ApiError::Conflict(m),
            ResponseError::Approval(e @ ApprovalError::Role { .. }) => ApiError::Forbidden {
                held: match &e {
                    ApprovalError::Role { held, .. } => held.clone(),
                    _ => String::new(),
                },
                required: match &e {
                    ApprovalError::Role { needed, .. } => needed.clone(),
                    _ => String::new(),
                },
            },
            ResponseError::Approval(e) => ApiError::Conflict(e.to_string()),
            ResponseError::Store(e) => ApiError::Store(e),
            ResponseError::Incident(e) => e.into(),
            ResponseError::Audit(m) => ApiError::LedgerRefused(m),
        }
    }
}

pub(crate) fn response(state: &AppState) -> Result<&Response, ApiError> {
    state
        .response
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured("this server runs no playbooks".into()))
}

fn parse_id(s: &str, what: &str) -> Result<EventId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{s}` is not a {what} id (a UUID)")))
}

/// `GET /api/v1/playbooks` (role viewer): the playbooks in force.
pub async fn playbooks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = response(&state)?.playbooks().iter().map(|p| p.summary()).collect();
    Ok(Json(json!({"playbooks": list})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    incident: String,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/playbooks/{id}/run` (role analyst): runs a playbook on an incident.
pub async fn run_playbook(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<RunBody>,
) -> Result<Json<Value>, ApiError> {
    let incident = parse_id(&body.incident, "incident")?;
    let run = response(&state)?
        .run_playbook(&id, incident, &caller.voter(), body.dry_run)
        .await?;
    Ok(Json(json!({"run": run})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsParams {
    incident: Option<String>,
    limit: Option<u32>,
    /// Where the page starts: the `next` of the page before.
    cursor: Option<String>,
}

/// `GET /api/v1/runs` (role viewer): playbook runs, newest first.
pub async fn runs(State(state): State<AppState>, Query(p): Query<RunsParams>) -> Result<Json<Value>, ApiError> {
    let incident = p.incident.as_deref().map(|i| parse_id(i, "incident")).transpose()?;
    let limit = crate::error::limit(p.limit, 100, 10_000)?;
    let runs = response(&state)?
        .runs(incident, List::Runs.past(p.cursor.as_deref())?, limit)
        .await?;
    let next = List::Runs.next(&runs, limit, |r| (r.created, r.id));
    Ok(Json(json!({"runs": runs, "next": next})))
}

/// `GET /api/v1/runs/{id}` (role viewer).
pub async fn run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let run = response(&state)?.run(parse_id(&id, "run")?).await?;
    Ok(Json(json!({"run": run})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsParams {
    /// `pending` (default), `approved`, `rejected`, `timed_out` or `all`.
    status: Option<String>,
    limit: Option<u32>,
    /// Where the page starts: the `next` of the page before.
    cursor: Option<String>,
}

/// `GET /api/v1/approvals` (role viewer): the approval queue, oldest first.
pub async fn approvals(
    State(state): State<AppState>,
    Query(p): Query<ApprovalsParams>,
) -> Result<Json<Value>, ApiError> {
    let status = ApprovalStatus::filter(p.status.as_deref().unwrap_or("pending")).map_err(ApiError::BadRequest)?;
    let limit = crate::error::limit(p.limit, 100, 10_000)?;
    let list = response(&state)?
        .approvals(status, List::Approvals.past(p.cursor.as_deref())?, limit)
        .await?;
    let next = List::Approvals.next(&list, limit, |a| (a.created, a.id));
    Ok(Json(json!({"approvals": list, "next": next})))
}

/// `GET /api/v1/approvals/{id}` (role viewer).
pub async fn approval(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = response(&state)?.approval(parse_id(&id, "approval")?).await?;
    Ok(Json(json!({"approval": a})))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    #[serde(default)]
    comment: String,
}

async fn vote(
    state: &AppState,
    caller: &auth::Caller,
    id: &str,
    approve: bool,
    body: VoteBody,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id, "approval")?;
    let (approval, run) = response(state)?
        .vote(id, &caller.voter(), approve, &body.comment)
        .await?;
    Ok(Json(json!({"approval": approval, "run": run})))
}

/// `POST /api/v1/approvals/{id}/approve` (role approver, or admin where the step names admin;
/// never the person who asked). The body, `{"comment": …}`, is optional.
pub async fn approve(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    body: Option<Json<VoteBody>>,
) -> Result<Json<Value>, ApiError> {
    vote(&state, &caller, &id, true, body.map(|Json(b)| b).unwrap_or_default()).await
}

/// `POST /api/v1/approvals/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    body: Option<Json<VoteBody>>,
) -> Result<Json<Value>, ApiError> {
    vote(&state, &caller, &id, false, body.map(|Json(b)| b).unwrap_or_default()).await
}

/// `GET /api/v1/incidents/{id}/regulatory` (role viewer): the assessment, the DORA
/// classification and every deadline with where it stands.
pub async fn regulatory(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let (assessment, deadlines) = response(&state)?.deadlines(id).await?;
    let dora = assessment.as_ref().and_then(|a| a.dora.as_ref()).map(dora_major);
    Ok(Json(json!({
        "incident": id,
        "assessment": assessment,
        "dora": dora,
        "deadlines": deadlines,
    })))
}

/// `POST /api/v1/incidents/{id}/regulatory` (role analyst): opens or changes the assessment.
pub async fn assess(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<AssessmentChange>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let service = response(&state)?;
    service.assess(id, body, &caller.actor()).await?;
    regulatory(State(state), Path(id.to_string())).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionBody {
    report: String,
    at: Option<Timestamp>,
    #[serde(default)]
    reference: String,
}

/// `POST /api/v1/incidents/{id}/regulatory/submissions` (role analyst): records a report as
/// sent to its authority.
pub async fn submission(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(id): Path<String>,
    Json(body): Json<SubmissionBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let report: ReportKind = body.report.parse().map_err(ApiError::BadRequest)?;
    response(&state)?
        .submitted(id, report, body.at, &body.reference, &caller.actor())
        .await?;
    regulatory(State(state), Path(id.to_string())).await
}

/// `GET /api/v1/deadlines` (role viewer): every incident's reporting deadlines, soonest first.
pub async fn deadlines(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = response(&state)?.all_deadlines(Timestamp::now()).await?;
    let list: Vec<Value> = all
        .into_iter()
        .map(|(incident, d)| {
            let mut v = serde_json::to_value(&d).unwrap_or(Value::Null);
            v["incident"] = json!(incident);
            v
        })
        .collect();
    Ok(Json(json!({"deadlines": list})))
}

/// `GET /api/v1/incidents/{id}/reports/{report}` (role analyst): the draft of a report in the
/// structure of its template, filled from the incident.
pub async fn report(
    State(state): State<AppState>,
    Path((id, report)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "incident")?;
    let report: ReportKind = report.parse().map_err(ApiError::BadRequest)?;
    let draft = response(&state)?.report_draft(id, report).await?;
    Ok(Json(draft))
}

/// `GET /api/v1/incidents/{id}/report.html` (role analyst): a printable report with the
/// incident's timeline, response and deadlines.
pub async fn report_html(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id, "incident")?;
    Ok(Html(response(&state)?.report_html(id).await?))
}

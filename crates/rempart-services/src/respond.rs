//! The response service: playbooks started by incidents or by people, their actions carried
//! out through the connectors, approvals, and every step recorded in the ledger.
//!
//! The engine ([`rempart_respond::run`]) decides; this service does the work it asks for and
//! keeps runs and approvals in the store, so a restart resumes where it stopped. Three rules
//! hold here:
//!
//! - An action runs only after its `response.action` record is in the ledger (fail closed).
//! - An action key runs once: the store refuses a second start of a key that did not fail,
//!   so two processes driving one run, or a restart mid-action, cannot repeat it.
//! - Hourly limits are counted from the store under one lock with the reservation of the
//!   actions they allow, so a burst of incidents cannot overshoot them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use rempart_audit::{Ledger, kind};
use rempart_config::Regulatory;
use rempart_model::{ActionKind, Classification, EventId, Incident, IncidentStatus, Verdict};
use rempart_respond::approval::{Approval, ApprovalError, ApprovalStatus, Proposed};
use rempart_respond::clocks::{self, Assessment, Deadline};
use rempart_respond::connectors::{ActionRequest, Connectors, OwnRanges};
use rempart_respond::playbook::TriggerOn;
use rempart_respond::run::{Context, Decision, Gate, Outcome, Run, RunStatus, Work, advance};
use rempart_respond::{Budget, Playbook};
use rempart_store::{ActionRow, ApprovalRow, ResponseStore, Role, RunQuery, RunRow, StoreError};
use rempart_triage::severity::Inventory;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::incidents::{IncidentError, IncidentEvent, Incidents, draft};

/// Why a response request failed.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Incident(#[from] IncidentError),
    #[error("the ledger refused the record: {0}")]
    Audit(String),
}

/// The actor playbooks act as when nobody started them.
pub const SYSTEM_ACTOR: &str = "rempart";

/// Incident events handled at once by the background task.
pub const CONCURRENT_EVENTS: usize = 8;

/// Longest pause between retries of a failed action.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ResponseStore>,
    incidents: Incidents,
    ledger: Ledger,
    connectors: Connectors,
    /// Addresses no action blocks.
    own_ranges: OwnRanges,
    playbooks: Vec<Playbook>,
    inventory: Inventory,
    regulatory: Regulatory,
    /// One lock per run being driven or decided.
    runs: std::sync::Mutex<HashMap<EventId, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while limits are counted and the actions they allow are reserved.
    budget: tokio::sync::Mutex<()>,
    /// Pause before the first retry (shorter in tests).
    backoff: Duration,
    metrics: Arc<crate::metrics::Metrics>,
    /// Deadlines already warned about in this process: (incident, report, state).
    warned: std::sync::Mutex<std::collections::HashSet<(EventId, clocks::ReportKind, &'static str)>>,
}

/// Who acts on a response, as four eyes count them: the ledger's actor, the person behind it,
/// the role they hold and, for a token, when and by whom it was created.
#[derive(Debug, Clone)]
pub struct Voter {
    pub actor: String,
    pub person: String,
    pub role: Role,
    pub token: Option<(Timestamp, Option<String>)>,
}

impl Voter {
    /// A person acting without a token (the command line: its operating-system account).
    pub fn person(actor: &str, role: Role) -> Voter {
        Voter {
            actor: actor.to_owned(),
            person: actor.to_owned(),
            role,
            token: None,
        }
    }
}

/// The response service, shared by the API, the CLI and the background tasks.
#[derive(Debug, Clone)]
pub struct Response {
    inner: Arc<Inner>,
}

/// Counts from the store for the limits of one playbook; taking reserves in memory, and the
/// caller records each reserved action in the store before the budget lock is released.
struct StoreBudget(BTreeMap<ActionKind, u64>);

/// What a playbook's hourly limits are decided under, across every process of a cluster.
fn budget_lock(playbook: &str) -> String {
    format!("response-budget/{playbook}")
}

impl Budget for StoreBudget {
    fn take(&mut self, _: &str, action: ActionKind, per_hour: u32) -> bool {
        let n = self.0.entry(action).or_default();
        if *n >= u64::from(per_hour) {
            return false;
        }
        *n += 1;
        true
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ResponseError> {
    serde_json::to_value(v).map_err(|e| ResponseError::Invalid(format!("cannot encode: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, ResponseError> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Corrupt {
            id: what.to_owned(),
            reason: e.to_string(),
        })
        .map_err(ResponseError::Store)
}

fn run_row(run: &Run) -> Result<RunRow, ResponseError> {
    Ok(RunRow {
        id: run.id,
        incident: run.incident,
        playbook: run.playbook.clone(),
        status: run.status.as_str().to_owned(),
        created: run.created,
        updated: run.updated,
        body: to_json(run)?,
    })
}

fn approval_row(a: &Approval) -> Result<ApprovalRow, ResponseError> {
    Ok(ApprovalRow {
        id: a.id,
        run: a.run,
        status: a.status.as_str().to_owned(),
        created: a.created,
        deadline: a.deadline,
        body: to_json(a)?,
    })
}

/// What a request to open or change an incident's regulatory assessment may set.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentChange {
    pub aware_at: Option<Timestamp>,
    pub nis2_significant: Option<bool>,
    pub affects_trust_services: Option<bool>,
    pub personal_data_breach: Option<bool>,
    pub breach_aware_at: Option<Timestamp>,
    pub dora: Option<clocks::DoraCriteria>,
}

/// What the response service is built from.
#[derive(Debug)]
pub struct Parts {
    pub store: Arc<dyn ResponseStore>,
    pub incidents: Incidents,
    pub ledger: Ledger,
    pub connectors: Connectors,
    /// The institution's own addresses, which no action blocks (`[respond] own_ranges`).
    pub own_ranges: OwnRanges,
    pub playbooks: Vec<Playbook>,
    pub inventory: Inventory,
    pub regulatory: Regulatory,
    /// Pause before the first retry of a failed action (doubling up to 8 s).
    pub backoff: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Response {
    pub fn new(p: Parts) -> Response {
        Response {
            inner: Arc::new(Inner {
                store: p.store,
                incidents: p.incidents,
                ledger: p.ledger,
                connectors: p.connectors,
                own_ranges: p.own_ranges,
                playbooks: p.playbooks,
                inventory: p.inventory,
                regulatory: p.regulatory,
                runs: std::sync::Mutex::default(),
                budget: tokio::sync::Mutex::new(()),
                backoff: p.backoff,
                metrics: p.metrics,
                warned: std::sync::Mutex::default(),
            }),
        }
    }

    pub fn playbooks(&self) -> &[Playbook] {
        &self.inner.playbooks
    }

    fn playbook(&self, id: &str) -> Option<&Playbook> {
        self.inner.playbooks.iter().find(|p| p.id == id)
    }

    /// The playbook a run follows, or why this process cannot drive it.
    fn loaded(&self, id: &str) -> Result<&Playbook, ResponseError> {
        self.playbook(id).ok_or_else(|| {
            ResponseError::Invalid(format!(
                "playbook `{id}` is not loaded by this configuration: use the configuration that lists it in `[respond] playbooks` (--config)"
            ))
        })
    }

    fn run_lock(&self, id: EventId) -> Arc<tokio::sync::Mutex<()>> {
        let mut runs = self
            .inner
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        runs.retain(|_, l| Arc::strong_count(l) > 1);
        runs.entry(id).or_default().clone()
    }

    async fn latest_verdict(&self, incident: &Incident) -> Result<Option<Verdict>, ResponseError> {
        match &incident.triage {
            Some(t) => Ok(self.inner.incidents.store().verdict_get(t.verdict).await?),
            None => Ok(None),
        }
    }

    async fn record(&self, incident: &Incident, actor: &str, what: &str, payload: Value) -> Result<(), ResponseError> {
        self.inner
            .ledger
            .append(draft(actor, what, incident, payload))
            .await
            .map(|_| ())
            .map_err(|e| ResponseError::Audit(e.to_string()))
    }

    /// Starts every enabled playbook whose trigger holds for what happened to the incident.
    /// A playbook runs at most once per incident on its own; people may run it again.
    pub async fn on_incident(&self, event: IncidentEvent) -> Result<Vec<Run>, ResponseError> {
        let (id, on) = match event {
            IncidentEvent::Created(id) => (id, TriggerOn::Created),
            IncidentEvent::Grown(id) => (id, TriggerOn::Grown),
            IncidentEvent::Triaged(id) => (id, TriggerOn::Triaged),
            // People's changes trigger no playbook.
            IncidentEvent::Changed(_) => return Ok(Vec::new()),
        };
        // Most batches grow incidents no playbook listens for: no store read for those.
        if !self
            .inner
            .playbooks
            .iter()
            .any(|p| p.enabled && p.trigger.on.contains(&on))
        {
            return Ok(Vec::new());
        }
        let incident = self.inner.incidents.get(id).await?;
        if !incident.status.is_open() {
            return Ok(Vec::new());
        }
        let verdict = self.latest_verdict(&incident).await?;
        let assets: Vec<_> = incident
            .entities
            .iter()
            .filter_map(|e| self.inner.inventory.lookup(e))
            .collect();
        let outcomes = BTreeMap::new();
        let facts = rempart_respond::condition::Facts {
            incident: &incident,
            verdict: verdict.as_ref(),
            assets: &assets,
            outcomes: &outcomes,
        };
        let mut started = Vec::new();
        for pb in self.inner.playbooks.iter().filter(|p| p.enabled) {
            if !pb.trigger.on.contains(&on) || !pb.trigger.when.holds(&facts) {
                continue;
            }
            let now = Timestamp::now();
            // One automatic run per playbook and incident, whichever process is told and however
            // often: its key is claimed and its run written under the playbook's lock, which
            // every process shares. A claim without a run is a process that died in between:
            // the run is written now, under the same id.
            let id = incident.id.derive(&format!("run:{}", pb.id));
            let admitted = {
                let _budget = self.inner.budget.lock().await;
                let _shared = self.inner.store.exclusive(&budget_lock(&pb.id)).await?;
                let key = format!("run:{}:{}", pb.id, incident.id);
                let claimed = self
                    .inner
                    .store
                    .action_begin(&ActionRow {
                        key: key.clone(),
                        run: incident.id,
                        playbook: pb.id.clone(),
                        action: "run".into(),
                        time: now,
                        outcome: "succeeded".into(),
                    })
                    .await?;
                let hour_ago = now.checked_sub(1.hour()).unwrap_or(now);
                if claimed {
                    // The count includes this claim.
                    let recent = self.inner.store.actions_count(&pb.id, "run", hour_ago).await?;
                    if recent > u64::from(pb.limits.runs_per_hour) {
                        // Given back (a failed claim counts for nothing and may be made again).
                        self.inner.store.action_end(&key, "failed").await?;
                        Err(recent - 1)
                    } else {
                        Ok(Some(
                            self.create(pb, &incident, on.as_str(), SYSTEM_ACTOR, false, id).await?,
                        ))
                    }
                } else if self.inner.store.run_get(id).await?.is_some() {
                    Ok(None)
                } else {
                    Ok(Some(
                        self.create(pb, &incident, on.as_str(), SYSTEM_ACTOR, false, id).await?,
                    ))
                }
            };
            match admitted {
                Ok(Some(run)) => {
                    let run = self.begin(pb, &incident, run, SYSTEM_ACTOR).await?;
                    started.push(run);
                }
                Ok(None) => {}
                Err(recent) => {
                    tracing::warn!(playbook = %pb.id, incident = %incident.id, recent, "playbook run limit reached");
                    self.record(
                        &incident,
                        SYSTEM_ACTOR,
                        kind::PLAYBOOK_RUN,
                        json!({
                            "playbook": pb.id,
                            "incident": incident.id,
                            "trigger": on.as_str(),
                            "skipped": format!("limit reached: at most {} runs per hour", pb.limits.runs_per_hour),
                        }),
                    )
                    .await?;
                }
            }
        }
        Ok(started)
    }

    /// Runs playbook `playbook` on incident `incident` for `who` (a dry run describes every
    /// step and performs nothing). The run is requested by `who`'s person, who then cannot
    /// approve its steps.
    pub async fn run_playbook(
        &self,
        playbook: &str,
        incident: EventId,
        who: &Voter,
        dry_run: bool,
    ) -> Result<Run, ResponseError> {
        let actor = who.actor.as_str();
        let pb = self
            .playbook(playbook)
            .ok_or_else(|| {
                ResponseError::NotFound(format!(
                    "no playbook `{playbook}` (loaded: {})",
                    self.inner
                        .playbooks
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?
            .clone();
        let incident = self.inner.incidents.get(incident).await?;
        let run = self
            .create(&pb, &incident, "manual", &who.person, dry_run, EventId::generate())
            .await?;
        self.begin(&pb, &incident, run, actor).await
    }

    /// Writes a new run `id` of `pb` on `incident`, requested by `person` (who then cannot
    /// approve its steps); [`Response::begin`] records and drives it.
    async fn create(
        &self,
        pb: &Playbook,
        incident: &Incident,
        trigger: &str,
        person: &str,
        dry_run: bool,
        id: EventId,
    ) -> Result<Run, ResponseError> {
        let mut run = Run::new(id, pb, incident, trigger, person, Timestamp::now());
        run.dry_run |= dry_run;
        self.inner.store.response_write(&[run_row(&run)?], &[]).await?;
        Ok(run)
    }

    /// Records a run written by [`Response::create`] in the ledger as `actor`'s, and drives it.
    async fn begin(&self, pb: &Playbook, incident: &Incident, run: Run, actor: &str) -> Result<Run, ResponseError> {
        self.record(
            incident,
            actor,
            kind::PLAYBOOK_RUN,
            json!({
                "run": run.id,
                "playbook": pb.id,
                "digest": pb.digest,
                "incident": incident.id,
                "verdict": run.verdict,
                "trigger": run.trigger,
                "dry_run": run.dry_run,
            }),
        )
        .await?;
        tracing::info!(run = %run.id, playbook = %pb.id, incident = %incident.id, trigger = %run.trigger, dry_run = run.dry_run, "playbook run started");
        self.drive(run.id).await
    }

    pub async fn run(&self, id: EventId) -> Result<Run, ResponseError> {
        let row = self
            .inner
            .store
            .run_get(id)
            .await?
            .ok_or_else(|| ResponseError::NotFound(format!("no run {id}")))?;
        from_json(row.body, &id.to_string())
    }

    /// Runs, newest first, of one incident or of all, from past `before` (the `(created, id)`
    /// of the last run of the previous page).
    pub async fn runs(
        &self,
        incident: Option<EventId>,
        before: Option<rempart_store::Position>,
        limit: u32,
    ) -> Result<Vec<Run>, ResponseError> {
        let rows = self
            .inner
            .store
            .runs_list(&RunQuery {
                incident,
                status: Vec::new(),
                before,
                limit,
            })
            .await?;
        rows.into_iter().map(|r| from_json(r.body, &r.id.to_string())).collect()
    }

    async fn save(&self, run: &Run, approvals: &[Approval]) -> Result<(), ResponseError> {
        let approvals = approvals.iter().map(approval_row).collect::<Result<Vec<_>, _>>()?;
        self.inner.store.response_write(&[run_row(run)?], &approvals).await?;
        Ok(())
    }

    /// Moves a run along until it waits for people or ends.
    pub async fn drive(&self, id: EventId) -> Result<Run, ResponseError> {
        let lock = self.run_lock(id);
        let _held = lock.lock().await;
        let mut run = self.run(id).await?;
        let was_final = run.status.is_final();
        // A process whose configuration lacks the playbook leaves the run as it is: another
        // (the server) may hold it.
        let pb = self.loaded(&run.playbook)?.clone();
        if pb.digest != run.digest && !was_final {
            run.notes.push(format!(
                "playbook `{}` changed since the run started; the run follows the version now loaded",
                pb.id
            ));
            run.digest = pb.digest.clone();
        }
        loop {
            let incident = self.inner.incidents.get(run.incident).await?;
            let verdict = self.latest_verdict(&incident).await?;
            let cx = Context {
                incident: &incident,
                verdict: verdict.as_ref(),
                inventory: &self.inner.inventory,
                own_ranges: &self.inner.own_ranges,
            };
            let (work, reserved) = {
                let _budget = self.inner.budget.lock().await;
                let _shared = self.inner.store.exclusive(&budget_lock(&pb.id)).await?;
                let now = Timestamp::now();
                let hour_ago = now.checked_sub(1.hour()).unwrap_or(now);
                let mut counts = BTreeMap::new();
                for action in pb.limits.per_hour.keys() {
                    let n = self
                        .inner
                        .store
                        .actions_count(&pb.id, action.as_str(), hour_ago)
                        .await?;
                    counts.insert(*action, n);
                }
                let mut budget = StoreBudget(counts);
                let work = advance(&pb, &mut run, &cx, &mut budget);
                let mut reserved = Vec::new();
                for w in &work {
                    let Work::Execute(i) = w else { continue };
                    let a = &run.actions[*i];
                    if run.dry_run || a.connector.as_deref().is_some_and(|c| self.inner.connectors.dry_run(c)) {
                        reserved.push(*i);
                        continue;
                    }
                    let begun = self
                        .inner
                        .store
                        .action_begin(&ActionRow {
                            key: a.key.clone(),
                            run: run.id,
                            playbook: pb.id.clone(),
                            action: a.action.as_str().to_owned(),
                            time: now,
                            outcome: "started".into(),
                        })
                        .await?;
                    if begun {
                        reserved.push(*i);
                    } else {
                        run.record(
                            *i,
                            Outcome::Succeeded,
                            format!("already carried out under key `{}`", a.key),
                            a.attempts,
                            now,
                        );
                    }
                }
                (work, reserved)
            };
            self.save(&run, &[]).await?;
            if work.is_empty() {
                break;
            }
            for w in work {
                match w {
                    Work::Execute(i) if reserved.contains(&i) => {
                        let (outcome, detail, attempts) = self.execute(&pb, &run, &incident, verdict.as_ref(), i).await;
                        self.inner
                            .metrics
                            .response_actions
                            .get_or_create(&vec![
                                ("action", run.actions[i].action.as_str().to_owned()),
                                ("outcome", outcome.as_str().to_owned()),
                            ])
                            .inc();
                        run.record(i, outcome, detail, attempts, Timestamp::now());
                    }
                    Work::Execute(_) => {}
                    Work::Approve { step, actions, gate } => {
                        let approval = self
                            .request_approval(&pb, &mut run, &incident, &step, &actions, gate)
                            .await?;
                        self.save(&run, std::slice::from_ref(&approval)).await?;
                        continue;
                    }
                    Work::Undo(i) => {
                        let (ok, detail) = self.undo(&pb, &run, &incident, i).await;
                        run.record_undo(i, ok, detail, Timestamp::now());
                    }
                }
                self.save(&run, &[]).await?;
            }
        }
        if run.status.is_final() && !was_final {
            tracing::info!(run = %run.id, playbook = %pb.id, status = %run.status, "playbook run ended");
            let incident = self.inner.incidents.get(run.incident).await?;
            self.record(
                &incident,
                SYSTEM_ACTOR,
                kind::PLAYBOOK_RUN,
                json!({
                    "run": run.id,
                    "playbook": pb.id,
                    "incident": run.incident,
                    "status": run.status,
                    "outcomes": run.outcomes,
                    "notes": run.notes,
                }),
            )
            .await?;
        }
        Ok(run)
    }

    fn request(run: &Run, i: usize, undo: bool) -> (ActionRequest<'_>, Option<&str>) {
        let a = &run.actions[i];
        (
            ActionRequest {
                key: &a.key,
                action: a.action,
                undo,
                target: a.target.as_deref(),
                params: &a.params,
                incident: run.incident,
                run: run.id,
                playbook: &run.playbook,
            },
            a.connector.as_deref(),
        )
    }

    /// Carries out action `i` (or describes it in a dry run): the ledger first, then the
    /// connector with retries, then the ledger again.
    async fn execute(
        &self,
        pb: &Playbook,
        run: &Run,
        incident: &Incident,
        verdict: Option<&Verdict>,
        i: usize,
    ) -> (Outcome, String, u32) {
        let a = &run.actions[i];
        let (req, connector) = Self::request(run, i, false);
        let dry = run.dry_run || connector.is_some_and(|c| self.inner.connectors.dry_run(c));
        let actor = format!("playbook:{}", pb.id);
        // One odd value taken from a log (a name with shell syntax, the metadata address, one of
        // the institution's own addresses) does not halt the response: that target is skipped,
        // said so and recorded, and the run goes on with the others.
        if let (Some(t), Some(kind)) = (a.target.as_deref(), rempart_respond::playbook::target_kind(a.action))
            && let Err(e) = rempart_respond::connectors::check_target(kind, t)
                .and_then(|t| self.inner.own_ranges.check(a.action, &t))
        {
            let detail = e.to_string();
            if !dry {
                if let Err(e) = self.inner.store.action_end(&a.key, "skipped").await {
                    tracing::error!(key = %a.key, error = %e, "cannot record how an action ended");
                }
                let skipped = json!({
                    "run": run.id, "playbook": pb.id, "incident": run.incident, "step": a.step,
                    "action": a.action, "target": a.target, "key": a.key,
                    "phase": "end", "outcome": Outcome::Skipped, "attempts": 0, "detail": detail,
                });
                if let Err(e) = self.record(incident, &actor, kind::RESPONSE_ACTION, skipped).await {
                    tracing::error!(key = %a.key, error = %e, "cannot record a skipped action in the ledger");
                }
            }
            return (Outcome::Skipped, detail, 0);
        }
        if dry {
            let what = match connector {
                Some(c) => match self.inner.connectors.prepare(c, &req) {
                    Ok(p) => format!("would {p}"),
                    Err(e) => return (Outcome::Failed, e.to_string(), 0),
                },
                None => format!("would {} incident {}", a.action, run.incident),
            };
            return (Outcome::DryRun, what, 0);
        }
        let base = json!({
            "run": run.id,
            "playbook": pb.id,
            "incident": run.incident,
            "step": a.step,
            "action": a.action,
            "target": a.target,
            "connector": a.connector,
            "key": a.key,
        });
        let mut start = base.clone();
        start["phase"] = json!("start");
        if let Err(e) = self.record(incident, &actor, kind::RESPONSE_ACTION, start).await {
            let detail = format!("not run: {e}");
            let _ = self.inner.store.action_end(&a.key, "failed").await;
            return (Outcome::Failed, detail, 0);
        }
        let retries = pb.step(&a.step).map_or(0, |s| s.retries);
        let (outcome, detail, attempts) = match (a.action, connector) {
            (ActionKind::CloseIncident, _) => {
                let to = match verdict.map(|v| v.classification) {
                    Some(Classification::FalsePositive) => IncidentStatus::FalsePositive,
                    _ => IncidentStatus::Resolved,
                };
                match self
                    .inner
                    .incidents
                    .update(
                        run.incident,
                        Some(to),
                        None,
                        &actor,
                        &format!("playbook run {}", run.id),
                    )
                    .await
                {
                    Ok(_) => (Outcome::Succeeded, format!("incident moved to {to}"), 1),
                    Err(e) => (Outcome::Failed, e.to_string(), 1),
                }
            }
            (ActionKind::Monitor, _) => (
                Outcome::Succeeded,
                "the incident's entities are under watch; nothing in the environment changed".to_owned(),
                1,
            ),
            (_, None) => (Outcome::Failed, format!("`{}` needs a connector", a.action), 0),
            (_, Some(c)) => {
                let mut attempt = 0;
                let mut pause = self.inner.backoff;
                loop {
                    attempt += 1;
                    match self.inner.connectors.execute(c, &req, Timestamp::now()).await {
                        Ok(d) => break (Outcome::Succeeded, d, attempt),
                        Err(e) if e.retryable() && attempt <= retries => {
                            tracing::warn!(run = %run.id, step = %a.step, attempt, error = %e, "action failed; retrying");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(MAX_BACKOFF);
                        }
                        Err(e) => break (Outcome::Failed, e.to_string(), attempt),
                    }
                }
            }
        };
        let ended = if outcome == Outcome::Succeeded {
            "succeeded"
        } else {
            "failed"
        };
        if let Err(e) = self.inner.store.action_end(&a.key, ended).await {
            tracing::error!(key = %a.key, error = %e, "cannot record how an action ended");
        }
        let mut end = base;
        end["phase"] = json!("end");
        end["outcome"] = json!(outcome);
        end["attempts"] = json!(attempts);
        end["detail"] = json!(detail);
        if let Err(e) = self.record(incident, &actor, kind::RESPONSE_ACTION, end).await {
            tracing::error!(key = %a.key, error = %e, "cannot record an action's outcome in the ledger");
        }
        (outcome, detail, attempts)
    }

    async fn undo(&self, pb: &Playbook, run: &Run, incident: &Incident, i: usize) -> (bool, String) {
        let a = &run.actions[i];
        let (req, connector) = Self::request(run, i, true);
        let Some(c) = connector else {
            return (false, "no connector to undo with".into());
        };
        let actor = format!("playbook:{}", pb.id);
        let payload = json!({
            "run": run.id, "playbook": pb.id, "incident": run.incident, "step": a.step,
            "action": a.action, "target": a.target, "connector": c, "key": a.key, "phase": "undo",
        });
        if let Err(e) = self.record(incident, &actor, kind::RESPONSE_ACTION, payload).await {
            return (false, format!("not undone: {e}"));
        }
        let (ok, detail) = match self.inner.connectors.execute(c, &req, Timestamp::now()).await {
            Ok(d) => (true, format!("undone: {d}")),
            Err(e) => (false, format!("undo failed: {e}")),
        };
        let payload = json!({
            "run": run.id, "playbook": pb.id, "incident": run.incident, "step": a.step,
            "action": a.action, "key": a.key, "phase": "undone", "ok": ok, "detail": detail,
        });
        if let Err(e) = self.record(incident, &actor, kind::RESPONSE_ACTION, payload).await {
            tracing::error!(key = %a.key, error = %e, "cannot record an undo in the ledger");
        }
        (ok, detail)
    }

    async fn request_approval(
        &self,
        pb: &Playbook,
        run: &mut Run,
        incident: &Incident,
        step: &str,
        actions: &[usize],
        gate: Gate,
    ) -> Result<Approval, ResponseError> {
        let now = Timestamp::now();
        let id = EventId::generate();
        let proposed = actions
            .iter()
            .map(|i| {
                let (req, connector) = Self::request(run, *i, false);
                let prepared = match connector {
                    Some(c) => self
                        .inner
                        .connectors
                        .prepare(c, &req)
                        .map_or_else(|e| format!("cannot be prepared: {e}"), |p| p.to_string()),
                    None => format!("{} incident {}", req.action, run.incident),
                };
                Proposed {
                    action: req.action,
                    target: req.target.map(str::to_owned),
                    connector: connector.map(str::to_owned),
                    prepared,
                }
            })
            .collect();
        let approval = Approval {
            id,
            run: run.id,
            incident: run.incident,
            playbook: pb.id.clone(),
            step: step.to_owned(),
            actions: proposed,
            deadline: now
                .checked_add(i64::try_from(gate.rule.timeout_secs).unwrap_or(i64::MAX).seconds())
                .unwrap_or(now),
            rule: gate.rule,
            reason: gate.reason,
            requested_by: run.requested_by.clone(),
            created: now,
            status: ApprovalStatus::Pending,
            votes: Vec::new(),
        };
        for i in actions {
            run.actions[*i].approval = Some(id);
        }
        self.record(
            incident,
            SYSTEM_ACTOR,
            kind::APPROVAL_REQUEST,
            json!({
                "approval": id,
                "run": run.id,
                "playbook": pb.id,
                "incident": run.incident,
                "step": step,
                "actions": approval.actions,
                "rule": approval.rule,
                "reason": approval.reason,
                "deadline": approval.deadline,
            }),
        )
        .await?;
        tracing::info!(approval = %id, run = %run.id, step, "approval requested");
        self.count_approval("requested");
        Ok(approval)
    }

    pub async fn approval(&self, id: EventId) -> Result<Approval, ResponseError> {
        let row = self
            .inner
            .store
            .approval_get(id)
            .await?
            .ok_or_else(|| ResponseError::NotFound(format!("no approval {id}")))?;
        from_json(row.body, &id.to_string())
    }

    /// Approvals in `status` (all when `None`), oldest first, from past `after` (the
    /// `(created, id)` of the last approval of the previous page).
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        after: Option<rempart_store::Position>,
        limit: u32,
    ) -> Result<Vec<Approval>, ResponseError> {
        let rows = self
            .inner
            .store
            .approvals_list(status.map(ApprovalStatus::as_str), after, limit)
            .await?;
        rows.into_iter().map(|r| from_json(r.body, &r.id.to_string())).collect()
    }

    /// Records `who`'s vote, counted for their person; when the approval is decided, the run
    /// moves on. A token created after the approval opened, by its requester or one of its
    /// voters, cannot vote on it (a sock puppet made for the occasion).
    pub async fn vote(
        &self,
        id: EventId,
        who: &Voter,
        approve: bool,
        comment: &str,
    ) -> Result<(Approval, Run), ResponseError> {
        let (actor, role) = (who.actor.as_str(), who.role);
        let role_name = match role {
            Role::Admin => "admin",
            Role::Approver => "approver",
            other => {
                return Err(ResponseError::Approval(ApprovalError::Role {
                    actor: actor.to_owned(),
                    needed: "approver".into(),
                    held: other.as_str().to_owned(),
                }));
            }
        };
        let mut approval = self.approval(id).await?;
        self.loaded(&approval.playbook)?;
        let lock = self.run_lock(approval.run);
        let held = lock.lock().await;
        // Read again under the run's lock: another vote may have landed meanwhile.
        approval = self.approval(id).await?;
        if let Some((created, Some(creator))) = &who.token
            && created.as_second() >= approval.created.as_second()
            && (*creator == approval.requested_by || approval.votes.iter().any(|v| v.actor == *creator))
        {
            return Err(ResponseError::Approval(ApprovalError::TokenAfterRequest {
                actor: actor.to_owned(),
                creator: creator.clone(),
            }));
        }
        let now = Timestamp::now();
        let status = approval.vote(&who.person, role_name, approve, comment, now)?;
        let mut run = self.run(approval.run).await?;
        let incident = self.inner.incidents.get(approval.incident).await?;
        self.record(
            &incident,
            actor,
            kind::APPROVAL_DECISION,
            json!({
                "approval": id,
                "run": approval.run,
                "step": approval.step,
                "person": who.person,
                "approve": approve,
                "comment": comment,
                "status": status,
            }),
        )
        .await?;
        let decision = match status {
            ApprovalStatus::Approved => Some(Decision::Approved),
            ApprovalStatus::Rejected => Some(Decision::Rejected),
            ApprovalStatus::TimedOut => Some(Decision::TimedOut),
            ApprovalStatus::Pending => None,
        };
        if decision.is_some() {
            self.count_approval(status.as_str());
        }
        if let Some(d) = decision {
            let who: Vec<&str> = approval.votes.iter().map(|v| v.actor.as_str()).collect();
            run.decide(id, d, &format!("{status} by {}", who.join(", ")), now);
        }
        self.save(&run, std::slice::from_ref(&approval)).await?;
        drop(held);
        let run = if decision.is_some() {
            self.drive(run.id).await?
        } else {
            run
        };
        Ok((approval, run))
    }

    /// Times out approvals past their deadline and moves their runs on; returns how many.
    pub async fn sweep(&self, now: Timestamp) -> Result<usize, ResponseError> {
        let pending = self.approvals(Some(ApprovalStatus::Pending), None, 10_000).await?;
        let mut n = 0;
        for a in pending.into_iter().filter(|a| now > a.deadline) {
            let lock = self.run_lock(a.run);
            let held = lock.lock().await;
            let mut approval = self.approval(a.id).await?;
            if !approval.expire(now) {
                continue;
            }
            let mut run = self.run(approval.run).await?;
            run.decide(
                approval.id,
                Decision::TimedOut,
                &format!("no decision by {}", approval.deadline),
                now,
            );
            let incident = self.inner.incidents.get(approval.incident).await?;
            self.record(
                &incident,
                SYSTEM_ACTOR,
                kind::APPROVAL_DECISION,
                json!({
                    "approval": approval.id,
                    "run": approval.run,
                    "step": approval.step,
                    "status": approval.status,
                    "on_timeout": approval.rule.on_timeout,
                }),
            )
            .await?;
            self.save(&run, std::slice::from_ref(&approval)).await?;
            drop(held);
            self.count_approval("timed_out");
            self.drive(run.id).await?;
            n += 1;
        }
        Ok(n)
    }

    fn count_approval(&self, status: &str) {
        self.inner
            .metrics
            .approvals
            .get_or_create(&vec![("status", status.to_owned())])
            .inc();
    }

    /// Warns once per process about each deadline that came due soon or passed: a log line,
    /// a ledger record, the metric, and a message through `[regulatory] notify` if set.
    /// Returns the deadlines warned about now.
    pub async fn warn_deadlines(&self, now: Timestamp) -> Result<Vec<(EventId, Deadline)>, ResponseError> {
        let all = self.all_deadlines(now).await?;
        let fresh: Vec<(EventId, Deadline)> = {
            let mut warned = self
                .inner
                .warned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.into_iter()
                .filter(|(i, d)| {
                    matches!(d.state, clocks::DeadlineState::DueSoon | clocks::DeadlineState::Overdue)
                        && warned.insert((*i, d.report, d.state.as_str()))
                })
                .collect()
        };
        for (incident_id, d) in &fresh {
            tracing::warn!(incident = %incident_id, report = %d.report, due = %d.due, state = d.state.as_str(), "reporting deadline");
            self.inner
                .metrics
                .deadline_warnings
                .get_or_create(&vec![
                    ("report", d.report.as_str().to_owned()),
                    ("state", d.state.as_str().to_owned()),
                ])
                .inc();
            let incident = self.inner.incidents.get(*incident_id).await?;
            self.record(
                &incident,
                SYSTEM_ACTOR,
                kind::REGULATORY_UPDATE,
                json!({"incident": incident_id, "warning": {"report": d.report, "due": d.due, "state": d.state}}),
            )
            .await?;
            if let Some(c) = &self.inner.regulatory.notify {
                let message = format!(
                    "{} for incident {} ({}) is {}: due {:.0} to {} ({})",
                    d.report,
                    incident_id,
                    incident.title,
                    if d.state == clocks::DeadlineState::Overdue {
                        "OVERDUE"
                    } else {
                        "due soon"
                    },
                    d.due,
                    d.report.recipient(),
                    d.basis
                );
                let params = BTreeMap::from([
                    ("message".to_owned(), message),
                    (
                        "subject".to_owned(),
                        format!("[Rempart] {} {}", d.report, d.state.as_str()),
                    ),
                ]);
                let key = format!("deadline:{incident_id}:{}:{}", d.report, d.state.as_str());
                let req = ActionRequest {
                    key: &key,
                    action: ActionKind::Notify,
                    undo: false,
                    target: None,
                    params: &params,
                    incident: *incident_id,
                    run: *incident_id,
                    playbook: "regulatory",
                };
                if let Err(e) = self.inner.connectors.execute(c, &req, now).await {
                    tracing::warn!(connector = %c, error = %e, "cannot send a deadline warning");
                }
            }
        }
        Ok(fresh)
    }

    /// Whether any playbook ran, or runs, on `incident`.
    pub async fn has_runs(&self, incident: EventId) -> Result<bool, ResponseError> {
        let query = RunQuery {
            incident: Some(incident),
            status: Vec::new(),
            before: None,
            limit: 1,
        };
        Ok(!self.inner.store.runs_list(&query).await?.is_empty())
    }

    /// Drives runs a restart left running (their approvals decided, actions not yet done).
    pub async fn resume(&self) -> Result<usize, ResponseError> {
        let rows = self
            .inner
            .store
            .runs_list(&RunQuery {
                incident: None,
                status: vec![
                    RunStatus::Running.as_str().into(),
                    RunStatus::RollingBack.as_str().into(),
                ],
                before: None,
                limit: 10_000,
            })
            .await?;
        for r in &rows {
            self.drive(r.id).await?;
        }
        Ok(rows.len())
    }

    /// Starts playbooks on incident events and times approvals out, until `cancel`: all of the
    /// response in one process. Events are handled up to [`CONCURRENT_EVENTS`] at a time, so
    /// one slow connector does not hold back the response to other incidents; runs, limits
    /// and action keys are safe under concurrency (one lock per run, one for limits, keys
    /// begun once in the store).
    pub async fn run_background(self, cancel: CancellationToken) {
        let events = self.inner.incidents.subscribe();
        if let Err(e) = self.resume().await {
            tracing::warn!(error = %e, "cannot resume playbook runs");
        }
        self.respond_until(Some(events), cancel).await;
    }

    /// Times approvals out and warns of reporting deadlines, until `cancel`: what a cluster's
    /// correlator does of the response, once, while respond processes take the incidents'
    /// changes off the bus.
    pub async fn run_timers(self, cancel: CancellationToken) {
        self.respond_until(None, cancel).await;
    }

    /// Handles `events` (if any) and the timers until `cancel`.
    async fn respond_until(
        self,
        mut events: Option<tokio::sync::mpsc::UnboundedReceiver<IncidentEvent>>,
        cancel: CancellationToken,
    ) {
        async fn next(
            events: &mut Option<tokio::sync::mpsc::UnboundedReceiver<IncidentEvent>>,
        ) -> Option<IncidentEvent> {
            match events {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_EVENTS));
        let mut handling = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut clocks = tokio::time::interval(Duration::from_secs(60));
        clocks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = next(&mut events) => {
                    let Some(event) = event else { break };
                    let Ok(slot) = slots.clone().acquire_owned().await else { break };
                    let me = self.clone();
                    handling.spawn(async move {
                        if let Err(e) = me.on_incident(event).await {
                            tracing::warn!(error = %e, ?event, "playbooks not started");
                        }
                        drop(slot);
                    });
                }
                Some(done) = handling.join_next(), if !handling.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a playbook task failed");
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.sweep(Timestamp::now()).await {
                        tracing::warn!(error = %e, "cannot time out approvals");
                    }
                }
                _ = clocks.tick() => {
                    if let Err(e) = self.warn_deadlines(Timestamp::now()).await {
                        tracing::warn!(error = %e, "cannot check reporting deadlines");
                    }
                }
            }
        }
        // Actions under way finish (each within its connector's time limit) before shutdown.
        while handling.join_next().await.is_some() {}
    }

    /// The regulatory assessment of an incident, if one was opened.
    pub async fn assessment(&self, incident: EventId) -> Result<Option<Assessment>, ResponseError> {
        match self.inner.store.assessment_get(incident).await? {
            Some(v) => Ok(Some(from_json(v, &incident.to_string())?)),
            None => Ok(None),
        }
    }

    /// An incident's assessment and the deadlines it sets now.
    pub async fn deadlines(&self, incident: EventId) -> Result<(Option<Assessment>, Vec<Deadline>), ResponseError> {
        let a = self.assessment(incident).await?;
        let d = a
            .as_ref()
            .map(|a| clocks::deadlines(&self.inner.regulatory, a, Timestamp::now()))
            .unwrap_or_default();
        Ok((a, d))
    }

    /// Every incident's open deadlines, soonest first.
    pub async fn all_deadlines(&self, now: Timestamp) -> Result<Vec<(EventId, Deadline)>, ResponseError> {
        let mut out = Vec::new();
        for (incident, body) in self.inner.store.assessments_all().await? {
            let a: Assessment = from_json(body, &incident.to_string())?;
            for d in clocks::deadlines(&self.inner.regulatory, &a, now) {
                out.push((incident, d));
            }
        }
        out.sort_by_key(|(_, d)| d.due);
        Ok(out)
    }

    /// Opens or changes an incident's regulatory assessment.
    pub async fn assess(
        &self,
        incident: EventId,
        change: AssessmentChange,
        actor: &str,
    ) -> Result<Assessment, ResponseError> {
        let inc = self.inner.incidents.get(incident).await?;
        let now = Timestamp::now();
        let mut a = self
            .assessment(incident)
            .await?
            .unwrap_or_else(|| Assessment::new(inc.created));
        if let Some(t) = change.aware_at {
            a.aware_at = t;
        }
        if let Some(v) = change.nis2_significant {
            a.nis2_significant = v;
        }
        if let Some(v) = change.affects_trust_services {
            a.affects_trust_services = v;
        }
        if let Some(v) = change.personal_data_breach {
            a.personal_data_breach = v;
        }
        if change.breach_aware_at.is_some() {
            a.breach_aware_at = change.breach_aware_at;
        }
        let dora = change.dora.clone().map(|c| clocks::dora_major(&c));
        if let Some(c) = change.dora {
            a.set_dora(c, now);
        }
        self.store_assessment(
            &inc,
            &a,
            actor,
            json!({
                "incident": incident,
                "assessment": a,
                "dora": dora,
            }),
        )
        .await?;
        Ok(a)
    }

    /// Records a report as sent.
    pub async fn submitted(
        &self,
        incident: EventId,
        report: clocks::ReportKind,
        at: Option<Timestamp>,
        reference: &str,
        actor: &str,
    ) -> Result<Assessment, ResponseError> {
        let inc = self.inner.incidents.get(incident).await?;
        let mut a = self.assessment(incident).await?.ok_or_else(|| {
            ResponseError::Invalid(format!(
                "incident {incident} has no regulatory assessment: open one first (what applies, since when)"
            ))
        })?;
        let owed = clocks::deadlines(&self.inner.regulatory, &a, Timestamp::now());
        if !owed.iter().any(|d| d.report == report) {
            return Err(ResponseError::Invalid(format!(
                "incident {incident} owes no `{report}` under the regimes that apply (owes: {})",
                if owed.is_empty() {
                    "nothing".to_owned()
                } else {
                    owed.iter().map(|d| d.report.as_str()).collect::<Vec<_>>().join(", ")
                }
            )));
        }
        let sub = clocks::Submission {
            report,
            at: at.unwrap_or_else(Timestamp::now),
            by: actor.to_owned(),
            reference: reference.to_owned(),
        };
        a.submissions.push(sub.clone());
        self.store_assessment(&inc, &a, actor, json!({"incident": incident, "submitted": sub}))
            .await?;
        Ok(a)
    }

    async fn store_assessment(
        &self,
        incident: &Incident,
        a: &Assessment,
        actor: &str,
        record: Value,
    ) -> Result<(), ResponseError> {
        self.record(incident, actor, kind::REGULATORY_UPDATE, record).await?;
        self.inner
            .store
            .assessment_put(incident.id, &to_json(a)?, Timestamp::now())
            .await?;
        // A deadline already close or passed is warned about at once.
        self.warn_deadlines(Timestamp::now()).await?;
        Ok(())
    }
}

impl Response {
    async fn report_input(&self, id: EventId) -> Result<ReportParts, ResponseError> {
        let incident = self.inner.incidents.get(id).await?;
        let verdict = self.latest_verdict(&incident).await?;
        let runs = self.runs(Some(id), None, 1_000).await?;
        let (assessment, deadlines) = self.deadlines(id).await?;
        Ok(ReportParts {
            incident,
            verdict,
            runs,
            assessment,
            deadlines,
        })
    }

    /// The draft of `report` for incident `id`.
    pub async fn report_draft(&self, id: EventId, report: clocks::ReportKind) -> Result<Value, ResponseError> {
        let p = self.report_input(id).await?;
        if !p.deadlines.iter().any(|d| d.report == report) {
            return Err(ResponseError::Invalid(format!(
                "incident {id} owes no `{report}` as assessed (owes: {})",
                if p.deadlines.is_empty() {
                    "nothing".to_owned()
                } else {
                    p.deadlines
                        .iter()
                        .map(|d| d.report.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        Ok(rempart_respond::report::draft(report, &p.input(&self.inner.regulatory)))
    }

    /// The printable report of incident `id`.
    pub async fn report_html(&self, id: EventId) -> Result<String, ResponseError> {
        let p = self.report_input(id).await?;
        Ok(rempart_respond::report::html(&p.input(&self.inner.regulatory)))
    }
}

struct ReportParts {
    incident: Incident,
    verdict: Option<Verdict>,
    runs: Vec<Run>,
    assessment: Option<Assessment>,
    deadlines: Vec<Deadline>,
}

impl ReportParts {
    fn input<'a>(&'a self, regulatory: &'a Regulatory) -> rempart_respond::report::Input<'a> {
        rempart_respond::report::Input {
            incident: &self.incident,
            verdict: self.verdict.as_ref(),
            runs: &self.runs,
            assessment: self.assessment.as_ref(),
            regulatory,
            deadlines: &self.deadlines,
            now: Timestamp::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a failed unwrap is a failed test")]

    use std::path::Path;

    use rempart_config::{ChatFormat, Connector, ConnectorKind};
    use rempart_store::{IncidentStore, IncidentWrite, SqliteStore};

    use super::*;

    /// The response service on a fresh store, with one playbook that notifies (a dry-run chat
    /// connector) on every incident created, and one open incident.
    async fn fixture(dir: &Path) -> (Response, Arc<SqliteStore>, Incident) {
        let store = Arc::new(SqliteStore::open(&dir.join("r.db")).await.unwrap());
        let ledger = Ledger::open_with_fresh_keys(store.clone()).await.unwrap();
        let incidents = Incidents::open(
            store.clone(),
            store.clone(),
            ledger.clone(),
            rempart_triage::Settings::default(),
        )
        .await
        .unwrap();
        let chat = Connector {
            name: "chat".into(),
            kind: ConnectorKind::Chat {
                url: "http://127.0.0.1:9/hook".into(),
                format: ChatFormat::Slack,
            },
            dry_run: true,
            timeout_secs: 1,
        };
        let connectors_config = BTreeMap::from([("chat".to_owned(), chat)]);
        let pb = rempart_respond::playbook::parse(
            "id: page\ntrigger:\n  on: [created, grown]\nsteps:\n  - id: tell\n    action: notify\n    connector: chat\n",
            Path::new("page.yml"),
            rempart_respond::playbook::CheckContext {
                connectors: &connectors_config,
                default_approval_timeout_secs: 3_600,
            },
        )
        .unwrap();
        let now = Timestamp::now();
        let incident = Incident {
            id: EventId::generate(),
            title: "Connection to port 6666".into(),
            status: rempart_model::IncidentStatus::New,
            severity: rempart_model::IncidentSeverity::High,
            score: 70,
            max_level: rempart_model::IncidentSeverity::High,
            owner: None,
            created: now,
            updated: now,
            first_seen: now,
            last_seen: now,
            alert_count: 1,
            rules: vec!["Connection to port 6666".into()],
            entities: vec![rempart_model::Entity::new(rempart_model::EntityKind::Host, "ws1")],
            techniques: Vec::new(),
            tactics: Vec::new(),
            assets: Vec::new(),
            merged_into: None,
            history: Vec::new(),
            triage: None,
        };
        store
            .incidents_write(IncidentWrite {
                incidents: std::slice::from_ref(&incident),
                links: &[],
                moves: &[],
            })
            .await
            .unwrap();
        let response = Response::new(Parts {
            store: store.clone(),
            incidents,
            ledger,
            connectors: Connectors::new(&connectors_config).unwrap(),
            own_ranges: OwnRanges::default(),
            playbooks: vec![pb],
            inventory: Inventory::default(),
            regulatory: Regulatory::default(),
            backoff: Duration::from_millis(10),
            metrics: Arc::default(),
        });
        (response, store, incident)
    }

    /// A process that claimed a run and died before writing it (the claim is in the store, the
    /// run is not): the next process told of the incident writes the run, under the id every
    /// process derives, and no telling after that starts another.
    #[tokio::test]
    async fn a_run_claimed_by_a_process_that_died_is_started_once() {
        let dir = tempfile::tempdir().unwrap();
        let (response, store, incident) = fixture(dir.path()).await;
        let claimed = store
            .action_begin(&ActionRow {
                key: format!("run:page:{}", incident.id),
                run: incident.id,
                playbook: "page".into(),
                action: "run".into(),
                time: Timestamp::now(),
                outcome: "succeeded".into(),
            })
            .await
            .unwrap();
        assert!(claimed);
        let started = response.on_incident(IncidentEvent::Created(incident.id)).await.unwrap();
        assert_eq!(started.len(), 1, "the claim without a run is made good");
        assert_eq!(started[0].id, incident.id.derive("run:page"));
        for again in [IncidentEvent::Created(incident.id), IncidentEvent::Grown(incident.id)] {
            assert!(response.on_incident(again).await.unwrap().is_empty(), "{again:?}");
        }
        let runs = response.runs(Some(incident.id), None, 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
    }
}

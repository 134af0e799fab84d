//! A playbook run as a state machine: the engine says what to do next ([`Work`]), the caller
//! does it (calls a connector, opens an approval) and reports back. The engine does no I/O and
//! reads no clock; the same run replayed with the same reports reaches the same state.
//!
//! Steps run in order. A step whose `when` does not hold is skipped; a targeted step acts on
//! each of the incident's entities of its kind (at most `limits.max_targets`); targets that
//! need a person wait together in one approval; later steps wait until the step is done.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rempart_model::{ActionKind, EventId, Incident};
use rempart_triage::severity::{Criticality, Inventory};
use serde::{Deserialize, Serialize};

use crate::condition::Facts;
use crate::playbook::{ApprovalRule, CriticalAssets, OnFailure, OnTimeout, Playbook, target_kind};

/// Where an action, or a step as a whole, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ready to run.
    Pending,
    AwaitingApproval,
    Succeeded,
    Failed,
    Rejected,
    TimedOut,
    /// Its condition did not hold, it had no target, or its target was a critical asset the
    /// playbook leaves alone.
    Skipped,
    /// A blast-radius limit stopped it.
    Limited,
    /// Described, not done (dry run).
    DryRun,
    /// Done, then undone by a rollback.
    RolledBack,
}

impl Outcome {
    pub const NAMES: &[&str] = &[
        "succeeded",
        "failed",
        "rejected",
        "timed_out",
        "skipped",
        "limited",
        "dry_run",
        "rolled_back",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::AwaitingApproval => "awaiting_approval",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Rejected => "rejected",
            Outcome::TimedOut => "timed_out",
            Outcome::Skipped => "skipped",
            Outcome::Limited => "limited",
            Outcome::DryRun => "dry_run",
            Outcome::RolledBack => "rolled_back",
        }
    }

    /// Whether nothing more will happen to it (a rollback aside).
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Pending | Outcome::AwaitingApproval)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Rejected,
            Outcome::TimedOut,
            Outcome::Skipped,
            Outcome::Limited,
            Outcome::DryRun,
            Outcome::RolledBack,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("unknown outcome `{s}` (expected {})", Outcome::NAMES.join(", ")))
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Actions are ready to run.
    Running,
    /// An approval is open.
    Waiting,
    /// Every step ran or was skipped.
    Completed,
    /// A step failed and the playbook said stop.
    Failed,
    /// Undoing completed actions after a failure.
    RollingBack,
    RolledBack,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::RollingBack => "rolling_back",
            RunStatus::RolledBack => "rolled_back",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::RolledBack)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action waits for a person, and who may decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub rule: ApprovalRule,
    pub reason: String,
}

/// One action of a run: a step applied to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRun {
    /// Stable across retries and restarts; sent to connectors as the idempotency key.
    pub key: String,
    pub step: String,
    pub action: ActionKind,
    pub connector: Option<String>,
    pub target: Option<String>,
    /// Rendered parameters.
    pub params: BTreeMap<String, String>,
    pub state: Outcome,
    pub gate: Option<Gate>,
    pub approval: Option<EventId>,
    pub attempts: u32,
    /// What the connector answered, or why the action did not run.
    pub detail: String,
    pub time: Option<Timestamp>,
    /// Whether a rollback undid it, and how that went.
    pub undo: Option<Outcome>,
}

/// A run of a playbook on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: EventId,
    pub playbook: String,
    /// SHA-256 of the playbook file the run follows.
    pub digest: String,
    pub incident: EventId,
    /// The verdict the run was started on, if any.
    pub verdict: Option<EventId>,
    /// `created`, `grown`, `triaged` or `manual`.
    pub trigger: String,
    pub requested_by: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub status: RunStatus,
    pub dry_run: bool,
    /// Index of the step being worked on.
    pub next_step: usize,
    /// Whether the step at `next_step` has been expanded into actions.
    pub expanded: bool,
    pub actions: Vec<ActionRun>,
    /// Outcome of each finished step.
    pub outcomes: BTreeMap<String, Outcome>,
    /// What the run decided along the way (targets over the limit, skipped steps).
    pub notes: Vec<String>,
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Run action `index` (or describe it, in a dry run).
    Execute(usize),
    /// Open one approval for these actions of a step.
    Approve {
        step: String,
        actions: Vec<usize>,
        gate: Gate,
    },
    /// Undo action `index`.
    Undo(usize),
}

/// Rate limits across runs: the caller counts what was done in the last hour.
pub trait Budget {
    /// Takes one `action` of `playbook` from a budget of `per_hour`; false when spent.
    fn take(&mut self, playbook: &str, action: ActionKind, per_hour: u32) -> bool;
}

/// A budget that never runs out (dry runs, tests of other things).
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

impl Budget for Unlimited {
    fn take(&mut self, _: &str, _: ActionKind, _: u32) -> bool {
        true
    }
}

/// What the engine reads besides the run: the incident as it is now, and more.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub incident: &'a Incident,
    pub verdict: Option<&'a rempart_model::Verdict>,
    pub inventory: &'a Inventory,
    /// The institution's own addresses, which no action blocks.
    pub own_ranges: &'a crate::connectors::OwnRanges,
}

/// The template values of a run (see [`crate::template::VARIABLES`]), but for `step.id`,
/// `action` and `target`, which each action sets.
pub fn variables(pb: &Playbook, run: &Run, cx: &Context<'_>) -> BTreeMap<&'static str, String> {
    let i = cx.incident;
    let list = |k: rempart_model::EntityKind| {
        i.entities
            .iter()
            .filter(|e| e.kind == k)
            .map(|e| e.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut v = BTreeMap::from([
        ("incident.id", i.id.to_string()),
        ("incident.title", i.title.clone()),
        ("incident.severity", i.severity.to_string()),
        ("incident.status", i.status.to_string()),
        ("incident.score", i.score.to_string()),
        ("incident.hosts", list(rempart_model::EntityKind::Host)),
        ("incident.users", list(rempart_model::EntityKind::User)),
        ("incident.ips", list(rempart_model::EntityKind::Ip)),
        ("incident.techniques", i.techniques.join(", ")),
        ("incident.first_seen", i.first_seen.to_string()),
        ("playbook.id", pb.id.clone()),
        ("playbook.name", pb.name.clone()),
        ("run.id", run.id.to_string()),
    ]);
    if let Some(verdict) = cx.verdict {
        v.insert("verdict.classification", verdict.classification.to_string());
        v.insert("verdict.confidence", format!("{:.2}", verdict.confidence));
        v.insert("verdict.summary", verdict.summary.clone());
    }
    v
}

impl Run {
    /// A run about to start.
    pub fn new(
        id: EventId,
        playbook: &Playbook,
        incident: &Incident,
        trigger: &str,
        requested_by: &str,
        now: Timestamp,
    ) -> Run {
        Run {
            id,
            playbook: playbook.id.clone(),
            digest: playbook.digest.clone(),
            incident: incident.id,
            verdict: incident.triage.as_ref().map(|t| t.verdict),
            trigger: trigger.to_owned(),
            requested_by: requested_by.to_owned(),
            created: now,
            updated: now,
            status: RunStatus::Running,
            dry_run: playbook.dry_run,
            next_step: 0,
            expanded: false,
            actions: Vec::new(),
            outcomes: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// The actions of step `id`, with their indexes.
    pub fn actions_of<'a>(&'a self, step: &'a str) -> impl Iterator<Item = (usize, &'a ActionRun)> + 'a {
        self.actions.iter().enumerate().filter(move |(_, a)| a.step == step)
    }

    /// Records what running action `index` gave.
    pub fn record(&mut self, index: usize, outcome: Outcome, detail: String, attempts: u32, now: Timestamp) {
        if let Some(a) = self.actions.get_mut(index) {
            a.state = outcome;
            a.detail = detail;
            a.attempts = attempts;
            a.time = Some(now);
        }
        self.updated = now;
    }

    /// Records an approval's decision for its actions: approved actions become ready to run;
    /// on a timeout the rule's `on_timeout` decides.
    pub fn decide(&mut self, approval: EventId, decision: Decision, detail: &str, now: Timestamp) {
        for a in self.actions.iter_mut().filter(|a| a.approval == Some(approval)) {
            if a.state != Outcome::AwaitingApproval {
                continue;
            }
            let run_anyway = a.gate.as_ref().is_some_and(|g| g.rule.on_timeout == OnTimeout::Run);
            a.state = match decision {
                Decision::Approved => Outcome::Pending,
                Decision::Rejected => Outcome::Rejected,
                Decision::TimedOut if run_anyway => Outcome::Pending,
                Decision::TimedOut => Outcome::TimedOut,
            };
            a.detail = detail.to_owned();
            a.time = Some(now);
        }
        if self.status == RunStatus::Waiting {
            self.status = RunStatus::Running;
        }
        self.updated = now;
    }

    /// Records an undo of action `index`.
    pub fn record_undo(&mut self, index: usize, ok: bool, detail: String, now: Timestamp) {
        if let Some(a) = self.actions.get_mut(index) {
            a.undo = Some(if ok { Outcome::Succeeded } else { Outcome::Failed });
            if ok {
                a.state = Outcome::RolledBack;
            }
            a.detail = detail;
            a.time = Some(now);
        }
        self.updated = now;
    }
}

/// How an approval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    TimedOut,
}

/// The outcome of a step from its actions' outcomes.
fn step_outcome(actions: &[&ActionRun]) -> Outcome {
    let any = |o: Outcome| actions.iter().any(|a| a.state == o);
    if actions.is_empty() {
        Outcome::Skipped
    } else if any(Outcome::Failed) {
        Outcome::Failed
    } else if any(Outcome::Succeeded) {
        Outcome::Succeeded
    } else if any(Outcome::DryRun) {
        Outcome::DryRun
    } else if any(Outcome::Rejected) {
        Outcome::Rejected
    } else if any(Outcome::TimedOut) {
        Outcome::TimedOut
    } else if any(Outcome::Limited) {
        Outcome::Limited
    } else {
        Outcome::Skipped
    }
}

/// Decides what to do next, moving the run along as far as it can without outside work.
pub fn advance(pb: &Playbook, run: &mut Run, cx: &Context<'_>, budget: &mut dyn Budget) -> Vec<Work> {
    loop {
        match run.status {
            RunStatus::Completed | RunStatus::Failed | RunStatus::RolledBack => return Vec::new(),
            RunStatus::RollingBack => return rollback_work(pb, run),
            RunStatus::Running | RunStatus::Waiting => {}
        }
        let Some(step) = pb.steps.get(run.next_step) else {
            run.status = RunStatus::Completed;
            return Vec::new();
        };
        if !run.expanded {
            expand(pb, run, cx);
            run.expanded = true;
            // Targets that wait for a person wait together, one approval per distinct gate.
            let mut gates: Vec<(Gate, Vec<usize>)> = Vec::new();
            for (i, a) in run.actions_of(&step.id) {
                if a.state != Outcome::AwaitingApproval {
                    continue;
                }
                let Some(g) = &a.gate else { continue };
                match gates.iter_mut().find(|(gate, _)| gate == g) {
                    Some((_, idx)) => idx.push(i),
                    None => gates.push((g.clone(), vec![i])),
                }
            }
            if !gates.is_empty() {
                let mut work: Vec<Work> = gates
                    .into_iter()
                    .map(|(gate, actions)| Work::Approve {
                        step: step.id.clone(),
                        actions,
                        gate,
                    })
                    .collect();
                work.extend(ready(pb, run, &step.id, budget));
                run.status = RunStatus::Waiting;
                return work;
            }
        }
        let work = ready(pb, run, &step.id, budget);
        if !work.is_empty() {
            run.status = RunStatus::Running;
            return work;
        }
        let actions: Vec<&ActionRun> = run.actions_of(&step.id).map(|(_, a)| a).collect();
        if actions.iter().any(|a| a.state == Outcome::AwaitingApproval) {
            run.status = RunStatus::Waiting;
            return Vec::new();
        }
        // Every action of the step is final.
        let outcome = if actions.is_empty() {
            run.outcomes.get(&step.id).copied().unwrap_or(Outcome::Skipped)
        } else {
            step_outcome(&actions)
        };
        run.outcomes.insert(step.id.clone(), outcome);
        run.next_step += 1;
        run.expanded = false;
        if outcome == Outcome::Failed {
            match step.on_failure {
                OnFailure::Continue => {}
                OnFailure::Stop => {
                    run.notes.push(format!("step `{}` failed: the run stops", step.id));
                    run.status = RunStatus::Failed;
                    return Vec::new();
                }
                OnFailure::Rollback => {
                    run.notes
                        .push(format!("step `{}` failed: completed actions are undone", step.id));
                    run.status = RunStatus::RollingBack;
                    return rollback_work(pb, run);
                }
            }
        }
    }
}

/// Actions of `step` ready to run, within the hourly limits.
fn ready(pb: &Playbook, run: &mut Run, step: &str, budget: &mut dyn Budget) -> Vec<Work> {
    let mut out = Vec::new();
    for i in 0..run.actions.len() {
        let a = &run.actions[i];
        if a.step != step || a.state != Outcome::Pending {
            continue;
        }
        if !run.dry_run
            && let Some(limit) = pb.limits.per_hour.get(&a.action)
            && !budget.take(&pb.id, a.action, *limit)
        {
            let a = &mut run.actions[i];
            a.state = Outcome::Limited;
            a.detail = format!(
                "limit reached: at most {limit} `{}` per hour for this playbook",
                a.action
            );
            continue;
        }
        out.push(Work::Execute(i));
    }
    out
}

fn rollback_work(pb: &Playbook, run: &mut Run) -> Vec<Work> {
    let undo: Vec<Work> = run
        .actions
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, a)| {
            a.state == Outcome::Succeeded && a.undo.is_none() && pb.step(&a.step).is_some_and(|s| s.rollback)
        })
        .map(|(i, _)| Work::Undo(i))
        .take(1)
        .collect();
    if undo.is_empty() {
        run.status = RunStatus::RolledBack;
    }
    undo
}

/// Turns the step at `run.next_step` into actions.
fn expand(pb: &Playbook, run: &mut Run, cx: &Context<'_>) {
    let Some(step) = pb.steps.get(run.next_step) else {
        return;
    };
    let assets: Vec<_> = cx
        .incident
        .entities
        .iter()
        .filter_map(|e| cx.inventory.lookup(e))
        .collect();
    let facts = Facts {
        incident: cx.incident,
        verdict: cx.verdict,
        assets: &assets,
        outcomes: &run.outcomes,
    };
    if let Some(w) = &step.when
        && !w.holds(&facts)
    {
        run.notes
            .push(format!("step `{}` skipped: its condition does not hold", step.id));
        run.outcomes.insert(step.id.clone(), Outcome::Skipped);
        return;
    }
    let targets: Vec<Option<String>> = match target_kind(step.action) {
        None => vec![None],
        Some(kind) => {
            let (excluded, all): (Vec<&str>, Vec<&str>) = cx
                .incident
                .entities
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.value.as_str())
                .partition(|v| step.exclude.iter().any(|x| x.matches(v)));
            if !excluded.is_empty() {
                run.notes.push(format!(
                    "step `{}`: left alone by its exclude list: {}",
                    step.id,
                    excluded.join(", ")
                ));
            }
            if all.len() > pb.limits.max_targets {
                run.notes.push(format!(
                    "step `{}`: {} {kind} targets, acting on the first {} (limits.max_targets); left: {}",
                    step.id,
                    all.len(),
                    pb.limits.max_targets,
                    all[pb.limits.max_targets..].join(", ")
                ));
            }
            if all.is_empty() {
                run.notes
                    .push(format!("step `{}` skipped: the incident has no {kind}", step.id));
            }
            all.into_iter()
                .take(pb.limits.max_targets)
                .map(|v| Some(v.to_owned()))
                .collect()
        }
    };
    let mut vars = variables(pb, run, cx);
    vars.insert("step.id", step.id.clone());
    vars.insert("action", step.action.as_str().to_owned());
    for target in targets {
        let critical = target.as_ref().and_then(|t| {
            let kind = target_kind(step.action)?;
            let m = cx.inventory.lookup(&rempart_model::Entity::new(kind, t.clone()))?;
            (m.criticality == Criticality::Critical).then(|| m.describe())
        });
        vars.insert("target", target.clone().unwrap_or_default());
        let params = step.with.iter().map(|(k, t)| (k.clone(), t.render(&vars))).collect();
        let mut state = Outcome::Pending;
        let mut detail = String::new();
        let mut gate = step.approval.clone().map(|rule| Gate {
            reason: format!("step `{}` of playbook `{}` asks for approval", step.id, pb.id),
            rule,
        });
        if let Some(c) = &critical {
            match pb.limits.critical_assets {
                CriticalAssets::Skip => {
                    state = Outcome::Skipped;
                    detail = format!("{c} is a critical asset; this playbook leaves those alone");
                }
                CriticalAssets::Approval => {
                    let mut rule = gate.as_ref().map_or_else(
                        || ApprovalRule {
                            role: "approver".into(),
                            approvers: 1,
                            timeout_secs: 3_600,
                            on_timeout: OnTimeout::Reject,
                        },
                        |g| g.rule.clone(),
                    );
                    // A critical asset is never acted on by default.
                    rule.on_timeout = OnTimeout::Reject;
                    gate = Some(Gate {
                        rule,
                        reason: format!("{c} is a critical asset"),
                    });
                }
            }
        }
        // A target no action may take (the metadata address, one of the institution's own, a
        // name with shell syntax) is skipped here, before any approval is asked for it or any
        // hourly limit counts it.
        if let (Some(t), Some(kind)) = (&target, target_kind(step.action))
            && let Err(e) = crate::connectors::check_target(kind, t).and_then(|t| cx.own_ranges.check(step.action, &t))
        {
            state = Outcome::Skipped;
            detail = e.to_string();
        }
        if state == Outcome::Pending && gate.is_some() && !run.dry_run {
            state = Outcome::AwaitingApproval;
        }
        run.actions.push(ActionRun {
            key: format!("{}:{}:{}", run.id, step.id, target.as_deref().unwrap_or("-")),
            step: step.id.clone(),
            action: step.action,
            connector: step.connector.clone(),
            target,
            params,
            state,
            gate: if state == Outcome::Skipped { None } else { gate },
            approval: None,
            attempts: 0,
            detail,
            time: None,
            undo: None,
        });
    }
}

//! Playbooks: a trigger, steps and limits, read from YAML and checked against the configured
//! connectors before anything runs.
//!
//! ```yaml
//! id: contain-c2
//! name: Contain command-and-control
//! trigger:
//!   on: [triaged]
//!   when: { severity: high, classification: true_positive, confidence: 0.8 }
//! limits: { max_targets: 5, per_hour: { block_ip: 20 } }
//! steps:
//!   - id: page
//!     action: notify
//!     connector: soc-chat
//!     with: { message: "{{ incident.severity }} incident {{ incident.id }}: {{ incident.title }}" }
//!   - id: block
//!     action: block_ip
//!     connector: firewall
//!     approval: { role: approver, approvers: 1, timeout: 30m, on_timeout: reject }
//!     rollback: true
//! ```
//!
//! A high-impact action ([`high_impact`]) needs an `approval` block, or an explicit
//! `approval: none`; a target that is an asset of critical criticality always waits for a
//! person unless the playbook says to skip such targets. The targets of an action are the
//! incident's own entities of the action's kind, never values from a model's verdict.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rempart_config::{Connector, ConnectorKind};
use rempart_model::{ActionKind, EntityKind};
use serde::Deserialize;
use sha2::Digest;

use crate::condition::{Condition, OneOrMany, RawCondition};
use crate::duration;
use crate::template::Template;

/// Most steps in one playbook.
pub const MAX_STEPS: usize = 64;
/// Largest playbook file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Whether an action changes the environment in a way that hurts if it is wrong.
pub fn high_impact(action: ActionKind) -> bool {
    !matches!(
        action,
        ActionKind::Notify | ActionKind::CreateTicket | ActionKind::Monitor | ActionKind::CollectForensics
    )
}

/// The kind of entity an action applies to; `None` for actions without a target.
pub fn target_kind(action: ActionKind) -> Option<EntityKind> {
    match action {
        ActionKind::BlockIp => Some(EntityKind::Ip),
        ActionKind::BlockDomain => Some(EntityKind::Domain),
        ActionKind::IsolateHost | ActionKind::CollectForensics => Some(EntityKind::Host),
        ActionKind::DisableAccount | ActionKind::ResetCredentials => Some(EntityKind::User),
        ActionKind::KillProcess => Some(EntityKind::Process),
        ActionKind::QuarantineFile => Some(EntityKind::Hash),
        ActionKind::Notify | ActionKind::CreateTicket | ActionKind::Monitor | ActionKind::CloseIncident => None,
    }
}

/// Whether the action can be undone, and so whether `rollback: true` means anything.
pub fn reversible(action: ActionKind) -> bool {
    matches!(
        action,
        ActionKind::BlockIp | ActionKind::BlockDomain | ActionKind::IsolateHost | ActionKind::DisableAccount
    )
}

/// Whether `connector` can carry `action`; `None` when it can, else why not.
pub fn supports(connector: &Connector, action: ActionKind) -> Option<String> {
    use ActionKind as A;
    let ok = match &connector.kind {
        ConnectorKind::Webhook { .. } => true,
        ConnectorKind::Chat { .. } | ConnectorKind::Smtp { .. } => action == A::Notify,
        ConnectorKind::Command { actions, .. } => actions.contains_key(action.as_str()),
        ConnectorKind::Edr { .. } => matches!(
            action,
            A::IsolateHost | A::KillProcess | A::QuarantineFile | A::CollectForensics
        ),
        ConnectorKind::Ticket { .. } => action == A::CreateTicket,
        ConnectorKind::Directory { .. } => matches!(action, A::DisableAccount | A::ResetCredentials),
    };
    if ok {
        None
    } else if let ConnectorKind::Command { actions, .. } = &connector.kind {
        Some(format!(
            "connector `{}` (command) has no arguments for `{action}` (it has {})",
            connector.name,
            actions.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    } else {
        Some(format!(
            "connector `{}` ({}) cannot {action}",
            connector.name,
            connector.kind.type_name()
        ))
    }
}

/// What makes a playbook consider an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOn {
    /// An incident was opened.
    Created,
    /// An open incident gained alerts.
    Grown,
    /// An incident received a verdict.
    Triaged,
}

impl TriggerOn {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerOn::Created => "created",
            TriggerOn::Grown => "grown",
            TriggerOn::Triaged => "triaged",
        }
    }
}

/// When a playbook runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub on: Vec<TriggerOn>,
    pub when: Condition,
}

/// What happens when an approval is not given in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The step does not run (its outcome is `timed_out`).
    Reject,
    /// The step runs anyway (never for a critical asset).
    Run,
}

/// Who must approve a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ApprovalRule {
    /// The least role an approver needs: `approver` or `admin`.
    pub role: String,
    /// How many distinct people must approve (none of them the requester).
    pub approvers: u32,
    pub timeout_secs: u64,
    pub on_timeout: OnTimeout,
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The run stops; completed actions stay.
    Stop,
    /// The next steps run (they may branch on this step's outcome).
    Continue,
    /// The run stops and undoes its completed reversible actions, newest first.
    Rollback,
}

/// What to do with a target that is a critical asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticalAssets {
    /// Wait for a person, even where the step needs no approval otherwise.
    Approval,
    /// Leave critical assets alone.
    Skip,
}

/// Blast-radius limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most targets one step acts on; further targets are skipped and listed.
    pub max_targets: usize,
    /// Most actions of a kind this playbook performs per rolling hour, across all its runs.
    pub per_hour: BTreeMap<ActionKind, u32>,
    /// Most runs this playbook starts per rolling hour.
    pub runs_per_hour: u32,
    pub critical_assets: CriticalAssets,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub action: ActionKind,
    /// The connector that carries the action; `None` for actions Rempart does itself
    /// (`monitor`, `close_incident`).
    pub connector: Option<String>,
    /// Parameters, templated.
    pub with: BTreeMap<String, Template>,
    /// The step runs only if this holds (evaluated when the step is reached).
    pub when: Option<Condition>,
    /// `None`: no approval (only allowed for high-impact actions when written `approval: none`).
    pub approval: Option<ApprovalRule>,
    /// Further attempts after a failed one.
    pub retries: u32,
    pub on_failure: OnFailure,
    /// Undo this step's actions when the run rolls back.
    pub rollback: bool,
    /// Targets never acted on (addresses or CIDR blocks for `block_ip`, name globs otherwise).
    pub exclude: Vec<TargetPattern>,
}

/// A target a step leaves alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPattern {
    Net(std::net::IpAddr, u8),
    /// Lower-case glob with `*`.
    Name(String),
}

impl TargetPattern {
    fn parse(s: &str, kind: Option<EntityKind>) -> Result<TargetPattern, String> {
        if kind == Some(EntityKind::Ip) {
            let (addr, bits) = s.split_once('/').map_or((s, None), |(a, b)| (a, Some(b)));
            let addr: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("`{s}` is not an address or CIDR block"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{s}`: bad prefix length"))?,
            };
            Ok(TargetPattern::Net(addr, bits))
        } else if s.is_empty() {
            Err("empty pattern".into())
        } else {
            Ok(TargetPattern::Name(s.to_ascii_lowercase()))
        }
    }

    /// Whether `target` matches.
    pub fn matches(&self, target: &str) -> bool {
        match self {
            TargetPattern::Net(net, bits) => target
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| rempart_triage::severity::in_net(a, *net, *bits)),
            TargetPattern::Name(p) => rempart_triage::severity::glob(p, target),
        }
    }
}

/// A checked playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// Describe what would run instead of running it.
    pub dry_run: bool,
    pub trigger: Trigger,
    pub limits: Limits,
    pub steps: Vec<Step>,
    /// The file it was read from.
    pub source: PathBuf,
    /// SHA-256 of the file's text, recorded with every run.
    pub digest: String,
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// One problem in a playbook, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `steps[1].approval.role`; empty for the whole file.
    pub path: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.line, self.path.is_empty()) {
            (Some(l), true) => write!(f, "line {l}: {}", self.message),
            (Some(l), false) => write!(f, "line {l}: {}: {}", self.path, self.message),
            (None, true) => f.write_str(&self.message),
            (None, false) => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Problems gathered while checking, all reported at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, path: String, message: String) {
        self.0.push(Problem {
            path,
            line: None,
            message,
        });
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

/// A playbook file that did not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", file.display(), problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PlaybookError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: String,
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    dry_run: Option<bool>,
    trigger: RawTrigger,
    limits: Option<RawLimits>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    on: Option<OneOrMany<TriggerOn>>,
    when: Option<RawCondition>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_targets: Option<u32>,
    per_hour: Option<BTreeMap<ActionKind, u32>>,
    runs_per_hour: Option<u32>,
    critical_assets: Option<CriticalAssets>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    action: ActionKind,
    connector: Option<String>,
    with: Option<BTreeMap<String, String>>,
    when: Option<RawCondition>,
    approval: Option<RawApproval>,
    retries: Option<u32>,
    on_failure: Option<OnFailure>,
    rollback: Option<bool>,
    exclude: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawApproval {
    /// `approval: none`
    Word(String),
    Rule {
        role: Option<String>,
        approvers: Option<u32>,
        timeout: Option<String>,
        on_timeout: Option<OnTimeout>,
    },
}

const ROLES: &[&str] = &["approver", "admin"];

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Where checking looks things up.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    pub connectors: &'a BTreeMap<String, Connector>,
    /// Approval timeout when a playbook gives none.
    pub default_approval_timeout_secs: u64,
}

/// Parses and checks playbook text; `file` names it in problems.
pub fn parse(text: &str, file: &Path, cx: CheckContext<'_>) -> Result<Playbook, PlaybookError> {
    let fail = |problems: Vec<Problem>| PlaybookError {
        file: file.to_path_buf(),
        problems,
    };
    let raw: RawPlaybook = yaml_serde::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        // The library's message repeats the position; keep the reason.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        fail(vec![Problem {
            path: String::new(),
            line,
            message: msg,
        }])
    })?;
    let mut p = Problems::default();
    let pb = check(raw, &mut p, cx);
    let mut problems = p.into_vec();
    if problems.is_empty() {
        let mut pb = pb;
        pb.source = file.to_path_buf();
        pb.digest = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        Ok(pb)
    } else {
        for pr in &mut problems {
            pr.line = line_of(text, &pr.path);
        }
        Err(fail(problems))
    }
}

/// The line a key path (`steps[2].approval.role`, `trigger.when.severity`) points at: each
/// segment is looked for inside the block of the one before, as a `key:` line or a list item;
/// a key inside a flow mapping (`when: { severity: … }`) resolves to that mapping's line.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let content = |l: &str| {
        let t = l.trim_start();
        !(t.is_empty() || t.starts_with('#'))
    };
    // The current block's head: (line index, indentation, is a list item); None: the document.
    let mut head: Option<(usize, usize, bool)> = None;
    for seg in path.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let inside = |i: usize, l: &str| match head {
            None => true,
            Some((hi, hind, item)) => {
                let ind = indent_of(l);
                i == hi || ind > hind || (!item && ind == hind && l.trim_start().starts_with("- "))
            }
        };
        let key_at = |l: &str, own: bool| {
            let t = l.trim_start();
            let t = t.strip_prefix("- ").unwrap_or(t);
            (own && t.starts_with(key) && t[key.len()..].starts_with(':'))
                || l.contains(&format!("{{ {key}:"))
                || l.contains(&format!(", {key}:"))
        };
        let start = head.map_or(0, |(i, _, _)| i);
        let mut found = None;
        for (i, l) in lines.iter().enumerate().skip(start) {
            if !content(l) {
                continue;
            }
            if !inside(i, l) {
                break;
            }
            let own = match head {
                None => true,
                Some((hi, _, item)) => i != hi || item,
            };
            if key_at(l, own) {
                found = Some((i, indent_of(l), false));
                break;
            }
        }
        // A key that is missing is reported at its block.
        let Some((line, ind, _)) = found else {
            return head.map(|(i, _, _)| i + 1);
        };
        head = Some((line, ind, false));
        if let Some(n) = index {
            let mut seen = 0;
            for (i, l) in lines.iter().enumerate().skip(line + 1) {
                if !content(l) {
                    continue;
                }
                let (li, t) = (indent_of(l), l.trim_start());
                if li < ind || (li == ind && !t.starts_with("- ")) {
                    break;
                }
                if t.starts_with("- ") {
                    if seen == n {
                        head = Some((i, li, true));
                        break;
                    }
                    seen += 1;
                }
            }
        }
    }
    head.map(|(i, _, _)| i + 1)
}

fn check(raw: RawPlaybook, p: &mut Problems, cx: CheckContext<'_>) -> Playbook {
    if !valid_id(&raw.id) {
        p.push(
            "id".into(),
            format!("`{}`: an id is 1 to 64 lower-case letters, digits, `-` or `_`", raw.id),
        );
    }
    let on = raw
        .trigger
        .on
        .map(OneOrMany::into_vec)
        .unwrap_or_else(|| vec![TriggerOn::Triaged]);
    if on.is_empty() {
        p.push("trigger.on".into(), "empty: name created, grown or triaged".into());
    }
    let when = raw
        .trigger
        .when
        .map(|c| c.validate("trigger.when", p))
        .unwrap_or(Condition::All(Vec::new()));
    let mut outcomes_read = Vec::new();
    when.steps_read(&mut outcomes_read);
    if !outcomes_read.is_empty() {
        p.push(
            "trigger.when.outcome".into(),
            "a trigger cannot depend on step outcomes (no step has run yet)".into(),
        );
    }
    let rl = raw.limits.unwrap_or_default();
    let limits = Limits {
        max_targets: rl.max_targets.map_or(10, |n| n as usize),
        per_hour: rl.per_hour.unwrap_or_default(),
        runs_per_hour: rl.runs_per_hour.unwrap_or(60),
        critical_assets: rl.critical_assets.unwrap_or(CriticalAssets::Approval),
    };
    if limits.max_targets == 0 {
        p.push("limits.max_targets".into(), "0: a step would never act".into());
    }
    if raw.steps.is_empty() {
        p.push("steps".into(), "empty: a playbook needs at least one step".into());
    }
    if raw.steps.len() > MAX_STEPS {
        p.push(
            "steps".into(),
            format!("{} steps; at most {MAX_STEPS}", raw.steps.len()),
        );
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::new();
    for (i, s) in raw.steps.into_iter().enumerate() {
        let path = format!("steps[{i}]");
        if !valid_id(&s.id) {
            p.push(
                format!("{path}.id"),
                format!("`{}`: an id is 1 to 64 lower-case letters, digits, `-` or `_`", s.id),
            );
        }
        if !seen.insert(s.id.clone()) {
            p.push(format!("{path}.id"), format!("`{}` is used by an earlier step", s.id));
        }
        let when = s.when.map(|c| c.validate(&format!("{path}.when"), p));
        if let Some(w) = &when {
            let mut read = Vec::new();
            w.steps_read(&mut read);
            for r in read {
                // Only earlier steps have outcomes when this one is reached.
                if r == s.id || !seen.contains(&r) {
                    p.push(
                        format!("{path}.when.outcome.{r}"),
                        format!("`{r}` is not an earlier step: a step can only branch on steps before it"),
                    );
                }
            }
        }
        let connector = match (&s.connector, s.action) {
            (None, ActionKind::Monitor | ActionKind::CloseIncident) => None,
            (Some(c), ActionKind::Monitor | ActionKind::CloseIncident) => {
                p.push(
                    format!("{path}.connector"),
                    format!("`{}` is done by Rempart itself: remove connector `{c}`", s.action),
                );
                None
            }
            (None, a) => {
                p.push(
                    format!("{path}.connector"),
                    format!("missing: name the connector that carries `{a}`"),
                );
                None
            }
            (Some(c), a) => {
                match cx.connectors.get(c) {
                    None => p.push(
                        format!("{path}.connector"),
                        format!(
                            "`{c}` is not configured (configured: {})",
                            if cx.connectors.is_empty() {
                                "none; add [connectors.NAME] to the configuration".to_owned()
                            } else {
                                cx.connectors.keys().cloned().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    ),
                    Some(conn) => {
                        if let Some(why) = supports(conn, a) {
                            p.push(format!("{path}.connector"), why);
                        }
                    }
                }
                Some(c.clone())
            }
        };
        let mut with = BTreeMap::new();
        for (k, v) in s.with.unwrap_or_default() {
            match Template::parse(&v) {
                Ok(t) => {
                    with.insert(k, t);
                }
                Err(e) => p.push(format!("{path}.with.{k}"), e),
            }
        }
        let approval = match s.approval {
            None => {
                if high_impact(s.action) {
                    p.push(
                        format!("{path}.approval"),
                        format!(
                            "`{}` is a high-impact action: give an approval block, or write `approval: none` to run it unattended",
                            s.action
                        ),
                    );
                }
                None
            }
            Some(RawApproval::Word(w)) if w == "none" => None,
            Some(RawApproval::Word(w)) => {
                p.push(
                    format!("{path}.approval"),
                    format!("`{w}`: write `none` or an approval block"),
                );
                None
            }
            Some(RawApproval::Rule {
                role,
                approvers,
                timeout,
                on_timeout,
            }) => {
                let role = role.unwrap_or_else(|| "approver".into());
                if !ROLES.contains(&role.as_str()) {
                    p.push(
                        format!("{path}.approval.role"),
                        format!("`{role}` is not approver or admin"),
                    );
                }
                let approvers = approvers.unwrap_or(1);
                if !(1..=5).contains(&approvers) {
                    p.push(
                        format!("{path}.approval.approvers"),
                        format!("{approvers} is outside 1 to 5"),
                    );
                }
                let timeout_secs = match timeout.as_deref().map(duration::parse) {
                    None => cx.default_approval_timeout_secs,
                    Some(Ok(d)) if d >= Duration::from_secs(1) && d <= Duration::from_secs(30 * 86_400) => d.as_secs(),
                    Some(Ok(_)) => {
                        p.push(format!("{path}.approval.timeout"), "must be between 1s and 30d".into());
                        cx.default_approval_timeout_secs
                    }
                    Some(Err(e)) => {
                        p.push(format!("{path}.approval.timeout"), e);
                        cx.default_approval_timeout_secs
                    }
                };
                Some(ApprovalRule {
                    role,
                    approvers,
                    timeout_secs,
                    on_timeout: on_timeout.unwrap_or(OnTimeout::Reject),
                })
            }
        };
        let rollback = s.rollback.unwrap_or(false);
        if rollback && !reversible(s.action) {
            p.push(
                format!("{path}.rollback"),
                format!(
                    "`{}` cannot be undone (reversible: block_ip, block_domain, isolate_host, disable_account)",
                    s.action
                ),
            );
        }
        let mut exclude = Vec::new();
        let kind = target_kind(s.action);
        for (j, e) in s.exclude.unwrap_or_default().iter().enumerate() {
            if kind.is_none() {
                p.push(
                    format!("{path}.exclude"),
                    format!("`{}` has no targets to exclude", s.action),
                );
                break;
            }
            match TargetPattern::parse(e, kind) {
                Ok(t) => exclude.push(t),
                Err(m) => p.push(format!("{path}.exclude[{j}]"), m),
            }
        }
        let retries = s.retries.unwrap_or(2);
        if retries > 10 {
            p.push(format!("{path}.retries"), format!("{retries} is more than 10"));
        }
        steps.push(Step {
            id: s.id,
            action: s.action,
            connector,
            with,
            when,
            approval,
            retries,
            on_failure: s.on_failure.unwrap_or(OnFailure::Stop),
            rollback,
            exclude,
        });
    }
    for a in limits.per_hour.keys() {
        if !steps.iter().any(|s| s.action == *a) {
            p.push(
                format!("limits.per_hour.{a}"),
                format!("no step of this playbook does `{a}`"),
            );
        }
    }
    Playbook {
        name: raw.name.unwrap_or_else(|| raw.id.clone()),
        id: raw.id,
        description: raw.description.unwrap_or_default(),
        enabled: raw.enabled.unwrap_or(true),
        dry_run: raw.dry_run.unwrap_or(false),
        trigger: Trigger { on, when },
        limits,
        steps,
        source: PathBuf::new(),
        digest: String::new(),
    }
}

/// Reads one playbook file (at most [`MAX_FILE_BYTES`]).
pub fn load_file(path: &Path, cx: CheckContext<'_>) -> Result<Playbook, PlaybookError> {
    let fail = |message: String| PlaybookError {
        file: path.to_path_buf(),
        problems: vec![Problem {
            path: String::new(),
            line: None,
            message,
        }],
    };
    let len = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(fail(format!("{len} bytes; a playbook is at most {MAX_FILE_BYTES}")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    parse(&text, path, cx)
}

/// Reads every `.yml`/`.yaml` file under `paths` (files or folders), in name order. Playbooks
/// that do not check are returned beside the good ones, never dropped; two playbooks with one
/// id are both an error.
pub fn load_all(paths: &[PathBuf], cx: CheckContext<'_>) -> (Vec<Playbook>, Vec<PlaybookError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect(p, &mut files, &mut errors);
    }
    files.sort();
    let mut good: Vec<Playbook> = Vec::new();
    for f in files {
        match load_file(&f, cx) {
            Ok(pb) => {
                if let Some(first) = good.iter().find(|g| g.id == pb.id) {
                    errors.push(PlaybookError {
                        file: f.clone(),
                        problems: vec![Problem {
                            path: "id".into(),
                            line: None,
                            message: format!("`{}` is also the id of {}", pb.id, first.source.display()),
                        }],
                    });
                } else {
                    good.push(pb);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (good, errors)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<PlaybookError>) {
    if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        collect(&p, files, errors);
                    } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                        files.push(p);
                    }
                }
            }
            Err(e) => errors.push(PlaybookError {
                file: path.to_path_buf(),
                problems: vec![Problem {
                    path: String::new(),
                    line: None,
                    message: format!("cannot read the folder: {e}"),
                }],
            }),
        }
    } else {
        files.push(path.to_path_buf());
    }
}

impl Playbook {
    /// What people see of a playbook: its trigger, steps, approvals and limits.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "dry_run": self.dry_run,
            "trigger": self.trigger.on.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "steps": self.steps.iter().map(|s| serde_json::json!({
                "id": s.id,
                "action": s.action,
                "connector": s.connector,
                "high_impact": high_impact(s.action),
                "conditional": s.when.is_some(),
                "approval": s.approval,
                "on_failure": s.on_failure,
                "rollback": s.rollback,
            })).collect::<Vec<_>>(),
            "limits": {
                "max_targets": self.limits.max_targets,
                "per_hour": self.limits.per_hour,
                "runs_per_hour": self.limits.runs_per_hour,
                "critical_assets": self.limits.critical_assets,
            },
            "source": self.source,
            "digest": self.digest,
        })
    }
}

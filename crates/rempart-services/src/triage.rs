//! Triage of incidents: the agent of `rempart-triage` wired to the sovereignty gateway (the
//! model), the store, the intelligence index and the rules (its read-only tools), the ledger
//! (every verdict recorded) and the incident service. Runs on demand and, for new or grown
//! incidents, automatically within an hourly budget.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rempart_audit::{Ledger, kind};
use rempart_detect::AttackCatalog;
use rempart_gateway::{Call, Caller, Format, Gateway, GatewayError};
use rempart_model::{
    Alert, DataClass, EntityKind, Event, EventId, Incident, IncidentSeverity, TriageMode, TriageState, Verdict,
};
use rempart_store::{AlertQuery, EventQuery, FieldFilter, IncidentQuery, Store};
use rempart_triage::agent::{self, BoxFuture, Job, Limits, Model, ModelError, Reply, ToolOutput, Tools};
use rempart_triage::context::{self, EntityHistory, Material, TechniqueNote};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::active::{ActiveIntel, ActiveRules};
use crate::incidents::{IncidentError, Incidents};
use crate::metrics::Metrics;

/// The gateway client name of the triage agent: `[gateway.clients.triage]` sets its class,
/// routes and quotas like any other client's.
pub const CLIENT: &str = "triage";
/// Days of entity history given with an incident.
const HISTORY_DAYS: u32 = 7;
/// Most entities whose history is given.
const HISTORY_ENTITIES: usize = 4;

/// What triage works with, taken from the process that runs it.
#[derive(Debug, Clone)]
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub ledger: Ledger,
    pub gateway: Option<Gateway>,
    pub privacy: Option<Arc<rempart_privacy::Privacy>>,
    pub intel: ActiveIntel,
    pub rules: ActiveRules,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Inner {
    incidents: Incidents,
    store: Arc<dyn Store>,
    ledger: Ledger,
    gateway: Option<Gateway>,
    privacy: Option<Arc<rempart_privacy::Privacy>>,
    intel: ActiveIntel,
    rules: ActiveRules,
    attack: Option<Arc<AttackCatalog>>,
    config: rempart_config::Triage,
    metrics: Arc<Metrics>,
    /// Automatic model triages started in the last hour.
    started: Mutex<VecDeque<Instant>>,
    /// When a degraded incident was last retried with a model.
    retried: Mutex<HashMap<EventId, Instant>>,
    /// The route in force (`[triage] route`, or one promoted since), and when it was read.
    route: Mutex<(String, Option<Instant>)>,
}

/// The state that holds the route promoted for triage (`rempart triage promote`).
pub const PROMOTED_ROUTE: &str = "triage-route";

/// How long the route in force is trusted before it is read again: a promotion reaches every
/// process within this.
const ROUTE_TTL: Duration = Duration::from_secs(5);

/// The triage service.
#[derive(Debug, Clone)]
pub struct Triage {
    inner: Arc<Inner>,
}

/// Whether a recorded verdict marks the incident.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// It is the incident's verdict; `held` names a model's verdict waiting for a person.
    InForce { held: Option<EventId> },
    /// Stored and recorded, waiting for an analyst.
    Held,
}

/// The incident's triage state for verdict `v`.
fn state_of(v: &Verdict, held: Option<EventId>) -> TriageState {
    TriageState {
        verdict: v.id,
        time: v.created,
        mode: v.mode,
        classification: v.classification,
        stale: false,
        flags: v.flags.clone(),
        confidence: Some((v.confidence.clamp(0.0, 1.0) * 100.0).round() as u8),
        held,
    }
}

/// How a triage is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Store the deterministic verdict if no model answers.
    Always,
    /// A retry of a degraded incident: store nothing unless a model answers.
    OnlyModel,
}

impl Triage {
    /// From what a process runs (its store, ledger, gateway, privacy engine, intel and rules).
    pub fn new(
        parts: Parts,
        incidents: Incidents,
        attack: Option<Arc<AttackCatalog>>,
        config: rempart_config::Triage,
    ) -> Triage {
        Triage {
            inner: Arc::new(Inner {
                incidents,
                store: parts.store,
                ledger: parts.ledger,
                gateway: parts.gateway,
                privacy: parts.privacy,
                intel: parts.intel,
                rules: parts.rules,
                attack,
                metrics: parts.metrics,
                started: Mutex::default(),
                retried: Mutex::default(),
                route: Mutex::new((config.route.clone(), None)),
                config,
            }),
        }
    }

    /// Whether a model route is configured (else every verdict is degraded).
    pub fn has_model(&self) -> bool {
        let route = self.route();
        self.inner
            .gateway
            .as_ref()
            .is_some_and(|g| g.is_configured() && g.models(&caller()).iter().any(|m| route_name(m) == route))
    }

    /// The route that triages: the one promoted last (`rempart triage promote`), else
    /// `[triage] route`.
    pub fn route(&self) -> String {
        self.inner
            .route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Reads the promoted route again when the one held is older than a few seconds.
    async fn refresh_route(&self) {
        let due = {
            let held = self.inner.route.lock().unwrap_or_else(PoisonError::into_inner);
            held.1.is_none_or(|t| t.elapsed() >= ROUTE_TTL)
        };
        if !due {
            return;
        }
        let route = match self.inner.store.state_get(PROMOTED_ROUTE).await {
            Ok(Some(v)) => v["route"].as_str().map(str::to_owned),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the promoted triage route; keeping the one in force");
                return;
            }
        };
        let route = route.unwrap_or_else(|| self.inner.config.route.clone());
        let mut held = self.inner.route.lock().unwrap_or_else(PoisonError::into_inner);
        if held.0 != route && held.1.is_some() {
            tracing::info!(route = %route, previous = %held.0, "triage route promoted");
        }
        *held = (route, Some(Instant::now()));
    }

    /// The verdict without a model, and what the institution declared: an incident wholly
    /// inside a declared penetration test, scan or change is benign, with its ticket.
    fn deterministic(&self, incident: &Incident, alerts: &[Alert], flags: Vec<String>) -> Verdict {
        let mut v = rempart_triage::verdict::degraded(incident, alerts, flags, Timestamp::now());
        if let Some(d) = rempart_triage::verdict::declared(incident, alerts, &self.inner.config.declared) {
            rempart_triage::verdict::within_declared(&mut v, d);
        }
        v
    }

    /// Triages an incident now; `actor` is who asked (`triage` when automatic).
    pub async fn triage(&self, id: EventId, actor: &str) -> Result<Verdict, IncidentError> {
        self.run(id, actor, Fallback::Always)
            .await?
            .ok_or_else(|| IncidentError::Invalid(format!("incident {id} got no verdict")))
    }

    async fn run(&self, id: EventId, actor: &str, fallback: Fallback) -> Result<Option<Verdict>, IncidentError> {
        let incident = self.inner.incidents.get(id).await?;
        if incident.merged_into.is_some() {
            return Err(IncidentError::Invalid(format!(
                "incident {id} was merged into {}: triage that one",
                incident.merged_into.map(|m| m.to_string()).unwrap_or_default()
            )));
        }
        self.refresh_route().await;
        let (alerts, ctx, class) = self.prepare(&incident).await?;
        // The most restricted class of the events the model sees, raised by every event a tool
        // returns: the gateway's policy decides by it which providers may take the request.
        let class = std::sync::Mutex::new(class);
        let mut flags: Vec<String> = Vec::new();
        let signs = ctx.injection.clone();
        if !signs.is_empty() {
            flags.push("prompt_injection_suspected".into());
        }
        let outcome = if self.has_model() {
            let job = Job {
                incident: id,
                route: self.route(),
                context: ctx,
                limits: Limits {
                    max_steps: self.inner.config.max_steps,
                    max_tokens: self.inner.config.max_tokens,
                },
            };
            let model = GatewayModel {
                gateway: self.inner.gateway.clone(),
                class: &class,
            };
            let tools = StoreTools {
                inner: &self.inner,
                class: &class,
            };
            match tokio::time::timeout(
                Duration::from_secs(self.inner.config.timeout_secs),
                agent::run(&model, &tools, job),
            )
            .await
            {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(f)) => Err((f.reason, f.unavailable)),
                Err(_) => Err((format!("no verdict within {} s", self.inner.config.timeout_secs), false)),
            }
        } else {
            Err(("no model route configured for triage".to_owned(), true))
        };
        let verdict = match outcome {
            Ok(mut v) => {
                // The deterministic verdict stands until a person confirms a model's that read
                // an injection attempt or concludes less.
                let mut det = self.deterministic(&incident, &alerts, flags.clone());
                det.injection.clone_from(&v.injection);
                if let Some(reason) = rempart_triage::verdict::must_hold(&v, &det) {
                    v.flags.push("held_for_review".into());
                    det.flags.push("model_verdict_held".into());
                    det.summary = format!(
                        "The model's verdict ({}, {:.0} % sure) is held for an analyst: {reason}. {}",
                        v.classification,
                        v.confidence * 100.0,
                        det.summary
                    );
                    self.record(&incident, &v, actor, Effect::Held).await?;
                    self.record(&incident, &det, actor, Effect::InForce { held: Some(v.id) })
                        .await?;
                    return Ok(Some(v));
                }
                v
            }
            Err((_, true)) if fallback == Fallback::OnlyModel => return Ok(None),
            Err((reason, unavailable)) => {
                flags.push(
                    if unavailable {
                        "model_unavailable"
                    } else {
                        "model_failed"
                    }
                    .into(),
                );
                let mut v = self.deterministic(&incident, &alerts, flags);
                v.injection = signs;
                v.summary = format!("{} Model: {reason}.", v.summary);
                v
            }
        };
        self.record(&incident, &verdict, actor, Effect::InForce { held: None })
            .await?;
        Ok(Some(verdict))
    }

    /// An analyst's decision on a held model verdict: `accept` puts it in force (playbook
    /// conditions then read it), otherwise the deterministic verdict stays and nothing is held.
    /// Recorded either way.
    pub async fn decide_held(
        &self,
        id: EventId,
        accept: bool,
        actor: &str,
        reason: &str,
    ) -> Result<Incident, IncidentError> {
        if reason.trim().is_empty() {
            return Err(IncidentError::Invalid("a reason is required".into()));
        }
        let incident = self.inner.incidents.get(id).await?;
        let Some(state) = incident.triage.clone().filter(|t| t.held.is_some()) else {
            return Err(IncidentError::Invalid(format!(
                "incident {id} has no verdict held for review"
            )));
        };
        let held = state.held.unwrap_or(state.verdict);
        let verdict = self
            .inner
            .incidents
            .store()
            .verdict_get(held)
            .await?
            .ok_or_else(|| IncidentError::Invalid(format!("held verdict {held} is missing")))?;
        self.inner
            .ledger
            .append(crate::incidents::draft(
                actor,
                kind::TRIAGE_HELD_DECISION,
                &incident,
                json!({"incident": id, "verdict": held, "accepted": accept, "reason": reason}),
            ))
            .await
            .map_err(|e| IncidentError::Audit(e.to_string()))?;
        let next = if accept {
            state_of(&verdict, None)
        } else {
            TriageState { held: None, ..state }
        };
        self.inner.incidents.triaged(id, next).await
    }

    /// What the model would be shown for incident `id`, as Rempart writes it (before the
    /// gateway pseudonymizes it), the alerts it was built from, and the most restricted data
    /// class of its events.
    pub async fn prompt(
        &self,
        id: EventId,
    ) -> Result<(Incident, Vec<Alert>, context::Context, DataClass), IncidentError> {
        let incident = self.inner.incidents.get(id).await?;
        let (alerts, ctx, class) = self.prepare(&incident).await?;
        Ok((incident, alerts, ctx, class))
    }

    /// The incident's alerts, the model's context, and the most restricted data class of the
    /// events in it.
    async fn prepare(&self, incident: &Incident) -> Result<(Vec<Alert>, context::Context, DataClass), IncidentError> {
        let alerts = self
            .inner
            .incidents
            .store()
            .incident_alerts(incident.id, context::MAX_ALERTS as u32 * 4)
            .await?;
        let started = Instant::now();
        let material = self.material(incident, &alerts).await?;
        let class = material.events.iter().map(|e| e.class).max().unwrap_or_default();
        // 122 random bits: the data cannot guess the fence.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut ctx = context::build(
            Material {
                incident,
                alerts: &alerts,
                events: &material.events,
                history: &material.history,
                techniques: &material.techniques,
            },
            &nonce,
        );
        if let Some(d) = rempart_triage::verdict::declared(incident, &alerts, &self.inner.config.declared) {
            ctx.system.push_str(&rempart_triage::context::declared_note(d));
        }
        tracing::debug!(incident = %incident.id, ms = started.elapsed().as_millis() as u64, "triage context assembled");
        Ok((alerts, ctx, class))
    }

    async fn material(&self, incident: &Incident, alerts: &[Alert]) -> Result<Gathered, IncidentError> {
        // The first event of each rule, then of each alert, up to the limit.
        let mut wanted: Vec<EventId> = Vec::new();
        let mut rules_seen: Vec<&str> = Vec::new();
        for a in alerts {
            if !rules_seen.contains(&a.rule_title.as_str()) {
                rules_seen.push(&a.rule_title);
                wanted.push(a.event);
            }
        }
        for a in alerts {
            if wanted.len() >= context::MAX_EVENTS {
                break;
            }
            if !wanted.contains(&a.event) {
                wanted.push(a.event);
            }
        }
        wanted.truncate(context::MAX_EVENTS);
        let mut events = Vec::with_capacity(wanted.len());
        for id in wanted {
            if let Some(e) = self.inner.store.get_event(id).await? {
                events.push(e);
            }
        }
        let mut history = Vec::new();
        // The period's alerts are read once for every entity.
        let recent = recent_alerts(&*self.inner.store, HISTORY_DAYS, incident.first_seen).await?;
        for e in incident
            .entities
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Host | EntityKind::User))
            .take(HISTORY_ENTITIES)
        {
            history.push(
                entity_history(
                    &*self.inner.store,
                    e.kind,
                    &e.value,
                    HISTORY_DAYS,
                    incident.first_seen,
                    &recent,
                )
                .await
                .map_err(IncidentError::Store)?,
            );
        }
        let techniques = self
            .inner
            .attack
            .as_ref()
            .map(|cat| {
                incident
                    .techniques
                    .iter()
                    .filter_map(|id| {
                        cat.describe(id).map(|(name, tactics, description)| TechniqueNote {
                            id: id.clone(),
                            name: name.to_owned(),
                            tactics: tactics.to_vec(),
                            description: description.chars().take(600).collect(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Gathered {
            events,
            history,
            techniques,
        })
    }

    /// Stores a verdict, records it, and (unless it is held) marks the incident with it.
    async fn record(&self, incident: &Incident, v: &Verdict, actor: &str, effect: Effect) -> Result<(), IncidentError> {
        let draft = crate::incidents::draft(
            actor,
            kind::TRIAGE_VERDICT,
            incident,
            json!({
                "verdict": v.id,
                "incident": v.incident,
                "mode": v.mode,
                "provider": v.provider,
                "model": v.model,
                "classification": v.classification,
                "confidence": v.confidence,
                "severity": v.severity,
                "recommended_actions": v.recommended_actions.iter().map(|a| a.action).collect::<Vec<_>>(),
                "queries": v.queries,
                "flags": v.flags,
                "steps": v.steps,
                "tokens": v.tokens,
                "domain": v.domain,
                "held": matches!(effect, Effect::Held),
            }),
        );
        self.inner
            .ledger
            .append(draft)
            .await
            .map_err(|e| IncidentError::Audit(e.to_string()))?;
        self.inner.incidents.store().verdict_put(v).await?;
        if let Effect::InForce { held } = effect {
            self.inner.incidents.triaged(v.incident, state_of(v, held)).await?;
        }
        self.inner
            .metrics
            .verdicts
            .get_or_create(&vec![
                ("mode", v.mode.as_str().to_owned()),
                ("classification", v.classification.as_str().to_owned()),
            ])
            .inc();
        Ok(())
    }

    /// Triages what needs it: new incidents, incidents that grew since their verdict, and
    /// degraded ones once a model may answer again; until `cancel`.
    pub async fn run_auto(self, cancel: CancellationToken) {
        let min = self
            .inner
            .config
            .min_severity
            .parse::<IncidentSeverity>()
            .unwrap_or(IncidentSeverity::Low);
        let tick = Duration::from_secs(self.inner.config.retry_secs.min(30));
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.inner.incidents.changed() => {}
                () = tokio::time::sleep(tick) => {}
            }
            // Let a burst of alerts settle into its incidents first.
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let open = match self
                .inner
                .incidents
                .store()
                .incidents_list(&IncidentQuery::open())
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "automatic triage cannot list incidents");
                    continue;
                }
            };
            self.refresh_route().await;
            for incident in open.into_iter().filter(|i| i.severity >= min) {
                if cancel.is_cancelled() {
                    return;
                }
                let fallback = match &incident.triage {
                    None => Fallback::Always,
                    Some(t) if t.stale => Fallback::Always,
                    Some(t) if t.mode == TriageMode::Degraded && self.has_model() && self.retry_due(incident.id) => {
                        Fallback::OnlyModel
                    }
                    Some(_) => continue,
                };
                if self.has_model() && !self.take_budget() {
                    // Over the hourly budget: only the deterministic verdict, for what has none.
                    if incident.triage.is_none() {
                        let alerts = self
                            .inner
                            .incidents
                            .store()
                            .incident_alerts(incident.id, context::MAX_ALERTS as u32)
                            .await
                            .unwrap_or_default();
                        let v = self.deterministic(&incident, &alerts, vec!["triage_budget_exhausted".into()]);
                        if let Err(e) = self
                            .record(&incident, &v, "triage", Effect::InForce { held: None })
                            .await
                        {
                            tracing::warn!(incident = %incident.id, error = %e, "degraded triage not recorded");
                        }
                    }
                    continue;
                }
                if let Err(e) = self.run(incident.id, "triage", fallback).await {
                    tracing::warn!(incident = %incident.id, error = %e, "automatic triage failed");
                }
            }
        }
    }

    fn retry_due(&self, id: EventId) -> bool {
        let mut retried = self.inner.retried.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let every = Duration::from_secs(self.inner.config.retry_secs);
        if retried.len() > 10_000 {
            retried.retain(|_, t| now.duration_since(*t) < every * 2);
        }
        match retried.get(&id) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                retried.insert(id, now);
                true
            }
        }
    }

    /// Takes one automatic triage from the hourly budget.
    fn take_budget(&self) -> bool {
        let mut started = self.inner.started.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while started
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3_600))
        {
            started.pop_front();
        }
        if started.len() >= self.inner.config.per_hour as usize {
            return false;
        }
        started.push_back(now);
        true
    }
}

struct Gathered {
    events: Vec<Event>,
    history: Vec<EntityHistory>,
    techniques: Vec<TechniqueNote>,
}

fn caller() -> Caller {
    Caller {
        id: CLIENT.into(),
        name: CLIENT.into(),
    }
}

fn route_name(model: &str) -> &str {
    model.strip_prefix("rempart/").unwrap_or(model)
}

/// The alerts of the `days` before `before` (at most 10,000, newest first).
pub async fn recent_alerts(
    store: &dyn Store,
    days: u32,
    before: Timestamp,
) -> Result<Vec<Alert>, rempart_store::StoreError> {
    store
        .query_alerts(&AlertQuery {
            since: Some(before - SignedDuration::from_hours(24 * i64::from(days))),
            until: Some(before),
            limit: Some(10_000),
            ..AlertQuery::default()
        })
        .await
}

/// What an entity did over `days` before `before`: its events (counted by index) and, among
/// `recent` (the period's alerts), its own.
pub async fn entity_history(
    store: &dyn Store,
    kind: EntityKind,
    value: &str,
    days: u32,
    before: Timestamp,
    recent: &[Alert],
) -> Result<EntityHistory, rempart_store::StoreError> {
    let since = before - SignedDuration::from_hours(24 * i64::from(days));
    let events = match kind {
        EntityKind::Host => {
            store
                .count_entity_events(rempart_store::EntityField::Host, value, since, before)
                .await?
        }
        EntityKind::User => {
            store
                .count_entity_events(rempart_store::EntityField::User, value, since, before)
                .await?
        }
        _ => 0,
    };
    let mine: Vec<&Alert> = recent
        .iter()
        .filter(|a| {
            let h = a.host.as_deref().and_then(rempart_triage::entity::host);
            let u = a.user.as_deref().and_then(rempart_triage::entity::user);
            match kind {
                EntityKind::Host => h.as_deref() == Some(value),
                EntityKind::User => u.as_deref() == Some(value),
                _ => false,
            }
        })
        .collect();
    let mut rules: Vec<String> = Vec::new();
    for a in &mine {
        if rules.len() < 20 && !rules.contains(&a.rule_title) {
            rules.push(a.rule_title.clone());
        }
    }
    Ok(EntityHistory {
        entity: json!({ kind.as_str(): value }),
        days,
        events,
        alerts: mine.len() as u64,
        rules,
    })
}

/// The model, through the gateway, as the `triage` client.
struct GatewayModel<'a> {
    gateway: Option<Gateway>,
    /// Declared on every request: the most restricted class of what the conversation holds.
    class: &'a std::sync::Mutex<DataClass>,
}

impl Model for GatewayModel<'_> {
    fn complete(&self, request: rempart_gateway::chat::ChatRequest) -> BoxFuture<'_, Result<Reply, ModelError>> {
        Box::pin(async move {
            let gateway = self
                .gateway
                .as_ref()
                .ok_or_else(|| ModelError::Unavailable("no gateway configured".into()))?;
            let call = Call {
                caller: caller(),
                format: Format::OpenAi,
                declared_class: Some(
                    self.class
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .tlp_label()
                        .to_owned(),
                ),
                request,
            };
            match gateway.chat(call, false).await {
                Ok(a) => Ok(Reply {
                    response: a.response,
                    provider: a.provider,
                    model: a.model,
                    domain: a.domain,
                }),
                Err(
                    e @ (GatewayError::Degraded { .. }
                    | GatewayError::Refused(_)
                    | GatewayError::UnknownModel(_)
                    | GatewayError::Quota { .. }),
                ) => Err(ModelError::Unavailable(e.to_string())),
                Err(e) => Err(ModelError::Failed(e.to_string())),
            }
        })
    }
}

/// The agent's read-only tools over the store, the intelligence and the rules.
struct StoreTools<'a> {
    inner: &'a Inner,
    /// Raised to the class of every event a tool returns.
    class: &'a std::sync::Mutex<DataClass>,
}

fn arg_str<'v>(args: &'v Value, key: &str) -> Result<&'v str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("`{key}` is required (a string)"))
}

fn arg_time(args: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match args.get(key).and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<Timestamp>()
            .map(Some)
            .map_err(|e| format!("`{key}` is not an RFC 3339 time: {e}")),
    }
}

impl Tools for StoreTools<'_> {
    fn call<'a>(&'a self, name: &'a str, args: Value) -> BoxFuture<'a, Result<ToolOutput, String>> {
        Box::pin(async move {
            match name {
                "search_events" => {
                    let mut filters = Vec::new();
                    for f in args.get("filters").and_then(Value::as_array).into_iter().flatten() {
                        let field = arg_str(f, "field")?;
                        let value = arg_str(f, "value")?;
                        filters.push(FieldFilter::parse(&format!("{field}={value}")).map_err(|e| e.to_string())?);
                    }
                    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(20).clamp(1, 50);
                    let query = EventQuery {
                        since: arg_time(&args, "since")?,
                        until: arg_time(&args, "until")?,
                        filters,
                        text: args
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                        limit: Some(u32::try_from(limit).unwrap_or(20)),
                        ..EventQuery::default()
                    };
                    let events = self.inner.store.query_events(&query).await.map_err(|e| e.to_string())?;
                    if let Some(most) = events.iter().map(|e| e.class).max() {
                        let mut c = self.class.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        *c = (*c).max(most);
                    }
                    Ok(ToolOutput {
                        events: events.iter().map(|e| e.id.to_string()).collect(),
                        content: json!({"events": events.iter().map(context::event_json).collect::<Vec<_>>()}),
                    })
                }
                "entity_history" => {
                    let kind = match arg_str(&args, "kind")? {
                        "host" => EntityKind::Host,
                        "user" => EntityKind::User,
                        "ip" => EntityKind::Ip,
                        other => return Err(format!("`kind` `{other}` is not host, user or ip")),
                    };
                    let raw = arg_str(&args, "value")?;
                    let value = match kind {
                        EntityKind::Host => rempart_triage::entity::host(raw),
                        EntityKind::User => rempart_triage::entity::user(raw),
                        _ => Some(raw.to_owned()),
                    }
                    .ok_or_else(|| format!("`{raw}` is not a {kind} worth a history"))?;
                    let days = args.get("days").and_then(Value::as_u64).unwrap_or(7).clamp(1, 30);
                    let days = u32::try_from(days).unwrap_or(7);
                    let now = Timestamp::now();
                    let recent = recent_alerts(&*self.inner.store, days, now)
                        .await
                        .map_err(|e| e.to_string())?;
                    let h = entity_history(&*self.inner.store, kind, &value, days, now, &recent)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(ToolOutput {
                        content: serde_json::to_value(h).unwrap_or(Value::Null),
                        events: Vec::new(),
                    })
                }
                "lookup_intel" => {
                    let value = arg_str(&args, "value")?;
                    let observables = rempart_intel::index::observables_of_value(value);
                    let found: Vec<Value> = match self.inner.intel.current() {
                        Some(index) => index
                            .matches(&observables, Timestamp::now())
                            .iter()
                            .map(|h| {
                                json!({
                                    "name": h.indicator.name,
                                    "source": h.indicator.source,
                                    "labels": h.indicator.labels,
                                    "confidence": h.indicator.confidence,
                                    "valid_until": h.indicator.valid_until.map(|t| t.to_string()),
                                    "description": h.indicator.description.as_deref().map(|d| d.chars().take(400).collect::<String>()),
                                })
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    Ok(ToolOutput {
                        content: json!({"value": value, "indicators": found}),
                        events: Vec::new(),
                    })
                }
                "get_rule" => {
                    let id = arg_str(&args, "rule_id")?;
                    let rules = self.inner.rules.current();
                    let rule = rules
                        .as_ref()
                        .and_then(|r| r.rules().iter().find(|r| r.id.as_deref() == Some(id)).cloned())
                        .ok_or_else(|| format!("no rule with id `{id}` is loaded"))?;
                    Ok(ToolOutput {
                        content: json!({
                            "id": rule.id,
                            "title": rule.title,
                            "level": rule.level,
                            "tags": rule.tags,
                            "description": rule.description,
                            "falsepositives": rule.falsepositives,
                        }),
                        events: Vec::new(),
                    })
                }
                other => Err(format!("there is no tool `{other}`")),
            }
        })
    }

    fn reveal<'a>(&'a self, domain: &'a str, arguments: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let privacy = self
                .inner
                .privacy
                .as_ref()
                .ok_or_else(|| "no privacy engine to re-identify the arguments".to_owned())?;
            let redactor = privacy.redactor(domain).map_err(|e| e.to_string())?;
            let (lines, _) = privacy
                .vault()
                .reveal_lines(redactor.domain(), &[arguments.to_owned()])
                .await
                .map_err(|e| e.to_string())?;
            lines
                .into_iter()
                .next()
                .ok_or_else(|| "nothing re-identified".to_owned())
        })
    }
}

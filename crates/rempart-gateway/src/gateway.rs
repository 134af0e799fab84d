//! The gateway's request path: route, class, policy, quota, pseudonymization, the failover chain,
//! validation, re-identification, recording.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rempart_audit::{Draft, Ledger, kind};
use rempart_config::gateway::{Jurisdiction, Provider};
use rempart_model::DataClass;
use rempart_privacy::Privacy;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::breaker::{Breaker, State};
use crate::chat::{Assembler, ChatRequest, ChatResponse, Delta, OutputFormat, Usage};
use crate::policy::{self, Verdict};
use crate::reveal::{self, Known, StreamRevealer};
use crate::upstream::{CallError, Upstream};
use crate::{GatewayError, anthropic, openai, responses};

/// Prefix of the model names that select a route.
pub const ROUTE_PREFIX: &str = "rempart/";
/// Most of a redacted request or answer kept in its ledger record (the hash covers all of it).
const MAX_RECORDED: usize = 256 * 1024;

/// The wire format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// OpenAI Chat Completions.
    OpenAi,
    /// OpenAI Responses, stateless.
    Responses,
    Anthropic,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id: the pseudonymization domain is the client's own.
    pub id: String,
    /// The token's name: the client's settings are found by it.
    pub name: String,
}

impl Caller {
    fn actor(&self) -> String {
        format!("token:{}", self.id)
    }
}

/// One request to serve.
#[derive(Debug)]
pub struct Call {
    pub caller: Caller,
    pub format: Format,
    /// The class the request declares (`x-rempart-data-class`), which can only raise the
    /// client's own.
    pub declared_class: Option<String>,
    pub request: ChatRequest,
}

/// A whole answer for a caller inside Rempart.
#[derive(Debug, Clone)]
pub struct Answer {
    pub response: ChatResponse,
    /// The provider that answered, and its model.
    pub provider: String,
    pub model: String,
    /// The pseudonymization domain of what the provider saw (`None`: it saw data in clear).
    pub domain: Option<String>,
    /// Whether the answer was re-identified.
    pub revealed: bool,
    /// Providers tried before it, and why they failed.
    pub attempts: Vec<Attempt>,
}

/// One provider tried and failed.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub error: String,
    pub retries: u32,
}

/// A provider's health and state, for operators.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub kind: &'static str,
    pub model: String,
    pub jurisdiction: String,
    pub max_class: DataClass,
    pub revoked: bool,
    pub circuit: State,
    pub consecutive_failures: u32,
    pub calls: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// What its answers cost since the server started, at the configured prices.
    pub cost_eur: f64,
}

#[derive(Debug)]
struct Slot {
    upstream: Upstream,
    revoked: AtomicBool,
    breaker: Mutex<Breaker>,
    calls: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// What its answers cost, in millionths of a euro.
    spent_micro_eur: AtomicU64,
}

impl Slot {
    fn config(&self) -> &Provider {
        &self.upstream.config
    }

    /// Whether a request may go to this provider now, or why not.
    fn ready(&self) -> Result<(), &'static str> {
        if self.revoked.load(Ordering::SeqCst) {
            return Err("revoked");
        }
        if !self
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(Instant::now())
        {
            return Err("circuit open");
        }
        Ok(())
    }

    /// A failed or skipped attempt at this provider.
    fn attempt(&self, error: impl Into<String>, retries: u32) -> Attempt {
        Attempt {
            provider: self.config().name.clone(),
            error: error.into(),
            retries,
        }
    }

    fn succeeded(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner).success();
    }

    fn failed(&self, e: &CallError) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut b = self.breaker.lock().unwrap_or_else(PoisonError::into_inner);
        if e.is_health() {
            b.failure(Instant::now());
        } else {
            b.release();
        }
        drop(b);
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }

    /// What an answer's usage costs at the provider's prices.
    fn cost(&self, u: Usage) -> f64 {
        let p = self.config();
        (u.input_tokens as f64 * p.price_input_per_mtok + u.output_tokens as f64 * p.price_output_per_mtok) / 1e6
    }

    /// [`Slot::cost`], counted in the provider's total.
    fn charge(&self, u: Usage) -> f64 {
        let eur = self.cost(u);
        self.spent_micro_eur
            .fetch_add((eur * 1e6).round() as u64, Ordering::Relaxed);
        eur
    }
}

/// A client's consumption in the current minute and day.
#[derive(Debug, Default)]
struct Usage_ {
    minute: i64,
    requests: u32,
    day: i64,
    tokens: u64,
    cost: f64,
}

/// The gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: rempart_config::Gateway,
    slots: Vec<Slot>,
    privacy: Option<Arc<Privacy>>,
    ledger: Ledger,
    usage: Mutex<HashMap<String, Usage_>>,
    /// Streams being served: shutdown waits for them (and their records, queued when each
    /// ends, for the ledger's `close` to commit).
    tasks: tokio_util::task::TaskTracker,
}

/// What the policy and the quota allowed for one call, before any provider is tried.
struct Plan {
    route: String,
    purpose: String,
    class: DataClass,
    verdicts: Vec<Verdict>,
    /// The allowed providers, in chain order, with whether each receives pseudonymized data.
    chain: Vec<(usize, bool)>,
    clear: ChatRequest,
    pseudonymized: Option<reveal::Pseudonymized>,
    /// The client's pseudonymization domain, when something is pseudonymized.
    redactor: Option<Arc<rempart_privacy::redact::Redactor>>,
    reidentify: bool,
    started: Instant,
}

impl Plan {
    fn refused(&self) -> Vec<Verdict> {
        self.verdicts.iter().filter(|v| !v.allowed).cloned().collect()
    }

    fn request_for(&self, pseudonymize: bool) -> &ChatRequest {
        match (&self.pseudonymized, pseudonymize) {
            (Some(p), true) => &p.request,
            _ => &self.clear,
        }
    }

    fn known(&self, pseudonymized: bool) -> Option<&Known> {
        self.pseudonymized
            .as_ref()
            .filter(|_| pseudonymized && self.reidentify)
            .map(|p| &p.known)
    }
}

/// A redacted request or answer as its ledger record keeps it (whole up to [`MAX_RECORDED`]),
/// and the SHA-256 of all of it: serialized once, the record embeds that very text.
fn recorded(v: &impl Serialize) -> (Box<RawValue>, String) {
    let whole = serde_json::value::to_raw_value(v).unwrap_or_default();
    let text = whole.get();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    if text.len() <= MAX_RECORDED {
        return (whole, hash);
    }
    let mut cut = MAX_RECORDED;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = serde_json::value::to_raw_value(&json!({"truncated": true, "bytes": text.len(), "start": &text[..cut]}));
    (kept.unwrap_or_default(), hash)
}

/// The ledger record of a call (`gateway.call`), serialized straight from what the call
/// holds.
#[derive(Serialize)]
struct CallRecord<'a> {
    client: &'a str,
    route: &'a str,
    purpose: &'a str,
    class: DataClass,
    declared_class: Option<&'a str>,
    format: Format,
    stream: bool,
    policy: &'a [Verdict],
    outcome: &'static str,
    provider: Option<&'a str>,
    jurisdiction: Option<String>,
    provider_retention_days: Option<u32>,
    model: Option<&'a str>,
    attempts: &'a [Attempt],
    retries: u32,
    usage: Usage,
    cost_eur: f64,
    latency_ms: f64,
    pseudonymized: bool,
    recorded_as: &'static str,
    found: Option<std::collections::BTreeMap<&'static str, u64>>,
    reidentified: usize,
    request_sha256: &'a str,
    response_sha256: Option<&'a str>,
    request: &'a RawValue,
    response: Option<&'a RawValue>,
}

/// Checks a JSON answer against the requested format.
fn validate(format: &OutputFormat, text: &str) -> Result<(), String> {
    let schema = match format {
        OutputFormat::Text => return Ok(()),
        OutputFormat::JsonObject => None,
        OutputFormat::JsonSchema { schema, .. } => Some(schema),
    };
    let v: Value = serde_json::from_str(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    match schema {
        None if v.is_object() => Ok(()),
        None => Err("the answer is not a JSON object".into()),
        Some(s) => {
            let validator =
                jsonschema::validator_for(s).map_err(|e| format!("the requested schema is invalid: {e}"))?;
            // Where and which rule, never the value: the answer's text is the completion's
            // (with pseudonyms, or worse), and this message reaches logs and the client.
            let errors: Vec<String> = validator
                .iter_errors(&v)
                .take(3)
                .map(|e| {
                    let at: String = e.instance_path().to_string().chars().take(120).collect();
                    format!("`{at}` fails `{}` (schema `{}`)", e.kind().keyword(), e.schema_path())
                })
                .collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(format!("the answer does not match the schema: {}", errors.join("; ")))
            }
        }
    }
}

impl Gateway {
    pub fn new(
        config: rempart_config::Gateway,
        privacy: Option<Arc<Privacy>>,
        ledger: Ledger,
    ) -> Result<Gateway, GatewayError> {
        let slots = config
            .providers
            .iter()
            .map(|p| {
                Ok(Slot {
                    revoked: AtomicBool::new(p.revoked),
                    upstream: Upstream::new(p.clone())?,
                    breaker: Mutex::new(Breaker::new(
                        p.breaker_threshold,
                        Duration::from_secs(p.breaker_cool_down_secs),
                    )),
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    spent_micro_eur: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, GatewayError>>()?;
        let needs_privacy = config
            .providers
            .iter()
            .any(|p| p.pseudonymize || p.jurisdiction != Jurisdiction::OnPrem);
        if needs_privacy && privacy.is_none() {
            return Err(GatewayError::Config(
                "providers that receive pseudonymized data need the privacy engine".into(),
            ));
        }
        Ok(Gateway {
            inner: Arc::new(Inner {
                config,
                slots,
                privacy,
                ledger,
                usage: Mutex::default(),
                tasks: tokio_util::task::TaskTracker::new(),
            }),
        })
    }

    /// Waits for the streams being served (at shutdown, after the server stopped taking
    /// requests). Every call's record is then queued in the ledger; closing the ledger commits
    /// them.
    pub async fn close(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Whether any route is configured.
    pub fn is_configured(&self) -> bool {
        !self.inner.config.routes.is_empty()
    }

    /// The model names a client may ask for.
    pub fn models(&self, caller: &Caller) -> Vec<String> {
        let client = self.inner.config.client(&caller.name);
        self.inner
            .config
            .routes
            .iter()
            .filter(|r| client.routes.is_empty() || client.routes.contains(&r.name))
            .map(|r| format!("{ROUTE_PREFIX}{}", r.name))
            .collect()
    }

    /// The institution's own classification levels, accepted beside the TLP labels.
    pub fn levels(&self) -> Vec<String> {
        self.inner.config.levels.keys().cloned().collect()
    }

    /// Every provider's state.
    pub fn providers(&self) -> Vec<ProviderStatus> {
        let now = Instant::now();
        self.inner
            .slots
            .iter()
            .map(|s| {
                let b = s.breaker.lock().unwrap_or_else(PoisonError::into_inner);
                ProviderStatus {
                    name: s.config().name.clone(),
                    kind: s.config().kind.as_str(),
                    model: s.config().model.clone(),
                    jurisdiction: s.config().jurisdiction.to_string(),
                    max_class: s.config().max_class,
                    revoked: s.revoked.load(Ordering::Relaxed),
                    circuit: b.state(now),
                    consecutive_failures: b.consecutive_failures(),
                    calls: s.calls.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                    last_error: s.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
                    cost_eur: s.spent_micro_eur.load(Ordering::Relaxed) as f64 / 1e6,
                }
            })
            .collect()
    }

    /// Revokes (or restores) a provider at once, recorded first; `false` if there is none.
    pub async fn set_revoked(&self, actor: &str, name: &str, revoked: bool) -> Result<bool, GatewayError> {
        let Some(slot) = self.inner.slots.iter().find(|s| s.config().name == name) else {
            return Ok(false);
        };
        let k = if revoked {
            kind::GATEWAY_REVOKE
        } else {
            kind::GATEWAY_RESTORE
        };
        self.inner
            .ledger
            .append(Draft::new(actor, k, json!({"provider": name})).public())
            .await?;
        slot.revoked.store(revoked, Ordering::SeqCst);
        Ok(true)
    }

    fn plan(&self, call: &Call) -> Result<Plan, GatewayError> {
        let cfg = &self.inner.config;
        let started = Instant::now();
        let name = call
            .request
            .model
            .strip_prefix(ROUTE_PREFIX)
            .unwrap_or(&call.request.model);
        let route = cfg
            .routes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| GatewayError::UnknownModel(call.request.model.clone()))?;
        let client = cfg.client(&call.caller.name);
        if !client.routes.is_empty() && !client.routes.contains(&route.name) {
            return Err(GatewayError::UnknownModel(call.request.model.clone()));
        }
        let mut class = client.class.unwrap_or(cfg.default_class);
        if let Some(label) = &call.declared_class {
            let declared = cfg.class(label).ok_or_else(|| {
                GatewayError::BadRequest(format!(
                    "`x-rempart-data-class: {label}` is neither a TLP label nor a level of this institution"
                ))
            })?;
            class = class.max(declared);
        }
        let mut verdicts = Vec::new();
        let mut chain = Vec::new();
        for p in &route.chain {
            let Some(i) = self.inner.slots.iter().position(|s| &s.config().name == p) else {
                continue;
            };
            let slot = &self.inner.slots[i];
            let v = policy::decide(
                cfg,
                slot.config(),
                class,
                &route.purpose,
                slot.revoked.load(Ordering::SeqCst),
            );
            if v.allowed {
                chain.push((i, v.pseudonymize));
            }
            verdicts.push(v);
        }
        if chain.is_empty() {
            return Err(GatewayError::Refused(verdicts));
        }
        self.charge_request(&call.caller.name, client)?;
        // Pseudonymized even when every provider allowed takes it in clear: the ledger keeps
        // the call in pseudonyms, so that erasing a data subject reaches stored prompts too.
        let (pseudonymized, redactor) = match &self.inner.privacy {
            Some(privacy) => {
                let redactor = privacy.redactor(&format!("gateway.{}", call.caller.id))?;
                (Some(reveal::pseudonymize(&redactor, &call.request)?), Some(redactor))
            }
            None if chain.iter().any(|(_, p)| *p) => return Err(GatewayError::Config("no privacy engine".into())),
            None => (None, None),
        };
        Ok(Plan {
            route: route.name.clone(),
            purpose: route.purpose.clone(),
            class,
            verdicts,
            chain,
            clear: call.request.clone(),
            pseudonymized,
            redactor,
            reidentify: client.reidentify,
            started,
        })
    }

    /// Counts a request against the client's per-minute limit, after checking its daily token
    /// and cost budgets.
    fn charge_request(&self, client_name: &str, client: &rempart_config::gateway::Client) -> Result<(), GatewayError> {
        let now = Timestamp::now().as_second();
        let (minute, day) = (now.div_euclid(60), now.div_euclid(86_400));
        let mut usage = self.inner.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let u = usage.entry(client_name.to_owned()).or_default();
        if u.minute != minute {
            u.minute = minute;
            u.requests = 0;
        }
        if u.day != day {
            u.day = day;
            u.tokens = 0;
            u.cost = 0.0;
        }
        let until_tomorrow = u64::try_from((day + 1) * 86_400 - now).unwrap_or(0);
        if u.tokens >= client.tokens_per_day {
            return Err(GatewayError::Quota {
                message: format!("daily token quota of {} used up", client.tokens_per_day),
                retry_after_secs: until_tomorrow,
            });
        }
        if u.cost >= client.budget_per_day {
            return Err(GatewayError::Quota {
                message: format!("daily budget of {:.2} EUR used up", client.budget_per_day),
                retry_after_secs: until_tomorrow,
            });
        }
        if u.requests >= client.requests_per_minute {
            return Err(GatewayError::Quota {
                message: format!("more than {} requests this minute", client.requests_per_minute),
                retry_after_secs: u64::try_from((minute + 1) * 60 - now).unwrap_or(1).max(1),
            });
        }
        u.requests += 1;
        Ok(())
    }

    fn charge_usage(&self, client_name: &str, usage: Usage, cost: f64) {
        let mut all = self.inner.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let u = all.entry(client_name.to_owned()).or_default();
        u.tokens = u.tokens.saturating_add(usage.input_tokens + usage.output_tokens);
        u.cost += cost;
    }

    /// Seals the originals of the request's pseudonyms in the vault: before anything leaves.
    async fn remember(&self, plan: &Plan) -> Result<(), GatewayError> {
        if let (Some(p), Some(redactor), Some(privacy)) = (&plan.pseudonymized, &plan.redactor, &self.inner.privacy)
            && !p.replacements.is_empty()
        {
            privacy
                .vault()
                .remember(redactor.domain(), &p.replacements, Timestamp::now())
                .await?;
        }
        Ok(())
    }

    /// Serves a request whole; the answer's body in the client's format.
    pub async fn complete(&self, call: Call) -> Result<Value, GatewayError> {
        let answer = self.serve(&call, None).await?;
        let created = Timestamp::now().as_second();
        Ok(match call.format {
            Format::OpenAi => openai::render_response(&answer.response, &call.request.model, created),
            Format::Responses => responses::render_response(
                &answer.response,
                &format!("resp_{}", uuid_like()),
                &call.request.model,
                created,
                &responses::Echo::of(&call.request),
            ),
            Format::Anthropic => anthropic::render_response(&answer.response, &call.request.model),
        })
    }

    /// Serves a request whole for a caller inside Rempart (the triage agent), in the gateway's
    /// own form. With `reidentify` false the answer stays as the provider wrote it, in the
    /// pseudonyms of [`Answer::domain`]; the caller re-identifies what it must, inside the
    /// boundary.
    pub async fn chat(&self, call: Call, reidentify: bool) -> Result<Answer, GatewayError> {
        self.serve(&call, Some(reidentify)).await
    }

    async fn serve(&self, call: &Call, reidentify: Option<bool>) -> Result<Answer, GatewayError> {
        let mut plan = self.plan(call)?;
        if let Some(r) = reidentify {
            plan.reidentify = r;
        }
        self.remember(&plan).await?;
        let mut attempts = Vec::new();
        for &(i, pseudonymize) in &plan.chain {
            let slot = &self.inner.slots[i];
            if let Err(why) = slot.ready() {
                attempts.push(slot.attempt(why, 0));
                continue;
            }
            let request = plan.request_for(pseudonymize);
            let (mut resp, retries) = match slot.upstream.complete(request).await {
                Ok(r) => r,
                Err(e) => {
                    slot.failed(&e);
                    attempts.push(slot.attempt(e.to_string(), 0));
                    continue;
                }
            };
            if let Err(why) = validate(&request.format, &resp.text()) {
                let e = CallError {
                    status: None,
                    message: why,
                    retryable: false,
                    retry_after: None,
                };
                slot.failed(&e);
                attempts.push(slot.attempt(e.message, retries));
                continue;
            }
            slot.succeeded();
            let sent = resp.clone();
            let json = !matches!(request.format, OutputFormat::Text);
            let revealed = match plan.known(pseudonymize) {
                Some(k) => reveal::reveal_response(&mut resp, k, json)?,
                None => 0,
            };
            let cost = slot.charge(resp.usage);
            self.charge_usage(&call.caller.name, resp.usage, cost);
            self.record(
                call,
                &plan,
                Some(i),
                pseudonymize,
                &attempts,
                retries,
                Some(&sent),
                revealed,
                false,
            )
            .await?;
            let domain = plan
                .redactor
                .as_ref()
                .filter(|_| pseudonymize && plan.pseudonymized.is_some())
                .map(|r| r.domain().name().to_owned());
            return Ok(Answer {
                response: resp,
                provider: slot.config().name.clone(),
                model: slot.config().model.clone(),
                domain,
                revealed: revealed > 0 || plan.known(pseudonymize).is_some(),
                attempts,
            });
        }
        self.record(call, &plan, None, false, &attempts, 0, None, 0, false)
            .await?;
        Err(GatewayError::Degraded {
            attempts,
            refused: plan.refused(),
        })
    }

    /// Serves a request as a stream. Returns once the first bytes for the client are ready, so
    /// that a provider failing before then is replaced by the next one and a request nobody can
    /// serve gets a proper error status; the receiver then yields the rest.
    pub async fn stream(&self, call: Call) -> Result<mpsc::Receiver<String>, GatewayError> {
        let plan = self.plan(&call)?;
        self.remember(&plan).await?;
        let (first_tx, first_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(64);
        let gw = self.clone();
        self.inner.tasks.spawn(async move {
            gw.drive_stream(call, plan, first_tx, tx).await;
        });
        match first_rx.await {
            Ok(Ok(())) => Ok(rx),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(GatewayError::Degraded {
                attempts: Vec::new(),
                refused: Vec::new(),
            }),
        }
    }

    async fn drive_stream(
        &self,
        call: Call,
        plan: Plan,
        first: oneshot::Sender<Result<(), GatewayError>>,
        tx: mpsc::Sender<String>,
    ) {
        let mut first = Some(first);
        let mut attempts = Vec::new();
        let created = Timestamp::now().as_second();
        let id = match call.format {
            Format::OpenAi => format!("chatcmpl-{}", uuid_like()),
            Format::Responses => format!("resp_{}", uuid_like()),
            Format::Anthropic => format!("msg_{}", uuid_like()),
        };
        for &(i, pseudonymize) in &plan.chain {
            let slot = &self.inner.slots[i];
            if let Err(why) = slot.ready() {
                attempts.push(slot.attempt(why, 0));
                continue;
            }
            let request = plan.request_for(pseudonymize);
            let known = plan.known(pseudonymize).cloned().unwrap_or_default();
            let (mut upstream, retries) = match slot.upstream.stream(request).await {
                Ok(s) => s,
                Err(e) => {
                    slot.failed(&e);
                    attempts.push(slot.attempt(e.to_string(), 0));
                    continue;
                }
            };
            // A JSON answer is held until it is complete and valid.
            let hold = !matches!(request.format, OutputFormat::Text);
            let mut writer = Writer::new(&call, id.clone(), created);
            let mut text = StreamRevealer::default();
            let mut args: HashMap<usize, StreamRevealer> = HashMap::new();
            let mut assembled = Assembler::default();
            let mut pending = String::new();
            let mut held_text = String::new();
            let mut sent_any = false;
            let mut failure: Option<CallError> = None;
            while let Some(item) = upstream.next().await {
                let d = match item {
                    Ok(d) => d,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                assembled.push(&d);
                let out = match &d {
                    Delta::Text { text: t } if hold => {
                        held_text.push_str(t);
                        Ok(None)
                    }
                    Delta::Text { text: t } => text
                        .push(t, &known)
                        .map(|t| (!t.is_empty()).then_some(Delta::Text { text: t })),
                    Delta::ToolArgs { index, json } => args
                        .entry(*index)
                        .or_insert_with(StreamRevealer::json)
                        .push(json, &known)
                        .map(|j| (!j.is_empty()).then_some(Delta::ToolArgs { index: *index, json: j })),
                    other => Ok(Some(other.clone())),
                };
                match out {
                    Ok(Some(d)) => pending.push_str(&writer.write(&d)),
                    Ok(None) => {}
                    Err(e) => {
                        failure = Some(CallError {
                            status: None,
                            message: format!("re-identification failed: {e}"),
                            retryable: false,
                            retry_after: None,
                        });
                        break;
                    }
                }
                if !pending.is_empty() {
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    sent_any = true;
                    if tx.send(std::mem::take(&mut pending)).await.is_err() {
                        // The client went away; what was served is still recorded.
                        break;
                    }
                }
            }
            if failure.is_none()
                && hold
                && let Err(why) = validate(&request.format, &held_text)
            {
                failure = Some(CallError {
                    status: None,
                    message: why,
                    retryable: false,
                    retry_after: None,
                });
            }
            if let Some(e) = failure {
                slot.failed(&e);
                attempts.push(slot.attempt(e.to_string(), retries));
                if sent_any {
                    let _ = tx.send(writer.error(&e.to_string())).await;
                    let _ = self
                        .record(&call, &plan, Some(i), pseudonymize, &attempts, retries, None, 0, true)
                        .await;
                    return;
                }
                continue;
            }
            slot.succeeded();
            // The rest: what was held back, then the end of the stream.
            let mut tail = String::new();
            if hold {
                match reveal::reveal_json_text(&held_text, &known) {
                    Ok((t, n)) => {
                        text.revealed += if known.is_empty() { 0 } else { n };
                        tail.push_str(&writer.write(&Delta::Text {
                            text: if known.is_empty() { held_text.clone() } else { t },
                        }));
                    }
                    Err(e) => tail.push_str(&writer.error(&e.to_string())),
                }
            } else if let Ok(t) = text.flush(&known)
                && !t.is_empty()
            {
                tail.push_str(&writer.write(&Delta::Text { text: t }));
            }
            let mut indexes: Vec<usize> = args.keys().copied().collect();
            indexes.sort_unstable();
            for index in indexes {
                if let Some(r) = args.get_mut(&index)
                    && let Ok(j) = r.flush(&known)
                    && !j.is_empty()
                {
                    tail.push_str(&writer.write(&Delta::ToolArgs { index, json: j }));
                }
            }
            tail.push_str(&writer.done());
            if let Some(f) = first.take() {
                let _ = f.send(Ok(()));
            }
            let _ = tx.send(tail).await;
            let (pid, pmodel) = upstream.ids();
            let response = assembled.finish(pid.unwrap_or_default(), pmodel.unwrap_or_default());
            let revealed = text.revealed + args.values().map(|a| a.revealed).sum::<usize>();
            let cost = slot.charge(response.usage);
            self.charge_usage(&call.caller.name, response.usage, cost);
            if let Err(e) = self
                .record(
                    &call,
                    &plan,
                    Some(i),
                    pseudonymize,
                    &attempts,
                    retries,
                    Some(&response),
                    revealed,
                    true,
                )
                .await
            {
                tracing::error!(error = %e, "gateway call could not be recorded");
            }
            return;
        }
        let _ = self
            .record(&call, &plan, None, false, &attempts, 0, None, 0, true)
            .await;
        if let Some(f) = first.take() {
            let _ = f.send(Err(GatewayError::Degraded {
                attempts,
                refused: plan.refused(),
            }));
        }
    }

    /// Queues the call's ledger record; the caller does not wait for it to be committed (the
    /// ledger logs a failure to commit it).
    #[allow(clippy::too_many_arguments, reason = "one record gathers every part of a call")]
    async fn record(
        &self,
        call: &Call,
        plan: &Plan,
        served_by: Option<usize>,
        pseudonymized: bool,
        attempts: &[Attempt],
        retries: u32,
        response: Option<&ChatResponse>,
        revealed: usize,
        stream: bool,
    ) -> Result<(), GatewayError> {
        let slot = served_by.map(|i| &self.inner.slots[i]);
        let sent = plan.request_for(pseudonymized);
        let usage = response.map(|r| r.usage).unwrap_or_default();
        // The hashes are of what went and came back; the record keeps both in pseudonyms
        // (when a privacy engine is configured), whatever form they travelled in.
        let kept_request = recorded(plan.request_for(true));
        // Sent as kept (in pseudonyms, or in clear with no privacy engine): one serialization.
        let request_hash = if std::ptr::eq(sent, plan.request_for(true)) {
            kept_request.1.clone()
        } else {
            recorded(sent).1
        };
        let response_record = match (response, &plan.redactor) {
            (Some(r), Some(redactor)) if !pseudonymized => {
                let (kept, replacements) = reveal::pseudonymize_response(redactor, r)?;
                if let Some(privacy) = &self.inner.privacy
                    && !replacements.is_empty()
                {
                    privacy
                        .vault()
                        .remember(redactor.domain(), &replacements, Timestamp::now())
                        .await?;
                }
                Some((recorded(&kept).0, recorded(r).1))
            }
            (r, _) => r.map(recorded),
        };
        let config = slot.map(Slot::config);
        let payload = CallRecord {
            client: &call.caller.name,
            route: &plan.route,
            purpose: &plan.purpose,
            class: plan.class,
            declared_class: call.declared_class.as_deref(),
            format: call.format,
            stream,
            policy: &plan.verdicts,
            outcome: if slot.is_some() { "served" } else { "degraded" },
            provider: config.map(|c| c.name.as_str()),
            jurisdiction: config.map(|c| c.jurisdiction.to_string()),
            provider_retention_days: config.and_then(|c| c.retention_days),
            model: response
                .map(|r| r.model.as_str())
                .or_else(|| config.map(|c| c.model.as_str())),
            attempts,
            retries,
            usage,
            cost_eur: slot.map_or(0.0, |s| s.cost(usage)),
            latency_ms: plan.started.elapsed().as_secs_f64() * 1000.0,
            pseudonymized,
            recorded_as: if plan.pseudonymized.is_some() {
                "pseudonyms"
            } else {
                "clear"
            },
            found: plan
                .pseudonymized
                .as_ref()
                .filter(|_| pseudonymized)
                .map(|p| reveal::found(&p.replacements)),
            reidentified: revealed,
            request_sha256: &request_hash,
            response_sha256: response_record.as_ref().map(|r| r.1.as_str()),
            request: &kept_request.0,
            response: response_record.as_ref().map(|r| &*r.0),
        };
        self.inner
            .ledger
            .record(Draft::new(call.caller.actor(), kind::GATEWAY_CALL, payload))
            .await?;
        Ok(())
    }
}

/// 24 hex digits of randomness, for answer ids.
fn uuid_like() -> String {
    use rand::Rng;
    let mut b = [0u8; 12];
    rand::rng().fill(&mut b);
    hex::encode(b)
}

/// Writes deltas in the client's stream format.
enum Writer {
    OpenAi(openai::ChunkWriter),
    Responses(Box<responses::EventWriter>),
    Anthropic(anthropic::EventWriter),
}

impl Writer {
    fn new(call: &Call, id: String, created: i64) -> Writer {
        let model = call.request.model.clone();
        match call.format {
            Format::OpenAi => Writer::OpenAi(openai::ChunkWriter::new(id, model, created, call.request.stream_usage)),
            Format::Responses => Writer::Responses(Box::new(responses::EventWriter::new(
                id,
                model,
                created,
                responses::Echo::of(&call.request),
            ))),
            Format::Anthropic => Writer::Anthropic(anthropic::EventWriter::new(id, model)),
        }
    }

    fn write(&mut self, d: &Delta) -> String {
        match self {
            Writer::OpenAi(w) => w.write(d),
            Writer::Responses(w) => w.write(d),
            Writer::Anthropic(w) => w.write(d),
        }
    }

    fn done(&mut self) -> String {
        match self {
            Writer::OpenAi(w) => w.done(),
            Writer::Responses(w) => w.done(),
            Writer::Anthropic(w) => w.done(),
        }
    }

    fn error(&mut self, message: &str) -> String {
        match self {
            Writer::OpenAi(w) => w.error(message),
            Writer::Responses(w) => w.error(message),
            Writer::Anthropic(w) => w.error(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_validated_against_the_schema() {
        let f = OutputFormat::JsonSchema {
            name: "v".into(),
            schema: json!({"type": "object", "required": ["verdict"], "properties": {"verdict": {"enum": ["benign", "malicious"]}}}),
            strict: true,
        };
        assert!(validate(&f, r#"{"verdict":"benign"}"#).is_ok());
        let e = validate(&f, r#"{"verdict":"unsure"}"#).unwrap_err();
        assert!(e.contains("/verdict"), "{e}");
        assert!(validate(&f, "not json").unwrap_err().contains("not JSON"));
        assert!(validate(&OutputFormat::JsonObject, "[1]").is_err());
        assert!(validate(&OutputFormat::Text, "anything").is_ok());
    }

    #[test]
    fn long_payloads_are_kept_truncated_with_their_size() {
        let big = "é".repeat(MAX_RECORDED);
        let (raw, hash) = recorded(&big);
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["bytes"], big.len() + 2);
        assert_eq!(hash, hex::encode(Sha256::digest(serde_json::to_string(&big).unwrap())));
        assert_eq!(recorded(&"small").0.get(), r#""small""#);
    }
}

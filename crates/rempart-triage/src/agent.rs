//! The triage agent's loop: ask the model, run the read-only tools it calls, until it submits
//! a verdict that matches the schema, or a step, token or time budget runs out.
//!
//! The model is reached through [`Model`] (the sovereignty gateway in the server, a scripted
//! fake in tests); tools run through [`Tools`], inside the boundary. Nothing the model writes
//! is executed: tools only read, and the verdict only recommends.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use rempart_gateway::chat::{ChatRequest, ChatResponse, Message, OutputFormat, Part, Role, Tool, ToolChoice};
use rempart_model::{EventId, ToolUse, Verdict};
use serde_json::{Value, json};

use crate::context::Context;
use crate::verdict::{self, Provenance};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model's answer to one turn.
#[derive(Debug, Clone)]
pub struct Reply {
    pub response: ChatResponse,
    pub provider: String,
    pub model: String,
    /// The pseudonymization domain the model wrote in (`None`: it saw data in clear).
    pub domain: Option<String>,
}

/// Why the model did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// No provider could serve (all down, revoked, refused by policy, or none configured):
    /// the triage falls back to the deterministic verdict.
    Unavailable(String),
    /// Anything else (a quota, a bad request).
    Failed(String),
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::Unavailable(m) => write!(f, "no model available: {m}"),
            ModelError::Failed(m) => write!(f, "the model call failed: {m}"),
        }
    }
}

pub trait Model: Send + Sync {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<Reply, ModelError>>;
}

/// What a tool returned.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub content: Value,
    /// Event ids in the result: evidence may cite them.
    pub events: Vec<String>,
}

pub trait Tools: Send + Sync {
    /// Runs a read-only tool with arguments already re-identified.
    fn call<'a>(&'a self, name: &'a str, arguments: Value) -> BoxFuture<'a, Result<ToolOutput, String>>;
    /// Re-identifies arguments the model wrote in the pseudonyms of `domain`.
    fn reveal<'a>(&'a self, domain: &'a str, arguments: &'a str) -> BoxFuture<'a, Result<String, String>>;
}

/// The budgets of one triage.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_steps: u32,
    pub max_tokens: u64,
}

/// How a triage ended without a verdict.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    /// No model could be reached at all (fall back, and try again when one returns).
    pub unavailable: bool,
    pub steps: u32,
    pub tokens: u64,
    pub queries: Vec<ToolUse>,
}

pub const SUBMIT: &str = "submit_verdict";

/// The tools offered to the model.
pub fn tool_definitions() -> Vec<Tool> {
    let days = json!({"type": "integer", "minimum": 1, "maximum": 30});
    vec![
        Tool {
            name: "search_events".into(),
            description: Some(
                "Search stored events. Filters are exact matches on normalized fields (host, user, src_ip, \
                 dst_ip, process, command_line, parent_process, event_id, channel, provider) or raw fields \
                 as fields.<path>; text is a case-insensitive substring; times are RFC 3339. At most 50 \
                 events, newest first."
                    .into(),
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "filters": {"type": "array", "items": {"type": "object",
                        "properties": {"field": {"type": "string"}, "value": {"type": "string"}},
                        "required": ["field", "value"]}},
                    "text": {"type": "string"},
                    "since": {"type": "string"},
                    "until": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50}
                }
            }),
        },
        Tool {
            name: "entity_history".into(),
            description: Some(
                "How many events and alerts a host, user or IP address had over the last days, and which rules \
                 alerted on it."
                    .into(),
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["host", "user", "ip"]},
                    "value": {"type": "string"},
                    "days": days
                },
                "required": ["kind", "value"]
            }),
        },
        Tool {
            name: "lookup_intel".into(),
            description: Some(
                "Threat-intelligence indicators matching a value (IP address, domain, URL, e-mail address or file \
                 hash), with their source, labels and validity."
                    .into(),
            ),
            parameters: json!({
                "type": "object",
                "properties": {"value": {"type": "string"}},
                "required": ["value"]
            }),
        },
        Tool {
            name: "get_rule".into(),
            description: Some(
                "A detection rule by id: title, description, level, ATT&CK tags, false positives.".into(),
            ),
            parameters: json!({
                "type": "object",
                "properties": {"rule_id": {"type": "string"}},
                "required": ["rule_id"]
            }),
        },
        Tool {
            name: SUBMIT.into(),
            description: Some("Submit the verdict. Call once, at the end.".into()),
            parameters: verdict::schema(),
        },
    ]
}

/// One triage: the context, the identity of the incident and where to ask.
#[derive(Debug, Clone)]
pub struct Job {
    pub incident: EventId,
    /// The gateway route (`rempart/<route>` is what the request asks for).
    pub route: String,
    pub context: Context,
    pub limits: Limits,
}

/// Runs the loop. `Ok` is a verdict (perhaps flagged); `Err` says why there is none.
pub async fn run(model: &dyn Model, tools: &dyn Tools, job: Job) -> Result<Verdict, Failure> {
    let mut known = job.context.known_events.clone();
    let mut flags: Vec<String> = Vec::new();
    let mut injection = job.context.injection.clone();
    let mut messages = vec![Message {
        role: Role::User,
        parts: vec![Part::Text {
            text: job.context.user.clone(),
        }],
    }];
    let mut queries: Vec<ToolUse> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let (mut steps, mut tokens) = (0u32, 0u64);
    let mut domain: Option<String> = None;
    let fail = |reason: String, unavailable: bool, steps, tokens, queries| Failure {
        reason,
        unavailable,
        steps,
        tokens,
        queries,
    };
    let all_tools = tool_definitions();
    while steps < job.limits.max_steps {
        steps += 1;
        let last = steps == job.limits.max_steps;
        let mut request = ChatRequest::new(format!("rempart/{}", job.route));
        request.system = vec![job.context.system.clone()];
        request.messages = messages.clone();
        request.format = OutputFormat::Text;
        request.temperature = Some(0.0);
        request.max_tokens = Some(4_096);
        if last {
            request.tools = all_tools.iter().filter(|t| t.name == SUBMIT).cloned().collect();
            request.tool_choice = Some(ToolChoice::Tool(SUBMIT.into()));
        } else {
            request.tools = all_tools.clone();
            request.tool_choice = Some(ToolChoice::Required);
        }
        let reply = match model.complete(request).await {
            Ok(r) => r,
            Err(ModelError::Unavailable(m)) => {
                return Err(fail(m, true, steps, tokens, queries));
            }
            Err(ModelError::Failed(m)) => return Err(fail(m, false, steps, tokens, queries)),
        };
        tokens += reply.response.usage.input_tokens + reply.response.usage.output_tokens;
        if reply.domain.is_some() {
            domain.clone_from(&reply.domain);
        }
        let calls: Vec<(String, String, String)> = reply
            .response
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id, name, arguments } => Some((id.clone(), name.clone(), arguments.clone())),
                _ => None,
            })
            .collect();
        messages.push(Message {
            role: Role::Assistant,
            parts: reply.response.parts.clone(),
        });
        if tokens > job.limits.max_tokens {
            return Err(fail(
                format!("token budget of {} spent ({tokens})", job.limits.max_tokens),
                false,
                steps,
                tokens,
                queries,
            ));
        }
        if calls.is_empty() {
            messages.push(Message {
                role: Role::User,
                parts: vec![Part::Text {
                    text: format!("Answer only by calling a tool; finish with {SUBMIT}."),
                }],
            });
            continue;
        }
        let mut results = Vec::new();
        for (id, name, arguments) in calls {
            if name == SUBMIT {
                match verdict::parse(&arguments) {
                    Ok(m) => {
                        if !injection.is_empty() {
                            flags.push("prompt_injection_suspected".into());
                        }
                        flags.sort();
                        flags.dedup();
                        return Ok(verdict::from_model(
                            m,
                            &known,
                            Provenance {
                                incident: job.incident,
                                created: Timestamp::now(),
                                provider: Some(reply.provider.clone()),
                                model: Some(reply.model.clone()),
                                domain: domain.clone(),
                                queries,
                                steps,
                                tokens,
                                flags,
                                injection,
                            },
                        ));
                    }
                    Err(why) => {
                        results.push(Part::ToolResult {
                            id,
                            content: format!("{why}. Correct it and call {SUBMIT} again."),
                            is_error: true,
                        });
                        continue;
                    }
                }
            }
            if !all_tools.iter().any(|t| t.name == name) {
                results.push(Part::ToolResult {
                    id,
                    content: format!("there is no tool `{name}`"),
                    is_error: true,
                });
                continue;
            }
            if !seen.insert((name.clone(), arguments.clone())) {
                results.push(Part::ToolResult {
                    id,
                    content: "this exact query already ran; its result is above".into(),
                    is_error: true,
                });
                continue;
            }
            let written: Value = serde_json::from_str(&arguments).unwrap_or(Value::Null);
            let clear = match &reply.domain {
                Some(d) => tools.reveal(d, &arguments).await,
                None => Ok(arguments.clone()),
            };
            let outcome = match clear.and_then(|c| serde_json::from_str::<Value>(&c).map_err(|e| e.to_string())) {
                Ok(args) => tools.call(&name, args).await,
                Err(e) => Err(format!("the arguments are not a JSON object: {e}")),
            };
            let (content, is_error, summary) = match outcome {
                Ok(out) => {
                    known.extend(out.events.iter().cloned());
                    // What a tool returns is data the attacker may have written too.
                    crate::injection::scan_value(&format!("{name} result"), &out.content, &mut injection);
                    let n = out.events.len();
                    (
                        json!({"untrusted_data": crate::context::neutralized(&out.content)}).to_string(),
                        false,
                        format!("{n} events"),
                    )
                }
                Err(e) => (e.clone(), true, format!("error: {e}")),
            };
            queries.push(ToolUse {
                tool: name,
                arguments: written,
                outcome: summary,
            });
            results.push(Part::ToolResult { id, content, is_error });
        }
        messages.push(Message {
            role: Role::User,
            parts: results,
        });
    }
    Err(fail(
        format!("no valid verdict after {steps} model turns"),
        false,
        steps,
        tokens,
        queries,
    ))
}

//! The agent's loop against scripted models and tools: budgets hold, tools run only on
//! re-identified arguments, and what the model gets wrong comes back to it as an error.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashSet;
use std::sync::Mutex;

use rempart_gateway::chat::{ChatRequest, ChatResponse, Finish, Part, Usage};
use rempart_model::EventId;
use rempart_triage::agent::{self, BoxFuture, Job, Limits, Model, ModelError, Reply, ToolOutput, Tools};
use rempart_triage::context::Context;
use serde_json::{Value, json};

/// Answers each turn with the next scripted tool call.
struct Scripted {
    calls: Mutex<Vec<(String, Value)>>,
    tokens_per_turn: u64,
    seen: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(calls: Vec<(&str, Value)>, tokens_per_turn: u64) -> Scripted {
        Scripted {
            calls: Mutex::new(calls.into_iter().rev().map(|(n, a)| (n.to_owned(), a)).collect()),
            tokens_per_turn,
            seen: Mutex::default(),
        }
    }
}

impl Model for Scripted {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<Reply, ModelError>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(request);
            let (name, args) = self
                .calls
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| ("search_events".into(), json!({"text": "again and again"})));
            Ok(Reply {
                response: ChatResponse {
                    id: "r".into(),
                    model: "m".into(),
                    parts: vec![Part::ToolCall {
                        id: format!("c{}", self.seen.lock().unwrap().len()),
                        name,
                        arguments: args.to_string(),
                    }],
                    finish: Finish::ToolCalls,
                    usage: Usage {
                        input_tokens: self.tokens_per_turn,
                        output_tokens: 0,
                    },
                },
                provider: "fake".into(),
                model: "m".into(),
                domain: Some("gateway.triage".into()),
            })
        })
    }
}

/// Records what ran; pseudonyms `host_x` reveal to `ws-01`.
#[derive(Default)]
struct Recording {
    ran: Mutex<Vec<(String, Value)>>,
}

impl Tools for Recording {
    fn call<'a>(&'a self, name: &'a str, arguments: Value) -> BoxFuture<'a, Result<ToolOutput, String>> {
        Box::pin(async move {
            self.ran.lock().unwrap().push((name.to_owned(), arguments));
            Ok(ToolOutput {
                content: json!({"events": [{"event_id": "e-found"}]}),
                events: vec!["e-found".into()],
            })
        })
    }

    fn reveal<'a>(&'a self, domain: &'a str, arguments: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            assert_eq!(domain, "gateway.triage");
            Ok(arguments.replace("host_x", "ws-01"))
        })
    }
}

fn job(max_steps: u32, max_tokens: u64) -> Job {
    Job {
        incident: EventId::generate(),
        route: "triage".into(),
        context: Context {
            system: "instructions".into(),
            user: "{}".into(),
            known_events: ["e-alert".to_owned()].into_iter().collect::<HashSet<_>>(),
            injection: Vec::new(),
        },
        limits: Limits { max_steps, max_tokens },
    }
}

fn verdict(events: &[&str]) -> Value {
    json!({
        "classification": "true_positive", "confidence": 0.8, "severity": "high", "summary": "s",
        "timeline": [], "techniques": [], "entities": [],
        "recommended_actions": [{"action": "monitor", "target": "host_x", "reason": "r"}],
        "evidence": [{"claim": "c", "events": events}]
    })
}

#[tokio::test]
async fn tools_run_on_re_identified_arguments_and_their_events_may_be_cited() {
    let model = Scripted::new(
        vec![
            (
                "search_events",
                json!({"filters": [{"field": "host", "value": "host_x"}]}),
            ),
            (
                "search_events",
                json!({"filters": [{"field": "host", "value": "host_x"}]}),
            ),
            ("format_disk", json!({})),
            ("submit_verdict", verdict(&["e-alert", "e-found"])),
        ],
        100,
    );
    let tools = Recording::default();
    let v = agent::run(&model, &tools, job(8, 100_000)).await.unwrap();
    let ran = tools.ran.lock().unwrap().clone();
    assert_eq!(ran.len(), 1, "the repeated query and the unknown tool did not run");
    assert_eq!(ran[0].1["filters"][0]["value"], "ws-01");
    assert_eq!(v.evidence[0].events, ["e-alert", "e-found"]);
    assert!(v.flags.is_empty(), "{:?}", v.flags);
    assert_eq!(v.steps, 4);
    assert_eq!(v.tokens, 400);
    // What the model was told about its mistakes.
    let seen = model.seen.lock().unwrap();
    let last = format!("{:?}", seen.last().unwrap().messages);
    assert!(last.contains("already ran"), "{last}");
    assert!(last.contains("there is no tool `format_disk`"), "{last}");
    // The last turn but one offered every tool; a forced verdict comes only at the step limit.
    assert!(seen.iter().all(|r| r.tools.len() == 5));
}

#[tokio::test]
async fn a_model_that_never_submits_is_stopped_at_the_step_limit() {
    let model = Scripted::new(Vec::new(), 10);
    let failure = agent::run(&model, &Recording::default(), job(3, 100_000))
        .await
        .unwrap_err();
    assert_eq!(failure.steps, 3);
    assert!(!failure.unavailable);
    assert!(
        failure.reason.contains("no valid verdict after 3"),
        "{}",
        failure.reason
    );
    let seen = model.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    // On the last turn only `submit_verdict` is offered, and it is required.
    assert_eq!(seen[2].tools.len(), 1);
    assert_eq!(seen[2].tools[0].name, "submit_verdict");
}

#[tokio::test]
async fn the_token_budget_stops_the_loop() {
    let model = Scripted::new(Vec::new(), 4_000);
    let failure = agent::run(&model, &Recording::default(), job(20, 10_000))
        .await
        .unwrap_err();
    assert!(
        failure.reason.starts_with("token budget of 10000 spent"),
        "{}",
        failure.reason
    );
    assert_eq!(failure.steps, 3);
}

//! Model providers on loopback for the gateway's tests: each speaks its provider's real wire
//! format (OpenAI Chat Completions, Anthropic Messages, Mistral's tool-call id rule), records
//! the bytes it receives, and can be told to fail the ways real providers fail.
//!
//! Provider `NAME` is served under `/NAME/v1` (`/chat/completions`, `/messages`, `/responses`). Answers are derived from the request so that a
//! test can check what went through: text is `You said: <last user text>`, a forced tool call
//! carries `{"query": <last user text>}`, a tool result is answered `Tool said: <result>`, and
//! a JSON Schema answer is `{"verdict": "benign", "summary": <last user text>}`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    dead_code,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// How a provider behaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Ok,
    /// Every request fails with this status.
    Status(u16),
    /// The next `n` requests get 429 with `Retry-After: 0`, then it recovers.
    RateLimited(u32),
    /// Answers after this delay.
    Slow(Duration),
    /// Streams: a few chunks, then the connection closes without the end marker.
    CutMidStream,
    /// Streams: the headers, then the connection closes.
    CutBeforeAnything,
    /// A 200 whose body is not JSON.
    Malformed,
    /// Answers JSON Schema requests with JSON that does not match the schema.
    WrongSchema,
    /// Fails with this status and an error that quotes the request, in the provider's shape
    /// (OpenAI's, a FastAPI validation error's, Ollama's).
    Echo(u16),
}

#[derive(Debug, Default)]
struct Shared {
    modes: HashMap<String, Mode>,
    /// (provider, raw request body), in arrival order.
    received: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Fakes {
    shared: Arc<Mutex<Shared>>,
    pub addr: String,
}

impl Fakes {
    pub async fn start() -> Fakes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let fakes = Fakes {
            shared: Arc::default(),
            addr,
        };
        let app = Router::new()
            .route("/{name}/v1/chat/completions", post(openai))
            .route("/{name}/v1/messages", post(anthropic))
            .route("/{name}/v1/responses", post(responses))
            .with_state(fakes.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fakes
    }

    pub fn base_url(&self, name: &str) -> String {
        format!("http://{}/{name}/v1", self.addr)
    }

    pub fn set(&self, name: &str, mode: Mode) {
        self.shared.lock().unwrap().modes.insert(name.to_owned(), mode);
    }

    /// Bodies `name` received.
    pub fn received(&self, name: &str) -> Vec<String> {
        let s = self.shared.lock().unwrap();
        s.received
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn all_received(&self) -> String {
        let s = self.shared.lock().unwrap();
        s.received
            .iter()
            .map(|(_, b)| b.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn clear(&self) {
        self.shared.lock().unwrap().received.clear();
    }

    /// Records the request; the failure to answer with, if any.
    async fn admit(&self, name: &str, body: &Bytes) -> Result<Mode, Response> {
        let mode = {
            let mut s = self.shared.lock().unwrap();
            s.received
                .push((name.to_owned(), String::from_utf8_lossy(body).into_owned()));
            let mode = s.modes.get(name).cloned().unwrap_or(Mode::Ok);
            if let Mode::RateLimited(n) = mode {
                s.modes
                    .insert(name.to_owned(), if n > 1 { Mode::RateLimited(n - 1) } else { Mode::Ok });
            }
            mode
        };
        match mode {
            Mode::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap();
                let body = if code == 529 {
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                } else {
                    json!({"error": {"message": format!("fake failure {code}"), "type": "server_error"}})
                };
                Err((status, axum::Json(body)).into_response())
            }
            Mode::Echo(code) => {
                let status = StatusCode::from_u16(code).unwrap();
                let quoted = String::from_utf8_lossy(body).into_owned();
                let body = match name {
                    "mistral" => {
                        json!({"detail": [{"type": "string_too_long", "loc": ["body", "messages", 0, "content"],
                                                    "msg": "String should have at most 10 characters", "input": quoted}]})
                    }
                    "local" => json!({"error": format!("cannot process the request {quoted}")}),
                    _ => {
                        json!({"error": {"message": format!("This model's maximum context length is 10 tokens: {quoted}"),
                                          "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
                    }
                };
                Err((status, axum::Json(body)).into_response())
            }
            Mode::RateLimited(_) => Err((
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                axum::Json(json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}})),
            )
                .into_response()),
            Mode::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(Mode::Ok)
            }
            Mode::Malformed => Err((StatusCode::OK, "{\"id\": \"chatcmpl-1\", \"choices\": [").into_response()),
            other => Ok(other),
        }
    }
}

/// What the model "says" to a request, whatever its format.
enum Answer {
    Text(String),
    Tool { name: String, args: Value },
    Json(Value),
}

fn answer(last_user: &str, tool_result: Option<&str>, tool: Option<&str>, structured: bool, mode: &Mode) -> Answer {
    // A structured answer asked for is given whatever came before, as providers do.
    if structured {
        return Answer::Json(if *mode == Mode::WrongSchema {
            json!({"verdict": 42})
        } else {
            json!({"verdict": "benign", "summary": last_user})
        });
    }
    if let Some(r) = tool_result {
        return Answer::Text(format!("Tool said: {r}"));
    }
    if let Some(t) = tool {
        return Answer::Tool {
            name: t.to_owned(),
            args: json!({"query": last_user}),
        };
    }
    Answer::Text(format!("You said: {last_user}"))
}

/// Pieces of at most 7 bytes (on character boundaries), so that pseudonyms are cut.
fn pieces(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if cur.len() + c.len_utf8() > 7 {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn sse(events: Vec<String>, mode: &Mode) -> Response {
    let events = match mode {
        Mode::CutMidStream => events.into_iter().take(4).collect(),
        Mode::CutBeforeAnything => Vec::new(),
        _ => events,
    };
    let cut = matches!(mode, Mode::CutMidStream | Mode::CutBeforeAnything);
    let stream = futures_util::stream::unfold((events.into_iter(), cut), |(mut it, cut)| async move {
        match it.next() {
            Some(e) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(e)), (it, cut)))
            }
            None if cut => Some((Err(std::io::Error::other("cut")), (it, false))),
            None => None,
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn openai(State(f): State<Fakes>, Path(name): Path<String>, body: Bytes) -> Response {
    let mode = match f.admit(&name, &body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    if name == "mistral" {
        // Mistral refuses tool-call ids that are not nine letters and digits.
        for m in &messages {
            let ids = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
                .chain(m["tool_call_id"].as_str().map(str::to_owned));
            for id in ids {
                if id.len() != 9 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        axum::Json(json!({"object": "error", "message": format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."), "type": "invalid_request_message_error"})),
                    )
                        .into_response();
                }
            }
        }
    }
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let tool_result = (last["role"] == "tool").then(|| last["content"].as_str().unwrap_or_default().to_owned());
    let forced = matches!(req["tool_choice"].as_str(), Some("required" | "any")) || req["tool_choice"].is_object();
    let tool = req["tools"][0]["function"]["name"].as_str().filter(|_| forced);
    let structured = matches!(
        req["response_format"]["type"].as_str(),
        Some("json_schema" | "json_object")
    ) || req.get("structured_outputs").is_some();
    let a = answer(&last_user, tool_result.as_deref(), tool, structured, &mode);
    let (content, calls, finish) = match &a {
        Answer::Text(t) => (Value::String(t.clone()), None, "stop"),
        Answer::Json(v) => (Value::String(v.to_string()), None, "stop"),
        Answer::Tool { name, args } => (
            Value::Null,
            Some(
                json!([{"id": "call_Q2x9T5bVw1", "type": "function", "function": {"name": name, "arguments": args.to_string()}}]),
            ),
            "tool_calls",
        ),
    };
    let usage = json!({"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30});
    if req["stream"] == true {
        let mut events = Vec::new();
        let chunk = |delta: Value, finish: Option<&str>| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": format!("{name}-model"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        events.push(chunk(json!({"role": "assistant", "content": ""}), None));
        match &a {
            Answer::Text(_) | Answer::Json(_) => {
                for p in pieces(content.as_str().unwrap_or_default()) {
                    events.push(chunk(json!({"content": p}), None));
                }
            }
            Answer::Tool { name, args } => {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "id": "call_Q2x9T5bVw1", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
                for p in pieces(&args.to_string()) {
                    events.push(chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}),
                        None,
                    ));
                }
            }
        }
        events.push(chunk(json!({}), Some(finish)));
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": format!("{name}-model"), "choices": [], "usage": usage})
        ));
        events.push("data: [DONE]\n\n".to_owned());
        return sse(events, &mode);
    }
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if let Some(c) = calls {
        message["tool_calls"] = c;
    }
    axum::Json(
        json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": format!("{name}-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}], "usage": usage}),
    )
    .into_response()
}

async fn anthropic(State(f): State<Fakes>, Path(name): Path<String>, body: Bytes) -> Response {
    let mode = match f.admit(&name, &body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let req: Value = serde_json::from_slice(&body).unwrap();
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let text_of = |m: &Value| -> String {
        match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .map(|b| b["text"].as_str().unwrap_or_default())
                .collect(),
            _ => String::new(),
        }
    };
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user" && !text_of(m).is_empty())
        .map(text_of)
        .unwrap_or_default();
    let tool_result = messages.last().and_then(|m| {
        m["content"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["type"] == "tool_result"))
            .map(|b| b["content"].as_str().unwrap_or_default().to_owned())
    });
    let forced_name = req["tool_choice"]["name"].as_str().map(str::to_owned);
    let structured = forced_name.as_deref() == Some("rempart_structured_answer");
    let forced = matches!(req["tool_choice"]["type"].as_str(), Some("any" | "tool"));
    let tool = req["tools"][0]["name"].as_str().filter(|_| forced && !structured);
    let a = answer(&last_user, tool_result.as_deref(), tool, structured, &mode);
    let (block, stop) = match &a {
        Answer::Text(t) => (json!({"type": "text", "text": t}), "end_turn"),
        Answer::Json(v) => (
            json!({"type": "tool_use", "id": "toolu_01S", "name": "rempart_structured_answer", "input": v}),
            "tool_use",
        ),
        Answer::Tool { name, args } => (
            json!({"type": "tool_use", "id": "toolu_01A", "name": name, "input": args}),
            "tool_use",
        ),
    };
    let model = format!("{name}-model");
    if req["stream"] == true {
        let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
        let mut events = vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 21, "output_tokens": 1}}}),
            ),
            ev("ping", json!({"type": "ping"})),
        ];
        match &a {
            Answer::Text(t) => {
                events.push(ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ));
                for p in pieces(t) {
                    events.push(ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
            }
            Answer::Json(_) | Answer::Tool { .. } => {
                let mut start = block.clone();
                let input = start["input"].take();
                start["input"] = json!({});
                events.push(ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": start}),
                ));
                for p in pieces(&input.to_string()) {
                    events.push(ev(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}),
                    ));
                }
            }
        }
        events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        events.push(ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        ));
        events.push(ev("message_stop", json!({"type": "message_stop"})));
        return sse(events, &mode);
    }
    axum::Json(
        json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [block],
        "stop_reason": stop, "stop_sequence": null, "usage": {"input_tokens": 21, "output_tokens": 9}}),
    )
    .into_response()
}

async fn responses(State(f): State<Fakes>, Path(name): Path<String>, body: Bytes) -> Response {
    let mode = match f.admit(&name, &body).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let req: Value = serde_json::from_slice(&body).unwrap();
    if req["store"] != false {
        return (StatusCode::BAD_REQUEST, "the gateway must send store: false").into_response();
    }
    let input = req["input"].as_array().cloned().unwrap_or_default();
    let last_user = input
        .iter()
        .rev()
        .find(|i| i["role"] == "user")
        .and_then(|i| i["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let tool_result = input
        .last()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].as_str().unwrap_or_default().to_owned());
    let forced = req["tool_choice"] == "required" || req["tool_choice"].is_object();
    let tool = req["tools"][0]["name"].as_str().filter(|_| forced);
    let structured = matches!(
        req["text"]["format"]["type"].as_str(),
        Some("json_schema" | "json_object")
    );
    let a = answer(&last_user, tool_result.as_deref(), tool, structured, &mode);
    let item = match &a {
        Answer::Text(t) => json!({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": t, "annotations": []}]}),
        Answer::Json(v) => json!({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": v.to_string(), "annotations": []}]}),
        Answer::Tool { name, args } => {
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_R7", "name": name,
            "arguments": args.to_string(), "status": "completed"})
        }
    };
    let response = json!({"id": "resp_fake", "object": "response", "created_at": 1, "status": "completed",
        "model": format!("{name}-model"), "output": [item],
        "usage": {"input_tokens": 21, "output_tokens": 9, "total_tokens": 30}});
    if req["stream"] == true {
        let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or_default());
        let mut events = vec![ev(
            json!({"type": "response.created", "response": {"id": "resp_fake", "model": format!("{name}-model"), "status": "in_progress", "output": []}}),
        )];
        match &a {
            Answer::Text(t) => {
                for p in pieces(t) {
                    events.push(ev(json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1", "delta": p})));
                }
            }
            Answer::Json(v) => {
                for p in pieces(&v.to_string()) {
                    events.push(ev(json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1", "delta": p})));
                }
            }
            Answer::Tool { name, args } => {
                events.push(ev(json!({"type": "response.output_item.added", "output_index": 0,
                    "item": {"type": "function_call", "id": "fc_1", "call_id": "call_R7", "name": name, "arguments": ""}})));
                for p in pieces(&args.to_string()) {
                    events.push(ev(json!({"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1", "delta": p})));
                }
            }
        }
        events.push(ev(json!({"type": "response.completed", "response": response})));
        return sse(events, &mode);
    }
    axum::Json(response).into_response()
}

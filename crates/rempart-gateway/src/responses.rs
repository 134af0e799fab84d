//! OpenAI's Responses API on the wire, both ways, and always stateless.
//!
//! As a provider format every request carries `store: false`: the provider keeps nothing of the
//! exchange for later retrieval, and the whole conversation travels with each request (no
//! `previous_response_id`). As a client format (`POST /v1/responses`) the gateway keeps nothing
//! either: a request that asks for storage (`store: true`), names an earlier response or a
//! conversation, or asks to run in the background is refused by name, and every answer says
//! `store: false`. What the client sends goes through the same pseudonymization, policy and
//! ledger as Chat Completions, since it is read into the same [`ChatRequest`].

use serde_json::{Map, Value, json};

use crate::WireError;
use crate::chat::{
    Assembler, ChatRequest, ChatResponse, Delta, Finish, Message, OutputFormat, Part, Role, Tool, ToolChoice, Usage,
};
use crate::wire::{answer_schema, bad, str_field, stream_flag, text_parts, token_count};

/// The body sent to `POST /responses` for `model`.
pub fn render_request(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let mut input = Vec::new();
    for m in &req.messages {
        for p in &m.parts {
            input.push(match (m.role, p) {
                (Role::User, Part::Text { text }) => json!({"role": "user", "content": text}),
                (Role::Assistant, Part::Text { text }) => json!({"role": "assistant", "content": text}),
                (_, Part::ToolCall { id, name, arguments }) => {
                    json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments})
                }
                (_, Part::ToolResult { id, content, .. }) => {
                    json!({"type": "function_call_output", "call_id": id, "output": content})
                }
            });
        }
    }
    let mut body = json!({"model": model, "input": input, "store": false});
    if !req.system.is_empty() {
        body["instructions"] = Value::String(req.system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut v = json!({"type": "function", "name": t.name, "parameters": t.parameters, "strict": false});
                if let Some(d) = &t.description {
                    v["description"] = Value::String(d.clone());
                }
                v
            })
            .collect();
    }
    if let Some(c) = &req.tool_choice {
        body["tool_choice"] = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "name": name}),
        };
    }
    match &req.format {
        OutputFormat::Text => {}
        OutputFormat::JsonObject => body["text"] = json!({"format": {"type": "json_object"}}),
        OutputFormat::JsonSchema { name, schema, strict } => {
            body["text"] = json!({"format": {"type": "json_schema", "name": name, "schema": schema, "strict": strict}});
        }
    }
    if let Some(n) = req.max_tokens {
        body["max_output_tokens"] = json!(n);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(t) = req.top_p {
        body["top_p"] = json!(t);
    }
    if stream {
        body["stream"] = Value::Bool(true);
    }
    body
}

fn usage(v: Option<&Value>) -> Usage {
    let n = |k: &str| v.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
    }
}

fn finish(response: &Value, has_calls: bool) -> Finish {
    match response.get("status").and_then(Value::as_str) {
        Some("incomplete") => match response.pointer("/incomplete_details/reason").and_then(Value::as_str) {
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::Length,
        },
        _ if has_calls => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// Reads a response object.
pub fn parse_response(v: &Value) -> Result<ChatResponse, WireError> {
    if v.get("status").and_then(Value::as_str) == Some("failed") {
        return Err(WireError::Upstream(format!("response failed: {}", v["error"])));
    }
    let output = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::Upstream("response without output".into()))?;
    let mut parts = Vec::new();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for c in item
                    .get("content")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if c.get("type").and_then(Value::as_str) == Some("output_text") {
                        let text = c.get("text").and_then(Value::as_str).unwrap_or_default();
                        match parts.last_mut() {
                            Some(Part::Text { text: t }) => t.push_str(text),
                            _ => parts.push(Part::Text { text: text.to_owned() }),
                        }
                    }
                }
            }
            Some("function_call") => parts.push(Part::ToolCall {
                id: item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                name: item.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                arguments: item.get("arguments").and_then(Value::as_str).unwrap_or("{}").to_owned(),
            }),
            _ => {}
        }
    }
    let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    Ok(ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        parts,
        finish: finish(v, has_calls),
        usage: usage(v.get("usage")),
    })
}

/// Reads the Responses API's stream events.
#[derive(Debug, Default)]
pub struct EventReader {
    /// Call index of each output item that is a function call, by output index.
    calls: Vec<(u64, usize)>,
    pub id: Option<String>,
    pub model: Option<String>,
    /// The terminal event arrived.
    pub done: bool,
}

impl EventReader {
    pub fn read(&mut self, v: &Value) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        let output_index = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str) {
            Some("response.created") => {
                self.id = v.pointer("/response/id").and_then(Value::as_str).map(str::to_owned);
                self.model = v.pointer("/response/model").and_then(Value::as_str).map(str::to_owned);
            }
            Some("response.output_text.delta") => out.push(Delta::Text {
                text: v.get("delta").and_then(Value::as_str).unwrap_or_default().to_owned(),
            }),
            Some("response.output_item.added")
                if v.pointer("/item/type").and_then(Value::as_str) == Some("function_call") =>
            {
                let index = self.calls.len();
                self.calls.push((output_index, index));
                out.push(Delta::ToolStart {
                    index,
                    id: v
                        .pointer("/item/call_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    name: v
                        .pointer("/item/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            Some("response.function_call_arguments.delta") => {
                if let Some(&(_, index)) = self.calls.iter().find(|(o, _)| *o == output_index) {
                    out.push(Delta::ToolArgs {
                        index,
                        json: v.get("delta").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    });
                }
            }
            Some("response.completed" | "response.incomplete") => {
                self.done = true;
                let response = v.get("response").unwrap_or(&Value::Null);
                out.push(Delta::Finish {
                    finish: finish(response, !self.calls.is_empty()),
                });
                out.push(Delta::Usage {
                    usage: usage(response.get("usage")),
                });
            }
            Some("response.failed" | "error") => {
                return Err(WireError::Upstream(format!(
                    "error in stream: {}",
                    v.get("error").or_else(|| v.pointer("/response/error")).unwrap_or(v)
                )));
            }
            _ => {}
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound: a client's `POST /v1/responses`.

/// Parameters that would keep data or state outside the request: refused, with why.
const STATEFUL: &[(&str, &str)] = &[
    (
        "previous_response_id",
        "the gateway keeps no response: send the whole conversation in `input`",
    ),
    (
        "conversation",
        "the gateway keeps no conversation: send the whole conversation in `input`",
    ),
    (
        "prompt",
        "stored prompt templates are not kept by the gateway: send the text",
    ),
];

/// Parameters clients send that change nothing the gateway must honour.
const IGNORED: &[&str] = &[
    "metadata",
    "include",
    "service_tier",
    "truncation",
    "prompt_cache_key",
    "safety_identifier",
    "stream_options",
    "top_logprobs",
    "max_tool_calls",
];

/// The text of an input message's `content` or a tool's output: a string or a list of text
/// parts (the model's own earlier output and refusals included).
fn input_text(v: &Value, path: &str) -> Result<String, WireError> {
    text_parts(v, path, &["input_text", "output_text", "text", "refusal"])
}

/// An optional number (`null` is none).
fn number(v: &Value, key: &str) -> Result<Option<f64>, WireError> {
    match v {
        Value::Null => Ok(None),
        _ => v.as_f64().map(Some).ok_or_else(|| bad(key, "expected a number")),
    }
}

/// Appends a part to the conversation: tool calls join the assistant turn before them and tool
/// results the user turn of results before them, as providers expect a turn's calls together.
fn push_part(req: &mut ChatRequest, role: Role, part: Part) {
    let joins = match (&part, req.messages.last()) {
        (Part::ToolCall { .. }, Some(m)) => m.role == Role::Assistant,
        (Part::ToolResult { .. }, Some(m)) => {
            m.role == Role::User && m.parts.iter().all(|p| matches!(p, Part::ToolResult { .. }))
        }
        _ => false,
    };
    match req.messages.last_mut() {
        Some(m) if joins => m.parts.push(part),
        _ => req.messages.push(Message {
            role,
            parts: vec![part],
        }),
    }
}

fn parse_item(item: &Value, path: &str, req: &mut ChatRequest) -> Result<(), WireError> {
    let kind = match item.get("type") {
        None => "message",
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(bad(&format!("{path}.type"), "expected a string")),
    };
    match kind {
        "message" => {
            let role = str_field(item, "role", path)?;
            let text = input_text(item.get("content").unwrap_or(&Value::Null), &format!("{path}.content"))?;
            match role {
                "system" | "developer" => req.system.push(text),
                "user" => push_part(req, Role::User, Part::Text { text }),
                "assistant" if !text.is_empty() => req.messages.push(Message {
                    role: Role::Assistant,
                    parts: vec![Part::Text { text }],
                }),
                "assistant" => {}
                other => {
                    return Err(bad(
                        &format!("{path}.role"),
                        format!("`{other}` is not a role the gateway accepts"),
                    ));
                }
            }
        }
        "function_call" => push_part(
            req,
            Role::Assistant,
            Part::ToolCall {
                id: str_field(item, "call_id", path)?.to_owned(),
                name: str_field(item, "name", path)?.to_owned(),
                arguments: item.get("arguments").and_then(Value::as_str).unwrap_or("{}").to_owned(),
            },
        ),
        "function_call_output" => push_part(
            req,
            Role::User,
            Part::ToolResult {
                id: str_field(item, "call_id", path)?.to_owned(),
                content: input_text(item.get("output").unwrap_or(&Value::Null), &format!("{path}.output"))?,
                is_error: false,
            },
        ),
        // A provider's reasoning, handed back: opaque to the gateway and meaningless to another
        // provider; it is not forwarded.
        "reasoning" => {}
        "item_reference" => {
            return Err(bad(
                &format!("{path}.type"),
                "the gateway keeps no items to refer to: send the item itself",
            ));
        }
        other => {
            return Err(bad(
                &format!("{path}.type"),
                format!("`{other}` items are not accepted by the gateway"),
            ));
        }
    }
    Ok(())
}

/// Reads a client's `POST /v1/responses` body.
pub fn parse_request(body: &Value) -> Result<ChatRequest, WireError> {
    let obj = body
        .as_object()
        .ok_or_else(|| WireError::Request("the body is not a JSON object".into()))?;
    let model = str_field(body, "model", "$")?.to_owned();
    // The usage always ends a Responses stream.
    let mut req = ChatRequest {
        stream_usage: true,
        ..ChatRequest::new(model)
    };
    let mut input_seen = false;
    for (key, v) in obj {
        match key.as_str() {
            "model" => {}
            "input" => {
                input_seen = true;
                match v {
                    Value::String(text) => push_part(&mut req, Role::User, Part::Text { text: text.clone() }),
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            parse_item(item, &format!("input[{i}]"), &mut req)?;
                        }
                    }
                    _ => return Err(bad("input", "expected a string or a list of items")),
                }
            }
            "instructions" => match v {
                Value::Null => {}
                Value::String(s) => req.system.insert(0, s.clone()),
                _ => return Err(bad("instructions", "expected a string")),
            },
            "tools" => {
                for (i, t) in v
                    .as_array()
                    .ok_or_else(|| bad("tools", "expected a list"))?
                    .iter()
                    .enumerate()
                {
                    let path = format!("tools[{i}]");
                    match t.get("type").and_then(Value::as_str) {
                        Some("function") => {}
                        Some(other) => {
                            return Err(bad(
                                &format!("{path}.type"),
                                format!("hosted tool `{other}` is not offered by the gateway (function tools only)"),
                            ));
                        }
                        None => return Err(bad(&format!("{path}.type"), "missing")),
                    }
                    req.tools.push(Tool {
                        name: str_field(t, "name", &path)?.to_owned(),
                        description: t.get("description").and_then(Value::as_str).map(str::to_owned),
                        parameters: t
                            .get("parameters")
                            .filter(|p| !p.is_null())
                            .cloned()
                            .unwrap_or_else(|| json!({"type": "object"})),
                    });
                }
            }
            "tool_choice" => {
                req.tool_choice = Some(match v {
                    Value::String(s) if s == "auto" => ToolChoice::Auto,
                    Value::String(s) if s == "none" => ToolChoice::None,
                    Value::String(s) if s == "required" => ToolChoice::Required,
                    Value::Object(_) if v.get("type").and_then(Value::as_str) == Some("function") => {
                        ToolChoice::Tool(str_field(v, "name", "tool_choice")?.to_owned())
                    }
                    _ => return Err(bad("tool_choice", "expected auto, none, required or a function")),
                });
            }
            "text" => {
                if let Some(f) = v.get("format") {
                    req.format = match f.get("type").and_then(Value::as_str) {
                        Some("text") => OutputFormat::Text,
                        Some("json_object") => OutputFormat::JsonObject,
                        Some("json_schema") => OutputFormat::JsonSchema {
                            name: f.get("name").and_then(Value::as_str).unwrap_or("response").to_owned(),
                            schema: answer_schema(f.get("schema"), "text.format.schema")?,
                            strict: f.get("strict").and_then(Value::as_bool).unwrap_or(false),
                        },
                        _ => return Err(bad("text.format.type", "expected text, json_object or json_schema")),
                    };
                }
            }
            "max_output_tokens" => {
                req.max_tokens = match v {
                    Value::Null => None,
                    _ => Some(token_count(v, key)?),
                };
            }
            "temperature" => req.temperature = number(v, key)?,
            "top_p" => req.top_p = number(v, key)?,
            "stream" => req.stream = stream_flag(v)?,
            "store" if v.as_bool() == Some(true) => {
                return Err(bad(
                    "store",
                    "the gateway keeps no response, nor lets a provider keep one: send `store: false`",
                ));
            }
            "store" => {}
            "background" if v.as_bool() == Some(true) => {
                return Err(bad(
                    "background",
                    "the gateway answers in the request, never in the background",
                ));
            }
            "background" => {}
            "user" => req.user = v.as_str().map(str::to_owned),
            "parallel_tool_calls" => {
                req.extra.insert(key.clone(), v.clone());
            }
            "reasoning" => {
                if let Some(effort) = v.get("effort").filter(|e| e.is_string()) {
                    req.extra.insert("reasoning_effort".to_owned(), effort.clone());
                }
            }
            k if IGNORED.contains(&k) => {}
            other => match STATEFUL.iter().find(|(name, _)| *name == other) {
                Some(_) if v.is_null() => {}
                Some((_, why)) => return Err(bad(other, why)),
                None => return Err(bad(other, "unknown parameter")),
            },
        }
    }
    if !input_seen || req.messages.is_empty() {
        return Err(bad("input", "at least one message is needed"));
    }
    Ok(req)
}

/// What a response object repeats of its request.
#[derive(Debug, Clone)]
pub struct Echo(Map<String, Value>);

impl Echo {
    pub fn of(req: &ChatRequest) -> Echo {
        let mut m = Map::new();
        m.insert(
            "instructions".into(),
            if req.system.is_empty() {
                Value::Null
            } else {
                Value::String(req.system.join("\n\n"))
            },
        );
        m.insert(
            "tools".into(),
            req.tools
                .iter()
                .map(|t| json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters, "strict": false}))
                .collect(),
        );
        m.insert(
            "tool_choice".into(),
            match &req.tool_choice {
                None | Some(ToolChoice::Auto) => json!("auto"),
                Some(ToolChoice::None) => json!("none"),
                Some(ToolChoice::Required) => json!("required"),
                Some(ToolChoice::Tool(name)) => json!({"type": "function", "name": name}),
            },
        );
        m.insert(
            "text".into(),
            json!({"format": match &req.format {
                OutputFormat::Text => json!({"type": "text"}),
                OutputFormat::JsonObject => json!({"type": "json_object"}),
                OutputFormat::JsonSchema { name, schema, strict } => {
                    json!({"type": "json_schema", "name": name, "schema": schema, "strict": strict})
                }
            }}),
        );
        m.insert("temperature".into(), json!(req.temperature.unwrap_or(1.0)));
        m.insert("top_p".into(), json!(req.top_p.unwrap_or(1.0)));
        m.insert("max_output_tokens".into(), json!(req.max_tokens));
        m.insert(
            "parallel_tool_calls".into(),
            req.extra
                .get("parallel_tool_calls")
                .cloned()
                .unwrap_or(Value::Bool(true)),
        );
        if let Some(user) = &req.user {
            m.insert("user".into(), json!(user));
        }
        Echo(m)
    }
}

/// The output items of an answer: runs of text as one message, each tool call as a function
/// call. Item ids derive from the response's.
fn output_items(id: &str, parts: &[Part]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for p in parts {
        let n = out.len();
        match p {
            Part::Text { text } => out.push(message_item(&format!("msg_{id}_{n}"), text, "completed")),
            Part::ToolCall {
                id: call,
                name,
                arguments,
            } => {
                out.push(call_item(&format!("fc_{id}_{n}"), call, name, arguments, "completed"));
            }
            Part::ToolResult { .. } => {}
        }
    }
    out
}

fn message_item(item_id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": item_id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn call_item(item_id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
        "arguments": arguments, "status": status})
}

fn usage_object(u: Usage) -> Value {
    json!({"input_tokens": u.input_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.input_tokens + u.output_tokens})
}

/// The response object: `status` is `in_progress` while a stream runs, then what `finish` says.
fn response_object(
    id: &str,
    model: &str,
    created: i64,
    echo: &Echo,
    output: Vec<Value>,
    end: Option<(Finish, Usage)>,
) -> Value {
    let (status, incomplete) = match end {
        None => ("in_progress", Value::Null),
        Some((Finish::Length, _)) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some((Finish::ContentFilter, _)) => ("incomplete", json!({"reason": "content_filter"})),
        Some(_) => ("completed", Value::Null),
    };
    let mut v = json!({
        "id": id, "object": "response", "created_at": created, "status": status, "model": model,
        "output": output, "error": null, "incomplete_details": incomplete, "metadata": {},
        "store": false, "background": false, "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
        "truncation": "disabled",
    });
    // Usage is known once the answer is: absent from a stream's first snapshots.
    if let Some((_, u)) = end {
        v["usage"] = usage_object(u);
    }
    if let Value::Object(m) = &mut v {
        m.extend(echo.0.clone());
    }
    v
}

/// A complete answer as the Responses API writes it; `model` is the name the client asked for.
pub fn render_response(r: &ChatResponse, id: &str, model: &str, created: i64, echo: &Echo) -> Value {
    response_object(
        id,
        model,
        created,
        echo,
        output_items(id, &r.parts),
        Some((r.finish, r.usage)),
    )
}

/// An open output item of a stream.
#[derive(Debug)]
enum Open {
    Text { item: String, text: String },
    Call { call: usize },
}

/// Writes deltas as Responses stream events (`event: response.…` / `data: {...}`), from
/// `response.created` to `response.completed`, numbered by `sequence_number`.
#[derive(Debug)]
pub struct EventWriter {
    id: String,
    model: String,
    created: i64,
    echo: Echo,
    sequence: u64,
    started: bool,
    open: Option<(usize, Open)>,
    next_output: usize,
    /// Output index and item id of each tool call, by call index.
    calls: Vec<(usize, usize, String)>,
    /// What was written, for the final response object.
    assembled: Assembler,
}

impl EventWriter {
    pub fn new(id: String, model: String, created: i64, echo: Echo) -> Self {
        EventWriter {
            id,
            model,
            created,
            echo,
            sequence: 0,
            started: false,
            open: None,
            next_output: 0,
            calls: Vec::new(),
            assembled: Assembler::default(),
        }
    }

    fn event(&mut self, out: &mut String, name: &str, mut v: Value) {
        v["type"] = Value::String(name.to_owned());
        v["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push_str(&format!("event: {name}\ndata: {v}\n\n"));
    }

    fn snapshot(&self, end: Option<(Finish, Usage)>, output: Vec<Value>) -> Value {
        response_object(&self.id, &self.model, self.created, &self.echo, output, end)
    }

    fn start(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            let r = self.snapshot(None, Vec::new());
            self.event(out, "response.created", json!({"response": r}));
            self.event(out, "response.in_progress", json!({"response": r}));
        }
    }

    fn close(&mut self, out: &mut String) {
        match self.open.take() {
            Some((index, Open::Text { item, text })) => {
                self.event(
                    out,
                    "response.output_text.done",
                    json!({"item_id": item, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"item_id": item, "output_index": index, "content_index": 0,
                        "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}}),
                );
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": message_item(&item, &text, "completed")}),
                );
            }
            Some((index, Open::Call { call })) => {
                let Some((_, _, item)) = self.calls.iter().find(|(c, _, _)| *c == call).cloned() else {
                    return;
                };
                let (call_id, name, arguments) = self.assembled_call(call).unwrap_or_default();
                self.event(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": item, "output_index": index, "name": name, "arguments": arguments}),
                );
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": call_item(&item, &call_id, &name, &arguments, "completed")}),
                );
            }
            None => {}
        }
    }

    /// Id, name and arguments so far of tool call `call`.
    fn assembled_call(&self, call: usize) -> Option<(String, String, String)> {
        let n = self.calls.iter().position(|(c, _, _)| *c == call)?;
        self.assembled
            .parts()
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id, name, arguments } => Some((id.clone(), name.clone(), arguments.clone())),
                _ => None,
            })
            .nth(n)
    }

    /// The SSE text for one delta (possibly empty).
    pub fn write(&mut self, d: &Delta) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.assembled.push(d);
        match d {
            Delta::Text { text } => {
                if !matches!(self.open, Some((_, Open::Text { .. }))) {
                    self.close(&mut out);
                    let index = self.next_output;
                    self.next_output += 1;
                    let item = format!("msg_{}_{index}", self.id);
                    self.event(
                        &mut out,
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"type": "message", "id": item, "status": "in_progress", "role": "assistant", "content": []}}),
                    );
                    self.event(
                        &mut out,
                        "response.content_part.added",
                        json!({"item_id": item, "output_index": index, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
                    );
                    self.open = Some((
                        index,
                        Open::Text {
                            item,
                            text: String::new(),
                        },
                    ));
                }
                let Some((index, Open::Text { item, text: all })) = &mut self.open else {
                    return out;
                };
                all.push_str(text);
                let v =
                    json!({"item_id": item, "output_index": *index, "content_index": 0, "delta": text, "logprobs": []});
                self.event(&mut out, "response.output_text.delta", v);
            }
            Delta::ToolStart { index: call, id, name } => {
                self.close(&mut out);
                let index = self.next_output;
                self.next_output += 1;
                let item = format!("fc_{}_{index}", self.id);
                self.calls.push((*call, index, item.clone()));
                self.open = Some((index, Open::Call { call: *call }));
                self.event(
                    &mut out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": call_item(&item, id, name, "", "in_progress")}),
                );
            }
            Delta::ToolArgs { index: call, json } => {
                if let Some((_, index, item)) = self.calls.iter().find(|(c, _, _)| c == call).cloned() {
                    self.event(
                        &mut out,
                        "response.function_call_arguments.delta",
                        json!({"item_id": item, "output_index": index, "delta": json}),
                    );
                }
            }
            Delta::Finish { .. } | Delta::Usage { .. } => {}
        }
        out
    }

    /// The end of a stream that completed: the last item closed, then the whole response.
    pub fn done(&mut self) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.close(&mut out);
        let finish = self.assembled.finish.unwrap_or(if self.calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        });
        let r = self.snapshot(
            Some((finish, self.assembled.usage)),
            output_items(&self.id, self.assembled.parts()),
        );
        let name = if r["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.event(&mut out, name, json!({"response": r}));
        out
    }

    /// The end of a stream that failed after it started: an error event, as OpenAI sends one.
    pub fn error(&mut self, message: &str) -> String {
        let mut out = String::new();
        self.event(
            &mut out,
            "error",
            json!({"code": "stream_interrupted", "message": message, "param": null}),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai;

    #[test]
    fn requests_never_ask_the_provider_to_store_and_carry_the_whole_conversation() {
        let req = openai::parse_request(&json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "look up 10.1.2.3"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "scanner"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"}}}}))
        .unwrap();
        let body = render_request(&req, "gpt", false);
        assert_eq!(body["store"], false);
        assert_eq!(body["instructions"], "Be brief.");
        assert_eq!(body["input"][1]["type"], "function_call");
        assert_eq!(
            body["input"][2],
            json!({"type": "function_call_output", "call_id": "call_1", "output": "scanner"})
        );
        assert_eq!(body["text"]["format"]["type"], "json_schema");
    }

    #[test]
    fn output_items_become_text_and_tool_calls() {
        let r = parse_response(&json!({"id": "resp_1", "model": "gpt", "status": "completed", "output": [
            {"type": "reasoning", "summary": []},
            {"type": "function_call", "call_id": "call_9", "name": "lookup", "arguments": "{\"q\":1}"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done", "annotations": []}]}],
            "usage": {"input_tokens": 5, "output_tokens": 7}}))
        .unwrap();
        assert_eq!(r.finish, Finish::ToolCalls);
        assert_eq!(r.text(), "done");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 5,
                output_tokens: 7
            }
        );
    }

    #[test]
    fn a_client_conversation_is_read_turn_by_turn() {
        let req = parse_request(&json!({"model": "rempart/triage", "instructions": "Be brief.", "input": [
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "look up "}, {"type": "input_text", "text": "10.1.2.3"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "lookup", "arguments": "{\"ip\":\"10.1.2.3\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "scanner"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "none"}]}],
            "tools": [{"type": "function", "name": "lookup", "parameters": null, "strict": true}],
            "tool_choice": {"type": "function", "name": "lookup"},
            "text": {"format": {"type": "json_schema", "name": "v", "schema": {"type": "object"}, "strict": true}},
            "max_output_tokens": 100, "temperature": null, "store": false, "user": "u1",
            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "low"}}))
        .unwrap();
        assert_eq!(req.system, ["Be brief.", "Answer in French."]);
        assert_eq!(req.messages.len(), 3, "{:?}", req.messages);
        assert_eq!(
            req.messages[0].parts,
            [Part::Text {
                text: "look up 10.1.2.3".into()
            }]
        );
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert_eq!(req.messages[1].parts.len(), 3, "the text and both calls of the turn");
        assert!(
            req.messages[2]
                .parts
                .iter()
                .all(|p| matches!(p, Part::ToolResult { .. }))
        );
        assert_eq!(req.messages[2].parts.len(), 2);
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool("lookup".into())));
        assert_eq!(req.tools[0].parameters, json!({"type": "object"}));
        assert!(matches!(req.format, OutputFormat::JsonSchema { strict: true, .. }));
        assert_eq!(
            (req.max_tokens, req.temperature, req.user.as_deref()),
            (Some(100), None, Some("u1"))
        );
        assert_eq!(req.extra["reasoning_effort"], "low");
    }

    #[test]
    fn state_kept_outside_the_request_is_refused_by_name() {
        let base = || json!({"model": "m", "input": "hi"});
        for (key, value, says) in [
            ("store", json!(true), "store: false"),
            ("previous_response_id", json!("resp_1"), "whole conversation"),
            ("conversation", json!("conv_1"), "whole conversation"),
            ("prompt", json!({"id": "pmpt_1"}), "templates"),
            ("background", json!(true), "background"),
            ("frobnicate", json!(1), "unknown parameter"),
        ] {
            let mut body = base();
            body[key] = value;
            let e = parse_request(&body).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")) && e.contains(says), "{key}: {e}");
        }
        for (body, path) in [
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input[0].type",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
                "input[0].content[0].type",
            ),
            (
                json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
                "tools[0].type",
            ),
            (json!({"model": "m", "input": []}), "input"),
            (json!({"model": "m"}), "input"),
            (
                json!({"model": "m", "input": "hi", "temperature": "hot"}),
                "temperature",
            ),
        ] {
            let e = parse_request(&body).unwrap_err().to_string();
            assert!(e.contains(&format!("`{path}`")), "{body}: {e}");
        }
        // Absent, `store` is taken as false, never as the API's default.
        assert!(parse_request(&json!({"model": "m", "input": "hi", "store": null})).is_ok());
    }

    /// Reads an event stream back into (event name, data) pairs.
    fn events(sse: &str) -> Vec<(String, Value)> {
        sse.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    #[test]
    fn a_stream_spells_the_same_response_as_a_whole_answer() {
        let req = parse_request(&json!({"model": "rempart/triage", "input": "hi"})).unwrap();
        let echo = Echo::of(&req);
        let mut w = EventWriter::new("resp_1".into(), "rempart/triage".into(), 7, echo.clone());
        let deltas = [
            Delta::Text { text: "Look".into() },
            Delta::Text { text: "ing.".into() },
            Delta::ToolStart {
                index: 0,
                id: "call_1".into(),
                name: "lookup".into(),
            },
            Delta::ToolArgs {
                index: 0,
                json: "{\"ip\":".into(),
            },
            Delta::ToolArgs {
                index: 0,
                json: "\"10.1.2.3\"}".into(),
            },
            Delta::Finish {
                finish: Finish::ToolCalls,
            },
            Delta::Usage {
                usage: Usage {
                    input_tokens: 3,
                    output_tokens: 4,
                },
            },
        ];
        let mut sse = String::new();
        let mut assembled = Assembler::default();
        for d in &deltas {
            sse.push_str(&w.write(d));
            assembled.push(d);
        }
        sse.push_str(&w.done());
        let events = events(&sse);
        let sequence: Vec<u64> = events
            .iter()
            .map(|(_, v)| v["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(sequence, (0..events.len() as u64).collect::<Vec<_>>());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        // Every item is closed as it was opened, and the final object is the whole answer's.
        for (name, v) in &events {
            if name == "response.output_item.done" {
                let added = events
                    .iter()
                    .find(|(n, a)| n == "response.output_item.added" && a["output_index"] == v["output_index"])
                    .unwrap();
                assert_eq!(added.1["item"]["id"], v["item"]["id"]);
            }
        }
        let whole = render_response(
            &assembled.finish("x".into(), "x".into()),
            "resp_1",
            "rempart/triage",
            7,
            &echo,
        );
        assert_eq!(events.last().unwrap().1["response"], whole);
        assert_eq!(whole["output"][1]["arguments"], "{\"ip\":\"10.1.2.3\"}");
        assert_eq!(whole["usage"]["total_tokens"], 7);
        assert_eq!(whole["store"], false);
        assert_eq!(events[0].1["response"]["status"], "in_progress");
    }

    #[test]
    fn an_answer_cut_by_its_length_is_incomplete() {
        let req = parse_request(&json!({"model": "m", "input": "hi", "max_output_tokens": 1})).unwrap();
        let mut w = EventWriter::new("resp_2".into(), "m".into(), 0, Echo::of(&req));
        let mut sse = w.write(&Delta::Text { text: "a".into() });
        sse.push_str(&w.write(&Delta::Finish { finish: Finish::Length }));
        sse.push_str(&w.done());
        let (name, last) = events(&sse).pop().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(last["response"]["max_output_tokens"], 1);
    }
}

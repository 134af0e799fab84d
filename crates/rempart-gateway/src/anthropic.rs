//! Anthropic Messages on the wire, both ways. A JSON Schema answer is obtained from Claude by a
//! forced tool whose input schema is the schema, and handed back as JSON text.

use serde_json::{Value, json};

use crate::WireError;
use crate::chat::{
    ChatRequest, ChatResponse, Delta, Finish, Message, OutputFormat, Part, Role, Tool, ToolChoice, Usage,
};
use crate::wire::{answer_schema, bad, stream_flag, text_parts, token_count};

/// The API version every request is sent with.
pub const VERSION: &str = "2023-06-01";

/// The tool a JSON Schema answer is asked through.
const SCHEMA_TOOL: &str = "rempart_structured_answer";

/// Parameters clients send that change nothing the gateway must honour.
const IGNORED: &[&str] = &["top_k", "service_tier", "container", "mcp_servers", "thinking"];

fn text_blocks(v: &Value, path: &str) -> Result<String, WireError> {
    text_parts(v, path, &["text"])
}

/// Reads a client's `POST /v1/messages` body.
pub fn parse_request(body: &Value) -> Result<ChatRequest, WireError> {
    let obj = body
        .as_object()
        .ok_or_else(|| WireError::Request("the body is not a JSON object".into()))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("model", "missing"))?
        .to_owned();
    // Anthropic streams always carry usage.
    let mut req = ChatRequest {
        stream_usage: true,
        ..ChatRequest::new(model)
    };
    for (key, v) in obj {
        match key.as_str() {
            "model" => {}
            "max_tokens" => {
                req.max_tokens = Some(token_count(v, key)?);
            }
            "system" => req.system.push(text_blocks(v, "system")?),
            "messages" => {
                for (i, m) in v
                    .as_array()
                    .ok_or_else(|| bad("messages", "expected a list"))?
                    .iter()
                    .enumerate()
                {
                    req.messages.push(parse_message(m, &format!("messages[{i}]"))?);
                }
            }
            "tools" => {
                for (i, t) in v
                    .as_array()
                    .ok_or_else(|| bad("tools", "expected a list"))?
                    .iter()
                    .enumerate()
                {
                    let path = format!("tools[{i}]");
                    if let Some(kind) = t.get("type").and_then(Value::as_str)
                        && kind != "custom"
                    {
                        return Err(bad(
                            &format!("{path}.type"),
                            format!("server tool `{kind}` is not offered by the gateway"),
                        ));
                    }
                    req.tools.push(Tool {
                        name: t
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(&format!("{path}.name"), "missing"))?
                            .to_owned(),
                        description: t.get("description").and_then(Value::as_str).map(str::to_owned),
                        parameters: t
                            .get("input_schema")
                            .cloned()
                            .unwrap_or_else(|| json!({"type": "object"})),
                    });
                }
            }
            "tool_choice" => {
                req.tool_choice = Some(match v.get("type").and_then(Value::as_str) {
                    Some("auto") => ToolChoice::Auto,
                    Some("none") => ToolChoice::None,
                    Some("any") => ToolChoice::Required,
                    Some("tool") => ToolChoice::Tool(
                        v.get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("tool_choice.name", "missing"))?
                            .to_owned(),
                    ),
                    _ => return Err(bad("tool_choice.type", "expected auto, any, tool or none")),
                });
            }
            "temperature" => req.temperature = Some(v.as_f64().ok_or_else(|| bad(key, "expected a number"))?),
            "top_p" => req.top_p = Some(v.as_f64().ok_or_else(|| bad(key, "expected a number"))?),
            "stop_sequences" => {
                req.stop = v
                    .as_array()
                    .ok_or_else(|| bad(key, "expected a list"))?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(key, "expected strings"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "stream" => req.stream = stream_flag(v)?,
            "metadata" => req.user = v.get("user_id").and_then(Value::as_str).map(str::to_owned),
            // `output_config.format` today, `output_format` in the earlier beta; `effort` is the
            // provider's business.
            "output_config" | "output_format" => {
                let (f, path) = if key == "output_config" {
                    (v.get("format").unwrap_or(&Value::Null), "output_config.format")
                } else {
                    (v, "output_format")
                };
                match f.get("type").and_then(Value::as_str) {
                    Some("json_schema") => {
                        req.format = OutputFormat::JsonSchema {
                            name: "response".into(),
                            schema: answer_schema(f.get("schema"), &format!("{path}.schema"))?,
                            strict: true,
                        };
                    }
                    None if f.is_null() => {}
                    _ => return Err(bad(&format!("{path}.type"), "expected json_schema")),
                }
            }
            k if IGNORED.contains(&k) => {}
            other => return Err(bad(other, "unknown parameter")),
        }
    }
    if req.max_tokens.is_none() {
        return Err(bad("max_tokens", "missing"));
    }
    if req.messages.is_empty() {
        return Err(bad("messages", "at least one message is needed"));
    }
    Ok(req)
}

fn parse_message(m: &Value, path: &str) -> Result<Message, WireError> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => return Err(bad(&format!("{path}.role"), "expected user or assistant")),
    };
    let content = m
        .get("content")
        .ok_or_else(|| bad(&format!("{path}.content"), "missing"))?;
    let parts = match content {
        Value::String(s) => vec![Part::Text { text: s.clone() }],
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let p = format!("{path}.content[{i}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(Part::Text {
                        text: b
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(&format!("{p}.text"), "missing"))?
                            .to_owned(),
                    }),
                    Some("tool_use") => parts.push(Part::ToolCall {
                        id: b
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(&format!("{p}.id"), "missing"))?
                            .to_owned(),
                        name: b
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(&format!("{p}.name"), "missing"))?
                            .to_owned(),
                        arguments: b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                    }),
                    Some("tool_result") => parts.push(Part::ToolResult {
                        id: b
                            .get("tool_use_id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(&format!("{p}.tool_use_id"), "missing"))?
                            .to_owned(),
                        content: match b.get("content") {
                            None => String::new(),
                            Some(c) => text_blocks(c, &format!("{p}.content"))?,
                        },
                        is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                    }),
                    // Earlier reasoning is the provider's own business; it is not forwarded.
                    Some("thinking" | "redacted_thinking") => {}
                    other => {
                        return Err(bad(
                            &format!("{p}.type"),
                            format!("`{}` content is not accepted by the gateway", other.unwrap_or("?")),
                        ));
                    }
                }
            }
            parts
        }
        _ => return Err(bad(&format!("{path}.content"), "expected a string or a list of blocks")),
    };
    Ok(Message { role, parts })
}

/// The body sent to Anthropic for `model`.
pub fn render_request(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let blocks: Vec<Value> = m
                .parts
                .iter()
                .map(|p| match p {
                    Part::Text { text } => json!({"type": "text", "text": text}),
                    Part::ToolCall { id, name, arguments } => json!({"type": "tool_use", "id": id, "name": name,
                        "input": serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}))}),
                    Part::ToolResult { id, content, is_error } => {
                        json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error})
                    }
                })
                .collect();
            json!({"role": match m.role { Role::User => "user", Role::Assistant => "assistant" }, "content": blocks})
        })
        .collect();
    let mut body = json!({"model": model, "max_tokens": req.max_tokens.unwrap_or(4096), "messages": messages});
    if !req.system.is_empty() {
        body["system"] = Value::String(req.system.join("\n\n"));
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut v = json!({"name": t.name, "input_schema": t.parameters});
            if let Some(d) = &t.description {
                v["description"] = Value::String(d.clone());
            }
            v
        })
        .collect();
    let mut choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    });
    match &req.format {
        OutputFormat::JsonSchema { schema, .. } => {
            tools.push(json!({"name": SCHEMA_TOOL, "description": "Give the answer in this structure.", "input_schema": schema}));
            choice = Some(json!({"type": "tool", "name": SCHEMA_TOOL}));
        }
        OutputFormat::JsonObject => {
            tools.push(json!({"name": SCHEMA_TOOL, "description": "Give the answer as a JSON object.", "input_schema": {"type": "object"}}));
            choice = Some(json!({"type": "tool", "name": SCHEMA_TOOL}));
        }
        OutputFormat::Text => {}
    }
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    if let Some(c) = choice {
        body["tool_choice"] = c;
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(t) = req.top_p {
        body["top_p"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if let Some(u) = &req.user {
        body["metadata"] = json!({"user_id": u});
    }
    if stream {
        body["stream"] = Value::Bool(true);
    }
    body
}

fn finish(reason: Option<&str>) -> Option<Finish> {
    Some(match reason? {
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "tool_use" => Finish::ToolCalls,
        "refusal" => Finish::ContentFilter,
        _ => Finish::Stop,
    })
}

fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::ContentFilter => "refusal",
    }
}

fn usage(v: Option<&Value>) -> Usage {
    let n = |k: &str| v.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
        output_tokens: n("output_tokens"),
    }
}

/// Reads Anthropic's answer; the forced schema tool's input becomes the text.
pub fn parse_response(v: &Value) -> Result<ChatResponse, WireError> {
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(WireError::Upstream(format!("error: {}", v["error"])));
    }
    let mut parts = Vec::new();
    let mut structured = false;
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::Upstream("message without content".into()))?
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(Part::Text {
                text: b.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            }),
            Some("tool_use") if b.get("name").and_then(Value::as_str) == Some(SCHEMA_TOOL) => {
                structured = true;
                parts.retain(|p| !matches!(p, Part::Text { .. }));
                parts.push(Part::Text {
                    text: b.get("input").map(Value::to_string).unwrap_or_default(),
                });
            }
            Some("tool_use") => parts.push(Part::ToolCall {
                id: b.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                name: b.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                arguments: b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
            }),
            _ => {}
        }
    }
    let finish = if structured {
        Finish::Stop
    } else {
        finish(v.get("stop_reason").and_then(Value::as_str)).unwrap_or(Finish::Stop)
    };
    Ok(ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        parts,
        finish,
        usage: usage(v.get("usage")),
    })
}

/// Reads Anthropic's stream events.
#[derive(Debug, Default)]
pub struct EventReader {
    /// Stream index of each content block that is a tool call, and whether it is the schema tool.
    blocks: Vec<(usize, usize, bool)>,
    calls: usize,
    usage: Usage,
    pub id: Option<String>,
    pub model: Option<String>,
}

impl EventReader {
    pub fn read(&mut self, v: &Value) -> Result<Vec<Delta>, WireError> {
        let mut out = Vec::new();
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let m = &v["message"];
                self.id = m.get("id").and_then(Value::as_str).map(str::to_owned);
                self.model = m.get("model").and_then(Value::as_str).map(str::to_owned);
                self.usage = usage(m.get("usage"));
            }
            Some("content_block_start") => {
                let block = &v["content_block"];
                let index = v
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(0);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(SCHEMA_TOOL) => {
                        self.blocks.push((index, 0, true));
                    }
                    Some("tool_use") => {
                        self.blocks.push((index, self.calls, false));
                        out.push(Delta::ToolStart {
                            index: self.calls,
                            id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        });
                        self.calls += 1;
                    }
                    Some("text") => {
                        if let Some(t) = block.get("text").and_then(Value::as_str)
                            && !t.is_empty()
                        {
                            out.push(Delta::Text { text: t.to_owned() });
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_delta") => {
                let index = v
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(0);
                let d = &v["delta"];
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => out.push(Delta::Text {
                        text: d.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    }),
                    Some("input_json_delta") => {
                        let json = d
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        match self.blocks.iter().find(|(i, _, _)| *i == index) {
                            Some((_, _, true)) => out.push(Delta::Text { text: json }),
                            Some((_, call, false)) => out.push(Delta::ToolArgs { index: *call, json }),
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                let u = usage(v.get("usage"));
                self.usage.output_tokens = self.usage.output_tokens.max(u.output_tokens);
                self.usage.input_tokens = self.usage.input_tokens.max(u.input_tokens);
                let structured = self.blocks.iter().any(|b| b.2);
                let f = if structured {
                    Some(Finish::Stop)
                } else {
                    finish(v.pointer("/delta/stop_reason").and_then(Value::as_str))
                };
                if let Some(f) = f {
                    out.push(Delta::Finish { finish: f });
                }
                out.push(Delta::Usage { usage: self.usage });
            }
            Some("error") => return Err(WireError::Upstream(format!("error in stream: {}", v["error"]))),
            _ => {}
        }
        Ok(out)
    }
}

/// A complete answer as Anthropic writes it; `model` is the name the client asked for.
pub fn render_response(r: &ChatResponse, model: &str) -> Value {
    let content: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text } => Some(json!({"type": "text", "text": text})),
            Part::ToolCall { id, name, arguments } => Some(json!({"type": "tool_use", "id": id, "name": name,
                "input": serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}))})),
            Part::ToolResult { .. } => None,
        })
        .collect();
    json!({"id": r.id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(r.finish), "stop_sequence": null,
        "usage": {"input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens}})
}

/// Writes deltas as Anthropic stream events.
#[derive(Debug)]
pub struct EventWriter {
    id: String,
    model: String,
    started: bool,
    /// The open content block: its index and whether it is text.
    open: Option<(usize, bool)>,
    next_block: usize,
    /// Content block of each tool call, by call index.
    calls: Vec<(usize, usize)>,
    finish: Option<Finish>,
    usage: Usage,
}

fn event(name: &str, v: &Value) -> String {
    format!("event: {name}\ndata: {v}\n\n")
}

impl EventWriter {
    pub fn new(id: String, model: String) -> Self {
        EventWriter {
            id,
            model,
            started: false,
            open: None,
            next_block: 0,
            calls: Vec::new(),
            finish: None,
            usage: Usage::default(),
        }
    }

    fn start(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            out.push_str(&event(
                "message_start",
                &json!({"type": "message_start", "message": {"id": self.id, "type": "message", "role": "assistant",
                    "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            ));
        }
    }

    fn close(&mut self, out: &mut String) {
        if let Some((index, _)) = self.open.take() {
            out.push_str(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    pub fn write(&mut self, d: &Delta) -> String {
        let mut out = String::new();
        self.start(&mut out);
        match d {
            Delta::Text { text } => {
                if !matches!(self.open, Some((_, true))) {
                    self.close(&mut out);
                    let index = self.next_block;
                    self.next_block += 1;
                    self.open = Some((index, true));
                    out.push_str(&event(
                        "content_block_start",
                        &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                    ));
                }
                let index = self.open.map_or(0, |o| o.0);
                out.push_str(&event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            Delta::ToolStart { index: call, id, name } => {
                self.close(&mut out);
                let index = self.next_block;
                self.next_block += 1;
                self.open = Some((index, false));
                self.calls.push((*call, index));
                out.push_str(&event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                ));
            }
            Delta::ToolArgs { index: call, json } => {
                if let Some(&(_, index)) = self.calls.iter().find(|(c, _)| c == call) {
                    out.push_str(&event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": json}}),
                    ));
                }
            }
            Delta::Finish { finish } => self.finish = Some(*finish),
            Delta::Usage { usage } => self.usage = *usage,
        }
        out
    }

    /// The end of a stream that completed.
    pub fn done(&mut self) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.close(&mut out);
        let reason = stop_reason(self.finish.unwrap_or(Finish::Stop));
        out.push_str(&event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}}),
        ));
        out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
        out
    }

    /// The end of a stream that failed after it started, as Anthropic reports one.
    pub fn error(&self, message: &str) -> String {
        event("error", &error_body(message, "api_error"))
    }
}

/// An error as Anthropic writes one.
pub fn error_body(message: &str, kind: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_answer_comes_back_as_json_text() {
        let req = ChatRequest {
            format: OutputFormat::JsonSchema {
                name: "verdict".into(),
                schema: json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}),
                strict: true,
            },
            ..parse_request(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
                .unwrap()
        };
        let body = render_request(&req, "claude", false);
        assert_eq!(body["tool_choice"]["name"], SCHEMA_TOOL);
        let r = parse_response(&json!({"id": "msg_1", "model": "claude", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "t", "name": SCHEMA_TOOL, "input": {"ok": true}}],
            "usage": {"input_tokens": 3, "output_tokens": 4}}))
        .unwrap();
        assert_eq!(r.text(), r#"{"ok":true}"#);
        assert_eq!(r.finish, Finish::Stop);
    }

    #[test]
    fn max_tokens_is_required_as_anthropic_requires_it() {
        let e = parse_request(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap_err();
        assert!(e.to_string().contains("max_tokens"), "{e}");
    }
}

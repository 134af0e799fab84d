//! OpenAI Chat Completions on the wire, both ways: requests from clients and to OpenAI-compatible
//! providers (with each server's quirks), answers and stream chunks from providers and to clients.

use rempart_config::gateway::ProviderKind;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::WireError;
use crate::chat::{
    ChatRequest, ChatResponse, Delta, Finish, Message, OutputFormat, Part, Role, Tool, ToolChoice, Usage,
};
use crate::wire::{answer_schema, bad, str_field, stream_flag, text_parts, token_count};

/// Sampling parameters passed through to OpenAI-compatible providers as they are.
const PASSTHROUGH: &[&str] = &[
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "parallel_tool_calls",
    "reasoning_effort",
];

/// Parameters clients send that change nothing the gateway must honour.
const IGNORED: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "logprobs",
    "top_logprobs",
    "n",
    "logit_bias",
    "modalities",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
];

/// The text of a `content` that is a string or a list of text parts (`null`: none).
fn content_text(v: &Value, path: &str) -> Result<String, WireError> {
    if v.is_null() {
        return Ok(String::new());
    }
    text_parts(v, path, &["text"])
}

/// Reads a client's `POST /v1/chat/completions` body.
pub fn parse_request(body: &Value) -> Result<ChatRequest, WireError> {
    let obj = body
        .as_object()
        .ok_or_else(|| WireError::Request("the body is not a JSON object".into()))?;
    let model = str_field(body, "model", "$")?.to_owned();
    let mut req = ChatRequest::new(model);
    for (key, v) in obj {
        match key.as_str() {
            "model" => {}
            "messages" => {
                let list = v.as_array().ok_or_else(|| bad("messages", "expected a list"))?;
                for (i, m) in list.iter().enumerate() {
                    parse_message(m, &format!("messages[{i}]"), &mut req)?;
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
                    if t.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(bad(&format!("{path}.type"), "only `function` tools are accepted"));
                    }
                    let f = t
                        .get("function")
                        .ok_or_else(|| bad(&format!("{path}.function"), "missing"))?;
                    req.tools.push(Tool {
                        name: str_field(f, "name", &format!("{path}.function"))?.to_owned(),
                        description: f.get("description").and_then(Value::as_str).map(str::to_owned),
                        parameters: f
                            .get("parameters")
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
                    Value::Object(_) => ToolChoice::Tool(
                        v.pointer("/function/name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("tool_choice.function.name", "missing"))?
                            .to_owned(),
                    ),
                    _ => return Err(bad("tool_choice", "expected auto, none, required or a function")),
                });
            }
            "response_format" => {
                req.format = match v.get("type").and_then(Value::as_str) {
                    Some("text") => OutputFormat::Text,
                    Some("json_object") => OutputFormat::JsonObject,
                    Some("json_schema") => {
                        let s = v
                            .get("json_schema")
                            .ok_or_else(|| bad("response_format.json_schema", "missing"))?;
                        OutputFormat::JsonSchema {
                            name: s.get("name").and_then(Value::as_str).unwrap_or("response").to_owned(),
                            schema: answer_schema(s.get("schema"), "response_format.json_schema.schema")?,
                            strict: s.get("strict").and_then(Value::as_bool).unwrap_or(false),
                        }
                    }
                    _ => return Err(bad("response_format.type", "expected text, json_object or json_schema")),
                };
            }
            "max_tokens" | "max_completion_tokens" => {
                req.max_tokens = Some(token_count(v, key)?);
            }
            "temperature" => req.temperature = Some(v.as_f64().ok_or_else(|| bad(key, "expected a number"))?),
            "top_p" => req.top_p = Some(v.as_f64().ok_or_else(|| bad(key, "expected a number"))?),
            "stop" => {
                req.stop = match v {
                    Value::Null => Vec::new(),
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .map(|s| {
                            s.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| bad("stop", "expected strings"))
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err(bad("stop", "expected a string or a list of strings")),
                };
            }
            "stream" => req.stream = stream_flag(v)?,
            "stream_options" => {
                req.stream_usage = v.get("include_usage").and_then(Value::as_bool).unwrap_or(false);
            }
            "user" => req.user = v.as_str().map(str::to_owned),
            "n" if !v.is_null() && v.as_f64() != Some(1.0) => {
                return Err(bad("n", "the gateway returns one choice per request"));
            }
            k if PASSTHROUGH.contains(&k) => {
                req.extra.insert(key.clone(), v.clone());
            }
            k if IGNORED.contains(&k) => {}
            other => return Err(bad(other, "unknown parameter")),
        }
    }
    if req.messages.is_empty() {
        return Err(bad("messages", "at least one message is needed"));
    }
    Ok(req)
}

fn parse_message(m: &Value, path: &str, req: &mut ChatRequest) -> Result<(), WireError> {
    let role = str_field(m, "role", path)?;
    let content = m.get("content").unwrap_or(&Value::Null);
    match role {
        "system" | "developer" => req.system.push(content_text(content, &format!("{path}.content"))?),
        "user" => req.messages.push(Message {
            role: Role::User,
            parts: vec![Part::Text {
                text: content_text(content, &format!("{path}.content"))?,
            }],
        }),
        "assistant" => {
            let mut parts = Vec::new();
            let text = content_text(content, &format!("{path}.content"))?;
            if !text.is_empty() {
                parts.push(Part::Text { text });
            }
            for (i, c) in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let p = format!("{path}.tool_calls[{i}]");
                parts.push(Part::ToolCall {
                    id: str_field(c, "id", &p)?.to_owned(),
                    name: c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(&format!("{p}.function.name"), "missing"))?
                        .to_owned(),
                    arguments: c
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_owned(),
                });
            }
            req.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" => {
            let part = Part::ToolResult {
                id: str_field(m, "tool_call_id", path)?.to_owned(),
                content: content_text(content, &format!("{path}.content"))?,
                is_error: false,
            };
            // Results of one turn's calls travel together, as Anthropic needs them.
            match req.messages.last_mut() {
                Some(Message {
                    role: Role::User,
                    parts,
                }) if parts.iter().all(|p| matches!(p, Part::ToolResult { .. })) => {
                    parts.push(part);
                }
                _ => req.messages.push(Message {
                    role: Role::User,
                    parts: vec![part],
                }),
            }
        }
        other => {
            return Err(bad(
                &format!("{path}.role"),
                format!("`{other}` is not a role the gateway accepts"),
            ));
        }
    }
    Ok(())
}

/// Mistral accepts tool-call ids of exactly nine letters and digits: others are mapped, the
/// same id always to the same one.
fn mistral_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Sha256::digest(id.as_bytes())
        .iter()
        .take(9)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The body sent to an OpenAI-compatible provider of `kind` for `model`.
pub fn render_request(req: &ChatRequest, kind: ProviderKind, model: &str, stream: bool) -> Value {
    let id = |s: &str| {
        if kind == ProviderKind::Mistral {
            mistral_id(s)
        } else {
            s.to_owned()
        }
    };
    let mut messages = Vec::new();
    for s in &req.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in &req.messages {
        match m.role {
            Role::User => {
                let mut text = String::new();
                for p in &m.parts {
                    match p {
                        Part::Text { text: t } => text.push_str(t),
                        Part::ToolResult { id: call, content, .. } => {
                            messages.push(json!({"role": "tool", "tool_call_id": id(call), "content": content}));
                        }
                        Part::ToolCall { .. } => {}
                    }
                }
                if !text.is_empty() || m.parts.is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let text: String = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                let calls: Vec<Value> = m
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolCall {
                            id: call,
                            name,
                            arguments,
                        } => Some(json!({
                            "id": id(call), "type": "function",
                            "function": {"name": name, "arguments": arguments}
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({"model": model, "messages": messages});
    if kind == ProviderKind::OpenAi {
        // Nothing sent is kept by the provider for its own use.
        body["store"] = Value::Bool(false);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    f["description"] = Value::String(d.clone());
                }
                json!({"type": "function", "function": f})
            })
            .collect();
    }
    // Ollama's OpenAI endpoint rejects `tool_choice`.
    if kind != ProviderKind::Ollama
        && let Some(c) = &req.tool_choice
    {
        body["tool_choice"] = match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            // Mistral names "some tool must be called" `any`.
            ToolChoice::Required if kind == ProviderKind::Mistral => json!("any"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    match &req.format {
        OutputFormat::Text => {}
        OutputFormat::JsonObject => body["response_format"] = json!({"type": "json_object"}),
        // vLLM (0.11 on) constrains decoding through `structured_outputs`.
        OutputFormat::JsonSchema { schema, .. } if kind == ProviderKind::Vllm => {
            body["structured_outputs"] = json!({"json": schema});
        }
        OutputFormat::JsonSchema { name, schema, strict } => {
            body["response_format"] =
                json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}});
        }
    }
    if let Some(n) = req.max_tokens {
        let key = if kind == ProviderKind::OpenAi {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[key] = json!(n);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(t) = req.top_p {
        body["top_p"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if let Some(u) = &req.user
        && kind == ProviderKind::OpenAi
    {
        body["user"] = json!(u);
    }
    for (k, v) in &req.extra {
        body[k.as_str()] = v.clone();
    }
    if stream {
        body["stream"] = Value::Bool(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn finish(reason: Option<&str>) -> Option<Finish> {
    Some(match reason? {
        "stop" | "end_turn" | "eos" => Finish::Stop,
        "length" | "model_length" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        _ => Finish::Stop,
    })
}

fn finish_str(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

fn usage(v: Option<&Value>) -> Option<Usage> {
    let v = v.filter(|v| v.is_object())?;
    Some(Usage {
        input_tokens: v.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: v.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// Reads a provider's chat completion.
pub fn parse_response(v: &Value) -> Result<ChatResponse, WireError> {
    let bad = |why: &str| WireError::Upstream(format!("chat completion {why}"));
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad("without choices"))?;
    let message = choice.get("message").ok_or_else(|| bad("without a message"))?;
    let mut parts = Vec::new();
    if let Some(t) = message.get("content").and_then(Value::as_str)
        && !t.is_empty()
    {
        parts.push(Part::Text { text: t.to_owned() });
    }
    for c in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        parts.push(Part::ToolCall {
            id: c
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool call without id"))?
                .to_owned(),
            name: c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool call without name"))?
                .to_owned(),
            arguments: c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}")
                .to_owned(),
        });
    }
    let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    Ok(ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        parts,
        finish: finish(choice.get("finish_reason").and_then(Value::as_str)).unwrap_or(if has_calls {
            Finish::ToolCalls
        } else {
            Finish::Stop
        }),
        usage: usage(v.get("usage")).unwrap_or_default(),
    })
}

/// Reads the chunks of a provider's stream; keeps the tool-call indexes it has seen.
#[derive(Debug, Default)]
pub struct ChunkReader {
    started: Vec<usize>,
    pub id: Option<String>,
    pub model: Option<String>,
}

impl ChunkReader {
    pub fn read(&mut self, v: &Value) -> Result<Vec<Delta>, WireError> {
        if let Some(e) = v.get("error") {
            return Err(WireError::Upstream(format!("error in stream: {e}")));
        }
        if self.id.is_none() {
            self.id = v.get("id").and_then(Value::as_str).map(str::to_owned);
            self.model = v.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        let mut out = Vec::new();
        for choice in v
            .get("choices")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(t) = delta.get("content").and_then(Value::as_str)
                && !t.is_empty()
            {
                out.push(Delta::Text { text: t.to_owned() });
            }
            for c in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(self.started.len());
                if !self.started.contains(&index) {
                    self.started.push(index);
                    out.push(Delta::ToolStart {
                        index,
                        id: c.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        name: c
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
                if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str)
                    && !a.is_empty()
                {
                    out.push(Delta::ToolArgs {
                        index,
                        json: a.to_owned(),
                    });
                }
            }
            if let Some(f) = finish(choice.get("finish_reason").and_then(Value::as_str)) {
                out.push(Delta::Finish { finish: f });
            }
        }
        if let Some(u) = usage(v.get("usage")) {
            out.push(Delta::Usage { usage: u });
        }
        Ok(out)
    }
}

/// A complete answer as OpenAI writes it; `model` is the name the client asked for.
pub fn render_response(r: &ChatResponse, model: &str, created: i64) -> Value {
    let text = r.text();
    let calls: Vec<Value> = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, name, arguments } => {
                Some(json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
            }
            _ => None,
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": r.id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_str(r.finish), "logprobs": null}],
        "usage": {"prompt_tokens": r.usage.input_tokens, "completion_tokens": r.usage.output_tokens,
                  "total_tokens": r.usage.input_tokens + r.usage.output_tokens},
    })
}

/// Writes deltas as OpenAI stream chunks (`data: {...}` lines, then `data: [DONE]`).
#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    role_sent: bool,
}

impl ChunkWriter {
    pub fn new(id: String, model: String, created: i64, include_usage: bool) -> Self {
        ChunkWriter {
            id,
            model,
            created,
            include_usage,
            role_sent: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<Finish>) -> String {
        let v = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(finish_str), "logprobs": null}]});
        format!("data: {v}\n\n")
    }

    /// The SSE text for one delta (possibly empty).
    pub fn write(&mut self, d: &Delta) -> String {
        let mut out = String::new();
        if !self.role_sent {
            self.role_sent = true;
            out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        match d {
            Delta::Text { text } => out.push_str(&self.chunk(json!({"content": text}), None)),
            Delta::ToolStart { index, id, name } => out.push_str(&self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            )),
            Delta::ToolArgs { index, json } => out.push_str(
                &self.chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": json}}]}), None),
            ),
            Delta::Finish { finish } => out.push_str(&self.chunk(json!({}), Some(*finish))),
            Delta::Usage { usage } => {
                if self.include_usage {
                    let v = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [],
                        "usage": {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                                  "total_tokens": usage.input_tokens + usage.output_tokens}});
                    out.push_str(&format!("data: {v}\n\n"));
                }
            }
        }
        out
    }

    /// The end of a stream that completed.
    pub fn done(&self) -> String {
        "data: [DONE]\n\n".to_owned()
    }

    /// The end of a stream that failed after it started: an error event, as OpenAI sends one.
    pub fn error(&self, message: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"error": {"message": message, "type": "upstream_error", "code": "stream_interrupted"}})
        )
    }
}

/// An error as OpenAI writes one.
pub fn error_body(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistral_ids_are_nine_alphanumerics_and_stable() {
        let a = mistral_id("call_Xx8pQ2kLmN0aB1cD2eF3gH4i");
        assert_eq!(a.len(), 9);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, mistral_id("call_Xx8pQ2kLmN0aB1cD2eF3gH4i"));
        assert_ne!(a, mistral_id("call_other"));
        assert_eq!(mistral_id("abcDEF123"), "abcDEF123");
    }

    #[test]
    fn tool_results_follow_their_calls_for_every_kind() {
        let body = json!({"model": "rempart/triage", "messages": [
            {"role": "user", "content": "look up 10.1.2.3"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"ip\":\"10.1.2.3\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "known scanner"}
        ], "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
           "tool_choice": "required"});
        let req = parse_request(&body).unwrap();
        let mistral = render_request(&req, ProviderKind::Mistral, "mistral-large", false);
        let call_id = mistral["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(call_id.len(), 9);
        assert_eq!(mistral["messages"][2]["tool_call_id"], call_id);
        assert_eq!(mistral["tool_choice"], "any");
        let ollama = render_request(&req, ProviderKind::Ollama, "llama3", false);
        assert!(ollama.get("tool_choice").is_none());
        let openai = render_request(&req, ProviderKind::OpenAi, "gpt", true);
        assert_eq!(openai["tool_choice"], "required");
        assert_eq!(openai["store"], false);
        assert_eq!(openai["stream_options"]["include_usage"], true);
    }

    #[test]
    fn unknown_parameters_and_images_are_refused_by_name() {
        let e = parse_request(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "frobnicate": 1}))
            .unwrap_err();
        assert!(e.to_string().contains("frobnicate"), "{e}");
        let e = parse_request(&json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:"}}]}]}))
        .unwrap_err();
        assert!(e.to_string().contains("messages[0].content[0].type"), "{e}");
    }
}

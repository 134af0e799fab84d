//! OpenAI's Responses API as a provider format, always with `store: false`: the provider keeps
//! nothing of the exchange for later retrieval, and the whole conversation travels with each
//! request (no `previous_response_id`).

use serde_json::{Value, json};

use crate::WireError;
use crate::chat::{ChatRequest, ChatResponse, Delta, Finish, OutputFormat, Part, Role, ToolChoice, Usage};

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
}

//! The gateway's own form of a chat exchange, between the wire formats: a client's OpenAI or
//! Anthropic request is read into a [`ChatRequest`], which is written out in whatever format the
//! chosen provider speaks; the provider's answer comes back as a [`ChatResponse`] or a stream of
//! [`Delta`]s and is written out in the client's format.

use serde::Serialize;
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    /// A call the model asked for; `arguments` is JSON text, as the model wrote it.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// What a tool returned for the call `id`.
    ToolResult {
        id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// What shape the answer must have.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// A JSON document valid against `schema`; checked by the gateway whatever the provider
    /// promises.
    JsonSchema {
        name: String,
        schema: Value,
        strict: bool,
    },
}

/// A chat request in the gateway's own form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatRequest {
    /// What the client asked for (`rempart/triage`).
    pub model: String,
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub format: OutputFormat,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// OpenAI clients ask for the usage in a last chunk (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// Opaque end-user id (`user` / `metadata.user_id`); pseudonymized like any identifier.
    pub user: Option<String>,
    /// Sampling parameters passed through to OpenAI-compatible providers as they are.
    pub extra: serde_json::Map<String, Value>,
}

impl ChatRequest {
    /// A request for `model` with nothing in it yet.
    pub fn new(model: String) -> ChatRequest {
        ChatRequest {
            model,
            system: Vec::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            format: OutputFormat::Text,
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            stream: false,
            stream_usage: false,
            user: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatResponse {
    pub id: String,
    /// The provider's model name.
    pub model: String,
    /// Text and tool calls, in order.
    pub parts: Vec<Part>,
    pub finish: Finish,
    pub usage: Usage,
}

impl ChatResponse {
    /// All text parts, joined.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One step of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    Text {
        text: String,
    },
    /// A tool call starts; `index` numbers the calls of this answer from 0.
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More of the arguments of call `index`.
    ToolArgs {
        index: usize,
        json: String,
    },
    Finish {
        finish: Finish,
    },
    Usage {
        usage: Usage,
    },
}

/// Collects a stream of deltas into the answer it spells.
#[derive(Debug, Default)]
pub struct Assembler {
    parts: Vec<Part>,
    /// Index in `parts` of each tool call, by its stream index.
    calls: Vec<(usize, usize)>,
    pub finish: Option<Finish>,
    pub usage: Usage,
}

impl Assembler {
    pub fn push(&mut self, d: &Delta) {
        match d {
            Delta::Text { text } => match self.parts.last_mut() {
                Some(Part::Text { text: t }) => t.push_str(text),
                _ => self.parts.push(Part::Text { text: text.clone() }),
            },
            Delta::ToolStart { index, id, name } => {
                self.calls.push((*index, self.parts.len()));
                self.parts.push(Part::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            Delta::ToolArgs { index, json } => {
                if let Some(&(_, at)) = self.calls.iter().find(|(i, _)| i == index)
                    && let Some(Part::ToolCall { arguments, .. }) = self.parts.get_mut(at)
                {
                    arguments.push_str(json);
                }
            }
            Delta::Finish { finish } => self.finish = Some(*finish),
            Delta::Usage { usage } => {
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
            }
        }
    }

    /// Text and tool calls so far, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn finish(self, id: String, model: String) -> ChatResponse {
        let finish = self.finish.unwrap_or(if self.calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        });
        ChatResponse {
            id,
            model,
            parts: self.parts,
            finish,
            usage: self.usage,
        }
    }
}

//! Property tests of the wire formats (Chat Completions, Messages, Responses): any JSON is read
//! without panicking, and a request written in a format reads back as the same request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use proptest::prelude::*;
use rempart_config::gateway::ProviderKind;
use rempart_gateway::chat::{ChatRequest, Message, OutputFormat, Part, Role, Tool, ToolChoice};
use rempart_gateway::{anthropic, openai, responses};
use serde_json::{Value, json};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,@:_\\-\"'\\\\é\n]{1,40}"
}

fn id() -> impl Strategy<Value = String> {
    "call_[a-zA-Z0-9]{4,20}"
}

fn arguments() -> impl Strategy<Value = String> {
    text().prop_map(|t| json!({"query": t}).to_string())
}

fn user() -> impl Strategy<Value = Message> {
    prop_oneof![
        text().prop_map(|t| Message {
            role: Role::User,
            parts: vec![Part::Text { text: t }],
        }),
        proptest::collection::vec((id(), text()), 1..3).prop_map(|rs| Message {
            role: Role::User,
            parts: rs
                .into_iter()
                .map(|(id, content)| Part::ToolResult {
                    id,
                    content,
                    is_error: false,
                })
                .collect(),
        }),
    ]
}

fn assistant() -> impl Strategy<Value = Message> {
    (
        proptest::option::of(text()),
        proptest::collection::vec((id(), "[a-z_]{1,12}", arguments()), 0..3),
    )
        .prop_filter("an assistant message says something", |(t, c)| {
            t.is_some() || !c.is_empty()
        })
        .prop_map(|(t, calls)| {
            let mut parts: Vec<Part> = t.into_iter().map(|text| Part::Text { text }).collect();
            parts.extend(
                calls
                    .into_iter()
                    .map(|(id, name, arguments)| Part::ToolCall { id, name, arguments }),
            );
            Message {
                role: Role::Assistant,
                parts,
            }
        })
}

/// Conversations alternating user and assistant turns.
fn request() -> impl Strategy<Value = ChatRequest> {
    (
        proptest::collection::vec((user(), assistant()), 0..3),
        user(),
        proptest::option::of(text()),
        proptest::option::of(1u32..100_000),
        proptest::collection::vec("[a-z_]{1,12}", 0..3),
        proptest::option::of(prop_oneof![
            Just(ToolChoice::Auto),
            Just(ToolChoice::None),
            Just(ToolChoice::Required),
            "[a-z_]{1,12}".prop_map(ToolChoice::Tool),
        ]),
    )
        .prop_map(|(turns, last, system, max_tokens, tools, tool_choice)| {
            let mut messages: Vec<Message> = turns.into_iter().flat_map(|(u, a)| [u, a]).collect();
            messages.push(last);
            ChatRequest {
                model: "m".into(),
                system: system.into_iter().collect(),
                messages,
                tools: tools
                    .into_iter()
                    .map(|name| Tool {
                        name,
                        description: None,
                        parameters: json!({"type": "object"}),
                    })
                    .collect(),
                tool_choice,
                format: OutputFormat::Text,
                max_tokens: Some(max_tokens.unwrap_or(1024)),
                temperature: None,
                top_p: None,
                stop: Vec::new(),
                stream: false,
                stream_usage: false,
                user: None,
                extra: serde_json::Map::new(),
            }
        })
}

proptest! {
    #[test]
    fn an_openai_request_reads_back_as_itself(req in request()) {
        let body = openai::render_request(&req, ProviderKind::OpenAi, "m", false);
        let back = openai::parse_request(&body).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn an_anthropic_request_reads_back_as_itself(mut req in request()) {
        // Anthropic streams always carry usage.
        req.stream_usage = true;
        let body = anthropic::render_request(&req, "m", false);
        let back = anthropic::parse_request(&body).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn a_responses_request_reads_back_as_itself(mut req in request()) {
        // The usage always ends a Responses stream.
        req.stream_usage = true;
        let body = responses::render_request(&req, "m", false);
        let back = responses::parse_request(&body).unwrap();
        prop_assert_eq!(back, req);
    }

    /// Arbitrary JSON, in any position, never panics a reader.
    #[test]
    fn arbitrary_json_never_panics(v in arbitrary_json()) {
        let _ = openai::parse_request(&v);
        let _ = anthropic::parse_request(&v);
        let _ = responses::parse_request(&v);
        let _ = responses::parse_response(&v);
        let _ = responses::EventReader::default().read(&v);
        let _ = openai::parse_response(&v);
        let _ = anthropic::parse_response(&v);
        let _ = openai::ChunkReader::default().read(&v);
        let _ = anthropic::EventReader::default().read(&v);
        let wrapped = json!({"model": "m", "max_tokens": 5, "messages": [v.clone()], "tools": [v.clone()]});
        let _ = openai::parse_request(&wrapped);
        let _ = anthropic::parse_request(&wrapped);
        let _ = responses::parse_request(&json!({"model": "m", "input": [v.clone()], "tools": [v.clone()], "text": v}));
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("user".to_owned()),
            Just("assistant".to_owned()),
            Just("tool".to_owned()),
            Just("text".to_owned()),
            Just("tool_use".to_owned()),
            Just("function".to_owned()),
            "[a-z_]{0,8}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("role".to_owned()),
                    Just("content".to_owned()),
                    Just("type".to_owned()),
                    Just("messages".to_owned()),
                    Just("choices".to_owned()),
                    Just("delta".to_owned()),
                    Just("tool_calls".to_owned()),
                    Just("function".to_owned()),
                    Just("index".to_owned()),
                    Just("model".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

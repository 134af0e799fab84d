//! The OpenAPI 3.1 description of the API, served at `/openapi.json`. A test checks that
//! every route the router serves is described here, and nothing else.

/// The OpenAPI document as written (`openapi.json`), before [`document`] adds the answers
/// of the layers every route passes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The document as served: [`OPENAPI`] with, on every operation, the answers the server's
/// common layers can give besides the operation's own, where the operation does not already
/// describe them: 401, 403, 429 and 503 behind authentication; 400 and 404 for a path
/// parameter; 400 for query parameters; 400, 408, 413, 415 and 422 for a body; 404 where the
/// service is optional. They come
/// from layers every route passes (authentication, the rate limit, the store, the body cap
/// and clock, the extractors), so they are added from those rules rather than written by
/// hand per route. Errors on `/v1/…` are in the client's format (OpenAI's or Anthropic's).
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| base().to_string())
}

/// [`document`] as a value, parsed once.
fn base() -> &'static serde_json::Value {
    static BASE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let mut doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or(serde_json::Value::Null);
        with_common_answers(&mut doc);
        doc
    })
}

/// What the document states of this server's gateway for one caller.
#[derive(Debug, Default)]
pub struct GatewayTerms {
    /// The model names the caller may ask for (`GET /v1/models`).
    pub models: Vec<String>,
    /// The institution's own classification levels, accepted beside the TLP labels.
    pub levels: Vec<String>,
}

/// The request schemas of the gateway's operations whose `model` names a route.
const MODEL_SCHEMAS: [&str; 3] = ["ChatCompletionsRequest", "MessagesRequest", "ResponsesRequest"];

/// [`document`] for a server running a gateway: each request's `model` is one of the routes
/// the caller may use (with or without the `rempart/` prefix), and the data-class header
/// takes the institution's levels too, so that the document states exactly what this server
/// accepts from this caller.
pub fn document_for(terms: &GatewayTerms) -> String {
    if terms.models.is_empty() && terms.levels.is_empty() {
        return document().to_owned();
    }
    let mut doc = base().clone();
    if !terms.models.is_empty() {
        let mut names: Vec<&str> = Vec::new();
        for m in &terms.models {
            names.push(m);
            names.push(m.strip_prefix(rempart_gateway::ROUTE_PREFIX).unwrap_or(m));
        }
        names.sort_unstable();
        names.dedup();
        for schema in MODEL_SCHEMAS {
            doc["components"]["schemas"][schema]["properties"]["model"] = serde_json::json!({
                "type": "string",
                "enum": names,
                "description": "A route this caller may use (`GET /v1/models`), with or without its `rempart/` prefix",
            });
        }
    }
    if !terms.levels.is_empty()
        && let Some(paths) = doc["paths"].as_object_mut()
    {
        for path in paths.values_mut().filter_map(serde_json::Value::as_object_mut) {
            for op in path.values_mut() {
                // `get_mut`, not indexing: a path item's other members (a summary, shared
                // parameters) are not objects, and indexing one mutably would panic.
                let Some(params) = op.get_mut("parameters").and_then(serde_json::Value::as_array_mut) else {
                    continue;
                };
                for p in params.iter_mut().filter(|p| p["name"] == "x-rempart-data-class") {
                    let tlp = p["schema"].take();
                    p["schema"] = serde_json::json!({"anyOf": [tlp, {"type": "string", "enum": terms.levels}]});
                }
            }
        }
    }
    doc.to_string()
}

/// The tags of the services a server may run without (by its configuration or its cluster
/// role): their operations answer 404 `not_configured` there.
const OPTIONAL_SERVICES: [&str; 7] = [
    "Incidents",
    "Triage",
    "Response",
    "Regulatory",
    "Privacy",
    "Intelligence",
    "Gateway",
];

fn with_common_answers(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let retry =
        json!({"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}});
    let answer = |description: &str, schema: &str, retry_after: bool| {
        let mut r = json!({"description": description,
                           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        if retry_after {
            r["headers"] = retry.clone();
        }
        r
    };
    let mut responses = serde_json::Map::new();
    for (prefix, schema) in [("", "Error"), ("Client", "ClientError")] {
        for (name, description, retry_after) in [
            ("BadRequest", "Invalid parameters or body", false),
            ("Unauthenticated", "No valid credential", false),
            ("Forbidden", "The credential's role does not grant this", false),
            ("NotFound", "No such resource", false),
            (
                "NotFoundOrNotConfigured",
                "No such resource (`not_found`), or this server does not run the service (`not_configured`)",
                false,
            ),
            (
                "NotConfigured",
                "This server does not run the service (`not_configured`): a cluster node in another role, or a server started without it",
                false,
            ),
            (
                "BodyTimeout",
                "The body did not arrive in time; the connection is closed",
                false,
            ),
            ("TooLarge", "The body is over the configured cap", false),
            (
                "UnsupportedMediaType",
                "The body's content type is not one the operation reads",
                false,
            ),
            (
                "Unprocessable",
                "The body does not have the shape the operation reads",
                false,
            ),
            ("TooManyRequests", "Over the caller's rate or quota", true),
            (
                "Unavailable",
                "The store (or the bus, or every provider) is unavailable",
                true,
            ),
        ] {
            responses.insert(format!("{prefix}{name}"), answer(description, schema, retry_after));
        }
    }
    let components = &mut doc["components"];
    components["schemas"]["ClientError"] = json!({"type": "object", "required": ["error"],
        "description": "An error in the client's own format: OpenAI's {error: {message, type, code}} or Anthropic's {type: error, error: {type, message}}",
        "properties": {"error": {"type": "object"}}});
    if let Some(existing) = components["responses"].as_object_mut() {
        for (k, v) in responses {
            existing.entry(k).or_insert(v);
        }
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let prefix = if path.starts_with("/v1/") { "Client" } else { "" };
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            let params = operation["parameters"].as_array().cloned().unwrap_or_default();
            let in_path = params.iter().any(|p| p["in"] == "path");
            let in_query = params.iter().any(|p| p["in"] == "query");
            let body = operation.get("requestBody").is_some();
            let optional_service = operation["tags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| OPTIONAL_SERVICES.contains(&t.as_str().unwrap_or_default()))
            });
            let mut add: Vec<(&str, &str)> = Vec::new();
            if !public {
                add.extend([
                    ("401", "Unauthenticated"),
                    ("429", "TooManyRequests"),
                    ("503", "Unavailable"),
                ]);
                // What every role may read has no role to refuse.
                if operation.get("x-any-role") != Some(&Value::Bool(true)) {
                    add.push(("403", "Forbidden"));
                }
            }
            if optional_service {
                if !in_path {
                    add.push(("404", "NotConfigured"));
                }
                // An operation's own 404 (no such incident) also stands for the service absent.
                if let Some(own) = operation["responses"]["404"]["description"].as_str() {
                    let both = format!("{own}; or `not_configured`: this server does not run the service");
                    operation["responses"]["404"]["description"] = Value::from(both);
                }
            }
            if in_path {
                add.extend([
                    ("400", "BadRequest"),
                    (
                        "404",
                        if optional_service {
                            "NotFoundOrNotConfigured"
                        } else {
                            "NotFound"
                        },
                    ),
                ]);
            }
            if in_query {
                add.push(("400", "BadRequest"));
            }
            if body {
                add.extend([
                    ("400", "BadRequest"),
                    ("408", "BodyTimeout"),
                    ("413", "TooLarge"),
                    ("415", "UnsupportedMediaType"),
                    ("422", "Unprocessable"),
                ]);
            }
            let Some(answers) = operation["responses"].as_object_mut() else {
                continue;
            };
            for (status, name) in add {
                answers
                    .entry(status)
                    .or_insert_with(|| json!({"$ref": format!("#/components/responses/{prefix}{name}")}));
            }
            for (status, answer) in answers.iter_mut() {
                if !status.starts_with(['4', '5']) {
                    continue;
                }
                // A shared answer written on a `/v1/` operation is in the client's format.
                if let Some(shared) = answer["$ref"].as_str()
                    && let Some(name) = shared.strip_prefix("#/components/responses/")
                    && !name.starts_with(prefix)
                {
                    answer["$ref"] = Value::from(format!("#/components/responses/{prefix}{name}"));
                }
                // An error described only in words has the error body all errors have.
                if answer.get("$ref").is_none() && answer.get("content").is_none() {
                    let schema = if prefix.is_empty() { "Error" } else { "ClientError" };
                    answer["content"] =
                        json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The names of every value of an enumeration, as the handlers parse them.
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| name(*v).to_owned()).collect()
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// The request schemas' enumerations and patterns are the sets the handlers parse.
    #[test]
    fn request_schemas_state_the_values_the_handlers_accept() {
        let doc: Value = serde_json::from_str(super::OPENAPI).unwrap_or(Value::Null);
        let schemas = &doc["components"]["schemas"];
        let roles = names(&rempart_store::Role::ALL, rempart_store::Role::as_str);
        assert_eq!(strings(&schemas["Role"]["enum"]), roles);
        let mut formats = names(&rempart_model::Format::ALL, rempart_model::Format::as_str);
        formats.extend(rempart_model::Format::ALIASES.iter().map(|(a, _)| (*a).to_owned()));
        assert_eq!(strings(&schemas["Format"]["enum"]), formats);
        let path = |p: &str, method: &str| doc["paths"][p][method].clone();
        let body = |p: &str| path(p, "post")["requestBody"]["content"]["application/json"]["schema"].clone();
        let reports = names(
            &rempart_respond::clocks::ReportKind::ALL,
            rempart_respond::clocks::ReportKind::as_str,
        );
        assert_eq!(
            strings(&body("/api/v1/incidents/{id}/regulatory/submissions")["properties"]["report"]["enum"]),
            reports
        );
        let statuses = names(
            &rempart_model::IncidentStatus::ALL,
            rempart_model::IncidentStatus::as_str,
        );
        // (`null`, absent, is not a string.)
        let settable = strings(&body("/api/v1/incidents/{id}")["properties"]["status"]["enum"]);
        assert_eq!(settable, statuses);
        let classes = names(
            &rempart_model::Classification::ALL,
            rempart_model::Classification::as_str,
        );
        let given = strings(&body("/api/v1/verdicts/{id}/feedback")["properties"]["classification"]["enum"]);
        assert_eq!(given, classes);
        // The list filter's pattern names every status; the event filter's every field.
        let param = |p: &str, name: &str| {
            path(p, "get")["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|x| x["name"] == name).cloned())
                .unwrap_or(Value::Null)
        };
        let status = param("/api/v1/incidents", "status")["schema"]["pattern"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(status.contains(&format!("({})", statuses.join("|"))), "{status}");
        let filter = param("/api/v1/events", "filter")["schema"]["items"]["pattern"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            filter.contains(&format!(
                "^({}|format|class|source|",
                rempart_store::NORMALIZED.join("|")
            )),
            "{filter}"
        );
    }

    #[test]
    fn the_document_lists_every_injection_class_and_action() {
        let doc: Value = serde_json::from_str(super::OPENAPI).unwrap_or(Value::Null);
        let verdict = &doc["components"]["schemas"]["Verdict"]["properties"];
        assert_eq!(
            strings(&verdict["injection"]["items"]["properties"]["class"]["enum"]),
            names(
                &rempart_model::InjectionClass::ALL,
                rempart_model::InjectionClass::as_str
            )
        );
        assert_eq!(
            strings(&verdict["recommended_actions"]["items"]["properties"]["action"]["enum"]),
            names(&rempart_model::ActionKind::ALL, rempart_model::ActionKind::as_str)
        );
    }

    /// A request body for the gateway, in a neutral form [`for_format`] turns into each wire
    /// format's: fields drawn from the formats' own names and values, so that valid bodies are
    /// frequent, and each value replaced by a stray one now and then.
    fn gateway_body() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        use proptest::sample::select;
        type Field = BoxedStrategy<Option<(&'static str, Value)>>;
        fn stray() -> BoxedStrategy<Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                select(vec![0i64, 1, 2, -1, 4_294_967_296]).prop_map(Value::from),
                Just(Value::from(1.5)),
                select(vec!["", "x", "image_url", "item_reference"]).prop_map(Value::from),
                Just(serde_json::json!({})),
                Just(serde_json::json!([])),
            ]
            .boxed()
        }
        fn mostly(s: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
            prop_oneof![12 => s, 1 => stray()].boxed()
        }
        fn words(w: &[&'static str]) -> BoxedStrategy<Value> {
            mostly(select(w.to_vec()).prop_map(Value::from))
        }
        fn field(key: &'static str, p: f64, s: BoxedStrategy<Value>) -> Field {
            proptest::option::weighted(p, s)
                .prop_map(move |v| v.map(|v| (key, v)))
                .boxed()
        }
        fn object(fields: Vec<Field>) -> BoxedStrategy<Value> {
            fields
                .prop_map(|fs| Value::Object(fs.into_iter().flatten().map(|(k, v)| (k.to_owned(), v)).collect()))
                .boxed()
        }
        fn list(item: BoxedStrategy<Value>, n: std::ops::Range<usize>) -> BoxedStrategy<Value> {
            mostly(proptest::collection::vec(item, n).prop_map(Value::Array))
        }
        let text = || words(&["x", ""]);
        let part = object(vec![
            field(
                "type",
                0.95,
                words(&[
                    "text",
                    "input_text",
                    "output_text",
                    "refusal",
                    "tool_use",
                    "tool_result",
                    "thinking",
                ]),
            ),
            field("text", 0.85, text()),
            field("refusal", 0.2, text()),
            field("id", 0.3, words(&["t1"])),
            field("name", 0.3, words(&["f"])),
            field("tool_use_id", 0.3, words(&["t1"])),
            field("input", 0.2, Just(serde_json::json!({})).boxed()),
            field("content", 0.2, text()),
        ]);
        let content = prop_oneof![3 => text(), 1 => Just(Value::Null), 4 => list(part, 0..3)].boxed();
        let tool_call = object(vec![
            field("id", 0.9, words(&["c1"])),
            field("type", 0.5, words(&["function"])),
            field(
                "function",
                0.9,
                object(vec![
                    field("name", 0.9, words(&["f"])),
                    field("arguments", 0.5, words(&["{}"])),
                ]),
            ),
        ]);
        let message = object(vec![
            field(
                "type",
                0.3,
                words(&["message", "function_call", "function_call_output", "reasoning"]),
            ),
            field(
                "role",
                0.9,
                words(&["user", "assistant", "system", "developer", "tool"]),
            ),
            field("content", 0.85, content.clone()),
            field("tool_calls", 0.2, list(tool_call, 0..2)),
            field("tool_call_id", 0.2, words(&["c1"])),
            field("call_id", 0.2, words(&["c1"])),
            field("name", 0.2, words(&["f"])),
            field("output", 0.2, content.clone()),
        ]);
        let format = object(vec![
            field("type", 0.9, words(&["text", "json_object", "json_schema"])),
            field("schema", 0.6, mostly(Just(serde_json::json!({"type": "object"})))),
            field(
                "json_schema",
                0.5,
                object(vec![field("schema", 0.8, mostly(Just(serde_json::json!({}))))]),
            ),
        ]);
        let tool = object(vec![
            field("type", 0.8, words(&["function", "custom", "web_search"])),
            field("name", 0.8, words(&["f"])),
            field("function", 0.6, object(vec![field("name", 0.9, words(&["f"]))])),
        ]);
        let tool_choice = prop_oneof![
            words(&["auto", "none", "required", "any"]),
            object(vec![
                field("type", 0.9, words(&["auto", "none", "any", "tool", "function"])),
                field("name", 0.6, words(&["f"])),
                field("function", 0.5, object(vec![field("name", 0.9, words(&["f"]))])),
            ]),
        ]
        .boxed();
        object(vec![
            field("model", 0.97, words(&["triage"])),
            field(
                "messages",
                0.95,
                prop_oneof![9 => list(message, 0..4), 1 => text()].boxed(),
            ),
            field(
                "max",
                0.7,
                mostly(select(vec![
                    Value::from(1),
                    Value::from(0),
                    Value::from(4_294_967_296i64),
                    Value::from(2.0),
                    Value::from(4_294_967_295.0),
                    Value::from(2.5),
                ])),
            ),
            field("instructions", 0.2, content),
            field("format", 0.2, format),
            field("tools", 0.2, list(tool, 0..3)),
            field("tool_choice", 0.2, tool_choice),
            field("stream", 0.3, mostly(any::<bool>().prop_map(Value::Bool))),
            field(
                "n",
                0.1,
                mostly(select(vec![Value::from(1), Value::from(2), Value::Null])),
            ),
            field("stop", 0.1, mostly(Just(serde_json::json!(["x"])))),
            field("store", 0.1, mostly(any::<bool>().prop_map(Value::Bool))),
            field("background", 0.05, mostly(any::<bool>().prop_map(Value::Bool))),
            field("previous_response_id", 0.05, mostly(Just(Value::Null))),
            field("temperature", 0.1, mostly(Just(Value::from(0.5)))),
            field("seed", 0.05, stray()),
            field("top_k", 0.05, stray()),
            field("stray", 0.03, stray()),
        ])
    }

    /// `body` in the wire format of `schema`: the neutral `messages`, `max`, `instructions`,
    /// `format` and `stop` under that format's own names.
    fn for_format(schema: &str, body: &Value) -> Value {
        let mut out = body.clone();
        let Some(o) = out.as_object_mut() else { return out };
        let mut rename = |from: &str, to: &str| {
            if let Some(v) = o.remove(from) {
                o.insert(to.to_owned(), v);
            }
        };
        match schema {
            "ChatCompletionsRequest" => {
                rename("max", "max_tokens");
                rename("format", "response_format");
                rename("instructions", "user");
            }
            "MessagesRequest" => {
                rename("max", "max_tokens");
                rename("instructions", "system");
                rename("stop", "stop_sequences");
                if let Some(f) = o.remove("format") {
                    o.insert("output_config".into(), serde_json::json!({ "format": f }));
                }
            }
            _ => {
                rename("messages", "input");
                rename("max", "max_output_tokens");
                if let Some(f) = o.remove("format") {
                    o.insert("text".into(), serde_json::json!({ "format": f }));
                }
            }
        }
        out
    }

    type Parse = fn(&Value) -> Result<rempart_gateway::chat::ChatRequest, rempart_gateway::WireError>;

    /// Each gateway request schema of the document, compiled, with the parser it describes.
    fn gateway_validators() -> &'static [(&'static str, jsonschema::Validator, Parse)] {
        static VALIDATORS: std::sync::OnceLock<Vec<(&'static str, jsonschema::Validator, Parse)>> =
            std::sync::OnceLock::new();
        VALIDATORS.get_or_init(|| {
            let doc: Value = serde_json::from_str(super::OPENAPI).unwrap_or(Value::Null);
            let parsers: [(&str, Parse); 3] = [
                ("ChatCompletionsRequest", rempart_gateway::openai::parse_request),
                ("MessagesRequest", rempart_gateway::anthropic::parse_request),
                ("ResponsesRequest", rempart_gateway::responses::parse_request),
            ];
            parsers
                .into_iter()
                .map(|(name, parse)| {
                    let schema = serde_json::json!({
                        "$ref": format!("#/components/schemas/{name}"),
                        "components": doc["components"].clone(),
                    });
                    let validator = jsonschema::draft202012::new(&schema)
                        .unwrap_or_else(|e| panic!("{name} is not a valid JSON Schema: {e}"));
                    (name, validator, parse)
                })
                .collect()
        })
    }

    /// Valid bodies of each format, using every feature the parsers read.
    fn gateway_seeds() -> Vec<(&'static str, Value)> {
        use serde_json::json;
        let schema = json!({"type": "object", "properties": {"verdict": {"type": "string"}}});
        vec![
            (
                "ChatCompletionsRequest",
                json!({"model": "triage", "messages": [
                {"role": "system", "content": "Triage."},
                {"role": "user", "content": [{"type": "text", "text": "alert"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "result"}],
                "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": schema, "strict": true}},
                "max_tokens": 100, "temperature": 0.2, "top_p": 1, "stop": ["\n"], "stream": false,
                "stream_options": {"include_usage": true}, "user": "u", "n": 1, "seed": 7, "metadata": {}}),
            ),
            (
                "ChatCompletionsRequest",
                json!({"model": "rempart/triage", "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_object"}, "tool_choice": "auto", "max_completion_tokens": 5, "stop": "x"}),
            ),
            (
                "MessagesRequest",
                json!({"model": "claude", "max_tokens": 100, "system": [{"type": "text", "text": "Triage."}],
                "messages": [
                    {"role": "user", "content": "alert"},
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "…"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}], "is_error": false}]}],
                "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "f"}, "temperature": 0.2, "top_p": 1, "stop_sequences": ["\n"],
                "stream": false, "metadata": {"user_id": "u"}, "output_config": {"format": {"type": "json_schema", "schema": schema}}, "top_k": 5}),
            ),
            (
                "MessagesRequest",
                json!({"model": "claude", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                "output_format": {"type": "json_schema", "schema": schema}, "tool_choice": {"type": "any"}}),
            ),
            (
                "ResponsesRequest",
                json!({"model": "triage", "instructions": "Triage.", "input": [
                {"role": "developer", "content": "d"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "alert"}]},
                {"type": "reasoning", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "r"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}, {"type": "refusal", "refusal": "no"}]}],
                "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
                "tool_choice": {"type": "function", "name": "f"},
                "text": {"format": {"type": "json_schema", "name": "v", "schema": schema, "strict": true}},
                "max_output_tokens": 100, "temperature": null, "top_p": 1, "stream": false, "store": false, "background": false,
                "user": "u", "parallel_tool_calls": true, "reasoning": {"effort": "low"}, "previous_response_id": null,
                "metadata": {}, "truncation": "auto"}),
            ),
            (
                "ResponsesRequest",
                json!({"model": "triage", "input": "x", "tool_choice": "none", "text": {"format": {"type": "json_object"}}}),
            ),
        ]
    }

    /// Every place in `v`, as JSON pointers, the root included.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => o.iter().for_each(|(k, x)| pointers(x, format!("{at}/{k}"), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
            _ => {}
        }
        out.push(at);
    }

    /// One change to a body: at the place `at` picks, its value replaced by `stray`, removed,
    /// or given a `key` holding `stray` (an object) or an item `stray` (a list).
    fn mutate(body: &mut Value, at: usize, how: u8, key: &str, stray: &Value) {
        let mut places = Vec::new();
        pointers(body, String::new(), &mut places);
        let place = &places[at % places.len()];
        let (parent, last) = place.rsplit_once('/').unwrap_or(("", ""));
        match how % 3 {
            0 if !place.is_empty() => {
                if let Some(v) = body.pointer_mut(place) {
                    *v = stray.clone();
                }
            }
            1 if !place.is_empty() => match body.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.remove(last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        a.remove(i);
                    }
                }
                _ => {}
            },
            _ => match body.pointer_mut(place) {
                Some(Value::Object(o)) => {
                    o.insert(key.to_owned(), stray.clone());
                }
                Some(Value::Array(a)) => a.push(stray.clone()),
                _ => {}
            },
        }
    }

    /// Holds the document's schema for `name` to its parser on `body`.
    fn same_verdict(
        name: &str,
        validator: &jsonschema::Validator,
        parse: Parse,
        body: &Value,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let parsed = parse(body);
        // Whether a JSON Schema compiles is the one rule the document states in words only
        // (`schema`: "one that does not compile is refused"): a meta-schema it cannot bundle.
        if let Err(e) = &parsed
            && e.to_string().contains("not a valid JSON Schema")
        {
            return Ok(());
        }
        proptest::prop_assert_eq!(
            validator.is_valid(body),
            parsed.is_ok(),
            "{}: {} (the parser: {:?})",
            name,
            body,
            parsed.err()
        );
        Ok(())
    }

    #[test]
    fn the_gateway_seeds_are_valid() {
        for (name, body) in gateway_seeds() {
            let (_, validator, parse) = gateway_validators()
                .iter()
                .find(|(n, _, _)| *n == name)
                .expect("a schema");
            assert!(parse(&body).is_ok(), "{name}: {body} ({:?})", parse(&body).err());
            assert!(validator.is_valid(&body), "{name}: {body}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4_000))]

        /// The gateway's request schemas in the document accept exactly the bodies its
        /// parsers accept, for each of OpenAI's Chat Completions, Anthropic's Messages and
        /// OpenAI's Responses: bodies built from the formats' vocabulary...
        #[test]
        fn the_gateway_s_request_schemas_accept_what_its_parsers_accept(body in gateway_body()) {
            for (name, validator, parse) in gateway_validators() {
                same_verdict(name, validator, *parse, &for_format(name, &body))?;
            }
        }

        /// ... and valid bodies of each format changed in one to three places (a value
        /// replaced by another of any type, a field or item removed, one added).
        #[test]
        fn the_gateway_s_request_schemas_and_parsers_agree_on_valid_bodies_changed(
            seed in 0..6usize,
            changes in proptest::collection::vec((proptest::prelude::any::<usize>(), 0..3u8,
                proptest::sample::select(vec!["model", "messages", "input", "role", "content", "type", "text", "name",
                    "schema", "stream", "n", "store", "tool_call_id", "stray", "max_tokens", "format", "json_schema"]),
                proptest::sample::select(vec![Value::Null, Value::Bool(true), Value::Bool(false), Value::from(0), Value::from(2),
                    Value::from(-1), Value::from(2.5), Value::from(""), Value::from("x"), Value::from("user"), Value::from("text"),
                    Value::from("json_schema"), Value::from("function"), serde_json::json!({}), serde_json::json!([]),
                    serde_json::json!({"type": "text", "text": "y"}), serde_json::json!({"role": "user", "content": "y"})])), 1..4),
        ) {
            let seeds = gateway_seeds();
            let (name, mut body) = seeds[seed % seeds.len()].clone();
            for (at, how, key, stray) in &changes {
                mutate(&mut body, *at, *how, key, stray);
            }
            let (_, validator, parse) = gateway_validators().iter().find(|(n, _, _)| *n == name).expect("a schema");
            same_verdict(name, validator, *parse, &body)?;
        }
    }
}

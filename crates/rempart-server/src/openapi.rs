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
    DOCUMENT.get_or_init(|| {
        let mut doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or(serde_json::Value::Null);
        with_common_answers(&mut doc);
        doc.to_string()
    })
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
                    ("403", "Forbidden"),
                    ("429", "TooManyRequests"),
                    ("503", "Unavailable"),
                ]);
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
}

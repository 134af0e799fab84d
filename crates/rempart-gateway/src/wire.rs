//! What the readers of the client wire formats share: errors that name where a request is
//! wrong, and text written as a string or as a list of typed parts.

use serde_json::Value;

use crate::WireError;

/// A request error at `path` (`messages[2].content`), saying why.
pub(crate) fn bad(path: &str, why: impl std::fmt::Display) -> WireError {
    WireError::Request(format!("`{path}`: {why}"))
}

/// `stream`: true or false (`null`: false). Anything else is refused rather than read as
/// false, so that a client that meant to stream is told.
pub(crate) fn stream_flag(v: &Value) -> Result<bool, WireError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(bad("stream", "expected true or false")),
    }
}

/// A token count: a whole number from 0 to `u32::MAX`, written as an integer or, as JSON
/// allows, with a fraction of zero (`1024.0`).
pub(crate) fn token_count(v: &Value, key: &str) -> Result<u32, WireError> {
    let whole = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .and_then(|f| format!("{f:.0}").parse().ok())
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(key, "expected a whole number from 0 to 4294967295"))
}

/// The JSON Schema a client asks answers to follow, at `path`: one that does not compile is
/// refused here, before any provider is called, rather than failing every provider's answer.
pub(crate) fn answer_schema(v: Option<&Value>, path: &str) -> Result<Value, WireError> {
    let schema = v.ok_or_else(|| bad(path, "missing"))?;
    // An object, as the providers take it (a boolean schema is either no constraint or one
    // no answer can meet).
    if !schema.is_object() {
        return Err(bad(path, "expected a JSON Schema object"));
    }
    jsonschema::validator_for(schema).map_err(|e| bad(path, format!("not a valid JSON Schema: {e}")))?;
    Ok(schema.clone())
}

/// The string `v[key]`, found at `path`.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, WireError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.{key}"), "missing or not a string"))
}

/// The text of `v`: a string, or a list of parts of the types `kinds`, joined (each part's text
/// in `text`, a `refusal` part's in `refusal`). Any other part (an image, a file, audio) is
/// refused by its path: the gateway carries text only.
pub(crate) fn text_parts(v: &Value, path: &str, kinds: &[&str]) -> Result<String, WireError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                let field = match p.get("type").and_then(Value::as_str) {
                    Some(kind) if kinds.contains(&kind) => {
                        if kind == "refusal" {
                            "refusal"
                        } else {
                            "text"
                        }
                    }
                    Some(other) => {
                        return Err(bad(
                            &format!("{path}[{i}].type"),
                            format!("`{other}` content is not accepted by the gateway (text only)"),
                        ));
                    }
                    None => return Err(bad(&format!("{path}[{i}].type"), "missing")),
                };
                out.push_str(
                    p.get(field)
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(&format!("{path}[{i}].{field}"), "missing or not a string"))?,
                );
            }
            Ok(out)
        }
        _ => Err(bad(path, "expected a string or a list of text parts")),
    }
}

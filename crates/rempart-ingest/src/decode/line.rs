//! One JSON line read as the stream reads it: an object (an event), an array (a batch of them)
//! or anything else (refused by its kind). The object's map is sized from the line's length
//! before its keys come, so that its table is not grown and rehashed key after key (a tenth of
//! decoding an NDJSON event went to that). An object keeps the line's text beside its map
//! ([`Fields`]), written out as it came.

use std::fmt;

use rempart_model::Fields;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What a line held.
pub(super) enum JsonLine {
    Object(Fields),
    Array(Vec<Value>),
    Other(Value),
}

/// About how many bytes a field takes in a line (`"Key":"value",`): the capacity a map is
/// given is the line's length over this, within bounds.
const BYTES_PER_FIELD: usize = 24;
const MIN_FIELDS: usize = 4;
const MAX_FIELDS: usize = 64;

/// Parses `line` as one JSON value, as `serde_json::from_slice::<Value>` does (same errors,
/// same treatment of repeated keys: the last value in the first key's place), with the
/// top-level object's map sized in advance, and an object's text kept.
pub(super) fn parse(line: &[u8]) -> serde_json::Result<JsonLine> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let capacity = (line.len() / BYTES_PER_FIELD).clamp(MIN_FIELDS, MAX_FIELDS);
    let value = Capacity(capacity).deserialize(&mut de)?;
    de.end()?;
    Ok(match value {
        JsonLine::Object(fields) => JsonLine::Object(Fields::verbatim(fields.into_map(), line)),
        other => other,
    })
}

/// The seed and visitor of a line whose object gets this capacity.
struct Capacity(usize);

impl<'de> DeserializeSeed<'de> for Capacity {
    type Value = JsonLine;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonLine, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Capacity {
    type Value = JsonLine;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonLine, A::Error> {
        let mut map = Map::with_capacity(self.0);
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            map.insert(key, value);
        }
        Ok(JsonLine::Object(map.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<JsonLine, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Value>()? {
            items.push(item);
        }
        Ok(JsonLine::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::String(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<JsonLine, E> {
        Ok(JsonLine::Other(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy as _;

    use super::*;

    /// The value a line held; an object's text, if kept, must read back to its map.
    fn as_value(line: JsonLine) -> Value {
        match line {
            JsonLine::Object(fields) => {
                if let Some(text) = fields.text() {
                    assert_eq!(serde_json::from_str::<Map<String, Value>>(text).unwrap(), *fields);
                }
                Value::Object(fields.into_map())
            }
            JsonLine::Array(items) => Value::Array(items),
            JsonLine::Other(v) => v,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any line parses to what `serde_json` parses it to, or fails where it fails, with
        /// the same end-of-input verdict (which decides whether a document spans lines).
        #[test]
        fn a_line_parses_as_serde_json_parses_it(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "{", "}", "[", "]", ":", ",", "\"a\"", "\"b\"", "\"a\"", "1", "-2.5e3", "true",
                "null", "\"x\\u00e9\"", " ", "\"", "\\", "1e999",
            ]), 0..24),
        ) {
            let line = pieces.concat();
            let ours = parse(line.as_bytes()).map(as_value);
            let theirs = serde_json::from_slice::<Value>(line.as_bytes());
            match (ours, theirs) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b, "{}", line),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(
                    (a.is_eof(), a.line(), a.column()),
                    (b.is_eof(), b.line(), b.column()),
                    "{}", line
                ),
                (a, b) => proptest::prop_assert!(false, "{line}: {:?} against {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }

    /// Documents written out whole (objects of every size, nested values of every kind, keys
    /// repeated) parse to what `serde_json` parses them to.
    fn document() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "[a-z\\u{e9} \"]{0,6}".prop_map(|s| Value::String(s).to_string()),
        ];
        let key = "[a-d]{1,2}".prop_map(|k| Value::String(k).to_string());
        leaf.prop_recursive(3, 64, 80, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key.clone(), inner), 0..80).prop_map(|fields| {
                    let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn a_document_parses_as_serde_json_parses_it(doc in document()) {
            let ours = parse(doc.as_bytes()).map(as_value).map_err(|e| e.to_string());
            let theirs = serde_json::from_slice::<Value>(doc.as_bytes()).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(ours, theirs, "{}", doc);
        }
    }

    /// Every string of `value`, keys included.
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                strings(v, out);
            }),
            _ => {}
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// An object written by `serde_json` (any strings: control characters, quotes,
        /// backslashes, any Unicode) keeps its text, which is the line.
        #[test]
        fn a_line_written_by_serde_json_keeps_its_text(
            fields in proptest::collection::vec((".{0,8}", proptest::prop_oneof![
                ".{0,24}".prop_map(Value::String),
                proptest::prelude::any::<i64>().prop_map(Value::from),
                proptest::prelude::any::<bool>().prop_map(Value::Bool),
                proptest::collection::vec("\\PC{0,6}", 0..4)
                    .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect())),
            ]), 0..12),
        ) {
            let map: Map<String, Value> = fields.into_iter().collect();
            let line = Value::Object(map.clone()).to_string();
            let Ok(JsonLine::Object(parsed)) = parse(line.as_bytes()) else {
                return Err(proptest::test_runner::TestCaseError::fail("not an object"));
            };
            proptest::prop_assert_eq!(parsed.text(), Some(line.as_str()));
            proptest::prop_assert_eq!(&*parsed, &map);
        }

        /// Whatever escapes a writer chose, a kept text holds every string of the map as the
        /// map written out holds it (what a search of the stored text relies on).
        #[test]
        fn a_kept_text_holds_each_string_as_the_map_writes_it(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "é", " ", "\\\\", "\\\"", "\\/", "\\n", "\\u000a", "\\u0008", "\\b", "\\u001f",
                "\\u001F", "\\u00e9", "\\u0027", "\\t", "\\u007f", "C:", "\\ud83d\\ude00",
            ]), 0..12),
        ) {
            let line = format!(r#"{{"k{0}":"{0}","n":[1,"{0}"]}}"#, pieces.concat());
            let Ok(JsonLine::Object(parsed)) = parse(line.as_bytes()) else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("not an object: {line}")));
            };
            if let Some(text) = parsed.text() {
                let mut all = Vec::new();
                strings(&Value::Object(parsed.clone().into_map()), &mut all);
                for s in all {
                    let written = Value::String(s).to_string();
                    proptest::prop_assert!(text.contains(&written), "{} not in {}", written, text);
                }
            }
        }
    }

    #[test]
    fn an_object_line_keeps_its_text_without_the_spaces_around_it() {
        for line in [
            r#"{"a":"C:\\Windows\\x","b":"say \"hi\"\n\u001f"}"#,
            r#"  {"a" : 1.50}  "#,
        ] {
            let Ok(JsonLine::Object(parsed)) = parse(line.as_bytes()) else {
                panic!("{line}")
            };
            assert_eq!(parsed.text(), Some(line.trim()), "{line}");
        }
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value() {
        let JsonLine::Object(map) = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap_or_else(|e| panic!("{e}")) else {
            panic!("not an object");
        };
        assert_eq!(Value::Object(map.into_map()).to_string(), r#"{"a":3,"b":2}"#);
    }
}

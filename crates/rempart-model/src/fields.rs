//! An event's original fields, and the JSON text they came in.
//!
//! A JSON event is parsed once into its map (normalization, detection and triage read it), and
//! its text is kept beside the map: the stores write that text as it came
//! ([`Fields::to_json`]) instead of serializing the map again, which cost the embedded ingest
//! about an eighth of its CPU. The text is what the map was parsed from, so both always say
//! the same; any change to the map through [`Fields`]'s `&mut` access drops the text, and the
//! map is written from then on. Serde serialization (the bus, the API) writes the map.

use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The original fields of an event: a JSON object, with the text it was parsed from when the
/// event came as JSON. Reads go to the map (it derefs to `Map<String, Value>`); equality,
/// `Debug`, serialization and deserialization see only the map.
#[derive(Clone, Default)]
pub struct Fields {
    map: Map<String, Value>,
    /// The bytes the map was parsed from. Read as text only on demand ([`Fields::text`]), so
    /// that decoding pays for a copy, not for a check nobody may need (a hunt never stores).
    line: Option<Box<[u8]>>,
}

impl Fields {
    /// The fields of `map`, with `line` as the JSON they came in; `line` must be the object
    /// `map` was parsed from, surrounding whitespace aside (checked in debug builds); a line
    /// that is not an object is not kept.
    pub fn verbatim(map: Map<String, Value>, line: &[u8]) -> Fields {
        let line = line.trim_ascii();
        debug_assert_eq!(
            serde_json::from_slice::<Map<String, Value>>(line).ok().as_ref(),
            Some(&map),
            "an event's text says what its map says"
        );
        let line = line.starts_with(b"{").then(|| line.into());
        Fields { map, line }
    }

    /// Parses one JSON object, keeping its text (from its `{` to its `}`).
    pub fn parse(json: &str) -> serde_json::Result<Fields> {
        let map = serde_json::from_str(json)?;
        Ok(Fields::verbatim(map, json.as_bytes()))
    }

    /// The JSON text the fields came in, if they came as JSON, were not changed since, and
    /// every escape in the text is one `serde_json` writes itself (`\"`, `\\`, `\b`, `\f`,
    /// `\n`, `\r`, `\t`, and `\u00xx` for the other control characters): then the text shows
    /// each string as the map written out would, and a search of the stored text finds what it
    /// would find in the map's. Writers that escape more (`\/`, `\u00e9` for `é`, .NET's
    /// `\u0027` for `'`) have no text here: their fields are written from the map.
    pub fn text(&self) -> Option<&str> {
        let line = self.line.as_deref()?;
        if !escapes_as_written(line) {
            return None;
        }
        std::str::from_utf8(line).ok()
    }

    /// The fields as a JSON object: their text when they have one, else the map written out.
    pub fn to_json(&self) -> serde_json::Result<String> {
        match self.text() {
            Some(text) => Ok(text.to_owned()),
            None => serde_json::to_string(&self.map),
        }
    }

    /// The map, without its text.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }
}

/// Whether every escape in `text` is one `serde_json` writes itself (see [`Fields::text`]).
fn escapes_as_written(text: &[u8]) -> bool {
    // Where the next escape may start: the character after a backslash is part of its escape
    // (the second backslash of `\\` starts none).
    let mut free = 0;
    for (escape, &byte) in text.iter().enumerate() {
        if byte != b'\\' || escape < free {
            continue;
        }
        match text.get(escape + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => free = escape + 2,
            Some(b'u') => match text.get(escape + 2..escape + 6) {
                Some([b'0', b'0', high @ (b'0' | b'1'), low @ (b'0'..=b'9' | b'a'..=b'f')])
                    if !matches!((high, low), (b'0', b'8' | b'9' | b'a' | b'c' | b'd')) =>
                {
                    free = escape + 6
                }
                _ => return false,
            },
            _ => return false,
        }
    }
    true
}

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Fields {
        Fields { map, line: None }
    }
}

impl Deref for Fields {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.map
    }
}

impl DerefMut for Fields {
    /// The map, to change: its text no longer says the same and is dropped.
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        self.line = None;
        &mut self.map
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.map == other.map
    }
}

impl PartialEq<Map<String, Value>> for Fields {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        &self.map == other
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map.fmt(f)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        Map::deserialize(deserializer).map(Fields::from)
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_text_is_written_as_it_came() {
        let text = r#"{"b": 1.50, "a":"x\"A",  "n":100000000000000000000}"#;
        let fields = Fields::parse(text).unwrap();
        assert_eq!(fields.text(), Some(text));
        assert_eq!(fields.to_json().unwrap(), text);
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"b":1.5,"a":"x\"A","n":1e+20}"#,
            "serde writes the map"
        );
        assert_eq!(fields.get("a"), Some(&json!("x\"A")));
        // The text reads back to the same map.
        let back: Fields = serde_json::from_str(&fields.to_json().unwrap()).unwrap();
        assert_eq!(back, fields);
        assert_eq!(back.text(), None);
    }

    #[test]
    fn a_text_with_escapes_serde_json_would_not_write_is_not_kept() {
        for text in [
            r#"{"a":"x\/y"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"O\u0027Brien"}"#,
            r#"{"a":"\u0008"}"#,
            r#"{"a":"\u001F"}"#,
        ] {
            let fields = Fields::parse(text).unwrap();
            assert_eq!(fields.text(), None, "{text}");
            assert_eq!(fields.to_json().unwrap(), serde_json::to_string(&*fields).unwrap());
        }
        let text = r#"{"a":"C:\\Windows","b":"\"\n\u001f\u0000"}"#;
        assert_eq!(Fields::parse(text).unwrap().text(), Some(text));
    }

    #[test]
    fn a_change_to_the_map_drops_the_text() {
        let mut fields = Fields::parse(r#"{"user":"alice","n":1}"#).unwrap();
        fields.insert("user".to_owned(), json!("bob"));
        assert_eq!(fields.text(), None);
        assert_eq!(fields.to_json().unwrap(), r#"{"user":"bob","n":1}"#);
    }

    #[test]
    fn fields_without_text_are_their_map_written_out() {
        let fields = Fields::from(json!({"k": [1, {"x": null}]}).as_object().unwrap().clone());
        assert_eq!(fields.text(), None);
        assert_eq!(fields.to_json().unwrap(), r#"{"k":[1,{"x":null}]}"#);
    }

    #[test]
    fn only_an_object_parses_as_fields() {
        assert!(Fields::parse("[1]").is_err());
        assert!(Fields::parse("{\"a\":").is_err());
        assert!(Fields::parse(" {\"a\":1} ").unwrap().text() == Some("{\"a\":1}"));
    }

    #[test]
    fn repeated_keys_read_back_as_the_map_has_them() {
        // serde_json keeps the last value in the first key's place; the text, read back,
        // gives the same map.
        let fields = Fields::parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        let back: Map<String, Value> = serde_json::from_str(&fields.to_json().unwrap()).unwrap();
        assert_eq!(back, *fields);
        assert_eq!(back.get("a"), Some(&json!(3)));
    }
}

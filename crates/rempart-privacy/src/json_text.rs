//! Rewriting the strings of a JSON document in its own bytes: each string literal is decoded,
//! handed over with its path, and only the spans the caller replaces change; every other byte
//! (whitespace, key order, number spellings, escapes such as `\u00e9` or `\/`) stays as sent.
//! A message whose text is JSON reaches a provider with its personal values pseudonymized and
//! nothing else respelled (prompt caching and request hashes depend on the bytes).

use std::borrow::Cow;

/// A replacement inside one decoded string: its byte span there and what takes its place.
pub type Edit = (usize, usize, String);

/// Calls `f(path, decoded)` for every string value of the JSON document `text` (object keys are
/// not values) and returns the document with the edits `f` asks for, or `None` if `text` is not
/// one JSON object or array. Paths are written `$.a.b[2]`.
pub fn rewrite_strings(text: &str, mut f: impl FnMut(&str, &str) -> Vec<Edit>) -> Option<String> {
    let t = text.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return None;
    }
    let mut scan = Scan {
        b: text.as_bytes(),
        text,
        at: 0,
        edits: Vec::new(),
    };
    let mut path = String::from("$");
    scan.value(&mut path, &mut f);
    if scan.edits.is_empty() {
        return Some(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in scan.edits {
        out.push_str(&text[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Where the bytes of a decoded string are in the text: runs of it copied as they are, each
/// `(decoded offset, text offset, false)`, and escapes, `(decoded offset, text offset of the
/// backslash, true)`, in order, or no runs at all for a string without escapes (most: nothing
/// is allocated), which starts at `begin`; `end` is the closing quote's offset.
struct Offsets {
    runs: Vec<(usize, usize, bool)>,
    begin: usize,
    end: usize,
}

impl Offsets {
    /// The text offset of the decoded string's byte `d` (of `len`): the closing quote for its
    /// end, an escape's backslash for any byte the escape decodes to.
    fn in_text(&self, d: usize, len: usize) -> Option<usize> {
        if d >= len {
            return (d == len).then_some(self.end);
        }
        if self.runs.is_empty() {
            return Some(self.begin + d);
        }
        let i = self.runs.partition_point(|r| r.0 <= d).checked_sub(1)?;
        let (decoded, text, escape) = self.runs[i];
        Some(if escape { text } else { text + (d - decoded) })
    }
}

/// A walk over a document serde_json has already accepted: only valid JSON reaches it.
struct Scan<'t> {
    b: &'t [u8],
    text: &'t str,
    at: usize,
    /// Raw spans of the text and their replacements (JSON-escaped), in order.
    edits: Vec<(usize, usize, String)>,
}

impl<'t> Scan<'t> {
    fn ws(&mut self) {
        while self.at < self.b.len() && matches!(self.b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// Steps over whitespace and commas to the next item of an object or array, or past its
    /// `close`: whether an item follows.
    fn next_item(&mut self, close: u8) -> bool {
        loop {
            self.ws();
            match self.b.get(self.at) {
                Some(&c) if c == close => {
                    self.at += 1;
                    return false;
                }
                None => return false,
                Some(b',') => self.at += 1,
                Some(_) => return true,
            }
        }
    }

    fn value(&mut self, path: &mut String, f: &mut impl FnMut(&str, &str) -> Vec<Edit>) {
        use std::fmt::Write;
        self.ws();
        let Some(&c) = self.b.get(self.at) else { return };
        let parent = path.len();
        match c {
            b'{' => {
                self.at += 1;
                while self.next_item(b'}') {
                    let (key, _) = self.string();
                    self.ws();
                    self.at += 1; // `:`
                    path.push('.');
                    path.push_str(&key);
                    self.value(path, f);
                    path.truncate(parent);
                }
            }
            b'[' => {
                self.at += 1;
                let mut i = 0;
                while self.next_item(b']') {
                    let _ = write!(path, "[{i}]");
                    self.value(path, f);
                    path.truncate(parent);
                    i += 1;
                }
            }
            b'"' => {
                let (decoded, offsets) = self.string();
                for (s, e, with) in f(path, &decoded) {
                    let (Some(rs), Some(re)) = (offsets.in_text(s, decoded.len()), offsets.in_text(e, decoded.len()))
                    else {
                        continue;
                    };
                    let escaped = serde_json::to_string(&with).unwrap_or_default();
                    self.edits.push((rs, re, escaped[1..escaped.len() - 1].to_owned()));
                }
            }
            _ => {
                while self.at < self.b.len()
                    && !matches!(self.b[self.at], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    self.at += 1;
                }
            }
        }
    }

    /// The string literal at `self.at`, decoded (borrowed from the text when it has no escape),
    /// and where the bytes of the decoded string are in the text.
    fn string(&mut self) -> (Cow<'t, str>, Offsets) {
        self.at += 1; // opening quote
        let begin = self.at;
        // Decoded only once an escape is met; until then the text is the decoded string.
        let mut out: Option<String> = None;
        let mut runs = Vec::new();
        let content_end;
        loop {
            let run = self.at;
            let stop = memchr::memchr2(b'"', b'\\', &self.b[run..]).map_or(self.b.len(), |i| run + i);
            // Runs are kept from the first escape on; before it, offsets are the text's.
            if stop > run
                && let Some(o) = &mut out
            {
                runs.push((o.len(), run, false));
                o.push_str(&self.text[run..stop]);
            }
            self.at = stop;
            match self.b.get(self.at) {
                None => {
                    content_end = self.at;
                    break;
                }
                Some(b'"') => {
                    content_end = self.at;
                    self.at += 1;
                    break;
                }
                Some(_) => {
                    let start = self.at;
                    if out.is_none() {
                        out = Some(self.text[begin..start].to_owned());
                        if start > begin {
                            runs.push((0, begin, false));
                        }
                    }
                    let e = self.b.get(self.at + 1).copied().unwrap_or(b'"');
                    self.at += 2;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hi = self.hex4();
                            if (0xD800..0xDC00).contains(&hi) && self.b.get(self.at) == Some(&b'\\') {
                                self.at += 2;
                                let lo = self.hex4();
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF))
                                    .unwrap_or('\u{fffd}')
                            } else {
                                char::from_u32(hi).unwrap_or('\u{fffd}')
                            }
                        }
                        other => char::from(other),
                    };
                    let o = out.as_mut().unwrap_or_else(|| unreachable!("set above"));
                    runs.push((o.len(), start, true));
                    o.push(ch);
                }
            }
        }
        let decoded = match out {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(&self.text[begin..content_end]),
        };
        // The end of the decoded string is the closing quote.
        (
            decoded,
            Offsets {
                runs,
                begin,
                end: content_end,
            },
        )
    }

    fn hex4(&mut self) -> u32 {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("0000");
        self.at += 4;
        u32::from_str_radix(digits, 16).unwrap_or(0xFFFD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_edited_spans_change() {
        let text = "{ \"a\" : \"x caf\\u00e9 bob\\/y\",\n  \"n\": 1.50e3, \"l\": [\"bob\", true] }";
        let out = rewrite_strings(text, |path, s| {
            s.match_indices("bob")
                .map(|(i, _)| (i, i + 3, format!("user<{path}>")))
                .collect()
        });
        assert_eq!(
            out.as_deref(),
            Some("{ \"a\" : \"x caf\\u00e9 user<$.a>\\/y\",\n  \"n\": 1.50e3, \"l\": [\"user<$.l[0]>\", true] }")
        );
        assert_eq!(rewrite_strings("not json", |_, _| Vec::new()), None);
        assert_eq!(rewrite_strings("\"a string\"", |_, _| Vec::new()), None);
    }

    proptest::proptest! {
        /// Whatever the document and its spelling, replacing every string's whole value gives
        /// the document serde_json reads with those values, and replacing nothing gives the text.
        #[test]
        fn rewriting_agrees_with_a_parse(v in json_value(), pretty in proptest::bool::ANY) {
            let doc = serde_json::json!({"k": v});
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap_or_default();
            proptest::prop_assert_eq!(rewrite_strings(&text, |_, _| Vec::new()), Some(text.clone()));
            let out = rewrite_strings(&text, |_, s| vec![(0, s.len(), format!("<{s}>"))]).unwrap_or_default();
            let mut want = doc.clone();
            wrap(&mut want);
            let got: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// An edit inside a string (its second character) lands where that character is
        /// written, escaped or not.
        #[test]
        fn an_edit_inside_a_string_replaces_that_character(v in json_value(), pretty in proptest::bool::ANY) {
            let doc = serde_json::json!({"k": v});
            let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap_or_default();
            let second = |s: &str| s.char_indices().nth(1).map(|(i, c)| (i, i + c.len_utf8()));
            let out = rewrite_strings(&text, |_, s| second(s).map(|(a, b)| (a, b, "#".to_owned())).into_iter().collect())
                .unwrap_or_default();
            let mut want = doc.clone();
            mark_second(&mut want);
            let got: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            proptest::prop_assert_eq!(got, want);
        }
    }

    fn mark_second(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                if let Some((i, c)) = s.char_indices().nth(1) {
                    s.replace_range(i..i + c.len_utf8(), "#");
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(mark_second),
            serde_json::Value::Object(o) => o.values_mut().for_each(mark_second),
            _ => {}
        }
    }

    fn wrap(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = format!("<{s}>"),
            serde_json::Value::Array(a) => a.iter_mut().for_each(wrap),
            serde_json::Value::Object(o) => o.values_mut().for_each(wrap),
            _ => {}
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "[\\PC\\u{1}\\u{1f}\"\\\\/é😀]{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\é]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}

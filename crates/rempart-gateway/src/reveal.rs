//! Pseudonymizing a request before it leaves, and re-identifying the answer for the client from
//! that request's own replacements: a model can only echo or combine pseudonyms it was given,
//! so nothing is revealed that the client did not send.

use std::collections::{BTreeMap, HashMap};

use rempart_privacy::PrivacyError;
use rempart_privacy::redact::{Redactor, Replacement};
use rempart_privacy::vault::reveal_known;
#[cfg(test)]
use serde_json::Value;

use crate::chat::{ChatRequest, ChatResponse, Part};

/// A request with its personal data replaced.
#[derive(Debug)]
pub struct Pseudonymized {
    pub request: ChatRequest,
    pub replacements: Vec<Replacement>,
    /// Pseudonym → original, and the same with the original escaped for a JSON string.
    pub known: Known,
}

/// Pseudonym → original, for plain text and inside JSON strings.
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub text: HashMap<String, String>,
    pub json: HashMap<String, String>,
}

impl Known {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The mapping of a request's replacements (secrets, which have no original kept, excluded).
    pub fn from_replacements(replacements: &[Replacement]) -> Known {
        let mut k = Known::default();
        for r in replacements.iter().filter(|r| r.subject.is_some()) {
            k.text.entry(r.pseudonym.clone()).or_insert_with(|| r.original.clone());
            let escaped = serde_json::to_string(&r.original).unwrap_or_default();
            let inner = escaped
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or_default()
                .to_owned();
            k.json.entry(r.pseudonym.clone()).or_insert(inner);
        }
        k
    }
}

/// Counts of replacements by entity type.
pub fn found(replacements: &[Replacement]) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    for r in replacements {
        *m.entry(r.entity.prefix()).or_insert(0) += 1;
    }
    m
}

/// Redacts a JSON object or array as JSON, in its own bytes (only the personal values change),
/// anything else as text.
fn redact_json_text(r: &Redactor, text: &str, out: &mut Vec<Replacement>) -> Result<String, PrivacyError> {
    let red = match r.redact_json_text(text)? {
        Some(red) => red,
        None => r.redact_text(text)?,
    };
    out.extend(red.replacements);
    Ok(red.output)
}

/// Replaces the personal data of every text the request carries.
/// A provider's answer with its personal data pseudonymized, for the ledger record of a call
/// that went in clear.
pub fn pseudonymize_response(
    r: &Redactor,
    resp: &ChatResponse,
) -> Result<(ChatResponse, Vec<Replacement>), PrivacyError> {
    let mut out = resp.clone();
    let mut reps = Vec::new();
    for p in &mut out.parts {
        match p {
            Part::Text { text: t } => *t = redact_json_text(r, t, &mut reps)?,
            Part::ToolCall { arguments, .. } => *arguments = redact_json_text(r, arguments, &mut reps)?,
            Part::ToolResult { content, .. } => *content = redact_json_text(r, content, &mut reps)?,
        }
    }
    Ok((out, reps))
}

pub fn pseudonymize(r: &Redactor, req: &ChatRequest) -> Result<Pseudonymized, PrivacyError> {
    let mut out = req.clone();
    let mut reps = Vec::new();
    let text = |t: &mut String, reps: &mut Vec<Replacement>| -> Result<(), PrivacyError> {
        let red = r.redact_text(t)?;
        *t = red.output;
        reps.extend(red.replacements);
        Ok(())
    };
    for s in &mut out.system {
        text(s, &mut reps)?;
    }
    // A message or tool result that is a JSON document is redacted as JSON: a field named
    // for an entity (`host`, `TargetUserName`) is replaced whole even where free-text
    // recognizers would not know the value.
    for m in &mut out.messages {
        for p in &mut m.parts {
            match p {
                Part::Text { text: t } => *t = redact_json_text(r, t, &mut reps)?,
                Part::ToolCall { arguments, .. } => *arguments = redact_json_text(r, arguments, &mut reps)?,
                Part::ToolResult { content, .. } => *content = redact_json_text(r, content, &mut reps)?,
            }
        }
    }
    if let Some(u) = &mut out.user {
        text(u, &mut reps)?;
    }
    // What a recognizer found anywhere is personal data everywhere in the request: a host
    // name from a `host` field, written bare in a free-text note, is replaced there too.
    let again = |t: &mut String| {
        let (replaced, n) = Redactor::replace_known_text(t, &reps);
        if n > 0 {
            *t = replaced;
        }
    };
    for s in &mut out.system {
        again(s);
    }
    for m in &mut out.messages {
        for p in &mut m.parts {
            match p {
                Part::Text { text: t } => again(t),
                Part::ToolCall { arguments, .. } => again(arguments),
                Part::ToolResult { content, .. } => again(content),
            }
        }
    }
    let known = Known::from_replacements(&reps);
    Ok(Pseudonymized {
        request: out,
        replacements: reps,
        known,
    })
}

/// Re-identifies JSON text string by string (originals escaped as JSON needs); other text as
/// text. Returns how many pseudonyms were turned back.
pub fn reveal_json_text(text: &str, known: &Known) -> Result<(String, usize), PrivacyError> {
    let mut n = 0;
    let mut err = None;
    // A JSON answer keeps its bytes: only the pseudonyms in its strings are turned back.
    let rewritten = rempart_privacy::json_text::rewrite_strings(text, |_, s| match reveal_known(s, &known.text) {
        Ok(r) if !r.revealed.is_empty() => {
            n += r.revealed.len();
            vec![(0, s.len(), r.output)]
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            err = Some(e);
            Vec::new()
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    match rewritten {
        Some(out) => Ok((out, n)),
        None => {
            let r = reveal_known(text, &known.json)?;
            Ok((r.output, r.revealed.len()))
        }
    }
}

/// Re-identifies a complete answer; `json` when its text is a JSON document.
pub fn reveal_response(resp: &mut ChatResponse, known: &Known, json: bool) -> Result<usize, PrivacyError> {
    let mut n = 0;
    for p in &mut resp.parts {
        match p {
            Part::Text { text } if json => {
                let (t, k) = reveal_json_text(text, known)?;
                *text = t;
                n += k;
            }
            Part::Text { text } => {
                let r = reveal_known(text, &known.text)?;
                *text = r.output;
                n += r.revealed.len();
            }
            Part::ToolCall { arguments, .. } => {
                let (t, k) = reveal_json_text(arguments, known)?;
                *arguments = t;
                n += k;
            }
            Part::ToolResult { .. } => {}
        }
    }
    Ok(n)
}

/// Whether `c` can be part of a pseudonym: a pseudonym is never cut at any other character.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-' | ':')
}

/// Longest run held back waiting for a pseudonym to end.
const MAX_HELD: usize = 256;

/// Re-identifies streamed text: the tail that may be the start of a pseudonym is held back
/// until the next delta shows where it ends.
#[derive(Debug, Default)]
pub struct StreamRevealer {
    held: String,
    /// Whether the text is JSON (tool arguments): originals are then escaped.
    json: bool,
    pub revealed: usize,
}

impl StreamRevealer {
    pub fn json() -> Self {
        StreamRevealer {
            json: true,
            ..Self::default()
        }
    }

    /// Text safe to send now.
    pub fn push(&mut self, text: &str, known: &Known) -> Result<String, PrivacyError> {
        self.held.push_str(text);
        let cut = if self.held.len() > MAX_HELD {
            self.held.len()
        } else {
            self.held
                .char_indices()
                .rev()
                .find(|(_, c)| !token_char(*c))
                .map_or(0, |(i, c)| i + c.len_utf8())
        };
        let ready: String = self.held.drain(..cut).collect();
        self.reveal(&ready, known)
    }

    /// What is still held, at the end of the stream.
    pub fn flush(&mut self, known: &Known) -> Result<String, PrivacyError> {
        let rest = std::mem::take(&mut self.held);
        self.reveal(&rest, known)
    }

    fn reveal(&mut self, text: &str, known: &Known) -> Result<String, PrivacyError> {
        if text.is_empty() || known.is_empty() {
            return Ok(text.to_owned());
        }
        let r = reveal_known(text, if self.json { &known.json } else { &known.text })?;
        self.revealed += r.revealed.len();
        Ok(r.output)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn known() -> Known {
        let mut k = Known::default();
        k.text.insert("user_0123456789".into(), "alice".into());
        k.text
            .insert("email_abcdef0123@example.org".into(), "a\"b@example.org".into());
        k.json.insert("user_0123456789".into(), "alice".into());
        k.json
            .insert("email_abcdef0123@example.org".into(), "a\\\"b@example.org".into());
        k
    }

    proptest! {
        /// However a model's answer is cut into deltas, the re-identified stream is the
        /// re-identified whole.
        #[test]
        fn streamed_reveal_equals_whole_reveal(cuts in proptest::collection::vec(0usize..120, 0..12)) {
            let text = "User user_0123456789 mailed email_abcdef0123@example.org, then user_0123456789.";
            let k = known();
            let whole = reveal_known(text, &k.text).unwrap().output;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut s = StreamRevealer::default();
            let mut out = String::new();
            let mut at = 0;
            for c in cuts {
                out.push_str(&s.push(&text[at..c.max(at)], &k).unwrap());
                at = c.max(at);
            }
            out.push_str(&s.push(&text[at..], &k).unwrap());
            out.push_str(&s.flush(&k).unwrap());
            prop_assert_eq!(out, whole);
        }
    }

    #[test]
    fn json_text_is_revealed_with_escaping() {
        let (t, n) = reveal_json_text(
            r#"{"who":"user_0123456789","mail":"email_abcdef0123@example.org"}"#,
            &known(),
        )
        .unwrap();
        assert_eq!(n, 2);
        let v: Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v["mail"], "a\"b@example.org");
    }
}

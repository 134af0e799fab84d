//! The vault: pseudonym → original, each original sealed under its data subject's key, so that
//! re-identification works only inside Rempart, only while the subject exists, and erasing the
//! subject (destroying its key) makes every one of its pseudonyms irreversible at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use regex::Regex;
use rempart_audit::Keyring;
use rempart_audit::seal::{self, Key};
use rempart_store::{VaultEntry, VaultStore};
use serde::Serialize;

use crate::PrivacyError;
use crate::recognize::{IPV4, IPV6, ascii_boundaries};
use crate::redact::{Domain, Replacement};

/// Pseudonyms as [`crate::redact`] writes them (addresses are found separately). Word
/// boundaries are ASCII, as the recognizers' are, so that whatever they replaced is found again.
static TOKENS: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| {
    Regex::new(&ascii_boundaries(
        r"\b(?:user|person|phone|iban|card|natid|mac)_[0-9a-f]{10}\b|\bhost_[0-9a-f]{10}(?:\.[A-Za-z0-9-]+)*|\bemail_[0-9a-f]{10}@[A-Za-z0-9_.-]*[A-Za-z0-9]|\bsid_[0-9a-f]{10}-\d+",
    ))
});
static ADDRESSES: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(&ascii_boundaries(&format!("{IPV4}|{IPV6}"))));

fn regex(r: &'static LazyLock<Result<Regex, regex::Error>>) -> Result<&'static Regex, PrivacyError> {
    r.as_ref()
        .map_err(|e| PrivacyError::Config(format!("vault pattern: {e}")))
}

/// What a re-identification did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revealed {
    pub output: String,
    /// Pseudonyms turned back into originals.
    pub revealed: Vec<String>,
    /// Pseudonyms found but not turned back: erased subjects, or not from this domain.
    pub unresolved: Vec<String>,
}

/// One pseudonym of a subject, for an access request (GDPR Art. 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectRecord {
    pub domain: String,
    pub pseudonym: String,
    /// `None` once the subject is erased.
    pub original: Option<String>,
    pub created: Timestamp,
}

/// Replaces the pseudonyms at `spans` of `text` by what `lookup` knows of them: `Some(Some(o))`
/// an original, `Some(None)` a pseudonym whose original is gone, `None` not one of ours.
fn substitute<'a>(text: &str, spans: &[(usize, usize)], lookup: impl Fn(&str) -> Option<Option<&'a str>>) -> Revealed {
    let mut out = String::with_capacity(text.len());
    let (mut revealed, mut unresolved) = (Vec::new(), Vec::new());
    let mut at = 0;
    for &(s, e) in spans {
        if s < at {
            continue;
        }
        let mut t = &text[s..e];
        // A host pseudonym may run into the sentence around it: try it shortened label by label.
        let hit = loop {
            if let Some(o) = lookup(t) {
                break Some((t.len(), o));
            }
            match t.rsplit_once('.') {
                Some((head, _)) if t.starts_with("host_") => t = head,
                _ => break None,
            }
        };
        match hit {
            Some((len, Some(original))) => {
                out.push_str(&text[at..s]);
                out.push_str(original);
                revealed.push(text[s..s + len].to_owned());
                at = s + len;
            }
            Some((len, None)) => unresolved.push(text[s..s + len].to_owned()),
            // Not a pseudonym of this domain (an address in clear, a lookalike): left alone,
            // and only reported if it has the shape of one of ours.
            None if !text[s..e].contains(['.', ':']) || text[s..e].starts_with("host_") => {
                unresolved.push(text[s..e].to_owned());
            }
            None => {}
        }
    }
    out.push_str(&text[at..]);
    Revealed {
        output: out,
        revealed,
        unresolved,
    }
}

/// Re-identifies `text` from a mapping held in memory (pseudonym → original), such as the
/// replacements of the request a model is answering: no vault lookup, and nothing revealed
/// that the mapping's owner did not already hold.
pub fn reveal_known(text: &str, known: &HashMap<String, String>) -> Result<Revealed, PrivacyError> {
    if known.is_empty() {
        return Ok(Revealed {
            output: text.to_owned(),
            revealed: Vec::new(),
            unresolved: Vec::new(),
        });
    }
    let spans = Vault::candidates(text)?;
    Ok(substitute(text, &spans, |t| known.get(t).map(|o| Some(o.as_str()))))
}

/// The vault over a store and the subject keyring.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Arc<dyn VaultStore>,
    keyring: Keyring,
    /// Pseudonyms this process has already sealed under a live key (domain, pseudonym): the
    /// same users, hosts and addresses recur in every batch and need sealing, and a key lookup,
    /// once. Forgotten when the keyring sees an erasure (a subject that reappears is then sealed
    /// anew under its new key) and at least every [`STORED_TTL`] (an erasure by another
    /// process).
    stored: Arc<std::sync::Mutex<Stored>>,
}

#[derive(Debug)]
struct Stored {
    tokens: std::collections::HashSet<(String, String)>,
    erasures: u64,
    since: std::time::Instant,
}

impl Default for Stored {
    fn default() -> Self {
        Stored {
            tokens: std::collections::HashSet::new(),
            erasures: 0,
            since: std::time::Instant::now(),
        }
    }
}

/// Longest time a pseudonym is taken as sealed without asking the store again.
const STORED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Pseudonyms remembered as stored before the set starts over.
const STORED_MAX: usize = 262_144;

fn item_key(subject_key: &Key, domain: &str, token: &str) -> Key {
    seal::derive(
        subject_key,
        &[b"rempart vault\0", domain.as_bytes(), b"\0", token.as_bytes()],
    )
}

fn aad(domain: &str, token: &str) -> Vec<u8> {
    [domain.as_bytes(), b"\0", token.as_bytes()].concat()
}

impl Vault {
    pub fn new(store: Arc<dyn VaultStore>, keyring: Keyring) -> Self {
        Vault {
            store,
            keyring,
            stored: Arc::default(),
        }
    }

    /// Seals the originals behind `replacements` (secrets are never kept). Call it before the
    /// pseudonymized text leaves: if it fails, the text must not be released.
    pub async fn remember(
        &self,
        domain: &Domain,
        replacements: &[Replacement],
        now: Timestamp,
    ) -> Result<(), PrivacyError> {
        let mut unique: BTreeMap<&str, (&str, &str)> = BTreeMap::new(); // token → (subject, original)
        for r in replacements {
            if let Some(subject) = &r.subject {
                unique
                    .entry(r.pseudonym.as_str())
                    .or_insert((subject.as_str(), r.original.as_str()));
            }
        }
        {
            let mut stored = self.stored.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let erasures = self.keyring.erasures();
            if stored.erasures != erasures || stored.since.elapsed() > STORED_TTL {
                *stored = Stored {
                    erasures,
                    ..Stored::default()
                };
            }
            let name = domain.name().to_owned();
            unique.retain(|token, _| !stored.tokens.contains(&(name.clone(), (*token).to_owned())));
        }
        if unique.is_empty() {
            return Ok(());
        }
        let subjects: Vec<&str> = unique.values().map(|(s, _)| *s).collect();
        let keys = self.keyring.keys_for(&subjects, now).await?;
        let mut entries = Vec::with_capacity(unique.len());
        for (token, (subject, original)) in unique {
            let Some((key_id, key)) = keys.get(subject) else {
                return Err(PrivacyError::Config(format!("no key for subject of `{token}`")));
            };
            entries.push(VaultEntry {
                domain: domain.name().to_owned(),
                token: token.to_owned(),
                subject_mac: self.keyring.subject_mac(subject),
                key_id: key_id.clone(),
                sealed: seal::encrypt(
                    &item_key(key, domain.name(), token),
                    original.as_bytes(),
                    &aad(domain.name(), token),
                ),
                created: now,
            });
        }
        if entries.is_empty() {
            return Ok(());
        }
        let collisions = self.store.vault_put(&entries).await?;
        if !collisions.is_empty() {
            return Err(PrivacyError::Collision(collisions));
        }
        let mut stored = self.stored.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if stored.tokens.len() + entries.len() > STORED_MAX {
            stored.tokens.clear();
        }
        stored.tokens.extend(entries.into_iter().map(|e| (e.domain, e.token)));
        Ok(())
    }

    /// The pseudonyms in `text` with where they are, longest reading of each.
    fn candidates(text: &str) -> Result<Vec<(usize, usize)>, PrivacyError> {
        let mut spans: Vec<(usize, usize)> = regex(&TOKENS)?.find_iter(text).map(|m| (m.start(), m.end())).collect();
        spans.extend(regex(&ADDRESSES)?.find_iter(text).map(|m| (m.start(), m.end())));
        spans.sort_unstable();
        Ok(spans)
    }

    /// Turns the pseudonyms of `domain` in `text` back into their originals, as far as the
    /// subjects still exist. The caller records the re-identification before releasing it.
    pub async fn reveal(&self, domain: &Domain, text: &str) -> Result<Revealed, PrivacyError> {
        let spans = Self::candidates(text)?;
        // A host pseudonym may run into the sentence around it: try it shortened label by label.
        let mut lookups: Vec<String> = Vec::new();
        for &(s, e) in &spans {
            let mut t = &text[s..e];
            loop {
                lookups.push(t.to_owned());
                match t.rsplit_once('.') {
                    Some((head, _)) if t.starts_with("host_") => t = head,
                    _ => break,
                }
            }
        }
        lookups.sort();
        lookups.dedup();
        let entries = self.store.vault_get(domain.name(), &lookups).await?;
        let key_ids: Vec<String> = entries.iter().map(|e| e.key_id.clone()).collect();
        let keys = self.keyring.open(&key_ids).await?;
        let mut originals: HashMap<&str, Option<String>> = HashMap::new();
        for e in &entries {
            let clear = keys.get(&e.key_id).and_then(|k| {
                seal::decrypt(
                    &item_key(k, domain.name(), &e.token),
                    &e.sealed,
                    &aad(domain.name(), &e.token),
                )
                .and_then(|b| String::from_utf8(b).ok())
            });
            originals.insert(e.token.as_str(), clear);
        }
        Ok(substitute(text, &spans, |t| originals.get(t).map(Option::as_deref)))
    }

    /// Re-identifies a batch of lines: JSON lines string by string (so that originals are
    /// escaped as JSON needs), other lines as text; all in one vault lookup.
    pub async fn reveal_lines(
        &self,
        domain: &Domain,
        lines: &[String],
    ) -> Result<(Vec<String>, Revealed), PrivacyError> {
        // JSON lines are read for their string values and written back with only the
        // revealed spans changed, every other byte (escapes, spacing, key order) as it came.
        let mut json = Vec::with_capacity(lines.len());
        let mut pieces: Vec<String> = Vec::new();
        for line in lines {
            let strings_before = pieces.len();
            let is_json = crate::json_text::rewrite_strings(line, |_, s| {
                pieces.push(s.to_owned());
                Vec::new()
            })
            .is_some();
            if !is_json {
                pieces.truncate(strings_before);
                pieces.push(line.clone());
            }
            json.push(is_json);
        }
        if pieces.iter().any(|p| p.contains('\0')) {
            return Err(PrivacyError::Config(
                "input holds NUL characters; nothing was revealed".to_owned(),
            ));
        }
        // No text at all (no lines, or JSON lines without strings): nothing to look up, and
        // joining nothing would give one empty piece back for no line to take.
        let revealed = if pieces.is_empty() {
            Revealed {
                output: String::new(),
                revealed: Vec::new(),
                unresolved: Vec::new(),
            }
        } else {
            self.reveal(domain, &pieces.join("\0")).await?
        };
        let mut back = revealed.output.split('\0').map(str::to_owned);
        if pieces.is_empty() {
            // The one empty piece `split` makes of nothing.
            back.next();
        }
        let mut out = Vec::with_capacity(lines.len());
        for (line, is_json) in lines.iter().zip(json) {
            if is_json {
                let rewritten = crate::json_text::rewrite_strings(line, |_, s| {
                    let r = back.next().unwrap_or_default();
                    if r == s {
                        // Most strings hold no pseudonym: no second search for one.
                        return Vec::new();
                    }
                    // The search ran on the same text in `reveal` already; were it to fail
                    // here, one span between the differences still gives the revealed text.
                    let spans = Self::candidates(s).unwrap_or_default();
                    changed_spans(s, &r, &spans)
                });
                out.push(rewritten.unwrap_or_else(|| line.clone()));
            } else {
                out.push(back.next().unwrap_or_default());
            }
        }
        if back.next().is_some() {
            return Err(PrivacyError::Config(
                "re-identification changed the text's shape; nothing was revealed".to_owned(),
            ));
        }
        Ok((out, revealed))
    }

    /// Every pseudonym of `subject` in every domain, with its original while the subject exists.
    pub async fn subject_records(&self, subject: &str) -> Result<Vec<SubjectRecord>, PrivacyError> {
        let entries = self.store.vault_subject(&self.keyring.subject_mac(subject)).await?;
        let key_ids: Vec<String> = entries.iter().map(|e| e.key_id.clone()).collect();
        let keys = self.keyring.open(&key_ids).await?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let original = keys.get(&e.key_id).and_then(|k| {
                    seal::decrypt(&item_key(k, &e.domain, &e.token), &e.sealed, &aad(&e.domain, &e.token))
                        .and_then(|b| String::from_utf8(b).ok())
                });
                SubjectRecord {
                    domain: e.domain,
                    pseudonym: e.token,
                    original,
                    created: e.created,
                }
            })
            .collect())
    }
}

/// The edits that turn `before` into `after`, where `after` is `before` with some of the
/// pseudonyms at `spans` replaced: one edit per replaced pseudonym, so that the text between
/// two of them keeps its bytes (its escapes, in a JSON string). Where the replacements cannot
/// be lined up with the spans (a pseudonym read shorter than its span), the one span between
/// the first and the last difference; either way, the edits applied give `after` exactly.
fn changed_spans(before: &str, after: &str, spans: &[(usize, usize)]) -> Vec<crate::json_text::Edit> {
    let lined_up = || -> Option<Vec<crate::json_text::Edit>> {
        let mut edits = Vec::new();
        let (mut b, mut a) = (0, 0);
        let mut spans = spans.iter().filter(|(s, e)| s < e).peekable();
        while let Some(&(start, end)) = spans.next() {
            if start < b {
                continue;
            }
            let same = before.get(b..start)?;
            if !after.get(a..)?.starts_with(same) {
                return None;
            }
            a += same.len();
            // The unchanged text after this pseudonym, up to the next one or the end.
            let next = spans.peek().map_or(before.len(), |&&(s, _)| s.max(end));
            let tail = before.get(end..next)?;
            let rest = after.get(a..)?;
            let value_len = if next == before.len() {
                rest.len().checked_sub(tail.len())?
            } else if tail.is_empty() {
                return None;
            } else {
                rest.find(tail)?
            };
            let value = rest.get(..value_len)?;
            if value != &before[start..end] {
                edits.push((start, end, value.to_owned()));
            }
            a += value_len;
            b = end;
        }
        Some(edits)
    };
    match lined_up() {
        Some(edits) if apply(before, &edits) == after => edits,
        _ => changed_span(before, after).into_iter().collect(),
    }
}

/// `text` with `edits` (in order, apart) applied.
fn apply(text: &str, edits: &[crate::json_text::Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in edits {
        out.push_str(&text[at..*start]);
        out.push_str(with);
        at = *end;
    }
    out.push_str(&text[at..]);
    out
}

/// The one edit that turns `before` into `after`: the span between their common beginning and
/// end (on character boundaries) and what replaces it; `None` when they are equal.
fn changed_span(before: &str, after: &str) -> Option<crate::json_text::Edit> {
    if before == after {
        return None;
    }
    let prefix = before
        .char_indices()
        .zip(after.chars())
        .find(|((_, a), b)| a != b)
        .map_or_else(|| before.len().min(after.len()), |((i, _), _)| i);
    let (b_rest, a_rest) = (&before[prefix..], &after[prefix..]);
    let suffix = b_rest
        .chars()
        .rev()
        .zip(a_rest.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum::<usize>();
    Some((
        prefix,
        before.len() - suffix,
        a_rest[..a_rest.len() - suffix].to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{apply, changed_spans};

    proptest! {
        /// Whatever the spans say, the edits give `after` exactly: lined up with the spans when
        /// the replacements are there, one span otherwise.
        #[test]
        fn the_edits_always_give_the_revealed_text(
            before in "[a-c_\\\\é ]{0,24}",
            after in "[a-c_\\\\é ]{0,24}",
            cuts in proptest::collection::vec((0usize..30, 0usize..30), 0..4),
        ) {
            let mut spans: Vec<(usize, usize)> = cuts
                .into_iter()
                .map(|(x, y)| (x.min(y), x.max(y)))
                .filter(|&(s, e)| e <= before.len() && before.is_char_boundary(s) && before.is_char_boundary(e))
                .collect();
            spans.sort_unstable();
            prop_assert_eq!(apply(&before, &changed_spans(&before, &after, &spans)), after);
        }

        /// Pseudonyms replaced at their spans give one edit each, the text between them kept.
        #[test]
        fn replaced_pseudonyms_give_one_edit_each(
            parts in proptest::collection::vec(("[a-z ]{1,6}", "[a-z]{1,8}"), 1..5),
        ) {
            let (mut before, mut after, mut spans) = (String::new(), String::new(), Vec::new());
            for (i, (between, original)) in parts.iter().enumerate() {
                before.push_str(between);
                after.push_str(between);
                let pseudonym = format!("user_{i:010x}");
                spans.push((before.len(), before.len() + pseudonym.len()));
                before.push_str(&pseudonym);
                after.push_str(original);
            }
            let edits = changed_spans(&before, &after, &spans);
            prop_assert_eq!(edits.len(), parts.len());
            prop_assert_eq!(apply(&before, &edits), after);
        }
    }
}

//! Erasure of a data subject's originals where Rempart keeps them in clear: stored events,
//! quarantined input, alerts, incidents, verdicts, response records and detector state.
//!
//! Destroying a subject's key (the ledger and the vault) makes its pseudonyms irreversible; the
//! telemetry itself still names the subject, in clear, wherever it was stored. A sweep finds
//! every stored text that may hold the subject (a cheap prefilter in the store), hands each of
//! its strings (JSON object keys too) to a rewrite the caller owns (the privacy engine knows
//! what a user name, an address or an IBAN looks like), and writes back what changed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{BoxFuture, Result};

/// Rewrites one stored string in place; returns how many occurrences of the subject it replaced
/// (zero: the string is left as it was).
pub type Rewrite<'a> = dyn Fn(&mut String) -> usize + Send + Sync + 'a;

/// Ids of changed rows reported per table, at most.
pub const MAX_REPORTED_IDS: usize = 1000;

/// One sweep over everything stored.
pub struct Sweep<'a> {
    /// Every stored text that holds the subject contains at least one of these, compared
    /// ASCII-case-insensitively: the store only hands rows holding one of them to `rewrite`.
    /// Must not be empty.
    pub needles: &'a [String],
    pub rewrite: &'a Rewrite<'a>,
    /// Count what would change and change nothing (an access request's "where is it kept").
    pub dry_run: bool,
}

impl std::fmt::Debug for Sweep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweep")
            .field("needles", &self.needles.len())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// What a sweep found (and, unless it was a dry run, rewrote).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Rows holding the subject, by table.
    pub rows: BTreeMap<String, u64>,
    /// Occurrences of the subject in them.
    pub occurrences: u64,
    /// The rows' ids (events, alerts, incidents, …), by table, at most [`MAX_REPORTED_IDS`] each.
    pub ids: BTreeMap<String, Vec<String>>,
    /// Whether the store's own files (a write-ahead log, free pages) no longer hold the old
    /// copies of what was rewritten; always true for a dry run.
    pub purged: bool,
}

impl SweepReport {
    /// Rows holding the subject, over all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Adds one row of `table` with `occurrences`.
    pub fn count(&mut self, table: &str, id: String, occurrences: usize) {
        *self.rows.entry(table.to_owned()).or_default() += 1;
        self.occurrences += occurrences as u64;
        let ids = self.ids.entry(table.to_owned()).or_default();
        if ids.len() < MAX_REPORTED_IDS {
            ids.push(id);
        }
    }
}

/// Applies `rewrite` to every string of `v`, object keys included (a detector's baselines are
/// keyed by user and host); returns how many occurrences it replaced. Two keys that become one
/// keep the later value.
pub fn rewrite_json(v: &mut serde_json::Value, rewrite: &Rewrite<'_>) -> usize {
    match v {
        serde_json::Value::String(s) => rewrite(s),
        serde_json::Value::Array(items) => items.iter_mut().map(|i| rewrite_json(i, rewrite)).sum(),
        serde_json::Value::Object(map) => {
            let mut n: usize = map.values_mut().map(|i| rewrite_json(i, rewrite)).sum();
            let mut renamed = 0;
            let mut keys: Vec<String> = map.keys().cloned().collect();
            for k in &mut keys {
                renamed += rewrite(k);
            }
            if renamed > 0 {
                let old = std::mem::take(map);
                map.extend(keys.into_iter().zip(old.into_iter().map(|(_, v)| v)));
                n += renamed;
            }
            n
        }
        _ => 0,
    }
}

/// How a swept column is read and rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Plain text, possibly NULL.
    Text,
    /// A JSON document; its strings and object keys are rewritten.
    Json,
    /// Raw bytes (quarantined input): rewritten as text, invalid UTF-8 replaced.
    Blob,
}

/// One swept column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// Hands the strings of one stored value to the sweep's rewrite; returns the value to store
/// back (the very same when nothing changed) and how many occurrences were replaced.
/// `what` names the table and column, for the error on a JSON column that does not decode.
pub(crate) fn rewrite_cell(
    cell: Cell,
    value: Value,
    sweep: &Sweep<'_>,
    what: impl FnOnce() -> String,
    id: &str,
) -> crate::Result<(Value, usize)> {
    Ok(match (cell, value) {
        (Cell::Json, Value::Text(Some(text))) => {
            let mut doc: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| crate::codec::corrupt(id, &what(), e))?;
            let n = rewrite_json(&mut doc, sweep.rewrite);
            (Value::Text(Some(if n > 0 { doc.to_string() } else { text })), n)
        }
        (_, Value::Text(mut v)) => {
            let n = v.as_mut().map_or(0, |s| (sweep.rewrite)(s));
            (Value::Text(v), n)
        }
        (_, Value::Blob(v)) => {
            let mut n = 0;
            let v = v.map(|raw| {
                let mut s = String::from_utf8_lossy(&raw).into_owned();
                n = (sweep.rewrite)(&mut s);
                if n > 0 { s.into_bytes() } else { raw }
            });
            (Value::Blob(v), n)
        }
    })
}

/// `LIKE` patterns (escaped with `\`) for the needles, as written in text and as escaped
/// inside JSON strings.
pub(crate) fn like_patterns(needles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in needles.iter().flat_map(|n| crate::codec::like_contains_json(n)) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

pub trait ErasureStore: Send + Sync + std::fmt::Debug {
    /// Hands every stored string that may hold the subject to `sweep.rewrite` and, unless it is
    /// a dry run, writes back what changed, page by page. Old page images are then purged from
    /// the store's own files (a write-ahead log, free pages), so that the originals are gone
    /// from disk, not only from the tables. Repeating a sweep is harmless.
    fn sweep<'a>(&'a self, sweep: &'a Sweep<'a>) -> BoxFuture<'a, Result<SweepReport>>;
    /// Advances the erasure epoch ([`crate::Store::erasure_epoch`]), once saves at the
    /// current epoch ([`crate::Store::state_put_at`]) have committed; returns the new one. An
    /// erasure advances it before its sweep and after.
    fn erasure_advance(&self) -> BoxFuture<'_, Result<crate::Epoch>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice(s: &mut String) -> usize {
        let n = s.matches("alice").count();
        if n > 0 {
            *s = s.replace("alice", "erased");
        }
        n
    }

    #[test]
    fn rewrites_values_and_keys_in_order() {
        let mut v = json!({"users": {"bob": 1, "alice": 2, "carol": 3}, "list": ["alice", "x alice y", 4]});
        assert_eq!(rewrite_json(&mut v, &alice), 3);
        assert_eq!(
            v,
            json!({"users": {"bob": 1, "erased": 2, "carol": 3}, "list": ["erased", "x erased y", 4]})
        );
        let keys: Vec<&String> = v["users"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["bob", "erased", "carol"]);
    }

    #[test]
    fn patterns_escape_like_and_json() {
        let p = like_patterns(&["CORP\\a_b%".to_owned(), "x".to_owned()]);
        assert_eq!(p, ["%CORP\\\\a\\_b\\%%", "%CORP\\\\\\\\a\\_b\\%%", "%x%"]);
    }

    #[test]
    fn leaves_a_value_without_the_subject_alone() {
        let mut v = json!({"bob": ["x", {"y": "z"}]});
        let before = v.clone();
        assert_eq!(rewrite_json(&mut v, &alice), 0);
        assert_eq!(v, before);
    }
}

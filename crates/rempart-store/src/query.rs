//! Event queries: a time range, field filters, free text.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A filter on one field: a normalized field (`host`, `user`, `src_ip`, …) or an original
/// field by its dotted path under `fields.` (`fields.Event.System.Channel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldFilter {
    pub field: String,
    pub value: String,
}

impl FieldFilter {
    /// Reads `field=value`, exactly: the field's name is not trimmed.
    pub fn parse(s: &str) -> Result<FieldFilter, StoreError> {
        let (field, value) = s
            .split_once('=')
            .ok_or_else(|| StoreError::InvalidQuery(format!("filter `{s}` is not `field=value`")))?;
        if field.is_empty() {
            return Err(StoreError::InvalidQuery(format!("filter `{s}` has no field name")));
        }
        let filter = FieldFilter {
            field: field.to_owned(),
            value: value.to_owned(),
        };
        filter.target()?;
        Ok(filter)
    }

    /// Where the field is stored: a column, or a path inside one of the JSON columns.
    pub(crate) fn target(&self) -> Result<Target<'_>, StoreError> {
        let valid = |p: &str| {
            !p.is_empty()
                && p.split('.').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@' | b'#'))
                })
        };
        if let Some(path) = self.field.strip_prefix("fields.") {
            if !valid(path) {
                return Err(StoreError::InvalidQuery(format!(
                    "field path `{path}` has characters outside [A-Za-z0-9_@#-.]"
                )));
            }
            return Ok(Target::Json {
                column: "fields",
                path: path.split('.').collect(),
            });
        }
        if let Some(name) = NORMALIZED.iter().find(|n| **n == self.field) {
            return Ok(Target::Json {
                column: "normalized",
                path: vec![name],
            });
        }
        if let Some(column) = ["format", "class", "source"].into_iter().find(|c| *c == self.field) {
            return Ok(Target::Column(column));
        }
        Err(StoreError::InvalidQuery(format!(
            "unknown field `{}`: use a normalized field ({}), `format`, `class`, `source`, or `fields.<path>`",
            self.field,
            NORMALIZED.join(", ")
        )))
    }
}

/// Where a filtered field is stored. Every name in it is checked: a column from a fixed set,
/// path segments of `[A-Za-z0-9_@#-]` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Column(&'static str),
    Json { column: &'static str, path: Vec<&'a str> },
}

/// The normalized field names a filter may use.
pub const NORMALIZED: &[&str] = &[
    "host",
    "user",
    "user_domain",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "process",
    "process_id",
    "command_line",
    "parent_process",
    "parent_process_id",
    "parent_command_line",
    "event_id",
    "channel",
    "provider",
    "severity",
    "message",
];

/// A place in a list ordered by time and id: the `(time, id)` of the last item of the page
/// before. Paging past it never skips or repeats items that share a time.
pub type Position = (Timestamp, rempart_model::EventId);

/// Which events to return.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventQuery {
    /// Events at or after this time.
    pub since: Option<Timestamp>,
    /// Events before this time.
    pub until: Option<Timestamp>,
    /// All must match (exact value).
    pub filters: Vec<FieldFilter>,
    /// Case-insensitive substring anywhere in the event, as its values read: a `\` or a `"`
    /// is typed as itself, not as the stored JSON escapes it.
    pub text: Option<String>,
    /// Only events ordered after this one, newest first: the `(time, id)` of the last event
    /// of the previous page. Keyset paging never skips or repeats events sharing a time.
    pub before: Option<Position>,
    /// At most this many (capped at 10,000; 100 when unset).
    pub limit: Option<u32>,
}

impl EventQuery {
    pub const MAX_LIMIT: u32 = 10_000;

    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(100).min(Self::MAX_LIMIT)
    }
}

/// Which alerts to return.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only alerts of this level or above (informational < low < medium < high < critical).
    pub min_level: Option<String>,
    /// Only alerts of this rule id.
    pub rule_id: Option<String>,
    /// Only alerts ordered after this one, newest first (keyset paging).
    #[serde(default)]
    pub before: Option<Position>,
    /// At most this many (capped at 10,000; 100 when unset).
    pub limit: Option<u32>,
}

/// Sigma levels, lowest first.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

impl AlertQuery {
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(100).min(EventQuery::MAX_LIMIT)
    }

    /// The levels at or above `min_level`; an error for an unknown level.
    pub(crate) fn levels(&self) -> Result<Option<&'static [&'static str]>, StoreError> {
        match self.min_level.as_deref() {
            None => Ok(None),
            Some(l) => LEVELS
                .iter()
                .position(|x| *x == l)
                .map(|i| Some(&LEVELS[i..]))
                .ok_or_else(|| {
                    StoreError::InvalidQuery(format!("unknown level `{l}` (expected one of {})", LEVELS.join(", ")))
                }),
        }
    }
}

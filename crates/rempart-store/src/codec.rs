//! Conversions every store shares: times as `i64` nanoseconds, ledger sequence numbers and
//! hashes, and the error for a stored value that does not decode.

use jiff::Timestamp;

use crate::{Hash, Result, StoreError};

/// A time as stored: nanoseconds since the epoch, clamped to what `i64` holds (years 1677 to
/// 2262).
pub(crate) fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_second() < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_nanos(id: &str, n: i64) -> Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(n)).map_err(|e| StoreError::Corrupt {
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn corrupt(id: &str, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_owned(),
        reason: format!("{what}: {e}"),
    }
}

pub(crate) fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::InvalidQuery(format!("ledger sequence {seq} is out of range")))
}

pub(crate) fn hash_from(seq: i64, what: &str, bytes: &[u8]) -> Result<Hash> {
    Hash::try_from(bytes).map_err(|_| corrupt(&format!("ledger {seq}"), what, "not 32 bytes"))
}

/// A value as JSON text, for a column that keeps it so.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::InvalidQuery(format!("cannot encode: {e}")))
}

/// A stored JSON text, decoded.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(id: &str, what: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| corrupt(id, what, e))
}

/// A stored id, parsed.
pub(crate) fn event_id(id: &str, what: &str) -> Result<rempart_model::EventId> {
    uuid::Uuid::parse_str(id)
        .map(rempart_model::EventId)
        .map_err(|e| corrupt(id, what, e))
}

/// A `LIKE` pattern (escape character `\`) matching any text that contains `s` literally.
pub(crate) fn like_contains(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

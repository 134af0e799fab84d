//! Conversions every store shares: times as `i64` nanoseconds, ledger sequence numbers and
//! hashes, and the error for a stored value that does not decode.

use jiff::Timestamp;

use sqlx::{ColumnIndex, Decode, Encode, QueryBuilder, Row, Type};

use crate::{Hash, LedgerEntry, LedgerRecord, Position, Result, StoreError};

/// A time as stored: nanoseconds since the epoch, clamped to what `i64` holds (years 1677 to
/// 2262).
pub(crate) fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_second() < 0 { i64::MIN } else { i64::MAX })
}

/// Which way a keyset page goes from its position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Past {
    /// A list ordered newest first: the rows ordered below the position.
    Older,
    /// A list ordered oldest first: the rows ordered above it.
    Newer,
}

/// ` AND (time_column, id) < (time, id)` (`>` for [`Past::Newer`]): the rows of a list ordered
/// by both columns that come after `pos`. Row values compare lexicographically in SQLite and
/// PostgreSQL alike, and ids are UUIDv7 text compared bytewise, so rows sharing a time are
/// neither skipped nor repeated.
pub(crate) fn push_past<'a, DB>(qb: &mut QueryBuilder<'a, DB>, time_column: &str, past: Past, pos: Option<Position>)
where
    DB: sqlx::Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    let Some((time, id)) = pos else { return };
    let op = match past {
        Past::Older => "<",
        Past::Newer => ">",
    };
    qb.push(format!(" AND ({time_column}, id) {op} ("))
        .push_bind(nanos(time))
        .push(", ")
        .push_bind(id.to_string())
        .push(")");
}

/// ` AND (…)`: `text` found in any of `columns` (JSON text) by `like` (`LIKE`, `ILIKE`), as
/// typed or as JSON escapes it ([`like_contains_json`]).
pub(crate) fn push_text<'a, DB>(qb: &mut QueryBuilder<'a, DB>, text: &str, columns: &[&str], like: &str)
where
    DB: sqlx::Database,
    String: Encode<'a, DB> + Type<DB>,
{
    qb.push(" AND (");
    let mut first = true;
    for pattern in like_contains_json(text) {
        for column in columns {
            if !first {
                qb.push(" OR ");
            }
            first = false;
            qb.push(format!("{column} {like} "))
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
    }
    qb.push(")");
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

/// One column of a stored row, decoded, or an error naming the record and the column (a
/// database error would name neither).
fn column<'r, R, T>(row: &'r R, index: usize, id: &dyn Fn() -> String, what: &str) -> Result<T>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(index).map_err(|e| corrupt(&id(), what, e))
}

/// A ledger record from a row of `seq, time, actor, kind, key_id, payload_hash || prev_hash ||
/// leaf_hash`, in either store. A value that does not decode names its record, so that
/// `audit verify` can say which record was damaged.
pub(crate) fn ledger_record<'r, R>(row: &'r R) -> Result<LedgerRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    &'r [u8]: Decode<'r, R::Database> + Type<R::Database>,
{
    let seq: i64 = column(row, 0, &|| "a ledger row".to_owned(), "seq")?;
    let id = move || format!("ledger {seq}");
    let hashes: &[u8] = column(row, 5, &id, "hashes")?;
    Ok(LedgerRecord {
        seq: u64::try_from(seq).map_err(|e| corrupt(&id(), "seq", e))?,
        time: from_nanos(&id(), column(row, 1, &id, "time")?)?,
        actor: column(row, 2, &id, "actor")?,
        kind: column(row, 3, &id, "kind")?,
        key_id: column(row, 4, &id, "key_id")?,
        payload_hash: hash_from(seq, "payload_hash", hashes.get(..32).unwrap_or_default())?,
        prev_hash: hash_from(seq, "prev_hash", hashes.get(32..64).unwrap_or_default())?,
        leaf_hash: hash_from(seq, "leaf_hash", hashes.get(64..).unwrap_or_default())?,
    })
}

/// A ledger record and its payload body (column 6), as [`ledger_record`] reads them.
pub(crate) fn ledger_entry<'r, R>(row: &'r R) -> Result<LedgerEntry>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    &'r [u8]: Decode<'r, R::Database> + Type<R::Database>,
    Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
{
    let record = ledger_record(row)?;
    let seq = record.seq;
    Ok(LedgerEntry {
        payload: column(row, 6, &|| format!("ledger {seq}"), "body")?,
        record,
    })
}

/// A leaf hash from a row of `seq, leaf_hash`.
pub(crate) fn ledger_leaf<'r, R>(row: &'r R) -> Result<Hash>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    &'r [u8]: Decode<'r, R::Database> + Type<R::Database>,
{
    let seq: i64 = column(row, 0, &|| "a ledger row".to_owned(), "seq")?;
    let leaf: &[u8] = column(row, 1, &|| format!("ledger {seq}"), "leaf_hash")?;
    hash_from(seq, "leaf_hash", leaf)
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

/// `LIKE` patterns (escape character `\`) matching stored JSON text that holds `s`: as
/// written, and as JSON writes it inside a string (`\` as `\\`, `"` as `\"`, control
/// characters escaped), so that a Windows path or a quoted word is found in the text the
/// stores keep. One pattern when both forms are the same.
pub(crate) fn like_contains_json(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap_or_default();
    let escaped = json.get(1..json.len().saturating_sub(1)).unwrap_or_default();
    let (plain, escaped) = (like_contains(s), like_contains(escaped));
    if plain == escaped {
        vec![plain]
    } else {
        vec![plain, escaped]
    }
}

/// The erasure epoch in a detector state's body (absent: the first).
pub(crate) fn epoch_of(body: Option<String>) -> Result<crate::Epoch, StoreError> {
    body.map_or(Ok(crate::Epoch::FIRST), |b| {
        serde_json::from_str(&b).map_err(|e| corrupt(crate::EPOCH_STATE, "erasure epoch", e))
    })
}

/// The body the erasure epoch is saved as.
pub(crate) fn epoch_body(epoch: crate::Epoch) -> String {
    serde_json::json!({"epoch": epoch.epoch, "since": epoch.since}).to_string()
}

//! Store errors.

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record `{id}` is corrupt: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("cannot open store at `{path}`: {reason}")]
    Open { path: String, reason: String },
    #[error("write conflict: {0}")]
    Conflict(String),
    #[error("migration {version} failed: {reason}")]
    Migration { version: i64, reason: String },
    /// A query ran past its time budget and was stopped.
    #[error("the query ran past its {0:?} budget and was stopped: narrow it (a time range, a field filter)")]
    Interrupted(std::time::Duration),
}

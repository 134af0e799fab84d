//! Store errors.

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database found its own files damaged (SQLite's `SQLITE_CORRUPT` or `SQLITE_NOTADB`,
    /// PostgreSQL's `data_corrupted` or `index_corrupted`, or a failed integrity check).
    #[error("the store's files are damaged: {0}. Stop writing to it and restore it from a backup (docs/deployment.md)")]
    Damaged(String),
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

/// Set once, for the rest of the process, when the database reports damage: `ping` (and so
/// `/readyz`) fails from then on, so that a load balancer or an operator stops sending to a
/// process that writes into a damaged file.
static DAMAGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process's store has reported damage.
pub fn damage_seen() -> bool {
    DAMAGED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Records that the store is damaged (a failed integrity check, or an error saying so).
pub(crate) fn mark_damaged() {
    DAMAGED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a database error says the files are damaged: SQLite's primary codes 11
/// (`SQLITE_CORRUPT`, any extended form) and 26 (`SQLITE_NOTADB`), PostgreSQL's `XX001`
/// (`data_corrupted`) and `XX002` (`index_corrupted`).
fn is_damage(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match db.code().as_deref() {
        Some("XX001" | "XX002") => true,
        Some(code) => code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 11 | 26)),
        None => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_damage(&e) {
            mark_damaged();
            tracing::error!(error = %e, "the store reports damaged files");
            return StoreError::Damaged(e.to_string());
        }
        StoreError::Database(e)
    }
}

//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through a pool of one connection (SQLite has one writer; queueing in the pool is
//! cheaper than `SQLITE_BUSY` retries), reads through a pool of several. `synchronous = FULL`
//! makes a committed transaction survive power loss, which is what "acknowledged" promises.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use rempart_model::{Alert, DataClass, Event, EventId, Format, Normalized, Origin};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};
use uuid::Uuid;

pub(crate) use crate::codec::{corrupt, from_nanos, hash_from, nanos, seq_i64};
use crate::{
    AlertQuery, BoxFuture, EventQuery, Hash, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, Quarantined, Result,
    Role, Store, StoreError, StoredCheckpoint, SubjectKey, TokenRecord, VaultEntry, VaultStore,
};

/// Schema migrations, applied in order, each once. Never edit a released one: add another.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r"
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        time INTEGER NOT NULL,
        ingested INTEGER NOT NULL,
        format TEXT NOT NULL,
        source TEXT NOT NULL,
        location TEXT,
        class TEXT NOT NULL,
        normalized TEXT NOT NULL,
        fields TEXT NOT NULL
    );
    CREATE INDEX events_time ON events (time);
    CREATE TABLE quarantine (
        id TEXT PRIMARY KEY,
        received INTEGER NOT NULL,
        source TEXT NOT NULL,
        location TEXT,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    ",
    ),
    (
        2,
        r"
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        time INTEGER NOT NULL,
        created INTEGER NOT NULL,
        rule_id TEXT,
        rule_title TEXT NOT NULL,
        level TEXT,
        tags TEXT NOT NULL,
        event TEXT NOT NULL,
        host TEXT,
        user TEXT
    );
    CREATE INDEX alerts_time ON alerts (time);
    ",
    ),
    (
        3,
        r"
    CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        key_id TEXT,
        payload_hash BLOB NOT NULL,
        prev_hash BLOB NOT NULL,
        leaf_hash BLOB NOT NULL,
        body BLOB
    );
    CREATE TABLE ledger_checkpoints (
        size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        time INTEGER NOT NULL,
        note TEXT NOT NULL,
        frontier BLOB NOT NULL
    );
    CREATE TABLE ledger_keys (
        key_id TEXT PRIMARY KEY,
        subject_mac TEXT,
        wrapped BLOB,
        created INTEGER NOT NULL,
        erased INTEGER
    );
    CREATE INDEX ledger_keys_subject ON ledger_keys (subject_mac);
    ",
    ),
    (
        4,
        r"
    CREATE TABLE privacy_vault (
        domain TEXT NOT NULL,
        token TEXT NOT NULL,
        subject_mac TEXT NOT NULL,
        key_id TEXT NOT NULL,
        sealed BLOB NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (domain, token)
    );
    CREATE INDEX privacy_vault_subject ON privacy_vault (subject_mac);
    ",
    ),
    (
        5,
        r"
    ALTER TABLE alerts ADD COLUMN techniques TEXT NOT NULL DEFAULT '[]';
    ",
    ),
    (
        6,
        r"
    CREATE TABLE intel_indicators (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        imported INTEGER NOT NULL,
        PRIMARY KEY (source, id)
    );
    ",
    ),
    (
        7,
        r"
    ALTER TABLE alerts ADD COLUMN matched TEXT NOT NULL DEFAULT '[]';
    ",
    ),
    (
        8,
        r"
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        score INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX incidents_last_seen ON incidents (last_seen);
    CREATE INDEX incidents_status ON incidents (status, last_seen);
    CREATE TABLE incident_alerts (
        alert TEXT PRIMARY KEY,
        incident TEXT NOT NULL
    );
    CREATE INDEX incident_alerts_incident ON incident_alerts (incident);
    CREATE TABLE verdicts (
        id TEXT PRIMARY KEY,
        incident TEXT NOT NULL,
        created INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX verdicts_incident ON verdicts (incident, created);
    CREATE TABLE verdict_feedback (
        verdict TEXT NOT NULL,
        incident TEXT NOT NULL,
        time INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX verdict_feedback_verdict ON verdict_feedback (verdict);
    ",
    ),
    (
        9,
        r"
    CREATE INDEX events_host ON events (json_extract(normalized, '$.host') COLLATE NOCASE, time);
    CREATE INDEX events_user ON events (json_extract(normalized, '$.user') COLLATE NOCASE, time);
    ",
    ),
    (
        10,
        r"
    CREATE TABLE playbook_runs (
        id TEXT PRIMARY KEY,
        incident TEXT NOT NULL,
        playbook TEXT NOT NULL,
        status TEXT NOT NULL,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX playbook_runs_incident ON playbook_runs (incident, created);
    CREATE INDEX playbook_runs_status ON playbook_runs (status, created);
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        status TEXT NOT NULL,
        created INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX approvals_status ON approvals (status, created);
    CREATE TABLE response_actions (
        key TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        playbook TEXT NOT NULL,
        action TEXT NOT NULL,
        time INTEGER NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX response_actions_rate ON response_actions (playbook, action, time);
    CREATE TABLE regulatory_assessments (
        incident TEXT PRIMARY KEY,
        updated INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    ",
    ),
    (
        11,
        r"
    CREATE TABLE detector_state (
        name TEXT PRIMARY KEY,
        updated INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    ",
    ),
    (
        12,
        r"
    ALTER TABLE tokens ADD COLUMN owner TEXT;
    ALTER TABLE tokens ADD COLUMN created_by TEXT;
    ",
    ),
];

mod erasure;
mod incidents;
mod response;

/// Rows per multi-row INSERT: 9 columns × 100 rows stays far below SQLite's 32,766 bound
/// parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// The embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// Makes the database file if it is missing, readable and writable by its owner only, and
/// takes group and other access away from the files SQLite keeps beside it.
fn private_files(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    drop(options.open(path)?);
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// A write transaction, its lock taken at once (`BEGIN IMMEDIATE`): a transaction that
    /// reads first and writes later cannot wait for another process's writer (SQLite refuses
    /// at once, "database is locked", when a read turns into a write behind another commit);
    /// taken at the start, the lock is waited for up to the busy timeout like any other.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Opens (creating if needed) the database file at `path` and applies migrations. The
    /// file is its owner's only (0600, and SQLite gives its WAL and shared-memory files the
    /// same mode), whatever the umask; a folder made for it is 0700.
    pub async fn open(path: &Path) -> Result<Self> {
        let open_error = |e: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::private_dir(parent).map_err(open_error)?;
        }
        private_files(path).map_err(open_error)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Fewer, larger checkpoints: each one costs an fsync under `synchronous = FULL`.
            .pragma("wal_autocheckpoint", "16384")
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Deleted content is overwritten, not left in free pages: erasing a data subject's
            // key must actually destroy it.
            .pragma("secure_delete", "on");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let store = SqliteStore {
            reader: SqlitePoolOptions::new()
                .max_connections(4)
                // Rows cross from the driver's thread in a bounded channel (50 by default): a
                // larger one means far fewer thread wake-ups when reading pages of thousands.
                .connect_with(options.read_only(false).row_buffer_size(1024))
                .await?,
            writer,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.writer)
            .await?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let mut tx = self.write().await?;
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration {
                    version: *version,
                    reason: e.to_string(),
                })?;
            sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)")
                .bind(version)
                .bind(Timestamp::now().as_second())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

pub(crate) const ALERT_COLUMNS: &str =
    "id, time, created, rule_id, rule_title, level, tags, techniques, matched, event, host, user";

fn alert_from_row(row: &SqliteRow) -> Result<Alert> {
    let id: String = row.try_get("id")?;
    let event: String = row.try_get("event")?;
    let tags: String = row.try_get("tags")?;
    let techniques: String = row.try_get("techniques")?;
    let matched: String = row.try_get("matched")?;
    Ok(Alert {
        id: EventId(Uuid::parse_str(&id).map_err(|e| corrupt(&id, "id", e))?),
        time: from_nanos(&id, row.try_get("time")?)?,
        created: from_nanos(&id, row.try_get("created")?)?,
        rule_id: row.try_get("rule_id")?,
        rule_title: row.try_get("rule_title")?,
        level: row.try_get("level")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt(&id, "tags", e))?,
        techniques: serde_json::from_str(&techniques).map_err(|e| corrupt(&id, "techniques", e))?,
        matched: serde_json::from_str(&matched).map_err(|e| corrupt(&id, "matched", e))?,
        event: EventId(Uuid::parse_str(&event).map_err(|e| corrupt(&id, "event", e))?),
        host: row.try_get("host")?,
        user: row.try_get("user")?,
    })
}

fn event_from_row(row: &SqliteRow) -> Result<Event> {
    let id: String = row.try_get("id")?;
    let uuid = Uuid::parse_str(&id).map_err(|e| corrupt(&id, "id", e))?;
    let format: String = row.try_get("format")?;
    let class: String = row.try_get("class")?;
    let normalized: String = row.try_get("normalized")?;
    let fields: String = row.try_get("fields")?;
    Ok(Event {
        id: EventId(uuid),
        time: from_nanos(&id, row.try_get("time")?)?,
        ingested: from_nanos(&id, row.try_get("ingested")?)?,
        format: Format::from_str(&format).map_err(|e| corrupt(&id, "format", e))?,
        origin: Origin {
            source: row.try_get("source")?,
            location: row.try_get("location")?,
        },
        class: DataClass::from_str(&class).map_err(|e| corrupt(&id, "class", e))?,
        normalized: serde_json::from_str::<Normalized>(&normalized).map_err(|e| corrupt(&id, "normalized", e))?,
        fields: serde_json::from_str(&fields).map_err(|e| corrupt(&id, "fields", e))?,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        role: Role::from_str(&role).map_err(|e| corrupt(&id, "role", e))?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        created: Timestamp::from_second(row.try_get("created")?).map_err(|e| corrupt(&id, "created", e))?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        owner: row.try_get("owner")?,
        created_by: row.try_get("created_by")?,
        id,
    })
}

impl Store for SqliteStore {
    fn state_put<'a>(
        &'a self,
        name: &'a str,
        state: &'a serde_json::Value,
        updated: Timestamp,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT OR REPLACE INTO detector_state (name, updated, body) VALUES (?, ?, ?)")
                .bind(name)
                .bind(nanos(updated))
                .bind(state.to_string())
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn state_get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<serde_json::Value>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
            body.map(|b| serde_json::from_str(&b).map_err(|e| corrupt(name, "detector state", e)))
                .transpose()
        })
    }

    fn erasure_epoch(&self) -> BoxFuture<'_, Result<crate::Epoch>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = ?")
                .bind(crate::EPOCH_STATE)
                .fetch_optional(&self.reader)
                .await?;
            crate::codec::epoch_of(body)
        })
    }

    fn state_put_at<'a>(
        &'a self,
        name: &'a str,
        state: &'a serde_json::Value,
        updated: Timestamp,
        epoch: crate::Epoch,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let body = state.to_string();
            let mut tx = self.write().await?;
            let current: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = ?")
                .bind(crate::EPOCH_STATE)
                .fetch_optional(&mut *tx)
                .await?;
            let current = crate::codec::epoch_of(current)?;
            if current != epoch {
                return Ok(false);
            }
            sqlx::query("INSERT OR REPLACE INTO detector_state (name, updated, body) VALUES (?, ?, ?)")
                .bind(name)
                .bind(nanos(updated))
                .bind(body)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            // Serialize before taking the writer, so the lock is held only for SQLite's work.
            let rows: Vec<(String, String)> = events
                .iter()
                .map(|e| {
                    let n = serde_json::to_string(&e.normalized)
                        .map_err(|err| corrupt(&e.id.to_string(), "normalized", err))?;
                    let f = e
                        .fields
                        .to_json()
                        .map_err(|err| corrupt(&e.id.to_string(), "fields", err))?;
                    Ok((n, f))
                })
                .collect::<Result<_>>()?;
            let mut tx = self.write().await?;
            for (chunk, json) in events.chunks(ROWS_PER_STATEMENT).zip(rows.chunks(ROWS_PER_STATEMENT)) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO events (id, time, ingested, format, source, location, class, normalized, fields) ",
                );
                qb.push_values(chunk.iter().zip(json), |mut b, (e, (n, f))| {
                    b.push_bind(e.id.to_string())
                        .push_bind(nanos(e.time))
                        .push_bind(nanos(e.ingested))
                        .push_bind(e.format.as_str())
                        .push_bind(e.origin.source.as_str())
                        .push_bind(e.origin.location.as_deref())
                        .push_bind(e.class.as_str())
                        .push_bind(n.as_str())
                        .push_bind(f.as_str());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn quarantine<'a>(&'a self, items: &'a [Quarantined]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(());
            }
            let mut tx = self.write().await?;
            for chunk in items.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new("INSERT INTO quarantine (id, received, source, location, reason, raw) ");
                qb.push_values(chunk, |mut b, q| {
                    b.push_bind(q.id.to_string())
                        .push_bind(nanos(q.received))
                        .push_bind(q.source.as_str())
                        .push_bind(q.location.as_deref())
                        .push_bind(q.reason.as_str())
                        .push_bind(q.raw.as_slice());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn query_events<'a>(&'a self, query: &'a EventQuery) -> BoxFuture<'a, Result<Vec<Event>>> {
        Box::pin(async move {
            let mut qb = events_statement(query)?;
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter().map(event_from_row).collect()
        })
    }

    fn query_events_within<'a>(
        &'a self,
        query: &'a EventQuery,
        budget: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<Event>>> {
        Box::pin(async move {
            let mut qb = events_statement(query)?;
            let mut conn = self.reader.acquire().await?;
            let deadline = std::time::Instant::now() + budget;
            // SQLite calls this every thousand virtual-machine steps; `false` stops the statement.
            conn.lock_handle()
                .await?
                .set_progress_handler(1000, move || std::time::Instant::now() < deadline);
            let rows = qb.build().fetch_all(&mut *conn).await;
            conn.lock_handle().await?.remove_progress_handler();
            match rows {
                Ok(rows) => rows.iter().map(event_from_row).collect(),
                Err(e) if interrupted(&e) => Err(StoreError::Interrupted(budget)),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn get_event(&self, id: EventId) -> BoxFuture<'_, Result<Option<Event>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT id, time, ingested, format, source, location, class, normalized, fields FROM events WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
            row.as_ref().map(event_from_row).transpose()
        })
    }

    fn count_entity_events<'a>(
        &'a self,
        field: crate::EntityField,
        value: &'a str,
        since: Timestamp,
        until: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            // The expressions are the indexes' own, written out so that SQLite uses them.
            let expr = match field {
                crate::EntityField::Host => "json_extract(normalized, '$.host')",
                crate::EntityField::User => "json_extract(normalized, '$.user')",
            };
            let exact =
                format!("SELECT COUNT(*) FROM events WHERE {expr} = ?1 COLLATE NOCASE AND time >= ?2 AND time < ?3");
            let n: i64 = if field == crate::EntityField::Host {
                // `value.` up to `value/` (the character after `.`): every FQDN of the host.
                let sql = format!(
                    "SELECT ({exact}) + (SELECT COUNT(*) FROM events WHERE {expr} >= ?4 COLLATE NOCASE \
                     AND {expr} < ?5 COLLATE NOCASE AND time >= ?2 AND time < ?3)"
                );
                sqlx::query_scalar(&sql)
                    .bind(value)
                    .bind(nanos(since))
                    .bind(nanos(until))
                    .bind(format!("{value}."))
                    .bind(format!("{value}/"))
                    .fetch_one(&self.reader)
                    .await?
            } else {
                sqlx::query_scalar(&exact)
                    .bind(value)
                    .bind(nanos(since))
                    .bind(nanos(until))
                    .fetch_one(&self.reader)
                    .await?
            };
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn count_events(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(&self.reader)
                .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn list_quarantine(&self, before: Option<crate::Position>, limit: u32) -> BoxFuture<'_, Result<Vec<Quarantined>>> {
        Box::pin(async move {
            let mut qb =
                QueryBuilder::new("SELECT id, received, source, location, reason, raw FROM quarantine WHERE 1 = 1");
            crate::codec::push_past(&mut qb, "received", crate::codec::Past::Older, before);
            qb.push(" ORDER BY received DESC, id DESC LIMIT ")
                .push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get("id")?;
                    Ok(Quarantined {
                        id: EventId(Uuid::parse_str(&id).map_err(|e| corrupt(&id, "id", e))?),
                        received: from_nanos(&id, row.try_get("received")?)?,
                        source: row.try_get("source")?,
                        location: row.try_get("location")?,
                        reason: row.try_get("reason")?,
                        raw: row.try_get("raw")?,
                    })
                })
                .collect()
        })
    }

    fn count_quarantine(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
                .fetch_one(&self.reader)
                .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn prune_events(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM events WHERE time < ?")
                .bind(nanos(before))
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn create_token<'a>(&'a self, token: &'a TokenRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO tokens (id, name, role, hash, created, revoked, owner, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&token.id)
                .bind(&token.name)
                .bind(token.role.as_str())
                .bind(&token.hash)
                .bind(token.created.as_second())
                .bind(i64::from(token.revoked))
                .bind(token.owner.as_deref())
                .bind(token.created_by.as_deref())
                .execute(&self.writer)
                .await?;
            Ok(())
        })
    }

    fn find_token<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<TokenRecord>>> {
        Box::pin(async move {
            let row =
                sqlx::query("SELECT id, name, role, hash, created, revoked, owner, created_by FROM tokens WHERE hash = ? AND revoked = 0")
                    .bind(hash)
                    .fetch_optional(&self.reader)
                    .await?;
            row.as_ref().map(token_from_row).transpose()
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, name, role, hash, created, revoked, owner, created_by FROM tokens ORDER BY created, id",
            )
            .fetch_all(&self.reader)
            .await?;
            rows.iter().map(token_from_row).collect()
        })
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = ?")
                .bind(id)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn insert_alerts<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Result<Vec<EventId>>> {
        Box::pin(async move {
            if alerts.is_empty() {
                return Ok(Vec::new());
            }
            let tags: Vec<(String, String, String)> = alerts
                .iter()
                .map(|a| {
                    (
                        serde_json::to_string(&a.tags).unwrap_or_else(|_| "[]".to_owned()),
                        serde_json::to_string(&a.techniques).unwrap_or_else(|_| "[]".to_owned()),
                        serde_json::to_string(&a.matched).unwrap_or_else(|_| "[]".to_owned()),
                    )
                })
                .collect();
            let mut stored = Vec::new();
            let mut tx = self.write().await?;
            for (chunk, tags) in alerts.chunks(ROWS_PER_STATEMENT).zip(tags.chunks(ROWS_PER_STATEMENT)) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO alerts (id, time, created, rule_id, rule_title, level, tags, techniques, matched, event, host, user) ",
                );
                qb.push_values(chunk.iter().zip(tags), |mut b, (a, (t, techniques, matched))| {
                    b.push_bind(a.id.to_string())
                        .push_bind(nanos(a.time))
                        .push_bind(nanos(a.created))
                        .push_bind(a.rule_id.as_deref())
                        .push_bind(a.rule_title.as_str())
                        .push_bind(a.level.as_deref())
                        .push_bind(t.as_str())
                        .push_bind(techniques.as_str())
                        .push_bind(matched.as_str())
                        .push_bind(a.event.to_string())
                        .push_bind(a.host.as_deref())
                        .push_bind(a.user.as_deref());
                });
                qb.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                for id in qb.build_query_scalar::<String>().fetch_all(&mut *tx).await? {
                    stored.push(crate::codec::event_id(&id, "id")?);
                }
            }
            tx.commit().await?;
            Ok(stored)
        })
    }

    fn query_alerts<'a>(&'a self, query: &'a AlertQuery) -> BoxFuture<'a, Result<Vec<Alert>>> {
        Box::pin(async move {
            let mut qb = QueryBuilder::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1=1"));
            if let Some(since) = query.since {
                qb.push(" AND time >= ").push_bind(nanos(since));
            }
            if let Some(until) = query.until {
                qb.push(" AND time < ").push_bind(nanos(until));
            }
            if let Some(levels) = query.levels()? {
                qb.push(" AND level IN (");
                let mut sep = qb.separated(", ");
                for l in levels {
                    sep.push_bind(*l);
                }
                qb.push(")");
            }
            if let Some(rule) = &query.rule_id {
                qb.push(" AND rule_id = ").push_bind(rule.clone());
            }
            crate::codec::push_past(&mut qb, "time", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY time DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.effective_limit()));
            let rows = qb.build().fetch_all(&self.reader).await?;
            rows.iter().map(alert_from_row).collect()
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if crate::error::damage_seen() {
                return Err(StoreError::Damaged(
                    "a read or write found damaged pages since the server started".into(),
                ));
            }
            sqlx::query("SELECT 1").execute(&self.reader).await?;
            Ok(())
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Every page, index and free list of the file, without the slower cross-checks of
            // `integrity_check`; at most 20 problems reported.
            let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(20)")
                .fetch_all(&self.reader)
                .await?;
            if rows.len() == 1 && rows[0] == "ok" {
                return Ok(());
            }
            crate::error::mark_damaged();
            Err(StoreError::Damaged(format!("quick_check: {}", rows.join("; "))))
        })
    }
}

/// The ledger's columns, in the order [`crate::codec::ledger_record`] reads them by index (name
/// lookups per column cost more than the rest of the decoding when verifying millions).
/// The three hashes travel as one 96-byte value: one fewer value per hash to hand across.
const LEDGER_COLUMNS: &str =
    "l.seq, l.time, l.actor, l.kind, l.key_id, CAST(l.payload_hash || l.prev_hash || l.leaf_hash AS BLOB)";

fn subject_key_from_row(row: &SqliteRow) -> Result<SubjectKey> {
    let key_id: String = row.try_get("key_id")?;
    let erased: Option<i64> = row.try_get("erased")?;
    Ok(SubjectKey {
        subject_mac: row.try_get("subject_mac")?,
        wrapped: row.try_get("wrapped")?,
        created: from_nanos(&key_id, row.try_get("created")?)?,
        erased: erased.map(|n| from_nanos(&key_id, n)).transpose()?,
        key_id,
    })
}

/// The statement for an event query.
fn events_statement(query: &EventQuery) -> Result<QueryBuilder<'_, sqlx::Sqlite>> {
    let mut qb = QueryBuilder::new(
        "SELECT id, time, ingested, format, source, location, class, normalized, fields FROM events WHERE 1=1",
    );
    if let Some(since) = query.since {
        qb.push(" AND time >= ").push_bind(nanos(since));
    }
    if let Some(until) = query.until {
        qb.push(" AND time < ").push_bind(nanos(until));
    }
    for f in &query.filters {
        match f.target()? {
            crate::query::Target::Column(column) => {
                qb.push(format!(" AND {column} = ")).push_bind(f.value.clone());
            }
            crate::query::Target::Json { column, path } => {
                // Quote each segment so names with `-` or `@` work in SQLite JSON paths.
                let quoted: Vec<String> = path.iter().map(|s| format!("\"{s}\"")).collect();
                // Compare as text so `event_id=4624` matches the number 4624.
                qb.push(format!(" AND CAST(json_extract({column}, "))
                    .push_bind(format!("$.{}", quoted.join(".")))
                    .push(") AS TEXT) = ")
                    .push_bind(f.value.clone());
            }
        }
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        crate::codec::push_text(&mut qb, text, &["fields", "normalized"], "LIKE");
    }
    crate::codec::push_past(&mut qb, "time", crate::codec::Past::Older, query.before);
    qb.push(" ORDER BY time DESC, id DESC LIMIT ")
        .push_bind(i64::from(query.effective_limit()));
    Ok(qb)
}

/// Whether SQLite stopped a statement because its progress handler said so.
fn interrupted(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("9") || db.message().contains("interrupted"))
}

/// A uniqueness violation on append means another writer got there first.
fn conflict_or(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("another writer appended to the ledger first ({db})"))
        }
        _ => StoreError::Database(e),
    }
}

async fn insert_keys(tx: &mut sqlx::SqliteConnection, keys: &[SubjectKey]) -> Result<()> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::new("INSERT INTO ledger_keys (key_id, subject_mac, wrapped, created, erased) ");
        qb.push_values(chunk, |mut b, key| {
            b.push_bind(key.key_id.as_str())
                .push_bind(key.subject_mac.as_deref())
                .push_bind(key.wrapped.as_deref())
                .push_bind(nanos(key.created))
                .push_bind(key.erased.map(nanos));
        });
        qb.build().execute(&mut *tx).await.map_err(conflict_or)?;
    }
    Ok(())
}

async fn insert_checkpoint(tx: &mut sqlx::SqliteConnection, cp: &StoredCheckpoint) -> Result<()> {
    let frontier: Vec<u8> = cp.frontier.iter().flatten().copied().collect();
    sqlx::query("INSERT INTO ledger_checkpoints (size, root, time, note, frontier) VALUES (?, ?, ?, ?, ?)")
        .bind(seq_i64(cp.size)?)
        .bind(cp.root.as_slice())
        .bind(nanos(cp.time))
        .bind(&cp.note)
        .bind(frontier)
        .execute(tx)
        .await
        .map_err(conflict_or)?;
    Ok(())
}

impl LedgerStore for SqliteStore {
    fn ledger_head(&self) -> BoxFuture<'_, Result<Option<LedgerRecord>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT {LEDGER_COLUMNS} FROM ledger l ORDER BY l.seq DESC LIMIT 1"
            ))
            .fetch_optional(&self.writer)
            .await?;
            row.as_ref().map(crate::codec::ledger_record).transpose()
        })
    }

    fn ledger_append<'a>(&'a self, append: LedgerAppend<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(first) = append.entries.first() else {
                return Ok(());
            };
            let mut tx = self.write().await?;
            let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM ledger")
                .fetch_one(&mut *tx)
                .await?;
            let expected = last.map_or(0, |l| l.saturating_add(1));
            if seq_i64(first.record.seq)? != expected {
                return Err(StoreError::Conflict(format!(
                    "ledger append starts at {} but the stored ledger continues at {expected}",
                    first.record.seq
                )));
            }
            for key in append.keys {
                sqlx::query(
                    "INSERT INTO ledger_keys (key_id, subject_mac, wrapped, created, erased) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&key.key_id)
                .bind(key.subject_mac.as_deref())
                .bind(key.wrapped.as_deref())
                .bind(nanos(key.created))
                .bind(key.erased.map(nanos))
                .execute(&mut *tx)
                .await
                .map_err(conflict_or)?;
            }
            for chunk in append.entries.chunks(ROWS_PER_STATEMENT) {
                let seqs = chunk
                    .iter()
                    .map(|e| seq_i64(e.record.seq))
                    .collect::<Result<Vec<_>>>()?;
                let mut qb = QueryBuilder::new(
                    "INSERT INTO ledger (seq, time, actor, kind, key_id, payload_hash, prev_hash, leaf_hash, body) ",
                );
                qb.push_values(chunk.iter().zip(&seqs), |mut b, (e, seq)| {
                    let r = &e.record;
                    b.push_bind(*seq)
                        .push_bind(nanos(r.time))
                        .push_bind(r.actor.as_str())
                        .push_bind(r.kind.as_str())
                        .push_bind(r.key_id.as_deref())
                        .push_bind(r.payload_hash.as_slice())
                        .push_bind(r.prev_hash.as_slice())
                        .push_bind(r.leaf_hash.as_slice())
                        .push_bind(e.payload.as_deref());
                });
                qb.build().execute(&mut *tx).await.map_err(conflict_or)?;
            }
            if let Some(cp) = append.checkpoint {
                insert_checkpoint(&mut tx, cp).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn ledger_checkpoint<'a>(&'a self, checkpoint: &'a StoredCheckpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            let records: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger")
                .fetch_one(&mut *tx)
                .await?;
            if seq_i64(checkpoint.size)? > records {
                return Err(StoreError::Conflict(format!(
                    "a checkpoint of size {} over a ledger of {records} records",
                    checkpoint.size
                )));
            }
            insert_checkpoint(&mut tx, checkpoint).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn ledger_entries(&self, from: u64, limit: u32) -> BoxFuture<'_, Result<Vec<LedgerEntry>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {LEDGER_COLUMNS}, l.body FROM ledger l WHERE l.seq >= ? ORDER BY l.seq LIMIT ?"
            ))
            .bind(seq_i64(from)?)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
            rows.iter().map(crate::codec::ledger_entry).collect()
        })
    }

    fn ledger_leaves(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<Hash>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT seq, leaf_hash FROM ledger WHERE seq >= ? AND seq < ? ORDER BY seq")
                .bind(seq_i64(from)?)
                .bind(seq_i64(to)?)
                .fetch_all(&self.reader)
                .await?;
            rows.iter().map(crate::codec::ledger_leaf).collect()
        })
    }

    fn ledger_checkpoints(&self) -> BoxFuture<'_, Result<Vec<StoredCheckpoint>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT size, root, time, note, frontier FROM ledger_checkpoints ORDER BY size")
                .fetch_all(&self.reader)
                .await?;
            rows.iter()
                .map(|row| {
                    let size: i64 = row.try_get("size")?;
                    let id = format!("checkpoint {size}");
                    let frontier: Vec<u8> = row.try_get("frontier")?;
                    if !frontier.len().is_multiple_of(32) {
                        return Err(corrupt(&id, "frontier", "not a list of 32-byte hashes"));
                    }
                    Ok(StoredCheckpoint {
                        size: u64::try_from(size).map_err(|e| corrupt(&id, "size", e))?,
                        root: hash_from(size, "root", row.try_get::<&[u8], _>("root")?)?,
                        time: from_nanos(&id, row.try_get("time")?)?,
                        note: row.try_get("note")?,
                        frontier: frontier
                            .chunks_exact(32)
                            .map(|c| hash_from(size, "frontier", c))
                            .collect::<Result<_>>()?,
                    })
                })
                .collect()
        })
    }

    fn ledger_prune_payloads(&self, below: u64) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE ledger SET body = NULL WHERE seq < ? AND body IS NOT NULL")
                .bind(seq_i64(below)?)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn ledger_subject_key<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Option<SubjectKey>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT * FROM ledger_keys WHERE subject_mac = ? AND wrapped IS NOT NULL ORDER BY created DESC LIMIT 1",
            )
            .bind(subject_mac)
            .fetch_optional(&self.writer)
            .await?;
            row.as_ref().map(subject_key_from_row).transpose()
        })
    }

    fn ledger_live_keys<'a>(&'a self, subject_macs: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            let mut newest: std::collections::HashMap<String, SubjectKey> = std::collections::HashMap::new();
            for chunk in subject_macs.chunks(ROWS_PER_STATEMENT * 5) {
                let mut qb =
                    QueryBuilder::new("SELECT * FROM ledger_keys WHERE wrapped IS NOT NULL AND subject_mac IN (");
                let mut sep = qb.separated(", ");
                for m in chunk {
                    sep.push_bind(m.as_str());
                }
                qb.push(")");
                for row in qb.build().fetch_all(&self.writer).await? {
                    let key = subject_key_from_row(&row)?;
                    let mac = key.subject_mac.clone().unwrap_or_default();
                    match newest.get(&mac) {
                        Some(k) if k.created >= key.created => {}
                        _ => {
                            newest.insert(mac, key);
                        }
                    }
                }
            }
            Ok(newest.into_values().collect())
        })
    }

    fn ledger_subject_keys<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM ledger_keys WHERE subject_mac = ? ORDER BY created")
                .bind(subject_mac)
                .fetch_all(&self.reader)
                .await?;
            rows.iter().map(subject_key_from_row).collect()
        })
    }

    fn ledger_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            let mut keys = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ROWS_PER_STATEMENT * 5) {
                let mut qb = QueryBuilder::new("SELECT * FROM ledger_keys WHERE key_id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_str());
                }
                qb.push(")");
                for row in qb.build().fetch_all(&self.reader).await? {
                    keys.push(subject_key_from_row(&row)?);
                }
            }
            Ok(keys)
        })
    }

    fn ledger_insert_keys<'a>(&'a self, keys: &'a [SubjectKey]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            insert_keys(&mut tx, keys).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn ledger_erase_subject<'a>(&'a self, subject_mac: &'a str, at: Timestamp) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE ledger_keys SET wrapped = NULL, erased = ? WHERE subject_mac = ? AND wrapped IS NOT NULL",
            )
            .bind(nanos(at))
            .bind(subject_mac)
            .execute(&self.writer)
            .await?;
            // The old page image still sits in the write-ahead log until a checkpoint copies the
            // new one over it; truncate the log so the key is gone from disk, not only from view.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
    }
}

fn vault_from_row(row: &SqliteRow) -> Result<VaultEntry> {
    let token: String = row.try_get("token")?;
    Ok(VaultEntry {
        domain: row.try_get("domain")?,
        subject_mac: row.try_get("subject_mac")?,
        key_id: row.try_get("key_id")?,
        sealed: row.try_get("sealed")?,
        created: from_nanos(&token, row.try_get("created")?)?,
        token,
    })
}

impl VaultStore for SqliteStore {
    fn vault_put<'a>(&'a self, entries: &'a [VaultEntry]) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let mut collisions = Vec::new();
            let mut tx = self.write().await?;
            // Which tokens exist already, and for whom: one query per chunk, not per token.
            let mut existing: std::collections::HashMap<(String, String), (String, String)> =
                std::collections::HashMap::new();
            for chunk in entries.chunks(ROWS_PER_STATEMENT * 4) {
                let mut qb = QueryBuilder::new(
                    "SELECT domain, token, subject_mac, key_id FROM privacy_vault WHERE (domain, token) IN (",
                );
                let mut sep = qb.separated(", ");
                for e in chunk {
                    sep.push("(");
                    sep.push_bind_unseparated(e.domain.as_str());
                    sep.push_unseparated(", ");
                    sep.push_bind_unseparated(e.token.as_str());
                    sep.push_unseparated(")");
                }
                qb.push(")");
                let rows: Vec<(String, String, String, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                for (d, t, m, k) in rows {
                    existing.insert((d, t), (m, k));
                }
            }
            let mut fresh = Vec::new();
            for e in entries {
                match existing.get(&(e.domain.clone(), e.token.clone())) {
                    Some((mac, key)) if *mac == e.subject_mac && *key == e.key_id => {}
                    // The subject was erased and has appeared again: its pseudonym is sealed
                    // anew under its new key.
                    Some((mac, _)) if *mac == e.subject_mac => {
                        sqlx::query(
                            "UPDATE privacy_vault SET key_id = ?, sealed = ?, created = ? WHERE domain = ? AND token = ?",
                        )
                        .bind(e.key_id.as_str())
                        .bind(e.sealed.as_slice())
                        .bind(nanos(e.created))
                        .bind(e.domain.as_str())
                        .bind(e.token.as_str())
                        .execute(&mut *tx)
                        .await?;
                    }
                    Some(_) => collisions.push(e.token.clone()),
                    None => {
                        existing.insert(
                            (e.domain.clone(), e.token.clone()),
                            (e.subject_mac.clone(), e.key_id.clone()),
                        );
                        fresh.push(e);
                    }
                }
            }
            for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO privacy_vault (domain, token, subject_mac, key_id, sealed, created) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.domain.as_str())
                        .push_bind(e.token.as_str())
                        .push_bind(e.subject_mac.as_str())
                        .push_bind(e.key_id.as_str())
                        .push_bind(e.sealed.as_slice())
                        .push_bind(nanos(e.created));
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(collisions)
        })
    }

    fn vault_get<'a>(&'a self, domain: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<Vec<VaultEntry>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(tokens.len());
            for chunk in tokens.chunks(ROWS_PER_STATEMENT * 5) {
                let mut qb = QueryBuilder::new("SELECT * FROM privacy_vault WHERE domain = ");
                qb.push_bind(domain).push(" AND token IN (");
                let mut sep = qb.separated(", ");
                for t in chunk {
                    sep.push_bind(t.as_str());
                }
                qb.push(")");
                for row in qb.build().fetch_all(&self.reader).await? {
                    out.push(vault_from_row(&row)?);
                }
            }
            Ok(out)
        })
    }

    fn vault_subject<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<VaultEntry>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM privacy_vault WHERE subject_mac = ? ORDER BY domain, token")
                .bind(subject_mac)
                .fetch_all(&self.reader)
                .await?;
            rows.iter().map(vault_from_row).collect()
        })
    }
}

impl crate::IntelStore for SqliteStore {
    fn intel_put<'a>(&'a self, records: &'a [crate::IntelRecord]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let mut tx = self.write().await?;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut qb = QueryBuilder::new("INSERT OR REPLACE INTO intel_indicators (source, id, body, imported) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.source.as_str())
                        .push_bind(r.id.as_str())
                        .push_bind(r.body.as_str())
                        .push_bind(nanos(r.imported));
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(records.len() as u64)
        })
    }

    fn intel_all(&self) -> BoxFuture<'_, Result<Vec<crate::IntelRecord>>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String, i64)> =
                sqlx::query_as("SELECT source, id, body, imported FROM intel_indicators ORDER BY source, id")
                    .fetch_all(&self.reader)
                    .await?;
            rows.into_iter()
                .map(|(source, id, body, imported)| {
                    Ok(crate::IntelRecord {
                        imported: from_nanos(&id, imported)?,
                        source,
                        id,
                        body,
                    })
                })
                .collect()
        })
    }

    fn intel_state(&self) -> BoxFuture<'_, Result<(u64, Option<Timestamp>)>> {
        Box::pin(async move {
            let (n, last): (i64, Option<i64>) = sqlx::query_as("SELECT COUNT(*), MAX(imported) FROM intel_indicators")
                .fetch_one(&self.reader)
                .await?;
            Ok((
                u64::try_from(n).unwrap_or(0),
                last.map(|l| from_nanos("intel_indicators", l)).transpose()?,
            ))
        })
    }
}

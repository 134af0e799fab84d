//! The distributed store: PostgreSQL, shared by every process of a cluster.
//!
//! Events live in a table partitioned by the day they were received (`ingested`, the
//! server's clock, which no sender controls: a sender writing times centuries apart cannot
//! make thousands of partitions). Retention drops whole partitions when none of their events
//! is newer than the cut and deletes the rest by the per-partition time index. Partitions are
//! made on first use under an advisory lock, so that processes racing to make the same day's
//! never fail each other.
//!
//! Everything one call writes goes in one transaction; decisions that several processes could
//! race on (a ledger append, an action's idempotency key, a vault token) are settled by the
//! database's own constraints, never by a lock held in one process.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rempart_model::{Alert, DataClass, Event, EventId, Format, Normalized, Origin};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, QueryBuilder, Row};

use crate::codec::{corrupt, event_id, from_nanos, hash_from, nanos, seq_i64};
use crate::{
    AlertQuery, BoxFuture, EventQuery, Hash, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, Quarantined, Result,
    Role, Store, StoreError, StoredCheckpoint, SubjectKey, TokenRecord, VaultEntry, VaultStore,
};

mod erasure;
mod incidents;
mod response;

/// Schema migrations, applied in order, each once, all pending ones in one transaction.
/// Never edit a released one: add another.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE events (
        id TEXT COLLATE "C" NOT NULL,
        time BIGINT NOT NULL,
        ingested BIGINT NOT NULL,
        format TEXT NOT NULL,
        source TEXT NOT NULL,
        location TEXT,
        class TEXT NOT NULL,
        normalized JSON NOT NULL,
        fields JSON NOT NULL,
        PRIMARY KEY (id, ingested)
    ) PARTITION BY RANGE (ingested);
    CREATE INDEX events_time ON events (time, id);
    CREATE INDEX events_host ON events (lower((normalized->>'host') COLLATE "C"), time);
    CREATE INDEX events_user ON events (lower((normalized->>'user') COLLATE "C"), time);
    CREATE TABLE event_partitions (
        name TEXT PRIMARY KEY,
        lo BIGINT NOT NULL,
        hi BIGINT NOT NULL
    );
    CREATE TABLE quarantine (
        id TEXT COLLATE "C" PRIMARY KEY,
        received BIGINT NOT NULL,
        source TEXT NOT NULL,
        location TEXT,
        reason TEXT NOT NULL,
        raw BYTEA NOT NULL
    );
    CREATE INDEX quarantine_received ON quarantine (received, id);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE alerts (
        id TEXT COLLATE "C" PRIMARY KEY,
        time BIGINT NOT NULL,
        created BIGINT NOT NULL,
        rule_id TEXT,
        rule_title TEXT NOT NULL,
        level TEXT,
        tags TEXT NOT NULL,
        techniques TEXT NOT NULL,
        matched TEXT NOT NULL,
        event TEXT COLLATE "C" NOT NULL,
        host TEXT,
        "user" TEXT
    );
    CREATE INDEX alerts_time ON alerts (time, id);
    CREATE INDEX alerts_rule ON alerts (rule_id, time);
    CREATE TABLE ledger (
        seq BIGINT PRIMARY KEY,
        time BIGINT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        key_id TEXT,
        payload_hash BYTEA NOT NULL,
        prev_hash BYTEA NOT NULL,
        leaf_hash BYTEA NOT NULL,
        body BYTEA
    );
    CREATE TABLE ledger_checkpoints (
        size BIGINT PRIMARY KEY,
        root BYTEA NOT NULL,
        time BIGINT NOT NULL,
        note TEXT NOT NULL,
        frontier BYTEA NOT NULL
    );
    CREATE TABLE ledger_keys (
        key_id TEXT PRIMARY KEY,
        subject_mac TEXT,
        wrapped BYTEA,
        created BIGINT NOT NULL,
        erased BIGINT
    );
    CREATE INDEX ledger_keys_subject ON ledger_keys (subject_mac);
    CREATE TABLE privacy_vault (
        domain TEXT NOT NULL,
        token TEXT NOT NULL,
        subject_mac TEXT NOT NULL,
        key_id TEXT NOT NULL,
        sealed BYTEA NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (domain, token)
    );
    CREATE INDEX privacy_vault_subject ON privacy_vault (subject_mac);
    CREATE TABLE intel_indicators (
        source TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL,
        imported BIGINT NOT NULL,
        PRIMARY KEY (source, id)
    );
    CREATE TABLE incidents (
        id TEXT COLLATE "C" PRIMARY KEY,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        score BIGINT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        body JSON NOT NULL
    );
    CREATE INDEX incidents_last_seen ON incidents (last_seen, id);
    CREATE INDEX incidents_status ON incidents (status, last_seen);
    CREATE TABLE incident_alerts (
        alert TEXT COLLATE "C" PRIMARY KEY,
        incident TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX incident_alerts_incident ON incident_alerts (incident);
    CREATE TABLE verdicts (
        id TEXT COLLATE "C" PRIMARY KEY,
        incident TEXT COLLATE "C" NOT NULL,
        created BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX verdicts_incident ON verdicts (incident, created);
    CREATE TABLE verdict_feedback (
        id TEXT COLLATE "C" PRIMARY KEY DEFAULT gen_random_uuid()::text,
        verdict TEXT COLLATE "C" NOT NULL,
        incident TEXT COLLATE "C" NOT NULL,
        time BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX verdict_feedback_verdict ON verdict_feedback (verdict);
    CREATE INDEX verdict_feedback_time ON verdict_feedback (time);
    CREATE TABLE playbook_runs (
        id TEXT COLLATE "C" PRIMARY KEY,
        incident TEXT COLLATE "C" NOT NULL,
        playbook TEXT NOT NULL,
        status TEXT NOT NULL,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX playbook_runs_incident ON playbook_runs (incident, created);
    CREATE INDEX playbook_runs_status ON playbook_runs (status, created);
    CREATE TABLE approvals (
        id TEXT COLLATE "C" PRIMARY KEY,
        run TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        created BIGINT NOT NULL,
        deadline BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX approvals_status ON approvals (status, created);
    CREATE TABLE response_actions (
        key TEXT COLLATE "C" PRIMARY KEY,
        run TEXT COLLATE "C" NOT NULL,
        playbook TEXT NOT NULL,
        action TEXT NOT NULL,
        time BIGINT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX response_actions_rate ON response_actions (playbook, action, time);
    CREATE TABLE regulatory_assessments (
        incident TEXT COLLATE "C" PRIMARY KEY,
        updated BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE detector_state (
        name TEXT COLLATE "C" PRIMARY KEY,
        updated BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    "#,
    ),
    (
        2,
        r#"
    CREATE TABLE cluster_members (
        id TEXT COLLATE "C" PRIMARY KEY,
        role TEXT NOT NULL,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        listen TEXT,
        started BIGINT NOT NULL,
        seen BIGINT NOT NULL
    );
    "#,
    ),
    (
        3,
        r#"
    ALTER TABLE tokens ADD COLUMN owner TEXT;
    ALTER TABLE tokens ADD COLUMN created_by TEXT;
    "#,
    ),
];

/// Advisory lock keys (one database may hold several Rempart schemas; they only wait on
/// each other for these short, rare steps).
const LOCK_MIGRATE: i64 = 0x5245_4d50_0001;
const LOCK_PARTITIONS: i64 = 0x5245_4d50_0002;

/// One event partition per day of reception.
pub(crate) const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// SQLSTATE of a row that no partition accepts (its day's was dropped by another process).
const NO_PARTITION: &str = "23514";
/// SQLSTATE of a statement stopped by `statement_timeout`.
const QUERY_CANCELED: &str = "57014";

/// How to reach PostgreSQL.
#[derive(Clone, Default)]
pub struct PgSettings {
    /// `postgres://user@host:port/database`, with `sslmode=verify-full` and `sslrootcert=…`
    /// for TLS (rustls; the system's roots unless `sslrootcert` names a CA file).
    pub url: String,
    /// The password, when it is not in the URL (read from a variable or a file).
    pub password: Option<String>,
    /// Connections this process keeps at most.
    pub max_connections: u32,
    /// The schema Rempart's tables live in (created if missing); the user's default
    /// `search_path` when `None`. Several instances (or test runs) can share one database.
    pub schema: Option<String>,
    /// How this process's sessions are named in `pg_stat_activity` (`rempart/<role>/<pid>@<host>`
    /// for a server: `rempart cluster status` lists the processes of a cluster by it).
    pub application: String,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("max_connections", &self.max_connections)
            .field("schema", &self.schema)
            .finish()
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:…@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

/// The store on PostgreSQL. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The schema, which scopes leases (advisory locks are database-wide).
    schema: String,
    /// Taken before an exclusive section's advisory lock: one waiter per process, so that
    /// waiters cannot take every pooled session while the holder needs one more.
    exclusive: Arc<tokio::sync::Mutex<()>>,
    /// Days whose event partition this process knows to exist.
    partitions: Arc<Mutex<HashSet<i64>>>,
}

impl PgStore {
    /// Connects, creates the schema if needed and applies migrations.
    pub fn connect(settings: &PgSettings) -> BoxFuture<'static, Result<Self>> {
        // Boxed here, where every lifetime is known, so that callers may spawn it.
        let settings = settings.clone();
        Box::pin(Self::open(settings))
    }

    async fn open(settings: PgSettings) -> Result<Self> {
        let open_error = |reason: String| StoreError::Open {
            path: redact_url(&settings.url),
            reason,
        };
        let mut options = PgConnectOptions::from_str(&settings.url).map_err(|e| open_error(e.to_string()))?;
        if let Some(p) = &settings.password {
            options = options.password(p);
        }
        // PostgreSQL keeps 63 bytes of it.
        let mut application = settings.application.clone();
        while application.len() > 63 {
            application.pop();
        }
        options = options.application_name(if application.is_empty() {
            "rempart"
        } else {
            &application
        });
        if let Some(schema) = &settings.schema {
            if schema.is_empty()
                || schema.len() > 63
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(open_error(format!(
                    "schema `{schema}` must be 1 to 63 characters of a-z, 0-9 and _"
                )));
            }
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| open_error(e.to_string()))?;
        let store = PgStore {
            pool,
            schema: settings.schema.clone().unwrap_or_default(),
            exclusive: Arc::default(),
            partitions: Arc::new(Mutex::new(HashSet::new())),
        };
        store.migrate(settings.schema.as_deref()).await?;
        Ok(store)
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Holds this process's turn for exclusive sections (see [`PgStore::exclusive`]'s trait
    /// method).
    pub(crate) async fn exclusive_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.exclusive.clone().lock_owned().await
    }

    /// Makes sure the erasure epoch's row exists, so that saves and erasures lock one row.
    pub(crate) async fn epoch_row(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO detector_state (name, updated, body) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(crate::EPOCH_STATE)
        .bind(crate::codec::epoch_body(crate::Epoch::FIRST))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The advisory lock behind lease `name` (as `pg_locks` shows it: `classid << 32 | objid`),
    /// to find which session holds it.
    pub fn lease_key(&self, name: &str) -> i64 {
        lease_key(&self.schema, name)
    }

    /// Creates `schema` if it is missing and applies pending migrations in it.
    fn migrate<'a>(&'a self, schema: Option<&'a str>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // Processes starting together wait for the first to migrate (`IF NOT EXISTS` alone
            // does not hold when two create the same schema or table at once).
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(LOCK_MIGRATE)
                .execute(&mut *tx)
                .await?;
            if let Some(schema) = schema {
                // `schema` was checked to be of [a-z0-9_] only.
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await?;
            // Collected first: an iterator adapter's closure held across an `.await` would make
            // this future `Send` for one lifetime only, and callers could not spawn it.
            let pending: Vec<(i64, &'static str)> = MIGRATIONS.iter().copied().filter(|(v, _)| *v > current).collect();
            for (version, sql) in pending {
                // Through `Executor` rather than `RawSql::execute`, whose future is `Send` for one
                // lifetime only.
                sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql))
                    .await
                    .map_err(|e| StoreError::Migration {
                        version,
                        reason: e.to_string(),
                    })?;
                sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)")
                    .bind(version)
                    .bind(Timestamp::now().as_second())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The schema version this store is at.
    pub async fn schema_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Makes sure every day of `days` has its event partition.
    pub(crate) async fn ensure_partitions(&self, days: &[i64]) -> Result<()> {
        let missing: Vec<i64> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            days.iter().copied().filter(|d| !known.contains(d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK_PARTITIONS)
            .execute(&mut *tx)
            .await?;
        for day in &missing {
            let (name, lo, hi) = partition(*day);
            let bound = |n: Option<i64>, word: &str| n.map_or_else(|| word.to_owned(), |n| n.to_string());
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES FROM ({}) TO ({})",
                bound(lo, "MINVALUE"),
                bound(hi, "MAXVALUE"),
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO event_partitions (name, lo, hi) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&name)
            .bind(lo.unwrap_or(i64::MIN))
            .bind(hi.unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(missing);
        Ok(())
    }

    async fn insert_events_once(&self, events: &[Event]) -> Result<()> {
        let mut days: Vec<i64> = events.iter().map(|e| nanos(e.ingested).div_euclid(DAY_NANOS)).collect();
        days.sort_unstable();
        days.dedup();
        self.ensure_partitions(&days).await?;
        let mut c = EventColumns::default();
        for e in events {
            let id = e.id.to_string();
            c.normalized
                .push(serde_json::to_string(&e.normalized).map_err(|err| corrupt(&id, "normalized", err))?);
            c.fields
                .push(e.fields.to_json().map_err(|err| corrupt(&id, "fields", err))?);
            c.id.push(id);
            c.time.push(nanos(e.time));
            c.ingested.push(nanos(e.ingested));
            c.format.push(e.format.as_str());
            c.source.push(e.origin.source.as_str());
            c.location.push(e.origin.location.as_deref());
            c.class.push(e.class.as_str());
        }
        sqlx::query(
            "INSERT INTO events (id, time, ingested, format, source, location, class, normalized, fields) \
             SELECT id, time, ingested, format, source, location, class, normalized::json, fields::json \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[]) AS t(id, time, ingested, format, source, location, class, normalized, fields) \
             ON CONFLICT (id, ingested) DO NOTHING",
        )
        .bind(&c.id)
        .bind(&c.time)
        .bind(&c.ingested)
        .bind(&c.format)
        .bind(&c.source)
        .bind(&c.location)
        .bind(&c.class)
        .bind(&c.normalized)
        .bind(&c.fields)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Events as columns, for one `UNNEST` insert.
#[derive(Default)]
struct EventColumns<'a> {
    id: Vec<String>,
    time: Vec<i64>,
    ingested: Vec<i64>,
    format: Vec<&'a str>,
    source: Vec<&'a str>,
    location: Vec<Option<&'a str>>,
    class: Vec<&'a str>,
    normalized: Vec<String>,
    fields: Vec<String>,
}

/// The advisory lock key of lease `name` in `schema`: FNV-1a over both, in the range no
/// other lock of this store uses (those are small constants).
fn lease_key(schema: &str, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schema.bytes().chain([0]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes((h | (1 << 62)).to_ne_bytes())
}

/// A lease: an advisory lock held by a session of its own.
#[derive(Debug)]
struct PgLease {
    conn: sqlx::PgConnection,
}

impl crate::Lease for PgLease {
    fn check(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&mut self.conn).await?;
            Ok(())
        })
    }
}

/// The partition of a day: its table name and bounds (`None`: unbounded, past what `i64`
/// nanoseconds hold).
fn partition(day: i64) -> (String, Option<i64>, Option<i64>) {
    let lo = i64::try_from(i128::from(day) * i128::from(DAY_NANOS)).ok();
    let hi = i64::try_from((i128::from(day) + 1) * i128::from(DAY_NANOS)).ok();
    let date = Timestamp::from_second(day.saturating_mul(86_400))
        .map(|t| t.strftime("%Y%m%d").to_string())
        .unwrap_or_else(|_| format!("day{}", day.unsigned_abs()));
    (format!("events_{date}"), lo, hi)
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

pub(crate) const ALERT_COLUMNS: &str =
    r#"id, time, created, rule_id, rule_title, level, tags, techniques, matched, event, host, "user""#;

fn alert_from_row(row: &PgRow) -> Result<Alert> {
    let id: String = row.try_get("id")?;
    let event: String = row.try_get("event")?;
    let tags: String = row.try_get("tags")?;
    let techniques: String = row.try_get("techniques")?;
    let matched: String = row.try_get("matched")?;
    Ok(Alert {
        id: event_id(&id, "id")?,
        time: from_nanos(&id, row.try_get("time")?)?,
        created: from_nanos(&id, row.try_get("created")?)?,
        rule_id: row.try_get("rule_id")?,
        rule_title: row.try_get("rule_title")?,
        level: row.try_get("level")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt(&id, "tags", e))?,
        techniques: serde_json::from_str(&techniques).map_err(|e| corrupt(&id, "techniques", e))?,
        matched: serde_json::from_str(&matched).map_err(|e| corrupt(&id, "matched", e))?,
        event: event_id(&event, "event")?,
        host: row.try_get("host")?,
        user: row.try_get("user")?,
    })
}

const EVENT_COLUMNS: &str =
    "id, time, ingested, format, source, location, class, normalized::text AS normalized, fields::text AS fields";

fn event_from_row(row: &PgRow) -> Result<Event> {
    let id: String = row.try_get("id")?;
    let format: String = row.try_get("format")?;
    let class: String = row.try_get("class")?;
    let normalized: String = row.try_get("normalized")?;
    let fields: String = row.try_get("fields")?;
    Ok(Event {
        id: event_id(&id, "id")?,
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

fn token_from_row(row: &PgRow) -> Result<TokenRecord> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        role: Role::from_str(&role).map_err(|e| corrupt(&id, "role", e))?,
        name: row.try_get("name")?,
        hash: row.try_get("hash")?,
        created: Timestamp::from_second(row.try_get("created")?).map_err(|e| corrupt(&id, "created", e))?,
        revoked: row.try_get("revoked")?,
        owner: row.try_get("owner")?,
        created_by: row.try_get("created_by")?,
        id,
    })
}

/// The statement for an event query.
fn events_statement(query: &EventQuery) -> Result<QueryBuilder<'_, sqlx::Postgres>> {
    let mut qb = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE TRUE"));
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
                // `#>>` gives a scalar as text, so `event_id=4624` matches the number 4624.
                let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
                qb.push(format!(" AND ({column} #>> "))
                    .push_bind(path)
                    .push("::text[]) = ")
                    .push_bind(f.value.clone());
            }
        }
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        crate::codec::push_text(&mut qb, text, &["fields::text", "normalized::text"], "ILIKE");
    }
    crate::codec::push_past(&mut qb, "time", crate::codec::Past::Older, query.before);
    qb.push(" ORDER BY time DESC, id DESC LIMIT ")
        .push_bind(i64::from(query.effective_limit()));
    Ok(qb)
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

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store for PgStore {
    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            match self.insert_events_once(events).await {
                // Another process dropped a partition this one still believed in: forget what
                // it knew and try once more.
                Err(StoreError::Database(e)) if sqlstate(&e).as_deref() == Some(NO_PARTITION) => {
                    self.partitions
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clear();
                    self.insert_events_once(events).await
                }
                other => other,
            }
        })
    }

    fn quarantine<'a>(&'a self, items: &'a [Quarantined]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(());
            }
            let ids: Vec<String> = items.iter().map(|q| q.id.to_string()).collect();
            let received: Vec<i64> = items.iter().map(|q| nanos(q.received)).collect();
            let source: Vec<&str> = items.iter().map(|q| q.source.as_str()).collect();
            let location: Vec<Option<&str>> = items.iter().map(|q| q.location.as_deref()).collect();
            let reason: Vec<&str> = items.iter().map(|q| q.reason.as_str()).collect();
            let raw: Vec<&[u8]> = items.iter().map(|q| q.raw.as_slice()).collect();
            sqlx::query(
                "INSERT INTO quarantine (id, received, source, location, reason, raw) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[]) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&ids)
            .bind(&received)
            .bind(&source)
            .bind(&location)
            .bind(&reason)
            .bind(&raw)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn query_events<'a>(&'a self, query: &'a EventQuery) -> BoxFuture<'a, Result<Vec<Event>>> {
        Box::pin(async move {
            let mut qb = events_statement(query)?;
            let rows = qb.build().fetch_all(&self.pool).await?;
            rows.iter().map(event_from_row).collect()
        })
    }

    fn query_events_within<'a>(&'a self, query: &'a EventQuery, budget: Duration) -> BoxFuture<'a, Result<Vec<Event>>> {
        Box::pin(async move {
            let mut qb = events_statement(query)?;
            // `statement_timeout` counts whole milliseconds, and zero turns it off: a budget
            // below one millisecond cannot hold any statement.
            let millis = budget.as_millis();
            if millis == 0 {
                return Err(StoreError::Interrupted(budget));
            }
            let mut tx = self.pool.begin().await?;
            sqlx::query(&format!(
                "SET LOCAL statement_timeout = {}",
                millis.min(i32::MAX as u128)
            ))
            .execute(&mut *tx)
            .await?;
            let rows = qb.build().fetch_all(&mut *tx).await;
            match rows {
                Ok(rows) => {
                    tx.commit().await?;
                    rows.iter().map(event_from_row).collect()
                }
                Err(e) if sqlstate(&e).as_deref() == Some(QUERY_CANCELED) => Err(StoreError::Interrupted(budget)),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn get_event(&self, id: EventId) -> BoxFuture<'_, Result<Option<Event>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(event_from_row).transpose()
        })
    }

    fn count_events(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(&self.pool)
                .await?;
            Ok(count(n))
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
            // The expressions are the indexes' own; ASCII folding only, as SQLite's NOCASE.
            let expr = match field {
                crate::EntityField::Host => r#"lower((normalized->>'host') COLLATE "C")"#,
                crate::EntityField::User => r#"lower((normalized->>'user') COLLATE "C")"#,
            };
            let value = value.to_ascii_lowercase();
            let exact = format!("SELECT COUNT(*) FROM events WHERE {expr} = $1 AND time >= $2 AND time < $3");
            let n: i64 = if field == crate::EntityField::Host {
                // `value.` up to `value/` (the character after `.`): every FQDN of the host.
                sqlx::query_scalar(&format!(
                    "SELECT ({exact}) + (SELECT COUNT(*) FROM events WHERE {expr} >= $4 AND {expr} < $5 \
                     AND time >= $2 AND time < $3)"
                ))
                .bind(&value)
                .bind(nanos(since))
                .bind(nanos(until))
                .bind(format!("{value}."))
                .bind(format!("{value}/"))
                .fetch_one(&self.pool)
                .await?
            } else {
                sqlx::query_scalar(&exact)
                    .bind(&value)
                    .bind(nanos(since))
                    .bind(nanos(until))
                    .fetch_one(&self.pool)
                    .await?
            };
            Ok(count(n))
        })
    }

    fn list_quarantine(&self, before: Option<crate::Position>, limit: u32) -> BoxFuture<'_, Result<Vec<Quarantined>>> {
        Box::pin(async move {
            let mut qb =
                QueryBuilder::new("SELECT id, received, source, location, reason, raw FROM quarantine WHERE TRUE");
            crate::codec::push_past(&mut qb, "received", crate::codec::Past::Older, before);
            qb.push(" ORDER BY received DESC, id DESC LIMIT ")
                .push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(&self.pool).await?;
            rows.iter()
                .map(|row| {
                    let id: String = row.try_get("id")?;
                    Ok(Quarantined {
                        id: event_id(&id, "id")?,
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
                .fetch_one(&self.pool)
                .await?;
            Ok(count(n))
        })
    }

    fn prune_events(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let cut = nanos(before);
            let mut removed = 0;
            // Whole days received before the cut go at once when none of their events is
            // newer than it (an event stamped in the future keeps its day's partition).
            let old: Vec<(String, i64)> =
                sqlx::query_as("SELECT name, hi FROM event_partitions WHERE hi <= $1 ORDER BY lo")
                    .bind(cut)
                    .fetch_all(&self.pool)
                    .await?;
            for (name, _) in old {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(LOCK_PARTITIONS)
                    .execute(&mut *tx)
                    .await?;
                // `name` comes from the partitions table, which only `partition()` writes.
                let (rows, newer): (i64, bool) = sqlx::query_as(&format!(
                    "SELECT COUNT(*), COALESCE(bool_or(time >= $1), FALSE) FROM {name}"
                ))
                .bind(cut)
                .fetch_one(&mut *tx)
                .await?;
                if newer {
                    continue;
                }
                sqlx::query(&format!("DROP TABLE {name}")).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM event_partitions WHERE name = $1")
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                removed += count(rows);
            }
            self.partitions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            let done = sqlx::query("DELETE FROM events WHERE time < $1")
                .bind(cut)
                .execute(&self.pool)
                .await?;
            Ok(removed + done.rows_affected())
        })
    }

    fn create_token<'a>(&'a self, token: &'a TokenRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO tokens (id, name, role, hash, created, revoked, owner, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&token.id)
                .bind(&token.name)
                .bind(token.role.as_str())
                .bind(&token.hash)
                .bind(token.created.as_second())
                .bind(token.revoked)
                .bind(token.owner.as_deref())
                .bind(token.created_by.as_deref())
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn find_token<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<TokenRecord>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT id, name, role, hash, created, revoked, owner, created_by FROM tokens WHERE hash = $1 AND NOT revoked",
            )
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(token_from_row).transpose()
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, name, role, hash, created, revoked, owner, created_by FROM tokens ORDER BY created, id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(token_from_row).collect()
        })
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE tokens SET revoked = TRUE WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn insert_alerts<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Result<Vec<EventId>>> {
        Box::pin(async move {
            if alerts.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<String> = alerts.iter().map(|a| a.id.to_string()).collect();
            let time: Vec<i64> = alerts.iter().map(|a| nanos(a.time)).collect();
            let created: Vec<i64> = alerts.iter().map(|a| nanos(a.created)).collect();
            let rule_id: Vec<Option<&str>> = alerts.iter().map(|a| a.rule_id.as_deref()).collect();
            let rule_title: Vec<&str> = alerts.iter().map(|a| a.rule_title.as_str()).collect();
            let level: Vec<Option<&str>> = alerts.iter().map(|a| a.level.as_deref()).collect();
            let tags: Vec<String> = alerts.iter().map(|a| json_list(&a.tags)).collect();
            let techniques: Vec<String> = alerts.iter().map(|a| json_list(&a.techniques)).collect();
            let matched: Vec<String> = alerts.iter().map(|a| json_list(&a.matched)).collect();
            let event: Vec<String> = alerts.iter().map(|a| a.event.to_string()).collect();
            let host: Vec<Option<&str>> = alerts.iter().map(|a| a.host.as_deref()).collect();
            let user: Vec<Option<&str>> = alerts.iter().map(|a| a.user.as_deref()).collect();
            let stored: Vec<String> = sqlx::query_scalar(&format!(
                "INSERT INTO alerts ({ALERT_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], \
                 $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                 $12::text[]) ON CONFLICT (id) DO NOTHING RETURNING id"
            ))
            .bind(&ids)
            .bind(&time)
            .bind(&created)
            .bind(&rule_id)
            .bind(&rule_title)
            .bind(&level)
            .bind(&tags)
            .bind(&techniques)
            .bind(&matched)
            .bind(&event)
            .bind(&host)
            .bind(&user)
            .fetch_all(&self.pool)
            .await?;
            stored.iter().map(|id| event_id(id, "id")).collect()
        })
    }

    fn query_alerts<'a>(&'a self, query: &'a AlertQuery) -> BoxFuture<'a, Result<Vec<Alert>>> {
        Box::pin(async move {
            let mut qb = QueryBuilder::new(format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE TRUE"));
            if let Some(since) = query.since {
                qb.push(" AND time >= ").push_bind(nanos(since));
            }
            if let Some(until) = query.until {
                qb.push(" AND time < ").push_bind(nanos(until));
            }
            if let Some(levels) = query.levels()? {
                qb.push(" AND level = ANY(")
                    .push_bind(levels.iter().map(|l| (*l).to_owned()).collect::<Vec<String>>())
                    .push(")");
            }
            if let Some(rule) = &query.rule_id {
                qb.push(" AND rule_id = ").push_bind(rule.clone());
            }
            crate::codec::push_past(&mut qb, "time", crate::codec::Past::Older, query.before);
            qb.push(" ORDER BY time DESC, id DESC LIMIT ")
                .push_bind(i64::from(query.effective_limit()));
            let rows = qb.build().fetch_all(&self.pool).await?;
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
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Box<dyn crate::Lease>>>> {
        Box::pin(async move {
            // A session of its own, out of the pool: the lock lives exactly as long as it.
            let mut conn = self.pool.acquire().await?.detach();
            let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(self.lease_key(name))
                .fetch_one(&mut conn)
                .await?;
            Ok(held.then(|| Box::new(PgLease { conn }) as Box<dyn crate::Lease>))
        })
    }

    fn member_beat<'a>(&'a self, member: &'a crate::Member) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO cluster_members (id, role, host, pid, listen, started, seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET listen = EXCLUDED.listen, seen = EXCLUDED.seen",
            )
            .bind(&member.id)
            .bind(&member.role)
            .bind(&member.host)
            .bind(i64::from(member.pid))
            .bind(member.listen.as_deref())
            .bind(nanos(member.started))
            .bind(nanos(member.seen))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn member_leave<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM cluster_members WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<crate::Member>>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT id, role, host, pid, listen, started, seen FROM cluster_members ORDER BY role, id")
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|r| {
                    let id: String = r.try_get("id")?;
                    Ok(crate::Member {
                        started: from_nanos(&id, r.try_get("started")?)?,
                        seen: from_nanos(&id, r.try_get("seen")?)?,
                        id,
                        role: r.try_get("role")?,
                        host: r.try_get("host")?,
                        pid: u32::try_from(r.try_get::<i64, _>("pid")?).unwrap_or(0),
                        listen: r.try_get("listen")?,
                    })
                })
                .collect()
        })
    }

    fn lease_holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(
                "SELECT a.application_name::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND (l.classid::bigint << 32 | l.objid::bigint) = $1 LIMIT 1",
            )
            .bind(self.lease_key(name))
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn state_put<'a>(
        &'a self,
        name: &'a str,
        state: &'a serde_json::Value,
        updated: Timestamp,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO detector_state (name, updated, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET updated = EXCLUDED.updated, body = EXCLUDED.body",
            )
            .bind(name)
            .bind(nanos(updated))
            .bind(state.to_string())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn erasure_epoch(&self) -> BoxFuture<'_, Result<crate::Epoch>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = $1")
                .bind(crate::EPOCH_STATE)
                .fetch_optional(&self.pool)
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
            self.epoch_row().await?;
            let mut tx = self.pool.begin().await?;
            // Shared until the commit: an erasure beginning meanwhile waits for this save, and
            // its sweep then rewrites it; one that began first is seen here.
            let current: Option<String> =
                sqlx::query_scalar("SELECT body FROM detector_state WHERE name = $1 FOR SHARE")
                    .bind(crate::EPOCH_STATE)
                    .fetch_optional(&mut *tx)
                    .await?;
            let current = crate::codec::epoch_of(current)?;
            if current != epoch {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO detector_state (name, updated, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET updated = EXCLUDED.updated, body = EXCLUDED.body",
            )
            .bind(name)
            .bind(nanos(updated))
            .bind(body)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn state_get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<serde_json::Value>>> {
        Box::pin(async move {
            let body: Option<String> = sqlx::query_scalar("SELECT body FROM detector_state WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
            body.map(|b| serde_json::from_str(&b).map_err(|e| corrupt(name, "detector state", e)))
                .transpose()
        })
    }
}

/// A list column's JSON text.
fn json_list<T: serde::Serialize>(v: &[T]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// The ledger's columns, in the order [`crate::codec::ledger_record`] reads them by index.
const LEDGER_COLUMNS: &str = "l.seq, l.time, l.actor, l.kind, l.key_id, l.payload_hash || l.prev_hash || l.leaf_hash";

fn subject_key_from_row(row: &PgRow) -> Result<SubjectKey> {
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

async fn insert_keys(tx: &mut sqlx::PgConnection, keys: &[SubjectKey]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    let macs: Vec<Option<&str>> = keys.iter().map(|k| k.subject_mac.as_deref()).collect();
    let wrapped: Vec<Option<&[u8]>> = keys.iter().map(|k| k.wrapped.as_deref()).collect();
    let created: Vec<i64> = keys.iter().map(|k| nanos(k.created)).collect();
    let erased: Vec<Option<i64>> = keys.iter().map(|k| k.erased.map(nanos)).collect();
    sqlx::query(
        "INSERT INTO ledger_keys (key_id, subject_mac, wrapped, created, erased) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::bigint[])",
    )
    .bind(&ids)
    .bind(&macs)
    .bind(&wrapped)
    .bind(&created)
    .bind(&erased)
    .execute(&mut *tx)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

async fn insert_checkpoint(tx: &mut sqlx::PgConnection, cp: &StoredCheckpoint) -> Result<()> {
    let frontier: Vec<u8> = cp.frontier.iter().flatten().copied().collect();
    sqlx::query("INSERT INTO ledger_checkpoints (size, root, time, note, frontier) VALUES ($1, $2, $3, $4, $5)")
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

const SUBJECT_KEY_COLUMNS: &str = "key_id, subject_mac, wrapped, created, erased";

impl LedgerStore for PgStore {
    fn ledger_head(&self) -> BoxFuture<'_, Result<Option<LedgerRecord>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT {LEDGER_COLUMNS} FROM ledger l ORDER BY l.seq DESC LIMIT 1"
            ))
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(crate::codec::ledger_record).transpose()
        })
    }

    fn ledger_append<'a>(&'a self, append: LedgerAppend<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(first) = append.entries.first() else {
                return Ok(());
            };
            let mut tx = self.pool.begin().await?;
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
            insert_keys(&mut tx, append.keys).await?;
            let entries = append.entries;
            let seq = entries
                .iter()
                .map(|e| seq_i64(e.record.seq))
                .collect::<Result<Vec<_>>>()?;
            // A writer that read the same head inserts the same `seq`: the primary key makes
            // the later of the two fail, whole, with a conflict.
            sqlx::query(
                "INSERT INTO ledger (seq, time, actor, kind, key_id, payload_hash, prev_hash, leaf_hash, body) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[], \
                 $7::bytea[], $8::bytea[], $9::bytea[])",
            )
            .bind(&seq)
            .bind(entries.iter().map(|e| nanos(e.record.time)).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.record.actor.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.record.kind.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.record.key_id.as_deref()).collect::<Vec<_>>())
            .bind(
                entries
                    .iter()
                    .map(|e| e.record.payload_hash.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(
                entries
                    .iter()
                    .map(|e| e.record.prev_hash.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(
                entries
                    .iter()
                    .map(|e| e.record.leaf_hash.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(entries.iter().map(|e| e.payload.as_deref()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(conflict_or)?;
            if let Some(cp) = append.checkpoint {
                insert_checkpoint(&mut tx, cp).await?;
            }
            tx.commit().await.map_err(conflict_or)?;
            Ok(())
        })
    }

    fn ledger_checkpoint<'a>(&'a self, checkpoint: &'a StoredCheckpoint) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
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
                "SELECT {LEDGER_COLUMNS}, l.body FROM ledger l WHERE l.seq >= $1 ORDER BY l.seq LIMIT $2"
            ))
            .bind(seq_i64(from)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(crate::codec::ledger_entry).collect()
        })
    }

    fn ledger_leaves(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<Hash>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT seq, leaf_hash FROM ledger WHERE seq >= $1 AND seq < $2 ORDER BY seq")
                .bind(seq_i64(from)?)
                .bind(seq_i64(to)?)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(crate::codec::ledger_leaf).collect()
        })
    }

    fn ledger_checkpoints(&self) -> BoxFuture<'_, Result<Vec<StoredCheckpoint>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT size, root, time, note, frontier FROM ledger_checkpoints ORDER BY size")
                .fetch_all(&self.pool)
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
            let done = sqlx::query("UPDATE ledger SET body = NULL WHERE seq < $1 AND body IS NOT NULL")
                .bind(seq_i64(below)?)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn ledger_subject_key<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Option<SubjectKey>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!(
                "SELECT {SUBJECT_KEY_COLUMNS} FROM ledger_keys WHERE subject_mac = $1 AND wrapped IS NOT NULL \
                 ORDER BY created DESC LIMIT 1"
            ))
            .bind(subject_mac)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(subject_key_from_row).transpose()
        })
    }

    fn ledger_live_keys<'a>(&'a self, subject_macs: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            // The newest live key of each subject.
            let rows = sqlx::query(&format!(
                "SELECT DISTINCT ON (subject_mac) {SUBJECT_KEY_COLUMNS} FROM ledger_keys \
                 WHERE wrapped IS NOT NULL AND subject_mac = ANY($1) ORDER BY subject_mac, created DESC"
            ))
            .bind(subject_macs)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(subject_key_from_row).collect()
        })
    }

    fn ledger_subject_keys<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {SUBJECT_KEY_COLUMNS} FROM ledger_keys WHERE subject_mac = $1 ORDER BY created"
            ))
            .bind(subject_mac)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(subject_key_from_row).collect()
        })
    }

    fn ledger_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {SUBJECT_KEY_COLUMNS} FROM ledger_keys WHERE key_id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(subject_key_from_row).collect()
        })
    }

    fn ledger_insert_keys<'a>(&'a self, keys: &'a [SubjectKey]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            insert_keys(&mut tx, keys).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn ledger_erase_subject<'a>(&'a self, subject_mac: &'a str, at: Timestamp) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE ledger_keys SET wrapped = NULL, erased = $1 WHERE subject_mac = $2 AND wrapped IS NOT NULL",
            )
            .bind(nanos(at))
            .bind(subject_mac)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

const VAULT_COLUMNS: &str = "domain, token, subject_mac, key_id, sealed, created";

fn vault_from_row(row: &PgRow) -> Result<VaultEntry> {
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

impl VaultStore for PgStore {
    fn vault_put<'a>(&'a self, entries: &'a [VaultEntry]) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            // One entry per token: the first of the batch stands, as if they were put in turn.
            let mut seen = HashSet::new();
            let entries: Vec<&VaultEntry> = entries
                .iter()
                .filter(|e| seen.insert((e.domain.as_str(), e.token.as_str())))
                .collect();
            let mut tx = self.pool.begin().await?;
            // Insert whatever is new; a token another process put first is simply not inserted
            // and is then judged against what that process stored.
            let inserted: Vec<(String, String)> = sqlx::query_as(&format!(
                "INSERT INTO privacy_vault ({VAULT_COLUMNS}) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[]) \
                 ON CONFLICT (domain, token) DO NOTHING RETURNING domain, token"
            ))
            .bind(entries.iter().map(|e| e.domain.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.token.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.subject_mac.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.key_id.as_str()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| e.sealed.as_slice()).collect::<Vec<_>>())
            .bind(entries.iter().map(|e| nanos(e.created)).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
            let inserted: HashSet<(String, String)> = inserted.into_iter().collect();
            let others: Vec<&VaultEntry> = entries
                .into_iter()
                .filter(|e| !inserted.contains(&(e.domain.clone(), e.token.clone())))
                .collect();
            let mut collisions = Vec::new();
            if !others.is_empty() {
                let stored: Vec<(String, String, String, String)> = sqlx::query_as(
                    "SELECT v.domain, v.token, v.subject_mac, v.key_id FROM privacy_vault v \
                     JOIN UNNEST($1::text[], $2::text[]) AS t(domain, token) \
                     ON v.domain = t.domain AND v.token = t.token",
                )
                .bind(others.iter().map(|e| e.domain.as_str()).collect::<Vec<_>>())
                .bind(others.iter().map(|e| e.token.as_str()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?;
                let stored: HashMap<(String, String), (String, String)> =
                    stored.into_iter().map(|(d, t, m, k)| ((d, t), (m, k))).collect();
                for e in others {
                    match stored.get(&(e.domain.clone(), e.token.clone())) {
                        Some((mac, key)) if *mac == e.subject_mac && *key == e.key_id => {}
                        // The subject was erased and has appeared again: its pseudonym is
                        // sealed anew under its new key.
                        Some((mac, _)) if *mac == e.subject_mac => {
                            sqlx::query(
                                "UPDATE privacy_vault SET key_id = $1, sealed = $2, created = $3 \
                                 WHERE domain = $4 AND token = $5",
                            )
                            .bind(e.key_id.as_str())
                            .bind(e.sealed.as_slice())
                            .bind(nanos(e.created))
                            .bind(e.domain.as_str())
                            .bind(e.token.as_str())
                            .execute(&mut *tx)
                            .await?;
                        }
                        _ => collisions.push(e.token.clone()),
                    }
                }
            }
            tx.commit().await?;
            Ok(collisions)
        })
    }

    fn vault_get<'a>(&'a self, domain: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<Vec<VaultEntry>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {VAULT_COLUMNS} FROM privacy_vault WHERE domain = $1 AND token = ANY($2)"
            ))
            .bind(domain)
            .bind(tokens)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(vault_from_row).collect()
        })
    }

    fn vault_subject<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<VaultEntry>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {VAULT_COLUMNS} FROM privacy_vault WHERE subject_mac = $1 ORDER BY domain, token"
            ))
            .bind(subject_mac)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(vault_from_row).collect()
        })
    }
}

impl crate::IntelStore for PgStore {
    fn intel_put<'a>(&'a self, records: &'a [crate::IntelRecord]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            // The last of the batch wins for a repeated (source, id), as replacing in turn would.
            let mut last: HashMap<(&str, &str), &crate::IntelRecord> = HashMap::new();
            for r in records {
                last.insert((r.source.as_str(), r.id.as_str()), r);
            }
            let rows: Vec<&crate::IntelRecord> = last.into_values().collect();
            sqlx::query(
                "INSERT INTO intel_indicators (source, id, body, imported) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                 ON CONFLICT (source, id) DO UPDATE SET body = EXCLUDED.body, imported = EXCLUDED.imported",
            )
            .bind(rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| nanos(r.imported)).collect::<Vec<_>>())
            .execute(&self.pool)
            .await?;
            Ok(records.len() as u64)
        })
    }

    fn intel_all(&self) -> BoxFuture<'_, Result<Vec<crate::IntelRecord>>> {
        Box::pin(async move {
            let rows: Vec<(String, String, String, i64)> =
                sqlx::query_as("SELECT source, id, body, imported FROM intel_indicators ORDER BY source, id")
                    .fetch_all(&self.pool)
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
                .fetch_one(&self.pool)
                .await?;
            Ok((count(n), last.map(|l| from_nanos("intel_indicators", l)).transpose()?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_day_and_bounded_within_i64() {
        let (name, lo, hi) = partition(0);
        assert_eq!((name.as_str(), lo, hi), ("events_19700101", Some(0), Some(DAY_NANOS)));
        let day = Timestamp::from_second(1_764_892_800).expect("time").as_second() / 86_400;
        assert_eq!(partition(day).0, "events_20251205");
        let last = i64::MAX.div_euclid(DAY_NANOS);
        assert_eq!(partition(last).2, None, "the last day reaches MAXVALUE");
        let first = i64::MIN.div_euclid(DAY_NANOS);
        assert_eq!(partition(first).1, None, "the first day reaches MINVALUE");
    }

    #[test]
    fn a_url_s_password_never_shows() {
        assert_eq!(
            redact_url("postgres://rempart:s3cret@db.example:5432/soc?sslmode=verify-full"),
            "postgres://rempart:…@db.example:5432/soc?sslmode=verify-full"
        );
        assert_eq!(redact_url("postgres://rempart@db/soc"), "postgres://rempart@db/soc");
        assert_eq!(redact_url("postgres://db/soc"), "postgres://db/soc");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}

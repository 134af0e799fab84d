//! Storage for Rempart behind one trait, [`Store`], with two implementations held to one
//! conformance suite ([`conformance`]): the embedded SQLite store ([`SqliteStore`]) and the
//! PostgreSQL store a cluster shares ([`PgStore`]).
//!
//! Architecture invariant: an `insert_events` that returned `Ok` is durable. The HTTP and
//! syslog sources acknowledge a sender only after it has returned.

mod codec;
pub mod conformance;
pub mod copy;
mod erasure;
mod error;
mod incident;
mod intel;
mod ledger;
mod postgres;
mod query;
mod response;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use rempart_model::{Alert, Event, EventId};
use serde::{Deserialize, Serialize};

pub use erasure::{ErasureStore, MAX_REPORTED_IDS, Rewrite, Sweep, SweepReport, rewrite_json};
pub use error::StoreError;
pub use incident::{IncidentQuery, IncidentStore, IncidentWrite};
pub use intel::{IntelRecord, IntelStore};
pub use ledger::{
    Hash, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, StoredCheckpoint, SubjectKey, VaultEntry, VaultStore,
};
pub use postgres::{PgSettings, PgStore, redact_url};
pub use query::{AlertQuery, EventQuery, FieldFilter, NORMALIZED, Position};
pub use response::{ActionRow, ApprovalRow, Exclusive, ResponseStore, RunQuery, RunRow};
pub use sqlite::SqliteStore;

/// Every storage trait at once: what a Rempart process opens, embedded or shared.
/// `Arc<dyn Backend>` coerces to an `Arc` of any one of them.
pub trait Backend:
    Store + IncidentStore + LedgerStore + VaultStore + IntelStore + ResponseStore + ErasureStore
{
}

impl<T> Backend for T where
    T: Store + IncidentStore + LedgerStore + VaultStore + IntelStore + ResponseStore + ErasureStore
{
}

/// A process of a cluster, as it records itself in the shared store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `rempart/<role>/<pid>@<host>`, as its store sessions are named.
    pub id: String,
    pub role: String,
    pub host: String,
    pub pid: u32,
    /// Where it serves the API.
    pub listen: Option<String>,
    pub started: Timestamp,
    /// When it last said it was alive.
    pub seen: Timestamp,
}

/// Makes `path` and its missing parents readable by their owner only (0700) whatever the
/// umask: a data directory holds telemetry, keys and the witness. A folder that exists keeps
/// the mode its owner gave it.
pub fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// A lease taken with [`Store::lease`].
pub trait Lease: Send + Sync + std::fmt::Debug {
    /// `Ok` while the lease is still held; an error once the session holding it is gone (the
    /// database restarted, the connection broke), after which this process must stop doing
    /// what the lease let it do.
    fn check(&mut self) -> BoxFuture<'_, Result<()>>;
}

/// The lease of the only process an embedded store has.
#[derive(Debug)]
struct SoleProcess;

impl Lease for SoleProcess {
    fn check(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A boxed future, so that [`Store`] can be used as `dyn Store`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Input that could not be decoded, kept with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    pub id: EventId,
    pub received: Timestamp,
    pub source: String,
    pub location: Option<String>,
    pub reason: String,
    /// The raw bytes (for an over-long line, its beginning).
    #[serde(with = "raw_as_text")]
    pub raw: Vec<u8>,
}

mod raw_as_text {
    //! Raw input is shown as text where it is UTF-8, with invalid bytes replaced.
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(raw: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(raw))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        String::deserialize(d).map(String::into_bytes)
    }
}

/// A normalized field events are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityField {
    Host,
    User,
}

/// The roles a token can hold. Each endpoint requires one; `admin` holds them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Analyst,
    Approver,
    Admin,
    Ingest,
    GatewayClient,
    /// Reads the audit ledger, its proofs and exports; nothing else.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Viewer,
        Role::Analyst,
        Role::Approver,
        Role::Admin,
        Role::Ingest,
        Role::GatewayClient,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
            Role::GatewayClient => "gateway-client",
            Role::Auditor => "auditor",
        }
    }

    /// Whether a token holding `self` may use an endpoint that requires `required`.
    /// `admin` may do everything; `analyst` and `approver` may also read what `viewer` reads.
    pub fn grants(self, required: Role) -> bool {
        self == required
            || self == Role::Admin
            || (required == Role::Viewer && matches!(self, Role::Analyst | Role::Approver))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!(
                "unknown role `{s}` (expected one of viewer, analyst, approver, admin, ingest, gateway-client, auditor)"
            )
        })
    }
}

/// An API token as stored: only the SHA-256 of the secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token secret.
    #[serde(skip_serializing)]
    pub hash: String,
    pub created: Timestamp,
    pub revoked: bool,
    /// The person the token acts for: approvals count people, not tokens. Named when it was
    /// created, else the person who created it; `None` for tokens from before owners existed
    /// (each then counts as a person of its own).
    #[serde(default)]
    pub owner: Option<String>,
    /// The person who created it (a token made by a voter after an approval opened cannot
    /// vote on it).
    #[serde(default)]
    pub created_by: Option<String>,
}

/// Storage for everything Rempart keeps.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores events; durable once this returns `Ok`. All or nothing; an event whose id is
    /// already stored is skipped, so that a batch delivered again (a bus redelivering after a
    /// worker died) is stored once.
    fn insert_events<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<()>>;
    /// Stores input that could not be decoded; an item whose id is already stored is skipped.
    fn quarantine<'a>(&'a self, items: &'a [Quarantined]) -> BoxFuture<'a, Result<()>>;
    /// Events matching `query`, newest first.
    fn query_events<'a>(&'a self, query: &'a EventQuery) -> BoxFuture<'a, Result<Vec<Event>>>;
    /// [`Store::query_events`], stopped with [`StoreError::Interrupted`] if it runs longer than
    /// `budget` (a search with no match scans every event: people's searches must not hold a
    /// reader, or the machine, for minutes). A store that cannot stop a query runs it whole.
    fn query_events_within<'a>(
        &'a self,
        query: &'a EventQuery,
        budget: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<Event>>> {
        let _ = budget;
        self.query_events(query)
    }
    /// One event by id.
    fn get_event(&self, id: EventId) -> BoxFuture<'_, Result<Option<Event>>>;
    /// How many events are stored.
    fn count_events(&self) -> BoxFuture<'_, Result<u64>>;
    /// How many events in `[since, until)` name `value` as their normalized `field` (`host`
    /// or `user`, case-insensitively; a host also under any domain, `ws-01.corp.example`), by
    /// index: what an entity's history costs must not grow with the store.
    fn count_entity_events<'a>(
        &'a self,
        field: EntityField,
        value: &'a str,
        since: Timestamp,
        until: Timestamp,
    ) -> BoxFuture<'a, Result<u64>>;
    /// Quarantined input, newest first, from past `before` (the `(received, id)` of the last
    /// item of the previous page).
    fn list_quarantine(&self, before: Option<Position>, limit: u32) -> BoxFuture<'_, Result<Vec<Quarantined>>>;
    /// How many quarantined items are stored.
    fn count_quarantine(&self) -> BoxFuture<'_, Result<u64>>;
    /// Deletes events that happened before `before`; returns how many.
    fn prune_events(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>>;
    fn create_token<'a>(&'a self, token: &'a TokenRecord) -> BoxFuture<'a, Result<()>>;
    /// The live (not revoked) token whose secret hashes to `hash`.
    fn find_token<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<TokenRecord>>>;
    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>>>;
    /// Revokes a token by id; `false` if there is no such token.
    fn revoke_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Stores alerts, skipping those whose id is already stored (alert ids derive from the rule
    /// and the event, so a redelivered event never doubles an alert); returns the ids newly
    /// stored, which are the only ones to record and correlate.
    fn insert_alerts<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Result<Vec<EventId>>>;
    /// Alerts in a time range (of their events), newest first.
    fn query_alerts<'a>(&'a self, query: &'a AlertQuery) -> BoxFuture<'a, Result<Vec<Alert>>>;
    /// Whether the store answers and has reported no damage (for `/readyz`).
    fn ping(&self) -> BoxFuture<'_, Result<()>>;
    /// Checks the store's files for damage (SQLite's `quick_check`), once at a server's start;
    /// `Err(StoreError::Damaged)` names what is wrong. PostgreSQL checks its own pages.
    fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Takes the lease `name` (the right to be the one process doing something, such as
    /// correlating incidents) if no live process holds it; `None` if one does. It is held as
    /// long as the returned [`Lease`] and the session behind it live: a process killed loses it
    /// at once. The embedded store serves one process, which always holds every lease.
    fn lease<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>>> {
        let _ = name;
        Box::pin(async { Ok(Some(Box::new(SoleProcess) as Box<dyn Lease>)) })
    }
    /// The process holding lease `name` (its session's application name), if any is held by
    /// a live process; the embedded store does not know (`None`).
    fn lease_holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let _ = name;
        Box::pin(async { Ok(None) })
    }
    /// Records that a process of the cluster is alive (a server does so every few seconds);
    /// the embedded store has one process and keeps nothing.
    fn member_beat<'a>(&'a self, member: &'a Member) -> BoxFuture<'a, Result<()>> {
        let _ = member;
        Box::pin(async { Ok(()) })
    }
    /// Forgets a process that stopped.
    fn member_leave<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = id;
        Box::pin(async { Ok(()) })
    }
    /// The processes that have recorded themselves, with when each was last seen.
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Saves a detector's state (a snapshot) under `name`, replacing the last.
    fn state_put<'a>(
        &'a self,
        name: &'a str,
        state: &'a serde_json::Value,
        updated: Timestamp,
    ) -> BoxFuture<'a, Result<()>>;
    /// A detector's saved state.
    fn state_get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<serde_json::Value>>>;
    /// The erasure epoch: it advances when an erasure begins, so that it is odd while one
    /// rewrites the store, and again when it ends. A process keeping state in memory that the
    /// store also holds (a checkpoint) learns from it that an erasure rewrote what it loaded.
    fn erasure_epoch(&self) -> BoxFuture<'_, Result<Epoch>>;
    /// [`Store::state_put`], only while the erasure epoch is still `epoch`, the one the state
    /// was loaded at: a state loaded before an erasure began never writes over what the
    /// erasure rewrote. (A process loads only once no erasure runs, so its epoch is even,
    /// unless it waited out an erasure whose process died.) Returns whether it was saved.
    fn state_put_at<'a>(
        &'a self,
        name: &'a str,
        state: &'a serde_json::Value,
        updated: Timestamp,
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<bool>>;
}

/// An erasure epoch ([`Store::erasure_epoch`]) and since when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    pub epoch: u64,
    pub since: Timestamp,
}

impl Epoch {
    /// The epoch of a store no erasure ever ran on.
    pub const FIRST: Epoch = Epoch {
        epoch: 0,
        since: Timestamp::UNIX_EPOCH,
    };

    /// Whether an erasure is rewriting the store.
    pub fn erasing(self) -> bool {
        self.epoch % 2 == 1
    }

    /// The next epoch, from `now`.
    pub fn next(self, now: Timestamp) -> Epoch {
        Epoch {
            epoch: self.epoch + 1,
            since: now,
        }
    }
}

/// Where the erasure epoch is kept, among the detectors' states.
pub const EPOCH_STATE: &str = "erasure-epoch";

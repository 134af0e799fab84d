//! Storage of response: playbook runs, approvals, the actions performed (for idempotency and
//! hourly limits) and each incident's regulatory assessment. Runs, approvals and assessments
//! are kept whole as JSON (`rempart-respond` owns their shapes) with the columns queries
//! filter on beside them.

use jiff::Timestamp;
use rempart_model::EventId;
use serde_json::Value;

use crate::{BoxFuture, Result};

/// A playbook run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: EventId,
    pub incident: EventId,
    pub playbook: String,
    pub status: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub body: Value,
}

/// An approval as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRow {
    pub id: EventId,
    pub run: EventId,
    pub status: String,
    pub created: Timestamp,
    pub deadline: Timestamp,
    pub body: Value,
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    pub incident: Option<EventId>,
    /// Only runs in these statuses; all when empty.
    pub status: Vec<String>,
    /// Only runs ordered after this one, newest first: the `(created, id)` of the last run of
    /// the previous page.
    pub before: Option<crate::Position>,
    pub limit: u32,
}

/// One action performed, or being performed, by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    /// The action's idempotency key.
    pub key: String,
    pub run: EventId,
    pub playbook: String,
    pub action: String,
    pub time: Timestamp,
    /// `started`, then how it ended.
    pub outcome: String,
}

/// What [`ResponseStore::exclusive`] holds; dropping it lets the next process in.
pub type Exclusive = Box<dyn std::any::Any + Send>;

pub trait ResponseStore: Send + Sync + std::fmt::Debug {
    /// Writes runs and approvals together, all or nothing.
    fn response_write<'a>(&'a self, runs: &'a [RunRow], approvals: &'a [ApprovalRow]) -> BoxFuture<'a, Result<()>>;
    fn run_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<RunRow>>>;
    /// Runs by `query`, newest first.
    fn runs_list<'a>(&'a self, query: &'a RunQuery) -> BoxFuture<'a, Result<Vec<RunRow>>>;
    fn approval_get(&self, id: EventId) -> BoxFuture<'_, Result<Option<ApprovalRow>>>;
    /// Approvals in `status` (all when `None`), oldest first, from past `after` (the
    /// `(created, id)` of the last approval of the previous page).
    fn approvals_list<'a>(
        &'a self,
        status: Option<&'a str>,
        after: Option<crate::Position>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<ApprovalRow>>>;
    /// Records an action as started; `false` if its key was already recorded (it ran, or is
    /// running, and must not run twice).
    fn action_begin<'a>(&'a self, action: &'a ActionRow) -> BoxFuture<'a, Result<bool>>;
    /// Records how an action ended; an action that failed can begin again.
    fn action_end<'a>(&'a self, key: &'a str, outcome: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Actions of `playbook` of kind `action` begun at or after `since` that did not fail
    /// (started or succeeded): what an hourly limit counts.
    fn actions_count<'a>(&'a self, playbook: &'a str, action: &'a str, since: Timestamp) -> BoxFuture<'a, Result<u64>>;
    /// Waits until no other process holds `name`, and holds it until the returned value is
    /// dropped: counting against an hourly limit and recording what it admits happen under it,
    /// so that processes deciding at once cannot together overshoot the limit. The embedded
    /// store has one process (whose own lock suffices): nothing to wait for.
    fn exclusive<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Exclusive>> {
        let _ = name;
        Box::pin(async { Ok(Box::new(()) as Exclusive) })
    }
    fn assessment_put<'a>(
        &'a self,
        incident: EventId,
        body: &'a Value,
        updated: Timestamp,
    ) -> BoxFuture<'a, Result<()>>;
    fn assessment_get(&self, incident: EventId) -> BoxFuture<'_, Result<Option<Value>>>;
    /// Every incident's assessment.
    fn assessments_all(&self) -> BoxFuture<'_, Result<Vec<(EventId, Value)>>>;
}

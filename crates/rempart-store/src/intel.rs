//! Storage of threat-intelligence indicators: each kept whole as JSON (the `rempart-intel`
//! crate owns its shape), keyed by source and id, replaced when imported again.

use jiff::Timestamp;

use crate::{BoxFuture, Result};

/// One stored indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelRecord {
    /// Where it came from (`stix:file.json`, `misp:…`, `taxii:…`).
    pub source: String,
    /// The source's own id.
    pub id: String,
    /// The indicator, as JSON.
    pub body: String,
    pub imported: Timestamp,
}

pub trait IntelStore: Send + Sync + std::fmt::Debug {
    /// Stores indicators, replacing those with the same source and id; returns how many.
    fn intel_put<'a>(&'a self, records: &'a [IntelRecord]) -> BoxFuture<'a, Result<u64>>;
    /// Every stored indicator.
    fn intel_all(&self) -> BoxFuture<'_, Result<Vec<IntelRecord>>>;
    /// How many indicators are stored, and when the last import was (to notice a new one).
    fn intel_state(&self) -> BoxFuture<'_, Result<(u64, Option<Timestamp>)>>;
}

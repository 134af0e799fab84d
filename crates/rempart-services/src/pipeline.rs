//! From decoded items to durable storage, shared by the HTTP and syslog sources, the command
//! line's ingest and the cluster's detect processes.

use std::collections::BTreeMap;
use std::time::Instant;

use jiff::Timestamp;
use rempart_audit::{Draft, Ledger, kind};
use rempart_detect::RuleSet;
use rempart_ingest::{Decoded, Rejection};
use rempart_model::{Alert, Event, EventId};
use rempart_store::{Quarantined, Store, StoreError};

use crate::metrics::Metrics;

/// What runs over everything ingested: the rules, indicators and baselines in force.
#[derive(Debug, Clone, Default)]
pub struct Detectors {
    pub rules: Option<std::sync::Arc<RuleSet>>,
    pub intel: Option<std::sync::Arc<rempart_intel::IocIndex>>,
    pub anomaly: Option<std::sync::Arc<crate::anomaly::Anomaly>>,
}

/// Where a cluster's detect process sends a batch's events after detection, by index in the
/// batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Onward {
    /// The events each Sigma correlation partition's owner needs.
    pub partitions: BTreeMap<u32, Vec<usize>>,
    /// The events the anomaly detectors look at, for their owner.
    pub anomaly: Vec<usize>,
}

/// A batch of decoded items on its way to the store.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejection>,
    /// Alerts raised on `events` by [`Batch::detect`].
    pub alerts: Vec<Alert>,
}

impl Batch {
    pub fn push(&mut self, item: Decoded) {
        match item {
            Decoded::Event(e) => self.events.push(*e),
            Decoded::Rejected(r) => self.rejected.push(r),
        }
    }

    pub fn len(&self) -> usize {
        self.events.len() + self.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events per format, for summaries.
    pub fn by_format(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for e in &self.events {
            *m.entry(e.format.as_str()).or_insert(0) += 1;
        }
        m
    }

    /// Runs every detector in `with` over the batch's events (CPU-bound: call it off the
    /// async workers for large batches).
    pub fn detect_with(&mut self, with: &Detectors) {
        if let Some(rules) = &with.rules {
            self.detect(rules);
        }
        if let Some(intel) = &with.intel {
            self.match_intel(intel);
        }
        if let Some(anomaly) = &with.anomaly {
            self.baselines(anomaly);
        }
    }

    /// Runs every detector in `with` over the batch's events as a cluster's detect process
    /// does: Sigma correlations are left to the owners of their partitions (of
    /// `partitions`), and the anomaly detectors, which learn from every event in order, to
    /// their one owner. Returns which events go on to each.
    pub fn detect_partitioned(&mut self, with: &Detectors, partitions: u32) -> Onward {
        let mut onward = Onward::default();
        if let Some(rules) = &with.rules {
            let (alerts, to) = rules.partitioned_alerts(&self.events, partitions, Timestamp::now());
            self.alerts.extend(alerts);
            onward.partitions = to;
        }
        if let Some(intel) = &with.intel {
            self.match_intel(intel);
        }
        if let Some(anomaly) = &with.anomaly {
            onward.anomaly = (0..self.events.len())
                .filter(|&i| anomaly.looks_at(&self.events[i]))
                .collect();
        }
        onward
    }

    /// Runs detection rules over the batch's events (CPU-bound: call it off the async
    /// workers for large batches).
    pub fn detect(&mut self, rules: &RuleSet) {
        self.alerts.extend(rules.alerts(&self.events, Timestamp::now()));
    }

    /// Runs the batch's events through the per-entity baselines.
    pub fn baselines(&mut self, anomaly: &crate::anomaly::Anomaly) {
        self.alerts.extend(anomaly.alerts(&self.events, Timestamp::now()));
    }

    /// Matches the batch's events against threat-intelligence indicators.
    pub fn match_intel(&mut self, index: &rempart_intel::IocIndex) {
        self.alerts.extend(index.alerts(&self.events, Timestamp::now()));
    }

    /// Counts the batch's events and rejections by format and source.
    pub fn count(&self, metrics: &Metrics, source_kind: &'static str) {
        for (format, n) in self.by_format() {
            metrics
                .events_ingested
                .get_or_create(&vec![("format", format.to_owned()), ("source", source_kind.to_owned())])
                .inc_by(n);
        }
        if !self.rejected.is_empty() {
            metrics
                .events_rejected
                .get_or_create(&vec![("source", source_kind.to_owned())])
                .inc_by(self.rejected.len() as u64);
        }
    }

    /// Writes events, then quarantine, then alerts; returns only when all are durable. Then
    /// records each alert in the ledger and groups the alerts into incidents: the events are already safe, so a ledger failure is
    /// reported (log and metric) rather than making the sender retry and duplicate them.
    pub async fn commit(
        &self,
        store: &dyn Store,
        ledger: &Ledger,
        metrics: &Metrics,
        source_kind: &'static str,
        incidents: Option<&crate::incidents::Incidents>,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        store.insert_events(&self.events).await?;
        store.quarantine(&quarantined(&self.rejected)).await?;
        let new = new_alerts(&self.alerts, &store.insert_alerts(&self.alerts).await?);
        metrics.store_write_seconds.observe(started.elapsed().as_secs_f64());
        if !new.is_empty()
            && let Err(e) = ledger.append_all(new.iter().map(alert_record).collect()).await
        {
            metrics.audit_failures.inc();
            tracing::error!(error = %e, alerts = new.len(), "alerts stored but not recorded in the ledger");
        }
        // The alerts are durable: a correlation failure is reported, not retried by the sender.
        if let Some(incidents) = incidents {
            match incidents.observe(&new, &self.events).await {
                Ok(update) => {
                    metrics.incidents.inc_by(update.created() as u64);
                }
                Err(e) => {
                    metrics.incident_failures.inc();
                    tracing::error!(error = %e, alerts = self.alerts.len(), "alerts stored but not grouped into incidents");
                }
            }
        }
        self.count(metrics, source_kind);
        for a in &new {
            metrics
                .alerts
                .get_or_create(&vec![("level", a.level.clone().unwrap_or_else(|| "none".to_owned()))])
                .inc();
        }
        Ok(())
    }
}

/// Why a batch was not delivered; the sender is not acknowledged and retries.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] rempart_bus::BusError),
}

/// The alerts among `alerts` whose ids the store reported newly stored (once each), in their
/// order: those only are recorded, counted and correlated, so that a batch delivered again
/// raises nothing twice.
pub fn new_alerts(alerts: &[Alert], stored: &[EventId]) -> Vec<Alert> {
    if stored.len() == alerts.len() {
        return alerts.to_vec();
    }
    let mut stored: std::collections::HashSet<EventId> = stored.iter().copied().collect();
    alerts.iter().filter(|a| stored.remove(&a.id)).cloned().collect()
}

/// The ledger record of a raised alert, sealed under the key of the user (else the host) it
/// concerns, so that erasing that person erases the record's content.
pub fn alert_record(a: &Alert) -> Draft {
    let draft = Draft::new(
        "detection",
        kind::ALERT_RAISE,
        serde_json::json!({
            "alert": a.id,
            "rule_id": a.rule_id,
            "rule_title": a.rule_title,
            "level": a.level,
            "techniques": a.techniques,
            "event": a.event,
            "time": a.time,
            "host": a.host,
            "user": a.user,
        }),
    );
    match (&a.user, &a.host) {
        (Some(user), _) => draft.about(rempart_audit::subject_id("user", user)),
        (None, Some(host)) => draft.about(rempart_audit::subject_id("host", host)),
        (None, None) => draft,
    }
}

/// Rejections in their stored form.
pub fn quarantined(rejected: &[Rejection]) -> Vec<Quarantined> {
    let now = Timestamp::now();
    rejected
        .iter()
        .map(|r| Quarantined {
            id: EventId::generate(),
            received: now,
            source: r.origin.source.clone(),
            location: r.origin.location.clone(),
            reason: r.reason.clone(),
            raw: r.raw.clone(),
        })
        .collect()
}

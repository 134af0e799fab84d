//! The roles a process of a cluster runs, and the loops of the two that consume the bus.
//!
//! `serve --role all` (the default) is one process doing everything, on the embedded store or
//! a shared one, with no bus. In a cluster every process shares the PostgreSQL store and the
//! JetStream bus and serves the API and the console on its own address (reads come from the
//! shared store); besides:
//!
//! - `ingest` listens for syslog too, and hands every decoded batch to the bus;
//! - `api` serves the API and the console only (an ingest request is handed to the bus);
//! - `detect` takes batches of events off the bus (a work queue shared by every detect
//!   process), runs the rules and indicators, stores the events and alerts, passes the
//!   alerts on, and sends the events that Sigma correlations and the anomaly detectors need
//!   to their owners;
//! - `correlate` waits for the correlator lease; the one process holding it groups alerts into
//!   incidents and runs triage, approval timeouts, reporting deadlines and retention, and
//!   tells what happened to incidents on the bus. A standby takes over when the holder dies; a
//!   holder that loses the lease stops. Each `correlate` process also asks for the leases of
//!   the Sigma correlation partitions and of the anomaly detectors, and owns those it gets;
//! - `respond` takes those changes off the bus (a work queue shared by every respond process)
//!   and starts the playbooks they trigger. Hourly limits are counted and action keys claimed
//!   in the store, so processes racing on one burst overshoot no limit and act once.
//!
//! Each message is acknowledged only after what was done with it is committed; a message
//! delivered again (its worker died first) changes nothing, because the store skips what it
//! holds and the correlator skips alerts already in an incident.

use std::time::{Duration, Instant};

use rempart_bus::{Bus, CORRELATE, Change, DETECT, Delivery, Notice, RESPOND};
use rempart_model::EventId;
use rempart_store::Quarantined;
use tokio_util::sync::CancellationToken;

use crate::anomaly::Anomaly;
use crate::pipeline::{Batch, DeliverError, Detectors, alert_record, new_alerts};

/// What the loops of a cluster's roles work with: this process's services, without HTTP (the
/// API and the console hold the same services, and more).
#[derive(Debug, Clone)]
pub struct Services {
    pub store: std::sync::Arc<dyn rempart_store::Store>,
    pub ledger: rempart_audit::Ledger,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The detection rules in force (a reload replaces them).
    pub rules: crate::active::ActiveRules,
    /// The indicators in force (a reload replaces them).
    pub intel: crate::active::ActiveIntel,
    /// In a detect process, the anomaly detectors' settings: which events they look at.
    pub anomaly: Option<std::sync::Arc<Anomaly>>,
    pub incidents: Option<crate::incidents::Incidents>,
    pub response: Option<crate::respond::Response>,
    /// Partitions of the Sigma correlation rules' groups on the bus.
    pub correlation_partitions: u32,
}

impl Services {
    /// The rules, indicators and anomaly settings in force now.
    pub fn detectors(&self) -> Detectors {
        Detectors {
            rules: self.rules.current(),
            intel: self.intel.current(),
            anomaly: self.anomaly.clone(),
        }
    }
}

/// What a process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, in one process, without a bus.
    All,
    /// The API and console, and the syslog listeners; ingested batches go to the bus.
    Ingest,
    /// The API and console; ingested batches go to the bus.
    Api,
    /// Detection on batches from the bus.
    Detect,
    /// Incident correlation, triage, approval timeouts and retention, in the lease holder only.
    Correlate,
    /// Playbooks started on incidents' changes from the bus.
    Respond,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::All,
        Role::Ingest,
        Role::Api,
        Role::Detect,
        Role::Correlate,
        Role::Respond,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Ingest => "ingest",
            Role::Api => "api",
            Role::Detect => "detect",
            Role::Correlate => "correlate",
            Role::Respond => "respond",
        }
    }

    /// Whether this role needs the bus.
    pub fn needs_bus(self) -> bool {
        self != Role::All
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (all, ingest, api, detect, correlate, respond)"))
    }
}

/// The lease the active correlator holds.
pub const CORRELATOR_LEASE: &str = "correlator";
/// Batches of events a detect process takes at once (each up to the servers' `max_payload`):
/// few enough that the work spreads over the workers, enough that each store transaction is
/// large.
const FETCH: usize = 4;
/// Batches of alerts the correlator takes at once.
const CORRELATE_FETCH: usize = 64;
/// Messages of incidents' changes a respond process handles at once.
const RESPOND_FETCH: usize = crate::respond::CONCURRENT_EVENTS;
/// How long a fetch waits for the first message.
const FETCH_WAIT: Duration = Duration::from_secs(1);
/// After a failure (store or bus unreachable), how long before a message comes back.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How often the correlator makes sure it still holds its lease, and a standby asks for it.
const LEASE_EVERY: Duration = Duration::from_secs(2);

/// Takes batches of events off the bus until cancelled: detects, stores, passes alerts on,
/// acknowledges.
pub async fn detect(state: Services, bus: Bus, cancel: CancellationToken) {
    let Some(inbox) = inbox(&bus, DETECT, &cancel).await else {
        return;
    };
    tracing::info!("detecting batches from the bus");
    while let Some(deliveries) = next(&inbox, FETCH, &cancel).await {
        if deliveries.is_empty() {
            continue;
        }
        // Every message fetched, detected and stored together: one transaction each for
        // events, quarantine and alerts, however many messages.
        let outcome = detect_batch(&state, &bus, &deliveries).await;
        settle_all(&state, &deliveries, "events", outcome).await;
    }
}

/// Settles every message with one outcome, the acknowledgements in flight together.
async fn settle_all(
    state: &Services,
    deliveries: &[Delivery],
    stream: &'static str,
    outcome: Result<(), DeliverError>,
) {
    let outcome = outcome.map_err(|e| e.to_string());
    futures_util::future::join_all(deliveries.iter().map(|d| {
        let outcome = outcome.clone().map_err(|e| rempart_bus::BusError::Bus(e).into());
        settle(state, d, stream, outcome)
    }))
    .await;
}

/// Acknowledges a message done, or gives it back for later.
async fn settle(state: &Services, d: &Delivery, stream: &'static str, outcome: Result<(), DeliverError>) {
    let (sequence, delivered) = d.position();
    match outcome {
        Ok(()) => match d.ack().await {
            Ok(()) => {
                let delivery = if delivered > 1 { "redelivered" } else { "first" };
                state
                    .metrics
                    .bus_messages
                    .get_or_create(&vec![("stream", stream.to_owned()), ("delivery", delivery.to_owned())])
                    .inc();
            }
            // Done but not acknowledged: it comes back, and is skipped as already done.
            Err(e) => tracing::warn!(error = %e, sequence, "message done but not acknowledged"),
        },
        Err(e) => {
            tracing::warn!(error = %e, sequence, delivered, "message not done; it will be delivered again");
            if let Err(e) = d.retry_after(RETRY_AFTER).await {
                tracing::warn!(error = %e, sequence, "cannot give the message back (it returns after the ack wait)");
            }
        }
    }
}

/// Batches of events: detection, then events, quarantine and alerts stored (skipping what a
/// previous delivery stored), the new alerts recorded in the ledger, every alert passed on
/// (marked as possibly seen when a message was delivered before).
async fn detect_batch(state: &Services, bus: &Bus, deliveries: &[Delivery]) -> Result<(), DeliverError> {
    let mut batch = Batch::default();
    let mut quarantine: Vec<Quarantined> = Vec::new();
    let mut again = false;
    // Where each message's events end in the batch.
    let mut ends: Vec<usize> = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        match d.events() {
            Ok(wire) => {
                batch.events.extend(wire.events);
                ends.push(batch.events.len());
                quarantine.extend(wire.rejected.into_iter().map(rempart_bus::Rejected::into_quarantined));
                again |= d.position().1 > 1;
            }
            Err(e) => keep_undecodable(state, d, e).await?,
        }
    }
    let detectors = state.detectors();
    let partitions = state.correlation_partitions;
    let (batch, onward) = tokio::task::spawn_blocking(move || {
        let onward = batch.detect_partitioned(&detectors, partitions);
        (batch, onward)
    })
    .await
    .map_err(|e| rempart_bus::BusError::Bus(format!("detection task failed: {e}")))?;
    let started = Instant::now();
    state.store.insert_events(&batch.events).await?;
    state.store.quarantine(&quarantine).await?;
    let stored = state.store.insert_alerts(&batch.alerts).await?;
    state
        .metrics
        .store_write_seconds
        .observe(started.elapsed().as_secs_f64());
    record_new(state, &batch.alerts, &stored).await;
    // Every alert of the batch, not only the new ones: a previous delivery may have stored
    // them and died before passing them on. The correlator skips those it has seen.
    if !batch.alerts.is_empty() {
        bus.publish_alerts(&batch.alerts, &batch.events, again).await?;
    }
    // The events the correlation rules need, to the owners of their groups' partitions, and
    // those the anomaly detectors look at, to theirs: message by message as they came, so
    // that a message delivered again (its worker died before acknowledging it), whatever it
    // is fetched with then, is sent on as the same messages, which JetStream drops as
    // duplicates instead of letting an owner count its events twice.
    for part in per_message(&ends) {
        let pick = |indexes: &[usize]| -> Vec<rempart_model::Event> {
            indexes
                .iter()
                .filter(|i| part.contains(i))
                .map(|&i| batch.events[i].clone())
                .collect()
        };
        for (partition, indexes) in &onward.partitions {
            let events = pick(indexes);
            if !events.is_empty() {
                bus.publish_partition(*partition, &events).await?;
            }
        }
        let events = pick(&onward.anomaly);
        if !events.is_empty() {
            bus.publish_anomaly(&events).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_remembers_the_last_messages_done() {
        let mut c = Checkpoint::default();
        assert!(!c.done(Some("p1-a")) && !c.done(None));
        for n in 0..RECENT_IDS + 10 {
            c.recent = c.remember(Some(&format!("p1-{n}")));
        }
        assert_eq!(c.recent.len(), RECENT_IDS);
        assert!(c.done(Some(&format!("p1-{}", RECENT_IDS + 9))));
        assert!(!c.done(Some("p1-0")), "the oldest are forgotten");
        assert_eq!(per_message(&[2, 2, 5]), vec![0..2, 2..2, 2..5]);
    }
}

/// The ranges of a batch's events that each message brought, from where each ends.
fn per_message(ends: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let r = start..end;
            start = end;
            r
        })
        .collect()
}

/// Records in the ledger, and counts, the alerts of `alerts` the store newly took (`stored`):
/// one delivered again, already stored, is neither recorded nor counted twice.
async fn record_new(state: &Services, alerts: &[rempart_model::Alert], stored: &[EventId]) {
    let new = new_alerts(alerts, stored);
    if !new.is_empty()
        && let Err(e) = state.ledger.append_all(new.iter().map(alert_record).collect()).await
    {
        state.metrics.audit_failures.inc();
        tracing::error!(error = %e, alerts = new.len(), "alerts stored but not recorded in the ledger");
    }
    for a in &new {
        state
            .metrics
            .alerts
            .get_or_create(&vec![("level", a.level.clone().unwrap_or_else(|| "none".to_owned()))])
            .inc();
    }
}

/// A message that does not decode is input like any other: kept in quarantine with its bytes.
async fn keep_undecodable(
    state: &Services,
    d: &Delivery,
    error: rempart_bus::BusError,
) -> Result<(), rempart_store::StoreError> {
    let (sequence, _) = d.position();
    tracing::error!(%error, sequence, "bus message does not decode; quarantined");
    state
        .store
        .quarantine(&[Quarantined {
            id: EventId::generate(),
            received: jiff::Timestamp::now(),
            source: "bus".to_owned(),
            location: Some(format!("message {sequence}")),
            reason: error.to_string(),
            raw: d.payload().to_vec(),
        }])
        .await
}

/// Waits for the correlator lease, then (in the holder only) calls `lead` once and groups the
/// alerts from the bus into incidents until cancelled. Returns an error when the lease is
/// lost, so that the process stops everything it started as the holder.
pub async fn correlate(
    state: Services,
    bus: Bus,
    cancel: CancellationToken,
    lead: impl FnOnce(),
) -> Result<(), String> {
    let Some(incidents) = state.incidents.clone() else {
        return Err("the correlate role needs the incident service".into());
    };
    let mut announced = false;
    let mut lease = loop {
        match state.store.lease(CORRELATOR_LEASE).await {
            Ok(Some(lease)) => break lease,
            Ok(None) if !announced => {
                tracing::info!("standing by: another process holds the correlator lease");
                announced = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot ask for the correlator lease"),
        }
        if sleep_or_cancel(&cancel, LEASE_EVERY).await {
            return Ok(());
        }
    };
    // What the previous holder wrote is the truth now.
    let Some(mut epoch) = settled_epoch(&*state.store, &cancel)
        .await
        .map_err(|e| format!("cannot read the erasure epoch: {e}"))?
    else {
        return Ok(());
    };
    incidents
        .reload()
        .await
        .map_err(|e| format!("cannot load the open incidents: {e}"))?;
    tracing::info!("this process holds the correlator lease: correlating");
    match retell(&state, &bus).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(incidents = n, "incidents told again to the respond processes"),
        Err(e) => tracing::warn!(error = %e, "cannot tell recent incidents again"),
    }
    lead();
    let Some(inbox) = inbox(&bus, CORRELATE, &cancel).await else {
        return Ok(());
    };
    let mut checked = Instant::now();
    while !cancel.is_cancelled() {
        if checked.elapsed() >= LEASE_EVERY {
            lease
                .check()
                .await
                .map_err(|e| format!("lost the correlator lease ({e}): stopping"))?;
            checked = Instant::now();
        }
        let Some(deliveries) = next(&inbox, CORRELATE_FETCH, &cancel).await else {
            return Ok(());
        };
        if deliveries.is_empty() {
            continue;
        }
        // An erasure rewrote the incidents since they were loaded: load them again, once it
        // is over, before correlating anything into them.
        let outcome = match state.store.erasure_epoch().await {
            Ok(now) if now == epoch => correlate_batch(&state, &incidents, &deliveries).await,
            Ok(_) => match reload_after_erasure(&state, &incidents, &cancel).await {
                Ok(Some(now)) => {
                    epoch = now;
                    correlate_batch(&state, &incidents, &deliveries).await
                }
                Ok(None) => return Ok(()),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
        settle_all(&state, &deliveries, "alerts", outcome).await;
    }
    Ok(())
}

/// The open incidents loaded again once an erasure is over; the epoch they were loaded at
/// (`None` if cancelled first).
async fn reload_after_erasure(
    state: &Services,
    incidents: &crate::incidents::Incidents,
    cancel: &CancellationToken,
) -> Result<Option<rempart_store::Epoch>, rempart_store::StoreError> {
    let Some(epoch) = settled_epoch(&*state.store, cancel).await? else {
        return Ok(None);
    };
    incidents.reload().await?;
    tracing::info!(epoch = epoch.epoch, "open incidents loaded again after an erasure");
    Ok(Some(epoch))
}

/// Batches of alerts: correlated, except those already in an incident when they may have
/// been seen (the message, or the events' message before it, was delivered before).
async fn correlate_batch(
    state: &Services,
    incidents: &crate::incidents::Incidents,
    deliveries: &[Delivery],
) -> Result<(), DeliverError> {
    let mut fresh = Vec::new();
    let mut events = Vec::new();
    for d in deliveries {
        let wire = match d.alerts() {
            Ok(wire) => wire,
            Err(e) => {
                keep_undecodable(state, d, e).await?;
                continue;
            }
        };
        events.extend(wire.events);
        if wire.again || d.position().1 > 1 {
            for a in wire.alerts {
                if incidents.store().incident_of_alert(a.id).await?.is_none() {
                    fresh.push(a);
                }
            }
        } else {
            fresh.extend(wire.alerts);
        }
    }
    // Analysts may have changed incidents through other processes meanwhile.
    if !fresh.is_empty() {
        incidents.refresh().await?;
    }
    match incidents.observe(&fresh, &events).await {
        Ok(update) => {
            state.metrics.incidents.inc_by(update.created() as u64);
            Ok(())
        }
        Err(crate::incidents::IncidentError::Store(e)) => Err(e.into()),
        Err(e) => {
            // Not a passing failure (the ledger refused, say): reported, not retried forever.
            state.metrics.incident_failures.inc();
            tracing::error!(error = %e, alerts = fresh.len(), "alerts stored but not grouped into incidents");
            Ok(())
        }
    }
}

/// How long an owner waits for an erasure to end before it loads its checkpoint anyway (the
/// process erasing died: the epoch stays odd until an erasure runs again).
const ERASURE_WAIT: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// The erasure epoch to load a checkpoint at: once no erasure rewrites the store (see
/// [`ERASURE_WAIT`]); `None` if cancelled first.
async fn settled_epoch(
    store: &dyn rempart_store::Store,
    cancel: &CancellationToken,
) -> Result<Option<rempart_store::Epoch>, rempart_store::StoreError> {
    loop {
        let epoch = store.erasure_epoch().await?;
        if !epoch.erasing() || jiff::Timestamp::now().duration_since(epoch.since) > ERASURE_WAIT {
            return Ok(Some(epoch));
        }
        if sleep_or_cancel(cancel, Duration::from_millis(250)).await {
            return Ok(None);
        }
    }
}

/// The error of a save refused because an erasure rewrote the checkpoint since it was loaded.
const ERASED: &str = "an erasure rewrote the checkpoint: starting again from it";

/// The lease, and the saved state, of a Sigma correlation partition.
pub fn partition_name(partition: u32) -> String {
    format!("sigma-correlation-{partition}")
}

/// Why a partition's owner stopped.
enum Stop {
    /// Cancelled: the process is stopping.
    Cancelled,
    /// The lease is lost: another process may own the partition now.
    Lost(String),
    /// A batch failed (store or bus): start again from the checkpoint, holding the lease.
    Failed(String),
}

/// Owns the Sigma correlation partitions this process can take, until cancelled: for each, it
/// waits for the partition's lease, and as its owner takes the partition's events off the bus
/// in order, correlates them in the partition's windows, stores and passes on the alerts, and
/// checkpoints the windows with the last sequence done before acknowledging. A new owner
/// starts from the checkpoint: what the last owner did after it is done again, to the same
/// alerts (their ids derive from the correlation and the event), which the store skips.
pub async fn own_partitions(state: Services, bus: Bus, cancel: CancellationToken) {
    let mut owners = tokio::task::JoinSet::new();
    for partition in 0..state.correlation_partitions {
        owners.spawn(own_partition(state.clone(), bus.clone(), cancel.clone(), partition));
    }
    while owners.join_next().await.is_some() {}
}

async fn own_partition(state: Services, bus: Bus, cancel: CancellationToken, partition: u32) {
    let name = partition_name(partition);
    loop {
        let mut lease = loop {
            match state.store.lease(&name).await {
                Ok(Some(lease)) => break lease,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, partition, "cannot ask for a correlation partition's lease"),
            }
            if sleep_or_cancel(&cancel, LEASE_EVERY).await {
                return;
            }
        };
        tracing::info!(partition, "this process owns a Sigma correlation partition");
        loop {
            match run_partition(&state, &bus, &cancel, partition, &mut *lease).await {
                Stop::Cancelled => return,
                Stop::Lost(e) => {
                    tracing::warn!(partition, error = %e, "lost a correlation partition's lease");
                    break;
                }
                Stop::Failed(e) => {
                    tracing::warn!(partition, error = %e, "correlation partition starts again from its checkpoint");
                    if sleep_or_cancel(&cancel, RETRY_AFTER).await {
                        return;
                    }
                }
            }
        }
    }
}

/// A partition's checkpoint: the last sequence done and the windows after it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    sequence: u64,
    windows: serde_json::Value,
    /// The ids of the last messages done: the same events published again (their detect
    /// message delivered twice after JetStream forgot the first publish) count once.
    #[serde(default)]
    recent: std::collections::VecDeque<String>,
}

/// Message ids a checkpoint remembers.
const RECENT_IDS: usize = 256;

impl Checkpoint {
    /// Whether message `id` was done already.
    fn done(&self, id: Option<&str>) -> bool {
        id.is_some_and(|id| self.recent.iter().any(|r| r == id))
    }

    /// `recent` with `id` remembered.
    fn remember(&self, id: Option<&str>) -> std::collections::VecDeque<String> {
        let mut recent = self.recent.clone();
        if let Some(id) = id {
            recent.push_back(id.to_owned());
            while recent.len() > RECENT_IDS {
                recent.pop_front();
            }
        }
        recent
    }
}

async fn run_partition(
    state: &Services,
    bus: &Bus,
    cancel: &CancellationToken,
    partition: u32,
    lease: &mut dyn rempart_store::Lease,
) -> Stop {
    let name = partition_name(partition);
    let epoch = match settled_epoch(&*state.store, cancel).await {
        Ok(Some(epoch)) => epoch,
        Ok(None) => return Stop::Cancelled,
        Err(e) => return Stop::Failed(format!("cannot read the erasure epoch: {e}")),
    };
    let saved = match state.store.state_get(&name).await {
        Ok(saved) => saved,
        Err(e) => return Stop::Failed(format!("cannot read the checkpoint: {e}")),
    };
    let mut checkpoint: Checkpoint = saved.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    let inbox = match bus.partition_inbox(partition).await {
        Ok(inbox) => inbox,
        Err(e) => return Stop::Failed(e.to_string()),
    };
    // The rules in force, and their windows; a reload starts from the same windows.
    let mut rules = state.rules.current();
    let mut correlator = rules.as_ref().and_then(|r| r.correlator());
    if let Some(c) = correlator.as_mut()
        && !checkpoint.windows.is_null()
        && !c.restore(checkpoint.windows.clone())
    {
        tracing::warn!(
            partition,
            "a checkpoint this release cannot read: the windows start empty"
        );
    }
    let mut checked = Instant::now();
    loop {
        if checked.elapsed() >= LEASE_EVERY {
            if let Err(e) = lease.check().await {
                return Stop::Lost(e.to_string());
            }
            checked = Instant::now();
        }
        let now = state.rules.current();
        if !same_rules(&now, &rules) {
            let windows = correlator.as_ref().map(rempart_detect::Correlator::snapshot);
            correlator = now.as_ref().and_then(|r| r.correlator());
            if let (Some(c), Some(w)) = (correlator.as_mut(), windows) {
                c.restore(w);
            }
            rules = now;
        }
        let Some(deliveries) = next(&inbox, 1, cancel).await else {
            return Stop::Cancelled;
        };
        for d in &deliveries {
            let outcome = correlate_partition_message(
                state,
                bus,
                d,
                (partition, rules.as_deref(), correlator.as_mut()),
                (&mut checkpoint, epoch),
            )
            .await;
            match outcome {
                Ok(()) => settle(state, d, "sigma", Ok(())).await,
                Err(e) => {
                    let message = e.to_string();
                    settle(state, d, "sigma", Err(e)).await;
                    return Stop::Failed(message);
                }
            }
        }
    }
}

fn same_rules(
    a: &Option<std::sync::Arc<rempart_detect::RuleSet>>,
    b: &Option<std::sync::Arc<rempart_detect::RuleSet>>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// One message of a partition: skipped when the checkpoint is past it; else its events
/// correlated, the alerts stored, recorded and passed on, and the checkpoint saved.
async fn correlate_partition_message(
    state: &Services,
    bus: &Bus,
    d: &Delivery,
    (partition, rules, correlator): (
        u32,
        Option<&rempart_detect::RuleSet>,
        Option<&mut rempart_detect::Correlator>,
    ),
    (checkpoint, epoch): (&mut Checkpoint, rempart_store::Epoch),
) -> Result<(), DeliverError> {
    let (sequence, _) = d.position();
    if sequence <= checkpoint.sequence || checkpoint.done(d.message_id()) {
        return Ok(());
    }
    let events = match d.events() {
        Ok(wire) => wire.events,
        Err(e) => {
            keep_undecodable(state, d, e).await?;
            Vec::new()
        }
    };
    let (Some(rules), Some(correlator)) = (rules, correlator) else {
        // No correlation rule in force: nothing to keep.
        return Ok(());
    };
    let alerts = rules.correlation_alerts(
        &events,
        correlator,
        partition,
        state.correlation_partitions,
        jiff::Timestamp::now(),
    );
    if !alerts.is_empty() {
        let stored = state.store.insert_alerts(&alerts).await?;
        record_new(state, &alerts, &stored).await;
        // Possibly passed on before (by an owner that died before its checkpoint).
        bus.publish_alerts(&alerts, &events, true).await?;
    }
    let next = Checkpoint {
        sequence,
        windows: correlator.snapshot(),
        recent: checkpoint.remember(d.message_id()),
    };
    let value = serde_json::to_value(&next).map_err(|e| rempart_bus::BusError::Bus(format!("checkpoint: {e}")))?;
    let saved = state
        .store
        .state_put_at(&partition_name(partition), &value, jiff::Timestamp::now(), epoch)
        .await?;
    if !saved {
        return Err(rempart_bus::BusError::Bus(ERASED.to_owned()).into());
    }
    *checkpoint = next;
    Ok(())
}

/// The lease of the anomaly detectors' owner.
pub const ANOMALY_LEASE: &str = "anomaly";
/// The owner's checkpoint in the store: the detectors' state and the last sequence in it.
const ANOMALY_CHECKPOINT: &str = "anomaly-checkpoint";
/// Messages of the anomaly stream taken at once.
const ANOMALY_FETCH: usize = 64;
/// How often the owner checkpoints while events flow (and at once when the stream is idle):
/// what a new owner reads again after a crash.
const ANOMALY_CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// The anomaly owner's checkpoint.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct AnomalyCheckpoint {
    /// The last message of the anomaly stream the state has learnt from.
    sequence: u64,
    state: serde_json::Value,
    /// The ids of the last messages learnt from: the same events sent again count once.
    #[serde(default)]
    recent: std::collections::VecDeque<String>,
}

/// The detectors, the checkpoint's sequence and its recent message ids.
type Restored = (std::sync::Arc<Anomaly>, u64, std::collections::VecDeque<String>);

/// Owns the anomaly detectors when this process holds their lease, until cancelled. The
/// detectors learn from every event in order, so one process runs them for the whole
/// cluster: the detect processes send it the events they look at, which it reads in order
/// from the stream. The owner raises the alerts, stores, records and passes them on, and
/// checkpoints the detectors' state with the last sequence in it (then the stream forgets
/// what the checkpoint holds). A new owner starts from the checkpoint and reads again what
/// the last one read after it, raising the same alerts (their ids derive from the detector
/// and the event), which the store skips.
pub async fn own_anomaly(state: Services, bus: Bus, cancel: CancellationToken, config: rempart_config::Anomaly) {
    loop {
        let mut lease = loop {
            match state.store.lease(ANOMALY_LEASE).await {
                Ok(Some(lease)) => break lease,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask for the anomaly detectors' lease"),
            }
            if sleep_or_cancel(&cancel, LEASE_EVERY).await {
                return;
            }
        };
        tracing::info!("this process owns the anomaly detectors");
        loop {
            match run_anomaly(&state, &bus, &cancel, &config, &mut *lease).await {
                Stop::Cancelled => return,
                Stop::Lost(e) => {
                    tracing::warn!(error = %e, "lost the anomaly detectors' lease");
                    break;
                }
                Stop::Failed(e) => {
                    tracing::warn!(error = %e, "the anomaly detectors start again from their checkpoint");
                    if sleep_or_cancel(&cancel, RETRY_AFTER).await {
                        return;
                    }
                }
            }
        }
    }
}

/// The detectors as the checkpoint holds them, and its sequence. With no checkpoint yet, the
/// state an embedded instance saved (one moved into a cluster keeps its baselines).
async fn anomaly_checkpoint(
    state: &Services,
    config: &rempart_config::Anomaly,
) -> Result<Restored, rempart_store::StoreError> {
    let Some(saved) = state.store.state_get(ANOMALY_CHECKPOINT).await? else {
        return Ok((Anomaly::load(&*state.store, config).await, 0, Default::default()));
    };
    let (detectors, sequence, recent) = match serde_json::from_value::<AnomalyCheckpoint>(saved) {
        Ok(c) => match Anomaly::restore(config, c.state) {
            Ok(detectors) => (detectors, c.sequence, c.recent),
            Err(e) => {
                tracing::warn!(error = %e, "the anomaly checkpoint's state does not read: the detectors start fresh");
                (Anomaly::fresh(config), c.sequence, c.recent)
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "the anomaly checkpoint does not read: the detectors start fresh");
            (Anomaly::fresh(config), 0, Default::default())
        }
    };
    Ok((std::sync::Arc::new(detectors), sequence, recent))
}

async fn run_anomaly(
    state: &Services,
    bus: &Bus,
    cancel: &CancellationToken,
    config: &rempart_config::Anomaly,
    lease: &mut dyn rempart_store::Lease,
) -> Stop {
    let epoch = match settled_epoch(&*state.store, cancel).await {
        Ok(Some(epoch)) => epoch,
        Ok(None) => return Stop::Cancelled,
        Err(e) => return Stop::Failed(format!("cannot read the erasure epoch: {e}")),
    };
    let (detectors, mut sequence, mut recent) = match anomaly_checkpoint(state, config).await {
        Ok(c) => c,
        Err(e) => return Stop::Failed(format!("cannot read the checkpoint: {e}")),
    };
    let mut reader = match bus.anomaly_reader(sequence).await {
        Ok((reader, from)) => {
            sequence = from - 1;
            reader
        }
        Err(e) => return Stop::Failed(e.to_string()),
    };
    let mut checked = Instant::now();
    let mut saved = Instant::now();
    let mut unsaved = false;
    loop {
        if checked.elapsed() >= LEASE_EVERY {
            if let Err(e) = lease.check().await {
                return Stop::Lost(e.to_string());
            }
            checked = Instant::now();
        }
        let deliveries = tokio::select! {
            () = cancel.cancelled() => {
                if unsaved && let Err(e) = anomaly_save(state, bus, &detectors, (sequence, epoch, &recent)).await {
                    tracing::warn!(error = %e, "the anomaly detectors stopped without a last checkpoint");
                }
                return Stop::Cancelled;
            }
            d = reader.next(ANOMALY_FETCH, FETCH_WAIT) => match d {
                Ok(d) => d,
                Err(e) => return Stop::Failed(e.to_string()),
            },
        };
        // Message by message, as they were sent: the detectors order events within one, so
        // the same messages give the same alerts however many are read at once.
        for d in &deliveries {
            let (at, _) = d.position();
            if at <= sequence {
                continue;
            }
            let id = d.message_id();
            if !id.is_some_and(|id| recent.iter().any(|r| r == id))
                && let Err(e) = anomaly_message(state, bus, &detectors, d).await
            {
                return Stop::Failed(e.to_string());
            }
            if let Some(id) = id {
                recent.push_back(id.to_owned());
                while recent.len() > RECENT_IDS {
                    recent.pop_front();
                }
            }
            sequence = at;
            unsaved = true;
            state
                .metrics
                .bus_messages
                .get_or_create(&vec![
                    ("stream", "anomaly".to_owned()),
                    ("delivery", "first".to_owned()),
                ])
                .inc();
        }
        if unsaved && (deliveries.is_empty() || saved.elapsed() >= ANOMALY_CHECKPOINT_EVERY) {
            if let Err(e) = anomaly_save(state, bus, &detectors, (sequence, epoch, &recent)).await {
                return Stop::Failed(e);
            }
            saved = Instant::now();
            unsaved = false;
        }
    }
}

/// One message of the anomaly stream: its events through the detectors, the alerts stored,
/// recorded and passed on.
async fn anomaly_message(
    state: &Services,
    bus: &Bus,
    detectors: &std::sync::Arc<Anomaly>,
    d: &Delivery,
) -> Result<(), DeliverError> {
    let events = match d.events() {
        Ok(wire) => wire.events,
        Err(e) => {
            keep_undecodable(state, d, e).await?;
            return Ok(());
        }
    };
    let (events, alerts) = {
        let detectors = detectors.clone();
        tokio::task::spawn_blocking(move || {
            let alerts = detectors.alerts(&events, jiff::Timestamp::now());
            (events, alerts)
        })
        .await
        .map_err(|e| rempart_bus::BusError::Bus(format!("anomaly task failed: {e}")))?
    };
    if alerts.is_empty() {
        return Ok(());
    }
    let stored = state.store.insert_alerts(&alerts).await?;
    record_new(state, &alerts, &stored).await;
    // Possibly passed on before (by an owner that died before its checkpoint).
    bus.publish_alerts(&alerts, &events, true).await?;
    Ok(())
}

/// Checkpoints the detectors at `sequence` (unless an erasure rewrote the checkpoint since
/// `epoch`: then the detectors must be loaded again), then lets the stream forget what the
/// checkpoint holds.
async fn anomaly_save(
    state: &Services,
    bus: &Bus,
    detectors: &Anomaly,
    (sequence, epoch, recent): (u64, rempart_store::Epoch, &std::collections::VecDeque<String>),
) -> Result<(), String> {
    let checkpoint = AnomalyCheckpoint {
        sequence,
        state: detectors.snapshot().map_err(|e| format!("checkpoint: {e}"))?,
        recent: recent.clone(),
    };
    let value = serde_json::to_value(&checkpoint).map_err(|e| format!("checkpoint: {e}"))?;
    let saved = state
        .store
        .state_put_at(ANOMALY_CHECKPOINT, &value, jiff::Timestamp::now(), epoch)
        .await
        .map_err(|e| format!("cannot save the checkpoint: {e}"))?;
    if !saved {
        return Err(ERASED.to_owned());
    }
    // Kept until the next checkpoint when this fails: the stream only holds more meanwhile.
    if let Err(e) = bus.anomaly_done(sequence).await {
        tracing::warn!(error = %e, sequence, "the anomaly stream keeps what the checkpoint holds");
    }
    Ok(())
}

/// Tells the respond processes, through the bus, what happens to incidents in this process
/// (the correlator's grouping, triage's verdicts), until cancelled. Changes the bus refuses
/// are kept and sent again; what is pending at shutdown is sent once more.
pub async fn tell_incidents(incidents: crate::incidents::Incidents, bus: Bus, cancel: CancellationToken) {
    let mut changes = incidents.subscribe();
    let mut pending: Vec<Notice> = Vec::new();
    loop {
        if pending.is_empty() {
            let change = tokio::select! {
                () = cancel.cancelled() => break,
                change = changes.recv() => change,
            };
            let Some(change) = change else { break };
            pending.extend(notice(change));
        }
        while let Ok(change) = changes.try_recv() {
            pending.extend(notice(change));
        }
        if pending.is_empty() {
            continue;
        }
        match bus.publish_notices(&pending).await {
            Ok(_) => pending.clear(),
            Err(e) => {
                tracing::warn!(error = %e, notices = pending.len(), "cannot tell the respond processes; retrying");
                if sleep_or_cancel(&cancel, RETRY_AFTER).await {
                    break;
                }
            }
        }
    }
    if !pending.is_empty()
        && let Err(e) = bus.publish_notices(&pending).await
    {
        tracing::error!(error = %e, notices = pending.len(), "incidents' changes not told at shutdown: their playbooks do not start");
    }
}

/// How far back a new correlator looks for incidents no playbook heard of.
const RETELL_WITHIN: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// Tells the respond processes again of the open incidents of the last hour on which no
/// playbook ran: a holder killed between correlating and telling lost those changes. Safe to
/// repeat, since a playbook starts once per incident whatever it is told. Returns how many.
async fn retell(state: &Services, bus: &Bus) -> Result<usize, String> {
    let (Some(incidents), Some(response)) = (&state.incidents, &state.response) else {
        return Ok(0);
    };
    let since = jiff::Timestamp::now() - RETELL_WITHIN;
    let open = incidents
        .store()
        .incidents_list(&rempart_store::IncidentQuery::open())
        .await
        .map_err(|e| e.to_string())?;
    let mut notices = Vec::new();
    for i in open.iter().filter(|i| i.created >= since) {
        if response.has_runs(i.id).await.map_err(|e| e.to_string())? {
            continue;
        }
        notices.push(Notice {
            incident: i.id,
            change: Change::Created,
        });
        if i.triage.is_some() {
            notices.push(Notice {
                incident: i.id,
                change: Change::Triaged,
            });
        }
    }
    let told = notices.iter().filter(|n| n.change == Change::Created).count();
    if !notices.is_empty() {
        bus.publish_notices(&notices).await.map_err(|e| e.to_string())?;
    }
    Ok(told)
}

/// The bus's form of a change the playbooks listen for (people's changes start none).
fn notice(change: crate::incidents::IncidentEvent) -> Option<Notice> {
    use crate::incidents::IncidentEvent as E;
    let (incident, change) = match change {
        E::Created(id) => (id, Change::Created),
        E::Grown(id) => (id, Change::Grown),
        E::Triaged(id) => (id, Change::Triaged),
        E::Changed(_) => return None,
    };
    Some(Notice { incident, change })
}

/// Takes incidents' changes off the bus (a work queue shared by every respond process) and
/// starts the playbooks they trigger, until cancelled; each message is acknowledged once its
/// changes are handled. Runs a restart left running are driven first. A playbook starts once
/// per incident whichever process is told (its run key is claimed in the store), and hourly
/// limits are counted in the store under a lock every process shares.
pub async fn respond(state: Services, bus: Bus, cancel: CancellationToken) {
    let Some(response) = state.response.clone() else {
        tracing::error!("the respond role needs the response service");
        return;
    };
    match response.resume().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "playbook runs resumed"),
        Err(e) => tracing::warn!(error = %e, "cannot resume playbook runs"),
    }
    let Some(inbox) = inbox(&bus, RESPOND, &cancel).await else {
        return;
    };
    tracing::info!("starting playbooks on incidents from the bus");
    while let Some(deliveries) = next(&inbox, RESPOND_FETCH, &cancel).await {
        // Together, so that one slow connector does not hold back the other incidents.
        futures_util::future::join_all(deliveries.iter().map(|d| async {
            let outcome = respond_to(&state, &response, d).await;
            settle(&state, d, "incidents", outcome).await;
        }))
        .await;
    }
}

/// One message of changes: the playbooks each triggers. A store that fails gives the message
/// back; anything else (an incident since deleted, a ledger refusal) is logged and done.
async fn respond_to(state: &Services, response: &crate::respond::Response, d: &Delivery) -> Result<(), DeliverError> {
    use crate::incidents::IncidentEvent as E;
    let wire = match d.notices() {
        Ok(wire) => wire,
        Err(e) => return Ok(keep_undecodable(state, d, e).await?),
    };
    for n in wire.notices {
        let change = match n.change {
            Change::Created => E::Created(n.incident),
            Change::Grown => E::Grown(n.incident),
            Change::Triaged => E::Triaged(n.incident),
        };
        match response.on_incident(change).await {
            Ok(_) => {}
            Err(crate::respond::ResponseError::Store(e)) => return Err(e.into()),
            Err(e) => tracing::warn!(error = %e, incident = %n.incident, "playbooks not started"),
        }
    }
    Ok(())
}

/// Keeps the lag gauges current (every 5 s) until cancelled.
pub async fn watch_lag(state: Services, bus: Bus, cancel: CancellationToken) {
    loop {
        match bus.status().await {
            Ok(status) => {
                for s in &status.streams {
                    state
                        .metrics
                        .bus_lag
                        .get_or_create(&vec![("consumer", s.consumer.name.clone())])
                        .set(i64::try_from(s.consumer.lag()).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::debug!(error = %e, "bus status unavailable"),
        }
        if sleep_or_cancel(&cancel, Duration::from_secs(5)).await {
            return;
        }
    }
}

/// The work queue of `durable`, once the bus answers; `None` if cancelled first.
async fn inbox(bus: &Bus, durable: &'static str, cancel: &CancellationToken) -> Option<rempart_bus::Inbox> {
    loop {
        match bus.inbox(durable).await {
            Ok(inbox) => return Some(inbox),
            Err(e) => tracing::warn!(error = %e, "waiting for the bus"),
        }
        if sleep_or_cancel(cancel, RETRY_AFTER).await {
            return None;
        }
    }
}

/// The next messages (none if none came within the fetch wait, or the bus failed: then after
/// a pause); `None` once cancelled.
async fn next(inbox: &rempart_bus::Inbox, max: usize, cancel: &CancellationToken) -> Option<Vec<Delivery>> {
    let fetched = tokio::select! {
        () = cancel.cancelled() => return None,
        d = inbox.fetch(max, FETCH_WAIT) => d,
    };
    match fetched {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "cannot fetch from the bus");
            (!sleep_or_cancel(cancel, RETRY_AFTER).await).then(Vec::new)
        }
    }
}

/// Sleeps `d`; `true` if cancelled meanwhile.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

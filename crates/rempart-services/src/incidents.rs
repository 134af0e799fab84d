//! The incident service: the correlator's live state, kept in step with the store, and every
//! change recorded in the ledger.
//!
//! One lock orders everything that changes incidents (correlation, analysts' changes, triage
//! results), and it is held across the store write, so the memory and the store never
//! disagree about an open incident.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use rempart_audit::{Draft, Ledger, kind};
use rempart_model::{Alert, Change, EntityKind, Event, EventId, Incident, IncidentStatus, TriageState};
use rempart_store::{IncidentQuery, IncidentStore, IncidentWrite, Store, StoreError};
use rempart_triage::sessions::Sessions;
use rempart_triage::{Correlator, Observed, Settings, Update};
use tokio::sync::{Mutex, Notify};

/// Why an incident could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident {0}")]
    NotFound(EventId),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ledger refused the record: {0}")]
    Audit(String),
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn IncidentStore>,
    alerts: Arc<dyn Store>,
    ledger: Ledger,
    correlator: Mutex<Correlator>,
    /// Address-to-host knowledge and recent network logons, from every event.
    sessions: std::sync::Mutex<Sessions>,
    /// Woken when incidents are created or grow (the automatic triage waits on it).
    changed: Notify,
    /// Those told of every incident opened, grown or triaged (the response service).
    listeners: std::sync::Mutex<Vec<tokio::sync::mpsc::UnboundedSender<IncidentEvent>>>,
}

/// What happened to an incident, as playbook triggers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentEvent {
    Created(EventId),
    Grown(EventId),
    Triaged(EventId),
    /// A person changed it (status, owner) or split alerts off it.
    Changed(EventId),
}

/// The incident service, shared by the HTTP API, the ingest pipeline and the CLI.
#[derive(Debug, Clone)]
pub struct Incidents {
    inner: Arc<Inner>,
}

/// The ledger subject of an incident: its first user, else its first host, so that erasing
/// that person erases the record's content.
fn subject_of(incident: &Incident) -> Option<String> {
    let first = |k: EntityKind| incident.entities.iter().find(|e| e.kind == k);
    first(EntityKind::User)
        .map(|u| rempart_audit::subject_id("user", &u.value))
        .or_else(|| first(EntityKind::Host).map(|h| rempart_audit::subject_id("host", &h.value)))
}

/// A ledger record about an incident, sealed under its subject.
pub fn draft(actor: &str, kind: &str, incident: &Incident, payload: serde_json::Value) -> Draft {
    let d = Draft::new(actor, kind, payload);
    match subject_of(incident) {
        Some(s) => d.about(s),
        None => d,
    }
}

impl Incidents {
    /// Opens the service: the correlator takes back the open incidents from the store.
    pub async fn open(
        store: Arc<dyn IncidentStore>,
        alerts: Arc<dyn Store>,
        ledger: Ledger,
        settings: Settings,
    ) -> Result<Incidents, StoreError> {
        let mut correlator = Correlator::new(settings);
        correlator.restore(store.incidents_list(&IncidentQuery::open()).await?);
        Ok(Incidents {
            inner: Arc::new(Inner {
                store,
                alerts,
                ledger,
                correlator: Mutex::new(correlator),
                sessions: std::sync::Mutex::default(),
                changed: Notify::new(),
                listeners: std::sync::Mutex::default(),
            }),
        })
    }

    /// Runs `work` (which may rewrite stored incidents, as an erasure does) with the correlator
    /// held, so that no incident is written meanwhile; then the correlator takes the open
    /// incidents back from the store and forgets what it learned of addresses and logons.
    pub async fn rewriting<T, E: From<StoreError>>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let mut correlator = self.inner.correlator.lock().await;
        let out = work.await;
        for i in self.inner.store.incidents_list(&IncidentQuery::open()).await? {
            correlator.replace(i);
        }
        *self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Sessions::default();
        out
    }

    /// Takes the open incidents back from the store (another process may have changed them:
    /// a correlator taking over from one that died).
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.rewriting(async { Ok::<_, StoreError>(()) }).await
    }

    /// Takes back from the store what other processes changed, keeping what was learned of
    /// addresses and logons: in a cluster, analysts change incidents through any process's
    /// API, and the correlator must not write an incident back over their change. Each open
    /// incident held is replaced by its stored version (one closed elsewhere stops taking
    /// alerts), and incidents the store holds open are taken in.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let mut correlator = self.inner.correlator.lock().await;
        let stored = self.inner.store.incidents_list(&IncidentQuery::open()).await?;
        let open: std::collections::HashSet<EventId> = stored.iter().map(|i| i.id).collect();
        for id in correlator.open_ids() {
            if !open.contains(&id)
                && let Some(i) = self.inner.store.incident_get(id).await?
            {
                correlator.replace(i);
            }
        }
        for i in stored {
            if correlator.get(i.id).is_none_or(|held| held.updated != i.updated) {
                correlator.replace(i);
            }
        }
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn IncidentStore> {
        &self.inner.store
    }

    /// Every incident opened, grown, triaged or changed from now on.
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<IncidentEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tx);
        rx
    }

    fn tell(&self, events: &[IncidentEvent]) {
        if events.is_empty() {
            return;
        }
        let mut listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        listeners.retain(|l| events.iter().all(|e| l.send(*e).is_ok()));
    }

    /// Waits until incidents are created or grow.
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// Learns sessions from every stored event of a batch, then groups the batch's alerts into
    /// incidents (`events` holds their events, where at hand), stores the result and records
    /// new incidents and merges.
    pub async fn observe(&self, alerts: &[Alert], events: &[Event]) -> Result<Update, IncidentError> {
        let observed: Vec<Observed> = {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for e in events {
                sessions.observe(e);
            }
            if alerts.is_empty() {
                return Ok(Update::default());
            }
            let by_id: HashMap<EventId, &Event> = events.iter().map(|e| (e.id, e)).collect();
            alerts
                .iter()
                .map(|a| {
                    let mut entities = rempart_triage::entity::of_alert(a, by_id.get(&a.event).copied());
                    sessions.enrich(a, &mut entities);
                    Observed {
                        entities,
                        alert: a.clone(),
                    }
                })
                .collect()
        };
        let mut correlator = self.inner.correlator.lock().await;
        let update = correlator.observe(&observed, Timestamp::now());
        self.inner
            .store
            .incidents_write(IncidentWrite {
                incidents: &update.incidents,
                links: &update.links,
                moves: &update.moves,
            })
            .await?;
        drop(correlator);
        let mut drafts = Vec::new();
        for i in &update.incidents {
            if i.status == IncidentStatus::Merged {
                drafts.push(draft(
                    "correlation",
                    kind::INCIDENT_MERGE,
                    i,
                    serde_json::json!({
                        "incident": i.id,
                        "into": i.merged_into,
                        "reason": i.history.last().map(|h| h.reason.as_str()),
                    }),
                ));
            } else if update.opened.contains(&i.id) {
                drafts.push(draft(
                    "correlation",
                    kind::INCIDENT_CREATE,
                    i,
                    serde_json::json!({
                        "incident": i.id,
                        "title": i.title,
                        "severity": i.severity,
                        "score": i.score,
                        "first_alert": update.links.iter().find(|(_, inc)| *inc == i.id).map(|(a, _)| a),
                    }),
                ));
            }
        }
        if !drafts.is_empty() {
            self.inner
                .ledger
                .append_all(drafts)
                .await
                .map_err(|e| IncidentError::Audit(e.to_string()))?;
        }
        if !update.incidents.is_empty() {
            self.inner.changed.notify_waiters();
            let events: Vec<IncidentEvent> = update
                .incidents
                .iter()
                .filter(|i| i.status != IncidentStatus::Merged)
                .map(|i| {
                    if update.opened.contains(&i.id) {
                        IncidentEvent::Created(i.id)
                    } else {
                        IncidentEvent::Grown(i.id)
                    }
                })
                .collect();
            self.tell(&events);
        }
        Ok(update)
    }

    pub async fn get(&self, id: EventId) -> Result<Incident, IncidentError> {
        self.inner
            .store
            .incident_get(id)
            .await?
            .ok_or(IncidentError::NotFound(id))
    }

    /// Writes an incident changed outside correlation, after recording the change.
    async fn commit(&self, incident: Incident, record: Draft) -> Result<Incident, IncidentError> {
        let mut correlator = self.inner.correlator.lock().await;
        self.inner
            .ledger
            .append(record)
            .await
            .map_err(|e| IncidentError::Audit(e.to_string()))?;
        self.write_one(&mut correlator, incident).await
    }

    /// Stores one incident and hands it to the correlator (the caller holds the lock).
    async fn write_one(&self, correlator: &mut Correlator, incident: Incident) -> Result<Incident, IncidentError> {
        self.inner
            .store
            .incidents_write(IncidentWrite {
                incidents: std::slice::from_ref(&incident),
                links: &[],
                moves: &[],
            })
            .await?;
        correlator.replace(incident.clone());
        Ok(incident)
    }

    /// Moves an incident to `status` (and, if given, to `owner`), with the actor's reason.
    pub async fn update(
        &self,
        id: EventId,
        status: Option<IncidentStatus>,
        owner: Option<String>,
        actor: &str,
        reason: &str,
    ) -> Result<Incident, IncidentError> {
        let mut incident = self.get(id).await?;
        let now = Timestamp::now();
        let from = incident.status;
        if let Some(to) = status
            && to != from
        {
            if !from.can_move_to(to) {
                return Err(IncidentError::Invalid(format!(
                    "an incident cannot move from `{from}` to `{to}`"
                )));
            }
            incident.status = to;
            incident.history.push(Change {
                time: now,
                actor: actor.to_owned(),
                what: "status".into(),
                reason: format!("{from} → {to}: {reason}"),
            });
        }
        if let Some(o) = owner {
            if incident.status == IncidentStatus::Merged {
                return Err(IncidentError::Invalid(format!(
                    "incident {id} was merged into {}: change that one",
                    incident.merged_into.map(|m| m.to_string()).unwrap_or_default()
                )));
            }
            incident.history.push(Change {
                time: now,
                actor: actor.to_owned(),
                what: "owner".into(),
                reason: format!("owner {o}: {reason}"),
            });
            incident.owner = Some(o);
        }
        incident.updated = now;
        let record = draft(
            actor,
            kind::INCIDENT_UPDATE,
            &incident,
            serde_json::json!({
                "incident": id,
                "from": from,
                "status": incident.status,
                "owner": incident.owner,
                "reason": reason,
            }),
        );
        let incident = self.commit(incident, record).await?;
        self.tell(&[IncidentEvent::Changed(id)]);
        Ok(incident)
    }

    /// Splits `alerts` off incident `id` into a new incident.
    pub async fn split(
        &self,
        id: EventId,
        alerts: &[EventId],
        actor: &str,
        reason: &str,
    ) -> Result<(Incident, Incident), IncidentError> {
        let source = self.get(id).await?;
        if !source.status.is_open() {
            return Err(IncidentError::Invalid(format!(
                "incident {id} is `{}`: only open incidents are split",
                source.status
            )));
        }
        let all = self
            .inner
            .store
            .incident_alerts(id, u32::try_from(source.alert_count).unwrap_or(u32::MAX).max(1))
            .await?;
        let (moved, keep): (Vec<Alert>, Vec<Alert>) = all.into_iter().partition(|a| alerts.contains(&a.id));
        if moved.len() != alerts.len() {
            return Err(IncidentError::Invalid(format!(
                "{} of the alerts named are not in incident {id}",
                alerts.len() - moved.len()
            )));
        }
        if keep.is_empty() {
            return Err(IncidentError::Invalid(
                "a split must leave at least one alert behind".into(),
            ));
        }
        let observe = |alerts: Vec<Alert>| async move {
            let mut out = Vec::with_capacity(alerts.len());
            for a in alerts {
                let event = self.inner.alerts.get_event(a.event).await?;
                out.push(Observed {
                    entities: rempart_triage::entity::of_alert(&a, event.as_ref()),
                    alert: a,
                });
            }
            Ok::<_, StoreError>(out)
        };
        let keep = observe(keep).await?;
        let moved = observe(moved).await?;
        let mut correlator = self.inner.correlator.lock().await;
        let (kept, split) = correlator
            .split(&source, &keep, &moved, actor, reason, Timestamp::now())
            .ok_or_else(|| IncidentError::Invalid("nothing to split".into()))?;
        let record = draft(
            actor,
            kind::INCIDENT_SPLIT,
            &kept,
            serde_json::json!({"incident": id, "into": split.id, "alerts": alerts, "reason": reason}),
        );
        self.inner
            .ledger
            .append(record)
            .await
            .map_err(|e| IncidentError::Audit(e.to_string()))?;
        let links: Vec<(EventId, EventId)> = moved.iter().map(|o| (o.alert.id, split.id)).collect();
        self.inner
            .store
            .incidents_write(IncidentWrite {
                incidents: &[kept.clone(), split.clone()],
                links: &links,
                moves: &[],
            })
            .await?;
        self.tell(&[IncidentEvent::Changed(kept.id), IncidentEvent::Changed(split.id)]);
        Ok((kept, split))
    }

    /// Marks an incident triaged by `state` (the verdict is already stored and recorded).
    pub async fn triaged(&self, id: EventId, state: TriageState) -> Result<Incident, IncidentError> {
        let mut correlator = self.inner.correlator.lock().await;
        let mut incident = self.get(id).await?;
        rempart_triage::correlate::mark_triaged(&mut incident, state, Timestamp::now());
        let incident = self.write_one(&mut correlator, incident).await?;
        drop(correlator);
        self.tell(&[IncidentEvent::Triaged(id)]);
        Ok(incident)
    }
}

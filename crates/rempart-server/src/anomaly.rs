//! Live anomaly detection: every stored event goes through the per-entity baselines, and each
//! departure becomes an alert (rule `rempart-anomaly/<detector>`, with typical and actual in its
//! matched fields) that joins incidents and triage like any other.
//!
//! The baselines' state is kept in the store (`detector_state`), loaded when a server or an
//! ingest starts and saved every minute and at the end, so a restart does not relearn.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rempart_anomaly::baseline::{Activity, Baselines, Finding, Observation, Params};
use rempart_model::{Alert, Event, EventId, MatchedField, Technique};
use serde_json::Value;

/// The name the baselines' state is stored under.
pub const STATE_NAME: &str = "baselines";

/// The live detector, shared by every ingest path of a process.
#[derive(Debug)]
pub struct Anomaly {
    baselines: Mutex<Baselines>,
    /// Only events from these sources (`http`, `syslog`, a file name); all when empty.
    sources: Vec<String>,
}

/// A key in an event's original fields, found at any depth (Windows events nest their data
/// differently per exporter: `EventData`, `Event.EventData`, `winlog.event_data`, …).
fn find<'a>(v: &'a Value, key: &str, depth: u8) -> Option<&'a Value> {
    let Value::Object(m) = v else { return None };
    if let Some(x) = m.get(key) {
        return Some(x);
    }
    if depth == 0 {
        return None;
    }
    m.values().find_map(|c| find(c, key, depth - 1))
}

fn field<'a>(e: &'a Event, key: &str) -> Option<&'a Value> {
    e.fields
        .get(key)
        .or_else(|| e.fields.values().find_map(|c| find(c, key, 3)))
}

fn text<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    field(e, key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "-")
}

fn number(e: &Event, key: &str) -> Option<u64> {
    match field(e, key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => !(a.is_private() || a.is_loopback() || a.is_link_local() || a.is_unspecified()),
        std::net::IpAddr::V6(a) => !(a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xfe00) == 0xfc00),
    }
}

/// What an event did, as the baselines see it; `None` for events they do not profile.
/// `sender` is the event's source address as text (the key of a flow without a host).
pub fn observation<'a>(e: &'a Event, sender: Option<&'a str>) -> Option<Observation<'a>> {
    let n = &e.normalized;
    let channel = n.channel.as_deref().unwrap_or_default();
    let activity = match (n.event_id, channel) {
        (Some(1), c) if c.contains("Sysmon") => Activity::Process {
            image: n.process.as_deref()?,
            parent: n.parent_process.as_deref(),
        },
        (Some(4688), _) => Activity::Process {
            image: n.process.as_deref()?,
            parent: n.parent_process.as_deref(),
        },
        (Some(id @ (4624 | 4625)), _) => {
            // Service (5) and batch (4) logons are machinery, not people.
            if matches!(number(e, "LogonType"), Some(4 | 5)) {
                return None;
            }
            Activity::Logon {
                source: text(e, "IpAddress").or_else(|| text(e, "WorkstationName")),
                success: id == 4624,
            }
        }
        (Some(7045 | 4697), _) => Activity::Service {
            name: text(e, "ServiceName")?,
        },
        (Some(4698), _) => Activity::Service {
            name: text(e, "TaskName")?,
        },
        _ => {
            // Network flows: bytes a host sent to a public address. Flow records seldom name a
            // host: the sender's address stands for it.
            let bytes = number(e, "orig_bytes").or_else(|| {
                field(e, "flow")
                    .and_then(|f| f.get("bytes_toserver"))
                    .and_then(Value::as_u64)
            })?;
            if !public(n.dst_ip?) {
                return None;
            }
            return Some(Observation {
                time: e.time.as_second(),
                host: n.host.as_deref().or(sender),
                user: None,
                activity: Activity::Outbound { bytes },
            });
        }
    };
    Some(Observation {
        time: e.time.as_second(),
        host: n.host.as_deref(),
        user: n.user.as_deref(),
        activity,
    })
}

/// The alert a finding on event `e` becomes.
pub fn alert(e: &Event, f: &Finding, now: Timestamp) -> Alert {
    let (id, name, tactic) = f.detector.technique();
    Alert {
        id: EventId::generate(),
        time: e.time,
        created: now,
        rule_id: Some(format!("rempart-anomaly/{}", f.detector.as_str())),
        rule_title: f.detector.title().to_owned(),
        level: Some(f.detector.level().to_owned()),
        tags: vec![
            format!("attack.{}", tactic.replace('-', "_")),
            format!("attack.{}", id.to_ascii_lowercase()),
        ],
        techniques: vec![Technique {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            tactics: vec![tactic.to_owned()],
        }],
        matched: vec![
            MatchedField::new("anomaly.baseline", f.entity.clone()),
            MatchedField::new("anomaly.typical", f.typical.clone()),
            MatchedField::new("anomaly.actual", f.actual.clone()),
        ],
        event: e.id,
        host: e.normalized.host.clone(),
        user: e.normalized.user.clone(),
    }
}

impl Anomaly {
    pub fn new(baselines: Baselines, sources: Vec<String>) -> Anomaly {
        Anomaly {
            baselines: Mutex::new(baselines),
            sources,
        }
    }

    /// Fresh baselines with `params`.
    pub fn fresh(params: Params, sources: Vec<String>) -> Anomaly {
        Anomaly::new(Baselines::new(params), sources)
    }

    /// Runs `events` (in time order) through the baselines; returns the alerts they raise.
    pub fn alerts(&self, events: &[Event], now: Timestamp) -> Vec<Alert> {
        let mut order: Vec<&Event> = events
            .iter()
            .filter(|e| self.sources.is_empty() || self.sources.contains(&e.origin.source))
            .collect();
        order.sort_by_key(|e| e.time);
        let mut b = self.baselines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for e in order {
            let sender = e.normalized.src_ip.map(|a| a.to_string());
            if let Some(o) = observation(e, sender.as_deref()) {
                for f in b.observe(&o) {
                    out.push(alert(e, &f, now));
                }
            }
        }
        out
    }

    /// The state, for the store.
    pub fn snapshot(&self) -> Result<Value, serde_json::Error> {
        let b = self.baselines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        serde_json::to_value(&*b)
    }

    /// Saves the state in the store.
    pub async fn save(&self, store: &dyn rempart_store::Store) -> Result<(), String> {
        let state = self.snapshot().map_err(|e| e.to_string())?;
        store
            .state_put(STATE_NAME, &state, Timestamp::now())
            .await
            .map_err(|e| e.to_string())
    }

    /// Loads the stored state, or starts fresh with `params` (also when the stored state no
    /// longer reads, which is logged).
    pub async fn load(store: &dyn rempart_store::Store, params: Params, sources: Vec<String>) -> Arc<Anomaly> {
        let loaded = match store.state_get(STATE_NAME).await {
            Ok(Some(v)) => match serde_json::from_value::<Baselines>(v) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "stored baselines do not read; starting fresh");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read stored baselines; starting fresh");
                None
            }
        };
        Arc::new(match loaded {
            Some(b) => Anomaly::new(b, sources),
            None => Anomaly::fresh(params, sources),
        })
    }
}

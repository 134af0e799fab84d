//! Live anomaly detection: every stored event goes through the per-entity baselines, and each
//! departure becomes an alert (rule `rempart-anomaly/<detector>`, with typical and actual in its
//! matched fields) that joins incidents and triage like any other.
//!
//! Beside them, MIDAS-R scores three edge streams, one tick a minute of event time: source
//! address → destination address, account → host (logons), and process → destination address
//! (network connections). After an hour of stream, an edge, source or destination whose count
//! this minute scores at least `edge_threshold` (and counts at least `edge_min_count`) raises
//! an alert naming which part burst, its usual rate and this minute's count.
//!
//! Connection records (Zeek `conn`, Suricata `flow`) go through streaming ECOD, one model per
//! service (protocol and destination port) over ln(duration), ln(bytes sent) and ln(bytes
//! received): after `flow_warm_up` connections of that service, one scoring at least
//! `flow_threshold` raises an alert naming the feature that drove the score, its typical value
//! (the service's median) and the actual one. The burst guard keeps what scores high out of
//! the model, so a long exfiltration does not teach itself to be normal.
//!
//! Which detectors run and their thresholds are set in `[anomaly]` and per source in
//! `[anomaly.source.NAME]`.
//!
//! The state is kept in the store (`detector_state`), loaded when a server or an ingest starts
//! and saved every minute and at the end, so a restart does not relearn.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rempart_anomaly::baseline::{Activity, Baselines, Finding, Observation, Params, image_of};
use rempart_anomaly::ecod::{self, Ecod, Tail};
use rempart_anomaly::midas::{Burst, MidasR, Ticks};
use rempart_config::AnomalyTuning;
use rempart_model::{Alert, Event, Format, MatchedField, Technique, canonical};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The name the baselines' state is stored under.
pub const STATE_NAME: &str = "anomaly";

/// The live detector, shared by every ingest path of a process.
#[derive(Debug)]
pub struct Anomaly {
    state: Mutex<State>,
    /// `[anomaly]`: sources looked at, detectors and thresholds per source.
    config: rempart_config::Anomaly,
}

/// Everything the live detector learns, saved and restored whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    baselines: Baselines,
    edges: EdgeStreams,
    /// Absent from states saved before the flow models existed.
    #[serde(default)]
    flows: Flows,
}

/// The baselines' parameters of `[anomaly]`.
fn params(c: &rempart_config::Anomaly) -> Params {
    Params {
        warm_up: c.warm_up,
        min_history: c.min_history,
        burst_min: c.burst_min,
        volume_min_bytes: c.volume_min_bytes,
        ..Params::default()
    }
}

/// The three MIDAS-R edge streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EdgeStreams {
    network: MidasR,
    logon: MidasR,
    process: MidasR,
    /// Ticks count the minutes that had edges, so a stream with gaps (an archive spanning
    /// months) keeps its rates. Flattened: the stored state keeps its `minute` and `tick` keys.
    #[serde(flatten)]
    ticks: Ticks,
    /// (stream, part, key) → the tick it last fired in: one alert per burst and minute.
    fired: std::collections::HashMap<String, u64>,
}

/// Ticks (minutes) of stream before edge bursts may fire.
const EDGE_WARM_UP_TICKS: u64 = 60;

impl EdgeStreams {
    fn new() -> EdgeStreams {
        // Scored as rates: a busy server's steady traffic is not a burst.
        let p = rempart_anomaly::midas::Params {
            as_rate: true,
            ..rempart_anomaly::midas::Params::default()
        };
        EdgeStreams {
            network: MidasR::new(p),
            logon: MidasR::new(rempart_anomaly::midas::Params {
                seed: p.seed ^ 0x11,
                ..p
            }),
            process: MidasR::new(rempart_anomaly::midas::Params {
                seed: p.seed ^ 0x22,
                ..p
            }),
            ticks: Ticks::default(),
            fired: std::collections::HashMap::new(),
        }
    }
}

/// Most services with a model of their own; connections of any further service share one.
const MAX_FLOW_MODELS: usize = 64;
/// The model of services beyond [`MAX_FLOW_MODELS`].
const OTHER_SERVICES: &str = "other";
/// Seconds of event time before the same service and sender may fire again.
const FLOW_REFIRE_SECS: i64 = 600;
/// The features of a connection, in the models' order.
const FLOW_FEATURES: [&str; 3] = ["duration", "bytes sent", "bytes received"];

/// Per service, an ECOD model of its connections.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Flows {
    models: BTreeMap<String, Ecod>,
    /// (service, sender) → the second it last fired.
    fired: HashMap<String, i64>,
}

/// A connection record's service and features (duration in seconds, bytes from the
/// originator, bytes from the responder); `None` for anything else.
fn flow(e: &Event) -> Option<(String, [f64; 3])> {
    let n = &e.normalized;
    let num = |v: Option<&Value>| -> Option<f64> {
        match v? {
            Value::Number(x) => x.as_f64(),
            Value::String(s) if s == "-" || s.is_empty() => Some(0.0),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let f = &e.fields;
    let raw = match e.format {
        Format::ZeekJson | Format::ZeekTsv => {
            if n.channel.as_deref().is_some_and(|c| c != "conn") {
                return None;
            }
            [
                num(f.get("duration")).unwrap_or(0.0),
                num(f.get("orig_bytes"))?,
                num(f.get("resp_bytes"))?,
            ]
        }
        Format::SuricataEve => {
            if n.channel.as_deref() != Some("flow") {
                return None;
            }
            let flow = f.get("flow")?;
            [
                num(flow.get("age")).unwrap_or(0.0),
                num(flow.get("bytes_toserver"))?,
                num(flow.get("bytes_toclient"))?,
            ]
        }
        _ => return None,
    };
    if raw.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return None;
    }
    let proto = f
        .get("proto")
        .and_then(Value::as_str)
        .unwrap_or("ip")
        .to_ascii_lowercase();
    // Ports of the dynamic range (RFC 6335: 49152 and up) are picked per connection, not
    // services: they share one model per protocol rather than each taking one of the few.
    let service = match n.dst_port {
        Some(p) if p >= 49_152 => format!("{proto}/dynamic"),
        Some(p) => format!("{proto}/{p}"),
        None => proto,
    };
    // As the KDD 99 subsets the detector is measured on: ln(x + 0.1), so zero is finite.
    Some((service, raw.map(|x| (x + 0.1).ln())))
}

/// A feature's value for people, back from its log scale.
fn flow_value(feature: usize, logged: f64) -> String {
    let x = (logged.exp() - 0.1).max(0.0);
    if feature == 0 {
        return if x < 10.0 {
            format!("{x:.2} s")
        } else {
            format!("{x:.0} s")
        };
    }
    let units = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    match units.iter().find(|(_, u)| x >= *u) {
        Some((name, u)) => format!("{:.1} {name}", x / u),
        None => format!("{x:.0} B"),
    }
}

/// A feature list for people: `duration 0.30 s, 1.2 kB sent, 5.1 kB received`.
fn flow_text(x: &[f64]) -> String {
    format!(
        "duration {}, {} sent, {} received",
        flow_value(0, x[0]),
        flow_value(1, x[1]),
        flow_value(2, x[2])
    )
}

/// The technique a connection's leading feature points to.
fn flow_technique(feature: usize, tail: Tail) -> (&'static str, &'static str, &'static str) {
    match (feature, tail) {
        (1, Tail::High) => ("T1048", "Exfiltration Over Alternative Protocol", "exfiltration"),
        (2, Tail::High) => ("T1105", "Ingress Tool Transfer", "command-and-control"),
        (0, Tail::High) => ("T1071", "Application Layer Protocol", "command-and-control"),
        _ => ("T1046", "Network Service Discovery", "discovery"),
    }
}

/// Whether an address belongs in the network stream: not loopback, link-local, multicast or
/// unspecified (machinery talking to itself is not traffic).
fn routable(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            !(a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_unspecified() || a.is_broadcast())
        }
        std::net::IpAddr::V6(a) => {
            !(a.is_loopback() || a.is_multicast() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// A stable 64-bit key of a name, case-folded (FNV-1a).
fn key(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The key of an address, from its bytes.
fn ip_key(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
        std::net::IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(17) ^ 0x6a09_e667_f3bc_c908
        }
    }
}

/// Which edge stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Network,
    Logon,
    Process,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Network => "network",
            Stream::Logon => "logon",
            Stream::Process => "process",
        }
    }

    fn title(self, part: Burst) -> &'static str {
        match (self, part) {
            (Stream::Network, Burst::Source) => "Anomaly: burst of connections from an address",
            (Stream::Network, Burst::Destination) => "Anomaly: burst of connections to an address",
            (Stream::Network, Burst::Edge) => "Anomaly: burst of connections between two addresses",
            (Stream::Logon, Burst::Source) => "Anomaly: burst of logons by an account",
            (Stream::Logon, Burst::Destination) => "Anomaly: burst of logons to a host",
            (Stream::Logon, Burst::Edge) => "Anomaly: burst of logons by an account to a host",
            (Stream::Process, Burst::Source) => "Anomaly: burst of connections by a program",
            (Stream::Process, Burst::Destination) | (Stream::Process, Burst::Edge) => {
                "Anomaly: burst of connections by a program to an address"
            }
        }
    }

    fn technique(self, part: Burst) -> (&'static str, &'static str, &'static str) {
        match (self, part) {
            (Stream::Network, Burst::Source) => ("T1046", "Network Service Discovery", "discovery"),
            (Stream::Network, Burst::Destination) => ("T1498", "Network Denial of Service", "impact"),
            (Stream::Logon, _) => ("T1021", "Remote Services", "lateral-movement"),
            _ => ("T1071", "Application Layer Protocol", "command-and-control"),
        }
    }
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
            // Most events land here: the cheap test first, and the byte counts only where Zeek
            // (`orig_bytes`) and Suricata (`flow.bytes_toserver`) put them, at the top.
            if !public(n.dst_ip?) {
                return None;
            }
            let bytes = match e.fields.get("orig_bytes") {
                Some(Value::Number(b)) => b.as_u64(),
                Some(Value::String(b)) => b.trim().parse().ok(),
                _ => e
                    .fields
                    .get("flow")
                    .and_then(|f| f.get("bytes_toserver"))
                    .and_then(Value::as_u64),
            }?;
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

/// The sender of a flow without a host, whose address names the baseline's entity.
fn sender(e: &Event) -> Option<String> {
    if e.normalized.host.is_none() && e.normalized.dst_ip.is_some() {
        e.normalized.src_ip.map(|a| a.to_string())
    } else {
        None
    }
}

/// An event's edge in each stream: the stream and its two ends' keys.
type Edges = [Option<(Stream, u64, u64)>; 3];

/// The edges event `e` adds to the three streams, keys hashed in place (case-folded,
/// addresses by their bytes), and the logon's account and host, written out only for an
/// alert.
fn edge_keys(e: &Event) -> (Edges, Option<(String, String)>) {
    let n = &e.normalized;
    let mut edges: Edges = [None; 3];
    if let (Some(src), Some(dst)) = (n.src_ip, n.dst_ip)
        && src != dst
        && routable(src)
        && routable(dst)
    {
        edges[0] = Some((Stream::Network, ip_key(src), ip_key(dst)));
        if let Some(p) = n.process.as_deref() {
            edges[1] = Some((Stream::Process, key(image_of(p)), ip_key(dst)));
        }
    }
    // Canonical names, so `CORP\\alice` and `alice` are one account; built-in and machine
    // accounts, which log on constantly by design, are left out.
    let logon = (n.event_id == Some(4624))
        .then(|| {
            Some((
                n.user.as_deref().and_then(canonical::user)?,
                n.host.as_deref().and_then(canonical::host)?,
            ))
        })
        .flatten();
    if let Some((u, h)) = &logon {
        edges[2] = Some((Stream::Logon, key(u), key(h)));
    }
    (edges, logon)
}

/// An alert of the live detector on event `e`: rule `rempart-anomaly/<rule>`, the technique
/// the departure most often means, what was typical and what happened in its matched fields.
fn anomaly_alert(
    e: &Event,
    now: Timestamp,
    rule: &str,
    title: &str,
    level: &str,
    (id, name, tactic): (&str, &str, &str),
    matched: Vec<MatchedField>,
) -> Alert {
    let rule_id = format!("rempart-anomaly/{rule}");
    Alert {
        id: e.id.derive(&rule_id),
        time: e.time,
        created: now,
        rule_id: Some(rule_id),
        rule_title: title.to_owned(),
        level: Some(level.to_owned()),
        tags: vec![
            format!("attack.{}", tactic.replace('-', "_")),
            format!("attack.{}", id.to_ascii_lowercase()),
        ],
        techniques: vec![Technique {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            tactics: vec![tactic.to_owned()],
        }],
        matched,
        event: e.id,
        host: e.normalized.host.clone(),
        user: e.normalized.user.clone(),
    }
}

/// The alert a finding on event `e` becomes.
pub fn alert(e: &Event, f: &Finding, now: Timestamp) -> Alert {
    anomaly_alert(
        e,
        now,
        f.detector.as_str(),
        f.detector.title(),
        f.detector.level(),
        f.detector.technique(),
        vec![
            MatchedField::new("anomaly.baseline", f.entity.clone()),
            MatchedField::new("anomaly.typical", f.typical.clone()),
            MatchedField::new("anomaly.actual", f.actual.clone()),
        ],
    )
}

impl Anomaly {
    /// Fresh detectors set up by `config`.
    pub fn fresh(config: &rempart_config::Anomaly) -> Anomaly {
        Anomaly {
            state: Mutex::new(State {
                baselines: Baselines::new(params(config)),
                edges: EdgeStreams::new(),
                flows: Flows::default(),
            }),
            config: config.clone(),
        }
    }

    /// Runs `events` (in time order) through the baselines and the edge streams; returns the
    /// alerts they raise.
    pub fn alerts(&self, events: &[Event], now: Timestamp) -> Vec<Alert> {
        let sources = &self.config.sources;
        let mut order: Vec<&Event> = events
            .iter()
            .filter(|e| sources.is_empty() || sources.contains(&e.origin.source))
            .collect();
        order.sort_by_key(|e| e.time);
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        let state = &mut *state;
        for e in order {
            let tuning = self.config.tuning(&e.origin.source);
            if tuning.detectors.baselines {
                let sender = sender(e);
                if let Some(o) = observation(e, sender.as_deref()) {
                    for f in state.baselines.observe(&o) {
                        out.push(alert(e, &f, now));
                    }
                }
            }
            if tuning.detectors.edges {
                Self::edges(tuning, &mut state.edges, e, now, &mut out);
            }
            if tuning.detectors.flows {
                self.flows(tuning, &mut state.flows, e, now, &mut out);
            }
        }
        out
    }

    /// Whether [`Anomaly::alerts`] looks at event `e` at all: the events a cluster's detect
    /// processes send to the detectors' owner.
    pub fn looks_at(&self, e: &Event) -> bool {
        let sources = &self.config.sources;
        if !sources.is_empty() && !sources.contains(&e.origin.source) {
            return false;
        }
        let tuning = self.config.tuning(&e.origin.source);
        (tuning.detectors.baselines && observation(e, sender(e).as_deref()).is_some())
            || (tuning.detectors.edges && edge_keys(e).0.iter().any(Option::is_some))
            || (tuning.detectors.flows && flow(e).is_some())
    }

    /// Scores a connection record against its service's model.
    fn flows(&self, tuning: &AnomalyTuning, s: &mut Flows, e: &Event, now: Timestamp, out: &mut Vec<Alert>) {
        let Some((service, x)) = flow(e) else { return };
        let service = if s.models.contains_key(&service) || s.models.len() < MAX_FLOW_MODELS {
            service
        } else {
            OTHER_SERVICES.to_owned()
        };
        let model = s.models.entry(service.clone()).or_insert_with(|| {
            Ecod::new(
                FLOW_FEATURES.len(),
                ecod::Params {
                    // Coarser than the offline evaluation's bins: a few hundred per feature
                    // keep every model's snapshot small.
                    bin_width: 0.05,
                    warm_up: self.config.flow_warm_up,
                    max_bins: 2_048,
                    ..ecod::Params::default()
                },
            )
        });
        let warm = model.warm();
        let Ok(score) = model.observe(&x) else { return };
        if !warm || score.value < tuning.flow_threshold {
            return;
        }
        let sender = e.normalized.src_ip.map(|a| a.to_string()).unwrap_or_default();
        let key = format!("{service} {sender}");
        let t = e.time.as_second();
        if s.fired.get(&key).is_some_and(|&last| t - last < FLOW_REFIRE_SECS) {
            return;
        }
        if s.fired.len() >= 100_000 {
            s.fired.clear();
        }
        s.fired.insert(key, t);
        let parts = model.explain(&x, &score);
        let Some(lead) = parts.first() else { return };
        let typical: Vec<f64> = {
            let mut t = vec![0.0; FLOW_FEATURES.len()];
            for p in &parts {
                t[p.feature] = p.typical;
            }
            t
        };
        let (_, learned) = model.counts();
        let direction = match lead.direction {
            Tail::High => "high",
            Tail::Low => "low",
        };
        out.push(anomaly_alert(
            e,
            now,
            "unusual_flow",
            "Anomaly: connection unlike others of its service",
            "medium",
            flow_technique(lead.feature, lead.direction),
            vec![
                MatchedField::new("anomaly.baseline", format!("service {service} from {sender}")),
                MatchedField::new(
                    "anomaly.typical",
                    format!("{} (median of {learned} connections)", flow_text(&typical)),
                ),
                MatchedField::new("anomaly.actual", flow_text(&x)),
                MatchedField::new(
                    "anomaly.driver",
                    format!(
                        "{} unusually {direction} ({:.0} % of the score)",
                        FLOW_FEATURES[lead.feature],
                        lead.share * 100.0
                    ),
                ),
                MatchedField::new("anomaly.score", format!("{:.1}", score.value)),
            ],
        ));
    }

    fn edges(tuning: &AnomalyTuning, s: &mut EdgeStreams, e: &Event, now: Timestamp, out: &mut Vec<Alert>) {
        let n = &e.normalized;
        let (edges, logon) = edge_keys(e);
        if edges.iter().all(Option::is_none) {
            return;
        }
        let tick = s.ticks.at(e.time.as_second().div_euclid(60));
        for (stream, ku, kv) in edges.into_iter().flatten() {
            let m = match stream {
                Stream::Network => &mut s.network,
                Stream::Logon => &mut s.logon,
                Stream::Process => &mut s.process,
            };
            let score = m.score(ku, kv, tick);
            if tick <= EDGE_WARM_UP_TICKS
                || score.value < tuning.edge_threshold
                || score.this_tick < tuning.edge_min_count
            {
                continue;
            }
            let (u, v) = match stream {
                Stream::Network => (
                    n.src_ip.map(|a| a.to_string()).unwrap_or_default(),
                    n.dst_ip.map(|a| a.to_string()).unwrap_or_default(),
                ),
                Stream::Process => (
                    image_of(n.process.as_deref().unwrap_or_default()).to_ascii_lowercase(),
                    n.dst_ip.map(|a| a.to_string()).unwrap_or_default(),
                ),
                Stream::Logon => logon.clone().unwrap_or_default(),
            };
            let part = match score.burst {
                Burst::Edge => format!("{u} → {v}"),
                Burst::Source => u.clone(),
                Burst::Destination => v.clone(),
            };
            let id = format!("{}:{}:{part}", stream.name(), score.burst.as_str());
            if s.fired.get(&id) == Some(&tick) {
                continue;
            }
            if s.fired.len() >= 100_000 {
                s.fired.clear();
            }
            s.fired.insert(id, tick);
            out.push(anomaly_alert(
                e,
                now,
                &format!("{}_burst", stream.name()),
                stream.title(score.burst),
                "high",
                stream.technique(score.burst),
                vec![
                    MatchedField::new("anomaly.baseline", format!("{} {}", score.burst.as_str(), part)),
                    MatchedField::new("anomaly.typical", format!("about {:.1} per minute", score.expected)),
                    MatchedField::new("anomaly.actual", format!("{:.0} this minute", score.this_tick)),
                    MatchedField::new("anomaly.score", format!("{:.0}", score.value)),
                ],
            ));
        }
    }

    /// The state, for the store.
    pub fn snapshot(&self) -> Result<Value, serde_json::Error> {
        let s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        serde_json::to_value(&*s)
    }

    /// Applies `rewrite` to every string of the state, keys included (an erasure); returns how
    /// many occurrences it replaced.
    pub fn rewrite(&self, rewrite: &rempart_store::Rewrite<'_>) -> Result<usize, serde_json::Error> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v = serde_json::to_value(&*s)?;
        let n = rempart_store::rewrite_json(&mut v, rewrite);
        if n > 0 {
            let mut fresh: State = serde_json::from_value(v)?;
            fresh.baselines.set_params(params(&self.config));
            *s = fresh;
        }
        Ok(n)
    }

    /// Saves the state in the store.
    pub async fn save(&self, store: &dyn rempart_store::Store) -> Result<(), String> {
        let state = self.snapshot().map_err(|e| e.to_string())?;
        store
            .state_put(STATE_NAME, &state, Timestamp::now())
            .await
            .map_err(|e| e.to_string())
    }

    /// Loads the stored state, or starts fresh as `config` says (also when the stored state no
    /// longer reads, which is logged). The configuration's thresholds and sources apply to a
    /// loaded state too; a flow model keeps the warm-up it was made with.
    pub async fn load(store: &dyn rempart_store::Store, config: &rempart_config::Anomaly) -> Arc<Anomaly> {
        let loaded = match store.state_get(STATE_NAME).await {
            Ok(Some(v)) => match serde_json::from_value::<State>(v) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "stored anomaly state does not read; starting fresh");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored anomaly state; starting fresh");
                None
            }
        };
        Arc::new(match loaded {
            Some(state) => Anomaly::with_state(config, state),
            None => Anomaly::fresh(config),
        })
    }

    /// The detectors holding `state` (a [`Anomaly::snapshot`]), set up by `config`.
    pub fn restore(config: &rempart_config::Anomaly, state: Value) -> Result<Anomaly, serde_json::Error> {
        Ok(Anomaly::with_state(config, serde_json::from_value(state)?))
    }

    fn with_state(config: &rempart_config::Anomaly, mut state: State) -> Anomaly {
        state.baselines.set_params(params(config));
        Anomaly {
            state: Mutex::new(state),
            config: config.clone(),
        }
    }
}

//! The one event type every decoder produces.
//!
//! An [`Event`] keeps the original fields exactly as the source wrote them (`fields`) and adds
//! normalized fields in the OCSF/ECS spirit (`normalized`), so that detection and triage can ask
//! "which user, which host, which process" without knowing whether the event came from Sysmon,
//! a firewall's CEF or Zeek. Normalized fields are derived; the originals stay the truth.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{DataClass, Fields, Format};

/// A unique, time-ordered event identifier (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh identifier, ordered by creation time.
    pub fn generate() -> Self {
        EventId(Uuid::now_v7())
    }

    /// The id of what `key` names about this event (an alert: the rule that matched it), the
    /// same every time for the same pair: a redelivered event raises an alert with the id it
    /// had, which the store then skips. It keeps this id's first 12 bytes (its time, version,
    /// counter and variant), so derived ids sort exactly as their events do, and takes the last
    /// four from the name-based (RFC 9562 §5.5) hash of this id and `key`, which tells apart
    /// what several keys derive from one event.
    pub fn derive(self, key: &str) -> EventId {
        let mut name = Vec::with_capacity(16 + key.len());
        name.extend_from_slice(self.0.as_bytes());
        name.extend_from_slice(key.as_bytes());
        let hash = Uuid::new_v5(&DERIVED, &name);
        let mut bytes = *self.0.as_bytes();
        bytes[12..].copy_from_slice(&hash.as_bytes()[12..]);
        EventId(
            uuid::Builder::from_bytes(bytes)
                .with_version(uuid::Version::SortRand)
                .with_variant(uuid::Variant::RFC4122)
                .into_uuid(),
        )
    }
}

/// The namespace of [`EventId::derive`]'s names.
const DERIVED: Uuid = Uuid::from_u128(0x5d1c_8f0e_3a6b_4c27_9e41_b2d8_70f5_a613);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(EventId)
    }
}

/// Severity on the OCSF scale (`severity_id` 1 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// From a syslog severity (RFC 5424 §6.2.1: 0 emergency … 7 debug).
    pub fn from_syslog(level: u8) -> Severity {
        match level {
            0 | 1 => Severity::Critical,
            2 | 3 => Severity::High,
            4 => Severity::Medium,
            5 => Severity::Low,
            _ => Severity::Info,
        }
    }

    /// From a CEF severity: 0-10 or the names `Low`, `Medium`, `High`, `Very-High`.
    pub fn from_cef(value: &str) -> Option<Severity> {
        match value.trim().to_ascii_lowercase().as_str() {
            "unknown" => None,
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "very-high" | "very high" => Some(Severity::Critical),
            other => match other.parse::<u8>().ok()? {
                0 => Some(Severity::Info),
                1..=3 => Some(Severity::Low),
                4..=6 => Some(Severity::Medium),
                7 | 8 => Some(Severity::High),
                9 | 10 => Some(Severity::Critical),
                _ => None,
            },
        }
    }

    /// From a Windows event `Level` (1 critical, 2 error, 3 warning, 4 information, 5 verbose).
    pub fn from_windows_level(level: u64) -> Option<Severity> {
        match level {
            1 => Some(Severity::Critical),
            2 => Some(Severity::High),
            3 => Some(Severity::Medium),
            0 | 4 | 5 => Some(Severity::Info),
            _ => None,
        }
    }

    /// From a Suricata alert severity (1 highest, 3 lowest by default; 4 is sometimes used).
    pub fn from_suricata(level: u64) -> Severity {
        match level {
            1 => Severity::High,
            2 => Severity::Medium,
            3 => Severity::Low,
            _ => Severity::Info,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Where an event came from, precisely enough to go back and look.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Origin {
    /// The source: a file path (with the member inside an archive after `!`), `http`,
    /// `syslog-udp://ADDR`, `syslog-tcp://ADDR`.
    pub source: String,
    /// Where inside the source: `line 12`, `record 4711`, `byte 1024`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Fields normalized across formats, named in the OCSF/ECS spirit. Every field is optional:
/// a decoder fills what its source says and nothing it would have to guess.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Normalized {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The acting process image (path or name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_process: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_process_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_command_line: Option<String>,
    /// Windows `EventID`, Zeek stream's absence of one, CEF's signature id when numeric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u32>,
    /// Windows channel (`Security`, `Microsoft-Windows-Sysmon/Operational`), Zeek log stream
    /// (`conn`, `dns`), Suricata event type (`alert`, `flow`), syslog app name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Windows provider, CEF vendor/product, `suricata`, `zeek`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// A short human-readable summary: syslog message, CEF name, Suricata signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One piece of security telemetry, decoded and normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    /// When it happened, as the source says; the ingest time when the source does not say.
    pub time: Timestamp,
    /// When Rempart received it.
    pub ingested: Timestamp,
    pub format: Format,
    pub origin: Origin,
    pub class: DataClass,
    pub normalized: Normalized,
    /// The original fields, verbatim (with the JSON text they came in, when they came as
    /// JSON: see [`Fields`]).
    pub fields: Fields,
}

impl Event {
    /// A new event with a fresh id and no normalized fields yet.
    pub fn new(format: Format, time: Timestamp, ingested: Timestamp, fields: impl Into<Fields>) -> Self {
        Event {
            id: EventId::generate(),
            time,
            ingested,
            format,
            origin: Origin::default(),
            class: DataClass::default(),
            normalized: Normalized::default(),
            fields: fields.into(),
        }
    }

    /// An original field by a dotted path (`Event.System.Computer`, `winlog.event_data.User`).
    /// A key that itself contains dots is found before its dotted reading.
    pub fn field(&self, path: &str) -> Option<&Value> {
        lookup_path(&self.fields, path)
    }
}

/// Looks up `path` in `map`: the whole path as one key first, then every split at a dot, the
/// shortest head first (`a.b.c` tries `a.b.c`, then `a` → `b.c`, then `a.b` → `c`).
///
/// A map of a few dozen keys (an event's) is searched in one pass over its keys, which answers
/// the whole path and every head of it at once: normalization asks for many paths that are
/// not there, and hashing each path and each head with the map's SipHash cost more than the
/// pass (`lookup_path_is_the_hashed_lookup`, the bench `ndjson/decode+normalize`).
pub fn lookup_path<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    /// The most keys searched by a pass, and the most heads of a path it keeps.
    const SCAN_MAX: usize = 48;
    const HEADS_MAX: usize = 8;
    if map.len() > SCAN_MAX {
        return lookup_hashed(map, path);
    }
    let p = path.as_bytes();
    let mut heads: [(usize, Option<&'a Map<String, Value>>); HEADS_MAX] = [(0, None); HEADS_MAX];
    let mut n = 0;
    for (k, v) in map {
        let k = k.as_bytes();
        if k.len() == p.len() {
            if k == p {
                return Some(v);
            }
        } else if k.len() < p.len()
            && p[k.len()] == b'.'
            && let Value::Object(inner) = v
            && p.starts_with(k)
        {
            if n == HEADS_MAX {
                return lookup_hashed(map, path);
            }
            heads[n] = (k.len(), Some(inner));
            n += 1;
        }
    }
    let heads = &mut heads[..n];
    heads.sort_unstable_by_key(|(len, _)| *len);
    heads
        .iter()
        .find_map(|&(len, inner)| lookup_path(inner?, &path[len + 1..]))
}

/// [`lookup_path`] by the map's hash: the whole path, then each head.
fn lookup_hashed<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    path.match_indices('.').find_map(|(i, _)| match map.get(&path[..i])? {
        Value::Object(inner) => lookup_path(inner, &path[i + 1..]),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The lookup by hash alone, as `lookup_path` was before its pass over the keys.
    fn hashed(map: &Map<String, Value>, path: &str) -> Option<Value> {
        if let Some(v) = map.get(path) {
            return Some(v.clone());
        }
        path.match_indices('.').find_map(|(i, _)| match map.get(&path[..i])? {
            Value::Object(inner) => hashed(inner, &path[i + 1..]),
            _ => None,
        })
    }

    /// A map whose keys may hold dots and whose values may be maps, with `filler` more keys.
    fn map_strategy() -> impl proptest::strategy::Strategy<Value = Map<String, Value>> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec!["a", "b", "c", "a.b", "b.c", "a.b.c", "", "é", "a.", ".b"]);
        let leaf = prop::sample::select(vec!["1", "2", "3"]).prop_map(|s| Value::String(s.to_owned()));
        let nested = key.clone();
        let value = leaf.prop_recursive(3, 24, 4, move |inner| {
            prop::collection::vec((nested.clone(), inner), 0..5)
                .prop_map(|kvs| Value::Object(kvs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        });
        (prop::collection::vec((key, value), 0..8), 0..60usize).prop_map(|(kvs, filler)| {
            let mut m: Map<String, Value> = kvs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            for i in 0..filler {
                m.insert(format!("filler{i}"), Value::Bool(true));
            }
            m
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The pass over a map's keys finds what looking up the path and each head by hash
        /// finds, literal keys with dots before their dotted reading, in maps small and large.
        #[test]
        fn lookup_path_is_the_hashed_lookup(
            map in map_strategy(),
            path in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "c", "é", ""]), 1..5),
        ) {
            let path = path.join(".");
            proptest::prop_assert_eq!(lookup_path(&map, &path).cloned(), hashed(&map, &path), "{}", path);
        }
    }

    fn event(fields: Value) -> Event {
        let Value::Object(map) = fields else {
            panic!("test fixture must be an object")
        };
        Event::new(Format::Json, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
    }

    #[test]
    fn field_lookup_follows_dotted_paths_and_prefers_literal_keys() {
        let e = event(json!({"a": {"b": {"c": 1}}, "a.b": 2, "x.y": {"z": 3}}));
        assert_eq!(e.field("a.b"), Some(&json!(2)));
        assert_eq!(e.field("a.b.c"), Some(&json!(1)));
        assert_eq!(e.field("x.y.z"), Some(&json!(3)));
        assert_eq!(e.field("a.q"), None);
        // Of two heads that both lead somewhere, the shorter is read first, whatever the order
        // of the keys.
        for fields in [
            json!({"a": {"b.c": 1}, "a.b": {"c": 2}}),
            json!({"a.b": {"c": 2}, "a": {"b.c": 1}}),
        ] {
            assert_eq!(event(fields).field("a.b.c"), Some(&json!(1)));
        }
    }

    #[test]
    fn derived_ids_are_stable_distinct_and_sort_with_their_event() {
        let events: Vec<EventId> = (0..200).map(|_| EventId::generate()).collect();
        let mut seen = std::collections::HashSet::new();
        for (i, e) in events.iter().enumerate() {
            for key in ["rule-a", "rule-b", "", "rempart-anomaly/rare-parent", "ü"] {
                let d = e.derive(key);
                assert_eq!(d, e.derive(key), "derivation is deterministic");
                assert_eq!(d.0.get_version(), Some(uuid::Version::SortRand));
                assert_eq!(d.0.get_variant(), uuid::Variant::RFC4122);
                assert_eq!(d.0.as_bytes()[..6], e.0.as_bytes()[..6], "the event's time");
                assert!(seen.insert(d), "event {i}, key {key:?}: a derived id collides");
            }
        }
        // Keys are not confused with the id they are appended to.
        assert_ne!(events[0].derive("ab"), events[0].derive("a"));
        // Ids derived from events generated one after the other sort as the events do.
        for pair in events.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].derive("z") < pair[1].derive("a"), "{pair:?}");
        }
    }

    #[test]
    fn event_ids_are_time_ordered() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<EventId>().ok(), Some(a));
    }

    #[test]
    fn severities_map_from_each_scale() {
        assert_eq!(Severity::from_syslog(0), Severity::Critical);
        assert_eq!(Severity::from_syslog(6), Severity::Info);
        assert_eq!(Severity::from_cef("Very-High"), Some(Severity::Critical));
        assert_eq!(Severity::from_cef("7"), Some(Severity::High));
        assert_eq!(Severity::from_cef("11"), None);
        assert_eq!(Severity::from_windows_level(2), Some(Severity::High));
        assert_eq!(Severity::from_suricata(1), Severity::High);
    }

    #[test]
    fn empty_normalized_fields_serialize_to_nothing() {
        let n = Normalized::default();
        assert_eq!(serde_json::to_string(&n).ok().as_deref(), Some("{}"));
    }
}

//! Windows events: the JSON shapes they are exported in, and their normalization.
//!
//! Three shapes exist in the wild and in `../shared/data`:
//! - evtx_dump / the `evtx` crate: `{"Event": {"System": {…}, "EventData": {…}}}`, with XML
//!   attributes under `#attributes`;
//! - Winlogbeat: `{"winlog": {"channel", "event_id", "provider_name", "event_data": {…}}}`;
//! - Winlogbeat 6: `event_id`, `log_name`, `source_name`, `computer_name` and `event_data` at
//!   the top level (older OTRF data sets);
//! - flat exports (NXLog, the OTRF data sets): every field at the top level, with `EventID`,
//!   `Channel`, `SourceName`/`ProviderName`, `Hostname`.
//!
//! All three normalize through one function reading the event data and the system fields.

use jiff::Timestamp;
use rempart_model::{Event, Fields, Format, Normalized, Severity};
use serde_json::{Map, Value};

use super::fields::{lookup, parse_ip, split_domain_user, text, uint, value_text, value_uint};
use super::time;

/// Whether a JSON object is a Windows event in one of the known shapes.
pub fn is_windows_json(map: &Map<String, Value>) -> bool {
    if let Some(Value::Object(event)) = map.get("Event") {
        return event.contains_key("System");
    }
    if matches!(map.get("winlog"), Some(Value::Object(_))) {
        return true;
    }
    if map.contains_key("event_id") && (map.contains_key("log_name") || map.contains_key("computer_name")) {
        return true;
    }
    map.contains_key("EventID")
        && (map.contains_key("Channel")
            || map.contains_key("SourceName")
            || map.contains_key("ProviderName")
            || map.contains_key("Computer")
            || map.contains_key("Hostname"))
}

/// The parts of a Windows event that normalization reads, whatever the export shape.
struct Parts<'a> {
    system: System,
    /// `EventData` (or the single child of `UserData`), or the whole flat record.
    data: Option<&'a Map<String, Value>>,
}

#[derive(Default)]
struct System {
    time: Option<Timestamp>,
    event_id: Option<u64>,
    channel: Option<String>,
    provider: Option<String>,
    computer: Option<String>,
    level: Option<u64>,
    user_sid: Option<String>,
    process_id: Option<u64>,
}

/// Decodes a Windows event exported as JSON.
pub fn from_json(fields: impl Into<Fields>, now: Timestamp) -> Event {
    let fields = fields.into();
    let parts = parts(&fields);
    let time = parts.system.time.unwrap_or(now);
    let normalized = normalize(&parts);
    let mut event = Event::new(Format::WindowsJson, time, now, Map::new());
    event.normalized = normalized;
    event.fields = fields;
    event
}

/// Normalizes a record as the `evtx` crate renders it (the evtx_dump shape). Used by the
/// EVTX decoder, which produces exactly that shape.
pub fn normalize_evtx_dump(map: &Map<String, Value>) -> (Option<Timestamp>, Normalized) {
    let parts = parts(map);
    (parts.system.time, normalize(&parts))
}

fn parts(map: &Map<String, Value>) -> Parts<'_> {
    if let Some(Value::Object(event)) = map.get("Event") {
        let system = event
            .get("System")
            .and_then(Value::as_object)
            .map(dump_system)
            .unwrap_or_default();
        let data = event
            .get("EventData")
            .and_then(Value::as_object)
            .filter(|d| !d.is_empty())
            .or_else(|| {
                // UserData holds one element named after the event's template.
                let user = event.get("UserData")?.as_object()?;
                user.values().find_map(Value::as_object)
            });
        return Parts { system, data };
    }
    if let Some(Value::Object(winlog)) = map.get("winlog") {
        let system = System {
            time: ["@timestamp", "event.created"]
                .iter()
                .find_map(|k| lookup(map, k).and_then(time::from_value)),
            event_id: uint(winlog, &["event_id"]),
            channel: text(winlog, &["channel"]),
            provider: text(winlog, &["provider_name"]),
            computer: text(winlog, &["computer_name"]).or_else(|| text(map, &["host.name", "host.hostname"])),
            level: text(map, &["log.level"]).and_then(|l| level_word(&l)),
            user_sid: text(winlog, &["user.identifier"]),
            process_id: uint(winlog, &["process.pid"]),
        };
        let data = winlog.get("event_data").and_then(Value::as_object);
        return Parts { system, data };
    }
    if map.contains_key("event_id") && (map.contains_key("log_name") || map.contains_key("computer_name")) {
        // Winlogbeat 6.
        let system = System {
            time: map.get("@timestamp").and_then(time::from_value),
            event_id: uint(map, &["event_id"]),
            channel: text(map, &["log_name"]),
            provider: text(map, &["source_name"]),
            computer: text(map, &["computer_name", "host.name"]),
            level: text(map, &["level"]).and_then(|l| level_word(&l)),
            user_sid: text(map, &["user.identifier"]),
            process_id: uint(map, &["process_id"]),
        };
        return Parts {
            system,
            data: map.get("event_data").and_then(Value::as_object),
        };
    }
    // Flat: the OTRF / NXLog shape.
    let system = System {
        time: ["@timestamp", "TimeCreated", "EventTime", "UtcTime", "timestamp"]
            .iter()
            .find_map(|k| map.get(*k).and_then(time::from_value)),
        event_id: uint(map, &["EventID", "EventId"]),
        channel: text(map, &["Channel"]),
        provider: text(map, &["SourceName", "ProviderName", "Provider_Name", "Provider"]),
        computer: text(map, &["Hostname", "Computer", "ComputerName"]),
        level: uint(map, &["Level"]),
        user_sid: text(map, &["UserID"]),
        process_id: uint(map, &["ExecutionProcessID"]),
    };
    Parts {
        system,
        data: Some(map),
    }
}

fn dump_system(sys: &Map<String, Value>) -> System {
    let attr = |key: &str, name: &str| -> Option<&Value> { sys.get(key)?.get("#attributes")?.get(name) };
    System {
        time: attr("TimeCreated", "SystemTime").and_then(time::from_value),
        // `EventID` is a number, or `{"#text": n, "#attributes": {"Qualifiers": …}}`.
        event_id: sys
            .get("EventID")
            .and_then(|v| value_uint(v).or_else(|| value_uint(v.get("#text")?))),
        channel: sys.get("Channel").and_then(value_text),
        provider: attr("Provider", "Name").and_then(value_text),
        computer: sys.get("Computer").and_then(value_text),
        level: sys.get("Level").and_then(value_uint),
        user_sid: attr("Security", "UserID").and_then(value_text),
        process_id: attr("Execution", "ProcessID").and_then(value_uint),
    }
}

fn level_word(s: &str) -> Option<u64> {
    match s.to_ascii_lowercase().as_str() {
        "critical" => Some(1),
        "error" => Some(2),
        "warning" => Some(3),
        "information" | "info" => Some(4),
        "verbose" => Some(5),
        _ => None,
    }
}

/// The names of the event data fields [`normalize`] reads, and where each one's value is
/// kept in a [`Data`]: an event's data is read in one pass over its keys, not searched once
/// for each of these names (a search per name was 6 % of decoding real Windows JSON).
macro_rules! data_names {
    ($($name:literal),+ $(,)?) => {
        const DATA_NAMES: &[&str] = &[$($name),+];

        /// Where a key of an event's data is kept, if normalization reads it.
        fn data_slot_of(key: &str) -> Option<usize> {
            match key {
                $($name => Some(const { data_slot($name) }),)+
                _ => None,
            }
        }
    };
}

data_names!(
    "Image",
    "NewProcessName",
    "ProcessName",
    "Application",
    "SourceImage",
    "ProcessId",
    "NewProcessId",
    "ProcessID",
    "SourceProcessId",
    "CommandLine",
    "ProcessCommandLine",
    "ScriptBlockText",
    "ParentImage",
    "ParentProcessName",
    "ParentProcessId",
    "CreatorProcessId",
    "ParentCommandLine",
    "TargetUserName",
    "TargetDomainName",
    "SubjectUserName",
    "SubjectDomainName",
    "User",
    "AccountName",
    "UserName",
    "SourceUser",
    "Domain",
    "AccountDomain",
    "SourceIp",
    "IpAddress",
    "SourceAddress",
    "ClientAddress",
    "SourcePort",
    "IpPort",
    "ClientPort",
    "DestinationIp",
    "DestAddress",
    "DestinationAddress",
    "DestinationPort",
    "DestPort",
    "Protocol",
    "Hostname",
    "Computer",
    "WorkstationName",
    "Message",
    "RuleName",
);

/// Where `name` is kept in a [`Data`]; a name missing from [`DATA_NAMES`] does not compile.
const fn data_slot(name: &str) -> usize {
    let mut i = 0;
    while i < DATA_NAMES.len() {
        if const_str_eq(DATA_NAMES[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("a field name normalization reads is missing from DATA_NAMES")
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The slots of names, checked when compiled: `slots!["Image", "NewProcessName"]`.
macro_rules! slots {
    ($($name:literal),+ $(,)?) => {
        [$(const { data_slot($name) }),+]
    };
}

/// The values of an event's data that normalization reads, found in one pass over its keys.
/// Each name's value is the one [`lookup`] finds: none of the names has a dot, so each is a
/// key of the data itself.
struct Data<'a> {
    values: [Option<&'a Value>; DATA_NAMES.len()],
}

impl<'a> Data<'a> {
    fn of(map: &'a Map<String, Value>) -> Data<'a> {
        let mut values = [None; DATA_NAMES.len()];
        for (k, v) in map {
            if let Some(i) = data_slot_of(k) {
                values[i] = Some(v);
            }
        }
        Data { values }
    }

    fn get(&self, slot: usize) -> Option<&'a Value> {
        self.values.get(slot).copied().flatten()
    }

    /// The first of `slots` whose value reads as text (as [`text`]).
    fn text(&self, slots: &[usize]) -> Option<String> {
        slots.iter().find_map(|&i| value_text(self.get(i)?))
    }

    /// The first of `slots` whose value reads as an unsigned integer (as [`uint`]).
    fn uint(&self, slots: &[usize]) -> Option<u64> {
        slots.iter().find_map(|&i| value_uint(self.get(i)?))
    }

    /// The first of `slots` whose value reads as an IP address (as [`super::fields::ip`]).
    fn ip(&self, slots: &[usize]) -> Option<std::net::IpAddr> {
        slots.iter().find_map(|&i| match self.get(i)? {
            Value::String(s) => parse_ip(s),
            _ => None,
        })
    }

    /// The first of `slots` whose value reads as a port (as [`super::fields::port`]).
    fn port(&self, slots: &[usize]) -> Option<u16> {
        self.uint(slots).and_then(|p| u16::try_from(p).ok())
    }
}

fn normalize(parts: &Parts<'_>) -> Normalized {
    let sys = &parts.system;
    let mut n = Normalized {
        host: sys.computer.clone(),
        event_id: sys.event_id.and_then(|v| u32::try_from(v).ok()),
        channel: sys.channel.clone(),
        provider: sys.provider.clone(),
        severity: sys.level.and_then(Severity::from_windows_level),
        ..Normalized::default()
    };
    let Some(d) = parts.data else {
        n.user = sys.user_sid.clone();
        return n;
    };
    let d = Data::of(d);
    // Process: Sysmon (`Image`), Security 4688 (`NewProcessName`), others (`ProcessName`).
    n.process = d.text(&slots![
        "Image",
        "NewProcessName",
        "ProcessName",
        "Application",
        "SourceImage"
    ]);
    n.process_id = d
        .uint(&slots!["ProcessId", "NewProcessId", "ProcessID", "SourceProcessId"])
        .or(sys.process_id);
    n.command_line = d.text(&slots!["CommandLine", "ProcessCommandLine", "ScriptBlockText"]);
    n.parent_process = d.text(&slots!["ParentImage", "ParentProcessName"]);
    n.parent_process_id = d.uint(&slots!["ParentProcessId", "CreatorProcessId"]);
    n.parent_command_line = d.text(&slots!["ParentCommandLine"]);

    // User: the account acted upon where the event names one (logons), else the actor.
    let subject = || d.text(&slots!["SubjectUserName"]);
    if let Some(target) = d
        .text(&slots!["TargetUserName"])
        .filter(|u| !u.ends_with('$') || subject().is_none())
    {
        n.user = Some(target);
        n.user_domain = d.text(&slots!["TargetDomainName"]);
    } else if let Some(user) = d.text(&slots!["User", "AccountName", "UserName", "SourceUser"]) {
        let (domain, name) = split_domain_user(&user);
        n.user = Some(name);
        n.user_domain = domain.or_else(|| d.text(&slots!["Domain", "AccountDomain"]));
    } else if let Some(subject) = subject() {
        n.user = Some(subject);
        n.user_domain = d.text(&slots!["SubjectDomainName"]);
    } else {
        n.user = sys.user_sid.clone();
    }

    // Network: Sysmon 3 (`SourceIp`), Security logons (`IpAddress`), WFP 5156 (`SourceAddress`).
    n.src_ip = d.ip(&slots!["SourceIp", "IpAddress", "SourceAddress", "ClientAddress"]);
    n.src_port = d.port(&slots!["SourcePort", "IpPort", "ClientPort"]);
    n.dst_ip = d.ip(&slots!["DestinationIp", "DestAddress", "DestinationAddress"]);
    n.dst_port = d.port(&slots!["DestinationPort", "DestPort"]);
    n.protocol = d.text(&slots!["Protocol"]);
    if n.host.is_none() {
        n.host = d.text(&slots!["Hostname", "Computer", "WorkstationName"]);
    }
    n.message = d.text(&slots!["Message", "RuleName"]).filter(|m| m != "-");
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Keys of event data: the names normalization reads, their dotted and differently cased
    /// neighbours, and others.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(DATA_NAMES).prop_map(str::to_owned),
            proptest::sample::select(DATA_NAMES).prop_map(|n| format!("{n}.x")),
            proptest::sample::select(DATA_NAMES).prop_map(|n| format!("Event.{n}")),
            proptest::sample::select(DATA_NAMES).prop_map(str::to_ascii_lowercase),
            "[A-Za-z.]{1,12}",
        ]
    }

    /// Values as exports write them: text (placeholders, numbers, addresses), numbers, and the
    /// rest.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            proptest::sample::select(vec![
                "-",
                "",
                " 10.0.0.1 ",
                "::ffff:10.1.2.3",
                "[2001:db8::1]",
                "0x1F4",
                "445",
                "70000",
                "CORP\\alice",
                "host$"
            ])
            .prop_map(|s| json!(s)),
            "[ -~]{0,12}".prop_map(Value::String),
            any::<u32>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            Just(json!({"Image": "nested", "x": 1})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The one pass over an event's data finds, for any names normalization asks for,
        /// what looking each name up finds, read as text, number, address or port alike; in
        /// data small and large (past the size where lookups hash).
        #[test]
        fn one_pass_reads_what_a_lookup_per_name_reads(
            entries in proptest::collection::vec((key(), value()), 0..70),
            names in proptest::collection::vec(proptest::sample::select(DATA_NAMES), 1..5),
        ) {
            let map: Map<String, Value> = entries.into_iter().collect();
            let d = Data::of(&map);
            for name in DATA_NAMES {
                prop_assert_eq!(d.get(data_slot(name)), lookup(&map, name), "{}", name);
            }
            let slots: Vec<usize> = names.iter().map(|n| data_slot(n)).collect();
            prop_assert_eq!(d.text(&slots), text(&map, &names));
            prop_assert_eq!(d.uint(&slots), uint(&map, &names));
            prop_assert_eq!(d.ip(&slots), super::super::fields::ip(&map, &names));
            prop_assert_eq!(d.port(&slots), super::super::fields::port(&map, &names));
        }
    }

    #[test]
    fn every_data_name_has_its_own_slot() {
        for (i, name) in DATA_NAMES.iter().enumerate() {
            assert_eq!(data_slot_of(name), Some(i), "{name}");
            assert_eq!(data_slot(name), i, "{name}");
        }
        assert_eq!(data_slot_of("image"), None);
        assert_eq!(data_slot_of("Event.Image"), None);
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn evtx_dump_shape_normalizes_sysmon_process_creation() {
        let m = obj(json!({"Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1, "Level": 4, "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "ws1.corp.example",
                "TimeCreated": {"#attributes": {"SystemTime": "2025-11-27T07:40:10.165324Z"}}
            },
            "EventData": {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c whoami",
                          "ParentImage": "C:\\Windows\\explorer.exe", "User": "CORP\\alice", "ProcessId": 4460}
        }}));
        let e = from_json(m, Timestamp::UNIX_EPOCH);
        assert_eq!(e.time.to_string(), "2025-11-27T07:40:10.165324Z");
        let n = &e.normalized;
        assert_eq!(n.host.as_deref(), Some("ws1.corp.example"));
        assert_eq!(n.event_id, Some(1));
        assert_eq!(n.user.as_deref(), Some("alice"));
        assert_eq!(n.user_domain.as_deref(), Some("CORP"));
        assert_eq!(n.command_line.as_deref(), Some("cmd /c whoami"));
        assert_eq!(n.parent_process.as_deref(), Some("C:\\Windows\\explorer.exe"));
        assert_eq!(n.process_id, Some(4460));
    }

    #[test]
    fn security_logon_prefers_target_user_and_reads_ip() {
        let m = obj(json!({"EventID": 4624, "Channel": "Security", "Hostname": "DC1",
            "SubjectUserName": "DC1$", "TargetUserName": "bob", "TargetDomainName": "CORP",
            "IpAddress": "10.0.0.5", "IpPort": "51234", "@timestamp": "2020-01-01T00:00:00Z"}));
        assert!(is_windows_json(&m));
        let e = from_json(m, Timestamp::UNIX_EPOCH);
        assert_eq!(e.normalized.user.as_deref(), Some("bob"));
        assert_eq!(e.normalized.src_ip, "10.0.0.5".parse().ok());
        assert_eq!(e.normalized.src_port, Some(51234));
    }

    #[test]
    fn winlogbeat_6_shape_is_read() {
        let m = obj(
            json!({"@timestamp": "2019-05-18T20:36:46.254Z", "event_id": 3, "log_name": "Microsoft-Windows-Sysmon/Operational",
            "source_name": "Microsoft-Windows-Sysmon", "computer_name": "HFDC01.shire.com", "level": "Information",
            "user": {"name": "SYSTEM", "identifier": "S-1-5-18"},
            "event_data": {"Image": "C:\\Windows\\System32\\svchost.exe", "User": "NT AUTHORITY\\NETWORK SERVICE",
                           "SourceIp": "172.18.39.5", "DestinationIp": "172.18.39.102", "DestinationPort": "5985"}}),
        );
        assert!(is_windows_json(&m));
        let e = from_json(m, Timestamp::UNIX_EPOCH);
        assert_eq!(e.normalized.host.as_deref(), Some("HFDC01.shire.com"));
        assert_eq!(
            e.normalized.channel.as_deref(),
            Some("Microsoft-Windows-Sysmon/Operational")
        );
        assert_eq!(e.normalized.user.as_deref(), Some("NETWORK SERVICE"));
        assert_eq!(e.normalized.dst_port, Some(5985));
        assert_eq!(e.normalized.severity, Some(Severity::Info));
    }

    #[test]
    fn winlogbeat_shape_is_read() {
        let m = obj(json!({"@timestamp": "2021-05-01T10:00:00Z", "winlog": {
            "channel": "Security", "event_id": 4688, "provider_name": "Microsoft-Windows-Security-Auditing",
            "computer_name": "ws2", "event_data": {"NewProcessName": "C:\\x.exe", "SubjectUserName": "carol",
            "CommandLine": "x.exe -y"}}}));
        let e = from_json(m, Timestamp::UNIX_EPOCH);
        assert_eq!(e.normalized.process.as_deref(), Some("C:\\x.exe"));
        assert_eq!(e.normalized.user.as_deref(), Some("carol"));
        assert_eq!(e.normalized.event_id, Some(4688));
        assert_eq!(e.time.to_string(), "2021-05-01T10:00:00Z");
    }
}

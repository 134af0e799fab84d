//! JSON records: classification into Windows, Suricata EVE, Zeek or generic JSON, and the
//! normalization of each.

use jiff::Timestamp;
use rempart_model::{Event, Fields, Format, Normalized, Severity};
use serde_json::{Map, Value};

use super::fields::{ip, lookup, port, text, uint};
use super::{DecodeOptions, time, windows};

/// Where generic JSON usually keeps its time, in order of preference.
const TIME_FIELDS: &[&str] = &[
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "eventTime",
    "EventTime",
    "event.created",
    "date",
    "datetime",
    "TimeCreated",
];

/// Decodes one JSON object. Never fails: any object is a valid generic event.
pub fn decode(map: Fields, now: Timestamp, opts: &DecodeOptions) -> Event {
    let format = match opts.format {
        Some(f @ (Format::WindowsJson | Format::SuricataEve | Format::ZeekJson | Format::Json)) => f,
        _ => classify(&map),
    };
    let mut event = match format {
        Format::WindowsJson => windows::from_json(map, now),
        Format::SuricataEve => suricata(map, now),
        Format::ZeekJson => zeek(map, now),
        _ => generic(map, now, opts.timestamp_field.as_deref()),
    };
    event.class = opts.class;
    event
}

/// Tells which kind of JSON record this is, from the keys only.
pub fn classify(map: &Map<String, Value>) -> Format {
    if windows::is_windows_json(map) {
        Format::WindowsJson
    } else if map.get("event_type").is_some_and(Value::is_string)
        && (map.contains_key("flow_id") || map.contains_key("src_ip") || map.contains_key("in_iface"))
    {
        Format::SuricataEve
    } else if map.contains_key("ts")
        && (map.contains_key("uid")
            || map.contains_key("id.orig_h")
            || map.contains_key("id_orig_h")
            || map.contains_key("_path")
            || map.contains_key("@stream"))
    {
        Format::ZeekJson
    } else {
        Format::Json
    }
}

fn generic(map: Fields, now: Timestamp, timestamp_field: Option<&str>) -> Event {
    let time = timestamp_field
        .and_then(|f| lookup(&map, f))
        .and_then(time::from_value)
        .or_else(|| {
            TIME_FIELDS
                .iter()
                .find_map(|f| lookup(&map, f).and_then(time::from_value))
        })
        .unwrap_or(now);
    let n = Normalized {
        host: text(
            &map,
            &[
                "host.name",
                "hostname",
                "host",
                "Hostname",
                "computer",
                "Computer",
                "device.hostname",
            ],
        ),
        user: text(&map, &["user.name", "user", "username", "userName", "User", "src_user"]),
        user_domain: text(&map, &["user.domain"]),
        src_ip: ip(
            &map,
            &[
                "source.ip",
                "src_ip",
                "srcip",
                "src",
                "client_ip",
                "clientIp",
                "sourceIPAddress",
                "ip",
            ],
        ),
        src_port: port(&map, &["source.port", "src_port", "srcport", "sport"]),
        dst_ip: ip(
            &map,
            &["destination.ip", "dest_ip", "dst_ip", "dstip", "dst", "server_ip"],
        ),
        dst_port: port(&map, &["destination.port", "dest_port", "dst_port", "dstport", "dport"]),
        protocol: text(&map, &["network.transport", "network.protocol", "proto", "protocol"]),
        process: text(&map, &["process.executable", "process.name", "process", "Image", "exe"]),
        process_id: uint(&map, &["process.pid", "pid", "ProcessId"]),
        command_line: text(
            &map,
            &["process.command_line", "command_line", "CommandLine", "cmdline"],
        ),
        parent_process: text(
            &map,
            &["process.parent.executable", "process.parent.name", "ParentImage"],
        ),
        parent_process_id: uint(&map, &["process.parent.pid", "ppid", "ParentProcessId"]),
        parent_command_line: text(&map, &["process.parent.command_line", "ParentCommandLine"]),
        event_id: uint(&map, &["event.code", "EventID", "event_id"]).and_then(|v| u32::try_from(v).ok()),
        channel: text(&map, &["event.dataset", "log.file.path", "channel", "Channel"]),
        provider: text(
            &map,
            &["event.provider", "event.module", "observer.product", "provider"],
        ),
        severity: text(&map, &["log.level", "level", "severity", "event.severity"]).and_then(|s| severity_word(&s)),
        message: text(&map, &["message", "msg", "Message", "event.original"]),
    };
    let mut event = Event::new(Format::Json, time, now, map);
    event.normalized = n;
    event
}

/// Common words for log levels, and numeric levels read on the syslog scale.
fn severity_word(s: &str) -> Option<Severity> {
    match s.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "info" | "informational" | "notice" | "information" => Some(Severity::Info),
        "low" => Some(Severity::Low),
        "warn" | "warning" | "medium" => Some(Severity::Medium),
        "error" | "err" | "high" => Some(Severity::High),
        "critical" | "crit" | "fatal" | "alert" | "emerg" | "emergency" => Some(Severity::Critical),
        other => other.parse::<u8>().ok().filter(|l| *l <= 7).map(Severity::from_syslog),
    }
}

fn suricata(map: Fields, now: Timestamp) -> Event {
    let time = map.get("timestamp").and_then(time::from_value).unwrap_or(now);
    let event_type = text(&map, &["event_type"]);
    let alert_severity = uint(&map, &["alert.severity"]);
    let n = Normalized {
        host: text(&map, &["host", "hostname", "sensor_name"]),
        src_ip: ip(&map, &["src_ip"]),
        src_port: port(&map, &["src_port"]),
        dst_ip: ip(&map, &["dest_ip"]),
        dst_port: port(&map, &["dest_port"]),
        protocol: text(&map, &["app_proto", "proto"]).map(|p| p.to_ascii_lowercase()),
        event_id: uint(&map, &["alert.signature_id"]).and_then(|v| u32::try_from(v).ok()),
        channel: event_type.clone(),
        provider: Some("suricata".to_owned()),
        severity: match alert_severity {
            Some(level) => Some(Severity::from_suricata(level)),
            None if event_type.as_deref() == Some("alert") => Some(Severity::Medium),
            None => Some(Severity::Info),
        },
        message: text(&map, &["alert.signature", "dns.rrname", "http.url", "tls.sni"]),
        user: None,
        ..Normalized::default()
    };
    let mut event = Event::new(Format::SuricataEve, time, now, map);
    event.normalized = n;
    event
}

fn zeek(map: Fields, now: Timestamp) -> Event {
    let time = map.get("ts").and_then(time::from_value).unwrap_or(now);
    let mut event = Event::new(Format::ZeekJson, time, now, Map::new());
    event.normalized = zeek_normalized(&map);
    event.fields = map;
    event
}

/// Normalizes a Zeek record. Field names follow Zeek (`id.orig_h`); exports that flattened the
/// dots to underscores (`id_orig_h`) are read too. Shared with the TSV decoder.
pub fn zeek_normalized(map: &Map<String, Value>) -> Normalized {
    Normalized {
        host: text(map, &["@system", "_system_name", "host", "hostname"]),
        user: text(map, &["username", "user", "client"]),
        src_ip: ip(map, &["id.orig_h", "id_orig_h"]),
        src_port: port(map, &["id.orig_p", "id_orig_p"]),
        dst_ip: ip(map, &["id.resp_h", "id_resp_h"]),
        dst_port: port(map, &["id.resp_p", "id_resp_p"]),
        protocol: text(map, &["service", "proto"]),
        channel: text(map, &["_path", "@stream"]),
        provider: Some("zeek".to_owned()),
        severity: Some(Severity::Info),
        message: text(map, &["query", "host", "server_name", "note", "msg"]),
        ..Normalized::default()
    }
}

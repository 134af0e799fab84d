//! ArcSight Common Event Format (CEF), alone or as the message of a syslog line.
//!
//! `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`
//!
//! Escaping follows the CEF specification: in the header `\|` and `\\`; in the extension `\=`,
//! `\\`, `\n` and `\r`. Real devices also send unescaped `=` inside values (URLs with query
//! strings): a `=` that does not follow a well-formed key is read as part of the value before
//! it, rather than rejecting the event.

use jiff::Timestamp;
use rempart_model::{Event, Format, Normalized, Severity};
use serde_json::{Map, Value};

use super::fields::{ip, port, text, uint};
use super::{DecodeOptions, time};

/// The header field names, in order.
const HEADER: [&str; 7] = [
    "cef_version",
    "device_vendor",
    "device_product",
    "device_version",
    "signature_id",
    "name",
    "severity",
];

/// Decodes a line that is CEF with no syslog header.
pub fn decode_bare(line: &str, now: Timestamp, opts: &DecodeOptions) -> Result<Event, String> {
    let start = line.find("CEF:").ok_or_else(|| "no `CEF:` header".to_owned())?;
    let fields = parse(&line[start..])?;
    Ok(event(fields, None, now, opts))
}

/// Builds the event from parsed CEF fields, and the syslog header it came in, if any.
pub fn event(
    mut fields: Map<String, Value>,
    syslog: Option<(Map<String, Value>, Option<Timestamp>)>,
    now: Timestamp,
    _opts: &DecodeOptions,
) -> Event {
    let cef_time = ["rt", "end", "start", "deviceReceiptTime"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(time::from_value));
    let (header_time, syslog_host) = match &syslog {
        Some((h, t)) => (*t, text(h, &["hostname"])),
        None => (None, None),
    };
    let n = Normalized {
        host: text(&fields, &["dvchost", "dhost", "shost"]).or(syslog_host),
        user: text(&fields, &["suser", "duser"]),
        user_domain: text(&fields, &["sntdom", "dntdom"]),
        src_ip: ip(&fields, &["src", "c6a2", "sourceTranslatedAddress"]),
        src_port: port(&fields, &["spt"]),
        dst_ip: ip(&fields, &["dst", "c6a3", "destinationTranslatedAddress"]),
        dst_port: port(&fields, &["dpt"]),
        protocol: text(&fields, &["app", "proto"]).map(|p| p.to_ascii_lowercase()),
        process: text(&fields, &["sproc", "dproc", "deviceProcessName"]),
        process_id: uint(&fields, &["spid", "dpid", "dvcpid"]),
        command_line: None,
        event_id: text(&fields, &["signature_id"]).and_then(|s| s.parse().ok()),
        channel: text(&fields, &["device_product"]),
        provider: match (text(&fields, &["device_vendor"]), text(&fields, &["device_product"])) {
            (Some(v), Some(p)) => Some(format!("{v} {p}")),
            (v, p) => v.or(p),
        },
        severity: text(&fields, &["severity"]).and_then(|s| Severity::from_cef(&s)),
        message: text(&fields, &["name", "msg"]),
        ..Normalized::default()
    };
    if let Some((header, _)) = syslog {
        fields.insert("syslog".to_owned(), Value::Object(header));
    }
    let mut e = Event::new(Format::Cef, cef_time.or(header_time).unwrap_or(now), now, fields);
    e.normalized = n;
    e
}

/// Parses `CEF:…` into its header fields and extension key/values, unescaped.
pub fn parse(s: &str) -> Result<Map<String, Value>, String> {
    let body = s.strip_prefix("CEF:").ok_or_else(|| "no `CEF:` header".to_owned())?;
    let mut fields = Map::new();
    let mut rest = body;
    for (i, name) in HEADER.iter().enumerate() {
        let end = find_unescaped_pipe(rest)
            .ok_or_else(|| format!("CEF header ends after {i} of 7 fields: missing `{name}`"))?;
        fields.insert((*name).to_owned(), Value::String(unescape_header(&rest[..end])));
        rest = &rest[end + 1..];
    }
    let version = fields.get("cef_version").and_then(Value::as_str).unwrap_or_default();
    if version.parse::<u8>().is_err() {
        return Err(format!("CEF version `{version}` is not a number"));
    }
    for (key, value) in parse_extension(rest) {
        fields.insert(key, Value::String(value));
    }
    Ok(fields)
}

fn find_unescaped_pipe(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'|' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Header fields escape `|` and `\\`.
fn unescape_header(s: &str) -> String {
    unescape(s, |c| matches!(c, '|' | '\\').then_some(c))
}

/// Extension values escape `=`, `\\`, and write newlines as `\n` and `\r`.
fn unescape_value(s: &str) -> String {
    unescape(s, |c| match c {
        '=' | '\\' => Some(c),
        'n' => Some('\n'),
        'r' => Some('\r'),
        _ => None,
    })
}

/// Replaces `\c` by `escaped(c)`; an escape the format does not define is kept as written.
fn unescape(s: &str, escaped: impl Fn(char) -> Option<char>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n) => match escaped(n) {
                Some(e) => out.push(e),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            },
            None => out.push('\\'),
        }
    }
    out
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']'))
}

/// Splits the extension into `(key, value)` pairs.
fn parse_extension(ext: &str) -> Vec<(String, String)> {
    let bytes = ext.as_bytes();
    // (key start, key end = position of `=`) of every well-formed key.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                let start = ext[..i].rfind(' ').map_or(0, |p| p + 1);
                let floor = keys.last().map_or(0, |(_, eq)| eq + 1);
                if start >= floor && is_key(&ext[start..i]) {
                    keys.push((start, i));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    let mut pairs = Vec::with_capacity(keys.len());
    for (k, (start, eq)) in keys.iter().enumerate() {
        let value_end = keys.get(k + 1).map_or(ext.len(), |(next, _)| *next);
        let value = ext[eq + 1..value_end].trim_end_matches(' ');
        pairs.push((ext[*start..*eq].to_owned(), unescape_value(value)));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_specification_example() {
        let f = parse(
            r"CEF:0|security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
        )
        .unwrap_or_default();
        assert_eq!(f["device_vendor"], "security");
        assert_eq!(f["name"], "worm successfully stopped");
        assert_eq!(f["src"], "10.0.0.1");
        assert_eq!(f["spt"], "1232");
    }

    #[test]
    fn header_and_extension_escapes() {
        let f = parse(r"CEF:0|ven\|dor|prod\\uct|1|sig|name|5|msg=a\=b c\\d\nline2 act=blocked").unwrap_or_default();
        assert_eq!(f["device_vendor"], "ven|dor");
        assert_eq!(f["device_product"], "prod\\uct");
        assert_eq!(f["msg"], "a=b c\\d\nline2");
        assert_eq!(f["act"], "blocked");
    }

    #[test]
    fn unescaped_equals_in_values_stay_in_the_value() {
        let f = parse("CEF:0|v|p|1|s|n|3|request=http://x/?a=b&c=d suser=alice").unwrap_or_default();
        assert_eq!(f["request"], "http://x/?a=b&c=d");
        assert_eq!(f["suser"], "alice");
    }

    #[test]
    fn truncated_header_names_the_missing_field() {
        let err = parse("CEF:0|vendor|product").err().unwrap_or_default();
        assert!(err.contains("after 2 of 7 fields"), "{err}");
    }
}

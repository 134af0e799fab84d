//! Linux audit records: `type=SYSCALL msg=audit(1604994496.155:92733): key=value …`.
//!
//! Each line is one record; records of one audit event share the serial after the colon and
//! are kept as separate events carrying it (`audit_serial`), so that a query can join them.
//! Values may be quoted (`comm="arp"`) or hex-encoded (`proctitle=6C73…`); hex is decoded
//! only for fields known to carry it hex-encoded.

use jiff::Timestamp;
use rempart_model::{Event, Format, Normalized, Severity};
use serde_json::{Map, Value};

use super::fields::{text, uint};
use super::{DecodeOptions, time};

/// Fields auditd writes hex-encoded when they contain spaces or special characters.
const HEX_FIELDS: &[&str] = &[
    "proctitle",
    "cmd",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
    "a5",
    "a6",
    "a7",
    "name",
    "exe",
    "comm",
    "cwd",
];

pub fn decode(line: &[u8], now: Timestamp, opts: &DecodeOptions) -> Result<Event, String> {
    let line = std::str::from_utf8(line).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let mut map = Map::new();
    let start = line
        .find("msg=audit(")
        .ok_or_else(|| "no `msg=audit(…)` stamp".to_owned())?;
    let stamp_end = line[start..]
        .find("):")
        .map(|i| start + i)
        .ok_or_else(|| "audit stamp is not closed by `):`".to_owned())?;
    let stamp = &line[start + "msg=audit(".len()..stamp_end];
    let (secs, serial) = stamp
        .split_once(':')
        .ok_or_else(|| format!("audit stamp `{stamp}` has no serial"))?;
    let time = time::epoch(
        secs.parse::<f64>()
            .map_err(|_| format!("audit time `{secs}` is not a number"))?,
    );
    map.insert("audit_serial".to_owned(), Value::String(serial.to_owned()));
    for (k, v) in pairs(&line[..start]).chain(pairs(&line[stamp_end + 2..])) {
        map.insert(k, Value::String(v));
    }
    let mut args: Vec<String> = Vec::new();
    if map.get("type").and_then(Value::as_str) == Some("EXECVE") {
        let argc = uint(&map, &["argc"]).unwrap_or(0).min(1024);
        for i in 0..argc {
            if let Some(a) = map.get(&format!("a{i}")).and_then(Value::as_str) {
                args.push(a.to_owned());
            }
        }
    }
    let n = Normalized {
        host: text(&map, &["node", "hostname"]),
        user: text(&map, &["acct", "UID", "AUID", "auid", "uid"]),
        process: text(&map, &["exe", "comm"]),
        process_id: uint(&map, &["pid"]),
        parent_process_id: uint(&map, &["ppid"]),
        command_line: (!args.is_empty())
            .then(|| args.join(" "))
            .or_else(|| text(&map, &["proctitle", "cmd"])),
        channel: text(&map, &["type"]),
        provider: Some("auditd".to_owned()),
        severity: Some(Severity::Info),
        message: text(&map, &["key"]).filter(|k| k != "(null)"),
        ..Normalized::default()
    };
    let mut event = Event::new(Format::Auditd, time.unwrap_or(now), now, map);
    event.normalized = n;
    event.class = opts.class;
    Ok(event)
}

/// `key=value` pairs separated by spaces; values may be double- or single-quoted.
fn pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut rest = s.trim();
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                return None;
            }
            let eq = rest.find('=');
            let space = rest.find(' ');
            let Some(eq) = eq.filter(|&e| space.is_none_or(|s| e < s)) else {
                // A bare word: skip it.
                rest = space.map_or("", |s| &rest[s..]);
                continue;
            };
            let key = rest[..eq].to_owned();
            let after = &rest[eq + 1..];
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                let end = q.find('"').unwrap_or(q.len());
                (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
            } else if let Some(q) = after.strip_prefix('\'') {
                let end = q.find('\'').unwrap_or(q.len());
                (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                let raw = &after[..end];
                let decoded = if HEX_FIELDS.contains(&key.as_str()) {
                    decode_hex(raw)
                } else {
                    None
                };
                (decoded.unwrap_or_else(|| raw.to_owned()), &after[end..])
            };
            rest = next;
            return Some((key, value));
        }
    })
}

/// Decodes an even-length all-hex value into text (NULs, as in `proctitle`, become spaces).
fn decode_hex(s: &str) -> Option<String> {
    if s.len() < 2
        || !s.len().is_multiple_of(2)
        || !s.bytes().all(|b| b.is_ascii_hexdigit())
        || s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    let text: String = String::from_utf8(bytes?).ok()?.replace('\0', " ");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execve_records_build_a_command_line() {
        let e = decode(
            br#"type=EXECVE msg=audit(1604994496.155:92733): argc=2 a0="arp" a1="-a""#,
            Timestamp::UNIX_EPOCH,
            &DecodeOptions::default(),
        )
        .unwrap();
        assert_eq!(e.normalized.command_line.as_deref(), Some("arp -a"));
        assert_eq!(e.fields["audit_serial"], "92733");
        assert_eq!(e.time.as_millisecond(), 1_604_994_496_155);
    }

    #[test]
    fn hex_proctitle_is_decoded() {
        let e = decode(
            b"type=PROCTITLE msg=audit(1.0:1): proctitle=6C73002D6C61",
            Timestamp::UNIX_EPOCH,
            &DecodeOptions::default(),
        )
        .unwrap();
        assert_eq!(e.fields["proctitle"], "ls -la");
    }

    #[test]
    fn missing_stamp_is_rejected() {
        assert!(decode(b"type=X key=1", Timestamp::UNIX_EPOCH, &DecodeOptions::default()).is_err());
    }
}

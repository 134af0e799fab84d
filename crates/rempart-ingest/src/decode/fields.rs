//! Small helpers for pulling typed values out of loosely typed maps.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// The first present, non-placeholder string among `keys` (dotted paths allowed). Numbers
/// and booleans are rendered; `-`, empty strings and nulls count as absent, as Windows and
/// Zeek write them for "no value".
pub fn text(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| value_text(lookup(map, k)?))
}

/// A value as text, unless it is a placeholder for "nothing".
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty() && t != "-").then(|| t.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first value among `keys` that reads as an unsigned integer (decimal or `0x` hex).
pub fn uint(map: &Map<String, Value>, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| value_uint(lookup(map, k)?))
}

pub fn value_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_uint(s),
        _ => None,
    }
}

pub fn parse_uint(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The first value among `keys` that reads as an IP address. Accepts IPv6 in brackets and
/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`), which it unmaps.
pub fn ip(map: &Map<String, Value>, keys: &[&str]) -> Option<IpAddr> {
    keys.iter().find_map(|k| match lookup(map, k)? {
        Value::String(s) => parse_ip(s),
        _ => None,
    })
}

pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// The first value among `keys` that reads as a port number.
pub fn port(map: &Map<String, Value>, keys: &[&str]) -> Option<u16> {
    uint(map, keys).and_then(|p| u16::try_from(p).ok())
}

pub use rempart_model::lookup_path as lookup;

/// Splits `DOMAIN\user` into its parts; a bare name has no domain.
pub fn split_domain_user(s: &str) -> (Option<String>, String) {
    match s.split_once('\\') {
        Some((domain, user)) if !user.is_empty() => {
            (Some(domain.to_owned()).filter(|d| !d.is_empty()), user.to_owned())
        }
        _ => (None, s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn placeholders_count_as_absent() {
        let m = map(json!({"a": "-", "b": "", "c": "x", "n": 4}));
        assert_eq!(text(&m, &["a", "b", "c"]).as_deref(), Some("x"));
        assert_eq!(text(&m, &["n"]).as_deref(), Some("4"));
        assert_eq!(text(&m, &["a"]), None);
    }

    #[test]
    fn integers_read_from_decimal_and_hex() {
        let m = map(json!({"a": "0x1F4", "b": "12", "c": 7}));
        assert_eq!(uint(&m, &["a"]), Some(500));
        assert_eq!(uint(&m, &["b"]), Some(12));
        assert_eq!(uint(&m, &["c"]), Some(7));
    }

    #[test]
    fn ips_unmap_and_unbracket() {
        assert_eq!(parse_ip("::ffff:10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("host"), None);
    }

    #[test]
    fn domain_users_split() {
        assert_eq!(
            split_domain_user("CORP\\alice"),
            (Some("CORP".to_owned()), "alice".to_owned())
        );
        assert_eq!(split_domain_user("bob"), (None, "bob".to_owned()));
    }
}

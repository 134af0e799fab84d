//! The entities an alert is about: its host and user, the addresses, the process instances,
//! the file hashes and domains of its event, and what an intelligence or correlation match
//! names. Values are canonical so that the same thing written two ways links.

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use rempart_model::canonical::{host, user};
use rempart_model::{Alert, Entity, EntityKind, Event};
use serde_json::{Map, Value};

/// Field names that hold a process instance id (Sysmon).
const PROCESS_FIELDS: &[&str] = &[
    "ProcessGuid",
    "ParentProcessGuid",
    "SourceProcessGUID",
    "TargetProcessGUID",
];
/// Field names that hold hashes: Sysmon's `Hashes` (`SHA256=…,MD5=…`) or one hash each.
const HASH_FIELDS: &[&str] = &["Hashes", "Hash", "sha256", "md5", "sha1", "SHA256", "MD5", "SHA1"];
/// Field names that hold a looked-up or contacted domain.
const DOMAIN_FIELDS: &[&str] = &[
    "QueryName",
    "query",
    "DestinationHostname",
    "rrname",
    "server_name",
    "sni",
];

/// `::ffff:10.0.0.1` is `10.0.0.1`.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address worth linking on: not loopback, unspecified, multicast or broadcast.
pub fn ip(addr: IpAddr) -> Option<String> {
    let addr = canonical_ip(addr);
    let useless = match addr {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || v6.is_multicast(),
    };
    (!useless).then(|| addr.to_string())
}

fn domain(name: &str) -> Option<String> {
    let d = name.trim().trim_end_matches('.').to_ascii_lowercase();
    (d.contains('.') && !d.contains(char::is_whitespace) && d.parse::<IpAddr>().is_err()).then_some(d)
}

fn hashes(value: &str, out: &mut BTreeSet<Entity>) {
    for part in value.split([',', ';', ' ']) {
        let h = part.split_once('=').map_or(part, |(_, h)| h).trim();
        if matches!(h.len(), 32 | 40 | 64 | 128) && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.insert(Entity::new(EntityKind::Hash, h.to_ascii_lowercase()));
        }
    }
}

/// Whether an event's hashes say something about this intrusion. The image hash of a process
/// start or a module load is the hash of `cmd.exe` or `ntdll.dll` on most alerts of a fleet:
/// linking on it would join everything. Such hashes count only for binaries outside the
/// system and program folders (a dropped tool); hashes of files written or detected count
/// always.
fn hashes_identify(e: &Event) -> bool {
    if !matches!(e.normalized.event_id, Some(1 | 6 | 7)) {
        return true;
    }
    let image = ["Image", "ImageLoaded"]
        .iter()
        .find_map(|f| find(&e.fields, f, 3).and_then(string))
        .or(e.normalized.process.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    !image.is_empty()
        && ![
            "\\windows\\",
            "\\program files\\",
            "\\program files (x86)\\",
            "\\programdata\\microsoft\\",
        ]
        .iter()
        .any(|d| image.contains(d))
}

/// Depth-first search for a field by name among nested objects (Windows event data sits at
/// different depths depending on how it was exported).
fn find<'a>(map: &'a Map<String, Value>, name: &str, depth: u8) -> Option<&'a Value> {
    if let Some(v) = map.get(name) {
        return Some(v);
    }
    if depth == 0 {
        return None;
    }
    map.values().find_map(|v| match v {
        Value::Object(inner) => find(inner, name, depth - 1),
        _ => None,
    })
}

fn string(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// Every entity of an alert, with its event when at hand.
pub fn of_alert(alert: &Alert, event: Option<&Event>) -> BTreeSet<Entity> {
    let mut out = BTreeSet::new();
    if let Some(h) = alert.host.as_deref().and_then(host) {
        out.insert(Entity::new(EntityKind::Host, h));
    }
    if let Some(u) = alert.user.as_deref().and_then(user) {
        out.insert(Entity::new(EntityKind::User, u));
    }
    if let Some(e) = event {
        let n = &e.normalized;
        if let Some(h) = n.host.as_deref().and_then(host) {
            out.insert(Entity::new(EntityKind::Host, h));
        }
        if let Some(u) = n.user.as_deref().and_then(user) {
            out.insert(Entity::new(EntityKind::User, u));
        }
        for addr in [n.src_ip, n.dst_ip].into_iter().flatten() {
            if let Some(a) = ip(addr) {
                out.insert(Entity::new(EntityKind::Ip, a));
            }
        }
        for f in PROCESS_FIELDS {
            if let Some(g) = find(&e.fields, f, 3).and_then(string) {
                let g = g.trim_matches(['{', '}']).to_ascii_lowercase();
                if !g.is_empty() && g.bytes().any(|b| b != b'0' && b != b'-') {
                    out.insert(Entity::new(EntityKind::Process, g));
                }
            }
        }
        if hashes_identify(e) {
            for f in HASH_FIELDS {
                if let Some(h) = find(&e.fields, f, 3).and_then(string) {
                    hashes(h, &mut out);
                }
            }
        }
        for f in DOMAIN_FIELDS {
            if let Some(d) = find(&e.fields, f, 3).and_then(string).and_then(domain) {
                out.insert(Entity::new(EntityKind::Domain, d));
            }
        }
    }
    // What an intelligence or correlation match names.
    for m in &alert.matched {
        let field = m.field.strip_prefix("ioc.").unwrap_or(&m.field);
        let entity = match field {
            "ip" | "src_ip" | "dst_ip" | "SourceIp" | "DestinationIp" => {
                m.value.parse::<IpAddr>().ok().and_then(ip).map(|v| (EntityKind::Ip, v))
            }
            "domain" | "QueryName" => domain(&m.value).map(|v| (EntityKind::Domain, v)),
            "md5" | "sha1" | "sha256" | "sha512" => Some((EntityKind::Hash, m.value.to_ascii_lowercase())),
            "host" | "Computer" | "ComputerName" => host(&m.value).map(|v| (EntityKind::Host, v)),
            "user" | "User" | "TargetUserName" | "SubjectUserName" => user(&m.value).map(|v| (EntityKind::User, v)),
            _ => None,
        };
        if let Some((kind, value)) = entity {
            out.insert(Entity::new(kind, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(host("WS-FIN-07.corp.example.eu").as_deref(), Some("ws-fin-07"));
        assert_eq!(host("ws-fin-07").as_deref(), Some("ws-fin-07"));
        assert_eq!(host("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(host("localhost"), None);
    }

    #[test]
    fn users_are_canonical_and_builtins_never_link() {
        assert_eq!(user("CORP\\Alice").as_deref(), Some("alice"));
        assert_eq!(user("alice@corp.example.eu").as_deref(), Some("alice"));
        assert_eq!(user("NT AUTHORITY\\SYSTEM"), None);
        assert_eq!(user("SYSTEM"), None);
        assert_eq!(user("WS-FIN-07$"), None);
        assert_eq!(user("-"), None);
    }

    #[test]
    fn sysmon_hashes_are_split() {
        let mut out = BTreeSet::new();
        hashes(
            "SHA1=A94A8FE5CCB19BA61C4C0873D391E987982FBBD3,MD5=098F6BCD4621D373CADE4E832627B4F6,IMPHASH=zz",
            &mut out,
        );
        let values: Vec<&str> = out.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "098f6bcd4621d373cade4e832627b4f6",
                "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
            ]
        );
    }

    #[test]
    fn loopback_never_links() {
        assert_eq!(ip("127.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))), None);
        assert_eq!(
            ip("185.225.17.94".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))).as_deref(),
            Some("185.225.17.94")
        );
    }
}

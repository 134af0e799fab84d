//! Canonical names of hosts and accounts, shared by everything that keys on them (incident
//! correlation, anomaly baselines), so that the same machine or person written two ways is one.

use std::net::IpAddr;

/// Accounts that every Windows host has: they say nothing about who acted, and linking on
/// them would join every alert of a network into one incident.
const BUILTIN_USERS: &[&str] = &[
    "system",
    "local system",
    "localsystem",
    "nt authority\\system",
    "local service",
    "network service",
    "anonymous logon",
    "anonymous",
    "dwm-1",
    "umfd-0",
    "umfd-1",
    "root",
    "nobody",
    "-",
    "n/a",
    "unknown",
];

/// Canonical host name: lower case, the first label of a name (an FQDN and its short name
/// are the same machine), an address as an address.
pub fn host(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    if name.is_empty() || name == "-" || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let first = name.split('.').next().unwrap_or(name);
    Some(first.to_ascii_lowercase())
}

/// Canonical user name: lower case, without a `DOMAIN\` prefix or an `@realm` suffix; `None`
/// for built-in accounts and machine accounts (`WS01$`: the host already links).
pub fn user(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    if BUILTIN_USERS.contains(&lower.as_str()) {
        return None;
    }
    let bare = lower.rsplit('\\').next().unwrap_or(&lower);
    let bare = bare.split('@').next().unwrap_or(bare);
    if bare.is_empty() || bare.ends_with('$') || BUILTIN_USERS.contains(&bare) {
        return None;
    }
    Some(bare.to_owned())
}

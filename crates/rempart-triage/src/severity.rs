//! Severity: the rules' levels, the criticality of the assets involved, and how far the
//! incident has spread, combined into a score from 0 to 100.

use std::net::IpAddr;

use rempart_model::{Entity, EntityKind, Incident, IncidentSeverity};

/// The ATT&CK tactics in kill-chain order.
pub const KILL_CHAIN: &[&str] = &[
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// A tactic's place in the kill chain (`credential_access` and `credential-access` alike).
pub fn stage(tactic: &str) -> Option<usize> {
    let t = tactic.replace('_', "-").to_ascii_lowercase();
    KILL_CHAIN.iter().position(|k| *k == t)
}

/// How much an asset matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Criticality {
    Low,
    Medium,
    High,
    Critical,
}

impl Criticality {
    fn parse(s: &str) -> Criticality {
        Criticality::from_name(s).unwrap_or(Criticality::Low)
    }

    /// `low`, `medium`, `high` or `critical`.
    pub fn from_name(s: &str) -> Option<Criticality> {
        match s {
            "critical" => Some(Criticality::Critical),
            "high" => Some(Criticality::High),
            "medium" => Some(Criticality::Medium),
            "low" => Some(Criticality::Low),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Critical => "critical",
        }
    }

    fn weight(self) -> u32 {
        match self {
            Criticality::Low => 0,
            Criticality::Medium => 5,
            Criticality::High => 10,
            Criticality::Critical => 20,
        }
    }
}

#[derive(Debug, Clone)]
enum Pattern {
    /// Lower-case glob with `*`.
    Name(String),
    Net(IpAddr, u8),
}

#[derive(Debug, Clone)]
struct Entry {
    kind: EntityKind,
    pattern: Pattern,
    criticality: Criticality,
    tags: Vec<String>,
}

/// The asset inventory, from `[[incidents.assets]]`.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    entries: Vec<Entry>,
}

/// An inventory entry an entity matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetMatch {
    pub entity: Entity,
    pub criticality: Criticality,
    pub tags: Vec<String>,
}

impl AssetMatch {
    /// `host:dc-01 (critical; domain-controller)`.
    pub fn describe(&self) -> String {
        if self.tags.is_empty() {
            format!("{} ({})", self.entity, self.criticality.as_str())
        } else {
            format!(
                "{} ({}; {})",
                self.entity,
                self.criticality.as_str(),
                self.tags.join(", ")
            )
        }
    }
}

impl Inventory {
    /// Reads validated configuration (`rempart-config` has checked kinds and patterns).
    pub fn new(assets: &[rempart_config::Asset]) -> Inventory {
        let entries = assets
            .iter()
            .filter_map(|a| {
                let kind = match a.kind.as_str() {
                    "host" => EntityKind::Host,
                    "user" => EntityKind::User,
                    "ip" => EntityKind::Ip,
                    _ => return None,
                };
                let pattern = if kind == EntityKind::Ip {
                    let (addr, bits) = a.pattern.split_once('/').unwrap_or((&a.pattern, ""));
                    let addr: IpAddr = addr.parse().ok()?;
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    Pattern::Net(addr, if bits.is_empty() { max } else { bits.parse().ok()? })
                } else {
                    Pattern::Name(a.pattern.to_ascii_lowercase())
                };
                Some(Entry {
                    kind,
                    pattern,
                    criticality: Criticality::parse(&a.criticality),
                    tags: a.tags.clone(),
                })
            })
            .collect();
        Inventory { entries }
    }

    /// The first entry that matches `entity`.
    pub fn lookup(&self, entity: &Entity) -> Option<AssetMatch> {
        self.entries
            .iter()
            .find(|e| {
                e.kind == entity.kind
                    && match &e.pattern {
                        Pattern::Name(p) => glob(p, &entity.value) || glob(p, &host_short(&entity.value)),
                        Pattern::Net(net, bits) => entity.value.parse::<IpAddr>().is_ok_and(|a| in_net(a, *net, *bits)),
                    }
            })
            .map(|e| AssetMatch {
                entity: entity.clone(),
                criticality: e.criticality,
                tags: e.tags.clone(),
            })
    }
}

fn host_short(v: &str) -> String {
    v.split('.').next().unwrap_or(v).to_owned()
}

pub use rempart_model::glob;

/// Whether `addr` is inside `net`/`bits`.
pub fn in_net(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Base score of a Sigma level.
fn level_score(level: IncidentSeverity) -> u32 {
    match level {
        IncidentSeverity::Informational => 10,
        IncidentSeverity::Low => 25,
        IncidentSeverity::Medium => 45,
        IncidentSeverity::High => 65,
        IncidentSeverity::Critical => 85,
    }
}

/// The severity of a score.
pub fn of_score(score: u32) -> IncidentSeverity {
    match score {
        0..20 => IncidentSeverity::Informational,
        20..40 => IncidentSeverity::Low,
        40..60 => IncidentSeverity::Medium,
        60..80 => IncidentSeverity::High,
        _ => IncidentSeverity::Critical,
    }
}

/// Scores an incident: the highest rule level, plus the most critical asset involved, plus
/// spread (more than one host or user, several kill-chain stages, several rules). Returns
/// the score, its severity and the assets that matched.
pub fn score(incident: &Incident, inventory: &Inventory) -> (u32, Vec<AssetMatch>) {
    let assets: Vec<AssetMatch> = incident.entities.iter().filter_map(|e| inventory.lookup(e)).collect();
    let asset_weight = assets.iter().map(|a| a.criticality.weight()).max().unwrap_or(0);
    let count = |k: EntityKind| incident.entities.iter().filter(|e| e.kind == k).count() as u32;
    let hosts = count(EntityKind::Host);
    let users = count(EntityKind::User);
    let spread = 5 * hosts.saturating_sub(1).min(3) + 5 * users.saturating_sub(1).min(2);
    let stages = incident
        .tactics
        .iter()
        .filter_map(|t| stage(t))
        .collect::<std::collections::BTreeSet<_>>();
    // One rule tagged with several tactics is not a progression: stages count across rules.
    let chain = match stages.len() {
        _ if incident.rules.len() < 2 => 0,
        0 | 1 => 0,
        2 => 5,
        _ => 10,
    };
    let rules = if incident.rules.len() >= 3 { 5 } else { 0 };
    let total = (level_score(incident.max_level) + asset_weight + spread + chain + rules).min(100);
    (total, assets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let a: IpAddr = "10.20.1.12".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(in_net(a, IpAddr::from([10, 20, 0, 0]), 16));
        assert!(!in_net(a, IpAddr::from([10, 21, 0, 0]), 16));
        assert!(in_net(a, IpAddr::from([0, 0, 0, 0]), 0));
    }

    #[test]
    fn stages_follow_the_kill_chain() {
        assert!(stage("credential_access") < stage("lateral-movement"));
        assert_eq!(stage("attack.t1003"), None);
    }
}

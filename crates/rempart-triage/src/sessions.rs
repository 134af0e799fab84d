//! What links an alert on one machine to the machine the attacker came from.
//!
//! An intruder who moves laterally logs on to the next host over the network (Windows 4624,
//! logon type 3 or 10) from the address of the host already in their hands; the alert on the
//! new host (a service installed, a tool run) usually names neither. This tracker watches every
//! event, not only those that alerted: it learns which address belongs to which host (the host's
//! own outbound connections, Sysmon event 3) and keeps each host's recent network logons. An
//! alert then gains the address its account logged on from, and the host behind that address,
//! so that correlation joins it to the incident of the source host.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use rempart_model::{Alert, Entity, EntityKind, Event, Format};

use crate::entity::{self, canonical_ip};

/// How long before an alert a logon to its host still explains it.
const LOGON_SPAN: SignedDuration = SignedDuration::from_mins(30);
/// How long before an alert naming no account a logon to its host still explains it.
const ANONYMOUS_SPAN: SignedDuration = SignedDuration::from_mins(2);
/// Logons kept per host.
const PER_HOST: usize = 64;
/// Hosts and addresses remembered (beyond, the oldest half is forgotten).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone)]
struct Logon {
    time: Timestamp,
    user: Option<String>,
    from: IpAddr,
}

/// Address-to-host knowledge and recent network logons, learned from the event stream.
#[derive(Debug, Default)]
pub struct Sessions {
    addresses: HashMap<IpAddr, (String, Timestamp)>,
    logons: HashMap<String, VecDeque<Logon>>,
}

fn windows_event(e: &Event) -> bool {
    matches!(e.format, Format::Evtx | Format::WindowsJson)
}

fn logon_type(e: &Event) -> Option<u64> {
    let v = e
        .field("Event.EventData.LogonType")
        .or_else(|| e.field("EventData.LogonType"))
        .or_else(|| e.field("LogonType"))
        .or_else(|| e.field("winlog.event_data.LogonType"))?;
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn logon_address(e: &Event) -> Option<IpAddr> {
    if let Some(ip) = e.normalized.src_ip {
        return Some(ip);
    }
    let v = e
        .field("Event.EventData.IpAddress")
        .or_else(|| e.field("EventData.IpAddress"))
        .or_else(|| e.field("IpAddress"))
        .or_else(|| e.field("winlog.event_data.IpAddress"))?;
    v.as_str()?.parse().ok()
}

impl Sessions {
    /// Learns from one event (any event: most teach nothing and cost a few comparisons).
    pub fn observe(&mut self, e: &Event) {
        if !windows_event(e) {
            return;
        }
        let Some(host) = e.normalized.host.as_deref().and_then(entity::host) else {
            return;
        };
        match e.normalized.event_id {
            // Sysmon network connection: the source address is this host's own.
            Some(3) if e.normalized.channel.as_deref().is_some_and(|c| c.contains("Sysmon")) => {
                if let Some(ip) = e.normalized.src_ip.map(canonical_ip)
                    && entity::ip(ip).is_some()
                {
                    if self.addresses.len() >= MAX_KEYS {
                        let mut by_age: Vec<(IpAddr, Timestamp)> =
                            self.addresses.iter().map(|(k, (_, t))| (*k, *t)).collect();
                        by_age.sort_by_key(|(_, t)| *t);
                        for (k, _) in by_age.iter().take(MAX_KEYS / 2) {
                            self.addresses.remove(k);
                        }
                    }
                    self.addresses.insert(ip, (host, e.time));
                }
            }
            Some(4624) if matches!(logon_type(e), Some(3 | 10)) => {
                let Some(from) = logon_address(e)
                    .map(canonical_ip)
                    .filter(|ip| entity::ip(*ip).is_some())
                else {
                    return;
                };
                if self.logons.len() >= MAX_KEYS {
                    self.logons.clear();
                }
                let list = self.logons.entry(host).or_default();
                if list.len() >= PER_HOST {
                    list.pop_front();
                }
                list.push_back(Logon {
                    time: e.time,
                    user: e.normalized.user.as_deref().and_then(entity::user),
                    from,
                });
            }
            _ => {}
        }
    }

    /// The host an address belongs to, if learned.
    pub fn host_of(&self, ip: IpAddr) -> Option<&str> {
        self.addresses.get(&canonical_ip(ip)).map(|(h, _)| h.as_str())
    }

    /// Adds to an alert's entities the address its account logged on to the alert's host from
    /// shortly before, and the host behind that address; and, for an internal source address of
    /// the alert's own event, the host it belongs to.
    pub fn enrich(&self, alert: &Alert, entities: &mut BTreeSet<Entity>) {
        let users: Vec<&str> = entities
            .iter()
            .filter(|e| e.kind == EntityKind::User)
            .map(|e| e.value.as_str())
            .collect();
        let mut found: Vec<IpAddr> = Vec::new();
        if let Some(host) = alert.host.as_deref().and_then(entity::host)
            && let Some(logons) = self.logons.get(&host)
        {
            // The latest logon of the alert's account explains it; an alert naming no account
            // (a service installed by the system) is explained only by a logon just before it.
            let span = if users.is_empty() { ANONYMOUS_SPAN } else { LOGON_SPAN };
            let earliest = alert.time - span;
            let latest = logons
                .iter()
                .rev()
                .filter(|l| l.time >= earliest && l.time <= alert.time)
                .find(|l| users.is_empty() || l.user.as_deref().is_some_and(|u| users.contains(&u)));
            if let Some(l) = latest {
                found.push(l.from);
            }
        }
        for e in entities.iter().filter(|e| e.kind == EntityKind::Ip) {
            if let Ok(ip) = e.value.parse::<IpAddr>()
                && !found.contains(&ip)
                && self.addresses.contains_key(&ip)
            {
                found.push(ip);
            }
        }
        for ip in found {
            entities.insert(Entity::new(EntityKind::Ip, ip.to_string()));
            if let Some(h) = self.host_of(ip) {
                entities.insert(Entity::new(EntityKind::Host, h.to_owned()));
            }
        }
    }
}

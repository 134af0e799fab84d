//! The indicator index: one hash lookup per observable for exact values, one per prefix length
//! in use for addresses, one per parent domain for subdomains. An event costs a number of
//! lookups proportional to its observables, whatever the number of indicators.

use std::collections::HashMap;
use std::net::IpAddr;

use rempart_model::Event;
use serde::Serialize;
use serde_json::Value;

use crate::indicator::{Atom, Indicator, Kind, mask4, mask6};

/// (indicator, alternative, atom of the alternative).
type Slot = (u32, u16, u8);

/// An indicator that matched an event, with the values that made it match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit<'a> {
    pub indicator: &'a Indicator,
    pub matched: Vec<(Kind, String)>,
}

/// Indicators, indexed.
#[derive(Debug, Default)]
pub struct IocIndex {
    /// The indicators' metadata; their atoms live in the tables below, not here (an indexed
    /// indicator's `alternatives` are empty: the store keeps them whole).
    indicators: Vec<Indicator>,
    /// Atoms per alternative, to know when all are seen: indicator `i`'s alternatives are
    /// `sizes[size_start[i]..size_start[i + 1]]` (one flat table, not a vector per indicator).
    sizes: Vec<u8>,
    size_start: Vec<u32>,
    /// Exact values per kind, looked up by `&str` without allocating.
    exact: HashMap<Kind, HashMap<Box<str>, Slots>>,
    v4: Vec<(u8, HashMap<u32, Slots>)>,
    v6: Vec<(u8, HashMap<u128, Slots>)>,
}

/// The slots of one key: nearly always one, kept inline.
#[derive(Debug, Clone)]
enum Slots {
    One(Slot),
    Many(Vec<Slot>),
}

impl Slots {
    fn push(&mut self, s: Slot) {
        match self {
            Slots::One(first) => *self = Slots::Many(vec![*first, s]),
            Slots::Many(v) => v.push(s),
        }
    }

    fn as_slice(&self) -> &[Slot] {
        match self {
            Slots::One(s) => std::slice::from_ref(s),
            Slots::Many(v) => v,
        }
    }
}

fn put<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Slots>, key: K, slot: Slot) {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(slot),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(Slots::One(slot));
        }
    }
}

impl IocIndex {
    pub fn new(indicators: Vec<Indicator>) -> IocIndex {
        let mut idx = IocIndex::default();
        for ind in indicators {
            idx.add(ind);
        }
        idx
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn add(&mut self, mut ind: Indicator) {
        let Ok(i) = u32::try_from(self.indicators.len()) else {
            return;
        };
        let Ok(start) = u32::try_from(self.sizes.len()) else {
            return;
        };
        self.size_start.push(start);
        let alternatives = std::mem::take(&mut ind.alternatives);
        for (a, alt) in alternatives.iter().enumerate().take(usize::from(u16::MAX)) {
            let mut unique: Vec<&Atom> = alt.iter().collect();
            unique.sort_by_key(|x| format!("{x:?}"));
            unique.dedup();
            unique.truncate(usize::from(u8::MAX));
            self.sizes.push(u8::try_from(unique.len()).unwrap_or(u8::MAX));
            for (n, atom) in unique.into_iter().enumerate() {
                let slot = (
                    i,
                    u16::try_from(a).unwrap_or(u16::MAX),
                    u8::try_from(n).unwrap_or(u8::MAX),
                );
                match atom {
                    Atom::Exact { kind, value } => {
                        put(self.exact.entry(*kind).or_default(), value.as_str().into(), slot);
                    }
                    Atom::Cidr {
                        network: IpAddr::V4(n),
                        prefix,
                    } => {
                        put(table(&mut self.v4, *prefix), u32::from(*n), slot);
                    }
                    Atom::Cidr {
                        network: IpAddr::V6(n),
                        prefix,
                    } => {
                        put(table(&mut self.v6, *prefix), u128::from(*n), slot);
                    }
                }
            }
        }
        self.indicators.push(ind);
    }

    fn exact_get(&self, kind: Kind, value: &str) -> Option<&[Slot]> {
        self.exact.get(&kind)?.get(value).map(Slots::as_slice)
    }

    /// The slots an observable satisfies.
    fn lookup(&self, kind: Kind, value: &str, out: &mut Vec<(Slot, Kind, String)>) {
        match kind {
            Kind::Ip => {
                let Ok(ip) = value.parse::<IpAddr>() else { return };
                match ip {
                    IpAddr::V4(a) => {
                        let a = u32::from(a);
                        for (prefix, t) in &self.v4 {
                            if let Some(slots) = t.get(&mask4(a, *prefix)) {
                                out.extend(slots.as_slice().iter().map(|s| (*s, kind, value.to_owned())));
                            }
                        }
                    }
                    IpAddr::V6(a) => {
                        let a = u128::from(a);
                        for (prefix, t) in &self.v6 {
                            if let Some(slots) = t.get(&mask6(a, *prefix)) {
                                out.extend(slots.as_slice().iter().map(|s| (*s, kind, value.to_owned())));
                            }
                        }
                    }
                }
            }
            Kind::Domain => {
                // The domain and every parent: an indicator on `evil.example` covers
                // `cdn.evil.example`.
                let d = value.trim_end_matches('.').to_ascii_lowercase();
                let mut rest = d.as_str();
                loop {
                    if let Some(slots) = self.exact_get(kind, rest) {
                        out.extend(slots.iter().map(|s| (*s, kind, d.clone())));
                    }
                    match rest.split_once('.') {
                        Some((_, parent)) if parent.contains('.') => rest = parent,
                        _ => break,
                    }
                }
            }
            Kind::Url => {
                if let Some(slots) = self.exact_get(kind, value) {
                    out.extend(slots.iter().map(|s| (*s, kind, value.to_owned())));
                }
            }
            _ => {
                let v = value.to_ascii_lowercase();
                if let Some(slots) = self.exact_get(kind, &v) {
                    out.extend(slots.iter().map(|s| (*s, kind, v.clone())));
                }
            }
        }
    }

    /// Indicators in force at the event's time whose alternative is fully seen in `observables`.
    pub fn matches<'a>(&'a self, observables: &[(Kind, String)], at: jiff::Timestamp) -> Vec<Hit<'a>> {
        if self.indicators.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for (kind, value) in observables {
            self.lookup(*kind, value, &mut found);
        }
        if found.is_empty() {
            return Vec::new();
        }
        found.sort_by_key(|f| f.0);
        let mut hits: Vec<Hit<'a>> = Vec::new();
        let mut i = 0;
        while i < found.len() {
            let (ind, alt) = (found[i].0.0, found[i].0.1);
            let mut j = i;
            let mut atoms_seen = 0usize;
            let mut last_atom = None;
            let mut matched = Vec::new();
            while j < found.len() && (found[j].0.0, found[j].0.1) == (ind, alt) {
                if last_atom != Some(found[j].0.2) {
                    atoms_seen += 1;
                    last_atom = Some(found[j].0.2);
                }
                matched.push((found[j].1, found[j].2.clone()));
                j += 1;
            }
            matched.sort();
            matched.dedup();
            let start = self.size_start[ind as usize] as usize;
            let end = self
                .size_start
                .get(ind as usize + 1)
                .map_or(self.sizes.len(), |e| *e as usize);
            let need = self.sizes[start..end]
                .get(usize::from(alt))
                .copied()
                .map_or(usize::MAX, usize::from);
            let indicator = &self.indicators[ind as usize];
            if atoms_seen >= need
                && indicator.valid_at(at)
                && !hits.iter().any(|h| std::ptr::eq(h.indicator, indicator))
            {
                hits.push(Hit { indicator, matched });
            }
            i = j;
        }
        hits
    }

    /// Matches an event (see [`observables`]).
    pub fn match_event(&self, event: &Event) -> Vec<Hit<'_>> {
        if self.indicators.is_empty() {
            return Vec::new();
        }
        self.matches(&observables(event), event.time)
    }
}

fn table<K>(tables: &mut Vec<(u8, HashMap<K, Slots>)>, prefix: u8) -> &mut HashMap<K, Slots> {
    let i = match tables.iter().position(|(p, _)| *p == prefix) {
        Some(i) => i,
        None => {
            tables.push((prefix, HashMap::new()));
            // Longest prefixes first: the most specific indicators are found first.
            tables.sort_by_key(|t| std::cmp::Reverse(t.0));
            tables.iter().position(|(p, _)| *p == prefix).unwrap_or(0)
        }
    };
    &mut tables[i].1
}

/// Field names whose values are host or domain names.
const DOMAIN_FIELDS: &[&str] = &[
    "queryname",
    "query",
    "rrname",
    "hostname",
    "host",
    "server_name",
    "sni",
    "domain",
    "dest_host",
    "destinationhostname",
    "dns.question.name",
    "url.domain",
    "destination.domain",
];

/// The observables of an event: addresses, domains, URLs, e-mail addresses and hashes found in
/// its normalized and original fields.
pub fn observables(event: &Event) -> Vec<(Kind, String)> {
    let mut out = Vec::new();
    let n = &event.normalized;
    for ip in [&n.src_ip, &n.dst_ip].into_iter().flatten() {
        out.push((Kind::Ip, ip.to_string()));
    }
    for (k, v) in &event.fields {
        walk(k, v, &mut out, 0);
    }
    out.sort();
    out.dedup();
    out
}

/// The observables of one value given on its own (an address, a hash, a URL, an e-mail address
/// or a domain), as an analyst or the triage agent asks about it.
pub fn observables_of_value(value: &str) -> Vec<(Kind, String)> {
    let mut out = Vec::new();
    classify(DOMAIN_FIELDS[0], value, &mut out);
    out
}

fn walk(key: &str, v: &Value, out: &mut Vec<(Kind, String)>, depth: usize) {
    if depth > 16 {
        return;
    }
    match v {
        Value::String(s) => classify(key, s, out),
        Value::Array(a) => a.iter().for_each(|x| walk(key, x, out, depth + 1)),
        Value::Object(o) => o.iter().for_each(|(k, x)| walk(k, x, out, depth + 1)),
        _ => {}
    }
}

fn classify(key: &str, s: &str, out: &mut Vec<(Kind, String)>) {
    let s = s.trim();
    if s.is_empty() || s.len() > 4096 {
        return;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        out.push((Kind::Ip, ip.to_string()));
        return;
    }
    let lower_key = key.to_ascii_lowercase();
    // Sysmon's `Hashes`: `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`.
    if s.contains('=') && lower_key.contains("hash") {
        for part in s.split(',') {
            if let Some((alg, h)) = part.split_once('=')
                && let Some(kind) = Kind::hash(alg.trim())
            {
                out.push((kind, h.trim().to_ascii_lowercase()));
            }
        }
        return;
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let kind = match s.len() {
            32 => Kind::Md5,
            40 => Kind::Sha1,
            64 => Kind::Sha256,
            128 => Kind::Sha512,
            _ => return,
        };
        out.push((kind, s.to_ascii_lowercase()));
        return;
    }
    if let Some(rest) = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://")) {
        out.push((Kind::Url, s.to_owned()));
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let host = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            out.push((Kind::Ip, ip.to_string()));
        } else if host.contains('.') {
            out.push((Kind::Domain, host.to_ascii_lowercase()));
        }
        return;
    }
    if s.contains('@') && !s.contains(char::is_whitespace) {
        let addr = s.trim_matches(['<', '>']);
        if let Some((local, domain)) = addr.rsplit_once('@')
            && !local.is_empty()
            && domain.contains('.')
        {
            out.push((Kind::Email, addr.to_ascii_lowercase()));
            out.push((Kind::Domain, domain.to_ascii_lowercase()));
        }
        return;
    }
    if DOMAIN_FIELDS.contains(&lower_key.as_str())
        && s.contains('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        out.push((Kind::Domain, s.trim_end_matches('.').to_ascii_lowercase()));
    }
}

/// The alert level of an indicator hit, from the indicator's confidence (none given: high).
pub fn level(confidence: Option<u8>) -> &'static str {
    match confidence {
        None => "high",
        Some(c) if c >= 70 => "high",
        Some(c) if c >= 30 => "medium",
        Some(_) => "low",
    }
}

impl IocIndex {
    /// The alerts of every indicator hit in `events`: titled after the indicator, with its
    /// labels, its source and the matched values as tags.
    pub fn alerts(&self, events: &[Event], created: jiff::Timestamp) -> Vec<rempart_model::Alert> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        for e in events {
            for hit in self.match_event(e) {
                let ind = hit.indicator;
                let mut tags = vec!["intel".to_owned(), format!("intel-source:{}", ind.source)];
                tags.extend(ind.labels.iter().cloned());
                tags.extend(hit.matched.iter().map(|(k, v)| format!("ioc:{}:{v}", k.as_str())));
                let mut alert = rempart_model::Alert::for_event(
                    e,
                    created,
                    Some(ind.id.clone()),
                    format!("Threat intel: {}", ind.name),
                    Some(level(ind.confidence).to_owned()),
                    tags,
                );
                alert.matched = hit
                    .matched
                    .iter()
                    .map(|(k, v)| rempart_model::MatchedField::new(format!("ioc.{}", k.as_str()), v.clone()))
                    .collect();
                out.push(alert);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{Atom, cidr};

    fn ind(id: &str, alternatives: Vec<Vec<Atom>>) -> Indicator {
        Indicator {
            id: id.into(),
            name: id.into(),
            source: "test".into(),
            description: None,
            labels: vec![],
            confidence: None,
            valid_from: None,
            valid_until: None,
            pattern: String::new(),
            alternatives,
        }
    }

    fn exact(kind: Kind, v: &str) -> Atom {
        Atom::new(kind, v).unwrap()
    }

    #[test]
    fn addresses_ranges_subdomains_and_conjunctions() {
        let idx = IocIndex::new(vec![
            ind("net", vec![vec![cidr("192.0.2.0/24").unwrap()]]),
            ind("host", vec![vec![cidr("2001:db8::5").unwrap()]]),
            ind("dom", vec![vec![exact(Kind::Domain, "evil.example")]]),
            ind(
                "both",
                vec![vec![
                    exact(Kind::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
                    exact(Kind::Url, "http://a/b"),
                ]],
            ),
        ]);
        let t = jiff::Timestamp::UNIX_EPOCH;
        let ids = |obs: &[(Kind, &str)]| -> Vec<String> {
            let o: Vec<(Kind, String)> = obs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            idx.matches(&o, t).iter().map(|h| h.indicator.id.clone()).collect()
        };
        assert_eq!(ids(&[(Kind::Ip, "192.0.2.77")]), ["net"]);
        assert!(ids(&[(Kind::Ip, "192.0.3.1")]).is_empty());
        assert_eq!(ids(&[(Kind::Ip, "2001:db8::5")]), ["host"]);
        assert_eq!(ids(&[(Kind::Domain, "cdn.EVIL.example.")]), ["dom"]);
        assert!(ids(&[(Kind::Domain, "notevil.example")]).is_empty());
        assert!(
            ids(&[(Kind::Md5, "D41D8CD98F00B204E9800998ECF8427E")]).is_empty(),
            "half of a conjunction"
        );
        assert_eq!(
            ids(&[
                (Kind::Md5, "D41D8CD98F00B204E9800998ECF8427E"),
                (Kind::Url, "http://a/b")
            ]),
            ["both"]
        );
    }

    #[test]
    fn validity_bounds_apply_at_the_event_s_time() {
        let mut i = ind("old", vec![vec![cidr("10.0.0.1").unwrap()]]);
        i.valid_until = Some("2020-01-01T00:00:00Z".parse().unwrap());
        let idx = IocIndex::new(vec![i]);
        let o = vec![(Kind::Ip, "10.0.0.1".to_owned())];
        assert_eq!(idx.matches(&o, "2019-06-01T00:00:00Z".parse().unwrap()).len(), 1);
        assert!(idx.matches(&o, "2021-06-01T00:00:00Z".parse().unwrap()).is_empty());
    }

    #[test]
    fn observables_come_from_every_shape_of_field() {
        let mut out = Vec::new();
        for (k, v) in [
            (
                "Hashes",
                "SHA1=A9993E364706816ABA3E25717850C26C9CD0D89D,MD5=900150983CD24FB0D6963F7D28E17F72",
            ),
            ("QueryName", "c2.evil.example"),
            ("url", "https://user@files.evil.example:8443/x?y=1"),
            ("from", "<Mallory@Evil.Example>"),
            ("dest_ip", "2001:db8::5"),
            ("Image", "C:\\Windows\\System32\\cmd.exe"),
        ] {
            classify(k, v, &mut out);
        }
        assert!(out.contains(&(Kind::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d".into())));
        assert!(out.contains(&(Kind::Md5, "900150983cd24fb0d6963f7d28e17f72".into())));
        assert!(out.contains(&(Kind::Domain, "c2.evil.example".into())));
        assert!(out.contains(&(Kind::Domain, "files.evil.example".into())));
        assert!(out.contains(&(Kind::Email, "mallory@evil.example".into())));
        assert!(out.contains(&(Kind::Ip, "2001:db8::5".into())));
        assert_eq!(out.len(), 8, "{out:?}");
    }
}

//! Per-entity baselines in the manner of UEBA jobs: what each host, account and source usually
//! does, learned from the stream, and findings when an event departs from it, each with what is
//! typical beside what happened.
//!
//! | detector | learns | fires when |
//! |---|---|---|
//! | `rare_process` | images run per host | a host that has run `warm_up` processes runs an image for the first time |
//! | `rare_parent_child` | parent → child image pairs | after `warm_up × 3` processes overall, a pair never seen |
//! | `first_logon` | hosts each account logs on to | after `warm_up` logons overall, an account logs on to a host for the first time |
//! | `unusual_hour` | each account's logon hours (UTC) | an account with `min_history` logons logs on in an hour that, with its neighbours, held under `rare_share` of them |
//! | `failed_logon_burst` | failed logons per account and per source per `burst_window_secs` | a window reaches `burst_min` and `burst_factor` times the key's usual count |
//! | `new_service` | services and scheduled tasks per host | a host known for a day installs one it never had |
//! | `outbound_volume` | bytes a host sends per hour | an hour goes `volume_z` deviations above the host's usual (log scale) and past `volume_min_bytes` |
//!
//! Everything is keyed by canonical names (`rempart_model::canonical`: lower-case short host
//! names, bare account names), bounded (`max_keys` per table; beyond,
//! new keys are not learned and never fire), and serializable for snapshots. Time comes from
//! the events. Built-in and machine accounts (`SYSTEM`, `…$`) are not profiled.

use std::collections::HashMap;

use rempart_model::canonical;
use serde::{Deserialize, Serialize};

/// Tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub warm_up: u64,
    pub min_history: u64,
    pub rare_share: f64,
    pub burst_window_secs: i64,
    pub burst_min: u64,
    pub burst_factor: f64,
    pub volume_z: f64,
    pub volume_min_bytes: u64,
    /// How long a host must be known before a new service on it is news.
    pub host_known_secs: i64,
    pub max_keys: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            warm_up: 200,
            min_history: 30,
            rare_share: 0.02,
            burst_window_secs: 300,
            burst_min: 10,
            burst_factor: 3.0,
            volume_z: 4.0,
            volume_min_bytes: 50 * 1024 * 1024,
            host_known_secs: 86_400,
            max_keys: 100_000,
        }
    }
}

/// What an event did, as the baselines see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activity<'a> {
    Process { image: &'a str, parent: Option<&'a str> },
    Logon { source: Option<&'a str>, success: bool },
    Service { name: &'a str },
    Outbound { bytes: u64 },
}

/// One event's activity: when, where, who.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation<'a> {
    /// Unix seconds.
    pub time: i64,
    pub host: Option<&'a str>,
    pub user: Option<&'a str>,
    pub activity: Activity<'a>,
}

/// Which baseline fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    RareProcess,
    RareParentChild,
    FirstLogon,
    UnusualHour,
    FailedLogonBurst,
    NewService,
    OutboundVolume,
}

impl Detector {
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::RareProcess => "rare_process",
            Detector::RareParentChild => "rare_parent_child",
            Detector::FirstLogon => "first_logon",
            Detector::UnusualHour => "unusual_hour",
            Detector::FailedLogonBurst => "failed_logon_burst",
            Detector::NewService => "new_service",
            Detector::OutboundVolume => "outbound_volume",
        }
    }

    /// A title for alerts.
    pub fn title(self) -> &'static str {
        match self {
            Detector::RareProcess => "Anomaly: a process never run on this host",
            Detector::RareParentChild => "Anomaly: a parent and child process never seen together",
            Detector::FirstLogon => "Anomaly: first logon of an account to a host",
            Detector::UnusualHour => "Anomaly: logon at an unusual hour for the account",
            Detector::FailedLogonBurst => "Anomaly: burst of failed logons",
            Detector::NewService => "Anomaly: new service or scheduled task on a host",
            Detector::OutboundVolume => "Anomaly: unusual volume sent out by a host",
        }
    }

    /// Sigma-style level. A new parent-child pair is informational (it joins incidents as
    /// context but opens none: software changes make new pairs every day); a new program on a
    /// host is low.
    pub fn level(self) -> &'static str {
        match self {
            Detector::RareParentChild => "informational",
            Detector::RareProcess => "low",
            Detector::FailedLogonBurst | Detector::NewService | Detector::OutboundVolume => "high",
            _ => "medium",
        }
    }

    /// The ATT&CK technique and tactic the departure most often means.
    pub fn technique(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Detector::RareProcess | Detector::RareParentChild => ("T1204", "User Execution", "execution"),
            Detector::FirstLogon | Detector::UnusualHour => ("T1078", "Valid Accounts", "initial-access"),
            Detector::FailedLogonBurst => ("T1110", "Brute Force", "credential-access"),
            Detector::NewService => ("T1543.003", "Windows Service", "persistence"),
            Detector::OutboundVolume => ("T1048", "Exfiltration Over Alternative Protocol", "exfiltration"),
        }
    }
}

/// A departure from a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub detector: Detector,
    /// What the baseline is of: `host:ws-07`, `user:alice`, `source:10.0.0.5`, `host:ws-07 user:alice`.
    pub entity: String,
    pub typical: String,
    pub actual: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counts {
    total: u64,
    by: HashMap<String, u64>,
}

impl Counts {
    fn top(&self, n: usize) -> String {
        let mut v: Vec<(&String, &u64)> = self.by.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .take(n)
            .map(|(k, c)| format!("{k} ({:.0}%)", **c as f64 * 100.0 / self.total.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Logons {
    total: u64,
    hosts: HashMap<String, u64>,
    hours: [u64; 24],
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Burst {
    window: i64,
    count: u64,
    fired: bool,
    /// Decayed mean of past windows' counts (windows with failures only).
    usual: f64,
    windows: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Volume {
    hour: i64,
    bytes: u64,
    fired: bool,
    /// Past hours: count, mean and sum of squared deviations of ln(1 + bytes).
    n: u64,
    mean: f64,
    m2: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Host {
    first_seen: i64,
    processes: Counts,
    services: Vec<String>,
}

/// All baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    params: Params,
    hosts: HashMap<String, Host>,
    pairs: Counts,
    processes_total: u64,
    logons: HashMap<String, Logons>,
    logons_total: u64,
    failures_by_user: HashMap<String, Burst>,
    failures_by_source: HashMap<String, Burst>,
    volume: HashMap<String, Volume>,
}

/// The file name of an image path, as written: `C:\Windows\System32\cmd.exe` → `cmd.exe`.
pub fn image_of(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// The file name of an image path, lower case.
fn image_name(path: &str) -> String {
    image_of(path).to_ascii_lowercase()
}

impl Baselines {
    pub fn new(params: Params) -> Baselines {
        Baselines {
            params,
            hosts: HashMap::new(),
            pairs: Counts::default(),
            processes_total: 0,
            logons: HashMap::new(),
            logons_total: 0,
            failures_by_user: HashMap::new(),
            failures_by_source: HashMap::new(),
            volume: HashMap::new(),
        }
    }

    fn host(&mut self, name: &str, time: i64) -> Option<&mut Host> {
        if !self.hosts.contains_key(name) {
            if self.hosts.len() >= self.params.max_keys {
                return None;
            }
            self.hosts.insert(
                name.to_owned(),
                Host {
                    first_seen: time,
                    ..Host::default()
                },
            );
        }
        let h = self.hosts.get_mut(name)?;
        h.first_seen = h.first_seen.min(time);
        Some(h)
    }

    /// Applies new thresholds to what has been learned (a changed configuration after a
    /// restart); the counts stay.
    pub fn set_params(&mut self, params: Params) {
        self.params = params;
    }

    /// Learns from one observation and returns the findings it raises.
    pub fn observe(&mut self, o: &Observation<'_>) -> Vec<Finding> {
        let host = o.host.and_then(canonical::host);
        let user = o.user.and_then(canonical::user);
        let mut out = Vec::new();
        match o.activity {
            Activity::Process { image, parent } => {
                let Some(host) = host else { return out };
                self.process(&host, image, parent, o.time, &mut out);
            }
            Activity::Logon { source, success } => {
                if success {
                    if let (Some(user), Some(host)) = (&user, &host) {
                        self.logon(user, host, o.time, &mut out);
                    }
                } else {
                    let window = o.time.div_euclid(self.params.burst_window_secs.max(1));
                    if let Some(user) = &user {
                        self.failure(true, user, window, &mut out);
                    }
                    if let Some(src) = source.filter(|s| !s.is_empty() && *s != "-") {
                        self.failure(false, &src.to_ascii_lowercase(), window, &mut out);
                    }
                }
            }
            Activity::Service { name } => {
                let Some(host) = host else { return out };
                let known_secs = self.params.host_known_secs;
                let Some(h) = self.host(&host, o.time) else { return out };
                let name = name.to_ascii_lowercase();
                if !h.services.contains(&name) {
                    if o.time - h.first_seen >= known_secs {
                        out.push(Finding {
                            detector: Detector::NewService,
                            entity: format!("host:{host}"),
                            typical: format!("{} services or tasks installed before on this host", h.services.len()),
                            actual: name.clone(),
                        });
                    }
                    if h.services.len() < 4_096 {
                        h.services.push(name);
                    }
                }
            }
            Activity::Outbound { bytes } => {
                let Some(host) = host else { return out };
                self.outbound(&host, bytes, o.time, &mut out);
            }
        }
        // Any activity makes a host known.
        if let Some(h) = o.host.and_then(canonical::host) {
            self.host(&h, o.time);
        }
        out
    }

    fn process(&mut self, host: &str, image: &str, parent: Option<&str>, time: i64, out: &mut Vec<Finding>) {
        let warm_up = self.params.warm_up;
        let child = image_name(image);
        self.processes_total += 1;
        if let Some(parent) = parent {
            let pair = format!("{} → {child}", image_name(parent));
            if !self.pairs.by.contains_key(&pair) && self.processes_total > warm_up * 3 {
                out.push(Finding {
                    detector: Detector::RareParentChild,
                    entity: format!("host:{host}"),
                    typical: format!(
                        "{} pairs seen; most frequent: {}",
                        self.pairs.by.len(),
                        self.pairs.top(3)
                    ),
                    actual: pair.clone(),
                });
            }
            if self.pairs.by.contains_key(&pair) || self.pairs.by.len() < self.params.max_keys {
                self.pairs.total += 1;
                *self.pairs.by.entry(pair).or_default() += 1;
            }
        }
        let max = self.params.max_keys;
        let Some(h) = self.host(host, time) else { return };
        if !h.processes.by.contains_key(&child) && h.processes.total >= warm_up {
            out.push(Finding {
                detector: Detector::RareProcess,
                entity: format!("host:{host}"),
                typical: format!(
                    "{} images in {} processes; most frequent: {}",
                    h.processes.by.len(),
                    h.processes.total,
                    h.processes.top(3)
                ),
                actual: child.clone(),
            });
        }
        if h.processes.by.contains_key(&child) || h.processes.by.len() < max {
            h.processes.total += 1;
            *h.processes.by.entry(child).or_default() += 1;
        }
    }

    fn logon(&mut self, user: &str, host: &str, time: i64, out: &mut Vec<Finding>) {
        let p = self.params;
        let hour = usize::try_from(time.rem_euclid(86_400) / 3_600).unwrap_or(0);
        if !self.logons.contains_key(user) && self.logons.len() >= p.max_keys {
            return;
        }
        let warm = self.logons_total >= p.warm_up;
        let l = self.logons.entry(user.to_owned()).or_default();
        if !l.hosts.contains_key(host) && warm {
            let typical = if l.total == 0 {
                "never seen logging on before".to_owned()
            } else {
                let mut hosts: Vec<&String> = l.hosts.keys().collect();
                hosts.sort();
                format!(
                    "{} logons to {}",
                    l.total,
                    hosts.iter().take(5).map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
                )
            };
            out.push(Finding {
                detector: Detector::FirstLogon,
                entity: format!("user:{user} host:{host}"),
                typical,
                actual: format!("logon to {host} at {hour:02}:00 UTC"),
            });
        }
        if l.total >= p.min_history {
            let near: u64 = [23, 0, 1].iter().map(|d| l.hours[(hour + d) % 24]).sum();
            if (near as f64) < p.rare_share * l.total as f64 {
                let mut busiest: Vec<(usize, u64)> = l.hours.iter().copied().enumerate().collect();
                busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                let top: Vec<String> = busiest
                    .iter()
                    .take(3)
                    .filter(|(_, c)| *c > 0)
                    .map(|(h, c)| format!("{h:02}:00 ({:.0}%)", *c as f64 * 100.0 / l.total as f64))
                    .collect();
                out.push(Finding {
                    detector: Detector::UnusualHour,
                    entity: format!("user:{user}"),
                    typical: format!("{} logons, most at {}", l.total, top.join(", ")),
                    actual: format!("{hour:02}:00 UTC on {host}"),
                });
            }
        }
        l.total += 1;
        l.hours[hour] += 1;
        if l.hosts.len() < 4_096 || l.hosts.contains_key(host) {
            *l.hosts.entry(host.to_owned()).or_default() += 1;
        }
        self.logons_total += 1;
    }

    fn failure(&mut self, by_user: bool, key: &str, window: i64, out: &mut Vec<Finding>) {
        let p = self.params;
        let table = if by_user {
            &mut self.failures_by_user
        } else {
            &mut self.failures_by_source
        };
        if !table.contains_key(key) && table.len() >= p.max_keys {
            return;
        }
        let b = table.entry(key.to_owned()).or_default();
        if b.window != window {
            if b.count > 0 {
                // Decayed mean of past windows; a window that fired is not learned (the guard).
                if !b.fired {
                    b.usual = if b.windows == 0 {
                        b.count as f64
                    } else {
                        0.8 * b.usual + 0.2 * b.count as f64
                    };
                    b.windows += 1;
                }
            }
            b.window = window;
            b.count = 0;
            b.fired = false;
        }
        b.count += 1;
        let threshold = (p.burst_min as f64).max(p.burst_factor * b.usual);
        if !b.fired && b.count as f64 >= threshold {
            b.fired = true;
            out.push(Finding {
                detector: Detector::FailedLogonBurst,
                entity: if by_user {
                    format!("user:{key}")
                } else {
                    format!("source:{key}")
                },
                typical: if b.windows == 0 {
                    "no failed logons before".to_owned()
                } else {
                    format!(
                        "about {:.1} failed logons per {} s when any",
                        b.usual, p.burst_window_secs
                    )
                },
                actual: format!("{} failed logons within {} s", b.count, p.burst_window_secs),
            });
        }
    }

    fn outbound(&mut self, host: &str, bytes: u64, time: i64, out: &mut Vec<Finding>) {
        let p = self.params;
        if !self.volume.contains_key(host) && self.volume.len() >= p.max_keys {
            return;
        }
        let hour = time.div_euclid(3_600);
        let v = self.volume.entry(host.to_owned()).or_default();
        if v.hour != hour {
            if v.bytes > 0 && !v.fired {
                let x = (1.0 + v.bytes as f64).ln();
                v.n += 1;
                let d = x - v.mean;
                v.mean += d / v.n as f64;
                v.m2 += d * (x - v.mean);
            }
            v.hour = hour;
            v.bytes = 0;
            v.fired = false;
        }
        v.bytes = v.bytes.saturating_add(bytes);
        if v.fired || v.n < 24 || v.bytes < p.volume_min_bytes {
            return;
        }
        let std = (v.m2 / (v.n - 1) as f64).sqrt().max(0.25);
        let x = (1.0 + v.bytes as f64).ln();
        if x > v.mean + p.volume_z * std {
            v.fired = true;
            out.push(Finding {
                detector: Detector::OutboundVolume,
                entity: format!("host:{host}"),
                typical: format!("about {} per hour", human_bytes(v.mean.exp() - 1.0)),
                actual: format!("{} in the hour so far", human_bytes(v.bytes as f64)),
            });
        }
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

//! `[incidents]` and `[triage]`: how alerts group into incidents, the asset inventory that
//! weighs their severity, and how the triage agent runs.

use serde::Deserialize;

use crate::Problem;

/// How alerts group into incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Incidents {
    /// Alerts sharing an entity this close in time join one incident.
    pub window_secs: u64,
    /// An alert further along the ATT&CK kill chain than an incident's latest joins it over
    /// this longer span, if it shares an entity.
    pub kill_chain_window_secs: u64,
    /// Entities that never link alerts (`kind:value`, e.g. a shared proxy's address
    /// `ip:10.0.0.3` or a service account `user:svc-backup`).
    pub ignore: Vec<String>,
    /// The asset inventory.
    pub assets: Vec<Asset>,
}

impl Default for Incidents {
    fn default() -> Self {
        Incidents {
            window_secs: 3_600,
            kill_chain_window_secs: 86_400,
            ignore: Vec::new(),
            assets: Vec::new(),
        }
    }
}

/// One entry of the asset inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    /// `host`, `user` or `ip`.
    pub kind: String,
    /// A name (`*` matches any run of characters, case-insensitive) or, for `ip`, an address
    /// or CIDR block.
    pub pattern: String,
    /// `low`, `medium`, `high` or `critical`.
    pub criticality: String,
    /// Free labels (`pci`, `domain-controller`), shown with the incident.
    pub tags: Vec<String>,
}

/// The triage agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Triage {
    /// Triage new incidents (and incidents that grew) automatically.
    pub auto: bool,
    /// The gateway route the agent asks (`[[gateway.routes]]` name).
    pub route: String,
    /// Most automatic triages started per hour; on-demand triage is not limited.
    pub per_hour: u32,
    /// Most model turns per triage (each turn may call tools).
    pub max_steps: u32,
    /// Most tokens (input and output) one triage may spend.
    pub max_tokens: u64,
    /// Longest a triage may take, model calls and tools together.
    pub timeout_secs: u64,
    /// Only incidents at least this severe are triaged automatically.
    pub min_severity: String,
    /// How often an incident triaged without a model is offered to the model again, and how
    /// often the automatic triage looks for work when nothing wakes it.
    pub retry_secs: u64,
    /// Activity the institution declared beforehand (a penetration test, a vulnerability scan,
    /// a change): an incident wholly inside one is what it declares, not an intrusion.
    pub declared: Vec<Declared>,
}

/// `[[triage.declared]]`: a window of activity declared by the institution, never by the data.
///
/// ```toml
/// [[triage.declared]]
/// name = "External penetration test Q4"
/// kind = "penetration_test"          # or vulnerability_scan, change
/// reference = "CHG-2026-0412"
/// hosts = ["pt-kali-*", "ws-fin-07"] # the machines the activity runs on or reaches
/// accounts = ["pentest.*"]           # optional: only these accounts
/// from = "2026-11-20T08:00:00Z"
/// until = "2026-11-21T18:00:00Z"
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub name: String,
    /// `penetration_test`, `vulnerability_scan` or `change`.
    pub kind: String,
    /// The change or engagement ticket.
    pub reference: String,
    /// Host name patterns (`*` for any run, case-insensitive).
    pub hosts: Vec<String>,
    /// Account patterns; empty: any account.
    pub accounts: Vec<String>,
    pub from: jiff::Timestamp,
    pub until: jiff::Timestamp,
}

impl Declared {
    /// `penetration test "Q4 test" (CHG-7)`: the kind, the name and the ticket, for people.
    pub fn describe(&self) -> String {
        let mut out = format!("{} {:?}", self.kind.replace('_', " "), self.name);
        if !self.reference.is_empty() {
            out.push_str(&format!(" ({})", self.reference));
        }
        out
    }

    /// Whether an alert on `host` by `user` at `time` falls inside the window.
    pub fn covers(&self, host: Option<&str>, user: Option<&str>, time: jiff::Timestamp) -> bool {
        (self.from..=self.until).contains(&time)
            && host.is_some_and(|h| self.covers_host(h))
            && user.is_none_or(|u| self.covers_account(u))
    }

    /// Whether `host` is one of the window's machines, named by its short name or its full
    /// one, in the pattern as in the logs.
    pub fn covers_host(&self, host: &str) -> bool {
        let short = |v: &str| v.split('.').next().unwrap_or(v).to_ascii_lowercase();
        any_glob(&self.hosts, host)
            || any_glob(&self.hosts, &short(host))
            || self.hosts.iter().any(|p| !p.contains('*') && short(p) == short(host))
    }

    /// Whether `user` is one of the window's accounts (any, when it names none). `CORP\name`
    /// and `name@corp` name the account `name`.
    pub fn covers_account(&self, user: &str) -> bool {
        let bare = user.rsplit('\\').next().unwrap_or(user);
        let bare = bare.split('@').next().unwrap_or(bare);
        self.accounts.is_empty() || any_glob(&self.accounts, user) || any_glob(&self.accounts, bare)
    }
}

fn any_glob(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| rempart_model::glob(p, value))
}

/// The kinds of declared activity.
pub const DECLARED_KINDS: &[&str] = &["penetration_test", "vulnerability_scan", "change"];

impl Default for Triage {
    fn default() -> Self {
        Triage {
            auto: true,
            route: "triage".into(),
            per_hour: 60,
            max_steps: 8,
            max_tokens: 60_000,
            timeout_secs: 120,
            min_severity: "low".into(),
            retry_secs: 300,
            declared: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIncidents {
    window_secs: Option<i64>,
    kill_chain_window_secs: Option<i64>,
    ignore: Option<Vec<String>>,
    assets: Option<Vec<RawAsset>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    kind: String,
    #[serde(rename = "match")]
    pattern: String,
    criticality: String,
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTriage {
    auto: Option<bool>,
    route: Option<String>,
    per_hour: Option<i64>,
    max_steps: Option<i64>,
    max_tokens: Option<i64>,
    timeout_secs: Option<i64>,
    min_severity: Option<String>,
    retry_secs: Option<i64>,
    declared: Option<Vec<RawDeclared>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclared {
    name: String,
    kind: String,
    reference: Option<String>,
    hosts: Vec<String>,
    accounts: Option<Vec<String>>,
    from: String,
    until: String,
}

const ENTITY_KINDS: &[&str] = &["host", "user", "ip", "process", "hash", "domain"];
const CRITICALITIES: &[&str] = &["low", "medium", "high", "critical"];
const SEVERITIES: &[&str] = &["informational", "low", "medium", "high", "critical"];

pub(crate) fn bounded(
    problems: &mut Vec<Problem>,
    path: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Option<u64> {
    let v = value?;
    if range.contains(&v) {
        u64::try_from(v).ok()
    } else {
        problems.push(Problem {
            path: path.to_owned(),
            message: format!("{v} is outside {} to {}", range.start(), range.end()),
        });
        None
    }
}

pub(crate) fn validate_incidents(raw: RawIncidents, problems: &mut Vec<Problem>) -> Incidents {
    let mut out = Incidents::default();
    if let Some(n) = bounded(problems, "incidents.window_secs", raw.window_secs, 1..=7 * 86_400) {
        out.window_secs = n;
    }
    if let Some(n) = bounded(
        problems,
        "incidents.kill_chain_window_secs",
        raw.kill_chain_window_secs,
        1..=30 * 86_400,
    ) {
        out.kill_chain_window_secs = n;
    }
    if out.kill_chain_window_secs < out.window_secs {
        problems.push(Problem {
            path: "incidents.kill_chain_window_secs".into(),
            message: format!(
                "{} is shorter than window_secs ({}): the kill-chain window extends the ordinary one",
                out.kill_chain_window_secs, out.window_secs
            ),
        });
    }
    for (i, e) in raw.ignore.unwrap_or_default().into_iter().enumerate() {
        match e.split_once(':') {
            Some((kind, value)) if ENTITY_KINDS.contains(&kind) && !value.is_empty() => out.ignore.push(e),
            _ => problems.push(Problem {
                path: format!("incidents.ignore[{i}]"),
                message: format!("`{e}` is not `kind:value` with kind one of {}", ENTITY_KINDS.join(", ")),
            }),
        }
    }
    for (i, a) in raw.assets.unwrap_or_default().into_iter().enumerate() {
        let path = format!("incidents.assets[{i}]");
        let mut ok = true;
        if !["host", "user", "ip"].contains(&a.kind.as_str()) {
            problems.push(Problem {
                path: format!("{path}.kind"),
                message: format!("`{}` is not host, user or ip", a.kind),
            });
            ok = false;
        }
        if !CRITICALITIES.contains(&a.criticality.as_str()) {
            problems.push(Problem {
                path: format!("{path}.criticality"),
                message: format!("`{}` is not one of {}", a.criticality, CRITICALITIES.join(", ")),
            });
            ok = false;
        }
        if a.kind == "ip" && !valid_cidr(&a.pattern) {
            problems.push(Problem {
                path: format!("{path}.match"),
                message: format!("`{}` is not an IP address or CIDR block", a.pattern),
            });
            ok = false;
        }
        if a.pattern.is_empty() {
            problems.push(Problem {
                path: format!("{path}.match"),
                message: "empty".into(),
            });
            ok = false;
        }
        if ok {
            out.assets.push(Asset {
                kind: a.kind,
                pattern: a.pattern,
                criticality: a.criticality,
                tags: a.tags.unwrap_or_default(),
            });
        }
    }
    out
}

fn valid_cidr(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= max))
}

pub(crate) fn validate_triage(raw: RawTriage, problems: &mut Vec<Problem>) -> Triage {
    let mut out = Triage::default();
    if let Some(a) = raw.auto {
        out.auto = a;
    }
    if let Some(r) = raw.route {
        if r.is_empty() {
            problems.push(Problem {
                path: "triage.route".into(),
                message: "empty: name a `[[gateway.routes]]`".into(),
            });
        } else {
            out.route = r;
        }
    }
    if let Some(n) = bounded(problems, "triage.per_hour", raw.per_hour, 0..=100_000) {
        out.per_hour = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(n) = bounded(problems, "triage.max_steps", raw.max_steps, 1..=64) {
        out.max_steps = u32::try_from(n).unwrap_or(8);
    }
    if let Some(n) = bounded(problems, "triage.max_tokens", raw.max_tokens, 1_000..=10_000_000) {
        out.max_tokens = n;
    }
    if let Some(n) = bounded(problems, "triage.timeout_secs", raw.timeout_secs, 1..=3_600) {
        out.timeout_secs = n;
    }
    if let Some(n) = bounded(problems, "triage.retry_secs", raw.retry_secs, 1..=86_400) {
        out.retry_secs = n;
    }
    if let Some(s) = raw.min_severity {
        if SEVERITIES.contains(&s.as_str()) {
            out.min_severity = s;
        } else {
            problems.push(Problem {
                path: "triage.min_severity".into(),
                message: format!("`{s}` is not one of {}", SEVERITIES.join(", ")),
            });
        }
    }
    for (i, d) in raw.declared.unwrap_or_default().into_iter().enumerate() {
        if let Some(d) = validate_declared(d, &format!("triage.declared[{i}]"), problems) {
            out.declared.push(d);
        }
    }
    out
}

fn validate_declared(d: RawDeclared, path: &str, problems: &mut Vec<Problem>) -> Option<Declared> {
    let before = problems.len();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            path: format!("{path}.{field}"),
            message,
        });
    };
    if d.name.trim().is_empty() {
        problem("name", "empty: say what the activity is".into());
    }
    if !DECLARED_KINDS.contains(&d.kind.as_str()) {
        problem(
            "kind",
            format!("`{}` is not one of {}", d.kind, DECLARED_KINDS.join(", ")),
        );
    }
    if d.hosts.is_empty() || d.hosts.iter().any(|h| h.trim().is_empty() || h.trim() == "*") {
        problem(
            "hosts",
            "name the machines (a window over every host would silence every incident)".into(),
        );
    }
    let mut time = |field: &str, v: &str| match v.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(e) => {
            problem(field, format!("`{v}` is not an RFC 3339 time: {e}"));
            None
        }
    };
    let (from, until) = (time("from", &d.from), time("until", &d.until));
    if let (Some(f), Some(u)) = (from, until) {
        if u <= f {
            problem("until", "must be after `from`".into());
        } else if u.duration_since(f).as_secs() > 31 * 86_400 {
            problem("until", "a declared window lasts at most 31 days".into());
        }
    }
    if problems.len() > before {
        return None;
    }
    let lower = |v: Vec<String>| v.into_iter().map(|p| p.trim().to_ascii_lowercase()).collect();
    Some(Declared {
        name: d.name,
        kind: d.kind,
        reference: d.reference.unwrap_or_default(),
        hosts: lower(d.hosts),
        accounts: lower(d.accounts.unwrap_or_default()),
        from: from?,
        until: until?,
    })
}

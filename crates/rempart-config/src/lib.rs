//! Rempart's configuration: one TOML file, `version = 1`.
//!
//! Loading happens in two phases. First each section is deserialized on its own into a raw
//! form, collecting unknown keys and type errors from every section rather than stopping at
//! the first; then the raw form is validated into [`Config`], whose fields hold no
//! unchecked values. Every problem found is reported at once, each with its key path.
//!
//! Secrets are never held here in the clear: a secret is named by the environment variable or
//! the file that holds it, and read where it is used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use incidents::bounded;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub mod anomaly;
pub mod bus;
pub mod gateway;
pub mod incidents;
pub mod intel;
pub mod oidc;
pub mod respond;
pub mod store;
pub mod tuning;
pub use anomaly::{Anomaly, AnomalyTuning, Detectors};
pub use bus::Bus;
pub use gateway::Gateway;
pub use incidents::{Asset, Incidents, Triage};
pub use intel::{Intel, TaxiiFeed};
pub use respond::{ChatFormat, Connector, ConnectorKind, Nis2Entity, Regulatory, Respond, SmtpTls};
pub use store::Store;

/// The configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from and the SHA-256 of its text, recorded in the audit ledger
    /// when a server starts; `None` for the embedded defaults.
    pub source: Option<ConfigSource>,
    /// Where the embedded instance keeps its data (`rempart.db`, keys).
    pub data_dir: Option<PathBuf>,
    pub server: Server,
    pub syslog: Syslog,
    pub retention: Retention,
    /// Where everything is kept: the embedded SQLite file, or a shared PostgreSQL.
    pub store: Store,
    /// The NATS JetStream bus of a cluster; `None`: one process does everything.
    pub bus: Option<Bus>,
    pub ingest: Ingest,
    pub detection: Detection,
    pub audit: Audit,
    pub privacy: Privacy,
    /// Sign-in with the institution's OpenID provider, if configured.
    pub oidc: Option<oidc::Oidc>,
    pub gateway: Gateway,
    pub incidents: Incidents,
    pub triage: Triage,
    pub respond: Respond,
    /// Systems response actions reach, by name.
    pub connectors: std::collections::BTreeMap<String, Connector>,
    pub regulatory: Regulatory,
    pub anomaly: Anomaly,
    /// Threat-intelligence feeds the server polls.
    pub intel: Intel,
    /// Where `rempart tuning run` trains, and the server that serves the adapters.
    pub tuning: tuning::Tuning,
}

/// The privacy engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Privacy {
    /// DNS suffixes of the institution's own hosts: names under them are pseudonymized and keep
    /// the suffix.
    pub internal_suffixes: Vec<String>,
    /// Values that stay in clear (public resolvers, well-known services).
    pub allow: Vec<String>,
    /// Entity types not looked for (`ip`, `email`, `user`, `host`, `sid`, `mac`, `phone`, `iban`,
    /// `card`, `natid`, `person`; `secret` cannot be disabled).
    pub disabled: Vec<String>,
    /// Key epoch of every pseudonymization domain: raising it rotates all pseudonyms.
    pub key_epoch: u32,
    /// Key epochs of single domains, overriding `key_epoch` (rotating one domain).
    pub domain_epochs: std::collections::BTreeMap<String, u32>,
    /// Structured fields whose whole value is always an entity type (`ParentUser = "user"`).
    pub fields: std::collections::BTreeMap<String, String>,
    /// Structured fields never scanned (hashes, GUIDs).
    pub skip_fields: Vec<String>,
    /// The data class of events by their source, first match wins (`[[privacy.classify]]`);
    /// events of other sources keep the class they were decoded with (`TLP:AMBER`).
    pub classify: Vec<SourceClass>,
}

/// Events whose source (`http`, `syslog`, an HTTP `?source=`, a file's path) matches `pattern`
/// (a case-insensitive glob, `*` for any run) are of `class`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceClass {
    /// Lower case.
    pub pattern: String,
    pub class: rempart_model::DataClass,
}

impl Privacy {
    /// The class events of `source` are of, if a rule names it.
    pub fn class_of(&self, source: &str) -> Option<rempart_model::DataClass> {
        self.classify
            .iter()
            .find(|c| rempart_model::glob(&c.pattern, source))
            .map(|c| c.class)
    }
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    pub path: PathBuf,
    /// Hex SHA-256 of the file's text.
    pub sha256: String,
}

/// The audit ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The ledger's name in its signed checkpoints; `None`: `rempart/<host name>`.
    pub origin: Option<String>,
    /// Ed25519 signing key (PKCS#8 PEM); `None`: `<data_dir>/keys/ledger-signing.pem`,
    /// created on first use.
    pub signing_key: Option<PathBuf>,
    /// Master key wrapping the payload keys (64 hex digits); `None`:
    /// `<data_dir>/keys/master.key`, created on first use.
    pub master_key: Option<PathBuf>,
    /// Sign a checkpoint every this many records …
    pub checkpoint_every: u64,
    /// … or every this many seconds while records wait for one.
    pub checkpoint_interval_secs: u64,
    /// Payloads older than this many days are pruned (hashes stay). EU AI Act Art. 19 asks
    /// for at least six months, hence at least 183.
    pub retention_days: u32,
    /// More files that receive every signed checkpoint, besides the one in the data
    /// directory: put them on other volumes, so that a rolled-back or emptied data directory
    /// is caught by `audit verify`.
    pub witnesses: Vec<PathBuf>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            origin: None,
            signing_key: None,
            master_key: None,
            checkpoint_every: 1000,
            checkpoint_interval_secs: 60,
            retention_days: 183,
            witnesses: Vec::new(),
        }
    }
}

/// Detection on everything ingested.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Detection {
    /// Sigma rule files or folders, loaded at start.
    pub rules: Vec<PathBuf>,
    /// MITRE ATT&CK attack-pattern lookup (`attack-patterns-lookup-*.json`): alerts carry the
    /// names and tactics of their rules' techniques.
    pub attack: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// TLS on the API, gateway and console listener.
    pub tls: Option<ServerTls>,
    /// Serve plain HTTP on an address other than loopback (refused unless this says so).
    pub allow_plaintext: bool,
    /// Requests each token, certificate or person may make per minute to the API and the
    /// console (the gateway has its own quotas); 0 for no limit.
    pub requests_per_minute: u32,
    /// Failed authentications one address may make in a minute before it is held back (429
    /// until the minute ends); 0 for no hold-back.
    pub auth_failures_per_minute: u32,
    /// Longest a person's event search may run before it is stopped.
    pub query_budget_secs: u64,
    /// People's event searches running at once (0: one per core).
    pub concurrent_queries: u32,
    /// Limits on the listener's connections.
    pub connections: Connections,
}

/// Limits on a listener's connections, so that clients which connect and never send, or send
/// slowly, cannot hold the server: each limit closes what exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Connections open at once; one more is closed as soon as it is accepted. The server
    /// lowers it to what its file limit allows.
    pub max: u32,
    /// Connections open at once from one address (for IPv6, one /64 network).
    pub max_per_peer: u32,
    /// HTTP: longest wait for a request's headers, including the wait for the next request on
    /// an idle kept-alive connection. Syslog: longest silence on a connection.
    pub idle_secs: u64,
    /// HTTP only: longest silence while a request body is being received.
    pub body_secs: u64,
}

impl Connections {
    /// The API listener's defaults.
    pub const HTTP: Connections = Connections {
        max: 4096,
        max_per_peer: 256,
        idle_secs: 30,
        body_secs: 30,
    };
    /// The syslog TCP and TLS listeners' defaults: senders keep one connection open for
    /// hours, so silence is allowed for an hour.
    pub const SYSLOG: Connections = Connections {
        max: 2048,
        max_per_peer: 64,
        idle_secs: 3600,
        body_secs: 0,
    };
}

/// `[server.tls]`: the listener's certificate and, optionally, client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM certificate chain, leaf first; reloaded when it changes.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); reloaded when it changes.
    pub key_file: PathBuf,
    /// PEM certificates of the CAs whose client certificates are accepted (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// PEM or DER certificate revocation lists of those CAs.
    pub crl_files: Vec<PathBuf>,
    /// Refuse connections without a client certificate (otherwise a certificate is optional
    /// and bearer tokens and console sessions still work).
    pub require_client_cert: bool,
    /// Client certificates that stand for a role, by a name in their subject.
    pub clients: Vec<CertClient>,
}

/// `[[server.tls.clients]]`: a client certificate whose subject (common name, or a DNS, e-mail
/// or URI subject alternative name) is `subject` acts with `role` under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertClient {
    pub subject: String,
    pub name: String,
    pub role: String,
}

/// The roles a token or a client certificate may hold.
pub const ROLES: [&str; 7] = [
    "viewer",
    "analyst",
    "approver",
    "admin",
    "ingest",
    "gateway-client",
    "auditor",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syslog {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SyslogTls>,
    /// Limits on the TCP and TLS listeners' connections (each listener on its own).
    pub connections: Connections,
}

impl Default for Syslog {
    fn default() -> Self {
        Syslog {
            udp: None,
            tcp: None,
            tls: None,
            connections: Connections::SYSLOG,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTls {
    pub listen: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this many days are deleted.
    pub events_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingest {
    /// Events per durable write.
    pub batch_size: usize,
    /// For generic JSON: the field holding the event time.
    pub timestamp_field: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            data_dir: None,
            server: Server {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                max_body_bytes: 16 * 1024 * 1024,
                tls: None,
                allow_plaintext: false,
                requests_per_minute: 6000,
                auth_failures_per_minute: 30,
                query_budget_secs: 10,
                concurrent_queries: 0,
                connections: Connections::HTTP,
            },
            syslog: Syslog::default(),
            retention: Retention { events_days: 180 },
            store: Store::default(),
            bus: None,
            ingest: Ingest {
                batch_size: 2_000,
                timestamp_field: None,
            },
            detection: Detection::default(),
            gateway: Gateway::default(),
            incidents: Incidents::default(),
            triage: Triage::default(),
            respond: Respond::default(),
            connectors: std::collections::BTreeMap::new(),
            regulatory: Regulatory::default(),
            anomaly: Anomaly::default(),
            intel: Intel::default(),
            tuning: tuning::Tuning::default(),
            audit: Audit::default(),
            privacy: Privacy::default(),
            oidc: None,
        }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `server.listen`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in {source_name}:\n{}", .problems.len(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub source_name: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    max_body_bytes: Option<u64>,
    allow_plaintext: Option<bool>,
    requests_per_minute: Option<i64>,
    auth_failures_per_minute: Option<i64>,
    query_budget_secs: Option<i64>,
    concurrent_queries: Option<i64>,
    max_connections: Option<i64>,
    max_connections_per_peer: Option<i64>,
    header_timeout_secs: Option<i64>,
    body_timeout_secs: Option<i64>,
    tls: Option<RawServerTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    crl_files: Option<Vec<PathBuf>>,
    require_client_cert: Option<bool>,
    clients: Option<Vec<RawCertClient>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertClient {
    subject: String,
    name: String,
    role: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSyslog {
    udp: Option<String>,
    tcp: Option<String>,
    tls: Option<RawTls>,
    max_connections: Option<i64>,
    max_connections_per_peer: Option<i64>,
    idle_timeout_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    listen: String,
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    events_days: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDetection {
    rules: Option<Vec<PathBuf>>,
    attack: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    origin: Option<String>,
    signing_key: Option<PathBuf>,
    master_key: Option<PathBuf>,
    checkpoint_every: Option<i64>,
    checkpoint_interval_secs: Option<i64>,
    retention_days: Option<i64>,
    witnesses: Option<Vec<PathBuf>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    internal_suffixes: Option<Vec<String>>,
    allow: Option<Vec<String>>,
    disabled: Option<Vec<String>>,
    key_epoch: Option<i64>,
    domain_epochs: Option<std::collections::BTreeMap<String, i64>>,
    fields: Option<std::collections::BTreeMap<String, String>>,
    skip_fields: Option<Vec<String>>,
    classify: Option<Vec<RawSourceClass>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceClass {
    source: String,
    class: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    batch_size: Option<i64>,
    timestamp_field: Option<String>,
}

const SECTIONS: &[&str] = &[
    "version",
    "data_dir",
    "server",
    "syslog",
    "retention",
    "store",
    "bus",
    "ingest",
    "detection",
    "audit",
    "privacy",
    "gateway",
    "incidents",
    "triage",
    "respond",
    "connectors",
    "regulatory",
    "anomaly",
    "intel",
    "oidc",
    "tuning",
];

/// A listener's connection limits from `[section]`: `max_connections` (at least `min_max`),
/// `max_connections_per_peer`, and its idle clock `(key, value, most seconds)`, each within its
/// bounds; what is not given keeps `c`'s default.
fn connection_limits(
    problems: &mut Vec<Problem>,
    section: &str,
    min_max: i64,
    [max, per_peer]: [Option<i64>; 2],
    (idle_key, idle, idle_most): (&str, Option<i64>, i64),
    c: &mut Connections,
) {
    let mut key = |name: &str, v: Option<i64>, range: std::ops::RangeInclusive<i64>| {
        bounded(problems, &format!("{section}.{name}"), v, range)
    };
    if let Some(n) = key("max_connections", max, min_max..=1_000_000) {
        c.max = n as u32;
    }
    if let Some(n) = key("max_connections_per_peer", per_peer, 1..=1_000_000) {
        c.max_per_peer = n as u32;
    }
    if let Some(n) = key(idle_key, idle, 1..=idle_most) {
        c.idle_secs = n;
    }
}

impl Config {
    /// What is valid but risky in this configuration, for the operator to hear at start and
    /// from `config validate`: a `command` connector whose program is a shell or another
    /// interpreter (its arguments become code).
    pub fn warnings(&self) -> Vec<Problem> {
        respond::connector_warnings(&self.connectors)
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            problems: vec![Problem {
                path: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        let mut config = Config::parse(&text, &name)?;
        config.source = Some(ConfigSource {
            path: path.to_path_buf(),
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
        });
        Ok(config)
    }

    /// Parses and validates configuration text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let fail = |problems: Vec<Problem>| ConfigError {
            source_name: source_name.to_owned(),
            problems,
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            fail(vec![Problem {
                path: String::new(),
                message: format!("invalid TOML: {}", e.message()),
            }])
        })?;
        let mut problems = Vec::new();
        for key in table.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
            problems.push(Problem {
                path: key.clone(),
                message: format!("unknown key (expected one of {})", SECTIONS.join(", ")),
            });
        }
        match table.get("version") {
            Some(toml::Value::Integer(1)) => {}
            Some(other) => problems.push(Problem {
                path: "version".into(),
                message: format!("unsupported version {other:?} (this release reads version 1)"),
            }),
            None => problems.push(Problem {
                path: "version".into(),
                message: "missing: write `version = 1` at the top".into(),
            }),
        }
        let mut cfg = Config::default();
        match table.get("data_dir") {
            Some(toml::Value::String(s)) => cfg.data_dir = Some(PathBuf::from(s)),
            Some(_) => problems.push(Problem {
                path: "data_dir".into(),
                message: "expected a string (a path)".into(),
            }),
            None => {}
        }
        let server: RawServer = section(&table, "server", &mut problems);
        let syslog: RawSyslog = section(&table, "syslog", &mut problems);
        let retention: RawRetention = section(&table, "retention", &mut problems);
        let ingest: RawIngest = section(&table, "ingest", &mut problems);
        let detection: RawDetection = section(&table, "detection", &mut problems);
        let audit: RawAudit = section(&table, "audit", &mut problems);
        let privacy: RawPrivacy = section(&table, "privacy", &mut problems);
        let gateway: gateway::RawGateway = section(&table, "gateway", &mut problems);
        let incidents: incidents::RawIncidents = section(&table, "incidents", &mut problems);
        let triage: incidents::RawTriage = section(&table, "triage", &mut problems);
        let respond: respond::RawRespond = section(&table, "respond", &mut problems);
        let connectors: std::collections::BTreeMap<String, respond::RawConnector> =
            section(&table, "connectors", &mut problems);
        let regulatory: respond::RawRegulatory = section(&table, "regulatory", &mut problems);
        let anomaly: anomaly::RawAnomaly = section(&table, "anomaly", &mut problems);
        let intel: intel::RawIntel = section(&table, "intel", &mut problems);
        let tuning: tuning::RawTuning = section(&table, "tuning", &mut problems);
        let store: store::RawStore = section(&table, "store", &mut problems);
        let bus: Option<bus::RawBus> = section(&table, "bus", &mut problems);
        let oidc: Option<oidc::RawOidc> = section(&table, "oidc", &mut problems);
        for (i, path) in detection.rules.iter().flatten().enumerate() {
            if !path.exists() {
                problems.push(Problem {
                    path: format!("detection.rules[{i}]"),
                    message: format!("`{}` does not exist", path.display()),
                });
            }
        }
        if let Some(a) = &detection.attack
            && !a.is_file()
        {
            problems.push(Problem {
                path: "detection.attack".into(),
                message: format!("file `{}` does not exist", a.display()),
            });
        }
        cfg.detection.attack = detection.attack;
        cfg.detection.rules = detection.rules.unwrap_or_default();

        if let Some(l) = server.listen
            && let Some(addr) = addr("server.listen", &l, &mut problems)
        {
            cfg.server.listen = addr;
        }
        if let Some(b) = server.max_body_bytes {
            if !(1024..=1024 * 1024 * 1024).contains(&b) {
                problems.push(Problem {
                    path: "server.max_body_bytes".into(),
                    message: format!("{b} is outside 1024 to 1073741824"),
                });
            } else {
                cfg.server.max_body_bytes = usize::try_from(b).unwrap_or(usize::MAX);
            }
        }
        cfg.server.allow_plaintext = server.allow_plaintext.unwrap_or(false);
        match server.requests_per_minute {
            Some(n) if (0..=10_000_000).contains(&n) => cfg.server.requests_per_minute = n as u32,
            Some(n) => problems.push(Problem {
                path: "server.requests_per_minute".into(),
                message: format!("{n} is outside 0 (no limit) to 10000000"),
            }),
            None => {}
        }
        match server.auth_failures_per_minute {
            Some(n) if (0..=1_000_000).contains(&n) => cfg.server.auth_failures_per_minute = n as u32,
            Some(n) => problems.push(Problem {
                path: "server.auth_failures_per_minute".into(),
                message: format!("{n} is outside 0 (no hold-back) to 1000000"),
            }),
            None => {}
        }
        match server.query_budget_secs {
            Some(n) if (1..=3600).contains(&n) => cfg.server.query_budget_secs = n as u64,
            Some(n) => problems.push(Problem {
                path: "server.query_budget_secs".into(),
                message: format!("{n} is outside 1 to 3600"),
            }),
            None => {}
        }
        match server.concurrent_queries {
            Some(n) if (0..=1024).contains(&n) => cfg.server.concurrent_queries = n as u32,
            Some(n) => problems.push(Problem {
                path: "server.concurrent_queries".into(),
                message: format!("{n} is outside 0 (one per core) to 1024"),
            }),
            None => {}
        }
        let c = &mut cfg.server.connections;
        connection_limits(
            &mut problems,
            "server",
            16,
            [server.max_connections, server.max_connections_per_peer],
            ("header_timeout_secs", server.header_timeout_secs, 3600),
            c,
        );
        if let Some(n) = bounded(
            &mut problems,
            "server.body_timeout_secs",
            server.body_timeout_secs,
            1..=3600,
        ) {
            c.body_secs = n;
        }
        if let Some(tls) = server.tls {
            let mut files = vec![
                ("server.tls.cert_file".to_owned(), &tls.cert_file),
                ("server.tls.key_file".to_owned(), &tls.key_file),
            ];
            if let Some(ca) = &tls.client_ca_file {
                files.push(("server.tls.client_ca_file".to_owned(), ca));
            }
            for (i, crl) in tls.crl_files.iter().flatten().enumerate() {
                files.push((format!("server.tls.crl_files[{i}]"), crl));
            }
            for (key, file) in files {
                if !file.is_file() {
                    problems.push(Problem {
                        path: key,
                        message: format!("file `{}` does not exist", file.display()),
                    });
                }
            }
            let require_client_cert = tls.require_client_cert.unwrap_or(false);
            let clients = tls.clients.unwrap_or_default();
            if tls.client_ca_file.is_none() {
                for (key, set) in [
                    ("server.tls.require_client_cert", require_client_cert),
                    ("server.tls.clients", !clients.is_empty()),
                    (
                        "server.tls.crl_files",
                        tls.crl_files.as_ref().is_some_and(|c| !c.is_empty()),
                    ),
                ] {
                    if set {
                        problems.push(Problem {
                            path: key.into(),
                            message: "client certificates need `server.tls.client_ca_file`".into(),
                        });
                    }
                }
            }
            let mut mapped = Vec::new();
            for (i, c) in clients.into_iter().enumerate() {
                if !ROLES.contains(&c.role.as_str()) {
                    problems.push(Problem {
                        path: format!("server.tls.clients[{i}].role"),
                        message: format!("unknown role `{}` (expected one of {})", c.role, ROLES.join(", ")),
                    });
                }
                if c.subject.trim().is_empty() || c.name.trim().is_empty() {
                    problems.push(Problem {
                        path: format!("server.tls.clients[{i}]"),
                        message: "`subject` and `name` must not be empty".into(),
                    });
                }
                mapped.push(CertClient {
                    subject: c.subject,
                    name: c.name,
                    role: c.role,
                });
            }
            cfg.server.tls = Some(ServerTls {
                cert_file: tls.cert_file,
                key_file: tls.key_file,
                client_ca_file: tls.client_ca_file,
                crl_files: tls.crl_files.unwrap_or_default(),
                require_client_cert,
                clients: mapped,
            });
        }
        cfg.syslog.udp = syslog.udp.and_then(|a| addr("syslog.udp", &a, &mut problems));
        cfg.syslog.tcp = syslog.tcp.and_then(|a| addr("syslog.tcp", &a, &mut problems));
        connection_limits(
            &mut problems,
            "syslog",
            1,
            [syslog.max_connections, syslog.max_connections_per_peer],
            ("idle_timeout_secs", syslog.idle_timeout_secs, 7 * 86_400),
            &mut cfg.syslog.connections,
        );
        if let Some(tls) = syslog.tls {
            let listen = addr("syslog.tls.listen", &tls.listen, &mut problems);
            for (key, file) in [
                ("syslog.tls.cert_file", &tls.cert_file),
                ("syslog.tls.key_file", &tls.key_file),
            ] {
                if !file.is_file() {
                    problems.push(Problem {
                        path: key.into(),
                        message: format!("file `{}` does not exist", file.display()),
                    });
                }
            }
            if let Some(listen) = listen {
                cfg.syslog.tls = Some(SyslogTls {
                    listen,
                    cert_file: tls.cert_file,
                    key_file: tls.key_file,
                });
            }
        }
        if let Some(days) = retention.events_days {
            // EU AI Act Art. 19: logs of high-risk systems are kept at least six months.
            if !(1..=36_500).contains(&days) {
                problems.push(Problem {
                    path: "retention.events_days".into(),
                    message: format!("{days} is outside 1 to 36500"),
                });
            } else {
                cfg.retention.events_days = u32::try_from(days).unwrap_or(180);
            }
        }
        if let Some(n) = ingest.batch_size {
            if !(1..=100_000).contains(&n) {
                problems.push(Problem {
                    path: "ingest.batch_size".into(),
                    message: format!("{n} is outside 1 to 100000"),
                });
            } else {
                cfg.ingest.batch_size = usize::try_from(n).unwrap_or(2_000);
            }
        }
        cfg.ingest.timestamp_field = ingest.timestamp_field;
        cfg.audit = validate_audit(audit, &mut problems);
        let mut privacy = privacy;
        let classify = privacy.classify.take();
        cfg.privacy = validate_privacy(privacy, &mut problems);
        cfg.gateway = gateway::validate(gateway, &mut problems);
        // Classes are TLP labels or the institution's levels, which `[gateway]` defines.
        cfg.privacy.classify = validate_classify(classify.unwrap_or_default(), &cfg.gateway, &mut problems);
        cfg.incidents = incidents::validate_incidents(incidents, &mut problems);
        cfg.triage = incidents::validate_triage(triage, &mut problems);
        cfg.respond = respond::validate_respond(respond, &mut problems);
        cfg.connectors = respond::validate_connectors(connectors, &mut problems);
        cfg.regulatory = respond::validate_regulatory(regulatory, &cfg.connectors, &mut problems);
        cfg.anomaly = anomaly::validate(anomaly, &mut problems);
        cfg.intel = intel::validate(intel, &mut problems);
        cfg.tuning = tuning::validate(tuning, &mut problems);
        cfg.store = store::validate(store, &mut problems);
        cfg.bus = bus::validate(bus, &mut problems);
        cfg.oidc = oidc.map(|o| oidc::validate(o, &mut problems));
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(fail(problems))
        }
    }
}

fn validate_classify(raw: Vec<RawSourceClass>, gateway: &Gateway, problems: &mut Vec<Problem>) -> Vec<SourceClass> {
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let path = format!("privacy.classify[{i}]");
        if r.source.trim().is_empty() {
            problems.push(Problem {
                path: format!("{path}.source"),
                message: "empty: name a source or a pattern such as `*/hr/*`".into(),
            });
            continue;
        }
        match gateway.class(&r.class) {
            Some(class) => out.push(SourceClass {
                pattern: r.source.to_ascii_lowercase(),
                class,
            }),
            None => problems.push(Problem {
                path: format!("{path}.class"),
                message: format!(
                    "`{}` is neither a TLP label (TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT, TLP:RED) nor a level of `gateway.levels`",
                    r.class
                ),
            }),
        }
    }
    out
}

/// Entity types `privacy.disabled` may name.
pub const PRIVACY_ENTITIES: &[&str] = &[
    "ip", "email", "user", "host", "sid", "mac", "phone", "iban", "card", "natid", "person",
];

fn validate_privacy(raw: RawPrivacy, problems: &mut Vec<Problem>) -> Privacy {
    let mut privacy = Privacy::default();
    for (i, d) in raw.disabled.iter().flatten().enumerate() {
        if !PRIVACY_ENTITIES.contains(&d.as_str()) {
            problems.push(Problem {
                path: format!("privacy.disabled[{i}]"),
                message: format!(
                    "`{d}` is not an entity type (expected one of {})",
                    PRIVACY_ENTITIES.join(", ")
                ),
            });
        }
    }
    for (i, s) in raw.internal_suffixes.iter().flatten().enumerate() {
        if s.trim_start_matches('.').is_empty() || s.contains(char::is_whitespace) {
            problems.push(Problem {
                path: format!("privacy.internal_suffixes[{i}]"),
                message: format!("`{s}` is not a DNS suffix"),
            });
        }
    }
    if let Some(e) = raw.key_epoch {
        match u32::try_from(e) {
            Ok(e) => privacy.key_epoch = e,
            Err(_) => problems.push(Problem {
                path: "privacy.key_epoch".into(),
                message: format!("{e} is outside 0 to {}", u32::MAX),
            }),
        }
    }
    for (domain, e) in raw.domain_epochs.iter().flatten() {
        match u32::try_from(*e) {
            Ok(e) => {
                privacy.domain_epochs.insert(domain.clone(), e);
            }
            Err(_) => problems.push(Problem {
                path: format!("privacy.domain_epochs.{domain}"),
                message: format!("{e} is outside 0 to {}", u32::MAX),
            }),
        }
    }
    for (field, entity) in raw.fields.iter().flatten() {
        if !PRIVACY_ENTITIES.contains(&entity.as_str()) {
            problems.push(Problem {
                path: format!("privacy.fields.{field}"),
                message: format!(
                    "`{entity}` is not an entity type (expected one of {})",
                    PRIVACY_ENTITIES.join(", ")
                ),
            });
        }
    }
    privacy.fields = raw.fields.unwrap_or_default();
    privacy.skip_fields = raw.skip_fields.unwrap_or_default();
    privacy.internal_suffixes = raw.internal_suffixes.unwrap_or_default();
    privacy.allow = raw.allow.unwrap_or_default();
    privacy.disabled = raw.disabled.unwrap_or_default();
    privacy
}

fn validate_audit(raw: RawAudit, problems: &mut Vec<Problem>) -> Audit {
    let mut audit = Audit::default();
    let mut bounded = |key: &str, value: Option<i64>, range: std::ops::RangeInclusive<i64>| -> Option<u64> {
        let v = value?;
        if range.contains(&v) {
            u64::try_from(v).ok()
        } else {
            problems.push(Problem {
                path: format!("audit.{key}"),
                message: format!("{v} is outside {} to {}", range.start(), range.end()),
            });
            None
        }
    };
    if let Some(n) = bounded("checkpoint_every", raw.checkpoint_every, 1..=1_000_000) {
        audit.checkpoint_every = n;
    }
    if let Some(n) = bounded("checkpoint_interval_secs", raw.checkpoint_interval_secs, 1..=86_400) {
        audit.checkpoint_interval_secs = n;
    }
    // EU AI Act Art. 19: at least six months.
    if let Some(n) = bounded("retention_days", raw.retention_days, 183..=36_500) {
        audit.retention_days = u32::try_from(n).unwrap_or(183);
    }
    for (i, w) in raw.witnesses.iter().flatten().enumerate() {
        let dir = w
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() || w.is_dir() {
            problems.push(Problem {
                path: format!("audit.witnesses[{i}]"),
                message: format!("`{}` is not a file path in an existing directory", w.display()),
            });
        }
    }
    audit.witnesses = raw.witnesses.unwrap_or_default();
    if let Some(origin) = raw.origin {
        if origin.is_empty() || origin.contains('+') || origin.chars().any(char::is_whitespace) {
            problems.push(Problem {
                path: "audit.origin".into(),
                message: format!("`{origin}` is not a usable log name (non-empty, no spaces, no `+`)"),
            });
        } else {
            audit.origin = Some(origin);
        }
    }
    for (key, file) in [("signing_key", &raw.signing_key), ("master_key", &raw.master_key)] {
        if let Some(f) = file
            && !f.is_file()
        {
            problems.push(Problem {
                path: format!("audit.{key}"),
                message: format!(
                    "file `{}` does not exist (only the default key files are created)",
                    f.display()
                ),
            });
        }
    }
    audit.signing_key = raw.signing_key;
    audit.master_key = raw.master_key;
    audit
}

/// Deserializes one section; its first unknown key or type error is reported, and the other
/// sections are still read, so one run names a problem in each.
fn section<T: DeserializeOwned + Default>(table: &toml::Table, name: &str, problems: &mut Vec<Problem>) -> T {
    let Some(value) = table.get(name) else {
        return T::default();
    };
    match value.clone().try_into::<T>() {
        Ok(v) => v,
        Err(e) => {
            let msg = e.message().to_owned();
            problems.push(Problem {
                path: name.to_owned(),
                message: msg,
            });
            T::default()
        }
    }
}

fn addr(path: &str, s: &str, problems: &mut Vec<Problem>) -> Option<SocketAddr> {
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.push(Problem {
                path: path.to_owned(),
                message: format!("`{s}` is not an address like 127.0.0.1:8080"),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_but_versioned_file_gives_defaults() {
        assert_eq!(Config::parse("version = 1\n", "t"), Ok(Config::default()));
    }

    #[test]
    fn reads_every_section() {
        let cfg = Config::parse(
            r#"
            version = 1
            data_dir = "/var/lib/rempart"
            [server]
            listen = "0.0.0.0:9000"
            max_body_bytes = 2048
            [syslog]
            udp = "127.0.0.1:5514"
            tcp = "127.0.0.1:5514"
            [retention]
            events_days = 365
            [ingest]
            batch_size = 500
            timestamp_field = "meta.when"
            [detection]
            rules = ["/"]
            "#,
            "t",
        )
        .unwrap();
        assert_eq!(cfg.server.listen.port(), 9000);
        assert_eq!(cfg.syslog.tcp, "127.0.0.1:5514".parse().ok());
        assert_eq!(cfg.retention.events_days, 365);
        assert_eq!(cfg.ingest.timestamp_field.as_deref(), Some("meta.when"));
        assert_eq!(cfg.detection.rules, [PathBuf::from("/")]);
    }

    #[test]
    fn connection_limits_are_read_and_bounded() {
        let cfg = Config::parse(
            "version = 1\n[server]\nmax_connections = 500\nmax_connections_per_peer = 20\nheader_timeout_secs = 5\nbody_timeout_secs = 7\n[syslog]\ntcp = \"127.0.0.1:5514\"\nmax_connections = 40\nmax_connections_per_peer = 4\nidle_timeout_secs = 600\n",
            "t",
        )
        .unwrap();
        let want = Connections {
            max: 500,
            max_per_peer: 20,
            idle_secs: 5,
            body_secs: 7,
        };
        assert_eq!(cfg.server.connections, want);
        assert_eq!(
            cfg.syslog.connections,
            Connections {
                max: 40,
                max_per_peer: 4,
                idle_secs: 600,
                ..Connections::SYSLOG
            }
        );
        let err = Config::parse(
            "version = 1\n[server]\nmax_connections = 3\nheader_timeout_secs = 0\nbody_timeout_secs = 99999\n[syslog]\nmax_connections_per_peer = 0\n",
            "t",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.max_connections",
                "server.header_timeout_secs",
                "server.body_timeout_secs",
                "syslog.max_connections_per_peer"
            ],
            "{err}"
        );
    }

    #[test]
    fn declared_activity_is_read_and_a_window_over_everything_refused() {
        let cfg = Config::parse(
            "version = 1\n[[triage.declared]]\nname = \"Q4 test\"\nkind = \"penetration_test\"\n\
             reference = \"PT-7\"\nhosts = [\"WS-FIN-*\"]\nfrom = \"2026-11-20T08:00:00Z\"\n\
             until = \"2026-11-21T18:00:00Z\"\n",
            "t",
        )
        .unwrap();
        let d = &cfg.triage.declared[0];
        assert_eq!(d.hosts, ["ws-fin-*"]);
        assert!(d.covers(Some("ws-fin-07.corp.example.eu"), Some("CORP\\anyone"), d.from));
        assert!(!d.covers(Some("ws-hr-01"), None, d.from));
        let err = Config::parse(
            "version = 1\n[[triage.declared]]\nname = \"\"\nkind = \"holiday\"\nhosts = [\"*\"]\n\
             from = \"2026-11-20T08:00:00Z\"\nuntil = \"2027-01-20T08:00:00Z\"\n\
             [[triage.declared]]\nname = \"x\"\nkind = \"change\"\nhosts = [\"db01\"]\n\
             from = \"yesterday\"\nuntil = \"2026-11-20T08:00:00Z\"\n",
            "t",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "triage.declared[0].name",
                "triage.declared[0].kind",
                "triage.declared[0].hosts",
                "triage.declared[0].until",
                "triage.declared[1].from"
            ],
            "{err}"
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let err = Config::parse(
            r#"
            version = 2
            colour = "blue"
            [server]
            listen = "nowhere"
            [retention]
            events_days = 0
            [ingest]
            batch_sise = 10
            "#,
            "bad.toml",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["colour", "version", "ingest", "server.listen", "retention.events_days"],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.starts_with("5 problem(s) in bad.toml"), "{text}");
        assert!(text.contains("batch_sise"), "{text}");
    }

    #[test]
    fn connectors_and_regulatory_regimes_are_checked() {
        let cfg = Config::parse(
            r#"
            version = 1
            [connectors.chat]
            type = "teams"
            url = "https://example.webhook.office.com/x"
            [connectors.fw]
            type = "command"
            program = "/usr/sbin/nft"
            actions.block_ip = ["add", "element", "inet", "filter", "b", "{ {{ target }} }"]
            [regulatory]
            nis2 = "trust_service"
            dora = true
            notify = "chat"
            member_state = "DE"
            "#,
            "ok.toml",
        )
        .unwrap();
        assert!(cfg.connectors["fw"].dry_run, "commands describe until told otherwise");
        assert!(!cfg.connectors["chat"].dry_run);
        assert_eq!(cfg.regulatory.nis2, Some(Nis2Entity::TrustService));
        assert_eq!(cfg.regulatory.notify.as_deref(), Some("chat"));
        let err = Config::parse(
            r#"
            version = 1
            [connectors.hook]
            type = "webhook"
            url = "ftp://x"
            program = "/bin/sh"
            [connectors.fw]
            type = "command"
            program = "nft"
            [connectors."bad name"]
            type = "pager"
            [connectors.mail]
            type = "smtp"
            host = "smtp.example.eu"
            from = "nobody"
            to = []
            username = "u"
            [anomaly]
            warm_up = 0
            burst_min = 1
            [regulatory]
            nis2 = "vital"
            notify = "fw"
            member_state = "UK"
            "#,
            "bad.toml",
        )
        .unwrap_err();
        let text = err.to_string();
        for expect in [
            "`connectors.hook.program`: not read by a `webhook` connector",
            "`connectors.hook.url`: `ftp://x` is not an http:// or https:// URL",
            "`connectors.hook.secret_env`: a webhook is signed",
            "`connectors.fw.program`: `nft` is not an absolute path",
            "`connectors.fw.actions`: missing",
            "`connectors.bad name`: a connector name is",
            "`connectors.bad name.type`: `pager` is not a connector type",
            "`connectors.mail.to`: missing",
            "`connectors.mail.from`: `nobody` is not an e-mail address",
            "`connectors.mail.username`: give both username and password_env",
            "`regulatory.nis2`: `vital` is not none, essential, important or trust_service",
            "`regulatory.notify`: `fw` is a `command` connector, which cannot notify",
            "`regulatory.member_state`: `UK` is not an EU member state code",
            "`anomaly.warm_up`: 0 is outside 1 to 10000000",
            "`anomaly.burst_min`: 1 is outside 2 to 1000000",
        ] {
            assert!(text.contains(expect), "missing {expect:?} in {text}");
        }
    }

    #[test]
    fn missing_version_and_bad_toml_are_named() {
        let err = Config::parse("[server]\n", "t").unwrap_err();
        assert_eq!(err.problems[0].path, "version");
        let err = Config::parse("version = ", "t").unwrap_err();
        assert!(err.problems[0].message.starts_with("invalid TOML"));
    }

    #[test]
    fn server_tls_is_checked_whole() {
        let err = Config::parse(
            "version = 1\n[server.tls]\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n\
             require_client_cert = true\n[[server.tls.clients]]\nsubject = \"fw\"\nname = \"fw\"\nrole = \"root\"\n",
            "t",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "server.tls.cert_file",
            "server.tls.key_file",
            "server.tls.require_client_cert",
            "server.tls.clients",
            "server.tls.clients[0].role",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        let ok = Config::parse("version = 1\n[server]\nallow_plaintext = true\n", "t").unwrap();
        assert!(ok.server.allow_plaintext && ok.server.tls.is_none());
    }

    #[test]
    fn tls_files_must_exist() {
        let err = Config::parse("version = 1\n[syslog.tls]\nlisten = \"127.0.0.1:6514\"\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n", "t").unwrap_err();
        assert_eq!(err.problems.len(), 2);
    }

    #[test]
    fn sources_are_classified_by_tlp_label_or_institution_level_first_match_first() {
        let cfg = Config::parse(
            r#"
            version = 1
            [[privacy.classify]]
            source = "*/HR/*"
            class = "restricted"
            [[privacy.classify]]
            source = "fw-*"
            class = "TLP:GREEN"
            [[privacy.classify]]
            source = "*"
            class = "amber+strict"
            [gateway.levels]
            restricted = "red"
            "#,
            "t.toml",
        )
        .unwrap();
        use rempart_model::DataClass;
        assert_eq!(cfg.privacy.class_of("/var/log/hr/payroll.json"), Some(DataClass::Red));
        assert_eq!(cfg.privacy.class_of("fw-dmz"), Some(DataClass::Green));
        assert_eq!(cfg.privacy.class_of("http"), Some(DataClass::AmberStrict));
        let err = Config::parse(
            "version = 1\n[[privacy.classify]]\nsource = \"\"\nclass = \"red\"\n[[privacy.classify]]\nsource = \"x\"\nclass = \"secret\"\n",
            "bad.toml",
        )
        .unwrap_err()
        .to_string();
        for expect in [
            "`privacy.classify[0].source`: empty",
            "`privacy.classify[1].class`: `secret` is neither a TLP label",
        ] {
            assert!(err.contains(expect), "missing {expect:?} in {err}");
        }
        let err = Config::parse("version = 1\n[[privacy.classify]]\nsource = \"y\"\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `class`"), "{err}");
    }

    #[test]
    fn privacy_section_names_entity_types_and_epochs() {
        let cfg = Config::parse(
            "version = 1\n[privacy]\nkey_epoch = 2\ndomain_epochs = { inc-1 = 5 }\nfields = { ParentUser = \"user\" }\nskip_fields = [\"Hashes\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.privacy.key_epoch, 2);
        assert_eq!(cfg.privacy.domain_epochs.get("inc-1"), Some(&5));
        assert_eq!(cfg.privacy.fields.get("ParentUser").map(String::as_str), Some("user"));
        let err = Config::parse(
            "version = 1\n[privacy]\ndisabled = [\"secret\"]\nfields = { X = \"thing\" }\ndomain_epochs = { a = -1 }\n",
            "t",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["privacy.disabled[0]", "privacy.domain_epochs.a", "privacy.fields.X"],
            "{err}"
        );
    }

    #[test]
    fn audit_section_is_validated_and_defaults_keep_six_months() {
        let cfg = Config::parse("version = 1\n", "t").unwrap();
        assert_eq!(cfg.audit.retention_days, 183);
        assert_eq!(cfg.audit.checkpoint_every, 1000);
        let cfg = Config::parse(
            "version = 1\n[audit]\norigin = \"rempart/soc.example.eu\"\ncheckpoint_every = 50\nretention_days = 400\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.audit.origin.as_deref(), Some("rempart/soc.example.eu"));
        assert_eq!((cfg.audit.checkpoint_every, cfg.audit.retention_days), (50, 400));
        let err = Config::parse(
            "version = 1\n[audit]\norigin = \"two words\"\nretention_days = 30\ncheckpoint_every = 0\nsigning_key = \"/nonexistent.pem\"\n",
            "t",
        )
        .unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "audit.checkpoint_every",
                "audit.retention_days",
                "audit.origin",
                "audit.signing_key"
            ],
            "{err}"
        );
    }
}

//! `[respond]`, `[connectors.NAME]` and `[regulatory]`: where playbooks are read from, the
//! systems their actions reach, and which reporting regimes apply to the organisation.
//!
//! Secrets (webhook keys, tokens, SMTP passwords) are named by environment variable or file,
//! never written here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::Problem;
use crate::gateway::Secret;

/// Playbooks, and the addresses they never block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respond {
    /// Playbook files or folders of them.
    pub playbooks: Vec<PathBuf>,
    /// How long an approval waits when its playbook gives no timeout.
    pub approval_timeout_secs: u64,
    /// The institution's own address ranges (its servers, gateways, resolvers, users): never
    /// the target of a blocking action, whatever a log says. Default: the private ranges
    /// ([`Respond::PRIVATE`]).
    pub own_ranges: Vec<ipnet::IpNet>,
    /// Ranges inside `own_ranges` that may still be blocked (a guest network, a lab).
    pub blockable_ranges: Vec<ipnet::IpNet>,
}

impl Respond {
    /// RFC 1918, shared address space (RFC 6598) and IPv6 unique local addresses (RFC 4193):
    /// addresses that are the institution's own when a log names them.
    pub const PRIVATE: [&str; 5] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ];

    fn private() -> Vec<ipnet::IpNet> {
        Self::PRIVATE.iter().filter_map(|r| r.parse().ok()).collect()
    }
}

impl Default for Respond {
    fn default() -> Self {
        Respond {
            playbooks: Vec::new(),
            approval_timeout_secs: 3_600,
            own_ranges: Respond::private(),
            blockable_ranges: Vec::new(),
        }
    }
}

/// A system actions reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub name: String,
    pub kind: ConnectorKind,
    /// Describe what would be done instead of doing it.
    pub dry_run: bool,
    /// Longest one attempt may take.
    pub timeout_secs: u64,
}

/// The message layout a chat webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    Slack,
    Teams,
    Matrix,
}

/// TLS on an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a relay on loopback only).
    None,
    /// STARTTLS after the greeting; refuse a server that does not offer it.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// What a connector is and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorKind {
    /// A JSON POST signed with HMAC-SHA256 over timestamp and body (any action).
    Webhook { url: String, secret: Secret },
    /// A chat message (notify).
    Chat { url: String, format: ChatFormat },
    /// An e-mail (notify).
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        from: String,
        to: Vec<String>,
        username: Option<String>,
        password: Secret,
    },
    /// A program run with a fixed argument list per action, no shell (firewall rules).
    Command {
        program: PathBuf,
        /// Action (or `undo_<action>`) → argument templates.
        actions: BTreeMap<String, Vec<String>>,
    },
    /// An EDR-style REST API (isolate_host, kill_process, quarantine_file, collect_forensics).
    Edr { url: String, token: Secret },
    /// A ticketing API (create_ticket).
    Ticket { url: String, token: Secret },
    /// A directory (LDAP / Active Directory) REST bridge (disable_account, reset_credentials).
    Directory { url: String, token: Secret },
}

impl ConnectorKind {
    /// The `type` it is written as.
    pub fn type_name(&self) -> &'static str {
        match self {
            ConnectorKind::Webhook { .. } => "webhook",
            ConnectorKind::Chat {
                format: ChatFormat::Slack,
                ..
            } => "slack",
            ConnectorKind::Chat {
                format: ChatFormat::Teams,
                ..
            } => "teams",
            ConnectorKind::Chat {
                format: ChatFormat::Matrix,
                ..
            } => "matrix",
            ConnectorKind::Smtp { .. } => "smtp",
            ConnectorKind::Command { .. } => "command",
            ConnectorKind::Edr { .. } => "edr",
            ConnectorKind::Ticket { .. } => "ticket",
            ConnectorKind::Directory { .. } => "directory",
        }
    }
}

/// The NIS2 category of the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nis2Entity {
    Essential,
    Important,
    /// A trust service provider: the notification is due 24 hours after awareness.
    TrustService,
}

/// Which reporting regimes apply (NIS2 Art. 23, DORA Art. 19, GDPR Art. 33).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regulatory {
    pub nis2: Option<Nis2Entity>,
    pub dora: bool,
    pub gdpr: bool,
    /// Deadlines this close are shown as due soon (and warned about).
    pub warn_before_secs: u64,
    /// The organisation's name and identifiers, copied into report drafts.
    pub organisation: String,
    pub member_state: String,
    /// A connector that can notify (chat, e-mail, webhook): deadlines due soon or overdue
    /// are sent there as well as logged and recorded.
    pub notify: Option<String>,
}

impl Default for Regulatory {
    fn default() -> Self {
        Regulatory {
            nis2: None,
            dora: false,
            gdpr: true,
            warn_before_secs: 4 * 3_600,
            organisation: String::new(),
            member_state: String::new(),
            notify: None,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRespond {
    playbooks: Option<Vec<PathBuf>>,
    approval_timeout_secs: Option<i64>,
    own_ranges: Option<Vec<String>>,
    blockable_ranges: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnector {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    host: Option<String>,
    port: Option<i64>,
    tls: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    program: Option<PathBuf>,
    actions: Option<BTreeMap<String, Vec<String>>>,
    dry_run: Option<bool>,
    timeout_secs: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegulatory {
    nis2: Option<String>,
    dora: Option<bool>,
    gdpr: Option<bool>,
    warn_before_secs: Option<i64>,
    organisation: Option<String>,
    member_state: Option<String>,
    notify: Option<String>,
}

/// Member states of the EU (ISO 3166-1 alpha-2; Greece as `EL`, as the EU writes it, or `GR`).
pub const MEMBER_STATES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "EL", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

pub(crate) fn validate_respond(raw: RawRespond, problems: &mut Vec<Problem>) -> Respond {
    let mut out = Respond::default();
    for (i, p) in raw.playbooks.unwrap_or_default().into_iter().enumerate() {
        if !p.exists() {
            problems.push(Problem {
                path: format!("respond.playbooks[{i}]"),
                message: format!("`{}` does not exist", p.display()),
            });
        }
        out.playbooks.push(p);
    }
    if let Some(t) = raw.approval_timeout_secs {
        if (60..=30 * 86_400).contains(&t) {
            out.approval_timeout_secs = u64::try_from(t).unwrap_or(3_600);
        } else {
            problems.push(Problem {
                path: "respond.approval_timeout_secs".into(),
                message: format!("{t} is outside 60 to 2592000"),
            });
        }
    }
    if let Some(list) = raw.own_ranges {
        out.own_ranges = ranges(problems, "respond.own_ranges", list);
    }
    if let Some(list) = raw.blockable_ranges {
        out.blockable_ranges = ranges(problems, "respond.blockable_ranges", list);
    }
    out
}

/// Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a range
/// of one. Host bits set (`10.1.2.3/8`) are refused: the range meant is not certain.
fn ranges(problems: &mut Vec<Problem>, path: &str, list: Vec<String>) -> Vec<ipnet::IpNet> {
    let mut out = Vec::with_capacity(list.len());
    for (i, text) in list.iter().enumerate() {
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) if net.trunc() == net => out.push(net),
            Ok(net) => problems.push(Problem {
                path: format!("{path}[{i}]"),
                message: format!("`{text}` has host bits set: write `{}`", net.trunc()),
            }),
            Err(_) => problems.push(Problem {
                path: format!("{path}[{i}]"),
                message: format!("`{text}` is not an address range (`10.0.0.0/8`, `2001:db8::/32`) or an address"),
            }),
        }
    }
    out
}

fn secret(problems: &mut Vec<Problem>, path: &str, what: &str, env: Option<String>, file: Option<PathBuf>) -> Secret {
    match (env, file) {
        (Some(_), Some(_)) => {
            problems.push(Problem {
                path: format!("{path}.{what}_env"),
                message: format!("give {what}_env or {what}_file, not both"),
            });
            Secret::None
        }
        (Some(e), None) => Secret::Env(e),
        (None, Some(f)) => {
            if !f.is_file() {
                problems.push(Problem {
                    path: format!("{path}.{what}_file"),
                    message: format!("file `{}` does not exist", f.display()),
                });
            }
            Secret::File(f)
        }
        (None, None) => Secret::None,
    }
}

/// A connector's URL, parsed (never pattern-matched). Refused: a user-info part (credentials
/// go in `*_env` / `*_file`; `http://10.0.0.1@evil.example/` names `evil.example`), a
/// link-local host (169.254.169.254 is the cloud metadata service), and, when the requests
/// carry a credential (`secret`: a bearer token, or a chat URL that is itself the secret),
/// plain `http://` to anything but this machine.
fn http_url(problems: &mut Vec<Problem>, path: &str, url: Option<String>, secret: bool) -> String {
    let mut refuse = |message: String| {
        problems.push(Problem {
            path: format!("{path}.url"),
            message,
        });
        String::new()
    };
    let Some(text) = url else {
        return refuse("missing".into());
    };
    let parsed = match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => return refuse(format!("`{text}` is not an http:// or https:// URL")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(
            "holds a user-info part (`user@`): give credentials in the connector's `_env` or `_file` keys".into(),
        );
    }
    let (loopback, link_local) = match parsed.host() {
        Some(url::Host::Ipv4(a)) => (a.is_loopback(), a.is_link_local()),
        Some(url::Host::Ipv6(a)) => (a.is_loopback(), (a.segments()[0] & 0xffc0) == 0xfe80),
        Some(url::Host::Domain(d)) => (d.eq_ignore_ascii_case("localhost"), false),
        None => (false, false),
    };
    if link_local {
        return refuse(format!(
            "`{text}` is link-local (the cloud metadata address among them): never a connector's destination"
        ));
    }
    if secret && parsed.scheme() == "http" && !loopback {
        return refuse(format!(
            "`{text}`: this connector's requests carry a credential, which must not cross the network in clear: use https://"
        ));
    }
    text
}

/// Programs that run their arguments as code: shells, and interpreters and launchers that take a
/// script or another program on their command line.
const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "ash",
    "zsh",
    "ksh",
    "mksh",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    "pwsh",
    "powershell",
    "cmd",
    "python",
    "perl",
    "ruby",
    "node",
    "php",
    "lua",
    "tclsh",
    "awk",
    "gawk",
    "env",
    "xargs",
    "sudo",
    "doas",
    "su",
];

/// Whether a program file name (`bash`, `python3.12`, `pwsh.exe`) is an interpreter's.
fn is_interpreter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".exe").unwrap_or(&name);
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    INTERPRETERS.contains(&name) || INTERPRETERS.contains(&base)
}

/// See [`crate::Config::warnings`]: command connectors whose program (as named, or the file
/// its link resolves to) is a shell or an interpreter.
pub(crate) fn connector_warnings(connectors: &BTreeMap<String, Connector>) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, c) in connectors {
        let ConnectorKind::Command { program, .. } = &c.kind else {
            continue;
        };
        let named = program.file_name().and_then(|n| n.to_str()).is_some_and(is_interpreter);
        let resolved = std::fs::canonicalize(program)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(is_interpreter))
            .unwrap_or(false);
        if named || resolved {
            out.push(Problem {
                path: format!("connectors.{name}.program"),
                message: format!(
                    "`{}` is a shell or an interpreter: the arguments the actions give it are run as code, so the \
                     target (taken from a log) is one quoting mistake from being a command. Name the program that \
                     acts (e.g. /usr/sbin/nft) instead",
                    program.display()
                ),
            });
        }
    }
    out
}

/// Keys each connector type reads; any other key given is reported.
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["url", "secret_env", "secret_file"],
        "slack" | "teams" | "matrix" => &["url"],
        "smtp" => &[
            "host",
            "port",
            "tls",
            "from",
            "to",
            "username",
            "password_env",
            "password_file",
        ],
        "command" => &["program", "actions"],
        "edr" | "ticket" | "directory" => &["url", "token_env", "token_file"],
        _ => &[],
    }
}

fn given_keys(c: &RawConnector) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |set: bool, k: &'static str| {
        if set {
            out.push(k);
        }
    };
    add(c.url.is_some(), "url");
    add(c.secret_env.is_some(), "secret_env");
    add(c.secret_file.is_some(), "secret_file");
    add(c.token_env.is_some(), "token_env");
    add(c.token_file.is_some(), "token_file");
    add(c.host.is_some(), "host");
    add(c.port.is_some(), "port");
    add(c.tls.is_some(), "tls");
    add(c.from.is_some(), "from");
    add(c.to.is_some(), "to");
    add(c.username.is_some(), "username");
    add(c.password_env.is_some(), "password_env");
    add(c.password_file.is_some(), "password_file");
    add(c.program.is_some(), "program");
    add(c.actions.is_some(), "actions");
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn validate_connectors(
    raw: BTreeMap<String, RawConnector>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Connector> {
    let mut out = BTreeMap::new();
    for (name, c) in raw {
        let path = format!("connectors.{name}");
        if !valid_name(&name) {
            problems.push(Problem {
                path: path.clone(),
                message: "a connector name is 1 to 64 letters, digits, `-` or `_`".into(),
            });
        }
        let known = keys_of(&c.kind);
        if known.is_empty() {
            problems.push(Problem {
                path: format!("{path}.type"),
                message: format!(
                    "`{}` is not a connector type (webhook, slack, teams, matrix, smtp, command, edr, ticket, directory)",
                    c.kind
                ),
            });
            continue;
        }
        for k in given_keys(&c) {
            if !known.contains(&k) {
                problems.push(Problem {
                    path: format!("{path}.{k}"),
                    message: format!("not read by a `{}` connector (it reads {})", c.kind, known.join(", ")),
                });
            }
        }
        let timeout_secs = match c.timeout_secs {
            None => 10,
            Some(t) if (1..=600).contains(&t) => u64::try_from(t).unwrap_or(10),
            Some(t) => {
                problems.push(Problem {
                    path: format!("{path}.timeout_secs"),
                    message: format!("{t} is outside 1 to 600"),
                });
                10
            }
        };
        let kind = match c.kind.as_str() {
            "webhook" => {
                let secret = secret(problems, &path, "secret", c.secret_env, c.secret_file);
                if secret == Secret::None {
                    problems.push(Problem {
                        path: format!("{path}.secret_env"),
                        message: "a webhook is signed: give secret_env or secret_file (the HMAC key)".into(),
                    });
                }
                ConnectorKind::Webhook {
                    // The HMAC key signs; it is never sent.
                    url: http_url(problems, &path, c.url, false),
                    secret,
                }
            }
            "slack" | "teams" | "matrix" => ConnectorKind::Chat {
                // A chat's incoming-webhook URL is its secret.
                url: http_url(problems, &path, c.url, true),
                format: match c.kind.as_str() {
                    "slack" => ChatFormat::Slack,
                    "teams" => ChatFormat::Teams,
                    _ => ChatFormat::Matrix,
                },
            },
            "smtp" => {
                let tls = match c.tls.as_deref() {
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("tls") => SmtpTls::Tls,
                    Some("none") => SmtpTls::None,
                    Some(t) => {
                        problems.push(Problem {
                            path: format!("{path}.tls"),
                            message: format!("`{t}` is not none, starttls or tls"),
                        });
                        SmtpTls::StartTls
                    }
                };
                let port = match c.port {
                    None => match tls {
                        SmtpTls::Tls => 465,
                        _ => 587,
                    },
                    Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                        problems.push(Problem {
                            path: format!("{path}.port"),
                            message: format!("{p} is not a port"),
                        });
                        587
                    }),
                };
                let to = c.to.unwrap_or_default();
                if to.is_empty() {
                    problems.push(Problem {
                        path: format!("{path}.to"),
                        message: "missing: name at least one recipient".into(),
                    });
                }
                for (i, a) in to.iter().enumerate() {
                    if !looks_like_mailbox(a) {
                        problems.push(Problem {
                            path: format!("{path}.to[{i}]"),
                            message: format!("`{a}` is not an e-mail address"),
                        });
                    }
                }
                let from = c.from.unwrap_or_default();
                if !looks_like_mailbox(&from) {
                    problems.push(Problem {
                        path: format!("{path}.from"),
                        message: format!("`{from}` is not an e-mail address"),
                    });
                }
                let password = secret(problems, &path, "password", c.password_env, c.password_file);
                if c.username.is_some() != (password != Secret::None) {
                    problems.push(Problem {
                        path: format!("{path}.username"),
                        message: "give both username and password_env (or password_file), or neither".into(),
                    });
                }
                let host = c.host.unwrap_or_default();
                if host.is_empty() {
                    problems.push(Problem {
                        path: format!("{path}.host"),
                        message: "missing".into(),
                    });
                }
                ConnectorKind::Smtp {
                    host,
                    port,
                    tls,
                    from,
                    to,
                    username: c.username,
                    password,
                }
            }
            "command" => {
                let program = c.program.unwrap_or_default();
                if !program.is_absolute() {
                    problems.push(Problem {
                        path: format!("{path}.program"),
                        message: format!(
                            "`{}` is not an absolute path: the program is named exactly, never looked up",
                            program.display()
                        ),
                    });
                }
                let actions = c.actions.unwrap_or_default();
                if actions.is_empty() {
                    problems.push(Problem {
                        path: format!("{path}.actions"),
                        message: "missing: give the arguments of at least one action".into(),
                    });
                }
                ConnectorKind::Command { program, actions }
            }
            _ => {
                let url = http_url(problems, &path, c.url, true);
                let token = secret(problems, &path, "token", c.token_env, c.token_file);
                match c.kind.as_str() {
                    "edr" => ConnectorKind::Edr { url, token },
                    "ticket" => ConnectorKind::Ticket { url, token },
                    _ => ConnectorKind::Directory { url, token },
                }
            }
        };
        // Commands change firewalls: they describe what they would do until told otherwise.
        let dry_run = c.dry_run.unwrap_or(matches!(kind, ConnectorKind::Command { .. }));
        out.insert(
            name.clone(),
            Connector {
                name,
                kind,
                dry_run,
                timeout_secs,
            },
        );
    }
    out
}

fn looks_like_mailbox(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !a.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        }
        None => false,
    }
}

pub(crate) fn validate_regulatory(
    raw: RawRegulatory,
    connectors: &BTreeMap<String, Connector>,
    problems: &mut Vec<Problem>,
) -> Regulatory {
    let mut out = Regulatory::default();
    if let Some(n) = raw.notify {
        match connectors.get(&n).map(|c| &c.kind) {
            None => problems.push(Problem {
                path: "regulatory.notify".into(),
                message: format!("`{n}` is not a configured connector"),
            }),
            Some(ConnectorKind::Webhook { .. } | ConnectorKind::Chat { .. } | ConnectorKind::Smtp { .. }) => {
                out.notify = Some(n);
            }
            Some(k) => problems.push(Problem {
                path: "regulatory.notify".into(),
                message: format!("`{n}` is a `{}` connector, which cannot notify", k.type_name()),
            }),
        }
    }
    match raw.nis2.as_deref() {
        None | Some("none") => {}
        Some("essential") => out.nis2 = Some(Nis2Entity::Essential),
        Some("important") => out.nis2 = Some(Nis2Entity::Important),
        Some("trust_service") => out.nis2 = Some(Nis2Entity::TrustService),
        Some(o) => problems.push(Problem {
            path: "regulatory.nis2".into(),
            message: format!("`{o}` is not none, essential, important or trust_service"),
        }),
    }
    if let Some(d) = raw.dora {
        out.dora = d;
    }
    if let Some(g) = raw.gdpr {
        out.gdpr = g;
    }
    if let Some(w) = raw.warn_before_secs {
        if (0..=7 * 86_400).contains(&w) {
            out.warn_before_secs = u64::try_from(w).unwrap_or(0);
        } else {
            problems.push(Problem {
                path: "regulatory.warn_before_secs".into(),
                message: format!("{w} is outside 0 to 604800"),
            });
        }
    }
    out.organisation = raw.organisation.unwrap_or_default();
    if let Some(ms) = raw.member_state {
        if MEMBER_STATES.contains(&ms.as_str()) {
            out.member_state = ms;
        } else {
            problems.push(Problem {
                path: "regulatory.member_state".into(),
                message: format!("`{ms}` is not an EU member state code (AT, BE, … SE)"),
            });
        }
    }
    out
}

#[cfg(test)]
mod url_tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use crate::Config;

    fn connector(kind: &str, url: &str) -> Result<Config, String> {
        let secret = match kind {
            "webhook" => "secret_env = \"K\"\n",
            "edr" | "ticket" | "directory" => "token_env = \"T\"\n",
            _ => "",
        };
        Config::parse(
            &format!("version = 1\n[connectors.c]\ntype = \"{kind}\"\nurl = \"{url}\"\n{secret}"),
            "t.toml",
        )
        .map_err(|e| e.to_string())
    }

    /// Connector URLs are parsed: no user-info, never the metadata service, and a credential
    /// never over plain HTTP off this machine.
    #[test]
    fn connector_urls_are_judged_on_their_parsed_host() {
        for (kind, url) in [
            ("edr", "https://edr.soc.example/api"),
            ("edr", "http://127.0.0.1:9000/api"),
            ("slack", "http://[::1]:8080/hook"),
            ("webhook", "http://soar.soc.example/hook"),
            ("teams", "https://example.webhook.office.com/x"),
        ] {
            connector(kind, url).unwrap_or_else(|e| panic!("{kind} {url}: {e}"));
        }
        for (kind, url, expect) in [
            (
                "edr",
                "http://edr.soc.example/api",
                "must not cross the network in clear",
            ),
            (
                "ticket",
                "http://127.0.0.1.evil.example/api",
                "must not cross the network in clear",
            ),
            (
                "slack",
                "http://hooks.slack.example/T000/B000/XXXX",
                "must not cross the network in clear",
            ),
            ("webhook", "http://169.254.169.254/latest/meta-data", "link-local"),
            ("directory", "https://[fe80::1]/scim", "link-local"),
            ("webhook", "https://10.0.0.1@evil.example/hook", "user-info"),
            ("edr", "ftp://edr.soc.example/", "not an http:// or https:// URL"),
        ] {
            let err = connector(kind, url).unwrap_err();
            assert!(
                err.contains("connectors.c.url") && err.contains(expect),
                "{kind} {url}: {err}"
            );
        }
    }

    fn command(program: &str) -> Config {
        Config::parse(
            &format!(
                "version = 1\n[connectors.fw]\ntype = \"command\"\nprogram = \"{program}\"\n[connectors.fw.actions]\nblock_ip = [\"-c\", \"block {{{{target}}}}\"]\n"
            ),
            "t.toml",
        )
        .unwrap()
    }

    /// A shell or an interpreter as a `command` program is valid but warned of, by its name or
    /// by what its link resolves to; a program that acts directly is not.
    #[test]
    fn a_shell_as_a_command_program_is_warned_of() {
        for program in [
            "/bin/sh",
            "/usr/bin/bash",
            "/usr/bin/python3.12",
            "/usr/bin/env",
            "/opt/microsoft/powershell/7/pwsh",
        ] {
            let warnings = command(program).warnings();
            assert!(
                warnings.len() == 1
                    && warnings[0].path == "connectors.fw.program"
                    && warnings[0].message.contains("shell or an interpreter"),
                "{program}: {warnings:?}"
            );
        }
        for program in ["/usr/sbin/nft", "/usr/sbin/iptables", "/usr/bin/ssh"] {
            assert_eq!(command(program).warnings(), Vec::new(), "{program}");
        }
        // A link with an innocent name, to a shell.
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("firewall-block");
        std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
        let warnings = command(link.to_str().unwrap()).warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    /// `[respond] own_ranges` and `blockable_ranges`: CIDR ranges or single addresses, the
    /// private ranges by default; a range with host bits set or not a range is named.
    #[test]
    fn own_ranges_are_parsed_and_default_to_the_private_ranges() {
        let default = Config::parse("version = 1\n", "t.toml").unwrap();
        let own: Vec<String> = default.respond.own_ranges.iter().map(ToString::to_string).collect();
        assert_eq!(own, super::Respond::PRIVATE);
        let set = Config::parse(
            "version = 1\n[respond]\nown_ranges = [\"198.51.100.0/24\", \"2001:db8::/32\", \"203.0.113.9\"]\nblockable_ranges = [\"10.99.0.0/16\"]\n",
            "t.toml",
        )
        .unwrap();
        let own: Vec<String> = set.respond.own_ranges.iter().map(ToString::to_string).collect();
        assert_eq!(own, ["198.51.100.0/24", "2001:db8::/32", "203.0.113.9/32"]);
        assert_eq!(set.respond.blockable_ranges[0].to_string(), "10.99.0.0/16");
        let err = Config::parse(
            "version = 1\n[respond]\nown_ranges = [\"10.1.2.3/8\", \"ten/8\"]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("respond.own_ranges[0]") && err.contains("write `10.0.0.0/8`"),
            "{err}"
        );
        assert!(
            err.contains("respond.own_ranges[1]") && err.contains("not an address range"),
            "{err}"
        );
    }
}

//! Connectors: the systems actions reach. This is the one module of the crate that does I/O.
//!
//! Every action is first *prepared* into exactly what will be sent (an HTTP request, a program
//! and its arguments, an e-mail); a dry run shows that preparation and stops, a live run sends
//! it. Targets are checked against their kind before they reach a URL or an argument list
//! (an address must parse, a host name is letters, digits, dots and dashes), programs run
//! without a shell with a cleared environment, and every attempt is time-limited.
//!
//! Webhooks are signed: `X-Rempart-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`
//! with `X-Rempart-Timestamp` (Unix seconds) and `X-Rempart-Id` (the action's idempotency key,
//! the same on every retry). A receiver checks the signature with [`verify`], refuses
//! timestamps outside its tolerance, and remembers ids it has acted on, which together defeat
//! replays.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rempart_config::gateway::Secret;
use rempart_config::{ChatFormat, Connector, ConnectorKind, SmtpTls};
use rempart_model::{ActionKind, EntityKind, EventId};
use serde_json::{Value, json};
use sha2::Sha256;

use rempart_gateway::upstream::error_chain;

use crate::playbook::target_kind;
use crate::template::Template;

/// Largest response body read from a connector.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One action to carry out.
#[derive(Debug, Clone, Copy)]
pub struct ActionRequest<'a> {
    /// Idempotency key, stable across retries.
    pub key: &'a str,
    pub action: ActionKind,
    /// Undo the action instead (rollback).
    pub undo: bool,
    pub target: Option<&'a str>,
    pub params: &'a BTreeMap<String, String>,
    pub incident: EventId,
    pub run: EventId,
    pub playbook: &'a str,
}

/// Why a connector did not carry an action out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The request is wrong or was refused; trying again will not help.
    #[error("{0}")]
    Refused(String),
    /// A failure that may pass (network, timeout, 5xx, 429).
    #[error("{0}")]
    Failed(String),
}

impl ConnectorError {
    pub fn retryable(&self) -> bool {
        matches!(self, ConnectorError::Failed(_))
    }
}

/// What an action becomes before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    Http {
        url: String,
        body: Value,
        /// Headers shown in dry runs (signatures and tokens are added when sent).
        headers: Vec<(String, String)>,
        /// Signed with the webhook key.
        signed: bool,
        /// Sent with the connector's bearer token.
        bearer: bool,
    },
    Command {
        program: PathBuf,
        args: Vec<String>,
    },
    Mail {
        from: String,
        to: Vec<String>,
        subject: String,
        body: String,
    },
}

impl fmt::Display for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prepared::Http {
                url,
                body,
                signed,
                bearer,
                ..
            } => {
                write!(f, "POST {url} {body}")?;
                if *signed {
                    f.write_str(" (signed)")?;
                }
                if *bearer {
                    f.write_str(" (with token)")?;
                }
                Ok(())
            }
            Prepared::Command { program, args } => {
                write!(f, "run {}", program.display())?;
                for a in args {
                    write!(f, " {}", shell_quote(a))?;
                }
                Ok(())
            }
            Prepared::Mail { to, subject, .. } => write!(f, "mail to {}: {subject}", to.join(", ")),
        }
    }
}

/// Quotes an argument for display only (nothing is ever run through a shell).
fn shell_quote(a: &str) -> String {
    if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,".contains(&b)) {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// Checks a target against its kind; what passes is safe in a URL path segment and as an
/// argument (it never starts with `-`).
/// Addresses no response acts on, whatever a log says: blocking them cuts the machine off
/// itself or its platform (169.254.169.254), and they name no attacker.
fn never_a_target(ip: IpAddr) -> bool {
    let v4 = |a: std::net::Ipv4Addr| {
        a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_broadcast() || a.is_unspecified()
    };
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(v4)
        }
    }
}

/// The institution's own address ranges (`[respond] own_ranges`), minus those it lets be
/// blocked (`blockable_ranges`): an attacker who writes an address of the institution's own
/// (its resolver, its gateway, its file server) into a log must not get it blocked.
#[derive(Debug, Clone, Default)]
pub struct OwnRanges {
    own: Vec<ipnet::IpNet>,
    blockable: Vec<ipnet::IpNet>,
}

impl OwnRanges {
    pub fn new(config: &rempart_config::Respond) -> Self {
        OwnRanges {
            own: config.own_ranges.clone(),
            blockable: config.blockable_ranges.clone(),
        }
    }

    /// Refuses a target of `action` (as [`check_target`] gave it) that blocks one of the
    /// institution's own addresses. Actions that block nothing, or block no address, pass.
    pub fn check(&self, action: ActionKind, target: &str) -> Result<(), ConnectorError> {
        if action != ActionKind::BlockIp {
            return Ok(());
        }
        // An IPv4-mapped IPv6 address is the IPv4 address it maps.
        let Ok(ip) = target.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            return Ok(());
        };
        let within = |ranges: &[ipnet::IpNet]| ranges.iter().find(|r| r.contains(&ip)).copied();
        match (within(&self.own), within(&self.blockable)) {
            (Some(range), None) => Err(ConnectorError::Refused(format!(
                "target `{target}` refused: inside `{range}`, one of the institution's own ranges (`[respond] own_ranges`; list it in `blockable_ranges` to allow blocking it)"
            ))),
            _ => Ok(()),
        }
    }
}

pub fn check_target(kind: EntityKind, value: &str) -> Result<String, ConnectorError> {
    let refuse = |why: &str| Err(ConnectorError::Refused(format!("target `{value}` refused: {why}")));
    if value.is_empty() || value.len() > 256 {
        return refuse("empty or longer than 256 bytes");
    }
    if value.starts_with('-') {
        return refuse("starts with `-`");
    }
    // A path segment of dots is removed by URL parsers (`users/../disable` is `disable`), even
    // percent-encoded (`%2E%2E` is a dot segment too, per the URL standard).
    if value.trim_matches(|c: char| c == '.' || c.is_whitespace()).is_empty() {
        return refuse("only dots and spaces");
    }
    if value.chars().any(|c| c.is_control()) || value.trim() != value {
        return refuse("control characters, or spaces at either end");
    }
    let all = |ok: fn(u8) -> bool| value.bytes().all(ok);
    match kind {
        EntityKind::Ip => match value.parse::<IpAddr>() {
            Ok(ip) if never_a_target(ip) => refuse(
                "loopback, link-local (the cloud metadata address among them), multicast, broadcast or unspecified: never a response target",
            ),
            Ok(ip) => Ok(ip.to_string()),
            Err(_) => refuse("not an IP address"),
        },
        EntityKind::Domain | EntityKind::Host => {
            if all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
                && !value.starts_with('.')
                && !value.contains("..")
            {
                Ok(value.to_owned())
            } else {
                refuse("a name is letters, digits, `.`, `-` and `_`")
            }
        }
        EntityKind::User => {
            if all(|b| b.is_ascii_alphanumeric() || b".-_@\\$ ".contains(&b)) {
                Ok(value.to_owned())
            } else {
                refuse("an account is letters, digits, `.`, `-`, `_`, `@`, `\\`, `$` and spaces")
            }
        }
        EntityKind::Hash => {
            if all(|b| b.is_ascii_hexdigit()) && [32, 40, 64, 128].contains(&value.len()) {
                Ok(value.to_ascii_lowercase())
            } else {
                refuse("not an MD5, SHA-1, SHA-256 or SHA-512 in hex")
            }
        }
        EntityKind::Process => {
            if all(|b| b.is_ascii_alphanumeric() || b"{}-:._".contains(&b)) {
                Ok(value.to_owned())
            } else {
                refuse("a process id is letters, digits, `{`, `}`, `-`, `:`, `.` and `_`")
            }
        }
    }
}

/// A target for a command's argument: nothing a shell, `ssh`'s joined remote command line,
/// `nft`'s own parser or PowerShell would read as syntax (no spaces, quotes, `$`, `;`, `|`,
/// `&`, `` ` ``, brackets, braces, redirections or globs). Programs join and re-parse their
/// arguments (ssh, nft), so keeping the target one argument is not enough: it must be inert
/// wherever a template puts it.
fn command_safe(target: &str) -> Result<String, ConnectorError> {
    if target
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._@-:\\".contains(&b))
    {
        Ok(target.to_owned())
    } else {
        Err(ConnectorError::Refused(format!(
            "target `{target}` refused for a command: only letters, digits, `.`, `_`, `@`, `-`, `:` and `\\`"
        )))
    }
}

/// A value from telemetry or a model made harmless in a chat message: line breaks and other
/// controls become spaces, and the markup that notifies people (`<!channel>`, `@here`,
/// `@room`, `<@U…>`) or builds links stays text.
pub fn chat_text(format: ChatFormat, message: &str) -> String {
    let flat: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    // A word joiner after `@` keeps `@channel`, `@here`, `@everyone`, `@room` from pinging;
    // addresses are defanged (`hxxp://`) so that no client links, previews or fetches them.
    let quiet = defang(&flat.replace('@', "@\u{2060}"));
    match format {
        // Slack's own escaping: `<`, `>` and `&` as entities, so `<!channel>` and `<url|x>` are text.
        ChatFormat::Slack => quiet.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        // Adaptive Card and Matrix markdown: brackets escaped, so `[x](url)` is not a link.
        ChatFormat::Teams | ChatFormat::Matrix => {
            let mut out = String::with_capacity(quiet.len());
            for c in quiet.chars() {
                if "[]()<>*_`".contains(c) {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

/// `http://` and `https://` written `hxxp://` and `hxxps://`, in any case, as security teams
/// share indicators.
fn defang(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.to_ascii_lowercase().find("http") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 4..];
        let scheme = tail.starts_with("://") || tail.to_ascii_lowercase().starts_with("s://");
        out.push_str(if scheme { "hxxp" } else { &rest[i..i + 4] });
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Percent-encodes a path segment.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `v1=<hex>`: the webhook signature of `body` sent at `timestamp`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_key());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[expect(clippy::panic, reason = "HMAC accepts keys of any length")]
fn unreachable_key() -> Hmac<Sha256> {
    panic!("HMAC-SHA256 rejected a key")
}

/// Why a webhook delivery was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is not a number")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now (outside the tolerance): a replay or a skewed clock")]
    Stale(i64),
    #[error("the signature does not match")]
    BadSignature,
}

/// Checks a webhook delivery: the signature over timestamp and body, and the timestamp
/// within `tolerance_secs` of `now`. The caller also refuses an `X-Rempart-Id` it has seen.
pub fn verify(
    key: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: Timestamp,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew = now.as_second() - ts;
    if skew.abs() > tolerance_secs {
        return Err(VerifyError::Stale(skew));
    }
    let Some(hex_sig) = signature.trim().strip_prefix("v1=") else {
        return Err(VerifyError::BadSignature);
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return Err(VerifyError::BadSignature);
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| VerifyError::BadSignature)?;
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| VerifyError::BadSignature)
}

fn read_secret(name: &str, what: &str, s: &Secret) -> Result<Option<String>, String> {
    match s {
        Secret::None => Ok(None),
        Secret::Env(var) => std::env::var(var)
            .map(Some)
            .map_err(|_| format!("connector `{name}`: environment variable `{var}` ({what}) is not set")),
        Secret::File(p) => std::fs::read_to_string(p)
            .map(|t| Some(t.trim().to_owned()))
            .map_err(|e| format!("connector `{name}`: `{}` ({what}): {e}", p.display())),
    }
}

#[derive(Debug)]
struct Item {
    config: Connector,
    /// Webhook key, API token or SMTP password.
    secret: Option<String>,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    /// Argument templates of a command connector, by action (and `undo_<action>`).
    commands: BTreeMap<String, Vec<Template>>,
}

/// The configured connectors, ready to use.
#[derive(Debug, Clone)]
pub struct Connectors {
    http: reqwest::Client,
    items: Arc<BTreeMap<String, Item>>,
}

impl Connectors {
    /// Reads secrets and builds clients; an unset secret or a bad template is an error naming
    /// the connector.
    pub fn new(configs: &BTreeMap<String, Connector>) -> Result<Connectors, String> {
        let tls = rempart_gateway::upstream::tls(None).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let mut items = BTreeMap::new();
        for (name, c) in configs {
            let (secret, smtp, commands) = match &c.kind {
                ConnectorKind::Webhook { secret, .. } => {
                    (read_secret(name, "webhook key", secret)?, None, BTreeMap::new())
                }
                ConnectorKind::Edr { token, .. }
                | ConnectorKind::Ticket { token, .. }
                | ConnectorKind::Directory { token, .. } => {
                    (read_secret(name, "API token", token)?, None, BTreeMap::new())
                }
                ConnectorKind::Chat { .. } => (None, None, BTreeMap::new()),
                ConnectorKind::Smtp {
                    host,
                    port,
                    tls,
                    username,
                    password,
                    ..
                } => {
                    let password = read_secret(name, "SMTP password", password)?;
                    let builder = match tls {
                        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()),
                        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                            .map_err(|e| format!("connector `{name}`: {e}"))?,
                        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                            .map_err(|e| format!("connector `{name}`: {e}"))?,
                    };
                    let mut builder = builder.port(*port).timeout(Some(Duration::from_secs(c.timeout_secs)));
                    if let (Some(u), Some(p)) = (username, &password) {
                        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                    }
                    (None, Some(builder.build()), BTreeMap::new())
                }
                ConnectorKind::Command { actions, .. } => {
                    let mut commands = BTreeMap::new();
                    for (action, args) in actions {
                        let parsed = args
                            .iter()
                            .map(|a| Template::parse(a))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| format!("connector `{name}`: actions.{action}: {e}"))?;
                        commands.insert(action.clone(), parsed);
                    }
                    (None, None, commands)
                }
            };
            items.insert(
                name.clone(),
                Item {
                    config: c.clone(),
                    secret,
                    smtp,
                    commands,
                },
            );
        }
        Ok(Connectors {
            http,
            items: Arc::new(items),
        })
    }

    /// Whether the connector only describes what it would do.
    pub fn dry_run(&self, name: &str) -> bool {
        self.items.get(name).is_some_and(|i| i.config.dry_run)
    }

    /// Longest one attempt may take.
    pub fn timeout(&self, name: &str) -> Duration {
        Duration::from_secs(self.items.get(name).map_or(10, |i| i.config.timeout_secs))
    }

    /// What the action becomes: exactly what would be sent.
    pub fn prepare(&self, name: &str, req: &ActionRequest<'_>) -> Result<Prepared, ConnectorError> {
        let item = self
            .items
            .get(name)
            .ok_or_else(|| ConnectorError::Refused(format!("no connector `{name}`")))?;
        let target = match (req.target, target_kind(req.action)) {
            (Some(t), Some(kind)) => Some(check_target(kind, t)?),
            (None, Some(_)) => {
                return Err(ConnectorError::Refused(format!("`{}` needs a target", req.action)));
            }
            _ => None,
        };
        let message = req.params.get("message").cloned().unwrap_or_else(|| {
            format!(
                "Rempart: {} {} for incident {}",
                req.action,
                target.as_deref().unwrap_or(""),
                req.incident
            )
        });
        let verb = if req.undo { "undo" } else { "do" };
        Ok(match &item.config.kind {
            ConnectorKind::Webhook { url, .. } => Prepared::Http {
                url: url.clone(),
                body: json!({
                    "id": req.key,
                    "type": "rempart.action",
                    "action": req.action,
                    "undo": req.undo,
                    "target": target,
                    "params": req.params,
                    "incident": req.incident,
                    "run": req.run,
                    "playbook": req.playbook,
                }),
                headers: vec![("X-Rempart-Id".into(), req.key.to_owned())],
                signed: true,
                bearer: false,
            },
            ConnectorKind::Chat { url, format } => {
                let message = chat_text(*format, &message);
                Prepared::Http {
                    url: url.clone(),
                    body: match format {
                        // No unfurling: Slack would fetch any address in the text (a beacon).
                        ChatFormat::Slack => json!({ "text": message, "unfurl_links": false, "unfurl_media": false }),
                        // Teams Workflows webhooks take an Adaptive Card in a message attachment.
                        ChatFormat::Teams => json!({
                            "type": "message",
                            "attachments": [{
                                "contentType": "application/vnd.microsoft.card.adaptive",
                                "content": {
                                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                    "type": "AdaptiveCard",
                                    "version": "1.4",
                                    "body": [{ "type": "TextBlock", "text": message, "wrap": true }],
                                },
                            }],
                        }),
                        // Matrix hookshot generic webhooks.
                        ChatFormat::Matrix => json!({ "text": message, "username": "Rempart" }),
                    },
                    headers: Vec::new(),
                    signed: false,
                    bearer: false,
                }
            }
            ConnectorKind::Smtp { from, to, .. } => Prepared::Mail {
                from: from.clone(),
                to: to.clone(),
                subject: req
                    .params
                    .get("subject")
                    .cloned()
                    .unwrap_or_else(|| format!("[Rempart] incident {}", req.incident)),
                body: message,
            },
            ConnectorKind::Command { program, .. } => {
                let key = if req.undo {
                    format!("undo_{}", req.action)
                } else {
                    req.action.as_str().to_owned()
                };
                let templates = item.commands.get(&key).ok_or_else(|| {
                    ConnectorError::Refused(format!("connector `{name}` has no arguments for `{key}`"))
                })?;
                let target = target.map(|t| command_safe(&t)).transpose()?;
                let mut vars = BTreeMap::new();
                vars.insert("target", target.clone().unwrap_or_default());
                vars.insert("action", req.action.as_str().to_owned());
                vars.insert("incident.id", req.incident.to_string());
                vars.insert("run.id", req.run.to_string());
                vars.insert("playbook.id", req.playbook.to_owned());
                Prepared::Command {
                    program: program.clone(),
                    args: templates.iter().map(|t| t.render(&vars)).collect(),
                }
            }
            ConnectorKind::Edr { url, .. } => {
                let t = segment(target.as_deref().unwrap_or_default());
                let path = match (req.action, req.undo) {
                    (ActionKind::IsolateHost, false) => format!("machines/{t}/isolate"),
                    (ActionKind::IsolateHost, true) => format!("machines/{t}/unisolate"),
                    (ActionKind::KillProcess, false) => format!("processes/{t}/kill"),
                    (ActionKind::QuarantineFile, false) => format!("files/{t}/quarantine"),
                    (ActionKind::CollectForensics, false) => format!("machines/{t}/collectInvestigationPackage"),
                    (a, _) => {
                        return Err(ConnectorError::Refused(format!(
                            "connector `{name}` (edr) cannot {verb} `{a}`"
                        )));
                    }
                };
                Prepared::Http {
                    url: format!("{}/{path}", url.trim_end_matches('/')),
                    body: json!({ "Comment": message, "IsolationType": "Full", "RequestId": req.key }),
                    headers: vec![("Idempotency-Key".into(), req.key.to_owned())],
                    signed: false,
                    bearer: item.secret.is_some(),
                }
            }
            ConnectorKind::Ticket { url, .. } => Prepared::Http {
                url: url.clone(),
                body: json!({
                    "title": req.params.get("title").cloned().unwrap_or_else(|| format!("Incident {}", req.incident)),
                    "description": message,
                    "priority": req.params.get("priority"),
                    "incident": req.incident,
                    "external_id": req.key,
                }),
                headers: vec![("Idempotency-Key".into(), req.key.to_owned())],
                signed: false,
                bearer: item.secret.is_some(),
            },
            ConnectorKind::Directory { url, .. } => {
                let t = segment(target.as_deref().unwrap_or_default());
                let path = match (req.action, req.undo) {
                    (ActionKind::DisableAccount, false) => format!("users/{t}/disable"),
                    (ActionKind::DisableAccount, true) => format!("users/{t}/enable"),
                    (ActionKind::ResetCredentials, false) => format!("users/{t}/reset-password"),
                    (a, _) => {
                        return Err(ConnectorError::Refused(format!(
                            "connector `{name}` (directory) cannot {verb} `{a}`"
                        )));
                    }
                };
                Prepared::Http {
                    url: format!("{}/{path}", url.trim_end_matches('/')),
                    body: json!({ "reason": message, "request_id": req.key }),
                    headers: vec![("Idempotency-Key".into(), req.key.to_owned())],
                    signed: false,
                    bearer: item.secret.is_some(),
                }
            }
        })
    }

    /// Carries the action out once (the caller retries); returns what the system answered.
    pub async fn execute(&self, name: &str, req: &ActionRequest<'_>, now: Timestamp) -> Result<String, ConnectorError> {
        let prepared = self.prepare(name, req)?;
        let item = self
            .items
            .get(name)
            .ok_or_else(|| ConnectorError::Refused(format!("no connector `{name}`")))?;
        let limit = Duration::from_secs(item.config.timeout_secs);
        let attempt = async {
            match &prepared {
                Prepared::Http {
                    url,
                    body,
                    headers,
                    signed,
                    bearer,
                } => self.post(item, url, body, headers, *signed, *bearer, now).await,
                Prepared::Command { program, args } => run_command(program, args).await,
                Prepared::Mail {
                    from,
                    to,
                    subject,
                    body,
                } => send_mail(item, from, to, subject, body).await,
            }
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ConnectorError::Failed(format!(
                "connector `{name}` did not answer within {} s",
                limit.as_secs()
            ))),
        }
    }

    #[allow(clippy::too_many_arguments, reason = "the parts of one prepared request")]
    async fn post(
        &self,
        item: &Item,
        url: &str,
        body: &Value,
        headers: &[(String, String)],
        signed: bool,
        bearer: bool,
        now: Timestamp,
    ) -> Result<String, ConnectorError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ConnectorError::Refused(e.to_string()))?;
        let mut rb = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", concat!("rempart/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        if signed {
            let key = item.secret.as_deref().unwrap_or_default();
            let ts = now.as_second();
            rb = rb
                .header("x-rempart-timestamp", ts.to_string())
                .header("x-rempart-signature", sign(key.as_bytes(), ts, &bytes));
        }
        if bearer && let Some(token) = &item.secret {
            rb = rb.bearer_auth(token);
        }
        let resp = rb
            .body(bytes)
            .send()
            .await
            .map_err(|e| ConnectorError::Failed(format!("POST {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let text = read_capped(resp).await;
        let snippet: String = text.chars().take(200).collect();
        if status.is_success() {
            Ok(format!("{} {snippet}", status.as_u16()).trim_end().to_owned())
        } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(ConnectorError::Failed(format!("POST {url}: {status} {snippet}")))
        } else {
            Err(ConnectorError::Refused(format!("POST {url}: {status} {snippet}")))
        }
    }
}

async fn read_capped(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn run_command(program: &std::path::Path, args: &[String]) -> Result<String, ConnectorError> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ConnectorError::Refused(format!("cannot run `{}`: {e}", program.display())))?;
    let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(2_000)]).trim().to_owned();
    if out.status.success() {
        Ok(format!("exit 0 {}", text(&out.stdout)).trim_end().to_owned())
    } else {
        Err(ConnectorError::Failed(format!(
            "`{}` exited with {}: {}",
            program.display(),
            out.status,
            text(&out.stderr)
        )))
    }
}

async fn send_mail(
    item: &Item,
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
) -> Result<String, ConnectorError> {
    let Some(transport) = &item.smtp else {
        return Err(ConnectorError::Refused("not an SMTP connector".into()));
    };
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| ConnectorError::Refused(format!("`{a}`: {e}")))
    };
    let mut builder = lettre::Message::builder().from(parse(from)?).subject(subject);
    for t in to {
        builder = builder.to(parse(t)?);
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| ConnectorError::Refused(e.to_string()))?;
    let resp = transport.send(message).await.map_err(|e| {
        if e.is_permanent() {
            ConnectorError::Refused(format!("SMTP: {}", error_chain(&e)))
        } else {
            ConnectorError::Failed(format!("SMTP: {}", error_chain(&e)))
        }
    })?;
    Ok(format!(
        "{} {}",
        resp.code(),
        resp.message().collect::<Vec<_>>().join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering_and_replays() {
        let now = Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let sig = sign(b"k", now.as_second(), b"{\"a\":1}");
        assert_eq!(
            verify(b"k", &now.as_second().to_string(), b"{\"a\":1}", &sig, now, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"k", &now.as_second().to_string(), b"{\"a\":2}", &sig, now, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(b"other", &now.as_second().to_string(), b"{\"a\":1}", &sig, now, 300),
            Err(VerifyError::BadSignature)
        );
        let later = Timestamp::from_second(now.as_second() + 301).unwrap_or(now);
        assert_eq!(
            verify(b"k", &now.as_second().to_string(), b"{\"a\":1}", &sig, later, 300),
            Err(VerifyError::Stale(301))
        );
    }

    #[test]
    fn targets_are_checked_by_kind() {
        assert_eq!(
            check_target(EntityKind::Ip, "2001:db8::0:1").ok().as_deref(),
            Some("2001:db8::1")
        );
        for (k, bad) in [
            (EntityKind::Ip, "10.0.0.1; rm -rf /"),
            (EntityKind::Host, "-oProxyCommand=x"),
            (EntityKind::Host, "ws/../../etc"),
            (EntityKind::Domain, "evil.com$(id)"),
            (EntityKind::User, "bob\"; drop"),
            (EntityKind::Hash, "abc"),
            (EntityKind::Ip, "169.254.169.254"),
            (EntityKind::Ip, "127.0.0.1"),
            (EntityKind::Ip, "::1"),
            (EntityKind::Ip, "fe80::1"),
            (EntityKind::Ip, "::ffff:169.254.169.254"),
            (EntityKind::Ip, "255.255.255.255"),
            (EntityKind::Ip, "224.0.0.1"),
            (EntityKind::Ip, "0.0.0.0"),
        ] {
            assert!(check_target(k, bad).is_err(), "{k} {bad}");
        }
        assert!(check_target(EntityKind::Ip, "203.0.113.7").is_ok());
        assert!(check_target(EntityKind::User, "CORP\\alice").is_ok());
    }

    /// The private ranges by default, IPv4-mapped addresses as their IPv4 address, the
    /// blockable exceptions, and only address blocking concerned.
    #[test]
    fn own_ranges_are_never_blocked_unless_listed_blockable() {
        let config = rempart_config::Config::parse(
            "version = 1\n[respond]\nblockable_ranges = [\"10.99.0.0/16\", \"fd00:99::/32\"]\n",
            "t.toml",
        )
        .unwrap()
        .respond;
        let own = OwnRanges::new(&config);
        for refused in [
            "10.0.0.53",
            "172.16.4.4",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "fd12:3456::1",
            "::ffff:192.168.1.1",
            "10.98.255.255",
        ] {
            let err = own.check(ActionKind::BlockIp, refused).unwrap_err().to_string();
            assert!(err.contains("the institution's own ranges"), "{refused}: {err}");
        }
        for allowed in [
            "203.0.113.7",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "10.99.1.1",
            "fd00:99::5",
        ] {
            assert!(own.check(ActionKind::BlockIp, allowed).is_ok(), "{allowed}");
        }
        assert!(
            own.check(ActionKind::IsolateHost, "10.0.0.53").is_ok(),
            "only blocking is concerned"
        );
        assert!(
            OwnRanges::default().check(ActionKind::BlockIp, "10.0.0.53").is_ok(),
            "nothing configured"
        );
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let p = Prepared::Command {
            program: "/usr/sbin/nft".into(),
            args: vec!["add".into(), "{ 10.0.0.1 }".into()],
        };
        assert_eq!(p.to_string(), "run /usr/sbin/nft add '{ 10.0.0.1 }'");
    }
}

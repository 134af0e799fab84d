//! Commands, options and their dispatch.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use rempart_config::Config;
use rempart_model::Format;
use rempart_store::{EventQuery, FieldFilter, Role};

use crate::{audit, demo, detect, ingest, instance, privacy, serve};

/// Rempart: sovereign, auditable AI security operations.
///
/// Ingests and normalizes security telemetry (syslog, CEF, JSON, Windows EVTX, Suricata EVE,
/// Zeek, auditd) into an embedded store or a shared PostgreSQL, detects threats with Sigma rules,
/// groups alerts into incidents that models triage, pseudonymizes personal data before it
/// leaves, records everything of consequence in a signed audit ledger, lets any OpenAI- or
/// Anthropic-speaking tool reach AI models only through a sovereignty gateway (policy by data
/// class and jurisdiction, failover to self-hosted models), and serves it all over an
/// authenticated API and console: as one process, or as a cluster of roles over NATS JetStream.
#[derive(Debug, Parser)]
#[command(name = "rempart", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The instance's data directory [default: $XDG_DATA_HOME/rempart or ~/.local/share/rempart]
    #[arg(long, global = true, env = "REMPART_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML, `version = 1`); embedded defaults when absent
    #[arg(long, short, global = true, env = "REMPART_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug); REMPART_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a built-in attack scenario end to end on a fresh instance, then serve the API
    Demo(DemoArgs),
    /// Serve the API, the console and the configured syslog listeners; or one role of a cluster
    Serve(ServeArgs),
    /// Ingest files and folders (recursively; .gz, .zip, .tar.gz read in place)
    Ingest(IngestArgs),
    /// Query stored events
    Events(EventsArgs),
    /// Run Sigma rules over files or stored events (a retro-hunt)
    Hunt(HuntArgs),
    /// List stored alerts, newest first
    Alerts(AlertsArgs),
    /// Incidents: alerts grouped by shared entities and kill-chain progression; their status,
    /// owner, triage verdicts and analysts' feedback
    Incidents {
        #[command(subcommand)]
        command: Option<crate::incidents::IncidentsCommand>,
    },
    /// Playbooks: check them, run them on an incident (or dry-run), follow their runs
    Playbooks {
        #[command(subcommand)]
        command: crate::respond::PlaybooksCommand,
    },
    /// The approval queue: high-impact steps wait here for people (four eyes)
    Approvals {
        #[command(subcommand)]
        command: Option<crate::respond::ApprovalsCommand>,
    },
    /// Streaming anomaly detection: measure detectors on labelled data sets
    Anomaly {
        #[command(subcommand)]
        command: crate::anomaly::AnomalyCommand,
    },
    /// Triage quality and data: evaluate on a gold set, export confirmed incidents as a
    /// pseudonymized fine-tuning data set
    Triage {
        #[command(subcommand)]
        command: crate::triage::TriageCommand,
    },
    /// Tuning a model on the institution's own history and intelligence, inside the boundary:
    /// pseudonymized, checked data sets and a job directory for its own GPU
    Tuning {
        #[command(subcommand)]
        command: crate::tuning::TuningCommand,
    },
    /// The store: copy an embedded instance into PostgreSQL
    Store {
        #[command(subcommand)]
        command: crate::store::StoreCommand,
    },
    /// A cluster's processes, bus and store
    Cluster {
        #[command(subcommand)]
        command: crate::cluster::ClusterCommand,
    },
    /// Work with Sigma rules
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// The audit ledger: verify, show, export, checkpoints and keys
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Pseudonymize standard input (text or NDJSON) to standard output, or re-identify it
    Redact(privacy::RedactArgs),
    /// Data-subject rights over what Rempart keeps: erasure and access
    Privacy {
        #[command(subcommand)]
        command: privacy::PrivacyCommand,
    },
    /// Threat intelligence: import STIX 2.1 bundles and MISP events, matched against everything
    /// ingested and in hunts
    Intel {
        #[command(subcommand)]
        command: crate::intel::IntelCommand,
    },
    /// The sovereignty gateway: its policy, decided from the configuration
    Gateway {
        #[command(subcommand)]
        command: crate::gateway::GatewayCommand,
    },
    /// Manage API tokens
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Work with configuration files
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Exit after the summary instead of serving the API
    #[arg(long)]
    pub no_serve: bool,
    /// Address the API listens on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the API listens on [default: 127.0.0.1:8080, or `server.listen`]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Sigma rules run on everything ingested (added to `detection.rules`; repeatable)
    #[arg(long, value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// What this process does: `all` (everything, one process, no bus); in a cluster sharing
    /// `[store] url` and `[bus]`: `ingest` (API, console and syslog; batches go to the bus),
    /// `api` (API and console), `detect` (rules on batches from the bus), `correlate`
    /// (incidents, triage, approval timeouts and retention, in the one process holding the
    /// lease), `respond` (playbooks started on incidents' changes from the bus)
    #[arg(long, default_value = "all", value_name = "ROLE", value_parser = parse_role)]
    pub role: rempart_server::cluster::Role,
}

fn parse_role(s: &str) -> Result<rempart_server::cluster::Role, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or folders
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Decode everything as this format instead of detecting it per file
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// For generic JSON: the (dotted) field holding the event time
    #[arg(long, value_name = "FIELD")]
    pub timestamp_field: Option<String>,
    /// Do not show a progress bar even on a terminal
    #[arg(long)]
    pub no_progress: bool,
    /// Run these Sigma rules (files or folders, repeatable) on what is ingested and store alerts
    #[arg(long, value_name = "DIR")]
    pub rules: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Events at or after this time (RFC 3339)
    #[arg(long)]
    pub since: Option<jiff::Timestamp>,
    /// Events before this time (RFC 3339)
    #[arg(long)]
    pub until: Option<jiff::Timestamp>,
    /// `field=value` on a normalized field, format, class, source, or fields.<dotted.path>; repeatable
    #[arg(long = "filter", short = 'f', value_name = "FIELD=VALUE")]
    pub filters: Vec<String>,
    /// Case-insensitive text anywhere in the event
    #[arg(long, short = 'q')]
    pub text: Option<String>,
    /// At most this many events, newest first
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Sigma rule files or folders (repeatable)
    #[arg(long, short = 'r', required = true, value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Files or folders to hunt in (any format `ingest` reads)
    #[arg(value_name = "PATH", required_unless_present = "stored")]
    pub paths: Vec<PathBuf>,
    /// Hunt in the instance's stored events instead of files
    #[arg(long, conflicts_with = "paths")]
    pub stored: bool,
    /// With --stored: events at or after this time (RFC 3339)
    #[arg(long, requires = "stored")]
    pub since: Option<jiff::Timestamp>,
    /// With --stored: events before this time (RFC 3339)
    #[arg(long, requires = "stored")]
    pub until: Option<jiff::Timestamp>,
    /// Print CSV instead of a table (--json prints NDJSON, one match per line)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// ATT&CK lookup (`attack-patterns-lookup-*.json`) naming the techniques of rule tags
    /// [default: `detection.attack`]
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// Threads loading the rules, then reading files and evaluating their events, a whole file
    /// each (one file of JSON lines, syslog, CEF or auditd: blocks of its lines each; one EVTX
    /// file: its chunks decoded side by side, its events evaluated in batches). With correlation
    /// rules they only decode, and evaluation runs on one thread in event-time order; --stored
    /// uses one [default: the machine's cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Instead of hunting, explain for each event in PATH why the rule with this id (or title)
    /// did or did not match it: the events its logsource routes it to, the prefilter, and each
    /// selection's fields against the event's values (absent, different, matched)
    #[arg(long, value_name = "RULE", conflicts_with_all = ["stored", "csv", "threads"])]
    pub explain_rule: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Alerts on events at or after this time (RFC 3339)
    #[arg(long)]
    pub since: Option<jiff::Timestamp>,
    /// Alerts on events before this time (RFC 3339)
    #[arg(long)]
    pub until: Option<jiff::Timestamp>,
    /// Only this level and above: informational, low, medium, high, critical
    #[arg(long)]
    pub level: Option<String>,
    /// Only this rule id
    #[arg(long)]
    pub rule: Option<String>,
    /// At most this many
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rules and report every one as loaded or rejected, with file, line and reason
    Check {
        #[arg(required = true, value_name = "DIR")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed once and stored only as a hash
    Create {
        /// viewer, analyst, approver, admin, ingest, gateway-client or auditor
        #[arg(long)]
        role: Role,
        /// A name saying who or what uses it
        #[arg(long, default_value = "cli")]
        name: String,
        /// The person it acts for: approvals count people, not tokens (default: you, as
        /// `cli:` and your operating-system account)
        #[arg(long)]
        owner: Option<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token by id
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file and report every problem in it
    Validate { file: PathBuf },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    let config = instance::load_config(cli.config.as_deref())?;
    let data_dir = cli.data_dir.clone().or_else(|| config.data_dir.clone());
    let dir = || data_dir.clone().unwrap_or_else(instance::default_data_dir);
    match cli.command {
        Command::Demo(args) => demo::run(data_dir, args, json).await,
        Command::Serve(args) => {
            let mut config = config;
            config.detection.rules.extend(args.rules);
            let data_dir = data_dir
                .or_else(|| config.data_dir.clone())
                .unwrap_or_else(instance::default_data_dir);
            serve::run(&data_dir, config, args.listen, args.role).await
        }
        Command::Ingest(args) => ingest::run(&dir(), &config, args, json).await,
        Command::Audit { command } => audit::run(&dir(), &config, command, json).await,
        Command::Redact(args) => privacy::redact(&dir(), &config, args).await,
        Command::Privacy { command } => privacy::privacy(&dir(), &config, command, json).await,
        Command::Gateway { command } => crate::gateway::gateway(&config, command, json),
        Command::Intel { command } => crate::intel::intel(&dir(), &config, command, json).await,
        Command::Incidents { command } => crate::incidents::run(&dir(), &config, command, json).await,
        Command::Anomaly { command } => crate::anomaly::run(command, json),
        Command::Playbooks { command } => crate::respond::playbooks(&dir(), &config, command, json).await,
        Command::Approvals { command } => {
            let command = command.unwrap_or(crate::respond::ApprovalsCommand::List {
                status: "pending".into(),
                limit: 100,
            });
            crate::respond::approvals(&dir(), &config, command, json).await
        }
        Command::Triage { command } => crate::triage::run(&dir(), &config, command, json).await,
        Command::Tuning { command } => crate::tuning::run(&dir(), &config, command, json).await,
        Command::Events(args) => events(&dir(), &config, args, json).await,
        Command::Hunt(args) if args.explain_rule.is_some() => {
            let rule = args.explain_rule.as_deref().unwrap_or_default();
            let attack = args.attack.clone().or_else(|| config.detection.attack.clone());
            detect::explain(&args.rules, attack.as_deref(), rule, &args.paths, json)
        }
        Command::Hunt(args) => {
            let output = if json {
                detect::Output::Json
            } else if args.csv {
                detect::Output::Csv
            } else {
                detect::Output::Table
            };
            let stored = args.stored.then_some((args.since, args.until));
            let attack = args.attack.clone().or_else(|| config.detection.attack.clone());
            let threads = args.threads.map_or_else(detect::all_threads, usize::from);
            detect::hunt(
                instance::Instance {
                    data_dir: &dir(),
                    config: &config,
                },
                &args.rules,
                attack.as_deref(),
                &args.paths,
                stored,
                output,
                threads,
            )
            .await
        }
        Command::Store { command } => crate::store::run(&config, command, json).await,
        Command::Cluster { command } => crate::cluster::run(&dir(), &config, command, json).await,
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => detect::check(&paths, json),
        Command::Alerts(args) => alerts(&dir(), &config, args, json).await,
        Command::Tokens { command } => tokens(&dir(), &config, command, json).await,
        Command::Config {
            command: ConfigCommand::Validate { file },
        } => {
            let cfg = Config::load(&file)?;
            // The playbooks it lists must check against its connectors too.
            let playbooks = instance::playbooks(&cfg)?;
            let warnings: Vec<String> = cfg.warnings().iter().map(ToString::to_string).collect();
            let mut out = crate::out::stdout();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"valid": true, "file": file, "playbooks": playbooks.len(), "connectors": cfg.connectors.len(), "warnings": warnings})
                )?;
            } else {
                for w in &warnings {
                    writeln!(out, "warning: {w}")?;
                }
                writeln!(
                    out,
                    "{}: valid (API on {}; {} playbook(s), {} connector(s))",
                    file.display(),
                    cfg.server.listen,
                    playbooks.len(),
                    cfg.connectors.len()
                )?;
            }
            Ok(())
        }
    }
}

async fn events(data_dir: &std::path::Path, config: &Config, args: EventsArgs, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let query = EventQuery {
        since: args.since,
        until: args.until,
        filters: args
            .filters
            .iter()
            .map(|f| FieldFilter::parse(f))
            .collect::<Result<_, _>>()?,
        text: args.text,
        before: None,
        limit: Some(args.limit),
    };
    let events = store.query_events(&query).await?;
    let mut out = crate::out::stdout();
    for e in &events {
        if json {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
        } else {
            let n = &e.normalized;
            writeln!(
                out,
                "{}  {:<13} {:<22} {:<16} {}",
                e.time.strftime("%Y-%m-%d %H:%M:%S"),
                e.format.as_str(),
                n.host.as_deref().unwrap_or("-"),
                n.user.as_deref().unwrap_or("-"),
                n.command_line
                    .as_deref()
                    .or(n.message.as_deref())
                    .unwrap_or("-")
                    .chars()
                    .take(100)
                    .collect::<String>()
            )?;
        }
    }
    if !json && events.is_empty() {
        writeln!(out, "no events match")?;
    }
    Ok(())
}

async fn alerts(data_dir: &std::path::Path, config: &Config, args: AlertsArgs, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let q = rempart_store::AlertQuery {
        since: args.since,
        until: args.until,
        min_level: args.level,
        rule_id: args.rule,
        before: None,
        limit: Some(args.limit),
    };
    let alerts = store.query_alerts(&q).await?;
    let mut out = crate::out::stdout();
    for a in &alerts {
        if json {
            writeln!(out, "{}", serde_json::to_string(a)?)?;
        } else {
            let technique = a
                .techniques
                .first()
                .map(|t| format!("{} {}", t.id, t.name.as_deref().unwrap_or("")))
                .unwrap_or_else(|| "-".to_owned());
            writeln!(
                out,
                "{}  {:<13} {:<60} {:<24} {:<32} event {}",
                a.time.strftime("%Y-%m-%d %H:%M:%S"),
                a.level.as_deref().unwrap_or("-"),
                a.rule_title.chars().take(60).collect::<String>(),
                a.host.as_deref().unwrap_or("-"),
                technique.chars().take(32).collect::<String>(),
                a.event
            )?;
        }
    }
    if !json && alerts.is_empty() {
        writeln!(out, "no alerts match")?;
    }
    Ok(())
}

async fn tokens(data_dir: &std::path::Path, config: &Config, command: TokensCommand, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let mut out = crate::out::stdout();
    match command {
        TokensCommand::Create { role, name, owner } => {
            let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
            let me = instance::cli_actor();
            let created = rempart_server::auth::create_token(
                &*store,
                &ledger,
                rempart_server::auth::By {
                    actor: &me,
                    person: &me,
                },
                rempart_server::auth::NewToken {
                    name: &name,
                    role,
                    owner: owner.as_deref(),
                },
            )
            .await;
            ledger.close().await;
            let (record, secret) = created.context("cannot create token")?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"id": record.id, "role": record.role, "name": record.name, "secret": secret})
                )?;
            } else {
                writeln!(out, "{secret}")?;
                let _ = writeln!(
                    std::io::stderr(),
                    "created token {} with role {} (the secret above is shown only once)",
                    record.id,
                    record.role
                );
            }
        }
        TokensCommand::List => {
            let tokens = store.list_tokens().await?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&tokens)?)?;
            } else {
                for t in tokens {
                    writeln!(
                        out,
                        "{}  {:<14} {:<8} {}  {}",
                        t.id,
                        t.role,
                        if t.revoked { "revoked" } else { "active" },
                        t.created,
                        t.name
                    )?;
                }
            }
        }
        TokensCommand::Revoke { id } => {
            let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
            let revoked = rempart_server::auth::revoke_token(&*store, &ledger, &instance::cli_actor(), &id).await;
            ledger.close().await;
            if !revoked.context("cannot revoke token")? {
                bail!("no token `{id}`");
            }
            writeln!(out, "revoked {id}")?;
        }
    }
    Ok(())
}

//! `rempart incidents`: incidents grouped from alerts, their lifecycle, triage and feedback.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use rempart_model::{Classification, EventId, Incident, IncidentStatus, Verdict};
use rempart_server::AppState;
use rempart_server::incident_api;
use rempart_server::incidents::Incidents;
use rempart_store::IncidentQuery;
use serde_json::json;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, most recently active first (the default)
    List {
        /// Only these statuses (comma-separated): new, triaged, investigating, contained,
        /// resolved, false_positive, merged [default: all but merged]
        #[arg(long, value_delimiter = ',')]
        status: Vec<IncidentStatus>,
        /// Only incidents active at or after this time (RFC 3339)
        #[arg(long)]
        since: Option<jiff::Timestamp>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One incident: entities, history, alerts and verdicts (re-identified)
    Show {
        id: EventId,
        /// At most this many alerts
        #[arg(long, default_value_t = 100)]
        alerts: u32,
    },
    /// Triage an incident now: a model through the sovereignty gateway (`[triage] route`),
    /// or, when none can answer, the deterministic verdict labelled `degraded`
    Triage { id: EventId },
    /// Move an incident to a status: triaged, investigating, contained, resolved,
    /// false_positive (a closed one may be reopened as investigating)
    Status {
        id: EventId,
        status: IncidentStatus,
        /// Why (recorded in the incident's history and the audit ledger)
        #[arg(long)]
        reason: String,
    },
    /// Give an incident an owner
    Assign {
        id: EventId,
        owner: String,
        #[arg(long, default_value = "assigned")]
        reason: String,
    },
    /// Move alerts of an incident into a new incident
    Split {
        id: EventId,
        /// An alert to move (repeatable)
        #[arg(long = "alert", required = true, value_name = "ALERT_ID")]
        alerts: Vec<EventId>,
        #[arg(long)]
        reason: String,
    },
    /// Confirm or override a triage verdict
    Feedback {
        verdict: EventId,
        /// The verdict is right
        #[arg(long, conflicts_with = "disagree", required_unless_present = "disagree")]
        agree: bool,
        /// The verdict is wrong (give --classification)
        #[arg(long)]
        disagree: bool,
        /// The right classification: true_positive, benign or false_positive
        #[arg(long, value_parser = parse_classification)]
        classification: Option<Classification>,
        #[arg(long)]
        reason: String,
    },
    /// How often analysts agree with verdicts, overall, per model and per rule
    Stats,
    /// An incident's reporting duties under NIS2, DORA and GDPR: its assessment and every
    /// deadline with where it stands
    Regulatory { id: EventId },
    /// Open or change an incident's regulatory assessment (the clocks start at --aware-at,
    /// by default when the incident opened)
    Assess {
        id: EventId,
        /// When the organisation became aware of the incident (RFC 3339)
        #[arg(long)]
        aware_at: Option<jiff::Timestamp>,
        /// NIS2: the incident is significant (Art. 23(3))
        #[arg(long)]
        nis2_significant: Option<bool>,
        /// NIS2 trust service provider: the incident affects its trust services
        #[arg(long)]
        trust_services: Option<bool>,
        /// GDPR: a personal data breach (Art. 33)
        #[arg(long)]
        personal_data_breach: Option<bool>,
        /// When the organisation became aware of the breach, if later (RFC 3339)
        #[arg(long)]
        breach_aware_at: Option<jiff::Timestamp>,
        /// DORA classification criteria (JSON file; see `docs/reports.md`)
        #[arg(long, value_name = "FILE")]
        dora: Option<std::path::PathBuf>,
    },
    /// Record a report as sent to its authority
    Submitted {
        id: EventId,
        /// nis2_early_warning, nis2_notification, nis2_final, dora_initial, dora_intermediate,
        /// dora_final or gdpr_notification
        report: rempart_respond::clocks::ReportKind,
        /// When it was sent (RFC 3339) [default: now]
        #[arg(long)]
        at: Option<jiff::Timestamp>,
        /// The authority's reference
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// A report draft (JSON, in the structure of its template) or, with --html, the printable
    /// incident report
    Report {
        id: EventId,
        /// The draft to write (see `submitted`)
        #[arg(long, required_unless_present = "html", conflicts_with = "html")]
        report: Option<rempart_respond::clocks::ReportKind>,
        #[arg(long)]
        html: bool,
        /// Write to this file instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Every incident's reporting deadlines, soonest first
    Deadlines,
}

fn parse_classification(s: &str) -> Result<Classification, String> {
    s.parse()
}

/// What a command needs wired.
#[derive(Debug)]
pub enum Wiring {
    /// Store, ledger, privacy engine and incidents: reading and changing records.
    Records,
    /// Also the triage service with the gateway, rules, indicators and ATT&CK notes; rules, when
    /// given, replace `detection.rules` (already loaded).
    Triage(Option<Arc<rempart_detect::RuleSet>>),
}

/// The server's wiring without the server, as `serve` builds it: store, ledger, privacy,
/// incidents, and for [`Wiring::Triage`] the gateway, rules, intel and triage.
pub async fn wire(data_dir: &Path, config: &rempart_config::Config, wiring: Wiring) -> anyhow::Result<AppState> {
    let sqlite = instance::open_store(data_dir, config).await?;
    let ledger = instance::open_ledger(data_dir, config, sqlite.clone()).await?;
    let privacy = instance::privacy(config, &ledger, sqlite.clone())?;
    let incidents = instance::incidents(config, &ledger, sqlite.clone()).await?;
    let mut state = AppState::new(
        sqlite.clone() as Arc<dyn rempart_store::Store>,
        ledger.clone(),
        rempart_ingest::decode::DecodeOptions::default(),
    );
    let Wiring::Triage(rules) = wiring else {
        state.privacy = Some(privacy);
        state.incidents = Some(incidents);
        return Ok(state);
    };
    if !config.gateway.routes.is_empty() {
        state.gateway = Some(
            rempart_gateway::Gateway::new(config.gateway.clone(), Some(privacy.clone()), ledger.clone())
                .context("cannot start the gateway")?,
        );
    }
    state.privacy = Some(privacy);
    if rules.is_some() {
        state.rules = rempart_server::ActiveRules::new(rules);
    } else if !config.detection.rules.is_empty() {
        let (rules, _) = crate::detect::load_rules(&config.detection.rules, config.detection.attack.as_deref())?;
        state.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)));
    }
    let intel = rempart_server::intel::load(&*sqlite).await?;
    state.intel.replace(Arc::new(intel));
    let attack = config
        .detection
        .attack
        .as_deref()
        .map(crate::detect::load_attack)
        .transpose()?
        .map(Arc::new);
    state.triage = Some(rempart_server::triage::Triage::new(
        state.triage_parts(),
        incidents.clone(),
        attack,
        config.triage.clone(),
    ));
    state.incidents = Some(incidents);
    Ok(state)
}

fn service(state: &AppState) -> anyhow::Result<&Incidents> {
    state.incidents.as_ref().context("no incident service")
}

pub async fn run(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: Option<IncidentsCommand>,
    json_out: bool,
) -> anyhow::Result<()> {
    let wiring = match command {
        Some(IncidentsCommand::Triage { .. }) => Wiring::Triage(None),
        _ => Wiring::Records,
    };
    let regulatory = matches!(
        command,
        Some(IncidentsCommand::Assess { .. } | IncidentsCommand::Submitted { .. } | IncidentsCommand::Report { .. })
    );
    let mut state = wire(data_dir, config, wiring).await?;
    if regulatory {
        let sqlite = instance::open_store(data_dir, config).await?;
        state.response = Some(instance::response(
            config,
            &state.ledger,
            sqlite,
            service(&state)?.clone(),
            state.metrics.clone(),
        )?);
    }
    let result = dispatch(&state, data_dir, config, command, json_out).await;
    if let Some(g) = &state.gateway {
        g.close().await;
    }
    state.ledger.close().await;
    result
}

async fn dispatch(
    state: &AppState,
    data_dir: &Path,
    config: &rempart_config::Config,
    command: Option<IncidentsCommand>,
    json_out: bool,
) -> anyhow::Result<()> {
    let actor = instance::cli_actor();
    let incidents = service(state)?;
    let mut out = crate::out::stdout();
    let command = command.unwrap_or(IncidentsCommand::List {
        status: Vec::new(),
        since: None,
        limit: 50,
    });
    match command {
        IncidentsCommand::List { status, since, limit } => {
            let list = incidents
                .store()
                .incidents_list(&IncidentQuery {
                    status,
                    since,
                    limit: Some(limit),
                    ..IncidentQuery::default()
                })
                .await?;
            if json_out {
                for i in &list {
                    writeln!(out, "{}", serde_json::to_string(i)?)?;
                }
            } else {
                print_list(&mut out, &list)?;
            }
        }
        IncidentsCommand::Show { id, alerts } => {
            let incident = incidents.get(id).await?;
            let alerts = incidents.store().incident_alerts(id, alerts.max(1)).await?;
            let mut verdicts = incidents.store().verdicts_of(id).await?;
            incident_api::reveal_verdicts(state, &actor, &mut verdicts)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let (_, deadlines) = regulatory_of(data_dir, config, id).await?;
            if json_out {
                writeln!(
                    out,
                    "{}",
                    json!({"incident": incident, "alerts": alerts, "verdicts": verdicts, "deadlines": deadlines})
                )?;
            } else {
                print_incident(&mut out, &incident)?;
                if !deadlines.is_empty() {
                    writeln!(out, "\nreporting deadlines:")?;
                    for d in &deadlines {
                        writeln!(
                            out,
                            "  {:<20} due {:.0}{}  {}",
                            d.report.as_str(),
                            d.due,
                            if d.provisional { "*" } else { " " },
                            d.state.as_str()
                        )?;
                    }
                }
                writeln!(out, "\nalerts ({} of {}):", alerts.len(), incident.alert_count)?;
                for a in &alerts {
                    writeln!(
                        out,
                        "  {}  {:<13} {}  [{}]",
                        a.time,
                        a.level.as_deref().unwrap_or("-"),
                        a.rule_title,
                        a.id
                    )?;
                }
                for v in &verdicts {
                    writeln!(out)?;
                    print_verdict(&mut out, v)?;
                }
            }
        }
        IncidentsCommand::Triage { id } => {
            let triage = state.triage.as_ref().context("no triage service")?;
            let verdict = triage.triage(id, &actor).await?;
            let mut one = [verdict];
            incident_api::reveal_verdicts(state, &actor, &mut one)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json_out {
                writeln!(out, "{}", serde_json::to_string(&one[0])?)?;
            } else {
                print_verdict(&mut out, &one[0])?;
            }
        }
        IncidentsCommand::Status { id, status, reason } => {
            let i = incidents.update(id, Some(status), None, &actor, &reason).await?;
            report(&mut out, &i, json_out)?;
        }
        IncidentsCommand::Assign { id, owner, reason } => {
            let i = incidents.update(id, None, Some(owner), &actor, &reason).await?;
            report(&mut out, &i, json_out)?;
        }
        IncidentsCommand::Split { id, alerts, reason } => {
            let (kept, split) = incidents.split(id, &alerts, &actor, &reason).await?;
            if json_out {
                writeln!(out, "{}", json!({"incident": kept, "split": split}))?;
            } else {
                writeln!(out, "{} alerts moved to new incident {}", alerts.len(), split.id)?;
                writeln!(out, "{} keeps {} alerts", kept.id, kept.alert_count)?;
            }
        }
        IncidentsCommand::Feedback {
            verdict,
            agree,
            disagree: _,
            classification,
            reason,
        } => {
            let v = incidents
                .store()
                .verdict_get(verdict)
                .await?
                .with_context(|| format!("no verdict {verdict}"))?;
            let f = incident_api::record_feedback(state, incidents, &v, &actor, agree, classification, &reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json_out {
                writeln!(out, "{}", serde_json::to_string(&f)?)?;
            } else {
                writeln!(
                    out,
                    "recorded: {} the {} verdict ({})",
                    if f.agrees { "agrees with" } else { "overrides" },
                    v.classification,
                    f.classification
                )?;
            }
        }
        IncidentsCommand::Stats => {
            let stats = incident_api::agreement(incidents)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        }
        IncidentsCommand::Regulatory { id } => {
            print_regulatory(&mut out, regulatory_of(data_dir, config, id).await?, id, json_out)?;
        }
        IncidentsCommand::Assess {
            id,
            aware_at,
            nis2_significant,
            trust_services,
            personal_data_breach,
            breach_aware_at,
            dora,
        } => {
            let response = state.response.as_ref().context("no response service")?;
            let dora = dora
                .map(|f| {
                    let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read `{}`", f.display()))?;
                    serde_json::from_str::<rempart_respond::clocks::DoraCriteria>(&text)
                        .with_context(|| format!("`{}` is not DORA criteria", f.display()))
                })
                .transpose()?;
            let change = rempart_server::respond::AssessmentChange {
                aware_at,
                nis2_significant,
                affects_trust_services: trust_services,
                personal_data_breach,
                breach_aware_at,
                dora,
            };
            response.assess(id, change, &actor).await?;
            print_regulatory(&mut out, response.deadlines(id).await?, id, json_out)?;
        }
        IncidentsCommand::Submitted {
            id,
            report,
            at,
            reference,
        } => {
            let response = state.response.as_ref().context("no response service")?;
            response.submitted(id, report, at, &reference, &actor).await?;
            print_regulatory(&mut out, response.deadlines(id).await?, id, json_out)?;
        }
        IncidentsCommand::Report {
            id,
            report,
            html,
            out: file,
        } => {
            let response = state.response.as_ref().context("no response service")?;
            let text = match (report, html) {
                (Some(r), _) => serde_json::to_string_pretty(&response.report_draft(id, r).await?)? + "\n",
                (None, _) => response.report_html(id).await?,
            };
            match file {
                Some(f) => std::fs::write(&f, text).with_context(|| format!("cannot write `{}`", f.display()))?,
                None => out.write_all(text.as_bytes())?,
            }
        }
        IncidentsCommand::Deadlines => {
            let all = all_deadlines(data_dir, config).await?;
            for (incident, d) in &all {
                if json_out {
                    let mut v = serde_json::to_value(d)?;
                    v["incident"] = json!(incident);
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<20} due {:.0}{}  {:<9} {}",
                        incident,
                        d.report.as_str(),
                        d.due,
                        if d.provisional { "*" } else { " " },
                        d.state.as_str(),
                        d.basis
                    )?;
                }
            }
            if all.is_empty() && !json_out {
                writeln!(
                    out,
                    "no reporting deadlines: assess incidents with `rempart incidents assess`"
                )?;
            }
        }
    }
    Ok(())
}

/// An incident's stored regulatory assessment and the deadlines it sets now, read from the
/// store without the response service (so reading needs no connector secrets).
async fn regulatory_of(
    data_dir: &Path,
    config: &rempart_config::Config,
    id: EventId,
) -> anyhow::Result<(
    Option<rempart_respond::clocks::Assessment>,
    Vec<rempart_respond::clocks::Deadline>,
)> {
    let store = instance::open_store(data_dir, config).await?;
    let Some(body) = rempart_store::ResponseStore::assessment_get(&*store, id).await? else {
        return Ok((None, Vec::new()));
    };
    let a: rempart_respond::clocks::Assessment =
        serde_json::from_value(body).context("the stored regulatory assessment does not read")?;
    let d = rempart_respond::clocks::deadlines(&config.regulatory, &a, jiff::Timestamp::now());
    Ok((Some(a), d))
}

/// Every incident's deadlines, soonest first, from the store.
async fn all_deadlines(
    data_dir: &Path,
    config: &rempart_config::Config,
) -> anyhow::Result<Vec<(EventId, rempart_respond::clocks::Deadline)>> {
    let store = instance::open_store(data_dir, config).await?;
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for (incident, body) in rempart_store::ResponseStore::assessments_all(&*store).await? {
        let a: rempart_respond::clocks::Assessment = serde_json::from_value(body)
            .with_context(|| format!("the regulatory assessment of incident {incident} does not read"))?;
        out.extend(
            rempart_respond::clocks::deadlines(&config.regulatory, &a, now)
                .into_iter()
                .map(|d| (incident, d)),
        );
    }
    out.sort_by_key(|(_, d)| d.due);
    Ok(out)
}

fn print_regulatory(
    out: &mut impl Write,
    (assessment, deadlines): (
        Option<rempart_respond::clocks::Assessment>,
        Vec<rempart_respond::clocks::Deadline>,
    ),
    id: EventId,
    json_out: bool,
) -> anyhow::Result<()> {
    let dora = assessment
        .as_ref()
        .and_then(|a| a.dora.as_ref())
        .map(rempart_respond::clocks::dora_major);
    if json_out {
        writeln!(
            out,
            "{}",
            json!({"incident": id, "assessment": assessment, "dora": dora, "deadlines": deadlines})
        )?;
        return Ok(());
    }
    let Some(a) = assessment else {
        writeln!(
            out,
            "incident {id}: no regulatory assessment yet (`rempart incidents assess {id} …`)"
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "incident {id}: aware {:.0}  NIS2 significant: {}  personal data breach: {}",
        a.aware_at, a.nis2_significant, a.personal_data_breach
    )?;
    if let Some(d) = dora {
        writeln!(
            out,
            "DORA: {} ({}; criteria met: {})",
            if d.major { "major" } else { "not major" },
            d.reason,
            if d.criteria_met.is_empty() {
                "none".to_owned()
            } else {
                d.criteria_met.join(", ")
            }
        )?;
    }
    if deadlines.is_empty() {
        writeln!(out, "no report owed under the regimes configured in [regulatory]")?;
    }
    for d in &deadlines {
        writeln!(
            out,
            "  {:<20} due {:.0}{}  {:<9}{}  {}",
            d.report.as_str(),
            d.due,
            if d.provisional { "*" } else { " " },
            d.state.as_str(),
            d.submitted.map(|s| format!(" sent {s:.0}")).unwrap_or_default(),
            d.basis
        )?;
    }
    if deadlines.iter().any(|d| d.provisional) {
        writeln!(
            out,
            "  * provisional: counted from an earlier report's deadline until that report is recorded as sent"
        )?;
    }
    Ok(())
}

fn report(out: &mut impl Write, i: &Incident, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        writeln!(out, "{}", serde_json::to_string(i)?)?;
    } else {
        writeln!(
            out,
            "{}  {}  owner {}",
            i.id,
            i.status,
            i.owner.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

fn triage_label(i: &Incident) -> String {
    match &i.triage {
        None => "-".into(),
        Some(t) => {
            let mut s = format!("{} ({})", t.classification, t.mode.as_str());
            if t.stale {
                s.push_str(" stale");
            }
            if t.flags.iter().any(|f| f == "prompt_injection_suspected") {
                s.push_str(" INJECTION?");
            }
            s
        }
    }
}

fn print_list(out: &mut impl Write, list: &[Incident]) -> anyhow::Result<()> {
    if list.is_empty() {
        writeln!(out, "no incidents")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<14} {:<13} {:>5} {:>6}  {:<20}  {:<28}  TITLE",
        "ID", "STATUS", "SEVERITY", "SCORE", "ALERTS", "LAST SEEN", "TRIAGE"
    )?;
    for i in list {
        let last = i.last_seen.strftime("%Y-%m-%d %H:%M:%S").to_string();
        writeln!(
            out,
            "{:<36}  {:<14} {:<13} {:>5} {:>6}  {:<20}  {:<28}  {}",
            i.id.to_string(),
            i.status.as_str(),
            i.severity.as_str(),
            i.score,
            i.alert_count,
            last,
            triage_label(i),
            i.title
        )?;
    }
    Ok(())
}

fn print_incident(out: &mut impl Write, i: &Incident) -> anyhow::Result<()> {
    writeln!(out, "{}  {}", i.id, i.title)?;
    writeln!(
        out,
        "status {}  severity {} (score {})  owner {}  triage {}",
        i.status,
        i.severity,
        i.score,
        i.owner.as_deref().unwrap_or("-"),
        triage_label(i)
    )?;
    writeln!(
        out,
        "seen {} to {}, {} alerts",
        i.first_seen, i.last_seen, i.alert_count
    )?;
    if let Some(m) = i.merged_into {
        writeln!(out, "merged into {m}")?;
    }
    writeln!(out, "rules: {}", i.rules.join("; "))?;
    writeln!(out, "tactics: {}", i.tactics.join(", "))?;
    writeln!(out, "techniques: {}", i.techniques.join(", "))?;
    let entities: Vec<String> = i.entities.iter().map(ToString::to_string).collect();
    writeln!(out, "entities: {}", entities.join(", "))?;
    if !i.assets.is_empty() {
        writeln!(out, "assets: {}", i.assets.join(", "))?;
    }
    writeln!(out, "history:")?;
    for h in &i.history {
        writeln!(out, "  {}  {:<12} {:<10} {}", h.time, h.actor, h.what, h.reason)?;
    }
    Ok(())
}

fn print_verdict(out: &mut impl Write, v: &Verdict) -> anyhow::Result<()> {
    writeln!(
        out,
        "verdict {}  {} ({:.0}% sure)  severity {}  by {}",
        v.id,
        v.classification,
        v.confidence * 100.0,
        v.severity,
        match (&v.provider, &v.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            _ => "degraded triage (no model)".to_owned(),
        }
    )?;
    if !v.flags.is_empty() {
        writeln!(out, "  flags: {}", v.flags.join(", "))?;
    }
    writeln!(out, "  {}", v.summary)?;
    for t in &v.timeline {
        writeln!(out, "  - {}  {}", t.time, t.description)?;
    }
    for a in &v.recommended_actions {
        writeln!(out, "  → {} {}: {}", a.action, a.target, a.reason)?;
    }
    for q in &v.queries {
        writeln!(out, "  ran {} {} → {}", q.tool, q.arguments, q.outcome)?;
    }
    Ok(())
}

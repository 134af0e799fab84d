//! `rempart demo`: a realistic intrusion, end to end, on a fresh instance.
//!
//! The scenario is written by this module (no third-party data): a finance workstation
//! `WS-FIN-07` receives a phishing e-mail, the attachment runs an encoded PowerShell stager,
//! the attacker dumps LSASS, moves laterally to file server `SRV-FILE-01` with PsExec, and
//! exfiltrates an archive over HTTPS. Around it runs ordinary benign activity on Windows,
//! Linux, the firewall and the network sensors. Files are written in each source's native
//! format and ingested through the same path as `rempart ingest`.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use rempart_config::Config;
use rempart_ingest::decode::DecodeOptions;
use rempart_store::{EventQuery, FieldFilter, Role, Store};
use serde_json::{Value, json};

use crate::cli::DemoArgs;
use crate::{ingest, instance, serve};

const WS: &str = "WS-FIN-07.corp.example.eu";
const WS_IP: &str = "10.20.7.41";
const SRV: &str = "SRV-FILE-01.corp.example.eu";
const SRV_IP: &str = "10.20.1.12";
const DC: &str = "DC-01.corp.example.eu";
const C2: &str = "185.225.17.94";
const EXFIL: &str = "45.137.21.9";

pub async fn run(data_dir: Option<PathBuf>, args: DemoArgs, json_out: bool) -> anyhow::Result<()> {
    let dir = data_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("rempart-demo-{}", uuid::Uuid::now_v7().simple())));
    if instance::db_path(&dir).exists() {
        anyhow::bail!(
            "`{}` already holds an instance: the demo needs a fresh one (omit --data-dir)",
            dir.display()
        );
    }
    let scenario = dir.join("scenario");
    let start = Timestamp::now() - SignedDuration::from_hours(3);
    write_scenario(&scenario, start).context("cannot write the scenario")?;
    let config = demo_config(&dir).context("cannot write the demo's playbook")?;
    let store = instance::open_store(&dir, &config).await?;
    let ledger = instance::open_ledger(&dir, &config, store.clone()).await?;
    let (rules, report) = rempart_detect::RuleSet::load(RULES.iter().copied());
    anyhow::ensure!(
        report.rejected.is_empty(),
        "the demo's own rules did not load: {:?}",
        report.rejected
    );
    let rules = std::sync::Arc::new(rules);
    let incidents = instance::incidents(&config, &ledger, store.clone()).await?;
    let summary = ingest::ingest_paths(
        &*store,
        &ledger,
        std::slice::from_ref(&scenario),
        DecodeOptions::default(),
        ingest::Detection {
            rules: Some(rules.clone()),
            intel: None,
            incidents: Some(&incidents),
            anomaly: None,
        },
        false,
    )
    .await?;
    let stages = attack_chain(&*store).await?;
    let detections = detect(&*store).await?;
    let triaged = triage_all(&store, &ledger, &incidents, &config).await?;
    let response = respond(&store, &ledger, &incidents, &config, &triaged).await?;
    let (admin, secret) = rempart_server::auth::create_token(
        &*store,
        &ledger,
        rempart_server::auth::By {
            actor: "demo",
            person: "demo",
        },
        rempart_server::auth::NewToken {
            name: "demo",
            role: Role::Admin,
            owner: None,
        },
    )
    .await?;
    ledger.checkpoint().await?;
    let verified = rempart_audit::Ledger::verify(ledger.store(), ledger.trusted(), Vec::new(), None)
        .await?
        .map_err(|p| anyhow::anyhow!("the demo's own ledger does not verify: {p}"))?;

    let mut out = crate::out::stdout();
    if json_out {
        let stage_json: Vec<Value> = stages
            .iter()
            .map(|(name, lines)| json!({"stage": name, "events": lines}))
            .collect();
        writeln!(
            out,
            "{}",
            json!({"data_dir": dir, "ingest": summary, "attack_chain": stage_json, "detections": detections, "incidents": triaged.iter().map(|(i, v)| json!({"incident": i, "verdict": v})).collect::<Vec<_>>(), "response": {"dry_run": response.dry_run, "runs": response.runs, "approvals": response.approvals, "deadlines": response.deadlines}, "admin_token": secret, "audit": verified})
        )?;
    } else {
        writeln!(out, "Rempart demo: a fresh instance in {}\n", dir.display())?;
        writeln!(
            out,
            "1. Ingest: the scenario in {} (Windows JSON, syslog, CEF, Zeek TSV, Suricata EVE)",
            scenario.display()
        )?;
        ingest::print_summary(&mut out, &summary)?;
        writeln!(out, "\n2. The intrusion, found with queries over normalized fields:")?;
        for (name, lines) in &stages {
            writeln!(out, "  {name}")?;
            for l in lines {
                writeln!(out, "      {l}")?;
            }
        }
        writeln!(
            out,
            "\n3. Detection: the demo's own Sigma rules over the stored events:"
        )?;
        for d in &detections {
            writeln!(
                out,
                "      {}  {:<8} {:<46} {}",
                d["time"].as_str().unwrap_or("-"),
                d["level"].as_str().unwrap_or("-"),
                d["rule"].as_str().unwrap_or("-"),
                d["host"].as_str().unwrap_or("-")
            )?;
        }
        writeln!(
            out,
            "\n4. Incidents: alerts grouped by shared hosts, accounts and logon sessions, then triaged{}:",
            if triaged
                .iter()
                .any(|(_, v)| v.mode == rempart_model::TriageMode::Degraded)
            {
                " (degraded mode: no model is configured, so the verdict comes from rule levels, intelligence and correlation)"
            } else {
                ""
            }
        )?;
        for (i, v) in &triaged {
            writeln!(
                out,
                "   {}  {} alerts, severity {} (score {}): {}",
                i.id, i.alert_count, i.severity, i.score, i.title
            )?;
            writeln!(out, "      tactics: {}", i.tactics.join(" → "))?;
            writeln!(
                out,
                "      verdict: {} ({:.0}% sure, {})",
                v.classification,
                v.confidence * 100.0,
                v.mode.as_str()
            )?;
            for a in v.recommended_actions.iter().take(6) {
                writeln!(out, "      → {} {}", a.action, a.target)?;
            }
        }
        writeln!(out, "   rempart --data-dir {} incidents show ID", dir.display())?;
        print_response(&mut out, &dir, &response)?;
        writeln!(
            out,
            "\n7. API: an admin token was created for you ({}): the secret is shown once.",
            admin.id
        )?;
        writeln!(out, "   export REMPART_TOKEN={secret}")?;
        writeln!(
            out,
            "\n8. Audit: every alert, incident, verdict, playbook step and the token above are in the signed ledger: {} records, verified under {}",
            verified.records,
            ledger.verifier().vkey()
        )?;
        writeln!(out, "   rempart --data-dir {} audit verify", dir.display())?;
    }
    if args.no_serve {
        ledger.close().await;
        return Ok(());
    }
    let token_hash = admin.hash.clone();
    let banner = |addr: SocketAddr, state: &rempart_server::AppState| {
        let mut s = String::new();
        match state.console.sessions.sign_in_code(&token_hash) {
            Ok(code) => {
                let _ = writeln!(s, "\nThe console: http://{addr}/");
                let _ = writeln!(
                    s,
                    "   Sign in once with this link (valid {} minutes, one use): http://{addr}/sign-in/link?code={code}",
                    rempart_server::console::session::CODE_LIFETIME.as_secs() / 60
                );
                let _ = writeln!(s, "   or paste the admin token above on http://{addr}/sign-in");
            }
            Err(e) => {
                let _ = writeln!(s, "\nThe console: http://{addr}/sign-in (no one-time link: {e})");
            }
        }
        let _ = writeln!(s, "\nThe API, until Ctrl-C. Try:");
        let _ = writeln!(
            s,
            "   curl -H \"Authorization: Bearer $REMPART_TOKEN\" 'http://{addr}/api/v1/events?filter=host={WS}&q=lsass'"
        );
        let _ = writeln!(
            s,
            "   curl -H \"Authorization: Bearer $REMPART_TOKEN\" http://{addr}/openapi.json"
        );
        let _ = crate::out::stdout().write_all(s.as_bytes());
        let _ = crate::out::stdout().flush();
    };
    let privacy = instance::privacy(&config, &ledger, store.clone())?;
    serve::serve_store(
        store,
        ledger,
        privacy,
        &dir,
        &config,
        serve::Process {
            listen: args.listen,
            role: rempart_server::cluster::Role::All,
        },
        Some(&banner),
    )
    .await
}

/// The demo's playbook: page the on-call team, then isolate hosts and disable accounts, each
/// only after approval. Its connectors describe what they would send (`dry_run`): the demo
/// reaches no outside system.
const PLAYBOOK: &str = r#"id: contain-intrusion
name: Contain an intrusion
description: Page the on-call team, then isolate the hosts and disable the accounts, each after approval.
trigger:
  on: [triaged]
  when: { severity: high, classification: true_positive }
limits: { max_targets: 5, per_hour: { isolate_host: 5, disable_account: 5 } }
steps:
  - id: page
    action: notify
    connector: soc-chat
    with: { message: "{{ incident.severity }} incident {{ incident.id }}: {{ incident.title }} (hosts {{ incident.hosts }})" }
  - id: isolate
    action: isolate_host
    connector: edr
    approval: { role: approver, approvers: 1, timeout: 4h, on_timeout: reject }
    rollback: true
  - id: disable
    action: disable_account
    connector: directory
    approval: { role: approver, approvers: 2, timeout: 4h, on_timeout: reject }
  - id: escalate
    action: notify
    connector: soc-chat
    when: { outcome: { isolate: [rejected, timed_out] } }
    with: { message: "isolation of {{ incident.hosts }} refused or unanswered: escalate to the CISO" }
"#;

/// The demo's configuration: defaults, plus its rules (run live by the served instance), its
/// playbook, connectors in dry-run mode, and the
/// reporting regimes of an essential entity that is also a financial entity.
fn demo_config(dir: &Path) -> anyhow::Result<Config> {
    let playbooks = dir.join("playbooks");
    std::fs::create_dir_all(&playbooks)?;
    std::fs::write(playbooks.join("contain-intrusion.yml"), PLAYBOOK)?;
    // The served instance keeps running the demo's rules on whatever is sent to it.
    let rules = dir.join("demo-rules");
    std::fs::create_dir_all(&rules)?;
    for (name, text) in RULES {
        let file = Path::new(name).file_name().unwrap_or(std::ffi::OsStr::new(name));
        std::fs::write(rules.join(file), text)?;
    }
    let text = format!(
        r#"version = 1
[detection]
rules = [{rules:?}]
[respond]
playbooks = [{playbooks:?}]
[connectors.soc-chat]
type = "slack"
url = "https://hooks.slack.example/services/T000/B000/demo"
dry_run = true
[connectors.edr]
type = "edr"
url = "https://edr.corp.example.eu/api"
dry_run = true
[connectors.directory]
type = "directory"
url = "https://directory.corp.example.eu/api"
dry_run = true
[regulatory]
nis2 = "essential"
dora = true
gdpr = true
organisation = "Example Bank SA"
member_state = "FR"
"#,
        playbooks = playbooks.display().to_string(),
        rules = rules.display().to_string()
    );
    let path = dir.join("rempart.toml");
    std::fs::write(&path, &text)?;
    Ok(Config::load(&path)?)
}

/// What the demo's response part produced.
struct Responded {
    dry_run: Vec<rempart_respond::Run>,
    runs: Vec<rempart_respond::Run>,
    approvals: Vec<rempart_respond::approval::Approval>,
    deadlines: Vec<(rempart_model::EventId, rempart_respond::clocks::Deadline)>,
}

/// Dry-runs the playbook, lets the verdicts trigger it for real (the page goes out as a
/// description; isolation waits for approval), and opens the reporting clocks.
async fn respond(
    store: &std::sync::Arc<dyn rempart_store::Backend>,
    ledger: &rempart_audit::Ledger,
    incidents: &rempart_server::incidents::Incidents,
    config: &Config,
    triaged: &[(rempart_model::Incident, rempart_model::Verdict)],
) -> anyhow::Result<Responded> {
    let response = instance::response(config, ledger, store.clone(), incidents.clone(), Default::default())?;
    let mut out = Responded {
        dry_run: Vec::new(),
        runs: Vec::new(),
        approvals: Vec::new(),
        deadlines: Vec::new(),
    };
    for (i, _) in triaged {
        out.dry_run.push(
            response
                .run_playbook(
                    "contain-intrusion",
                    i.id,
                    &rempart_server::respond::Voter::person("demo", rempart_store::Role::Admin),
                    true,
                )
                .await?,
        );
        out.runs.extend(
            response
                .on_incident(rempart_server::incidents::IncidentEvent::Triaged(i.id))
                .await?,
        );
        // The intrusion is significant (NIS2), a personal data breach (an employee's
        // credentials were stolen) and, under DORA, major: critical services were affected
        // through malicious unauthorised access.
        response
            .assess(
                i.id,
                rempart_server::respond::AssessmentChange {
                    nis2_significant: Some(true),
                    personal_data_breach: Some(true),
                    dora: Some(rempart_respond::clocks::DoraCriteria {
                        critical_services_affected: true,
                        malicious_unauthorised_access: true,
                        data_losses: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                "demo",
            )
            .await?;
    }
    out.approvals = response
        .approvals(Some(rempart_respond::approval::ApprovalStatus::Pending), None, 100)
        .await?;
    out.deadlines = response.all_deadlines(Timestamp::now()).await?;
    Ok(out)
}

fn print_response(out: &mut impl Write, dir: &Path, r: &Responded) -> anyhow::Result<()> {
    writeln!(
        out,
        "\n5. Response: playbook `contain-intrusion` ({}), its connectors in dry-run mode:",
        dir.join("playbooks/contain-intrusion.yml").display()
    )?;
    for run in &r.dry_run {
        writeln!(out, "   dry run on incident {}: what it would do", run.incident)?;
        for a in &run.actions {
            let gate = a
                .gate
                .as_ref()
                .map(|g| format!(" — after {} × {} approves", g.rule.approvers, g.rule.role))
                .unwrap_or_default();
            writeln!(
                out,
                "      {:<8} {:<16} {:<30} {}{gate}",
                a.step,
                a.action.as_str(),
                a.target.as_deref().unwrap_or("-"),
                a.detail
            )?;
        }
    }
    for run in &r.runs {
        writeln!(
            out,
            "   the verdict triggered it: run {} is {}",
            run.id,
            run.status.as_str()
        )?;
    }
    for a in &r.approvals {
        writeln!(
            out,
            "   approval {} waits: {} × {} until {:.0} to {} {}",
            a.id,
            a.rule.approvers,
            a.rule.role,
            a.deadline,
            a.actions.first().map_or("act", |p| p.action.as_str()),
            a.actions
                .iter()
                .filter_map(|p| p.target.as_deref())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    writeln!(
        out,
        "   rempart --data-dir {0} --config {0}/rempart.toml approvals list",
        dir.display()
    )?;
    writeln!(
        out,
        "\n6. Reporting clocks (NIS2 essential entity, DORA financial entity, GDPR), from awareness at detection:"
    )?;
    for (incident, d) in &r.deadlines {
        writeln!(
            out,
            "   {:<20} due {:.0}{}  {:<9} incident {incident}",
            d.report.as_str(),
            d.due,
            if d.provisional { "*" } else { " " },
            d.state.as_str()
        )?;
    }
    writeln!(
        out,
        "   * counted from an earlier report's deadline until that report is recorded as sent"
    )?;
    writeln!(
        out,
        "   rempart --data-dir {0} --config {0}/rempart.toml incidents report ID --report nis2_early_warning",
        dir.display()
    )?;
    Ok(())
}

/// Triages every open incident (a model if the configuration routes one, else degraded).
async fn triage_all(
    store: &std::sync::Arc<dyn rempart_store::Backend>,
    ledger: &rempart_audit::Ledger,
    incidents: &rempart_server::incidents::Incidents,
    config: &Config,
) -> anyhow::Result<Vec<(rempart_model::Incident, rempart_model::Verdict)>> {
    let state = rempart_server::AppState::new(store.clone(), ledger.clone(), DecodeOptions::default());
    let triage =
        rempart_server::triage::Triage::new(state.triage_parts(), incidents.clone(), None, config.triage.clone());
    let open = incidents
        .store()
        .incidents_list(&rempart_store::IncidentQuery::open())
        .await?;
    let mut out = Vec::new();
    for i in open {
        let verdict = triage.triage(i.id, "demo").await?;
        out.push((incidents.get(i.id).await?, verdict));
    }
    Ok(out)
}

/// The stages of the intrusion and the events each query finds, as printable lines.
async fn attack_chain(store: &dyn Store) -> anyhow::Result<Vec<(&'static str, Vec<String>)>> {
    let stages: [(&str, &[&str], Option<&str>); 5] = [
        (
            "initial access: Office spawned by Outlook",
            &["parent_process=C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"],
            None,
        ),
        (
            "execution: encoded PowerShell",
            &["process=C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"],
            Some("-enc"),
        ),
        (
            "credential access: LSASS dumped",
            &["host=WS-FIN-07.corp.example.eu"],
            Some("lsass"),
        ),
        (
            "lateral movement: PsExec to the file server",
            &["host=SRV-FILE-01.corp.example.eu"],
            Some("PSEXESVC"),
        ),
        (
            "exfiltration: large upload to an unknown host",
            &["dst_ip=45.137.21.9"],
            None,
        ),
    ];
    let mut result = Vec::new();
    for (name, filters, text) in stages {
        let q = EventQuery {
            filters: filters
                .iter()
                .map(|f| FieldFilter::parse(f))
                .collect::<Result<_, _>>()?,
            text: text.map(str::to_owned),
            limit: Some(5),
            ..EventQuery::default()
        };
        let mut events = store.query_events(&q).await?;
        events.reverse();
        let lines = events
            .iter()
            .map(|e| {
                let n = &e.normalized;
                let what = n
                    .command_line
                    .clone()
                    .or_else(|| n.message.clone())
                    .or_else(|| {
                        n.dst_ip.map(|ip| {
                            format!(
                                "{} -> {ip}:{}",
                                n.src_ip.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                                n.dst_port.unwrap_or(0)
                            )
                        })
                    })
                    .or_else(|| {
                        n.event_id
                            .map(|id| format!("{} event {id}", n.channel.as_deref().unwrap_or("Windows")))
                    })
                    .unwrap_or_else(|| "-".to_owned());
                format!(
                    "{}  {:<12} {:<28} {}",
                    e.time.strftime("%H:%M:%S"),
                    e.format.as_str(),
                    n.host.as_deref().unwrap_or("network sensor"),
                    what.chars().take(90).collect::<String>()
                )
            })
            .collect();
        result.push((name, lines));
    }
    Ok(result)
}

/// Sigma rules the demo ships (written for this scenario; SigmaHQ's set works the same way
/// with `rempart hunt --rules`).
const RULES: &[(&str, &str)] = &[
    (
        "demo/office_child_powershell.yml",
        r"
title: Office Application Spawning PowerShell
id: 6b0e5c1e-7c4f-4f51-9a55-2a1d3c5d0a01
level: high
tags: [attack.execution, attack.t1059.001]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        ParentImage|endswith: ['\WINWORD.EXE', '\EXCEL.EXE', '\OUTLOOK.EXE']
        Image|endswith: '\powershell.exe'
    condition: selection
",
    ),
    (
        "demo/encoded_powershell.yml",
        r"
title: Encoded PowerShell Command Line
id: 6b0e5c1e-7c4f-4f51-9a55-2a1d3c5d0a02
level: medium
tags: [attack.execution, attack.t1027]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\powershell.exe'
        CommandLine|contains|windash: ' -enc '
    condition: selection
",
    ),
    (
        "demo/lsass_dump.yml",
        r"
title: LSASS Memory Dump with a Dumping Tool
id: 6b0e5c1e-7c4f-4f51-9a55-2a1d3c5d0a03
level: critical
tags: [attack.credential-access, attack.t1003.001]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        CommandLine|contains|all: [' -ma ', 'lsass']
    condition: selection
",
    ),
    (
        "demo/psexec_service.yml",
        r"
title: PsExec Service Installed
id: 6b0e5c1e-7c4f-4f51-9a55-2a1d3c5d0a04
level: high
tags: [attack.lateral-movement, attack.t1021.002]
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 7045
        ServiceName: PSEXESVC
    condition: selection
",
    ),
    (
        "demo/archive_with_password.yml",
        r"
title: Data Staged in a Password-Protected Archive
id: 6b0e5c1e-7c4f-4f51-9a55-2a1d3c5d0a05
level: high
tags: [attack.collection, attack.t1560.001]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        CommandLine|contains|all: ['7z', ' a ', ' -p']
    condition: selection
",
    ),
];

/// The alerts the demo's rules raised while the scenario was ingested, oldest first.
async fn detect(store: &dyn Store) -> anyhow::Result<Vec<Value>> {
    let mut alerts = store
        .query_alerts(&rempart_store::AlertQuery {
            limit: Some(1_000),
            ..Default::default()
        })
        .await?;
    // Oldest first; on one event, the most severe rule first (alert ids order alerts by their
    // events, not by the rules that matched one event).
    let rank = |level: Option<&str>| match level {
        Some("critical") => 4,
        Some("high") => 3,
        Some("medium") => 2,
        Some("low") => 1,
        _ => 0,
    };
    alerts.sort_by(|a, b| {
        (
            a.time,
            a.event,
            std::cmp::Reverse(rank(a.level.as_deref())),
            &a.rule_title,
        )
            .cmp(&(
                b.time,
                b.event,
                std::cmp::Reverse(rank(b.level.as_deref())),
                &b.rule_title,
            ))
    });
    Ok(alerts
        .iter()
        .map(|a| {
            json!({"time": a.time.strftime("%H:%M:%S").to_string(), "level": a.level, "rule": a.rule_title,
                   "rule_id": a.rule_id, "host": a.host, "event_id": a.event})
        })
        .collect())
}

/// A small deterministic generator, so the scenario is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

fn sysmon(time: Timestamp, host: &str, id: u64, data: Value) -> Value {
    json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
            "EventID": id, "Level": 4, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": host,
            "TimeCreated": {"#attributes": {"SystemTime": time.to_string()}}
        },
        "EventData": data
    }})
}

fn security(time: Timestamp, host: &str, id: u64, data: Value) -> Value {
    json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": id, "Level": 0, "Channel": "Security", "Computer": host,
            "TimeCreated": {"#attributes": {"SystemTime": time.to_string()}}
        },
        "EventData": data
    }})
}

fn process(image: &str, cmd: &str, parent: &str, parent_cmd: &str, user: &str, pid: u64, ppid: u64) -> Value {
    json!({"Image": image, "CommandLine": cmd, "ParentImage": parent, "ParentCommandLine": parent_cmd,
           "User": user, "ProcessId": pid, "ParentProcessId": ppid, "IntegrityLevel": "Medium"})
}

fn write_scenario(dir: &Path, start: Timestamp) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let at = |minutes: f64| start + SignedDuration::from_secs_f64(minutes * 60.0);
    let mut rng = Lcg(0x5eed_2026);
    let outlook = "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE";
    let word = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE";
    let ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";
    let user = "CORP\\m.dubois";

    // Windows: benign noise on the workstations and servers, then the intrusion.
    let mut windows: Vec<(Timestamp, Value)> = Vec::new();
    let benign = [
        (
            "C:\\Windows\\System32\\svchost.exe",
            "svchost.exe -k netsvcs -p",
            "C:\\Windows\\System32\\services.exe",
        ),
        (
            "C:\\Program Files\\Mozilla Firefox\\firefox.exe",
            "\"firefox.exe\" -contentproc",
            "C:\\Windows\\explorer.exe",
        ),
        (
            "C:\\Windows\\System32\\taskhostw.exe",
            "taskhostw.exe",
            "C:\\Windows\\System32\\svchost.exe",
        ),
        (
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
            "\"EXCEL.EXE\" /dde",
            "C:\\Windows\\explorer.exe",
        ),
        (
            "C:\\Windows\\System32\\conhost.exe",
            "conhost.exe 0xffffffff -ForceV1",
            "C:\\Windows\\System32\\cmd.exe",
        ),
    ];
    let hosts = ["WS-FIN-03.corp.example.eu", WS, "WS-HR-02.corp.example.eu", SRV];
    let users = ["CORP\\a.schmidt", "CORP\\m.dubois", "CORP\\l.rossi", "CORP\\svc_backup"];
    for i in 0..1200u64 {
        let t = at(rng.next(170) as f64 + rng.next(60) as f64 / 60.0);
        let host = hosts[rng.next(hosts.len() as u64) as usize];
        match rng.next(3) {
            0 => {
                let (img, cmd, parent) = benign[rng.next(benign.len() as u64) as usize];
                let u = users[rng.next(users.len() as u64) as usize];
                windows.push((
                    t,
                    sysmon(t, host, 1, process(img, cmd, parent, parent, u, 4000 + i, 700)),
                ));
            }
            1 => {
                let u = users[rng.next(users.len() as u64) as usize].trim_start_matches("CORP\\");
                windows.push((t, security(t, host, 4624, json!({"SubjectUserName": "-", "TargetUserName": u, "TargetDomainName": "CORP", "LogonType": 3, "IpAddress": format!("10.20.{}.{}", rng.next(8), 10 + rng.next(200)), "IpPort": "0", "AuthenticationPackageName": "Kerberos"}))));
            }
            _ => {
                let source = match host {
                    WS => WS_IP,
                    SRV => SRV_IP,
                    "WS-FIN-03.corp.example.eu" => "10.20.7.23",
                    _ => "10.20.4.18",
                };
                windows.push((t, sysmon(t, host, 3, json!({"Image": "C:\\Program Files\\Mozilla Firefox\\firefox.exe", "User": users[0], "Protocol": "tcp", "SourceIp": source, "SourcePort": 49_000 + rng.next(10_000), "DestinationIp": "151.101.2.132", "DestinationPort": 443}))));
            }
        }
    }
    let stager = "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA";
    let attack = [
        (
            60.0,
            sysmon(
                at(60.0),
                WS,
                1,
                process(
                    word,
                    "\"WINWORD.EXE\" /n \"C:\\Users\\m.dubois\\Downloads\\Facture_2026-11.docm\" /o \"\"",
                    outlook,
                    "\"OUTLOOK.EXE\"",
                    user,
                    6120,
                    5512,
                ),
            ),
        ),
        (
            61.0,
            sysmon(
                at(61.0),
                WS,
                1,
                process(ps, stager, word, "\"WINWORD.EXE\" /n", user, 6388, 6120),
            ),
        ),
        (
            61.1,
            sysmon(
                at(61.1),
                WS,
                3,
                json!({"Image": ps, "User": user, "Protocol": "tcp", "SourceIp": WS_IP, "SourcePort": 50_122, "DestinationIp": C2, "DestinationPort": 443}),
            ),
        ),
        (
            75.0,
            sysmon(
                at(75.0),
                WS,
                1,
                process(
                    "C:\\Users\\m.dubois\\AppData\\Local\\Temp\\pd64.exe",
                    "pd64.exe -accepteula -ma lsass.exe C:\\Users\\Public\\l.dmp",
                    ps,
                    stager,
                    user,
                    7010,
                    6388,
                ),
            ),
        ),
        (
            75.1,
            sysmon(
                at(75.1),
                WS,
                10,
                json!({"SourceImage": "C:\\Users\\m.dubois\\AppData\\Local\\Temp\\pd64.exe", "TargetImage": "C:\\Windows\\system32\\lsass.exe", "GrantedAccess": "0x1fffff", "SourceUser": user}),
            ),
        ),
        (
            90.0,
            security(
                at(90.0),
                SRV,
                4624,
                json!({"SubjectUserName": "-", "TargetUserName": "adm.dubois", "TargetDomainName": "CORP", "LogonType": 3, "IpAddress": WS_IP, "IpPort": "51234", "AuthenticationPackageName": "NTLM"}),
            ),
        ),
        (
            90.2,
            security(
                at(90.2),
                SRV,
                7045,
                json!({"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe", "ServiceType": "user mode service", "StartType": "demand start", "AccountName": "LocalSystem"}),
            ),
        ),
        (
            90.5,
            sysmon(
                at(90.5),
                SRV,
                1,
                process(
                    "C:\\Windows\\System32\\cmd.exe",
                    "cmd.exe /c \"C:\\Program Files\\7-Zip\\7z.exe\" a -pS3cr3t C:\\PerfLogs\\q4.7z \\\\SRV-FILE-01\\Finance\\*",
                    "C:\\Windows\\PSEXESVC.exe",
                    "C:\\Windows\\PSEXESVC.exe",
                    "CORP\\adm.dubois",
                    8120,
                    8002,
                ),
            ),
        ),
        (
            110.0,
            sysmon(
                at(110.0),
                SRV,
                3,
                json!({"Image": "C:\\Windows\\System32\\curl.exe", "User": "CORP\\adm.dubois", "Protocol": "tcp", "SourceIp": SRV_IP, "SourcePort": 52_001, "DestinationIp": EXFIL, "DestinationPort": 443}),
            ),
        ),
    ];
    windows.extend(attack.into_iter().map(|(m, v)| (at(m), v)));
    windows.push((at(5.0), security(at(5.0), DC, 4768, json!({"TargetUserName": "m.dubois", "TargetDomainName": "CORP", "IpAddress": "::ffff:10.20.7.41", "Status": "0x0"}))));
    windows.sort_by_key(|(t, _)| *t);
    let mut text = String::new();
    for (_, v) in &windows {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join("windows-events.ndjson"), text)?;

    // Linux: sshd and sudo on the web front end, in RFC 3164 as /var/log/auth.log holds it.
    let mut auth = String::new();
    for i in 0..300u64 {
        let t = at(rng.next(175) as f64);
        let stamp = t.strftime("%b %e %H:%M:%S");
        let line = match i % 3 {
            0 => format!(
                "{stamp} web-01 sshd[{}]: Accepted publickey for deploy from 10.20.2.{} port {} ssh2: ED25519 SHA256:q2v8",
                2000 + i,
                5 + rng.next(20),
                40_000 + rng.next(20_000)
            ),
            1 => format!(
                "{stamp} web-01 sudo: deploy : TTY=pts/0 ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/systemctl restart app"
            ),
            _ => format!(
                "{stamp} web-01 CRON[{}]: (root) CMD (/usr/local/bin/backup.sh)",
                3000 + i
            ),
        };
        auth.push_str(&line);
        auth.push('\n');
    }
    std::fs::write(dir.join("linux-auth.log"), auth)?;

    // Firewall: CEF over syslog, including the C2 and exfiltration flows.
    let mut fw = String::new();
    for i in 0..400u64 {
        let t = at(rng.next(175) as f64);
        fw.push_str(&format!(
            "<134>{} fw-edge-01 CEF:0|Stormshield|SNS|4.8|{}|Connection allowed|3|rt={} src=10.20.{}.{} spt={} dst=151.101.{}.{} dpt=443 proto=TCP act=allow\n",
            t.strftime("%b %e %H:%M:%S"),
            1000 + i % 5,
            t.as_millisecond(),
            rng.next(8),
            10 + rng.next(200),
            40_000 + rng.next(20_000),
            rng.next(4),
            rng.next(250)
        ));
    }
    for (m, src, dst, bytes) in [(61.1, WS_IP, C2, 4_210u64), (110.0, SRV_IP, EXFIL, 2_147_483_000)] {
        let t = at(m);
        fw.push_str(&format!(
            "<132>{} fw-edge-01 CEF:0|Stormshield|SNS|4.8|1005|Connection allowed to uncategorized host|6|rt={} src={src} spt=50122 dst={dst} dpt=443 proto=TCP out={bytes} act=allow\n",
            t.strftime("%b %e %H:%M:%S"),
            t.as_millisecond()
        ));
    }
    std::fs::write(dir.join("firewall-cef.log"), fw)?;

    // Zeek conn.log (TSV) on the core switch span.
    let mut conn = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n",
    );
    let mut flows: Vec<(Timestamp, String)> = (0..500u64)
        .map(|i| {
            let t = at(rng.next(175) as f64);
            (
                t,
                format!(
                    "{}\tC{:08x}\t10.20.{}.{}\t{}\t10.20.1.12\t445\ttcp\tsmb\t{:.3}\t{}\t{}\tSF",
                    epoch(t),
                    i,
                    rng.next(8),
                    10 + rng.next(200),
                    49_000 + rng.next(10_000),
                    rng.next(5000) as f64 / 1000.0,
                    rng.next(50_000),
                    rng.next(500_000)
                ),
            )
        })
        .collect();
    flows.push((
        at(110.0),
        format!(
            "{}\tCexfil001\t{SRV_IP}\t52001\t{EXFIL}\t443\ttcp\tssl\t1843.220\t2147483000\t18320\tSF",
            epoch(at(110.0))
        ),
    ));
    flows.sort_by_key(|(t, _)| *t);
    for (_, l) in flows {
        conn.push_str(&l);
        conn.push('\n');
    }
    std::fs::create_dir_all(dir.join("zeek"))?;
    std::fs::write(dir.join("zeek/conn.log"), conn)?;

    // Suricata EVE: TLS metadata and the alert on the C2 beacon.
    let mut eve = String::new();
    for i in 0..100u64 {
        let t = at(rng.next(175) as f64);
        eve.push_str(&json!({"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(), "flow_id": 1000 + i, "in_iface": "eth1", "event_type": "tls", "src_ip": format!("10.20.{}.{}", rng.next(8), 10 + rng.next(200)), "src_port": 50_000 + i, "dest_ip": "151.101.2.132", "dest_port": 443, "proto": "TCP", "tls": {"sni": "www.europa.eu", "version": "TLS 1.3"}}).to_string());
        eve.push('\n');
    }
    let t = at(61.2);
    eve.push_str(&json!({"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(), "flow_id": 99_001, "in_iface": "eth1", "event_type": "alert", "src_ip": WS_IP, "src_port": 50_122, "dest_ip": C2, "dest_port": 443, "proto": "TCP", "alert": {"action": "allowed", "signature_id": 2_027_867, "signature": "ET MALWARE Cobalt Strike Beacon Observed", "category": "A Network Trojan was detected", "severity": 1}}).to_string());
    eve.push('\n');
    std::fs::write(dir.join("suricata-eve.json"), eve)?;
    Ok(())
}

fn epoch(t: Timestamp) -> String {
    format!("{}.{:06}", t.as_second(), t.subsec_microsecond())
}

//! `rempart triage`: evaluating triage on a gold set, and exporting confirmed incidents as a
//! training and evaluation data set that exposes no one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use rempart_model::{Classification, Incident, TriageMode, Verdict};
use rempart_server::AppState;
use rempart_store::IncidentQuery;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{incidents, ingest, instance};

#[derive(Debug, Subcommand)]
pub enum TriageCommand {
    /// Write incidents an analyst confirmed or corrected as chat-format JSONL (system, user,
    /// assistant: what OpenAI and open-weight fine-tuning tools read), pseudonymized in a
    /// domain of its own and checked, so that a sovereign model can be tuned or a provider
    /// evaluated on the institution's own history without exposing anyone
    ExportDataset {
        /// Where to write the JSONL
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The pseudonymization domain of the data set (keep one per purpose: two exports in
        /// different domains cannot be linked)
        #[arg(long, default_value = "dataset")]
        domain: String,
    },
    /// Measure triage on a gold set built from real data: OTRF attack simulations (ATT&CK
    /// techniques from their metadata), EVTX-ATTACK-SAMPLES (techniques from file names) and
    /// benign administration written by the harness. Each case runs on a fresh temporary
    /// instance: ingest with the rules, group into incidents, triage with whatever model the
    /// configuration routes (or the degraded triage when none). Also measures the
    /// prompt-injection detector: recall on attempts generated from templates into six event
    /// shapes (and on --injection-corpus), false flags on the real data's incidents
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Sigma rules (files or folders, repeatable)
    #[arg(long, required_unless_present = "injection_only", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// OTRF Security-Datasets `atomic` folder [default: $REMPART_DATA/otrf/atomic]
    #[arg(long, value_name = "DIR")]
    pub otrf: Option<PathBuf>,
    /// EVTX-ATTACK-SAMPLES folder [default: $REMPART_DATA/evtx-attack-samples]
    #[arg(long, value_name = "DIR")]
    pub evtx: Option<PathBuf>,
    /// At most this many cases from each source (0: all)
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Leave out the benign cases
    #[arg(long)]
    pub no_benign: bool,
    /// Seed of the generated injection corpus [default: a random one, printed]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Injection cases generated per class (15 classes)
    #[arg(long, default_value_t = 25, value_name = "N")]
    pub injection_cases: usize,
    /// Also measure the injection detector on attempts of your own: JSON Lines of
    /// `{"text": "…", "label": "…"}`, each written into an event shape
    #[arg(long, value_name = "FILE")]
    pub injection_corpus: Option<PathBuf>,
    /// Measure only the injection detector on the generated corpus (no gold set, no
    /// false-flag rate)
    #[arg(long)]
    pub injection_only: bool,
    /// Also read every event of the real data sets alone for signs of injection (a stricter
    /// false-flag measure than the incidents; slower)
    #[arg(long)]
    pub scan_events: bool,
}

pub async fn run(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: TriageCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match command {
        TriageCommand::ExportDataset { out, domain } => {
            let state = incidents::wire(data_dir, config, incidents::Wiring::Triage(None)).await?;
            let result = export_dataset(&state, &out, &domain).await;
            state.ledger.close().await;
            let (written, skipped) = result?;
            let mut o = crate::out::stdout();
            if json_out {
                writeln!(o, "{}", json!({"written": written, "skipped": skipped, "out": out}))?;
            } else {
                writeln!(o, "wrote {written} examples to {}", out.display())?;
                for (id, why) in &skipped {
                    writeln!(o, "  skipped {id}: {why}")?;
                }
            }
            Ok(())
        }
        TriageCommand::Eval(args) => {
            let report = eval(config, args).await?;
            let mut o = crate::out::stdout();
            if json_out {
                writeln!(o, "{}", serde_json::to_string(&report)?)?;
            } else {
                print_report(&mut o, &report)?;
            }
            Ok(())
        }
    }
}

/// The verdict as the model would have had to write it, with the analyst's classification.
pub fn target(v: &Verdict, classification: Classification) -> Value {
    json!({
        "classification": classification,
        "confidence": if classification == v.classification { v.confidence } else { 1.0 - v.confidence },
        "severity": v.severity,
        "summary": v.summary,
        "timeline": v.timeline,
        "techniques": v.techniques,
        "entities": v.entities,
        "recommended_actions": v.recommended_actions,
        "evidence": v.evidence,
    })
}

/// An incident an analyst judged, as a training example: pseudonymized in a data set's domain
/// and checked.
#[derive(Debug, Clone)]
pub struct Judged {
    pub incident: rempart_model::EventId,
    /// When the incident began: data sets are split by it.
    pub time: jiff::Timestamp,
    /// The analyst's classification.
    pub classification: Classification,
    /// The most restricted data class of the events shown.
    pub class: rempart_model::DataClass,
    /// System, user and assistant (the verdict with the analyst's classification).
    pub messages: [Value; 3],
    /// The model's verdict as it answered, when the analyst disagreed with it: the rejected
    /// answer of a preference pair.
    pub rejected: Option<Value>,
    /// What was replaced, for the vault.
    pub replaced: Vec<rempart_privacy::redact::Replacement>,
}

/// Every incident an analyst judged (the latest judgement of each), pseudonymized with
/// `redactor`; and those left out, with why (none is written with a recognized value left in
/// clear).
pub async fn judged_examples(
    state: &AppState,
    redactor: &rempart_privacy::redact::Redactor,
) -> anyhow::Result<(Vec<Judged>, Vec<(String, String)>)> {
    let service = state.incidents.as_ref().context("no incident service")?;
    let triage = state.triage.as_ref().context("no triage service")?;
    // The latest judgement of each incident wins.
    let mut judged: Vec<(rempart_model::Feedback, Verdict)> = service.store().feedback_all().await?;
    judged.reverse();
    let mut seen = std::collections::HashSet::new();
    judged.retain(|(f, _)| seen.insert(f.incident));
    judged.reverse();
    let (mut examples, mut skipped) = (Vec::new(), Vec::new());
    for (f, v) in judged {
        let (incident, _, ctx, class) = match triage.prompt(f.incident).await {
            Ok(p) => p,
            Err(e) => {
                skipped.push((f.incident.to_string(), e.to_string()));
                continue;
            }
        };
        // The verdict is kept in the pseudonyms its model saw: back to the originals inside
        // the boundary, then everything into the data set's own domain.
        let mut verdict = [v];
        rempart_server::incident_api::reveal_verdicts(state, &instance::cli_actor(), &mut verdict)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let [v] = verdict;
        let mut user: Value = serde_json::from_str(&ctx.user)?;
        let mut assistant = target(&v, f.classification);
        let mut rejected = (v.classification != f.classification).then(|| target(&v, v.classification));
        let mut replaced = redactor.redact_json(&mut user)?;
        replaced.extend(redactor.redact_json(&mut assistant)?);
        if let Some(r) = rejected.as_mut() {
            replaced.extend(redactor.redact_json(r)?);
        }
        let system = redactor.redact_text(&ctx.system)?;
        replaced.extend(system.replacements);
        // A value recognized anywhere is replaced everywhere (a host named in a field and
        // again, bare, in the verdict's summary).
        rempart_privacy::redact::Redactor::replace_known(&mut user, &replaced);
        rempart_privacy::redact::Redactor::replace_known(&mut assistant, &replaced);
        if let Some(r) = rejected.as_mut() {
            rempart_privacy::redact::Redactor::replace_known(r, &replaced);
        }
        let messages = [
            json!({"role": "system", "content": system.output}),
            json!({"role": "user", "content": user.to_string()}),
            json!({"role": "assistant", "content": assistant.to_string()}),
        ];
        let rejected = rejected.map(|r| json!({"role": "assistant", "content": r.to_string()}));
        let text = format!(
            "{} {}",
            Value::from(messages.to_vec()),
            rejected.clone().unwrap_or_default()
        );
        // The check: no original the recognizers found survives anywhere in the example.
        if let Some(r) = replaced
            .iter()
            .find(|r| r.original.len() >= 3 && text.contains(&r.original))
        {
            skipped.push((
                f.incident.to_string(),
                format!("a {} value would remain in clear", r.entity.prefix()),
            ));
            continue;
        }
        examples.push(Judged {
            incident: f.incident,
            time: incident.first_seen,
            classification: f.classification,
            class,
            messages,
            rejected,
            replaced,
        });
    }
    Ok((examples, skipped))
}

/// Writes the data set; returns how many examples were written and which incidents were
/// left out, with why.
async fn export_dataset(state: &AppState, out: &Path, domain: &str) -> anyhow::Result<(u64, Vec<(String, String)>)> {
    let privacy = state.privacy.as_ref().context("no privacy engine")?;
    let redactor = privacy.redactor(domain)?;
    let (examples, skipped) = judged_examples(state, &redactor).await?;
    let tmp = out.with_extension("partial");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot write `{}`", tmp.display()))?,
    );
    let mut written = 0u64;
    for e in &examples {
        privacy
            .vault()
            .remember(redactor.domain(), &e.replaced, jiff::Timestamp::now())
            .await?;
        writeln!(file, "{}", json!({"messages": e.messages}))?;
        written += 1;
    }
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write `{}`", out.display()))?;
    state
        .ledger
        .append(rempart_audit::Draft::new(
            instance::cli_actor(),
            rempart_audit::kind::PRIVACY_PSEUDONYMIZE,
            json!({"purpose": "triage dataset export", "domain": domain, "examples": written, "skipped": skipped.len()}),
        ))
        .await?;
    Ok((written, skipped))
}

/// One case of the gold set.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub name: String,
    pub source: &'static str,
    #[serde(skip)]
    pub path: PathBuf,
    /// `true_positive` for attacks; benign administration is `benign`.
    pub expected: Classification,
    /// ATT&CK techniques the case is known to show.
    pub techniques: Vec<String>,
}

/// What triage made of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    #[serde(flatten)]
    pub case: Case,
    pub alerts: u64,
    pub incidents: u64,
    pub verdict: Option<Classification>,
    pub mode: Option<TriageMode>,
    pub confidence: Option<f64>,
    /// Techniques the verdicts named.
    pub found: Vec<String>,
    pub correct: Option<bool>,
    /// Incidents whose triage found signs of prompt injection (on real data, false flags).
    pub injection_flagged: u64,
    /// Events of the case, and those whose fields alone would flag an incident.
    pub events: u64,
    pub events_flagged: u64,
    /// The first signs found in events read alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_signs: Vec<rempart_model::InjectionSign>,
    /// The first signs found, for the analyst judging whether they are false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub injection_signs: Vec<rempart_model::InjectionSign>,
    pub seconds: f64,
    pub tokens: u64,
}

/// The harness's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cases: usize,
    pub attacks: usize,
    pub benign: usize,
    /// Cases that raised at least one incident.
    pub detected: usize,
    /// Of detected cases, share with the right classification.
    pub verdict_accuracy: Option<f64>,
    /// Of detected attack cases with known techniques, share of those techniques (by their
    /// parent technique) the verdicts named.
    pub technique_recall: Option<f64>,
    /// Of detected benign cases, share the triage called benign or a false positive.
    pub false_positive_rejection: Option<f64>,
    /// Verdicts by a model and by the degraded triage.
    pub model_verdicts: usize,
    pub degraded_verdicts: usize,
    /// Incidents of the real data sets flagged for prompt injection, over all their incidents.
    pub false_flags: FalseFlags,
    /// The generated injection corpus: how many attempts the triage flags.
    pub injection: crate::injection::CorpusReport,
    /// The attempts of `--injection-corpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection_external: Option<crate::injection::CorpusReport>,
    pub seconds: f64,
    pub tokens: u64,
    pub per_case: Vec<CaseResult>,
}

/// Incidents flagged for prompt injection on data that holds none meant for a model.
#[derive(Debug, Clone, Serialize)]
pub struct FalseFlags {
    pub incidents: u64,
    pub flagged: u64,
    pub rate: Option<f64>,
    /// Every event of the real data sets, each read alone.
    pub events: u64,
    pub events_flagged: u64,
    pub event_rate: Option<f64>,
}

fn share(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// `T1003.001` → `T1003`.
fn parent(t: &str) -> String {
    t.split('.').next().unwrap_or(t).to_ascii_uppercase()
}

/// Technique ids written in a file name (`…_t1098.evtx`).
fn techniques_in_name(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary && b[i] == b't' && b.len() >= i + 5 && b[i + 1..i + 5].iter().all(u8::is_ascii_digit) {
            let mut id = format!("T{}", &lower[i + 1..i + 5]);
            if b.len() >= i + 9 && b[i + 5] == b'.' && b[i + 6..i + 9].iter().all(u8::is_ascii_digit) {
                id.push_str(&lower[i + 5..i + 9]);
            }
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// OTRF atomic data sets with their ATT&CK techniques, from `_metadata/*.yaml`.
fn otrf_cases(root: &Path) -> anyhow::Result<Vec<Case>> {
    let mut files = std::collections::HashMap::new();
    for f in rempart_ingest::files::walk(&[root.to_path_buf()])? {
        if let Some(name) = f.file_name().and_then(|n| n.to_str()) {
            files.insert(name.to_owned(), f.clone());
        }
    }
    let mut metas: Vec<PathBuf> = std::fs::read_dir(root.join("_metadata"))
        .with_context(|| format!("no `_metadata` in `{}`", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    metas.sort();
    let mut cases = Vec::new();
    for m in metas {
        let text = std::fs::read_to_string(&m)?;
        let Ok(doc) = yaml_serde::from_str::<Value>(&text) else {
            continue;
        };
        let techniques: Vec<String> = doc["attack_mappings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let t = a["technique"].as_str()?.to_ascii_uppercase();
                Some(
                    match a["sub-technique"].as_str().or(a["sub-technique"].as_u64().map(|_| "")) {
                        Some(s) if !s.is_empty() => format!("{t}.{s:0>3}"),
                        _ => t,
                    },
                )
            })
            .collect();
        let host = doc["files"].as_array().into_iter().flatten().find_map(|f| {
            (f["type"].as_str() == Some("Host"))
                .then(|| f["link"].as_str())
                .flatten()
                .and_then(|l| l.rsplit('/').next())
                .and_then(|n| files.get(n))
        });
        if let (Some(path), false) = (host, techniques.is_empty()) {
            cases.push(Case {
                name: doc["title"].as_str().unwrap_or_default().to_owned(),
                source: "otrf",
                path: path.clone(),
                expected: Classification::TruePositive,
                techniques,
            });
        }
    }
    Ok(cases)
}

/// EVTX-ATTACK-SAMPLES in its tactic folders; techniques from the file names.
fn evtx_cases(root: &Path) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for f in rempart_ingest::files::walk(&[root.to_path_buf()])? {
        let rel = f.strip_prefix(root).unwrap_or(&f);
        let Some(tactic) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        if rel.components().count() < 2 || matches!(tactic, "AutomatedTestingTools" | "Other") {
            continue;
        }
        if f.extension().is_none_or(|e| e != "evtx") {
            continue;
        }
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        cases.push(Case {
            techniques: techniques_in_name(&name),
            name: format!("{tactic}/{name}"),
            source: "evtx-attack-samples",
            path: f.clone(),
            expected: Classification::TruePositive,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Benign administration the SigmaHQ rules flag at low and medium levels: each case one
/// administrator's routine on one server.
fn benign_cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    const ROUTINES: &[(&str, &str, &str)] = &[
        (
            "inventory with whoami",
            "C:\\Windows\\System32\\whoami.exe",
            "whoami /all",
        ),
        (
            "nightly backup task",
            "C:\\Windows\\System32\\schtasks.exe",
            "schtasks /create /tn \"Backup\" /tr \"C:\\Program Files\\Veeam\\backup.exe\" /sc daily /st 02:00 /ru SYSTEM",
        ),
        ("network check", "C:\\Windows\\System32\\ipconfig.exe", "ipconfig /all"),
        (
            "autorun audit",
            "C:\\Windows\\System32\\reg.exe",
            "reg query HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
        ),
        (
            "patch level check",
            "C:\\Windows\\System32\\wbem\\WMIC.exe",
            "wmic qfe list brief",
        ),
        (
            "domain controller lookup",
            "C:\\Windows\\System32\\nltest.exe",
            "nltest /dsgetdc:corp",
        ),
        (
            "inventory script",
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "powershell.exe -ExecutionPolicy Bypass -File C:\\Scripts\\inventory.ps1",
        ),
    ];
    std::fs::create_dir_all(dir)?;
    let mut cases = Vec::new();
    for (i, (name, image, cmd)) in ROUTINES.iter().enumerate() {
        let event = json!({"Event": {
            "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 1,
                       "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": format!("SRV-ADM-{:02}.corp.example.eu", i + 1),
                       "TimeCreated": {"#attributes": {"SystemTime": format!("2026-11-20T09:{:02}:00Z", i)}}},
            "EventData": {"Image": image, "CommandLine": cmd, "ParentImage": "C:\\Windows\\System32\\cmd.exe",
                          "ParentCommandLine": "cmd.exe", "User": "CORP\\it.admin", "IntegrityLevel": "High",
                          "ProcessId": 4242, "ParentProcessId": 4000}
        }});
        let path = dir.join(format!("benign-{i}.ndjson"));
        std::fs::write(&path, format!("{event}\n"))?;
        cases.push(Case {
            name: (*name).to_owned(),
            source: "benign",
            path,
            expected: Classification::Benign,
            techniques: Vec::new(),
        });
    }
    Ok(cases)
}

fn take(mut v: Vec<Case>, limit: usize) -> Vec<Case> {
    if limit > 0 {
        v.truncate(limit);
    }
    v
}

async fn run_case(
    config: &rempart_config::Config,
    rules: &Arc<rempart_detect::RuleSet>,
    scratch: &Path,
    case: Case,
    scan_events: bool,
) -> anyhow::Result<CaseResult> {
    let started = Instant::now();
    let dir = scratch.join(uuid::Uuid::now_v7().simple().to_string());
    let state = incidents::wire(&dir, config, incidents::Wiring::Triage(Some(rules.clone()))).await?;
    let service = state.incidents.clone().context("no incident service")?;
    let triage = state.triage.clone().context("no triage service")?;
    let summary = ingest::ingest_paths(
        &*state.store,
        &state.ledger,
        std::slice::from_ref(&case.path),
        rempart_ingest::decode::DecodeOptions::default(),
        ingest::Detection {
            rules: Some(rules.clone()),
            intel: None,
            incidents: Some(&service),
            anomaly: None,
        },
        false,
    )
    .await?;
    let open = service.store().incidents_list(&IncidentQuery::open()).await?;
    let mut verdicts: Vec<(Incident, Verdict)> = Vec::new();
    for i in open {
        let v = triage.triage(i.id, "eval").await?;
        verdicts.push((i, v));
    }
    if let Some(g) = &state.gateway {
        g.close().await;
    }
    state.ledger.close().await;
    drop(state);
    let _ = std::fs::remove_dir_all(&dir);
    // The case's verdict is the verdict on its most severe incident.
    let main = verdicts.iter().max_by_key(|(i, _)| (i.score, i.alert_count));
    let mut found: Vec<String> = Vec::new();
    for (_, v) in &verdicts {
        for t in &v.techniques {
            if !found.contains(t) {
                found.push(t.clone());
            }
        }
    }
    let verdict = main.map(|(_, v)| v.classification);
    let correct = verdict.map(|c| match case.expected {
        Classification::TruePositive => c == Classification::TruePositive,
        _ => c != Classification::TruePositive,
    });
    let flagged: Vec<&Verdict> = verdicts
        .iter()
        .map(|(_, v)| v)
        .filter(|v| !v.injection.is_empty())
        .collect();
    // Every event of the case read as the triage reads a key event: a stricter measure than
    // the incidents, whose prompts show at most a few dozen events each.
    let (mut events, mut events_flagged) = (0u64, 0u64);
    let mut signs = Vec::new();
    let mut event_signs = Vec::new();
    if scan_events {
        rempart_ingest::files::decode_file(
            &case.path,
            &rempart_ingest::decode::DecodeOptions::default(),
            jiff::Timestamp::now(),
            &mut |d| {
                if let rempart_ingest::decode::Decoded::Event(e) = d {
                    events += 1;
                    signs.clear();
                    rempart_triage::injection::scan_value("fields", &Value::Object(e.fields), &mut signs);
                    events_flagged += u64::from(!signs.is_empty());
                    if event_signs.len() < 3 {
                        event_signs.extend(signs.iter().take(3 - event_signs.len()).cloned());
                    }
                }
            },
        );
    }
    Ok(CaseResult {
        events,
        events_flagged,
        injection_flagged: flagged.len() as u64,
        event_signs,
        injection_signs: flagged
            .iter()
            .flat_map(|v| v.injection.iter().take(3).cloned())
            .take(6)
            .collect(),
        alerts: summary.alerts,
        incidents: verdicts.len() as u64,
        mode: main.map(|(_, v)| v.mode),
        confidence: main.map(|(_, v)| v.confidence),
        tokens: verdicts.iter().map(|(_, v)| v.tokens).sum(),
        verdict,
        found,
        correct,
        seconds: started.elapsed().as_secs_f64(),
        case,
    })
}

pub async fn eval(config: &rempart_config::Config, args: EvalArgs) -> anyhow::Result<Report> {
    let data = std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    let otrf = args.otrf.unwrap_or_else(|| data.join("otrf/atomic"));
    let evtx = args.evtx.unwrap_or_else(|| data.join("evtx-attack-samples"));
    let scratch = std::env::temp_dir().join(format!("rempart-eval-{}", uuid::Uuid::now_v7().simple()));
    let seed = args.seed.unwrap_or_else(rand::random);
    let injection = crate::injection::evaluate(seed, args.injection_cases)?;
    let external = match &args.injection_corpus {
        Some(path) => Some(crate::injection::measure(
            seed,
            crate::injection::read_corpus(path, seed)?,
        )?),
        None => None,
    };
    let mut cases = Vec::new();
    if !args.injection_only {
        cases.extend(take(otrf_cases(&otrf)?, args.limit));
        cases.extend(take(evtx_cases(&evtx)?, args.limit));
        if !args.no_benign {
            cases.extend(take(benign_cases(&scratch.join("benign"))?, args.limit));
        }
    }
    let rules = if args.injection_only {
        rempart_detect::RuleSet::load(std::iter::empty()).0
    } else {
        let (rules, report) = crate::detect::load_rules(&args.rules, config.detection.attack.as_deref())?;
        anyhow::ensure!(!report.loaded.is_empty(), "no rule loaded from {:?}", args.rules);
        rules
    };
    let rules = Arc::new(rules);
    let started = Instant::now();
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let name = case.name.clone();
        results.push(
            run_case(config, &rules, &scratch, case, args.scan_events)
                .await
                .with_context(|| format!("case `{name}`"))?,
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let detected: Vec<&CaseResult> = results.iter().filter(|r| r.incidents > 0).collect();
    let correct = detected.iter().filter(|r| r.correct == Some(true)).count();
    let (mut expected_total, mut named) = (0usize, 0usize);
    for r in detected
        .iter()
        .filter(|r| r.case.expected == Classification::TruePositive)
    {
        let found: Vec<String> = r.found.iter().map(|t| parent(t)).collect();
        for t in &r.case.techniques {
            expected_total += 1;
            named += usize::from(found.contains(&parent(t)));
        }
    }
    let benign: Vec<&&CaseResult> = detected
        .iter()
        .filter(|r| r.case.expected != Classification::TruePositive)
        .collect();
    let rejected = benign.iter().filter(|r| r.correct == Some(true)).count();
    let incidents: u64 = results.iter().map(|r| r.incidents).sum();
    let flagged: u64 = results.iter().map(|r| r.injection_flagged).sum();
    let events: u64 = results.iter().map(|r| r.events).sum();
    let events_flagged: u64 = results.iter().map(|r| r.events_flagged).sum();
    Ok(Report {
        false_flags: FalseFlags {
            incidents,
            flagged,
            rate: (incidents > 0).then(|| flagged as f64 / incidents as f64),
            events,
            events_flagged,
            event_rate: (events > 0).then(|| events_flagged as f64 / events as f64),
        },
        injection,
        injection_external: external,
        cases: results.len(),
        attacks: results
            .iter()
            .filter(|r| r.case.expected == Classification::TruePositive)
            .count(),
        benign: results
            .iter()
            .filter(|r| r.case.expected != Classification::TruePositive)
            .count(),
        detected: detected.len(),
        verdict_accuracy: share(correct, detected.len()),
        technique_recall: share(named, expected_total),
        false_positive_rejection: share(rejected, benign.len()),
        model_verdicts: results.iter().filter(|r| r.mode == Some(TriageMode::Model)).count(),
        degraded_verdicts: results.iter().filter(|r| r.mode == Some(TriageMode::Degraded)).count(),
        seconds: started.elapsed().as_secs_f64(),
        tokens: results.iter().map(|r| r.tokens).sum(),
        per_case: results,
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn print_report(o: &mut impl Write, r: &Report) -> anyhow::Result<()> {
    writeln!(
        o,
        "{:<60} {:>6} {:>4} {:<15} {:<9} {:>5}  TECHNIQUES (expected → named)",
        "CASE", "ALERTS", "INC", "VERDICT", "MODE", "OK"
    )?;
    for c in &r.per_case {
        let name: String = format!("{}: {}", c.case.source, c.case.name).chars().take(60).collect();
        writeln!(
            o,
            "{:<60} {:>6} {:>4} {:<15} {:<9} {:>5}  {} → {}",
            name,
            c.alerts,
            c.incidents,
            c.verdict.map_or("-", Classification::as_str),
            c.mode.map_or("-", TriageMode::as_str),
            c.correct.map_or("-", |b| if b { "yes" } else { "no" }),
            c.case.techniques.join(","),
            c.found.join(",")
        )?;
    }
    writeln!(
        o,
        "\n{} cases ({} attacks, {} benign), {} detected; {} model and {} degraded verdicts; {:.1} s, {} tokens",
        r.cases, r.attacks, r.benign, r.detected, r.model_verdicts, r.degraded_verdicts, r.seconds, r.tokens
    )?;
    writeln!(o, "verdict accuracy          {}", pct(r.verdict_accuracy))?;
    writeln!(o, "technique recall          {}", pct(r.technique_recall))?;
    writeln!(o, "false-positive rejection  {}", pct(r.false_positive_rejection))?;
    writeln!(
        o,
        "injection false flags     {} ({} of {} incidents of real data; {} of {} events read alone)",
        pct(r.false_flags.rate),
        r.false_flags.flagged,
        r.false_flags.incidents,
        r.false_flags.events_flagged,
        r.false_flags.events
    )?;
    print_corpus(o, "generated", &r.injection)?;
    if let Some(c) = &r.injection_external {
        print_corpus(o, "given", c)?;
    }
    Ok(())
}

fn print_corpus(o: &mut impl Write, what: &str, c: &crate::injection::CorpusReport) -> anyhow::Result<()> {
    writeln!(
        o,
        "injection recall          {} ({} of {} {what} attempts, seed {})",
        pct(Some(c.recall)),
        c.flagged,
        c.cases,
        c.seed
    )?;
    for k in &c.per_class {
        writeln!(
            o,
            "  {:<24} {:>6} ({} of {})",
            k.class,
            pct(Some(k.recall)),
            k.flagged,
            k.cases
        )?;
    }
    for m in c.missed.iter().take(20) {
        writeln!(
            o,
            "  missed {} in {:?}: {}",
            m.case.class,
            m.case.shape,
            m.case.payload.escape_debug()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids_in_file_names() {
        assert_eq!(techniques_in_name("4794_DSRM_password_change_t1098.evtx"), ["T1098"]);
        assert_eq!(
            techniques_in_name("sysmon_T1003.001_lsass-T1055.evtx"),
            ["T1003.001", "T1055"]
        );
        assert!(techniques_in_name("bits_openvpn.evtx").is_empty());
        assert!(techniques_in_name("at12345.evtx").is_empty());
    }
}

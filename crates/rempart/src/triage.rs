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
    /// benign cases drawn afresh from routines of administration, backups, deployment,
    /// scanners, automation and declared penetration tests, every rate with its 95 % interval;
    /// or two routes side by side (--compare). Each case runs on a fresh temporary
    /// instance: ingest with the rules, group into incidents, triage with whatever model the
    /// configuration routes (or the degraded triage when none). Also measures the
    /// prompt-injection detector: recall on attempts generated from templates into six event
    /// shapes (and on --injection-corpus), false flags on the real data's incidents
    Eval(EvalArgs),
    /// Put a route in force for triage (every process of the instance takes it within
    /// seconds), only if the latest `triage eval --compare CURRENT ROUTE` recorded shows it
    /// better than the route in force, on the models the configuration routes to now; or, for
    /// an administrator, with --override and a reason. Recorded in the ledger
    /// (`triage.promote`) with the evaluation or the reason
    Promote {
        /// The route to put in force (a `[[gateway.routes]]` name)
        route: String,
        /// Promote without an evaluation showing the route better
        #[arg(long = "override", requires = "reason")]
        force: bool,
        /// Why the override (kept in the ledger)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
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
    /// Benign cases drawn (administration, backups, deployment, scanners, automation,
    /// declared penetration tests; each from a routine's templates with random values)
    /// [default: 330, or --limit when given]
    #[arg(long, value_name = "N")]
    pub benign: Option<usize>,
    /// The gateway route that triages [default: `[triage] route`]
    #[arg(long, value_name = "ROUTE", conflicts_with = "compare")]
    pub route: Option<String>,
    /// Run the gold set against two routes (the one in force first, the candidate second)
    /// and report both side by side, with the paired difference in accuracy and its 95 %
    /// interval. Recorded in the instance's ledger (`triage.evaluation`): `tuning promote`
    /// puts the candidate in force only if such a record shows it better
    #[arg(long, num_args = 2, value_names = ["CURRENT", "CANDIDATE"])]
    pub compare: Option<Vec<String>>,
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
        TriageCommand::Promote { route, force, reason } => {
            let state = incidents::wire(data_dir, config, incidents::Wiring::Records).await?;
            let result = promote(&state, config, &route, force.then_some(reason.unwrap_or_default())).await;
            state.ledger.close().await;
            let promoted = result?;
            let mut o = crate::out::stdout();
            if json_out {
                writeln!(o, "{promoted}")?;
            } else {
                writeln!(
                    o,
                    "`{}` triages from now on (was `{}`); {}",
                    promoted["route"].as_str().unwrap_or_default(),
                    promoted["previous"].as_str().unwrap_or_default(),
                    match promoted["evaluation"].as_u64() {
                        Some(seq) => format!("shown better by the evaluation recorded at ledger #{seq}"),
                        None => format!("by override: {}", promoted["reason"].as_str().unwrap_or_default()),
                    }
                )?;
            }
            Ok(())
        }
        TriageCommand::Eval(mut args) => {
            if let Some([current, candidate]) = args.compare.take().as_deref() {
                let comparison = compare(data_dir, config, args, current, candidate).await?;
                let mut o = crate::out::stdout();
                if json_out {
                    writeln!(o, "{}", serde_json::to_string(&comparison)?)?;
                } else {
                    print_comparison(&mut o, &comparison)?;
                }
                return Ok(());
            }
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

/// The models a route sends to, as an evaluation records them.
fn route_models(config: &rempart_config::Config, route: &str) -> Option<Vec<Value>> {
    config.gateway.routes.iter().find(|x| x.name == route).map(|x| {
        x.chain
            .iter()
            .filter_map(|p| config.gateway.providers.iter().find(|q| &q.name == p))
            .map(|p| json!({"provider": p.name, "model": p.model, "jurisdiction": p.jurisdiction.to_string()}))
            .collect()
    })
}

/// Puts `route` in force for triage if the latest recorded comparison of the route in force
/// with it shows it better (on the models routed to now), or if `override_reason` says why not.
async fn promote(
    state: &AppState,
    config: &rempart_config::Config,
    route: &str,
    override_reason: Option<String>,
) -> anyhow::Result<Value> {
    let models = route_models(config, route).with_context(|| format!("no `[[gateway.routes]]` is named `{route}`"))?;
    let promoted = state.store.state_get(rempart_server::triage::PROMOTED_ROUTE).await?;
    let current = promoted
        .as_ref()
        .and_then(|v| v["route"].as_str())
        .filter(|r| config.gateway.routes.iter().any(|x| &x.name == r))
        .unwrap_or(&config.triage.route)
        .to_owned();
    anyhow::ensure!(current != route, "`{route}` already triages");
    // The latest comparison of these two routes.
    let mut latest: Option<(u64, Value)> = None;
    let mut from = 0;
    loop {
        let page = state.ledger.entries(from, 8192).await?;
        let Some(last) = page.last() else { break };
        from = last.record.seq + 1;
        for e in page
            .iter()
            .filter(|e| e.record.kind == rempart_audit::kind::TRIAGE_EVALUATION)
        {
            if let rempart_audit::PayloadView::Public { payload } | rempart_audit::PayloadView::Sealed { payload, .. } =
                state.ledger.open_payload(e).await?
                && payload["current"]["route"] == current.as_str()
                && payload["candidate"]["route"] == route
            {
                latest = Some((e.record.seq, payload));
            }
        }
    }
    let shown = match &latest {
        None => Err(format!(
            "no comparison of `{current}` (in force) with `{route}` is recorded: run `rempart triage eval --compare {current} {route}`"
        )),
        Some((seq, p)) if p["candidate"]["providers"].as_array() != Some(&models) => Err(format!(
            "the comparison at ledger #{seq} measured other models behind `{route}` than the configuration routes to now: compare again"
        )),
        Some((seq, p)) if p["better"] == route => Ok(*seq),
        Some((seq, p)) => Err(format!(
            "the comparison at ledger #{seq} does not show `{route}` better than `{current}` (accuracy difference {} with 95 % interval {})",
            p["paired"]["difference"], p["paired"]["interval"]
        )),
    };
    let (evaluation, reason) = match (shown, override_reason) {
        (Ok(seq), _) => (Some(seq), None),
        (Err(why), None) => {
            anyhow::bail!("not promoted: {why}; an administrator may promote anyway with --override --reason")
        }
        (Err(why), Some(reason)) => {
            anyhow::ensure!(!reason.trim().is_empty(), "--override needs a --reason");
            (None, Some(format!("{reason} (overriding: {why})")))
        }
    };
    let record = json!({
        "route": route,
        "previous": current,
        "models": models,
        "evaluation": evaluation,
        "override": reason.is_some(),
        "reason": reason,
    });
    let receipt = state
        .ledger
        .append(
            rempart_audit::Draft::new(
                instance::cli_actor(),
                rempart_audit::kind::TRIAGE_PROMOTE,
                record.clone(),
            )
            .public(),
        )
        .await?;
    state
        .store
        .state_put(rempart_server::triage::PROMOTED_ROUTE, &record, jiff::Timestamp::now())
        .await?;
    let mut shown = record;
    shown["ledger"] = receipt.seq.into();
    Ok(shown)
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
    /// Why a benign case's activity happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<crate::benign::Family>,
    /// The window the institution declared for the case's activity (a penetration test).
    #[serde(skip)]
    pub declared: Option<rempart_config::incidents::Declared>,
    /// A generated case's events (NDJSON), written next to its instance when it runs.
    #[serde(skip)]
    pub lines: Option<String>,
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
    /// What the providers charged for the case, at their configured prices.
    pub cost_eur: f64,
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
    /// The 95 % Wilson score interval of each rate.
    pub intervals: Intervals,
    /// False-positive rejection by kind of benign activity.
    pub benign_families: Vec<FamilyRate>,
    /// The route that triaged (none: the degraded triage).
    pub route: Option<String>,
    /// The seed of the generated cases (benign routines and injection attempts).
    pub seed: u64,
    /// What the providers charged, at their configured prices.
    pub cost_eur: f64,
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

/// The 95 % intervals of a report's rates.
#[derive(Debug, Clone, Serialize)]
pub struct Intervals {
    pub verdict_accuracy: Option<[f64; 2]>,
    pub technique_recall: Option<[f64; 2]>,
    pub false_positive_rejection: Option<[f64; 2]>,
}

/// False-positive rejection on one kind of benign activity.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyRate {
    pub family: crate::benign::Family,
    pub cases: usize,
    pub detected: usize,
    pub rejected: usize,
    pub rate: Option<f64>,
    pub interval: Option<[f64; 2]>,
}

/// The 95 % Wilson score interval of `k` successes in `n` trials (Wilson, 1927): unlike the
/// normal approximation it stays inside [0, 1] and means something for small `n` and for
/// rates near 0 or 1, which is where a gold set's rates live.
pub fn wilson(k: usize, n: usize) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    // At 0 of n and n of n the bounds are 0 and 1 exactly, not their rounding.
    let low = if k == 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if k == n { 1.0 } else { (centre + half).min(1.0) };
    Some([low, high])
}

/// Two routes on the same cases.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub current: Report,
    pub candidate: Report,
    pub paired: Paired,
    /// The route shown better (the interval of the difference excludes zero), if either is.
    pub better: Option<String>,
    /// The ledger record of this comparison (its sequence number).
    pub record: u64,
}

/// The paired difference in verdict accuracy, candidate minus current, on the cases both
/// routes triaged.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub cases: usize,
    /// Cases only the candidate got right, and only the current route.
    pub candidate_only: usize,
    pub current_only: usize,
    pub difference: Option<f64>,
    /// 95 % percentile bootstrap interval (10,000 resamples of the cases, seeded).
    pub interval: Option<[f64; 2]>,
}

/// The paired difference of `pairs` (current right, candidate right), with a percentile
/// bootstrap interval: resampling whole cases keeps the pairing, and needs no normal
/// approximation on a difference bounded by ±1.
pub fn paired(pairs: &[(bool, bool)], seed: u64) -> Paired {
    let n = pairs.len();
    let diff = |idx: &mut dyn Iterator<Item = usize>| {
        let mut d = 0i64;
        for i in idx {
            d += i64::from(pairs[i].1) - i64::from(pairs[i].0);
        }
        d as f64 / n as f64
    };
    let (difference, interval) = if n == 0 {
        (None, None)
    } else {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        const RESAMPLES: usize = 10_000;
        let mut draws: Vec<f64> = (0..RESAMPLES)
            .map(|_| diff(&mut (0..n).map(|_| rng.random_range(0..n))))
            .collect();
        draws.sort_by(f64::total_cmp);
        (
            Some(diff(&mut (0..n))),
            Some([draws[RESAMPLES * 25 / 1000], draws[RESAMPLES * 975 / 1000 - 1]]),
        )
    };
    Paired {
        cases: n,
        candidate_only: pairs.iter().filter(|(a, b)| *b && !*a).count(),
        current_only: pairs.iter().filter(|(a, b)| *a && !*b).count(),
        difference,
        interval,
    }
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
                family: None,
                declared: None,
                lines: None,
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
            family: None,
            declared: None,
            lines: None,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// How many benign cases the gold set draws unless told.
const BENIGN_CASES: usize = 330;

/// The benign half of the gold set, drawn from `seed` (see [`crate::benign`]): each case one
/// routine run once, written where the harness's instances read it.
fn benign_cases(seed: u64, count: usize) -> Vec<Case> {
    crate::benign::generate(seed, count)
        .into_iter()
        .map(|g| Case {
            name: g.name,
            source: "benign",
            path: PathBuf::new(),
            expected: Classification::Benign,
            techniques: Vec::new(),
            family: Some(g.family),
            declared: g.declared,
            lines: Some(g.ndjson),
        })
        .collect()
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
    // A declared penetration test is declared as an operator declares it: in the configuration.
    let mut config = config.clone();
    config.triage.declared.extend(case.declared.iter().cloned());
    let state = incidents::wire(&dir, &config, incidents::Wiring::Triage(Some(rules.clone()))).await?;
    let mut case = case;
    if let Some(lines) = case.lines.take() {
        case.path = dir.join("case.ndjson");
        std::fs::write(&case.path, lines).with_context(|| format!("cannot write `{}`", case.path.display()))?;
    }
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
    let mut cost_eur = 0.0;
    if let Some(g) = &state.gateway {
        cost_eur = g.providers().iter().map(|p| p.cost_eur).sum();
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
                    rempart_triage::injection::scan_value("fields", &Value::Object(e.fields.into_map()), &mut signs);
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
        cost_eur,
        verdict,
        found,
        correct,
        seconds: started.elapsed().as_secs_f64(),
        case,
    })
}

/// What every route of an evaluation is measured on.
struct GoldSet {
    cases: Vec<Case>,
    rules: Arc<rempart_detect::RuleSet>,
    seed: u64,
    injection: crate::injection::CorpusReport,
    external: Option<crate::injection::CorpusReport>,
}

fn gold_set(config: &rempart_config::Config, args: &EvalArgs) -> anyhow::Result<GoldSet> {
    let data = std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    let otrf = args.otrf.clone().unwrap_or_else(|| data.join("otrf/atomic"));
    let evtx = args.evtx.clone().unwrap_or_else(|| data.join("evtx-attack-samples"));
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
            let count = args
                .benign
                .unwrap_or(if args.limit > 0 { args.limit } else { BENIGN_CASES });
            cases.extend(benign_cases(seed, count));
        }
    }
    let rules = if args.injection_only {
        rempart_detect::RuleSet::load(std::iter::empty()).0
    } else {
        let (rules, report) = crate::detect::load_rules(&args.rules, config.detection.attack.as_deref())?;
        anyhow::ensure!(!report.loaded.is_empty(), "no rule loaded from {:?}", args.rules);
        rules
    };
    Ok(GoldSet {
        cases,
        rules: Arc::new(rules),
        seed,
        injection,
        external,
    })
}

/// Runs every case of `gold` with `route` triaging (or the configured one), each on a fresh
/// temporary instance.
async fn run_gold(
    config: &rempart_config::Config,
    gold: &GoldSet,
    route: Option<&str>,
    scan_events: bool,
) -> anyhow::Result<Report> {
    let mut config = config.clone();
    if let Some(r) = route {
        r.clone_into(&mut config.triage.route);
    }
    let scratch = std::env::temp_dir().join(format!("rempart-eval-{}", uuid::Uuid::now_v7().simple()));
    let started = Instant::now();
    let mut results = Vec::with_capacity(gold.cases.len());
    for case in &gold.cases {
        let result = run_case(&config, &gold.rules, &scratch, case.clone(), scan_events).await;
        results.push(result.with_context(|| format!("case `{}`", case.name))?);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let routed = config.gateway.routes.iter().any(|r| r.name == config.triage.route);
    Ok(score(
        results,
        started.elapsed().as_secs_f64(),
        gold,
        routed.then(|| config.triage.route.clone()),
    ))
}

/// Refuses a route the configuration does not name, before any case runs.
fn known_route(config: &rempart_config::Config, route: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.gateway.routes.iter().any(|x| x.name == route),
        "no `[[gateway.routes]]` is named `{route}`"
    );
    Ok(())
}

pub async fn eval(config: &rempart_config::Config, args: EvalArgs) -> anyhow::Result<Report> {
    if let Some(r) = &args.route {
        known_route(config, r)?;
    }
    let gold = gold_set(config, &args)?;
    run_gold(config, &gold, args.route.as_deref(), args.scan_events).await
}

/// Runs the gold set against the route in force and a candidate, compares them case by case,
/// and records the comparison in the instance's ledger.
async fn compare(
    data_dir: &Path,
    config: &rempart_config::Config,
    args: EvalArgs,
    current: &str,
    candidate: &str,
) -> anyhow::Result<Comparison> {
    anyhow::ensure!(
        !args.injection_only,
        "--compare measures routes on the gold set: drop --injection-only"
    );
    anyhow::ensure!(current != candidate, "compare two different routes");
    known_route(config, current)?;
    known_route(config, candidate)?;
    let gold = gold_set(config, &args)?;
    let current_report = run_gold(config, &gold, Some(current), args.scan_events).await?;
    let candidate_report = run_gold(config, &gold, Some(candidate), args.scan_events).await?;
    let pairs: Vec<(bool, bool)> = current_report
        .per_case
        .iter()
        .zip(&candidate_report.per_case)
        .filter_map(|(a, b)| Some((a.correct?, b.correct?)))
        .collect();
    let paired = paired(&pairs, gold.seed);
    let better = match paired.interval {
        Some([low, _]) if low > 0.0 => Some(candidate.to_owned()),
        Some([_, high]) if high < 0.0 => Some(current.to_owned()),
        _ => None,
    };
    let summary = |r: &Report| {
        json!({
            "route": r.route, "providers": r.route.as_deref().and_then(|r| route_models(config, r)),
            "verdict_accuracy": r.verdict_accuracy, "technique_recall": r.technique_recall,
            "false_positive_rejection": r.false_positive_rejection, "intervals": r.intervals,
            "detected": r.detected, "tokens": r.tokens, "cost_eur": r.cost_eur,
        })
    };
    let ledger = crate::tuning::ledger(data_dir, config).await?;
    let recorded = ledger
        .append(
            rempart_audit::Draft::new(
                instance::cli_actor(),
                rempart_audit::kind::TRIAGE_EVALUATION,
                json!({
                    "current": summary(&current_report),
                    "candidate": summary(&candidate_report),
                    "paired": paired,
                    "better": better,
                    "seed": gold.seed,
                    "cases": gold.cases.len(),
                    "attacks": current_report.attacks,
                    "benign": current_report.benign,
                }),
            )
            .public(),
        )
        .await;
    ledger.close().await;
    let record = recorded?;
    Ok(Comparison {
        current: current_report,
        candidate: candidate_report,
        paired,
        better,
        record: record.seq,
    })
}

fn score(results: Vec<CaseResult>, seconds: f64, gold: &GoldSet, route: Option<String>) -> Report {
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
    let mut families: Vec<crate::benign::Family> = results.iter().filter_map(|r| r.case.family).collect();
    families.sort();
    families.dedup();
    let benign_families = families
        .into_iter()
        .map(|family| {
            let of: Vec<&CaseResult> = results.iter().filter(|r| r.case.family == Some(family)).collect();
            let detected = of.iter().filter(|r| r.incidents > 0).count();
            let rejected = of.iter().filter(|r| r.incidents > 0 && r.correct == Some(true)).count();
            FamilyRate {
                family,
                cases: of.len(),
                detected,
                rejected,
                rate: share(rejected, detected),
                interval: wilson(rejected, detected),
            }
        })
        .collect();
    let incidents: u64 = results.iter().map(|r| r.incidents).sum();
    let flagged: u64 = results.iter().map(|r| r.injection_flagged).sum();
    let events: u64 = results.iter().map(|r| r.events).sum();
    let events_flagged: u64 = results.iter().map(|r| r.events_flagged).sum();
    Report {
        false_flags: FalseFlags {
            incidents,
            flagged,
            rate: (incidents > 0).then(|| flagged as f64 / incidents as f64),
            events,
            events_flagged,
            event_rate: (events > 0).then(|| events_flagged as f64 / events as f64),
        },
        injection: gold.injection.clone(),
        injection_external: gold.external.clone(),
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
        intervals: Intervals {
            verdict_accuracy: wilson(correct, detected.len()),
            technique_recall: wilson(named, expected_total),
            false_positive_rejection: wilson(rejected, benign.len()),
        },
        benign_families,
        route,
        seed: gold.seed,
        cost_eur: results.iter().map(|r| r.cost_eur).sum(),
        model_verdicts: results.iter().filter(|r| r.mode == Some(TriageMode::Model)).count(),
        degraded_verdicts: results.iter().filter(|r| r.mode == Some(TriageMode::Degraded)).count(),
        seconds,
        tokens: results.iter().map(|r| r.tokens).sum(),
        per_case: results,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn interval(v: Option<[f64; 2]>) -> String {
    v.map_or_else(String::new, |[a, b]| format!("[{:.1}–{:.1}]", a * 100.0, b * 100.0))
}

fn print_comparison(o: &mut impl Write, c: &Comparison) -> anyhow::Result<()> {
    let (a, b) = (&c.current, &c.candidate);
    let name = |r: &Report| r.route.clone().unwrap_or_else(|| "degraded".into());
    writeln!(
        o,
        "{} cases ({} attacks, {} benign), seed {}; 95 % intervals in brackets\n",
        a.cases, a.attacks, a.benign, a.seed
    )?;
    writeln!(o, "{:<26} {:>28} {:>28}", "", name(a), name(b))?;
    let rates = |r: &Report| {
        [
            ("verdict accuracy", r.verdict_accuracy, r.intervals.verdict_accuracy),
            ("technique recall", r.technique_recall, r.intervals.technique_recall),
            (
                "false-positive rejection",
                r.false_positive_rejection,
                r.intervals.false_positive_rejection,
            ),
        ]
    };
    for ((what, x, xi), (_, y, yi)) in rates(a).into_iter().zip(rates(b)) {
        writeln!(
            o,
            "{what:<26} {:>28} {:>28}",
            format!("{} {}", pct(x), interval(xi)),
            format!("{} {}", pct(y), interval(yi))
        )?;
    }
    writeln!(
        o,
        "{:<26} {:>28} {:>28}",
        "verdicts by a model",
        format!("{} of {}", a.model_verdicts, a.detected),
        format!("{} of {}", b.model_verdicts, b.detected)
    )?;
    writeln!(o, "{:<26} {:>28} {:>28}", "tokens", a.tokens, b.tokens)?;
    writeln!(
        o,
        "{:<26} {:>28} {:>28}",
        "cost",
        format!("{:.2} EUR", a.cost_eur),
        format!("{:.2} EUR", b.cost_eur)
    )?;
    let p = &c.paired;
    writeln!(
        o,
        "\naccuracy, {} minus {}: {} {} on {} cases both triaged ({} right only with {}, {} only with {})",
        name(b),
        name(a),
        p.difference
            .map_or_else(|| "-".into(), |d| format!("{:+.1} points", d * 100.0)),
        p.interval
            .map_or_else(String::new, |[l, h]| format!("[{:+.1}, {:+.1}]", l * 100.0, h * 100.0)),
        p.cases,
        p.candidate_only,
        name(b),
        p.current_only,
        name(a)
    )?;
    match &c.better {
        Some(r) => writeln!(
            o,
            "better: {r} (the interval excludes zero); recorded at ledger #{}",
            c.record
        )?,
        None => writeln!(
            o,
            "neither is shown better (the interval includes zero); recorded at ledger #{}",
            c.record
        )?,
    }
    Ok(())
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
    writeln!(
        o,
        "route {}; {:.2} EUR; seed {} (95 % Wilson intervals in brackets)",
        r.route.as_deref().unwrap_or("none (degraded triage)"),
        r.cost_eur,
        r.seed
    )?;
    writeln!(
        o,
        "verdict accuracy          {} {}",
        pct(r.verdict_accuracy),
        interval(r.intervals.verdict_accuracy)
    )?;
    writeln!(
        o,
        "technique recall          {} {}",
        pct(r.technique_recall),
        interval(r.intervals.technique_recall)
    )?;
    writeln!(
        o,
        "false-positive rejection  {} {}",
        pct(r.false_positive_rejection),
        interval(r.intervals.false_positive_rejection)
    )?;
    for f in &r.benign_families {
        writeln!(
            o,
            "  {:<24} {:>6} {} ({} of {} detected, {} cases)",
            f.family.as_str(),
            pct(f.rate),
            interval(f.interval),
            f.rejected,
            f.detected,
            f.cases
        )?;
    }
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
    fn wilson_intervals_hold_the_rate_and_narrow_with_more_cases() {
        assert_eq!(wilson(0, 0), None);
        assert_eq!(wilson(0, 40), Some([0.0, wilson(0, 40).unwrap()[1]]));
        assert_eq!(wilson(40, 40).unwrap()[1], 1.0);
        // 2 of 7 (the old gold set's benign cases): 8.2 % to 64.1 % (Wilson, 1927).
        let [lo, hi] = wilson(2, 7).unwrap();
        assert!((lo - 0.0822).abs() < 1e-3 && (hi - 0.6411).abs() < 1e-3, "{lo} {hi}");
        for (k, n) in [(1, 3), (50, 100), (64, 326), (299, 300)] {
            let [lo, hi] = wilson(k, n).unwrap();
            let p = k as f64 / n as f64;
            assert!(lo < p && p < hi, "{k}/{n}: {lo} {hi}");
            let [lo10, hi10] = wilson(k * 10, n * 10).unwrap();
            assert!(hi10 - lo10 < hi - lo);
        }
    }

    #[test]
    fn the_paired_interval_excludes_zero_only_for_a_consistent_difference() {
        let same: Vec<(bool, bool)> = (0..50).map(|i| (i % 2 == 0, i % 2 == 0)).collect();
        let p = paired(&same, 1);
        assert_eq!((p.difference, p.interval), (Some(0.0), Some([0.0, 0.0])));
        // The candidate right on 20 more of 60 cases: clearly better.
        let better: Vec<(bool, bool)> = (0..60).map(|i| (i < 30, i < 50)).collect();
        let p = paired(&better, 1);
        assert!(p.interval.unwrap()[0] > 0.0, "{p:?}");
        assert_eq!((p.candidate_only, p.current_only), (20, 0));
        // Two wins each way on 40 cases: no difference shown.
        let mixed: Vec<(bool, bool)> = (0..40).map(|i| (!(2..4).contains(&i), i >= 2)).collect();
        let [lo, hi] = paired(&mixed, 1).interval.unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    }

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

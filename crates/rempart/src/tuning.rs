//! `rempart tuning`: tuning a model on the institution's own history and intelligence inside
//! the boundary.
//!
//! `prepare` writes a job directory for the institution's own GPU: data sets built from what it
//! knows (incidents analysts judged, as chat examples; their corrections, as preference pairs;
//! STIX and MISP intelligence, as questions and answers), every value the privacy engine
//! recognizes pseudonymized in a domain of the data set's own and the result checked line by
//! line; split by time with each incident or intelligence object whole in one split; in the
//! formats the tools read (OpenAI's and Mistral's chat JSONL, OpenAI's preference JSONL, TRL's
//! conversational prompt / chosen / rejected); a TRL + PEFT LoRA script and an Axolotl
//! configuration; and a data card. The data set's hash is recorded in the ledger.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use jiff::Timestamp;
use rempart_model::DataClass;
use rempart_privacy::redact::{Redactor, Replacement};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::{incidents, instance};

#[derive(Debug, Subcommand)]
pub enum TuningCommand {
    /// Write a tuning job directory for a GPU inside the boundary: the data sets (incidents
    /// analysts judged, their corrections as preference pairs, and the intelligence given with
    /// --intel), pseudonymized in a domain of their own and checked, split by time; a TRL +
    /// PEFT LoRA script, an Axolotl configuration, a runner script and a data card. The data
    /// set's hash is recorded in the ledger
    Prepare(PrepareArgs),
    /// Send a prepared job's data to a provider's OpenAI-compatible fine-tuning API (its files,
    /// then a job), only if the gateway's policy lets the data set's class reach that provider
    /// (the provider's ceiling, its jurisdiction's, the `tuning` purpose). The refusal, or
    /// every upload and the job, is recorded in the ledger with the data set's hash
    Submit(SubmitArgs),
    /// Train a prepared job inside the boundary: `[tuning] runner` (a program, no shell) runs
    /// the job's `train_lora.py` in the job directory, its output followed here; the adapter
    /// it makes is then loaded by `[tuning] adapter_server` (vLLM) under the job's name, a
    /// model the gateway can route to. The start, the end and the registration are recorded
    /// in the ledger with the data set's hash
    Run(RunArgs),
    /// The registry of tuned models, from the ledger: each data set (its hash, domain, base
    /// model, counts), what was made from it (submissions and the policy's decisions, uploads,
    /// jobs and the tuned models they gave, runs, adapters and their names), and, for each
    /// tuned model that has triaged incidents, how often analysts agreed with it
    List,
    /// A submitted job as its provider sees it now; once it has ended (succeeded, failed,
    /// cancelled), the end and the tuned model are recorded in the ledger
    Status {
        /// The provider it was submitted to (a `[gateway.providers]` name)
        #[arg(long)]
        provider: String,
        /// The provider's job id (`ftjob-…`)
        job: String,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job directory `tuning prepare` wrote
    #[arg(long, value_name = "DIR")]
    pub job: PathBuf,
    /// The adapter's name on the adapter server (the model name the gateway asks for)
    /// [default: `rempart-` and the data set's hash's first 12 characters]
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job directory `tuning prepare` wrote
    #[arg(long, value_name = "DIR")]
    pub job: PathBuf,
    /// The provider (a `[gateway.providers]` name)
    #[arg(long)]
    pub provider: String,
    /// `supervised` (the chat examples) or `dpo` (the preference pairs)
    #[arg(long, default_value = "supervised", value_parser = ["supervised", "dpo"])]
    pub method: String,
    /// The model to tune [default: the provider's configured model]
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The job directory to write (new, or empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The pseudonymization domain of the data set (one per data set: two data sets in
    /// different domains cannot be linked, nor to what a provider saw)
    #[arg(long, default_value = "tuning")]
    pub domain: String,
    /// STIX 2.1 bundles and MISP events (files, or folders of `.json` files), turned into
    /// questions and answers: which actor, which technique, what to look for
    #[arg(long = "intel", value_name = "PATH")]
    pub intel: Vec<PathBuf>,
    /// The open-weight model the adapter is tuned from (a Hugging Face name or a local path)
    #[arg(long, default_value = "mistralai/Mistral-7B-Instruct-v0.3", value_name = "MODEL")]
    pub base_model: String,
    /// Percent of the units (incidents, intelligence objects), the latest, kept for validation
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=40))]
    pub validation: u8,
    /// Percent of the units, the latest of all, kept for the test split
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=40))]
    pub test: u8,
}

/// The splits, in time order.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// One example, whole: the unit it belongs to decides its split.
#[derive(Debug, Clone)]
pub struct Example {
    /// The incident or intelligence object it comes from.
    pub unit: String,
    /// `incident` or `intel`.
    pub source: &'static str,
    pub time: Timestamp,
    /// The analyst's classification of an incident; the TLP of intelligence.
    pub label: Option<String>,
    /// How far it may be disclosed: an incident's most restricted event, intelligence's TLP
    /// (unmarked: `TLP:AMBER`, as telemetry).
    pub class: DataClass,
    /// System (for incidents), user and assistant.
    pub messages: Vec<Value>,
    /// The rejected answer, for a preference pair.
    pub rejected: Option<Value>,
}

/// The examples of each split, by index into `examples`: for each source (incidents,
/// intelligence), units sorted by their first time, the latest `test` percent to the test
/// split, the `validation` percent before them to the validation split. A unit (all of an
/// incident's examples) is never in two splits, and no unit of a split began after a unit of
/// the same source in the next one.
pub fn split(examples: &[Example], validation: u8, test: u8) -> [Vec<usize>; 3] {
    // Each source on its own time line: a model tuned on earlier incidents is tested on later
    // ones, and likewise for intelligence.
    let mut out: [Vec<usize>; 3] = Default::default();
    let sources: BTreeSet<&str> = examples.iter().map(|e| e.source).collect();
    for source in sources {
        let idx: Vec<usize> = (0..examples.len()).filter(|&i| examples[i].source == source).collect();
        let picked: Vec<Example> = idx.iter().map(|&i| examples[i].clone()).collect();
        for (s, part) in split_one(&picked, validation, test).into_iter().enumerate() {
            out[s].extend(part.into_iter().map(|j| idx[j]));
        }
    }
    for part in &mut out {
        part.sort_unstable();
    }
    out
}

fn split_one(examples: &[Example], validation: u8, test: u8) -> [Vec<usize>; 3] {
    let mut units: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for e in examples {
        let t = units.entry(e.unit.as_str()).or_insert(e.time);
        *t = (*t).min(e.time);
    }
    let mut order: Vec<(Timestamp, &str)> = units.into_iter().map(|(u, t)| (t, u)).collect();
    order.sort();
    let n = order.len();
    let share = |percent: u8| (n * usize::from(percent) + 50) / 100;
    let (n_test, n_validation) = (share(test), share(validation));
    let mut which: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (_, unit)) in order.iter().enumerate() {
        let s = if i >= n - n_test {
            2
        } else if i >= n - n_test - n_validation.min(n - n_test) {
            1
        } else {
            0
        };
        which.insert(unit, s);
    }
    // A unit's examples all go where its first one does.
    let mut out: [Vec<usize>; 3] = Default::default();
    for (i, e) in examples.iter().enumerate() {
        out[which[e.unit.as_str()]].push(i);
    }
    out
}

pub async fn run(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: TuningCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    let (done, text) = match command {
        TuningCommand::Prepare(args) => {
            let state = incidents::wire(data_dir, config, incidents::Wiring::Triage(None)).await?;
            let result = prepare(&state, &args).await;
            state.ledger.close().await;
            let card = result?;
            let mut text = format!("wrote the tuning job `{}`\n", args.out.display());
            for (name, n) in card["counts"].as_object().into_iter().flatten() {
                text.push_str(&format!("  {name}: {n}\n"));
            }
            text.push_str(&format!(
                "  data set sha256 {}\n",
                card["sha256"].as_str().unwrap_or_default()
            ));
            for s in card["pseudonymization"]["skipped"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "  left out {}: {}\n",
                    s["unit"].as_str().unwrap_or_default(),
                    s["reason"].as_str().unwrap_or_default()
                ));
            }
            text.push_str(&format!("run it on the GPU host: {}/run.sh", args.out.display()));
            (card, text)
        }
        TuningCommand::Submit(args) => {
            let ledger = ledger(data_dir, config).await?;
            let result = submit(config, &ledger, &args).await;
            ledger.close().await;
            let done = result?;
            let text = format!(
                "job {} at `{}`: {}",
                done["job"]["id"].as_str().unwrap_or_default(),
                args.provider,
                done["job"]["status"].as_str().unwrap_or_default()
            );
            (done, text)
        }
        TuningCommand::Run(args) => {
            let ledger = ledger(data_dir, config).await?;
            let result = train(config, &ledger, &args).await;
            ledger.close().await;
            let done = result?;
            let mut text = format!(
                "adapter `{}` at {}",
                done["name"].as_str().unwrap_or_default(),
                done["adapter"].as_str().unwrap_or_default()
            );
            if let Some(p) = done["provider"].as_str() {
                text.push_str(&format!(
                    "\nloaded by the adapter server; to route to it, add to the configuration:\n{p}"
                ));
            }
            (done, text)
        }
        TuningCommand::List => {
            let state = incidents::wire(data_dir, config, incidents::Wiring::Records).await?;
            let result = registry(&state).await;
            state.ledger.close().await;
            let sets = result?;
            let mut text = String::new();
            for s in sets.as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "data set {} ({}, domain {}, {} examples), for {}\n",
                    s["sha256"].as_str().unwrap_or_default(),
                    s["time"].as_str().unwrap_or_default(),
                    s["domain"].as_str().unwrap_or_default(),
                    s["examples"],
                    s["base_model"].as_str().unwrap_or_default(),
                ));
                for m in s["models"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "  model {} ({}): {} verdict(s) judged, agreement {}\n",
                        m["name"].as_str().unwrap_or_default(),
                        m["made_by"].as_str().unwrap_or_default(),
                        m["triage"]["judged"],
                        m["triage"]["agreement_rate"],
                    ));
                }
                for step in s["made"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "  {} {}\n",
                        step["kind"].as_str().unwrap_or_default(),
                        step["time"].as_str().unwrap_or_default()
                    ));
                }
            }
            if text.is_empty() {
                text.push_str("no tuning data set yet (rempart tuning prepare)");
            }
            (sets, text)
        }
        TuningCommand::Status { provider, job } => {
            let ledger = ledger(data_dir, config).await?;
            let result = status(config, &ledger, &provider, &job).await;
            ledger.close().await;
            let job = result?;
            let text = format!(
                "job {}: {}{}",
                job["id"].as_str().unwrap_or_default(),
                job["status"].as_str().unwrap_or_default(),
                job["fine_tuned_model"]
                    .as_str()
                    .map(|m| format!(", model {m}"))
                    .unwrap_or_default()
            );
            (job, text)
        }
    };
    let mut o = crate::out::stdout();
    if json_out {
        writeln!(o, "{done}")?;
    } else {
        writeln!(o, "{}", text.trim_end())?;
    }
    Ok(())
}

/// The instance's ledger, for the commands that need nothing else of it.
pub(crate) async fn ledger(data_dir: &Path, config: &rempart_config::Config) -> anyhow::Result<rempart_audit::Ledger> {
    let store = instance::open_store(data_dir, config).await?;
    instance::open_ledger(data_dir, config, store).await
}

/// The JSON files under `paths` (files as given, folders walked in name order).
fn json_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = walk(p)?;
            found.retain(|f| f.extension().is_some_and(|e| e == "json"));
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// Longest intelligence file read.
const MAX_INTEL_BYTES: u64 = 64 * 1024 * 1024;

/// The questions and answers of the intelligence files, pseudonymized; and what was left out.
fn intel_examples(
    files: &[PathBuf],
    redactor: &Redactor,
    replaced: &mut Vec<Replacement>,
    skipped: &mut Vec<(String, String)>,
) -> anyhow::Result<Vec<Example>> {
    let mut out = Vec::new();
    for file in files {
        let size = std::fs::metadata(file)
            .with_context(|| format!("cannot read `{}`", file.display()))?
            .len();
        anyhow::ensure!(
            size <= MAX_INTEL_BYTES,
            "`{}` is {size} bytes, more than the {MAX_INTEL_BYTES} read",
            file.display()
        );
        let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        // A file that holds no intelligence is named in the card with why; the others count.
        let lessons = match serde_json::from_slice::<Value>(&bytes) {
            Err(e) => Err(format!("not JSON: {e}")),
            Ok(doc) => rempart_intel::knowledge::lessons(&doc),
        };
        let lessons = match lessons {
            Ok(lessons) => lessons,
            Err(why) => {
                skipped.push((file.display().to_string(), why));
                continue;
            }
        };
        for l in lessons {
            let q = redactor.redact_text(&l.question)?;
            let a = redactor.redact_text(&l.answer)?;
            let mut found = q.replacements;
            found.extend(a.replacements);
            // A value recognized in the question is replaced in the answer too, and back.
            let (question, _) = Redactor::replace_known_text(&q.output, &found);
            let (answer, _) = Redactor::replace_known_text(&a.output, &found);
            if let Some(r) = found
                .iter()
                .find(|r| r.original.len() >= 3 && (question.contains(&r.original) || answer.contains(&r.original)))
            {
                skipped.push((
                    l.id.clone(),
                    format!("a {} value would remain in clear", r.entity.prefix()),
                ));
                continue;
            }
            replaced.extend(found);
            out.push(Example {
                unit: l.id,
                source: "intel",
                // An object without a time counts as the oldest knowledge.
                time: l.time.unwrap_or(Timestamp::UNIX_EPOCH),
                class: l.tlp.as_deref().map_or(DataClass::default(), tlp_class),
                label: l.tlp,
                messages: vec![
                    json!({"role": "user", "content": question}),
                    json!({"role": "assistant", "content": answer}),
                ],
                rejected: None,
            });
        }
    }
    Ok(out)
}

/// The class of a TLP marking as STIX and MISP write it (`white` is TLP 1.0's `clear`); one
/// not known is taken as the strictest.
fn tlp_class(tlp: &str) -> DataClass {
    tlp.parse().unwrap_or(DataClass::Red)
}

/// The system prompt of intelligence questions.
const INTEL_SYSTEM: &str = "You are a security analyst of a European institution's SOC. Answer from the institution's threat intelligence: actors, techniques (MITRE ATT&CK), tools and what to look for.";

/// Writes the job directory; returns its data card.
pub async fn prepare(state: &rempart_server::AppState, args: &PrepareArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        u16::from(args.validation) + u16::from(args.test) < 100,
        "--validation and --test leave nothing to train on"
    );
    if args.out.exists() {
        anyhow::ensure!(
            args.out.is_dir() && std::fs::read_dir(&args.out)?.next().is_none(),
            "`{}` exists and is not an empty directory",
            args.out.display()
        );
    }
    let privacy = state.privacy.as_ref().context("no privacy engine")?;
    let redactor = privacy.redactor(&args.domain)?;
    let (judged, mut skipped) = crate::triage::judged_examples(state, &redactor).await?;
    let mut replaced: Vec<Replacement> = Vec::new();
    let mut examples: Vec<Example> = Vec::new();
    for j in judged {
        replaced.extend(j.replaced);
        examples.push(Example {
            unit: j.incident.to_string(),
            source: "incident",
            time: j.time,
            label: Some(
                serde_json::to_value(j.classification)?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            class: j.class,
            messages: j.messages.to_vec(),
            rejected: j.rejected,
        });
    }
    let intel_files = json_files(&args.intel)?;
    let intel = intel_examples(&intel_files, &redactor, &mut replaced, &mut skipped)?;
    for mut e in intel {
        e.messages.insert(0, json!({"role": "system", "content": INTEL_SYSTEM}));
        examples.push(e);
    }
    // The same example twice (two intelligence files sharing an object) is kept once.
    let mut seen = BTreeSet::new();
    examples.retain(|e| seen.insert(Value::from(e.messages.clone()).to_string()));
    anyhow::ensure!(
        !examples.is_empty(),
        "nothing to tune on: no incident an analyst judged, and no intelligence given (--intel)"
    );
    examples.sort_by(|a, b| (a.time, &a.unit).cmp(&(b.time, &b.unit)));
    let splits = split(&examples, args.validation, args.test);

    // The last check: every text a model will read (each message, a user message holding
    // JSON read as JSON) read again by the recognizers, which must find nothing but this
    // data set's own pseudonyms.
    let known: BTreeSet<&str> = replaced
        .iter()
        .map(|r| r.pseudonym.as_str())
        .chain([rempart_privacy::redact::SECRET_REMOVED])
        .collect();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (s, name) in SPLITS.iter().enumerate() {
        let picked: Vec<&Example> = splits[s].iter().map(|&i| &examples[i]).collect();
        for (n, e) in picked.iter().enumerate() {
            for m in e.messages.iter().chain(&e.rejected) {
                let content = m["content"].as_str().unwrap_or_default();
                let again = redactor.redact_line(content)?;
                if let Some(r) = again
                    .replacements
                    .iter()
                    .find(|r| !only_pseudonyms(&r.original, &known) && !within_pseudonym(content, r, &known))
                {
                    anyhow::bail!(
                        "refusing to write the tuning job: in `data/sft/{name}.jsonl` line {} ({} {}), a {} value ({}) is still recognizable",
                        n + 1,
                        e.source,
                        e.unit,
                        r.entity.prefix(),
                        r.recognizer
                    );
                }
            }
        }
        let sft: Vec<String> = picked
            .iter()
            .map(|e| json!({"messages": e.messages}).to_string())
            .collect();
        let pairs: Vec<&Example> = picked.iter().copied().filter(|e| e.rejected.is_some()).collect();
        let prompt = |e: &Example| e.messages[..e.messages.len() - 1].to_vec();
        let openai: Vec<String> = pairs
            .iter()
            .map(|e| {
                json!({
                    "input": {"messages": prompt(e)},
                    "preferred_output": [e.messages.last()],
                    "non_preferred_output": [e.rejected],
                })
                .to_string()
            })
            .collect();
        let trl: Vec<String> = pairs
            .iter()
            .map(|e| json!({"prompt": prompt(e), "chosen": [e.messages.last()], "rejected": [e.rejected]}).to_string())
            .collect();
        files.insert(format!("data/sft/{name}.jsonl"), lines(&sft));
        files.insert(format!("data/preference/{name}.jsonl"), lines(&openai));
        files.insert(format!("data/preference-trl/{name}.jsonl"), lines(&trl));
    }
    let digest = |text: &str| hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let hashes: BTreeMap<&String, String> = files.iter().map(|(p, t)| (p, digest(t))).collect();
    let dataset_hash = digest(&hashes.iter().map(|(p, h)| format!("{h}  {p}\n")).collect::<String>());

    let time_span = |idx: &[usize]| -> Value {
        match (
            idx.iter().map(|&i| examples[i].time).min(),
            idx.iter().map(|&i| examples[i].time).max(),
        ) {
            (Some(a), Some(b)) => json!({"from": a, "to": b}),
            _ => Value::Null,
        }
    };
    let mut counts = serde_json::Map::new();
    let mut splits_card = serde_json::Map::new();
    for (s, name) in SPLITS.iter().enumerate() {
        let idx = &splits[s];
        let by = |source: &str| idx.iter().filter(|&&i| examples[i].source == source).count();
        let pairs = idx.iter().filter(|&&i| examples[i].rejected.is_some()).count();
        counts.insert(format!("{name} examples"), json!(idx.len()));
        counts.insert(format!("{name} preference pairs"), json!(pairs));
        let of = |source: &str| {
            idx.iter()
                .copied()
                .filter(|&i| examples[i].source == source)
                .collect::<Vec<_>>()
        };
        splits_card.insert(
            (*name).to_owned(),
            json!({
                "examples": idx.len(), "incidents": by("incident"), "intelligence": by("intel"),
                "preference_pairs": pairs,
                "units": idx.iter().map(|&i| examples[i].unit.as_str()).collect::<BTreeSet<_>>().len(),
                "time": {"incidents": time_span(&of("incident")), "intelligence": time_span(&of("intel"))},
            }),
        );
    }
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for e in &examples {
        *labels
            .entry(format!("{}: {}", e.source, e.label.as_deref().unwrap_or("unmarked")))
            .or_default() += 1;
    }
    let mut entities: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &replaced {
        entities
            .entry(r.entity.prefix())
            .or_default()
            .insert(r.pseudonym.as_str());
    }
    // The data set goes no further than its most restricted example may.
    let class = examples.iter().map(|e| e.class).max().unwrap_or_default();
    let card = json!({
        "name": args.out.file_name().map(|n| n.to_string_lossy().into_owned()),
        "created": Timestamp::now(),
        "sha256": dataset_hash,
        "class": class.tlp_label(),
        "base_model": args.base_model,
        "domain": args.domain,
        "sources": {
            "incidents": examples.iter().filter(|e| e.source == "incident").count(),
            "intelligence": examples.iter().filter(|e| e.source == "intel").count(),
            "intelligence_files": intel_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        },
        "counts": counts,
        "splits": splits_card,
        "split_rule": format!(
            "for incidents and intelligence apart, units (an incident, an intelligence object) in time order; the latest {}% for test, the {}% before them for validation; a unit is whole in one split",
            args.test, args.validation
        ),
        "labels": labels,
        "time": time_span(&(0..examples.len()).collect::<Vec<_>>()),
        "pseudonymization": {
            "domain": args.domain,
            "values_replaced": entities.iter().map(|(k, v)| (k.to_string(), json!(v.len()))).collect::<serde_json::Map<_, _>>(),
            "skipped": skipped.iter().map(|(u, r)| json!({"unit": u, "reason": r})).collect::<Vec<_>>(),
            "check": "every line read again by the recognizers: nothing recognizable but this domain's pseudonyms",
        },
        "formats": {
            "data/sft": "chat JSONL ({\"messages\": [...]}): OpenAI and Mistral fine-tuning, TRL SFTTrainer, Axolotl chat_template",
            "data/preference": "OpenAI preference (DPO) JSONL: input.messages, preferred_output, non_preferred_output",
            "data/preference-trl": "TRL conversational preference JSONL: prompt, chosen, rejected",
        },
        "files": hashes,
    });
    // Written only once everything is checked: a refusal leaves no partial job behind.
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create `{}`", args.out.display()))?;
    for (path, text) in &files {
        write(&args.out.join(path), text)?;
    }
    write(&args.out.join("train_lora.py"), &train_script(&args.base_model))?;
    write(&args.out.join("axolotl.yaml"), &axolotl(&args.base_model))?;
    write(&args.out.join("run.sh"), RUN_SH)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(args.out.join("run.sh"), std::fs::Permissions::from_mode(0o750))?;
    }
    write(
        &args.out.join("data_card.json"),
        &format!("{}\n", serde_json::to_string_pretty(&card)?),
    )?;
    write(&args.out.join("DATA_CARD.md"), &card_markdown(&card))?;
    privacy
        .vault()
        .remember(redactor.domain(), &replaced, Timestamp::now())
        .await?;
    let keyring = state.ledger.keyring();
    let subjects: BTreeSet<String> = replaced
        .iter()
        .filter_map(|r| r.subject.as_deref())
        .map(|s| keyring.subject_mac(s))
        .collect();
    state
        .ledger
        .append(rempart_audit::Draft::new(
            instance::cli_actor(),
            rempart_audit::kind::TUNING_DATASET,
            json!({
                "sha256": dataset_hash, "domain": args.domain, "base_model": args.base_model,
                "counts": card["counts"], "skipped": skipped.len(), "files": card["files"],
                "out": std::fs::canonicalize(&args.out).unwrap_or_else(|_| args.out.clone()),
                // Whose pseudonyms it holds, as keyed digests: an access or erasure request
                // for a subject lists the data sets and jobs that hold it.
                "subjects": subjects,
            }),
        ))
        .await?;
    Ok(card)
}

/// Whether what the recognizers found again is this data set's own pseudonyms and nothing
/// more: with every pseudonym it holds taken out, no run of three letters or digits is left.
fn only_pseudonyms(found: &str, known: &BTreeSet<&str>) -> bool {
    let mut rest = found.to_owned();
    for k in known.iter().filter(|k| found.contains(**k)) {
        rest = rest.replace(k, " ");
    }
    rest.split(|c: char| !c.is_alphanumeric())
        .all(|run| run.chars().count() < 3)
}

/// Whether a finding lies inside one of the pseudonyms written (the recognizers may take
/// part of `[secret removed]` after a password flag for a password).
fn within_pseudonym(content: &str, found: &Replacement, known: &BTreeSet<&str>) -> bool {
    // Where the finding sits: its own span when it is a plain string's, else its first
    // occurrence (a JSON text's spans are its strings').
    let Some(at) = content.find(&found.original) else {
        return false;
    };
    let end = at + found.original.len();
    known.iter().filter(|k| k.contains(&found.original)).any(|k| {
        content
            .match_indices(*k)
            .any(|(start, k)| start <= at && end <= start + k.len())
    })
}

/// The provider named `name` in `[gateway]`.
fn provider<'a>(
    config: &'a rempart_config::Config,
    name: &str,
) -> anyhow::Result<&'a rempart_config::gateway::Provider> {
    config
        .gateway
        .providers
        .iter()
        .find(|p| p.name == name)
        .with_context(|| {
            let names: Vec<&str> = config.gateway.providers.iter().map(|p| p.name.as_str()).collect();
            format!("no provider `{name}` in `[gateway]` (configured: {})", names.join(", "))
        })
}

/// A prepared job's card, once every file is as the card says (nothing changed since).
fn checked_card(job: &Path) -> anyhow::Result<Value> {
    let path = job.join("data_card.json");
    let card: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?,
    )
    .with_context(|| format!("`{}` is not a data card", path.display()))?;
    let files = card["files"].as_object().context("the data card lists no files")?;
    for (file, hash) in files {
        let bytes = std::fs::read(job.join(file)).with_context(|| format!("cannot read `{file}` of the job"))?;
        anyhow::ensure!(
            hex::encode(sha2::Sha256::digest(&bytes)) == hash.as_str().unwrap_or_default(),
            "`{file}` changed since the job was prepared: prepare the job again"
        );
    }
    Ok(card)
}

/// Sends a job's data to a provider, if the policy allows it; the job as the provider created
/// it, with the files.
pub async fn submit(
    config: &rempart_config::Config,
    ledger: &rempart_audit::Ledger,
    args: &SubmitArgs,
) -> anyhow::Result<Value> {
    let p = provider(config, &args.provider)?;
    let card = checked_card(&args.job)?;
    let dataset = card["sha256"].as_str().unwrap_or_default().to_owned();
    let label = card["class"]
        .as_str()
        .context("the data card has no class: prepare the job again")?;
    let class: DataClass = label
        .parse()
        .map_err(|e| anyhow::anyhow!("the data card's class `{label}`: {e}"))?;
    let verdict = rempart_gateway::policy::decide(&config.gateway, p, class, PURPOSE, p.revoked);
    ledger
        .append(rempart_audit::Draft::new(
            instance::cli_actor(),
            rempart_audit::kind::TUNING_SUBMIT,
            json!({
                "sha256": dataset, "provider": p.name, "jurisdiction": p.jurisdiction.to_string(),
                "class": class.tlp_label(), "allowed": verdict.allowed, "reason": verdict.reason,
                "method": args.method,
            }),
        ))
        .await?;
    anyhow::ensure!(
        verdict.allowed,
        "the gateway's policy keeps this data set from provider `{}`: {}",
        p.name,
        verdict.reason
    );
    let kind = if args.method == "dpo" { "preference" } else { "sft" };
    let api = rempart_gateway::tuning::TuningApi::new(p)?;
    let mut uploaded = serde_json::Map::new();
    for split in ["train", "validation"] {
        let name = format!("data/{kind}/{split}.jsonl");
        let bytes = std::fs::read(args.job.join(&name)).with_context(|| format!("cannot read `{name}` of the job"))?;
        if bytes.is_empty() {
            anyhow::ensure!(
                split != "train",
                "`{name}` is empty: nothing to tune on with `{}`",
                args.method
            );
            continue;
        }
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let size = bytes.len();
        let file = api.upload(&format!("{split}.jsonl"), bytes).await?;
        ledger
            .append(rempart_audit::Draft::new(
                instance::cli_actor(),
                rempart_audit::kind::TUNING_UPLOAD,
                json!({"sha256": dataset, "provider": p.name, "file": file["id"], "name": name, "bytes": size, "file_sha256": sha}),
            ))
            .await?;
        uploaded.insert(split.to_owned(), file["id"].clone());
    }
    let mut body = json!({
        "model": args.model.as_deref().unwrap_or(&p.model),
        "training_file": uploaded["train"],
        "method": {"type": args.method},
        "suffix": "rempart",
        "metadata": {"dataset_sha256": dataset},
    });
    if let Some(v) = uploaded.get("validation") {
        body["validation_file"] = v.clone();
    }
    let job = api.create_job(&body).await?;
    ledger
        .append(rempart_audit::Draft::new(
            instance::cli_actor(),
            rempart_audit::kind::TUNING_JOB,
            json!({
                "sha256": dataset, "provider": p.name, "job": job["id"], "status": job["status"],
                "model": body["model"], "method": args.method, "files": uploaded,
            }),
        ))
        .await?;
    Ok(json!({"job": job, "files": uploaded, "sha256": dataset}))
}

/// Where a provider's job stands; an ended job is recorded in the ledger.
pub async fn status(
    config: &rempart_config::Config,
    ledger: &rempart_audit::Ledger,
    provider_name: &str,
    job: &str,
) -> anyhow::Result<Value> {
    let p = provider(config, provider_name)?;
    let api = rempart_gateway::tuning::TuningApi::new(p)?;
    let now = api.job(job).await?;
    if matches!(now["status"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
        ledger
            .append(rempart_audit::Draft::new(
                instance::cli_actor(),
                rempart_audit::kind::TUNING_JOB,
                json!({
                    "sha256": now["metadata"]["dataset_sha256"],
                    "provider": p.name, "job": now["id"], "status": now["status"],
                    "fine_tuned_model": now["fine_tuned_model"], "error": now["error"],
                    "metadata": now["metadata"],
                }),
            ))
            .await?;
    }
    Ok(now)
}

/// Runs a job through `[tuning] runner`, then loads its adapter on `[tuning] adapter_server`.
pub async fn train(
    config: &rempart_config::Config,
    ledger: &rempart_audit::Ledger,
    args: &RunArgs,
) -> anyhow::Result<Value> {
    let (program, fixed) = config.tuning.runner.as_ref().context(
        "no `[tuning] runner`: name the program that runs a job's train_lora.py (e.g. a Python with TRL and PEFT)",
    )?;
    let card = checked_card(&args.job)?;
    let dataset = card["sha256"].as_str().unwrap_or_default().to_owned();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("rempart-{}", &dataset[..dataset.len().min(12)]));
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "`{name}` is not an adapter name (letters, digits, `-`, `_`, `.`)"
    );
    let job = std::fs::canonicalize(&args.job).with_context(|| format!("cannot read `{}`", args.job.display()))?;
    let draft = |kind: &str, body: Value| rempart_audit::Draft::new(instance::cli_actor(), kind, body);
    ledger
        .append(draft(
            rempart_audit::kind::TUNING_RUN,
            json!({"sha256": dataset, "runner": program, "name": name, "stage": "started"}),
        ))
        .await?;
    // The program itself, with its arguments and the script: no shell reads any of it.
    let mut child = tokio::process::Command::new(program)
        .args(fixed)
        .arg(job.join("train_lora.py"))
        .current_dir(&job)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the runner `{}`", program.display()))?;
    // Its output, followed line by line on standard error.
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let (status, (), ()) = tokio::join!(child.wait(), follow(out), follow(err));
    let status = status.context("the runner could not be waited for")?;
    // The DPO stage's adapter when there was one, else the supervised one.
    let adapter = ["adapter/dpo", "adapter/sft"]
        .iter()
        .map(|d| job.join(d))
        .find(|d| d.join("adapter_config.json").is_file());
    ledger
        .append(draft(
            rempart_audit::kind::TUNING_RUN,
            json!({
                "sha256": dataset, "name": name, "stage": "ended", "exit": status.code(),
                "adapter": adapter.as_ref().map(|a| a.display().to_string()),
            }),
        ))
        .await?;
    anyhow::ensure!(status.success(), "the runner failed ({status}): see its output above");
    let adapter = adapter.with_context(|| {
        format!(
            "the runner ended without an adapter (`adapter_config.json` under `{}/adapter/`)",
            job.display()
        )
    })?;
    let mut done = json!({"name": name, "adapter": adapter.display().to_string(), "sha256": dataset});
    let Some(server) = &config.tuning.adapter_server else {
        return Ok(done);
    };
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(rempart_gateway::upstream::tls(None)?)
        .timeout(std::time::Duration::from_secs(300))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut rb = http
        .post(format!("{server}/v1/load_lora_adapter"))
        .json(&json!({"lora_name": name, "lora_path": adapter.display().to_string()}));
    if let Some(var) = &config.tuning.adapter_server_key_env {
        let key = std::env::var(var).with_context(|| format!("`{var}` (the adapter server's key) is not set"))?;
        rb = rb.bearer_auth(key);
    }
    let resp = rb
        .send()
        .await
        .with_context(|| format!("cannot reach the adapter server {server}"))?;
    let code = resp.status();
    let said = resp.text().await.unwrap_or_default();
    ledger
        .append(draft(
            rempart_audit::kind::TUNING_ADAPTER,
            json!({"sha256": dataset, "name": name, "server": server, "adapter": adapter.display().to_string(), "status": code.as_u16()}),
        ))
        .await?;
    anyhow::ensure!(
        code.is_success(),
        "the adapter server refused the adapter ({code}): {}",
        said.chars().take(300).collect::<String>()
    );
    done["server"] = json!(server);
    done["provider"] = json!(format!(
        "[[gateway.providers]]\nname = \"{name}\"\nkind = \"vllm\"\nbase_url = \"{server}/v1\"\nmodel = \"{name}\"\njurisdiction = \"on-prem\"\nmax_class = \"TLP:RED\"\n"
    ));
    Ok(done)
}

/// The registry of tuned models: every `tuning.*` record of the ledger, grouped by data set,
/// with the models made from each (an adapter's name, a provider job's tuned model) and the
/// analysts' agreement with each one's verdicts.
pub async fn registry(state: &rempart_server::AppState) -> anyhow::Result<Value> {
    let mut sets: Vec<Value> = rempart_privacy::tuning_history(&state.ledger)
        .await?
        .into_iter()
        .map(|s| {
            let examples: u64 = SPLITS
                .iter()
                .filter_map(|n| s.record["counts"][format!("{n} examples")].as_u64())
                .sum();
            json!({
                "sha256": s.record["sha256"], "time": s.time, "domain": s.record["domain"],
                "base_model": s.record["base_model"], "out": s.record["out"], "examples": examples,
                "previous_sha256": s.record["previous_sha256"], "made": s.made, "models": [],
            })
        })
        .collect();
    let agreement = match &state.incidents {
        Some(incidents) => rempart_server::incident_api::agreement(incidents)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => json!({}),
    };
    for set in &mut sets {
        // The models made from it: adapters loaded under a name, jobs that gave a tuned model.
        let mut models = BTreeMap::new();
        for s in set["made"].as_array().into_iter().flatten() {
            let p = &s["payload"];
            let (name, by) = match s["kind"].as_str() {
                Some(rempart_audit::kind::TUNING_ADAPTER)
                    if p["status"].as_u64().is_some_and(|c| (200..300).contains(&c)) =>
                {
                    (
                        p["name"].as_str(),
                        format!("adapter on {}", p["server"].as_str().unwrap_or_default()),
                    )
                }
                Some(rempart_audit::kind::TUNING_JOB) => (
                    p["fine_tuned_model"].as_str(),
                    format!(
                        "job {} at {}",
                        p["job"].as_str().unwrap_or_default(),
                        p["provider"].as_str().unwrap_or_default()
                    ),
                ),
                _ => (None, String::new()),
            };
            if let Some(name) = name {
                models.insert(
                    name.to_owned(),
                    json!({"name": name, "made_by": by, "triage": agreement["per_model"].get(name).cloned().unwrap_or(json!({"judged": 0, "agreement_rate": null}))}),
                );
            }
        }
        set["models"] = Value::from(models.into_values().collect::<Vec<_>>());
    }
    Ok(Value::from(sets))
}

/// Copies a runner's output to standard error, line by line, as it comes.
async fn follow<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) {
    if let Some(pipe) = pipe {
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(pipe));
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("runner: {line}");
        }
    }
}

/// The purpose tuning declares to the gateway's policy.
const PURPOSE: &str = "tuning";

fn lines(items: &[String]) -> String {
    items.iter().map(|l| format!("{l}\n")).collect()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
}

/// A Python string literal of `s` (JSON's escapes are Python's).
fn py(s: &str) -> String {
    Value::from(s).to_string()
}

/// The TRL + PEFT LoRA training script: supervised tuning on `data/sft`, then, when the data set
/// holds preference pairs, DPO on `data/preference-trl`.
fn train_script(base_model: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
"""LoRA tuning of {base_model} on this job's data, with TRL and PEFT, on this machine.

Written by `rempart tuning prepare`. The data is pseudonymized (see DATA_CARD.md); nothing here
reaches a network but the model's own download, which HF_HUB_OFFLINE=1 forbids once the
weights are local.
"""
import json
import os
import sys

from datasets import load_dataset
from peft import LoraConfig
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

BASE_MODEL = os.environ.get("REMPART_BASE_MODEL", {model})
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "adapter")


def data(kind, split):
    path = os.path.join(HERE, "data", kind, split + ".jsonl")
    return path if os.path.getsize(path) > 0 else None


def lora():
    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")


def main():
    files = {{s: data("sft", s) for s in ("train", "validation")}}
    sft = load_dataset("json", data_files={{k: v for k, v in files.items() if v}})
    trainer = SFTTrainer(
        model=BASE_MODEL,
        train_dataset=sft["train"],
        eval_dataset=sft.get("validation"),
        peft_config=lora(),
        args=SFTConfig(output_dir=os.path.join(OUT, "sft"), num_train_epochs=3, learning_rate=2e-4,
                       per_device_train_batch_size=1, gradient_accumulation_steps=8, logging_steps=10,
                       eval_strategy="epoch" if "validation" in sft else "no", save_strategy="epoch",
                       report_to="none"),
    )
    trainer.train()
    trainer.save_model(os.path.join(OUT, "sft"))
    pairs = data("preference-trl", "train")
    if pairs:
        dpo = load_dataset("json", data_files={{"train": pairs}})
        trainer = DPOTrainer(
            model=os.path.join(OUT, "sft"),
            train_dataset=dpo["train"],
            peft_config=lora(),
            args=DPOConfig(output_dir=os.path.join(OUT, "dpo"), num_train_epochs=1, learning_rate=5e-6,
                           per_device_train_batch_size=1, gradient_accumulation_steps=8, report_to="none"),
        )
        trainer.train()
        trainer.save_model(os.path.join(OUT, "dpo"))
    json.dump({{"base_model": BASE_MODEL, "adapter": OUT}}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
"#,
        model = py(base_model)
    )
}

/// The Axolotl configuration of the same tuning.
fn axolotl(base_model: &str) -> String {
    format!(
        "# LoRA tuning with Axolotl on this job's data (written by `rempart tuning prepare`).\n\
         # axolotl train axolotl.yaml\n\
         base_model: {model}\n\
         adapter: lora\n\
         lora_r: 16\n\
         lora_alpha: 32\n\
         lora_dropout: 0.05\n\
         lora_target_linear: true\n\
         chat_template: tokenizer_default\n\
         datasets:\n\
         \x20 - path: data/sft/train.jsonl\n\
         \x20   ds_type: json\n\
         \x20   type: chat_template\n\
         \x20   field_messages: messages\n\
         test_datasets:\n\
         \x20 - path: data/sft/validation.jsonl\n\
         \x20   ds_type: json\n\
         \x20   split: train\n\
         \x20   type: chat_template\n\
         \x20   field_messages: messages\n\
         sequence_len: 8192\n\
         micro_batch_size: 1\n\
         gradient_accumulation_steps: 8\n\
         num_epochs: 3\n\
         learning_rate: 0.0002\n\
         optimizer: adamw_torch\n\
         lr_scheduler: cosine\n\
         output_dir: ./adapter/axolotl\n",
        model = py(base_model)
    )
}

/// The runner: the training script in the job directory, nothing else.
const RUN_SH: &str = "#!/bin/sh\n# Runs this tuning job on the host's GPU (written by `rempart tuning prepare`).\n\
set -eu\ncd \"$(dirname \"$0\")\"\nexport HF_HUB_DISABLE_TELEMETRY=1\nexec python3 train_lora.py \"$@\"\n";

/// The data card, for people.
fn card_markdown(card: &Value) -> String {
    let mut md = format!(
        "# Data card: {}\n\nData set sha256 `{}` (recorded in the audit ledger), made {} for `{}`.\n\n",
        card["name"].as_str().unwrap_or("tuning job"),
        card["sha256"].as_str().unwrap_or_default(),
        card["created"].as_str().unwrap_or_default(),
        card["base_model"].as_str().unwrap_or_default(),
    );
    md.push_str(&format!(
        "Class {}: the most restricted of its examples; `rempart tuning submit` sends it only where the gateway's policy lets that class go.\n\n",
        card["class"].as_str().unwrap_or_default()
    ));
    md.push_str(&format!(
        "## Sources\n\n- incidents judged by analysts: {}\n- intelligence (STIX, MISP): {} questions and answers\n\n",
        card["sources"]["incidents"], card["sources"]["intelligence"]
    ));
    md.push_str(
        "## Splits\n\n| split | examples | incidents | intelligence | preference pairs | incidents from – to | intelligence from – to |\n|---|---|---|---|---|---|---|\n",
    );
    for name in SPLITS {
        let s = &card["splits"][name];
        let span = |source: &str| {
            let t = &s["time"][source];
            format!(
                "{} – {}",
                t["from"].as_str().unwrap_or("-"),
                t["to"].as_str().unwrap_or("-")
            )
        };
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} |\n",
            s["examples"],
            s["incidents"],
            s["intelligence"],
            s["preference_pairs"],
            span("incidents"),
            span("intelligence"),
        ));
    }
    md.push_str(&format!(
        "\n{}.\n\n## Labels\n\n",
        card["split_rule"].as_str().unwrap_or_default()
    ));
    for (k, v) in card["labels"].as_object().into_iter().flatten() {
        md.push_str(&format!("- {k}: {v}\n"));
    }
    let p = &card["pseudonymization"];
    md.push_str(&format!(
        "\n## Pseudonymization\n\nDomain `{}`: its pseudonyms are linked to no other domain's, nor to what a provider saw.\n\n",
        p["domain"].as_str().unwrap_or_default()
    ));
    for (k, v) in p["values_replaced"].as_object().into_iter().flatten() {
        md.push_str(&format!("- {k}: {v} distinct values replaced\n"));
    }
    md.push_str(&format!("\nCheck: {}.\n", p["check"].as_str().unwrap_or_default()));
    let skipped = p["skipped"].as_array().cloned().unwrap_or_default();
    if !skipped.is_empty() {
        md.push_str("\nLeft out:\n\n");
        for s in skipped {
            md.push_str(&format!(
                "- {}: {}\n",
                s["unit"].as_str().unwrap_or_default(),
                s["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    md.push_str("\n## Files\n\n| file | sha256 |\n|---|---|\n");
    for (f, h) in card["files"].as_object().into_iter().flatten() {
        md.push_str(&format!("| `{f}` | `{}` |\n", h.as_str().unwrap_or_default()));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn example(unit: usize, secs: i64) -> Example {
        Example {
            unit: format!("u{unit}"),
            source: "incident",
            time: Timestamp::from_second(secs).unwrap(),
            label: None,
            class: DataClass::default(),
            messages: vec![json!({"role": "user", "content": format!("{unit}/{secs}")})],
            rejected: None,
        }
    }

    #[test]
    fn what_is_found_again_must_be_pseudonyms_only() {
        let known: BTreeSet<&str> = ["user_3fa9", "host_77c1", "10.9.8.7"].into_iter().collect();
        assert!(only_pseudonyms("user_3fa9", &known));
        assert!(only_pseudonyms("host_77c1 (10.9.8.7)", &known));
        assert!(!only_pseudonyms("CORP\\alice", &known));
        assert!(!only_pseudonyms("alice@host_77c1", &known));
    }

    proptest! {
        /// Whatever the units and their times: each example is in exactly one split, a unit
        /// never in two, and time never goes back from one split to the next.
        #[test]
        fn splits_leak_neither_units_nor_time(
            items in prop::collection::vec((0usize..40, 0i64..1_000), 1..200),
            validation in 0u8..=40,
            test in 0u8..=40,
        ) {
            let examples: Vec<Example> = items
                .iter()
                .map(|&(u, t)| Example { source: if u % 3 == 0 { "intel" } else { "incident" }, ..example(u, t) })
                .collect();
            let splits = split(&examples, validation, test);
            let mut all: Vec<usize> = splits.iter().flatten().copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..examples.len()).collect::<Vec<_>>());
            let units = |s: usize| splits[s].iter().map(|&i| examples[i].unit.clone()).collect::<BTreeSet<_>>();
            for (a, b) in [(0, 1), (0, 2), (1, 2)] {
                prop_assert!(units(a).is_disjoint(&units(b)));
            }
            // Within a source, each unit's first time orders the splits.
            for source in ["incident", "intel"] {
                let first = |s: usize| -> Vec<Timestamp> {
                    units(s)
                        .iter()
                        .filter(|u| examples.iter().any(|e| &e.unit == *u && e.source == source))
                        .map(|u| examples.iter().filter(|e| &e.unit == u).map(|e| e.time).min().unwrap())
                        .collect()
                };
                for (a, b) in [(0, 1), (1, 2), (0, 2)] {
                    if let (Some(late), Some(early)) = (first(a).into_iter().max(), first(b).into_iter().min()) {
                        prop_assert!(late <= early, "{}: split {} ends after split {} begins", source, a, b);
                    }
                }
                let n = (0..3).map(|s| first(s).len()).sum::<usize>();
                prop_assert_eq!(first(2).len(), (n * usize::from(test) + 50) / 100);
            }
        }
    }
}

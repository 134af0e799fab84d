//! `rempart rules check` and `rempart hunt`: Sigma rules over files or stored events.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;
use rempart_detect::{LoadReport, RuleSet};
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files;
use rempart_model::Event;
use rempart_store::EventQuery;
use serde_json::json;

use crate::instance;

/// Reads every `.yml`/`.yaml` under `paths` and compiles them.
/// Loads rules, resolving their ATT&CK tags with the catalogue at `attack` if one is given.
pub fn load_rules(paths: &[PathBuf], attack: Option<&Path>) -> anyhow::Result<(RuleSet, LoadReport)> {
    let files = files::walk(paths).context("cannot list rules")?;
    let mut sources = Vec::new();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
    {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read `{}`", f.display()))?;
        sources.push((f.display().to_string(), text));
    }
    let (set, report) = RuleSet::load(sources.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    let set = match attack {
        Some(path) => set.with_attack(load_attack(path)?),
        None => set,
    };
    Ok((set, report))
}

/// Reads an ATT&CK attack-pattern lookup (`attack-patterns-lookup-*.json`).
pub fn load_attack(path: &Path) -> anyhow::Result<rempart_detect::AttackCatalog> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    rempart_detect::AttackCatalog::from_json(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("`{}`", path.display()))
}

pub fn check(paths: &[PathBuf], json_out: bool) -> anyhow::Result<()> {
    let (_, report) = load_rules(paths, None)?;
    let mut out = crate::out::stdout();
    if json_out {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    for r in &report.rejected {
        writeln!(
            out,
            "rejected  {}:{}  {}{}",
            r.file,
            r.line,
            r.title.as_deref().map(|t| format!("{t}: ")).unwrap_or_default(),
            r.reason
        )?;
    }
    writeln!(
        out,
        "{} rules loaded ({} of them correlation rules), {} rejected ({} filters parsed, not yet applied)",
        report.loaded.len(),
        report.correlations,
        report.rejected.len(),
        report.filters
    )?;
    Ok(())
}

/// How `hunt` prints matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Csv,
}

/// Runs `rules` over the events of `paths`, or over stored events when `stored` is set.
pub async fn hunt(
    instance: instance::Instance<'_>,
    rules: &[PathBuf],
    attack: Option<&Path>,
    paths: &[PathBuf],
    stored: Option<(Option<Timestamp>, Option<Timestamp>)>,
    output: Output,
    threads: usize,
) -> anyhow::Result<()> {
    let (set, report) = load_rules(rules, attack)?;
    if report.loaded.is_empty() {
        anyhow::bail!(
            "no rule loaded from {} ({} rejected; see `rempart rules check`)",
            rules
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            report.rejected.len()
        );
    }
    if !report.rejected.is_empty() {
        tracing::warn!(
            rejected = report.rejected.len(),
            "some rules were rejected; see `rempart rules check`"
        );
    }
    // Indicators imported into this instance are matched in the same pass.
    let intel = if instance.exists() {
        rempart_server::intel::load(&*instance.store().await?).await?
    } else {
        rempart_intel::IocIndex::default()
    };
    let ioc = |e: &Event| -> Vec<rempart_detect::RuleMatch> {
        intel
            .match_event(e)
            .into_iter()
            .map(|h| rempart_detect::RuleMatch {
                rule_id: Some(h.indicator.id.clone()),
                rule_title: format!("Threat intel: {}", h.indicator.name),
                level: Some(rempart_intel::index::level(h.indicator.confidence).to_owned()),
                tags: std::iter::once("intel".to_owned())
                    .chain(h.indicator.labels.iter().cloned())
                    .chain(h.matched.iter().map(|(k, v)| format!("ioc:{}:{v}", k.as_str())))
                    .collect(),
                matched: h
                    .matched
                    .iter()
                    .map(|(k, v)| rempart_model::MatchedField::new(format!("ioc.{}", k.as_str()), v.clone()))
                    .collect(),
            })
            .collect()
    };
    // Each match is written out as soon as it is found (the event is not kept), then the lines
    // are put in time order: a hunt's memory grows with its matches' text, not their events.
    let mut lines: Vec<(Timestamp, String)> = Vec::new();
    let evaluate = |e: &Event| -> anyhow::Result<Vec<(Timestamp, String)>> {
        set.evaluate(e)
            .into_iter()
            .chain(ioc(e))
            .map(|m| Ok((e.time, render_match(output, &set, e, &m)?)))
            .collect()
    };
    let mut scanned = 0u64;
    // Correlation rules need the events in time order: they are gathered first.
    let mut correlator = set.correlator();
    let correlating = correlator.is_some();
    let mut events: Vec<Event> = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    match stored {
        Some((since, until)) => {
            let store = instance.store().await?;
            let mut before = None;
            loop {
                let q = EventQuery {
                    since,
                    until,
                    before,
                    limit: Some(EventQuery::MAX_LIMIT),
                    ..EventQuery::default()
                };
                let page = store.query_events(&q).await?;
                let Some(last) = page.last() else { break };
                before = Some((last.time, last.id));
                let full = page.len() as u32 == EventQuery::MAX_LIMIT;
                for e in page {
                    scanned += 1;
                    if correlating {
                        events.push(e);
                    } else {
                        lines.extend(evaluate(&e)?);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        None => {
            let files = files::walk(paths).context("cannot list input")?;
            let opts = DecodeOptions::default();
            let now = Timestamp::now();
            if correlating || threads <= 1 {
                for f in &files {
                    files::decode_file(f, &opts, now, &mut |d| {
                        if let Decoded::Event(e) = d {
                            scanned += 1;
                            if correlating {
                                events.push(*e);
                            } else if failed.is_none() {
                                match evaluate(&e) {
                                    Ok(found) => lines.extend(found),
                                    Err(err) => failed = Some(err),
                                }
                            }
                        }
                    });
                }
            } else {
                let (n, found) = evaluate_parallel(&files, &opts, now, threads, &evaluate)?;
                scanned += n;
                lines.extend(found);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(c) = correlator.as_mut() {
        events.sort_by_key(|e| e.time);
        for e in events {
            for m in set.evaluate_with(&e, Some(c)).into_iter().chain(ioc(&e)) {
                lines.push((e.time, render_match(output, &set, &e, &m)?));
            }
        }
    }
    // Stable: matches of one time keep the order they were found in.
    lines.sort_by_key(|(t, _)| *t);
    let mut out = std::io::BufWriter::new(crate::out::stdout());
    if output == Output::Csv {
        writeln!(out, "timestamp,level,rule_id,rule_title,host,user,source,matched")?;
    }
    for (_, line) in &lines {
        writeln!(out, "{line}")?;
    }
    if output == Output::Table {
        writeln!(
            out,
            "{} matches in {scanned} events, {} rules",
            lines.len(),
            report.loaded.len()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Quotes a CSV field when it needs it (RFC 4180).
/// Events handed to a worker at a time.
const HUNT_BATCH: usize = 256;

type Found = Vec<(Timestamp, String)>;

/// Decodes `files` on this thread and evaluates the events on `threads` workers, in batches;
/// returns how many events were read and the lines found, in the order a single thread would
/// have found them (batches are put back in sequence).
fn evaluate_parallel(
    files: &[PathBuf],
    opts: &DecodeOptions,
    now: Timestamp,
    threads: usize,
    evaluate: &(dyn Fn(&Event) -> anyhow::Result<Found> + Sync),
) -> anyhow::Result<(u64, Found)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Event>)>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out: Vec<(usize, Found)> = Vec::new();
                    let mut failed: Option<anyhow::Error> = None;
                    loop {
                        let next = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok((seq, batch)) = next else { break };
                        // After a failure the worker keeps taking batches, so the reader is
                        // never left blocked on a full channel.
                        if failed.is_some() {
                            continue;
                        }
                        let mut found = Vec::new();
                        for e in &batch {
                            match evaluate(e) {
                                Ok(f) => found.extend(f),
                                Err(err) => {
                                    failed = Some(err);
                                    break;
                                }
                            }
                        }
                        out.push((seq, found));
                    }
                    match failed {
                        Some(e) => Err(e),
                        None => Ok(out),
                    }
                })
            })
            .collect();
        let mut scanned = 0u64;
        let mut seq = 0usize;
        let mut batch = Vec::with_capacity(HUNT_BATCH);
        let send = |batch: Vec<Event>, seq: &mut usize| {
            // A send fails only when every worker is gone; their errors are reported below.
            let _ = tx.send((*seq, batch));
            *seq += 1;
        };
        for f in files {
            files::decode_file(f, opts, now, &mut |d| {
                if let Decoded::Event(e) = d {
                    scanned += 1;
                    batch.push(*e);
                    if batch.len() == HUNT_BATCH {
                        send(std::mem::replace(&mut batch, Vec::with_capacity(HUNT_BATCH)), &mut seq);
                    }
                }
            });
        }
        if !batch.is_empty() {
            send(batch, &mut seq);
        }
        drop(tx);
        let mut all = Vec::new();
        for w in workers {
            match w.join() {
                Ok(found) => all.extend(found?),
                Err(_) => anyhow::bail!("a hunt worker stopped unexpectedly"),
            }
        }
        all.sort_by_key(|(seq, _)| *seq);
        Ok((scanned, all.into_iter().flat_map(|(_, f)| f).collect()))
    })
}

/// One match as a line of the hunt's output.
fn render_match(
    output: Output,
    set: &rempart_detect::RuleSet,
    e: &Event,
    m: &rempart_detect::RuleMatch,
) -> anyhow::Result<String> {
    Ok(match output {
        Output::Json => {
            let source = match &e.origin.location {
                Some(l) => format!("{} ({l})", e.origin.source),
                None => e.origin.source.clone(),
            };
            json!({"rule_id": m.rule_id, "rule_title": m.rule_title, "level": m.level, "tags": m.tags, "techniques": set.techniques(&m.tags),
                   "matched": m.matched, "timestamp": e.time, "source": source, "event": e})
            .to_string()
        }
        Output::Csv => {
            let fields = [
                e.time.to_string(),
                m.level.clone().unwrap_or_default(),
                m.rule_id.clone().unwrap_or_default(),
                m.rule_title.clone(),
                e.normalized.host.clone().unwrap_or_default(),
                e.normalized.user.clone().unwrap_or_default(),
                e.origin.source.clone(),
                m.matched
                    .iter()
                    .map(|f| format!("{}={}", f.field, f.value))
                    .collect::<Vec<_>>()
                    .join("; "),
            ];
            fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
        }
        Output::Table => format!(
            "{}  {:<13} {:<60} {:<24} {}",
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            m.level.as_deref().unwrap_or("-"),
            m.rule_title.chars().take(60).collect::<String>(),
            e.normalized
                .host
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(24)
                .collect::<String>(),
            e.normalized
                .command_line
                .as_deref()
                .or(e.normalized.message.as_deref())
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>()
        ),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

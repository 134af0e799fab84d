//! `rempart ingest`: files and folders into the embedded store.
//!
//! A blocking thread walks and decodes; the async side writes batches to the store as they
//! come, so decoding and writing overlap on two cores. The summary counts only what was made
//! durable.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use rempart_ingest::decode::DecodeOptions;
use rempart_ingest::files;
use rempart_server::metrics::Metrics;
use rempart_server::pipeline::Batch;
use rempart_store::Store;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::IngestArgs;
use crate::instance;

const BATCH: usize = 5_000;

/// What an ingest run did, as printed by `--json`.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub events: u64,
    pub rejected: u64,
    /// Alerts raised (with `--rules`, or by imported threat-intelligence indicators).
    pub alerts: u64,
    /// Incidents the alerts opened (others joined incidents already open).
    pub incidents: u64,
    pub by_format: BTreeMap<String, u64>,
    /// Rejection reasons (their first words) and how often each occurred.
    pub rejected_reasons: BTreeMap<String, u64>,
    pub files: u64,
    pub seconds: f64,
    pub events_per_s: f64,
}

pub async fn run(data_dir: &Path, config: &rempart_config::Config, args: IngestArgs, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
    let opts = DecodeOptions {
        format: args.format,
        timestamp_field: args.timestamp_field.clone(),
        classify: instance::classify(config),
        ..DecodeOptions::default()
    };
    let show_progress = !json && !args.no_progress && std::io::stderr().is_terminal();
    let rules = if args.rules.is_empty() {
        None
    } else {
        let (rules, report) = crate::detect::load_rules(&args.rules, config.detection.attack.as_deref())?;
        if !report.rejected.is_empty() {
            tracing::warn!(
                rejected = report.rejected.len(),
                "some rules were rejected; see `rempart rules check`"
            );
        }
        Some(std::sync::Arc::new(rules))
    };
    // Indicators imported with `rempart intel import` are matched in the same pass.
    let intel = rempart_server::intel::load(&*store).await?;
    let intel = (!intel.is_empty()).then(|| std::sync::Arc::new(intel));
    let incidents = instance::incidents(config, &ledger, store.clone()).await?;
    let anomaly = instance::anomaly(config, &*store).await;
    let summary = ingest_paths(
        &*store,
        &ledger,
        &args.paths,
        opts,
        Detection {
            rules,
            intel,
            incidents: Some(&incidents),
            anomaly: anomaly.clone(),
        },
        show_progress,
    )
    .await;
    if let Some(a) = &anomaly
        && let Err(e) = a.save(&*store).await
    {
        tracing::warn!(error = %e, "baselines not saved");
    }
    ledger.close().await;
    let summary = summary?;
    let mut out = crate::out::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string(&summary)?)?;
    } else {
        print_summary(&mut out, &summary)?;
    }
    Ok(())
}

/// What runs on ingested events besides storing them.
#[derive(Debug, Default)]
pub struct Detection<'a> {
    /// Sigma rules.
    pub rules: Option<std::sync::Arc<rempart_detect::RuleSet>>,
    /// Threat-intelligence indicators.
    pub intel: Option<std::sync::Arc<rempart_intel::IocIndex>>,
    /// Correlation of the alerts into incidents.
    pub incidents: Option<&'a rempart_server::incidents::Incidents>,
    /// Per-entity baselines (their state is saved when the ingest ends).
    pub anomaly: Option<std::sync::Arc<rempart_server::anomaly::Anomaly>>,
}

/// Ingests `paths` into `store`; returns the summary once everything is durable.
pub async fn ingest_paths(
    store: &dyn Store,
    ledger: &rempart_audit::Ledger,
    paths: &[std::path::PathBuf],
    opts: DecodeOptions,
    detection: Detection<'_>,
    show_progress: bool,
) -> anyhow::Result<Summary> {
    let Detection {
        rules,
        intel,
        incidents,
        anomaly,
    } = detection;
    let started = Instant::now();
    let files = files::walk(paths).context("cannot list input")?;
    let bar = if show_progress {
        let bar = ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let (tx, mut rx) = mpsc::channel::<Batch>(4);
    let file_count = files.len() as u64;
    let decoder_bar = bar.clone();
    let decoder = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let mut batch = Batch::default();
        // Detection runs here, on the decoding thread, so the writer only writes.
        let send = |mut batch: Batch| {
            if let Some(rules) = &rules {
                batch.detect(rules);
            }
            if let Some(intel) = &intel {
                batch.match_intel(intel);
            }
            if let Some(anomaly) = &anomaly {
                batch.baselines(anomaly);
            }
            tx.blocking_send(batch).is_err()
        };
        for path in &files {
            decoder_bar.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            let mut closed = false;
            files::decode_file(path, &opts, now, &mut |item| {
                batch.push(item);
                if batch.len() >= BATCH && !closed {
                    closed = send(std::mem::take(&mut batch));
                }
            });
            if closed {
                return;
            }
            decoder_bar.inc(1);
        }
        if !batch.is_empty() {
            let _ = send(batch);
        }
    });
    let metrics = Metrics::default();
    let mut summary = Summary {
        files: file_count,
        ..Summary::default()
    };
    while let Some(batch) = rx.recv().await {
        batch
            .commit(store, ledger, &metrics, "file", incidents)
            .await
            .context("cannot store events")?;
        summary.events += batch.events.len() as u64;
        summary.rejected += batch.rejected.len() as u64;
        summary.alerts += batch.alerts.len() as u64;
        for (format, n) in batch.by_format() {
            *summary.by_format.entry(format.to_owned()).or_default() += n;
        }
        for r in &batch.rejected {
            *summary.rejected_reasons.entry(reason_class(&r.reason)).or_default() += 1;
        }
        bar.set_message(format!("{} events", summary.events));
    }
    decoder.await.context("decoder thread failed")?;
    summary.incidents = metrics.incidents.get();
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.events_per_s = if summary.seconds > 0.0 {
        summary.events as f64 / summary.seconds
    } else {
        0.0
    };
    Ok(summary)
}

/// Groups rejection reasons by their text before the first `:` (details vary per line).
fn reason_class(reason: &str) -> String {
    reason.split(':').next().unwrap_or(reason).trim().to_owned()
}

pub fn print_summary(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    writeln!(
        out,
        "ingested {} events from {} files in {:.2} s ({:.0} events/s)",
        s.events, s.files, s.seconds, s.events_per_s
    )?;
    for (format, n) in &s.by_format {
        writeln!(out, "  {format:<14} {n:>10}")?;
    }
    if s.alerts > 0 {
        writeln!(
            out,
            "raised {} alerts, opening {} incidents (see `rempart alerts`, `rempart incidents`)",
            s.alerts, s.incidents
        )?;
    }
    if s.rejected > 0 {
        writeln!(out, "quarantined {} (see `GET /api/v1/quarantine`):", s.rejected)?;
        for (reason, n) in &s.rejected_reasons {
            writeln!(out, "  {n:>6}  {reason}")?;
        }
    }
    Ok(())
}

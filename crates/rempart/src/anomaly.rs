//! `rempart anomaly`: streaming anomaly detectors measured on labelled data sets.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use rempart_anomaly::{datasets, ecod, eval, midas};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// Stream a labelled data set through a detector in order and print ROC-AUC, average
    /// precision and throughput
    Eval(EvalArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    /// DARPA 1998 edges as the MIDAS authors publish them (`darpa_original.csv` or its zip)
    Darpa98,
    /// KDD Cup 99 HTTP connections as ADBench publishes them (`http.csv`, plain or gzipped)
    KddHttp,
    /// KDD Cup 99 SMTP connections (`smtp.csv`, plain or gzipped)
    KddSmtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Detector {
    /// MIDAS-R: decayed counts; edge, source and destination scored
    MidasR,
    /// MIDAS: the current tick's edge counts against all ticks
    Midas,
    /// Streaming ECOD over numeric features, with the burst guard
    Ecod,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long, value_enum)]
    pub dataset: Dataset,
    /// The data set file
    pub path: PathBuf,
    /// [default: midas-r for edge streams, ecod for feature tables]
    #[arg(long, value_enum)]
    pub detector: Option<Detector>,
    /// Hash functions (rows) of each count-min sketch
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub rows: u16,
    /// Buckets per hash function
    #[arg(long, default_value_t = 769, value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub buckets: u32,
    /// Seed of the sketches' hash functions (runs with one seed repeat exactly)
    #[arg(long)]
    pub seed: Option<u64>,
    /// MIDAS-R's decay of the current counts per tick, in (0, 1)
    #[arg(long, default_value_t = 0.6)]
    pub decay: f32,
    /// MIDAS-R: score decayed counts as rates, as the live edge streams do (steady traffic of
    /// any volume scores near zero)
    #[arg(long)]
    pub as_rate: bool,
    /// ECOD: points scoring at least this after warm-up are not learned
    #[arg(long, default_value_t = 12.0)]
    pub guard: f64,
    /// ECOD: learn every point, however anomalous (to measure what the guard is worth)
    #[arg(long)]
    pub no_guard: bool,
    /// ECOD: histogram bin width, in the features' units
    #[arg(long, default_value_t = 0.01)]
    pub bin_width: f64,
    /// ECOD: points learned before the guard applies
    #[arg(long, default_value_t = 1_000)]
    pub warm_up: u64,
}

pub fn run(command: AnomalyCommand, json_out: bool) -> anyhow::Result<()> {
    let AnomalyCommand::Eval(args) = command;
    let started = Instant::now();
    let (detector, scored, detector_seconds, read) = match args.dataset {
        Dataset::Darpa98 => edges(&args, started)?,
        Dataset::KddHttp | Dataset::KddSmtp => features(&args)?,
    };
    let total = started.elapsed().as_secs_f64();
    report(detector, scored, detector_seconds, read, total, json_out)
}

type Measured = (&'static str, Vec<(f32, bool)>, f64, f64);

/// MIDAS or MIDAS-R over an edge stream, read whole first so the detector is timed alone.
fn edges(args: &EvalArgs, started: Instant) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        args.decay > 0.0 && args.decay < 1.0,
        "--decay {} is outside (0, 1)",
        args.decay
    );
    let detector = args.detector.unwrap_or(Detector::MidasR);
    let mut edges = Vec::new();
    datasets::darpa98(&args.path, |e| edges.push(e))?;
    let read = started.elapsed().as_secs_f64();
    let scoring = Instant::now();
    let params = midas::Params {
        rows: usize::from(args.rows),
        columns: args.buckets as usize,
        decay: args.decay,
        seed: args.seed.unwrap_or(midas::Params::default().seed),
        as_rate: args.as_rate,
    };
    let mut scored: Vec<(f32, bool)> = Vec::with_capacity(edges.len());
    let name = match detector {
        Detector::MidasR => {
            let mut m = midas::MidasR::new(params);
            scored.extend(
                edges
                    .iter()
                    .map(|e| (m.score(e.source, e.destination, e.tick).value, e.anomaly)),
            );
            "midas-r"
        }
        Detector::Midas => {
            let mut m = midas::Midas::new(params);
            scored.extend(
                edges
                    .iter()
                    .map(|e| (m.score(e.source, e.destination, e.tick), e.anomaly)),
            );
            "midas"
        }
        Detector::Ecod => anyhow::bail!("ecod scores feature vectors, not edges: use midas or midas-r on darpa98"),
    };
    Ok((name, scored, scoring.elapsed().as_secs_f64(), read))
}

/// Streaming ECOD over a feature table, read whole first so the detector is timed alone.
fn features(args: &EvalArgs) -> anyhow::Result<Measured> {
    let detector = args.detector.unwrap_or(Detector::Ecod);
    anyhow::ensure!(
        detector == Detector::Ecod,
        "midas and midas-r score edges; use ecod on kdd-http and kdd-smtp"
    );
    anyhow::ensure!(
        args.bin_width.is_finite() && args.bin_width > 0.0,
        "--bin-width {} must be a positive number",
        args.bin_width
    );
    anyhow::ensure!(args.guard.is_finite(), "--guard {} must be a number", args.guard);
    let reading = Instant::now();
    let mut rows: Vec<f64> = Vec::new();
    let mut labels = Vec::new();
    let (n, width) = datasets::kdd99(&args.path, |x, label| {
        rows.extend_from_slice(x);
        labels.push(label);
    })?;
    let read = reading.elapsed().as_secs_f64();
    let params = ecod::Params {
        bin_width: args.bin_width,
        guard: if args.no_guard { f64::INFINITY } else { args.guard },
        warm_up: args.warm_up,
        ..ecod::Params::default()
    };
    let scoring = Instant::now();
    let mut detector = ecod::Ecod::new(width, params);
    let mut scored = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for (x, label) in rows.chunks_exact(width.max(1)).zip(labels) {
        let s = detector.observe(x)?;
        scored.push((s.value as f32, label));
    }
    Ok(("ecod", scored, scoring.elapsed().as_secs_f64(), read))
}

fn report(
    detector: &str,
    mut scored: Vec<(f32, bool)>,
    detector_seconds: f64,
    read: f64,
    total: f64,
    json_out: bool,
) -> anyhow::Result<()> {
    let n = scored.len() as u64;
    let roc_auc = eval::roc_auc(&mut scored);
    let average_precision = eval::average_precision(&mut scored);
    let mut out = crate::out::stdout();
    if json_out {
        writeln!(
            out,
            "{}",
            json!({
                "detector": detector,
                "roc_auc": roc_auc,
                "average_precision": average_precision,
                "events": n,
                "events_per_s": n as f64 / total,
                "detector_events_per_s": n as f64 / detector_seconds,
                "read_seconds": read,
            })
        )?;
    } else {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
        writeln!(out, "{detector} on {n} events")?;
        writeln!(out, "ROC-AUC            {}", f(roc_auc))?;
        writeln!(out, "average precision  {}", f(average_precision))?;
        writeln!(
            out,
            "throughput         {:.0} events/s end to end ({:.1} s reading), {:.0} events/s detector alone",
            n as f64 / total,
            read,
            n as f64 / detector_seconds
        )?;
    }
    Ok(())
}

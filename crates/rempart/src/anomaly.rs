//! `rempart anomaly`: streaming anomaly detectors measured on labelled data sets.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use rempart_anomaly::{datasets, eval, midas};
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Detector {
    /// MIDAS-R: decayed counts; edge, source and destination scored
    MidasR,
    /// MIDAS: the current tick's edge counts against all ticks
    Midas,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long, value_enum)]
    pub dataset: Dataset,
    /// The data set file
    pub path: PathBuf,
    #[arg(long, value_enum, default_value = "midas-r")]
    pub detector: Detector,
    /// Hash functions (rows) of each count-min sketch
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub rows: u16,
    /// Buckets per hash function
    #[arg(long, default_value_t = 769, value_parser = clap::value_parser!(u32).range(16..=1_048_576))]
    pub buckets: u32,
    /// MIDAS-R's decay of the current counts per tick, in (0, 1)
    #[arg(long, default_value_t = 0.6)]
    pub decay: f32,
}

pub fn run(command: AnomalyCommand, json_out: bool) -> anyhow::Result<()> {
    let AnomalyCommand::Eval(args) = command;
    anyhow::ensure!(
        args.decay > 0.0 && args.decay < 1.0,
        "--decay {} is outside (0, 1)",
        args.decay
    );
    let started = Instant::now();
    let mut edges = Vec::new();
    match args.dataset {
        Dataset::Darpa98 => {
            datasets::darpa98(&args.path, |e| edges.push(e))?;
        }
    }
    let read = started.elapsed().as_secs_f64();
    let scoring = Instant::now();
    let params = midas::Params {
        rows: usize::from(args.rows),
        columns: args.buckets as usize,
        decay: args.decay,
        ..midas::Params::default()
    };
    let mut scored: Vec<(f32, bool)> = Vec::with_capacity(edges.len());
    match args.detector {
        Detector::MidasR => {
            let mut m = midas::MidasR::new(params);
            scored.extend(
                edges
                    .iter()
                    .map(|e| (m.score(e.source, e.destination, e.tick).value, e.anomaly)),
            );
        }
        Detector::Midas => {
            let mut m = midas::Midas::new(params);
            scored.extend(
                edges
                    .iter()
                    .map(|e| (m.score(e.source, e.destination, e.tick), e.anomaly)),
            );
        }
    }
    let detector_seconds = scoring.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    let n = scored.len() as u64;
    let roc_auc = eval::roc_auc(&mut scored);
    let average_precision = eval::average_precision(&mut scored);
    let detector = match args.detector {
        Detector::MidasR => "midas-r",
        Detector::Midas => "midas",
    };
    let mut out = std::io::stdout().lock();
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
        writeln!(out, "{detector} on {} edges", n)?;
        writeln!(out, "ROC-AUC            {}", f(roc_auc))?;
        writeln!(out, "average precision  {}", f(average_precision))?;
        writeln!(
            out,
            "throughput         {:.0} edges/s end to end ({:.1} s reading), {:.0} edges/s detector alone",
            n as f64 / total,
            read,
            n as f64 / detector_seconds
        )?;
    }
    Ok(())
}

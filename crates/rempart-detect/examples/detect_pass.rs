//! Detection passes for profilers: the SigmaHQ Windows rules over the events of
//! EVTX-ATTACK-SAMPLES, decoded first. Prints the rule set's shape (routes, prefilter), how many
//! rule evaluations the prefilter leaves, then evaluates every event once, or `--repeat N` times
//! printing the best pass's rate. Instruction counts of detection alone:
//!
//! ```text
//! cargo build --release -p rempart-detect --example detect_pass
//! valgrind --tool=callgrind --toggle-collect='*RuleSet*evaluate_with*' target/release/examples/detect_pass
//! ```
//!
//! Data from `REMPART_DATA` (default `../shared/data`).

#![allow(clippy::print_stdout, reason = "a profiling helper")]

use std::path::PathBuf;
use std::time::Instant;

use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_ingest::decode::{DecodeOptions, Decoded};

fn main() -> Result<(), String> {
    let repeat: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 1,
        [flag, n] if flag == "--repeat" => n.parse().map_err(|e| format!("--repeat {n}: {e}"))?,
        _ => return Err("usage: detect_pass [--repeat N]".into()),
    };
    let data = std::env::var_os("REMPART_DATA").map_or_else(|| PathBuf::from("../shared/data"), PathBuf::from);
    let files = rempart_ingest::files::walk(&[data.join("sigma/rules/windows")]).map_err(|e| e.to_string())?;
    let texts: Vec<(String, String)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(p).ok()?)))
        .collect();
    let start = Instant::now();
    let set = RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str()))).0;
    println!("{set:?}");
    println!("loaded in {:.3} s", start.elapsed().as_secs_f64());

    let files = rempart_ingest::files::walk(&[data.join("evtx-attack-samples")]).map_err(|e| e.to_string())?;
    let mut events = Vec::new();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "evtx")) {
        rempart_ingest::files::decode_file(f, &DecodeOptions::default(), Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                events.push(*e);
            }
        });
    }
    if events.is_empty() {
        return Err(format!("no events under {}: set REMPART_DATA", data.display()));
    }
    let (left, admitted) = events
        .iter()
        .map(|e| set.candidates(e))
        .fold((0, 0), |(l, a), (el, ea)| (l + el, a + ea));
    println!(
        "{} events; the prefilter leaves {left} of {admitted} admitted rule evaluations",
        events.len()
    );

    let mut best = f64::MAX;
    let mut matches = 0;
    for _ in 0..repeat {
        let start = Instant::now();
        matches = events
            .iter()
            .map(|e| set.evaluate(std::hint::black_box(e)).len())
            .sum::<usize>();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{matches} matches; best of {repeat} passes: {:.0} events/s",
        events.len() as f64 / best
    );
    Ok(())
}

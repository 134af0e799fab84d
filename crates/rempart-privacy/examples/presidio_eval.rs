//! Recall and precision of Rempart's recognizers on Presidio's synthetic PII data set
//! (`../shared/data/pii/presidio_synth_dataset_v2.json.gz`), for the entity types both claim.
//!
//! ```text
//! REMPART_DATA=../shared/data cargo run --release -p rempart-privacy --example presidio_eval [-- --json]
//! ```
//!
//! A prediction counts as a true positive when it overlaps a labelled span of the same type;
//! recall is the share of labelled spans some prediction of their type overlaps.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "an evaluation program"
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use rempart_privacy::recognize::{Entity, RecognizerConfig, Recognizers};
use serde_json::Value;

/// Presidio's types and ours.
const TYPES: &[(&str, Entity)] = &[
    ("EMAIL_ADDRESS", Entity::Email),
    ("IP_ADDRESS", Entity::Ip),
    ("CREDIT_CARD", Entity::Card),
    ("IBAN_CODE", Entity::Iban),
    ("PHONE_NUMBER", Entity::Phone),
    ("PERSON", Entity::Person),
];

#[derive(Default, Debug)]
pub struct Score {
    pub gold: u64,
    pub found: u64,
    pub predicted: u64,
    pub correct: u64,
}

/// Where the data set is: `$REMPART_DATA/pii/…`, by default `../shared/data`.
pub fn dataset() -> PathBuf {
    std::env::var_os("REMPART_DATA")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
            PathBuf::from,
        )
        .join("pii/presidio_synth_dataset_v2.json.gz")
}

/// Scores per Presidio type, the samples and bytes read, and the seconds recognition took.
pub fn evaluate(path: &std::path::Path) -> (BTreeMap<&'static str, Score>, usize, usize, f64) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .take(64 << 20)
        .read_to_string(&mut text)
        .unwrap();
    let samples: Vec<Value> = serde_json::from_str(&text).unwrap();
    let recognizers = Recognizers::new(&RecognizerConfig::default()).unwrap();
    let mut scores: BTreeMap<&'static str, Score> = BTreeMap::new();
    let started = std::time::Instant::now();
    let mut bytes = 0usize;
    for s in &samples {
        let full = s["full_text"].as_str().unwrap_or_default();
        bytes += full.len();
        let findings = recognizers.find(full);
        // Presidio's offsets count characters; ours count bytes.
        let byte = |chars: usize| full.char_indices().nth(chars).map_or(full.len(), |(b, _)| b);
        let spans: Vec<(&str, usize, usize)> = s["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|sp| {
                (
                    sp["entity_type"].as_str().unwrap_or(""),
                    byte(sp["start_position"].as_u64().unwrap_or(0) as usize),
                    byte(sp["end_position"].as_u64().unwrap_or(0) as usize),
                )
            })
            .collect();
        for (name, entity) in TYPES {
            let score = scores.entry(name).or_default();
            let gold: Vec<(usize, usize)> = spans
                .iter()
                .filter(|(t, _, _)| t == name)
                .map(|(_, a, b)| (*a, *b))
                .collect();
            let predicted: Vec<(usize, usize)> = findings
                .iter()
                .filter(|f| f.entity == *entity)
                .map(|f| (f.start, f.end))
                .collect();
            let overlaps = |a: (usize, usize), b: (usize, usize)| a.0 < b.1 && b.0 < a.1;
            if std::env::var_os("PRESIDIO_MISSES").is_some() {
                for g in gold.iter().filter(|g| !predicted.iter().any(|p| overlaps(**g, *p))) {
                    eprintln!("missed {name}: {:?}", &full[g.0..g.1]);
                }
                for p in predicted.iter().filter(|p| !gold.iter().any(|g| overlaps(*g, **p))) {
                    eprintln!("unexpected {name}: {:?}", &full[p.0..p.1]);
                }
            }
            score.gold += gold.len() as u64;
            score.found += gold
                .iter()
                .filter(|g| predicted.iter().any(|p| overlaps(**g, *p)))
                .count() as u64;
            score.predicted += predicted.len() as u64;
            score.correct += predicted
                .iter()
                .filter(|p| gold.iter().any(|g| overlaps(*g, **p)))
                .count() as u64;
        }
    }
    (scores, samples.len(), bytes, started.elapsed().as_secs_f64())
}

/// `found / total`, NaN when there is nothing to count.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { f64::NAN } else { a as f64 / b as f64 }
}

#[allow(dead_code, reason = "tests include this file for `evaluate` alone")]
fn main() {
    let (scores, samples, bytes, seconds) = evaluate(&dataset());
    let json = std::env::args().any(|a| a == "--json");
    let (mut g, mut f, mut p, mut c) = (0, 0, 0, 0);
    for (name, s) in &scores {
        g += s.gold;
        f += s.found;
        p += s.predicted;
        c += s.correct;
        if json {
            println!(
                "{}",
                serde_json::json!({"type": name, "gold": s.gold, "recall": ratio(s.found, s.gold), "predicted": s.predicted, "precision": ratio(s.correct, s.predicted)})
            );
        } else {
            println!(
                "{name:<14} gold {:>4}  recall {:.3}  predicted {:>4}  precision {:.3}",
                s.gold,
                ratio(s.found, s.gold),
                s.predicted,
                ratio(s.correct, s.predicted)
            );
        }
    }
    println!(
        "all five types: recall {:.3}, precision {:.3}; {} samples, {:.1} KB in {:.3} s",
        ratio(f, g),
        ratio(c, p),
        samples,
        bytes as f64 / 1024.0,
        seconds
    );
}

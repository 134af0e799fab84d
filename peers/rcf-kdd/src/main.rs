//! Streams a KDD 99 subset through the `rcf3` crate's Random Cut Forest (score, then learn,
//! optionally with the same burst guard) and prints ROC-AUC and throughput beside Rempart's
//! streaming ECOD on the same stream.
//!
//! `cargo run --release --manifest-path peers/rcf-kdd/Cargo.toml -- FILE [TREES CAPACITY GUARD]`

use std::time::Instant;

use rempart_anomaly::ecod::{Ecod, Params};
use rempart_anomaly::{datasets, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).ok_or("usage: rcf-kdd FILE [TREES CAPACITY GUARD]")?);
    let trees: usize = args.get(2).map_or(Ok(50), |s| s.parse())?;
    let capacity: usize = args.get(3).map_or(Ok(256), |s| s.parse())?;
    let guard: f64 = args.get(4).map_or(Ok(3.0), |s| s.parse())?;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut labels = Vec::new();
    datasets::kdd99(&path, |x, l| {
        rows.push(x.to_vec());
        labels.push(l);
    })?;
    let width = rows.first().map_or(0, Vec::len);
    for guarded in [false, true] {
        let mut forest = rcf3::Forest::builder(width).num_trees(trees).capacity(capacity).build()?;
        let started = Instant::now();
        let mut scored = Vec::with_capacity(rows.len());
        for (x, l) in rows.iter().zip(&labels) {
            let p: Vec<f32> = x.iter().map(|v| *v as f32).collect();
            let s = forest.score(&p)?;
            if !guarded || !forest.is_ready() || s < guard {
                forest.update(&p)?;
            }
            scored.push((s as f32, *l));
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{{\"detector\":\"rcf3\",\"trees\":{trees},\"capacity\":{capacity},\"guard\":{},\"roc_auc\":{:.4},\"events_per_s\":{:.0}}}",
            if guarded { guard.to_string() } else { "null".into() },
            eval::roc_auc(&mut scored).unwrap_or(f64::NAN),
            rows.len() as f64 / secs
        );
    }
    for guard in [f64::INFINITY, Params::default().guard] {
        let mut d = Ecod::new(width, Params { guard, ..Params::default() });
        let started = Instant::now();
        let mut scored = Vec::with_capacity(rows.len());
        for (x, l) in rows.iter().zip(&labels) {
            scored.push((d.observe(x)?.value as f32, *l));
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{{\"detector\":\"ecod\",\"guard\":{},\"roc_auc\":{:.4},\"events_per_s\":{:.0}}}",
            if guard.is_finite() { guard.to_string() } else { "null".into() },
            eval::roc_auc(&mut scored).unwrap_or(f64::NAN),
            rows.len() as f64 / secs
        );
    }
    Ok(())
}

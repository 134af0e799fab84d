//! Plain MIDAS on the DARPA 1998 edges three ways, to show where its published ROC-AUC comes
//! from: (1) with the hash of the authors' first implementation, `(a + m·b)·p + q mod buckets`
//! in every row over dense node numbers (the rank of each address, as their preprocessing
//! numbers them), so that every row collides on the same edges; (2) with exact counts (a hash
//! map, no collisions); (3) Rempart's own sketch (independent, well-mixed rows).
//!
//! `cargo run --release --manifest-path peers/midas-hash/Cargo.toml -- ../shared/data/anomaly/darpa98/darpa_original.zip [BUCKETS]`

use std::collections::HashMap;

use rempart_anomaly::{datasets, eval, midas};

/// The chi-squared score of MIDAS, two-sided as the authors' code writes it.
fn score(a: f64, s: f64, t: f64) -> f64 {
    if t <= 1.0 || s == 0.0 {
        return 0.0;
    }
    let mean = s / t;
    let sq = (a - mean) * (a - mean);
    sq / mean + sq / (mean * (t - 1.0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::PathBuf::from(args.get(1).ok_or("usage: midas-hash DARPA.zip [BUCKETS]")?);
    let buckets: i64 = args.get(2).map_or(Ok(769), |s| s.parse())?;
    let mut edges = Vec::new();
    datasets::darpa98(&path, |e| edges.push(e))?;
    // Dense node numbers: the rank of each address among all of them.
    let mut nodes: Vec<u64> = edges.iter().flat_map(|e| [e.source, e.destination]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let rank = |ip: u64| nodes.binary_search(&ip).map_or(0, |i| i as i64);
    let m = edges.iter().map(|e| rank(e.source)).max().unwrap_or(0);

    // (1) The authors' hash: any (p, q) with p in [1, buckets-1] gives the same buckets up to a
    // permutation when `buckets` is prime, so the seed does not matter.
    let (rows, p, q) = (2usize, [buckets / 3 + 1, buckets / 2 + 3], [7i64, 11]);
    let mut cur = vec![0f64; rows * buckets as usize];
    let mut tot = cur.clone();
    // (2) Exact counts.
    let (mut cur_x, mut tot_x): (HashMap<(i64, i64), f64>, HashMap<(i64, i64), f64>) = Default::default();
    // (3) Rempart's sketch.
    let mut ours = midas::Midas::new(midas::Params {
        columns: buckets as usize,
        ..midas::Params::default()
    });
    let (mut authors, mut exact, mut rempart) = (Vec::new(), Vec::new(), Vec::new());
    let mut tick = 0u64;
    for e in &edges {
        let (a, b) = (rank(e.source), rank(e.destination));
        if e.tick > tick {
            cur.fill(0.0);
            cur_x.clear();
            tick = e.tick;
        }
        let t = tick as f64;
        let (mut c, mut s) = (f64::MAX, f64::MAX);
        for r in 0..rows {
            let cell = ((a + m * b).wrapping_mul(p[r]).wrapping_add(q[r])).rem_euclid(buckets) as usize + r * buckets as usize;
            cur[cell] += 1.0;
            tot[cell] += 1.0;
            c = c.min(cur[cell]);
            s = s.min(tot[cell]);
        }
        authors.push((score(c, s, t) as f32, e.anomaly));
        let cx = cur_x.entry((a, b)).or_default();
        *cx += 1.0;
        let sx = tot_x.entry((a, b)).or_default();
        *sx += 1.0;
        exact.push((score(*cx, *sx, t) as f32, e.anomaly));
        rempart.push((ours.score(e.source, e.destination, e.tick), e.anomaly));
    }
    for (name, mut scored) in [
        ("authors' hash", authors),
        ("exact counts", exact),
        ("Rempart's sketch", rempart),
    ] {
        let auc = eval::roc_auc(&mut scored).unwrap_or(f64::NAN);
        println!("MIDAS, {name:<18} {buckets} buckets: ROC-AUC {auc:.4}");
    }
    Ok(())
}

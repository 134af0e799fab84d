//! IOC index at scale: builds an index of N indicators (addresses, /24 ranges, domains, SHA-256
//! and MD5 hashes, URLs), then times lookups of observables of which 10 % are indicators.
//!
//! `cargo run --release -p rempart-intel --example ioc_load -- 1000000`

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark harness: failures abort the run, results go to stdout"
)]

use std::time::Instant;

use rempart_intel::{Atom, Indicator, IocIndex, Kind};

/// Resident memory of this process, from /proc.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// A cheap deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// An observable of `kind` from `r`; `listed` picks the domains indicators are made of.
fn observable(kind: u64, r: u64, listed: bool) -> (Kind, String) {
    match kind % 6 {
        0 => (
            Kind::Ip,
            std::net::Ipv4Addr::from(u32::try_from(r >> 32).unwrap_or(0)).to_string(),
        ),
        1 => (
            Kind::Ip,
            std::net::Ipv4Addr::from(u32::try_from(r >> 32).unwrap_or(0) | 7).to_string(),
        ),
        2 => (
            Kind::Domain,
            format!(
                "h{:x}.{}{}.example",
                r >> 40,
                if listed { "bad" } else { "fine" },
                r % 100_000
            ),
        ),
        3 => (Kind::Sha256, format!("{r:016x}{r:016x}{r:016x}{r:016x}")),
        4 => (Kind::Md5, format!("{r:016x}{r:016x}")),
        _ => (Kind::Url, format!("http://x{r:x}.example/p")),
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss_mib();
    let mut rng = Rng(42);
    let seeds: Vec<u64> = (0..n).map(|_| rng.next()).collect();
    let started = Instant::now();
    let indicators: Vec<Indicator> = seeds
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let atom = match i % 6 {
                // Every other address indicator is a /24 range.
                1 => rempart_intel::indicator::cidr(&format!(
                    "{}/24",
                    std::net::Ipv4Addr::from(u32::try_from(r >> 32).unwrap_or(0))
                ))
                .unwrap(),
                2 => Atom::new(Kind::Domain, &format!("bad{}.example", r % 100_000)).unwrap(),
                k => {
                    let (kind, v) = observable(k as u64, r, true);
                    Atom::new(kind, &v).unwrap()
                }
            };
            Indicator {
                id: format!("indicator--{i}"),
                name: format!("bench {i}"),
                source: "bench".into(),
                description: None,
                labels: vec![],
                confidence: Some(80),
                valid_from: None,
                valid_until: None,
                pattern: String::new(),
                alternatives: vec![vec![atom]],
            }
        })
        .collect();
    let idx = IocIndex::new(indicators);
    let load = started.elapsed();
    let after = rss_mib();
    // Lookups: 10 % are indicators, the rest random.
    let lookups = 2_000_000u64;
    let queries: Vec<(Kind, String)> = (0..lookups)
        .map(|i| {
            let r = rng.next();
            if i % 10 == 0 {
                let j = (r % n) as usize;
                observable(j as u64 % 6, seeds[j], true)
            } else {
                observable(r % 6, rng.next(), false)
            }
        })
        .collect();
    let t = jiff::Timestamp::UNIX_EPOCH;
    let started = Instant::now();
    let mut hits = 0usize;
    for q in &queries {
        hits += idx.matches(std::slice::from_ref(q), t).len();
    }
    let elapsed = started.elapsed();
    println!(
        "{{\"indicators\": {n}, \"load_s\": {:.2}, \"memory_mib\": {:.0}, \"lookups\": {lookups}, \"lookups_per_s\": {:.0}, \"hits\": {hits}}}",
        load.as_secs_f64(),
        after - before,
        lookups as f64 / elapsed.as_secs_f64()
    );
}

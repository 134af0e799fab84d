//! Streaming ECOD's cost per point: score, then learn (the burst guard's path), on three
//! log-scaled features like KDD 99's.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmarks")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rempart_anomaly::ecod::{Ecod, Params};

fn points(n: usize) -> Vec<[f64; 3]> {
    // A fixed pseudo-random walk over realistic ranges (durations, bytes sent, bytes received).
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 10_000) as f64 / 10_000.0
    };
    (0..n)
        .map(|_| [-2.3 + next() * 3.0, 4.0 + next() * 4.0, 6.0 + next() * 6.0])
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = points(100_000);
    let mut g = c.benchmark_group("ecod");
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("observe_100k_points_3_features", |b| {
        b.iter(|| {
            let mut d = Ecod::new(3, Params::default());
            for x in &data {
                std::hint::black_box(d.observe(x).unwrap());
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

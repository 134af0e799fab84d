//! Detection throughput on one core: the SigmaHQ Windows rules over the events of
//! EVTX-ATTACK-SAMPLES, decoded beforehand, so the figure is detection alone (routing, the
//! literal prefilter, `rsigma`'s matchers on the candidates).
//!
//! `windows/prefiltered` is [`RuleSet::evaluate`], what `rempart hunt` and live detection run;
//! `all-rules/prefiltered` the same with SigmaHQ's whole `rules` tree loaded;
//! `windows/view` builds each event's Sigma view only, `windows/candidates` routes it and runs
//! the prefilter (no matcher); `windows/exhaustive` evaluates every rule each event's route
//! admits, without the prefilter.
//!
//! Run: `cargo bench -p rempart-detect --bench evaluate` (data from `REMPART_DATA`, by default
//! `../shared/data` beside the workspace).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_model::Event;

/// The allocator the `rempart` binary uses, so figures match the product.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `REMPART_DATA`, a relative one taken from the workspace root (where `cargo bench` is run;
/// the bench itself runs in the crate's directory), by default `../shared/data`.
fn data() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("REMPART_DATA").map(PathBuf::from) {
        Some(path) if path.is_absolute() => path,
        Some(path) => root.join(path),
        None => root.join("../shared/data"),
    }
}

/// The rules of `sigma/<tree>` (`rules/windows`, or SigmaHQ's whole `rules`).
fn rules(tree: &str) -> RuleSet {
    let files = rempart_ingest::files::walk(&[data().join("sigma").join(tree)])
        .unwrap_or_else(|e| panic!("{e}: is REMPART_DATA set?"));
    let texts: Vec<(String, String)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(p).ok()?)))
        .collect();
    RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str()))).0
}

fn events() -> Vec<Event> {
    let files = rempart_ingest::files::walk(&[data().join("evtx-attack-samples")])
        .unwrap_or_else(|e| panic!("{e}: is REMPART_DATA set?"));
    let mut events = Vec::new();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "evtx")) {
        rempart_ingest::files::decode_file(f, &DecodeOptions::default(), Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                events.push(*e);
            }
        });
    }
    events
}

fn evaluate(c: &mut Criterion) {
    let set = rules("rules/windows");
    let events = events();
    assert!(events.len() > 8_000, "{} events: is REMPART_DATA set?", events.len());
    let mut group = c.benchmark_group("windows");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("prefiltered", |b| {
        b.iter(|| events.iter().map(|e| set.evaluate(black_box(e)).len()).sum::<usize>());
    });
    // The parts of `prefiltered`, to see where its time goes.
    group.bench_function("view", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| rempart_detect::SigmaView::new(black_box(e)).get("EventID").is_some() as usize)
                .sum::<usize>()
        });
    });
    group.bench_function("candidates", |b| {
        b.iter(|| events.iter().map(|e| set.candidates(black_box(e)).0).sum::<usize>());
    });
    group.bench_function("exhaustive", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| set.evaluate_exhaustively(black_box(e)).len())
                .sum::<usize>()
        });
    });
    group.finish();

    // SigmaHQ's whole `rules` tree, as `rempart hunt --rules sigma/rules` loads it: the
    // Windows events meet the rules of other products only through routing and the prefilter.
    let set = rules("rules");
    let mut group = c.benchmark_group("all-rules");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("prefiltered", |b| {
        b.iter(|| events.iter().map(|e| set.evaluate(black_box(e)).len()).sum::<usize>());
    });
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);

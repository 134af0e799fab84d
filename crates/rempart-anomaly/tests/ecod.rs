//! Streaming ECOD: the KDD 99 targets on the real data, the burst guard, attribution, and a
//! snapshot that resumes exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::PathBuf;

use proptest::prelude::*;
use rempart_anomaly::ecod::{Ecod, Params, Tail};
use rempart_anomaly::{datasets, eval};

fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")))
        .join("anomaly/kdd99")
}

fn kdd(name: &str, params: Params) -> f64 {
    let mut detector: Option<Ecod> = None;
    let mut scored = Vec::new();
    datasets::kdd99(&data().join(name), |x, label| {
        let d = detector.get_or_insert_with(|| Ecod::new(x.len(), params));
        scored.push((d.observe(x).unwrap().value as f32, label));
    })
    .unwrap();
    eval::roc_auc(&mut scored).unwrap()
}

#[test]
fn kdd_http_and_smtp_reach_their_targets() {
    let http = kdd("http.csv.gz", Params::default());
    let smtp = kdd("smtp.csv.gz", Params::default());
    assert!(http >= 0.99, "HTTP ROC-AUC {http}");
    assert!(smtp >= 0.90, "SMTP ROC-AUC {smtp}");
}

/// A regular stream: two features around their usual values.
fn normal(i: u64) -> [f64; 2] {
    let a = ((i * 7_919) % 1_000) as f64 / 1_000.0;
    let b = ((i * 104_729) % 1_000) as f64 / 1_000.0;
    [5.0 + a, 2.0 + b]
}

#[test]
fn a_burst_of_attacks_does_not_become_normal() {
    let attack = [9.5, 3.5];
    let run = |guard: f64| {
        let mut d = Ecod::new(
            2,
            Params {
                guard,
                warm_up: 500,
                ..Params::default()
            },
        );
        for i in 0..5_000 {
            d.observe(&normal(i)).unwrap();
        }
        let first = d.observe(&attack).unwrap().value;
        // A burst as long as a third of everything seen so far.
        let mut last = first;
        for _ in 0..2_000 {
            last = d.observe(&attack).unwrap().value;
        }
        (first, last, d.counts())
    };
    let (first, last, (seen, learned)) = run(Params::default().guard);
    assert!(first >= Params::default().guard, "the attack stands out: {first}");
    assert!(
        (last - first).abs() < 1e-9,
        "guarded: the last of the burst scores as the first ({first} → {last})"
    );
    assert_eq!(seen - learned, 2_001, "none of the burst was learned");
    let (first, last, _) = run(f64::INFINITY);
    assert!(
        last < first / 3.0,
        "unguarded, the burst teaches itself to be normal ({first} → {last})"
    );
}

#[test]
fn attribution_names_the_feature_that_moved_with_typical_and_actual() {
    let mut d = Ecod::new(2, Params::default());
    for i in 0..5_000 {
        d.observe(&normal(i)).unwrap();
    }
    let x = [5.5, 0.4];
    let s = d.score(&x).unwrap();
    let why = d.explain(&x, &s);
    assert_eq!(why[0].feature, 1, "{why:?}");
    assert_eq!(why[0].direction, Tail::Low);
    assert!(why[0].share > 0.8, "{why:?}");
    assert!(
        (why[0].typical - 2.5).abs() < 0.05,
        "median of 2.0–3.0: {}",
        why[0].typical
    );
    assert!((why[0].actual - 0.4).abs() < 1e-12);
    let total: f64 = why.iter().map(|a| a.contribution).sum();
    assert!((total - s.value).abs() < 1e-9);
}

#[test]
fn a_snapshot_resumes_with_the_same_scores() {
    let mut whole = Ecod::new(2, Params::default());
    let mut first = Ecod::new(2, Params::default());
    let stream: Vec<[f64; 2]> = (0..4_000)
        .map(|i| if i % 500 == 7 { [20.0, -3.0] } else { normal(i) })
        .collect();
    for x in &stream[..2_000] {
        whole.observe(x).unwrap();
        first.observe(x).unwrap();
    }
    let snapshot = serde_json::to_string(&first).unwrap();
    drop(first);
    let mut resumed: Ecod = serde_json::from_str(&snapshot).unwrap();
    for x in &stream[2_000..] {
        assert_eq!(whole.observe(x).unwrap(), resumed.observe(x).unwrap());
    }
    assert_eq!(whole, resumed);
}

#[test]
fn bad_points_are_refused_and_leave_the_state_alone() {
    let mut d = Ecod::new(2, Params::default());
    d.observe(&[1.0, 2.0]).unwrap();
    let before = d.clone();
    assert!(d.observe(&[1.0]).is_err());
    assert!(d.observe(&[1.0, f64::NAN]).is_err());
    assert!(d.observe(&[f64::INFINITY, 1.0]).is_err());
    assert_eq!(d, before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Scores are finite and positive, their parts sum to them, and a value beyond everything
    /// seen scores at least as high as one inside.
    #[test]
    fn scores_are_sound(values in proptest::collection::vec(-50.0f64..50.0, 10..300), inside in 0usize..10, beyond in 1.0f64..100.0) {
        let mut d = Ecod::new(1, Params { warm_up: 0, guard: f64::INFINITY, ..Params::default() });
        for v in &values {
            let s = d.observe(&[*v]).unwrap();
            prop_assert!(s.value.is_finite() && s.value > 0.0);
            prop_assert!((s.contributions.iter().sum::<f64>() - s.value).abs() < 1e-9);
        }
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        let inner = d.score(&[values[inside % values.len()]]).unwrap().value;
        let outer = d.score(&[max + beyond]).unwrap().value;
        prop_assert!(outer + 1e-9 >= inner, "{outer} < {inner}");
    }

    /// Any line reads as a row or is refused with a reason.
    #[test]
    fn any_feature_line_reads_or_says_why(line in ".{0,60}") {
        let mut row = Vec::new();
        if let Err(e) = datasets::feature_line(&line, 3, &mut row) {
            prop_assert!(!e.is_empty());
        } else {
            prop_assert_eq!(row.len(), 3);
            prop_assert!(row.iter().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn among_features_beyond_everything_seen_the_farthest_leads() {
    let mut d = Ecod::new(2, Params::default());
    for i in 0..2_000 {
        d.observe(&normal(i)).unwrap();
    }
    // Both beyond the learned range, so both tails are at their floor: the second is further out.
    let x = [9.0, 40.0];
    let s = d.score(&x).unwrap();
    let why = d.explain(&x, &s);
    assert_eq!(why[0].contribution, why[1].contribution, "{why:?}");
    assert_eq!(why[0].feature, 1, "{why:?}");
    let x = [90.0, 4.5];
    let why = d.explain(&x, &d.score(&x).unwrap());
    assert_eq!(why[0].feature, 0, "{why:?}");
}

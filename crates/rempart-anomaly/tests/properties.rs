//! Properties of the data-set reader (outside input) and of the evaluation metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use proptest::prelude::*;
use rempart_anomaly::{datasets, eval};

proptest! {
    /// Any line reads as an edge or is refused with a reason; never a panic.
    #[test]
    fn any_line_reads_or_says_why(line in ".{0,80}") {
        let mut first = datasets::Ticks::default();
        if let Err(e) = datasets::darpa_line(&line, &mut first) {
            prop_assert!(!e.is_empty());
        }
    }

    /// Well-formed lines read back what was written; ticks number the distinct minutes in order.
    #[test]
    fn written_edges_read_back(
        a in any::<[u8; 4]>(), b in any::<[u8; 4]>(),
        times in prop::collection::vec((1u32..=28, 0u32..24, 0u32..60), 1..40), attack in any::<bool>(),
    ) {
        let ip = |o: [u8; 4]| format!("{:03}.{:03}.{:03}.{:03}", o[0], o[1], o[2], o[3]);
        let mut times = times;
        times.sort_unstable();
        let mut ticks = datasets::Ticks::default();
        let mut distinct = std::collections::BTreeSet::new();
        for (day, hour, minute) in times {
            distinct.insert((day, hour, minute));
            let line = format!("{},{},06/{day:02}/1998-{hour:02}:{minute:02},{}", ip(a), ip(b), if attack { "smurf" } else { "-" });
            let e = datasets::darpa_line(&line, &mut ticks).unwrap();
            prop_assert_eq!(e.source, u64::from(u32::from_be_bytes(a)));
            prop_assert_eq!(e.destination, u64::from(u32::from_be_bytes(b)));
            prop_assert_eq!(e.tick, distinct.len() as u64);
            prop_assert_eq!(e.anomaly, attack);
        }
    }

    /// ROC-AUC stays in [0, 1], and reversing the scores mirrors it.
    #[test]
    fn roc_auc_is_a_probability_and_mirrors(scored in prop::collection::vec((0u8..20, any::<bool>()), 2..200)) {
        let mut s: Vec<(f32, bool)> = scored.iter().map(|&(x, l)| (f32::from(x), l)).collect();
        let mut r: Vec<(f32, bool)> = scored.iter().map(|&(x, l)| (-f32::from(x), l)).collect();
        if let (Some(a), Some(b)) = (eval::roc_auc(&mut s), eval::roc_auc(&mut r)) {
            prop_assert!((0.0..=1.0).contains(&a));
            prop_assert!((a + b - 1.0).abs() < 1e-9);
        }
        if let Some(ap) = eval::average_precision(&mut s) {
            prop_assert!((0.0..=1.0 + 1e-12).contains(&ap));
        }
    }
}

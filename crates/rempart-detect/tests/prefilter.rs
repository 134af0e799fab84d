//! The literal prefilter leaves every match to be found: over real events and the whole SigmaHQ
//! rule tree, [`RuleSet::evaluate`] finds exactly what evaluating every admitted rule finds,
//! and a rule set loaded on several threads is the one loaded on one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use common::{data, walk};
use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_ingest::decode::{DecodeOptions, Decoded};

#[test]
fn the_prefilter_loses_no_match_of_the_sigmahq_rules_on_real_events() {
    let mut files = Vec::new();
    for dir in ["rules", "rules-threat-hunting", "rules-emerging-threats", "rules-dfir"] {
        walk(&data().join("sigma").join(dir), &mut files);
    }
    let texts: Vec<(String, String)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let (set, report) = RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    assert!(report.loaded.len() > 3_000, "{} rules loaded", report.loaded.len());
    // Files compiled and prefilters built side by side: the same report, in the same order.
    let (parallel, parallel_report) = RuleSet::load_on(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())), 3);
    assert_eq!(
        serde_json::to_string(&parallel_report).unwrap(),
        serde_json::to_string(&report).unwrap()
    );

    let mut samples = Vec::new();
    walk(&data().join("evtx-attack-samples"), &mut samples);
    walk(&data().join("sigma/regression_data"), &mut samples);
    samples.retain(|p| p.extension().is_some_and(|e| e == "evtx" || e == "json"));
    let (mut events, mut matches, mut left, mut admitted) = (0usize, 0usize, 0usize, 0usize);
    let mut differences = Vec::new();
    for sample in &samples {
        rempart_ingest::files::decode_file(sample, &DecodeOptions::default(), Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                events += 1;
                let fast = set.evaluate(&e);
                let loaded_in_parallel = parallel.evaluate(&e);
                let reference = set.evaluate_exhaustively(&e);
                matches += reference.len();
                let (l, a) = set.candidates(&e);
                left += l;
                admitted += a;
                if (fast != reference || loaded_in_parallel != fast) && differences.len() < 20 {
                    let titles =
                        |v: &[rempart_detect::RuleMatch]| v.iter().map(|m| m.rule_title.clone()).collect::<Vec<_>>();
                    differences.push(format!(
                        "{}: prefiltered {:?}, exhaustive {:?}, loaded in parallel {:?}",
                        sample.display(),
                        titles(&fast),
                        titles(&reference),
                        titles(&loaded_in_parallel)
                    ));
                }
            }
        });
    }
    assert!(events > 8_000 && matches > 1_000, "{events} events, {matches} matches");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // The point of it: most admitted rules are never evaluated.
    assert!(left * 4 < admitted, "{left} of {admitted} admitted rules evaluated");
    eprintln!("{events} events, {matches} matches; {left} of {admitted} admitted rule evaluations left");
}

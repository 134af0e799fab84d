//! The SigmaHQ rule set and its regression samples from `../shared/data/sigma`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::path::PathBuf;

mod common;

use common::walk;

use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_ingest::decode::{DecodeOptions, Decoded};

fn sigma() -> PathBuf {
    common::data().join("sigma")
}

fn rule_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in [
        "rules",
        "rules-threat-hunting",
        "rules-emerging-threats",
        "rules-compliance",
        "rules-dfir",
    ] {
        walk(&sigma().join(dir), &mut files);
    }
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

#[test]
fn every_sigmahq_rule_is_loaded_or_rejected_with_a_reason() {
    let files = rule_files();
    assert!(files.len() > 3_500, "{} rule files", files.len());
    let (set, report) = RuleSet::load(files.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    let accounted: std::collections::HashSet<&str> = report
        .loaded
        .iter()
        .map(|r| r.file.as_str())
        .chain(report.rejected.iter().map(|r| r.file.as_str()))
        .collect();
    let silent: Vec<&str> = files
        .iter()
        .map(|(f, _)| f.as_str())
        .filter(|f| !accounted.contains(f))
        .collect();
    // A file holding only correlations or filters has no detection rule of its own.
    assert!(
        silent.len() <= report.correlations + report.filters,
        "files neither loaded nor rejected: {silent:?}"
    );
    assert!(report.rejected.iter().all(|r| !r.reason.is_empty() && r.line >= 1));
    assert!(
        report.loaded.len() > 3_500,
        "only {} rules loaded; rejected: {:?}",
        report.loaded.len(),
        &report.rejected[..report.rejected.len().min(5)]
    );
    assert_eq!(set.rules().len(), report.loaded.len());
}

/// A regression test as `info.yml` describes it (commented-out lines ignored).
struct Info {
    rule_id: String,
    /// `(type, path, match_count)` of each active test.
    tests: Vec<(String, String, Option<usize>)>,
}

fn info(text: &str) -> Info {
    let mut rule_id = None;
    let mut tests: Vec<(String, String, Option<usize>)> = Vec::new();
    let mut section = "";
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if !line.starts_with(' ') && !line.starts_with('-') {
            section = line.split(':').next().unwrap_or("");
        }
        let t = line.trim().trim_start_matches("- ");
        let value = |key: &str| {
            t.strip_prefix(key)
                .map(|v| v.trim().trim_matches(['\'', '"']).to_owned())
        };
        match section {
            "rule_metadata" if rule_id.is_none() => rule_id = value("id:"),
            "regression_tests_info" => {
                if line.trim_start().starts_with("- ") {
                    tests.push((String::new(), String::new(), None));
                }
                if let Some(last) = tests.last_mut() {
                    if let Some(v) = value("type:") {
                        last.0 = v;
                    } else if let Some(v) = value("path:") {
                        last.1 = v;
                    } else if let Some(v) = value("match_count:") {
                        last.2 = v.parse().ok();
                    }
                }
            }
            _ => {}
        }
    }
    Info {
        rule_id: rule_id.unwrap(),
        tests,
    }
}

/// Samples where SigmaHQ's `match_count` disagrees with the events in the sample itself, and
/// the count asserted instead; each was checked by reading the sample's events.
const ERRATA: &[(&str, usize, &str)] = &[
    (
        "0b9ad457-2554-44c1-82c2-d56a99c42377",
        3,
        r"3 events' TargetFilename contain `\AppData\Roaming\AnyDesk\user.conf`",
    ),
    (
        "8fbf3271-1ef6-4e94-8210-03c2317947f6",
        3,
        "procdump.exe, procdump64.exe and procdump64a.exe are each dropped",
    ),
    (
        "45e112d0-7759-4c2a-aa36-9f8fb79d3393",
        3,
        r"3 ZoneMap\Domains keys (https, http, *) are set to zone 2",
    ),
    (
        "c7dcacd0-cc59-4004-b0a4-1d6cdebe6f3e",
        2,
        "both AutoShareServer and AutoShareWks are set to 0",
    ),
];

#[test]
fn every_regression_rule_fires_on_its_own_sample() {
    let files = rule_files();
    let by_id: HashMap<String, &(String, String)> = files
        .iter()
        .filter_map(|f| {
            let id = f.1.lines().find_map(|l| l.strip_prefix("id:"))?.trim().to_owned();
            Some((id, f))
        })
        .collect();
    let mut samples = Vec::new();
    walk(&sigma().join("regression_data"), &mut samples);
    let mut checked = 0;
    let mut failures = Vec::new();
    for info_path in samples
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "info.yml"))
    {
        let info = info(&std::fs::read_to_string(info_path).unwrap());
        let rule_id = info.rule_id;
        let Some((file, text)) = by_id.get(&rule_id) else {
            failures.push(format!("{}: rule {rule_id} not in the rule set", info_path.display()));
            continue;
        };
        let (set, report) = RuleSet::load([(file.as_str(), text.as_str())]);
        if report.loaded.is_empty() {
            failures.push(format!("{file}: rejected: {:?}", report.rejected));
            continue;
        }
        for (kind, path, match_count) in &info.tests {
            if kind != "evtx" {
                continue;
            }
            let evtx = sigma().join(path);
            // The EVTX and its evtx_dump-style JSON twin must both give the expected count.
            for sample in [evtx.clone(), evtx.with_extension("json")] {
                let mut hits = 0;
                rempart_ingest::files::decode_file(
                    &sample,
                    &DecodeOptions::default(),
                    Timestamp::UNIX_EPOCH,
                    &mut |d| {
                        if let Decoded::Event(e) = d {
                            hits += set
                                .evaluate(&e)
                                .iter()
                                .filter(|m| m.rule_id.as_deref() == Some(rule_id.as_str()))
                                .count();
                        }
                    },
                );
                let expected = ERRATA
                    .iter()
                    .find(|(id, _, _)| *id == rule_id)
                    .map(|(_, n, _)| *n)
                    .or(*match_count);
                let ok = match expected {
                    Some(n) => hits == n,
                    None => hits > 0,
                };
                if !ok {
                    failures.push(format!(
                        "{file}: {hits} matches on {}, expected {expected:?}",
                        sample.display()
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 380, "only {checked} regression samples checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

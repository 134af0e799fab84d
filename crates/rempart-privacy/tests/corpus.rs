//! Recall and precision per entity type on a labelled corpus of security telemetry the project
//! wrote (`tests/corpus/security.jsonl`: Windows Security and Sysmon events, ECS, Zeek, Suricata,
//! Azure AD sign-ins, sshd, sudo, auditd, Apache and nginx access logs, firewall CEF, mail
//! gateway, VPN, DHCP and proxy logs, application logs with secrets, analyst and HR free text with
//! checksum-valid IBANs, cards and the national identifiers of 13 member states).
//!
//! Each case lists what must be found as `[type, original]`; anything else found is a false
//! positive.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use rempart_privacy::recognize::{RecognizerConfig, Recognizers};
use rempart_privacy::redact::{Domain, Redactor};
use serde_json::Value;

#[derive(Default, Debug)]
struct Score {
    expected: u64,
    found: u64,
    predicted: u64,
    correct: u64,
    structured_expected: u64,
    structured_found: u64,
}

#[test]
fn recall_and_precision_per_entity_type() {
    let recognizers = Recognizers::new(&RecognizerConfig {
        internal_suffixes: vec!["corp.example.eu".into()],
        ..RecognizerConfig::default()
    })
    .unwrap();
    let redactor = Redactor::new(recognizers, Domain::derive(&[1; 32], "corpus", 0));
    let corpus = include_str!("corpus/security.jsonl");
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut misses = Vec::new();
    for (n, line) in corpus.lines().enumerate() {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("corpus line {}: {e}", n + 1));
        let replacements = match (&case["json"], case["text"].as_str()) {
            (Value::Object(_), _) => {
                let mut v = case["json"].clone();
                redactor.redact_json(&mut v).unwrap()
            }
            (_, Some(text)) => redactor.redact_text(text).unwrap().replacements,
            _ => panic!("corpus line {}: neither json nor text", n + 1),
        };
        let mut expected: Vec<(String, String)> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().to_owned(), e[1].as_str().unwrap().to_owned()))
            .collect();
        for (kind, _) in &expected {
            scores.entry(kind.clone()).or_default().expected += 1;
        }
        for r in &replacements {
            let kind = r.entity.prefix().to_owned();
            let s = scores.entry(kind.clone()).or_default();
            s.predicted += 1;
            let structured = r.recognizer == "field-name";
            if structured {
                s.structured_expected += 1;
            }
            if let Some(i) = expected.iter().position(|(k, v)| *k == kind && *v == r.original) {
                expected.swap_remove(i);
                s.correct += 1;
                s.found += 1;
                if structured {
                    s.structured_found += 1;
                }
            } else {
                misses.push(format!(
                    "line {}: unexpected {kind} `{}` ({})",
                    n + 1,
                    r.original,
                    r.recognizer
                ));
            }
        }
        for (kind, value) in expected {
            misses.push(format!("line {}: missed {kind} `{value}`", n + 1));
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    println!("{:<8} {:>8} {:>7} {:>9}", "type", "expected", "recall", "precision");
    for (kind, s) in &scores {
        println!(
            "{kind:<8} {:>8} {:>7.3} {:>9.3}",
            s.expected,
            ratio(s.found, s.expected),
            ratio(s.correct, s.predicted)
        );
    }
    for m in &misses {
        println!("{m}");
    }
    for (kind, s) in &scores {
        assert_eq!(
            s.structured_found, s.structured_expected,
            "{kind}: every structured field is found"
        );
        assert!(ratio(s.found, s.expected) >= 0.99, "{kind} recall: {misses:#?}");
        assert!(ratio(s.correct, s.predicted) >= 0.95, "{kind} precision: {misses:#?}");
    }
}

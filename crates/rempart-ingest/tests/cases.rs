//! Data-driven decoder cases: `tests/cases/*.jsonl`, one case per line, each an `input` (or
//! `input_hex`) with either `expect` (dotted paths into the decoded event and the values they
//! must hold; `null` means absent) or `reject` (a substring of the rejection reason).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use jiff::Timestamp;
use rempart_ingest::decode::{DecodeOptions, Decoded, decode_bytes};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Follows a dotted path; the keys of structured data contain `@`, never `.`.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    let mut rest = path;
    loop {
        let obj = cur.as_object()?;
        if let Some(found) = obj.get(rest) {
            return Some(found);
        }
        let (head, tail) = rest.split_once('.')?;
        cur = obj.get(head)?;
        rest = tail;
    }
}

#[test]
fn syslog_and_cef_cases() {
    let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
    let text = include_str!("cases/syslog_cef.jsonl");
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["name"].as_str().unwrap();
        let input = match case.get("input_hex") {
            Some(h) => hex(h.as_str().unwrap()),
            None => case["input"].as_str().unwrap().as_bytes().to_vec(),
        };
        let mut items = Vec::new();
        decode_bytes("case", &input, &DecodeOptions::default(), now, &mut |d| items.push(d));
        if items.len() != 1 {
            failures.push(format!("{name}: {} items decoded", items.len()));
            continue;
        }
        match (items.remove(0), case.get("reject")) {
            (Decoded::Rejected(r), Some(want)) => {
                if !r.reason.contains(want.as_str().unwrap()) {
                    failures.push(format!("{name}: rejected with `{}`, wanted `{want}`", r.reason));
                }
            }
            (Decoded::Rejected(r), None) => failures.push(format!("{name}: rejected: {}", r.reason)),
            (Decoded::Event(e), Some(_)) => failures.push(format!("{name}: decoded, wanted a rejection: {e:?}")),
            (Decoded::Event(e), None) => {
                let v = serde_json::to_value(&e).unwrap();
                for (path, want) in case["expect"].as_object().unwrap() {
                    if path == "time_year" {
                        let year = e.time.to_zoned(jiff::tz::TimeZone::UTC).year();
                        if Some(i64::from(year)) != want.as_i64() {
                            failures.push(format!("{name}: year {year}, wanted {want}"));
                        }
                        continue;
                    }
                    let got = at(&v, path).unwrap_or(&Value::Null);
                    if got != want {
                        failures.push(format!("{name}: `{path}` is {got}, wanted {want}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

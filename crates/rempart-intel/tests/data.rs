//! The STIX examples and MISP events of `../shared/data`: every indicator read or skipped with a
//! reason, and what is read matches what it should.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::path::PathBuf;

use rempart_intel::{IocIndex, Kind, import};

fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

fn read(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data().join(rel)).unwrap()).unwrap()
}

#[test]
fn stix_examples_import_and_match() {
    let mut all = Vec::new();
    for f in [
        "stix/examples/indicator-for-c2-ip-address.json",
        "stix/examples/indicators-for-C2-with-COA.json",
        "stix/examples/malicious-email-indicator-with-attachment.json",
        "stix/examples/threat-reports/apt1.json",
        "stix/examples/threat-reports/poisonivy.json",
    ] {
        let doc = read(f);
        let total = doc["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "indicator")
            .count();
        let r = import(&doc, f).unwrap();
        assert_eq!(
            r.indicators.len() + r.skipped.len(),
            total,
            "{f}: every indicator read or skipped"
        );
        for s in &r.skipped {
            assert!(!s.reason.is_empty());
        }
        all.extend(r.indicators);
    }
    assert!(all.len() >= 14, "{}", all.len());
    let idx = IocIndex::new(all);
    let t = "2020-01-01T00:00:00Z".parse().unwrap();
    // APT1: 223.166.0.0/15 and the domain hugesoft.org.
    let hit = |k: Kind, v: &str| idx.matches(&[(k, v.to_owned())], t).len();
    assert_eq!(hit(Kind::Ip, "223.167.1.2"), 1);
    assert_eq!(hit(Kind::Ip, "223.168.1.2"), 0);
    assert_eq!(hit(Kind::Domain, "www.hugesoft.org"), 1);
}

#[test]
fn misp_events_import_with_to_ids_and_reasons() {
    let doc = read("misp/long_event.json");
    let attrs = doc["Event"]["Attribute"].as_array().unwrap().len();
    let r = import(&doc, "long_event.json").unwrap();
    assert_eq!(r.indicators.len() + r.skipped.len(), attrs);
    assert!(r.indicators.len() > 100, "{}", r.indicators.len());
    let with_ids = doc["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["to_ids"] == true || a["to_ids"] == "1")
        .count();
    assert!(r.indicators.len() <= with_ids);
    for f in [
        "misp/57c4445b-c548-4654-af0b-4be3950d210f.json",
        "misp/mainly_objects_1.json",
        "misp/misp_event.json",
    ] {
        let r = import(&read(f), f).unwrap();
        assert!(!r.indicators.is_empty() || !r.skipped.is_empty(), "{f}");
    }
}

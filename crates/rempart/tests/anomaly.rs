//! Streaming anomaly detection on labelled data: the DARPA 1998 edge stream and the KDD 99
//! HTTP and SMTP connections.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use common::{data, rempart};
use serde_json::Value;

#[test]
fn midas_r_reaches_the_published_roc_auc_on_darpa98() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rempart(tmp.path())
        .args(["--json", "anomaly", "eval", "--dataset", "darpa98"])
        .arg(data().join("anomaly/darpa98/darpa_original.zip"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["detector"], "midas-r");
    assert_eq!(r["events"], 4_554_344);
    // Bhatia et al. (AAAI 2020) report 0.95 for MIDAS-R on this stream.
    let auc = r["roc_auc"].as_f64().unwrap();
    assert!(auc >= 0.95, "ROC-AUC {auc}");
    let ap = r["average_precision"].as_f64().unwrap();
    assert!(ap > 0.9, "average precision {ap}");
    assert!(r["events_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_bad_line_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("edges.csv");
    std::fs::write(
        &csv,
        "172.016.112.020,192.168.001.010,06/01/1998-07:55,-\n1.2.3.4,not-an-address,06/01/1998-07:56,-\n",
    )
    .unwrap();
    let out = rempart(tmp.path())
        .args(["anomaly", "eval", "--dataset", "darpa98"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: `not-an-address` is not an IPv4 address"), "{err}");
}

#[test]
fn ecod_with_its_burst_guard_reaches_the_kdd_targets() {
    let tmp = tempfile::tempdir().unwrap();
    for (set, file, rows, target) in [
        ("kdd-http", "http.csv.gz", 567_498, 0.99),
        ("kdd-smtp", "smtp.csv.gz", 95_156, 0.90),
    ] {
        let out = rempart(tmp.path())
            .args(["--json", "anomaly", "eval", "--dataset", set])
            .arg(data().join("anomaly/kdd99").join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["detector"], "ecod");
        assert_eq!(r["events"], rows);
        let auc = r["roc_auc"].as_f64().unwrap();
        assert!(auc >= target, "{set}: ROC-AUC {auc}");
    }
    // A detector for edges does not read feature tables.
    let out = rempart(tmp.path())
        .args(["anomaly", "eval", "--dataset", "kdd-smtp", "--detector", "midas"])
        .arg(data().join("anomaly/kdd99/smtp.csv.gz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use ecod on kdd-http and kdd-smtp"));
}

/// A Security 4624 logon as exported to JSON.
fn logon(time: jiff::Timestamp, user: &str, host: &str, src: &str) -> String {
    serde_json::json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": 4624, "Channel": "Security", "Computer": host,
            "TimeCreated": {"#attributes": {"SystemTime": time.to_string()}}
        },
        "EventData": {"TargetUserName": user, "TargetDomainName": "CORP", "LogonType": 3, "IpAddress": src}
    }})
    .to_string()
}

#[test]
fn baselines_learn_across_ingests_and_raise_explained_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("instance");
    let day = jiff::SignedDuration::from_hours(24);
    let start: jiff::Timestamp = "2026-10-01T00:00:00Z".parse().unwrap();
    // A month of routine: two people on their workstations during the day.
    let mut routine = String::new();
    for d in 0..30 {
        for h in [8, 10, 13, 16] {
            let t = start + day * d + jiff::SignedDuration::from_hours(h);
            routine.push_str(&logon(t, "alice", "WS-ALICE.corp.example.eu", "10.1.0.21"));
            routine.push('\n');
            routine.push_str(&logon(t, "bob", "WS-BOB.corp.example.eu", "10.1.0.22"));
            routine.push('\n');
        }
    }
    std::fs::write(tmp.path().join("month.json"), routine).unwrap();
    let out = rempart(&dir)
        .args(["--json", "ingest"])
        .arg(tmp.path().join("month.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events"], 240);
    assert_eq!(summary["alerts"], 0, "routine raises nothing: {summary}");

    // Another process, later: the baselines come back from the store.
    let t = start + day * 30 + jiff::SignedDuration::from_hours(3);
    std::fs::write(
        tmp.path().join("night.json"),
        format!("{}\n", logon(t, "adm-x", "DC-01.corp.example.eu", "10.9.9.9")),
    )
    .unwrap();
    let out = rempart(&dir)
        .args(["--json", "ingest"])
        .arg(tmp.path().join("night.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = rempart(&dir).args(["--json", "alerts"]).output().unwrap();
    let alerts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["rule_id"], "rempart-anomaly/first_logon");
    assert_eq!(a["rule_title"], "Anomaly: first logon of an account to a host");
    let matched: Vec<(String, String)> = a["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["field"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        matched.contains(&("anomaly.typical".into(), "never seen logging on before".into())),
        "{matched:?}"
    );
    assert!(
        matched.contains(&("anomaly.actual".into(), "logon to dc-01 at 03:00 UTC".into())),
        "{matched:?}"
    );
    // It joins incident correlation like any alert.
    let out = rempart(&dir).args(["--json", "incidents"]).output().unwrap();
    let incidents = String::from_utf8(out.stdout).unwrap();
    assert_eq!(incidents.lines().count(), 1, "{incidents}");
    assert!(incidents.contains("Anomaly: first logon"), "{incidents}");
}

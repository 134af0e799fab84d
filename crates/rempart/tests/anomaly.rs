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

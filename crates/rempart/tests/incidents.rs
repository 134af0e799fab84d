//! Incidents on real data through the command line: OTRF attack simulations ingested with the
//! SigmaHQ rules group into one incident per intrusion, and analysts move them through their
//! lifecycle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;

use common::{data, ledger_kinds, rempart};
use serde_json::Value;

fn run_json(dir: &Path, args: &[&str]) -> Value {
    let out = rempart(dir).arg("--json").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rempart {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_lines(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = rempart(dir).arg("--json").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rempart {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Four credential-access simulations of the OTRF Security-Datasets, recorded on different
/// days on the same lab (the same workstation, domain controller and accounts).
const DATASETS: &[&str] = &[
    "empire_mimikatz_logonpasswords.zip",
    "cmd_lsass_memory_dumpert_syscalls.zip",
    "psh_lsass_memory_dump_comsvcs.zip",
    "empire_dcsync_dcerpc_drsuapi_DsGetNCChanges.zip",
];

#[test]
fn each_otrf_intrusion_is_one_incident_and_analysts_work_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rules = data().join("sigma/rules/windows");
    let host = data().join("otrf/atomic/windows/credential_access/host");
    let mut alerts = 0;
    for d in DATASETS {
        let summary = run_json(
            dir,
            &[
                "ingest",
                "--no-progress",
                "--rules",
                rules.to_str().unwrap(),
                host.join(d).to_str().unwrap(),
            ],
        );
        let raised = summary["alerts"].as_u64().unwrap();
        assert!(raised >= 4, "{d}: {summary}");
        // Dozens of alerts (lab noise included), one intrusion: one incident.
        assert_eq!(summary["incidents"], 1, "{d}: {summary}");
        alerts += raised;
    }
    let incidents = run_lines(dir, &["incidents", "list"]);
    assert_eq!(incidents.len(), DATASETS.len());
    let grouped: u64 = incidents.iter().map(|i| i["alert_count"].as_u64().unwrap()).sum();
    // Every alert above informational is in an incident; an informational one only if it
    // links to one (context, not a case of its own).
    let stored = run_lines(dir, &["alerts", "--limit", "10000"]);
    assert_eq!(stored.len() as u64, alerts);
    let cases = stored.iter().filter(|a| a["level"] != "informational").count() as u64;
    assert!(
        cases <= grouped && grouped <= alerts,
        "{grouped} grouped, {cases} cases, {alerts} alerts"
    );
    // The DCSync run crossed from the workstation to the domain controller: both hosts and the
    // account are in its incident.
    let dcsync = incidents
        .iter()
        .find(|i| i["first_seen"].as_str().unwrap().starts_with("2020-09-21"))
        .unwrap();
    let entities: Vec<String> = dcsync["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}:{}", e["kind"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    for e in ["host:mordordc", "host:workstation5", "user:pgustavo"] {
        assert!(entities.contains(&e.to_owned()), "{e} not in {entities:?}");
    }
    assert!(
        dcsync["tactics"]
            .as_array()
            .unwrap()
            .contains(&"credential-access".into())
    );

    // Triage without a model: degraded, labelled, with actions from the catalogue.
    let id = dcsync["id"].as_str().unwrap().to_owned();
    let verdict = run_json(dir, &["incidents", "triage", &id]);
    assert_eq!(verdict["mode"], "degraded");
    assert_eq!(verdict["classification"], "true_positive");
    assert!(
        verdict["flags"]
            .as_array()
            .unwrap()
            .contains(&"model_unavailable".into())
    );
    let actions: Vec<&str> = verdict["recommended_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"reset_credentials"), "{actions:?}");

    // Lifecycle: assign, investigate, contain, resolve; a resolved incident cannot go back to
    // `new`, only be reopened.
    run_json(dir, &["incidents", "assign", &id, "analyst.one"]);
    for status in ["investigating", "contained", "resolved"] {
        let i = run_json(dir, &["incidents", "status", &id, status, "--reason", "worked"]);
        assert_eq!(i["status"], status);
    }
    let out = rempart(dir)
        .args(["incidents", "status", &id, "triaged", "--reason", "oops"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot move from `resolved` to `triaged`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = run_json(dir, &["incidents", "show", &id]);
    assert_eq!(shown["incident"]["owner"], "analyst.one");
    let whats: Vec<&str> = shown["incident"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.first(), Some(&"created"));
    assert!(
        whats.ends_with(&["triaged", "owner", "status", "status", "status"]),
        "{whats:?}"
    );

    // Split: an analyst moves one alert of another incident into its own.
    let other = incidents.iter().find(|i| i["id"] != id.as_str()).unwrap();
    let other_id = other["id"].as_str().unwrap();
    let alerts_of = run_json(dir, &["incidents", "show", other_id]);
    let first_alert = alerts_of["alerts"][0]["id"].as_str().unwrap();
    let split = run_json(
        dir,
        &[
            "incidents",
            "split",
            other_id,
            "--alert",
            first_alert,
            "--reason",
            "a different case",
        ],
    );
    assert_eq!(split["split"]["alert_count"], 1);
    assert_eq!(
        split["incident"]["alert_count"].as_u64().unwrap(),
        other["alert_count"].as_u64().unwrap() - 1
    );

    let kinds = ledger_kinds(rempart(dir));
    for k in ["incident.create", "incident.update", "incident.split", "triage.verdict"] {
        assert!(kinds.contains(&k.to_owned()), "{k} not recorded");
    }
}

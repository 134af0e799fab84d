//! The binary on a shared PostgreSQL store (`[store] url`): the same commands, the same
//! results as on the embedded store, and nothing acknowledged lost to `kill -9`.
//!
//! Runs against a real server: `REMPART_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, which `scripts/test` makes sure answers); each
//! test has a schema of its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{data, rempart, serve_with};
use serde_json::Value;

use common::postgres_url as url;

/// An instance whose store is a fresh schema of the test server; its schema is dropped with it.
struct PgInstance {
    dir: tempfile::TempDir,
    config: PathBuf,
    schema: String,
}

impl PgInstance {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("rempart_test_{}", uuid::Uuid::now_v7().simple());
        let config = dir.path().join("rempart.toml");
        std::fs::write(
            &config,
            format!("version = 1\n\n[store]\nurl = \"{}\"\nschema = \"{schema}\"\n", url()),
        )
        .unwrap();
        PgInstance { dir, config, schema }
    }

    fn command(&self) -> Command {
        let mut c = rempart(self.dir.path());
        c.arg("--config").arg(&self.config);
        c
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        common::drop_schema(&self.schema);
    }
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What an alert says, without what each instance draws anew (its id, when it was raised).
fn alert_key(a: &Value) -> String {
    let mut a = a.clone();
    let o = a.as_object_mut().unwrap();
    for volatile in ["id", "created", "event"] {
        o.remove(volatile);
    }
    a.to_string()
}

fn ingest_and_list(command: impl Fn() -> Command, rules: &Path, sample: &Path) -> (Value, BTreeMap<String, usize>) {
    let out = command()
        .args(["ingest", "--json", "--rules"])
        .arg(rules)
        .arg(sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alerts = lines(
        &command()
            .args(["alerts", "--json", "--limit", "10000"])
            .output()
            .unwrap(),
    );
    let mut counted = BTreeMap::new();
    for a in &alerts {
        *counted.entry(alert_key(a)).or_insert(0) += 1;
    }
    (summary, counted)
}

/// The SigmaHQ process-creation rules over their regression samples, ingested into an embedded
/// and a PostgreSQL instance: the same events stored, the same alerts raised, found by the same
/// queries, and the PostgreSQL instance's ledger verifies.
#[test]
fn the_same_data_gives_the_same_events_and_alerts_on_postgresql_as_embedded() {
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample = data().join("sigma/regression_data/rules/windows/process_creation");
    let embedded = tempfile::tempdir().unwrap();
    let pg = PgInstance::new();
    let (s1, a1) = ingest_and_list(|| rempart(embedded.path()), &rules, &sample);
    let (s2, a2) = ingest_and_list(|| pg.command(), &rules, &sample);
    assert!(s1["events"].as_u64().unwrap() > 100, "{s1}");
    assert_eq!(s1["events"], s2["events"], "{s1} / {s2}");
    assert_eq!(s1["alerts"], s2["alerts"]);
    assert_eq!(a1.values().sum::<usize>() as u64, s1["alerts"].as_u64().unwrap());
    assert_eq!(a1, a2, "the same alerts, rule for rule and field for field");

    // Searches answer alike: a normalized field, an original field, free text.
    for query in [
        vec!["--filter", "event_id=1"],
        vec!["--text", "powershell"],
        vec!["--filter", "process=C:\\Windows\\System32\\cmd.exe"],
    ] {
        let find = |c: Command| -> Vec<String> {
            let mut c = c;
            let mut ids: Vec<String> = lines(
                &c.args(["events", "--json", "--limit", "10000"])
                    .args(&query)
                    .output()
                    .unwrap(),
            )
            .iter()
            .map(|e| e["fields"].to_string())
            .collect();
            ids.sort();
            ids
        };
        let (x, y) = (find(rempart(embedded.path())), find(pg.command()));
        assert!(!x.is_empty(), "{query:?} finds something");
        assert_eq!(x, y, "{query:?}");
    }

    let verify = pg.command().args(["audit", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Batches posted by four concurrent clients to a server on PostgreSQL; the server is killed
/// with SIGKILL once some are acknowledged, three times over. Every acknowledged event is then
/// stored, once.
#[test]
fn a_server_on_postgresql_loses_no_acknowledged_event_to_kill_9() {
    let pg = PgInstance::new();
    let token = {
        let out = pg
            .command()
            .args(["tokens", "create", "--role", "ingest"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acknowledged: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        let (mut child, addr) = serve_with(pg.command());
        let acked = common::stream_and_interrupt(&rt, &mut child, &addr, &token, round, |child| {
            child.kill().unwrap();
        });
        let _ = child.wait();
        acknowledged.extend(acked);
    }
    assert!(!acknowledged.is_empty(), "no request was acknowledged before the kill");
    // Every event's `seq`, as stored.
    let out = Command::new("psql")
        .arg(url())
        .args([
            "-qAt",
            "-c",
            &format!("SELECT fields->>'seq' FROM {}.events", pg.schema),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let distinct: std::collections::HashSet<u64> = stored.iter().copied().collect();
    assert_eq!(distinct.len(), stored.len(), "no event stored twice");
    let missing: Vec<_> = acknowledged.iter().filter(|s| !distinct.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let verify = pg.command().args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

/// Two processes ingesting into one shared store at the same time: each one's events and
/// alerts are all stored, and both append to one ledger that keeps a single order and verifies
/// (an append that loses the race to the other process resumes from the new head).
#[test]
fn two_processes_ingesting_at_once_keep_one_verifiable_ledger() {
    let pg = PgInstance::new();
    let rules = data().join("sigma/rules/windows/process_creation");
    let samples = [
        data().join("sigma/regression_data/rules/windows/process_creation"),
        data().join("evtx-attack-samples"),
    ];
    // The instance's keys are made once, before the two start.
    let first = pg.command().args(["audit", "verify"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let children: Vec<_> = samples
        .iter()
        .map(|sample| {
            pg.command()
                .args(["ingest", "--json", "--rules"])
                .arg(&rules)
                .arg(sample)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut alerts = 0;
    let mut events = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        alerts += summary["alerts"].as_u64().unwrap();
        events += summary["events"].as_u64().unwrap();
    }
    assert!(alerts > 400, "both raised alerts: {alerts}");
    let stored = lines(
        &pg.command()
            .args(["alerts", "--json", "--limit", "10000"])
            .output()
            .unwrap(),
    );
    assert_eq!(stored.len() as u64, alerts, "every alert of both processes stored");
    let out = Command::new("psql")
        .arg(url())
        .args(["-qAt", "-c", &format!("SELECT COUNT(*) FROM {}.events", pg.schema)])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), events.to_string());
    let records = lines(
        &pg.command()
            .args(["--json", "audit", "list", "--last", "100000"])
            .output()
            .unwrap(),
    );
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "one order, no gap");
    let raised = records.iter().filter(|r| r["kind"] == "alert.raise").count() as u64;
    assert_eq!(raised, alerts, "every alert of both processes recorded once");
    let verify = pg.command().args(["audit", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// An embedded instance (events, quarantine, alerts, incidents, tokens, indicators, the ledger)
/// copied into an empty PostgreSQL store: the same rows come back through the same commands,
/// the copied ledger verifies with the instance's keys and witness, and a second copy into the
/// same store is refused.
#[test]
fn an_embedded_instance_copied_into_postgresql_answers_alike_and_its_ledger_verifies() {
    let embedded = tempfile::tempdir().unwrap();
    let pg = PgInstance::new();
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample = data().join("sigma/regression_data/rules/windows/process_creation");
    let run = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let mut ingest = rempart(embedded.path());
    ingest.args(["ingest", "--json", "--rules"]).arg(&rules).arg(&sample);
    run(ingest);
    // Something undecodable, for the quarantine.
    let bad = embedded.path().join("bad.log");
    std::fs::write(&bad, "{\"not closed\": \n\u{0}\u{1}garbage\n").unwrap();
    let mut ingest = rempart(embedded.path());
    ingest.args(["ingest", "--format", "json"]).arg(&bad);
    let _ = ingest.output().unwrap();
    let mut intel = rempart(embedded.path());
    intel
        .args(["intel", "import"])
        .arg(data().join("stix/examples/indicator-for-c2-ip-address.json"));
    run(intel);
    common::token(embedded.path(), "analyst", "copied");

    // The copy reads the instance's data directory; the target is the configured store.
    let mut copy = pg.command();
    copy.args(["--json", "store", "copy", "--from"]).arg(embedded.path());
    let out = run(copy);
    // One line for the copy, one for the verification of its ledger.
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "{printed:?}");
    assert_eq!(printed[1]["ok"], true, "{}", printed[1]);
    let report = &printed[0];
    let tables: BTreeMap<String, u64> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap().to_owned(), t["target"].as_u64().unwrap()))
        .collect();
    for table in [
        "events",
        "alerts",
        "incidents",
        "incident_alerts",
        "ledger",
        "tokens",
        "intel_indicators",
    ] {
        assert!(tables[table] > 0, "{table} copied empty: {report}");
    }

    // Read back through the binary, the same on both sides.
    let listing = |c: &dyn Fn() -> Command, args: &[&str]| -> Vec<Value> {
        let mut c = c();
        c.args(args);
        lines(&c.output().unwrap())
    };
    let source = || rempart(embedded.path());
    let target = || {
        let mut c = rempart(embedded.path());
        c.arg("--config").arg(&pg.config);
        c
    };
    for args in [
        &["--json", "events", "--limit", "100000"][..],
        &["--json", "alerts", "--limit", "100000"],
        &["--json", "incidents", "list", "--limit", "1000"],
        &["--json", "tokens", "list"],
        &["--json", "audit", "list", "--last", "100000"],
    ] {
        let (a, b) = (listing(&source, args), listing(&target, args));
        assert!(!a.is_empty(), "{args:?} lists nothing");
        assert_eq!(a, b, "{args:?} differs after the copy");
    }
    // The copy's ledger verifies with the instance's keys (the copy checked it too).
    let mut verify = target();
    verify.args(["audit", "verify"]);
    run(verify);

    // A store that holds something is not copied into.
    let mut again = pg.command();
    again.args(["store", "copy", "--from"]).arg(embedded.path());
    let out = again.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already holds rows"), "{err}");
}

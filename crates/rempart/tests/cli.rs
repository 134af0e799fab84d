//! The `rempart` binary as a user runs it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::{data, rempart, serve};

#[test]
fn ingest_json_summary_counts_real_data_and_names_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("bad.ndjson"), "{\"a\":1}\n{broken\n").unwrap();
    let out = rempart(dir.path())
        .args(["ingest", "--json"])
        .arg(data().join("otrf/compound/apt29/day1/zeek/individual_zeek_logs"))
        .arg(data().join("evtx-attack-samples/Credential Access"))
        .arg(input.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["by_format"]["zeek-json"].as_u64().unwrap() > 1000);
    assert!(summary["by_format"]["evtx"].as_u64().unwrap() > 100);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["by_format"]["json"], 1);
    let total: u64 = summary["by_format"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(summary["events"].as_u64().unwrap(), total);
    assert!(summary["seconds"].as_f64().unwrap() > 0.0);

    // The events are queryable from the CLI.
    let out = rempart(dir.path())
        .args(["events", "--json", "--filter", "format=zeek-json", "--limit", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn errors_are_one_line_with_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = rempart(dir.path())
        .args(["ingest", "/nonexistent/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: cannot list input"), "{err}");
    assert!(err.contains("/nonexistent/path"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[server]\nlisten = \"x\"\n[retention]\nevents_days = -1\n",
    )
    .unwrap();
    let out = rempart(dir.path())
        .args(["config", "validate"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 problem(s)") && err.contains("`server.listen`") && err.contains("`retention.events_days`"),
        "{err}"
    );

    let out = rempart(dir.path())
        .args(["tokens", "create", "--role", "root"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit with 2");
}

#[test]
fn demo_runs_the_scenario_and_finds_every_stage() {
    let out = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["demo", "--no-serve", "--json"])
        .env_remove("REMPART_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ingest"]["rejected"], 0);
    for format in ["windows-json", "syslog-3164", "cef", "zeek-tsv", "suricata-eve"] {
        assert!(v["ingest"]["by_format"][format].as_u64().unwrap() > 0, "{format}");
    }
    let stages = v["attack_chain"].as_array().unwrap();
    assert_eq!(stages.len(), 5);
    for s in stages {
        assert!(
            !s["events"].as_array().unwrap().is_empty(),
            "stage {} found nothing",
            s["stage"]
        );
    }
    let rules: Vec<&str> = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "Office Application Spawning PowerShell",
            "Encoded PowerShell Command Line",
            "LSASS Memory Dump with a Dumping Tool",
            "PsExec Service Installed",
            "Data Staged in a Password-Protected Archive",
        ],
        "each stage detected once, in order, and nothing in the benign noise"
    );
    assert!(v["admin_token"].as_str().unwrap().starts_with("rmp_"));
    std::fs::remove_dir_all(v["data_dir"].as_str().unwrap()).unwrap();
}

#[test]
fn kill_9_loses_no_acknowledged_event() {
    interrupt_mid_stream(Interrupt::Kill);
}

#[test]
fn sigterm_drains_and_loses_no_acknowledged_event() {
    interrupt_mid_stream(Interrupt::Term);
}

#[derive(Clone, Copy, PartialEq)]
enum Interrupt {
    Kill,
    Term,
}

/// Streams batches from four concurrent clients, interrupts the server once some are
/// acknowledged (three rounds), restarts it, and checks every acknowledged event is stored.
fn interrupt_mid_stream(how: Interrupt) {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let out = rempart(dir.path())
            .args(["tokens", "create", "--role", "ingest"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acknowledged: Vec<u64> = Vec::new();
    for round in 0..3u64 {
        let (mut child, addr) = serve(dir.path());
        let acked = common::stream_and_interrupt(&rt, &mut child, &addr, &token, round, |child| match how {
            Interrupt::Kill => child.kill().unwrap(),
            Interrupt::Term => {
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        });
        let status = child.wait().unwrap();
        if how == Interrupt::Term {
            assert!(status.success(), "SIGTERM must end the server cleanly, got {status}");
        }
        acknowledged.extend(acked);
    }
    // Restart and look for every acknowledged event.
    let (mut child, _addr) = serve(dir.path());
    child.kill().unwrap();
    let _ = child.wait();
    let stored: std::collections::HashSet<u64> = rt.block_on(async {
        use rempart_store::Store;
        let store = rempart_store::SqliteStore::open(&dir.path().join("rempart.db"))
            .await
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut before = None;
        loop {
            let q = rempart_store::EventQuery {
                before,
                limit: Some(10_000),
                ..Default::default()
            };
            let page = store.query_events(&q).await.unwrap();
            if page.is_empty() {
                break;
            }
            for e in &page {
                seen.insert(e.fields["seq"].as_u64().unwrap());
            }
            let last = page.last().unwrap();
            before = Some((last.time, last.id));
            if page.len() < 10_000 {
                break;
            }
        }
        seen
    });
    assert!(!acknowledged.is_empty(), "no request was acknowledged before the kill");
    let missing: Vec<_> = acknowledged.iter().filter(|s| !stored.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn rules_check_reports_loaded_and_rejected_rules_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: Whoami\nid: 11111111-1111-4111-8111-111111111111\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        CommandLine|contains: whoami\n    condition: selection\nlevel: medium\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: Broken\nlogsource:\n    product: windows\ndetection:\n    selection:\n        CommandLine|contian: x\n    condition: selection\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notyaml.yml"), "title: [unclosed\n").unwrap();
    let out = rempart(dir.path())
        .args(["rules", "check", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["loaded"].as_array().unwrap().len(), 1);
    assert_eq!(report["loaded"][0]["title"], "Whoami");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let bad = rejected
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("bad.yml"))
        .unwrap();
    assert!(bad["reason"].as_str().unwrap().contains("contian"), "{bad}");
    assert_eq!(bad["line"], 1);
    assert!(
        rejected
            .iter()
            .any(|r| r["file"].as_str().unwrap().ends_with("notyaml.yml"))
    );
}

#[test]
fn hunt_prints_one_json_match_per_line_from_files_and_from_the_store() {
    let rule_dir = data().join("sigma/rules/windows/process_creation");
    let sample = data().join("sigma/regression_data/rules/windows/process_creation");
    let dir = tempfile::tempdir().unwrap();
    let out = rempart(dir.path())
        .args(["hunt", "--json", "--rules"])
        .arg(&rule_dir)
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 50, "{} matches", lines.len());
    for m in &lines {
        for key in ["rule_id", "rule_title", "level", "timestamp", "source", "event"] {
            assert!(!m[key].is_null(), "missing {key}: {m}");
        }
    }
    // The same hunt over stored events finds the same matches.
    let ingest = rempart(dir.path())
        .args(["ingest", "--json"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(ingest.status.success());
    let out = rempart(dir.path())
        .args(["hunt", "--json", "--stored", "--rules"])
        .arg(&rule_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), lines.len());
    let csv = rempart(dir.path())
        .args(["hunt", "--csv", "--stored", "--rules"])
        .arg(&rule_dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&csv.stdout).lines().count(), lines.len() + 1);
}

#[test]
fn ingest_with_rules_stores_alerts_listed_by_the_alerts_command() {
    let dir = tempfile::tempdir().unwrap();
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample = data().join("sigma/regression_data/rules/windows/process_creation");
    let out = rempart(dir.path())
        .args(["ingest", "--json", "--rules"])
        .arg(&rules)
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let raised = summary["alerts"].as_u64().unwrap();
    assert!(raised > 50, "{summary}");
    // The same rules hunted over the same files find as many matches as were raised live.
    let hunt = rempart(dir.path())
        .args(["hunt", "--json", "--rules"])
        .arg(&rules)
        .arg(&sample)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&hunt.stdout).lines().count() as u64, raised);
    let out = rempart(dir.path())
        .args(["alerts", "--json", "--limit", "10000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len() as u64, raised);
    assert!(
        alerts
            .iter()
            .all(|a| a["rule_title"].is_string() && a["event"].is_string())
    );
    let critical = rempart(dir.path())
        .args(["alerts", "--json", "--level", "critical", "--limit", "10000"])
        .output()
        .unwrap();
    let n = String::from_utf8_lossy(&critical.stdout).lines().count();
    assert!(n < alerts.len());
    let bad = rempart(dir.path())
        .args(["alerts", "--level", "severe"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn alerts_name_their_attack_techniques_and_tactics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rempart.toml");
    let attack = data().join("attack/attack-patterns-lookup-v18.1.json");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[detection]\nattack = {:?}\n",
            attack.display().to_string()
        ),
    )
    .unwrap();
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample =
        data().join("sigma/regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download");
    let out = rempart(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["ingest", "--rules"])
        .arg(&rules)
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = rempart(dir.path()).args(["alerts", "--json"]).output().unwrap();
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!alerts.is_empty());
    // BITSAdmin downloads are T1197 BITS Jobs (defense evasion, persistence).
    let bits = alerts
        .iter()
        .flat_map(|a| a["techniques"].as_array().unwrap().clone())
        .find(|t| t["id"] == "T1197")
        .expect("a T1197 alert");
    assert_eq!(bits["name"], "BITS Jobs");
    assert!(
        bits["tactics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "defense-evasion"),
        "{bits}"
    );
    // Hunts name them too, given the catalogue.
    let hunt = rempart(dir.path())
        .args(["hunt", "--json", "--attack"])
        .arg(&attack)
        .arg("--rules")
        .arg(&rules)
        .arg(&sample)
        .output()
        .unwrap();
    let first: Value = serde_json::from_str(String::from_utf8_lossy(&hunt.stdout).lines().next().unwrap()).unwrap();
    assert!(
        first["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"].is_string()),
        "{first}"
    );
}

/// The whole SigmaHQ rule set over EVTX-ATTACK-SAMPLES: every tactic folder yields detections
/// (figures per folder in README.md).
#[test]
fn every_tactic_folder_of_the_attack_samples_yields_detections() {
    let dir = tempfile::tempdir().unwrap();
    let samples = data().join("evtx-attack-samples");
    let out = rempart(dir.path())
        .args(["hunt", "--json", "--rules"])
        .arg(data().join("sigma/rules"))
        .arg(&samples)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut per_folder: std::collections::BTreeMap<String, (u64, std::collections::BTreeSet<String>)> =
        std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let source = std::path::PathBuf::from(m["source"].as_str().unwrap());
        let relative = source.strip_prefix(&samples).unwrap_or(&source);
        let mut parts = relative.components();
        let folder = match (parts.next(), parts.next()) {
            (Some(f), Some(_)) => f.as_os_str().to_string_lossy().into_owned(),
            _ => continue,
        };
        let entry = per_folder.entry(folder).or_default();
        entry.0 += 1;
        entry.1.insert(m["rule_title"].as_str().unwrap().to_owned());
    }
    for tactic in [
        "AutomatedTestingTools",
        "Command and Control",
        "Credential Access",
        "Defense Evasion",
        "Discovery",
        "Execution",
        "Lateral Movement",
        "Other",
        "Persistence",
        "Privilege Escalation",
    ] {
        let (matches, rules) = per_folder.get(tactic).cloned().unwrap_or_default();
        println!("{tactic}: {matches} matches, {} rules", rules.len());
        assert!(matches > 0, "no detection in `{tactic}`");
    }
}

/// Rules reload on change without a restart: a rule added to the folder a running server
/// watches raises alerts seconds later, and the reload is recorded in the ledger.
#[test]
fn rules_reload_on_change_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |title: &str, word: &str| {
        format!(
            "title: {title}\nid: 0c1f{:04x}-0000-4000-8000-000000000000\nlevel: high\nlogsource: {{product: windows, category: process_creation}}\ndetection: {{sel: {{CommandLine|contains: {word}}}, condition: sel}}\n",
            word.len()
        )
    };
    std::fs::write(rules.join("a.yml"), rule("Rule A", "alpha")).unwrap();
    let config = dir.path().join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[detection]\nrules = [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let token = {
        let out = rempart(dir.path())
            .args(["tokens", "create", "--role", "ingest"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let mut command = rempart(dir.path());
    command.env("REMPART_CONFIG", &config);
    let (mut child, addr) = common::serve_with(command);
    std::fs::write(rules.join("b.yml"), rule("Rule B", "bravo")).unwrap();
    let event = r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws1","CommandLine":"run bravo now","UtcTime":"2026-11-22 10:00:00.000"}"#;
    let raised = common::post_until_alerted(&addr, &token, event);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(raised, "the added rule never fired");
    let mut command = rempart(dir.path());
    command.env("REMPART_CONFIG", &config);
    assert!(common::ledger_kinds(command).iter().any(|k| k == "rules.reload"));
}

/// Correlation rules in a retro-hunt and in live ingest: windows on the events' own times,
/// whatever order the files list them in.
#[test]
fn correlation_rules_fire_in_hunts_and_on_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("brute.yml");
    std::fs::write(
        &rules,
        "title: Failed Logon\nname: failed_logon\nlogsource: {product: windows, service: security}\n\
         detection:\n    selection: {EventID: 4625}\n    condition: selection\nlevel: low\n---\n\
         title: Brute Force Against One Account\ncorrelation:\n    type: event_count\n    rules: [failed_logon]\n\
         \x20   group-by: [TargetUserName]\n    timespan: 5m\n    condition: {gte: 5}\nlevel: high\n",
    )
    .unwrap();
    // Five failures for alice within four minutes, written newest first; three for bob.
    let mut lines: Vec<String> = (0..5)
        .rev()
        .map(|i| format!(r#"{{"EventID":4625,"Channel":"Security","Computer":"dc01","TargetUserName":"alice","IpAddress":"10.0.0.9","UtcTime":"2026-11-22 10:0{i}:00.000"}}"#))
        .collect();
    lines.extend((0..3).map(|i| format!(r#"{{"EventID":4625,"Channel":"Security","Computer":"dc01","TargetUserName":"bob","IpAddress":"10.0.0.8","UtcTime":"2026-11-22 10:0{i}:30.000"}}"#)));
    let events = dir.path().join("security.ndjson");
    std::fs::write(&events, lines.join("\n")).unwrap();
    let out = rempart(dir.path())
        .args(["hunt", "--json", "--rules"])
        .arg(&rules)
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let matches: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(matches.len(), 1, "{matches:?}");
    assert_eq!(matches[0]["rule_title"], "Brute Force Against One Account");
    assert_eq!(matches[0]["level"], "high");
    assert!(
        matches[0]["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-22T10:04:00"),
        "{}",
        matches[0]
    );
    let out = rempart(dir.path())
        .args(["--json", "ingest", "--rules"])
        .arg(&rules)
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["alerts"], 1, "{summary}");
    let out = rempart(dir.path()).args(["--json", "alerts"]).output().unwrap();
    let alerts = String::from_utf8(out.stdout).unwrap();
    assert!(alerts.contains("Brute Force Against One Account"), "{alerts}");
    assert!(
        !alerts.contains("\"Failed Logon\""),
        "the referenced rule raises nothing itself: {alerts}"
    );
}

/// `rempart intel import` of the shared STIX reports and MISP events, then indicators matched
/// in ingest, in hunts, and by a running server that sees the import without a restart.
#[test]
fn imported_indicators_raise_alerts_in_ingest_hunts_and_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = rempart(dir.path())
        .args(["--json", "intel", "import"])
        .arg(data().join("stix/examples/threat-reports/apt1.json"))
        .arg(data().join("misp/long_event.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(files[0]["imported"], 10, "{}", files[0]);
    assert!(files[1]["imported"].as_u64().unwrap() > 100);
    assert!(
        files[1]["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["reason"].as_str().unwrap().is_empty())
    );

    let events = dir.path().join("net.ndjson");
    std::fs::write(
        &events,
        [
            r#"{"timestamp":"2026-11-22T10:00:00Z","src_ip":"10.1.1.5","dest_ip":"223.167.1.2","dest_port":443,"proto":"TCP","event_type":"flow"}"#,
            r#"{"timestamp":"2026-11-22T10:00:01Z","src_ip":"10.1.1.5","dest_ip":"10.0.0.53","event_type":"dns","dns":{"rrname":"www.hugesoft.org","rrtype":"A"}}"#,
            r#"{"timestamp":"2026-11-22T10:00:02Z","src_ip":"10.1.1.5","dest_ip":"198.51.100.1","event_type":"fileinfo","fileinfo":{"filename":"a.exe","md5":"A0DC5723D3E20E93B48A960B31C984C0"}}"#,
            r#"{"timestamp":"2026-11-22T10:00:03Z","src_ip":"10.1.1.5","dest_ip":"198.51.100.2","event_type":"flow"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = rempart(dir.path())
        .args(["--json", "ingest"])
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["alerts"], 3, "{summary}");
    let out = rempart(dir.path()).args(["--json", "alerts"]).output().unwrap();
    let alerts = String::from_utf8(out.stdout).unwrap();
    assert!(alerts.contains("ioc:ip:223.167.1.2"), "{alerts}");
    assert!(alerts.contains("ioc:domain:www.hugesoft.org"), "{alerts}");
    assert!(alerts.contains("ioc:md5:a0dc5723d3e20e93b48a960b31c984c0"), "{alerts}");

    // A hunt over the same file with an unrelated rule: the indicators match in the same pass.
    let rules = dir.path().join("r.yml");
    std::fs::write(
        &rules,
        "title: Nothing\nlogsource: {product: windows}\ndetection:\n    s: {EventID: 999999}\n    condition: s\n",
    )
    .unwrap();
    let out = rempart(dir.path())
        .args(["hunt", "--json", "--rules"])
        .arg(&rules)
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);

    // A running server sees a new import.
    let token = {
        let out = rempart(dir.path())
            .args(["tokens", "create", "--role", "ingest"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (mut child, addr) = common::serve(dir.path());
    let fresh = dir.path().join("fresh.json");
    std::fs::write(
        &fresh,
        r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--0f1e2d3c-0000-4000-8000-000000000001","created":"2026-11-01T00:00:00Z","modified":"2026-11-01T00:00:00Z","name":"Fresh C2","pattern":"[ipv4-addr:value = '203.0.113.66']","pattern_type":"stix","valid_from":"2026-11-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    let out = rempart(dir.path())
        .args(["intel", "import"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let event =
        r#"{"timestamp":"2026-11-22T11:00:00Z","src_ip":"10.1.1.9","dest_ip":"203.0.113.66","event_type":"flow"}"#;
    let raised = common::post_until_alerted(&addr, &token, event);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(raised, "the running server never matched the new indicator");
}

/// A hunt over files evaluates on several threads and prints exactly what one thread prints,
/// in the same order (event ids aside, which each run draws anew): over a folder, and over one
/// file of JSON lines.
#[test]
fn a_hunt_on_several_threads_prints_what_one_thread_prints() {
    let dir = tempfile::tempdir().unwrap();
    let samples = data().join("evtx-attack-samples/Credential Access");
    let run = |threads: &str, input: &std::path::Path| -> Vec<Value> {
        let out = rempart(dir.path())
            .args(["hunt", "--json", "--threads", threads, "--rules"])
            .arg(data().join("sigma/rules/windows"))
            .arg(input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let mut m: Value = serde_json::from_str(l).unwrap();
                let event = m["event"].as_object_mut().unwrap();
                event.remove("id");
                event.remove("ingested");
                // rsigma-eval lists matched fields in hash order.
                let mut matched: Vec<String> = m["matched"].as_array().unwrap().iter().map(Value::to_string).collect();
                matched.sort();
                m["matched"] = json!(matched);
                m
            })
            .collect()
    };
    let one = run("1", &samples);
    assert!(one.len() > 100, "{} matches", one.len());
    assert_eq!(run("3", &samples), one);

    // One file of JSON lines, megabytes of them: shared out in blocks of lines.
    let lines = dir.path().join("events.ndjson");
    let mut text = String::new();
    for _ in 0..60 {
        for m in &one {
            text.push_str(&m["event"]["fields"].to_string());
            text.push('\n');
        }
    }
    assert!(text.len() > 3 << 20, "{} bytes: fewer than three blocks", text.len());
    std::fs::write(&lines, text).unwrap();
    let one = run("1", &lines);
    assert!(one.len() > 6_000, "{} matches", one.len());
    assert_eq!(run("2", &lines), one);
}

/// What telemetry wrote cannot drive the terminal a person reads it on: on a terminal (a real
/// pseudo-terminal from `script`), escape sequences and bidi overrides in a command line are
/// shown as markers; piped, the output stays as written.
#[test]
fn a_terminal_shows_escape_sequences_instead_of_obeying_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(
        &file,
        "{\"@timestamp\":\"2026-12-05T08:00:00Z\",\"EventID\":1,\"Hostname\":\"ws1\",\
         \"CommandLine\":\"cmd.exe \\u001b]0;pwned\\u0007\\u001b[2J evil\\u202etxt.exe\"}\n",
    )
    .unwrap();
    let data = dir.path().join("soc");
    assert!(
        rempart(&data)
            .arg("ingest")
            .arg(&file)
            .output()
            .unwrap()
            .status
            .success()
    );
    let command = format!("{} --data-dir {} events", env!("CARGO_BIN_EXE_rempart"), data.display());
    let tty = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("`script` (util-linux) gives the command a pseudo-terminal");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(
        shown.contains("<U+001B>]0;pwned<U+0007><U+001B>[2J evil<U+202E>txt.exe"),
        "{shown:?}"
    );
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'));
    let piped = rempart(&data).arg("events").output().unwrap();
    assert!(
        String::from_utf8_lossy(&piped.stdout).contains("\u{1b}[2J"),
        "piped output is left as written"
    );
}

/// `hunt --explain-rule`: for each event, the rule's route, the prefilter and every selection's
/// fields against the event's values, as text or NDJSON; what an event wrote (escape sequences,
/// line breaks) is shown escaped; a rule that is not loaded is named as such.
#[test]
fn hunt_explains_why_a_rule_did_or_did_not_match_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let rule = data().join("sigma/rules/windows/process_creation/proc_creation_win_whoami_all_execution.yml");
    let id = "c248c896-e412-4279-8c15-1c558067b6fa";
    assert!(std::fs::read_to_string(&rule).unwrap().contains(id));
    let record = |cmd: &str| {
        json!({"Event": {
            "System": {"EventID": 4688, "Channel": "Security", "Computer": "ws1",
                       "TimeCreated": {"#attributes": {"SystemTime": "2026-12-05T08:00:00Z"}},
                       "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}},
            "EventData": {"NewProcessName": "C:\\Windows\\System32\\whoami.exe", "CommandLine": cmd,
                          "NewProcessId": "0x2b8", "ProcessId": "0x1a4"}}})
        .to_string()
    };
    let file = dir.path().join("4688.json");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            record("whoami /all"),
            record("whoami /groups \u{1b}[2J\nverdict: MATCH")
        ),
    )
    .unwrap();
    let explain = |extra: &[&str], rule_id: &str| {
        rempart(&dir.path().join("soc"))
            .args(extra)
            .arg("hunt")
            .arg("--rules")
            .arg(&rule)
            .args(["--explain-rule", rule_id])
            .arg(&file)
            .output()
            .unwrap()
    };
    let text = explain(&[], id);
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("event 1 of") && text.contains("Windows event: Security 4688"),
        "{text}"
    );
    assert!(
        text.contains("route: Windows events: Microsoft-Windows-Sysmon/Operational 1; Security 4688: admits the event"),
        "{text}"
    );
    assert!(
        text.contains("OriginalFileName exact \"whoami.exe\": the event has no such field"),
        "{text}"
    );
    let verdicts = text
        .lines()
        .filter(|l| l.trim_start().starts_with("verdict: MATCH"))
        .count();
    assert_eq!(verdicts, 1, "an event's text cannot forge a verdict line: {text}");
    assert!(
        text.contains("the event has \"whoami /groups \\u001b[2J\\nverdict: MATCH\""),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'));
    assert!(text.ends_with("the rule matched 1 of 2 events\n"), "{text}");

    let json = explain(&["--json"], "Enumerate All Information With Whoami.EXE");
    assert!(json.status.success());
    let lines: Vec<Value> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["matched"].clone(), lines[1]["matched"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(lines[1]["routed"], true);
    assert_eq!(lines[0]["rule_id"], id);

    let unknown = explain(&[], "00000000-0000-0000-0000-000000000000");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("no rule with id or title `00000000-0000-0000-0000-000000000000`")
    );
}

/// Under a permissive umask (022), the data directory, the store with its WAL, the keys and the
/// witness are still their owner's only: telemetry in clear is not readable by other local users.
#[cfg(unix)]
#[test]
fn the_data_directory_is_its_owners_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("instance");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 022; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_rempart"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["--json", "tokens", "create", "--role", "viewer", "--name", "modes"])
        .env_remove("REMPART_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    assert_eq!(mode(&dir.join("keys")), 0o700, "the keys' directory");
    let mut files = vec![dir.join("rempart.db"), dir.join("ledger-checkpoint.txt")];
    for entry in std::fs::read_dir(dir.join("keys")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(path);
        }
    }
    for side in ["rempart.db-wal", "rempart.db-shm"] {
        if dir.join(side).exists() {
            files.push(dir.join(side));
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

/// A store with damaged pages (the issue's replay: a corrupted `events` page) is found by the
/// integrity check `serve` runs first: the server does not start, says why and what to do,
/// and writes nothing into the damaged file.
#[test]
fn a_damaged_store_is_not_served() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..3000)
        .map(|i| format!("{}\n", json!({"message": format!("event {i} {}", "x".repeat(200))})))
        .collect();
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, lines).unwrap();
    let out = rempart(dir.path()).arg("ingest").arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.path().join("rempart.db");
    // Fold the write-ahead log into the file, so that the damage lands on the events' pages.
    let folded = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA wal_checkpoint(TRUNCATE)')",
        ])
        .arg(&db)
        .status()
        .unwrap();
    assert!(folded.success());
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 64 * 4096, "the events are in the file, not only its log: {len}");
    let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    file.write_all(&[0x5a; 8 * 4096]).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let mut child = rempart(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a damaged store was served: {said}");
    assert!(
        said.contains("failed its integrity check") && said.contains("restore it from a backup"),
        "{said}"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        len,
        "the damaged file was written to"
    );
}

//! `rempart redact` and `rempart privacy` as a user runs them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

mod common;
use common::rempart;

fn piped(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = rempart(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

const INPUT: &str = r#"Nov 22 10:01:02 bastion sshd[811]: Accepted publickey for alice from 203.0.113.7 port 50022 ssh2
{"EventID":4624,"Computer":"ws-fin-07.corp.example.eu","TargetUserName":"bob","IpAddress":"10.20.30.40","SubjectUserSid":"S-1-5-21-3623811015-3361044348-30300820-500"}
Nov 22 10:03:00 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/cat /etc/shadow
CEF:0|Vendor|Firewall|1.0|100|blocked|5|src=10.20.30.40 dst=198.51.100.9 suser=carol
analyst: called Jean Dupont (+33 6 12 34 56 78, jean.dupont@example.fr), token=ghp_abcdefghijklmnopqrstuvwxyz0123456789
"#;

#[test]
fn redact_then_reveal_gives_the_input_back_and_both_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rempart.toml");
    std::fs::write(
        &config,
        "version = 1\n[privacy]\ninternal_suffixes = [\"corp.example.eu\"]\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let out = piped(
        dir.path(),
        &["--config", cfg, "redact", "--domain", "inc-7"],
        INPUT.as_bytes(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let redacted = String::from_utf8(out.stdout).unwrap();
    for original in [
        "alice",
        "bob",
        "carol",
        "203.0.113.7",
        "198.51.100.9",
        "ws-fin-07",
        "jean.dupont",
        "+33 6",
        "ghp_",
        "3623811015",
    ] {
        assert!(!redacted.contains(original), "`{original}` left in:\n{redacted}");
    }
    assert!(
        redacted.contains(".corp.example.eu"),
        "internal suffix kept:\n{redacted}"
    );
    assert!(
        redacted.contains("-500\""),
        "the RID of the built-in Administrator stays:\n{redacted}"
    );
    assert!(redacted.contains("[secret removed]"));
    // Same value, same pseudonym within the domain: alice twice, 10.20.30.40 twice.
    let alice = redacted.split_whitespace().find(|w| w.starts_with("user_")).unwrap();
    assert!(redacted.matches(alice).count() >= 2, "{redacted}");

    let back = piped(
        dir.path(),
        &["--config", cfg, "redact", "--domain", "inc-7", "--reveal"],
        redacted.as_bytes(),
    );
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let back = String::from_utf8(back.stdout).unwrap();
    for (orig, got) in INPUT.lines().zip(back.lines()) {
        if orig.starts_with('{') {
            assert_eq!(
                serde_json::from_str::<Value>(orig).unwrap(),
                serde_json::from_str::<Value>(got).unwrap()
            );
        } else if orig.contains("token=") {
            assert_eq!(
                got,
                orig.replace("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[secret removed]"),
                "secrets are never kept"
            );
        } else {
            assert_eq!(got, orig);
        }
    }
    // Another domain cannot turn them back.
    let elsewhere = piped(
        dir.path(),
        &["--config", cfg, "redact", "--domain", "inc-8", "--reveal"],
        redacted.as_bytes(),
    );
    assert_eq!(
        String::from_utf8(elsewhere.stdout).unwrap().trim_end(),
        redacted.trim_end()
    );

    let kinds = common::ledger_kinds(rempart(dir.path()));
    assert_eq!(
        kinds,
        ["privacy.pseudonymize", "privacy.reveal"],
        "the other domain revealed nothing, so recorded nothing"
    );
}

#[test]
fn explain_lists_findings_without_originals() {
    let dir = tempfile::tempdir().unwrap();
    let out = piped(dir.path(), &["redact", "--explain"], INPUT.as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("alice") && !text.contains("203.0.113.7"), "{text}");
    let findings: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let first = &findings[0];
    assert_eq!(
        (
            first["line"].as_u64(),
            first["type"].as_str(),
            first["recognizer"].as_str()
        ),
        (Some(1), Some("host"), Some("syslog-host"))
    );
    assert!(
        findings
            .iter()
            .any(|f| f["line"] == 1 && f["type"] == "user" && f["recognizer"] == "ssh-user"),
        "{text}"
    );
    assert_eq!(
        &INPUT[first["start"].as_u64().unwrap() as usize..first["end"].as_u64().unwrap() as usize],
        "bastion"
    );
    assert!(findings.iter().any(|f| f["path"] == "$.TargetUserName"));
    assert!(findings.iter().any(|f| f["type"] == "secret"));
}

#[test]
fn erasure_and_access_requests_over_the_vault_and_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let redacted = piped(dir.path(), &["redact"], INPUT.as_bytes()).stdout;
    let export = rempart(dir.path())
        .args(["privacy", "export", "--subject", "user:Alice"])
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let doc: Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(doc["subject"], "user:alice");
    assert_eq!(doc["pseudonyms"][0]["original"], "alice");

    let erased = rempart(dir.path())
        .args(["privacy", "erase", "--subject", "user:alice"])
        .output()
        .unwrap();
    assert!(erased.status.success());
    // The erasure moved the erasure epoch on twice, before its sweep and after, so that the
    // processes of a cluster holding state in memory load it again, rewritten.
    let epoch = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT body FROM detector_state WHERE name = 'erasure-epoch'\").fetchone()[0])")
        .arg(dir.path().join("rempart.db"))
        .output()
        .unwrap();
    let epoch: Value = serde_json::from_slice(&epoch.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&epoch.stderr)));
    assert_eq!(epoch["epoch"], 2, "{epoch}");
    let back = String::from_utf8(piped(dir.path(), &["redact", "--reveal"], &redacted).stdout).unwrap();
    assert!(!back.contains("alice"), "{back}");
    assert!(
        back.contains("bob") && back.contains("carol"),
        "other subjects still re-identify: {back}"
    );
    let doc: Value = serde_json::from_slice(
        &rempart(dir.path())
            .args(["privacy", "export", "--subject", "user:alice"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(doc["pseudonyms"][0]["original"].is_null());
    let verified = rempart(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let bad = rempart(dir.path())
        .args(["privacy", "erase", "--subject", "alice"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn a_line_too_large_to_scan_is_not_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = b"user=alice first line\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 16 * 1024 * 1024 + 1));
    input.push(b'\n');
    let out = piped(dir.path(), &["redact"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing of the batch is written");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: not released"), "{err}");
}

#[test]
fn input_that_is_not_utf8_stops_with_its_line_and_releases_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out = piped(
        dir.path(),
        &["redact"],
        b"user=alice first line\nuser=bob \xff\xfe\nthird\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing of the batch is written");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: cannot read standard input (is it UTF-8 text?)"),
        "{err}"
    );
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything the CLI shows of stored events, alerts and incidents, lower-cased.
fn shown(dir: &Path) -> String {
    let mut all = String::new();
    for args in [
        &["--json", "events", "--limit", "1000"][..],
        &["--json", "alerts"],
        &["--json", "incidents", "list"],
    ] {
        let out = rempart(dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all.to_lowercase()
}

/// Whether any of the instance's files holds `needle`, in any ASCII case.
fn on_disk(dir: &Path, needle: &str) -> bool {
    let needle = needle.to_ascii_lowercase();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    return true;
                }
            }
        }
    }
    false
}

#[test]
fn erasure_rewrites_every_stored_copy_and_leaves_none_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::data();
    let rules = data.join("sigma/rules/windows/process_creation");
    let sample = data.join("sigma/regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download");
    let input = tempfile::tempdir().unwrap();
    let log = input.path().join("auth.log");
    std::fs::write(
        &log,
        "Nov 22 10:01:02 bastion sshd[811]: Accepted password for alice from 203.0.113.7 port 50022 ssh2\n\
         Nov 22 10:01:09 bastion sshd[812]: Failed password for bob from 203.0.113.7 port 50023 ssh2\n\
         Nov 22 10:02:00 bastion sshd[813]: Accepted publickey for carol from 198.51.100.20 port 40000 ssh2\n",
    )
    .unwrap();
    let ingested = rempart(dir.path())
        .args([
            "ingest",
            "--rules",
            rules.to_str().unwrap(),
            sample.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        ingested.status.success(),
        "{}",
        String::from_utf8_lossy(&ingested.stderr)
    );
    let alerts = json_lines(&rempart(dir.path()).args(["--json", "alerts"]).output().unwrap());
    let user = alerts[0]["user"].as_str().unwrap().to_owned();
    let host = alerts[0]["host"].as_str().unwrap().to_owned();
    assert!(shown(dir.path()).contains(&user.to_lowercase()));
    assert!(on_disk(dir.path(), &user), "the fixture names the user on disk");

    // The access request says where the subject is stored; the erasure rewrites exactly that.
    let export: Value = serde_json::from_slice(
        &rempart(dir.path())
            .args(["privacy", "export", "--subject", &format!("user:{user}")])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rows = export["stored"]["rows"].clone();
    assert!(
        rows["events"].as_u64().unwrap() >= 1 && rows["alerts"].as_u64().unwrap() >= 1,
        "{export}"
    );
    let erased = json_lines(
        &rempart(dir.path())
            .args([
                "--json",
                "privacy",
                "erase",
                "--subject",
                &format!("user:{}", user.to_uppercase()),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(erased[0]["stored"]["rows"], rows, "{}", erased[0]);
    assert_eq!(erased[0]["stored"]["purged"], true);
    let marker = erased[0]["replaced_by"].as_str().unwrap().to_owned();

    let ip = json_lines(
        &rempart(dir.path())
            .args(["--json", "privacy", "erase", "--subject", "ip:203.0.113.7"])
            .output()
            .unwrap(),
    );
    assert_eq!(ip[0]["stored"]["rows"]["events"], 2, "{}", ip[0]);
    let address: std::net::Ipv4Addr = ip[0]["replaced_by"].as_str().unwrap().parse().unwrap();
    assert!(
        address.octets()[0] >= 240,
        "a reserved address stands for it: {address}"
    );

    let after = shown(dir.path());
    assert!(!after.contains(&user.to_lowercase()), "{after}");
    assert!(!after.contains("203.0.113.7"), "{after}");
    assert!(
        after.contains(&marker) && after.contains(&address.to_string()),
        "{after}"
    );
    assert!(
        after.contains(&host.to_lowercase()) && after.contains("198.51.100.20") && after.contains("carol"),
        "everyone and everything else stays: {after}"
    );
    assert!(
        !on_disk(dir.path(), &user),
        "no copy of the name is left in the instance's files"
    );
    assert!(!on_disk(dir.path(), "203.0.113.7"));

    let again = json_lines(
        &rempart(dir.path())
            .args(["--json", "privacy", "erase", "--subject", &format!("user:{user}")])
            .output()
            .unwrap(),
    );
    assert_eq!(again[0]["stored"]["rows"], serde_json::json!({}));
    assert_eq!(again[0]["keys_destroyed"], 0);
    let human = rempart(dir.path())
        .args(["privacy", "erase", "--subject", "user:jo"])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(1));
    let err = String::from_utf8_lossy(&human.stderr);
    assert!(err.contains("shorter than 3 characters"), "{err}");
    let verified = rempart(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

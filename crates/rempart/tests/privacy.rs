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
        (Some(1), Some("user"), Some("ssh-user"))
    );
    assert_eq!(
        &INPUT[first["start"].as_u64().unwrap() as usize..first["end"].as_u64().unwrap() as usize],
        "alice"
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

//! The audit ledger as a user drives it: `rempart audit …`, `rempart privacy erase`, and a
//! server killed while it appends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{data, rempart, serve, serve_with};

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = rempart(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rempart {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn sql(dir: &Path, statement: &str) {
    let url = format!("sqlite://{}", dir.join("rempart.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(statement).execute(&pool).await.unwrap();
    pool.close().await;
}

#[test]
fn verify_passes_on_a_real_ledger_and_names_the_record_a_tamper_broke() {
    let dir = tempfile::tempdir().unwrap();
    for role in ["viewer", "analyst", "auditor"] {
        run(dir.path(), &["tokens", "create", "--role", role]);
    }
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample =
        data().join("sigma/regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download");
    let ingested = json_of(&run(
        dir.path(),
        &[
            "ingest",
            "--json",
            "--rules",
            rules.to_str().unwrap(),
            sample.to_str().unwrap(),
        ],
    ));
    let alerts = ingested["alerts"].as_u64().unwrap();
    assert!(alerts > 0, "{ingested}");

    let report = json_of(&run(dir.path(), &["--json", "audit", "verify"]));
    assert_eq!(report["ok"], true);
    let incidents = ingested["incidents"].as_u64().unwrap();
    assert!(incidents >= 1 && incidents <= alerts, "{ingested}");
    assert_eq!(report["report"]["records"].as_u64().unwrap(), 3 + alerts + incidents);
    assert_eq!(report["report"]["unsigned_tail"], 0, "each command signs on exit");
    assert!(
        report["report"]["outside_checkpoints"].as_u64().unwrap() >= 1,
        "the witness file was checked"
    );

    let shown = json_of(&run(dir.path(), &["audit", "show", "1"]));
    assert_eq!(shown["kind"], "token.create");
    assert_eq!(shown["payload"]["role"], "analyst");
    assert!(shown["actor"].as_str().unwrap().starts_with("cli:"));
    let listed = String::from_utf8(run(dir.path(), &["audit", "list", "--last", "2"]).stdout).unwrap();
    assert!(listed.contains("audit.read"), "the show above was recorded:\n{listed}");

    // Flip one byte of the payload of record 2: verification fails and names it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(sql(
        dir.path(),
        "UPDATE ledger SET body = CAST(substr(body, 1, 40) || x'ff' || substr(body, 42) AS BLOB) WHERE seq = 2",
    ));
    let out = rempart(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ledger verification failed: the payload of record 2 was altered"),
        "{err}"
    );
}

#[test]
fn an_export_verifies_with_the_standalone_verifier_and_a_held_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["tokens", "create", "--role", "viewer"]);
    let held = dir.path().join("held-checkpoint.txt");
    let note = run(dir.path(), &["audit", "checkpoint"]).stdout;
    std::fs::write(&held, &note).unwrap();
    run(dir.path(), &["tokens", "create", "--role", "admin"]);
    let export = dir.path().join("export.json");
    run(
        dir.path(),
        &[
            "audit",
            "export",
            "--previous",
            held.to_str().unwrap(),
            "--output",
            export.to_str().unwrap(),
        ],
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let kinds: Vec<&str> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["token.create", "token.create", "audit.read"]);
    assert_eq!(doc["previous"]["checkpoint"], String::from_utf8(note).unwrap());
    // The held checkpoint also serves `verify --checkpoint`.
    run(dir.path(), &["audit", "verify", "--checkpoint", held.to_str().unwrap()]);
    let vkey = String::from_utf8(run(dir.path(), &["audit", "public-key"]).stdout).unwrap();
    assert_eq!(doc["verifier_keys"][0], vkey.trim());
}

/// An instance whose ledger holds sealed `alert.raise` records about a user: a SigmaHQ sample
/// ingested with its process-creation rules.
fn with_sealed_alerts() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rules = data().join("sigma/rules/windows/process_creation");
    let sample =
        data().join("sigma/regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download");
    run(
        dir.path(),
        &["ingest", "--rules", rules.to_str().unwrap(), sample.to_str().unwrap()],
    );
    dir
}

#[test]
fn erasing_a_subject_leaves_its_records_unreadable_and_the_ledger_verifiable() {
    let dir = with_sealed_alerts();
    let first = json_of(&run(dir.path(), &["audit", "show", "0"]));
    assert_eq!(first["kind"], "alert.raise");
    assert_eq!(first["status"], "sealed");
    let user = first["payload"]["user"].as_str().unwrap().to_owned();

    let erased = json_of(&run(
        dir.path(),
        &["--json", "privacy", "erase", "--subject", &format!("user:{user}")],
    ));
    assert_eq!(erased["keys_destroyed"], 1);
    let after = json_of(&run(dir.path(), &["audit", "show", "0"]));
    assert_eq!(after["status"], "erased");
    assert!(after["payload"].is_null());
    assert_eq!(after["leaf_hash"], first["leaf_hash"], "the record itself is untouched");
    let report = json_of(&run(dir.path(), &["--json", "audit", "verify"]));
    assert_eq!(report["ok"], true);
    assert_eq!(report["report"]["erased_keys"], 1, "{report}");
}

/// Copies a data directory (keys included) into a fresh one.
fn copy_of(dir: &Path) -> tempfile::TempDir {
    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for path in std::fs::read_dir(from).unwrap().map(|e| e.unwrap().path()) {
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy_tree(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir, copy.path());
    copy
}

/// What `audit verify` says of a copy of `dir` after `statement` ran on its database: it fails
/// (status 1) and its one line of error is returned.
fn verify_after(dir: &Path, statement: &str) -> String {
    let copy = copy_of(dir);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sql(copy.path(), statement));
    let out = rempart(copy.path()).args(["audit", "verify"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "`{statement}` went unnoticed: {err}");
    err
}

/// An insider with `sqlite3` on the database: a subject key deleted or wiped without an erasure,
/// a stored checkpoint's root or saved tree zeroed, a record's bytes made undecodable. Each is
/// named by `audit verify`; a server does not serve a root its signed note disagrees with.
#[test]
fn verify_names_keys_checkpoints_and_records_edited_in_the_database() {
    let dir = with_sealed_alerts();
    run(dir.path(), &["audit", "checkpoint"]);
    run(dir.path(), &["tokens", "create", "--role", "viewer", "--name", "later"]);
    let first = json_of(&run(dir.path(), &["audit", "show", "0"]));
    assert_eq!(first["status"], "sealed", "{first}");
    let key_of_0 = "(SELECT key_id FROM ledger WHERE seq = 0)";

    let err = verify_after(
        dir.path(),
        &format!("DELETE FROM ledger_keys WHERE key_id = {key_of_0}"),
    );
    assert!(
        err.contains("the key of record 0") && err.contains("is gone from the store"),
        "{err}"
    );
    let err = verify_after(
        dir.path(),
        &format!("UPDATE ledger_keys SET wrapped = NULL, erased = 1 WHERE key_id = {key_of_0}"),
    );
    assert!(
        err.contains("the key of record 0") && err.contains("was destroyed") && err.contains("no erasure"),
        "{err}"
    );

    let err = verify_after(dir.path(), "UPDATE ledger_checkpoints SET root = zeroblob(32)");
    assert!(
        err.contains("stored: its root column (0000") && err.contains("signed note"),
        "{err}"
    );
    let err = verify_after(
        dir.path(),
        "UPDATE ledger_checkpoints SET frontier = zeroblob(length(frontier))",
    );
    assert!(err.contains("stored: its saved frontier does not hash"), "{err}");

    let err = verify_after(dir.path(), "UPDATE ledger SET actor = x'ff00' WHERE seq = 1");
    assert!(err.contains("stored record `ledger 1` cannot be read: actor"), "{err}");
    let err = verify_after(dir.path(), "UPDATE ledger SET time = 'noon' WHERE seq = 2");
    assert!(err.contains("stored record `ledger 2` cannot be read: time"), "{err}");

    // The oldest checkpoint's root zeroed (the newest, which a server extends, left alone): the
    // server starts, and its checkpoint list is refused rather than served beside the notes.
    let copy = copy_of(dir.path());
    run(copy.path(), &["audit", "checkpoint"]);
    tokio::runtime::Runtime::new().unwrap().block_on(sql(
        copy.path(),
        "UPDATE ledger_checkpoints SET root = zeroblob(32) WHERE size = (SELECT min(size) FROM ledger_checkpoints)",
    ));
    let token = common::token(copy.path(), "auditor", "ines");
    let (mut child, addr) = serve(copy.path());
    let answer = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/api/v1/audit/checkpoints"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let retry = r.headers().get("retry-after").cloned();
        (r.status().as_u16(), r.text().await.unwrap(), retry)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(answer.2.is_some(), "a 503 says when to come back");
    let body: Value = serde_json::from_str(&answer.1).unwrap();
    assert!(body.get("checkpoints").is_none(), "the checkpoints were served: {body}");
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("its root column") && message.contains("audit verify"),
        "{message}"
    );
}

#[test]
fn a_rotated_signing_key_keeps_the_whole_ledger_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["tokens", "create", "--role", "viewer"]);
    let before = String::from_utf8(run(dir.path(), &["audit", "public-key"]).stdout).unwrap();
    let rotated = String::from_utf8(run(dir.path(), &["audit", "rotate-key"]).stdout).unwrap();
    assert!(rotated.contains("co-signed checkpoint"), "{rotated}");
    let after = String::from_utf8(run(dir.path(), &["audit", "public-key"]).stdout).unwrap();
    assert_ne!(before, after);
    run(dir.path(), &["tokens", "create", "--role", "viewer"]);
    let report = json_of(&run(dir.path(), &["--json", "audit", "verify"]));
    assert_eq!(report["ok"], true);
    let signed_by: Vec<&str> = report["report"]["signed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        signed_by.contains(&before.trim()) && signed_by.contains(&after.trim()),
        "{signed_by:?}"
    );
}

/// Four clients create tokens (each recorded in the ledger before it exists) while the server
/// is killed with SIGKILL, three times; after a restart the ledger verifies and holds a record
/// for every token whose creation was acknowledged.
/// A data directory restored from an older copy, its witness file removed: `audit verify`
/// says loudly that nothing outside the database was checked, and with a witness on another
/// volume (`[audit] witnesses`) it fails, naming that witness.
#[test]
fn a_rolled_back_ledger_is_caught_by_a_witness_on_another_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, other) = (tmp.path().join("soc"), tmp.path().join("other-volume"));
    std::fs::create_dir_all(&other).unwrap();
    let config = tmp.path().join("rempart.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[audit]\nwitnesses = [\"{}\"]\n",
            other.join("witness.txt").display()
        ),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        let mut full = vec!["--config", config.to_str().unwrap()];
        full.extend_from_slice(args);
        run(&dir, &full)
    };
    with_config(&["tokens", "create", "--role", "viewer", "--name", "a"]);
    with_config(&["audit", "checkpoint"]);
    assert!(
        other.join("witness.txt").is_file(),
        "the witness on the other volume is written"
    );
    let ok = with_config(&["--json", "audit", "verify"]);
    assert_eq!(json_of(&ok)["warnings"], serde_json::json!([]));
    // An older copy of the data directory…
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
    {
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    for name in ["b", "c", "d"] {
        with_config(&["tokens", "create", "--role", "viewer", "--name", name]);
    }
    with_config(&["audit", "checkpoint"]);
    // … put back, and the witness beside it taken away.
    for f in std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
    {
        std::fs::remove_file(f).unwrap();
    }
    for f in std::fs::read_dir(&copy).unwrap().map(|e| e.unwrap().path()) {
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::remove_file(dir.join("ledger-checkpoint.txt")).unwrap();
    let alone = rempart(&dir).args(["audit", "verify"]).output().unwrap();
    let said = String::from_utf8_lossy(&alone.stderr);
    assert_eq!(
        alone.status.code(),
        Some(3),
        "a missing witness has its own exit status: {said}"
    );
    assert!(
        said.contains("warning: ledger verified, but the witness") && said.contains("is missing"),
        "{said}"
    );
    assert!(
        said.contains("no checkpoint held outside the database was checked"),
        "{said}"
    );
    let caught = rempart(&dir)
        .args(["--config", config.to_str().unwrap(), "audit", "verify"])
        .output()
        .unwrap();
    assert!(!caught.status.success(), "the rollback was not caught");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&caught.stdout),
        String::from_utf8_lossy(&caught.stderr)
    );
    assert!(said.contains("other-volume"), "{said}");
}

/// The replay: an older copy of the database put back (or a zero-length one) beside the
/// newer witness. The next writer refuses, naming the witness, and writes nothing; so `audit
/// verify` still fails afterwards instead of passing on a witness the writer replaced.
#[test]
fn a_writer_refuses_a_restored_older_or_emptied_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soc");
    run(&dir, &["tokens", "create", "--role", "viewer", "--name", "a"]);
    run(&dir, &["audit", "checkpoint"]);
    let db_files = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("rempart.db"))
            .collect()
    };
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in db_files(&dir) {
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    for name in ["b", "c", "d"] {
        run(&dir, &["tokens", "create", "--role", "viewer", "--name", name]);
    }
    run(&dir, &["audit", "checkpoint"]);
    let witness = std::fs::read_to_string(dir.join("ledger-checkpoint.txt")).unwrap();
    for f in db_files(&dir) {
        std::fs::remove_file(f).unwrap();
    }
    for f in db_files(&copy) {
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let refuse = |dir: &Path, why: &str| {
        let out = rempart(dir)
            .args(["tokens", "create", "--role", "admin", "--name", "after"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a writer opened the store");
        assert!(said.contains(why) && said.contains("ledger-checkpoint.txt"), "{said}");
        assert_eq!(
            std::fs::read_to_string(dir.join("ledger-checkpoint.txt")).unwrap(),
            witness,
            "the witness was replaced"
        );
        let verify = rempart(dir).args(["audit", "verify"]).output().unwrap();
        assert!(!verify.status.success(), "audit verify passes after the writer");
    };
    refuse(&dir, "the database was rolled back, emptied or replaced");

    for f in db_files(&dir) {
        std::fs::remove_file(f).unwrap();
    }
    std::fs::write(dir.join("rempart.db"), b"").unwrap();
    refuse(&dir, "holds 0 records");
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let admin = String::from_utf8(run(dir.path(), &["tokens", "create", "--role", "admin"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acknowledged: HashSet<String> = HashSet::new();
    for round in 0..3 {
        let (mut child, addr) = serve(dir.path());
        let acked: Vec<String> = rt.block_on(async {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            let mut inflight = tokio::task::JoinSet::new();
            let mut killed = false;
            let mut sent = 0;
            loop {
                while sent < 400 && inflight.len() < 4 {
                    let req = client
                        .post(format!("http://{addr}/api/v1/tokens"))
                        .bearer_auth(&admin)
                        .json(&serde_json::json!({"name": format!("r{round}-{sent}"), "role": "viewer"}));
                    inflight.spawn(async move { req.send().await });
                    sent += 1;
                }
                let Some(done) = inflight.join_next().await else { break };
                if let Ok(resp) = done.unwrap()
                    && resp.status() == 201
                    && let Ok(body) = resp.json::<Value>().await
                {
                    acked.push(body["token"]["id"].as_str().unwrap().to_owned());
                }
                if !killed && acked.len() >= 40 {
                    child.kill().unwrap();
                    killed = true;
                }
            }
            assert!(killed, "the server was never killed");
            acked
        });
        let _ = child.wait();
        acknowledged.extend(acked);
    }
    assert!(acknowledged.len() >= 120);
    let report = json_of(&run(dir.path(), &["--json", "audit", "verify"]));
    assert_eq!(report["ok"], true, "{report}");
    let export = json_of(&run(dir.path(), &["audit", "export"]));
    let recorded: HashSet<String> = export["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "token.create")
        .map(|r| r["payload"]["token"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = acknowledged.difference(&recorded).collect();
    assert!(missing.is_empty(), "acknowledged but not recorded: {missing:?}");
}

#[test]
fn a_server_records_its_start_with_the_configuration_digest_and_its_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rempart.toml");
    let text = "version = 1\n[audit]\norigin = \"rempart/test.example.eu\"\ncheckpoint_every = 10\n";
    std::fs::write(&config, text).unwrap();
    let mut command = rempart(dir.path());
    command.env("REMPART_CONFIG", &config);
    let (mut child, _addr) = serve_with(command);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let mut command = rempart(dir.path());
    command.env("REMPART_CONFIG", &config);
    let kinds = common::ledger_kinds(command);
    assert_eq!(kinds, ["server.start", "server.stop"]);
    let start = json_of(
        &rempart(dir.path())
            .env("REMPART_CONFIG", &config)
            .args(["audit", "show", "0"])
            .output()
            .unwrap(),
    );
    use sha2::Digest;
    assert_eq!(
        start["payload"]["config"]["sha256"],
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    );
    // The checkpoint carries the configured origin.
    let note = String::from_utf8(
        rempart(dir.path())
            .env("REMPART_CONFIG", &config)
            .args(["audit", "checkpoint"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(note.starts_with("rempart/test.example.eu\n"), "{note}");
}

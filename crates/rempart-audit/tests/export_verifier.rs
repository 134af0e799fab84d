//! The standalone verifier in `examples/verify_export.rs` accepts a genuine export and rejects
//! each kind of doctored one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[path = "../examples/verify_export.rs"]
mod verifier;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rempart_audit::export::ExportRange;
use rempart_audit::{Draft, Ledger, LedgerOptions, MasterKey, Signer};
use rempart_model::ManualClock;
use rempart_store::{LedgerStore, SqliteStore};
use serde_json::{Value, json};

async fn exported() -> (Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("e.db")).await.unwrap());
    let signer = Signer::generate("rempart/export-test").unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_second(1_795_000_000).unwrap()));
    let ledger = Ledger::open(
        store.clone() as Arc<dyn LedgerStore>,
        MasterKey::from_secret(&[3; 32]),
        signer.clone(),
        LedgerOptions {
            checkpoint_every: 16,
            checkpoint_interval: Duration::from_secs(3600),
            ..LedgerOptions::default()
        },
        clock.clone(),
    )
    .await
    .unwrap();
    for i in 0..40 {
        clock.advance(jiff::SignedDuration::from_secs(1));
        let d = Draft::new(
            "cli:test",
            "test.step",
            json!({"i": i, "who": format!("user{}", i % 3)}),
        );
        ledger.append(d.about(format!("user:user{}", i % 3))).await.unwrap();
    }
    ledger.erase_subject("cli:dpo", "user:user2").await.unwrap();
    let held = store.ledger_checkpoints().await.unwrap().remove(0).note;
    let doc = ledger
        .export(&ExportRange {
            previous: Some(held),
            ..ExportRange::default()
        })
        .await
        .unwrap();
    ledger.close().await;
    (serde_json::to_value(doc).unwrap(), signer.verifier().vkey(), dir)
}

#[tokio::test]
async fn a_genuine_export_verifies_with_only_public_crates() {
    let (doc, vkey, _dir) = exported().await;
    let s = verifier::verify(&doc, &[vkey]).unwrap();
    assert_eq!(s.records, 41);
    // user2's 13 records were erased: their payloads cannot be opened, by anyone.
    assert_eq!(s.opened, 41 - 13);
    assert_eq!(s.tree_size, 41);
    assert_eq!(s.previous_size, Some(16));
}

#[tokio::test]
async fn a_doctored_export_is_rejected_with_the_reason() {
    let (doc, vkey, _dir) = exported().await;
    let keys = [vkey];
    let expect = |doc: &Value, needle: &str| {
        let err = verifier::verify(doc, &keys).unwrap_err();
        assert!(err.contains(needle), "{err}");
    };

    let mut d = doc.clone();
    d["records"][4]["payload"]["i"] = json!(999);
    expect(&d, "record 4: the payload shown is not the payload committed to");

    // Record 5 is about the erased user2: no payload may be shown for it.
    let mut d = doc.clone();
    d["records"][5]["payload"] = json!({"i": 5, "who": "user2"});
    expect(&d, "record 5: shows a payload that cannot be checked");

    let mut d = doc.clone();
    d["records"][7]["actor"] = json!("cli:someone-else");
    expect(&d, "record 7: its fields do not hash to its leaf hash");

    let mut d = doc.clone();
    d["records"].as_array_mut().unwrap().remove(9);
    expect(&d, "record 9 is missing from the export");

    let other = Signer::generate("rempart/export-test").unwrap().verifier().vkey();
    let err = verifier::verify(&doc, &[other]).unwrap_err();
    assert!(err.contains("no signature by a trusted key"), "{err}");

    let mut d = doc.clone();
    // Change the proof's first hex digit to another one: the proof then names another hash.
    let hex = d["records"][3]["inclusion_proof"][0].as_str().unwrap();
    let other = if hex.starts_with('0') { '1' } else { '0' };
    let proof = format!("{other}{}", &hex[1..]);
    d["records"][3]["inclusion_proof"][0] = json!(proof);
    expect(&d, "record 3: not in the signed tree");

    let mut d = doc.clone();
    d["previous"]["consistency_proof"][0] = d["previous"]["consistency_proof"][1].clone();
    expect(&d, "is not a prefix of this one");
}

//! The ledger on the embedded store: appends, checkpoints, restarts, concurrent writers,
//! erasure, pruning, key rotation, export, and every kind of tampering, each detected and
//! located.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rempart_audit::export::ExportRange;
use rempart_audit::merkle;
use rempart_audit::record::compute_leaf_hash;
use rempart_audit::{Anchor, Draft, Ledger, LedgerOptions, MasterKey, PayloadView, Problem, Report, Signer};
use rempart_model::ManualClock;
use rempart_store::{LedgerAppend, LedgerStore, SqliteStore};
use serde_json::json;

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    signer: Signer,
    master: MasterKey,
    clock: Arc<ManualClock>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("rempart.db")).await.unwrap());
        Fixture {
            store,
            signer: Signer::generate("rempart/test").unwrap(),
            master: MasterKey::load_or_create(&dir.path().join("master.key")).unwrap(),
            clock: Arc::new(ManualClock::new(Timestamp::from_second(1_795_000_000).unwrap())),
            dir,
        }
    }

    fn witness(&self) -> PathBuf {
        self.dir.path().join("checkpoint")
    }

    async fn ledger(&self, every: u64) -> Ledger {
        self.ledger_with(self.signer.clone(), every).await
    }

    async fn ledger_with(&self, signer: Signer, every: u64) -> Ledger {
        self.try_ledger(signer, every).await.unwrap()
    }

    async fn try_ledger(&self, signer: Signer, every: u64) -> Result<Ledger, rempart_audit::AuditError> {
        let options = LedgerOptions {
            checkpoint_every: every,
            checkpoint_interval: Duration::from_secs(3600),
            witnesses: vec![self.witness()],
            ..LedgerOptions::default()
        };
        Ledger::open(
            self.store.clone() as Arc<dyn LedgerStore>,
            self.master.clone(),
            signer,
            options,
            self.clock.clone(),
        )
        .await
    }

    /// Appends `n` records (one per second), sealed, some about subjects.
    async fn fill(&self, ledger: &Ledger, n: usize) {
        for i in 0..n {
            self.clock.advance(SignedDuration::from_secs(1));
            let mut d = Draft::new("cli:test", "test.step", json!({"i": i, "note": format!("step {i}")}));
            if i % 3 == 0 {
                d = d.about(format!("user:u{}", i % 4));
            }
            ledger.append(d).await.unwrap();
        }
    }

    async fn verify(&self, outside: Vec<Anchor>) -> Result<Report, Problem> {
        Ledger::verify(
            &(self.store.clone() as Arc<dyn LedgerStore>),
            vec![self.signer.verifier()],
            outside,
            None,
        )
        .await
        .unwrap()
    }

    async fn sql(&self, statements: &[&str]) {
        let url = format!("sqlite://{}", self.dir.path().join("rempart.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        for s in statements {
            sqlx::raw_sql(s).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    fn witness_anchor(&self) -> Anchor {
        Anchor::outside(std::fs::read_to_string(self.witness()).unwrap(), "witness")
    }
}

/// A ledger of 50 records with checkpoints at 20, 40 and (on close) 50.
async fn fifty() -> Fixture {
    let f = Fixture::new().await;
    let ledger = f.ledger(20).await;
    f.fill(&ledger, 50).await;
    ledger.close().await;
    f
}

#[tokio::test]
async fn appends_chain_and_checkpoint_every_n_records() {
    let f = Fixture::new().await;
    let ledger = f.ledger(1000).await;
    let drafts: Vec<Draft> = (0..2500)
        .map(|i| Draft::new("system", "test.bulk", json!({"i": i})))
        .collect();
    let receipts = ledger.append_all(drafts).await.unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..2500).collect::<Vec<_>>()
    );
    let sizes: Vec<u64> = ledger.checkpoints().await.unwrap().iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![2500], "one batch, one checkpoint at its end");
    for i in 0..1500 {
        ledger
            .append(Draft::new("system", "test.one", json!({"i": i})))
            .await
            .unwrap();
    }
    let sizes: Vec<u64> = ledger.checkpoints().await.unwrap().iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![2500, 3500]);
    ledger.close().await;
    let report = f.verify(vec![f.witness_anchor()]).await.unwrap();
    assert_eq!(report.records, 4000);
    assert_eq!(report.checkpoints, 3, "2500, 3500 and the one signed on close");
    assert_eq!(report.unsigned_tail, 0);
    assert_eq!(report.signed_by, vec![f.signer.verifier().vkey()]);
}

#[tokio::test]
async fn records_nobody_waits_for_linger_until_an_append_a_read_or_close() {
    let f = Fixture::new().await;
    let options = LedgerOptions {
        checkpoint_interval: Duration::from_secs(3600),
        witnesses: vec![f.witness()],
        linger: Duration::from_secs(3600),
        ..LedgerOptions::default()
    };
    let open = || {
        Ledger::open(
            f.store.clone() as Arc<dyn LedgerStore>,
            f.master.clone(),
            f.signer.clone(),
            options.clone(),
            f.clock.clone(),
        )
    };
    let kinds = |entries: &[rempart_store::LedgerEntry]| -> Vec<String> {
        entries.iter().map(|e| e.record.kind.clone()).collect()
    };
    let ledger = open().await.unwrap();
    let stored = || async { f.store.ledger_entries(0, 100).await.unwrap() };
    let handle = &ledger;
    let unwaited = |n: usize| async move {
        for i in 0..n {
            handle
                .record(Draft::new("system", "test.unwaited", json!({"i": i})))
                .await
                .unwrap();
        }
    };
    unwaited(3).await;
    // An hour's linger: the three wait for more; the store holds nothing yet.
    assert!(stored().await.is_empty());
    // Reading through the ledger settles it first: the three are committed, then read.
    let read = tokio::time::timeout(Duration::from_secs(60), ledger.entries(0, 100))
        .await
        .expect("a read does not wait for the linger")
        .unwrap();
    assert_eq!(kinds(&read), ["test.unwaited"; 3]);
    unwaited(2).await;
    assert_eq!(stored().await.len(), 3);
    // A record someone waits for is committed at once, after the two, in one transaction.
    let receipt = tokio::time::timeout(
        Duration::from_secs(60),
        ledger.append(Draft::new("system", "test.waited", json!({}))),
    )
    .await
    .expect("an append does not wait for the linger")
    .unwrap();
    assert_eq!(receipt.seq, 5);
    let mut expected = vec!["test.unwaited"; 5];
    expected.push("test.waited");
    assert_eq!(kinds(&stored().await), expected);
    // Closing commits what is still lingering.
    for _ in 0..3 {
        ledger
            .record(Draft::new("system", "test.last", json!({})))
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(60), ledger.close())
        .await
        .expect("close does not wait for the linger");
    let reopened = open().await.unwrap();
    expected.extend(["test.last"; 3]);
    assert_eq!(kinds(&reopened.entries(0, 100).await.unwrap()), expected);
    reopened.close().await;
    let report = f.verify(vec![f.witness_anchor()]).await.unwrap();
    assert_eq!(report.records, 9);
}

/// `tasks` tasks appending `each` records at once, shared between ledgers `a` and `b`, each
/// record about a subject if `about`; every sequence number acknowledged, in order. Both
/// ledgers are closed.
async fn race(a: &Ledger, b: &Ledger, tasks: usize, each: usize, about: bool) -> Vec<u64> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let ledger = if t % 2 == 0 { a.clone() } else { b.clone() };
        set.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..each {
                let mut draft = Draft::new(format!("task:{t}"), "test.race", json!({"t": t, "i": i}));
                if about {
                    draft = draft.about(format!("user-{t}-{}", i % 7));
                }
                seqs.push(ledger.append(draft).await.unwrap().seq);
            }
            seqs
        });
    }
    let mut all = Vec::new();
    while let Some(seqs) = set.join_next().await {
        all.extend(seqs.unwrap());
    }
    a.close().await;
    b.close().await;
    all.sort_unstable();
    all
}

#[tokio::test]
async fn concurrent_callers_and_two_writers_never_fork_or_leave_a_gap() {
    let f = Fixture::new().await;
    // Two ledgers on one store stand for two processes.
    let a = f.ledger(100).await;
    let b = f.ledger(100).await;
    let all = race(&a, &b, 8, 150, false).await;
    let n = all.len() as u64;
    assert_eq!(n, 1200);
    assert_eq!(
        all,
        (0..n).collect::<Vec<_>>(),
        "every acknowledged record has its own seq, no gap"
    );
    let report = f.verify(vec![]).await.unwrap();
    assert_eq!(report.records, n);
}

/// Two processes on one SQLite file (two stores, each with its own connections): a writer
/// waits for the other's commit instead of failing with "database is locked", and the chain
/// has every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_wait_for_each_other() {
    let f = Fixture::new().await;
    let other = Arc::new(SqliteStore::open(&f.dir.path().join("rempart.db")).await.unwrap());
    let options = LedgerOptions {
        checkpoint_every: 50,
        checkpoint_interval: Duration::from_secs(3600),
        ..LedgerOptions::default()
    };
    let open = |store: Arc<SqliteStore>| {
        Ledger::open(
            store as Arc<dyn LedgerStore>,
            f.master.clone(),
            f.signer.clone(),
            options.clone(),
            f.clock.clone(),
        )
    };
    let a = open(f.store.clone()).await.unwrap();
    let b = open(other).await.unwrap();
    // Records about subjects: a new subject's key is read, then written, in the same
    // transaction as the record.
    let all = race(&a, &b, 6, 100, true).await;
    assert_eq!(all, (0..600).collect::<Vec<u64>>());
    assert_eq!(f.verify(vec![]).await.unwrap().records, 600);
}

#[tokio::test]
async fn a_reopened_ledger_continues_its_chain_and_tree() {
    let f = Fixture::new().await;
    let first = f.ledger(7).await;
    f.fill(&first, 30).await;
    // No close: as after a crash, the last records are not under a checkpoint yet.
    drop(first);
    let second = f.ledger(7).await;
    f.fill(&second, 30).await;
    second.close().await;
    let report = f.verify(vec![]).await.unwrap();
    assert_eq!(report.records, 60);
    assert_eq!(report.unsigned_tail, 0);
}

#[tokio::test]
async fn a_flipped_payload_byte_is_found_at_its_record() {
    let f = fifty().await;
    f.verify(vec![]).await.unwrap();
    f.sql(&["UPDATE ledger SET body = CAST(substr(body, 1, 30) || x'00' || substr(body, 32) AS BLOB) WHERE seq = 17"])
        .await;
    assert_eq!(f.verify(vec![]).await.unwrap_err(), Problem::PayloadAltered { seq: 17 });
}

#[tokio::test]
async fn a_deleted_record_is_found_missing() {
    let f = fifty().await;
    f.sql(&["DELETE FROM ledger WHERE seq = 17"]).await;
    assert_eq!(
        f.verify(vec![]).await.unwrap_err(),
        Problem::Missing { seq: 17, found: 18 }
    );
}

#[tokio::test]
async fn two_swapped_records_are_found() {
    let f = fifty().await;
    f.sql(&[
        "UPDATE ledger SET seq = -1 WHERE seq = 17",
        "UPDATE ledger SET seq = 17 WHERE seq = 18",
        "UPDATE ledger SET seq = 18 WHERE seq = -1",
    ])
    .await;
    assert_eq!(f.verify(vec![]).await.unwrap_err(), Problem::Altered { seq: 17 });
}

#[tokio::test]
async fn a_truncated_tail_is_found_by_the_checkpoints_and_by_the_witness() {
    let f = fifty().await;
    f.sql(&["DELETE FROM ledger WHERE seq >= 45"]).await;
    let err = f.verify(vec![]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Problem::Truncated {
                records: 45,
                size: 50,
                ..
            }
        ),
        "{err}"
    );

    // Also removing the checkpoints leaves the witness file outside the database.
    f.sql(&[
        "DELETE FROM ledger WHERE seq >= 30",
        "DELETE FROM ledger_checkpoints WHERE size > 30",
    ])
    .await;
    assert!(
        matches!(f.verify(vec![]).await, Ok(Report { records: 30, .. })),
        "the database alone cannot tell"
    );
    let err = f.verify(vec![f.witness_anchor()]).await.unwrap_err();
    assert_eq!(
        err,
        Problem::Truncated {
            records: 30,
            size: 50,
            source_name: "witness".to_owned()
        }
    );
}

/// The witness outside the database stops every writer at a store it does not vouch for: one
/// rolled back (as a restored older file is), one emptied, one whose history was rewritten.
/// Nothing is written, the witness keeps the evidence, and a genuine store opens and moves the
/// witness on.
#[tokio::test]
async fn a_writer_refuses_a_store_its_witness_does_not_vouch_for() {
    let f = fifty().await;
    let ledger = f.try_ledger(f.signer.clone(), 20).await.unwrap();
    f.fill(&ledger, 5).await;
    ledger.close().await;
    let held = std::fs::read_to_string(f.witness()).unwrap();
    assert_eq!(held.lines().nth(1), Some("55"), "{held}");

    f.sql(&[
        "DELETE FROM ledger WHERE seq >= 30",
        "DELETE FROM ledger_checkpoints WHERE size > 30",
    ])
    .await;
    let err = f.try_ledger(f.signer.clone(), 20).await.unwrap_err().to_string();
    assert!(
        err.contains("holds 30 records but its witness") && err.contains("signed checkpoint of 55"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(f.store.ledger_head().await.unwrap().unwrap().seq, 29);
    assert_eq!(std::fs::read_to_string(f.witness()).unwrap(), held);

    f.sql(&["DELETE FROM ledger", "DELETE FROM ledger_checkpoints"]).await;
    let err = f.try_ledger(f.signer.clone(), 20).await.unwrap_err().to_string();
    assert!(err.contains("holds 0 records"), "{err}");
    assert_eq!(std::fs::read_to_string(f.witness()).unwrap(), held);

    // Another history of more records, signed by the same key, beside this witness.
    let g = Fixture {
        signer: f.signer.clone(),
        ..Fixture::new().await
    };
    let other = g.ledger(20).await;
    for i in 0..60 {
        other
            .append(Draft::new("cli:mallory", "test.step", json!({"rewritten": i})))
            .await
            .unwrap();
    }
    other.close().await;
    std::fs::write(g.witness(), &held).unwrap();
    let err = g.try_ledger(g.signer.clone(), 20).await.unwrap_err().to_string();
    assert!(
        err.contains("first 55 records do not hash to the root") && err.contains("history was rewritten"),
        "{err}"
    );

    // A witness signed by another key is no witness of this ledger.
    let h = fifty().await;
    std::fs::write(h.witness(), &held).unwrap();
    let err = h.try_ledger(h.signer.clone(), 20).await.unwrap_err().to_string();
    assert!(
        err.contains("is not a checkpoint signed by this ledger's keys"),
        "{err}"
    );
}

#[tokio::test]
async fn an_inserted_record_breaks_the_chain_where_it_was_put() {
    let f = fifty().await;
    // Make room at 17 (shifting 17.. up by one), then forge a record there that chains from 16
    // correctly: the record after it can no longer follow.
    let entries = f.store.ledger_entries(16, 1).await.unwrap();
    let prev = entries[0].record.leaf_hash;
    let mut forged = rempart_store::LedgerRecord {
        seq: 17,
        time: entries[0].record.time,
        actor: "cli:mallory".to_owned(),
        kind: "test.step".to_owned(),
        key_id: None,
        payload_hash: sha256(b"{}"),
        prev_hash: prev,
        leaf_hash: [0; 32],
    };
    forged.leaf_hash = compute_leaf_hash(&forged);
    f.sql(&[
        "UPDATE ledger SET seq = -seq WHERE seq >= 17",
        "UPDATE ledger SET seq = 1 - seq WHERE seq < 0",
        &format!(
            "INSERT INTO ledger VALUES (17, {}, 'cli:mallory', 'test.step', NULL, x'{}', x'{}', x'{}', CAST('{{}}' AS BLOB))",
            forged.time.as_nanosecond(),
            hex::encode(forged.payload_hash),
            hex::encode(forged.prev_hash),
            hex::encode(forged.leaf_hash)
        ),
    ])
    .await;
    // Record 18 (the old 17) is where the ledger stops adding up: renumbered, its content no
    // longer hashes to its leaf; with the leaf recomputed, its link to 17 breaks instead.
    let err = f.verify(vec![]).await.unwrap_err();
    assert_eq!(err, Problem::Altered { seq: 18 });
    let entry = f.store.ledger_entries(18, 1).await.unwrap().remove(0);
    f.sql(&[&format!(
        "UPDATE ledger SET leaf_hash = x'{}' WHERE seq = 18",
        hex::encode(compute_leaf_hash(&entry.record))
    )])
    .await;
    assert_eq!(f.verify(vec![]).await.unwrap_err(), Problem::ChainBroken { seq: 18 });
}

#[tokio::test]
async fn a_forged_checkpoint_signature_is_found() {
    let f = fifty().await;
    let cp = f.store.ledger_checkpoints().await.unwrap().remove(0);
    let lines: Vec<&str> = cp.note.lines().collect();
    let forged = cp.note.replacen(lines[2], &base64_of(&[9; 32]), 1);
    f.sql(&[&format!(
        "UPDATE ledger_checkpoints SET note = '{}' WHERE size = {}",
        forged.replace('\'', "''"),
        cp.size
    )])
    .await;
    let err = f.verify(vec![]).await.unwrap_err();
    assert!(
        matches!(&err, Problem::BadCheckpoint { size: 20, reason } if reason.contains("does not verify")),
        "{err}"
    );
    // A checkpoint signed by a key nobody trusts is no better.
    let stranger = Signer::generate("rempart/test").unwrap();
    let mut checkpoint = rempart_audit::Checkpoint::open(&cp.note, &[f.signer.verifier()])
        .unwrap()
        .0;
    checkpoint.root = [9; 32];
    let note = checkpoint.sign(&[&stranger]);
    f.sql(&[&format!(
        "UPDATE ledger_checkpoints SET note = '{}' WHERE size = 20",
        note.replace('\'', "''")
    )])
    .await;
    let err = f.verify(vec![]).await.unwrap_err();
    assert!(
        matches!(&err, Problem::BadCheckpoint { size: 20, reason } if reason.contains("no signature by a trusted key")),
        "{err}"
    );
}

#[tokio::test]
async fn history_rewritten_and_re_signed_with_the_key_fails_against_an_earlier_checkpoint() {
    let f = fifty().await;
    // An auditor kept the checkpoint of size 20.
    let held = f.store.ledger_checkpoints().await.unwrap().remove(0);
    assert_eq!(held.size, 20);

    // Someone holding the database and the signing key rewrites record 5 and rebuilds
    // everything after it, checkpoints included, into a ledger that verifies on its own.
    let rewritten = Fixture {
        dir: tempfile::tempdir().unwrap(),
        signer: f.signer.clone(),
        master: f.master.clone(),
        clock: f.clock.clone(),
        store: Arc::new(
            SqliteStore::open(&tempfile::tempdir().unwrap().keep().join("r.db"))
                .await
                .unwrap(),
        ),
    };
    let mut entries = f.store.ledger_entries(0, 1000).await.unwrap();
    let mut prev = [0; 32];
    let mut frontier = merkle::Frontier::new();
    for e in &mut entries {
        if e.record.seq == 5 {
            e.record.actor = "cli:someone-else".to_owned();
        }
        e.record.prev_hash = prev;
        e.record.leaf_hash = compute_leaf_hash(&e.record);
        prev = e.record.leaf_hash;
        frontier.push(prev);
    }
    let checkpoint = rempart_audit::Checkpoint {
        origin: "rempart/test".to_owned(),
        size: 50,
        root: frontier.root(),
        time: entries[49].record.time,
    };
    let stored = rempart_store::StoredCheckpoint {
        size: 50,
        root: checkpoint.root,
        time: checkpoint.time,
        note: checkpoint.sign(&[&f.signer]),
        frontier: frontier.nodes().to_vec(),
    };
    // The insider copies the subject keys too, so that the rewrite reads as whole.
    let mut key_ids: Vec<String> = entries.iter().filter_map(|e| e.record.key_id.clone()).collect();
    key_ids.dedup();
    let keys = f.store.ledger_keys(&key_ids).await.unwrap();
    rewritten
        .store
        .ledger_append(LedgerAppend {
            keys: &keys,
            entries: &entries,
            checkpoint: Some(&stored),
        })
        .await
        .unwrap();
    assert!(
        rewritten.verify(vec![]).await.is_ok(),
        "on its own, the rewrite verifies"
    );

    let err = rewritten
        .verify(vec![Anchor::outside(held.note.clone(), "auditor")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Problem::RootMismatch { size: 20, source_name, .. } if source_name == "auditor"),
        "{err}"
    );

    // And the consistency proof the rewritten ledger can offer does not connect to it.
    let leaves = rewritten.store.ledger_leaves(0, 50).await.unwrap();
    let proof = merkle::consistency_proof(&leaves, 20).unwrap();
    assert!(!merkle::verify_consistency(
        20,
        50,
        &held.root,
        &merkle::root(&leaves),
        &proof
    ));
    // While the genuine ledger's does.
    let leaves = f.store.ledger_leaves(0, 50).await.unwrap();
    let proof = merkle::consistency_proof(&leaves, 20).unwrap();
    assert!(merkle::verify_consistency(
        20,
        50,
        &held.root,
        &merkle::root(&leaves),
        &proof
    ));
}

#[tokio::test]
async fn erasing_a_subject_makes_its_payloads_unreadable_and_the_ledger_still_verifies() {
    let f = Fixture::new().await;
    let ledger = f.ledger(10).await;
    for i in 0..12 {
        let who = if i % 2 == 0 { "user:alice" } else { "user:bob" };
        let d = Draft::new(
            "cli:test",
            "test.about",
            json!({"who": who, "secret": format!("SECRET-{who}-{i}")}),
        );
        ledger.append(d.about(who)).await.unwrap();
    }
    let destroyed = ledger.erase_subject("cli:dpo", "user:alice").await.unwrap();
    assert_eq!(destroyed, 1);
    ledger.close().await;

    let report = f.verify(vec![]).await.unwrap();
    assert_eq!(report.records, 13, "12 records and the erasure's own");
    for e in ledger.entries(0, 100).await.unwrap() {
        let view = ledger.open_payload(&e).await.unwrap();
        match e.record.seq {
            12 => assert!(
                matches!(view, PayloadView::Public { .. }),
                "the erasure record is public"
            ),
            s if s % 2 == 0 => assert_eq!(view, PayloadView::Erased, "record {s}"),
            s => match view {
                PayloadView::Sealed { payload, .. } => assert_eq!(payload["who"], "user:bob", "record {s}"),
                other => panic!("record {s}: {other:?}"),
            },
        }
    }
    // Nothing of alice's is left in the database file in clear, nor any subject name.
    let bytes = std::fs::read(f.dir.path().join("rempart.db")).unwrap();
    for needle in [&b"SECRET-user:alice"[..], b"user:alice", b"SECRET-user:bob"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
}

/// An erasure vouches only for the keys it destroyed: a subject erased, then written about again
/// (a new key), then that new key wiped by hand to make those records read as erased too. The
/// earlier erasure does not cover it, and verification names the first record under it.
#[tokio::test]
async fn an_erasure_does_not_cover_a_later_key_wiped_by_hand() {
    let f = Fixture::new().await;
    let ledger = f.ledger(10).await;
    let about = |i: u32| Draft::new("cli:test", "test.about", json!({"i": i})).about("user:alice");
    for i in 0..3 {
        ledger.append(about(i)).await.unwrap();
    }
    ledger.erase_subject("cli:dpo", "user:alice").await.unwrap();
    for i in 3..6 {
        ledger.append(about(i)).await.unwrap();
    }
    ledger.close().await;
    let report = f.verify(vec![]).await.unwrap();
    assert_eq!((report.records, report.erased_keys), (7, 1));

    f.sql(&[
        "UPDATE ledger_keys SET wrapped = NULL, erased = 1 WHERE key_id = (SELECT key_id FROM ledger WHERE seq = 4)",
    ])
    .await;
    let err = f.verify(vec![]).await.unwrap_err();
    assert!(
        matches!(&err, Problem::KeyDestroyed { seq: 4, reason, .. } if reason == "was destroyed"),
        "{err}"
    );
    f.sql(&["DELETE FROM ledger_keys WHERE key_id = (SELECT key_id FROM ledger WHERE seq = 0)"])
        .await;
    let err = f.verify(vec![]).await.unwrap_err();
    assert!(
        matches!(&err, Problem::KeyDestroyed { seq: 0, reason, .. } if reason == "is gone from the store"),
        "the first record affected is named: {err}"
    );
}

#[tokio::test]
async fn pruned_payloads_keep_the_ledger_verifiable_but_a_removed_one_does_not() {
    let f = fifty().await;
    let ledger = f.ledger(20).await;
    let cutoff = ledger.entries(25, 1).await.unwrap()[0].record.time;
    let pruned = ledger.prune_payloads("system", cutoff).await.unwrap();
    assert_eq!(pruned, 25);
    ledger.close().await;
    let report = f.verify(vec![]).await.unwrap();
    assert_eq!((report.records, report.pruned_payloads), (51, 25));
    f.sql(&["UPDATE ledger SET body = NULL WHERE seq = 30"]).await;
    assert_eq!(f.verify(vec![]).await.unwrap_err(), Problem::PayloadMissing { seq: 30 });
}

#[tokio::test]
async fn a_rotated_key_is_trusted_through_the_checkpoint_the_old_key_co_signed() {
    let f = Fixture::new().await;
    let ledger = f.ledger(10).await;
    f.fill(&ledger, 15).await;
    let next = Signer::generate("rempart/test").unwrap();
    let cp = ledger.announce_key("cli:admin", &next).await.unwrap();
    assert_eq!(cp.note.matches('\u{2014}').count(), 2, "co-signed:\n{}", cp.note);
    ledger.close().await;
    let ledger = f.ledger_with(next.clone(), 10).await;
    f.fill(&ledger, 15).await;
    ledger.close().await;
    // An auditor who only ever knew the old key follows the rotation.
    let report = f.verify(vec![]).await.unwrap();
    assert_eq!(report.records, 31);
    assert!(report.signed_by.contains(&next.verifier().vkey()));
}

#[tokio::test]
async fn an_export_carries_proofs_that_check_against_its_checkpoint() {
    let f = fifty().await;
    let ledger = f.ledger(20).await;
    let held = f.store.ledger_checkpoints().await.unwrap().remove(0).note;
    let since = ledger.entries(10, 1).await.unwrap()[0].record.time;
    let until = ledger.entries(30, 1).await.unwrap()[0].record.time;
    let doc = ledger
        .export(&ExportRange {
            since: Some(since),
            until: Some(until),
            previous: Some(held.clone()),
        })
        .await
        .unwrap();
    assert_eq!(
        doc.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (10..30).collect::<Vec<_>>()
    );
    let (cp, _) = rempart_audit::Checkpoint::open(&doc.checkpoint, &[f.signer.verifier()]).unwrap();
    for r in &doc.records {
        let leaf: [u8; 32] = hex::decode(&r.leaf_hash).unwrap().try_into().unwrap();
        let proof: Vec<[u8; 32]> = r
            .inclusion_proof
            .iter()
            .map(|h| hex::decode(h).unwrap().try_into().unwrap())
            .collect();
        assert!(
            merkle::verify_inclusion(&leaf, r.seq, cp.size, &proof, &cp.root),
            "record {}",
            r.seq
        );
        assert!(r.payload.is_some(), "record {} readable", r.seq);
    }
    let previous = doc.previous.unwrap();
    let (old, _) = rempart_audit::Checkpoint::open(&previous.checkpoint, &[f.signer.verifier()]).unwrap();
    let proof: Vec<[u8; 32]> = previous
        .consistency_proof
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    assert!(merkle::verify_consistency(
        old.size, cp.size, &old.root, &cp.root, &proof
    ));
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

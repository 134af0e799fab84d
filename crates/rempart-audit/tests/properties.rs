//! Properties: any sequence of appends verifies; any single mutation of what is stored is
//! detected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;
use rempart_audit::{Anchor, Draft, Ledger, LedgerOptions, MasterKey, Signer, Verifier};
use rempart_model::ManualClock;
use rempart_store::{LedgerEntry, LedgerStore, SqliteStore, StoredCheckpoint};

#[derive(Debug, Clone)]
struct Step {
    actor: u8,
    kind: u8,
    subject: Option<u8>,
    public: bool,
    payload: String,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..4,
        0u8..5,
        proptest::option::of(0u8..6),
        proptest::bool::weighted(0.1),
        ".{0,40}",
    )
        .prop_map(|(actor, kind, subject, public, payload)| Step {
            actor,
            kind,
            subject,
            public,
            payload,
        })
}

/// Writes `steps` through a real ledger on a fresh store; returns what is stored.
fn build(steps: &[Step], every: u64) -> (Vec<LedgerEntry>, Vec<StoredCheckpoint>, Signer) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("p.db")).await.unwrap());
        let signer = Signer::generate("rempart/prop").unwrap();
        let ledger = Ledger::open(
            store.clone() as Arc<dyn LedgerStore>,
            MasterKey::from_secret(&[7; 32]),
            signer.clone(),
            LedgerOptions {
                checkpoint_every: every,
                checkpoint_interval: Duration::from_secs(3600),
                ..LedgerOptions::default()
            },
            Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH)),
        )
        .await
        .unwrap();
        for s in steps {
            let mut d = Draft::new(
                format!("actor:{}", s.actor),
                format!("kind.{}", s.kind),
                serde_json::json!({"p": s.payload}),
            );
            if let Some(sub) = s.subject {
                d = d.about(format!("user:{sub}"));
            }
            if s.public {
                d = d.public();
            }
            ledger.append(d).await.unwrap();
        }
        ledger.close().await;
        (
            store.ledger_entries(0, u32::MAX).await.unwrap(),
            store.ledger_checkpoints().await.unwrap(),
            signer,
        )
    })
}

fn verify(entries: &[LedgerEntry], checkpoints: &[StoredCheckpoint], signer: &Signer) -> Result<u64, String> {
    let anchors = checkpoints.iter().map(Anchor::from).collect();
    let mut v = Verifier::new(vec![signer.verifier()], anchors).map_err(|p| p.to_string())?;
    for e in entries {
        v.feed(e).map_err(|p| p.to_string())?;
    }
    v.finish().map(|r| r.records).map_err(|p| p.to_string())
}

/// One change to what is stored.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    Actor,
    Kind,
    Time,
    PayloadHash(usize),
    PrevHash(usize),
    LeafHash(usize),
    Body(usize),
    DropBody,
    Remove,
    SwapWithNext,
    Duplicate,
    CheckpointNote(usize),
    DropLastCheckpointAndRecord,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Actor),
        Just(Mutation::Kind),
        Just(Mutation::Time),
        (0usize..32).prop_map(Mutation::PayloadHash),
        (0usize..32).prop_map(Mutation::PrevHash),
        (0usize..32).prop_map(Mutation::LeafHash),
        any::<usize>().prop_map(Mutation::Body),
        Just(Mutation::DropBody),
        Just(Mutation::Remove),
        Just(Mutation::SwapWithNext),
        Just(Mutation::Duplicate),
        any::<usize>().prop_map(Mutation::CheckpointNote),
        Just(Mutation::DropLastCheckpointAndRecord),
    ]
}

/// Applies `m` at record `i`; `false` if it does not apply (nothing changed).
fn apply(m: Mutation, i: usize, entries: &mut Vec<LedgerEntry>, checkpoints: &mut [StoredCheckpoint]) -> bool {
    let n = entries.len();
    let r = &mut entries[i].record;
    match m {
        Mutation::Actor => r.actor.push('x'),
        Mutation::Kind => r.kind.push('x'),
        Mutation::Time => r.time = r.time.checked_add(jiff::SignedDuration::from_nanos(1)).unwrap(),
        Mutation::PayloadHash(b) => r.payload_hash[b] ^= 1,
        Mutation::PrevHash(b) => r.prev_hash[b] ^= 1,
        Mutation::LeafHash(b) => r.leaf_hash[b] ^= 1,
        Mutation::Body(at) => match &mut entries[i].payload {
            Some(body) if !body.is_empty() => {
                let at = at % body.len();
                body[at] ^= 0x20;
            }
            _ => return false,
        },
        Mutation::DropBody => entries[i].payload = None,
        Mutation::Remove => {
            entries.remove(i);
        }
        Mutation::SwapWithNext => {
            if i + 1 >= n {
                return false;
            }
            entries.swap(i, i + 1);
        }
        Mutation::Duplicate => {
            let copy = entries[i].clone();
            entries.insert(i, copy);
        }
        Mutation::CheckpointNote(at) => {
            let k = i % checkpoints.len();
            let cp = &mut checkpoints[k];
            // Change one character of the signed body (origin, size, root or time).
            let body_len = cp.note.find("\n\n").unwrap();
            let mut chars: Vec<char> = cp.note.chars().collect();
            let at = at % body_len;
            if chars[at] == '\n' {
                return false;
            }
            chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
            cp.note = chars.into_iter().collect();
        }
        Mutation::DropLastCheckpointAndRecord => {
            entries.pop();
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_appends_verifies_and_any_single_mutation_is_detected(
        steps in proptest::collection::vec(step(), 1..80),
        every in 1u64..30,
        mutations in proptest::collection::vec((mutation(), any::<proptest::sample::Index>()), 8),
    ) {
        let (entries, checkpoints, signer) = build(&steps, every);
        prop_assert_eq!(verify(&entries, &checkpoints, &signer), Ok(steps.len() as u64));
        prop_assert_eq!(checkpoints.last().map(|c| c.size), Some(steps.len() as u64));
        for (m, at) in mutations {
            let mut e = entries.clone();
            let mut c = checkpoints.clone();
            let i = at.index(e.len());
            if apply(m, i, &mut e, &mut c) {
                let result = verify(&e, &c, &signer);
                prop_assert!(result.is_err(), "{:?} at {} went unnoticed", m, i);
            }
        }
    }
}

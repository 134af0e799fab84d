//! Hot paths of the ledger, without storage: what one append costs the writer (seal, hash,
//! tree), what verifying one record costs, and proofs over a large tree.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use rempart_audit::merkle::{Frontier, Tree, leaf_hash};
use rempart_audit::record::compute_leaf_hash;
use rempart_audit::{Verifier, seal};
use rempart_store::{LedgerEntry, LedgerRecord};
use sha2::{Digest, Sha256};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAYLOAD: &[u8] = br#"{"alert":"0193b5c0-0042-7000-8000-000000000000","rule_id":"5ef9853e-4d0e-4a70-846f-a9ca37d876da","rule_title":"LSASS Memory Dump with a Dumping Tool","level":"high","host":"ws42.corp.example.eu","user":"user42","event":"0193b5c0-0042-7000-8000-0000000000ff"}"#;

/// A chain of `n` sealed records, as the writer builds it.
fn chain(n: u64) -> Vec<LedgerEntry> {
    let subject = seal::random_key();
    let mut prev = [0; 32];
    (0..n)
        .map(|seq| {
            let body = seal::seal(&seal::record_key(&subject, seq), seq, "alert.raise", PAYLOAD);
            let mut record = LedgerRecord {
                seq,
                time: Timestamp::from_second(1_795_000_000 + seq as i64).unwrap(),
                actor: "detection".to_owned(),
                kind: "alert.raise".to_owned(),
                key_id: Some("0193b5c0000070008000000000000042".to_owned()),
                payload_hash: Sha256::digest(&body).into(),
                prev_hash: prev,
                leaf_hash: [0; 32],
            };
            record.leaf_hash = compute_leaf_hash(&record);
            prev = record.leaf_hash;
            LedgerEntry {
                record,
                payload: Some(body),
            }
        })
        .collect()
}

fn append_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    let subject = seal::random_key();
    let mut frontier = Frontier::new();
    let mut seq = 0u64;
    g.bench_function("seal_hash_and_extend_tree_per_record", |b| {
        b.iter(|| {
            seq += 1;
            let body = seal::seal(&seal::record_key(&subject, seq), seq, "alert.raise", PAYLOAD);
            let record = LedgerRecord {
                seq,
                time: Timestamp::UNIX_EPOCH,
                actor: "detection".to_owned(),
                kind: "alert.raise".to_owned(),
                key_id: None,
                payload_hash: Sha256::digest(&body).into(),
                prev_hash: [0; 32],
                leaf_hash: [0; 32],
            };
            frontier.push(compute_leaf_hash(&record));
        });
    });
    g.finish();
}

fn verify_cost(c: &mut Criterion) {
    let entries = chain(100_000);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.sample_size(20);
    g.bench_function("verifier_feed_100k_records", |b| {
        b.iter_batched(
            || Verifier::new(Vec::new(), Vec::new()).unwrap(),
            |mut v| {
                for e in &entries {
                    v.feed(e).unwrap();
                }
                v.finish().unwrap()
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn proof_cost(c: &mut Criterion) {
    let leaves: Vec<[u8; 32]> = (0u32..1_000_000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut g = c.benchmark_group("proofs");
    g.sample_size(10);
    g.bench_function("tree_build_1m_leaves", |b| b.iter(|| Tree::new(leaves.clone())));
    let tree = Tree::new(leaves.clone());
    g.throughput(Throughput::Elements(1));
    g.sample_size(100);
    g.bench_function("inclusion_proof_in_1m", |b| {
        b.iter(|| tree.inclusion_proof(777_777, 1_000_000))
    });
    g.bench_function("consistency_proof_in_1m", |b| {
        b.iter(|| tree.consistency_proof(333_333, 1_000_000))
    });
    g.finish();
}

criterion_group!(benches, append_cost, verify_cost, proof_cost);
criterion_main!(benches);

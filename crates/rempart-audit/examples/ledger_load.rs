//! End-to-end ledger throughput on the embedded store: concurrent callers append realistic
//! records (each awaiting its own durable commit, checkpoints every 1,000 records), then the
//! whole ledger is verified.
//!
//! ```text
//! cargo run --release -p rempart-audit --example ledger_load -- [RECORDS] [CALLERS] [SUBJECTS]
//! ```

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rempart_audit::{Draft, Ledger, LedgerOptions, MasterKey, Signer};
use rempart_model::SystemClock;
use rempart_store::{LedgerStore, SqliteStore};

/// The allocator the `rempart` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let records = args.first().copied().unwrap_or(200_000);
    let callers = args.get(1).copied().unwrap_or(256);
    let subjects = args.get(2).copied().unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("ledger.db")).await.unwrap());
    let signer = Signer::generate("rempart/bench").unwrap();
    let ledger = Ledger::open(
        store.clone() as Arc<dyn LedgerStore>,
        MasterKey::from_secret(&[5; 32]),
        signer.clone(),
        LedgerOptions {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            ..LedgerOptions::default()
        },
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let per_caller = records / callers;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..callers {
        let ledger = ledger.clone();
        tasks.spawn(async move {
            for i in 0..per_caller {
                let n = c * per_caller + i;
                let user = format!("user{}", n % subjects);
                let payload = serde_json::json!({
                    "alert": format!("0193b5c0-{n:04x}-7000-8000-000000000000"),
                    "rule_id": "5ef9853e-4d0e-4a70-846f-a9ca37d876da",
                    "rule_title": "LSASS Memory Dump with a Dumping Tool",
                    "level": "high",
                    "host": format!("ws{}.corp.example.eu", n % 500),
                    "user": user,
                    "event": format!("0193b5c0-{n:04x}-7000-8000-0000000000ff"),
                });
                let draft = Draft::new("detection", "alert.raise", payload).about(format!("user:{user}"));
                ledger.append(draft).await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let appended = per_caller * callers;
    let append_s = started.elapsed().as_secs_f64();
    ledger.close().await;
    let checkpoints = ledger.checkpoints().await.unwrap().len();
    println!(
        "appended {appended} records from {callers} concurrent callers ({subjects} subjects) in {append_s:.2} s: {:.0} appends/s, {checkpoints} checkpoints",
        appended as f64 / append_s
    );
    let started = Instant::now();
    let report = Ledger::verify(
        &(store.clone() as Arc<dyn LedgerStore>),
        vec![signer.verifier()],
        Vec::new(),
        None,
    )
    .await
    .unwrap()
    .unwrap();
    let verify_s = started.elapsed().as_secs_f64();
    println!(
        "verified {} records and {} checkpoints in {verify_s:.2} s: {:.0} records/s",
        report.records,
        report.checkpoints,
        report.records as f64 / verify_s
    );
}

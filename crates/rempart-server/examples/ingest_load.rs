//! End-to-end ingest throughput over HTTP into the embedded store.
//!
//! Starts the server in-process on loopback with a fresh SQLite store (or targets a running
//! server with `--url URL --token T`), then posts NDJSON batches of ~500-byte events from
//! concurrent clients. A batch counts when its response, sent after the events are durable,
//! arrives. Prints events/s and request latency percentiles.
//!
//! Run: `cargo run --release -p rempart-server --example ingest_load -- --events 1000000`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rempart_ingest::DecodeOptions;
use rempart_server::{AppState, auth};
use rempart_store::{Role, SqliteStore, Store};

/// The same allocator as the `rempart` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    events: usize,
    batch: usize,
    concurrency: usize,
    url: Option<String>,
    token: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        events: 500_000,
        batch: 5_000,
        concurrency: 4,
        url: None,
        token: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag needs a value");
        match flag.as_str() {
            "--events" => a.events = value().parse().expect("--events N"),
            "--batch" => a.batch = value().parse().expect("--batch N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--url" => a.url = Some(value()),
            "--token" => a.token = Some(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn body(batch: usize, offset: usize) -> String {
    let mut s = String::with_capacity(batch * 520);
    for i in offset..offset + batch {
        s.push_str(&format!(
            r#"{{"@timestamp":"2026-11-22T10:{:02}:{:02}.123Z","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WS-{:03}.corp.example.eu","SourceName":"Microsoft-Windows-Sysmon","Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd.exe /c whoami /all","ParentImage":"C:\\Windows\\explorer.exe","User":"CORP\\user{}","ProcessId":{},"ParentProcessId":4112,"Hashes":"SHA256=9F1E3A5B7C9D1E3F5A7B9C1D3E5F7A9B1C3D5E7F9A1B3C5D7E9F1A3B5C7D9E1F"}}"#,
            i / 60 % 60,
            i % 60,
            i % 500,
            i % 300,
            4000 + i
        ));
        s.push('\n');
    }
    s
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let (url, token, store) = match (&a.url, &a.token) {
        (Some(url), Some(token)) => (url.clone(), token.clone(), None),
        _ => {
            let store = Arc::new(SqliteStore::open(&dir.path().join("rempart.db")).await.unwrap());
            let token = auth::create_token(
                &*store,
                &ledger(&store).await,
                auth::By {
                    actor: "bench",
                    person: "bench",
                },
                auth::NewToken {
                    name: "bench",
                    role: Role::Ingest,
                    owner: None,
                },
            )
            .await
            .unwrap()
            .1;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let state = AppState::new(store.clone(), ledger(&store).await, DecodeOptions::default());
            #[allow(clippy::disallowed_methods, reason = "runs until the process exits")]
            tokio::spawn(rempart_server::run(
                listener,
                state,
                rempart_server::listen::Listen::plain(64 << 20),
                std::future::pending(),
            ));
            (url, token, Some(store))
        }
    };
    let batches = a.events.div_ceil(a.batch);
    let bodies: Arc<Vec<String>> = Arc::new((0..batches.min(16)).map(|b| body(a.batch, b * a.batch)).collect());
    let bytes: usize = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    println!(
        "{} events in {batches} batches of {} ({} bytes/event), {} concurrent clients, {url}",
        batches * a.batch,
        a.batch,
        bytes / a.batch,
        a.concurrency
    );
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency {
        let (client, url, token, bodies, next) =
            (client.clone(), url.clone(), token.clone(), bodies.clone(), next.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= batches {
                    return latencies;
                }
                let t = Instant::now();
                let resp = client
                    .post(format!("{url}/api/v1/events"))
                    .bearer_auth(&token)
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
                latencies.push(t.elapsed());
            }
        });
    }
    let mut latencies: Vec<Duration> = Vec::new();
    while let Some(l) = workers.join_next().await {
        latencies.extend(l.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let events = batches * a.batch;
    println!(
        "{events} events durable in {secs:.2} s: {:.0} events/s",
        events as f64 / secs
    );
    println!(
        "batch latency: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    if let Some(store) = store {
        assert_eq!(
            store.count_events().await.unwrap(),
            events as u64,
            "every acknowledged event is stored"
        );
    }
}

/// A ledger with fresh keys on the test's store.
async fn ledger(store: &Arc<SqliteStore>) -> rempart_audit::Ledger {
    rempart_audit::Ledger::open_with_fresh_keys(store.clone())
        .await
        .unwrap()
}

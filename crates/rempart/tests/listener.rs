//! The API's listener under clients that connect and never send, or send a body one byte at a
//! time: the server, run under a lowered limit on open files, keeps answering everyone else,
//! closes the silent and the slow, and counts what it closed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's limit on open files in these tests.
const FILE_LIMIT: u64 = 1024;

/// `rempart serve` under `prlimit`, with a two-second body timeout and `header_secs` to read
/// headers.
fn serve_limited(dir: &Path, header_secs: u64) -> (Child, String) {
    let config = dir.join("rempart.toml");
    std::fs::write(
        &config,
        format!("version = 1\n[server]\nheader_timeout_secs = {header_secs}\nbody_timeout_secs = 2\n"),
    )
    .unwrap();
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={FILE_LIMIT}:{FILE_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rempart"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(&config)
        .env_remove("REMPART_DATA_DIR");
    common::serve_args(command, &["serve", "--listen", "127.0.0.1:0"])
}

/// A client on another loopback address than the silent ones.
fn other_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        // A connection per request, closed by the client: one kept alive would sit idle while
        // a test waits, and the server's header timeout would close it and count it (as `idle`)
        // among the test's own sockets.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of one metric line, 0 when absent.
async fn metric(client: &reqwest::Client, addr: &str, token: &str, line: &str) -> u64 {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the server closes `s` within `within` (a read returns end of file or fails).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    answer_and_close(s, within).await.is_some()
}

/// What the server sent before it closed `s` within `within` (`None`: it stayed open).
async fn answer_and_close(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut b = [0u8; 1024];
    let mut answer = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut b)).await {
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&answer).into_owned()),
            // An answer (a 408 to a cut-off body): read on to the close.
            Ok(Ok(n)) => answer.extend_from_slice(&b[..n]),
            Err(_) => return None,
        }
    }
}

/// A 408 in the API's error shape, telling the client to close.
fn assert_body_timeout(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
}

/// Silent sockets to open: 20,000, or as many as this test process may open beside its own
/// files when its limit cannot be raised that far; never fewer than four times the server's.
fn silent_sockets() -> usize {
    const WANTED: u64 = 20_000;
    const OWN: u64 = 512;
    // Raising the hard limit needs the privilege to (root has it); the soft one goes up to it.
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, WANTED + OWN, WANTED + OWN);
    let limit = rlimit::increase_nofile_limit(WANTED + OWN).unwrap_or(FILE_LIMIT);
    let count = WANTED.min(limit.saturating_sub(OWN));
    assert!(count >= 4 * FILE_LIMIT, "this process may open only {limit} files");
    eprintln!("{count} silent sockets");
    count as usize
}

/// Up to 20,000 sockets that never send a byte (about 20 times the server's file limit), all
/// from one address: the server keeps its per-address share (256) open and closes the rest at
/// once, so it never runs out of file descriptors; a client on another address is answered at
/// once throughout; after the header timeout every silent socket is closed, and each closure is
/// counted once under its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_cannot_make_the_api_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::token(dir.path(), "admin", "limits");
    let (mut child, addr) = serve_limited(dir.path(), 15);
    let client = other_client();

    let silent_count = silent_sockets();
    let mut silent = Vec::with_capacity(silent_count);
    for _ in 0..silent_count {
        silent.push(TcpStream::connect(&addr).await.unwrap());
    }
    let started = Instant::now();
    let health = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // At most 256 kept (the default per-address cap, under the 768 the file limit leaves): the
    // server never holds more files than its limit, however many sockets come.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id())).unwrap().count() as u64;
    assert!(fds < FILE_LIMIT, "{fds} files open");

    // Every silent socket is closed: the excess as soon as accepted, the kept ones by the
    // header timeout.
    let closes = silent.iter_mut().map(|s| closed_within(s, Duration::from_secs(90)));
    let closed = futures_util::future::join_all(closes).await;
    assert!(closed.iter().all(|c| *c), "a silent socket stayed open");
    let closed = |reason: &'static str| {
        let line = format!("rempart_connections_closed_total{{listener=\"http\",reason=\"{reason}\"}}");
        let (client, addr, token) = (&client, &addr, &token);
        async move { metric(client, addr, token, &line).await }
    };
    let (refused, idle) = (closed("peer").await, closed("idle").await);
    // Each is counted once, under its reason. (How many the server kept depends on how fast it
    // accepted: one kept early may time out while the last are still arriving, and its place
    // goes to a later one.)
    assert_eq!(refused + idle, silent_count as u64, "{refused} refused, {idle} idle");
    assert!(idle >= 256, "{idle} closed as idle: the per-address share was kept");
    assert!(refused >= silent_count as u64 / 2, "{refused} refused at once");
    let health = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A body that stops half way is cut off after the two-second pause, and a body trickled a
/// byte at a time (never pausing long enough for that) is cut off by its deadline: twice the
/// pause plus 200,000 bytes at 64 KiB/s, so after 2 × 2 + 3 seconds, not the hours the trickle
/// would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_trickled_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let token = common::token(dir.path(), "ingest", "slow");
    let (mut child, addr) = serve_limited(dir.path(), 2);
    let head = |length: usize| {
        format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {length}\r\n\r\n"
        )
    };

    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled.write_all(head(1000).as_bytes()).await.unwrap();
    stalled.write_all(b"{\"message\":\"half").await.unwrap();
    let started = Instant::now();
    let answer = answer_and_close(&mut stalled, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert_body_timeout(answer.as_deref().expect("the stalled body's connection was closed"));
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );

    let mut trickled = TcpStream::connect(&addr).await.unwrap();
    trickled.write_all(head(200_000).as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    while started.elapsed() < Duration::from_secs(15) {
        if trickled.write_all(b"x").await.is_err() {
            cut_off = Some(String::new());
            break;
        }
        let mut b = [0u8; 512];
        // An answer, an end of file or an error: the server cut the body off.
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(500), trickled.read(&mut b)).await {
            let n = read.unwrap_or(0);
            let rest = answer_and_close(&mut trickled, Duration::from_secs(5))
                .await
                .unwrap_or_default();
            cut_off = Some(format!("{}{rest}", String::from_utf8_lossy(&b[..n])));
            break;
        }
    }
    let took = started.elapsed();
    let answer = cut_off.unwrap_or_else(|| panic!("a trickled body was held for {took:?}"));
    if !answer.is_empty() {
        assert_body_timeout(&answer);
    }
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(11),
        "{took:?}"
    );

    // Nothing of either body was stored, and the server still takes a whole one.
    let client = other_client();
    let stored = client
        .post(format!("http://{addr}/api/v1/events"))
        .bearer_auth(&token)
        .header("content-type", "application/x-ndjson")
        .body("{\"message\":\"whole\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200, "{}", stored.text().await.unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
}

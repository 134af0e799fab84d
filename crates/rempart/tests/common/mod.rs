//! Helpers shared by the binary's tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    reason = "tests: a failed unwrap is a failed test; each test file uses some helpers"
)]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The binary on a given data directory.
pub fn rempart(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rempart"));
    c.arg("--data-dir").arg(data_dir).env_remove("REMPART_DATA_DIR");
    c
}

pub fn data() -> PathBuf {
    std::env::var_os("REMPART_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The PostgreSQL the tests use: `REMPART_TEST_POSTGRES`, which `scripts/test` makes sure
/// answers (default `postgres://postgres@127.0.0.1:5432/test`).
pub fn postgres_url() -> String {
    std::env::var("REMPART_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Drops a test's schema and everything in it.
pub fn drop_schema(schema: &str) {
    let _ = Command::new("psql")
        .arg(postgres_url())
        .args(["-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .output();
}

/// Creates a token with `role` named `name` in the instance at `data_dir`, for the person
/// `name`; its secret.
pub fn token(data_dir: &Path, role: &str, name: &str) -> String {
    let out = rempart(data_dir)
        .args([
            "--json", "tokens", "create", "--role", role, "--name", name, "--owner", name,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts `rempart serve` on an ephemeral port; returns the child and its address.
pub fn serve(data_dir: &Path) -> (Child, String) {
    serve_with(rempart(data_dir))
}

/// Starts `serve` from a prepared command (extra environment, global options).
pub fn serve_with(command: Command) -> (Child, String) {
    serve_args(command, &["serve", "--listen", "127.0.0.1:0"])
}

/// Starts `command` with `args` (a `serve` listening on `127.0.0.1:0`); returns the child and
/// the address it reports.
pub fn serve_args(command: Command, args: &[&str]) -> (Child, String) {
    let (child, addr, _) = serve_logged(command, args);
    (child, addr)
}

/// [`serve_args`], also keeping what the server writes to its standard error (its log).
pub fn serve_logged(mut command: Command, args: &[&str]) -> (Child, String, std::sync::Arc<std::sync::Mutex<String>>) {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = log.clone();
    let mut child = command
        .args(args)
        .env("REMPART_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Read stderr on a thread (and keep draining it, so the server never blocks on a full
    // pipe); hand over the address from the "API listening" line.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = kept.lock() {
                l.push_str(&line);
                l.push('\n');
            }
            if line.contains("API listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(addr) => addr,
        Err(e) => {
            let _ = child.kill();
            panic!("server did not report its address: {e}");
        }
    };
    (child, addr, log)
}

/// The kinds of the ledger's records, oldest first (`audit list --json`).
pub fn ledger_kinds(mut command: Command) -> Vec<String> {
    let out = command
        .args(["--json", "audit", "list", "--last", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Posts `event` to a running server every half second, up to 20 s, until the answer says one
/// alert was raised (a rule or an indicator that the server picks up without a restart).
pub fn post_until_alerted(addr: &str, token: &str, event: &str) -> bool {
    post_until_alerted_from(addr, token, "http", event)
}

/// The same, with the events' `source`.
pub fn post_until_alerted_from(addr: &str, token: &str, source: &str, event: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..40 {
            let v: serde_json::Value = client
                .post(format!("http://{addr}/api/v1/events?source={source}"))
                .bearer_auth(token)
                .body(event.to_owned())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v["alerts"].as_u64() == Some(1) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        false
    })
}

/// Four clients posting 500-event batches (`{"seq": N}` each) to a server for `round`; once
/// eight batches are acknowledged, `interrupt` is called on the server while the others are
/// still being written. Returns the `seq` of every acknowledged event.
pub fn stream_and_interrupt(
    rt: &tokio::runtime::Runtime,
    child: &mut Child,
    addr: &str,
    token: &str,
    round: u64,
    interrupt: impl FnOnce(&mut Child),
) -> Vec<u64> {
    let mut interrupt = Some(interrupt);
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut acked = Vec::new();
        let mut inflight = tokio::task::JoinSet::new();
        let mut next = 0u64;
        loop {
            while next < 40 && inflight.len() < 4 {
                let first = round * 1_000_000 + next * 500;
                let body: String = (first..first + 500)
                    .map(|seq| format!("{{\"seq\":{seq},\"pad\":\"{}\"}}\n", "x".repeat(200)))
                    .collect();
                let req = client
                    .post(format!("http://{addr}/api/v1/events"))
                    .bearer_auth(token)
                    .body(body);
                inflight.spawn(async move { (first, req.send().await) });
                next += 1;
            }
            let Some(done) = inflight.join_next().await else { break };
            if let (first, Ok(resp)) = done.unwrap()
                && resp.status() == 200
            {
                acked.extend(first..first + 500);
            }
            if acked.len() >= 8 * 500
                && let Some(interrupt) = interrupt.take()
            {
                interrupt(child);
            }
        }
        assert!(interrupt.is_none(), "the server was never interrupted");
        acked
    })
}

/// The Prometheus text of the server at `addr` (`host:port`), read with `token`.
pub async fn metrics(addr: &str, token: &str) -> String {
    reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Runs `openapi_check.py` over `checks` against `../shared/data/openai/openapi.yaml.gz`: every
/// document must be valid against its schema.
pub fn check_against_openai_s_description(checks: &[Value]) {
    let python = std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openapi_check.py");
    let child = Command::new(&python)
        .arg(&script)
        .arg(data().join("openai/openapi.yaml.gz"))
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(checks.iter().map(|c| format!("{c}\n")).collect::<String>());
    assert!(
        child.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let stderr = String::from_utf8_lossy(&child.stderr).to_string();
    assert!(
        stderr.contains(&format!("checked {} documents, 0 violations", checks.len())),
        "{stderr}"
    );
}

trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: String) -> std::process::Output;
}

impl OutputWithStdin for Command {
    fn output_with_stdin(&mut self, input: String) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }
}

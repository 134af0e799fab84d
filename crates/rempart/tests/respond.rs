//! Response end to end on loopback: `rempart serve` with Sigma rules, playbooks and real
//! connectors (a Slack-format chat webhook and a signed webhook), a receiver that checks each
//! signature, and people approving, rejecting or letting approvals time out over the API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the receiver runs on the test's runtime"
)]

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{ledger_kinds, rempart, serve_with};
use serde_json::{Value, json};

const KEY: &str = "webhook-test-key-0123456789";

/// What the receiver was sent.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    body: Value,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Delivery>>>,
    /// Deliveries refused: a bad signature, a stale timestamp, or an id seen before.
    refused: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .route("/chat", axum::routing::post(chat))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, addr)
    }

    fn on(&self, path: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.path == path)
            .map(|d| d.body.clone())
            .collect()
    }
}

/// A webhook receiver as the documentation tells one to be written: check the signature over
/// timestamp and body, refuse old timestamps and ids already acted on.
async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let verdict = rempart_respond::connectors::verify(
        KEY.as_bytes(),
        &h("x-rempart-timestamp"),
        &body,
        &h("x-rempart-signature"),
        jiff::Timestamp::now(),
        300,
    );
    if let Err(e) = verdict {
        r.refused.lock().unwrap().push(e.to_string());
        return StatusCode::UNAUTHORIZED;
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["id"], h("x-rempart-id"), "the id header is the body's id");
    let mut seen = r.seen.lock().unwrap();
    if seen.iter().any(|d| d.body["id"] == body["id"]) {
        r.refused.lock().unwrap().push(format!("replay of {}", body["id"]));
        return StatusCode::CONFLICT;
    }
    seen.push(Delivery {
        path: "/hook".into(),
        body,
    });
    StatusCode::OK
}

async fn chat(State(r): State<Receiver>, body: Bytes) -> StatusCode {
    r.seen.lock().unwrap().push(Delivery {
        path: "/chat".into(),
        body: serde_json::from_slice(&body).unwrap(),
    });
    StatusCode::OK
}

fn rule(id: &str, port: u16) -> String {
    format!(
        "title: Connection to port {port}\nid: {id}\nlevel: high\ntags: [attack.command_and_control, attack.t1571]\n\
         logsource: {{product: windows, category: network_connection}}\n\
         detection:\n    selection:\n        DestinationPort: {port}\n    condition: selection\n"
    )
}

const RULE_A: &str = "5b0e1f1a-4d7e-4a51-9d0e-6f7f1c2a0a01";
const RULE_B: &str = "5b0e1f1a-4d7e-4a51-9d0e-6f7f1c2a0a02";
const RULE_C: &str = "5b0e1f1a-4d7e-4a51-9d0e-6f7f1c2a0a03";

fn contain(id: &str, rule: &str, timeout: &str) -> String {
    format!(
        r#"id: {id}
name: Contain command and control
trigger:
  on: [created]
  when: {{ severity: high, rules: ["{rule}"] }}
steps:
  - id: page
    action: notify
    connector: chat
    with: {{ message: "{{{{ incident.severity }}}} incident {{{{ incident.id }}}}: {{{{ incident.title }}}}" }}
  - id: block
    action: block_ip
    connector: soar
    exclude: [10.0.0.0/8]
    approval: {{ role: approver, approvers: 1, timeout: {timeout}, on_timeout: reject }}
  - id: escalate
    action: notify
    connector: chat
    when: {{ outcome: {{ block: [rejected, timed_out] }} }}
    with: {{ message: "block refused for {{{{ incident.id }}}}" }}
"#
    )
}

const BURST: &str = r#"id: burst
trigger:
  on: [created]
  when: { rules: ["Connection to port 6666"] }
limits: { per_hour: { block_ip: 5 }, runs_per_hour: 50 }
steps:
  - id: block
    action: block_ip
    connector: soar
    exclude: [10.0.0.0/8]
    approval: none
"#;

/// Run by hand only (triage is not automatic here): a block that two people must approve.
const TWO_PEOPLE: &str = r#"id: two-people
trigger:
  on: [triaged]
  when: { rules: ["Connection to port 4444"] }
steps:
  - id: block
    action: block_ip
    connector: soar
    exclude: [10.0.0.0/8]
    approval: { role: approver, approvers: 2, timeout: 30m, on_timeout: reject }
"#;

struct Server {
    child: Child,
    addr: String,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Server {
    fn start(dir: &Path, receiver: &str) -> Server {
        let rules = dir.join("rules");
        let playbooks = dir.join("playbooks");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::create_dir_all(&playbooks).unwrap();
        std::fs::write(rules.join("a.yml"), rule(RULE_A, 4444)).unwrap();
        std::fs::write(rules.join("b.yml"), rule(RULE_B, 5555)).unwrap();
        std::fs::write(rules.join("c.yml"), rule(RULE_C, 6666)).unwrap();
        std::fs::write(
            playbooks.join("contain.yml"),
            contain("contain-c2", "Connection to port 4444", "30m"),
        )
        .unwrap();
        std::fs::write(
            playbooks.join("hurry.yml"),
            contain("contain-hurry", "Connection to port 5555", "2s"),
        )
        .unwrap();
        std::fs::write(playbooks.join("burst.yml"), BURST).unwrap();
        std::fs::write(playbooks.join("two.yml"), TWO_PEOPLE).unwrap();
        let config = dir.join("rempart.toml");
        std::fs::write(
            &config,
            format!(
                "version = 1\n[detection]\nrules = [\"{}\"]\n[triage]\nauto = false\n\
                 [respond]\nplaybooks = [\"{}\"]\nblockable_ranges = [\"192.168.99.0/24\"]\n\
                 [connectors.chat]\ntype = \"slack\"\nurl = \"http://{receiver}/chat\"\n\
                 [connectors.soar]\ntype = \"webhook\"\nurl = \"http://{receiver}/hook\"\nsecret_env = \"REMPART_TEST_SOAR_KEY\"\n\
                 [regulatory]\nnis2 = \"essential\"\ndora = true\ngdpr = true\nnotify = \"chat\"\norganisation = \"Example Bank SA\"\nmember_state = \"FR\"\n",
                rules.display(),
                playbooks.display()
            ),
        )
        .unwrap();
        // The playbooks check against this configuration before anything runs.
        let out = rempart(dir)
            .arg("--config")
            .arg(&config)
            .args(["playbooks", "check"])
            .arg(&playbooks)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let mut tokens = std::collections::HashMap::new();
        for (name, role) in [
            ("ingest", "ingest"),
            ("viewer", "viewer"),
            ("bob", "approver"),
            ("carol", "approver"),
            ("admin", "admin"),
        ] {
            let out = rempart(dir)
                .args([
                    "--json", "tokens", "create", "--role", role, "--name", name, "--owner", name,
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let secret = serde_json::from_slice::<Value>(&out.stdout).unwrap()["secret"]
                .as_str()
                .unwrap()
                .to_owned();
            tokens.insert(name, secret);
        }
        let mut c = rempart(dir);
        c.arg("--config").arg(&config).env("REMPART_TEST_SOAR_KEY", KEY);
        let (child, addr) = serve_with(c);
        Server { child, addr, tokens }
    }

    async fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let client = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let mut rb = if method == "GET" {
            client.get(url)
        } else {
            client.post(url)
        };
        rb = rb.bearer_auth(&self.tokens[who]);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, who: &str, path: &str) -> Value {
        let (status, body) = self.call(who, "GET", path, None).await;
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    async fn ingest(&self, events: &[Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        let resp = reqwest::Client::new()
            .post(format!("http://{}/api/v1/events", self.addr))
            .bearer_auth(&self.tokens["ingest"])
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// Waits up to 20 s for `check` to hold on `GET path`.
    async fn until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..80 {
            let v = self.get("viewer", path).await;
            if check(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "GET {path} never satisfied the check: {}",
            self.get("viewer", path).await
        );
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(self.child.wait().unwrap().success());
    }
}

/// A Sysmon network connection from `host` (address `src`) to `dst`:`port`.
fn connection(host: &str, user: &str, src: &str, dst: &str, port: u16) -> Value {
    json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": host,
            "TimeCreated": {"#attributes": {"SystemTime": jiff::Timestamp::now().to_string()}}
        },
        "EventData": {"Image": "C:\\Windows\\System32\\rundll32.exe", "User": user,
                      "SourceIp": src, "DestinationIp": dst, "DestinationPort": port.to_string()}
    }})
}

/// A receiver, and a server whose connectors point at it, on a fresh instance (the temporary
/// directory lives as long as the returned guard).
async fn setup() -> (Receiver, tempfile::TempDir, std::path::PathBuf, Server) {
    let (receiver, raddr) = Receiver::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("instance");
    let server = Server::start(&dir, &raddr);
    (receiver, tmp, dir, server)
}

fn pending(v: &Value) -> Vec<Value> {
    v["approvals"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_notifies_at_once_and_blocks_only_after_a_second_person_approves() {
    let (receiver, _tmp, dir, server) = setup().await;

    // An incident opens: the notification goes out at once, the block waits.
    server
        .ingest(&[connection(
            "WS-A.corp.example.eu",
            "CORP\\a.user",
            "10.1.1.5",
            "203.0.113.50",
            4444,
        )])
        .await;
    let q = server.until("/api/v1/approvals", |v| pending(v).len() == 1).await;
    let approval = pending(&q)[0].clone();
    let incident = approval["incident"].as_str().unwrap().to_owned();
    let chat = receiver.on("/chat");
    assert_eq!(chat.len(), 1, "{chat:?}");
    let text = chat[0]["text"].as_str().unwrap();
    assert!(text.starts_with(&format!("high incident {incident}: ")), "{text}");
    assert!(receiver.on("/hook").is_empty(), "nothing blocked before approval");
    assert_eq!(approval["step"], "block");
    assert_eq!(approval["requested_by"], "rempart");
    let proposed = approval["actions"].as_array().unwrap();
    assert_eq!(
        proposed.len(),
        1,
        "the internal source address is excluded: {proposed:?}"
    );
    assert_eq!(proposed[0]["target"], "203.0.113.50");
    assert!(
        proposed[0]["prepared"].as_str().unwrap().contains("POST http://"),
        "{proposed:?}"
    );

    // A viewer cannot decide; an approver can.
    let id = approval["id"].as_str().unwrap();
    let (status, _) = server
        .call(
            "viewer",
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            "bob",
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(json!({"comment": "confirmed C2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["status"], "approved");
    assert_eq!(body["run"]["status"], "completed", "{body}");
    let hook = receiver.on("/hook");
    assert_eq!(hook.len(), 1, "{hook:?}");
    assert_eq!(hook[0]["action"], "block_ip");
    assert_eq!(hook[0]["target"], "203.0.113.50");
    assert_eq!(hook[0]["incident"], incident.as_str());
    assert!(
        receiver.refused.lock().unwrap().is_empty(),
        "{:?}",
        receiver.refused.lock().unwrap()
    );
    let (status, _) = server
        .call(
            "carol",
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a decided approval takes no more votes");

    // Four eyes: who asks for a run cannot approve it.
    let (status, body) = server
        .call(
            "admin",
            "POST",
            "/api/v1/playbooks/contain-c2/run",
            Some(json!({"incident": incident})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run"]["status"], "waiting");
    let q = server.until("/api/v1/approvals", |v| pending(v).len() == 1).await;
    let id = pending(&q)[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            "admin",
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("four eyes"),
        "{body}"
    );
    let (status, _) = server
        .call(
            "carol",
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        receiver.on("/hook").len(),
        2,
        "the second run blocked under its own key"
    );

    // A dry run shows what would go out and sends nothing.
    let (status, body) = server
        .call(
            "admin",
            "POST",
            "/api/v1/playbooks/contain-c2/run",
            Some(json!({"incident": incident, "dry_run": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let actions = body["run"]["actions"].as_array().unwrap();
    assert!(actions.iter().all(|a| a["state"] == "dry_run"), "{actions:?}");
    assert!(
        actions[1]["detail"].as_str().unwrap().starts_with("would POST http://"),
        "{actions:?}"
    );
    assert_eq!(receiver.on("/chat").len(), 2, "one page per live run");
    assert_eq!(receiver.on("/hook").len(), 2);

    server.stop();
    let kinds = ledger_kinds(rempart(&dir));
    for k in [
        "playbook.run",
        "response.action",
        "approval.request",
        "approval.decision",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no `{k}` record in {kinds:?}");
    }
    // Start and end of both runs' notifications and blocks.
    assert_eq!(kinds.iter().filter(|k| *k == "response.action").count(), 8, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_unanswered_block_never_runs_and_escalates() {
    let (receiver, _tmp, dir, server) = setup().await;

    server
        .ingest(&[connection(
            "WS-B.corp.example.eu",
            "CORP\\b.user",
            "10.1.2.6",
            "198.51.100.77",
            4444,
        )])
        .await;
    let q = server.until("/api/v1/approvals", |v| pending(v).len() == 1).await;
    let id = pending(&q)[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            "bob",
            "POST",
            &format!("/api/v1/approvals/{id}/reject"),
            Some(json!({"comment": "a partner's server"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run"]["outcomes"]["block"], "rejected");
    assert_eq!(body["run"]["outcomes"]["escalate"], "succeeded");

    // The second playbook gives its approvers two seconds.
    server
        .ingest(&[connection(
            "WS-C.corp.example.eu",
            "CORP\\c.user",
            "10.1.3.7",
            "192.0.2.99",
            5555,
        )])
        .await;
    let timed_out = server
        .until("/api/v1/approvals?status=timed_out", |v| pending(v).len() == 1)
        .await;
    let run_id = pending(&timed_out)[0]["run"].as_str().unwrap().to_owned();
    let run = server
        .until(&format!("/api/v1/runs/{run_id}"), |v| v["run"]["status"] == "completed")
        .await;
    assert_eq!(run["run"]["outcomes"]["block"], "timed_out");
    assert_eq!(run["run"]["outcomes"]["escalate"], "succeeded");

    assert!(receiver.on("/hook").is_empty(), "no block went out");
    let chat: Vec<String> = receiver
        .on("/chat")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        chat.iter().filter(|t| t.starts_with("block refused for ")).count(),
        2,
        "{chat:?}"
    );
    server.stop();
    let kinds = ledger_kinds(rempart(&dir));
    assert_eq!(
        kinds.iter().filter(|k| *k == "approval.decision").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_under_a_burst_of_a_hundred_incidents() {
    let (receiver, _tmp, _dir, server) = setup().await;
    let events: Vec<Value> = (0..100)
        .map(|i| {
            connection(
                &format!("WS-{i:03}.corp.example.eu"),
                &format!("CORP\\user{i}"),
                &format!("10.9.{}.{}", i / 200, i % 200 + 1),
                &format!("203.0.{}.{}", 100 + i / 200, i % 200 + 1),
                6666,
            )
        })
        .collect();
    server.ingest(&events).await;
    let runs = server
        .until("/api/v1/runs?limit=1000", |v| {
            v["runs"].as_array().unwrap().len() == 50
                && v["runs"].as_array().unwrap().iter().all(|r| r["status"] == "completed")
        })
        .await;
    let incidents = server.get("viewer", "/api/v1/incidents?limit=1000").await;
    assert_eq!(incidents["incidents"].as_array().unwrap().len(), 100);
    // 50 runs (runs_per_hour), 5 blocks (per_hour), the rest stopped by the limit.
    let states: Vec<String> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().clone())
        .map(|a| a["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states.iter().filter(|s| *s == "succeeded").count(), 5, "{states:?}");
    assert_eq!(states.iter().filter(|s| *s == "limited").count(), 45, "{states:?}");
    assert_eq!(receiver.on("/hook").len(), 5);
    // Give any straggler a moment: nothing more goes out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.on("/hook").len(), 5);
    assert_eq!(
        server.get("viewer", "/api/v1/runs?limit=1000").await["runs"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    server.stop();
}

/// A target no response may act on (the cloud metadata address, one of the institution's own
/// addresses; taken from a log) is skipped and said so; the step's other targets (a public
/// address, an own address in `blockable_ranges`) are blocked and the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_target_is_skipped_and_the_run_goes_on() {
    let (receiver, _tmp, _dir, server) = setup().await;
    let host = "WS-900.corp.example.eu";
    server
        .ingest(&[
            connection(host, r"CORP\mallory", "10.9.9.9", "169.254.169.254", 6666),
            connection(host, r"CORP\mallory", "10.9.9.9", "192.168.7.53", 6666),
            connection(host, r"CORP\mallory", "10.9.9.9", "203.0.113.77", 6666),
            connection(host, r"CORP\mallory", "10.9.9.9", "192.168.99.1", 6666),
        ])
        .await;
    let runs = server
        .until("/api/v1/runs?limit=1000", |v| {
            let runs = v["runs"].as_array().unwrap();
            !runs.is_empty()
                && runs.iter().all(|r| r["status"] == "completed")
                && runs
                    .iter()
                    .flat_map(|r| r["actions"].as_array().unwrap().clone())
                    .filter(|a| a["target"] == "169.254.169.254" || a["target"] == "192.168.99.1")
                    .count()
                    == 2
        })
        .await;
    let actions: Vec<Value> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["actions"].as_array().unwrap().clone())
        .collect();
    let of = |target: &str| {
        actions
            .iter()
            .find(|a| a["target"] == target)
            .unwrap_or_else(|| panic!("no action on {target}: {actions:?}"))
            .clone()
    };
    let refused = of("169.254.169.254");
    assert_eq!(refused["state"], "skipped", "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains("never a response target"),
        "{refused}"
    );
    let own = of("192.168.7.53");
    assert_eq!(own["state"], "skipped", "{own}");
    assert!(
        own["detail"]
            .as_str()
            .unwrap()
            .contains("`192.168.0.0/16`, one of the institution's own ranges"),
        "{own}"
    );
    assert_eq!(of("203.0.113.77")["state"], "succeeded", "{actions:?}");
    assert_eq!(of("192.168.99.1")["state"], "succeeded", "blockable: {actions:?}");
    let hooks = receiver.on("/hook");
    let sent: Vec<&str> = hooks.iter().filter_map(|h| h["target"].as_str()).collect();
    assert!(
        sent.contains(&"203.0.113.77") && sent.contains(&"192.168.99.1"),
        "{sent:?}"
    );
    assert!(
        !sent.contains(&"169.254.169.254") && !sent.contains(&"192.168.7.53"),
        "{sent:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporting_clocks_warn_and_reports_are_drafted() {
    let (receiver, _tmp, dir, server) = setup().await;
    server
        .ingest(&[connection(
            "WS-D.corp.example.eu",
            "CORP\\d.user",
            "10.1.4.8",
            "203.0.113.80",
            4444,
        )])
        .await;
    let list = server
        .until("/api/v1/incidents", |v| v["incidents"].as_array().unwrap().len() == 1)
        .await;
    let id = list["incidents"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call("viewer", "GET", &format!("/api/v1/incidents/{id}/regulatory"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["assessment"].is_null() && body["deadlines"].as_array().unwrap().is_empty(),
        "{body}"
    );

    // Aware 70 hours ago: the early warning is overdue, the notifications due within 4 hours.
    let aware = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(70);
    let (status, body) = server
        .call(
            "admin",
            "POST",
            &format!("/api/v1/incidents/{id}/regulatory"),
            Some(json!({"aware_at": aware, "nis2_significant": true, "personal_data_breach": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let state = |body: &Value, report: &str| {
        body["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["report"] == report)
            .map(|d| d["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&body, "nis2_early_warning").as_deref(), Some("overdue"));
    assert_eq!(state(&body, "nis2_notification").as_deref(), Some("due_soon"));
    assert_eq!(state(&body, "gdpr_notification").as_deref(), Some("due_soon"));
    assert_eq!(state(&body, "dora_initial"), None, "not classified under DORA");
    let chat: Vec<String> = receiver
        .on("/chat")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        chat.iter()
            .any(|t| t.starts_with(&format!("nis2_early_warning for incident {id}")) && t.contains("OVERDUE")),
        "{chat:?}"
    );
    assert_eq!(chat.iter().filter(|t| t.contains("due soon")).count(), 2, "{chat:?}");

    // Reports sent are recorded; a report the incident does not owe is refused.
    let (status, body) = server
        .call(
            "admin",
            "POST",
            &format!("/api/v1/incidents/{id}/regulatory/submissions"),
            Some(json!({"report": "nis2_early_warning", "reference": "CSIRT-2026-117"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(state(&body, "nis2_early_warning").as_deref(), Some("late"));
    let (status, _) = server
        .call(
            "admin",
            "POST",
            &format!("/api/v1/incidents/{id}/regulatory/submissions"),
            Some(json!({"report": "dora_initial"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // DORA: major with malicious access to critical services; classified now.
    let (status, body) = server
        .call(
            "admin",
            "POST",
            &format!("/api/v1/incidents/{id}/regulatory"),
            Some(json!({"dora": {"critical_services_affected": true, "malicious_unauthorised_access": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dora"]["major"], true);
    // At most 24 hours after awareness: already overdue.
    assert_eq!(state(&body, "dora_initial").as_deref(), Some("overdue"));

    // Drafts follow their templates and list what a person must complete.
    let draft = server
        .get("admin", &format!("/api/v1/incidents/{id}/reports/nis2_notification"))
        .await;
    assert_eq!(draft["report"], "nis2_notification");
    assert_eq!(draft["organisation"]["name"], "Example Bank SA");
    let iocs = draft["content"]["indicators_of_compromise"]["ip_addresses"]
        .as_array()
        .unwrap();
    assert!(iocs.contains(&json!("203.0.113.80")), "{draft}");
    assert!(draft["content"]["updates_early_warning"].is_string(), "{draft}");
    assert!(!draft["to_complete"].as_array().unwrap().is_empty());
    let (status, _) = server
        .call(
            "viewer",
            "GET",
            &format!("/api/v1/incidents/{id}/reports/gdpr_notification"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "drafts name people: analysts only");
    let resp = reqwest::Client::new()
        .get(format!("http://{}/api/v1/incidents/{id}/report.html", server.addr))
        .bearer_auth(&server.tokens["admin"])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("<h2>Reporting deadlines</h2>") && html.contains("nis2_early_warning"),
        "{html}"
    );
    assert!(html.contains("Connection to port 4444 on ws-d"), "{html}");
    let deadlines = server.get("viewer", "/api/v1/deadlines").await;
    assert_eq!(deadlines["deadlines"].as_array().unwrap().len(), 7, "{deadlines}");
    let metrics = common::metrics(&server.addr, &server.tokens["viewer"]).await;
    assert!(
        metrics
            .contains("rempart_regulatory_deadline_warnings_total{report=\"nis2_early_warning\",state=\"overdue\"} 1"),
        "{metrics}"
    );
    server.stop();
    let kinds = ledger_kinds(rempart(&dir));
    assert!(
        kinds.iter().filter(|k| *k == "regulatory.update").count() >= 4,
        "{kinds:?}"
    );
    // Reading the clocks from the command line needs no connector secret.
    let out = rempart(&dir)
        .arg("--config")
        .arg(dir.join("rempart.toml"))
        .args(["--json", "incidents", "deadlines"])
        .env_remove("REMPART_TEST_SOAR_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
}

/// The issue's replay of a sock puppet: approvals count people, not tokens. The admin who asks
/// for a run cannot approve it with a token it creates for itself, nor with one it creates
/// "for" someone else once the approval is open; on the command line the voter is the
/// operating-system account, so `USER=` changes nobody; two people are needed and are enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_count_people_not_tokens() {
    let (receiver, _tmp, dir, server) = setup().await;
    // Token times are kept to the second, and a token made in the same second as an approval
    // counts as made after it: the people's tokens are a second older than the approval.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server
        .ingest(&[connection(
            "WS-P.corp.example.eu",
            "CORP\\p.user",
            "10.1.1.9",
            "203.0.113.77",
            4444,
        )])
        .await;
    let q = server.until("/api/v1/approvals", |v| pending(v).len() == 1).await;
    let incident = pending(&q)[0]["incident"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            "admin",
            "POST",
            "/api/v1/playbooks/two-people/run",
            Some(json!({"incident": incident})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q = server.until("/api/v1/approvals", |v| pending(v).len() == 2).await;
    let approval = pending(&q).into_iter().find(|a| a["playbook"] == "two-people").unwrap();
    assert_eq!(approval["requested_by"], "admin", "the requester is the token's person");
    let id = approval["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/approvals/{id}/approve");

    // The admin makes itself an approver token: still the admin, who asked for the run.
    let new_token = |owner: Option<&str>| {
        let mut body = json!({"role": "approver", "name": "second pair"});
        if let Some(o) = owner {
            body["owner"] = json!(o);
        }
        body
    };
    let (status, body) = server
        .call("admin", "POST", "/api/v1/tokens", Some(new_token(None)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token"]["owner"], "admin");
    let own = body["secret"].as_str().unwrap().to_owned();
    // … and one "for" somebody else, made after the approval opened.
    let (status, body) = server
        .call("admin", "POST", "/api/v1/tokens", Some(new_token(Some("zed"))))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let puppet = body["secret"].as_str().unwrap().to_owned();
    let vote_with = |secret: String| {
        let url = format!("http://{}{approve}", server.addr);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(secret)
                .json(&json!({"comment": "looks right"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = vote_with(own).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("four eyes"),
        "{body}"
    );
    let (status, body) = vote_with(puppet).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a second person"),
        "{body}"
    );

    // On the command line, `USER` names nobody: the second vote is the same account's.
    let cli_vote = |user: &str| {
        rempart(&dir)
            .arg("--config")
            .arg(dir.join("rempart.toml"))
            .env("REMPART_TEST_SOAR_KEY", KEY)
            .env("USER", user)
            .env("LOGNAME", user)
            .args(["approvals", "approve", &id, "--comment", "ok"])
            .output()
            .unwrap()
    };
    let first = cli_vote("alice");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = cli_vote("bob");
    assert!(
        !second.status.success(),
        "a second vote by the same account was counted"
    );
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("has already voted"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let state = server.get("viewer", "/api/v1/approvals").await;
    let votes = pending(&state).into_iter().find(|a| a["id"] == id.as_str()).unwrap()["votes"].clone();
    let voters: Vec<&str> = votes
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["actor"].as_str().unwrap())
        .collect();
    assert_eq!(voters.len(), 1, "{votes}");
    assert!(voters[0].starts_with("cli:") && !voters[0].contains("alice"), "{votes}");

    // A second person decides it.
    let hooks = receiver.on("/hook").len();
    let (status, body) = server
        .call("carol", "POST", &approve, Some(json!({"comment": "agreed"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["status"], "approved", "{body}");
    for _ in 0..40 {
        if receiver.on("/hook").len() > hooks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        receiver.on("/hook").len(),
        hooks + 1,
        "the block went out once approved"
    );
    server.stop();
}

//! Connectors against real servers on loopback: chat formats, EDR, ticket and directory APIs,
//! retries and refusals, a real program for the command connector, and a real SMTP server
//! (aiosmtpd, installed by `scripts/test`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "tests: a failed unwrap is a failed test; the servers run on the test's runtime"
)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use rempart_config::gateway::Secret;
use rempart_config::{ChatFormat, Connector, ConnectorKind, SmtpTls};
use rempart_model::{ActionKind, EventId};
use rempart_respond::connectors::{ActionRequest, ConnectorError, Connectors};
use serde_json::Value;

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    auth: Option<String>,
    idempotency: Option<String>,
    body: Value,
}

#[derive(Debug, Clone, Default)]
struct Api {
    hits: Arc<Mutex<Vec<Hit>>>,
    flaky: Arc<Mutex<u32>>,
}

async fn any(
    State(api): State<Api>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    api.hits.lock().unwrap().push(Hit {
        path: format!("/{path}"),
        auth: h("authorization"),
        idempotency: h("idempotency-key"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    match path.as_str() {
        "bad" => (StatusCode::BAD_REQUEST, "no such machine".into()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, String::new())
        }
        "flaky" => {
            let mut n = api.flaky.lock().unwrap();
            *n += 1;
            if *n == 1 {
                (StatusCode::SERVICE_UNAVAILABLE, "busy".into())
            } else {
                (StatusCode::OK, "{\"id\":\"TICKET-7\"}".into())
            }
        }
        _ => (StatusCode::OK, "{\"ok\":true}".into()),
    }
}

async fn start() -> (Api, String) {
    let api = Api::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(any))
        .with_state(api.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (api, format!("http://{addr}"))
}

fn connectors(items: Vec<(&str, ConnectorKind, bool, u64)>) -> Connectors {
    let map: BTreeMap<String, Connector> = items
        .into_iter()
        .map(|(name, kind, dry_run, timeout_secs)| {
            (
                name.to_owned(),
                Connector {
                    name: name.to_owned(),
                    kind,
                    dry_run,
                    timeout_secs,
                },
            )
        })
        .collect();
    Connectors::new(&map).unwrap()
}

fn request<'a>(
    action: ActionKind,
    target: Option<&'a str>,
    params: &'a BTreeMap<String, String>,
    undo: bool,
) -> ActionRequest<'a> {
    ActionRequest {
        key: "run-1:step:target",
        action,
        undo,
        target,
        params,
        incident: EventId::generate(),
        run: EventId::generate(),
        playbook: "test",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_take_each_service_s_format() {
    let (api, base) = start().await;
    let c = connectors(vec![
        (
            "slack",
            ConnectorKind::Chat {
                url: format!("{base}/slack"),
                format: ChatFormat::Slack,
            },
            false,
            5,
        ),
        (
            "teams",
            ConnectorKind::Chat {
                url: format!("{base}/teams"),
                format: ChatFormat::Teams,
            },
            false,
            5,
        ),
        (
            "matrix",
            ConnectorKind::Chat {
                url: format!("{base}/matrix"),
                format: ChatFormat::Matrix,
            },
            false,
            5,
        ),
    ]);
    let params = BTreeMap::from([("message".to_owned(), "incident 42 is high".to_owned())]);
    for name in ["slack", "teams", "matrix"] {
        let r = c
            .execute(
                name,
                &request(ActionKind::Notify, None, &params, false),
                Timestamp::now(),
            )
            .await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
    let hits = api.hits.lock().unwrap().clone();
    assert_eq!(
        hits[0].body,
        serde_json::json!({"text": "incident 42 is high", "unfurl_links": false, "unfurl_media": false})
    );
    let card = &hits[1].body["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"][0]["text"], "incident 42 is high");
    assert_eq!(
        hits[2].body,
        serde_json::json!({"text": "incident 42 is high", "username": "Rempart"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edr_ticket_and_directory_apis_get_their_paths_tokens_and_keys() {
    let (api, base) = start().await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "edr-token-1\n").unwrap();
    let c = connectors(vec![
        (
            "edr",
            ConnectorKind::Edr {
                url: format!("{base}/edr/"),
                token: Secret::File(token_file.path().into()),
            },
            false,
            5,
        ),
        (
            "tickets",
            ConnectorKind::Ticket {
                url: format!("{base}/flaky"),
                token: Secret::None,
            },
            false,
            5,
        ),
        (
            "ad",
            ConnectorKind::Directory {
                url: format!("{base}/ad"),
                token: Secret::File(token_file.path().into()),
            },
            false,
            5,
        ),
    ]);
    let p = BTreeMap::new();
    c.execute(
        "edr",
        &request(ActionKind::IsolateHost, Some("ws-07.corp"), &p, false),
        Timestamp::now(),
    )
    .await
    .unwrap();
    c.execute(
        "edr",
        &request(ActionKind::IsolateHost, Some("ws-07.corp"), &p, true),
        Timestamp::now(),
    )
    .await
    .unwrap();
    c.execute(
        "ad",
        &request(ActionKind::DisableAccount, Some("CORP\\m.dubois"), &p, false),
        Timestamp::now(),
    )
    .await
    .unwrap();
    c.execute(
        "ad",
        &request(ActionKind::DisableAccount, Some("CORP\\m.dubois"), &p, true),
        Timestamp::now(),
    )
    .await
    .unwrap();
    // The ticket API answers 503 once: the first attempt fails as retryable, the second opens it.
    let first = c
        .execute(
            "tickets",
            &request(ActionKind::CreateTicket, None, &p, false),
            Timestamp::now(),
        )
        .await;
    assert!(matches!(&first, Err(e) if e.retryable()), "{first:?}");
    let second = c
        .execute(
            "tickets",
            &request(ActionKind::CreateTicket, None, &p, false),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(second.contains("TICKET-7"), "{second}");
    let hits = api.hits.lock().unwrap().clone();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/edr/machines/ws-07.corp/isolate",
            "/edr/machines/ws-07.corp/unisolate",
            // Sent percent-encoded, decoded by the server.
            "/ad/users/CORP\\m.dubois/disable",
            "/ad/users/CORP\\m.dubois/enable",
            "/flaky",
            "/flaky",
        ]
    );
    assert_eq!(hits[0].auth.as_deref(), Some("Bearer edr-token-1"));
    assert_eq!(hits[4].auth, None);
    assert!(
        hits.iter()
            .all(|h| h.idempotency.as_deref() == Some("run-1:step:target"))
    );
    assert_eq!(hits[4].idempotency, hits[5].idempotency, "a retry carries the same key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_final_and_timeouts_are_retryable() {
    let (api, base) = start().await;
    let c = connectors(vec![
        (
            "bad",
            ConnectorKind::Ticket {
                url: format!("{base}/bad"),
                token: Secret::None,
            },
            false,
            5,
        ),
        (
            "slow",
            ConnectorKind::Ticket {
                url: format!("{base}/slow"),
                token: Secret::None,
            },
            false,
            1,
        ),
        (
            "edr",
            ConnectorKind::Edr {
                url: format!("{base}/edr"),
                token: Secret::None,
            },
            false,
            5,
        ),
    ]);
    let p = BTreeMap::new();
    let r = c
        .execute(
            "bad",
            &request(ActionKind::CreateTicket, None, &p, false),
            Timestamp::now(),
        )
        .await;
    assert!(
        matches!(&r, Err(ConnectorError::Refused(m)) if m.contains("400") && m.contains("no such machine")),
        "{r:?}"
    );
    let r = c
        .execute(
            "slow",
            &request(ActionKind::CreateTicket, None, &p, false),
            Timestamp::now(),
        )
        .await;
    assert!(
        matches!(&r, Err(ConnectorError::Failed(m)) if m.contains("within 1 s")),
        "{r:?}"
    );
    // A target that is not what its kind allows never reaches the API.
    let before = api.hits.lock().unwrap().len();
    for bad in ["../../admin", "ws-07/x", "-rf"] {
        let r = c
            .execute(
                "edr",
                &request(ActionKind::IsolateHost, Some(bad), &p, false),
                Timestamp::now(),
            )
            .await;
        assert!(
            matches!(&r, Err(ConnectorError::Refused(m)) if m.contains("refused")),
            "{bad}: {r:?}"
        );
    }
    assert_eq!(api.hits.lock().unwrap().len(), before);
    // An EDR cannot do what it has no endpoint for.
    let r = c
        .execute(
            "edr",
            &request(ActionKind::KillProcess, Some("{abc}"), &p, true),
            Timestamp::now(),
        )
        .await;
    assert!(
        matches!(&r, Err(ConnectorError::Refused(m)) if m.contains("cannot undo")),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_without_a_shell_with_checked_targets() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("args");
    let script = out.path().join("record.sh");
    // A stand-in for nft: records its arguments one per line.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> {}; done\n",
            file.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let actions = BTreeMap::from([
        (
            "block_ip".to_owned(),
            vec![
                "add".into(),
                "element".into(),
                "inet".into(),
                "filter".into(),
                "rempart_block".into(),
                "{ {{ target }} }".into(),
            ],
        ),
        (
            "undo_block_ip".to_owned(),
            vec!["delete".into(), "element".into(), "{ {{ target }} }".into()],
        ),
    ]);
    let c = connectors(vec![
        (
            "fw",
            ConnectorKind::Command {
                program: script.clone(),
                actions: actions.clone(),
            },
            false,
            5,
        ),
        (
            "fw-dry",
            ConnectorKind::Command {
                program: script.clone(),
                actions,
            },
            true,
            5,
        ),
        (
            "false",
            ConnectorKind::Command {
                program: "/bin/false".into(),
                actions: BTreeMap::from([("block_ip".to_owned(), vec!["x".to_owned()])]),
            },
            false,
            5,
        ),
    ]);
    let p = BTreeMap::new();
    c.execute(
        "fw",
        &request(ActionKind::BlockIp, Some("203.0.113.7"), &p, false),
        Timestamp::now(),
    )
    .await
    .unwrap();
    c.execute(
        "fw",
        &request(ActionKind::BlockIp, Some("203.0.113.7"), &p, true),
        Timestamp::now(),
    )
    .await
    .unwrap();
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        lines,
        "add\nelement\ninet\nfilter\nrempart_block\n{ 203.0.113.7 }\ndelete\nelement\n{ 203.0.113.7 }\n"
    );
    // A shell would have run this; the target is refused before any program starts.
    let r = c
        .execute(
            "fw",
            &request(ActionKind::BlockIp, Some("1.2.3.4; touch /tmp/pwned"), &p, false),
            Timestamp::now(),
        )
        .await;
    assert!(matches!(r, Err(ConnectorError::Refused(_))), "{r:?}");
    // A dry-run connector shows the exact command line.
    assert!(c.dry_run("fw-dry"));
    let prepared = c
        .prepare("fw-dry", &request(ActionKind::BlockIp, Some("203.0.113.7"), &p, false))
        .unwrap();
    assert_eq!(
        prepared.to_string(),
        format!(
            "run {} add element inet filter rempart_block '{{ 203.0.113.7 }}'",
            script.display()
        )
    );
    let r = c
        .execute(
            "false",
            &request(ActionKind::BlockIp, Some("203.0.113.7"), &p, false),
            Timestamp::now(),
        )
        .await;
    assert!(
        matches!(&r, Err(ConnectorError::Failed(m)) if m.contains("exited with")),
        "{r:?}"
    );
}

struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_mail_goes_through_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mail.txt");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let python = std::env::var("REMPART_PYTHON").unwrap_or_else(|_| "python3".into());
    let server = format!(
        "import time\nfrom aiosmtpd.controller import Controller\n\
         class H:\n    async def handle_DATA(self, server, session, envelope):\n\
         \x20       with open({mbox:?}, 'a') as f:\n\
         \x20           f.write('FROM ' + envelope.mail_from + '\\n' + 'TO ' + ','.join(envelope.rcpt_tos) + '\\n' + envelope.content.decode() + '\\n')\n\
         \x20       return '250 OK queued'\n\
         c = Controller(H(), hostname='127.0.0.1', port={port})\nc.start()\nprint('ready', flush=True)\n\
         while True:\n    time.sleep(1)\n",
        mbox = mbox.display().to_string()
    );
    let mut child = Command::new(&python)
        .args(["-c", &server])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python} (scripts/test installs aiosmtpd): {e}"));
    let stdout = child.stdout.take().unwrap();
    let _guard = Smtpd(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(
        line.trim(),
        "ready",
        "aiosmtpd did not start (scripts/test installs it)"
    );
    let c = connectors(vec![(
        "mail",
        ConnectorKind::Smtp {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            from: "rempart@soc.example.eu".into(),
            to: vec!["oncall@soc.example.eu".into(), "ciso@example.eu".into()],
            username: None,
            password: Secret::None,
        },
        false,
        10,
    )]);
    let params = BTreeMap::from([
        ("subject".to_owned(), "[Rempart] high incident".to_owned()),
        ("message".to_owned(), "Block of 203.0.113.7 awaits approval.".to_owned()),
    ]);
    let answer = c
        .execute(
            "mail",
            &request(ActionKind::Notify, None, &params, false),
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert!(answer.starts_with("250"), "{answer}");
    let got = std::fs::read_to_string(&mbox).unwrap();
    assert!(got.contains("FROM rempart@soc.example.eu"), "{got}");
    assert!(got.contains("TO oncall@soc.example.eu,ciso@example.eu"), "{got}");
    assert!(got.contains("Subject: [Rempart] high incident"), "{got}");
    assert!(got.contains("Block of 203.0.113.7 awaits approval."), "{got}");
}

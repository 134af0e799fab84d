//! The API over real HTTP on loopback, with the embedded store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use rempart_ingest::DecodeOptions;
use rempart_server::{AppState, auth};
use rempart_store::{Role, SqliteStore, Store};
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    /// `http`, or `https` when served over TLS (see [`Server::start_tls`]).
    scheme: &'static str,
    /// The console's sessions, to sign roles in without a browser.
    console: Arc<rempart_server::console::Console>,
    store: Arc<SqliteStore>,
    ledger: rempart_audit::Ledger,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(max_body: usize) -> Server {
        Server::start_with(max_body, |_| {}).await
    }

    /// A server whose state `configure` adjusts first (rules, caps).
    async fn start_with(max_body: usize, configure: impl FnOnce(&mut AppState)) -> Server {
        Server::start_full(max_body, None, configure).await
    }

    /// A server whose state `configure` adjusts first, over TLS when `tls` is given.
    async fn start_full(
        max_body: usize,
        tls: Option<Arc<rempart_server::tls::Tls>>,
        configure: impl FnOnce(&mut AppState),
    ) -> Server {
        let tls_on = tls.is_some();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
        let ledger = ledger(&store).await;
        let mut state = AppState::new(store.clone(), ledger.clone(), DecodeOptions::default());
        let privacy = rempart_privacy::Privacy::new(
            &rempart_config::Privacy {
                internal_suffixes: vec!["corp.example.eu".into()],
                ..rempart_config::Privacy::default()
            },
            ledger.keyring(),
            store.clone() as Arc<dyn rempart_store::VaultStore>,
        )
        .unwrap();
        state.privacy = Some(Arc::new(privacy));
        state.erasure = Some(store.clone() as Arc<dyn rempart_store::ErasureStore>);
        state.intel_store = Some(store.clone() as Arc<dyn rempart_store::IntelStore>);
        let incidents = rempart_server::incidents::Incidents::open(
            store.clone() as Arc<dyn rempart_store::IncidentStore>,
            store.clone() as Arc<dyn rempart_store::Store>,
            ledger.clone(),
            rempart_triage::Settings::default(),
        )
        .await
        .unwrap();
        state.triage = Some(rempart_server::triage::Triage::new(
            state.triage_parts(),
            incidents.clone(),
            None,
            rempart_config::Triage::default(),
        ));
        state.incidents = Some(incidents);
        configure(&mut state);
        let console = state.console.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let listen = rempart_server::listen::Listen {
            tls,
            ..rempart_server::listen::Listen::plain(max_body)
        };
        #[allow(clippy::disallowed_methods)]
        let handle = tokio::spawn(rempart_server::run(listener, state, listen, shutdown));
        Server {
            addr,
            scheme: if tls_on { "https" } else { "http" },
            console,
            store,
            ledger,
            stop: Some(tx),
            handle,
            _dir: dir,
        }
    }

    /// A session for `token` in the console, as its cookie header.
    fn session(&self, token: &str) -> String {
        let id = self
            .console
            .sessions
            .open(rempart_server::console::Principal::Token(auth::hash_token(token)))
            .unwrap();
        format!("{}={id}", rempart_server::console::session::COOKIE)
    }

    async fn token(&self, role: Role) -> String {
        auth::create_token(
            &*self.store,
            &self.ledger,
            auth::By {
                actor: "test",
                person: "test",
            },
            auth::NewToken {
                name: "test",
                role,
                owner: None,
            },
        )
        .await
        .unwrap()
        .1
    }

    fn url(&self, path: &str) -> String {
        match self.scheme {
            // The certificate names `localhost`.
            "https" => format!("https://localhost:{}{path}", self.addr.port()),
            _ => format!("http://{}{path}", self.addr),
        }
    }

    /// `POST path` with `token` and a text body; the status and the JSON body.
    async fn post_text(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(self.url(path))
            .bearer_auth(token)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with `token`; the JSON body.
    async fn get_json(&self, path: &str, token: &str) -> Value {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.handle.await.unwrap().unwrap();
    }
}

/// Every route the router serves, with the role it requires (`None`: any role).
const ROUTES: &[(&str, &str, Option<Role>)] = &[
    ("GET", "/api/v1/events", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/events/0190c2c5-0000-7000-8000-000000000000",
        Some(Role::Viewer),
    ),
    ("GET", "/api/v1/stats", Some(Role::Viewer)),
    ("GET", "/api/v1/alerts", Some(Role::Viewer)),
    ("GET", "/api/v1/intel", Some(Role::Viewer)),
    ("POST", "/api/v1/intel", Some(Role::Analyst)),
    ("GET", "/api/v1/incidents", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000",
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000",
        Some(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/split",
        Some(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/triage",
        Some(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/held",
        Some(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/verdicts/0190c2c5-0000-7000-8000-000000000000/feedback",
        Some(Role::Analyst),
    ),
    ("GET", "/api/v1/triage/stats", Some(Role::Viewer)),
    ("GET", "/api/v1/playbooks", Some(Role::Viewer)),
    ("POST", "/api/v1/playbooks/contain/run", Some(Role::Analyst)),
    ("GET", "/api/v1/runs", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/runs/0190c2c5-0000-7000-8000-000000000000",
        Some(Role::Viewer),
    ),
    ("GET", "/api/v1/approvals", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/approvals/0190c2c5-0000-7000-8000-000000000000",
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/approvals/0190c2c5-0000-7000-8000-000000000000/approve",
        Some(Role::Approver),
    ),
    (
        "POST",
        "/api/v1/approvals/0190c2c5-0000-7000-8000-000000000000/reject",
        Some(Role::Approver),
    ),
    ("GET", "/api/v1/deadlines", Some(Role::Viewer)),
    (
        "GET",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/regulatory",
        Some(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/regulatory",
        Some(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/regulatory/submissions",
        Some(Role::Analyst),
    ),
    (
        "GET",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/reports/gdpr_notification",
        Some(Role::Analyst),
    ),
    (
        "GET",
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/report.html",
        Some(Role::Analyst),
    ),
    ("GET", "/metrics", Some(Role::Viewer)),
    ("GET", "/openapi.json", None),
    ("GET", "/api/v1/quarantine", Some(Role::Analyst)),
    ("POST", "/api/v1/events", Some(Role::Ingest)),
    ("GET", "/api/v1/tokens", Some(Role::Admin)),
    ("POST", "/api/v1/tokens", Some(Role::Admin)),
    ("DELETE", "/api/v1/tokens/tok_x", Some(Role::Admin)),
    ("POST", "/api/v1/privacy/redact", Some(Role::Analyst)),
    ("POST", "/api/v1/privacy/reveal", Some(Role::Approver)),
    ("GET", "/api/v1/privacy/subjects/user:nobody", Some(Role::Admin)),
    ("DELETE", "/api/v1/privacy/subjects/user:nobody", Some(Role::Admin)),
    ("GET", "/api/v1/audit/records", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/records/0", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/checkpoints", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/proof/inclusion?seq=0", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/proof/consistency?from=1", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/verify", Some(Role::Auditor)),
    ("GET", "/api/v1/audit/export", Some(Role::Auditor)),
    ("GET", "/api/v1/gateway/providers", Some(Role::Admin)),
    ("POST", "/api/v1/gateway/providers/p/revoke", Some(Role::Admin)),
    ("POST", "/api/v1/gateway/providers/p/restore", Some(Role::Admin)),
    ("POST", "/v1/chat/completions", Some(Role::GatewayClient)),
    ("POST", "/v1/responses", Some(Role::GatewayClient)),
    ("POST", "/v1/messages", Some(Role::GatewayClient)),
    ("GET", "/v1/models", Some(Role::GatewayClient)),
];

fn request(client: &reqwest::Client, method: &str, url: &str) -> reqwest::RequestBuilder {
    match method {
        "POST" => client.post(url).body("{}"),
        "DELETE" => client.delete(url),
        _ => client.get(url),
    }
}

#[tokio::test]
async fn every_route_but_health_requires_a_token_and_the_right_role() {
    let server = Server::start_with(1 << 20, |state| {
        // Every route with a bad token is a lot of failed guesses from one address.
        state.auth_failures = Arc::new(rempart_server::auth::Failures::with_limit(u32::MAX));
    })
    .await;
    walk_routes(&server, &reqwest::Client::new()).await;
    server.stop().await;
}

/// The same walk over TLS (a certificate from a CA the test makes), tokens and sessions alike.
#[tokio::test]
async fn every_route_requires_its_role_over_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let tls = rempart_server::tls::Tls::load(&rempart_config::ServerTls {
        cert_file,
        key_file,
        client_ca_file: None,
        crl_files: Vec::new(),
        require_client_cert: false,
        clients: Vec::new(),
    })
    .unwrap();
    let server = Server::start_full(1 << 20, Some(Arc::new(tls)), |state| {
        state.auth_failures = Arc::new(rempart_server::auth::Failures::with_limit(u32::MAX));
    })
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    walk_routes(&server, &client).await;
    server.stop().await;
}

/// Every route: 401 without a credential or with a bad one; for each role, by bearer token and
/// by console session, 403 when the role does not grant the route and neither 401 nor 403 when
/// it does (a session's state change is then refused for its missing CSRF token, never let
/// through).
async fn walk_routes(server: &Server, client: &reqwest::Client) {
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            client.get(server.url(probe)).send().await.unwrap().status(),
            200,
            "{probe}"
        );
    }
    let mut tokens = std::collections::HashMap::new();
    for role in Role::ALL {
        tokens.insert(role, server.token(role).await);
    }
    for (method, path, required) in ROUTES {
        let url = server.url(path);
        let resp = request(client, method, &url).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{method} {path} without a token");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated");
        let resp = request(client, method, &url)
            .bearer_auth("rmp_not-a-real-token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path} with a bad token");
        let resp = request(client, method, &url)
            .header("cookie", "rempart_session=not-a-session")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path} with a bad session");
        for role in Role::ALL {
            let resp = request(client, method, &url)
                .bearer_auth(&tokens[&role])
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let by_session = request(client, method, &url)
                .header("cookie", server.session(&tokens[&role]))
                .send()
                .await
                .unwrap();
            let session_status = by_session.status().as_u16();
            let code = by_session.json::<Value>().await.unwrap_or(Value::Null)["error"]["code"].clone();
            if required.is_none_or(|r| role.grants(r)) {
                assert!(status != 401 && status != 403, "{method} {path} as {role}: {status}");
                if *method == "GET" {
                    assert!(
                        session_status != 401 && session_status != 403,
                        "{method} {path} as {role} by session"
                    );
                } else {
                    assert_eq!(session_status, 403, "{method} {path} as {role} by session without CSRF");
                    assert_eq!(code, "csrf", "{method} {path} as {role} by session");
                }
            } else {
                assert_eq!(status, 403, "{method} {path} as {role}");
                assert_eq!(session_status, 403, "{method} {path} as {role} by session");
                assert_eq!(code, "forbidden", "{method} {path} as {role} by session");
            }
        }
    }
}

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let doc: Value = serde_json::from_str(rempart_server::OPENAPI).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let template = |p: &str| match p.split('?').next().unwrap_or(p) {
        "/api/v1/events/0190c2c5-0000-7000-8000-000000000000" => "/api/v1/events/{id}".to_owned(),
        "/api/v1/tokens/tok_x" => "/api/v1/tokens/{id}".to_owned(),
        "/api/v1/audit/records/0" => "/api/v1/audit/records/{seq}".to_owned(),
        "/api/v1/privacy/subjects/user:nobody" => "/api/v1/privacy/subjects/{subject}".to_owned(),
        "/api/v1/gateway/providers/p/revoke" => "/api/v1/gateway/providers/{name}/revoke".to_owned(),
        "/api/v1/gateway/providers/p/restore" => "/api/v1/gateway/providers/{name}/restore".to_owned(),
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000" => "/api/v1/incidents/{id}".to_owned(),
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/split" => "/api/v1/incidents/{id}/split".to_owned(),
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/triage" => "/api/v1/incidents/{id}/triage".to_owned(),
        "/api/v1/incidents/0190c2c5-0000-7000-8000-000000000000/held" => "/api/v1/incidents/{id}/held".to_owned(),
        "/api/v1/verdicts/0190c2c5-0000-7000-8000-000000000000/feedback" => "/api/v1/verdicts/{id}/feedback".to_owned(),
        "/api/v1/playbooks/contain/run" => "/api/v1/playbooks/{id}/run".to_owned(),
        other if other.contains("0190c2c5-0000-7000-8000-000000000000") => other
            .replace("0190c2c5-0000-7000-8000-000000000000", "{id}")
            .replace("/gdpr_notification", "/{report}"),
        other => other.to_owned(),
    };
    let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p, _)| ((*m).to_owned(), template(p))).collect();
    served.push(("GET".into(), "/healthz".into()));
    served.push(("GET".into(), "/readyz".into()));
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn ingest_stores_before_answering_and_quarantines_bad_lines() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let ingest = server.token(Role::Ingest).await;
    let viewer = server.token(Role::Viewer).await;
    let analyst = server.token(Role::Analyst).await;
    let body = "{\"host\":\"ws1\",\"user\":\"alice\",\"@timestamp\":\"2026-01-01T00:00:00Z\",\"msg\":\"hello\"}\nnot json at all {\n{\"host\":\"ws2\",\"timestamp\":\"2026-01-01T00:00:01Z\"}\n";
    let resp = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&ingest)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ack: Value = resp.json().await.unwrap();
    assert_eq!(ack["accepted"], 2);
    assert_eq!(ack["rejected"], 1);
    assert_eq!(ack["rejections"][0]["location"], "line 2");
    // Acknowledged means stored: visible right away.
    assert_eq!(server.store.count_events().await.unwrap(), 2);
    let q: Value = client
        .get(server.url("/api/v1/events?filter=host%3Dws1&q=hello"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q["count"], 1);
    assert_eq!(q["events"][0]["normalized"]["user"], "alice");
    assert_eq!(q["events"][0]["fields"]["msg"], "hello");
    let id = q["events"][0]["id"].as_str().unwrap();
    let one: Value = client
        .get(server.url(&format!("/api/v1/events/{id}")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], id);
    let quarantine: Value = client
        .get(server.url("/api/v1/quarantine"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quarantine["items"][0]["raw"], "not json at all {");
    assert_eq!(quarantine["items"][0]["location"], "line 2");

    // A JSON array body, and a forced format.
    let resp = client
        .post(server.url("/api/v1/events?source=edr"))
        .bearer_auth(&ingest)
        .body(r#"[{"a":1},{"b":2}]"#)
        .send()
        .await
        .unwrap();
    let ack: Value = resp.json().await.unwrap();
    assert_eq!(ack["accepted"], 2);
    let resp = client
        .post(server.url("/api/v1/events?format=xml"))
        .bearer_auth(&ingest)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Nothing decodable: 422, all quarantined.
    let resp = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&ingest)
        .body("???\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);

    // Bad queries are 400 with a reason.
    let resp = client
        .get(server.url("/api/v1/events?filter=nosuch%3D1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `nosuch`")
    );
    let resp = client
        .get(server.url("/api/v1/events?since=yesterday"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Metrics count what was ingested.
    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rempart_events_ingested_total{format=\"json\",source=\"http\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rempart_events_rejected_total{source=\"http\"} 2"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn bodies_up_to_the_configured_cap_are_accepted() {
    // Larger than axum's 2 MiB default, within the configured 8 MiB.
    let server = Server::start(8 << 20).await;
    let token = server.token(Role::Ingest).await;
    let body = "{\"a\":\"0123456789012345678901234567890123456789\"}\n".repeat(100_000);
    assert!(body.len() > 4 << 20);
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.store.count_events().await.unwrap(), 100_000);
    server.stop().await;
}

#[tokio::test]
async fn gzip_bodies_are_inflated_within_a_cap() {
    use std::io::Write;
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let server = Server::start_with(1 << 20, |state| state.max_inflated_bytes = 1 << 20).await;
    let (store, url) = (server.store.clone(), server.url("/api/v1/events"));
    let token = server.token(Role::Ingest).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>, encoding: &'static str| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("content-encoding", encoding)
            .body(body)
            .send()
    };
    let resp = post(gz(&b"{\"a\":1}\n".repeat(1000)), "gzip").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(store.count_events().await.unwrap(), 1000);
    // A small body that inflates past the cap: refused, nothing stored.
    let bomb = gz(&vec![b' '; 8 << 20]);
    assert!(bomb.len() < 64 << 10);
    let resp = post(bomb, "gzip").await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("exceeds the cap"),
        "{body}"
    );
    assert_eq!(store.count_events().await.unwrap(), 1000);
    assert_eq!(post(b"x".to_vec(), "br").await.unwrap().status(), 415);
    // Not gzip, or gzip cut short: the client's error (400), not a size problem.
    let mut cut = gz(&b"{\"a\":1}\n".repeat(1000));
    cut.truncate(cut.len() / 2);
    for corrupt in [b"not gzip at all".to_vec(), cut] {
        let resp = post(corrupt, "gzip").await.unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("does not inflate"),
            "{body}"
        );
    }
    assert_eq!(store.count_events().await.unwrap(), 1000);
}

/// Guessing tokens from one address: after `Failures::LIMIT` failures in a minute the address
/// gets 429 with `Retry-After` (before the store is asked), while a token already known valid
/// keeps working; a request carrying no credential at all is not counted.
#[tokio::test]
async fn repeated_authentication_failures_hold_the_address_back() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let viewer = server.token(Role::Viewer).await;
    let ok = client
        .get(server.url("/api/v1/stats"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for _ in 0..50 {
        let r = client.get(server.url("/api/v1/stats")).send().await.unwrap();
        assert_eq!(r.status(), 401, "no credential is not a failed guess");
    }
    let mut statuses = Vec::new();
    for i in 0..rempart_server::auth::Failures::LIMIT + 5 {
        let r = client
            .get(server.url("/api/v1/stats"))
            .bearer_auth(format!("rmp_{i:064x}"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    let limit = rempart_server::auth::Failures::LIMIT as usize;
    assert!(statuses[..limit - 1].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[limit - 1..].iter().all(|s| *s == 429), "{statuses:?}");
    let still = client
        .get(server.url("/api/v1/stats"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "a token known valid is not held back");
    server.stop().await;
}

/// Each caller gets `requests_per_minute`: past it, 429 `rate_limited` with `Retry-After`;
/// another caller is not affected.
#[tokio::test]
async fn each_caller_is_held_to_its_request_rate() {
    let server = Server::start_with(1 << 20, |state| {
        state.rate = Arc::new(rempart_server::auth::RateLimit::per_minute(20));
    })
    .await;
    let client = reqwest::Client::new();
    let (busy, other) = (server.token(Role::Viewer).await, server.token(Role::Viewer).await);
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let r = client
            .get(server.url("/api/v1/stats"))
            .bearer_auth(&busy)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = client
        .get(server.url("/api/v1/stats"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

/// People's searches are bounded: one past its time budget is stopped (422, nothing else
/// held up), and when every search slot is taken the next waits at most the budget (503 with
/// `Retry-After`).
#[tokio::test]
async fn searches_are_bounded_in_time_and_number() {
    let server = Server::start_with(8 << 20, |state| {
        state.query_budget = std::time::Duration::ZERO;
    })
    .await;
    let ingest = server.token(Role::Ingest).await;
    let viewer = server.token(Role::Viewer).await;
    let body: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"EventID\":1,\"Hostname\":\"ws{}\",\"CommandLine\":\"cmd.exe /c echo {i}\"}}\n",
                i % 40
            )
        })
        .collect();
    let (status, _) = server.post_text("/api/v1/events", &ingest, &body).await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/events?q=no-event-holds-this"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "query_budget_exceeded", "{v}");
    server.stop().await;

    let busy = Server::start_with(1 << 20, |state| {
        state.query_budget = std::time::Duration::from_millis(100);
        state.query_slots = Arc::new(tokio::sync::Semaphore::new(0));
    })
    .await;
    let viewer = busy.token(Role::Viewer).await;
    let r = reqwest::Client::new()
        .get(busy.url("/api/v1/events"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    busy.stop().await;
}

/// A Sysmon process-creation rule for `whoami`.
const WHOAMI: &str = "title: Whoami\nid: 2b1f0c36-9a43-4a8e-8f66-3c6b1f0e5d11\nlevel: high\nlogsource: {product: windows, category: process_creation}\ndetection:\n    selection: {CommandLine|contains: whoami}\n    condition: selection\n";

#[tokio::test]
async fn configured_rules_raise_alerts_on_ingested_events() {
    let (rules, report) = rempart_detect::RuleSet::load([("whoami.yml", WHOAMI)]);
    assert_eq!(report.loaded.len(), 1);
    let server = Server::start_with(1 << 20, |state| {
        state.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)))
    })
    .await;
    let base = format!("http://{}", server.addr);
    let ingest = server.token(Role::Ingest).await;
    let viewer = server.token(Role::Viewer).await;
    let client = reqwest::Client::new();
    let body = r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws1","CommandLine":"cmd /c whoami","@timestamp":"2026-01-01T00:00:00Z"}
{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws2","CommandLine":"notepad.exe","@timestamp":"2026-01-01T00:00:01Z"}
{"EventID":1,"Channel":"Microsoft-Windows-Kernel-General","Hostname":"ws3","CommandLine":"whoami","@timestamp":"2026-01-01T00:00:02Z"}"#;
    let ack: Value = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&ingest)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ack["accepted"], 3);
    assert_eq!(ack["alerts"], 1, "only the Sysmon process creation matches: {ack}");
    let alerts: Value = client
        .get(format!("{base}/api/v1/alerts?level=high"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts["count"], 1);
    let alert = &alerts["alerts"][0];
    assert_eq!(alert["rule_title"], "Whoami");
    assert_eq!(alert["host"], "ws1");
    let event: Value = client
        .get(format!("{base}/api/v1/events/{}", alert["event"].as_str().unwrap()))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(event["fields"]["CommandLine"], "cmd /c whoami");
    let none: Value = client
        .get(format!("{base}/api/v1/alerts?level=critical"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["count"], 0);
    let bad = client
        .get(format!("{base}/api/v1/alerts?level=severe"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rempart_alerts_total{level=\"high\"} 1"), "{metrics}");
}

/// Follows `path`'s pages from `next` to `next` (`param` is the query parameter the answer's
/// `next` fills) and returns what each item's `id` field held, in order.
async fn follow(server: &Server, token: &str, path: &str, items: &str, param: &str, id: &str) -> Vec<Value> {
    let mut got = Vec::new();
    let mut url = path.to_owned();
    loop {
        let page = server.get_json(&url, token).await;
        let list = page[items].as_array().unwrap_or_else(|| panic!("{url}: {page}"));
        got.extend(list.iter().map(|x| x[id].clone()));
        match &page["next"] {
            Value::Null => return got,
            next => {
                let next = next.as_str().map_or_else(|| next.to_string(), str::to_owned);
                url = format!("{path}&{param}={next}");
            }
        }
        assert!(got.len() < 10_000, "{path}: the pages do not end");
    }
}

#[tokio::test]
async fn lists_page_by_cursor_without_skipping_or_repeating_items_that_share_a_time() {
    let (rules, _) = rempart_detect::RuleSet::load([("whoami.yml", WHOAMI)]);
    let server = Server::start_with(1 << 20, |state| {
        state.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)))
    })
    .await;
    let ingest = server.token(Role::Ingest).await;
    let analyst = server.token(Role::Analyst).await;
    let auditor = server.token(Role::Auditor).await;
    // 41 events over 4 seconds (10 or 11 share each time), every other one an alert, and
    // lines that do not decode.
    let mut body = String::new();
    for i in 0..41 {
        let command = if i % 2 == 0 { "cmd /c whoami" } else { "cmd /c dir" };
        body.push_str(&format!(
            "{{\"EventID\":1,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Hostname\":\"ws{i}\",\"CommandLine\":\"{command}\",\"@timestamp\":\"2026-01-01T00:00:0{}Z\"}}\n",
            i % 4
        ));
        if i % 8 == 0 {
            body.push_str("{not json\n");
        }
    }
    let ack = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(&ingest)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);

    for (path, items, all) in [
        ("/api/v1/events?limit=6", "events", "/api/v1/events?limit=1000"),
        (
            "/api/v1/alerts?level=high&limit=4",
            "alerts",
            "/api/v1/alerts?level=high&limit=1000",
        ),
        ("/api/v1/quarantine?limit=2", "items", "/api/v1/quarantine?limit=1000"),
    ] {
        let paged = follow(&server, &analyst, path, items, "cursor", "id").await;
        let whole: Vec<Value> = server.get_json(all, &analyst).await[items]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].clone())
            .collect();
        assert!(whole.len() >= 6, "{all}: {whole:?}");
        assert_eq!(
            paged, whole,
            "{path}: page by page, the same items in the same order as one page"
        );
    }
    // A page shorter than its limit is the last.
    assert_eq!(
        server.get_json("/api/v1/events?limit=1000", &analyst).await["next"],
        Value::Null
    );

    // Another list's cursor, or a forged one, is refused, naming the parameter.
    let events = server.get_json("/api/v1/events?limit=1", &analyst).await;
    let cursor = events["next"].as_str().expect("a full page has a next cursor");
    for url in [
        format!("/api/v1/alerts?cursor={cursor}"),
        "/api/v1/events?cursor=bm90LWEtY3Vyc29y".to_owned(),
    ] {
        let resp = reqwest::Client::new()
            .get(server.url(&url))
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        let error: Value = resp.json().await.unwrap();
        assert!(
            error["error"]["message"].as_str().unwrap().contains("`cursor`"),
            "{url}: {error}"
        );
    }

    // The ledger's records are numbered: `next` is the `from` of the following page, and the
    // walk ends though each read is itself recorded.
    let seqs = follow(
        &server,
        &auditor,
        "/api/v1/audit/records?limit=3",
        "records",
        "from",
        "seq",
    )
    .await;
    let seqs: Vec<u64> = seqs.iter().map(|s| s.as_u64().unwrap()).collect();
    assert!(seqs.len() > 6, "{seqs:?}");
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "every record once, in order"
    );
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_with_413() {
    let server = Server::start(4096).await;
    let token = server.token(Role::Ingest).await;
    let body = "{\"a\":1}\n".repeat(1000);
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert_eq!(server.store.count_events().await.unwrap(), 0);
    server.stop().await;
}

/// The refusals no handler writes (a body that is not JSON or not the JSON asked for, a wrong
/// content type, an unknown route or method) answer in the API's one error shape, with a code;
/// on the gateway's routes in the shape its clients read.
#[tokio::test]
async fn the_framework_s_refusals_answer_in_the_api_s_error_shape() {
    let server = Server::start(1 << 20).await;
    let admin = server.token(Role::Admin).await;
    let client = reqwest::Client::new();
    let tokens = server.url("/api/v1/tokens");
    let json = |body: &'static str| {
        client
            .post(&tokens)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
    };
    let cases = [
        (json("{not json"), 400, "bad_request"),
        (json(r#"{"name": 7}"#), 422, "invalid_body"),
        (
            client
                .post(&tokens)
                .bearer_auth(&admin)
                .header("content-type", "text/plain")
                .body("x"),
            415,
            "unsupported_media_type",
        ),
        (
            client.get(server.url("/api/v1/no-such-thing")).bearer_auth(&admin),
            404,
            "not_found",
        ),
        (
            client.delete(server.url("/api/v1/stats")).bearer_auth(&admin),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let resp = request.send().await.unwrap();
        let got = resp.status().as_u16();
        let kind = resp.headers().get("content-type").cloned();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(kind.unwrap(), "application/json");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_managed_over_the_api_and_revocation_takes_effect() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let admin = server.token(Role::Admin).await;
    let resp = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "siem", "role": "ingest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert!(created["token"].get("hash").is_none(), "the hash is never served");
    let listed: Value = client
        .get(server.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!listed.to_string().contains(&secret));
    let ok = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&secret)
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        client
            .delete(server.url(&format!("/api/v1/tokens/{id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let after = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&secret)
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    let bad = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "role": "root"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.stop().await;
}

/// A ledger with fresh keys on the test's store.
async fn ledger(store: &Arc<SqliteStore>) -> rempart_audit::Ledger {
    rempart_audit::Ledger::open_with_fresh_keys(store.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn token_changes_and_alerts_are_in_the_ledger_and_auditors_can_prove_them() {
    let (rules, _) = rempart_detect::RuleSet::load([(
        "lsass.yml",
        "title: LSASS access\nid: 5ef9853e-4d0e-4a70-846f-a9ca37d876da\nlevel: high\nlogsource: {product: windows, category: process_creation}\ndetection: {sel: {CommandLine|contains: lsass}, condition: sel}\n",
    )]);
    let server = Server::start_with(1 << 20, |s| {
        s.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)))
    })
    .await;
    let client = reqwest::Client::new();
    let admin = server.token(Role::Admin).await;
    let auditor = server.token(Role::Auditor).await;
    let created: Value = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "siem", "role": "ingest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = json!({"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws1",
        "User": "CORP\\alice", "CommandLine": "procdump -ma lsass.exe out.dmp", "UtcTime": "2026-11-22 10:00:00.000"});
    let ingested: Value = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(created["secret"].as_str().unwrap())
        .body(event.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ingested["alerts"], 1);

    // A sequence number no ledger can reach is the caller's error, not the server's.
    for (seq, status) in [
        ("18446744073709551615", 400),
        ("9223372036854775808", 400),
        ("999999", 404),
    ] {
        let resp = reqwest::Client::new()
            .get(server.url(&format!("/api/v1/audit/records/{seq}")))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "record {seq}");
    }
    let records: Value = server.get_json("/api/v1/audit/records", &auditor).await;
    let records = records["records"].as_array().unwrap().clone();
    let kinds: Vec<&str> = records.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    // The two tokens the test made; the admin's first use ("login"), then the token it made; the
    // ingest token's first use, the alert it raised and the incident it opened; the auditor's first use.
    assert_eq!(
        kinds,
        [
            "token.create",
            "token.create",
            "token.use",
            "token.create",
            "token.use",
            "alert.raise",
            "incident.create",
            "token.use"
        ]
    );
    let by_api = &records[3];
    assert_eq!(by_api["payload"]["name"], "siem");
    assert!(by_api["actor"].as_str().unwrap().starts_with("token:tok_"));
    assert_eq!(
        records[4]["actor"],
        format!("token:{}", created["token"]["id"].as_str().unwrap())
    );
    let alert = &records[5];
    assert_eq!(alert["status"], "sealed");
    assert_eq!(alert["payload"]["rule_title"], "LSASS access");
    assert_eq!(
        alert["payload"]["user"], "alice",
        "the normalized user, its domain apart"
    );

    // The read itself was recorded; then everything verifies and each record is provably in the
    // signed tree.
    let verified: Value = server.get_json("/api/v1/audit/verify", &auditor).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["report"]["records"], 9, "eight records and the audit read");
    server.ledger.checkpoint().await.unwrap();
    let cps: Value = server.get_json("/api/v1/audit/checkpoints", &auditor).await;
    let vkey = rempart_audit::NoteVerifier::parse(cps["verifier_keys"][0].as_str().unwrap()).unwrap();
    let note = cps["checkpoints"].as_array().unwrap().last().unwrap()["note"]
        .as_str()
        .unwrap();
    let (cp, _) = rempart_audit::Checkpoint::open(note, &[vkey]).unwrap();
    assert_eq!(cp.size, 9);
    for r in &records {
        let seq = r["seq"].as_u64().unwrap();
        let proof: Value = server
            .get_json(&format!("/api/v1/audit/proof/inclusion?seq={seq}"), &auditor)
            .await;
        let hash = |v: &Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
        let path: Vec<[u8; 32]> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
        assert_eq!(proof["leaf_hash"], r["leaf_hash"]);
        assert!(rempart_audit::merkle::verify_inclusion(
            &hash(&r["leaf_hash"]),
            seq,
            cp.size,
            &path,
            &cp.root
        ));
    }
    server.stop().await;
}

#[tokio::test]
async fn nothing_is_done_that_the_ledger_cannot_record() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let admin = server.token(Role::Admin).await;
    let before = server.store.list_tokens().await.unwrap().len();
    server.ledger.close().await;
    let resp = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&admin)
        .json(&json!({"name": "late", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");
    assert_eq!(
        server.store.list_tokens().await.unwrap().len(),
        before,
        "no token without its record"
    );
    server.stop().await;
}

#[tokio::test]
async fn analysts_pseudonymize_approvers_reveal_admins_erase_and_all_of_it_is_recorded() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let analyst = server.token(Role::Analyst).await;
    let approver = server.token(Role::Approver).await;
    let admin = server.token(Role::Admin).await;
    let text = "Accepted password for alice from 203.0.113.7 port 22\n{\"TargetUserName\":\"bob\",\"Computer\":\"ws1.corp.example.eu\"}";
    let redacted: Value = server
        .post_text("/api/v1/privacy/redact?domain=inc-9", &analyst, text)
        .await
        .1;
    let output = redacted["output"].as_str().unwrap().to_owned();
    for original in ["alice", "203.0.113.7", "bob", "ws1."] {
        assert!(!output.contains(original), "{output}");
    }
    assert_eq!(redacted["found"]["user"], 2);
    assert!(redacted["replacements"].to_string().contains("ssh-user"));
    assert!(
        !redacted["replacements"].to_string().contains("alice"),
        "originals are never listed"
    );

    // An analyst may not reveal; an approver may, and it is recorded.
    let denied = client
        .post(server.url("/api/v1/privacy/reveal?domain=inc-9"))
        .bearer_auth(&analyst)
        .body(output.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let revealed: Value = client
        .post(server.url("/api/v1/privacy/reveal?domain=inc-9"))
        .bearer_auth(&approver)
        .body(output.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revealed["output"], text);
    assert_eq!(revealed["revealed"], 4);
    // Nothing to reveal is no error: an empty body, JSON without strings.
    for (body, want) in [("", ""), ("{\"n\":1}\n[2,3]", "{\"n\":1}\n[2,3]")] {
        let (status, answer) = server
            .post_text("/api/v1/privacy/reveal?domain=inc-9", &approver, body)
            .await;
        assert_eq!(status, 200, "{body:?}: {answer}");
        assert_eq!(
            (answer["output"].as_str(), answer["revealed"].as_u64()),
            (Some(want), Some(0))
        );
    }

    // Access request, then erasure: alice's pseudonym no longer turns back, bob's does.
    let report = server.get_json("/api/v1/privacy/subjects/user:alice", &admin).await;
    assert_eq!(report["pseudonyms"][0]["original"], "alice");
    let erased: Value = client
        .delete(server.url("/api/v1/privacy/subjects/user:alice"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(erased["keys_destroyed"], 1);
    let after: Value = server
        .post_text("/api/v1/privacy/reveal?domain=inc-9", &approver, &output)
        .await
        .1;
    let after_text = after["output"].as_str().unwrap();
    assert!(
        !after_text.contains("alice") && after_text.contains("bob"),
        "{after_text}"
    );
    assert_eq!(after["unresolved"].as_array().unwrap().len(), 1);

    let kinds: Vec<String> = server
        .ledger
        .entries(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.record.kind.clone())
        .filter(|k| k.starts_with("privacy.") || k == "subject.erase")
        .collect();
    assert_eq!(
        kinds,
        [
            "privacy.pseudonymize",
            "privacy.reveal",
            "privacy.export",
            "subject.erase",
            "privacy.sweep",
            "privacy.reveal"
        ]
    );
    let bad = client
        .post(server.url("/api/v1/privacy/redact?domain=no%20spaces"))
        .bearer_auth(&analyst)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.stop().await;
}

/// Stored events, alerts and incidents as the API gives them, lower-cased.
async fn everything(server: &Server, token: &str) -> String {
    let mut all = String::new();
    for path in ["/api/v1/events?limit=100", "/api/v1/alerts", "/api/v1/incidents"] {
        all.push_str(&server.get_json(path, token).await.to_string());
    }
    all.to_lowercase()
}

#[tokio::test]
async fn erasure_rewrites_stored_telemetry_and_what_the_server_holds_in_memory() {
    let (rules, _) = rempart_detect::RuleSet::load([("whoami.yml", WHOAMI)]);
    let server = Server::start_with(1 << 20, |state| {
        state.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)))
    })
    .await;
    let ingest = server.token(Role::Ingest).await;
    let admin = server.token(Role::Admin).await;
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client
            .post(server.url("/api/v1/events"))
            .bearer_auth(&ingest)
            .body(body)
            .send()
    };
    let ack: Value = post(
        r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws1","User":"CORP\\Alice","CommandLine":"cmd /c whoami","ParentCommandLine":"C:\\Users\\alice\\run.cmd","@timestamp":"2026-01-01T00:00:00Z"}
{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws2","User":"CORP\\bob","CommandLine":"whoami /all","@timestamp":"2026-01-01T00:00:01Z"}"#,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ack["alerts"], 2, "{ack}");
    let before = everything(&server, &admin).await;
    assert!(before.contains("alice") && before.contains("bob"), "{before}");

    let erased: Value = client
        .delete(server.url("/api/v1/privacy/subjects/user:alice"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(erased["stored"]["rows"]["events"], 1, "{erased}");
    assert_eq!(erased["stored"]["rows"]["alerts"], 1, "{erased}");
    assert!(erased["stored"]["rows"]["incidents"].as_u64().unwrap() >= 1, "{erased}");
    assert_eq!(erased["stored"]["purged"], true);
    let marker = erased["replaced_by"].as_str().unwrap().to_owned();
    assert!(marker.starts_with("erased-user-"), "{marker}");

    let after = everything(&server, &admin).await;
    assert!(!after.contains("alice"), "{after}");
    assert!(after.contains("bob") && after.contains(&marker), "{after}");

    // The correlator took back the rewritten incident: growing it does not bring the name back.
    let ack: Value = post(
        r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"ws1","CommandLine":"whoami /priv","@timestamp":"2026-01-01T00:01:00Z"}"#,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ack["alerts"], 1, "{ack}");
    let grown = server.get_json("/api/v1/incidents", &admin).await.to_string();
    assert!(!grown.to_lowercase().contains("alice"), "{grown}");
    assert!(grown.contains(&marker), "{grown}");

    let report = server.get_json("/api/v1/privacy/subjects/user:alice", &admin).await;
    assert_eq!(report["stored"]["rows"], serde_json::json!({}), "{report}");
    server.stop().await;
}

#[tokio::test]
async fn analysts_import_indicators_that_match_the_next_events() {
    let server = Server::start(1 << 20).await;
    let analyst = server.token(Role::Analyst).await;
    let ingest = server.token(Role::Ingest).await;
    let viewer = server.token(Role::Viewer).await;
    let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000001",
         "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z", "name": "C2 range",
         "pattern": "[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z"},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000002",
         "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z", "name": "Subject line",
         "pattern": "[email-message:subject = 'Invoice']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z"}]});
    let (status, body) = server
        .post_text("/api/v1/intel?source=feed-a", &analyst, &bundle.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 1);
    assert!(
        body["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("email-message:subject"),
        "{body}"
    );
    let (status, body) = server.post_text("/api/v1/intel", &analyst, "{\"hello\": 1}").await;
    assert_eq!(status, 400, "{body}");
    let listed = server.get_json("/api/v1/intel", &viewer).await;
    assert_eq!(listed["stored"], 1, "{listed}");
    assert_eq!(listed["in_force"], 1);
    let event =
        r#"{"timestamp":"2026-11-22T10:00:00Z","src_ip":"10.0.0.7","dest_ip":"198.51.100.23","event_type":"flow"}"#;
    let (status, body) = server.post_text("/api/v1/events", &ingest, event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alerts"], 1, "{body}");
    let alerts = server.get_json("/api/v1/alerts", &viewer).await;
    assert_eq!(alerts["alerts"][0]["rule_title"], "Threat intel: C2 range", "{alerts}");
    assert_eq!(alerts["alerts"][0]["matched"][0]["value"], "198.51.100.23");
    server.stop().await;
}

/// What the server answers is what its document says: every route, with the role it needs,
/// probed with no body, a body that is not JSON, a body of another content type, bad query
/// parameters, a malformed identifier, and without a credential; each status received is one
/// the served document lists for that operation.
#[tokio::test]
async fn every_status_the_server_answers_is_documented() {
    let server = Server::start(1 << 20).await;
    let client = reqwest::Client::new();
    let doc: Value = client
        .get(server.url("/openapi.json"))
        .bearer_auth(server.token(Role::Viewer).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let template = |path: &str| -> String {
        let segments: Vec<&str> = path.split('/').collect();
        paths
            .keys()
            .find(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == segments.len()
                    && ts
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
            })
            .unwrap_or_else(|| panic!("{path} is not in the document"))
            .clone()
    };
    let mut tokens = std::collections::HashMap::new();
    for role in Role::ALL {
        tokens.insert(role, server.token(role).await);
    }
    let mut undocumented = Vec::new();
    let mut probes = 0;
    for (method, path, role) in ROUTES {
        // What any role may call is probed as the least of them.
        let role = &role.unwrap_or(Role::Ingest);
        let operation = &doc["paths"][template(path.split('?').next().unwrap_or(path))][method.to_lowercase()];
        let documented = |status: u16| operation["responses"].get(status.to_string()).is_some();
        let malformed_id = path.replace("0190c2c5-0000-7000-8000-000000000000", "not-an-id");
        let mut attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
            (
                "as sent",
                request(&client, method, &server.url(path)).bearer_auth(&tokens[role]),
            ),
            ("without a credential", request(&client, method, &server.url(path))),
            (
                "with bad query parameters",
                request(
                    &client,
                    method,
                    &server.url(&format!(
                        "{path}{}limit=-1&since=yesterday&status=nope",
                        if path.contains('?') { '&' } else { '?' }
                    )),
                )
                .bearer_auth(&tokens[role]),
            ),
        ];
        if malformed_id != *path {
            attempts.push((
                "with a malformed id",
                request(&client, method, &server.url(&malformed_id)).bearer_auth(&tokens[role]),
            ));
        }
        if *method == "POST" {
            let url = server.url(path);
            attempts.push((
                "with a body that is not JSON",
                client
                    .post(&url)
                    .bearer_auth(&tokens[role])
                    .header("content-type", "application/json")
                    .body("{"),
            ));
            attempts.push((
                "with a body of another type",
                client
                    .post(&url)
                    .bearer_auth(&tokens[role])
                    .header("content-type", "text/xml")
                    .body("<a/>"),
            ));
            attempts.push((
                "with a JSON body of another shape",
                client
                    .post(&url)
                    .bearer_auth(&tokens[role])
                    .header("content-type", "application/json")
                    .body("[1, 2]"),
            ));
        }
        for (how, attempt) in attempts {
            let status = attempt.send().await.unwrap().status().as_u16();
            probes += 1;
            if !documented(status) {
                undocumented.push(format!("{method} {path} {how}: {status}"));
            }
        }
    }
    assert!(probes > 150, "{probes} probes");
    assert!(
        undocumented.is_empty(),
        "answers the document does not list:\n{}",
        undocumented.join("\n")
    );
    server.stop().await;
}

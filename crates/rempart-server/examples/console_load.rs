//! The console under a SOC's load: 10,000 incidents holding 100,000 alerts (one of them with
//! 500), each triaged, in the embedded store; the server in-process on loopback; a signed-in
//! session. Measures over real HTTP the queue's first page, the queue filtered (which reads
//! the most incidents the store returns), an incident page of 500 alerts, the time from an
//! analyst's change to the live event and the refreshed rows reaching an open queue, and the
//! bytes and requests of each page.
//!
//! Run: `cargo run --release -p rempart-server --example console_load`
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use rempart_ingest::DecodeOptions;
use rempart_model::{
    Alert, Classification, Entity, EntityKind, EventId, Incident, IncidentSeverity, IncidentStatus, TriageMode,
    TriageState, Verdict,
};
use rempart_server::{AppState, auth};
use rempart_store::{IncidentStore, IncidentWrite, Role, SqliteStore, Store};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INCIDENTS: usize = 10_000;
const ALERTS: usize = 100_000;
const BIG: usize = 500;

fn alert(time: Timestamp, host: &str, user: &str, rule: usize) -> Alert {
    Alert {
        id: EventId::generate(),
        time,
        created: time,
        rule_id: Some(format!("rule-{rule}")),
        rule_title: format!("Suspicious behaviour {rule}"),
        level: Some("high".into()),
        tags: vec!["attack.execution".into()],
        techniques: Vec::new(),
        matched: vec![rempart_model::MatchedField::new(
            "CommandLine",
            format!("cmd.exe /c whoami {rule}"),
        )],
        event: EventId::generate(),
        host: Some(host.into()),
        user: Some(user.into()),
    }
}

fn verdict(incident: EventId, time: Timestamp) -> Verdict {
    Verdict {
        id: EventId::generate(),
        incident,
        created: time,
        mode: TriageMode::Degraded,
        provider: None,
        model: None,
        classification: Classification::TruePositive,
        confidence: 0.6,
        severity: IncidentSeverity::High,
        summary: "rule levels and correlation say this is an intrusion".into(),
        timeline: Vec::new(),
        techniques: vec!["T1059".into()],
        entities: Vec::new(),
        recommended_actions: Vec::new(),
        queries: Vec::new(),
        evidence: Vec::new(),
        flags: Vec::new(),
        injection: Vec::new(),
        domain: None,
        steps: 0,
        tokens: 0,
    }
}

async fn fill(store: &SqliteStore) -> EventId {
    let start = Timestamp::now() - SignedDuration::from_hours(24 * 7);
    let per = (ALERTS - BIG) / (INCIDENTS - 1);
    let mut big = None;
    for chunk in 0..INCIDENTS / 500 {
        let mut incidents = Vec::new();
        let mut alerts = Vec::new();
        let mut links = Vec::new();
        let mut verdicts = Vec::new();
        for n in chunk * 500..(chunk + 1) * 500 {
            let id = EventId::generate();
            let count = if n == 0 { BIG } else { per };
            let host = format!("ws-{:05}", n % 3000);
            let user = format!("user{}", n % 700);
            let t0 = start + SignedDuration::from_secs(n as i64 * 60);
            for k in 0..count {
                let a = alert(t0 + SignedDuration::from_secs(k as i64), &host, &user, (n + k) % 40);
                links.push((a.id, id));
                alerts.push(a);
            }
            let v = verdict(id, t0 + SignedDuration::from_secs(120));
            incidents.push(Incident {
                id,
                title: format!("Suspicious behaviour on {host}"),
                status: if n % 5 == 0 {
                    IncidentStatus::Resolved
                } else {
                    IncidentStatus::Triaged
                },
                severity: IncidentSeverity::ALL[n % 5],
                score: (n % 100) as u32,
                max_level: IncidentSeverity::High,
                owner: (n % 3 == 0).then(|| "ana".to_owned()),
                created: t0,
                updated: t0,
                first_seen: t0,
                last_seen: t0 + SignedDuration::from_secs(count as i64),
                alert_count: count as u64,
                rules: (0..3)
                    .map(|r| format!("Suspicious behaviour {}", (n + r) % 40))
                    .collect(),
                entities: vec![
                    Entity::new(EntityKind::Host, host.clone()),
                    Entity::new(EntityKind::User, user),
                ],
                techniques: vec!["T1059".into()],
                tactics: vec!["execution".into()],
                assets: Vec::new(),
                merged_into: None,
                history: Vec::new(),
                triage: Some(TriageState {
                    verdict: v.id,
                    time: v.created,
                    mode: TriageMode::Degraded,
                    classification: Classification::TruePositive,
                    stale: false,
                    flags: Vec::new(),
                    confidence: Some(60),
                    held: None,
                }),
            });
            verdicts.push(v);
            if n == 0 {
                big = Some(id);
            }
        }
        store.insert_alerts(&alerts).await.unwrap();
        store
            .incidents_write(IncidentWrite {
                incidents: &incidents,
                links: &links,
                moves: &[],
            })
            .await
            .unwrap();
        for v in &verdicts {
            store.verdict_put(v).await.unwrap();
        }
    }
    big.unwrap()
}

fn percentiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let p = |q: f64| d[((d.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    format!("p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms", p(0.5), p(0.9), p(0.99))
}

async fn time_get(http: &reqwest::Client, url: &str, cookie: &str, n: usize) -> (String, usize) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(url).header("cookie", cookie).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        bytes = r.bytes().await.unwrap().len();
        times.push(t.elapsed());
    }
    (percentiles(times), bytes)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let t = Instant::now();
    let big = fill(&store).await;
    println!(
        "stored {INCIDENTS} incidents, {ALERTS} alerts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ledger = rempart_audit::Ledger::open_with_fresh_keys(store.clone())
        .await
        .unwrap();
    let mut state = AppState::new(store.clone(), ledger.clone(), DecodeOptions::default());
    let incidents = rempart_server::incidents::Incidents::open(
        store.clone() as Arc<dyn IncidentStore>,
        store.clone() as Arc<dyn Store>,
        ledger.clone(),
        rempart_triage::Settings::default(),
    )
    .await
    .unwrap();
    state.incidents = Some(incidents);
    let (record, _) = auth::create_token(
        &*store,
        &ledger,
        auth::By {
            actor: "bench",
            person: "bench",
        },
        auth::NewToken {
            name: "ana",
            role: Role::Analyst,
            owner: None,
        },
    )
    .await
    .unwrap();
    let code = state.console.sessions.sign_in_code(&record.hash).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    #[allow(
        clippy::disallowed_methods,
        reason = "the harness's server lives as long as the process"
    )]
    tokio::spawn(rempart_server::run(
        listener,
        state,
        rempart_server::listen::Listen::plain(16 << 20),
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{base}/sign-in/link?code={code}"))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let (queue, queue_bytes) = time_get(&http, &format!("{base}/"), &cookie, 50).await;
    println!("queue, first page (100 of {INCIDENTS}): {queue}; {queue_bytes} bytes");
    let (filtered, filtered_bytes) = time_get(&http, &format!("{base}/?status=all&entity=ws-00042"), &cookie, 20).await;
    println!("queue filtered by entity (in the store's query): {filtered}; {filtered_bytes} bytes");
    let (page, page_bytes) = time_get(&http, &format!("{base}/incidents/{big}"), &cookie, 30).await;
    println!("incident page, {BIG} alerts: {page}; {page_bytes} bytes");
    let (_, css) = time_get(&http, &format!("{base}/assets/console.css"), &cookie, 1).await;
    let (_, js) = time_get(&http, &format!("{base}/assets/console.js"), &cookie, 1).await;
    println!(
        "assets: console.css {css} bytes, console.js {js} bytes (each page: 3 requests, the assets cached for an hour)"
    );

    // Live: from an analyst's change (its response means committed) to the event on an open
    // stream, and to the queue's refreshed rows.
    let mut live = http
        .get(format!("{base}/live"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let ids: Vec<String> = page
        .split("data-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    let mut to_event = Vec::new();
    let mut to_rows = Vec::new();
    for (n, id) in ids.iter().take(20).enumerate() {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/incidents/{id}/update"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&owner=owner{n}&reason=bench"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        loop {
            let chunk = live.next().await.unwrap().unwrap();
            if String::from_utf8_lossy(&chunk).contains(id.as_str()) {
                break;
            }
        }
        to_event.push(t.elapsed());
        let rows = http
            .get(format!("{base}/queue/rows"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(rows.text().await.unwrap().contains(&format!("owner{n}")));
        to_rows.push(t.elapsed());
    }
    println!("change to live event: {}", percentiles(to_event));
    println!("change to refreshed rows in the open queue: {}", percentiles(to_rows));
}

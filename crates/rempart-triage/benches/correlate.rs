//! Correlation throughput and triage context assembly on synthetic, realistic shapes.
//!
//! `cargo bench -p rempart-triage --bench correlate`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use rempart_model::{Alert, DataClass, Event, EventId, Format, MatchedField, Origin, Technique};
use rempart_triage::context::{self, Material};
use rempart_triage::{Correlator, Observed, Settings};
use serde_json::json;

const TACTICS: &[&str] = &[
    "execution",
    "persistence",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
];

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn event(rng: &mut Lcg, time: Timestamp) -> Event {
    let host = format!("WS-{:04}.corp.example.eu", rng.next(2_000));
    let user = format!("CORP\\user{:04}", rng.next(5_000));
    let mut e = Event::new(
        Format::WindowsJson,
        time,
        time,
        json!({"Event": {"System": {"EventID": 1, "Computer": host, "Channel": "Microsoft-Windows-Sysmon/Operational"},
               "EventData": {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd.exe /c whoami /all",
                             "User": user, "ProcessGuid": format!("{{{:08X}-0000-0000-0000-000000000000}}", rng.next(1 << 30)),
                             "Hashes": "SHA256=9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}}})
        .as_object()
        .cloned()
        .unwrap(),
    );
    e.normalized.host = Some(host);
    e.normalized.user = Some(user);
    e.normalized.src_ip = Some(std::net::IpAddr::from([10, 20, rng.next(8) as u8, rng.next(250) as u8]));
    e.normalized.event_id = Some(1);
    e.origin = Origin {
        source: "bench".into(),
        location: None,
    };
    e.class = DataClass::Amber;
    e
}

fn alert(rng: &mut Lcg, e: &Event) -> Alert {
    let tactic = TACTICS[rng.next(TACTICS.len() as u64) as usize];
    let mut a = Alert::for_event(
        e,
        e.time,
        Some(format!("rule-{}", rng.next(300))),
        format!("Rule {}", rng.next(300)),
        Some(["low", "medium", "high", "critical"][rng.next(4) as usize].into()),
        vec![
            format!("attack.{}", tactic.replace('-', "_")),
            "attack.t1059.001".into(),
        ],
    );
    a.techniques = vec![Technique {
        id: "T1059.001".into(),
        name: Some("PowerShell".into()),
        tactics: vec![tactic.into()],
    }];
    a.matched = vec![MatchedField::new("CommandLine", "cmd.exe /c whoami /all")];
    a
}

fn stream(n: usize) -> Vec<(Alert, Event)> {
    let mut rng = Lcg(42);
    let start: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
    (0..n)
        .map(|i| {
            // 10,000 alerts per second of event time.
            let e = event(&mut rng, start + SignedDuration::from_micros(100 * i as i64));
            (alert(&mut rng, &e), e)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = stream(100_000);
    let mut g = c.benchmark_group("correlate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("entities", |b| {
        b.iter(|| {
            for (a, e) in &data {
                black_box(rempart_triage::entity::of_alert(a, Some(e)));
            }
        });
    });
    let observed: Vec<Observed> = data
        .iter()
        .map(|(a, e)| Observed {
            entities: rempart_triage::entity::of_alert(a, Some(e)),
            alert: a.clone(),
        })
        .collect();
    g.bench_function("group_100k_alerts_in_batches_of_1000", |b| {
        b.iter(|| {
            let mut c = Correlator::new(Settings::default());
            let now = Timestamp::now();
            let mut incidents = 0;
            for chunk in observed.chunks(1_000) {
                incidents += c.observe(chunk, now).created();
            }
            black_box(incidents)
        });
    });
    g.finish();

    // One incident of 60 alerts and 25 key events, the most the prompt shows.
    let mut corr = Correlator::new(Settings::default());
    let mut rng = Lcg(7);
    let start: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
    let mut events = Vec::new();
    let mut alerts = Vec::new();
    for i in 0..60 {
        let mut e = event(&mut rng, start + SignedDuration::from_secs(i));
        e.normalized.host = Some("WS-FIN-07.corp.example.eu".into());
        let a = alert(&mut rng, &e);
        events.push(e);
        alerts.push(a);
    }
    let observed: Vec<Observed> = alerts
        .iter()
        .zip(&events)
        .map(|(a, e)| Observed {
            entities: rempart_triage::entity::of_alert(a, Some(e)),
            alert: a.clone(),
        })
        .collect();
    let update = corr.observe(&observed, Timestamp::now());
    let incident = corr.get(update.links[0].1).unwrap().clone();
    let mut g = c.benchmark_group("context");
    g.bench_function("build_60_alerts_25_events", |b| {
        b.iter(|| {
            black_box(context::build(
                Material {
                    incident: &incident,
                    alerts: &alerts,
                    events: &events[..25],
                    history: &[],
                    techniques: &[],
                },
                "0123456789abcdef",
            ))
        });
    });
    // The injection scan of one value, on values of the kinds a prompt holds (none flagged).
    let values = [
        "C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s Schedule",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "4624",
        "S-1-5-21-3623811015-3361044348-30300820-1013",
        "The system cannot find the file specified.",
    ];
    g.bench_function("injection_scan_5_values", |b| {
        b.iter(|| {
            for v in values {
                black_box(rempart_triage::injection::scan("f", black_box(v)));
            }
        });
    });
    g.finish();
    let _ = EventId::generate();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Live anomaly detection over events: an edge-stream burst and a connection unlike the others
//! of its service raise explained alerts after warm-up, the configuration picks detectors and
//! thresholds per source, and the whole state survives a save and a load through the store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rempart_config::Anomaly as AnomalyConfig;
use rempart_model::{Event, Format};
use rempart_server::anomaly::Anomaly;
use rempart_store::SqliteStore;

fn connection(t: Timestamp, src: &str, dst: &str) -> Event {
    let mut e = Event::new(Format::Json, t, t, serde_json::Map::new());
    e.normalized.src_ip = src.parse().ok();
    e.normalized.dst_ip = dst.parse().ok();
    e.normalized.process = Some("C:\\Windows\\System32\\svchost.exe".into());
    e
}

/// Ninety minutes of steady traffic: five hosts each talking to their server every minute.
fn steady(start: Timestamp) -> Vec<Event> {
    (0..90)
        .flat_map(|m| {
            (1..=5).map(move |h| {
                connection(
                    start + SignedDuration::from_mins(m),
                    &format!("10.0.0.{h}"),
                    "10.0.1.10",
                )
            })
        })
        .collect()
}

#[test]
fn a_scan_bursts_from_its_source_and_steady_traffic_does_not() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    let quiet = a.alerts(&steady(start), Timestamp::now());
    assert!(quiet.is_empty(), "{quiet:#?}");
    // Minute 91: 10.0.0.3 touches 300 addresses.
    let t = start + SignedDuration::from_mins(91);
    let scan: Vec<Event> = (0..300)
        .map(|i| connection(t, "10.0.0.3", &format!("10.0.{}.{}", 2 + i / 250, i % 250 + 1)))
        .collect();
    let alerts = a.alerts(&scan, Timestamp::now());
    let from_source: Vec<_> = alerts
        .iter()
        .filter(|x| x.rule_title == "Anomaly: burst of connections from an address")
        .collect();
    assert_eq!(from_source.len(), 1, "one alert per burst and minute: {alerts:#?}");
    let x = from_source[0];
    assert_eq!(x.rule_id.as_deref(), Some("rempart-anomaly/network_burst"));
    assert_eq!(x.techniques[0].id, "T1046");
    let field = |name: &str| {
        x.matched
            .iter()
            .find(|m| m.field == name)
            .map(|m| m.value.clone())
            .unwrap()
    };
    assert_eq!(field("anomaly.baseline"), "source 10.0.0.3");
    assert!(
        field("anomaly.typical").starts_with("about "),
        "{}",
        field("anomaly.typical")
    );
    assert!(field("anomaly.actual").ends_with(" this minute"));
}

#[test]
fn the_first_hour_is_warm_up() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    a.alerts(&steady(start)[..50], Timestamp::now());
    let t = start + SignedDuration::from_mins(11);
    let scan: Vec<Event> = (0..300)
        .map(|i| connection(t, "10.0.0.3", &format!("10.0.9.{}", i % 250 + 1)))
        .collect();
    assert!(a.alerts(&scan, Timestamp::now()).is_empty());
}

#[tokio::test]
async fn the_state_survives_a_restart_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let whole = Anomaly::fresh(&AnomalyConfig::default());
    let first = Anomaly::fresh(&AnomalyConfig::default());
    let events = steady(start);
    whole.alerts(&events, Timestamp::now());
    first.alerts(&events, Timestamp::now());
    first.save(&*store).await.unwrap();
    drop(first);
    let resumed = Anomaly::load(&*store, &AnomalyConfig::default()).await;
    assert_eq!(resumed.snapshot().unwrap(), whole.snapshot().unwrap());
    let t = start + SignedDuration::from_mins(91);
    let scan: Vec<Event> = (0..300)
        .map(|i| connection(t, "10.0.0.3", &format!("10.0.9.{}", i % 250 + 1)))
        .collect();
    let titles = |v: Vec<rempart_model::Alert>| v.into_iter().map(|a| (a.rule_title, a.matched)).collect::<Vec<_>>();
    assert_eq!(
        titles(resumed.alerts(&scan, Timestamp::now())),
        titles(whole.alerts(&scan, Timestamp::now()))
    );
}

/// A Zeek `conn` record as the JSON decoder leaves it.
fn conn(t: Timestamp, src: &str, duration: f64, sent: u64, received: u64) -> Event {
    let fields = serde_json::json!({
        "_path": "conn", "id.orig_h": src, "id.resp_h": "93.184.216.34", "id.resp_p": 443,
        "proto": "tcp", "duration": duration, "orig_bytes": sent, "resp_bytes": received,
    });
    let serde_json::Value::Object(map) = fields else {
        unreachable!()
    };
    let mut e = Event::new(Format::ZeekJson, t, t, map);
    e.normalized.src_ip = src.parse().ok();
    e.normalized.dst_ip = "93.184.216.34".parse().ok();
    e.normalized.dst_port = Some(443);
    e.normalized.channel = Some("conn".into());
    e
}

/// Half an hour, 2 GB out, an ordinary reply.
fn upload(t: Timestamp, src: &str) -> Event {
    conn(t, src, 1_800.0, 2_000_000_000, 20_000)
}

/// `n` ordinary HTTPS connections from twenty clients: sizes spread over two orders of
/// magnitude each way, durations from a tenth of a second to a few seconds (a fixed
/// pseudo-random sequence, so the test repeats exactly).
fn ordinary(start: Timestamp, n: u64) -> Vec<Event> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let duration = 0.1 * 30f64.powf(next());
            let sent = (500.0 * 100f64.powf(next())) as u64;
            let received = (2_000.0 * 100f64.powf(next())) as u64;
            conn(
                start + SignedDuration::from_secs(i as i64 * 3),
                &format!("10.0.0.{}", i % 20 + 1),
                duration,
                sent,
                received,
            )
        })
        .collect()
}

fn matched(a: &rempart_model::Alert, name: &str) -> String {
    a.matched
        .iter()
        .find(|m| m.field == name)
        .map(|m| m.value.clone())
        .unwrap_or_else(|| panic!("no {name} in {a:#?}"))
}

fn flow_alerts(v: &[rempart_model::Alert]) -> Vec<&rempart_model::Alert> {
    v.iter()
        .filter(|a| a.rule_id.as_deref() == Some("rempart-anomaly/unusual_flow"))
        .collect()
}

#[test]
fn an_upload_unlike_its_service_fires_once_with_what_drove_it() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    let normal = a.alerts(&ordinary(start, 3_000), Timestamp::now());
    assert!(flow_alerts(&normal).is_empty(), "ordinary traffic: {normal:#?}");
    // Half an hour, 2 GB out, an ordinary reply: then four more like it within ten minutes.
    let t = start + SignedDuration::from_hours(3);
    let uploads: Vec<Event> = (0..5)
        .map(|i| upload(t + SignedDuration::from_mins(i * 2), "10.0.0.7"))
        .collect();
    let alerts = a.alerts(&uploads, Timestamp::now());
    let flows = flow_alerts(&alerts);
    assert_eq!(
        flows.len(),
        1,
        "one alert per service and sender in ten minutes: {alerts:#?}"
    );
    let x = flows[0];
    assert_eq!(x.techniques[0].id, "T1048");
    assert_eq!(x.techniques[0].tactics, ["exfiltration"]);
    assert_eq!(matched(x, "anomaly.baseline"), "service tcp/443 from 10.0.0.7");
    assert!(
        matched(x, "anomaly.driver").starts_with("bytes sent unusually high ("),
        "{}",
        matched(x, "anomaly.driver")
    );
    assert_eq!(
        matched(x, "anomaly.actual"),
        "duration 1800 s, 2.0 GB sent, 20.0 kB received"
    );
    let typical = matched(x, "anomaly.typical");
    assert!(typical.ends_with("(median of 3000 connections)"), "{typical}");
    // The median of 500 B × 100^U is 5 kB.
    assert!(typical.contains("kB sent"), "{typical}");
    let score: f64 = matched(x, "anomaly.score").parse().unwrap();
    assert!(score >= 14.0, "{score}");
}

#[test]
fn the_guard_keeps_repeated_uploads_out_of_the_model() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    a.alerts(&ordinary(start, 3_000), Timestamp::now());
    // Two hundred senders each upload 2 GB: every one is still unusual, the last as the first.
    let t = start + SignedDuration::from_hours(3);
    let uploads: Vec<Event> = (0..200)
        .map(|i| {
            upload(
                t + SignedDuration::from_secs(i),
                &format!("10.1.{}.{}", i / 200, i % 200 + 1),
            )
        })
        .collect();
    let alerts = a.alerts(&uploads, Timestamp::now());
    let flows = flow_alerts(&alerts);
    assert_eq!(flows.len(), 200);
    let first: f64 = matched(flows[0], "anomaly.score").parse().unwrap();
    let last: f64 = matched(flows[199], "anomaly.score").parse().unwrap();
    assert_eq!(first, last, "the burst did not become normal");
}

#[test]
fn flows_wait_for_their_warm_up() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let config = AnomalyConfig {
        flow_warm_up: 1_000,
        ..AnomalyConfig::default()
    };
    let a = Anomaly::fresh(&config);
    a.alerts(&ordinary(start, 500), Timestamp::now());
    let t = start + SignedDuration::from_hours(3);
    let upload = upload(t, "10.0.0.7");
    assert!(flow_alerts(&a.alerts(&[upload], Timestamp::now())).is_empty());
}

#[test]
fn suricata_flows_are_scored_too() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    let eve = |t: Timestamp, age: u64, sent: u64, received: u64| {
        let fields = serde_json::json!({
            "event_type": "flow", "src_ip": "10.0.0.9", "dest_ip": "93.184.216.34", "dest_port": 22,
            "proto": "TCP", "flow": {"age": age, "bytes_toserver": sent, "bytes_toclient": received},
        });
        let serde_json::Value::Object(map) = fields else {
            unreachable!()
        };
        let mut e = Event::new(Format::SuricataEve, t, t, map);
        e.normalized.src_ip = "10.0.0.9".parse().ok();
        e.normalized.dst_ip = "93.184.216.34".parse().ok();
        e.normalized.dst_port = Some(22);
        e.normalized.channel = Some("flow".into());
        e
    };
    let normal: Vec<Event> = (0..5_000)
        .map(|i| {
            eve(
                start + SignedDuration::from_secs(i * 5),
                1 + (i % 7) as u64,
                3_000 + (i % 13) as u64 * 400,
                4_000 + (i % 11) as u64 * 500,
            )
        })
        .collect();
    assert!(flow_alerts(&a.alerts(&normal, Timestamp::now())).is_empty());
    let t = start + SignedDuration::from_hours(3);
    // An hour-long download of 900 MB over SSH, where sessions last seconds.
    let alerts = a.alerts(&[eve(t, 3_600, 3_500, 900_000_000)], Timestamp::now());
    let flows = flow_alerts(&alerts);
    assert_eq!(flows.len(), 1, "{alerts:#?}");
    assert_eq!(matched(flows[0], "anomaly.baseline"), "service tcp/22 from 10.0.0.9");
    assert!(matched(flows[0], "anomaly.driver").starts_with("bytes received unusually high"));
    assert_eq!(flows[0].techniques[0].id, "T1105");
}

#[test]
fn a_source_can_run_its_own_detectors_and_thresholds() {
    let cfg = rempart_config::Config::parse(
        r#"
        version = 1
        [anomaly.source.quiet]
        detectors = ["edges"]
        [anomaly.source.strict]
        flow_threshold = 500
        "#,
        "t.toml",
    )
    .unwrap();
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let from = |source: &str, events: Vec<Event>| -> Vec<Event> {
        events
            .into_iter()
            .map(|mut e| {
                e.origin.source = source.to_owned();
                e
            })
            .collect()
    };
    let t = start + SignedDuration::from_hours(3);
    let upload = || vec![upload(t, "10.0.0.7")];
    for (source, fires) in [("quiet", false), ("strict", false), ("http", true)] {
        let a = Anomaly::fresh(&cfg.anomaly);
        a.alerts(&from(source, ordinary(start, 3_000)), Timestamp::now());
        let n = flow_alerts(&a.alerts(&from(source, upload()), Timestamp::now())).len();
        assert_eq!(n == 1, fires, "{source}: {n} alerts");
    }
}

#[tokio::test]
async fn a_state_saved_before_the_flow_models_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap());
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    a.alerts(&steady(start), Timestamp::now());
    let mut old = a.snapshot().unwrap();
    // The edge streams' ticks keep the keys they were stored under before.
    assert_eq!(old["edges"]["tick"], 90, "ninety minutes of events");
    assert!(old["edges"]["minute"].is_i64());
    old.as_object_mut().unwrap().remove("flows");
    use rempart_store::Store as _;
    store.state_put("anomaly", &old, Timestamp::now()).await.unwrap();
    let loaded = Anomaly::load(&*store, &AnomalyConfig::default()).await;
    let snap = loaded.snapshot().unwrap();
    assert_eq!(snap["baselines"], old["baselines"], "what was learned is kept");
    assert_eq!(snap["edges"], old["edges"]);
    assert_eq!(snap["flows"]["models"], serde_json::json!({}));
}

/// KDD 99 HTTP (real connections, attacks labelled) replayed as Zeek `conn` records through the
/// live detector: the alerts it raises are mostly attacks and catch most attack bursts.
#[test]
fn live_flows_on_kdd_http_alert_on_attacks() {
    let data = std::env::var("REMPART_DATA").unwrap_or_else(|_| "../../../shared/data".into());
    let path = std::path::Path::new(&data).join("anomaly/kdd99/http.csv.gz");
    let start: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
    let mut events = Vec::new();
    let mut labels = Vec::new();
    rempart_anomaly::datasets::kdd99(&path, |x, attack| {
        let i = events.len() as i64;
        // The features are ln(x + 0.1) of duration, bytes sent and bytes received.
        let back = |v: f64| (v.exp() - 0.1).max(0.0);
        events.push(conn(
            start + SignedDuration::from_millis(i * 100),
            &format!("10.{}.{}.{}", i / 62_500 % 250, i / 250 % 250, i % 250 + 1),
            back(x[0]),
            back(x[1]).round() as u64,
            back(x[2]).round() as u64,
        ));
        labels.push(attack);
    })
    .unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    let mut flagged = std::collections::HashSet::new();
    for chunk in events.chunks(10_000) {
        for x in flow_alerts(&a.alerts(chunk, Timestamp::now())) {
            flagged.insert(x.event);
        }
    }
    let (mut tp, mut fp, mut attacks) = (0u32, 0u32, 0u32);
    for (e, attack) in events.iter().zip(&labels) {
        attacks += u32::from(*attack);
        match (flagged.contains(&e.id), attack) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            _ => {}
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp).max(1.0);
    let recall = f64::from(tp) / f64::from(attacks);
    eprintln!(
        "kdd http live: {tp} attacks flagged of {attacks}, {fp} false alerts, precision {precision:.3}, recall {recall:.3}"
    );
    assert!(precision >= 0.8, "precision {precision}");
    assert!(recall >= 0.95, "recall {recall}");
}

#[test]
fn connections_to_dynamic_ports_share_one_model() {
    let start: Timestamp = "2026-11-20T08:00:00Z".parse().unwrap();
    let a = Anomaly::fresh(&AnomalyConfig::default());
    // Three thousand ordinary connections, each to another port of the dynamic range.
    let ordinary: Vec<Event> = ordinary(start, 3_000)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.normalized.dst_port = Some(49_152 + i as u16);
            e
        })
        .collect();
    assert!(flow_alerts(&a.alerts(&ordinary, Timestamp::now())).is_empty());
    let mut out = upload(start + SignedDuration::from_hours(3), "10.0.0.7");
    out.normalized.dst_port = Some(61_000);
    let alerts = a.alerts(&[out], Timestamp::now());
    let flows = flow_alerts(&alerts);
    assert_eq!(flows.len(), 1, "one warm model for the whole range: {alerts:#?}");
    assert_eq!(
        matched(flows[0], "anomaly.baseline"),
        "service tcp/dynamic from 10.0.0.7"
    );
}

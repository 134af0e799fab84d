//! Live anomaly detection over events: an edge-stream burst raises an explained alert after
//! warm-up, and the whole state survives a save and a load through the store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rempart_anomaly::baseline::Params;
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
    let a = Anomaly::fresh(Params::default(), Vec::new());
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
    let a = Anomaly::fresh(Params::default(), Vec::new());
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
    let whole = Anomaly::fresh(Params::default(), Vec::new());
    let first = Anomaly::fresh(Params::default(), Vec::new());
    let events = steady(start);
    whole.alerts(&events, Timestamp::now());
    first.alerts(&events, Timestamp::now());
    first.save(&*store).await.unwrap();
    drop(first);
    let resumed = Anomaly::load(&*store, Params::default(), Vec::new()).await;
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

//! Sigma correlation rules over streams of events whose times drive the windows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use jiff::Timestamp;
use rempart_detect::RuleSet;
use rempart_model::{Event, Format};
use serde_json::{Value, json};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn security(at_secs: i64, id: u64, data: Value) -> Event {
    let Value::Object(map) =
        json!({"Event": {"System": {"EventID": id, "Channel": "Security", "Computer": "dc01"}, "EventData": data}})
    else {
        unreachable!()
    };
    let t = Timestamp::from_second(T0 + at_secs).unwrap();
    Event::new(Format::Evtx, t, t, map)
}

fn failed(at: i64, user: &str, ip: &str) -> Event {
    security(at, 4625, json!({"TargetUserName": user, "IpAddress": ip}))
}

fn logon(at: i64, user: &str, ip: &str) -> Event {
    security(
        at,
        4624,
        json!({"TargetUserName": user, "IpAddress": ip, "LogonType": 3}),
    )
}

const RULES: &str = r"
title: Failed Logon
name: failed_logon
id: 0b5c0a3e-6c1c-4a7b-9f57-6a8d54b1a001
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625}
    condition: selection
level: low
---
title: Successful Network Logon
name: network_logon
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4624, LogonType: 3}
    condition: selection
level: informational
---
title: Brute Force Against One Account
name: brute_force
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [TargetUserName]
    timespan: 5m
    condition: {gte: 5}
level: high
tags: [attack.credential-access, attack.t1110]
---
title: Password Spray From One Source
correlation:
    type: value_count
    rules: [0b5c0a3e-6c1c-4a7b-9f57-6a8d54b1a001]
    group-by: [IpAddress]
    timespan: 10m
    condition: {field: TargetUserName, gte: 3}
level: high
---
title: Failure And Success Together
correlation:
    type: temporal
    rules: [failed_logon, network_logon]
    group-by: [TargetUserName]
    timespan: 10m
level: medium
---
title: Failure Then Success From One Source
correlation:
    type: temporal_ordered
    rules: [failed_logon, network_logon]
    group-by: [IpAddress]
    timespan: 1m
level: medium
";

fn run(rules: &RuleSet, events: &[Event]) -> Vec<(i64, String)> {
    let mut c = rules.correlator().expect("correlation rules loaded");
    let mut out = Vec::new();
    for e in events {
        for m in rules.evaluate_with(e, Some(&mut c)) {
            out.push((e.time.as_second() - T0, m.rule_title));
        }
    }
    out
}

fn load() -> RuleSet {
    let (rules, report) = RuleSet::load([("corr.yml", RULES)]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.correlations, 4);
    rules
}

#[test]
fn event_count_fires_when_the_window_holds_enough_and_slides_on_event_time() {
    let rules = load();
    // Five failures for alice within 4 minutes: fires at the fifth.
    let burst: Vec<Event> = (0..5).map(|i| failed(i * 60, "alice", "10.0.0.1")).collect();
    let fired = run(&rules, &burst);
    assert_eq!(
        fired,
        [(240, "Brute Force Against One Account".to_owned())],
        "the referenced rule raises nothing itself (generate is false)"
    );
    // Five failures two minutes apart: never five inside any 5-minute window.
    let slow: Vec<Event> = (0..5).map(|i| failed(i * 120, "bob", "10.0.0.2")).collect();
    assert!(run(&rules, &slow).is_empty());
    // Groups are separate: five failures spread over two users do not add up.
    let mixed: Vec<Event> = (0..5)
        .map(|i| failed(i * 10, if i % 2 == 0 { "carol" } else { "dave" }, "10.0.0.3"))
        .collect();
    assert!(
        run(&rules, &mixed)
            .iter()
            .all(|(_, t)| t != "Brute Force Against One Account")
    );
}

#[test]
fn value_count_counts_distinct_values_per_group() {
    let rules = load();
    let spray = [
        failed(0, "u1", "192.0.2.9"),
        failed(30, "u1", "192.0.2.9"),
        failed(60, "u2", "192.0.2.9"),
        failed(90, "u3", "192.0.2.9"),
    ];
    let fired = run(&rules, &spray);
    assert_eq!(fired, [(90, "Password Spray From One Source".to_owned())]);
    // Three users but from three sources: no spray.
    let spread = [
        failed(0, "u1", "192.0.2.1"),
        failed(1, "u2", "192.0.2.2"),
        failed(2, "u3", "192.0.2.3"),
    ];
    assert!(run(&rules, &spread).is_empty());
}

#[test]
fn temporal_fires_when_every_rule_matched_in_the_window() {
    let rules = load();
    let fired = run(&rules, &[failed(0, "erin", "10.9.9.9"), logon(200, "erin", "10.9.9.9")]);
    assert_eq!(fired, [(200, "Failure And Success Together".to_owned())]);
    // Too late: the logon comes after the 10-minute window.
    let fired = run(
        &rules,
        &[failed(0, "gina", "10.9.9.7"), logon(11 * 60, "gina", "10.9.9.7")],
    );
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn generate_true_keeps_the_matches_of_the_referenced_rules() {
    let text = RULES.replace(
        "    timespan: 10m\nlevel: medium",
        "    timespan: 10m\n    generate: true\nlevel: medium",
    );
    assert_ne!(text, RULES);
    let (rules, report) = RuleSet::load([("corr.yml", text.as_str())]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let fired = run(&rules, &[failed(0, "erin", "10.9.9.9"), logon(200, "erin", "10.9.9.9")]);
    assert_eq!(
        fired,
        [
            (0, "Failed Logon".to_owned()),
            (200, "Successful Network Logon".to_owned()),
            (200, "Failure And Success Together".to_owned()),
        ]
    );
}

#[test]
fn temporal_ordered_needs_the_order() {
    let rules = load();
    let fired = run(
        &rules,
        &[failed(0, "ivan", "198.51.100.7"), logon(20, "ivan", "198.51.100.7")],
    );
    assert!(
        fired.contains(&(20, "Failure Then Success From One Source".to_owned())),
        "{fired:?}"
    );
    let fired = run(
        &rules,
        &[logon(0, "judy", "198.51.100.8"), failed(20, "judy", "198.51.100.8")],
    );
    assert!(
        !fired.iter().any(|(_, t)| t == "Failure Then Success From One Source"),
        "{fired:?}"
    );
    let fired = run(
        &rules,
        &[failed(0, "kim", "198.51.100.9"), logon(90, "kim", "198.51.100.9")],
    );
    assert!(
        !fired.iter().any(|(_, t)| t == "Failure Then Success From One Source"),
        "outside 1m: {fired:?}"
    );
}

#[test]
fn a_correlation_on_rules_that_did_not_load_is_rejected_with_its_reason() {
    let text = "title: Orphan\ncorrelation:\n    type: event_count\n    rules: [nowhere]\n    group-by: [User]\n    timespan: 1m\n    condition: {gte: 2}\n";
    let (rules, report) = RuleSet::load([("orphan.yml", text)]);
    assert!(rules.correlator().is_none());
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 1);
    assert!(
        report.rejected[0].reason.contains("`nowhere`"),
        "{}",
        report.rejected[0].reason
    );
}

#[test]
fn alerts_of_a_correlation_carry_its_tags_and_the_completing_event() {
    let rules = load();
    let events: Vec<Event> = (0..5).map(|i| failed(i, "henry", "10.1.1.1")).collect();
    let mut c = rules.correlator().unwrap();
    let alerts = rules.alerts_with(&events, Timestamp::from_second(T0).unwrap(), Some(&mut c));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule_title, "Brute Force Against One Account");
    assert_eq!(alerts[0].event, events[4].id);
    assert_eq!(alerts[0].level.as_deref(), Some("high"));
    assert!(
        alerts[0]
            .matched
            .iter()
            .any(|m| m.field == "TargetUserName" && m.value == "henry"),
        "{:?}",
        alerts[0].matched
    );
    assert!(alerts[0].techniques.iter().any(|t| t.id == "T1110"));
}

/// Live batches arrive in any order: an event later than others still counts in the windows
/// that are open at its own time.
#[test]
fn late_events_count_in_the_windows_still_open() {
    let rules = load();
    let mut c = rules.correlator().unwrap();
    let created = Timestamp::from_second(T0).unwrap();
    let first: Vec<Event> = [0, 60, 240].iter().map(|&t| failed(t, "lara", "10.2.2.2")).collect();
    assert!(rules.alerts_with(&first, created, Some(&mut c)).is_empty());
    // Two failures from between those, delivered afterwards.
    let late: Vec<Event> = [120, 180].iter().map(|&t| failed(t, "lara", "10.2.2.2")).collect();
    let alerts = rules.alerts_with(&late, created, Some(&mut c));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].rule_title, "Brute Force Against One Account");
}

/// A deterministic stream of failed and successful logons: `n` events, a few seconds apart,
/// over `users` accounts and `sources` addresses drawn from a seeded generator.
fn logons(seed: u64, n: usize, users: u64, sources: u64) -> Vec<Event> {
    let mut x = seed;
    let mut draw = |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    let mut at = 0;
    (0..n)
        .map(|_| {
            at += 1 + draw(20) as i64;
            let (user, ip) = (format!("user{}", draw(users)), format!("10.1.0.{}", draw(sources)));
            if draw(4) == 0 {
                logon(at, &user, &ip)
            } else {
                failed(at, &user, &ip)
            }
        })
        .collect()
}

/// In a cluster the events are shared by detect processes and each correlation group lives in
/// one partition, owned by one process at a time. Split that way (three detect processes, four
/// partitions, an owner that dies between its checkpoint and its acknowledgement and one that
/// dies before its checkpoint), the alerts are exactly the one-stream alerts: none missed,
/// none twice.
#[test]
fn correlations_split_by_partition_raise_what_one_stream_raises() {
    let rules = load();
    for seed in [1, 7, 42] {
        let events = logons(seed, 1_500, 12, 6);
        // One stream, from fresh windows (the events are in time order).
        let mut stream = rules.correlator().unwrap();
        let one: std::collections::BTreeSet<_> = rules
            .alerts_with(&events, Timestamp::UNIX_EPOCH, Some(&mut stream))
            .into_iter()
            .map(|a| (a.id, a.rule_title))
            .collect();
        assert!(one.len() > 20, "seed {seed}: {} alerts", one.len());
        let partitions = 4;
        // Detect processes: batches of 50 in turn; each sends its batch's events to partitions.
        let mut detected = std::collections::BTreeSet::new();
        let mut queues: Vec<Vec<Vec<Event>>> = vec![Vec::new(); partitions as usize];
        for batch in events.chunks(50) {
            let (alerts, sent) = rules.partitioned_alerts(batch, partitions, Timestamp::UNIX_EPOCH);
            detected.extend(alerts.into_iter().map(|a| (a.id, a.rule_title)));
            for (p, indexes) in sent {
                queues[p as usize].push(indexes.iter().map(|&i| batch[i].clone()).collect());
            }
        }
        assert!(queues.iter().filter(|q| !q.is_empty()).count() > 1, "the groups spread");
        // Owners: each partition's messages in order, with a checkpoint after each.
        let mut correlated = Vec::new();
        let mut owners: Vec<std::collections::BTreeSet<_>> = Vec::new();
        for (p, messages) in queues.iter().enumerate() {
            let p = p as u32;
            let mut owner = rules.correlator().unwrap();
            let mut checkpoint = (0usize, owner.snapshot());
            let mut next = 0;
            let mut deaths = 0;
            while next < messages.len() {
                let alerts =
                    rules.correlation_alerts(&messages[next], &mut owner, p, partitions, Timestamp::UNIX_EPOCH);
                correlated.extend(alerts.into_iter().map(|a| (p, a.id, a.rule_title)));
                if next == messages.len() / 3 && deaths == 0 {
                    // Dies before its checkpoint: the next owner does this message again.
                    deaths += 1;
                    owner = rules.correlator().unwrap();
                    assert!(owner.restore(checkpoint.1.clone()));
                    next = checkpoint.0;
                    continue;
                }
                next += 1;
                checkpoint = (next, owner.snapshot());
                if next == 2 * messages.len() / 3 && deaths == 1 {
                    // Dies after its checkpoint: the next owner starts from it.
                    deaths += 1;
                    owner = rules.correlator().unwrap();
                    assert!(owner.restore(checkpoint.1.clone()));
                }
            }
        }
        for p in 0..partitions {
            owners.push(
                correlated
                    .iter()
                    .filter(|(q, ..)| *q == p)
                    .map(|(_, id, _)| *id)
                    .collect(),
            );
        }
        for (i, a) in owners.iter().enumerate() {
            for b in &owners[i + 1..] {
                assert!(
                    a.is_disjoint(b),
                    "seed {seed}: an alert raised by two partitions' owners"
                );
            }
        }
        let mut together: std::collections::BTreeSet<_> = detected;
        together.extend(correlated.into_iter().map(|(_, id, title)| (id, title)));
        assert_eq!(together, one, "seed {seed}");
    }
}

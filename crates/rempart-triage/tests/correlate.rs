//! Grouping alerts into incidents: scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use rempart_model::{Alert, Entity, EntityKind, EventId, IncidentSeverity, IncidentStatus, Technique};
use rempart_triage::{Correlator, Observed, Settings};

fn t0() -> Timestamp {
    "2026-11-20T09:00:00Z".parse().unwrap()
}

fn alert(minutes: i64, rule: &str, level: &str, tactic: &str, host: &str, user: Option<&str>) -> Observed {
    let time = t0() + SignedDuration::from_mins(minutes);
    let alert = Alert {
        id: EventId::generate(),
        time,
        created: time,
        rule_id: Some(format!("rule-{rule}")),
        rule_title: rule.to_owned(),
        level: Some(level.to_owned()),
        tags: vec![format!("attack.{}", tactic.replace('-', "_"))],
        techniques: vec![Technique {
            id: "T1059.001".into(),
            name: None,
            tactics: vec![tactic.to_owned()],
        }],
        matched: Vec::new(),
        event: EventId::generate(),
        host: Some(host.to_owned()),
        user: user.map(str::to_owned),
    };
    let entities = rempart_triage::entity::of_alert(&alert, None);
    Observed { alert, entities }
}

fn with(mut o: Observed, kind: EntityKind, value: &str) -> Observed {
    o.entities.insert(Entity::new(kind, value));
    o
}

#[test]
fn one_intrusion_is_one_incident_and_unrelated_alerts_stay_apart() {
    let mut c = Correlator::new(Settings::default());
    let alerts = vec![
        alert(
            0,
            "Suspicious Office child process",
            "high",
            "execution",
            "WS-FIN-07.corp.example.eu",
            Some("CORP\\alice"),
        ),
        alert(
            3,
            "Encoded PowerShell",
            "medium",
            "execution",
            "ws-fin-07",
            Some("alice"),
        ),
        alert(
            9,
            "LSASS access",
            "critical",
            "credential-access",
            "WS-FIN-07",
            Some("alice"),
        ),
        // Lateral movement: another host, the same account.
        alert(
            20,
            "PsExec service installed",
            "high",
            "lateral-movement",
            "SRV-FILE-01",
            Some("alice"),
        ),
        // The file server then talks to the exfiltration address.
        with(
            alert(40, "Large upload", "medium", "exfiltration", "SRV-FILE-01", None),
            EntityKind::Ip,
            "45.137.21.9",
        ),
        // Unrelated: other hosts, other people.
        alert(
            15,
            "Scheduled task created",
            "low",
            "persistence",
            "WS-HR-02",
            Some("bob"),
        ),
        alert(30, "Whoami run", "low", "discovery", "LNX-BUILD-4", Some("carol")),
    ];
    let update = c.observe(&alerts, t0());
    assert_eq!(update.links.len(), 7);
    let intrusion = update.links[0].1;
    for (alert, inc) in &update.links[..5] {
        assert_eq!(*inc, intrusion, "alert {alert} is not in the intrusion's incident");
    }
    assert_ne!(update.links[5].1, intrusion);
    assert_ne!(update.links[6].1, intrusion);
    assert_ne!(update.links[5].1, update.links[6].1);
    let inc = c.get(intrusion).unwrap();
    assert_eq!(inc.alert_count, 5);
    assert_eq!(inc.max_level, IncidentSeverity::Critical);
    assert!(inc.title.starts_with("LSASS access on "), "{}", inc.title);
    assert!(inc.entities.contains(&Entity::new(EntityKind::Host, "srv-file-01")));
    assert!(inc.entities.contains(&Entity::new(EntityKind::Ip, "45.137.21.9")));
    assert_eq!(
        inc.tactics,
        ["execution", "credential-access", "lateral-movement", "exfiltration"]
    );
    // Critical rule, two hosts, four kill-chain stages: critical.
    assert_eq!(inc.severity, IncidentSeverity::Critical);
    assert!(
        inc.history.iter().any(|h| h.reason.contains("user:alice")),
        "{:?}",
        inc.history
    );
}

#[test]
fn an_alert_linking_two_incidents_merges_them_with_the_reason() {
    let mut c = Correlator::new(Settings::default());
    let first = c.observe(&[alert(0, "A", "high", "execution", "ws-1", Some("dave"))], t0());
    let second = c.observe(&[alert(5, "B", "high", "execution", "ws-2", Some("erin"))], t0());
    let (a, b) = (first.links[0].1, second.links[0].1);
    assert_ne!(a, b);
    // Dave logs on to ws-2: both incidents are one intrusion.
    let bridge = c.observe(
        &[alert(10, "C", "medium", "lateral-movement", "ws-2", Some("dave"))],
        t0(),
    );
    assert_eq!(bridge.links[0].1, a, "the older incident survives");
    assert_eq!(bridge.moves, vec![(b, a)]);
    let merged = bridge.incidents.iter().find(|i| i.id == b).unwrap();
    assert_eq!(merged.status, IncidentStatus::Merged);
    assert_eq!(merged.merged_into, Some(a));
    assert!(merged.history.last().unwrap().reason.contains("links them through"));
    let survivor = c.get(a).unwrap();
    assert_eq!(survivor.alert_count, 3);
    assert!(c.get(b).is_none());
}

#[test]
fn time_window_and_kill_chain_progression() {
    let mut c = Correlator::new(Settings::default());
    let first = c.observe(&[alert(0, "Recon", "medium", "discovery", "ws-3", None)], t0());
    // Three hours later, the same stage on the same host: a new incident.
    let same_stage = c.observe(&[alert(180, "Recon again", "medium", "discovery", "ws-3", None)], t0());
    assert_ne!(same_stage.links[0].1, first.links[0].1);
    // Five hours after the first, a later stage on the same host: the intrusion progressing.
    let later = c.observe(&[alert(300, "Exfil", "high", "exfiltration", "ws-3", None)], t0());
    assert!(
        [first.links[0].1, same_stage.links[0].1].contains(&later.links[0].1),
        "a later kill-chain stage within a day joins"
    );
    // Two days later nothing joins.
    let much_later = c.observe(&[alert(2 * 24 * 60, "Impact", "high", "impact", "ws-3", None)], t0());
    assert!(![first.links[0].1, same_stage.links[0].1].contains(&much_later.links[0].1));
}

#[test]
fn built_in_accounts_and_ignored_entities_never_link() {
    let mut settings = Settings::default();
    settings.ignore.insert(Entity::new(EntityKind::Ip, "10.0.0.53"));
    let mut c = Correlator::new(settings);
    let update = c.observe(
        &[
            with(
                alert(0, "X", "medium", "execution", "ws-a", Some("NT AUTHORITY\\SYSTEM")),
                EntityKind::Ip,
                "10.0.0.53",
            ),
            with(
                alert(1, "Y", "medium", "execution", "ws-b", Some("SYSTEM")),
                EntityKind::Ip,
                "10.0.0.53",
            ),
        ],
        t0(),
    );
    assert_ne!(update.links[0].1, update.links[1].1);
}

#[test]
fn a_closed_incident_takes_no_more_alerts() {
    let mut c = Correlator::new(Settings::default());
    let first = c.observe(&[alert(0, "A", "high", "execution", "ws-9", None)], t0());
    let mut inc = c.get(first.links[0].1).unwrap().clone();
    inc.status = IncidentStatus::Resolved;
    c.replace(inc);
    let again = c.observe(&[alert(5, "A", "high", "execution", "ws-9", None)], t0());
    assert_ne!(again.links[0].1, first.links[0].1);
}

#[test]
fn split_moves_alerts_to_a_new_incident_with_the_reason() {
    let mut c = Correlator::new(Settings::default());
    let alerts = vec![
        alert(0, "A", "high", "execution", "ws-5", Some("frank")),
        alert(1, "B", "low", "discovery", "ws-5", Some("frank")),
        alert(2, "C", "critical", "impact", "ws-5", Some("frank")),
    ];
    let update = c.observe(&alerts, t0());
    let source = c.get(update.links[0].1).unwrap().clone();
    assert_eq!(source.alert_count, 3);
    let (kept, split) = c
        .split(
            &source,
            &alerts[..2],
            &alerts[2..],
            "token:analyst",
            "ransomware test, separate case",
            t0(),
        )
        .unwrap();
    assert_eq!(kept.alert_count, 2);
    assert_eq!(kept.max_level, IncidentSeverity::High);
    assert_eq!(split.alert_count, 1);
    assert_eq!(split.max_level, IncidentSeverity::Critical);
    assert!(split.history[0].reason.contains("ransomware test"));
    assert_eq!(split.history[0].actor, "token:analyst");
    let entities: BTreeSet<_> = kept.entities.iter().collect();
    assert!(entities.contains(&Entity::new(EntityKind::User, "frank")));
}

#[test]
fn asset_criticality_raises_severity() {
    let config = rempart_config::Incidents {
        assets: vec![rempart_config::Asset {
            kind: "host".into(),
            pattern: "dc-*".into(),
            criticality: "critical".into(),
            tags: vec!["domain-controller".into()],
        }],
        ..rempart_config::Incidents::default()
    };
    let mut c = Correlator::new(Settings::from_config(&config));
    let on_dc = c.observe(&[alert(0, "A", "medium", "execution", "DC-01.corp", None)], t0());
    let on_ws = c.observe(&[alert(0, "A", "medium", "execution", "ws-1", None)], t0());
    let dc = c.get(on_dc.links[0].1).unwrap();
    let ws = c.get(on_ws.links[0].1).unwrap();
    assert!(dc.score > ws.score);
    assert_eq!(dc.assets, ["host:dc-01 (critical; domain-controller)"]);
    assert_eq!(ws.severity, IncidentSeverity::Medium);
    assert_eq!(dc.severity, IncidentSeverity::High);
}

#[test]
fn an_incident_lists_each_entity_once() {
    let mut c = Correlator::new(Settings::default());
    let first = with(
        with(
            with(
                alert(0, "A", "high", "execution", "ws-fin-07", Some("CORP\\m.dubois")),
                EntityKind::Host,
                "srv-file-01",
            ),
            EntityKind::Ip,
            "10.20.2.136",
        ),
        EntityKind::Ip,
        "10.20.7.41",
    );
    // A new account (it sorts before the addresses) and a known address: the account must not
    // hide the address from the lookup.
    let second = with(
        alert(5, "B", "high", "collection", "srv-file-01", Some("CORP\\adm.dubois")),
        EntityKind::Ip,
        "10.20.7.41",
    );
    c.observe(&[first], t0());
    let update = c.observe(&[second], t0());
    let incident = &update.incidents[0];
    assert!(
        incident.entities.windows(2).all(|w| w[0] < w[1]),
        "sorted, each once: {:?}",
        incident.entities
    );
    assert_eq!(incident.entities.iter().filter(|e| e.value == "10.20.7.41").count(), 1);
}

//! Shared fixtures: an incident, a verdict, connectors.

#![allow(dead_code, reason = "each test file uses its own part")]

use std::collections::BTreeMap;
use std::path::Path;

use jiff::Timestamp;
use rempart_config::{Connector, ConnectorKind, gateway::Secret};
use rempart_model::{
    Classification, Entity, EntityKind, EventId, Incident, IncidentSeverity, IncidentStatus, TriageMode, TriageState,
    Verdict,
};
use rempart_respond::{CheckContext, Playbook};

pub fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn connectors() -> BTreeMap<String, Connector> {
    let mut m = BTreeMap::new();
    let mut add = |name: &str, kind: ConnectorKind| {
        m.insert(
            name.to_owned(),
            Connector {
                name: name.to_owned(),
                kind,
                dry_run: false,
                timeout_secs: 5,
            },
        );
    };
    add(
        "soar",
        ConnectorKind::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret: Secret::Env("X".into()),
        },
    );
    add(
        "chat",
        ConnectorKind::Chat {
            url: "http://127.0.0.1:9/chat".into(),
            format: rempart_config::ChatFormat::Slack,
        },
    );
    add(
        "firewall",
        ConnectorKind::Command {
            program: "/usr/sbin/nft".into(),
            actions: BTreeMap::from([(
                "block_ip".to_owned(),
                vec!["add".to_owned(), "element".to_owned(), "{{ target }}".to_owned()],
            )]),
        },
    );
    m
}

pub fn check(yaml: &str) -> Result<Playbook, rempart_respond::PlaybookError> {
    let c = connectors();
    rempart_respond::playbook::parse(
        yaml,
        Path::new("test.yml"),
        CheckContext {
            connectors: &c,
            default_approval_timeout_secs: 3_600,
        },
    )
}

pub fn playbook(yaml: &str) -> Playbook {
    check(yaml).unwrap_or_else(|e| panic!("{e}"))
}

pub fn incident(severity: IncidentSeverity, entities: &[(EntityKind, &str)]) -> Incident {
    let now = t("2026-03-02T10:00:00Z");
    Incident {
        id: EventId::generate(),
        title: "Suspicious PowerShell on ws-07".into(),
        status: IncidentStatus::New,
        severity,
        score: 70,
        max_level: severity,
        owner: None,
        created: now,
        updated: now,
        first_seen: now,
        last_seen: now,
        alert_count: 3,
        rules: vec!["rule-1".into()],
        entities: entities.iter().map(|(k, v)| Entity::new(*k, *v)).collect(),
        techniques: vec!["T1059.001".into()],
        tactics: vec!["execution".into()],
        assets: Vec::new(),
        merged_into: None,
        history: Vec::new(),
        triage: None,
    }
}

pub fn verdict(incident: &mut Incident, classification: Classification, confidence: f64) -> Verdict {
    let v = Verdict {
        id: EventId::generate(),
        incident: incident.id,
        created: incident.created,
        mode: TriageMode::Model,
        provider: Some("fake".into()),
        model: Some("fake".into()),
        classification,
        confidence,
        severity: incident.severity,
        summary: "summary".into(),
        timeline: Vec::new(),
        techniques: Vec::new(),
        entities: Vec::new(),
        recommended_actions: Vec::new(),
        queries: Vec::new(),
        evidence: Vec::new(),
        flags: Vec::new(),
        injection: Vec::new(),
        domain: None,
        steps: 1,
        tokens: 10,
    };
    incident.triage = Some(TriageState {
        verdict: v.id,
        time: v.created,
        mode: v.mode,
        classification,
        stale: false,
        flags: Vec::new(),
        confidence: Some(90),
        held: None,
    });
    v
}

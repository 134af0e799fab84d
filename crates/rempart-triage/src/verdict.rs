//! The verdict a model must write, as a JSON Schema; reading and checking what it wrote; and
//! the deterministic verdict used when no model can answer.

use std::collections::HashSet;
use std::sync::LazyLock;

use jiff::Timestamp;
use rempart_model::{
    ActionKind, Alert, Classification, EntityKind, EventId, Evidence, Incident, IncidentSeverity, InjectionSign,
    Recommendation, TimelineEntry, ToolUse, TriageMode, Verdict,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the model's answer (what `submit_verdict` takes). Every property is
/// required and nothing else is allowed, which is what OpenAI's strict mode asks for.
pub fn schema() -> Value {
    let actions: Vec<&str> = ActionKind::ALL.iter().map(|a| a.as_str()).collect();
    let severities: Vec<&str> = IncidentSeverity::ALL.iter().map(|s| s.as_str()).collect();
    let events = json!({"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 20});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["classification", "confidence", "severity", "summary", "timeline", "techniques",
                     "entities", "recommended_actions", "evidence"],
        "properties": {
            "classification": {"type": "string", "enum": ["true_positive", "benign", "false_positive"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "severity": {"type": "string", "enum": severities},
            "summary": {"type": "string", "maxLength": 4000},
            "timeline": {"type": "array", "maxItems": 50, "items": {
                "type": "object", "additionalProperties": false,
                "required": ["time", "description", "events"],
                "properties": {
                    "time": {"type": "string", "maxLength": 64},
                    "description": {"type": "string", "maxLength": 1000},
                    "events": events.clone()
                }
            }},
            "techniques": {"type": "array", "maxItems": 30,
                           "items": {"type": "string", "pattern": "^T[0-9]{4}(\\.[0-9]{3})?$"}},
            "entities": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 300}},
            "recommended_actions": {"type": "array", "maxItems": 20, "items": {
                "type": "object", "additionalProperties": false,
                "required": ["action", "target", "reason"],
                "properties": {
                    "action": {"type": "string", "enum": actions},
                    "target": {"type": "string", "maxLength": 300},
                    "reason": {"type": "string", "maxLength": 1000}
                }
            }},
            "evidence": {"type": "array", "maxItems": 50, "items": {
                "type": "object", "additionalProperties": false,
                "required": ["claim", "events"],
                "properties": {
                    "claim": {"type": "string", "maxLength": 1000},
                    "events": events
                }
            }}
        }
    })
}

static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> =
    LazyLock::new(|| jsonschema::validator_for(&schema()).map_err(|e| e.to_string()));

/// What the model wrote, once it matched the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelVerdict {
    pub classification: Classification,
    pub confidence: f64,
    pub severity: IncidentSeverity,
    pub summary: String,
    pub timeline: Vec<TimelineEntry>,
    pub techniques: Vec<String>,
    pub entities: Vec<String>,
    pub recommended_actions: Vec<Recommendation>,
    pub evidence: Vec<Evidence>,
}

/// Checks a model's answer against the schema; the errors say where and why (at most five),
/// so that the model can correct itself.
pub fn parse(text: &str) -> Result<ModelVerdict, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let validator = VALIDATOR
        .as_ref()
        .map_err(|e| format!("the verdict schema is invalid: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .take(5)
        .map(|e| format!("{e} at `{}`", e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(format!("the verdict does not match the schema: {}", errors.join("; ")));
    }
    serde_json::from_value(v).map_err(|e| format!("the verdict cannot be read: {e}"))
}

/// A verdict's own facts besides what the model wrote.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub incident: EventId,
    pub created: Timestamp,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub domain: Option<String>,
    pub queries: Vec<ToolUse>,
    pub steps: u32,
    pub tokens: u64,
    pub flags: Vec<String>,
    /// The signs of injection in what the model read.
    pub injection: Vec<InjectionSign>,
}

/// The stored verdict from a model's answer. Evidence must cite events the model was shown
/// or found with its tools: anything else is dropped and flagged `unknown_event_cited`.
pub fn from_model(m: ModelVerdict, known_events: &HashSet<String>, p: Provenance) -> Verdict {
    let mut flags = p.flags;
    let mut unknown = false;
    let mut keep_known = |events: Vec<String>| -> Vec<String> {
        let (ok, bad): (Vec<String>, Vec<String>) = events.into_iter().partition(|e| known_events.contains(e));
        unknown |= !bad.is_empty();
        ok
    };
    let evidence: Vec<Evidence> = m
        .evidence
        .into_iter()
        .map(|e| Evidence {
            events: keep_known(e.events),
            claim: e.claim,
        })
        .collect();
    let timeline: Vec<TimelineEntry> = m
        .timeline
        .into_iter()
        .map(|t| TimelineEntry {
            events: keep_known(t.events),
            time: t.time,
            description: t.description,
        })
        .collect();
    if unknown {
        flags.push("unknown_event_cited".into());
    }
    if evidence.iter().all(|e| e.events.is_empty()) && m.classification == Classification::TruePositive {
        flags.push("no_evidence".into());
    }
    Verdict {
        id: EventId::generate(),
        incident: p.incident,
        created: p.created,
        mode: TriageMode::Model,
        provider: p.provider,
        model: p.model,
        classification: m.classification,
        confidence: m.confidence.clamp(0.0, 1.0),
        severity: m.severity,
        summary: m.summary,
        timeline,
        techniques: m.techniques,
        entities: m.entities,
        recommended_actions: m.recommended_actions,
        queries: p.queries,
        evidence,
        flags,
        injection: p.injection,
        domain: p.domain,
        steps: p.steps,
        tokens: p.tokens,
    }
}

/// Whether an alert comes from threat-intelligence matching.
pub fn is_intel(alert: &Alert) -> bool {
    alert.matched.iter().any(|m| m.field.starts_with("ioc."))
}

/// Whether an alert is a correlation (several events over a window).
pub fn is_correlation(alert: &Alert) -> bool {
    alert.matched.iter().any(|m| {
        matches!(
            m.field.as_str(),
            "eventcount" | "valuecount" | "temporal" | "temporalordered" | "valuesum" | "valueavg" | "valuepercentile"
        )
    })
}

/// Why a model's verdict must wait for a person instead of taking effect: the model read text
/// flagged as an injection attempt, or it concludes less than the deterministic triage did
/// (a true positive called benign or a false positive, a lower severity). An obeying model
/// then cannot switch the automated response off; `None` when the verdict may stand.
pub fn must_hold(model: &Verdict, deterministic: &Verdict) -> Option<&'static str> {
    if model.flags.iter().any(|f| f == "prompt_injection_suspected") {
        Some("the model read text flagged as a prompt-injection attempt")
    } else if deterministic.classification == Classification::TruePositive
        && model.classification != Classification::TruePositive
    {
        Some("the model calls a true positive of the deterministic triage benign or a false positive")
    } else if model.severity < deterministic.severity {
        Some("the model lowers the severity the deterministic triage found")
    } else {
        None
    }
}

/// The verdict without a model: rule levels, intelligence hits, correlation and kill-chain
/// spread decide; recommendations follow the tactics and entities. Always labelled
/// `degraded` and never more than 0.7 confident.
pub fn degraded(incident: &Incident, alerts: &[Alert], flags: Vec<String>, now: Timestamp) -> Verdict {
    let intel = alerts.iter().any(is_intel);
    let correlation = alerts.iter().any(is_correlation);
    // One rule tagged with several tactics is not a progression: stages count across rules.
    let stages: HashSet<usize> = if incident.rules.len() >= 2 {
        incident
            .tactics
            .iter()
            .filter_map(|t| crate::severity::stage(t))
            .collect()
    } else {
        HashSet::new()
    };
    let high = incident.max_level >= IncidentSeverity::High;
    let mut reasons = Vec::new();
    if high {
        reasons.push(format!("a rule of level {} matched", incident.max_level));
    }
    if intel {
        reasons.push("an indicator of compromise matched".to_owned());
    }
    if correlation {
        reasons.push("a correlation rule completed".to_owned());
    }
    if stages.len() >= 2 {
        reasons.push(format!("{} kill-chain stages on shared entities", stages.len()));
    }
    let signals = reasons.len();
    let (classification, confidence) = match signals {
        0 if incident.max_level <= IncidentSeverity::Low => (Classification::Benign, 0.4),
        0 => (Classification::TruePositive, 0.3),
        1 => (Classification::TruePositive, 0.5),
        2 => (Classification::TruePositive, 0.6),
        _ => (Classification::TruePositive, 0.7),
    };
    let mut actions: Vec<Recommendation> = Vec::new();
    let mut add = |action: ActionKind, target: &str, reason: String| {
        if !actions.iter().any(|a| a.action == action && a.target == target) {
            actions.push(Recommendation {
                action,
                target: target.to_owned(),
                reason,
            });
        }
    };
    let tactic = |t: &str| incident.tactics.iter().any(|x| x == t);
    let entities = |k: EntityKind| incident.entities.iter().filter(move |e| e.kind == k);
    if classification == Classification::TruePositive {
        add(
            ActionKind::Notify,
            "on-call",
            "triaged without a model: an analyst should confirm".into(),
        );
        add(
            ActionKind::CreateTicket,
            &incident.title,
            "track the investigation".into(),
        );
        if tactic("credential-access") {
            for u in entities(EntityKind::User).take(5) {
                add(
                    ActionKind::ResetCredentials,
                    &u.value,
                    "credential access was detected for this account".into(),
                );
            }
        }
        if tactic("lateral-movement") || tactic("impact") || (tactic("execution") && high) {
            for h in entities(EntityKind::Host).take(5) {
                add(
                    ActionKind::CollectForensics,
                    &h.value,
                    "collect evidence before containment".into(),
                );
                add(
                    ActionKind::IsolateHost,
                    &h.value,
                    "stop the intrusion from spreading".into(),
                );
            }
        }
        if tactic("command-and-control") || tactic("exfiltration") || intel {
            for ip in entities(EntityKind::Ip)
                .filter(|e| e.value.parse::<std::net::IpAddr>().is_ok_and(is_public))
                .take(5)
            {
                add(
                    ActionKind::BlockIp,
                    &ip.value,
                    "an external address the intrusion talked to".into(),
                );
            }
            for d in entities(EntityKind::Domain).take(5) {
                add(
                    ActionKind::BlockDomain,
                    &d.value,
                    "a domain the intrusion contacted".into(),
                );
            }
        }
    } else {
        add(ActionKind::Monitor, &incident.title, "low-level activity only".into());
    }
    let evidence: Vec<Evidence> = incident
        .rules
        .iter()
        .take(20)
        .map(|rule| Evidence {
            claim: format!("rule `{rule}` matched"),
            events: alerts
                .iter()
                .filter(|a| &a.rule_title == rule)
                .take(5)
                .map(|a| a.event.to_string())
                .collect(),
        })
        .collect();
    let timeline = alerts
        .iter()
        .take(50)
        .map(|a| TimelineEntry {
            time: a.time.to_string(),
            description: format!("{} ({})", a.rule_title, a.level.as_deref().unwrap_or("unknown level")),
            events: vec![a.event.to_string()],
        })
        .collect();
    let summary = if reasons.is_empty() {
        format!(
            "Triaged without a model. {} alert(s) from {} rule(s) at most {}: no strong signal.",
            incident.alert_count,
            incident.rules.len(),
            incident.max_level
        )
    } else {
        format!(
            "Triaged without a model. {} alert(s) from {} rule(s): {}.",
            incident.alert_count,
            incident.rules.len(),
            reasons.join("; ")
        )
    };
    Verdict {
        id: EventId::generate(),
        incident: incident.id,
        created: now,
        mode: TriageMode::Degraded,
        provider: None,
        model: None,
        classification,
        confidence,
        severity: incident.severity,
        summary,
        timeline,
        techniques: incident.techniques.clone(),
        entities: incident.entities.iter().map(ToString::to_string).collect(),
        recommended_actions: actions,
        queries: Vec::new(),
        evidence,
        flags,
        injection: Vec::new(),
        domain: None,
        steps: 0,
        tokens: 0,
    }
}

/// The declared activity an incident lies wholly inside: its span, every host and account it
/// names, and every alert shown fall inside one window the institution declared. Never when an
/// indicator of compromise matched (a declared test does not explain known-bad infrastructure)
/// or when alerts are missing from those shown.
pub fn declared<'a>(
    incident: &Incident,
    alerts: &[Alert],
    windows: &'a [rempart_config::incidents::Declared],
) -> Option<&'a rempart_config::incidents::Declared> {
    if alerts.is_empty() || (alerts.len() as u64) < incident.alert_count || alerts.iter().any(is_intel) {
        return None;
    }
    let hosts: Vec<&str> = incident
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Host)
        .map(|e| e.value.as_str())
        .collect();
    let users: Vec<&str> = incident
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::User)
        .map(|e| e.value.as_str())
        .collect();
    windows.iter().find(|w| {
        (w.from..=w.until).contains(&incident.first_seen)
            && (w.from..=w.until).contains(&incident.last_seen)
            && hosts.iter().all(|h| w.covers_host(h))
            && users.iter().all(|u| w.covers_account(u))
            && alerts
                .iter()
                .all(|a| w.covers(a.host.as_deref(), a.user.as_deref(), a.time))
    })
}

/// The deterministic verdict on an incident inside declared activity: benign, said why, with
/// the ticket to check it against; nothing to contain.
pub fn within_declared(v: &mut Verdict, d: &rempart_config::incidents::Declared) {
    v.classification = Classification::Benign;
    v.confidence = 0.6;
    v.severity = IncidentSeverity::Informational;
    v.recommended_actions = vec![Recommendation {
        action: ActionKind::Monitor,
        target: d.name.clone(),
        reason: format!(
            "inside the declared {}: confirm with its owner that this activity is theirs",
            d.describe()
        ),
    }];
    v.summary = format!(
        "Inside the declared {}, {} to {}. {}",
        d.describe(),
        d.from,
        d.until,
        v.summary
    );
    if !v.flags.iter().any(|f| f == "declared_activity") {
        v.flags.push("declared_activity".into());
    }
}

fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast())
        }
        std::net::IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_accepts_a_good_verdict_and_names_what_is_wrong() {
        let good = json!({
            "classification": "true_positive", "confidence": 0.9, "severity": "high",
            "summary": "s", "timeline": [], "techniques": ["T1003.001"], "entities": [],
            "recommended_actions": [{"action": "isolate_host", "target": "ws1", "reason": "r"}],
            "evidence": [{"claim": "c", "events": ["e1"]}]
        });
        assert!(parse(&good.to_string()).is_ok());
        let mut bad = good.clone();
        bad["recommended_actions"][0]["action"] = json!("format_disk");
        let err = parse(&bad.to_string()).err().unwrap_or_default();
        assert!(err.contains("/recommended_actions/0/action"), "{err}");
        let mut extra = good;
        extra["execute"] = json!("rm -rf /");
        assert!(parse(&extra.to_string()).is_err());
        assert!(parse("not json").is_err());
    }

    fn verdict(classification: Classification, severity: IncidentSeverity, flags: &[&str]) -> Verdict {
        Verdict {
            id: EventId::generate(),
            incident: EventId::generate(),
            created: Timestamp::UNIX_EPOCH,
            mode: rempart_model::TriageMode::Model,
            provider: None,
            model: None,
            classification,
            confidence: 1.0,
            severity,
            summary: String::new(),
            timeline: Vec::new(),
            techniques: Vec::new(),
            entities: Vec::new(),
            recommended_actions: Vec::new(),
            queries: Vec::new(),
            evidence: Vec::new(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            injection: Vec::new(),
            domain: None,
            steps: 0,
            tokens: 0,
        }
    }

    #[test]
    fn a_model_verdict_waits_for_a_person_when_it_concludes_less_or_read_an_injection() {
        use Classification::*;
        use IncidentSeverity::*;
        let det = verdict(TruePositive, High, &[]);
        assert!(must_hold(&verdict(Benign, High, &[]), &det).is_some());
        assert!(must_hold(&verdict(FalsePositive, Critical, &[]), &det).is_some());
        assert!(must_hold(&verdict(TruePositive, Medium, &[]), &det).is_some());
        assert!(must_hold(&verdict(TruePositive, Critical, &["prompt_injection_suspected"]), &det).is_some());
        assert!(must_hold(&verdict(TruePositive, High, &[]), &det).is_none());
        assert!(must_hold(&verdict(TruePositive, Critical, &[]), &det).is_none());
        // A deterministic benign leaves the model free to agree or to call it worse.
        let calm = verdict(Benign, Low, &[]);
        assert!(must_hold(&verdict(FalsePositive, Low, &[]), &calm).is_none());
        assert!(must_hold(&verdict(TruePositive, High, &[]), &calm).is_none());
    }

    fn window() -> rempart_config::incidents::Declared {
        rempart_config::incidents::Declared {
            name: "Q4 test".into(),
            kind: "penetration_test".into(),
            reference: "PT-1".into(),
            hosts: vec!["ws-fin-07.corp.example.eu".into(), "srv-*".into()],
            accounts: vec!["pentest.*".into()],
            from: "2026-11-20T08:00:00Z".parse().unwrap(),
            until: "2026-11-20T18:00:00Z".parse().unwrap(),
        }
    }

    fn alert(time: &str, host: &str, user: &str, rule: &str) -> Alert {
        Alert {
            id: EventId::generate(),
            time: time.parse().unwrap(),
            created: time.parse().unwrap(),
            rule_id: None,
            rule_title: rule.into(),
            level: Some("high".into()),
            tags: Vec::new(),
            techniques: Vec::new(),
            matched: Vec::new(),
            event: EventId::generate(),
            host: Some(host.into()),
            user: Some(user.into()),
        }
    }

    fn incident_of(alerts: &[Alert]) -> Incident {
        let mut entities = Vec::new();
        for a in alerts {
            entities.push(rempart_model::Entity::new(EntityKind::Host, a.host.clone().unwrap()));
            entities.push(rempart_model::Entity::new(EntityKind::User, a.user.clone().unwrap()));
        }
        Incident {
            id: EventId::generate(),
            title: "t".into(),
            status: rempart_model::IncidentStatus::New,
            severity: IncidentSeverity::High,
            score: 50,
            max_level: IncidentSeverity::High,
            owner: None,
            created: alerts[0].time,
            updated: alerts[0].time,
            first_seen: alerts.iter().map(|a| a.time).min().unwrap(),
            last_seen: alerts.iter().map(|a| a.time).max().unwrap(),
            alert_count: alerts.len() as u64,
            rules: alerts.iter().map(|a| a.rule_title.clone()).collect(),
            entities,
            techniques: Vec::new(),
            tactics: vec!["credential-access".into()],
            assets: Vec::new(),
            merged_into: None,
            history: Vec::new(),
            triage: None,
        }
    }

    #[test]
    fn an_incident_is_declared_activity_only_when_wholly_inside_the_window() {
        let windows = [window()];
        let inside = [
            alert(
                "2026-11-20T09:00:00Z",
                "WS-FIN-07",
                "CORP\\pentest.anna",
                "Mimikatz Use",
            ),
            alert(
                "2026-11-20T09:05:00Z",
                "srv-db-02.corp.example.eu",
                "pentest.anna@corp",
                "LSASS Dump",
            ),
        ];
        let d = declared(&incident_of(&inside), &inside, &windows).expect("inside the declared test");
        let mut v = degraded(&incident_of(&inside), &inside, Vec::new(), Timestamp::UNIX_EPOCH);
        assert_eq!(v.classification, Classification::TruePositive);
        within_declared(&mut v, d);
        assert_eq!(v.classification, Classification::Benign);
        assert!(v.summary.contains("Q4 test") && v.recommended_actions[0].reason.contains("PT-1"));
        assert!(v.flags.contains(&"declared_activity".to_owned()));

        // One alert outside the window's time, hosts or accounts, an indicator of compromise,
        // or alerts not shown: the incident is not explained by the declaration.
        let outside = [
            ("2026-11-20T19:00:00Z", "ws-fin-07", "pentest.anna", "Mimikatz Use"),
            ("2026-11-20T09:00:00Z", "ws-hr-01", "pentest.anna", "Mimikatz Use"),
            ("2026-11-20T09:00:00Z", "ws-fin-07", "m.dubois", "Mimikatz Use"),
        ];
        for (time, host, user, rule) in outside {
            let alerts = [inside[0].clone(), alert(time, host, user, rule)];
            assert!(
                declared(&incident_of(&alerts), &alerts, &windows).is_none(),
                "{host} {user} {time}"
            );
        }
        let mut intel = inside.clone();
        intel[1].matched = vec![rempart_model::MatchedField::new("ioc.ip", "203.0.113.9")];
        assert!(is_intel(&intel[1]));
        assert!(declared(&incident_of(&intel), &intel, &windows).is_none());
        let mut more = incident_of(&inside);
        more.alert_count = 40;
        assert!(declared(&more, &inside, &windows).is_none());
        assert!(declared(&incident_of(&inside), &inside, &[]).is_none());
    }
}

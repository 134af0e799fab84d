//! Properties of the verdict parser (model output is outside input) and of correlation.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rempart_model::{Alert, EventId, Incident, IncidentStatus, Technique};
use rempart_triage::verdict;
use rempart_triage::{Correlator, Observed, Settings};
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_ ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("classification".to_owned()),
                    Just("confidence".to_owned()),
                    Just("evidence".to_owned()),
                    Just("recommended_actions".to_owned()),
                    "[a-z]{1,8}".prop_map(String::from)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn provenance() -> verdict::Provenance {
    verdict::Provenance {
        incident: EventId::generate(),
        created: Timestamp::UNIX_EPOCH,
        provider: None,
        model: None,
        domain: None,
        queries: Vec::new(),
        steps: 1,
        tokens: 0,
        flags: Vec::new(),
        injection: Vec::new(),
    }
}

proptest! {
    /// Whatever a model writes, parsing answers Ok or an error naming what is wrong; never a
    /// panic.
    #[test]
    fn any_answer_parses_or_is_refused_with_a_reason(v in arb_json(), raw in ".{0,64}") {
        for text in [v.to_string(), raw] {
            match verdict::parse(&text) {
                Ok(_) => {}
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }

    /// A well-formed verdict is accepted, keeps its classification, and cites only events the
    /// agent knows, whatever else it claims.
    #[test]
    fn valid_verdicts_keep_only_known_evidence(
        class in prop::sample::select(vec!["true_positive", "benign", "false_positive"]),
        confidence in 0.0f64..=1.0,
        cited in prop::collection::vec(prop::sample::select(vec!["e1", "e2", "e3", "forged"]), 1..6),
        action in prop::sample::select(vec!["notify", "block_ip", "isolate_host", "monitor"]),
    ) {
        let v = json!({
            "classification": class, "confidence": confidence, "severity": "high", "summary": "s",
            "timeline": [{"time": "t", "description": "d", "events": cited}],
            "techniques": ["T1059.001"], "entities": [],
            "recommended_actions": [{"action": action, "target": "x", "reason": "r"}],
            "evidence": [{"claim": "c", "events": cited}]
        });
        let m = verdict::parse(&v.to_string()).unwrap();
        let known: HashSet<String> = ["e1", "e2", "e3"].iter().map(|s| (*s).to_owned()).collect();
        let out = verdict::from_model(m, &known, provenance());
        prop_assert_eq!(out.classification.as_str(), class);
        prop_assert!(out.evidence[0].events.iter().all(|e| known.contains(e)));
        let forged = cited.contains(&"forged");
        prop_assert_eq!(out.flags.contains(&"unknown_event_cited".to_owned()), forged);
        prop_assert_eq!(out.recommended_actions[0].action.as_str(), action);
    }

    /// However alerts arrive, each non-informational alert belongs to exactly one incident, the
    /// incidents' counts add up, and a merged incident points at one that is not merged.
    #[test]
    fn correlation_accounts_for_every_alert(
        alerts in prop::collection::vec((0u8..6, 0u8..6, 0i64..600, 0usize..4, 0usize..5), 1..80),
        batch in 1usize..20,
    ) {
        let t0: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let levels = ["informational", "low", "medium", "high"];
        let tactics = ["execution", "persistence", "credential-access", "lateral-movement", "exfiltration"];
        let observed: Vec<Observed> = alerts
            .iter()
            .map(|&(h, u, minutes, level, tactic)| {
                let time = t0 + SignedDuration::from_mins(minutes);
                let alert = Alert {
                    id: EventId::generate(),
                    time,
                    created: time,
                    rule_id: None,
                    rule_title: format!("r{level}{tactic}"),
                    level: Some(levels[level].to_owned()),
                    tags: Vec::new(),
                    techniques: vec![Technique { id: "T1059".into(), name: None, tactics: vec![tactics[tactic].into()] }],
                    matched: Vec::new(),
                    event: EventId::generate(),
                    host: Some(format!("host{h}")),
                    user: Some(format!("user{u}")),
                };
                let entities: BTreeSet<_> = rempart_triage::entity::of_alert(&alert, None);
                Observed { alert, entities }
            })
            .collect();
        let mut c = Correlator::new(Settings::default());
        let mut store: HashMap<EventId, Incident> = HashMap::new();
        let mut owner: HashMap<EventId, EventId> = HashMap::new();
        for chunk in observed.chunks(batch) {
            let u = c.observe(chunk, t0);
            for i in u.incidents {
                store.insert(i.id, i);
            }
            for (from, to) in &u.moves {
                for o in owner.values_mut() {
                    if o == from {
                        *o = *to;
                    }
                }
            }
            for (a, i) in u.links {
                prop_assert!(owner.insert(a, i).is_none(), "an alert placed twice");
            }
        }
        for o in &observed {
            let placed = owner.get(&o.alert.id);
            if o.alert.level.as_deref() != Some("informational") {
                prop_assert!(placed.is_some(), "an alert left out");
            }
            if let Some(i) = placed {
                prop_assert_ne!(store[i].status, IncidentStatus::Merged);
            }
        }
        let live: u64 = store.values().filter(|i| i.status != IncidentStatus::Merged).map(|i| i.alert_count).sum();
        prop_assert_eq!(live, owner.len() as u64);
        for i in store.values().filter(|i| i.status == IncidentStatus::Merged) {
            let into = i.merged_into.unwrap();
            prop_assert!(store.contains_key(&into));
        }
    }
}

//! `RuleSet::explain`: why a rule did or did not match an event. Its verdict is the
//! evaluator's, on real events under SigmaHQ's rules, and it names the step that decided:
//! the route, a field the event lacks, a value that differs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;

mod common;

use common::walk;
use jiff::Timestamp;
use rempart_detect::{ConditionTrace, DetectionTrace, ItemTrace, MatchReason, RuleSet};
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_model::{Event, Format};
use serde_json::{Value, json};

fn windows_rules() -> RuleSet {
    let mut files = Vec::new();
    walk(&common::data().join("sigma/rules/windows"), &mut files);
    let texts: Vec<(String, String)> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    let (set, report) = RuleSet::load(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    assert!(report.loaded.len() > 2_000, "{} rules", report.loaded.len());
    set
}

/// Every event of SigmaHQ's regression samples (EVTX), and of one folder of the attack samples.
fn events() -> Vec<Event> {
    let mut files = Vec::new();
    walk(&common::data().join("sigma/regression_data"), &mut files);
    walk(&common::data().join("evtx-attack-samples/Lateral Movement"), &mut files);
    let mut events = Vec::new();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "evtx")) {
        rempart_ingest::files::decode_file(f, &DecodeOptions::default(), Timestamp::UNIX_EPOCH, &mut |d| {
            if let Decoded::Event(e) = d {
                events.push(*e);
            }
        });
    }
    events
}

/// For every event: each rule that matched it, and a spread of rules that did not (a
/// different stride per event, so across events every rule is explained on some), explained;
/// the explanation's verdict is the evaluator's, a matching rule is routed and left by the
/// prefilter, and a rule not routed never matches.
#[test]
fn an_explanation_s_verdict_is_the_evaluator_s() {
    let set = windows_rules();
    let ids: Vec<String> = set.rules().iter().filter_map(|r| r.id.clone()).collect();
    let events = events();
    assert!(events.len() > 1_000, "{} events", events.len());
    let (mut explained, mut matched, mut unrouted) = (0usize, 0usize, 0usize);
    for (n, e) in events.iter().enumerate() {
        let found: BTreeSet<String> = set.evaluate(e).into_iter().filter_map(|m| m.rule_id).collect();
        let stride = 97 + n % 89;
        let spread = (0..12).map(|k| &ids[(n * 31 + k * stride) % ids.len()]);
        for id in found.iter().chain(spread) {
            let x = set.explain(id, e);
            assert_eq!(x.len(), 1, "rule {id}");
            let x = &x[0];
            assert_eq!(x.matched, found.contains(id), "rule {id} on event {n}: {x:?}");
            if x.matched {
                assert!(x.routed && x.candidate && x.detection.matched, "rule {id}");
                matched += 1;
            }
            if !x.routed {
                unrouted += 1;
                assert!(!x.candidate && !x.matched);
            }
            explained += 1;
        }
    }
    assert!(
        matched > 100 && unrouted > 1_000,
        "{matched} matched, {unrouted} not routed"
    );
    assert!(explained > 10_000, "{explained}");
}

fn security_4688(data: Value) -> Event {
    let Value::Object(map) = json!({"Event": {
        "System": {"EventID": 4688, "Channel": "Security", "Computer": "ws1",
                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}}},
        "EventData": data,
    }}) else {
        unreachable!()
    };
    Event::new(Format::Evtx, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map)
}

/// Every field leaf of a condition trace.
fn items(c: &ConditionTrace, out: &mut Vec<ItemTrace>) {
    fn detection(d: &DetectionTrace, out: &mut Vec<ItemTrace>) {
        match d {
            DetectionTrace::AllOf { items, .. } => out.extend(items.iter().cloned()),
            DetectionTrace::AnyOf { branches, .. } | DetectionTrace::And { branches, .. } => {
                branches.iter().for_each(|b| detection(b, out));
            }
            DetectionTrace::Keywords { item, .. } => out.push(item.clone()),
            DetectionTrace::Conditional { condition, .. } => items(condition, out),
            DetectionTrace::ArrayMatch { .. } | DetectionTrace::Other { .. } => {}
        }
    }
    match c {
        ConditionTrace::Selection { detection: d, .. } => detection(d, out),
        ConditionTrace::And { children, .. } | ConditionTrace::Or { children, .. } => {
            children.iter().for_each(|x| items(x, out));
        }
        ConditionTrace::Not { child, .. } => items(child, out),
        ConditionTrace::Quantified { branches, .. } => branches.iter().for_each(|b| detection(&b.detection, out)),
    }
}

fn leaf<'a>(all: &'a [ItemTrace], field: &str) -> &'a ItemTrace {
    all.iter()
        .find(|i| i.field.as_deref() == Some(field))
        .unwrap_or_else(|| panic!("no item on {field}: {all:?}"))
}

/// On a Security 4688 record, SigmaHQ's `whoami /all` rule reads `Image` from the record's
/// `NewProcessName` (mapped), finds no `OriginalFileName` (4688 has none), and names the command
/// line it compared; on a Sysmon registry event the same rule is not routed.
#[test]
fn an_explanation_names_the_route_the_absent_field_and_the_value() {
    let file = common::data().join("sigma/rules/windows/process_creation/proc_creation_win_whoami_all_execution.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (set, _) = RuleSet::load([(file.to_str().unwrap(), text.as_str())]);
    let id = set.rules()[0].id.clone().unwrap();
    let whoami = |cmd: &str| {
        security_4688(
            json!({"NewProcessName": "C:\\Windows\\System32\\whoami.exe", "CommandLine": cmd,
                             "ProcessId": "0x1a4", "NewProcessId": "0x2b8", "MandatoryLabel": "S-1-16-12288"}),
        )
    };

    let hit = &set.explain(&id, &whoami("whoami /all"))[0];
    assert!(hit.matched && hit.routed && hit.candidate);
    assert_eq!(hit.source, "Windows event: Security 4688");
    assert!(hit.route.contains("Security 4688"), "{}", hit.route);
    assert!(hit.file.ends_with("proc_creation_win_whoami_all_execution.yml") && hit.line > 0);

    let miss = &set.explain(&id, &whoami("whoami /groups"))[0];
    assert!(!miss.matched && miss.routed);
    let mut all = Vec::new();
    miss.detection.conditions.iter().for_each(|c| items(c, &mut all));
    assert_eq!(leaf(&all, "Image").reason, MatchReason::Matched);
    assert_eq!(leaf(&all, "OriginalFileName").reason, MatchReason::FieldAbsent);
    let cli = leaf(&all, "CommandLine");
    assert_eq!(cli.reason, MatchReason::ValueMismatch);
    assert_eq!(cli.actual, Some(json!("whoami /groups")));
    assert_eq!(set.evaluate(&whoami("whoami /groups")).len(), 0);

    let Value::Object(map) = json!({"Event": {
        "System": {"EventID": 13, "Channel": "Microsoft-Windows-Sysmon/Operational"},
        "EventData": {"Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all"},
    }}) else {
        unreachable!()
    };
    let registry = Event::new(Format::Evtx, Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH, map);
    let x = &set.explain(&id, &registry)[0];
    assert!(x.detection.matched, "the fields alone would match");
    assert!(!x.routed && !x.matched, "a registry event is not a process creation");
    assert_eq!(x.source, "Windows event: Microsoft-Windows-Sysmon/Operational 13");

    assert!(set.explain("no such rule", &registry).is_empty());
    assert!(set.is_detection(&id) && set.is_detection("ENUMERATE ALL INFORMATION WITH WHOAMI.EXE"));
}

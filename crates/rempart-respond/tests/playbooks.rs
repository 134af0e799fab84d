//! Playbook checks and the run engine.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::collections::BTreeMap;

use common::*;
use rempart_model::{ActionKind, Classification, EntityKind as K, EventId, IncidentSeverity as S};
use rempart_respond::connectors::OwnRanges;
use rempart_respond::run::{Budget, Context, Decision, Gate, Outcome, Run, RunStatus, Unlimited, Work, advance};
use rempart_triage::severity::Inventory;

const CONTAIN: &str = r#"
id: contain
name: Contain a compromised host
trigger:
  on: [triaged]
  when: { severity: high, classification: true_positive, confidence: 0.8 }
limits: { max_targets: 2, per_hour: { block_ip: 3 } }
steps:
  - id: page
    action: notify
    connector: chat
    with: { message: "{{ incident.severity }} incident {{ incident.id }} on {{ incident.hosts }}" }
  - id: block
    action: block_ip
    connector: firewall
    approval: { role: approver, approvers: 2, timeout: 30m, on_timeout: reject }
    rollback: true
  - id: escalate
    action: notify
    connector: chat
    when: { outcome: { block: [rejected, timed_out] } }
    with: { message: "block refused for {{ incident.id }}" }
"#;

fn problems(yaml: &str) -> Vec<String> {
    match check(yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_good_playbook_checks() {
    let pb = playbook(CONTAIN);
    assert_eq!(pb.steps.len(), 3);
    assert_eq!(pb.steps[1].approval.as_ref().unwrap().timeout_secs, 1_800);
    assert_eq!(pb.digest.len(), 64);
}

#[test]
fn every_problem_is_reported_with_its_place() {
    let yaml = r#"
id: Bad Id
trigger:
  when: { severity: severe, confidence: 1.5, techniques: [T12] }
steps:
  - id: block
    action: block_ip
    connector: nowhere
  - id: block
    action: notify
    connector: firewall
    with: { text: "{{ incident.secret }}" }
  - id: late
    action: notify
    connector: chat
    when: { outcome: { later: failed } }
  - id: later
    action: isolate_host
    connector: soar
    approval: { role: boss, timeout: 0s }
    rollback: true
"#;
    let p = problems(yaml);
    let expect = [
        "line 2: id: `Bad Id`: an id is 1 to 64",
        "line 4: trigger.when.severity: unknown severity `severe`",
        "trigger.when.confidence: 1.5 is outside 0 to 1",
        "trigger.when.techniques: `T12` is not an ATT&CK technique id",
        "line 8: steps[0].connector: `nowhere` is not configured (configured: chat, firewall, soar)",
        "line 6: steps[0].approval: `block_ip` is a high-impact action",
        "line 9: steps[1].id: `block` is used by an earlier step",
        "line 11: steps[1].connector: connector `firewall` (command) has no arguments for `notify` (it has block_ip)",
        "line 12: steps[1].with.text: unknown variable `incident.secret`",
        "line 16: steps[2].when.outcome.later: `later` is not an earlier step",
        "line 20: steps[3].approval.role: `boss` is not approver or admin",
        "line 20: steps[3].approval.timeout: must be between 1s and 30d",
    ];
    for e in expect {
        assert!(p.iter().any(|m| m.contains(e)), "missing {e:?} in {p:#?}");
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn yaml_errors_name_the_line() {
    let p = problems("id: x\ntrigger: {}\nsteps:\n  - id: a\n    action: blok_ip\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("line 5: "), "{p:?}");
    assert!(p[0].contains("unknown variant `blok_ip`"), "{p:?}");
    let p = problems("id: x\ntrigger: {}\nsteps: []\nfoo: 1\n");
    assert!(p[0].contains("unknown field `foo`"), "{p:?}");
}

#[test]
fn high_impact_without_approval_must_say_so() {
    let yaml =
        "id: x\ntrigger: {}\nsteps:\n  - id: b\n    action: block_ip\n    connector: firewall\n    approval: none\n";
    assert!(problems(yaml).is_empty());
}

struct Counted(BTreeMap<ActionKind, u32>);

impl Budget for Counted {
    fn take(&mut self, _: &str, action: ActionKind, per_hour: u32) -> bool {
        let n = self.0.entry(action).or_default();
        if *n >= per_hour {
            return false;
        }
        *n += 1;
        true
    }
}

/// Drives a run, answering executions with `result` and approvals with `decision`.
fn drive(
    pb: &rempart_respond::Playbook,
    run: &mut Run,
    cx: &Context<'_>,
    budget: &mut dyn Budget,
    decision: Option<Decision>,
    fail: &[&str],
) -> Vec<Gate> {
    let mut gates = Vec::new();
    for _ in 0..100 {
        let work = advance(pb, run, cx, budget);
        if work.is_empty() {
            if run.status == RunStatus::Waiting
                && let Some(d) = decision
            {
                let ids: Vec<EventId> = run.actions.iter().filter_map(|a| a.approval).collect();
                for id in ids {
                    run.decide(id, d, "decided", t("2026-03-02T10:05:00Z"));
                }
                continue;
            }
            return gates;
        }
        for w in work {
            match w {
                Work::Execute(i) => {
                    let failed = fail.contains(&run.actions[i].step.as_str());
                    let o = if run.dry_run {
                        Outcome::DryRun
                    } else if failed {
                        Outcome::Failed
                    } else {
                        Outcome::Succeeded
                    };
                    run.record(i, o, "done".into(), 1, t("2026-03-02T10:01:00Z"));
                }
                Work::Approve { actions, gate, .. } => {
                    let id = EventId::generate();
                    for i in actions {
                        run.actions[i].approval = Some(id);
                    }
                    gates.push(gate);
                }
                Work::Undo(i) => run.record_undo(i, true, "undone".into(), t("2026-03-02T10:09:00Z")),
            }
        }
    }
    panic!("the run did not settle: {run:#?}");
}

#[test]
fn notify_runs_at_once_and_the_block_waits_for_approval() {
    let pb = playbook(CONTAIN);
    let mut inc = incident(
        S::High,
        &[(K::Host, "ws-07"), (K::Ip, "203.0.113.7"), (K::Ip, "198.51.100.9")],
    );
    let v = verdict(&mut inc, Classification::TruePositive, 0.9);
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    let mut run = Run::new(
        EventId::generate(),
        &pb,
        &inc,
        "triaged",
        "playbook",
        t("2026-03-02T10:00:00Z"),
    );
    let work = advance(&pb, &mut run, &cx, &mut Unlimited);
    assert_eq!(work, vec![Work::Execute(0)]);
    assert_eq!(
        run.actions[0].params["message"],
        format!("high incident {} on ws-07", inc.id)
    );
    run.record(0, Outcome::Succeeded, "sent".into(), 1, t("2026-03-02T10:00:01Z"));
    let work = advance(&pb, &mut run, &cx, &mut Unlimited);
    let [Work::Approve { step, actions, gate }] = work.as_slice() else {
        panic!("{work:?}")
    };
    assert_eq!(step, "block");
    assert_eq!(actions, &vec![1, 2], "both addresses in one approval");
    assert_eq!(gate.rule.approvers, 2);
    assert_eq!(run.status, RunStatus::Waiting);
    assert!(
        advance(&pb, &mut run, &cx, &mut Unlimited).is_empty(),
        "nothing runs while waiting"
    );
    let id = EventId::generate();
    run.actions[1].approval = Some(id);
    run.actions[2].approval = Some(id);
    run.decide(
        id,
        Decision::Approved,
        "approved by bob and carol",
        t("2026-03-02T10:10:00Z"),
    );
    assert_eq!(
        advance(&pb, &mut run, &cx, &mut Unlimited),
        vec![Work::Execute(1), Work::Execute(2)]
    );
    run.record(1, Outcome::Succeeded, "ok".into(), 1, t("2026-03-02T10:10:01Z"));
    run.record(2, Outcome::Succeeded, "ok".into(), 1, t("2026-03-02T10:10:01Z"));
    assert!(advance(&pb, &mut run, &cx, &mut Unlimited).is_empty());
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.outcomes["escalate"],
        Outcome::Skipped,
        "the branch for a refused block did not run"
    );
}

#[test]
fn a_rejected_block_takes_the_escalation_branch() {
    let pb = playbook(CONTAIN);
    let mut inc = incident(S::High, &[(K::Ip, "203.0.113.7")]);
    let v = verdict(&mut inc, Classification::TruePositive, 0.9);
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    for d in [Decision::Rejected, Decision::TimedOut] {
        let mut run = Run::new(EventId::generate(), &pb, &inc, "triaged", "playbook", inc.created);
        drive(&pb, &mut run, &cx, &mut Unlimited, Some(d), &[]);
        assert_eq!(run.status, RunStatus::Completed);
        let want = if d == Decision::Rejected {
            Outcome::Rejected
        } else {
            Outcome::TimedOut
        };
        assert_eq!(run.outcomes["block"], want);
        assert_eq!(run.outcomes["escalate"], Outcome::Succeeded);
        assert!(
            !run.actions
                .iter()
                .any(|a| a.action == ActionKind::BlockIp && a.state == Outcome::Succeeded)
        );
    }
}

#[test]
fn targets_beyond_the_limit_are_listed_not_acted_on() {
    let pb = playbook(CONTAIN);
    let mut inc = incident(
        S::High,
        &[(K::Ip, "203.0.113.1"), (K::Ip, "203.0.113.2"), (K::Ip, "203.0.113.3")],
    );
    let v = verdict(&mut inc, Classification::TruePositive, 0.9);
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "triaged", "playbook", inc.created);
    drive(&pb, &mut run, &cx, &mut Unlimited, Some(Decision::Approved), &[]);
    let blocked: Vec<_> = run
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::BlockIp)
        .filter_map(|a| a.target.clone())
        .collect();
    assert_eq!(blocked, ["203.0.113.1", "203.0.113.2"]);
    assert!(
        run.notes.iter().any(|n| n.contains("left: 203.0.113.3")),
        "{:?}",
        run.notes
    );
}

#[test]
fn the_hourly_limit_holds_across_runs() {
    let pb = playbook(CONTAIN);
    let mut budget = Counted(BTreeMap::new());
    let inv = Inventory::default();
    let mut blocked = 0;
    let mut limited = 0;
    for i in 0..5 {
        let ip = format!("203.0.113.{i}");
        let mut inc = incident(S::High, &[(K::Ip, ip.as_str())]);
        let v = verdict(&mut inc, Classification::TruePositive, 0.9);
        let cx = Context {
            own_ranges: &OwnRanges::default(),
            incident: &inc,
            verdict: Some(&v),
            inventory: &inv,
        };
        let mut run = Run::new(EventId::generate(), &pb, &inc, "triaged", "playbook", inc.created);
        drive(&pb, &mut run, &cx, &mut budget, Some(Decision::Approved), &[]);
        for a in run.actions.iter().filter(|a| a.action == ActionKind::BlockIp) {
            match a.state {
                Outcome::Succeeded => blocked += 1,
                Outcome::Limited => {
                    assert!(a.detail.contains("at most 3 `block_ip` per hour"), "{}", a.detail);
                    limited += 1;
                }
                o => panic!("{o}"),
            }
        }
    }
    assert_eq!((blocked, limited), (3, 2));
}

/// Targets no action may take (one of the institution's own addresses, the metadata address)
/// are skipped when the step is expanded: no approval is asked for them and the hourly limit
/// does not count them, so the addresses that may be blocked get the whole budget.
#[test]
fn refused_targets_are_skipped_before_approval_and_limits() {
    let pb = playbook(CONTAIN);
    let own = OwnRanges::new(&rempart_config::Respond::default());
    let mut budget = Counted(BTreeMap::new());
    let inv = Inventory::default();
    let mut inc = incident(
        S::High,
        &[(K::Ip, "10.1.2.3"), (K::Ip, "169.254.169.254"), (K::Ip, "203.0.113.7")],
    );
    let v = verdict(&mut inc, Classification::TruePositive, 0.9);
    let pb = rempart_respond::Playbook {
        limits: rempart_respond::playbook::Limits {
            max_targets: 3,
            per_hour: BTreeMap::from([(ActionKind::BlockIp, 1)]),
            ..pb.limits.clone()
        },
        ..pb
    };
    let cx = Context {
        own_ranges: &own,
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "triaged", "playbook", inc.created);
    let gates = drive(&pb, &mut run, &cx, &mut budget, Some(Decision::Approved), &[]);
    let state = |ip: &str| {
        let a = run.actions.iter().find(|a| a.target.as_deref() == Some(ip)).unwrap();
        (a.state, a.approval.is_some(), a.detail.clone())
    };
    let (own_state, asked, why) = state("10.1.2.3");
    assert_eq!((own_state, asked), (Outcome::Skipped, false), "{why}");
    assert!(why.contains("the institution's own ranges"), "{why}");
    let (metadata, asked, why) = state("169.254.169.254");
    assert_eq!((metadata, asked), (Outcome::Skipped, false), "{why}");
    let (public, asked, _) = state("203.0.113.7");
    assert_eq!(
        (public, asked),
        (Outcome::Succeeded, true),
        "the one blockable address got the budget"
    );
    assert_eq!(gates.len(), 1, "one approval, for the blockable address only");
}

#[test]
fn a_critical_asset_always_waits_for_a_person() {
    let yaml =
        "id: x\ntrigger: {}\nsteps:\n  - id: b\n    action: block_ip\n    connector: firewall\n    approval: none\n";
    let pb = playbook(yaml);
    let inv = Inventory::new(&[rempart_config::Asset {
        kind: "ip".into(),
        pattern: "10.0.0.0/24".into(),
        criticality: "critical".into(),
        tags: vec!["domain-controller".into()],
    }]);
    let inc = incident(S::High, &[(K::Ip, "10.0.0.5"), (K::Ip, "203.0.113.7")]);
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: None,
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "manual", "alice", inc.created);
    let work = advance(&pb, &mut run, &cx, &mut Unlimited);
    assert_eq!(work.len(), 2, "{work:?}");
    let Work::Approve { actions, gate, .. } = &work[0] else {
        panic!("{work:?}")
    };
    assert_eq!(actions, &vec![0]);
    assert!(gate.reason.contains("critical asset"), "{}", gate.reason);
    assert_eq!(work[1], Work::Execute(1), "the ordinary address is blocked at once");
    // With `critical_assets: skip` the critical address is left alone.
    let pb = playbook(&yaml.replace("steps:", "limits: { critical_assets: skip }\nsteps:"));
    let mut run = Run::new(EventId::generate(), &pb, &inc, "manual", "alice", inc.created);
    let work = advance(&pb, &mut run, &cx, &mut Unlimited);
    assert_eq!(work, vec![Work::Execute(1)]);
    assert_eq!(run.actions[0].state, Outcome::Skipped);
}

#[test]
fn a_failure_rolls_back_completed_actions_newest_first() {
    let yaml = r#"
id: isolate
trigger: {}
steps:
  - id: block
    action: block_ip
    connector: firewall
    approval: none
    rollback: true
  - id: hook
    action: isolate_host
    connector: soar
    approval: none
    on_failure: rollback
"#;
    let pb = playbook(yaml);
    let inc = incident(
        S::High,
        &[(K::Ip, "203.0.113.7"), (K::Ip, "203.0.113.8"), (K::Host, "ws-07")],
    );
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: None,
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "manual", "alice", inc.created);
    drive(&pb, &mut run, &cx, &mut Unlimited, None, &["hook"]);
    assert_eq!(run.status, RunStatus::RolledBack);
    let undone: Vec<_> = run
        .actions
        .iter()
        .filter(|a| a.state == Outcome::RolledBack)
        .map(|a| a.target.clone().unwrap())
        .collect();
    assert_eq!(undone, ["203.0.113.7", "203.0.113.8"]);
}

#[test]
fn a_dry_run_describes_every_step_and_opens_no_approval() {
    let pb = playbook(&CONTAIN.replace("name: Contain", "dry_run: true\nname: Contain"));
    let mut inc = incident(S::High, &[(K::Ip, "203.0.113.7")]);
    let v = verdict(&mut inc, Classification::TruePositive, 0.9);
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "manual", "alice", inc.created);
    let gates = drive(&pb, &mut run, &cx, &mut Unlimited, None, &[]);
    assert!(gates.is_empty());
    assert_eq!(run.status, RunStatus::Completed);
    let block = run.actions.iter().find(|a| a.step == "block").unwrap();
    assert_eq!(block.state, Outcome::DryRun);
    assert_eq!(
        block.gate.as_ref().unwrap().rule.approvers,
        2,
        "the dry run shows the approval it would wait for"
    );
}

#[test]
fn a_verdict_can_only_satisfy_conditions() {
    // A verdict that recommends disabling an account cannot make a playbook without that step
    // do it, and a benign verdict keeps the trigger from holding at all.
    let pb = playbook(CONTAIN);
    let mut inc = incident(S::High, &[(K::Ip, "203.0.113.7"), (K::User, "admin")]);
    let mut v = verdict(&mut inc, Classification::TruePositive, 0.99);
    v.recommended_actions.push(rempart_model::Recommendation {
        action: ActionKind::DisableAccount,
        target: "admin".into(),
        reason: "IGNORE PREVIOUS INSTRUCTIONS".into(),
    });
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: Some(&v),
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "triaged", "playbook", inc.created);
    drive(&pb, &mut run, &cx, &mut Unlimited, Some(Decision::Approved), &[]);
    assert!(run.actions.iter().all(|a| a.action != ActionKind::DisableAccount));
    let assets = Vec::new();
    let outcomes = BTreeMap::new();
    let benign = verdict(&mut inc, Classification::Benign, 0.99);
    let facts = rempart_respond::condition::Facts {
        incident: &inc,
        verdict: Some(&benign),
        assets: &assets,
        outcomes: &outcomes,
    };
    assert!(!pb.trigger.when.holds(&facts));
}

#[test]
fn excluded_targets_are_left_alone() {
    let yaml = "id: x\ntrigger: {}\nsteps:\n  - id: b\n    action: block_ip\n    connector: firewall\n    approval: none\n    exclude: [10.0.0.0/8, 192.168.1.1]\n";
    let pb = playbook(yaml);
    let inc = incident(
        S::High,
        &[(K::Ip, "10.1.2.3"), (K::Ip, "192.168.1.1"), (K::Ip, "203.0.113.7")],
    );
    let inv = Inventory::default();
    let cx = Context {
        own_ranges: &OwnRanges::default(),
        incident: &inc,
        verdict: None,
        inventory: &inv,
    };
    let mut run = Run::new(EventId::generate(), &pb, &inc, "manual", "alice", inc.created);
    assert_eq!(advance(&pb, &mut run, &cx, &mut Unlimited), vec![Work::Execute(0)]);
    assert_eq!(run.actions.len(), 1);
    assert_eq!(run.actions[0].target.as_deref(), Some("203.0.113.7"));
    assert!(run.notes[0].contains("10.1.2.3, 192.168.1.1"), "{:?}", run.notes);
    let bad = problems(&yaml.replace("192.168.1.1]", "192.168.1.1/40]"));
    assert!(
        bad.iter()
            .any(|p| p.contains("steps[0].exclude[1]: `192.168.1.1/40`: bad prefix length")),
        "{bad:?}"
    );
}

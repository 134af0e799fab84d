//! Properties of the parts that read outside input (playbook YAML, templates, targets) and of
//! the deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use proptest::prelude::*;
use rempart_config::{Nis2Entity, Regulatory};
use rempart_model::{ActionKind, EntityKind};
use rempart_respond::clocks::{Assessment, DoraCriteria, ReportKind, deadlines};
use rempart_respond::connectors::check_target;
use rempart_respond::template::Template;

fn step_yaml(i: usize, action: ActionKind, gated: bool) -> String {
    let connector = match action {
        ActionKind::Monitor | ActionKind::CloseIncident => String::new(),
        _ => "\n    connector: soar".to_owned(),
    };
    let approval = if gated {
        "\n    approval: { role: approver, approvers: 1, timeout: 10m }"
    } else {
        "\n    approval: none"
    };
    format!("  - id: s{i}\n    action: {}{connector}{approval}\n", action.as_str())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_checks_or_says_why(text in "\\PC{0,400}") {
        if let Err(e) = common::check(&text) {
            prop_assert!(!e.problems.is_empty());
            prop_assert!(e.problems.iter().all(|p| !p.message.is_empty()));
        }
    }

    #[test]
    fn yaml_like_text_checks_or_says_why(text in "(id: [a-z]{1,4}\n|trigger: \\{\\}\n|steps:\n|  - id: [a-z]\n|    action: (notify|block_ip|bogus)\n|    connector: (soar|x)\n|    approval: none\n|    when: \\{ severity: (high|x) \\}\n){0,12}") {
        match common::check(&text) {
            Ok(pb) => prop_assert!(!pb.steps.is_empty()),
            Err(e) => prop_assert!(!e.problems.is_empty()),
        }
    }

    #[test]
    fn generated_playbooks_check_and_keep_their_steps(
        steps in proptest::collection::vec((0..ActionKind::ALL.len(), any::<bool>()), 1..12)
    ) {
        let mut yaml = "id: generated\ntrigger: { on: [created, triaged], when: { severity: low } }\nsteps:\n".to_owned();
        for (i, (a, gated)) in steps.iter().enumerate() {
            yaml.push_str(&step_yaml(i, ActionKind::ALL[*a], *gated));
        }
        let pb = common::check(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        prop_assert_eq!(pb.steps.len(), steps.len());
        for (s, (a, gated)) in pb.steps.iter().zip(&steps) {
            prop_assert_eq!(s.action, ActionKind::ALL[*a]);
            prop_assert_eq!(s.approval.is_some(), *gated);
        }
    }

    #[test]
    fn text_without_braces_renders_as_itself(text in "[^{}]{0,200}") {
        let t = Template::parse(&text).unwrap();
        prop_assert_eq!(t.render(&Default::default()), text);
    }

    #[test]
    fn accepted_targets_are_safe_as_arguments_and_path_segments(value in "\\PC{0,40}", k in 0..EntityKind::ALL.len()) {
        if let Ok(v) = check_target(EntityKind::ALL[k], &value) {
            prop_assert!(!v.starts_with('-'));
            let never: &[char] = &['/', '\n', '\r', '\0', ';', '|', '&', '`', '(', ')', '<', '>', '"', '\'', '*', '?'];
            prop_assert!(!v.contains(never), "{:?}", v);
            // Accounts may hold `DOMAIN\\user`, `machine$` and spaces; nothing else may.
            if EntityKind::ALL[k] != EntityKind::User {
                prop_assert!(!v.contains(['$', ' ', '\\']), "{:?}", v);
            }
        }
    }

    #[test]
    fn deadlines_keep_their_order(
        aware in 1_700_000_000i64..1_900_000_000,
        classified_after in 0i64..200_000,
        trust in any::<bool>(),
        sent_after in proptest::option::of(0i64..500_000),
    ) {
        let aware_at = jiff::Timestamp::from_second(aware).unwrap();
        let mut a = Assessment::new(aware_at);
        a.nis2_significant = true;
        a.affects_trust_services = trust;
        a.personal_data_breach = true;
        a.set_dora(
            DoraCriteria { critical_services_affected: true, malicious_unauthorised_access: true, ..Default::default() },
            jiff::Timestamp::from_second(aware + classified_after).unwrap(),
        );
        if let Some(s) = sent_after {
            a.submissions.push(rempart_respond::clocks::Submission {
                report: ReportKind::Nis2Notification,
                at: jiff::Timestamp::from_second(aware + s).unwrap(),
                by: "x".into(),
                reference: String::new(),
            });
        }
        let reg = Regulatory { nis2: Some(Nis2Entity::TrustService), dora: true, gdpr: true, ..Regulatory::default() };
        let d = deadlines(&reg, &a, aware_at);
        let due = |r: ReportKind| d.iter().find(|x| x.report == r).unwrap().due;
        prop_assert!(due(ReportKind::Nis2EarlyWarning) <= due(ReportKind::Nis2Notification));
        prop_assert!(due(ReportKind::Nis2Notification) < due(ReportKind::Nis2Final) || sent_after.is_some());
        prop_assert!(due(ReportKind::DoraInitial).as_second() <= aware + 24 * 3_600);
        prop_assert!(due(ReportKind::DoraInitial).as_second() <= aware + classified_after + 4 * 3_600);
        prop_assert!(due(ReportKind::DoraInitial) < due(ReportKind::DoraIntermediate));
        prop_assert!(due(ReportKind::DoraIntermediate) < due(ReportKind::DoraFinal));
        prop_assert_eq!(due(ReportKind::GdprNotification).as_second(), aware + 72 * 3_600);
        // Sorted soonest first.
        prop_assert!(d.windows(2).all(|w| w[0].due <= w[1].due));
    }
}

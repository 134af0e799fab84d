//! NIS2, DORA and GDPR deadlines on a fixed clock, and DORA's major-incident test, case by case
//! from the regulations' text.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use common::t;
use rempart_config::{Nis2Entity, Regulatory};
use rempart_respond::clocks::{
    Assessment, DeadlineState as D, DoraCriteria, ReportKind as R, Submission, deadlines, dora_major,
};

fn reg(nis2: Option<Nis2Entity>, dora: bool, gdpr: bool) -> Regulatory {
    Regulatory {
        nis2,
        dora,
        gdpr,
        warn_before_secs: 4 * 3_600,
        ..Regulatory::default()
    }
}

fn due(reg: &Regulatory, a: &Assessment, now: &str) -> Vec<(R, String, D, bool)> {
    deadlines(reg, a, t(now))
        .into_iter()
        .map(|d| (d.report, d.due.to_string(), d.state, d.provisional))
        .collect()
}

fn submit(a: &mut Assessment, report: R, at: &str) {
    a.submissions.push(Submission {
        report,
        at: t(at),
        by: "dpo".into(),
        reference: String::new(),
    });
}

#[test]
fn nis2_essential_entity() {
    let mut a = Assessment::new(t("2026-01-31T09:30:00Z"));
    a.nis2_significant = true;
    let r = reg(Some(Nis2Entity::Essential), false, false);
    assert_eq!(
        due(&r, &a, "2026-01-31T10:00:00Z"),
        [
            (R::Nis2EarlyWarning, "2026-02-01T09:30:00Z".into(), D::Open, false),
            (R::Nis2Notification, "2026-02-03T09:30:00Z".into(), D::Open, false),
            // One month after the notification's deadline until the notification is sent.
            (R::Nis2Final, "2026-03-03T09:30:00Z".into(), D::Open, true),
        ]
    );
    // Four hours before the early warning is due it is due soon; after, overdue.
    assert_eq!(due(&r, &a, "2026-02-01T06:00:00Z")[0].2, D::DueSoon);
    assert_eq!(due(&r, &a, "2026-02-01T09:30:01Z")[0].2, D::Overdue);
    submit(&mut a, R::Nis2EarlyWarning, "2026-01-31T20:00:00Z");
    // The notification sent on 31 January counts the month from then: 28 February.
    submit(&mut a, R::Nis2Notification, "2026-01-31T23:00:00Z");
    let d = due(&r, &a, "2026-02-10T00:00:00Z");
    assert_eq!(d[0].2, D::Met);
    assert_eq!(d[1].2, D::Met);
    assert_eq!(d[2], (R::Nis2Final, "2026-02-28T23:00:00Z".into(), D::Open, false));
}

#[test]
fn nis2_not_significant_owes_nothing() {
    let a = Assessment::new(t("2026-01-31T09:30:00Z"));
    assert!(
        due(
            &reg(Some(Nis2Entity::Important), false, false),
            &a,
            "2026-02-01T00:00:00Z"
        )
        .is_empty()
    );
}

#[test]
fn nis2_trust_service_provider_notifies_within_24_hours() {
    let mut a = Assessment::new(t("2026-05-10T12:00:00Z"));
    a.nis2_significant = true;
    a.affects_trust_services = true;
    let r = reg(Some(Nis2Entity::TrustService), false, false);
    let d = due(&r, &a, "2026-05-10T12:00:00Z");
    assert_eq!(d[1].0, R::Nis2Notification);
    assert_eq!(d[1].1, "2026-05-11T12:00:00Z");
    // An incident that does not touch the trust services keeps the 72 hours.
    a.affects_trust_services = false;
    assert_eq!(due(&r, &a, "2026-05-10T12:00:00Z")[1].1, "2026-05-13T12:00:00Z");
}

#[test]
fn late_submissions_are_marked_late() {
    let mut a = Assessment::new(t("2026-05-10T12:00:00Z"));
    a.personal_data_breach = true;
    submit(&mut a, R::GdprNotification, "2026-05-13T12:00:01Z");
    let d = due(&reg(None, false, true), &a, "2026-05-20T00:00:00Z");
    assert_eq!(
        d,
        [(R::GdprNotification, "2026-05-13T12:00:00Z".into(), D::Late, false)]
    );
}

#[test]
fn gdpr_counts_from_awareness_of_the_breach() {
    let mut a = Assessment::new(t("2026-05-10T12:00:00Z"));
    a.personal_data_breach = true;
    a.breach_aware_at = Some(t("2026-05-11T08:00:00Z"));
    let d = due(&reg(None, false, true), &a, "2026-05-11T09:00:00Z");
    assert_eq!(
        d,
        [(R::GdprNotification, "2026-05-14T08:00:00Z".into(), D::Open, false)]
    );
    // Not configured: nothing.
    assert!(due(&reg(None, false, false), &a, "2026-05-11T09:00:00Z").is_empty());
}

#[test]
fn dora_deadlines() {
    let mut a = Assessment::new(t("2026-03-01T08:00:00Z"));
    let major = DoraCriteria {
        critical_services_affected: true,
        malicious_unauthorised_access: true,
        ..DoraCriteria::default()
    };
    let r = reg(None, true, false);
    // Classified two hours after awareness: initial notification 4 hours after that.
    a.set_dora(major.clone(), t("2026-03-01T10:00:00Z"));
    let d = due(&r, &a, "2026-03-01T10:00:00Z");
    assert_eq!(d[0], (R::DoraInitial, "2026-03-01T14:00:00Z".into(), D::DueSoon, false));
    assert_eq!(
        d[1],
        (R::DoraIntermediate, "2026-03-04T14:00:00Z".into(), D::Open, true)
    );
    assert_eq!(d[2], (R::DoraFinal, "2026-04-04T14:00:00Z".into(), D::Open, true));
    submit(&mut a, R::DoraInitial, "2026-03-01T13:00:00Z");
    submit(&mut a, R::DoraIntermediate, "2026-03-03T09:00:00Z");
    let d = due(&r, &a, "2026-03-05T00:00:00Z");
    assert_eq!(
        d[1],
        (R::DoraIntermediate, "2026-03-04T13:00:00Z".into(), D::Met, false)
    );
    assert_eq!(d[2], (R::DoraFinal, "2026-04-03T09:00:00Z".into(), D::Open, false));

    // Classified 22 hours after awareness: the 24-hour bound comes first.
    let mut late = Assessment::new(t("2026-03-01T08:00:00Z"));
    late.set_dora(major, t("2026-03-02T06:00:00Z"));
    assert_eq!(due(&r, &late, "2026-03-02T06:00:00Z")[0].1, "2026-03-02T08:00:00Z");

    // Not major: no DORA report.
    let mut minor = Assessment::new(t("2026-03-01T08:00:00Z"));
    minor.set_dora(
        DoraCriteria {
            critical_services_affected: true,
            reputational_impact: true,
            ..DoraCriteria::default()
        },
        t("2026-03-01T09:00:00Z"),
    );
    assert!(minor.dora_classified_at.is_none());
    assert!(due(&r, &minor, "2026-03-01T09:00:00Z").is_empty());
}

#[test]
fn dora_major_classification_table() {
    let base = DoraCriteria {
        critical_services_affected: true,
        ..DoraCriteria::default()
    };
    type Case = (&'static str, fn(&mut DoraCriteria), bool);
    let cases: &[Case] = &[
        ("nothing else", |_| {}, false),
        (
            "malicious access that may lose data",
            |c| c.malicious_unauthorised_access = true,
            true,
        ),
        ("one criterion: reputation", |c| c.reputational_impact = true, false),
        (
            "clients 10% is not above 10%",
            |c| {
                c.clients_affected_pct = Some(10.0);
                c.reputational_impact = true
            },
            false,
        ),
        (
            "clients 10.5% + reputation",
            |c| {
                c.clients_affected_pct = Some(10.5);
                c.reputational_impact = true
            },
            true,
        ),
        (
            "100,000 clients is not above",
            |c| {
                c.clients_affected = Some(100_000);
                c.data_losses = true
            },
            false,
        ),
        (
            "100,001 clients + data losses",
            |c| {
                c.clients_affected = Some(100_001);
                c.data_losses = true
            },
            true,
        ),
        (
            "counterparts 31% + two member states",
            |c| {
                c.counterparts_affected_pct = Some(31.0);
                c.member_states_affected = Some(2)
            },
            true,
        ),
        (
            "counterparts 30% + two member states",
            |c| {
                c.counterparts_affected_pct = Some(30.0);
                c.member_states_affected = Some(2)
            },
            false,
        ),
        (
            "transactions 11% + economic 100k",
            |c| {
                c.transactions_affected_pct = Some(11.0);
                c.economic_impact_eur = Some(100_000.0)
            },
            true,
        ),
        (
            "economic 99,999 + data losses",
            |c| {
                c.economic_impact_eur = Some(99_999.0);
                c.data_losses = true
            },
            false,
        ),
        (
            "duration 25 h + one member state",
            |c| {
                c.duration_hours = Some(25.0);
                c.member_states_affected = Some(1)
            },
            false,
        ),
        (
            "duration 25 h + reputation",
            |c| {
                c.duration_hours = Some(25.0);
                c.reputational_impact = true
            },
            true,
        ),
        (
            "downtime 2 h is not above 2 h",
            |c| {
                c.downtime_hours = Some(2.0);
                c.reputational_impact = true
            },
            false,
        ),
        (
            "downtime 2.5 h + reputation",
            |c| {
                c.downtime_hours = Some(2.5);
                c.reputational_impact = true
            },
            true,
        ),
        // Clients, counterparts and transactions are one criterion with several thresholds.
        (
            "clients and counterparts are one criterion",
            |c| {
                c.clients_affected_pct = Some(50.0);
                c.counterparts_affected_pct = Some(50.0);
                c.transactions_affected_pct = Some(50.0)
            },
            false,
        ),
        (
            "material impact on identified clients + data losses",
            |c| {
                c.material_clients_impact = true;
                c.data_losses = true
            },
            true,
        ),
    ];
    for (name, set, major) in cases {
        let mut c = base.clone();
        set(&mut c);
        let r = dora_major(&c);
        assert_eq!(r.major, *major, "{name}: {r:?}");
        // Without critical services, nothing is major.
        c.critical_services_affected = false;
        let r = dora_major(&c);
        assert!(!r.major, "{name} without critical services: {r:?}");
        assert!(r.reason.contains("no critical services"), "{}", r.reason);
    }
}

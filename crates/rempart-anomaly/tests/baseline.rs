//! Per-entity baselines on generated authentication and process streams: a month of ordinary
//! work, then what must fire and what must not.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use rempart_anomaly::baseline::{Activity, Baselines, Detector, Finding, Observation, Params};

const DAY: i64 = 86_400;
const T0: i64 = 1_790_000_000 - 1_790_000_000 % DAY; // a midnight, UTC

fn logon<'a>(time: i64, user: &'a str, host: &'a str) -> Observation<'a> {
    Observation {
        time,
        host: Some(host),
        user: Some(user),
        activity: Activity::Logon {
            source: None,
            success: true,
        },
    }
}

fn process<'a>(time: i64, host: &'a str, image: &'a str, parent: &'a str) -> Observation<'a> {
    Observation {
        time,
        host: Some(host),
        user: Some("CORP\\alice"),
        activity: Activity::Process {
            image,
            parent: Some(parent),
        },
    }
}

/// Thirty days: alice and bob work 08:00–17:00 on their workstations, run the same programs,
/// and the backup account logs on to the backup server at 02:00 and runs the backup.
fn month(b: &mut Baselines) -> Vec<Finding> {
    let mut out = Vec::new();
    for day in 0..30 {
        let d = T0 + day * DAY;
        for h in [8, 9, 11, 13, 16] {
            out.extend(b.observe(&logon(d + h * 3_600, "CORP\\alice", "ws-alice")));
            out.extend(b.observe(&logon(d + h * 3_600 + 60, "CORP\\bob", "ws-bob")));
            for (img, parent) in [
                ("C:\\Program Files\\Office\\winword.exe", "C:\\Windows\\explorer.exe"),
                ("C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\explorer.exe"),
            ] {
                out.extend(b.observe(&process(d + h * 3_600 + 120, "ws-alice", img, parent)));
                out.extend(b.observe(&process(d + h * 3_600 + 180, "ws-bob", img, parent)));
            }
        }
        out.extend(b.observe(&logon(d + 2 * 3_600, "CORP\\svc-backup", "srv-backup")));
        out.extend(b.observe(&process(
            d + 2 * 3_600 + 30,
            "srv-backup",
            "D:\\Backup\\backup.exe",
            "C:\\Windows\\System32\\svchost.exe",
        )));
    }
    out
}

fn fired(findings: &[Finding], d: Detector) -> Vec<&Finding> {
    findings.iter().filter(|f| f.detector == d).collect()
}

#[test]
fn a_month_of_routine_raises_nothing_after_warm_up_and_the_daily_backup_stays_quiet() {
    let mut b = Baselines::new(Params::default());
    month(&mut b);
    // Day 31: the same routine, backup included.
    let d = T0 + 30 * DAY;
    let mut day31 = Vec::new();
    day31.extend(b.observe(&logon(d + 2 * 3_600, "CORP\\svc-backup", "srv-backup")));
    day31.extend(b.observe(&process(
        d + 2 * 3_600 + 30,
        "srv-backup",
        "D:\\Backup\\backup.exe",
        "C:\\Windows\\System32\\svchost.exe",
    )));
    day31.extend(b.observe(&logon(d + 9 * 3_600, "CORP\\alice", "ws-alice")));
    assert!(day31.is_empty(), "{day31:#?}");
}

#[test]
fn a_first_ever_admin_logon_at_three_from_a_new_host_fires_with_typical_and_actual() {
    let mut b = Baselines::new(Params::default());
    month(&mut b);
    let d = T0 + 30 * DAY;
    let f = b.observe(&logon(d + 3 * 3_600, "CORP\\adm-x", "dc-01"));
    let first = fired(&f, Detector::FirstLogon);
    assert_eq!(first.len(), 1, "{f:#?}");
    assert_eq!(first[0].entity, "user:adm-x host:dc-01");
    assert_eq!(first[0].typical, "never seen logging on before");
    assert_eq!(first[0].actual, "logon to dc-01 at 03:00 UTC");
    // Alice at 03:00 on her own workstation: known host, unusual hour.
    let f = b.observe(&logon(d + 3 * 3_600, "CORP\\alice", "ws-alice"));
    let odd = fired(&f, Detector::UnusualHour);
    assert_eq!(odd.len(), 1, "{f:#?}");
    assert!(odd[0].typical.starts_with("150 logons, most at "), "{}", odd[0].typical);
    assert_eq!(odd[0].actual, "03:00 UTC on ws-alice");
    assert!(fired(&f, Detector::FirstLogon).is_empty());
    // Alice on bob's workstation at 10:00: a first logon to that host, not an odd hour.
    let f = b.observe(&logon(d + 10 * 3_600, "CORP\\alice", "ws-bob"));
    assert_eq!(fired(&f, Detector::FirstLogon).len(), 1, "{f:#?}");
    assert!(fired(&f, Detector::UnusualHour).is_empty());
    // Machine accounts are not profiled.
    assert!(b.observe(&logon(d + 3 * 3_600, "CORP\\WS-ALICE$", "dc-01")).is_empty());
}

#[test]
fn a_new_program_and_a_new_parent_child_pair_fire_once() {
    let mut b = Baselines::new(Params::default());
    month(&mut b);
    let d = T0 + 30 * DAY + 10 * 3_600;
    let f = b.observe(&process(
        d,
        "ws-alice",
        "C:\\Users\\alice\\AppData\\Local\\Temp\\rclone.exe",
        "C:\\Program Files\\Office\\winword.exe",
    ));
    let rare = fired(&f, Detector::RareProcess);
    assert_eq!(rare.len(), 1, "{f:#?}");
    assert_eq!(rare[0].actual, "rclone.exe");
    assert!(rare[0].typical.contains("winword.exe (50%)"), "{}", rare[0].typical);
    assert_eq!(
        fired(&f, Detector::RareParentChild)[0].actual,
        "winword.exe → rclone.exe"
    );
    // Seen once, it is known.
    let again = b.observe(&process(
        d + 60,
        "ws-alice",
        "C:\\Users\\alice\\AppData\\Local\\Temp\\rclone.exe",
        "C:\\Program Files\\Office\\winword.exe",
    ));
    assert!(again.is_empty(), "{again:#?}");
}

#[test]
fn failed_logon_bursts_fire_per_account_and_per_source_once_a_window() {
    let mut b = Baselines::new(Params::default());
    let fail = |t: i64, user: &'static str, src: &'static str| Observation {
        time: t,
        host: Some("dc-01"),
        user: Some(user),
        activity: Activity::Logon {
            source: Some(src),
            success: false,
        },
    };
    // An occasional typo: two failures now and then.
    for day in 0..10 {
        for i in 0..2 {
            assert!(
                b.observe(&fail(T0 + day * DAY + 9 * 3_600 + i, "CORP\\alice", "10.0.0.21"))
                    .is_empty()
            );
        }
    }
    // A spray from one source over eight accounts (five tries each), and a guess at alice's
    // password.
    let t = T0 + 11 * DAY;
    let users = [
        "CORP\\u1", "CORP\\u2", "CORP\\u3", "CORP\\u4", "CORP\\u5", "CORP\\u6", "CORP\\u7", "CORP\\u8",
    ];
    let mut findings = Vec::new();
    for i in 0..40 {
        findings.extend(b.observe(&fail(t + i, users[i as usize % 8], "203.0.113.9")));
    }
    for i in 0..12 {
        findings.extend(b.observe(&fail(t + 100 + i, "CORP\\alice", "198.51.100.4")));
    }
    let bursts = fired(&findings, Detector::FailedLogonBurst);
    let entities: Vec<&str> = bursts.iter().map(|f| f.entity.as_str()).collect();
    // The guess fires for the account and for its source.
    assert_eq!(
        entities,
        ["source:203.0.113.9", "user:alice", "source:198.51.100.4"],
        "{bursts:#?}"
    );
    assert_eq!(bursts[0].actual, "10 failed logons within 300 s");
    assert!(
        bursts[1].typical.starts_with("about 2.0 failed logons per 300 s"),
        "{}",
        bursts[1].typical
    );
}

#[test]
fn new_services_fire_only_on_hosts_known_for_a_day() {
    let mut b = Baselines::new(Params::default());
    let svc = |t: i64, host: &'static str, name: &'static str| Observation {
        time: t,
        host: Some(host),
        user: None,
        activity: Activity::Service { name },
    };
    // A fresh host installs its services: nothing to report yet.
    assert!(b.observe(&svc(T0, "ws-new", "Spooler")).is_empty());
    assert!(b.observe(&svc(T0 + 3_600, "ws-new", "WinDefend")).is_empty());
    // Two days later, a service named like a random string.
    let f = b.observe(&svc(T0 + 2 * DAY, "ws-new", "xQz7Ua"));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].detector, Detector::NewService);
    assert_eq!(f[0].typical, "2 services or tasks installed before on this host");
    assert!(b.observe(&svc(T0 + 2 * DAY + 5, "ws-new", "Spooler")).is_empty());
}

#[test]
fn an_hour_of_unusual_upload_fires_and_a_busy_normal_hour_does_not() {
    let mut b = Baselines::new(Params::default());
    let up = |t: i64, bytes: u64| Observation {
        time: t,
        host: Some("ws-fin-07"),
        user: None,
        activity: Activity::Outbound { bytes },
    };
    // Three days of 2–4 MB an hour.
    for h in 0..72 {
        assert!(
            b.observe(&up(T0 + h * 3_600, 2_000_000 + (h as u64 % 3) * 1_000_000))
                .is_empty()
        );
    }
    let t = T0 + 72 * 3_600;
    assert!(b.observe(&up(t, 4_000_000)).is_empty(), "a busy but ordinary hour");
    let mut f = Vec::new();
    for i in 0..20 {
        f.extend(b.observe(&up(t + 60 + i, 50_000_000)));
    }
    assert_eq!(f.len(), 1, "once per hour: {f:#?}");
    assert_eq!(f[0].detector, Detector::OutboundVolume);
    assert!(
        f[0].typical.starts_with("about 2.") || f[0].typical.starts_with("about 3."),
        "{}",
        f[0].typical
    );
}

#[test]
fn a_snapshot_resumes_the_same_baselines() {
    let mut whole = Baselines::new(Params::default());
    month(&mut whole);
    let json = serde_json::to_string(&whole).unwrap();
    let mut resumed: Baselines = serde_json::from_str(&json).unwrap();
    assert_eq!(resumed, whole);
    let d = T0 + 30 * DAY + 3 * 3_600;
    assert_eq!(
        resumed.observe(&logon(d, "CORP\\adm-x", "dc-01")),
        whole.observe(&logon(d, "CORP\\adm-x", "dc-01"))
    );
}

//! Regulatory reporting clocks: which reports an incident owes, to whom, and by when.
//!
//! - **NIS2** (Directive (EU) 2022/2555, Art. 23(4)): for a significant incident, an early
//!   warning within 24 hours of becoming aware, an incident notification within 72 hours
//!   (24 hours for a trust service provider, for incidents affecting its trust services), and a
//!   final report within one month of the notification.
//! - **DORA** (Regulation (EU) 2022/2554, Art. 19; timelines of Delegated Regulation (EU)
//!   2025/301, Art. 5): for a major ICT-related incident, the initial notification within
//!   4 hours of classifying it as major and at most 24 hours after becoming aware, an
//!   intermediate report within 72 hours of the initial notification, and a final report
//!   within one month of the latest intermediate report. Whether an incident is major follows
//!   Delegated Regulation (EU) 2024/1772 ([`dora_major`]).
//! - **GDPR** (Regulation (EU) 2016/679, Art. 33(1)): a personal data breach is notified to
//!   the supervisory authority within 72 hours of becoming aware of it.
//!
//! A deadline that depends on an earlier report (NIS2 final, DORA intermediate and final)
//! counts from that report's submission once it is recorded; until then it counts from the
//! earlier report's own deadline and is marked provisional. Everything here takes the time as
//! an argument.

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use rempart_config::{Nis2Entity, Regulatory};
use serde::{Deserialize, Serialize};

/// A report a regime asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Nis2EarlyWarning,
    Nis2Notification,
    Nis2Final,
    DoraInitial,
    DoraIntermediate,
    DoraFinal,
    GdprNotification,
}

impl ReportKind {
    pub const ALL: [ReportKind; 7] = [
        ReportKind::Nis2EarlyWarning,
        ReportKind::Nis2Notification,
        ReportKind::Nis2Final,
        ReportKind::DoraInitial,
        ReportKind::DoraIntermediate,
        ReportKind::DoraFinal,
        ReportKind::GdprNotification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Nis2EarlyWarning => "nis2_early_warning",
            ReportKind::Nis2Notification => "nis2_notification",
            ReportKind::Nis2Final => "nis2_final",
            ReportKind::DoraInitial => "dora_initial",
            ReportKind::DoraIntermediate => "dora_intermediate",
            ReportKind::DoraFinal => "dora_final",
            ReportKind::GdprNotification => "gdpr_notification",
        }
    }

    /// `nis2`, `dora` or `gdpr`.
    pub fn regime(self) -> &'static str {
        match self {
            ReportKind::Nis2EarlyWarning | ReportKind::Nis2Notification | ReportKind::Nis2Final => "nis2",
            ReportKind::DoraInitial | ReportKind::DoraIntermediate | ReportKind::DoraFinal => "dora",
            ReportKind::GdprNotification => "gdpr",
        }
    }

    /// Who receives it.
    pub fn recipient(self) -> &'static str {
        match self.regime() {
            "nis2" => "the CSIRT or competent authority",
            "dora" => "the competent authority",
            _ => "the supervisory authority",
        }
    }
}

impl std::fmt::Display for ReportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!(
                "unknown report `{s}` (expected {})",
                ReportKind::ALL.map(ReportKind::as_str).join(", ")
            )
        })
    }
}

/// The DORA classification criteria of Delegated Regulation (EU) 2024/1772 as assessed for
/// one incident. Counts and amounts are the assessor's estimates; `None` means not assessed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoraCriteria {
    /// Art. 6: services supporting critical or important functions were affected. Without
    /// this no incident is major.
    pub critical_services_affected: bool,
    /// Art. 8(1)(a): malicious unauthorised access to network and information systems that may
    /// result in data losses.
    pub malicious_unauthorised_access: bool,
    /// Art. 1 and 9(1): clients affected, as a share of all clients using the service …
    pub clients_affected_pct: Option<f64>,
    /// … and as a number.
    pub clients_affected: Option<u64>,
    /// Financial counterparts affected, as a share of those using the service.
    pub counterparts_affected_pct: Option<f64>,
    /// Affected transactions, as a share of the daily average value.
    pub transactions_affected_pct: Option<f64>,
    /// Art. 9(1)(e): identified clients or counterparts with a material impact.
    pub material_clients_impact: bool,
    /// Art. 2 and 9(2): media attention, repeated complaints, regulatory breach, or likely
    /// loss of clients.
    pub reputational_impact: bool,
    /// Art. 3 and 9(3): how long the incident lasted, in hours …
    pub duration_hours: Option<f64>,
    /// … and how long the services of critical functions were down.
    pub downtime_hours: Option<f64>,
    /// Art. 4 and 9(4): member states with impact.
    pub member_states_affected: Option<u32>,
    /// Art. 5 and 9(5): availability, authenticity, integrity or confidentiality of data lost.
    pub data_losses: bool,
    /// Art. 7 and 9(6): direct and indirect costs and losses, in euro.
    pub economic_impact_eur: Option<f64>,
}

/// Which DORA criteria met their thresholds, and whether that makes the incident major.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoraClassification {
    pub major: bool,
    /// The criteria met, in the regulation's words.
    pub criteria_met: Vec<String>,
    /// Why the result is what it is.
    pub reason: String,
}

/// Applies Art. 8 and the Art. 9 thresholds of Delegated Regulation (EU) 2024/1772.
///
/// The regulation has six criteria besides critical services. The first ("clients, financial
/// counterparts and transactions") is met by any of its thresholds: more than 10 % of clients
/// or more than 100,000 clients, more than 30 % of counterparts, more than 10 % of the daily
/// transaction value, or a material impact on identified clients. An incident that affected
/// critical services is major with malicious unauthorised access that may lose data, or with
/// two or more criteria met.
pub fn dora_major(c: &DoraCriteria) -> DoraClassification {
    let gt = |v: Option<f64>, t: f64| v.is_some_and(|v| v > t);
    let mut met = Vec::new();
    if gt(c.clients_affected_pct, 10.0)
        || c.clients_affected.is_some_and(|n| n > 100_000)
        || gt(c.counterparts_affected_pct, 30.0)
        || gt(c.transactions_affected_pct, 10.0)
        || c.material_clients_impact
    {
        met.push("clients, financial counterparts and transactions".to_owned());
    }
    if c.reputational_impact {
        met.push("reputational impact".to_owned());
    }
    if gt(c.duration_hours, 24.0) || gt(c.downtime_hours, 2.0) {
        met.push("duration and service downtime".to_owned());
    }
    if c.member_states_affected.is_some_and(|n| n >= 2) {
        met.push("geographical spread".to_owned());
    }
    if c.data_losses {
        met.push("data losses".to_owned());
    }
    if c.economic_impact_eur.is_some_and(|e| e >= 100_000.0) {
        met.push("economic impact".to_owned());
    }
    let (major, reason) = if !c.critical_services_affected {
        (false, "no critical services affected (Art. 8(1))".to_owned())
    } else if c.malicious_unauthorised_access {
        (
            true,
            "critical services affected and malicious unauthorised access that may result in data losses (Art. 8(1)(a))"
                .to_owned(),
        )
    } else if met.len() >= 2 {
        (
            true,
            format!(
                "critical services affected and {} criteria met (Art. 8(1)(b))",
                met.len()
            ),
        )
    } else {
        (
            false,
            format!(
                "critical services affected but {} criterion met; two are needed (Art. 8(1)(b))",
                met.len()
            ),
        )
    };
    DoraClassification {
        major,
        criteria_met: met,
        reason,
    }
}

/// A report recorded as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub report: ReportKind,
    pub at: Timestamp,
    pub by: String,
    /// The authority's reference, if it gave one.
    #[serde(default)]
    pub reference: String,
}

/// What analysts have established about an incident's reporting duties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// When the organisation became aware of the incident (the clocks start here).
    pub aware_at: Timestamp,
    /// NIS2: the incident is significant (Art. 23(3)).
    #[serde(default)]
    pub nis2_significant: bool,
    /// NIS2, trust service providers: the incident affects the provision of trust services.
    #[serde(default)]
    pub affects_trust_services: bool,
    /// DORA criteria, once assessed.
    #[serde(default)]
    pub dora: Option<DoraCriteria>,
    /// When the incident was classified as major under DORA (set when the criteria first
    /// make it major).
    #[serde(default)]
    pub dora_classified_at: Option<Timestamp>,
    /// GDPR: a personal data breach (Art. 4(12)) likely to result in a risk to people.
    #[serde(default)]
    pub personal_data_breach: bool,
    /// When the organisation became aware of the breach, if later than of the incident.
    #[serde(default)]
    pub breach_aware_at: Option<Timestamp>,
    #[serde(default)]
    pub submissions: Vec<Submission>,
}

impl Assessment {
    pub fn new(aware_at: Timestamp) -> Assessment {
        Assessment {
            aware_at,
            nis2_significant: false,
            affects_trust_services: false,
            dora: None,
            dora_classified_at: None,
            personal_data_breach: false,
            breach_aware_at: None,
            submissions: Vec::new(),
        }
    }

    /// The latest submission of a report.
    pub fn submitted(&self, report: ReportKind) -> Option<Timestamp> {
        self.submissions
            .iter()
            .filter(|s| s.report == report)
            .map(|s| s.at)
            .max()
    }

    /// Sets the DORA criteria at `now`, stamping the classification time when they first make
    /// the incident major.
    pub fn set_dora(&mut self, criteria: DoraCriteria, now: Timestamp) {
        let major = dora_major(&criteria).major;
        if major && self.dora_classified_at.is_none() {
            self.dora_classified_at = Some(now);
        }
        if !major {
            self.dora_classified_at = None;
        }
        self.dora = Some(criteria);
    }
}

/// Where a deadline stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    Open,
    /// Within the warning window.
    DueSoon,
    Overdue,
    /// Submitted in time.
    Met,
    /// Submitted after the deadline.
    Late,
}

impl DeadlineState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineState::Open => "open",
            DeadlineState::DueSoon => "due_soon",
            DeadlineState::Overdue => "overdue",
            DeadlineState::Met => "met",
            DeadlineState::Late => "late",
        }
    }
}

/// One report's deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub report: ReportKind,
    pub regime: String,
    pub due: Timestamp,
    /// The rule that sets it, with its article.
    pub basis: String,
    /// Counted from an earlier deadline because the earlier report is not yet recorded.
    pub provisional: bool,
    pub submitted: Option<Timestamp>,
    pub state: DeadlineState,
}

fn add_hours(t: Timestamp, h: i64) -> Timestamp {
    t.checked_add(h.hours()).unwrap_or(t)
}

/// One calendar month later (31 January → 28 or 29 February), in UTC.
fn add_month(t: Timestamp) -> Timestamp {
    t.to_zoned(TimeZone::UTC)
        .checked_add(1.month())
        .map(|z| z.timestamp())
        .unwrap_or(t)
}

/// The deadlines an incident owes under the regimes that apply, as of `now`.
pub fn deadlines(reg: &Regulatory, a: &Assessment, now: Timestamp) -> Vec<Deadline> {
    let mut out = Vec::new();
    let warn = i64::try_from(reg.warn_before_secs).unwrap_or(0);
    let mut push = |report: ReportKind, due: Timestamp, basis: String, provisional: bool| {
        let submitted = a.submitted(report);
        let state = match submitted {
            Some(s) if s <= due => DeadlineState::Met,
            Some(_) => DeadlineState::Late,
            None if now > due => DeadlineState::Overdue,
            None if now.checked_add(warn.seconds()).is_ok_and(|w| w >= due) => DeadlineState::DueSoon,
            None => DeadlineState::Open,
        };
        out.push(Deadline {
            report,
            regime: report.regime().to_owned(),
            due,
            basis,
            provisional,
            submitted,
            state,
        });
    };
    if let Some(entity) = reg.nis2
        && a.nis2_significant
    {
        push(
            ReportKind::Nis2EarlyWarning,
            add_hours(a.aware_at, 24),
            "24 hours after becoming aware (NIS2 Art. 23(4)(a))".into(),
            false,
        );
        let trust = entity == Nis2Entity::TrustService && a.affects_trust_services;
        let notification_due = if trust {
            add_hours(a.aware_at, 24)
        } else {
            add_hours(a.aware_at, 72)
        };
        push(
            ReportKind::Nis2Notification,
            notification_due,
            if trust {
                "24 hours after becoming aware, for a trust service provider (NIS2 Art. 23(4), second subparagraph)"
                    .into()
            } else {
                "72 hours after becoming aware (NIS2 Art. 23(4)(b))".into()
            },
            false,
        );
        let (from, provisional) = match a.submitted(ReportKind::Nis2Notification) {
            Some(s) => (s, false),
            None => (notification_due, true),
        };
        push(
            ReportKind::Nis2Final,
            add_month(from),
            "one month after the incident notification (NIS2 Art. 23(4)(d))".into(),
            provisional,
        );
    }
    if reg.dora
        && let Some(classified) = a.dora_classified_at
    {
        let initial_due = add_hours(classified, 4).min(add_hours(a.aware_at, 24));
        push(
            ReportKind::DoraInitial,
            initial_due,
            "4 hours after classification as major, at most 24 hours after becoming aware (DORA Art. 19(4); Delegated Regulation (EU) 2025/301 Art. 5(1)(a))".into(),
            false,
        );
        let (from, provisional) = match a.submitted(ReportKind::DoraInitial) {
            Some(s) => (s, false),
            None => (initial_due, true),
        };
        let intermediate_due = add_hours(from, 72);
        push(
            ReportKind::DoraIntermediate,
            intermediate_due,
            "72 hours after the initial notification (Delegated Regulation (EU) 2025/301 Art. 5(1)(b))".into(),
            provisional,
        );
        let (from, provisional) = match a.submitted(ReportKind::DoraIntermediate) {
            Some(s) => (s, false),
            None => (intermediate_due, true),
        };
        push(
            ReportKind::DoraFinal,
            add_month(from),
            "one month after the latest intermediate report (Delegated Regulation (EU) 2025/301 Art. 5(1)(c))".into(),
            provisional,
        );
    }
    if reg.gdpr && a.personal_data_breach {
        let aware = a.breach_aware_at.unwrap_or(a.aware_at);
        push(
            ReportKind::GdprNotification,
            add_hours(aware, 72),
            "72 hours after becoming aware of the personal data breach (GDPR Art. 33(1))".into(),
            false,
        );
    }
    out.sort_by_key(|d| d.due);
    out
}

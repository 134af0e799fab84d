//! Report drafts for the authorities, and a printable incident report.
//!
//! A draft follows the fields of its template (NIS2 Art. 23(4), the DORA reporting templates
//! of Implementing Regulation (EU) 2025/302, GDPR Art. 33(3)), filled from the incident, its
//! verdict, the response runs and the assessment. What only a person can say is `null` and
//! listed in `to_complete`; nothing is sent anywhere. The JSON structure is documented in
//! `docs/reports.md`.

use jiff::Timestamp;
use rempart_config::Regulatory;
use rempart_model::{EntityKind, Incident, Verdict};
use serde_json::{Value, json};

use crate::clocks::{Assessment, Deadline, ReportKind, dora_major};
use crate::run::{Outcome, Run};

/// What a report is written from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub incident: &'a Incident,
    pub verdict: Option<&'a Verdict>,
    pub runs: &'a [Run],
    pub assessment: Option<&'a Assessment>,
    pub regulatory: &'a Regulatory,
    pub deadlines: &'a [Deadline],
    pub now: Timestamp,
}

fn entities(i: &Incident, kind: EntityKind) -> Vec<&str> {
    i.entities
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.value.as_str())
        .collect()
}

/// Actions performed by the runs (not dry runs, not refused).
fn measures(runs: &[Run]) -> Vec<Value> {
    runs.iter()
        .filter(|r| !r.dry_run)
        .flat_map(|r| r.actions.iter().map(move |a| (r, a)))
        .filter(|(_, a)| matches!(a.state, Outcome::Succeeded | Outcome::RolledBack))
        .map(|(r, a)| {
            json!({
                "action": a.action,
                "target": a.target,
                "time": a.time,
                "playbook": r.playbook,
                "undone": a.state == Outcome::RolledBack,
            })
        })
        .collect()
}

fn iocs(i: &Incident) -> Value {
    json!({
        "ip_addresses": entities(i, EntityKind::Ip),
        "domains": entities(i, EntityKind::Domain),
        "file_hashes": entities(i, EntityKind::Hash),
    })
}

/// The draft of `kind` for an incident.
pub fn draft(kind: ReportKind, x: &Input<'_>) -> Value {
    let i = x.incident;
    let deadline = x.deadlines.iter().find(|d| d.report == kind);
    let mut to_complete: Vec<&str> = Vec::new();
    let description = x.verdict.map_or_else(|| i.title.clone(), |v| v.summary.clone());
    let malicious = x
        .verdict
        .map(|v| v.classification == rempart_model::Classification::TruePositive);
    let body = match kind {
        ReportKind::Nis2EarlyWarning => {
            to_complete.extend(["suspected_unlawful_or_malicious", "cross_border_impact"]);
            json!({
                // Art. 23(4)(a): whether unlawful or malicious acts are suspected, and whether
                // the incident could have a cross-border impact.
                "suspected_unlawful_or_malicious": Value::Null,
                "suggested_suspected_unlawful_or_malicious": malicious,
                "cross_border_impact": Value::Null,
                "summary": description,
            })
        }
        ReportKind::Nis2Notification => {
            to_complete.extend(["initial_assessment.impact"]);
            json!({
                // Art. 23(4)(b): an update of the early warning, an initial assessment of
                // severity and impact, and indicators of compromise where available.
                "updates_early_warning": x.assessment.and_then(|a| a.submitted(ReportKind::Nis2EarlyWarning)),
                "initial_assessment": {
                    "severity": i.severity,
                    "impact": Value::Null,
                },
                "indicators_of_compromise": iocs(i),
                "summary": description,
            })
        }
        ReportKind::Nis2Final => {
            to_complete.extend(["severity_and_impact", "root_cause", "cross_border_impact"]);
            json!({
                // Art. 23(4)(d): a detailed description (severity and impact), the type of
                // threat or root cause, mitigation applied and ongoing, cross-border impact.
                "detailed_description": description,
                "severity_and_impact": Value::Null,
                "threat_type": {
                    "attack_techniques": i.techniques,
                    "tactics": i.tactics,
                },
                "root_cause": Value::Null,
                "mitigation_measures": measures(x.runs),
                "cross_border_impact": Value::Null,
            })
        }
        ReportKind::DoraInitial | ReportKind::DoraIntermediate | ReportKind::DoraFinal => {
            let criteria = x.assessment.and_then(|a| a.dora.as_ref());
            let class = criteria.map(dora_major);
            let mut body = json!({
                // Implementing Regulation (EU) 2025/302, Annex I: general information and the
                // content of the initial notification.
                "incident_reference_code": i.id,
                "detection_time": i.first_seen,
                "awareness_time": x.assessment.map(|a| a.aware_at),
                "classification_time": x.assessment.and_then(|a| a.dora_classified_at),
                "classification": class,
                "description": description,
                "member_states_affected": criteria.and_then(|c| c.member_states_affected),
                "how_discovered": format!("detected by Rempart: {} alerts from {} rules", i.alert_count, i.rules.len()),
                "business_continuity_plan_activated": Value::Null,
            });
            to_complete.push("business_continuity_plan_activated");
            if kind != ReportKind::DoraInitial {
                body["clients_affected"] = json!(criteria.and_then(|c| c.clients_affected));
                body["duration_hours"] = json!(criteria.and_then(|c| c.duration_hours));
                body["downtime_hours"] = json!(criteria.and_then(|c| c.downtime_hours));
                body["indicators_of_compromise"] = iocs(i);
                body["actions_taken"] = json!(measures(x.runs));
                body["root_cause_type"] = Value::Null;
                to_complete.push("root_cause_type");
            }
            if kind == ReportKind::DoraFinal {
                body["root_cause_description"] = Value::Null;
                body["resolution_time"] = Value::Null;
                body["direct_and_indirect_costs_eur"] = json!(criteria.and_then(|c| c.economic_impact_eur));
                body["lessons_learned"] = Value::Null;
                to_complete.extend(["root_cause_description", "resolution_time", "lessons_learned"]);
            }
            body
        }
        ReportKind::GdprNotification => {
            to_complete.extend([
                "nature_of_breach.categories_of_data_subjects",
                "nature_of_breach.approximate_number_of_data_subjects",
                "nature_of_breach.categories_of_records",
                "nature_of_breach.approximate_number_of_records",
                "dpo_contact",
                "likely_consequences",
                "measures_proposed",
            ]);
            let late = deadline.is_some_and(|d| x.now > d.due && d.submitted.is_none());
            if late {
                to_complete.push("reasons_for_delay");
            }
            json!({
                // Art. 33(3)(a)-(d) and 33(1) (reasons for a delay).
                "nature_of_breach": {
                    "description": description,
                    "categories_of_data_subjects": Value::Null,
                    "approximate_number_of_data_subjects": Value::Null,
                    "categories_of_records": Value::Null,
                    "approximate_number_of_records": Value::Null,
                    "accounts_involved": entities(i, EntityKind::User),
                    "systems_involved": entities(i, EntityKind::Host),
                },
                "dpo_contact": Value::Null,
                "likely_consequences": Value::Null,
                "measures_taken": measures(x.runs),
                "measures_proposed": Value::Null,
                "breach_awareness_time": x.assessment.map(|a| a.breach_aware_at.unwrap_or(a.aware_at)),
                "reasons_for_delay": if late { Value::Null } else { json!("not late") },
            })
        }
    };
    json!({
        "report": kind,
        "regime": kind.regime(),
        "recipient": kind.recipient(),
        "status": "draft",
        "generated": x.now,
        "deadline": deadline.map(|d| json!({"due": d.due, "state": d.state, "basis": d.basis, "provisional": d.provisional})),
        "organisation": {
            "name": x.regulatory.organisation,
            "member_state": x.regulatory.member_state,
        },
        "incident": {
            "id": i.id,
            "title": i.title,
            "severity": i.severity,
            "status": i.status,
            "first_seen": i.first_seen,
            "last_seen": i.last_seen,
        },
        "content": body,
        "to_complete": to_complete,
    })
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A self-contained, printable HTML report: summary, deadlines, timeline, response.
pub fn html(x: &Input<'_>) -> String {
    let i = x.incident;
    let mut h = String::new();
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>Incident report {}</title>", esc(&i.id.to_string())));
    h.push_str(
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#111}\
         h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}\
         table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}\
         th{background:#f3f3f3}.overdue,.late{color:#a00;font-weight:600}.due_soon{color:#a60;font-weight:600}\
         .met{color:#060}code{font-size:.92em}@media print{body{margin:0}}</style></head><body>",
    );
    h.push_str(&format!("<h1>{}</h1>", esc(&i.title)));
    h.push_str("<table>");
    let row = |h: &mut String, k: &str, v: &str| h.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), v));
    row(&mut h, "Incident", &format!("<code>{}</code>", esc(&i.id.to_string())));
    row(&mut h, "Severity", &esc(i.severity.as_str()));
    row(&mut h, "Status", &esc(i.status.as_str()));
    row(
        &mut h,
        "First and last alert",
        &esc(&format!("{} — {}", i.first_seen, i.last_seen)),
    );
    row(&mut h, "Alerts", &i.alert_count.to_string());
    row(&mut h, "ATT&CK", &esc(&i.techniques.join(", ")));
    if !x.regulatory.organisation.is_empty() {
        row(&mut h, "Organisation", &esc(&x.regulatory.organisation));
    }
    row(&mut h, "Generated", &esc(&x.now.to_string()));
    h.push_str("</table>");
    if let Some(v) = x.verdict {
        h.push_str("<h2>Triage verdict</h2>");
        h.push_str(&format!(
            "<p><b>{}</b> (confidence {:.2}, {}): {}</p>",
            esc(v.classification.as_str()),
            v.confidence,
            esc(v.mode.as_str()),
            esc(&v.summary)
        ));
    }
    h.push_str("<h2>Reporting deadlines</h2>");
    if x.deadlines.is_empty() {
        h.push_str("<p>No report is owed under the regimes that apply, as assessed.</p>");
    } else {
        h.push_str("<table><tr><th>Report</th><th>Due</th><th>State</th><th>Basis</th></tr>");
        for d in x.deadlines {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}{}</td><td class=\"{}\">{}{}</td><td>{}</td></tr>",
                esc(d.report.as_str()),
                esc(&d.due.to_string()),
                if d.provisional { " (provisional)" } else { "" },
                d.state.as_str(),
                esc(d.state.as_str()),
                d.submitted
                    .map(|s| format!(", sent {}", esc(&s.to_string())))
                    .unwrap_or_default(),
                esc(&d.basis)
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Timeline</h2><table><tr><th>Time</th><th>What</th><th>By</th></tr>");
    let mut lines: Vec<(Timestamp, String, String)> = Vec::new();
    lines.push((i.first_seen, "first alert".into(), "detection".into()));
    for c in &i.history {
        lines.push((c.time, format!("{}: {}", c.what, c.reason), c.actor.clone()));
    }
    if let Some(v) = x.verdict {
        for t in &v.timeline {
            if let Ok(time) = t.time.parse::<Timestamp>() {
                lines.push((time, t.description.clone(), "triage".into()));
            }
        }
    }
    for r in x.runs {
        lines.push((
            r.created,
            format!("playbook `{}` started ({})", r.playbook, r.trigger),
            r.requested_by.clone(),
        ));
        for a in &r.actions {
            if let Some(t) = a.time {
                lines.push((
                    t,
                    format!(
                        "{} {} — {}{}",
                        a.action,
                        a.target.as_deref().unwrap_or(""),
                        a.state,
                        if a.detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", a.detail)
                        }
                    ),
                    format!("playbook:{}", r.playbook),
                ));
            }
        }
    }
    lines.sort_by_key(|(t, _, _)| *t);
    for (t, what, by) in lines {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.to_string()),
            esc(&what),
            esc(&by)
        ));
    }
    h.push_str("</table><h2>Entities</h2><table><tr><th>Kind</th><th>Value</th></tr>");
    for e in &i.entities {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(e.kind.as_str()),
            esc(&e.value)
        ));
    }
    h.push_str("</table></body></html>\n");
    h
}

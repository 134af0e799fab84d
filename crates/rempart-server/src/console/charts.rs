//! Charts drawn on the server as inline SVG: no script draws them, no library is loaded, and
//! a label from telemetry is escaped text inside `<text>` or `<title>`, never markup.
//!
//! Presentation goes through attributes and the stylesheet's classes (the page's policy
//! forbids inline `style`).

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::Timestamp;
use rempart_model::{Alert, EntityKind, Incident};

use super::text::hidden;

/// A drawn chart; it escaped everything it holds when it was drawn.
#[derive(Debug, Clone, Default)]
pub struct Svg(String);

impl std::fmt::Display for Svg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Svg {}

/// Text for an SVG text node or attribute: escaped, hidden characters named.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if hidden(c) => {
                let _ = write!(out, "[U+{:04X}]", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Counts of `times` in `n` equal buckets between the first and the last, labelled by their
/// start.
pub fn buckets(times: &[Timestamp], n: usize) -> Vec<(String, u64)> {
    let (Some(min), Some(max)) = (times.iter().min(), times.iter().max()) else {
        return Vec::new();
    };
    let n = n.max(1);
    let span = (max.as_nanosecond() - min.as_nanosecond()).max(1);
    let width = span / n as i128 + 1;
    let mut counts = vec![0u64; n];
    for t in times {
        let i = ((t.as_nanosecond() - min.as_nanosecond()) / width) as usize;
        counts[i.min(n - 1)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let start = Timestamp::from_nanosecond(min.as_nanosecond() + width * i as i128).unwrap_or(*min);
            (start.strftime("%m-%d %H:%M").to_string(), c)
        })
        .collect()
}

/// Vertical bars, one per labelled count.
pub fn bars(title: &str, data: &[(String, u64)]) -> Svg {
    let (w, h, pad) = (640.0_f64, 140.0_f64, 20.0_f64);
    let max = data.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    if data.is_empty() {
        let _ = write!(s, "<text x=\"10\" y=\"70\" class=\"muted\">nothing in range</text>");
    }
    let bw = (w - 2.0 * pad) / data.len().max(1) as f64;
    for (i, (label, c)) in data.iter().enumerate() {
        let bh = (*c as f64 / max) * (h - 2.0 * pad);
        let x = pad + i as f64 * bw;
        let y = h - pad - bh;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{}: {c}</title></rect>",
            (bw - 1.0).max(1.0),
            esc(label)
        );
    }
    if let (Some(first), Some(last)) = (data.first(), data.last()) {
        let _ = write!(
            s,
            "<text x=\"{pad}\" y=\"{}\" class=\"axis\">{}</text><text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            h - 4.0,
            esc(&first.0),
            w - pad,
            h - 4.0,
            esc(&last.0)
        );
        let _ = write!(s, "<text x=\"{pad}\" y=\"12\" class=\"axis\">max {max}</text>");
    }
    s.push_str("</svg>");
    Svg(s)
}

/// Horizontal bars, one per labelled count.
pub fn hbars(title: &str, data: &[(String, u64)]) -> Svg {
    let row = 18.0_f64;
    let (w, h) = (320.0_f64, row * data.len().max(1) as f64 + 8.0);
    let max = data.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart small\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    for (i, (label, c)) in data.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let bw = (*c as f64 / max) * (w - 130.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" class=\"axis\">{}</text><rect class=\"bar sev-{}\" x=\"90\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\"></rect><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{c}</text>",
            y + 12.0,
            esc(label),
            esc(label),
            row - 4.0,
            94.0 + bw,
            y + 12.0
        );
    }
    s.push_str("</svg>");
    Svg(s)
}

/// Points on one time axis, one lane per kind of happening.
pub fn timeline(lanes: &[&str], points: &[(Timestamp, usize, String)]) -> Svg {
    let (w, lane_h, left, right) = (900.0_f64, 26.0_f64, 90.0_f64, 20.0_f64);
    let h = lane_h * lanes.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart timeline\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"timeline\"><title>Timeline</title>"
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = 10.0 + lane_h * i as f64 + lane_h / 2.0;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" class=\"axis\">{}</text><line class=\"lane\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"></line>",
            y + 4.0,
            esc(lane),
            w - right
        );
    }
    let (Some(min), Some(max)) = (points.iter().map(|p| p.0).min(), points.iter().map(|p| p.0).max()) else {
        s.push_str("</svg>");
        return Svg(s);
    };
    let span = (max.as_nanosecond() - min.as_nanosecond()).max(1) as f64;
    for (t, lane, label) in points {
        let x = left + ((t.as_nanosecond() - min.as_nanosecond()) as f64 / span) * (w - left - right);
        let y = 10.0 + lane_h * *lane as f64 + lane_h / 2.0;
        let _ = write!(
            s,
            "<circle class=\"dot lane-{lane}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\"><title>{} {}</title></circle>",
            t.strftime("%H:%M:%S"),
            esc(&short(label, 200))
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{:.1}\" class=\"axis\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text></svg>",
        h - 4.0,
        min.strftime("%Y-%m-%d %H:%M:%S"),
        w - right,
        h - 4.0,
        max.strftime("%Y-%m-%d %H:%M:%S")
    );
    Svg(s)
}

/// The incident's entities and the rules that link them: hosts on the left, rules in the
/// middle, accounts, addresses, processes and files on the right; a line where an alert of
/// the rule names the entity.
pub fn entity_graph(incident: &Incident, alerts: &[Alert]) -> Svg {
    const MAX_PER_COLUMN: usize = 24;
    let left: Vec<&str> = incident
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Host)
        .map(|e| e.value.as_str())
        .take(MAX_PER_COLUMN)
        .collect();
    let right: Vec<(EntityKind, &str)> = incident
        .entities
        .iter()
        .filter(|e| e.kind != EntityKind::Host)
        .map(|e| (e.kind, e.value.as_str()))
        .take(MAX_PER_COLUMN)
        .collect();
    let rules: Vec<&str> = incident.rules.iter().map(String::as_str).take(MAX_PER_COLUMN).collect();
    // Which entity each rule's alerts name.
    let mut edges: BTreeMap<(usize, usize, bool), u64> = BTreeMap::new();
    for a in alerts {
        let Some(r) = rules.iter().position(|r| *r == a.rule_title) else {
            continue;
        };
        let names = |v: &str| {
            let v = v.to_lowercase();
            a.host.as_deref().is_some_and(|h| h.to_lowercase() == v)
                || a.user
                    .as_deref()
                    .is_some_and(|u| u.to_lowercase() == v || u.to_lowercase().ends_with(&format!("\\{v}")))
                || a.matched.iter().any(|m| m.value.to_lowercase().contains(&v))
        };
        for (i, h) in left.iter().enumerate() {
            if a.host
                .as_deref()
                .is_some_and(|x| rempart_model::canonical::host(x).as_deref() == Some(h) || x == *h)
                || names(h)
            {
                *edges.entry((r, i, false)).or_default() += 1;
            }
        }
        for (i, (_, v)) in right.iter().enumerate() {
            if names(v) {
                *edges.entry((r, i, true)).or_default() += 1;
            }
        }
    }
    let rows = left.len().max(right.len()).max(rules.len()).max(1);
    let (w, row) = (900.0_f64, 28.0_f64);
    let h = rows as f64 * row + 20.0;
    let y = |i: usize, n: usize| 10.0 + (i as f64 + 0.5) * (h - 20.0) / n.max(1) as f64;
    let (xl, xm, xr) = (150.0_f64, 450.0_f64, 750.0_f64);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart graph\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"entity graph\"><title>Entities and the rules that link them</title>"
    );
    for ((r, e, right_side), n) in &edges {
        let (x2, y2) = if *right_side {
            (xr, y(*e, right.len()))
        } else {
            (xl, y(*e, left.len()))
        };
        let _ = write!(
            s,
            "<line class=\"edge\" x1=\"{xm}\" y1=\"{:.1}\" x2=\"{x2}\" y2=\"{y2:.1}\"><title>{n} alerts</title></line>",
            y(*r, rules.len())
        );
    }
    let node = |s: &mut String, x: f64, yy: f64, class: &str, label: &str, anchor: &str| {
        let _ = write!(
            s,
            "<circle class=\"node {class}\" cx=\"{x}\" cy=\"{yy:.1}\" r=\"6\"></circle><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}<title>{}</title></text>",
            if anchor == "end" { x - 10.0 } else { x + 10.0 },
            yy + 4.0,
            esc(&short(label, 36)),
            esc(label)
        );
    };
    for (i, v) in left.iter().enumerate() {
        node(&mut s, xl, y(i, left.len()), "host", v, "end");
    }
    for (i, r) in rules.iter().enumerate() {
        node(&mut s, xm, y(i, rules.len()), "rule", r, "start");
    }
    for (i, (k, v)) in right.iter().enumerate() {
        node(
            &mut s,
            xr,
            y(i, right.len()),
            k.as_str(),
            &format!("{}: {v}", k.as_str()),
            "start",
        );
    }
    s.push_str("</svg>");
    Svg(s)
}

/// Counts of durations (minutes) in fixed bands, for a histogram.
pub fn spread(minutes: &[f64]) -> Vec<(String, u64)> {
    const BANDS: [(f64, &str); 7] = [
        (5.0, "< 5 min"),
        (15.0, "5–15 min"),
        (60.0, "15–60 min"),
        (240.0, "1–4 h"),
        (1440.0, "4–24 h"),
        (10080.0, "1–7 days"),
        (f64::INFINITY, "> 7 days"),
    ];
    let mut counts = [0u64; BANDS.len()];
    for m in minutes {
        let i = BANDS.iter().position(|(top, _)| m < top).unwrap_or(BANDS.len() - 1);
        counts[i] += 1;
    }
    BANDS
        .iter()
        .zip(counts)
        .map(|((_, l), c)| ((*l).to_owned(), c))
        .collect()
}

/// The median of durations in minutes, written for people.
pub fn median(minutes: &[f64]) -> String {
    if minutes.is_empty() {
        return "none yet".into();
    }
    let mut v = minutes.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v[v.len() / 2];
    if m < 60.0 {
        format!("{m:.0} min")
    } else {
        format!("{:.1} h", m / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_text() {
        let svg = bars("t", &[("<script>x</script>\u{202e}".into(), 3)]).to_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("[U+202E]"));
    }

    #[test]
    fn buckets_count_every_time() {
        let t0: Timestamp = "2026-12-05T00:00:00Z".parse().unwrap_or_default();
        let times: Vec<Timestamp> = (0..100).map(|i| t0 + jiff::SignedDuration::from_secs(i * 37)).collect();
        let b = buckets(&times, 7);
        assert_eq!(b.len(), 7);
        assert_eq!(b.iter().map(|(_, c)| c).sum::<u64>(), 100);
        assert!(buckets(&[], 5).is_empty());
    }
}

//! `rempart rules check` and `rempart hunt`: Sigma rules over files or stored events.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;
use rempart_detect::{LoadReport, RuleSet};
use rempart_ingest::decode::{DecodeOptions, Decoded};
use rempart_ingest::files;
use rempart_model::Event;
use rempart_store::EventQuery;

use crate::instance;

/// Reads every `.yml`/`.yaml` under `paths` and compiles them on every core, resolving their
/// ATT&CK tags with the catalogue at `attack` if one is given.
pub fn load_rules(paths: &[PathBuf], attack: Option<&Path>) -> anyhow::Result<(RuleSet, LoadReport)> {
    load_rules_on(paths, attack, all_threads())
}

/// As many threads as this process may run at once.
pub fn all_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// [`load_rules`] on up to `threads` threads.
pub fn load_rules_on(
    paths: &[PathBuf],
    attack: Option<&Path>,
    threads: usize,
) -> anyhow::Result<(RuleSet, LoadReport)> {
    let files = files::walk(paths).context("cannot list rules")?;
    let mut sources = Vec::new();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
    {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read `{}`", f.display()))?;
        sources.push((f.display().to_string(), text));
    }
    let (set, report) = RuleSet::load_on(sources.iter().map(|(f, t)| (f.as_str(), t.as_str())), threads);
    let set = match attack {
        Some(path) => set.with_attack(load_attack(path)?),
        None => set,
    };
    Ok((set, report))
}

/// Reads an ATT&CK attack-pattern lookup (`attack-patterns-lookup-*.json`).
pub fn load_attack(path: &Path) -> anyhow::Result<rempart_detect::AttackCatalog> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    rempart_detect::AttackCatalog::from_json(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("`{}`", path.display()))
}

pub fn check(paths: &[PathBuf], json_out: bool) -> anyhow::Result<()> {
    let (_, report) = load_rules(paths, None)?;
    let mut out = crate::out::stdout();
    if json_out {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    for r in &report.rejected {
        writeln!(
            out,
            "rejected  {}:{}  {}{}",
            r.file,
            r.line,
            r.title.as_deref().map(|t| format!("{t}: ")).unwrap_or_default(),
            r.reason
        )?;
    }
    writeln!(
        out,
        "{} rules loaded ({} of them correlation rules), {} rejected ({} filters parsed, not yet applied)",
        report.loaded.len(),
        report.correlations,
        report.rejected.len(),
        report.filters
    )?;
    Ok(())
}

/// How `hunt` prints matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
    Csv,
}

/// Runs `rules` over the events of `paths`, or over stored events when `stored` is set.
pub async fn hunt(
    instance: instance::Instance<'_>,
    rules: &[PathBuf],
    attack: Option<&Path>,
    paths: &[PathBuf],
    stored: Option<(Option<Timestamp>, Option<Timestamp>)>,
    output: Output,
    threads: usize,
) -> anyhow::Result<()> {
    let (set, report) = load_rules_on(rules, attack, threads)?;
    if report.loaded.is_empty() {
        anyhow::bail!(
            "no rule loaded from {} ({} rejected; see `rempart rules check`)",
            rules
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            report.rejected.len()
        );
    }
    if !report.rejected.is_empty() {
        tracing::warn!(
            rejected = report.rejected.len(),
            "some rules were rejected; see `rempart rules check`"
        );
    }
    // Indicators imported into this instance are matched in the same pass.
    let intel = if instance.exists() {
        rempart_server::intel::load(&*instance.store().await?).await?
    } else {
        rempart_intel::IocIndex::default()
    };
    let ioc = |e: &Event| -> Vec<rempart_detect::RuleMatch> {
        intel
            .match_event(e)
            .into_iter()
            .map(|h| rempart_detect::RuleMatch {
                rule_id: Some(h.indicator.id.clone()),
                rule_title: format!("Threat intel: {}", h.indicator.name),
                level: Some(rempart_intel::index::level(h.indicator.confidence).to_owned()),
                tags: std::iter::once("intel".to_owned())
                    .chain(h.indicator.labels.iter().cloned())
                    .chain(h.matched.iter().map(|(k, v)| format!("ioc:{}:{v}", k.as_str())))
                    .collect(),
                matched: h
                    .matched
                    .iter()
                    .map(|(k, v)| rempart_model::MatchedField::new(format!("ioc.{}", k.as_str()), v.clone()))
                    .collect(),
            })
            .collect()
    };
    // Each match is written out as soon as it is found (the event is not kept), then the lines
    // are put in time order: a hunt's memory grows with its matches' text, not their events.
    let mut lines: Vec<(Timestamp, String)> = Vec::new();
    let evaluate = |e: &Event| -> anyhow::Result<Vec<(Timestamp, String)>> {
        set.evaluate(e)
            .into_iter()
            .chain(ioc(e))
            .map(|m| Ok((e.time, render_match(output, &set, e, &m)?)))
            .collect()
    };
    let mut scanned = 0u64;
    // Correlation rules need the events in time order: they are gathered first.
    let mut correlator = set.correlator();
    let correlating = correlator.is_some();
    let mut events: Vec<Event> = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    match stored {
        Some((since, until)) => {
            let store = instance.store().await?;
            let mut before = None;
            loop {
                let q = EventQuery {
                    since,
                    until,
                    before,
                    limit: Some(EventQuery::MAX_LIMIT),
                    ..EventQuery::default()
                };
                let page = store.query_events(&q).await?;
                let Some(last) = page.last() else { break };
                before = Some((last.time, last.id));
                let full = page.len() as u32 == EventQuery::MAX_LIMIT;
                for e in page {
                    scanned += 1;
                    if correlating {
                        events.push(e);
                    } else {
                        lines.extend(evaluate(&e)?);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        None => {
            let files = files::walk(paths).context("cannot list input")?;
            let opts = DecodeOptions::default();
            let now = Timestamp::now();
            if correlating {
                // Correlation needs every event: the files are decoded side by side and their
                // events gathered in the files' order.
                for mut decoded in files::map_files(&files, threads, |f| decode_events(f, &opts, now)) {
                    scanned += decoded.len() as u64;
                    events.append(&mut decoded);
                }
            } else if threads > 1
                && let [file] = files.as_slice()
                && let Some(blocks) = files::decode_file_blocks(file, &opts, now, threads, |scan: &mut Scan, d| {
                    scan.add(d, &evaluate);
                })
            {
                // One file of lines: blocks of lines decoded and evaluated side by side.
                for scan in blocks {
                    scanned += scan.scanned;
                    match scan.failed {
                        Some(e) => failed = failed.or(Some(e)),
                        None => lines.extend(scan.found),
                    }
                }
            } else if threads > 1 && files.len() == 1 {
                // One file of another kind: decoded on this thread (an EVTX file's chunks side
                // by side), evaluated on the workers.
                let opts = DecodeOptions { threads, ..opts };
                let (n, found) = evaluate_parallel(&files, &opts, now, threads, &evaluate)?;
                scanned += n;
                lines.extend(found);
            } else {
                // Many files: each decoded and evaluated whole on one thread, every thread busy
                // from the first file on.
                for (n, found) in files::map_files(&files, threads, |f| evaluate_file(f, &opts, now, &evaluate)) {
                    scanned += n;
                    match found {
                        Ok(found) => lines.extend(found),
                        Err(e) => failed = failed.or(Some(e)),
                    }
                }
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(c) = correlator.as_mut() {
        events.sort_by_key(|e| e.time);
        for e in events {
            for m in set.evaluate_with(&e, Some(c)).into_iter().chain(ioc(&e)) {
                lines.push((e.time, render_match(output, &set, &e, &m)?));
            }
        }
    }
    // Stable: matches of one time keep the order they were found in.
    lines.sort_by_key(|(t, _)| *t);
    let mut out = std::io::BufWriter::new(crate::out::stdout());
    if output == Output::Csv {
        writeln!(out, "timestamp,level,rule_id,rule_title,host,user,source,matched")?;
    }
    for (_, line) in &lines {
        writeln!(out, "{line}")?;
    }
    if output == Output::Table {
        writeln!(
            out,
            "{} matches in {scanned} events, {} rules",
            lines.len(),
            report.loaded.len()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// `rempart hunt --explain-rule`: why the rule `rule` did or did not match each event of
/// `paths`, as text or (with `json`) one explanation per line.
pub fn explain(
    rules: &[PathBuf],
    attack: Option<&Path>,
    rule: &str,
    paths: &[PathBuf],
    json: bool,
) -> anyhow::Result<()> {
    let (set, report) = load_rules(rules, attack)?;
    if !set.is_detection(rule) {
        if set.is_correlation(rule) {
            anyhow::bail!("`{rule}` is a correlation rule: explain the rules it refers to");
        }
        if let Some(r) = report
            .rejected
            .iter()
            .find(|r| r.title.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(rule)))
        {
            anyhow::bail!(
                "rule `{rule}` did not load ({}:{}): {}; it can match nothing",
                r.file,
                r.line,
                r.reason
            );
        }
        anyhow::bail!("no rule with id or title `{rule}` loaded from the rules given");
    }
    let files = files::walk(paths).context("cannot list input")?;
    let mut out = std::io::BufWriter::new(crate::out::stdout());
    let (mut events, mut matched) = (0u64, 0u64);
    let mut failed: Option<anyhow::Error> = None;
    for f in &files {
        files::decode_file(f, &DecodeOptions::default(), Timestamp::now(), &mut |d| {
            let Decoded::Event(e) = d else { return };
            if failed.is_some() {
                return;
            }
            events += 1;
            for x in &set.explain(rule, &e) {
                matched += u64::from(x.matched);
                let written = if json {
                    serde_json::to_writer(&mut out, x)
                        .map_err(anyhow::Error::from)
                        .and_then(|()| Ok(writeln!(out)?))
                } else {
                    write!(out, "{}", render_explanation(x, events, f)).map_err(anyhow::Error::from)
                };
                if let Err(err) = written {
                    failed = Some(err);
                }
            }
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !json {
        writeln!(out, "the rule matched {matched} of {events} events")?;
    }
    out.flush()?;
    Ok(())
}

/// An explanation as indented text. Every value that comes from the event is written escaped
/// (JSON string syntax) and cut to a readable length: an event's text cannot move the lines or
/// colour the terminal.
fn render_explanation(x: &rempart_detect::Explanation, n: u64, file: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let id = x.rule_id.as_deref().unwrap_or("(no id)");
    let _ = writeln!(s, "event {n} of {}: {}", file.display(), x.source);
    let _ = writeln!(s, "  rule {id} {:?} ({}:{})", x.title, x.file, x.line);
    let _ = writeln!(
        s,
        "  route: {}: {}",
        x.route,
        if x.routed {
            "admits the event"
        } else {
            "does not admit the event"
        }
    );
    let prefilter = match (x.routed, x.candidate) {
        (false, _) => "not consulted (not routed)",
        (true, true) => "leaves the rule to evaluate",
        (true, false) => "skips the rule: no literal it needs occurs in the event",
    };
    let _ = writeln!(s, "  prefilter: {prefilter}");
    for (i, c) in x.detection.conditions.iter().enumerate() {
        let _ = writeln!(s, "  condition {}: {}", i + 1, verdict(c.matched()));
        condition_lines(&mut s, c, 4);
    }
    let why = match (x.routed, x.detection.matched) {
        (true, true) => "MATCH",
        (false, true) => "no match: the fields match but the rule's logsource does not route it to this event",
        (true, false) => "no match: the condition does not hold",
        (false, false) => "no match: not routed, and the condition does not hold",
    };
    let _ = writeln!(s, "  verdict: {why}\n");
    s
}

fn verdict(matched: bool) -> &'static str {
    if matched { "holds" } else { "does not hold" }
}

fn condition_lines(s: &mut String, c: &rempart_detect::ConditionTrace, indent: usize) {
    use rempart_detect::ConditionTrace as C;
    use std::fmt::Write as _;
    let pad = " ".repeat(indent);
    match c {
        C::Selection {
            name,
            matched,
            detection,
        } => {
            let _ = writeln!(s, "{pad}selection {name}: {}", verdict(*matched));
            detection_lines(s, detection, indent + 2);
        }
        C::And { matched, children } | C::Or { matched, children } => {
            let op = if matches!(c, C::And { .. }) { "and" } else { "or" };
            let _ = writeln!(s, "{pad}{op}: {}", verdict(*matched));
            for child in children {
                condition_lines(s, child, indent + 2);
            }
        }
        C::Not { matched, child } => {
            let _ = writeln!(s, "{pad}not: {}", verdict(*matched));
            condition_lines(s, child, indent + 2);
        }
        C::Quantified {
            quantifier,
            matched,
            need,
            got,
            branches,
        } => {
            let _ = writeln!(
                s,
                "{pad}{quantifier} of ({got} of {} hold, {need} needed): {}",
                branches.len(),
                verdict(*matched)
            );
            for b in branches {
                let _ = writeln!(s, "{pad}  selection {}: {}", b.name, verdict(b.matched));
                detection_lines(s, &b.detection, indent + 4);
            }
        }
    }
}

fn detection_lines(s: &mut String, d: &rempart_detect::DetectionTrace, indent: usize) {
    use rempart_detect::DetectionTrace as D;
    use std::fmt::Write as _;
    let pad = " ".repeat(indent);
    match d {
        D::AllOf { items, .. } => {
            for item in items {
                item_line(s, item, indent);
            }
        }
        D::AnyOf { matched, branches } | D::And { matched, branches } => {
            let op = if matches!(d, D::AnyOf { .. }) {
                "any of"
            } else {
                "all of"
            };
            let _ = writeln!(s, "{pad}{op}: {}", verdict(*matched));
            for b in branches {
                detection_lines(s, b, indent + 2);
            }
        }
        D::Keywords { item, .. } => item_line(s, item, indent),
        D::ArrayMatch {
            field,
            quantifier,
            matched,
            member_count,
            matched_count,
            ..
        } => {
            let _ = writeln!(
                s,
                "{pad}{field}: {quantifier} of its {member_count} members ({matched_count} match): {}",
                verdict(*matched)
            );
        }
        D::Conditional { matched, condition } => {
            let _ = writeln!(s, "{pad}condition: {}", verdict(*matched));
            condition_lines(s, condition, indent + 2);
        }
        D::Other { kind, matched } => {
            let _ = writeln!(s, "{pad}{kind}: {}", verdict(*matched));
        }
    }
}

/// Longest event value or pattern shown, in characters.
const SHOWN: usize = 160;

fn item_line(s: &mut String, item: &rempart_detect::ItemTrace, indent: usize) {
    use rempart_detect::MatchReason as R;
    use std::fmt::Write as _;
    let shown = |v: String| -> String {
        let v: String = v.chars().take(SHOWN + 1).collect();
        if v.chars().count() > SHOWN {
            format!("{}…", v.chars().take(SHOWN).collect::<String>())
        } else {
            v
        }
    };
    let field = item.field.as_deref().unwrap_or("(any value)");
    let matcher = serde_json::to_value(item.matcher)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let pattern = item
        .pattern
        .as_ref()
        .map(|p| shown(serde_json::Value::from(p.as_str()).to_string()))
        .unwrap_or_default();
    let actual = item.actual.as_ref().map(|v| shown(v.to_string()));
    let reason = match item.reason {
        R::Matched => "matched".to_owned(),
        R::FieldAbsent => "the event has no such field".to_owned(),
        R::ValueMismatch => format!("the event has {}", actual.as_deref().unwrap_or("another value")),
        R::CaseMismatch => format!(
            "the event has {} (differs only in letter case)",
            actual.as_deref().unwrap_or("another value")
        ),
        R::Existence => "the field's presence is not as required".to_owned(),
        R::NoKeywordMatch => "no value of the event contains it".to_owned(),
    };
    let _ = writeln!(s, "{}{field} {matcher} {pattern}: {reason}", " ".repeat(indent));
}

/// Quotes a CSV field when it needs it (RFC 4180).
/// Events handed to a worker at a time.
const HUNT_BATCH: usize = 256;

type Found = Vec<(Timestamp, String)>;

/// What a part of a hunt found: the events it read, the lines found, or the first failure
/// (after which its events are only counted).
#[derive(Default)]
struct Scan {
    scanned: u64,
    found: Found,
    failed: Option<anyhow::Error>,
}

impl Scan {
    fn add(&mut self, decoded: Decoded, evaluate: &(dyn Fn(&Event) -> anyhow::Result<Found> + Sync)) {
        if let Decoded::Event(e) = decoded {
            self.scanned += 1;
            if self.failed.is_none() {
                match evaluate(&e) {
                    Ok(found) => self.found.extend(found),
                    Err(err) => self.failed = Some(err),
                }
            }
        }
    }
}

/// The events of one file, in its order.
fn decode_events(file: &Path, opts: &DecodeOptions, now: Timestamp) -> Vec<Event> {
    let mut events = Vec::new();
    files::decode_file(file, opts, now, &mut |d| {
        if let Decoded::Event(e) = d {
            events.push(*e);
        }
    });
    events
}

/// Decodes one file and evaluates its events as they come: how many it held, and what was
/// found (or the first failure, after which its other events are only counted).
fn evaluate_file(
    file: &Path,
    opts: &DecodeOptions,
    now: Timestamp,
    evaluate: &(dyn Fn(&Event) -> anyhow::Result<Found> + Sync),
) -> (u64, anyhow::Result<Found>) {
    let mut scan = Scan::default();
    files::decode_file(file, opts, now, &mut |d| scan.add(d, evaluate));
    (scan.scanned, scan.failed.map_or(Ok(scan.found), Err))
}

/// Decodes `files` on this thread and evaluates the events on `threads` workers, in batches;
/// returns how many events were read and the lines found, in the order a single thread would
/// have found them (batches are put back in sequence).
fn evaluate_parallel(
    files: &[PathBuf],
    opts: &DecodeOptions,
    now: Timestamp,
    threads: usize,
    evaluate: &(dyn Fn(&Event) -> anyhow::Result<Found> + Sync),
) -> anyhow::Result<(u64, Found)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Event>)>(threads * 2);
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out: Vec<(usize, Found)> = Vec::new();
                    let mut failed: Option<anyhow::Error> = None;
                    loop {
                        let next = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok((seq, batch)) = next else { break };
                        // After a failure the worker keeps taking batches, so the reader is
                        // never left blocked on a full channel.
                        if failed.is_some() {
                            continue;
                        }
                        let mut found = Vec::new();
                        for e in &batch {
                            match evaluate(e) {
                                Ok(f) => found.extend(f),
                                Err(err) => {
                                    failed = Some(err);
                                    break;
                                }
                            }
                        }
                        out.push((seq, found));
                    }
                    match failed {
                        Some(e) => Err(e),
                        None => Ok(out),
                    }
                })
            })
            .collect();
        let mut scanned = 0u64;
        let mut seq = 0usize;
        let mut batch = Vec::with_capacity(HUNT_BATCH);
        let send = |batch: Vec<Event>, seq: &mut usize| {
            // A send fails only when every worker is gone; their errors are reported below.
            let _ = tx.send((*seq, batch));
            *seq += 1;
        };
        for f in files {
            files::decode_file(f, opts, now, &mut |d| {
                if let Decoded::Event(e) = d {
                    scanned += 1;
                    batch.push(*e);
                    if batch.len() == HUNT_BATCH {
                        send(std::mem::replace(&mut batch, Vec::with_capacity(HUNT_BATCH)), &mut seq);
                    }
                }
            });
        }
        if !batch.is_empty() {
            send(batch, &mut seq);
        }
        drop(tx);
        let mut all = Vec::new();
        for w in workers {
            match w.join() {
                Ok(found) => all.extend(found?),
                Err(_) => anyhow::bail!("a hunt worker stopped unexpectedly"),
            }
        }
        all.sort_by_key(|(seq, _)| *seq);
        Ok((scanned, all.into_iter().flat_map(|(_, f)| f).collect()))
    })
}

/// A match as `--json` writes it.
#[derive(serde::Serialize)]
struct MatchLine<'a> {
    rule_id: Option<&'a str>,
    rule_title: &'a str,
    level: Option<&'a str>,
    tags: &'a [String],
    techniques: Vec<rempart_model::Technique>,
    matched: &'a [rempart_model::MatchedField],
    timestamp: jiff::Timestamp,
    source: String,
    event: &'a Event,
}

/// One match as a line of the hunt's output.
fn render_match(
    output: Output,
    set: &rempart_detect::RuleSet,
    e: &Event,
    m: &rempart_detect::RuleMatch,
) -> anyhow::Result<String> {
    Ok(match output {
        Output::Json => {
            let source = match &e.origin.location {
                Some(l) => format!("{} ({l})", e.origin.source),
                None => e.origin.source.clone(),
            };
            // Serialized straight from the match and its event (no `Value` copy of either).
            serde_json::to_string(&MatchLine {
                rule_id: m.rule_id.as_deref(),
                rule_title: &m.rule_title,
                level: m.level.as_deref(),
                tags: &m.tags,
                techniques: set.techniques(&m.tags),
                matched: &m.matched,
                timestamp: e.time,
                source,
                event: e,
            })?
        }
        Output::Csv => {
            let fields = [
                e.time.to_string(),
                m.level.clone().unwrap_or_default(),
                m.rule_id.clone().unwrap_or_default(),
                m.rule_title.clone(),
                e.normalized.host.clone().unwrap_or_default(),
                e.normalized.user.clone().unwrap_or_default(),
                e.origin.source.clone(),
                m.matched
                    .iter()
                    .map(|f| format!("{}={}", f.field, f.value))
                    .collect::<Vec<_>>()
                    .join("; "),
            ];
            fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
        }
        Output::Table => format!(
            "{}  {:<13} {:<60} {:<24} {}",
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            m.level.as_deref().unwrap_or("-"),
            m.rule_title.chars().take(60).collect::<String>(),
            e.normalized
                .host
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(24)
                .collect::<String>(),
            e.normalized
                .command_line
                .as_deref()
                .or(e.normalized.message.as_deref())
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>()
        ),
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

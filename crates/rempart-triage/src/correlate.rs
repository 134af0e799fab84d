//! Alerts into incidents.
//!
//! An alert joins an open incident that shares one of its entities (host, user, address,
//! process instance, file hash, domain) if it happened within `window` of the incident's span,
//! or within the longer `kill_chain_window` when it is further along the ATT&CK kill chain
//! than anything in the incident (the intrusion progressing on the same machines and
//! accounts). An alert that links several incidents merges them into the oldest, with the
//! linking entity as the recorded reason. A closed incident takes no more alerts: a
//! recurrence opens a new one. An informational alert joins an incident it links to but
//! never opens one: it is context, not a case.
//!
//! The correlator is pure: it takes alerts with their entities and a time, and returns what
//! to store. Time is the alerts' own (event time), never the wall clock, so a retro-hunt over
//! last month's files groups exactly as live detection did.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use rempart_model::{
    Alert, Change, Entity, EntityKind, EventId, Incident, IncidentSeverity, IncidentStatus, TriageState,
};

use crate::severity::{self, Inventory};

/// Most entities an open incident remembers for linking.
const MAX_LINKING: usize = 10_000;
/// How long (processing time) an incident stays open for linking after its last change, even
/// when newer events have moved past its windows.
const WALL_GRACE: SignedDuration = SignedDuration::from_mins(15);
/// Most incidents kept open for linking.
const MAX_OPEN: usize = 100_000;
/// Most history entries an incident keeps (creation and merges are always kept).
const MAX_HISTORY: usize = 256;

/// What the correlator is told to do.
#[derive(Debug, Clone)]
pub struct Settings {
    pub window: SignedDuration,
    pub kill_chain_window: SignedDuration,
    /// Entities that never link.
    pub ignore: HashSet<Entity>,
    pub inventory: Inventory,
}

impl Settings {
    pub fn from_config(c: &rempart_config::Incidents) -> Settings {
        let ignore = c
            .ignore
            .iter()
            .filter_map(|s| {
                let (kind, value) = s.split_once(':')?;
                let kind = EntityKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
                Some(canonical(kind, value))
            })
            .collect();
        Settings {
            window: SignedDuration::from_secs(i64::try_from(c.window_secs).unwrap_or(3_600)),
            kill_chain_window: SignedDuration::from_secs(i64::try_from(c.kill_chain_window_secs).unwrap_or(86_400)),
            ignore,
            inventory: Inventory::new(&c.assets),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&rempart_config::Incidents::default())
    }
}

/// The canonical form of a configured entity, so that `host:DC-01.corp` ignores `dc-01`.
fn canonical(kind: EntityKind, value: &str) -> Entity {
    let v = match kind {
        EntityKind::Host => crate::entity::host(value),
        EntityKind::User => crate::entity::user(value),
        _ => None,
    };
    Entity::new(kind, v.unwrap_or_else(|| value.to_ascii_lowercase()))
}

/// An alert with the entities it is about.
#[derive(Debug, Clone)]
pub struct Observed {
    pub alert: Alert,
    pub entities: BTreeSet<Entity>,
}

/// What to store after the correlator has seen some alerts.
#[derive(Debug, Default, Clone)]
pub struct Update {
    /// Incidents created or changed, in their new state.
    pub incidents: Vec<Incident>,
    /// Which incident each alert joined.
    pub links: Vec<(EventId, EventId)>,
    /// Incidents merged: every alert of the first now belongs to the second.
    pub moves: Vec<(EventId, EventId)>,
    /// Incidents this update opened.
    pub opened: Vec<EventId>,
    /// Open incidents changed, in order of first change: copied into `incidents` once, when
    /// the batch is done.
    touched: Vec<EventId>,
    seen: HashSet<EventId>,
}

impl Update {
    /// How many incidents this update opened.
    pub fn created(&self) -> usize {
        self.opened.len()
    }

    fn touch(&mut self, id: EventId) {
        if self.seen.insert(id) {
            self.touched.push(id);
        }
    }
}

#[derive(Debug, Clone)]
struct Open {
    incident: Incident,
    linking: HashSet<Entity>,
    max_stage: Option<usize>,
}

/// The live grouping of alerts into open incidents.
#[derive(Debug, Default)]
pub struct Correlator {
    settings: Settings,
    open: HashMap<EventId, Open>,
    by_entity: HashMap<Entity, Vec<EventId>>,
    /// The latest alert time seen: incidents quiet for longer than the kill-chain window
    /// before it can take no more alerts and are forgotten.
    watermark: Option<Timestamp>,
}

fn level_of(alert: &Alert) -> IncidentSeverity {
    alert
        .level
        .as_deref()
        .and_then(IncidentSeverity::from_level)
        .unwrap_or(IncidentSeverity::Medium)
}

/// Tactics an alert points at: from resolved techniques, else from `attack.<tactic>` tags.
pub fn tactics_of(alert: &Alert) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in alert.techniques.iter().flat_map(|t| &t.tactics) {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    for tag in &alert.tags {
        if let Some(t) = tag.strip_prefix("attack.") {
            let t = t.replace('_', "-");
            if severity::stage(&t).is_some() && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Technique ids an alert points at.
pub fn techniques_of(alert: &Alert) -> Vec<String> {
    let mut out: Vec<String> = alert.techniques.iter().map(|t| t.id.clone()).collect();
    for tag in &alert.tags {
        if let Some(t) = tag.strip_prefix("attack.")
            && t.len() >= 5
            && (t.starts_with('t') || t.starts_with('T'))
            && t[1..5].bytes().all(|b| b.is_ascii_digit())
        {
            let id = t.to_ascii_uppercase();
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

fn push_capped(list: &mut Vec<String>, v: &str) {
    if list.len() < Incident::MAX_LISTED && !list.iter().any(|x| x == v) {
        list.push(v.to_owned());
    }
}

fn push_history(incident: &mut Incident, change: Change) {
    let keep = matches!(change.what.as_str(), "created" | "merged" | "absorbed");
    if keep || incident.history.len() < MAX_HISTORY {
        incident.history.push(change);
    }
}

impl Correlator {
    pub fn new(settings: Settings) -> Correlator {
        Correlator {
            settings,
            ..Correlator::default()
        }
    }

    /// Takes back open incidents from the store (at start).
    pub fn restore(&mut self, incidents: impl IntoIterator<Item = Incident>) {
        for i in incidents {
            self.put(i);
        }
    }

    /// The ids of the open incidents held.
    pub fn open_ids(&self) -> Vec<EventId> {
        self.open.keys().copied().collect()
    }

    /// An open incident by id.
    pub fn get(&self, id: EventId) -> Option<&Incident> {
        self.open.get(&id).map(|o| &o.incident)
    }

    /// Replaces an incident changed elsewhere (an analyst closed it, a triage finished): a
    /// closed one stops taking alerts.
    pub fn replace(&mut self, incident: Incident) {
        self.remove(incident.id);
        if incident.status.is_open() {
            self.put(incident);
        }
    }

    fn put(&mut self, incident: Incident) {
        if !incident.status.is_open() {
            return;
        }
        let linking: HashSet<Entity> = incident
            .entities
            .iter()
            .filter(|e| !self.settings.ignore.contains(e))
            .cloned()
            .collect();
        for e in &linking {
            self.by_entity.entry(e.clone()).or_default().push(incident.id);
        }
        let max_stage = incident.tactics.iter().filter_map(|t| severity::stage(t)).max();
        self.watermark = self.watermark.max(Some(incident.last_seen));
        self.open.insert(
            incident.id,
            Open {
                incident,
                linking,
                max_stage,
            },
        );
    }

    fn remove(&mut self, id: EventId) -> Option<Open> {
        let open = self.open.remove(&id)?;
        for e in &open.linking {
            if let Some(ids) = self.by_entity.get_mut(e) {
                ids.retain(|x| *x != id);
                if ids.is_empty() {
                    self.by_entity.remove(e);
                }
            }
        }
        Some(open)
    }

    /// Groups `alerts` (in any order; each is placed as it comes) and returns what to store.
    pub fn observe(&mut self, alerts: &[Observed], now: Timestamp) -> Update {
        let mut update = Update::default();
        for o in alerts {
            if let Some(id) = self.place(o, now, &mut update) {
                update.links.push((o.alert.id, id));
            }
        }
        // Merged incidents are already in `incidents`, in their final state.
        for id in std::mem::take(&mut update.touched) {
            if let Some(open) = self.open.get(&id) {
                update.incidents.push(open.incident.clone());
            }
        }
        self.expire(now);
        update
    }

    /// Open incidents this alert may join, each with the entity that links it and whether
    /// through kill-chain progression.
    fn candidates(&self, o: &Observed) -> Vec<(EventId, Entity, bool)> {
        let t = o.alert.time;
        let stage = tactics_of(&o.alert).iter().filter_map(|t| severity::stage(t)).max();
        let mut out: Vec<(EventId, Entity, bool)> = Vec::new();
        for e in o.entities.iter().filter(|e| !self.settings.ignore.contains(e)) {
            for id in self.by_entity.get(e).into_iter().flatten() {
                if out.iter().any(|(x, _, _)| x == id) {
                    continue;
                }
                let Some(open) = self.open.get(id) else { continue };
                let inc = &open.incident;
                let after_start = t >= inc.first_seen - self.settings.window;
                let near = after_start && t <= inc.last_seen + self.settings.window;
                let progresses = after_start
                    && t <= inc.last_seen + self.settings.kill_chain_window
                    && stage.is_some()
                    && stage > open.max_stage;
                if near || progresses {
                    out.push((*id, e.clone(), !near));
                }
            }
        }
        // The oldest first: it survives a merge.
        out.sort_by_key(|(id, _, _)| {
            let inc = &self.open[id].incident;
            (inc.created, *id)
        });
        out
    }

    /// Places one alert; `None` for an informational alert that joins nothing (context, not a
    /// case: it opens no incident of its own).
    fn place(&mut self, o: &Observed, now: Timestamp, update: &mut Update) -> Option<EventId> {
        self.watermark = self.watermark.max(Some(o.alert.time));
        let candidates = self.candidates(o);
        let Some((target, entity, by_chain)) = candidates.first().cloned() else {
            if level_of(&o.alert) == IncidentSeverity::Informational {
                return None;
            }
            let incident = self.create(o, now);
            update.touch(incident.id);
            update.opened.push(incident.id);
            let id = incident.id;
            self.put(incident);
            return Some(id);
        };
        for (other, link, _) in candidates.iter().skip(1) {
            self.merge(target, *other, link, &o.alert, now, update);
        }
        let Some(open) = self.open.get_mut(&target) else {
            return Some(target);
        };
        let new_entities: Vec<&Entity> = o.entities.iter().filter(|e| !open.linking.contains(e)).collect();
        // Process instances are many and say little to a reader: indexed, not narrated.
        let told: Vec<&&Entity> = new_entities.iter().filter(|e| e.kind != EntityKind::Process).collect();
        if !told.is_empty() {
            let how = if by_chain {
                "kill-chain progression on"
            } else {
                "shared"
            };
            let list: Vec<String> = told.iter().take(8).map(ToString::to_string).collect();
            push_history(
                &mut open.incident,
                Change {
                    time: now,
                    actor: "correlation".into(),
                    what: "linked".into(),
                    reason: format!(
                        "`{}` joined through {how} {entity}, adding {}",
                        o.alert.rule_title,
                        list.join(", ")
                    ),
                },
            );
        }
        for e in new_entities {
            if open.linking.len() >= MAX_LINKING || self.settings.ignore.contains(e) {
                continue;
            }
            open.linking.insert(e.clone());
            self.by_entity.entry(e.clone()).or_default().push(target);
        }
        absorb(&self.settings, &mut open.incident, o, now);
        open.max_stage = open
            .max_stage
            .max(tactics_of(&o.alert).iter().filter_map(|t| severity::stage(t)).max());
        update.touch(target);
        Some(target)
    }

    fn create(&self, o: &Observed, now: Timestamp) -> Incident {
        let a = &o.alert;
        let mut incident = Incident {
            id: EventId::generate(),
            title: String::new(),
            status: IncidentStatus::New,
            severity: IncidentSeverity::Informational,
            score: 0,
            max_level: level_of(a),
            owner: None,
            created: now,
            updated: now,
            first_seen: a.time,
            last_seen: a.time,
            alert_count: 0,
            rules: Vec::new(),
            entities: Vec::new(),
            techniques: Vec::new(),
            tactics: Vec::new(),
            assets: Vec::new(),
            merged_into: None,
            history: vec![Change {
                time: now,
                actor: "correlation".into(),
                what: "created".into(),
                reason: format!("`{}` shared no entity with an open incident", a.rule_title),
            }],
            triage: None,
        };
        absorb(&self.settings, &mut incident, o, now);
        incident
    }

    /// Merges open incident `other` into open incident `target`.
    fn merge(
        &mut self,
        target: EventId,
        other: EventId,
        link: &Entity,
        alert: &Alert,
        now: Timestamp,
        update: &mut Update,
    ) {
        if !self.open.contains_key(&target) {
            return;
        }
        let Some(mut o) = self.remove(other) else {
            return;
        };
        let Some(t) = self.open.get_mut(&target) else {
            return;
        };
        let reason = format!("`{}` links them through {link}", alert.rule_title);
        let ti = &mut t.incident;
        let oi = &mut o.incident;
        ti.alert_count += oi.alert_count;
        ti.first_seen = ti.first_seen.min(oi.first_seen);
        ti.last_seen = ti.last_seen.max(oi.last_seen);
        ti.updated = now;
        if oi.max_level > ti.max_level {
            ti.max_level = oi.max_level;
            ti.title = oi.title.clone();
        }
        for r in &oi.rules {
            push_capped(&mut ti.rules, r);
        }
        for x in &oi.techniques {
            push_capped(&mut ti.techniques, x);
        }
        for x in &oi.tactics {
            push_capped(&mut ti.tactics, x);
        }
        for e in &oi.entities {
            if !ti.entities.contains(e) {
                ti.entities.push(e.clone());
            }
        }
        ti.entities.sort();
        for e in &o.linking {
            if t.linking.len() >= MAX_LINKING {
                break;
            }
            if t.linking.insert(e.clone()) {
                self.by_entity.entry(e.clone()).or_default().push(target);
            }
        }
        t.max_stage = t.max_stage.max(o.max_stage);
        if let Some(tr) = &mut ti.triage {
            tr.stale = true;
        }
        push_history(
            ti,
            Change {
                time: now,
                actor: "correlation".into(),
                what: "absorbed".into(),
                reason: format!("absorbed incident {}: {reason}", oi.id),
            },
        );
        oi.status = IncidentStatus::Merged;
        oi.merged_into = Some(ti.id);
        oi.updated = now;
        push_history(
            oi,
            Change {
                time: now,
                actor: "correlation".into(),
                what: "merged".into(),
                reason: format!("merged into incident {}: {reason}", ti.id),
            },
        );
        rescore(&self.settings, &mut t.incident);
        update.touch(target);
        update.incidents.push(o.incident);
        update.moves.push((other, target));
        // Links recorded earlier in this batch to the merged incident follow it.
        for (_, inc) in &mut update.links {
            if *inc == other {
                *inc = target;
            }
        }
    }

    /// Forgets incidents too quiet to take any more alerts.
    ///
    /// Quiet means both: its last alert lies beyond the windows before the latest alert seen
    /// (event time), and nothing joined it for [`WALL_GRACE`] (`now`, processing time). The
    /// second keeps an old intrusion open while a retro-ingest of its files is still feeding
    /// it, when newer files have already moved the event-time mark on. Past [`MAX_OPEN`], the
    /// least recently updated go first.
    fn expire(&mut self, now: Timestamp) {
        let Some(mark) = self.watermark else { return };
        let horizon = mark - self.settings.kill_chain_window - self.settings.window;
        let grace = now - WALL_GRACE;
        let mut stale: Vec<EventId> = self
            .open
            .values()
            .filter(|o| o.incident.last_seen < horizon && o.incident.updated < grace)
            .map(|o| o.incident.id)
            .collect();
        if self.open.len() - stale.len() > MAX_OPEN {
            let mut by_age: Vec<(Timestamp, EventId)> = self
                .open
                .values()
                .map(|o| (o.incident.updated, o.incident.id))
                .collect();
            by_age.sort_unstable();
            stale.extend(by_age.iter().take(self.open.len() - MAX_OPEN).map(|(_, id)| *id));
        }
        for id in stale {
            self.remove(id);
        }
    }

    /// Builds a new incident from alerts split off `source` by an analyst, and `source` again
    /// from the alerts it keeps. Returns the two in their new state.
    pub fn split(
        &mut self,
        source: &Incident,
        keep: &[Observed],
        moved: &[Observed],
        actor: &str,
        reason: &str,
        now: Timestamp,
    ) -> Option<(Incident, Incident)> {
        let (first, rest) = moved.split_first()?;
        let mut split = self.create(first, now);
        split.history = vec![Change {
            time: now,
            actor: actor.to_owned(),
            what: "split".into(),
            reason: format!("split from incident {}: {reason}", source.id),
        }];
        for o in rest {
            absorb(&self.settings, &mut split, o, now);
        }
        let mut kept = source.clone();
        kept.alert_count = 0;
        kept.rules.clear();
        kept.entities.clear();
        kept.techniques.clear();
        kept.tactics.clear();
        kept.title.clear();
        kept.max_level = IncidentSeverity::Informational;
        if let Some((k0, _)) = keep.split_first() {
            kept.first_seen = k0.alert.time;
            kept.last_seen = k0.alert.time;
        }
        for o in keep {
            absorb(&self.settings, &mut kept, o, now);
        }
        kept.history.push(Change {
            time: now,
            actor: actor.to_owned(),
            what: "split".into(),
            reason: format!("{} alerts moved to incident {}: {reason}", moved.len(), split.id),
        });
        if let Some(t) = &mut kept.triage {
            t.stale = true;
        }
        self.replace(kept.clone());
        self.replace(split.clone());
        Some((kept, split))
    }
}

/// `Rule title on ws-fin-07`: one line of at most [`MAX_TITLE`] characters whatever the
/// telemetry's names hold (a user name is written by whoever logs on, an attacker included):
/// line breaks and other controls become spaces, hidden characters are shown (`[U+202E]`).
fn title(rule: &str, entities: &[Entity]) -> String {
    let subject = [EntityKind::Host, EntityKind::User, EntityKind::Ip]
        .into_iter()
        .find_map(|k| entities.iter().find(|e| e.kind == k));
    let raw = match subject {
        Some(e) => format!("{rule} on {}", e.value),
        None => rule.to_owned(),
    };
    let shown = crate::injection::show_hidden(&raw.replace(['\r', '\n', '\t'], " ")).into_owned();
    let mut line: String = shown.chars().take(MAX_TITLE).collect();
    if shown.chars().count() > MAX_TITLE {
        line.push('…');
    }
    line
}

/// Longest incident title, in characters.
const MAX_TITLE: usize = 200;

/// Marks an incident triaged with the given state (and status `triaged` if it was new).
pub fn mark_triaged(incident: &mut Incident, state: TriageState, now: Timestamp) {
    if incident.status == IncidentStatus::New {
        incident.status = IncidentStatus::Triaged;
    }
    push_history(
        incident,
        Change {
            time: now,
            actor: "triage".into(),
            what: "triaged".into(),
            reason: format!(
                "{} verdict {} ({})",
                state.mode.as_str(),
                state.classification,
                state.verdict
            ),
        },
    );
    incident.triage = Some(state);
    incident.updated = now;
}

/// Adds an alert's facts to an incident and recomputes its title and severity.
fn absorb(settings: &Settings, incident: &mut Incident, o: &Observed, now: Timestamp) {
    let a = &o.alert;
    incident.alert_count += 1;
    incident.first_seen = incident.first_seen.min(a.time);
    incident.last_seen = incident.last_seen.max(a.time);
    incident.updated = now;
    let level = level_of(a);
    push_capped(&mut incident.rules, &a.rule_title);
    if level > incident.max_level || incident.title.is_empty() {
        incident.max_level = incident.max_level.max(level);
        incident.title.clear();
    }
    for t in techniques_of(a) {
        push_capped(&mut incident.techniques, &t);
    }
    for t in tactics_of(a) {
        push_capped(&mut incident.tactics, &t);
    }
    // Inserted in place: the list stays sorted, so an entity the alert names twice (its own
    // field and a session's enrichment) is listed once.
    for e in &o.entities {
        let Err(at) = incident.entities.binary_search(e) else {
            continue;
        };
        let of_kind = incident.entities.iter().filter(|x| x.kind == e.kind).count();
        if of_kind < Incident::MAX_LISTED {
            incident.entities.insert(at, e.clone());
        }
    }
    if incident.title.is_empty() {
        incident.title = title(&a.rule_title, &incident.entities);
    }
    if let Some(t) = &mut incident.triage {
        t.stale = true;
    }
    rescore(settings, incident);
}

fn rescore(settings: &Settings, incident: &mut Incident) {
    let (score, assets) = severity::score(incident, &settings.inventory);
    incident.score = score;
    incident.severity = severity::of_score(score);
    incident.assets = assets.iter().map(severity::AssetMatch::describe).collect();
}

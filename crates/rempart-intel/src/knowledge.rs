//! What a threat-intelligence document teaches, as questions and answers for tuning a model
//! on the institution's own intelligence.
//!
//! From a STIX 2.1 bundle: each intrusion set, threat actor, campaign, malware and tool with
//! what it is, the techniques and tools it uses (`uses` relationships) and the indicators that
//! point at it (`indicates`); each indicator with what it detects and what to look for; each
//! report with what it covers. From a MISP event: what it reports (its info, threat level,
//! analysis, tags and galaxy clusters) and what to look for (its attributes and its objects'
//! attributes, by category and type). Each lesson keeps the id of the object it comes from,
//! its time (for splitting a data set by time) and its TLP marking (for the gateway's policy).
//!
//! Whatever the document holds is data: the answer says what the source says, never more.
//! The values in it (addresses, domains, accounts) are pseudonymized by the caller before
//! anything is written.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// One question and its answer, from one object of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lesson {
    /// The object it comes from (`intrusion-set--…`, a MISP event's uuid).
    pub id: String,
    /// `actor`, `indicator`, `report` or `event`.
    pub kind: &'static str,
    /// When the source last changed it (`modified`, else `created`; a MISP event's `timestamp`
    /// or `date`).
    pub time: Option<Timestamp>,
    /// The TLP marking, lower case (`clear`, `green`, `amber`, `amber+strict`, `red`), if any.
    pub tlp: Option<String>,
    pub question: String,
    pub answer: String,
}

/// Attributes listed in one answer at most; the rest are counted.
const MAX_LISTED: usize = 40;
/// Longest description kept, in characters (a report's can be pages long).
const MAX_DESCRIPTION: usize = 1_500;

/// The lessons of a document: a STIX bundle or a lone STIX object, a MISP event (`{"Event":
/// …}` or bare), or a list of MISP events. Refused, saying why, when it is none of these.
pub fn lessons(doc: &Value) -> Result<Vec<Lesson>, String> {
    match doc {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("bundle") => match o.get("objects") {
            None => Ok(Vec::new()),
            Some(Value::Array(objects)) => Ok(stix(objects)),
            Some(_) => Err("the bundle's `objects` is not an array".into()),
        },
        // A lone STIX object: a bundle of one.
        Value::Object(o) if o.get("spec_version").is_some() && text(doc, "id").is_some_and(|id| id.contains("--")) => {
            Ok(stix(std::slice::from_ref(doc)))
        }
        Value::Object(o) if o.get("Event").is_some_and(Value::is_object) => Ok(misp(&o["Event"]).into_iter().collect()),
        Value::Object(o) if o.contains_key("Attribute") || o.contains_key("Object") => {
            Ok(misp(doc).into_iter().collect())
        }
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.get("Event").is_some_and(Value::is_object)) =>
        {
            Ok(items.iter().filter_map(|i| misp(&i["Event"])).collect())
        }
        Value::Object(o) if o.get("response").is_some_and(Value::is_array) => lessons(&o["response"]),
        _ => Err(
            "neither a STIX 2.1 bundle nor a MISP event (expected `\"type\": \"bundle\"` or an `Event` object)".into(),
        ),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn texts(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// At most [`MAX_DESCRIPTION`] characters of `s`, cut at a character.
fn shortened(s: &str) -> String {
    match s.char_indices().nth(MAX_DESCRIPTION) {
        Some((at, _)) => format!("{} […]", &s[..at]),
        None => s.to_owned(),
    }
}

fn stix_time(o: &Value) -> Option<Timestamp> {
    ["modified", "created"]
        .iter()
        .find_map(|k| text(o, k).and_then(|t| t.parse().ok()))
}

/// An attack pattern as an answer names it: `T1566.001 Spearphishing Attachment`, or its name.
fn technique(o: &Value) -> String {
    let name = text(o, "name").unwrap_or("an unnamed attack pattern");
    let attack_id = o.get("external_references").and_then(Value::as_array).and_then(|refs| {
        refs.iter()
            .find(|r| text(r, "source_name").is_some_and(|s| s.starts_with("mitre")))
            .and_then(|r| text(r, "external_id"))
    });
    match attack_id {
        Some(id) => format!("{id} {name}"),
        None => name.to_owned(),
    }
}

const ACTORS: [&str; 5] = ["intrusion-set", "threat-actor", "campaign", "malware", "tool"];

fn stix(objects: &[Value]) -> Vec<Lesson> {
    let by_id: BTreeMap<&str, &Value> = objects.iter().filter_map(|o| Some((text(o, "id")?, o))).collect();
    let tlp_of = |o: &Value| -> Option<String> {
        o.get("object_marking_refs")?.as_array()?.iter().find_map(|r| {
            let m = by_id.get(r.as_str()?)?;
            // STIX 2.1 TLP: `definition_type: tlp` with `definition.tlp`, or the TLP 2.0
            // extension's name (`TLP:AMBER+STRICT`).
            text(m.get("definition")?, "tlp")
                .or_else(|| text(m, "name").and_then(|n| n.strip_prefix("TLP:")))
                .map(str::to_ascii_lowercase)
        })
    };
    let name_of = |id: &str| by_id.get(id).and_then(|o| text(o, "name")).map(str::to_owned);
    // source → (relationship, target) and target → (relationship, source).
    let mut out_edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let mut in_edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for r in objects.iter().filter(|o| text(o, "type") == Some("relationship")) {
        if let (Some(kind), Some(s), Some(t)) = (
            text(r, "relationship_type"),
            text(r, "source_ref"),
            text(r, "target_ref"),
        ) {
            out_edges.entry(s).or_default().push((kind, t));
            in_edges.entry(t).or_default().push((kind, s));
        }
    }
    let mut lessons = Vec::new();
    for o in objects {
        let (Some(kind), Some(id)) = (text(o, "type"), text(o, "id")) else {
            continue;
        };
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let lesson = match kind {
            k if ACTORS.contains(&k) => actor(o, k, &out_edges, &in_edges, &by_id),
            "indicator" => indicator(o, out_edges.get(id).map_or(&[][..], Vec::as_slice), &name_of),
            "report" => report(o, &by_id),
            _ => None,
        };
        if let Some((kind, question, answer)) = lesson {
            lessons.push(Lesson {
                id: id.to_owned(),
                kind,
                time: stix_time(o),
                tlp: tlp_of(o),
                question,
                answer,
            });
        }
    }
    lessons
}

type Edges<'a> = BTreeMap<&'a str, Vec<(&'a str, &'a str)>>;

fn actor(
    o: &Value,
    kind: &str,
    out_edges: &Edges<'_>,
    in_edges: &Edges<'_>,
    by_id: &BTreeMap<&str, &Value>,
) -> Option<(&'static str, String, String)> {
    let id = text(o, "id")?;
    let name = text(o, "name")?;
    let aliases: Vec<String> = texts(o, "aliases").into_iter().filter(|a| a != name).collect();
    let (mut techniques, mut tools, mut indicators) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (rel, target) in out_edges.get(id).into_iter().flatten() {
        let Some(t) = by_id.get(target) else { continue };
        match (*rel, text(t, "type")) {
            ("uses", Some("attack-pattern")) => {
                techniques.insert(technique(t));
            }
            ("uses", Some("malware" | "tool")) => {
                tools.extend(text(t, "name").map(str::to_owned));
            }
            _ => {}
        }
    }
    for (rel, source) in in_edges.get(id).into_iter().flatten() {
        if *rel == "indicates"
            && let Some(i) = by_id.get(source)
        {
            indicators.extend(text(i, "pattern").map(str::to_owned));
        }
    }
    let description = text(o, "description");
    if description.is_none() && techniques.is_empty() && tools.is_empty() && indicators.is_empty() {
        return None;
    }
    let what = kind.replace('-', " ");
    let called = if aliases.is_empty() {
        String::new()
    } else {
        format!(" (also called {})", aliases.join(", "))
    };
    let question = format!(
        "What is known of the {what} {name}{called}: what it does, which techniques and tools it uses, and what points to it?"
    );
    let mut answer = format!("{name} is a {what}");
    if let Some(types) = ["malware_types", "tool_types", "threat_actor_types"]
        .iter()
        .map(|k| texts(o, k))
        .find(|t| !t.is_empty())
    {
        answer.push_str(&format!(" ({})", types.join(", ")));
    }
    answer.push('.');
    if let Some(d) = description {
        answer.push_str(&format!(" {}", shortened(d)));
    }
    if let Some(first) = text(o, "first_seen") {
        answer.push_str(&format!(" First seen {first}."));
    }
    for (label, items) in [
        ("Techniques", &techniques),
        ("Tools and malware it uses", &tools),
        ("Indicators pointing to it", &indicators),
    ] {
        if !items.is_empty() {
            answer.push_str(&format!(
                " {label}: {}.",
                items.iter().cloned().collect::<Vec<_>>().join("; ")
            ));
        }
    }
    Some(("actor", question, answer))
}

fn indicator(
    o: &Value,
    out_edges: &[(&str, &str)],
    name_of: &dyn Fn(&str) -> Option<String>,
) -> Option<(&'static str, String, String)> {
    let pattern = text(o, "pattern")?;
    let language = text(o, "pattern_type").unwrap_or("stix");
    let question = format!(
        "An indicator reads `{pattern}` ({language} pattern). What does it detect, and what should an analyst look for?"
    );
    let mut answer = text(o, "name").map_or_else(|| "An indicator".to_owned(), str::to_owned);
    let types = texts(o, "indicator_types");
    if !types.is_empty() {
        answer.push_str(&format!(" ({})", types.join(", ")));
    }
    answer.push('.');
    if let Some(d) = text(o, "description") {
        answer.push_str(&format!(" {}", shortened(d)));
    }
    let indicates: BTreeSet<String> = out_edges
        .iter()
        .filter(|(rel, _)| *rel == "indicates")
        .filter_map(|(_, t)| name_of(t))
        .collect();
    if !indicates.is_empty() {
        answer.push_str(&format!(
            " It points to {}.",
            indicates.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    answer.push_str(&format!(" Look for events matching `{pattern}`"));
    match (text(o, "valid_from"), text(o, "valid_until")) {
        (Some(from), Some(until)) => answer.push_str(&format!(" between {from} and {until}.")),
        (Some(from), None) => answer.push_str(&format!(" from {from} on.")),
        _ => answer.push('.'),
    }
    Some(("indicator", question, answer))
}

fn report(o: &Value, by_id: &BTreeMap<&str, &Value>) -> Option<(&'static str, String, String)> {
    let name = text(o, "name")?;
    let question = format!("What does the threat report \"{name}\" cover?");
    let mut answer = match text(o, "published") {
        Some(p) => format!("Published {p}."),
        None => String::new(),
    };
    if let Some(d) = text(o, "description") {
        answer.push_str(&format!(" {}", shortened(d)));
    }
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in o.get("object_refs").and_then(Value::as_array).into_iter().flatten() {
        if let Some(obj) = r.as_str().and_then(|r| by_id.get(r))
            && let (Some(kind), Some(name)) = (text(obj, "type"), text(obj, "name"))
        {
            let name = if kind == "attack-pattern" {
                technique(obj)
            } else {
                name.to_owned()
            };
            covered.entry(kind.replace('-', " ")).or_default().insert(name);
        }
    }
    for (kind, names) in &covered {
        answer.push_str(&format!(
            " {kind}: {}.",
            names.iter().cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    let answer = answer.trim().to_owned();
    (!answer.is_empty()).then_some(("report", question, answer))
}

/// A MISP event's lesson; `None` when it says nothing (no info, no attribute).
fn misp(ev: &Value) -> Option<Lesson> {
    let info = text(ev, "info")?;
    let id = text(ev, "uuid")
        .or_else(|| text(ev, "id"))
        .unwrap_or("misp-event")
        .to_owned();
    let time = text(ev, "timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|s| Timestamp::from_second(s).ok())
        .or_else(|| text(ev, "date").and_then(|d| format!("{d}T00:00:00Z").parse().ok()));
    let tags: Vec<String> = ev
        .get("Tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| text(t, "name").map(str::to_owned))
        .collect();
    let tlp = tags
        .iter()
        .find_map(|t| t.to_ascii_lowercase().strip_prefix("tlp:").map(str::to_owned));
    let clusters: BTreeSet<String> = ev
        .get("Galaxy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|g| {
            let kind = text(g, "name").unwrap_or("galaxy").to_owned();
            g.get("GalaxyCluster")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(move |c| text(c, "value").map(|v| format!("{kind}: {v}")))
        })
        .collect();
    let mut attributes: Vec<&Value> = ev
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for obj in ev.get("Object").and_then(Value::as_array).into_iter().flatten() {
        attributes.extend(obj.get("Attribute").and_then(Value::as_array).into_iter().flatten());
    }
    attributes.retain(|a| a.get("deleted").and_then(Value::as_bool) != Some(true));
    let threat = match text(ev, "threat_level_id") {
        Some("1") => Some("high"),
        Some("2") => Some("medium"),
        Some("3") => Some("low"),
        _ => None,
    };
    let analysis = match text(ev, "analysis") {
        Some("0") => Some("initial"),
        Some("1") => Some("ongoing"),
        Some("2") => Some("completed"),
        _ => None,
    };
    let question = format!("What does the MISP event \"{info}\" report, and what should be looked for?");
    let mut answer = format!("The event \"{info}\"");
    if let Some(date) = text(ev, "date") {
        answer.push_str(&format!(" of {date}"));
    }
    answer.push('.');
    if let Some(t) = threat {
        answer.push_str(&format!(" Threat level: {t}."));
    }
    if let Some(a) = analysis {
        answer.push_str(&format!(" Analysis: {a}."));
    }
    if !tags.is_empty() {
        answer.push_str(&format!(" Tags: {}.", tags.join("; ")));
    }
    if !clusters.is_empty() {
        answer.push_str(&format!(" {}.", clusters.into_iter().collect::<Vec<_>>().join("; ")));
    }
    if !attributes.is_empty() {
        let listed: Vec<String> = attributes
            .iter()
            .take(MAX_LISTED)
            .filter_map(|a| {
                let value = text(a, "value")?;
                let kind = text(a, "type").unwrap_or("value");
                let mut item = format!("{kind} {value}");
                if let Some(c) = text(a, "category") {
                    item.push_str(&format!(" ({c}"));
                    if a.get("to_ids").and_then(Value::as_bool) == Some(true) {
                        item.push_str(", for detection");
                    }
                    item.push(')');
                }
                if let Some(c) = text(a, "comment") {
                    item.push_str(&format!(": {c}"));
                }
                Some(item)
            })
            .collect();
        answer.push_str(&format!(" Look for: {}", listed.join("; ")));
        if attributes.len() > MAX_LISTED {
            answer.push_str(&format!("; and {} more attributes", attributes.len() - MAX_LISTED));
        }
        answer.push('.');
    } else if tags.is_empty() && text(ev, "date").is_none() {
        return None;
    }
    Some(Lesson {
        id,
        kind: "event",
        time,
        tlp,
        question,
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("bundle".to_owned()),
                Just("indicator".to_owned()),
                Just("intrusion-set".to_owned()),
                Just("relationship".to_owned()),
                Just("uses".to_owned()),
                Just("indicates".to_owned()),
                Just("report".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("type".to_owned()),
                Just("objects".to_owned()),
                Just("id".to_owned()),
                Just("name".to_owned()),
                Just("pattern".to_owned()),
                Just("source_ref".to_owned()),
                Just("target_ref".to_owned()),
                Just("relationship_type".to_owned()),
                Just("object_refs".to_owned()),
                Just("Event".to_owned()),
                Just("info".to_owned()),
                Just("Attribute".to_owned()),
                Just("Object".to_owned()),
                Just("Tag".to_owned()),
                Just("value".to_owned()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON document is read or refused with a reason; nothing panics, every lesson
        /// names its object and asks something.
        #[test]
        fn any_document_is_read_or_refused(doc in json_value()) {
            match lessons(&doc) {
                Ok(found) => {
                    for l in found {
                        prop_assert!(!l.id.is_empty() && !l.question.is_empty() && !l.answer.is_empty());
                    }
                }
                Err(reason) => prop_assert!(!reason.is_empty()),
            }
        }

        /// A description is cut at a character boundary, whatever it holds.
        #[test]
        fn long_descriptions_are_cut_at_characters(s in ".{0,2000}") {
            let cut = shortened(&s);
            prop_assert!(cut.chars().count() <= MAX_DESCRIPTION + 4);
        }
    }

    #[test]
    fn an_actor_lists_its_techniques_tools_and_indicators() {
        let doc = serde_json::json!({"type": "bundle", "objects": [
            {"type": "intrusion-set", "id": "intrusion-set--1", "name": "APT-X", "aliases": ["Ghost"],
             "modified": "2026-01-02T00:00:00Z", "description": "Espionage.", "object_marking_refs": ["marking-definition--t"]},
            {"type": "marking-definition", "id": "marking-definition--t", "definition_type": "tlp", "definition": {"tlp": "amber"}},
            {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Spearphishing Attachment",
             "external_references": [{"source_name": "mitre-attack", "external_id": "T1566.001"}]},
            {"type": "malware", "id": "malware--1", "name": "Poison Ivy"},
            {"type": "indicator", "id": "indicator--1", "name": "C2", "pattern": "[ipv4-addr:value = '203.0.113.9']",
             "valid_from": "2026-01-01T00:00:00Z"},
            {"type": "relationship", "id": "relationship--1", "relationship_type": "uses", "source_ref": "intrusion-set--1", "target_ref": "attack-pattern--1"},
            {"type": "relationship", "id": "relationship--2", "relationship_type": "uses", "source_ref": "intrusion-set--1", "target_ref": "malware--1"},
            {"type": "relationship", "id": "relationship--3", "relationship_type": "indicates", "source_ref": "indicator--1", "target_ref": "intrusion-set--1"},
        ]});
        let found = lessons(&doc).unwrap();
        let actor = found.iter().find(|l| l.id == "intrusion-set--1").unwrap();
        assert!(
            actor.question.contains("APT-X (also called Ghost)"),
            "{}",
            actor.question
        );
        for part in [
            "Espionage.",
            "T1566.001 Spearphishing Attachment",
            "Poison Ivy",
            "[ipv4-addr:value = '203.0.113.9']",
        ] {
            assert!(actor.answer.contains(part), "{part}: {}", actor.answer);
        }
        assert_eq!(actor.tlp.as_deref(), Some("amber"));
        assert_eq!(actor.time, Some("2026-01-02T00:00:00Z".parse().unwrap()));
        let indicator = found.iter().find(|l| l.id == "indicator--1").unwrap();
        assert!(indicator.answer.contains("It points to APT-X"), "{}", indicator.answer);
        assert!(
            indicator.answer.contains("from 2026-01-01T00:00:00Z on"),
            "{}",
            indicator.answer
        );
    }

    #[test]
    fn a_misp_event_says_what_to_look_for() {
        let doc = serde_json::json!({"Event": {"info": "Locky wave", "uuid": "e-1", "date": "2016-06-09",
            "threat_level_id": "1", "analysis": "2", "timestamp": "1465681801",
            "Tag": [{"name": "tlp:amber"}],
            "Attribute": [{"type": "domain", "category": "Network activity", "value": "evil.example", "to_ids": true},
                          {"type": "text", "value": "gone", "deleted": true}]}});
        let [l] = lessons(&doc).unwrap().try_into().unwrap();
        assert_eq!(
            (l.id.as_str(), l.kind, l.tlp.as_deref()),
            ("e-1", "event", Some("amber"))
        );
        assert_eq!(l.time, Some(Timestamp::from_second(1_465_681_801).unwrap()));
        assert!(
            l.answer.contains("Threat level: high. Analysis: completed."),
            "{}",
            l.answer
        );
        assert!(
            l.answer
                .contains("domain evil.example (Network activity, for detection)"),
            "{}",
            l.answer
        );
        assert!(!l.answer.contains("gone"), "{}", l.answer);
        assert!(lessons(&serde_json::json!({"type": "nothing"})).is_err());
    }
}

//! Reading indicators: STIX 2.1 bundles (indicators with `pattern_type: stix`) and MISP events
//! (attributes and objects' attributes marked `to_ids`). Whatever cannot be used is listed
//! with its id and the reason, never dropped silently.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::indicator::{Atom, Indicator, Kind, alternatives};
use crate::pattern;

/// What an import found.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    pub indicators: Vec<Indicator>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// Reads a document of either kind: a STIX bundle, a single STIX indicator, a MISP event
/// (`{"Event": …}` or the bare event), or a list of MISP events.
pub fn import(doc: &Value, source: &str) -> Result<Imported, String> {
    let mut out = Imported::default();
    match doc {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("bundle") => {
            let objects = match o.get("objects") {
                None => &[][..],
                Some(Value::Array(objects)) => objects.as_slice(),
                Some(_) => return Err("the bundle's `objects` is not an array".into()),
            };
            objects_only(objects, "objects")?;
            for obj in objects {
                stix_object(obj, source, &mut out);
            }
        }
        // A lone STIX object: an indicator is read, anything else holds none.
        Value::Object(o)
            if o.get("spec_version").is_some()
                && o.get("id").and_then(Value::as_str).is_some_and(|id| id.contains("--")) =>
        {
            stix_object(doc, source, &mut out);
        }
        Value::Object(o) if o.contains_key("Event") => {
            misp_shape(&o["Event"], "Event")?;
            misp_event(&o["Event"], source, &mut out)
        }
        Value::Object(o) if o.contains_key("Attribute") || o.contains_key("Object") => {
            misp_shape(doc, "the event")?;
            misp_event(doc, source, &mut out)
        }
        Value::Array(items) if items.iter().all(|i| i.get("Event").is_some()) && !items.is_empty() => {
            for (n, i) in items.iter().enumerate() {
                misp_shape(&i["Event"], &format!("[{n}].Event"))?;
            }
            for i in items {
                misp_event(&i["Event"], source, &mut out);
            }
        }
        Value::Object(o) if o.get("response").is_some_and(Value::is_array) => {
            return import(&o["response"], source);
        }
        _ => {
            return Err(
                "neither a STIX 2.1 bundle nor a MISP event (expected `\"type\": \"bundle\"` or an `Event` object)"
                    .into(),
            );
        }
    }
    Ok(out)
}

/// Every item of `items` (found at `at`) is an object.
fn objects_only(items: &[Value], at: &str) -> Result<(), String> {
    match items.iter().position(|i| !i.is_object()) {
        Some(n) => Err(format!("`{at}[{n}]` is not an object")),
        None => Ok(()),
    }
}

/// A MISP event has the shape its readers expect: an object whose `info` is text and whose
/// `Attribute`, `Object` (and each object's `Attribute`) and `Tag` are lists of objects.
/// Attributes the importer cannot use are skipped one by one; a document of another shape is
/// refused whole.
fn misp_shape(ev: &Value, at: &str) -> Result<(), String> {
    let Some(ev) = ev.as_object() else {
        return Err(format!("`{at}` is not an object"));
    };
    if ev.get("info").is_some_and(|i| !i.is_string()) {
        return Err(format!("`{at}.info` is not text"));
    }
    fn list<'a>(v: Option<&'a Value>, name: &str) -> Result<&'a [Value], String> {
        match v {
            None => Ok(&[]),
            Some(Value::Array(items)) => {
                objects_only(items, name)?;
                Ok(items.as_slice())
            }
            Some(_) => Err(format!("`{name}` is not a list")),
        }
    }
    list(ev.get("Attribute"), &format!("{at}.Attribute"))?;
    list(ev.get("Tag"), &format!("{at}.Tag"))?;
    for (n, obj) in list(ev.get("Object"), &format!("{at}.Object"))?.iter().enumerate() {
        list(obj.get("Attribute"), &format!("{at}.Object[{n}].Attribute"))?;
    }
    Ok(())
}

fn time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn stix_object(obj: &Value, source: &str, out: &mut Imported) {
    if obj.get("type").and_then(Value::as_str) != Some("indicator") {
        return;
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("indicator--?")
        .to_owned();
    let skip = |out: &mut Imported, reason: String| out.skipped.push(Skipped { id: id.clone(), reason });
    if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
        return skip(out, "revoked".into());
    }
    match obj.get("pattern_type").and_then(Value::as_str) {
        Some("stix") | None => {}
        Some(other) => return skip(out, format!("pattern_type `{other}` is not STIX patterning")),
    }
    let Some(text) = obj.get("pattern").and_then(Value::as_str) else {
        return skip(out, "no pattern".into());
    };
    let parsed = match pattern::parse(text) {
        Ok(p) => p,
        Err(e) => return skip(out, e.to_string()),
    };
    let (alts, window) = match alternatives(&parsed) {
        Ok(a) => a,
        Err(e) => return skip(out, e),
    };
    let mut labels = strings(obj.get("indicator_types"));
    labels.extend(strings(obj.get("labels")));
    if let Some(phases) = obj.get("kill_chain_phases").and_then(Value::as_array) {
        labels.extend(
            phases
                .iter()
                .filter_map(|p| p.get("phase_name").and_then(Value::as_str))
                .map(|p| format!("kill-chain:{p}")),
        );
    }
    let mut valid_from = time(obj.get("valid_from"));
    let mut valid_until = time(obj.get("valid_until"));
    if let Some((a, b)) = window {
        valid_from = Some(valid_from.map_or(a, |f| f.max(a)));
        valid_until = Some(valid_until.map_or(b, |u| u.min(b)));
    }
    out.indicators.push(Indicator {
        name: obj.get("name").and_then(Value::as_str).unwrap_or(text).to_owned(),
        id,
        source: format!("stix:{source}"),
        description: obj.get("description").and_then(Value::as_str).map(str::to_owned),
        labels,
        confidence: obj
            .get("confidence")
            .and_then(Value::as_u64)
            .and_then(|c| u8::try_from(c.min(100)).ok()),
        valid_from,
        valid_until,
        pattern: text.to_owned(),
        alternatives: alts,
    });
}

/// The observable kinds of a MISP attribute type, for each `|`-separated part.
fn misp_kinds(t: &str) -> Option<Vec<Option<Kind>>> {
    let part = |p: &str| -> Option<Kind> {
        match p {
            "ip-src" | "ip-dst" | "ip" => Some(Kind::Ip),
            "domain" | "hostname" => Some(Kind::Domain),
            "url" | "uri" => Some(Kind::Url),
            "email" | "email-src" | "email-dst" | "email-reply-to" => Some(Kind::Email),
            h => Kind::hash(h),
        }
    };
    let kinds: Vec<Option<Kind>> = t.split('|').map(part).collect();
    kinds.iter().any(Option::is_some).then_some(kinds)
}

fn misp_event(ev: &Value, source: &str, out: &mut Imported) {
    let info = ev
        .get("info")
        .and_then(Value::as_str)
        .unwrap_or("MISP event")
        .to_owned();
    let tags: Vec<String> = ev
        .get("Tag")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(|x| x.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut attrs: Vec<&Value> = ev
        .get("Attribute")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for obj in ev
        .get("Object")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        attrs.extend(
            obj.get("Attribute")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        );
    }
    for a in attrs {
        let id = a.get("uuid").and_then(Value::as_str).unwrap_or("?").to_owned();
        let t = a.get("type").and_then(Value::as_str).unwrap_or_default();
        let value = a.get("value").and_then(Value::as_str).unwrap_or_default();
        // MISP exports `to_ids` as a boolean or as "1"/"0".
        let to_ids = match a.get("to_ids") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "1" || s == "true",
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => false,
        };
        let Some(kinds) = misp_kinds(t) else {
            out.skipped.push(Skipped {
                id,
                reason: format!("attribute type `{t}` is not an observable Rempart matches"),
            });
            continue;
        };
        if !to_ids {
            out.skipped.push(Skipped {
                id,
                reason: "to_ids is false: context, not for detection".into(),
            });
            continue;
        }
        // `filename|md5` and the like: the matchable parts; `domain|ip`: either.
        let parts: Vec<&str> = value.split('|').collect();
        let atoms: Vec<Atom> = kinds
            .iter()
            .zip(&parts)
            .filter_map(|(k, v)| k.and_then(|k| Atom::new(k, v.split_once('|').map_or(v, |(x, _)| x))))
            .collect();
        // `ip-dst|port`: the port is not matched.
        if atoms.is_empty() {
            out.skipped.push(Skipped {
                id,
                reason: format!("`{value}` is not a valid {t}"),
            });
            continue;
        }
        let mut labels = tags.clone();
        if let Some(c) = a.get("category").and_then(Value::as_str) {
            labels.push(format!("misp-category:{c}"));
        }
        out.indicators.push(Indicator {
            name: format!("{info}: {t} {value}"),
            id,
            source: format!("misp:{source}"),
            description: a
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            labels,
            confidence: None,
            valid_from: None,
            valid_until: None,
            pattern: format!("{t}: {value}"),
            alternatives: atoms.into_iter().map(|a| vec![a]).collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Any JSON value: a leaf, or lists and objects of them, with the keys the importer reads.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z-]{0,8}".prop_map(Value::from),
            Just(Value::from("bundle")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("type".to_owned()),
                Just("objects".to_owned()),
                Just("Event".to_owned()),
                Just("Attribute".to_owned()),
                Just("Object".to_owned()),
                Just("Tag".to_owned()),
                Just("info".to_owned()),
                Just("response".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(key, inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any JSON document is read or refused with a reason, never a panic; a bundle with
        /// an item that is not an object is refused naming that item.
        #[test]
        fn any_document_is_read_or_refused_with_a_reason(doc in any_json(), at in 0usize..4) {
            if let Err(why) = import(&doc, "prop") {
                proptest::prop_assert!(!why.is_empty());
            }
            let mut objects = vec![json!({}); 4];
            objects[at] = doc.clone();
            let bundle = json!({"type": "bundle", "objects": objects});
            match (import(&bundle, "prop"), doc.is_object()) {
                (Ok(_), true) => {}
                (Err(why), false) => proptest::prop_assert!(why.contains(&format!("`objects[{at}]`")), "{why}"),
                (answer, _) => proptest::prop_assert!(false, "{doc}: {answer:?}"),
            }
        }
    }

    #[test]
    fn a_document_of_another_shape_is_refused_naming_where() {
        for (doc, says) in [
            (
                json!({"type": "bundle", "objects": {"id": "x"}}),
                "`objects` is not an array",
            ),
            (
                json!({"type": "bundle", "objects": [{}, 5]}),
                "`objects[1]` is not an object",
            ),
            (json!({"Event": "phishing"}), "`Event` is not an object"),
            (json!({"Event": {"info": 5}}), "`Event.info` is not text"),
            (json!({"Event": {"Attribute": {}}}), "`Event.Attribute` is not a list"),
            (json!({"Attribute": [1]}), "`the event.Attribute[0]` is not an object"),
            (
                json!([{"Event": {"Object": [{"Attribute": 3}]}}]),
                "`[0].Event.Object[0].Attribute` is not a list",
            ),
            (
                json!({"response": [{"Event": {"Tag": ["tlp"]}}]}),
                "`[0].Event.Tag[0]` is not an object",
            ),
        ] {
            let refused = import(&doc, "t").err().unwrap_or_default();
            assert!(refused.contains(says), "{doc}: {refused}");
        }
        // The same documents in the expected shape are read (their contents skipped).
        for doc in [
            json!({"type": "bundle", "objects": [{}]}),
            json!({"Event": {"info": "x", "Attribute": [], "Object": [{"Attribute": []}], "Tag": []}}),
        ] {
            assert!(import(&doc, "t").is_ok(), "{doc}");
        }
    }

    #[test]
    fn misp_pipes_and_to_ids() {
        let ev = json!({"Event": {"info": "Phishing wave", "Tag": [{"name": "tlp:amber"}], "Attribute": [
            {"uuid": "a1", "type": "ip-dst|port", "value": "198.51.100.4|443", "to_ids": true, "category": "Network activity"},
            {"uuid": "a2", "type": "filename|sha256", "value": "inv.pdf.exe|aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f", "to_ids": "1"},
            {"uuid": "a3", "type": "domain", "value": "evil.example", "to_ids": false},
            {"uuid": "a4", "type": "regkey", "value": "HKLM\\Run", "to_ids": true}
        ]}});
        let r = import(&ev, "t.json").unwrap();
        assert_eq!(r.indicators.len(), 2);
        assert_eq!(
            r.indicators[0].alternatives,
            vec![vec![crate::indicator::cidr("198.51.100.4").unwrap()]]
        );
        assert_eq!(
            r.indicators[1].alternatives[0][0],
            Atom::new(
                Kind::Sha256,
                "AEC070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f"
            )
            .unwrap()
        );
        assert!(r.indicators[0].labels.contains(&"tlp:amber".to_owned()));
        let reasons: Vec<&str> = r.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(r.skipped.len(), 2, "{reasons:?}");
    }

    #[test]
    fn anything_else_is_refused_with_what_was_expected() {
        let e = import(&json!({"hello": 1}), "x").unwrap_err();
        assert!(e.contains("bundle"), "{e}");
    }
}

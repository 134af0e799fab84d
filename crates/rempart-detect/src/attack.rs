//! MITRE ATT&CK technique names and tactics for the `attack.tNNNN[.NNN]` tags of Sigma rules,
//! from a lookup of the Enterprise matrix (`attack-patterns-lookup-*.json`: `attack_patterns`
//! with `external_id`, `name`, `tactics`, `revoked`, `deprecated`).

use std::collections::HashMap;

use rempart_model::Technique;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Lookup {
    attack_patterns: Vec<Pattern>,
}

#[derive(Debug, Deserialize)]
struct Pattern {
    external_id: String,
    name: String,
    #[serde(default)]
    tactics: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    revoked: bool,
    #[serde(default)]
    deprecated: bool,
}

/// Techniques by id.
#[derive(Debug, Clone, Default)]
pub struct AttackCatalog {
    techniques: HashMap<String, (String, Vec<String>)>,
    descriptions: HashMap<String, String>,
}

impl AttackCatalog {
    /// Reads a lookup file's text; revoked and deprecated techniques are left out.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let lookup: Lookup =
            serde_json::from_str(text).map_err(|e| format!("not an ATT&CK attack-pattern lookup: {e}"))?;
        let mut techniques = HashMap::new();
        let mut descriptions = HashMap::new();
        for p in lookup
            .attack_patterns
            .into_iter()
            .filter(|p| !p.revoked && !p.deprecated)
        {
            let id = p.external_id.to_ascii_uppercase();
            descriptions.insert(id.clone(), p.description);
            techniques.insert(id, (p.name, p.tactics));
        }
        Ok(AttackCatalog {
            techniques,
            descriptions,
        })
    }

    /// A technique's name, tactics and description (`T1003.001`).
    pub fn describe(&self, id: &str) -> Option<(&str, &[String], &str)> {
        let id = id.to_ascii_uppercase();
        let (name, tactics) = self.techniques.get(&id)?;
        let description = self.descriptions.get(&id).map_or("", String::as_str);
        Some((name, tactics, description))
    }

    pub fn len(&self) -> usize {
        self.techniques.len()
    }

    pub fn is_empty(&self) -> bool {
        self.techniques.is_empty()
    }

    /// The techniques named by Sigma tags (`attack.t1003.001`), in tag order, each once.
    pub fn resolve(&self, tags: &[String]) -> Vec<Technique> {
        let mut out: Vec<Technique> = Vec::new();
        for tag in tags {
            let Some(id) = technique_id(tag) else { continue };
            if out.iter().any(|t| t.id == id) {
                continue;
            }
            let known = self.techniques.get(&id);
            out.push(Technique {
                name: known.map(|(n, _)| n.clone()),
                tactics: known.map(|(_, t)| t.clone()).unwrap_or_default(),
                id,
            });
        }
        out
    }
}

/// `attack.t1003.001` → `T1003.001`.
fn technique_id(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.")?;
    let (t, digits) = rest.split_at_checked(1)?;
    if !t.eq_ignore_ascii_case("t") {
        return None;
    }
    let (main, sub) = digits.split_once('.').map_or((digits, None), |(m, s)| (m, Some(s)));
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(main, 4) || sub.is_some_and(|s| !ok(s, 3)) {
        return None;
    }
    Some(match sub {
        Some(s) => format!("T{main}.{s}"),
        None => format!("T{main}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_tags_resolve_and_tactic_tags_do_not() {
        let catalog = AttackCatalog::from_json(
            r#"{"attack_patterns":[{"external_id":"T1003.001","name":"LSASS Memory","tactics":["credential-access"]},
                {"external_id":"T1001","name":"Old","tactics":[],"revoked":true}]}"#,
        )
        .unwrap_or_default();
        let tags: Vec<String> = [
            "attack.credential-access",
            "attack.t1003.001",
            "attack.t1003.001",
            "attack.t1001",
            "attack.g0007",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let got = catalog.resolve(&tags);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name.as_deref(), Some("LSASS Memory"));
        assert_eq!(got[0].tactics, ["credential-access"]);
        assert_eq!(
            (got[1].id.as_str(), got[1].name.as_deref()),
            ("T1001", None),
            "revoked: id only"
        );
    }
}

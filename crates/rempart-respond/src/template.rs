//! Step parameters templated from the incident: `"Incident {{ incident.id }}: {{ incident.title }}"`.
//!
//! Only the variables listed in [`VARIABLES`] exist; a playbook naming another is rejected
//! when it is checked, not when it runs. Values are inserted as text, never evaluated.

use std::collections::BTreeMap;

/// The variables a template may use.
pub const VARIABLES: &[(&str, &str)] = &[
    ("incident.id", "the incident's id"),
    ("incident.title", "the incident's title"),
    ("incident.severity", "informational … critical"),
    ("incident.status", "new, triaged, investigating, …"),
    ("incident.score", "0 to 100"),
    ("incident.hosts", "its hosts, comma-separated"),
    ("incident.users", "its accounts, comma-separated"),
    ("incident.ips", "its addresses, comma-separated"),
    ("incident.techniques", "its ATT&CK techniques, comma-separated"),
    ("incident.first_seen", "time of its first alert (RFC 3339)"),
    (
        "verdict.classification",
        "true_positive, benign or false_positive (empty without a verdict)",
    ),
    ("verdict.confidence", "0 to 1 (empty without a verdict)"),
    (
        "verdict.summary",
        "the verdict's summary, in pseudonyms as the model wrote it",
    ),
    ("playbook.id", "the playbook's id"),
    ("playbook.name", "the playbook's name"),
    ("run.id", "this run's id"),
    ("step.id", "this step's id"),
    ("action", "the action (block_ip, notify, …)"),
    (
        "target",
        "the entity the action applies to (empty for untargeted actions)",
    ),
];

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    /// Parses `text`; errors name the unknown variable or the unclosed `{{`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` at byte {} is never closed", text.len() - rest.len() + open))?;
            let name = after[..close].trim();
            if !VARIABLES.iter().any(|(v, _)| *v == name) {
                return Err(format!(
                    "unknown variable `{name}` (known: {})",
                    VARIABLES.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Fills the template in; a variable missing from `vars` renders empty.
    pub fn render(&self, vars: &BTreeMap<&str, String>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(vars.get(v.as_str()).map_or("", String::as_str)),
            }
        }
        out
    }

    /// Whether the template uses `var`.
    pub fn uses(&self, var: &str) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(v) if v == var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_variables() {
        let t = Template::parse("Incident {{ incident.id }} on {{target}}!").unwrap_or_else(|e| panic!("{e}"));
        let vars = BTreeMap::from([("incident.id", "42".to_owned()), ("target", "10.0.0.1".to_owned())]);
        assert_eq!(t.render(&vars), "Incident 42 on 10.0.0.1!");
        assert!(t.uses("target"));
    }

    #[test]
    fn values_are_not_templates_again() {
        let t = Template::parse("{{ incident.title }}").unwrap_or_else(|e| panic!("{e}"));
        let vars = BTreeMap::from([("incident.title", "{{ run.id }}".to_owned())]);
        assert_eq!(t.render(&vars), "{{ run.id }}");
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        let e = Template::parse("{{ incident.password }}").err().unwrap_or_default();
        assert!(e.contains("unknown variable `incident.password`"), "{e}");
        let e = Template::parse("abc {{ target").err().unwrap_or_default();
        assert!(e.contains("byte 4 is never closed"), "{e}");
    }
}

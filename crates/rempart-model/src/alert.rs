//! An alert: a detection rule matched an event.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Event, EventId};

/// A rule matched an event. Alerts reference their event; they do not copy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Time-ordered identifier (UUIDv7), same type as event ids, derived from the event's id
    /// and the rule's ([`EventId::derive`]): one rule raises one alert per event, however
    /// often the event is delivered.
    pub id: EventId,
    /// When the matched event happened.
    pub time: Timestamp,
    /// When the alert was raised.
    pub created: Timestamp,
    pub rule_id: Option<String>,
    pub rule_title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub level: Option<String>,
    /// The rule's tags (ATT&CK techniques and tactics among them).
    pub tags: Vec<String>,
    /// The ATT&CK techniques of the tags, resolved to names and tactics when a catalogue is
    /// loaded.
    #[serde(default)]
    pub techniques: Vec<Technique>,
    /// What matched: the fields and values the rule's selections matched, a correlation's
    /// group and count, or an indicator's matched values.
    #[serde(default)]
    pub matched: Vec<MatchedField>,
    /// The event that matched.
    pub event: EventId,
    pub host: Option<String>,
    pub user: Option<String>,
}

/// One field of an event that made a rule match, with its value (shortened if long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedField {
    pub field: String,
    pub value: String,
}

impl MatchedField {
    /// Longest value kept.
    pub const MAX_VALUE: usize = 512;

    pub fn new(field: impl Into<String>, value: impl Into<String>) -> Self {
        let mut value = value.into();
        if value.len() > Self::MAX_VALUE {
            let mut cut = Self::MAX_VALUE;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            value.push('…');
        }
        MatchedField {
            field: field.into(),
            value,
        }
    }
}

impl Alert {
    /// An alert for `event` raised at `created`, its id derived from the event and the rule
    /// (its id, else its title).
    pub fn for_event(
        event: &Event,
        created: Timestamp,
        rule_id: Option<String>,
        rule_title: String,
        level: Option<String>,
        tags: Vec<String>,
    ) -> Alert {
        Alert {
            id: event.id.derive(rule_id.as_deref().unwrap_or(&rule_title)),
            time: event.time,
            created,
            rule_id,
            rule_title,
            level,
            tags,
            techniques: Vec::new(),
            matched: Vec::new(),
            event: event.id,
            host: event.normalized.host.clone(),
            user: event.normalized.user.clone(),
        }
    }
}

/// An ATT&CK technique an alert points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Technique {
    /// `T1003.001`.
    pub id: String,
    /// `LSASS Memory`; `None` when the catalogue does not know the id (or none is loaded).
    pub name: Option<String>,
    /// `credential-access`, ….
    pub tactics: Vec<String>,
}

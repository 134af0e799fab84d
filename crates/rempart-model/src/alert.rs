//! An alert: a detection rule matched an event.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Event, EventId};

/// A rule matched an event. Alerts reference their event; they do not copy it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Time-ordered identifier (UUIDv7), same type as event ids.
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
    /// The event that matched.
    pub event: EventId,
    pub host: Option<String>,
    pub user: Option<String>,
}

impl Alert {
    /// An alert for `event` raised at `created`.
    pub fn for_event(
        event: &Event,
        created: Timestamp,
        rule_id: Option<String>,
        rule_title: String,
        level: Option<String>,
        tags: Vec<String>,
    ) -> Alert {
        Alert {
            id: EventId::generate(),
            time: event.time,
            created,
            rule_id,
            rule_title,
            level,
            tags,
            event: event.id,
            host: event.normalized.host.clone(),
            user: event.normalized.user.clone(),
        }
    }
}

//! Rempart's shared vocabulary.
//!
//! Every other crate speaks in these types: an [`Event`] as decoded from any source, its
//! [`Format`], its [`DataClass`] and the [`Normalized`] fields that give one name to the same
//! idea across Windows, syslog, CEF, Suricata and Zeek. This crate does no I/O and depends on
//! nothing that does.

mod alert;
pub mod canonical;
mod class;
mod clock;
mod event;
mod fields;
mod format;
mod glob;
mod incident;
pub mod parallel;

pub use alert::{Alert, MatchedField, Technique};
pub use class::{DataClass, UnknownDataClass};
pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{Event, EventId, Normalized, Origin, Severity, lookup_path};
pub use fields::Fields;
pub use format::{Format, UnknownFormat};
pub use glob::glob;
pub use incident::{
    ActionKind, Change, Classification, Entity, EntityKind, Evidence, Feedback, Incident, IncidentSeverity,
    IncidentStatus, InjectionClass, InjectionSign, Recommendation, TimelineEntry, ToolUse, TriageMode, TriageState,
    Verdict,
};

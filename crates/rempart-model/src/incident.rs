//! Incidents: alerts grouped by what they have in common, with a lifecycle, a severity and,
//! once triaged, a verdict.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::EventId;

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Host,
    User,
    Ip,
    /// A process instance (Sysmon `ProcessGuid`, or host and process id).
    Process,
    /// A file hash.
    Hash,
    Domain,
}

impl EntityKind {
    pub const ALL: [EntityKind; 6] = [
        EntityKind::Host,
        EntityKind::User,
        EntityKind::Ip,
        EntityKind::Process,
        EntityKind::Hash,
        EntityKind::Domain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Host => "host",
            EntityKind::User => "user",
            EntityKind::Ip => "ip",
            EntityKind::Process => "process",
            EntityKind::Hash => "hash",
            EntityKind::Domain => "domain",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityKind::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown entity kind `{s}` (expected host, user, ip, process, hash, domain)"))
    }
}

/// A host, user, address, process or file an alert is about. Values are canonical (lower case
/// host and user names, the shortest form of an address) so that equal things compare equal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
}

impl Entity {
    pub fn new(kind: EntityKind, value: impl Into<String>) -> Entity {
        Entity {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    New,
    Triaged,
    Investigating,
    Contained,
    Resolved,
    FalsePositive,
    /// Joined into another incident; `merged_into` says which.
    Merged,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 7] = [
        IncidentStatus::New,
        IncidentStatus::Triaged,
        IncidentStatus::Investigating,
        IncidentStatus::Contained,
        IncidentStatus::Resolved,
        IncidentStatus::FalsePositive,
        IncidentStatus::Merged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Triaged => "triaged",
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::FalsePositive => "false_positive",
            IncidentStatus::Merged => "merged",
        }
    }

    /// Whether new alerts may still join: a closed incident stays closed, and a recurrence
    /// opens a new one.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::New | IncidentStatus::Triaged | IncidentStatus::Investigating | IncidentStatus::Contained
        )
    }

    /// Whether an analyst may move an incident from `self` to `to`. Closed incidents may be
    /// reopened (to `investigating`); nobody moves an incident to or from `merged` by hand.
    pub fn can_move_to(self, to: IncidentStatus) -> bool {
        use IncidentStatus::*;
        if self == to || self == Merged || to == Merged || to == New {
            return false;
        }
        match self {
            New | Triaged | Investigating | Contained => true,
            Resolved | FalsePositive => to == Investigating,
            Merged => false,
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}` (expected new, triaged, investigating, contained, resolved, false_positive)"
                )
            })
    }
}

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl IncidentSeverity {
    pub const ALL: [IncidentSeverity; 5] = [
        IncidentSeverity::Informational,
        IncidentSeverity::Low,
        IncidentSeverity::Medium,
        IncidentSeverity::High,
        IncidentSeverity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSeverity::Informational => "informational",
            IncidentSeverity::Low => "low",
            IncidentSeverity::Medium => "medium",
            IncidentSeverity::High => "high",
            IncidentSeverity::Critical => "critical",
        }
    }

    /// A Sigma rule level (`informational` … `critical`); `None` for anything else.
    pub fn from_level(level: &str) -> Option<IncidentSeverity> {
        IncidentSeverity::ALL.into_iter().find(|s| s.as_str() == level)
    }

    /// The next level up (critical stays critical).
    pub fn raised(self) -> IncidentSeverity {
        match self {
            IncidentSeverity::Informational => IncidentSeverity::Low,
            IncidentSeverity::Low => IncidentSeverity::Medium,
            IncidentSeverity::Medium => IncidentSeverity::High,
            IncidentSeverity::High | IncidentSeverity::Critical => IncidentSeverity::Critical,
        }
    }
}

impl fmt::Display for IncidentSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentSeverity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentSeverity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown severity `{s}` (expected informational, low, medium, high, critical)"))
    }
}

/// One thing that happened to an incident, kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub time: Timestamp,
    /// `correlation`, `triage`, `token:<id>`, ….
    pub actor: String,
    /// `created`, `status`, `owner`, `merged`, `absorbed`, `split`, `triaged`.
    pub what: String,
    /// Why, in words: which entity linked the alerts, the analyst's reason.
    pub reason: String,
}

/// Alerts grouped into one case to investigate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: EventId,
    pub title: String,
    pub status: IncidentStatus,
    pub severity: IncidentSeverity,
    /// 0 to 100: rule levels, asset criticality and spread, combined.
    pub score: u32,
    /// The highest level among its alerts' rules.
    pub max_level: IncidentSeverity,
    pub owner: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// The first and last alerts' event times.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// How many alerts have joined.
    pub alert_count: u64,
    /// Distinct rule titles, in order of first appearance (at most [`Incident::MAX_LISTED`]).
    pub rules: Vec<String>,
    /// The entities its alerts are about (at most [`Incident::MAX_LISTED`] per kind).
    pub entities: Vec<Entity>,
    /// ATT&CK technique ids and tactics seen, in order of first appearance.
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    /// Assets of the inventory among the entities, with their criticality.
    pub assets: Vec<String>,
    pub merged_into: Option<EventId>,
    pub history: Vec<Change>,
    /// When it was last triaged, and whether by a model or the deterministic fallback.
    pub triage: Option<TriageState>,
}

impl Incident {
    /// Longest list of rules or entities of one kind an incident keeps.
    pub const MAX_LISTED: usize = 64;
}

/// The latest triage of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageState {
    pub verdict: EventId,
    pub time: Timestamp,
    pub mode: TriageMode,
    pub classification: Classification,
    /// New alerts joined after this triage.
    pub stale: bool,
    /// The verdict's warnings (`prompt_injection_suspected`, `model_unavailable`, …).
    #[serde(default)]
    pub flags: Vec<String>,
    /// The verdict's confidence in percent, so that a list of incidents shows it without
    /// reading every verdict (absent in incidents triaged before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// A model's verdict held for a person (it was flagged for injection, or it lowered what
    /// the deterministic triage concluded): until an analyst puts it in force, this state's
    /// deterministic verdict is the one playbook conditions read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<EventId>,
}

/// Who produced a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageMode {
    /// A model, through the sovereignty gateway.
    Model,
    /// Rule metadata, intelligence and correlation, without a model.
    Degraded,
}

impl TriageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TriageMode::Model => "model",
            TriageMode::Degraded => "degraded",
        }
    }
}

/// What the triage concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    TruePositive,
    Benign,
    FalsePositive,
}

impl Classification {
    pub const ALL: [Classification; 3] = [
        Classification::TruePositive,
        Classification::Benign,
        Classification::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::TruePositive => "true_positive",
            Classification::Benign => "benign",
            Classification::FalsePositive => "false_positive",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Classification {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Classification::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown verdict `{s}` (expected true_positive, benign, false_positive)"))
    }
}

/// The response actions a verdict may recommend: the playbook action catalogue. A model picks
/// from these; it cannot invent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Notify,
    CreateTicket,
    BlockIp,
    BlockDomain,
    IsolateHost,
    DisableAccount,
    ResetCredentials,
    KillProcess,
    QuarantineFile,
    CollectForensics,
    Monitor,
    CloseIncident,
}

impl ActionKind {
    pub const ALL: [ActionKind; 12] = [
        ActionKind::Notify,
        ActionKind::CreateTicket,
        ActionKind::BlockIp,
        ActionKind::BlockDomain,
        ActionKind::IsolateHost,
        ActionKind::DisableAccount,
        ActionKind::ResetCredentials,
        ActionKind::KillProcess,
        ActionKind::QuarantineFile,
        ActionKind::CollectForensics,
        ActionKind::Monitor,
        ActionKind::CloseIncident,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Notify => "notify",
            ActionKind::CreateTicket => "create_ticket",
            ActionKind::BlockIp => "block_ip",
            ActionKind::BlockDomain => "block_domain",
            ActionKind::IsolateHost => "isolate_host",
            ActionKind::DisableAccount => "disable_account",
            ActionKind::ResetCredentials => "reset_credentials",
            ActionKind::KillProcess => "kill_process",
            ActionKind::QuarantineFile => "quarantine_file",
            ActionKind::CollectForensics => "collect_forensics",
            ActionKind::Monitor => "monitor",
            ActionKind::CloseIncident => "close_incident",
        }
    }

    /// What the action does, for the model and for people.
    pub fn description(self) -> &'static str {
        match self {
            ActionKind::Notify => "tell the on-call team",
            ActionKind::CreateTicket => "open a ticket for follow-up",
            ActionKind::BlockIp => "block an IP address at the firewall",
            ActionKind::BlockDomain => "block a domain at the resolver or proxy",
            ActionKind::IsolateHost => "isolate a host from the network through the EDR",
            ActionKind::DisableAccount => "disable a user account in the directory",
            ActionKind::ResetCredentials => "force a password and credential reset for an account",
            ActionKind::KillProcess => "terminate a process on a host",
            ActionKind::QuarantineFile => "quarantine a file by hash",
            ActionKind::CollectForensics => "collect memory and disk artefacts from a host",
            ActionKind::Monitor => "watch the entities closely; no change to the environment",
            ActionKind::CloseIncident => "close the incident as benign or false positive",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of what happened, as the triage reconstructs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub time: String,
    pub description: String,
    /// The events it rests on.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A recommended response action, from the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub action: ActionKind,
    /// What it applies to (an address, a host, an account, a hash).
    pub target: String,
    pub reason: String,
}

/// A claim of the verdict and the events that support it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub claim: String,
    pub events: Vec<String>,
}

/// A query the triage ran while investigating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    pub tool: String,
    pub arguments: serde_json::Value,
    /// How many results it returned, or the error it met.
    pub outcome: String,
}

/// The kinds of prompt-injection attempt the triage recognizes in the data a model reads
/// (after OWASP LLM01 and the published taxonomies of indirect injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionClass {
    /// "Ignore the previous instructions", "your new task is …".
    InstructionOverride,
    /// Claims of authority or a new role: "message from the administrator", "you are now …",
    /// words addressed to the AI reading the log.
    RoleClaim,
    /// A forged end of the data block or a forged section ("END OF LOG DATA", `</data>`,
    /// `=== SYSTEM ===`).
    FenceForgery,
    /// A model's chat-template tokens (`<|im_start|>`, `[INST]`, `<<SYS>>`).
    ChatTemplate,
    /// A forged tool call or tool result (`"tool_calls":`, `submit_verdict`).
    ToolCallForgery,
    /// Text steering the verdict: "mark this as benign", a verdict-shaped JSON object.
    VerdictSteering,
    /// Text steering the response off: "do not isolate", "recommend no action".
    ResponseSuppression,
    /// Requests to send data (real names, the prompt, pseudonyms undone) somewhere.
    Exfiltration,
    /// Markdown or HTML that makes a reader fetch a URL (images, links with a query).
    MarkupBeacon,
    /// Requests to reveal the instructions.
    PromptLeak,
    /// Known jailbreak personas and "no restrictions" modes.
    Jailbreak,
    /// Text hidden from people: Unicode tag characters, zero-width and bidirectional controls.
    HiddenText,
    /// Letters of other scripts that look Latin, mixed into Latin words.
    Homoglyph,
    /// An instruction hidden in an encoding (base64, hexadecimal, percent or HTML escapes).
    Encoded,
}

impl InjectionClass {
    pub const ALL: [InjectionClass; 14] = [
        InjectionClass::InstructionOverride,
        InjectionClass::RoleClaim,
        InjectionClass::FenceForgery,
        InjectionClass::ChatTemplate,
        InjectionClass::ToolCallForgery,
        InjectionClass::VerdictSteering,
        InjectionClass::ResponseSuppression,
        InjectionClass::Exfiltration,
        InjectionClass::MarkupBeacon,
        InjectionClass::PromptLeak,
        InjectionClass::Jailbreak,
        InjectionClass::HiddenText,
        InjectionClass::Homoglyph,
        InjectionClass::Encoded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InjectionClass::InstructionOverride => "instruction_override",
            InjectionClass::RoleClaim => "role_claim",
            InjectionClass::FenceForgery => "fence_forgery",
            InjectionClass::ChatTemplate => "chat_template",
            InjectionClass::ToolCallForgery => "tool_call_forgery",
            InjectionClass::VerdictSteering => "verdict_steering",
            InjectionClass::ResponseSuppression => "response_suppression",
            InjectionClass::Exfiltration => "exfiltration",
            InjectionClass::MarkupBeacon => "markup_beacon",
            InjectionClass::PromptLeak => "prompt_leak",
            InjectionClass::Jailbreak => "jailbreak",
            InjectionClass::HiddenText => "hidden_text",
            InjectionClass::Homoglyph => "homoglyph",
            InjectionClass::Encoded => "encoded",
        }
    }
}

impl fmt::Display for InjectionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sign of a prompt-injection attempt: where it is, what it is, and the words that gave it
/// away, for the analyst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionSign {
    /// Where in what the model reads (`key_events[0].fields.EventData.CommandLine`).
    pub field: String,
    pub class: InjectionClass,
    /// The phrase as the detector read it (controls removed and shown as `[U+200B]`,
    /// look-alike letters folded, decoded when it was encoded), at most 160 characters.
    pub phrase: String,
    /// The language of the rule that matched (`en`, `fr`, `de`, …); empty for signs that are
    /// not words (hidden characters, markup).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub language: String,
    /// How strongly it indicates an attempt (a value is flagged at 1).
    pub weight: f32,
}

/// A triage verdict on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: EventId,
    pub incident: EventId,
    pub created: Timestamp,
    pub mode: TriageMode,
    /// The provider and model that answered (model mode).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub classification: Classification,
    /// 0 to 1.
    pub confidence: f64,
    pub severity: IncidentSeverity,
    pub summary: String,
    pub timeline: Vec<TimelineEntry>,
    pub techniques: Vec<String>,
    pub entities: Vec<String>,
    pub recommended_actions: Vec<Recommendation>,
    pub queries: Vec<ToolUse>,
    pub evidence: Vec<Evidence>,
    /// Warnings about the verdict itself: `prompt_injection_suspected`, `unknown_event_cited`, ….
    pub flags: Vec<String>,
    /// The signs of prompt injection found in what the model read (why the verdict is flagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injection: Vec<InjectionSign>,
    /// The pseudonymization domain the text was written in, when the model saw pseudonyms:
    /// re-identification happens on reading, for those allowed.
    pub domain: Option<String>,
    /// Model turns and tokens spent.
    pub steps: u32,
    pub tokens: u64,
}

/// An analyst's judgement on a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub verdict: EventId,
    pub incident: EventId,
    pub time: Timestamp,
    pub actor: String,
    /// Whether the analyst agrees with the verdict's classification.
    pub agrees: bool,
    /// The analyst's classification (the verdict's own when they agree).
    pub classification: Classification,
    pub reason: String,
}

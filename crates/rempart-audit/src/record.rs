//! What a record commits to, byte for byte.
//!
//! A record's leaf data is a fixed binary encoding (all integers big-endian, strings as a
//! 16-bit length and UTF-8 bytes):
//!
//! ```text
//! "rempart-ledger/1" || seq u64 || time i64 (ns since the Unix epoch)
//!   || actor str || kind str || key_id str ("" for a public payload)
//!   || payload_hash [32] || prev_hash [32]
//! ```
//!
//! and its leaf hash is `SHA-256(0x00 || leaf data)` (RFC 9162), which is also what the next
//! record names as `prev_hash`. `payload_hash` is SHA-256 of the payload body as stored: the
//! clear JSON for a public payload, `nonce || ciphertext` for a sealed one, so destroying the
//! key leaves every hash checkable.

use jiff::Timestamp;
use rempart_store::{Hash, LedgerRecord};
use serde::Serialize;

use crate::merkle;

const DOMAIN: &[u8] = b"rempart-ledger/1";
/// Longest actor, kind or key id the encoding allows.
pub const MAX_LABEL: usize = 1024;

/// Record kinds Rempart writes. A kind is a string so that later kinds need no format change.
pub mod kind {
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    /// A token's first authenticated use since the server started.
    pub const TOKEN_USE: &str = "token.use";
    /// A person opened a console session with a token (pasted, or through a one-time link).
    pub const CONSOLE_SIGN_IN: &str = "console.sign_in";
    /// A console sign-in the identity provider or Rempart refused, with the reason.
    pub const CONSOLE_SIGN_IN_FAILED: &str = "console.sign_in_failed";
    /// A person's role changed at the identity provider (seen at a refresh).
    pub const CONSOLE_ROLE_CHANGE: &str = "console.role_change";
    /// A console session ended: signed out, or no longer refreshed by the identity provider.
    pub const CONSOLE_SESSION_END: &str = "console.session_end";
    pub const ALERT_RAISE: &str = "alert.raise";
    pub const SERVER_START: &str = "server.start";
    pub const SERVER_STOP: &str = "server.stop";
    pub const CONFIG_LOAD: &str = "config.load";
    pub const RULES_RELOAD: &str = "rules.reload";
    pub const LEDGER_KEY: &str = "ledger.key";
    pub const LEDGER_PRUNE: &str = "ledger.prune";
    pub const SUBJECT_ERASE: &str = "subject.erase";
    pub const RETENTION_PRUNE: &str = "retention.prune";
    pub const AUDIT_READ: &str = "audit.read";
    pub const PRIVACY_PSEUDONYMIZE: &str = "privacy.pseudonymize";
    pub const PRIVACY_REVEAL: &str = "privacy.reveal";
    pub const PRIVACY_EXPORT: &str = "privacy.export";
    /// What an erasure rewrote in the store (counts, never values).
    pub const PRIVACY_SWEEP: &str = "privacy.sweep";
    pub const GATEWAY_CALL: &str = "gateway.call";
    pub const INTEL_IMPORT: &str = "intel.import";
    pub const GATEWAY_REVOKE: &str = "gateway.revoke";
    pub const GATEWAY_RESTORE: &str = "gateway.restore";
    /// An incident was opened by correlation.
    pub const INCIDENT_CREATE: &str = "incident.create";
    /// Incidents were merged (the reason names the linking entity).
    pub const INCIDENT_MERGE: &str = "incident.merge";
    /// An analyst changed an incident's status or owner.
    pub const INCIDENT_UPDATE: &str = "incident.update";
    /// An analyst split alerts off an incident into a new one.
    pub const INCIDENT_SPLIT: &str = "incident.split";
    /// A triage verdict (model or degraded), with what was asked and what the tools ran.
    pub const TRIAGE_VERDICT: &str = "triage.verdict";
    /// An analyst confirmed or overrode a verdict.
    pub const TRIAGE_FEEDBACK: &str = "triage.feedback";
    /// An analyst put a held model verdict in force, or set it aside.
    pub const TRIAGE_HELD_DECISION: &str = "triage.held_decision";
    /// A playbook run started (automatically or by a person), and how it ended.
    pub const PLAYBOOK_RUN: &str = "playbook.run";
    /// A response action about to be carried out, and then its outcome; an action whose
    /// first record cannot be appended does not run.
    pub const RESPONSE_ACTION: &str = "response.action";
    /// A step waits for people to approve it.
    pub const APPROVAL_REQUEST: &str = "approval.request";
    /// An approver's vote, or a timeout.
    pub const APPROVAL_DECISION: &str = "approval.decision";
    /// An incident's regulatory assessment changed, or a report was recorded as sent.
    pub const REGULATORY_UPDATE: &str = "regulatory.update";
    /// A tuning data set was written: its hash, domain, counts and files.
    pub const TUNING_DATASET: &str = "tuning.dataset";
    /// A data set offered to a provider's fine-tuning API: the policy's decision and why.
    pub const TUNING_SUBMIT: &str = "tuning.submit";
    /// A data set's file uploaded to a provider (its id there, its size and hash).
    pub const TUNING_UPLOAD: &str = "tuning.upload";
    /// A fine-tuning job created at a provider, or ended there (with the tuned model).
    pub const TUNING_JOB: &str = "tuning.job";
    /// A tuning job run inside the boundary: started, and ended (exit status, adapter).
    pub const TUNING_RUN: &str = "tuning.run";
    /// An adapter loaded by the adapter server, under the name the gateway routes to.
    pub const TUNING_ADAPTER: &str = "tuning.adapter";
    /// Two triage routes measured on the gold set: each one's rates with their intervals, the
    /// paired difference, and which is better if either is shown to be.
    pub const TRIAGE_EVALUATION: &str = "triage.evaluation";
    /// A route put in force for triage: the evaluation that showed it better, or an
    /// administrator's override with the reason.
    pub const TRIAGE_PROMOTE: &str = "triage.promote";
}

/// The time as the ledger encodes it: nanoseconds, clamped to what an i64 holds.
pub fn time_nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_second() < 0 { i64::MIN } else { i64::MAX })
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Labels are checked against MAX_LABEL before a record is built; the clamp only keeps a
    // corrupt stored label from panicking the verifier (its hash will not match anyway).
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The leaf data of a record (see the module documentation).
pub fn leaf_data(r: &LedgerRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + 6 + r.actor.len() + r.kind.len() + 40 + 64);
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&r.seq.to_be_bytes());
    out.extend_from_slice(&time_nanos(r.time).to_be_bytes());
    push_str(&mut out, &r.actor);
    push_str(&mut out, &r.kind);
    push_str(&mut out, r.key_id.as_deref().unwrap_or(""));
    out.extend_from_slice(&r.payload_hash);
    out.extend_from_slice(&r.prev_hash);
    out
}

/// The leaf hash a record must have.
pub fn compute_leaf_hash(r: &LedgerRecord) -> Hash {
    merkle::leaf_hash(&leaf_data(r))
}

/// A record to append: the ledger assigns its sequence number, time and hashes.
#[derive(Debug, Clone)]
pub struct Draft {
    pub actor: String,
    pub kind: String,
    /// The data subject the payload is about (`user:alice`, `ip:10.0.0.5`, …): its key seals the
    /// payload, and erasing the subject makes the payload unreadable. `None` seals under a key
    /// of the record's own.
    pub subject: Option<String>,
    /// Stored in clear instead of sealed: only for records a verifier must read (key
    /// announcements, pruning horizons), never for personal data.
    pub public: bool,
    /// The payload's JSON text, serialized once when the record is drafted.
    pub payload: Vec<u8>,
}

impl Draft {
    /// A sealed record under its own key.
    pub fn new(actor: impl Into<String>, kind: impl Into<String>, payload: impl Serialize) -> Self {
        Draft {
            actor: actor.into(),
            kind: kind.into(),
            subject: None,
            public: false,
            payload: serde_json::to_vec(&payload).unwrap_or_else(|_| b"null".to_vec()),
        }
    }

    /// Seals the payload under the key of `subject`.
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Stores the payload in clear.
    pub fn public(mut self) -> Self {
        self.public = true;
        self.subject = None;
        self
    }
}

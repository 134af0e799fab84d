//! Response: what Rempart does about an incident, and what it owes the regulators.
//!
//! - [`playbook`]: playbooks read from YAML and checked against the configured connectors
//!   (`rempart playbooks check`), with precise errors.
//! - [`condition`]: triggers and step conditions over the incident, its verdict, its assets
//!   and earlier steps' outcomes.
//! - [`template`]: step parameters filled from the incident.
//! - [`run`]: a run as a state machine: what to execute, what waits for approval, what the
//!   limits stop, what a failure undoes.
//! - [`clocks`]: NIS2, DORA and GDPR deadlines, and DORA's major-incident classification.
//!
//! Everything here is pure: the server executes the work a run asks for through its
//! connectors, stores runs and approvals, and records each step in the audit ledger.

pub mod approval;
pub mod clocks;
pub mod condition;
pub mod connectors;
pub mod duration;
pub mod playbook;
pub mod report;
pub mod run;
pub mod template;

pub use playbook::{CheckContext, Playbook, PlaybookError};
pub use run::{Budget, Context, Decision, Outcome, Run, RunStatus, Work};

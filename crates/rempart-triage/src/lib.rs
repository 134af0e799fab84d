//! Incidents and triage.
//!
//! - [`correlate`]: alerts grouped into incidents by shared entities, time and kill-chain
//!   progression; merges and splits with their reasons.
//! - [`severity`]: rule levels, the asset inventory and spread, as one score.
//! - [`sessions`]: which host an address belongs to and who logged on from where, learned
//!   from every event, so that lateral movement links the source host's incident.
//! - [`entity`]: the hosts, users, addresses, processes, hashes and domains of an alert.
//! - [`context`]: what the model is shown, with the incident's data fenced as quoted JSON.
//! - [`injection`]: signs of prompt injection in that data, by class, field and phrase.
//! - [`agent`]: the model and tools loop, within step, token and time budgets.
//! - [`verdict`]: the verdict schema, its checks, and the deterministic verdict used when no
//!   model can answer.
//!
//! Everything here is pure: data and a time in, values out. The server and the CLI store the
//! results and talk to the gateway.

pub mod agent;
pub mod context;
pub mod correlate;
pub mod entity;
pub mod injection;
pub mod sessions;
pub mod severity;
pub mod verdict;

pub use correlate::{Correlator, Observed, Settings, Update};

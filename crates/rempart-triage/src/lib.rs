//! Incidents and triage.
//!
//! - [`correlate`]: alerts grouped into incidents by shared entities, time and kill-chain
//!   progression; merges and splits with their reasons.
//! - [`severity`]: rule levels, the asset inventory and spread, as one score.
//! - [`entity`]: the hosts, users, addresses, processes, hashes and domains of an alert.
//!
//! Everything here is pure: data and a time in, values out. The server and the CLI store the
//! results and talk to the gateway.

pub mod correlate;
pub mod entity;
pub mod severity;

pub use correlate::{Correlator, Observed, Settings, Update};

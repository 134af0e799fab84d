//! The services a role of Rempart runs, apart from the HTTP layer: incident correlation
//! (`incidents`), triage by models through the gateway (`triage`), playbooks, approvals and regulatory clocks (`respond`), the per-entity
//! baselines (`anomaly`), the metrics they count (`metrics`) and the way from decoded items
//! to durable storage (`pipeline`), and the loops of a cluster's roles on the bus
//! (`cluster`). `rempart-server` puts the
//! API and the console in front of them; a `detect`, `correlate` or `respond` process of a
//! cluster runs them whatever it serves, and the command line builds them without a server.
//!
//! Architecture invariant: nothing here knows HTTP (no `axum`, no request or caller types).

pub mod active;
pub mod anomaly;
pub mod cluster;
pub mod incidents;
pub mod metrics;
pub mod pipeline;
pub mod respond;
pub mod triage;

//! Threat intelligence: indicators from STIX 2.1 bundles and MISP events, matched against events
//! through indexes (hashed sets for exact values, per-prefix-length tables for CIDR ranges,
//! parent-domain lookups for subdomains), never a scan over the indicators per event.
//!
//! `knowledge` turns the same documents into questions and answers for tuning a model.
//!
//! Architecture invariant: this crate does no I/O and never awaits.

pub mod import;
pub mod index;
pub mod indicator;
pub mod knowledge;
pub mod pattern;

pub use import::{Imported, Skipped, import};
pub use index::{Hit, IocIndex, observables};
pub use indicator::{Atom, Indicator, Kind};

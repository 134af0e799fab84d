//! Streaming anomaly detection.
//!
//! - [`midas`]: MIDAS and MIDAS-R (Bhatia et al., "MIDAS: Microcluster-Based Detector of
//!   Anomalies in Edge Streams", AAAI 2020), written from the paper: constant memory (count-min
//!   sketches), constant time per edge, a chi-squared score of how far the current tick's count
//!   departs from the history, and, for MIDAS-R, decayed counts and the source and destination
//!   scored alongside the edge, with which of the three burst.
//! - [`baseline`]: per-entity baselines (rare processes, first logons, unusual hours,
//!   failed-logon bursts, new services, outbound volume), each finding with typical and actual.
//! - [`ecod`]: streaming ECOD for numeric feature vectors, with per-feature attribution
//!   (typical against actual) and a burst guard that keeps attacks from being learned.
//! - [`eval`]: ROC-AUC and average precision over labelled scores, as the literature reports
//!   them.
//! - [`datasets`]: readers for the labelled streams detectors are measured on.
//!
//! Pure: no I/O but the dataset readers, which take a path.

pub mod baseline;
pub mod datasets;
pub mod ecod;
pub mod eval;
pub mod midas;

//! Where a batch decoded by the API or a syslog listener goes: the services' pipeline
//! ([`rempart_services::pipeline`]) in this process, or the cluster's bus.

use std::time::Instant;

pub use rempart_services::pipeline::*;

use crate::{ApiError, AppState};

impl AppState {
    /// The rules, indicators and baselines in force in this process now (a reload later does
    /// not change these).
    pub fn detectors(&self) -> Detectors {
        Detectors {
            rules: self.rules.current(),
            intel: self.intel.current(),
            anomaly: self.anomaly.clone(),
        }
    }
}

/// Detects and commits `batch` here (one process), or hands it to the cluster's bus for the
/// `detect` processes, acknowledged once JetStream has stored it.
pub async fn deliver(batch: &mut Batch, state: &AppState, source_kind: &'static str) -> Result<(), DeliverError> {
    let Some(bus) = &state.bus else {
        batch.detect_with(&state.detectors());
        return Ok(batch
            .commit(
                &*state.store,
                &state.ledger,
                &state.metrics,
                source_kind,
                state.incidents.as_ref(),
            )
            .await?);
    };
    let started = Instant::now();
    bus.publish_events(&batch.events, &quarantined(&batch.rejected)).await?;
    state
        .metrics
        .bus_publish_seconds
        .observe(started.elapsed().as_secs_f64());
    batch.count(&state.metrics, source_kind);
    Ok(())
}

impl From<DeliverError> for ApiError {
    fn from(e: DeliverError) -> Self {
        match e {
            DeliverError::Store(e) => ApiError::Store(e),
            DeliverError::Bus(e @ rempart_bus::BusError::TooLarge { .. }) => ApiError::PayloadTooLarge(e.to_string()),
            DeliverError::Bus(e) => ApiError::Busy(format!("the batch was not stored: {e}; retry")),
        }
    }
}

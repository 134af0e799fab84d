//! Threat-intelligence indicators in force: loaded from the store, swapped whole when an import
//! adds some, matched against everything ingested.

use std::sync::Arc;

use rempart_intel::{Indicator, IocIndex};
use rempart_store::{IntelStore, StoreError};

/// The indicator index in force; replaced whole.
#[derive(Debug, Clone, Default)]
pub struct ActiveIntel(Arc<std::sync::RwLock<Option<Arc<IocIndex>>>>);

impl ActiveIntel {
    pub fn current(&self) -> Option<Arc<IocIndex>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn replace(&self, index: Arc<IocIndex>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(index);
    }
}

/// Every stored indicator, indexed. A record that no longer reads is skipped with a warning.
pub async fn load(store: &dyn IntelStore) -> Result<IocIndex, StoreError> {
    let records = store.intel_all().await?;
    let mut indicators = Vec::with_capacity(records.len());
    for r in records {
        match serde_json::from_str::<Indicator>(&r.body) {
            Ok(i) => indicators.push(i),
            Err(e) => {
                tracing::warn!(source = %r.source, id = %r.id, error = %e, "stored indicator unreadable; skipped")
            }
        }
    }
    Ok(IocIndex::new(indicators))
}

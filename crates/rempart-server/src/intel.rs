//! Threat-intelligence indicators in force: loaded from the store, swapped whole when an import
//! adds some, matched against everything ingested.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use rempart_audit::Draft;
use rempart_intel::{Indicator, IocIndex};
use rempart_store::{IntelRecord, IntelStore, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth};

pub use rempart_services::active::ActiveIntel;

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

fn store(state: &AppState) -> Result<&Arc<dyn IntelStore>, ApiError> {
    state
        .intel_store
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured("this server keeps no threat intelligence".to_owned()))
}

/// `GET /api/v1/intel`: how many indicators are stored, by source (role viewer).
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut sources: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in store(&state)?.intel_all().await? {
        *sources.entry(r.source).or_insert(0) += 1;
    }
    let in_force = state.intel.current().map_or(0, |i| i.len());
    Ok(Json(
        json!({"stored": sources.values().sum::<u64>(), "in_force": in_force, "sources": sources}),
    ))
}

/// The store's records of what an import brought (each indicator whole, as JSON), shared by
/// the API, `rempart intel import` and a server's TAXII polls.
pub fn records(
    imported: &rempart_intel::Imported,
    now: jiff::Timestamp,
) -> Result<Vec<IntelRecord>, serde_json::Error> {
    imported
        .indicators
        .iter()
        .map(|i| {
            Ok(IntelRecord {
                source: i.source.clone(),
                id: i.id.clone(),
                body: serde_json::to_string(i)?,
                imported: now,
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// A name for where the document came from (default `api`).
    source: Option<String>,
}

/// `POST /api/v1/intel?source=NAME`: import a STIX 2.1 bundle or a MISP event (role analyst);
/// the indicators are matched from the next batch on. Recorded in the ledger.
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(p): Query<ImportParams>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let intel_store = store(&state)?.clone();
    let source = p.source.unwrap_or_else(|| "api".to_owned());
    if source.is_empty() || source.chars().count() > 256 {
        return Err(ApiError::BadRequest("`source` must be 1 to 256 characters".into()));
    }
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let imported = rempart_intel::import(&doc, &source).map_err(ApiError::BadRequest)?;
    let records = records(&imported, jiff::Timestamp::now()).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .ledger
        .append(
            Draft::new(
                caller.actor(),
                rempart_audit::kind::INTEL_IMPORT,
                json!({"source": source, "imported": records.len(), "skipped": imported.skipped.len()}),
            )
            .public(),
        )
        .await?;
    let stored = intel_store.intel_put(&records).await?;
    let index = load(&*intel_store).await?;
    state.intel.replace(Arc::new(index));
    Ok(Json(json!({"imported": stored, "skipped": imported.skipped})))
}

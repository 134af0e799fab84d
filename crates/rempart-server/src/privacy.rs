//! The privacy engine over HTTP: pseudonymize (analysts and tools), re-identify (approvers),
//! and the data-subject requests (administrators). Every re-identification, access request and
//! erasure is recorded in the ledger before anything is returned.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use rempart_audit::{Draft, kind};
use rempart_privacy::{Privacy, PrivacyError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainParams {
    domain: Option<String>,
}

fn engine(state: &AppState) -> Result<&Privacy, ApiError> {
    state
        .privacy
        .as_deref()
        .ok_or_else(|| ApiError::NotConfigured("the privacy engine is not configured on this server".to_owned()))
}

/// The engine, the domain named by the request (`default` when none) and its redactor.
fn domain(
    state: &AppState,
    p: DomainParams,
) -> Result<(&Privacy, String, std::sync::Arc<rempart_privacy::redact::Redactor>), ApiError> {
    let privacy = engine(state)?;
    let domain = p.domain.unwrap_or_else(|| "default".to_owned());
    let redactor = privacy.redactor(&domain)?;
    Ok((privacy, domain, redactor))
}

fn lines(body: &Bytes) -> Result<Vec<String>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest(format!("body is not UTF-8 text: {e}")))?;
    Ok(text.lines().map(str::to_owned).collect())
}

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        match e {
            PrivacyError::BadRequest(m) => ApiError::BadRequest(m),
            PrivacyError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            PrivacyError::Audit(a) => ApiError::Audit(a),
            PrivacyError::Store(s) => ApiError::Store(s),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// `POST /api/v1/privacy/redact?domain=D`: text or NDJSON in, pseudonymized out, with what was
/// found where (never the originals). The originals are sealed in the vault first.
pub async fn redact(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(p): Query<DomainParams>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (privacy, domain, redactor) = domain(&state, p)?;
    let input = lines(&body)?;
    // Recognition is CPU-bound: off the async workers.
    let worker = redactor.clone();
    let results = tokio::task::spawn_blocking(move || {
        input
            .iter()
            .map(|l| worker.redact_line(l))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("redaction task failed: {e}")))??;
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    let mut all = Vec::new();
    let mut listed = Vec::new();
    let mut output = Vec::with_capacity(results.len());
    for (n, r) in results.into_iter().enumerate() {
        for rep in &r.replacements {
            *found.entry(rep.entity.prefix().to_owned()).or_insert(0) += 1;
            listed.push(rep.explain(n + 1));
        }
        all.extend(r.replacements);
        output.push(r.output);
    }
    privacy
        .vault()
        .remember(redactor.domain(), &all, jiff::Timestamp::now())
        .await?;
    state
        .ledger
        .append(Draft::new(
            caller.actor(),
            kind::PRIVACY_PSEUDONYMIZE,
            json!({"domain": domain, "lines": output.len(), "found": found}),
        ))
        .await?;
    Ok(Json(
        json!({"domain": domain, "output": output.join("\n"), "found": found, "replacements": listed}),
    ))
}

/// `POST /api/v1/privacy/reveal?domain=D`: pseudonyms of the domain back to originals, for
/// approvers; recorded before it is returned.
pub async fn reveal(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(p): Query<DomainParams>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (privacy, domain, redactor) = domain(&state, p)?;
    let (output, revealed) = privacy.vault().reveal_lines(redactor.domain(), &lines(&body)?).await?;
    if !revealed.revealed.is_empty() {
        state
            .ledger
            .append(Draft::new(
                caller.actor(),
                kind::PRIVACY_REVEAL,
                json!({"domain": domain, "pseudonyms": revealed.revealed}),
            ))
            .await?;
    }
    Ok(Json(json!({
        "domain": domain,
        "output": output.join("\n"),
        "revealed": revealed.revealed.len(),
        "unresolved": revealed.unresolved,
    })))
}

/// The store's side of the data-subject requests.
fn erasure_store(state: &AppState) -> Result<&dyn rempart_store::ErasureStore, ApiError> {
    state
        .erasure
        .as_deref()
        .ok_or_else(|| ApiError::NotConfigured("this server's store cannot answer data-subject requests".to_owned()))
}

/// `GET /api/v1/privacy/subjects/{subject}`: everything kept about a data subject (GDPR Art. 15).
pub async fn subject(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(subject): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let privacy = engine(&state)?;
    let store = erasure_store(&state)?;
    Ok(Json(
        privacy
            .subject_report(&state.ledger, store, &caller.actor(), &subject)
            .await?,
    ))
}

/// `DELETE /api/v1/privacy/subjects/{subject}`: erase a data subject (GDPR Art. 17) from the
/// store, the vault and the ledger, and from what this server holds in memory: the correlator
/// is held meanwhile (no incident is written) and then takes the open incidents back from the
/// store, and the anomaly baselines are rewritten like the stored ones. The other processes of
/// a cluster learn of it from the erasure epoch (`ErasureStore::erasure_advance`).
pub async fn erase(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(subject): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let privacy = engine(&state)?;
    let store = erasure_store(&state)?;
    let eraser = privacy.eraser(&subject).await?;
    let actor = caller.actor();
    // In a cluster the detectors learn in their owner, not here.
    let anomaly = state.anomaly.as_ref().filter(|_| state.bus.is_none());
    let work = async {
        if let Some(anomaly) = anomaly {
            anomaly
                .rewrite(&|s: &mut String| eraser.rewrite(s))
                .map_err(|e| ApiError::Internal(format!("anomaly baselines: {e}")))?;
        }
        // The erasure advances the erasure epoch before its sweep and after: the processes of
        // a cluster that keep in memory what the store also holds (the anomaly detectors, the
        // Sigma partitions, the correlator) load it again, rewritten.
        let erased = privacy.erase(&state.ledger, store, &actor, &eraser).await?;
        if let Some(anomaly) = anomaly {
            anomaly.save(state.store.as_ref()).await.map_err(ApiError::Internal)?;
        }
        Ok::<_, ApiError>(erased)
    };
    let erased = match &state.incidents {
        Some(incidents) => incidents.rewriting(work).await?,
        None => work.await?,
    };
    Ok(Json(
        serde_json::to_value(&erased).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

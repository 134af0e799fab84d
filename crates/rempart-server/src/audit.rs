//! The auditors' API: records with their payloads, checkpoints, proofs, verification and
//! export. Reading payloads is itself recorded in the ledger before anything is returned.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use base64::Engine;
use jiff::Timestamp;
use rempart_audit::export::ExportRange;
use rempart_audit::kind::AUDIT_READ;
use rempart_audit::{Draft, Ledger, PayloadView};
use rempart_store::LedgerEntry;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState, auth};

/// A record as the API shows it.
pub async fn record_json(ledger: &Ledger, entry: &LedgerEntry) -> Result<Value, ApiError> {
    let r = &entry.record;
    let view = ledger.open_payload(entry).await?;
    let (status, payload) = match view {
        PayloadView::Public { payload } => ("public", payload),
        PayloadView::Sealed { payload, .. } => ("sealed", payload),
        PayloadView::Erased => ("erased", Value::Null),
        PayloadView::Pruned => ("pruned", Value::Null),
    };
    Ok(json!({
        "seq": r.seq,
        "time": r.time,
        "actor": r.actor,
        "kind": r.kind,
        "key_id": r.key_id,
        "payload_hash": hex::encode(r.payload_hash),
        "prev_hash": hex::encode(r.prev_hash),
        "leaf_hash": hex::encode(r.leaf_hash),
        "status": status,
        "payload": payload,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsParams {
    from: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit/records?from=SEQ&limit=N`.
pub async fn records(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(p): Query<RecordsParams>,
) -> Result<Json<Value>, ApiError> {
    let from = p.from.unwrap_or(0);
    let limit = crate::error::limit(p.limit, 100, 1000)?;
    let entries = state.ledger.entries(from, limit).await?;
    if let Some(last) = entries.last() {
        let read = json!({"from": from, "to": last.record.seq});
        state
            .ledger
            .append(Draft::new(caller.actor(), AUDIT_READ, read))
            .await?;
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        out.push(record_json(&state.ledger, e).await?);
    }
    // Records are numbered: the following page starts at the next number.
    let full = u32::try_from(entries.len()).is_ok_and(|n| n >= limit);
    let next = entries
        .last()
        .filter(|_| full)
        .and_then(|last| last.record.seq.checked_add(1));
    Ok(Json(json!({"records": out, "next": next})))
}

/// `GET /api/v1/audit/records/{seq}`.
pub async fn record(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Path(seq): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let entry = state
        .ledger
        .entries(seq, 1)
        .await?
        .into_iter()
        .find(|e| e.record.seq == seq)
        .ok_or_else(|| ApiError::NotFound(format!("ledger record {seq}")))?;
    state
        .ledger
        .append(Draft::new(caller.actor(), AUDIT_READ, json!({"from": seq, "to": seq})))
        .await?;
    Ok(Json(record_json(&state.ledger, &entry).await?))
}

/// `GET /api/v1/audit/checkpoints`: every signed checkpoint, and the key that verifies them.
pub async fn checkpoints(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cps = state.ledger.checkpoints().await?;
    let list: Vec<Value> = cps
        .iter()
        .map(|c| json!({"size": c.size, "root": hex::encode(c.root), "time": c.time, "note": c.note}))
        .collect();
    Ok(Json(json!({
        "origin": state.ledger.origin(),
        "verifier_keys": state.ledger.trusted().iter().map(rempart_audit::NoteVerifier::vkey).collect::<Vec<_>>(),
        "checkpoints": list,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    seq: u64,
    size: Option<u64>,
}

/// `GET /api/v1/audit/proof/inclusion?seq=N&size=M`: the path from record `seq` to the root of
/// the first `size` records (by default, the latest checkpoint).
pub async fn inclusion(
    State(state): State<AppState>,
    Query(p): Query<InclusionParams>,
) -> Result<Json<Value>, ApiError> {
    let size = match p.size {
        Some(s) => s,
        None => latest_size(&state.ledger).await?,
    };
    if p.seq >= size {
        return Err(ApiError::BadRequest(format!(
            "record {} is not in a tree of {size} records",
            p.seq
        )));
    }
    let proof = state.ledger.inclusion_proof(p.seq, size).await?;
    let leaf = state.ledger.store().ledger_leaves(p.seq, p.seq + 1).await?;
    Ok(Json(json!({
        "seq": p.seq,
        "size": size,
        "leaf_hash": leaf.first().map(hex::encode),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    from: u64,
    to: Option<u64>,
}

/// `GET /api/v1/audit/proof/consistency?from=M&to=N`: proves the tree of `from` records is a
/// prefix of the tree of `to` (by default, the latest checkpoint).
pub async fn consistency(
    State(state): State<AppState>,
    Query(p): Query<ConsistencyParams>,
) -> Result<Json<Value>, ApiError> {
    let to = match p.to {
        Some(t) => t,
        None => latest_size(&state.ledger).await?,
    };
    if p.from == 0 || p.from > to {
        return Err(ApiError::BadRequest(format!(
            "no consistency proof from {} to {to}",
            p.from
        )));
    }
    let proof = state.ledger.consistency_proof(p.from, to).await?;
    Ok(Json(json!({
        "from": p.from,
        "to": to,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

async fn latest_size(ledger: &Ledger) -> Result<u64, ApiError> {
    ledger
        .checkpoints()
        .await?
        .last()
        .map(|c| c.size)
        .ok_or_else(|| ApiError::NotFound("a checkpoint (the ledger has none yet)".to_owned()))
}

/// `GET /api/v1/audit/verify`: verifies the whole ledger now.
pub async fn verify(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let result = Ledger::verify(state.ledger.store(), state.ledger.trusted(), Vec::new(), None).await?;
    Ok(Json(match result {
        Ok(report) => json!({"ok": true, "report": report}),
        Err(problem) => json!({"ok": false, "problem": problem, "message": problem.to_string()}),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// A checkpoint note the caller holds (base64), to be proven a prefix of the export's.
    previous: Option<String>,
}

/// `GET /api/v1/audit/export?since=…&until=…&previous=BASE64-NOTE`.
pub async fn export(
    State(state): State<AppState>,
    Extension(caller): Extension<auth::Caller>,
    Query(p): Query<ExportParams>,
) -> Result<Json<Value>, ApiError> {
    let previous = p
        .previous
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|n| String::from_utf8(n).ok())
                .ok_or_else(|| ApiError::BadRequest("`previous` must be a base64 checkpoint note".to_owned()))
        })
        .transpose()?;
    state
        .ledger
        .append(Draft::new(
            caller.actor(),
            AUDIT_READ,
            json!({"export": {"since": p.since, "until": p.until}}),
        ))
        .await?;
    let doc = state
        .ledger
        .export(&ExportRange {
            since: p.since,
            until: p.until,
            previous,
        })
        .await?;
    Ok(Json(
        serde_json::to_value(doc).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

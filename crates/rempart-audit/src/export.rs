//! The export document: records, their payloads where readable, a signed checkpoint covering
//! them, an inclusion proof per record and, when the recipient holds an earlier checkpoint, a
//! consistency proof from it. Everything a third party needs to check the records without
//! trusting Rempart; `examples/verify_export.rs` is such a checker, written against this
//! format only.
//!
//! Format `rempart-audit-export/1` (JSON): hashes in lowercase hex, bodies and keys in
//! standard base64.
//!
//! ```json
//! {
//!   "format": "rempart-audit-export/1",
//!   "origin": "rempart/soc.example.eu",
//!   "verifier_keys": ["rempart/soc.example.eu+1a2b3c4d+AV…"],
//!   "checkpoint": "<signed note>",
//!   "previous": {"checkpoint": "<signed note>", "consistency_proof": ["…"]},
//!   "records": [{
//!     "seq": 41, "time": "2026-11-22T21:40:00.123456789Z", "time_ns": 1795383600123456789,
//!     "actor": "token:…", "kind": "token.create", "key_id": "0193…" | null,
//!     "payload_hash": "…", "prev_hash": "…", "leaf_hash": "…",
//!     "status": "public" | "sealed" | "erased" | "pruned",
//!     "body": "<base64 stored body>" | null, "record_key": "<base64>" | null,
//!     "payload": { … } | null,
//!     "inclusion_proof": ["…"]
//!   }]
//! }
//! ```
//!
//! `leaf_hash` is SHA-256(0x00 || leaf data) as in [`crate::record`]; a sealed `body` is
//! `nonce (24) || XChaCha20-Poly1305 ciphertext` under `record_key` with associated data
//! `"rempart-ledger/1" || seq (u64 BE) || kind`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::ledger::{Ledger, PayloadView};
use crate::record::time_nanos;
use crate::verify::note_size;

pub const FORMAT: &str = "rempart-audit-export/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportDocument {
    pub format: String,
    pub origin: String,
    pub verifier_keys: Vec<String>,
    pub checkpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    pub records: Vec<ExportedRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Previous {
    pub checkpoint: String,
    pub consistency_proof: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedRecord {
    pub seq: u64,
    pub time: Timestamp,
    pub time_ns: i64,
    pub actor: String,
    pub kind: String,
    pub key_id: Option<String>,
    pub payload_hash: String,
    pub prev_hash: String,
    pub leaf_hash: String,
    pub status: String,
    pub body: Option<String>,
    pub record_key: Option<String>,
    pub payload: Option<serde_json::Value>,
    pub inclusion_proof: Vec<String>,
}

/// Which records to export.
#[derive(Debug, Clone, Default)]
pub struct ExportRange {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// A checkpoint note the recipient already holds: the export proves it is a prefix.
    pub previous: Option<String>,
}

impl Ledger {
    /// Exports the records in `range`, first signing a checkpoint over everything so that
    /// every exported record is covered.
    pub async fn export(&self, range: &ExportRange) -> Result<ExportDocument, AuditError> {
        self.checkpoint().await?;
        let checkpoints = self.checkpoints().await?;
        let Some(cp) = checkpoints.last() else {
            return Err(AuditError::Config("the ledger is empty: nothing to export".to_owned()));
        };
        let tree = self.tree(cp.size).await?;
        let mut records = Vec::new();
        let mut from = 0;
        'pages: loop {
            let page = self.entries(from, 4096).await?;
            let Some(last) = page.last() else { break };
            from = last.record.seq + 1;
            for entry in &page {
                let r = &entry.record;
                if r.seq >= cp.size || range.until.is_some_and(|u| r.time >= u) {
                    break 'pages;
                }
                if range.since.is_some_and(|s| r.time < s) {
                    continue;
                }
                let (status, payload, record_key) = match self.open_payload(entry).await? {
                    PayloadView::Public { payload } => ("public", Some(payload), None),
                    PayloadView::Sealed { payload, record_key } => {
                        ("sealed", Some(payload), Some(B64.encode(record_key)))
                    }
                    PayloadView::Erased => ("erased", None, None),
                    PayloadView::Pruned => ("pruned", None, None),
                };
                let index = usize::try_from(r.seq).map_err(|_| AuditError::NoSuchRecord(r.seq))?;
                let proof = tree
                    .inclusion_proof(index, tree.len())
                    .ok_or(AuditError::NoSuchRecord(r.seq))?;
                records.push(ExportedRecord {
                    seq: r.seq,
                    time: r.time,
                    time_ns: time_nanos(r.time),
                    actor: r.actor.clone(),
                    kind: r.kind.clone(),
                    key_id: r.key_id.clone(),
                    payload_hash: hex::encode(r.payload_hash),
                    prev_hash: hex::encode(r.prev_hash),
                    leaf_hash: hex::encode(r.leaf_hash),
                    status: status.to_owned(),
                    body: entry.payload.as_ref().map(|b| B64.encode(b)),
                    record_key,
                    payload,
                    inclusion_proof: proof.iter().map(hex::encode).collect(),
                });
            }
        }
        let previous = match &range.previous {
            None => None,
            Some(note) => {
                let size = note_size(note).ok_or_else(|| {
                    AuditError::Checkpoint("the previous checkpoint is not a checkpoint note".to_owned())
                })?;
                let m = usize::try_from(size).unwrap_or(usize::MAX);
                let proof = tree.consistency_proof(m, tree.len()).ok_or_else(|| {
                    AuditError::Checkpoint(format!(
                        "the previous checkpoint covers {size} records, more than the ledger's {}",
                        cp.size
                    ))
                })?;
                Some(Previous {
                    checkpoint: note.clone(),
                    consistency_proof: proof.iter().map(hex::encode).collect(),
                })
            }
        };
        Ok(ExportDocument {
            format: FORMAT.to_owned(),
            origin: self.origin().to_owned(),
            verifier_keys: vec![self.verifier().vkey()],
            checkpoint: cp.note.clone(),
            previous,
            records,
        })
    }
}

//! Verification of a stored ledger, as a pure state machine: feed it the entries in order and
//! it names the first record that breaks an invariant, and why.
//!
//! What it checks, for every record: the sequence has no gap; the record's fields hash to its
//! stored leaf hash; its `prev_hash` is the previous record's leaf hash; its payload body (if
//! not pruned) hashes to its `payload_hash`. At every checkpoint: the note's signature verifies
//! under a trusted key and its root is the Merkle root of the records so far. At the end: no
//! checkpoint (stored or supplied from outside, such as one an auditor kept) covers more
//! records than the ledger holds. And for every key a payload was sealed under
//! ([`Verifier::check_keys`]): it is still in the store, or an erasure record destroyed it.

use std::collections::{HashMap, VecDeque};

use rempart_store::{Hash, LedgerEntry, StoredCheckpoint, SubjectKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::merkle::Frontier;
use crate::record::{compute_leaf_hash, kind};

/// The first thing found wrong, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    #[error("record {seq} is missing (the ledger goes from {} to {found})", seq.saturating_sub(1))]
    Missing { seq: u64, found: u64 },
    #[error("record {found} appears where record {seq} should be")]
    OutOfOrder { seq: u64, found: u64 },
    #[error("record {seq} was altered: its content does not hash to its stored leaf hash")]
    Altered { seq: u64 },
    #[error(
        "record {seq} does not follow record {}: its prev_hash is not that record's hash (a record was altered, inserted or removed there)",
        seq.saturating_sub(1)
    )]
    ChainBroken { seq: u64 },
    #[error("the payload of record {seq} was altered: it does not hash to the record's payload_hash")]
    PayloadAltered { seq: u64 },
    #[error("the payload of record {seq} is missing, and no later pruning record covers it")]
    PayloadMissing { seq: u64 },
    #[error("checkpoint of size {size}: {reason}")]
    BadCheckpoint { size: u64, reason: String },
    #[error(
        "checkpoint of size {size} ({source_name}) does not match the ledger: the first {size} records hash to {actual}, the signed root is {signed} (history was rewritten)"
    )]
    RootMismatch {
        size: u64,
        source_name: String,
        signed: String,
        actual: String,
    },
    #[error("stored record `{record}` cannot be read: {reason}")]
    Unreadable { record: String, reason: String },
    #[error(
        "the key of record {seq} (key {key_id}) {reason}: its payload can no longer be read, and no erasure in the ledger accounts for it"
    )]
    KeyDestroyed { seq: u64, key_id: String, reason: String },
    #[error(
        "the ledger ends after {records} records, but checkpoint of size {size} ({source_name}) covers more: records {records}..{} were removed",
        size.saturating_sub(1)
    )]
    Truncated {
        records: u64,
        size: u64,
        source_name: String,
    },
}

impl Problem {
    /// The sequence number of the record found wrong, where there is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Problem::Missing { seq, .. }
            | Problem::OutOfOrder { seq, .. }
            | Problem::Altered { seq }
            | Problem::ChainBroken { seq }
            | Problem::PayloadAltered { seq }
            | Problem::PayloadMissing { seq }
            | Problem::KeyDestroyed { seq, .. } => Some(*seq),
            Problem::Truncated { records, .. } => Some(*records),
            _ => None,
        }
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub first: Option<u64>,
    pub records: u64,
    pub checkpoints: u64,
    pub outside_checkpoints: u64,
    /// Records whose payload was pruned by retention (their hashes are still checked).
    pub pruned_payloads: u64,
    /// Subject keys destroyed by a recorded erasure (the payloads sealed under them are unreadable
    /// by design; their hashes are still checked).
    pub erased_keys: u64,
    /// The largest verified checkpoint, if any.
    pub latest_checkpoint: Option<u64>,
    /// Records after the latest checkpoint: chained, but not yet under a signature.
    pub unsigned_tail: u64,
    /// Keys that signed the verified checkpoints.
    pub signed_by: Vec<String>,
}

/// A checkpoint to hold the ledger against: from the store or from outside.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub note: String,
    /// Where it came from, for messages: `stored`, a file name, ….
    pub source_name: String,
    /// A stored checkpoint's own columns, held to its note once the note is verified.
    stored: Option<StoredCheckpoint>,
}

impl Anchor {
    /// A checkpoint held outside the store (a witness file, an auditor's copy), named
    /// `source_name` in messages.
    pub fn outside(note: String, source_name: impl Into<String>) -> Self {
        Anchor {
            note,
            source_name: source_name.into(),
            stored: None,
        }
    }
}

impl From<&StoredCheckpoint> for Anchor {
    fn from(cp: &StoredCheckpoint) -> Self {
        Anchor {
            note: cp.note.clone(),
            source_name: "stored".to_owned(),
            stored: Some(cp.clone()),
        }
    }
}

/// Verifies a ledger fed in order.
#[derive(Debug)]
pub struct Verifier {
    trusted: Vec<NoteVerifier>,
    /// Keys announced in the ledger, trusted once a trusted checkpoint covers their announcement.
    announced: Vec<(u64, NoteVerifier)>,
    anchors: VecDeque<(u64, Anchor)>,
    next: u64,
    prev: Hash,
    frontier: Frontier,
    prune_below: u64,
    /// Records without a payload body, as ranges `start..end`.
    missing: Vec<(u64, u64)>,
    /// Where verification started: records before it are vouched for by a checkpoint.
    base: u64,
    /// The keys payloads were sealed under: key id → the first record sealed under it.
    keys: HashMap<String, u64>,
    /// Subjects erased by a public erasure record: subject MAC → the last such record.
    erasures: HashMap<String, u64>,
    report: Report,
}

impl Verifier {
    /// Verifies from the first record. `anchors` are checkpoints in any order.
    pub fn new(trusted: Vec<NoteVerifier>, anchors: Vec<Anchor>) -> Result<Self, Problem> {
        Self::resume(trusted, anchors, Frontier::new(), [0; 32])
    }

    /// Verifies from `frontier.size()` on, trusting the records before it (whose root a
    /// checkpoint signed); `prev` is the leaf hash of the record before.
    pub fn resume(
        trusted: Vec<NoteVerifier>,
        anchors: Vec<Anchor>,
        frontier: Frontier,
        prev: Hash,
    ) -> Result<Self, Problem> {
        let mut sized = Vec::with_capacity(anchors.len());
        for a in anchors {
            let size = note_size(&a.note).ok_or_else(|| Problem::BadCheckpoint {
                size: 0,
                reason: format!("{}: not a checkpoint note", a.source_name),
            })?;
            if size > frontier.size() {
                sized.push((size, a));
            }
        }
        sized.sort_by_key(|(s, _)| *s);
        let next = frontier.size();
        Ok(Verifier {
            trusted,
            announced: Vec::new(),
            anchors: sized.into(),
            next,
            prev,
            frontier,
            prune_below: 0,
            missing: Vec::new(),
            base: next,
            keys: HashMap::new(),
            erasures: HashMap::new(),
            report: Report::default(),
        })
    }

    /// Checks the next entry.
    pub fn feed(&mut self, entry: &LedgerEntry) -> Result<(), Problem> {
        let r = &entry.record;
        if r.seq != self.next {
            return Err(if r.seq > self.next {
                Problem::Missing {
                    seq: self.next,
                    found: r.seq,
                }
            } else {
                Problem::OutOfOrder {
                    seq: self.next,
                    found: r.seq,
                }
            });
        }
        let leaf = compute_leaf_hash(r);
        if leaf != r.leaf_hash {
            return Err(Problem::Altered { seq: r.seq });
        }
        if r.prev_hash != self.prev {
            return Err(Problem::ChainBroken { seq: r.seq });
        }
        match &entry.payload {
            Some(body) => {
                let h: Hash = Sha256::digest(body).into();
                if h != r.payload_hash {
                    return Err(Problem::PayloadAltered { seq: r.seq });
                }
                if r.key_id.is_none() {
                    self.read_public(r.seq, &r.kind, body);
                }
            }
            // A pruning record comes after the records it pruned: settled in `finish`.
            None => match self.missing.last_mut() {
                Some((_, end)) if *end == r.seq => *end += 1,
                _ => self.missing.push((r.seq, r.seq + 1)),
            },
        }
        if let Some(k) = &r.key_id
            && !self.keys.contains_key(k)
        {
            self.keys.insert(k.clone(), r.seq);
        }
        self.report.first.get_or_insert(r.seq);
        self.report.records += 1;
        self.frontier.push(leaf);
        self.prev = leaf;
        self.next += 1;
        while self.anchors.front().is_some_and(|(size, _)| *size == self.next) {
            if let Some((size, anchor)) = self.anchors.pop_front() {
                self.check_anchor(size, &anchor)?;
            }
        }
        Ok(())
    }

    /// Public payloads a verifier acts on: pruning horizons and key announcements.
    fn read_public(&mut self, seq: u64, kind: &str, body: &[u8]) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        match kind {
            kind::LEDGER_PRUNE => {
                if let Some(below) = value.get("below").and_then(serde_json::Value::as_u64) {
                    // Pruning may only remove payloads of records before its own announcement.
                    self.prune_below = self.prune_below.max(below.min(seq));
                }
            }
            kind::SUBJECT_ERASE => {
                if let Some(mac) = value.get("subject_mac").and_then(serde_json::Value::as_str) {
                    self.erasures.insert(mac.to_owned(), seq);
                }
            }
            kind::LEDGER_KEY => {
                if let Some(key) = value
                    .get("vkey")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|v| NoteVerifier::parse(v).ok())
                {
                    self.announced.push((seq, key));
                }
            }
            _ => {}
        }
    }

    fn check_anchor(&mut self, size: u64, anchor: &Anchor) -> Result<(), Problem> {
        let (cp, signed_by) = Checkpoint::open(&anchor.note, &self.trusted).map_err(|e| Problem::BadCheckpoint {
            size,
            reason: format!("{}: {e}", anchor.source_name),
        })?;
        let actual = self.frontier.root();
        if cp.root != actual {
            return Err(Problem::RootMismatch {
                size,
                source_name: anchor.source_name.clone(),
                signed: hex::encode(cp.root),
                actual: hex::encode(actual),
            });
        }
        if let Some(cp) = &anchor.stored {
            // The columns are what writers extend and the API serves: they must be what the
            // signed note says, not only the note itself.
            saved_tree(cp).map_err(|reason| Problem::BadCheckpoint {
                size,
                reason: format!("stored: {reason}"),
            })?;
            self.report.checkpoints += 1;
        } else {
            self.report.outside_checkpoints += 1;
        }
        self.report.latest_checkpoint = Some(self.report.latest_checkpoint.map_or(size, |l| l.max(size)));
        for k in signed_by {
            let vkey = k.vkey();
            if !self.report.signed_by.contains(&vkey) {
                self.report.signed_by.push(vkey);
            }
        }
        // Keys announced in records this trusted checkpoint covers are trusted from now on.
        let (now_trusted, pending): (Vec<_>, Vec<_>) = self.announced.drain(..).partition(|(seq, _)| *seq < size);
        self.announced = pending;
        for (_, k) in now_trusted {
            if !self.trusted.contains(&k) {
                self.trusted.push(k);
            }
        }
        Ok(())
    }

    /// The keys the records fed so far were sealed under, to look up in the store for
    /// [`Verifier::check_keys`].
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Holds the subject keys the records were sealed under (`stored`, as the store holds them)
    /// to the ledger: each is live, or was destroyed by an erasure the ledger records after the
    /// first record sealed under it. A key deleted or wiped by hand would make its records
    /// read as erased, with nobody having erased anything. Names the first record affected.
    pub fn check_keys(&mut self, stored: &[SubjectKey]) -> Result<(), Problem> {
        let by_id: HashMap<&str, &SubjectKey> = stored.iter().map(|k| (k.key_id.as_str(), k)).collect();
        let mut uses: Vec<(&String, u64)> = self.keys.iter().map(|(k, seq)| (k, *seq)).collect();
        uses.sort_by_key(|(_, seq)| *seq);
        for (key_id, first) in uses {
            let destroyed = |reason: &str| Problem::KeyDestroyed {
                seq: first,
                key_id: key_id.clone(),
                reason: reason.to_owned(),
            };
            let Some(key) = by_id.get(key_id.as_str()) else {
                return Err(destroyed("is gone from the store"));
            };
            if key.wrapped.is_some() {
                continue;
            }
            let erased_after = key
                .subject_mac
                .as_ref()
                .and_then(|mac| self.erasures.get(mac))
                .is_some_and(|erasure| *erasure > first);
            if !erased_after {
                return Err(destroyed("was destroyed"));
            }
            self.report.erased_keys += 1;
        }
        Ok(())
    }

    /// Ends verification: fails if a checkpoint covers records the ledger no longer holds.
    pub fn finish(mut self) -> Result<Report, Problem> {
        if let Some((size, anchor)) = self.anchors.pop_front() {
            return Err(Problem::Truncated {
                records: self.next,
                size,
                source_name: anchor.source_name,
            });
        }
        for (start, end) in &self.missing {
            if *end > self.prune_below {
                return Err(Problem::PayloadMissing {
                    seq: (*start).max(self.prune_below),
                });
            }
            self.report.pruned_payloads += end - start;
        }
        self.report.unsigned_tail = self.next - self.report.latest_checkpoint.unwrap_or(self.base).min(self.next);
        Ok(self.report)
    }
}

/// The tree size a note states (its second line), without checking anything else.
pub fn note_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// The root a note states (its third line), without checking its signature.
pub(crate) fn note_root(note: &str) -> Option<Hash> {
    use base64::Engine;
    let line = note.lines().nth(2)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(line).ok()?;
    Hash::try_from(bytes.as_slice()).ok()
}

/// A stored checkpoint's own columns held to its note: its size and root are the ones the note
/// states, and its saved frontier (what a writer extends and a verifier resumes from) hashes to
/// that root. Returns the frontier, or why the stored checkpoint cannot be trusted. The note's
/// signature is checked where the note is opened.
pub(crate) fn saved_tree(cp: &StoredCheckpoint) -> Result<Frontier, String> {
    let Some(signed) = note_root(&cp.note) else {
        return Err("its note states no root".to_owned());
    };
    if note_size(&cp.note) != Some(cp.size) {
        return Err(format!("its size column ({}) is not the size its note states", cp.size));
    }
    if cp.root != signed {
        return Err(format!(
            "its root column ({}) is not the root its signed note states ({})",
            hex::encode(cp.root),
            hex::encode(signed)
        ));
    }
    Frontier::from_parts(cp.size, cp.frontier.clone())
        .filter(|f| f.root() == signed)
        .ok_or_else(|| "its saved frontier does not hash to the root its signed note states".to_owned())
}

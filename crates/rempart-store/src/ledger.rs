//! Storage for the audit ledger: the rows `rempart-audit` writes and reads, and the
//! [`LedgerStore`] trait. The store keeps bytes; what they mean (hashing, signing, sealing) is
//! `rempart-audit`'s business, so a store cannot "fix" a record, only keep or lose it, and
//! verification notices either.

use jiff::Timestamp;

use crate::{BoxFuture, Result};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// One ledger record as stored. `seq` is also the record's leaf index in the Merkle tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub seq: u64,
    pub time: Timestamp,
    /// Who caused it: `token:<id>`, `cli:<user>`, `system`, ….
    pub actor: String,
    /// What happened: `token.create`, `alert.raise`, `model.call`, ….
    pub kind: String,
    /// The key that seals the payload (an opaque id, never the data subject's name);
    /// `None` for a public payload stored in clear.
    pub key_id: Option<String>,
    /// SHA-256 of the payload body as stored (ciphertext for a sealed payload).
    pub payload_hash: Hash,
    /// The previous record's leaf hash; zeros for the first record.
    pub prev_hash: Hash,
    /// This record's leaf hash, kept so proofs need not recompute it (verification does).
    pub leaf_hash: Hash,
}

/// A record with its payload body, if the body is still there (retention prunes bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub record: LedgerRecord,
    pub payload: Option<Vec<u8>>,
}

/// A signed checkpoint over the first `size` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub time: Timestamp,
    /// The signed note (C2SP checkpoint text followed by its signature lines).
    pub note: String,
    /// The compact Merkle range at `size` (one hash per set bit of `size`, largest subtree first),
    /// so a restart resumes the tree without reading every leaf.
    pub frontier: Vec<Hash>,
}

/// A data subject's (or a record's) payload key, wrapped under the ledger's master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectKey {
    pub key_id: String,
    /// Keyed MAC of the subject's name: lets the ledger find the key without storing the name.
    pub subject_mac: Option<String>,
    /// The wrapped key; `None` once erased.
    pub wrapped: Option<Vec<u8>>,
    pub created: Timestamp,
    pub erased: Option<Timestamp>,
}

/// One atomic ledger write: new keys, the records in order with their payload bodies, and
/// optionally a checkpoint. The store refuses it with [`StoreError::Conflict`](crate::StoreError)
/// unless its first record directly follows the stored ledger's last one.
#[derive(Debug, Clone, Copy)]
pub struct LedgerAppend<'a> {
    pub keys: &'a [SubjectKey],
    pub entries: &'a [LedgerEntry],
    pub checkpoint: Option<&'a StoredCheckpoint>,
}

/// Storage of the audit ledger.
pub trait LedgerStore: Send + Sync + std::fmt::Debug {
    /// The last record, if any.
    fn ledger_head(&self) -> BoxFuture<'_, Result<Option<LedgerRecord>>>;
    /// Appends atomically, refusing anything but the direct continuation of the stored ledger.
    fn ledger_append<'a>(&'a self, append: LedgerAppend<'a>) -> BoxFuture<'a, Result<()>>;
    /// Stores a checkpoint over records already stored; [`StoreError::Conflict`](crate::StoreError)
    /// if one of that size exists.
    fn ledger_checkpoint<'a>(&'a self, checkpoint: &'a StoredCheckpoint) -> BoxFuture<'a, Result<()>>;
    /// Up to `limit` entries with `seq >= from`, in order of `seq`.
    fn ledger_entries(&self, from: u64, limit: u32) -> BoxFuture<'_, Result<Vec<LedgerEntry>>>;
    /// The stored leaf hashes of records `from..to`, in order.
    fn ledger_leaves(&self, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<Hash>>>;
    /// All checkpoints, smallest first.
    fn ledger_checkpoints(&self) -> BoxFuture<'_, Result<Vec<StoredCheckpoint>>>;
    /// Deletes the payload bodies of records below `seq`; returns how many went.
    fn ledger_prune_payloads(&self, below: u64) -> BoxFuture<'_, Result<u64>>;
    /// The live (not erased) key of the subject with this MAC.
    fn ledger_subject_key<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Option<SubjectKey>>>;
    /// The live keys of several subjects at once (the newest per subject).
    fn ledger_live_keys<'a>(&'a self, subject_macs: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>>;
    /// Every key a subject ever had (erased ones included, without their key material).
    fn ledger_subject_keys<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<SubjectKey>>>;
    /// Keys by id (erased ones included, without their key material).
    fn ledger_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<SubjectKey>>>;
    /// Stores keys created outside a ledger append (the privacy vault's).
    fn ledger_insert_keys<'a>(&'a self, keys: &'a [SubjectKey]) -> BoxFuture<'a, Result<()>>;
    /// Destroys every live key of the subject with this MAC; returns how many.
    fn ledger_erase_subject<'a>(&'a self, subject_mac: &'a str, at: Timestamp) -> BoxFuture<'a, Result<u64>>;
}

/// One pseudonym in the privacy vault: its original, sealed under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    /// The pseudonymization domain.
    pub domain: String,
    /// The pseudonym exactly as it appears in pseudonymized text.
    pub token: String,
    /// Keyed MAC of the subject, to find (and tell apart) whose pseudonym this is.
    pub subject_mac: String,
    pub key_id: String,
    /// The original, sealed.
    pub sealed: Vec<u8>,
    pub created: Timestamp,
}

/// Storage of the privacy vault.
pub trait VaultStore: Send + Sync + std::fmt::Debug {
    /// Stores entries not already there; returns the tokens that already belong to another
    /// subject (a collision the caller must not paper over).
    fn vault_put<'a>(&'a self, entries: &'a [VaultEntry]) -> BoxFuture<'a, Result<Vec<String>>>;
    /// The entries of `tokens` in `domain`.
    fn vault_get<'a>(&'a self, domain: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<Vec<VaultEntry>>>;
    /// Every entry of one subject, in every domain (for a data subject's access request).
    fn vault_subject<'a>(&'a self, subject_mac: &'a str) -> BoxFuture<'a, Result<Vec<VaultEntry>>>;
}

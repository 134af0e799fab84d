//! The ledger service: one writer task orders every append, seals payloads, extends the chain
//! and the Merkle tree, and signs checkpoints; readers open payloads, build proofs and verify.
//!
//! Invariants:
//! - An `append` that returned `Ok` is durable: it was committed, with its chain link, in one
//!   transaction. One that returned `Err` left no trace; a caller must not act on it (fail
//!   closed).
//! - Appends are ordered by one task per process, and the store refuses any write that does not
//!   directly continue the stored ledger, so several processes never fork it or leave a gap:
//!   the loser of a race reloads the head and retries.
//! - Record times never go backwards, whatever the clock does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rempart_model::Clock;
use rempart_store::{
    Hash, LedgerAppend, LedgerEntry, LedgerRecord, LedgerStore, StoreError, StoredCheckpoint, SubjectKey,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::AuditError;
use crate::checkpoint::{Checkpoint, NoteVerifier, Signer};
use crate::merkle::{Frontier, Tree};
use crate::record::{Draft, MAX_LABEL, compute_leaf_hash, kind};
use crate::seal::{self, Key, MasterKey};
use crate::verify::{Anchor, Problem, Report, Verifier, note_root, note_size, saved_tree};

/// How often a batch is retried after another process appended first.
const CONFLICT_RETRIES: u32 = 32;

/// How the ledger checkpoints and where it leaves a copy of its latest checkpoint.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Sign a checkpoint once this many records were appended since the last one.
    pub checkpoint_every: u64,
    /// … or once this much time passed with records not yet under a checkpoint.
    pub checkpoint_interval: Duration,
    /// Files outside the store that always hold the latest signed checkpoint (beside the data,
    /// and on other volumes): a truncated, emptied or rolled-back database no longer matches
    /// them.
    pub witnesses: Vec<PathBuf>,
    /// Most drafts committed in one transaction.
    pub max_batch: usize,
    /// How long a batch made only of records nobody waits for ([`Ledger::record`]) may wait
    /// for more before it is committed: under a steady stream of such records (the gateway's
    /// calls), fewer and larger transactions. A record someone waits for ends the wait at
    /// once; a crash loses at most this much of records that were never acknowledged.
    pub linger: Duration,
    /// Keys this ledger was signed with before (rotated away), trusted when verifying.
    pub retired_keys: Vec<NoteVerifier>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            witnesses: Vec::new(),
            max_batch: 2048,
            linger: Duration::from_millis(5),
            retired_keys: Vec::new(),
        }
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub seq: u64,
    #[serde(with = "hex_hash")]
    pub leaf_hash: Hash,
}

mod hex_hash {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(h: &rempart_store::Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }
}

/// What a reader may see of a payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayloadView {
    /// Stored in clear (key announcements, pruning horizons, erasures).
    Public { payload: serde_json::Value },
    /// Sealed and opened; `record_key` opens this record alone (for an export).
    Sealed {
        payload: serde_json::Value,
        #[serde(skip)]
        record_key: Key,
    },
    /// The subject's key was destroyed: the payload can never be read again.
    Erased,
    /// Removed by retention; the record's hashes remain.
    Pruned,
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

/// Who learns that appended records were committed.
enum Waiter {
    /// A caller waiting for their receipts.
    Caller(Reply<Vec<Receipt>>),
    /// Nobody: a failure is logged by the writer.
    Nobody,
}

enum Command {
    Append(Vec<Draft>, Waiter),
    /// Records an erasure, then destroys the subject's keys, with nothing sealed in between.
    Erase(Draft, String, Reply<u64>),
    Checkpoint(Vec<Signer>, Reply<Option<StoredCheckpoint>>),
    Close(oneshot::Sender<()>),
}

/// A handle on the ledger; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Command>,
    store: Arc<dyn LedgerStore>,
    master: MasterKey,
    origin: String,
    verifier: NoteVerifier,
    retired: Vec<NoteVerifier>,
    /// Erasures done by this ledger, shared with its keyrings.
    erasures: Arc<std::sync::atomic::AtomicU64>,
    writer: Mutex<JoinSet<()>>,
}

impl Ledger {
    /// Opens the ledger in `store`, resuming its chain and tree, and starts the writer.
    pub async fn open(
        store: Arc<dyn LedgerStore>,
        master: MasterKey,
        signer: Signer,
        options: LedgerOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Ledger, AuditError> {
        let state = State::load(store.as_ref(), &signer).await?;
        let mut trusted = vec![signer.verifier()];
        trusted.extend(options.retired_keys.iter().cloned());
        for path in &options.witnesses {
            check_witness(store.as_ref(), &state, &trusted, path).await?;
        }
        let (tx, rx) = mpsc::channel(4096);
        let origin = signer.name().to_owned();
        let verifier = signer.verifier();
        let retired = options.retired_keys.clone();
        let erasures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = Writer {
            store: Arc::clone(&store),
            erasures: Arc::clone(&erasures),
            master: master.clone(),
            signer,
            options,
            clock: Arc::clone(&clock),
            state,
            keys: KeyCache::default(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(writer.run(rx));
        Ok(Ledger {
            inner: Arc::new(Inner {
                tx,
                store,
                master,
                origin,
                verifier,
                retired,
                erasures,
                writer: Mutex::new(tasks),
            }),
        })
    }

    /// A ledger under fresh keys held only in memory, for tests and benchmarks: once dropped,
    /// its sealed payloads can never be opened again.
    pub async fn open_with_fresh_keys(store: Arc<dyn LedgerStore>) -> Result<Ledger, AuditError> {
        Ledger::open(
            store,
            MasterKey::from_secret(&seal::random_key()),
            Signer::generate("rempart/ephemeral")?,
            LedgerOptions::default(),
            Arc::new(rempart_model::SystemClock),
        )
        .await
    }

    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The key that verifies this ledger's checkpoints.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.inner.verifier
    }

    /// Every key a verifier of this ledger should trust: the current and the retired ones.
    pub fn trusted(&self) -> Vec<NoteVerifier> {
        let mut keys = vec![self.inner.verifier.clone()];
        keys.extend(self.inner.retired.iter().cloned());
        keys
    }

    /// The ids of every key the subject ever had (a [`crate::subject_id`]).
    pub async fn subject_key_ids(&self, subject: &str) -> Result<Vec<String>, AuditError> {
        let mac = self.inner.master.subject_mac(subject);
        Ok(self
            .inner
            .store
            .ledger_subject_keys(&mac)
            .await?
            .into_iter()
            .map(|k| k.key_id)
            .collect())
    }

    /// The subject keyring this ledger seals with.
    pub fn keyring(&self) -> crate::Keyring {
        crate::Keyring::new(Arc::clone(&self.inner.store), self.inner.master.clone())
            .with_erasures(Arc::clone(&self.inner.erasures))
    }

    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.inner.store
    }

    /// Appends one record; durable when this returns `Ok`.
    pub async fn append(&self, draft: Draft) -> Result<Receipt, AuditError> {
        let mut receipts = self.append_all(vec![draft]).await?;
        receipts.pop().ok_or(AuditError::Closed)
    }

    /// Queues a record and returns without waiting for it to be committed: for callers that
    /// must not add a commit's latency to their own (the gateway's calls). The writer logs a
    /// failure to commit it. Waits only while the writer's queue is full, so such a caller
    /// still cannot outrun the ledger; records queued before [`Ledger::close`] are committed
    /// before it returns.
    pub async fn record(&self, draft: Draft) -> Result<(), AuditError> {
        check_label("actor", &draft.actor)?;
        check_label("kind", &draft.kind)?;
        self.inner
            .tx
            .send(Command::Append(vec![draft], Waiter::Nobody))
            .await
            .map_err(|_| AuditError::Closed)
    }

    /// Appends records in this order, all or none.
    pub async fn append_all(&self, drafts: Vec<Draft>) -> Result<Vec<Receipt>, AuditError> {
        for d in &drafts {
            check_label("actor", &d.actor)?;
            check_label("kind", &d.kind)?;
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Append(drafts, Waiter::Caller(reply)))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Signs a checkpoint over every record now, unless the latest already covers them all.
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, AuditError> {
        self.checkpoint_with(Vec::new()).await
    }

    async fn checkpoint_with(&self, extra: Vec<Signer>) -> Result<Option<StoredCheckpoint>, AuditError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Checkpoint(extra, reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Signs a last checkpoint and stops the writer; later appends fail.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close(done)).await.is_ok() {
            let _ = rx.await;
        }
        let mut tasks = self.inner.writer.lock().await;
        while tasks.join_next().await.is_some() {}
    }

    /// Announces `next` as the ledger's signing key in a public record, and signs a checkpoint
    /// over it with both the current and the next key, so that whoever trusts the old key
    /// learns to trust the new one. The caller then installs `next` and reopens the ledger.
    pub async fn announce_key(&self, actor: &str, next: &Signer) -> Result<StoredCheckpoint, AuditError> {
        let draft = Draft::new(
            actor,
            kind::LEDGER_KEY,
            serde_json::json!({"vkey": next.verifier().vkey(), "previous": self.inner.verifier.vkey()}),
        )
        .public();
        self.append(draft).await?;
        self.checkpoint_with(vec![next.clone()])
            .await?
            .ok_or_else(|| AuditError::Config("no checkpoint was signed for the key announcement".to_owned()))
    }

    /// Destroys every key of `subject`, after recording that it did (fail closed: no record,
    /// no erasure). Returns how many keys were destroyed. `subject` is a [`crate::subject_id`].
    pub async fn erase_subject(&self, actor: &str, subject: &str) -> Result<u64, AuditError> {
        check_label("actor", actor)?;
        let subject = match subject.split_once(':') {
            Some((kind, value)) => crate::subject_id(kind, value),
            None => subject.to_owned(),
        };
        let mac = self.inner.master.subject_mac(&subject);
        let draft = Draft::new(actor, kind::SUBJECT_ERASE, serde_json::json!({"subject_mac": mac})).public();
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Erase(draft, mac, reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Removes the payload bodies of records older than `before` (their hashes stay), after
    /// recording the horizon in a public record a verifier reads. Returns how many went.
    pub async fn prune_payloads(&self, actor: &str, before: Timestamp) -> Result<u64, AuditError> {
        let below = self.first_seq_at_or_after(before).await?;
        if below == 0 {
            return Ok(0);
        }
        let draft = Draft::new(
            actor,
            kind::LEDGER_PRUNE,
            serde_json::json!({"below": below, "before": before}),
        )
        .public();
        self.append(draft).await?;
        Ok(self.inner.store.ledger_prune_payloads(below).await?)
    }

    /// The first record at or after `t` (records are in time order).
    async fn first_seq_at_or_after(&self, t: Timestamp) -> Result<u64, AuditError> {
        let Some(head) = self.inner.store.ledger_head().await? else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (0u64, head.seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.inner.store.ledger_entries(mid, 1).await?;
            match entry.first() {
                Some(e) if e.record.time < t => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    /// Waits until every record queued through this ledger before the call is committed
    /// (those given to [`Ledger::record`] included): what was recorded is then readable.
    /// A closed ledger has committed everything already.
    pub async fn settle(&self) -> Result<(), AuditError> {
        match self.append_all(Vec::new()).await {
            Ok(_) | Err(AuditError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Records from `from`, at most `limit`: every record queued through this ledger before
    /// the call included (see [`Ledger::settle`]).
    pub async fn entries(&self, from: u64, limit: u32) -> Result<Vec<LedgerEntry>, AuditError> {
        self.settle().await?;
        Ok(self.inner.store.ledger_entries(from, limit).await?)
    }

    /// Reads a payload as far as keys and retention allow.
    pub async fn open_payload(&self, entry: &LedgerEntry) -> Result<PayloadView, AuditError> {
        let r = &entry.record;
        let Some(body) = &entry.payload else {
            return Ok(PayloadView::Pruned);
        };
        let Some(key_id) = &r.key_id else {
            let payload = serde_json::from_slice(body).map_err(|e| AuditError::Unseal {
                what: format!("record {}", r.seq),
                reason: format!("public payload is not JSON: {e}"),
            })?;
            return Ok(PayloadView::Public { payload });
        };
        let keys = self.inner.store.ledger_keys(std::slice::from_ref(key_id)).await?;
        let Some(wrapped) = keys.into_iter().find(|k| &k.key_id == key_id).and_then(|k| k.wrapped) else {
            return Ok(PayloadView::Erased);
        };
        let subject_key = self.inner.master.unwrap(&wrapped, key_id)?;
        let record_key = seal::record_key(&subject_key, r.seq);
        let clear = seal::open(&record_key, r.seq, &r.kind, body).ok_or_else(|| AuditError::Unseal {
            what: format!("record {}", r.seq),
            reason: "the payload does not open under its key (altered)".to_owned(),
        })?;
        let payload = serde_json::from_slice(&clear).map_err(|e| AuditError::Unseal {
            what: format!("record {}", r.seq),
            reason: format!("payload is not JSON: {e}"),
        })?;
        Ok(PayloadView::Sealed { payload, record_key })
    }

    /// All stored checkpoints, smallest first; an error if a stored checkpoint's own columns
    /// (size, root, saved tree) are not what its note states, so that nobody is served a root
    /// beside a signed note that disagrees with it.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, AuditError> {
        let stored = self.inner.store.ledger_checkpoints().await?;
        for cp in &stored {
            saved_tree(cp).map_err(|reason| {
                AuditError::Corrupt(format!(
                    "stored checkpoint {}: {reason} (run `rempart audit verify`)",
                    cp.size
                ))
            })?;
        }
        Ok(stored)
    }

    /// The inclusion proof of record `seq` in the tree of the first `size` records.
    pub async fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        let tree = self.tree(size).await?;
        let index = usize::try_from(seq).map_err(|_| AuditError::NoSuchRecord(seq))?;
        tree.inclusion_proof(index, tree.len())
            .ok_or(AuditError::NoSuchRecord(seq))
    }

    /// The consistency proof between the trees of the first `old` and `new` records.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        let tree = self.tree(new).await?;
        let m = usize::try_from(old).map_err(|_| AuditError::NoSuchRecord(old))?;
        tree.consistency_proof(m, tree.len())
            .ok_or_else(|| AuditError::Config(format!("no consistency proof from size {old} to size {new}")))
    }

    /// The tree over the first `size` records.
    pub(crate) async fn tree(&self, size: u64) -> Result<Tree, AuditError> {
        let leaves = self.inner.store.ledger_leaves(0, size).await?;
        if (leaves.len() as u64) < size {
            return Err(AuditError::NoSuchRecord(size.saturating_sub(1)));
        }
        Ok(Tree::new(leaves))
    }

    /// Verifies the ledger from the start (or from the last checkpoint at or before `from`)
    /// to its end, against its stored checkpoints and the `outside` ones. `Ok(Err(problem))`
    /// is a ledger that fails verification; `Err` is a ledger that could not be read.
    pub async fn verify(
        store: &Arc<dyn LedgerStore>,
        trusted: Vec<NoteVerifier>,
        outside: Vec<Anchor>,
        from: Option<u64>,
    ) -> Result<Result<Report, Problem>, AuditError> {
        const PAGE: u32 = 8192;
        let stored = store.ledger_checkpoints().await?;
        let mut anchors: Vec<Anchor> = stored.iter().map(Anchor::from).collect();
        anchors.extend(outside);
        let start = from.and_then(|f| stored.iter().rev().find(|cp| cp.size <= f));
        let verifier = match start {
            Some(cp) => {
                // Resume from a checkpoint: its signature and its saved frontier must agree.
                let (signed, _) = match Checkpoint::open(&cp.note, &trusted) {
                    Ok(opened) => opened,
                    Err(e) => {
                        return Ok(Err(Problem::BadCheckpoint {
                            size: cp.size,
                            reason: e.to_string(),
                        }));
                    }
                };
                // The note was opened: its root is the one `saved_tree` holds the columns to.
                debug_assert_eq!(note_root(&cp.note), Some(signed.root));
                let frontier = match saved_tree(cp) {
                    Ok(f) => f,
                    Err(reason) => return Ok(Err(Problem::BadCheckpoint { size: cp.size, reason })),
                };
                let prev = store
                    .ledger_leaves(cp.size - 1, cp.size)
                    .await?
                    .pop()
                    .unwrap_or([0; 32]);
                Verifier::resume(trusted, anchors, frontier, prev)
            }
            None => Verifier::new(trusted, anchors),
        };
        let mut verifier = match verifier {
            Ok(v) => v,
            Err(p) => return Ok(Err(p)),
        };
        // Read up to the head as it was after the checkpoints were read, so that no checkpoint
        // covers more than what is read. Reading dominates (the SQLite driver's per-row cost;
        // hashing is a tenth of it), and reading pages concurrently measured no faster on two
        // cores, so pages are read one after the other.
        let end = store.ledger_head().await?.map_or(0, |h| h.seq + 1);
        let mut next = start.map_or(0, |cp| cp.size);
        while next < end {
            let page = match store.ledger_entries(next, PAGE).await {
                Ok(page) => page,
                Err(StoreError::Corrupt { id, reason }) => return Ok(Err(Problem::Unreadable { record: id, reason })),
                Err(e) => return Err(e.into()),
            };
            let Some(last) = page.last() else { break };
            next = last.record.seq + 1;
            for entry in page.iter().take_while(|e| e.record.seq < end) {
                if let Err(p) = verifier.feed(entry) {
                    return Ok(Err(p));
                }
            }
        }
        const KEYS: usize = 512;
        let mut keys = Vec::new();
        for ids in verifier.key_ids().chunks(KEYS) {
            keys.extend(store.ledger_keys(ids).await?);
        }
        if let Err(p) = verifier.check_keys(&keys) {
            return Ok(Err(p));
        }
        Ok(verifier.finish())
    }
}

fn check_label(what: &str, s: &str) -> Result<(), AuditError> {
    if s.is_empty() || s.len() > MAX_LABEL {
        return Err(AuditError::Config(format!(
            "record {what} must be 1 to {MAX_LABEL} bytes, not {}",
            s.len()
        )));
    }
    Ok(())
}

/// Where the chain and the tree stand.
#[derive(Debug, Clone)]
struct State {
    next: u64,
    prev: Hash,
    last_time: Timestamp,
    frontier: Frontier,
    checkpointed: u64,
}

impl State {
    async fn load(store: &dyn LedgerStore, signer: &Signer) -> Result<State, AuditError> {
        // The checkpoints first, then the head: a checkpoint only covers records already
        // stored, so a head read after it holds them all, even while another process appends
        // and checkpoints in between (read the other way round, its new checkpoint could cover
        // records past the head read before it, and look like records removed).
        let checkpoints = store.ledger_checkpoints().await?;
        let head = store.ledger_head().await?;
        let mut frontier = Frontier::new();
        if let Some(cp) = checkpoints.last() {
            // The saved frontier must hash to the root the checkpoint signed, or the tree we
            // would extend is not the one that was signed.
            frontier = saved_tree(cp).map_err(|reason| {
                AuditError::Corrupt(format!(
                    "stored checkpoint {}: {reason} (run `rempart audit verify`)",
                    cp.size
                ))
            })?;
        }
        let end = head.as_ref().map_or(0, |h| h.seq + 1);
        if end < frontier.size() {
            return Err(AuditError::Corrupt(format!(
                "the ledger holds {end} records but its checkpoint covers {}: records were removed (run `rempart audit verify`)",
                frontier.size()
            )));
        }
        for leaf in store.ledger_leaves(frontier.size(), end).await? {
            frontier.push(leaf);
        }
        if frontier.size() != end {
            return Err(AuditError::Corrupt(format!(
                "records are missing below {end} (run `rempart audit verify`)"
            )));
        }
        tracing::debug!(records = end, key = %signer.verifier().vkey(), "ledger opened");
        Ok(State {
            next: end,
            prev: head.as_ref().map_or([0; 32], |h| h.leaf_hash),
            last_time: head.as_ref().map_or(Timestamp::UNIX_EPOCH, |h| h.time),
            frontier,
            checkpointed: checkpoints.last().map_or(0, |cp| cp.size),
        })
    }
}

/// Holds the store against one witness, before anything is appended: the witness's signed
/// checkpoint must be one the store's history passes through (same size or smaller, same root).
/// A store shorter than the witness was rolled back, emptied or replaced; a different root
/// means history was rewritten. Either way the ledger refuses to open, so that no writer
/// extends the wrong history and then overwrites the evidence with a checkpoint of its own.
async fn check_witness(
    store: &dyn LedgerStore,
    state: &State,
    trusted: &[NoteVerifier],
    path: &std::path::Path,
) -> Result<(), AuditError> {
    let note = match std::fs::read_to_string(path) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(AuditError::Corrupt(format!(
                "cannot read the witness `{}`: {e}",
                path.display()
            )));
        }
    };
    let refuse = |why: String| {
        AuditError::Corrupt(format!(
            "{why}. The ledger was not opened and nothing was written. Keep the witness `{}`: it is              evidence (`rempart audit verify --checkpoint` holds the store against a copy of it). If              the store was restored from a backup on purpose, move the witness away before starting              again, and say so in the incident record",
            path.display()
        ))
    };
    let (witness, _) = Checkpoint::open(&note, trusted).map_err(|e| {
        refuse(format!(
            "the witness `{}` is not a checkpoint signed by this ledger's keys ({e})",
            path.display()
        ))
    })?;
    let end = state.frontier.size();
    if witness.size > end {
        return Err(refuse(format!(
            "the ledger holds {end} records but its witness `{}` holds a signed checkpoint of {}:              the database was rolled back, emptied or replaced",
            path.display(),
            witness.size
        )));
    }
    if root_at(store, state, witness.size).await? != witness.root {
        return Err(refuse(format!(
            "the ledger's first {} records do not hash to the root its witness `{}` signed:              history was rewritten",
            witness.size,
            path.display()
        )));
    }
    Ok(())
}

/// The Merkle root of the ledger's first `size` records (at most the ledger's size): from the
/// nearest stored checkpoint at or below it whose saved tree matches its signed root, then the
/// leaves after it.
async fn root_at(store: &dyn LedgerStore, state: &State, size: u64) -> Result<Hash, AuditError> {
    if size == state.frontier.size() {
        return Ok(state.frontier.root());
    }
    let checkpoints = store.ledger_checkpoints().await?;
    let mut frontier = checkpoints
        .iter()
        .rev()
        .filter(|cp| cp.size <= size)
        .find_map(|cp| saved_tree(cp).ok())
        .unwrap_or_else(Frontier::new);
    for leaf in store.ledger_leaves(frontier.size(), size).await? {
        frontier.push(leaf);
    }
    if frontier.size() != size {
        return Err(AuditError::Corrupt(format!(
            "records are missing below {size} (run `rempart audit verify`)"
        )));
    }
    Ok(frontier.root())
}

struct Writer {
    store: Arc<dyn LedgerStore>,
    erasures: Arc<std::sync::atomic::AtomicU64>,
    master: MasterKey,
    signer: Signer,
    options: LedgerOptions,
    clock: Arc<dyn Clock>,
    state: State,
    keys: KeyCache,
}

/// Subject keys the writer sealed with recently, so a busy subject costs no store read per
/// batch. Only for sealing: reading a payload always asks the store, so an erased key opens
/// nothing. An erasure in this process evicts at once; one in another process is seen within
/// [`KEY_CACHE_TTL`] (records sealed meanwhile under the erased key are unreadable too).
#[derive(Debug, Default)]
struct KeyCache {
    entries: std::collections::HashMap<String, (String, Key, std::time::Instant)>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
const KEY_CACHE_MAX: usize = 65_536;

impl KeyCache {
    fn get(&self, mac: &str) -> Option<(String, Key)> {
        self.entries
            .get(mac)
            .filter(|(_, _, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(id, key, _)| (id.clone(), *key))
    }

    fn put(&mut self, mac: String, key_id: String, key: Key) {
        if self.entries.len() >= KEY_CACHE_MAX {
            self.entries.clear();
        }
        self.entries.insert(mac, (key_id, key, std::time::Instant::now()));
    }
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let period = self.options.checkpoint_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let command = tokio::select! {
                c = rx.recv() => c,
                _ = tick.tick() => {
                    if self.state.frontier.size() > self.state.checkpointed
                        && let Err(e) = self.checkpoint_now(&[]).await
                    {
                        tracing::error!(error = %e, "periodic ledger checkpoint failed");
                    }
                    continue;
                }
            };
            match command {
                None => break,
                Some(Command::Append(drafts, waiter)) => {
                    let mut batch = vec![(drafts, waiter)];
                    let held = self.gather(&mut rx, &mut batch).await;
                    self.append_batch(batch).await;
                    match held {
                        Some(Command::Checkpoint(extra, reply)) => {
                            let _ = reply.send(self.checkpoint_now(&extra).await);
                        }
                        Some(Command::Close(done)) => {
                            self.close().await;
                            let _ = done.send(());
                            break;
                        }
                        Some(Command::Erase(draft, mac, reply)) => {
                            let _ = reply.send(self.erase(draft, &mac).await);
                        }
                        _ => {}
                    }
                }
                Some(Command::Checkpoint(extra, reply)) => {
                    let _ = reply.send(self.checkpoint_now(&extra).await);
                }
                Some(Command::Erase(draft, mac, reply)) => {
                    let _ = reply.send(self.erase(draft, &mac).await);
                }
                Some(Command::Close(done)) => {
                    self.close().await;
                    let _ = done.send(());
                    break;
                }
            }
        }
    }

    async fn erase(&mut self, draft: Draft, mac: &str) -> Result<u64, AuditError> {
        self.keys.entries.remove(mac);
        let (reply, rx) = oneshot::channel();
        self.append_batch(vec![(vec![draft], Waiter::Caller(reply))]).await;
        rx.await.map_err(|_| AuditError::Closed)??;
        // The erasure record itself is public, so it did not put the key back in the cache.
        let erased = self.store.ledger_erase_subject(mac, self.clock.now()).await?;
        self.erasures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(erased)
    }

    async fn close(&mut self) {
        if self.state.frontier.size() > self.state.checkpointed
            && let Err(e) = self.checkpoint_now(&[]).await
        {
            tracing::error!(error = %e, "final ledger checkpoint failed");
        }
    }

    /// Group commit: adds to `batch` whatever else is queued, up to the batch limit. While
    /// every record gathered is one nobody waits for, it waits up to [`LedgerOptions::linger`]
    /// after the first for more. Returns a command other than an append met on the way.
    async fn gather(&self, rx: &mut mpsc::Receiver<Command>, batch: &mut Vec<(Vec<Draft>, Waiter)>) -> Option<Command> {
        let deadline = tokio::time::Instant::now() + self.options.linger;
        let mut count: usize = batch.iter().map(|(d, _)| d.len()).sum();
        let mut unwaited = batch.iter().all(|(_, w)| matches!(w, Waiter::Nobody));
        while count < self.options.max_batch {
            let command = match rx.try_recv() {
                Ok(c) => c,
                Err(mpsc::error::TryRecvError::Empty) if unwaited && !self.options.linger.is_zero() => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(c)) => c,
                        Ok(None) | Err(_) => break,
                    }
                }
                Err(_) => break,
            };
            match command {
                Command::Append(d, w) => {
                    count += d.len();
                    unwaited &= matches!(w, Waiter::Nobody);
                    batch.push((d, w));
                }
                other => return Some(other),
            }
        }
        None
    }

    async fn append_batch(&mut self, batch: Vec<(Vec<Draft>, Waiter)>) {
        let drafts: Vec<&Draft> = batch.iter().flat_map(|(d, _)| d).collect();
        if drafts.is_empty() {
            // Only callers settling: everything queued before them is committed by now.
            for (_, waiter) in batch {
                if let Waiter::Caller(reply) = waiter {
                    let _ = reply.send(Ok(Vec::new()));
                }
            }
            return;
        }
        let mut result = self.commit(&drafts).await;
        let mut attempt = 0u32;
        while let Err(AuditError::Store(StoreError::Conflict(reason))) = &result
            && attempt < CONFLICT_RETRIES
        {
            // Another process appended first: resume from what it wrote and try again.
            tracing::debug!(%reason, "ledger moved on under us; reloading its head");
            attempt += 1;
            tokio::time::sleep(Duration::from_micros(u64::from(attempt) * 500)).await;
            result = match State::load(self.store.as_ref(), &self.signer).await {
                Ok(state) => {
                    self.state = state;
                    self.commit(&drafts).await
                }
                Err(e) => Err(e),
            };
        }
        match result {
            Ok(receipts) => {
                let mut receipts = receipts.into_iter();
                for (d, waiter) in batch {
                    let mine: Vec<Receipt> = receipts.by_ref().take(d.len()).collect();
                    if let Waiter::Caller(reply) = waiter {
                        let _ = reply.send(Ok(mine));
                    }
                }
            }
            Err(e) => {
                let unacknowledged = batch
                    .iter()
                    .filter(|(_, w)| matches!(w, Waiter::Nobody))
                    .map(|(d, _)| d.len())
                    .sum::<usize>();
                tracing::error!(error = %e, records = drafts.len(), unacknowledged, "ledger append failed; nothing was recorded");
                let message = e.to_string();
                for (_, waiter) in batch {
                    if let Waiter::Caller(reply) = waiter {
                        let _ = reply.send(Err(AuditError::AppendFailed(message.clone())));
                    }
                }
            }
        }
    }

    /// Seals, chains and commits `drafts` (with a checkpoint when one is due). On failure the
    /// in-memory state is left as it was.
    async fn commit(&mut self, drafts: &[&Draft]) -> Result<Vec<Receipt>, AuditError> {
        let mut state = self.state.clone();
        let mut new_keys: Vec<SubjectKey> = Vec::new();
        let mut keys: Vec<(String, String, Key)> = Vec::new(); // (mac, key id, key)
        let mut entries = Vec::with_capacity(drafts.len());
        let mut receipts = Vec::with_capacity(drafts.len());
        for d in drafts {
            let now = self.clock.now();
            let time = if now > state.last_time { now } else { state.last_time };
            let seq = state.next;
            let plain = &d.payload;
            let (key_id, body) = if d.public {
                (None, plain.clone())
            } else {
                let subject = match &d.subject {
                    Some(s) => s.clone(),
                    None => format!("@ledger/{}", time.strftime("%Y-%m")),
                };
                let mac = self.master.subject_mac(&subject);
                let (key_id, key) = match keys.iter().find(|(m, _, _)| *m == mac) {
                    Some((_, id, k)) => (id.clone(), *k),
                    None => {
                        let (id, k) = match self.keys.get(&mac) {
                            Some(cached) => cached,
                            None => self.subject_key(&mac, time, &mut new_keys).await?,
                        };
                        keys.push((mac, id.clone(), k));
                        (id, k)
                    }
                };
                let body = seal::seal(&seal::record_key(&key, seq), seq, &d.kind, plain);
                (Some(key_id), body)
            };
            let mut record = LedgerRecord {
                seq,
                time,
                actor: d.actor.clone(),
                kind: d.kind.clone(),
                key_id,
                payload_hash: Sha256::digest(&body).into(),
                prev_hash: state.prev,
                leaf_hash: [0; 32],
            };
            record.leaf_hash = compute_leaf_hash(&record);
            state.frontier.push(record.leaf_hash);
            state.prev = record.leaf_hash;
            state.next += 1;
            state.last_time = time;
            receipts.push(Receipt {
                seq,
                leaf_hash: record.leaf_hash,
            });
            entries.push(LedgerEntry {
                record,
                payload: Some(body),
            });
        }
        let checkpoint = (state.frontier.size() - state.checkpointed >= self.options.checkpoint_every)
            .then(|| self.sign(&state, &[]));
        self.store
            .ledger_append(LedgerAppend {
                keys: &new_keys,
                entries: &entries,
                checkpoint: checkpoint.as_ref(),
            })
            .await?;
        if let Some(cp) = &checkpoint {
            state.checkpointed = cp.size;
            self.write_witness(cp);
        }
        self.state = state;
        // Committed: every key used (new ones included) may now be reused from memory.
        for (mac, key_id, key) in keys {
            self.keys.put(mac, key_id, key);
        }
        Ok(receipts)
    }

    /// The live key of a subject, or a new one (stored with the records that first use it).
    async fn subject_key(
        &self,
        mac: &str,
        now: Timestamp,
        new_keys: &mut Vec<SubjectKey>,
    ) -> Result<(String, Key), AuditError> {
        if let Some(stored) = self.store.ledger_subject_key(mac).await?
            && let Some(wrapped) = &stored.wrapped
        {
            let key = self.master.unwrap(wrapped, &stored.key_id)?;
            return Ok((stored.key_id, key));
        }
        let key = seal::random_key();
        let key_id = uuid::Uuid::now_v7().simple().to_string();
        new_keys.push(SubjectKey {
            wrapped: Some(self.master.wrap(&key, &key_id)),
            key_id: key_id.clone(),
            subject_mac: Some(mac.to_owned()),
            created: now,
            erased: None,
        });
        Ok((key_id, key))
    }

    fn sign(&self, state: &State, extra: &[Signer]) -> StoredCheckpoint {
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: state.frontier.size(),
            root: state.frontier.root(),
            time: state.last_time,
        };
        let mut signers = vec![&self.signer];
        signers.extend(extra);
        StoredCheckpoint {
            size: checkpoint.size,
            root: checkpoint.root,
            time: checkpoint.time,
            note: checkpoint.sign(&signers),
            frontier: state.frontier.nodes().to_vec(),
        }
    }

    async fn checkpoint_now(&mut self, extra: &[Signer]) -> Result<Option<StoredCheckpoint>, AuditError> {
        if self.state.frontier.size() == self.state.checkpointed || self.state.frontier.size() == 0 {
            return Ok(None);
        }
        let cp = self.sign(&self.state, extra);
        let result = self.store.ledger_checkpoint(&cp).await;
        match result {
            Ok(()) => {
                self.state.checkpointed = cp.size;
                self.write_witness(&cp);
                Ok(Some(cp))
            }
            Err(StoreError::Conflict(_)) => {
                // Someone else signed this size already (another process): take theirs.
                self.state = State::load(self.store.as_ref(), &self.signer).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn write_witness(&self, cp: &StoredCheckpoint) {
        for path in &self.options.witnesses {
            // Only ever replaced by a later checkpoint of the same history (this ledger checked
            // the witness when it opened and has only appended since): another process of a
            // cluster that signed a later one first keeps its copy.
            let held = std::fs::read_to_string(path).ok().and_then(|n| note_size(&n));
            if held.is_some_and(|size| size > cp.size) {
                continue;
            }
            // A name of this process's own: processes of a cluster sharing the file never
            // write into each other's half-written copy.
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            let written = write_private(&tmp, cp.note.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "cannot write the ledger's witness checkpoint");
            }
        }
    }
}

/// Writes `content` to `path`, replacing it, readable by its owner only whatever the umask.
fn write_private(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content)
}

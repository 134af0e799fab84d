//! The keyring of data subjects, shared by the ledger (sealed payloads) and the privacy vault
//! (pseudonym originals): one key per subject, wrapped under the master key, found by a keyed
//! MAC of the subject's name. Destroying a subject's keys (erasure) makes everything sealed for
//! it unreadable, wherever it is.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use rempart_store::{LedgerStore, SubjectKey};

use crate::AuditError;
use crate::seal::{self, Key, MasterKey};

/// Subject keys: looked up, created, opened.
#[derive(Debug, Clone)]
pub struct Keyring {
    store: Arc<dyn LedgerStore>,
    master: MasterKey,
    erasures: Arc<std::sync::atomic::AtomicU64>,
}

impl Keyring {
    pub fn new(store: Arc<dyn LedgerStore>, master: MasterKey) -> Self {
        Keyring {
            store,
            master,
            erasures: Arc::default(),
        }
    }

    /// Shares the erasure counter of the ledger that destroys keys.
    pub fn with_erasures(mut self, erasures: Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.erasures = erasures;
        self
    }

    /// How many erasures this process has done through the ledger sharing this keyring: a
    /// cache of live keys is stale once it changes.
    pub fn erasures(&self) -> u64 {
        self.erasures.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A secret for another purpose, derived from the master key (pseudonym domains use it).
    pub fn derive_secret(&self, label: &str) -> Key {
        self.master.derive_secret(label)
    }

    pub fn subject_mac(&self, subject: &str) -> String {
        self.master.subject_mac(subject)
    }

    /// The live key of each subject, creating (and storing) the missing ones; keyed by subject.
    pub async fn keys_for(
        &self,
        subjects: &[&str],
        now: Timestamp,
    ) -> Result<HashMap<String, (String, Key)>, AuditError> {
        let mut by_mac: HashMap<String, &str> = HashMap::with_capacity(subjects.len());
        for subject in subjects {
            by_mac.entry(self.master.subject_mac(subject)).or_insert(subject);
        }
        let macs: Vec<String> = by_mac.keys().cloned().collect();
        let mut out = HashMap::with_capacity(by_mac.len());
        for stored in self.store.ledger_live_keys(&macs).await? {
            let (Some(mac), Some(wrapped)) = (&stored.subject_mac, &stored.wrapped) else {
                continue;
            };
            if let Some(subject) = by_mac.get(mac) {
                let key = self.master.unwrap(wrapped, &stored.key_id)?;
                out.insert((*subject).to_owned(), (stored.key_id.clone(), key));
            }
        }
        let mut created = Vec::new();
        for (mac, subject) in &by_mac {
            if out.contains_key(*subject) {
                continue;
            }
            let key = seal::random_key();
            let key_id = uuid::Uuid::now_v7().simple().to_string();
            created.push(SubjectKey {
                wrapped: Some(self.master.wrap(&key, &key_id)),
                key_id: key_id.clone(),
                subject_mac: Some(mac.clone()),
                created: now,
                erased: None,
            });
            out.insert((*subject).to_owned(), (key_id, key));
        }
        if !created.is_empty() {
            self.store.ledger_insert_keys(&created).await?;
        }
        Ok(out)
    }

    /// Opens keys by id; an erased (or unknown) key is absent from the answer.
    pub async fn open(&self, key_ids: &[String]) -> Result<HashMap<String, Key>, AuditError> {
        let mut out = HashMap::new();
        for k in self.store.ledger_keys(key_ids).await? {
            if let Some(wrapped) = &k.wrapped {
                out.insert(k.key_id.clone(), self.master.unwrap(wrapped, &k.key_id)?);
            }
        }
        Ok(out)
    }
}

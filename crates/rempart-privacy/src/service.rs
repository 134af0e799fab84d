//! The privacy engine as one service for the CLI and the API: recognizers compiled once, a
//! redactor per pseudonymization domain, the vault, and the data-subject requests, each
//! recorded in the audit ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rempart_audit::{Draft, Keyring, Ledger, PayloadView, kind};
use rempart_store::{ErasureStore, SweepReport, VaultStore};
use serde::Serialize;
use serde_json::{Value, json};

use crate::PrivacyError;
use crate::erase::Eraser;
use crate::recognize::{Entity, RecognizerConfig, Recognizers};
use crate::redact::{Domain, Redactor};
use crate::vault::Vault;

/// Longest pseudonymization domain name.
const MAX_DOMAIN: usize = 128;

/// Recognizers, redactors per domain, and the vault.
#[derive(Debug)]
pub struct Privacy {
    recognizers: Arc<Recognizers>,
    secret: [u8; 32],
    epoch: u32,
    domain_epochs: std::collections::BTreeMap<String, u32>,
    vault: Vault,
    redactors: Mutex<HashMap<String, Arc<Redactor>>>,
}

impl Privacy {
    /// From the `[privacy]` configuration and the instance's keyring.
    pub fn new(
        config: &rempart_config::Privacy,
        keyring: Keyring,
        store: Arc<dyn VaultStore>,
    ) -> Result<Self, PrivacyError> {
        let disabled = config
            .disabled
            .iter()
            .map(|d| {
                Entity::from_prefix(d)
                    .filter(|e| *e != Entity::Secret)
                    .ok_or_else(|| PrivacyError::Config(format!("`{d}` is not an entity type that can be disabled")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entity = |name: &str| {
            Entity::from_prefix(name).ok_or_else(|| PrivacyError::Config(format!("`{name}` is not an entity type")))
        };
        let fields = config
            .fields
            .iter()
            .map(|(f, e)| Ok((f.clone(), entity(e)?)))
            .collect::<Result<Vec<_>, PrivacyError>>()?;
        let recognizers = Recognizers::new(&RecognizerConfig {
            internal_suffixes: config.internal_suffixes.clone(),
            allow: config.allow.clone(),
            disabled,
            fields,
            skip_fields: config.skip_fields.clone(),
        })?;
        Ok(Privacy {
            recognizers: Arc::new(recognizers),
            secret: keyring.derive_secret("pseudonym domains"),
            epoch: config.key_epoch,
            domain_epochs: config.domain_epochs.clone(),
            vault: Vault::new(store, keyring),
            redactors: Mutex::default(),
        })
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The redactor of a pseudonymization domain (`[A-Za-z0-9._:-]`, at most 128 bytes).
    pub fn redactor(&self, domain: &str) -> Result<Arc<Redactor>, PrivacyError> {
        if domain.is_empty()
            || domain.len() > MAX_DOMAIN
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        {
            return Err(PrivacyError::BadRequest(format!(
                "`{domain}` is not a domain name (1 to {MAX_DOMAIN} letters, digits, `.`, `_`, `:` or `-`)"
            )));
        }
        let mut cache = self.redactors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = cache.get(domain) {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(Redactor::new(
            Arc::clone(&self.recognizers),
            Domain::derive(
                &self.secret,
                domain,
                self.domain_epochs.get(domain).copied().unwrap_or(self.epoch),
            ),
        ));
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(domain.to_owned(), Arc::clone(&r));
        Ok(r)
    }

    /// Everything kept about a subject (GDPR Art. 15): its pseudonyms in every domain, the
    /// ledger records sealed for it (readable while it is not erased), and where the store
    /// holds it in clear (rows by table, with their ids). Recorded first.
    pub async fn subject_report(
        &self,
        ledger: &Ledger,
        store: &dyn ErasureStore,
        actor: &str,
        subject: &str,
    ) -> Result<Value, PrivacyError> {
        let subject = subject_of(subject)?;
        let keyring = ledger.keyring();
        ledger
            .append(Draft::new(
                actor,
                kind::PRIVACY_EXPORT,
                json!({"subject_mac": keyring.subject_mac(&subject)}),
            ))
            .await?;
        let pseudonyms = self.vault.subject_records(&subject).await?;
        let tuning = tuning_holding(ledger, &keyring.subject_mac(&subject)).await?;
        let key_ids = ledger.subject_key_ids(&subject).await?;
        let mut records = Vec::new();
        let mut from = 0;
        loop {
            let page = ledger.entries(from, 8192).await?;
            let Some(last) = page.last() else { break };
            from = last.record.seq + 1;
            for e in page
                .iter()
                .filter(|e| e.record.key_id.as_ref().is_some_and(|k| key_ids.contains(k)))
            {
                let payload = match ledger.open_payload(e).await? {
                    PayloadView::Sealed { payload, .. } | PayloadView::Public { payload } => Some(payload),
                    PayloadView::Erased | PayloadView::Pruned => None,
                };
                records.push(json!({"seq": e.record.seq, "time": e.record.time, "kind": e.record.kind, "actor": e.record.actor, "payload": payload}));
            }
        }
        let spellings: Vec<String> = pseudonyms.iter().filter_map(|p| p.original.clone()).collect();
        let stored = match Eraser::new(&subject, &spellings) {
            Ok(eraser) => {
                let rewrite = |s: &mut String| eraser.rewrite(s);
                serde_json::to_value(store.sweep(&eraser.sweep(&rewrite, true)).await?)
                    .map_err(|e| PrivacyError::Config(e.to_string()))?
            }
            Err(e) => json!({"not_searched": e.to_string()}),
        };
        Ok(
            json!({"subject": subject, "pseudonyms": pseudonyms, "ledger_records": records, "stored": stored, "tuning": tuning}),
        )
    }

    /// Prepares the erasure of `subject` (`user:alice`, `ip:10.0.0.5`): what it is called,
    /// read from the vault while its key still exists, and how to find it in stored text.
    pub async fn eraser(&self, subject: &str) -> Result<Eraser, PrivacyError> {
        let subject = subject_of(subject)?;
        let spellings: Vec<String> = self
            .vault
            .subject_records(&subject)
            .await?
            .into_iter()
            .filter_map(|r| r.original)
            .collect();
        Eraser::new(&subject, &spellings)
    }

    /// Erases a data subject (GDPR Art. 17): rewrites its originals wherever the store keeps
    /// them in clear, destroys its keys (its pseudonyms and sealed ledger payloads become
    /// irreversible), sweeps once more for what arrived meanwhile, and records what was done
    /// (counts, never values) in a public ledger record. If it stops half-way, running it again
    /// finishes it: the sweep comes before the keys go, so the vault still knows the spellings.
    pub async fn erase(
        &self,
        ledger: &Ledger,
        store: &dyn ErasureStore,
        actor: &str,
        eraser: &Eraser,
    ) -> Result<Erasure, PrivacyError> {
        // The erasure epoch is odd while the store is rewritten: processes of a cluster that
        // keep in memory what the store also holds save none of it meanwhile, and load it
        // again, rewritten, once the epoch has moved on.
        let tuning = tuning_holding(ledger, &ledger.keyring().subject_mac(eraser.subject())).await?;
        store.erasure_advance().await?;
        let erased = self.erase_between(ledger, store, actor, eraser).await;
        store.erasure_advance().await?;
        let (swept, keys_destroyed) = erased?;
        let mac = ledger.keyring().subject_mac(eraser.subject());
        ledger
            .append(
                Draft::new(
                    actor,
                    kind::PRIVACY_SWEEP,
                    json!({"subject_mac": mac, "rows": swept.rows, "occurrences": swept.occurrences, "purged": swept.purged}),
                )
                .public(),
            )
            .await?;
        Ok(Erasure {
            subject: eraser.subject().to_owned(),
            keys_destroyed,
            replaced_by: eraser.marker(),
            stored: swept,
            tuning,
        })
    }
}

impl Privacy {
    /// The erasure proper, between the epoch's two advances: the sweep, the keys, the sweep
    /// again for what arrived meanwhile.
    async fn erase_between(
        &self,
        ledger: &Ledger,
        store: &dyn ErasureStore,
        actor: &str,
        eraser: &Eraser,
    ) -> Result<(SweepReport, u64), PrivacyError> {
        let rewrite = |s: &mut String| eraser.rewrite(s);
        let mut swept = store.sweep(&eraser.sweep(&rewrite, false)).await?;
        let keys_destroyed = ledger.erase_subject(actor, eraser.subject()).await?;
        let late = store.sweep(&eraser.sweep(&rewrite, false)).await?;
        merge(&mut swept, late);
        Ok((swept, keys_destroyed))
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    pub subject: String,
    pub keys_destroyed: u64,
    /// What now stands for the subject in stored telemetry.
    pub replaced_by: String,
    /// The rows rewritten, by table.
    pub stored: SweepReport,
    /// The tuning data sets that hold the subject's pseudonyms, with the jobs and runs made
    /// from them. Their pseudonyms of the subject can no longer be revealed (its keys are
    /// destroyed); a model tuned on them never saw the subject's values. Prepare and train
    /// again to leave not even the pseudonyms (`docs/tuning.md`).
    pub tuning: Vec<Value>,
}

/// The tuning data sets (`tuning.dataset` records) holding the subject whose keyed digest is
/// `mac`, each with the uploads, jobs, runs and adapters made from it.
async fn tuning_holding(ledger: &Ledger, mac: &str) -> Result<Vec<Value>, PrivacyError> {
    let mut sets: Vec<Value> = Vec::new();
    let mut made: Vec<(String, Value)> = Vec::new();
    let mut from = 0;
    loop {
        let page = ledger.entries(from, 8192).await?;
        let Some(last) = page.last() else { break };
        from = last.record.seq + 1;
        for e in page.iter().filter(|e| e.record.kind.starts_with("tuning.")) {
            let payload = match ledger.open_payload(e).await? {
                PayloadView::Sealed { payload, .. } | PayloadView::Public { payload } => payload,
                PayloadView::Erased | PayloadView::Pruned => continue,
            };
            let step = json!({"seq": e.record.seq, "time": e.record.time, "kind": e.record.kind, "payload": payload});
            if e.record.kind == kind::TUNING_DATASET {
                if payload["subjects"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|m| m.as_str() == Some(mac)))
                {
                    sets.push(json!({
                        "seq": e.record.seq, "time": e.record.time, "sha256": payload["sha256"],
                        "domain": payload["domain"], "out": payload["out"], "made": [],
                    }));
                }
            } else if let Some(sha) = payload["sha256"].as_str() {
                made.push((sha.to_owned(), step));
            }
        }
    }
    for set in &mut sets {
        let sha = set["sha256"].as_str().unwrap_or_default().to_owned();
        set["made"] = Value::from(
            made.iter()
                .filter(|(s, _)| *s == sha)
                .map(|(_, m)| m.clone())
                .collect::<Vec<_>>(),
        );
    }
    Ok(sets)
}

/// `TYPE:VALUE` as the ledger names subjects.
fn subject_of(subject: &str) -> Result<String, PrivacyError> {
    match subject.split_once(':') {
        Some((kind_name, value)) if !kind_name.is_empty() && !value.trim().is_empty() => {
            Ok(rempart_audit::subject_id(kind_name, value))
        }
        _ => Err(PrivacyError::BadRequest(format!(
            "`{subject}` is not a subject: write TYPE:VALUE, e.g. user:alice or ip:10.0.0.5"
        ))),
    }
}

/// Adds a later sweep's rows to an earlier one's.
fn merge(into: &mut SweepReport, later: SweepReport) {
    for (table, n) in later.rows {
        *into.rows.entry(table).or_default() += n;
    }
    into.occurrences += later.occurrences;
    for (table, ids) in later.ids {
        let kept = into.ids.entry(table).or_default();
        let room = rempart_store::MAX_REPORTED_IDS.saturating_sub(kept.len());
        kept.extend(ids.into_iter().take(room));
    }
    into.purged = later.purged;
}

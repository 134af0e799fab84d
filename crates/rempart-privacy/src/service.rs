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
        let mut tuning = tuning_holding(ledger, &keyring.subject_mac(&subject)).await?;
        tuning.iter_mut().for_each(forget_record);
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
        let mac = ledger.keyring().subject_mac(eraser.subject());
        let mut tuning = tuning_holding(ledger, &mac).await?;
        // Its pseudonyms, read while the vault still holds them, for the data sets' files.
        let pseudonyms = self.vault.subject_records(eraser.subject()).await?;
        store.erasure_advance().await?;
        let erased = self.erase_between(ledger, store, actor, eraser).await;
        store.erasure_advance().await?;
        let (swept, keys_destroyed) = erased?;
        for set in &mut tuning {
            rewrite_dataset(ledger, actor, set, &pseudonyms, &eraser.marker(), &mac).await?;
            forget_record(set);
        }
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

/// Rewrites a tuning job directory that holds an erased subject's pseudonyms (`set`, from
/// [`tuning_holding`]), when it is on this machine: each of its data files (those its
/// `data_card.json` lists) has the subject's pseudonyms of the data set's domain replaced by
/// `marker`, and the card its files' and the data set's new hashes, with the erasure noted. The
/// data set is recorded again (`tuning.dataset`, with its previous hash and without the
/// subject). `set` says what was done (`rewritten`: the files changed, or why none was).
async fn rewrite_dataset(
    ledger: &Ledger,
    actor: &str,
    set: &mut Value,
    pseudonyms: &[crate::vault::SubjectRecord],
    marker: &str,
    mac: &str,
) -> Result<(), PrivacyError> {
    use sha2::Digest as _;
    let domain = set["domain"].as_str().unwrap_or_default().to_owned();
    let tokens: Vec<&str> = pseudonyms
        .iter()
        .filter(|p| p.domain == domain)
        .map(|p| p.pseudonym.as_str())
        .collect();
    let dir = std::path::PathBuf::from(set["out"].as_str().unwrap_or_default());
    let card_path = dir.join("data_card.json");
    let Ok(card_text) = std::fs::read_to_string(&card_path) else {
        set["rewritten"] = json!("the job directory is not on this machine");
        return Ok(());
    };
    let io = |what: &std::path::Path, e: std::io::Error| PrivacyError::Config(format!("`{}`: {e}", what.display()));
    let mut card: Value = serde_json::from_str(&card_text)
        .map_err(|e| PrivacyError::Config(format!("`{}`: {e}", card_path.display())))?;
    if card["sha256"] != set["sha256"] {
        set["rewritten"] = json!("the job directory holds another data set now");
        return Ok(());
    }
    let files: Vec<String> = card["files"]
        .as_object()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    let mut changed = Vec::new();
    for file in &files {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let (new, n) = replace_tokens(&text, &tokens, marker);
        if n > 0 {
            let tmp = path.with_extension("erasing");
            std::fs::write(&tmp, &new).map_err(|e| io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
            changed.push(json!({"file": file, "occurrences": n}));
        }
        card["files"][file] = json!(hex::encode(sha2::Sha256::digest(new.as_bytes())));
    }
    let previous = card["sha256"].clone();
    let sums: String = files
        .iter()
        .map(|f| format!("{}  {f}\n", card["files"][f].as_str().unwrap_or_default()))
        .collect();
    card["sha256"] = json!(hex::encode(sha2::Sha256::digest(sums.as_bytes())));
    let now = jiff::Timestamp::now();
    if !card["erasures"].is_array() {
        card["erasures"] = json!([]);
    }
    if let Some(e) = card["erasures"].as_array_mut() {
        e.push(json!({"time": now, "subject_mac": mac, "files": changed, "previous_sha256": previous}));
    }
    let text = serde_json::to_string_pretty(&card).map_err(|e| PrivacyError::Config(e.to_string()))?;
    std::fs::write(&card_path, format!("{text}\n")).map_err(|e| io(&card_path, e))?;
    let md = dir.join("DATA_CARD.md");
    if let Ok(mut doc) = std::fs::read_to_string(&md) {
        doc.push_str(&format!(
            "\n## Erasure, {now}\n\nA data subject's pseudonyms were replaced in {} file(s). The data set's sha256 is now `{}` (was `{}`); `data_card.json` lists the files' new hashes.\n",
            changed.len(),
            card["sha256"].as_str().unwrap_or_default(),
            previous.as_str().unwrap_or_default()
        ));
        std::fs::write(&md, doc).map_err(|e| io(&md, e))?;
    }
    // The data set as it is now, recorded as a new one that no longer holds the subject.
    let mut record = ledger_payload(set);
    record["sha256"] = card["sha256"].clone();
    record["previous_sha256"] = previous;
    record["files"] = card["files"].clone();
    if let Some(s) = record["subjects"].as_array_mut() {
        s.retain(|m| m.as_str() != Some(mac));
    }
    ledger.append(Draft::new(actor, kind::TUNING_DATASET, record)).await?;
    set["rewritten"] = json!(changed);
    set["sha256_now"] = card["sha256"].clone();
    Ok(())
}

/// Drops the record a listed data set was found in: it names other subjects (as digests),
/// which an access or erasure request for one has no business seeing.
fn forget_record(set: &mut Value) {
    if let Some(o) = set.as_object_mut() {
        o.remove("record");
    }
}

/// The payload of the `tuning.dataset` record `set` was found in.
fn ledger_payload(set: &Value) -> Value {
    set.get("record").cloned().unwrap_or_else(|| json!({}))
}

/// `text` with every whole occurrence of `tokens` (no letter, digit, `_` or `.` before, no
/// letter, digit or `_` after) replaced by `marker`; how many were replaced.
fn replace_tokens(text: &str, tokens: &[&str], marker: &str) -> (String, usize) {
    let name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = text.to_owned();
    let mut n = 0;
    for t in tokens.iter().filter(|t| !t.is_empty()) {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(t) {
            let before = rest[..at].chars().next_back().or_else(|| result.chars().next_back());
            let after = rest[at + t.len()..].chars().next();
            result.push_str(&rest[..at]);
            if before.is_some_and(|c| name(c) || c == '.') || after.is_some_and(name) {
                result.push_str(t);
            } else {
                result.push_str(marker);
                n += 1;
            }
            rest = &rest[at + t.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    (out, n)
}

/// A tuning data set as the ledger holds it: its `tuning.dataset` record and every
/// `tuning.*` step made from it (submissions, uploads, jobs, runs, adapters).
#[derive(Debug, Clone)]
pub struct TuningSet {
    pub seq: u64,
    pub time: jiff::Timestamp,
    /// The `tuning.dataset` record's payload (hash, domain, base model, counts, files, the
    /// subjects' digests, the previous hash if an erasure rewrote it).
    pub record: Value,
    /// Each step as `{seq, time, kind, payload}`, in ledger order.
    pub made: Vec<Value>,
}

impl TuningSet {
    pub fn sha256(&self) -> &str {
        self.record["sha256"].as_str().unwrap_or_default()
    }
}

/// Every tuning data set the ledger records, in ledger order, each with what was made from it
/// (steps name their data set by its hash). One pass over the ledger.
pub async fn tuning_history(ledger: &Ledger) -> Result<Vec<TuningSet>, PrivacyError> {
    let mut sets: Vec<TuningSet> = Vec::new();
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
            if e.record.kind == kind::TUNING_DATASET {
                sets.push(TuningSet {
                    seq: e.record.seq,
                    time: e.record.time,
                    record: payload,
                    made: Vec::new(),
                });
            } else if let Some(sha) = payload["sha256"].as_str().map(str::to_owned) {
                made.push((
                    sha,
                    json!({"seq": e.record.seq, "time": e.record.time, "kind": e.record.kind, "payload": payload}),
                ));
            }
        }
    }
    for set in &mut sets {
        set.made = made
            .iter()
            .filter(|(s, _)| s == set.sha256())
            .map(|(_, m)| m.clone())
            .collect();
    }
    Ok(sets)
}

/// The tuning data sets holding the subject whose keyed digest is `mac`, each with what was
/// made from it; a data set an erasure rewrote since is left out (its rewritten version,
/// recorded anew, no longer holds the one erased).
async fn tuning_holding(ledger: &Ledger, mac: &str) -> Result<Vec<Value>, PrivacyError> {
    let history = tuning_history(ledger).await?;
    let superseded: Vec<&str> = history
        .iter()
        .filter_map(|s| s.record["previous_sha256"].as_str())
        .collect();
    Ok(history
        .iter()
        .filter(|s| {
            !superseded.contains(&s.sha256())
                && s.record["subjects"]
                    .as_array()
                    .is_some_and(|subjects| subjects.iter().any(|m| m.as_str() == Some(mac)))
        })
        .map(|s| {
            json!({
                "seq": s.seq, "time": s.time, "sha256": s.record["sha256"], "domain": s.record["domain"],
                "out": s.record["out"], "made": s.made, "record": s.record,
            })
        })
        .collect())
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

#[cfg(test)]
mod tests {
    use super::replace_tokens;

    #[test]
    fn only_whole_pseudonyms_are_replaced() {
        let text = r#"{"content":"user_3fa9 logged on to host_77c1 (10.9.8.7); user_3fa90 and x10.9.8.7 are others"}"#;
        let (out, n) = replace_tokens(text, &["user_3fa9", "10.9.8.7"], "erased-user-1");
        assert_eq!(n, 2, "{out}");
        assert_eq!(
            out,
            r#"{"content":"erased-user-1 logged on to host_77c1 (erased-user-1); user_3fa90 and x10.9.8.7 are others"}"#
        );
        assert_eq!(
            replace_tokens("nothing here", &["user_1"], "m"),
            ("nothing here".to_owned(), 0)
        );
    }
}

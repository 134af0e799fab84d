//! `rempart audit …` and `rempart privacy erase`: the ledger from the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use rempart_audit::export::ExportRange;
use rempart_audit::{Anchor, Ledger, NoteVerifier, Signer};
use rempart_config::Config;
use rempart_store::LedgerStore;

use crate::instance::{self, LedgerPaths};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the ledger: chain, payload hashes, signed checkpoints; names the first bad record
    ///
    /// Also holds each stored checkpoint's columns to its signed note, every key a payload was
    /// sealed under to the erasures the ledger records, and the ledger to its witness files.
    ///
    /// Exit status: 0 verified; 1 a problem was found, or the ledger could not be read; 3
    /// verified, but a witness file is missing (deleted, or the data directory was moved or
    /// restored from a backup).
    Verify {
        /// Start at the last checkpoint at or before this record (default: the first record)
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// A checkpoint kept outside (e.g. by an auditor) the ledger must still contain (repeatable)
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// Also trust this verifier key (`name+hash+key`, or a file holding one; repeatable)
        #[arg(long, value_name = "VKEY")]
        trust: Vec<String>,
    },
    /// Show one record with its payload (recorded as an audit read)
    Show {
        #[arg(value_name = "SEQ")]
        seq: u64,
    },
    /// List the most recent records (headers only)
    List {
        /// How many
        #[arg(long, default_value_t = 20)]
        last: u64,
    },
    /// Export records with proofs and a signed checkpoint, for verification by a third party
    Export {
        /// Records at or after this time (RFC 3339)
        #[arg(long)]
        since: Option<jiff::Timestamp>,
        /// Records before this time (RFC 3339)
        #[arg(long)]
        until: Option<jiff::Timestamp>,
        /// A checkpoint the recipient holds: the export proves the ledger still extends it
        #[arg(long, value_name = "FILE")]
        previous: Option<PathBuf>,
        /// Write to this file instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Sign a checkpoint over every record now and print it (for an auditor to keep)
    Checkpoint,
    /// Print the verifier key of the ledger's signing key
    PublicKey,
    /// Replace the signing key: the new key is announced in the ledger and co-signed by the old
    RotateKey,
}

pub async fn run(data_dir: &Path, config: &Config, command: AuditCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            from,
            checkpoint,
            trust,
        } => verify(data_dir, config, from, &checkpoint, &trust, json).await,
        AuditCommand::Show { seq } => show(data_dir, config, seq).await,
        AuditCommand::List { last } => list(data_dir, config, last, json).await,
        AuditCommand::Export {
            since,
            until,
            previous,
            output,
        } => {
            let previous = previous
                .map(|p| std::fs::read_to_string(&p).with_context(|| format!("cannot read `{}`", p.display())))
                .transpose()?;
            let ledger = open(data_dir, config).await?;
            ledger
                .append(rempart_audit::Draft::new(
                    instance::cli_actor(),
                    rempart_audit::kind::AUDIT_READ,
                    serde_json::json!({"export": {"since": since, "until": until}}),
                ))
                .await?;
            let doc = ledger.export(&ExportRange { since, until, previous }).await;
            ledger.close().await;
            let text = serde_json::to_string_pretty(&doc?)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?
                }
                None => writeln!(crate::out::stdout(), "{text}")?,
            }
            Ok(())
        }
        AuditCommand::Checkpoint => {
            let ledger = open(data_dir, config).await?;
            ledger.checkpoint().await?;
            let latest = ledger.checkpoints().await?.pop();
            ledger.close().await;
            let Some(cp) = latest else {
                bail!("the ledger is empty: nothing to sign")
            };
            write!(crate::out::stdout(), "{}", cp.note)?;
            Ok(())
        }
        AuditCommand::PublicKey => {
            let paths = LedgerPaths::new(data_dir, &config.audit);
            let signer = Signer::load(&paths.signing_key, origin(config), paths.create)?;
            writeln!(crate::out::stdout(), "{}", signer.verifier().vkey())?;
            Ok(())
        }
        AuditCommand::RotateKey => rotate(data_dir, config).await,
    }
}

fn origin(config: &Config) -> &str {
    config.audit.origin.as_deref().unwrap_or(instance::DEFAULT_ORIGIN)
}

async fn open(data_dir: &Path, config: &Config) -> anyhow::Result<Ledger> {
    let store = instance::open_store(data_dir, config).await?;
    instance::open_ledger(data_dir, config, store).await
}

pub(crate) async fn verify(
    data_dir: &Path,
    config: &Config,
    from: Option<u64>,
    checkpoints: &[PathBuf],
    trust: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let paths = LedgerPaths::new(data_dir, &config.audit);
    let mut trusted = paths.retired_keys()?;
    if paths.signing_key.is_file() {
        trusted.push(Signer::load(&paths.signing_key, origin(config), false)?.verifier());
    }
    for t in trust {
        let text = if Path::new(t).is_file() {
            std::fs::read_to_string(t).with_context(|| format!("cannot read `{t}`"))?
        } else {
            t.clone()
        };
        trusted.push(NoteVerifier::parse(&text)?);
    }
    let mut outside = Vec::new();
    let mut warnings = Vec::new();
    let mut witness_missing = None;
    let has_checkpoints = !store.ledger_checkpoints().await?.is_empty();
    for w in &paths.witnesses {
        if w.is_file() {
            outside.push(Anchor::outside(
                std::fs::read_to_string(w)?,
                format!("witness `{}`", w.display()),
            ));
        } else if has_checkpoints {
            let missing = format!(
                "the witness `{}` is missing although the ledger has signed checkpoints: it was deleted, or this data directory was moved or restored",
                w.display()
            );
            witness_missing.get_or_insert(missing);
        }
    }
    if outside.is_empty() && checkpoints.is_empty() {
        warnings.push(
            "no checkpoint held outside the database was checked: an emptied or rolled-back ledger cannot be told from a genuine one. \
             Configure `[audit] witnesses` on another volume, or pass --checkpoint FILE (an auditor's copy)"
                .to_owned(),
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    // Told once, at the end, with its own exit status ([`crate::Warned`]); listed in JSON too.
    warnings.extend(witness_missing.clone());
    for c in checkpoints {
        outside.push(Anchor::outside(
            std::fs::read_to_string(c).with_context(|| format!("cannot read `{}`", c.display()))?,
            format!("`{}`", c.display()),
        ));
    }
    if trusted.is_empty() && store.ledger_head().await?.is_some() {
        bail!("no key to verify checkpoints with: pass --trust VKEY");
    }
    let started = std::time::Instant::now();
    let result = Ledger::verify(&(store.clone() as Arc<dyn LedgerStore>), trusted, outside, from).await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut out = crate::out::stdout();
    match result {
        Ok(report) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": true, "report": report, "seconds": seconds, "warnings": warnings})
                )?;
            } else {
                writeln!(
                    out,
                    "ledger verified: {} records from {} ({} checkpoints, {} outside), {} payloads pruned, {} subject keys erased, {} records after the latest checkpoint, {:.2} s",
                    report.records,
                    report.first.unwrap_or(0),
                    report.checkpoints,
                    report.outside_checkpoints,
                    report.pruned_payloads,
                    report.erased_keys,
                    report.unsigned_tail,
                    seconds
                )?;
            }
            match witness_missing {
                Some(missing) => Err(crate::Warned(format!("ledger verified, but {missing}")).into()),
                None => Ok(()),
            }
        }
        Err(problem) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"ok": false, "problem": problem, "message": problem.to_string()})
                )?;
            }
            bail!("ledger verification failed: {problem}")
        }
    }
}

async fn show(data_dir: &Path, config: &Config, seq: u64) -> anyhow::Result<()> {
    let ledger = open(data_dir, config).await?;
    let entry = ledger.entries(seq, 1).await?.into_iter().find(|e| e.record.seq == seq);
    let Some(entry) = entry else {
        ledger.close().await;
        bail!("no record {seq} in the ledger");
    };
    ledger
        .append(rempart_audit::Draft::new(
            instance::cli_actor(),
            rempart_audit::kind::AUDIT_READ,
            serde_json::json!({"from": seq, "to": seq}),
        ))
        .await?;
    let shown = rempart_server::audit::record_json(&ledger, &entry).await;
    ledger.close().await;
    writeln!(crate::out::stdout(), "{}", serde_json::to_string_pretty(&shown?)?)?;
    Ok(())
}

async fn list(data_dir: &Path, config: &rempart_config::Config, last: u64, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let Some(head) = store.ledger_head().await? else {
        writeln!(crate::out::stdout(), "the ledger is empty")?;
        return Ok(());
    };
    let from = (head.seq + 1).saturating_sub(last);
    let entries = store
        .ledger_entries(from, u32::try_from(last).unwrap_or(u32::MAX))
        .await?;
    let mut out = crate::out::stdout();
    for e in &entries {
        let r = &e.record;
        if json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"seq": r.seq, "time": r.time, "actor": r.actor, "kind": r.kind,
                    "sealed": r.key_id.is_some(), "payload": e.payload.is_some(), "leaf_hash": hex::encode(r.leaf_hash)})
            )?;
        } else {
            writeln!(
                out,
                "{:>8}  {}  {:<22} {:<28} {}",
                r.seq,
                r.time.strftime("%Y-%m-%d %H:%M:%S"),
                r.kind,
                r.actor,
                if e.payload.is_none() {
                    "pruned"
                } else if r.key_id.is_some() {
                    "sealed"
                } else {
                    "public"
                }
            )?;
        }
    }
    Ok(())
}

async fn rotate(data_dir: &Path, config: &Config) -> anyhow::Result<()> {
    let paths = LedgerPaths::new(data_dir, &config.audit);
    let ledger = open(data_dir, config).await?;
    let old = ledger.verifier().clone();
    let next = Signer::generate(origin(config))?;
    let staged = paths.signing_key.with_extension("pem.next");
    let _ = std::fs::remove_file(&staged);
    next.save(&staged)
        .with_context(|| format!("cannot write `{}`", staged.display()))?;
    let announced = ledger.announce_key(&instance::cli_actor(), &next).await;
    ledger.close().await;
    let checkpoint = announced?;
    std::fs::create_dir_all(&paths.retired)?;
    let retired = paths.retired.join(format!("{:08x}.vkey", old.hash));
    std::fs::write(&retired, format!("{}\n", old.vkey()))?;
    std::fs::rename(&staged, &paths.signing_key)
        .with_context(|| format!("cannot install the new key at `{}`", paths.signing_key.display()))?;
    let mut out = crate::out::stdout();
    writeln!(out, "new signing key: {}", next.verifier().vkey())?;
    writeln!(out, "old key kept for verification in `{}`", retired.display())?;
    writeln!(out, "co-signed checkpoint of size {}", checkpoint.size)?;
    Ok(())
}

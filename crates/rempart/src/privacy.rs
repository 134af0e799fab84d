//! `rempart redact` and `rempart privacy …`: the privacy engine from the command line.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rempart_audit::{Draft, Ledger, kind};
use rempart_config::Config;
use rempart_privacy::Privacy;

use crate::instance;

/// Lines redacted, and their originals sealed in the vault, before any of them is written.
const BATCH: usize = 8192;

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Pseudonymization domain (a tenant, an incident): the same value gets the same pseudonym
    /// inside one domain and unrelated ones across domains
    #[arg(long, default_value = "default")]
    pub domain: String,
    /// Turn pseudonyms of the domain back into originals (recorded in the audit ledger)
    #[arg(long, conflicts_with = "explain")]
    pub reveal: bool,
    /// Instead of the redacted text, print what was found where: one JSON object per finding
    /// (line, path, type, byte span, recognizer, pseudonym), never the original
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erase a data subject (GDPR Art. 17): destroy its keys, so every pseudonym and every ledger
    /// payload sealed for it becomes irreversible everywhere, while the ledger stays verifiable
    Erase {
        /// The subject: `user:alice`, `host:ws1.corp.example.eu`, `ip:10.0.0.5`, `email:…`, …
        #[arg(long)]
        subject: String,
    },
    /// Everything kept about a data subject (GDPR Art. 15): its pseudonyms in every domain and the
    /// ledger records sealed for it, readable while it is not erased (recorded in the ledger)
    Export {
        #[arg(long)]
        subject: String,
    },
}

fn service(ledger: &Ledger, config: &Config, store: Arc<rempart_store::SqliteStore>) -> anyhow::Result<Arc<Privacy>> {
    instance::privacy(config, ledger, store)
}

/// `rempart redact`: standard input to standard output.
pub async fn redact(data_dir: &Path, config: &Config, args: RedactArgs) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir).await?;
    let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
    let result = match service(&ledger, config, store) {
        Ok(privacy) => run_redact(&ledger, &privacy, &args).await,
        Err(e) => Err(e),
    };
    ledger.close().await;
    result
}

async fn run_redact(ledger: &Ledger, privacy: &Privacy, args: &RedactArgs) -> anyhow::Result<()> {
    let redactor = privacy.redactor(&args.domain)?;
    let vault = privacy.vault();
    let actor = instance::cli_actor();
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut number = 0usize;
    let mut total = std::collections::BTreeMap::new();
    let mut revealed_total = 0usize;
    // One input line and one batch of output, reused: a batch of lines kept as separate
    // strings cost more in allocation than their redaction.
    let mut line = String::new();
    let mut batch_out: Vec<u8> = Vec::new();
    let mut end = false;
    while !end {
        let mut lines = Vec::new();
        let mut replacements = Vec::new();
        batch_out.clear();
        for _ in 0..BATCH {
            line.clear();
            if stdin
                .read_line(&mut line)
                .with_context(|| format!("line {}: cannot read standard input (is it UTF-8 text?)", number + 1))?
                == 0
            {
                end = true;
                break;
            }
            number += 1;
            let text = line
                .strip_suffix('\n')
                .map_or(line.as_str(), |l| l.strip_suffix('\r').unwrap_or(l));
            if args.reveal {
                lines.push(text.to_owned());
                continue;
            }
            let r = redactor
                .redact_line(text)
                .with_context(|| format!("line {number}: not released"))?;
            for rep in &r.replacements {
                *total.entry(rep.entity).or_insert(0u64) += 1;
            }
            if args.explain {
                for rep in &r.replacements {
                    writeln!(batch_out, "{}", rep.explain(number))?;
                }
            } else {
                batch_out.extend_from_slice(r.output.as_bytes());
                batch_out.push(b'\n');
            }
            replacements.extend(r.replacements);
        }
        if args.reveal {
            if lines.is_empty() {
                break;
            }
            let (lines, revealed) = vault.reveal_lines(redactor.domain(), &lines).await?;
            if !revealed.revealed.is_empty() {
                // Recorded before anything is released.
                ledger
                    .append(Draft::new(
                        &actor,
                        kind::PRIVACY_REVEAL,
                        serde_json::json!({"domain": args.domain, "pseudonyms": revealed.revealed}),
                    ))
                    .await?;
            }
            revealed_total += revealed.revealed.len();
            for l in lines {
                writeln!(out, "{l}")?;
            }
            continue;
        }
        // The originals are sealed in the vault before the pseudonymized lines leave.
        if !replacements.is_empty() {
            vault
                .remember(redactor.domain(), &replacements, jiff::Timestamp::now())
                .await
                .context("cannot keep the originals in the vault; nothing of this batch was released")?;
        }
        out.write_all(&batch_out)?;
    }
    out.flush()?;
    if args.reveal {
        tracing::info!(revealed = revealed_total, "re-identified");
    } else {
        ledger
            .append(Draft::new(
                &actor,
                kind::PRIVACY_PSEUDONYMIZE,
                serde_json::json!({"domain": args.domain, "lines": number, "found": total}),
            ))
            .await?;
    }
    Ok(())
}

pub async fn privacy(data_dir: &Path, config: &Config, command: PrivacyCommand, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir).await?;
    let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
    let result = match command {
        PrivacyCommand::Erase { subject } => erase(&ledger, &subject, json).await,
        PrivacyCommand::Export { subject } => match service(&ledger, config, store) {
            Ok(privacy) => privacy
                .subject_report(&ledger, &instance::cli_actor(), &subject)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|doc| {
                    Ok(writeln!(
                        std::io::stdout().lock(),
                        "{}",
                        serde_json::to_string_pretty(&doc)?
                    )?)
                }),
            Err(e) => Err(e),
        },
    };
    ledger.close().await;
    result
}

async fn erase(ledger: &Ledger, subject: &str, json: bool) -> anyhow::Result<()> {
    if !subject.contains(':') {
        bail!("`{subject}` is not a subject: write TYPE:VALUE, e.g. user:alice or ip:10.0.0.5");
    }
    let erased = ledger.erase_subject(&instance::cli_actor(), subject).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"subject": subject, "keys_destroyed": erased})
        )?;
    } else {
        writeln!(
            out,
            "erased {subject}: {erased} key(s) destroyed; its pseudonyms and sealed records can no longer be read"
        )?;
    }
    Ok(())
}

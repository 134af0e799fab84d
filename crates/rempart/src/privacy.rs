//! `rempart redact` and `rempart privacy …`: the privacy engine from the command line.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
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
    /// Erase a data subject (GDPR Art. 17): rewrite it wherever events, alerts, incidents and
    /// detector state name it in clear, then destroy its keys, so every pseudonym and every ledger
    /// payload sealed for it becomes irreversible everywhere, while the ledger stays verifiable
    Erase {
        /// The subject: `user:alice`, `host:ws1.corp.example.eu`, `ip:10.0.0.5`, `email:…`, …
        #[arg(long)]
        subject: String,
    },
    /// Everything kept about a data subject (GDPR Art. 15): its pseudonyms in every domain, the
    /// ledger records sealed for it (readable while it is not erased) and the stored rows naming
    /// it, by table (recorded in the ledger)
    Export {
        #[arg(long)]
        subject: String,
    },
}

fn service(ledger: &Ledger, config: &Config, store: Arc<dyn rempart_store::Backend>) -> anyhow::Result<Arc<Privacy>> {
    instance::privacy(config, ledger, store)
}

/// `rempart redact`: standard input to standard output.
pub async fn redact(data_dir: &Path, config: &Config, args: RedactArgs) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
    let result = match service(&ledger, config, store) {
        Ok(privacy) => run_redact(&ledger, &privacy, &args).await,
        Err(e) => Err(e),
    };
    ledger.close().await;
    result
}

/// Reads the next line of `input` (line `number`) into `buf` and gives it without its line
/// ending; `None` at the end of the input.
fn next_line<'b>(input: &mut impl BufRead, buf: &'b mut String, number: usize) -> anyhow::Result<Option<&'b str>> {
    buf.clear();
    let read = input
        .read_line(buf)
        .with_context(|| format!("line {number}: cannot read standard input (is it UTF-8 text?)"))?;
    Ok((read > 0).then(|| {
        buf.strip_suffix('\n')
            .map_or(buf.as_str(), |l| l.strip_suffix('\r').unwrap_or(l))
    }))
}

async fn run_redact(ledger: &Ledger, privacy: &Privacy, args: &RedactArgs) -> anyhow::Result<()> {
    let redactor = privacy.redactor(&args.domain)?;
    if args.reveal {
        return run_reveal(ledger, privacy, &redactor, &args.domain).await;
    }
    let vault = privacy.vault();
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut number = 0usize;
    let mut total = std::collections::BTreeMap::new();
    // One input line, one batch of output and the batch's distinct replacements, reused: a
    // batch of lines kept as separate strings, or every occurrence of every value kept for
    // the vault, cost more in allocation (fresh pages, each zeroed by the kernel) than the
    // redaction itself.
    let mut line = String::new();
    let mut batch_out: Vec<u8> = Vec::new();
    let mut replacements: Vec<rempart_privacy::redact::Replacement> = Vec::new();
    let mut pseudonyms: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut end = false;
    while !end {
        replacements.clear();
        pseudonyms.clear();
        batch_out.clear();
        for _ in 0..BATCH {
            let Some(text) = next_line(&mut stdin, &mut line, number + 1)? else {
                end = true;
                break;
            };
            number += 1;
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
            // The vault keeps one original per pseudonym: the first occurrence of each is
            // enough.
            for rep in r.replacements {
                if !pseudonyms.contains(rep.pseudonym.as_str()) {
                    pseudonyms.insert(rep.pseudonym.clone());
                    replacements.push(rep);
                }
            }
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
    ledger
        .append(Draft::new(
            instance::cli_actor(),
            kind::PRIVACY_PSEUDONYMIZE,
            serde_json::json!({"domain": args.domain, "lines": number, "found": total}),
        ))
        .await?;
    Ok(())
}

/// `rempart redact --reveal`: pseudonyms of `domain` back to originals, batch by batch, each
/// batch's re-identification recorded before it is written.
async fn run_reveal(
    ledger: &Ledger,
    privacy: &Privacy,
    redactor: &rempart_privacy::redact::Redactor,
    domain: &str,
) -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = String::new();
    let mut number = 0usize;
    let mut revealed_total = 0usize;
    loop {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            let Some(text) = next_line(&mut stdin, &mut line, number + 1)? else {
                break;
            };
            number += 1;
            batch.push(text.to_owned());
        }
        if batch.is_empty() {
            break;
        }
        let (lines, revealed) = privacy.vault().reveal_lines(redactor.domain(), &batch).await?;
        if !revealed.revealed.is_empty() {
            // Recorded before anything is released.
            ledger
                .append(Draft::new(
                    instance::cli_actor(),
                    kind::PRIVACY_REVEAL,
                    serde_json::json!({"domain": domain, "pseudonyms": revealed.revealed}),
                ))
                .await?;
        }
        revealed_total += revealed.revealed.len();
        for l in lines {
            writeln!(out, "{l}")?;
        }
    }
    out.flush()?;
    tracing::info!(revealed = revealed_total, "re-identified");
    Ok(())
}

pub async fn privacy(data_dir: &Path, config: &Config, command: PrivacyCommand, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let ledger = instance::open_ledger(data_dir, config, store.clone()).await?;
    let result = match service(&ledger, config, store.clone()) {
        Ok(privacy) => match command {
            PrivacyCommand::Erase { subject } => erase(&ledger, &privacy, store.as_ref(), &subject, json).await,
            PrivacyCommand::Export { subject } => privacy
                .subject_report(&ledger, store.as_ref(), &instance::cli_actor(), &subject)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|doc| {
                    Ok(writeln!(
                        std::io::stdout().lock(),
                        "{}",
                        serde_json::to_string_pretty(&doc)?
                    )?)
                }),
        },
        Err(e) => Err(e),
    };
    ledger.close().await;
    result
}

async fn erase(
    ledger: &Ledger,
    privacy: &Privacy,
    store: &dyn rempart_store::ErasureStore,
    subject: &str,
    json: bool,
) -> anyhow::Result<()> {
    let eraser = privacy.eraser(subject).await?;
    let erased = privacy
        .erase(ledger, store, &instance::cli_actor(), &eraser)
        .await
        .with_context(|| {
            format!(
                "erasing {}: stopped; running the same command again finishes it",
                eraser.subject()
            )
        })?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&erased)?)?;
        return Ok(());
    }
    let tables: Vec<String> = erased.stored.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    writeln!(
        out,
        "erased {}: {} key(s) destroyed, so its pseudonyms and sealed records can no longer be read",
        erased.subject, erased.keys_destroyed
    )?;
    if tables.is_empty() {
        writeln!(out, "no stored event, alert or incident named it")?;
    } else {
        writeln!(
            out,
            "{} occurrence(s) in {} stored row(s) ({}) now read `{}`",
            erased.stored.occurrences,
            erased.stored.total_rows(),
            tables.join(", "),
            erased.replaced_by
        )?;
    }
    if !erased.stored.purged {
        writeln!(
            out,
            "warning: old copies may remain in the store's own files: in SQLite's write-ahead log until its next checkpoint (a reader kept it open); in PostgreSQL's write-ahead log, WAL archive and backups until they expire (docs/deployment.md)"
        )?;
    }
    for set in &erased.tuning {
        writeln!(
            out,
            "tuning data set {} ({}) holds its pseudonyms, no longer revealable; {} job(s), run(s) and adapter(s) were made from it: prepare and train again to drop them (docs/tuning.md)",
            set["sha256"].as_str().unwrap_or_default(),
            set["out"].as_str().unwrap_or_default(),
            set["made"].as_array().map_or(0, Vec::len)
        )?;
    }
    Ok(())
}

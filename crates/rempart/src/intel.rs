//! `rempart intel`: threat-intelligence indicators into the store, matched from then on against
//! everything ingested (and in hunts over this instance).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use jiff::Timestamp;
use rempart_store::{IntelRecord, IntelStore};
use serde_json::json;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Import STIX 2.1 bundles and MISP events (JSON files or folders): every indicator is
    /// stored or reported skipped with its reason; one imported again replaces the old
    Import {
        #[arg(required = true, value_name = "FILE")]
        paths: Vec<PathBuf>,
    },
    /// How many indicators are stored, by source
    List,
}

/// Largest intelligence file read.
const MAX_FILE: u64 = 512 * 1024 * 1024;

fn read_file(f: &Path, name: &str) -> anyhow::Result<rempart_intel::Imported> {
    let size = std::fs::metadata(f)
        .with_context(|| format!("cannot read `{name}`"))?
        .len();
    if size > MAX_FILE {
        anyhow::bail!("{size} bytes is more than the {MAX_FILE} an intelligence file may have");
    }
    let text = std::fs::read_to_string(f).context("cannot read it")?;
    let doc: serde_json::Value = serde_json::from_str(&text).context("not JSON")?;
    rempart_intel::import(&doc, name).map_err(anyhow::Error::msg)
}

pub async fn intel(data_dir: &Path, command: IntelCommand, json: bool) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir).await?;
    let mut out = std::io::stdout().lock();
    match command {
        IntelCommand::Import { paths } => {
            // In folders, the `.json` files; a file named on the command line, whatever it is.
            let mut files = Vec::new();
            for p in &paths {
                if p.is_dir() {
                    files.extend(
                        rempart_ingest::files::walk(std::slice::from_ref(p))
                            .context("cannot list input")?
                            .into_iter()
                            .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))),
                    );
                } else {
                    files.push(p.clone());
                }
            }
            let now = Timestamp::now();
            let mut total = 0u64;
            let mut skipped_total = 0u64;
            let mut failed = Vec::new();
            for f in files {
                let name = f.display().to_string();
                // A file that cannot be read is reported and the others are still imported.
                let imported = match read_file(&f, &name) {
                    Ok(i) => i,
                    Err(e) => {
                        if json {
                            writeln!(out, "{}", json!({"file": name, "error": format!("{e:#}")}))?;
                        } else {
                            writeln!(out, "{name}: not imported: {e:#}")?;
                        }
                        failed.push(name);
                        continue;
                    }
                };
                let records: Vec<IntelRecord> = imported
                    .indicators
                    .iter()
                    .map(|i| {
                        Ok(IntelRecord {
                            source: i.source.clone(),
                            id: i.id.clone(),
                            body: serde_json::to_string(i)?,
                            imported: now,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?;
                let stored = store.intel_put(&records).await?;
                total += stored;
                skipped_total += imported.skipped.len() as u64;
                if json {
                    writeln!(
                        out,
                        "{}",
                        json!({"file": name, "imported": stored, "skipped": imported.skipped})
                    )?;
                } else {
                    writeln!(
                        out,
                        "{name}: {stored} indicators imported, {} skipped",
                        imported.skipped.len()
                    )?;
                    for s in &imported.skipped {
                        writeln!(out, "  skipped {}: {}", s.id, s.reason)?;
                    }
                }
            }
            if !json {
                writeln!(out, "{total} indicators imported, {skipped_total} skipped")?;
            }
            if !failed.is_empty() {
                anyhow::bail!("{} file(s) could not be imported: {}", failed.len(), failed.join(", "));
            }
        }
        IntelCommand::List => {
            let mut by_source: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
            for r in store.intel_all().await? {
                *by_source.entry(r.source).or_insert(0) += 1;
            }
            if json {
                writeln!(out, "{}", json!({"sources": by_source}))?;
            } else {
                for (s, n) in &by_source {
                    writeln!(out, "{n:>8}  {s}")?;
                }
                writeln!(out, "{:>8}  in all", by_source.values().sum::<u64>())?;
            }
        }
    }
    Ok(())
}

//! `rempart store`: moving an embedded instance into a shared PostgreSQL store.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy an embedded instance's store into an empty PostgreSQL store (the one `[store]`
    /// names, or `--to`), then verify the copied ledger with the instance's keys and witness
    Copy {
        /// The embedded instance: its data directory, its `rempart.db`, or `sqlite://PATH`
        #[arg(long, value_name = "SOURCE")]
        from: String,
        /// `postgres://user@host:port/database` (default: `[store] url`; the password comes
        /// from `[store] password_file` or `password_env`)
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// The schema to copy into (default: `[store] schema`)
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
    },
}

pub async fn run(config: &rempart_config::Config, command: StoreCommand, json: bool) -> anyhow::Result<()> {
    let StoreCommand::Copy { from, to, schema } = command;
    let (data_dir, db) = source(&from)?;
    let mut target = config.clone();
    if let Some(url) = to {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("`--to {url}`: expected a postgres:// URL");
        }
        target.store.url = Some(url);
    }
    if schema.is_some() {
        target.store.schema = schema;
    }
    let Some(url) = target.store.url.clone() else {
        bail!("no target: pass --to postgres://… or configure `[store] url`");
    };
    let source = rempart_store::SqliteStore::open(&db)
        .await
        .with_context(|| format!("cannot open `{}`", db.display()))?;
    let store = instance::open_pg(&target)
        .await
        .with_context(|| format!("cannot open the store at `{}`", rempart_store::redact_url(&url)))?;
    let mut last = String::new();
    let copied = rempart_store::copy::copy(&source, &store, |table, rows| {
        if table != last || rows % 100_000 < 2_000 {
            eprintln!("{table}: {rows} rows");
            last = table.to_owned();
        }
    })
    .await
    .context("the copy stopped (drop the target schema before trying again)")?;
    let mismatched: Vec<_> = copied.iter().filter(|c| c.source != c.target).collect();
    let mut out = crate::out::stdout();
    if json {
        writeln!(out, "{}", serde_json::json!({"tables": copied}))?;
    } else {
        for c in &copied {
            writeln!(out, "{:<24} {:>10} rows", c.table, c.target)?;
        }
    }
    if !mismatched.is_empty() {
        bail!("tables whose copy does not hold every row: {mismatched:?}");
    }
    // The copied ledger, checked with the instance's own keys and witness.
    eprintln!(
        "verifying the copied ledger with the keys and witness of `{}`",
        data_dir.display()
    );
    crate::audit::verify(&data_dir, &target, None, &[], &[], json).await
}

/// The data directory and database file `from` names.
fn source(from: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let path = PathBuf::from(from.strip_prefix("sqlite://").unwrap_or(from));
    let (dir, db) = if path.is_dir() {
        (path.clone(), instance::db_path(&path))
    } else {
        (
            path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            path.clone(),
        )
    };
    if !db.is_file() {
        bail!("`{from}`: no embedded store there (expected a data directory holding rempart.db, or the file)");
    }
    Ok((dir, db))
}

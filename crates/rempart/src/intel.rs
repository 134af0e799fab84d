//! `rempart intel`: threat-intelligence indicators into the store, matched from then on against
//! everything ingested (and in hunts over this instance).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use jiff::Timestamp;
use serde_json::json;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Import STIX 2.1 bundles and MISP events (JSON files or folders), or poll a TAXII 2.1
    /// collection (its URL, `https://…/api1/collections/ID/`): every indicator is stored or
    /// reported skipped with its reason; one imported again replaces the old
    Import {
        #[arg(required = true, value_name = "FILE|URL")]
        paths: Vec<PathBuf>,
        /// TAXII user name (the password is read from `REMPART_TAXII_PASSWORD`)
        #[arg(long)]
        user: Option<String>,
        /// Extra CA certificates (PEM) to trust for the TAXII server
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// How many indicators are stored, by source
    List,
}

/// Largest intelligence file read.
const MAX_FILE: u64 = 512 * 1024 * 1024;

enum Source {
    File(PathBuf),
    Taxii(String),
}

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

pub async fn intel(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: IntelCommand,
    json: bool,
) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir, config).await?;
    let mut out = crate::out::stdout();
    match command {
        IntelCommand::Import { paths, user, ca_file } => {
            // In folders, the `.json` files; a file named on the command line, whatever it is.
            let mut files = Vec::new();
            let mut collections = Vec::new();
            for p in &paths {
                let text = p.to_string_lossy();
                if text.starts_with("https://") || text.starts_with("http://") {
                    collections.push(text.into_owned());
                } else if p.is_dir() {
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
            let mut sources: Vec<(String, Source)> = files
                .into_iter()
                .map(|f| (f.display().to_string(), Source::File(f)))
                .collect();
            sources.extend(collections.into_iter().map(|u| (u.clone(), Source::Taxii(u))));
            for (name, src) in sources {
                // A source that cannot be read is reported and the others are still imported.
                let read = match src {
                    Source::File(f) => read_file(&f, &name),
                    Source::Taxii(url) => {
                        let login = match &user {
                            Some(u) => Some((
                                u.clone(),
                                std::env::var("REMPART_TAXII_PASSWORD")
                                    .context("a TAXII user needs its password in REMPART_TAXII_PASSWORD")?,
                            )),
                            None => None,
                        };
                        taxii::poll(&url, login, ca_file.as_deref()).await
                    }
                };
                let imported = match read {
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
                let records = rempart_server::intel::records(&imported, now)?;
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
                anyhow::bail!(
                    "{} source(s) could not be imported: {}",
                    failed.len(),
                    failed.join(", ")
                );
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

pub mod taxii {
    //! A TAXII 2.1 client for one collection: `GET {collection}/objects/`, page after page.

    use std::path::Path;
    use std::time::Duration;

    use anyhow::Context;
    use serde_json::{Value, json};

    /// The media type of TAXII 2.1 responses.
    const TAXII: &str = "application/taxii+json;version=2.1";
    /// Objects asked for per page.
    const PAGE: u32 = 1000;
    /// Largest page read.
    const MAX_PAGE: usize = 64 * 1024 * 1024;
    /// Most pages followed in one poll.
    const MAX_PAGES: usize = 10_000;

    /// Every object of the collection at `url`, read as one STIX bundle.
    pub async fn poll(
        url: &str,
        login: Option<(String, String)>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<rempart_intel::Imported> {
        let tls = rempart_gateway::upstream::tls(ca_file).map_err(|e| anyhow::anyhow!("{e}"))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = if url.ends_with('/') {
            url.to_owned()
        } else {
            format!("{url}/")
        };
        let mut objects: Vec<Value> = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut rb = http
                .get(format!("{base}objects/"))
                .header(reqwest::header::ACCEPT, TAXII)
                .query(&[("limit", PAGE.to_string())]);
            if let Some(n) = &next {
                rb = rb.query(&[("next", n)]);
            }
            if let Some((u, p)) = &login {
                rb = rb.basic_auth(u, Some(p));
            }
            let resp = rb.send().await.with_context(|| format!("cannot reach `{base}`"))?;
            let status = resp.status();
            let bytes = resp.bytes().await?;
            if bytes.len() > MAX_PAGE {
                anyhow::bail!("a page of more than {MAX_PAGE} bytes");
            }
            if !status.is_success() {
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                anyhow::bail!(
                    "the TAXII server answered {status}: {}",
                    body.get("title").and_then(Value::as_str).unwrap_or("(no detail)")
                );
            }
            let envelope: Value = serde_json::from_slice(&bytes).context("the TAXII answer is not JSON")?;
            if let Some(objs) = envelope.get("objects").and_then(Value::as_array) {
                objects.extend(objs.iter().cloned());
            }
            match (
                envelope.get("more").and_then(Value::as_bool),
                envelope.get("next").and_then(Value::as_str),
            ) {
                (Some(true), Some(n)) => next = Some(n.to_owned()),
                _ => {
                    let bundle = json!({"type": "bundle", "id": "bundle--taxii", "objects": objects});
                    return rempart_intel::import(&bundle, &format!("taxii:{base}")).map_err(anyhow::Error::msg);
                }
            }
        }
        anyhow::bail!("more than {MAX_PAGES} pages")
    }
}

//! The embedded instance a command works on: its data directory and store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rempart_store::SqliteStore;

/// The data directory when neither `--data-dir` nor `REMPART_DATA_DIR` names one:
/// `$XDG_DATA_HOME/rempart`, else `~/.local/share/rempart`, else `./.rempart`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("rempart");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/rempart");
    }
    PathBuf::from(".rempart")
}

/// The store file inside a data directory.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rempart.db")
}

pub async fn open_store(data_dir: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
    let store = SqliteStore::open(&db_path(data_dir))
        .await
        .with_context(|| format!("cannot open the store in `{}`", data_dir.display()))?;
    Ok(Arc::new(store))
}

//! The embedded instance a command works on: its data directory and store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rempart_audit::{Ledger, LedgerOptions, MasterKey, NoteVerifier, Signer};
use rempart_model::SystemClock;
use rempart_store::{Backend, PgSettings, PgStore, SqliteStore};

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

/// The instance a command works on: its data directory and configuration.
#[derive(Debug, Clone, Copy)]
pub struct Instance<'a> {
    pub data_dir: &'a Path,
    pub config: &'a rempart_config::Config,
}

impl Instance<'_> {
    /// Whether it holds a store already (a shared one always does).
    pub fn exists(&self) -> bool {
        self.config.store.url.is_some() || db_path(self.data_dir).exists()
    }

    pub async fn store(&self) -> anyhow::Result<Arc<dyn Backend>> {
        open_store(self.data_dir, self.config).await
    }
}

/// Opens the store `[store]` names: the embedded SQLite file in `data_dir`, or the shared
/// PostgreSQL at `store.url` (its password read from `password_file` or `password_env`).
pub async fn open_store(data_dir: &Path, config: &rempart_config::Config) -> anyhow::Result<Arc<dyn Backend>> {
    if config.store.url.is_none() {
        rempart_store::private_dir(data_dir)
            .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
        let store = SqliteStore::open(&db_path(data_dir))
            .await
            .with_context(|| format!("cannot open the store in `{}`", data_dir.display()))?;
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(open_pg(config).await?))
}

/// Opens the PostgreSQL store `[store] url` names, its password read from `password_file` or
/// `password_env`.
pub async fn open_pg(config: &rempart_config::Config) -> anyhow::Result<PgStore> {
    let settings = &config.store;
    let Some(url) = &settings.url else {
        anyhow::bail!("no PostgreSQL store configured (`[store] url`)");
    };
    let password = match (&settings.password_file, &settings.password_env) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the database password from `{}`", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        (None, Some(var)) => {
            Some(std::env::var(var).with_context(|| format!("the database password variable `{var}` is not set"))?)
        }
        (None, None) => None,
    };
    PgStore::connect(&PgSettings {
        url: url.clone(),
        password,
        max_connections: settings.max_connections,
        schema: settings.schema.clone(),
        application: application(),
    })
    .await
    .with_context(|| format!("cannot open the store at `{}`", rempart_store::redact_url(url)))
}

/// What this process is, as its store sessions are named: `rempart/<role>/<pid>@<host>` for a
/// server (set once by `serve`), `rempart/cli/<pid>@<host>` for any other command.
static ROLE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names this process's role before it opens the store.
pub fn set_role(role: &'static str) {
    let _ = ROLE.set(role);
}

pub fn application() -> String {
    format!(
        "rempart/{}/{}@{}",
        ROLE.get().copied().unwrap_or("cli"),
        std::process::id(),
        host()
    )
}

/// This machine's name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Where the ledger's keys and witness live, from configuration or the data directory.
#[derive(Debug, Clone)]
pub struct LedgerPaths {
    pub signing_key: PathBuf,
    pub master_key: PathBuf,
    /// Public keys rotated away (`*.vkey`), still trusted for the checkpoints they signed.
    pub retired: PathBuf,
    /// Hold the latest signed checkpoint, outside the database: the file beside it, then the
    /// configured ones (on other volumes).
    pub witnesses: Vec<PathBuf>,
    /// Whether missing key files may be created (only at their default places).
    pub create: bool,
}

impl LedgerPaths {
    pub fn new(data_dir: &Path, audit: &rempart_config::Audit) -> Self {
        let keys = data_dir.join("keys");
        LedgerPaths {
            create: audit.signing_key.is_none() && audit.master_key.is_none(),
            signing_key: audit
                .signing_key
                .clone()
                .unwrap_or_else(|| keys.join("ledger-signing.pem")),
            master_key: audit.master_key.clone().unwrap_or_else(|| keys.join("master.key")),
            retired: keys.join("retired"),
            witnesses: std::iter::once(data_dir.join("ledger-checkpoint.txt"))
                .chain(audit.witnesses.iter().cloned())
                .collect(),
        }
    }

    /// The retired verifier keys.
    pub fn retired_keys(&self) -> anyhow::Result<Vec<NoteVerifier>> {
        let mut keys = Vec::new();
        let Ok(dir) = std::fs::read_dir(&self.retired) else {
            return Ok(keys);
        };
        for entry in dir {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "vkey") {
                let text = std::fs::read_to_string(&path)?;
                keys.push(NoteVerifier::parse(&text).with_context(|| format!("retired key `{}`", path.display()))?);
            }
        }
        Ok(keys)
    }
}

/// The ledger's name in checkpoints when the configuration gives none.
pub const DEFAULT_ORIGIN: &str = "rempart";

/// Opens the audit ledger on `store`, creating its keys on first use.
pub async fn open_ledger(
    data_dir: &Path,
    config: &rempart_config::Config,
    store: Arc<dyn Backend>,
) -> anyhow::Result<Ledger> {
    let audit = &config.audit;
    let paths = LedgerPaths::new(data_dir, audit);
    let origin = audit.origin.as_deref().unwrap_or(DEFAULT_ORIGIN);
    let signer = Signer::load(&paths.signing_key, origin, paths.create)?;
    let master = if paths.create {
        MasterKey::load_or_create(&paths.master_key)?
    } else {
        MasterKey::load_existing(&paths.master_key)?
    };
    let options = LedgerOptions {
        checkpoint_every: audit.checkpoint_every,
        checkpoint_interval: std::time::Duration::from_secs(audit.checkpoint_interval_secs),
        witnesses: paths.witnesses.clone(),
        retired_keys: paths.retired_keys()?,
        ..LedgerOptions::default()
    };
    Ledger::open(store, master, signer, options, Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the audit ledger in `{}`", data_dir.display()))
}

/// Reads the configuration named by `--config` (or `REMPART_CONFIG`), else the defaults.
/// What is valid but risky in it is logged as a warning.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<rempart_config::Config> {
    let config = match path {
        Some(p) => rempart_config::Config::load(p)?,
        None => rempart_config::Config::default(),
    };
    for w in config.warnings() {
        tracing::warn!(key = %w.path, "{}", w.message);
    }
    Ok(config)
}

/// Who runs this command, as ledger records name them.
///
/// The account is the one the process runs as (the owner of `/proc/self`), named from
/// `/etc/passwd`: never `$USER` or `$LOGNAME`, which anyone sets to anything, so
/// `USER=bob rempart … approve` is still the same person as without it.
pub fn cli_actor() -> String {
    format!("cli:{}", os_account())
}

/// The name of the account this process runs as, or `uid:N` when `/etc/passwd` does not name
/// it.
fn os_account() -> String {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_owned();
    };
    account_name(&std::fs::read_to_string("/etc/passwd").unwrap_or_default(), uid)
        .unwrap_or_else(|| format!("uid:{uid}"))
}

/// The account name of `uid` in a `passwd` file (`name:password:uid:…` per line).
fn account_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The privacy engine over the instance's store and keyring.
pub fn privacy(
    config: &rempart_config::Config,
    ledger: &Ledger,
    store: Arc<dyn Backend>,
) -> anyhow::Result<Arc<rempart_privacy::Privacy>> {
    Ok(Arc::new(rempart_privacy::Privacy::new(
        &config.privacy,
        ledger.keyring(),
        store as Arc<dyn rempart_store::VaultStore>,
    )?))
}

/// The incident service over the instance's store.
pub async fn incidents(
    config: &rempart_config::Config,
    ledger: &Ledger,
    store: Arc<dyn Backend>,
) -> anyhow::Result<rempart_server::incidents::Incidents> {
    rempart_server::incidents::Incidents::open(
        store.clone() as Arc<dyn rempart_store::IncidentStore>,
        store as Arc<dyn rempart_store::Store>,
        ledger.clone(),
        rempart_triage::Settings::from_config(&config.incidents),
    )
    .await
    .context("cannot load the open incidents")
}

/// The playbooks of `[respond] playbooks`, checked against the configured connectors; any
/// playbook that does not check is an error listing every problem (a playbook that silently
/// did not load would be a response that silently never happens).
pub fn playbooks(config: &rempart_config::Config) -> anyhow::Result<Vec<rempart_respond::Playbook>> {
    let (good, errors) = rempart_respond::playbook::load_all(
        &config.respond.playbooks,
        rempart_respond::CheckContext {
            connectors: &config.connectors,
            default_approval_timeout_secs: config.respond.approval_timeout_secs,
        },
    );
    if !errors.is_empty() {
        let mut msg = format!("{} playbook file(s) do not check:", errors.len());
        for e in &errors {
            for p in &e.problems {
                msg.push_str(&format!("\n  {}: {p}", e.file.display()));
            }
        }
        anyhow::bail!(msg);
    }
    Ok(good)
}

/// The response service over the instance's store.
pub fn response(
    config: &rempart_config::Config,
    ledger: &Ledger,
    store: Arc<dyn Backend>,
    incidents: rempart_server::incidents::Incidents,
    metrics: Arc<rempart_server::metrics::Metrics>,
) -> anyhow::Result<rempart_server::respond::Response> {
    let connectors = rempart_respond::connectors::Connectors::new(&config.connectors).map_err(anyhow::Error::msg)?;
    Ok(rempart_server::respond::Response::new(rempart_server::respond::Parts {
        store: store as Arc<dyn rempart_store::ResponseStore>,
        incidents,
        ledger: ledger.clone(),
        connectors,
        own_ranges: rempart_respond::connectors::OwnRanges::new(&config.respond),
        playbooks: playbooks(config)?,
        inventory: rempart_triage::severity::Inventory::new(&config.incidents.assets),
        regulatory: config.regulatory.clone(),
        backoff: std::time::Duration::from_secs(1),
        metrics,
    }))
}

/// The data class of events by source, from `[[privacy.classify]]`.
pub fn classify(config: &rempart_config::Config) -> Vec<(String, rempart_model::DataClass)> {
    config
        .privacy
        .classify
        .iter()
        .map(|c| (c.pattern.clone(), c.class))
        .collect()
}

/// The live anomaly detector of `[anomaly]` with its stored state; `None` when disabled.
pub async fn anomaly(
    config: &rempart_config::Config,
    store: &dyn rempart_store::Store,
) -> Option<Arc<rempart_server::anomaly::Anomaly>> {
    let a = &config.anomaly;
    if !a.enabled {
        return None;
    }
    Some(rempart_server::anomaly::Anomaly::load(store, a).await)
}

#[cfg(test)]
mod tests {
    use super::account_name;

    #[test]
    fn an_account_is_named_from_its_uid_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# a comment\nbroken\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(account_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(account_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(account_name(passwd, 1001), None);
    }
}

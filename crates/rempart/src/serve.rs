//! `rempart serve`: the API and syslog listeners until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rempart_audit::{Draft, Ledger, kind};
use rempart_config::{Config, Connections};
use rempart_ingest::decode::DecodeOptions;
use rempart_server::AppState;
use rempart_server::cluster::Role;
use rempart_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::instance;

pub async fn run(data_dir: &Path, config: Config, listen: Option<SocketAddr>, role: Role) -> anyhow::Result<()> {
    if role.needs_bus() {
        anyhow::ensure!(
            config.bus.is_some(),
            "`--role {role}` runs one part of a cluster: configure `[bus]` (the NATS JetStream servers), or serve `--role all`"
        );
        anyhow::ensure!(
            config.store.url.is_some(),
            "`--role {role}` runs one part of a cluster, whose processes share one PostgreSQL store: configure `[store] url`"
        );
    }
    instance::set_role(role.as_str());
    let store = instance::open_store(data_dir, &config).await?;
    // Before anything is written: a damaged file is restored, not extended.
    let started = std::time::Instant::now();
    store
        .check()
        .await
        .context("the store failed its integrity check; the server did not start")?;
    tracing::debug!(took = ?started.elapsed(), "store integrity checked");
    let ledger = instance::open_ledger(data_dir, &config, store.clone()).await?;
    let privacy = instance::privacy(&config, &ledger, store.clone())?;
    serve_store(
        store,
        ledger,
        privacy,
        data_dir,
        &config,
        Process {
            listen: listen.unwrap_or(config.server.listen),
            role,
        },
        None,
    )
    .await
}

/// What this process is: its role, and where it serves the API and the console.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub listen: SocketAddr,
    pub role: Role,
}

/// Told the bound address and the server's state once the server listens.
pub type Ready<'a> = dyn Fn(SocketAddr, &AppState) + 'a;

/// Serves `store` until a shutdown signal; prints where it listens. `ready` is told the
/// bound address and the server's state (for the demo's banner and sign-in link).
pub async fn serve_store(
    store: Arc<dyn rempart_store::Backend>,
    ledger: Ledger,
    privacy: Arc<rempart_privacy::Privacy>,
    data_dir: &Path,
    config: &Config,
    Process { listen, role }: Process,
    ready: Option<&Ready<'_>>,
) -> anyhow::Result<()> {
    // Before anything announces the server: a signal from then on shuts it down gracefully.
    let signalled = shutdown_signal();
    let decode = DecodeOptions {
        timestamp_field: config.ingest.timestamp_field.clone(),
        classify: instance::classify(config),
        ..DecodeOptions::default()
    };
    let intel_store: Arc<dyn rempart_store::IntelStore> = store.clone();
    let incidents = instance::incidents(config, &ledger, store.clone()).await?;
    let sqlite = store.clone();
    let erasure: Arc<dyn rempart_store::ErasureStore> = store.clone();
    let store: Arc<dyn Store> = store;
    let mut state = AppState::new(store.clone(), ledger.clone(), decode);
    // A compressed body may inflate to no more than a plain body may be.
    state.max_inflated_bytes = config.server.max_body_bytes as u64;
    state.rate = Arc::new(rempart_server::auth::RateLimit::per_minute(
        config.server.requests_per_minute,
    ));
    state.auth_failures = Arc::new(rempart_server::auth::Failures::with_limit(
        config.server.auth_failures_per_minute,
    ));
    state.erasure = Some(erasure);
    let response = instance::response(config, &ledger, sqlite, incidents.clone(), state.metrics.clone())?;
    state.intel_store = Some(intel_store.clone());
    let detects = matches!(role, Role::All | Role::Detect);
    // The correlate role owns the Sigma correlation partitions: it needs the rules too.
    let loads_rules = detects || role == Role::Correlate;
    match role {
        // One process: the detectors learn here, from the stored state.
        Role::All => state.anomaly = instance::anomaly(config, &*store).await,
        // A cluster's detect process only tells which events the detectors look at; their
        // owner, a correlate process, runs them.
        Role::Detect if config.anomaly.enabled => {
            state.anomaly = Some(Arc::new(rempart_server::anomaly::Anomaly::fresh(&config.anomaly)));
        }
        _ => {}
    }
    state.incidents = Some(incidents.clone());
    if !config.gateway.routes.is_empty() {
        let gateway = rempart_gateway::Gateway::new(config.gateway.clone(), Some(privacy.clone()), ledger.clone())
            .context("cannot start the gateway")?;
        tracing::info!(
            providers = config.gateway.providers.len(),
            routes = config.gateway.routes.len(),
            "gateway ready"
        );
        state.gateway = Some(gateway);
    }
    state.privacy = Some(privacy);
    let gateway = state.gateway.clone();
    if loads_rules && !config.detection.rules.is_empty() {
        let (rules, report) = crate::detect::load_rules(&config.detection.rules, config.detection.attack.as_deref())?;
        tracing::info!(
            loaded = report.loaded.len(),
            rejected = report.rejected.len(),
            "detection rules loaded"
        );
        for r in &report.rejected {
            tracing::warn!(file = %r.file, line = r.line, reason = %r.reason, "rule rejected");
        }
        state.rules = rempart_server::ActiveRules::new(Some(Arc::new(rules)));
    }
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let attack = config
        .detection
        .attack
        .as_deref()
        .map(crate::detect::load_attack)
        .transpose()?
        .map(Arc::new);
    let triage =
        rempart_server::triage::Triage::new(state.triage_parts(), incidents.clone(), attack, config.triage.clone());
    state.triage = Some(triage.clone());
    tracing::info!(
        playbooks = response.playbooks().len(),
        connectors = config.connectors.len(),
        "response ready"
    );
    state.response = Some(response.clone());
    // What one process of the whole deployment does: triage, response, feeds, retention. In a
    // cluster, the holder of the correlator lease, which tells the respond processes on the
    // `bus` what happens to incidents instead of starting playbooks itself.
    let lead = {
        let (tracker, cancel, config, ledger) = (tracker.clone(), cancel.clone(), config.clone(), ledger.clone());
        let (store, intel_store, incidents) = (store.clone(), intel_store.clone(), incidents.clone());
        move |bus: Option<rempart_bus::Bus>| {
            if config.triage.auto {
                tracing::info!(
                    model = triage.has_model(),
                    route = %config.triage.route,
                    per_hour = config.triage.per_hour,
                    "automatic triage on"
                );
                tracker.spawn(triage.run_auto(cancel.clone()));
            }
            match bus {
                None => {
                    tracker.spawn(response.run_background(cancel.clone()));
                }
                Some(bus) => {
                    tracker.spawn(rempart_server::cluster::tell_incidents(incidents, bus, cancel.clone()));
                    tracker.spawn(response.run_timers(cancel.clone()));
                }
            }
            spawn_taxii_polls(&tracker, &cancel, &config, intel_store, &ledger);
            spawn_retention(
                &tracker,
                cancel.clone(),
                store,
                ledger.clone(),
                config.retention.events_days,
                config.audit.retention_days,
            );
        }
    };
    if loads_rules && !config.detection.rules.is_empty() {
        spawn_rule_reload(&tracker, cancel.clone(), &state, config);
    }
    if detects {
        spawn_intel_reload(&tracker, cancel.clone(), &state, intel_store).await?;
    }
    // A role that fails for good (the correlator losing its lease) stops the process.
    let failed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let fail = CancellationToken::new();
    match (role, &config.bus) {
        (Role::All, _) => lead(None),
        (role, Some(settings)) => {
            let name = format!("rempart-{role}-{}", std::process::id());
            let bus = rempart_bus::Bus::connect(settings, &name)
                .await
                .context("cannot connect to the bus")?;
            state.bus = Some(bus.clone());
            state.correlation_partitions = settings.correlation_partitions;
            let services = state.services();
            tracker.spawn(rempart_server::cluster::watch_lag(
                services.clone(),
                bus.clone(),
                cancel.clone(),
            ));
            match role {
                Role::Detect => {
                    tracker.spawn(rempart_server::cluster::detect(services.clone(), bus, cancel.clone()));
                }
                Role::Respond => {
                    tracker.spawn(rempart_server::cluster::respond(services.clone(), bus, cancel.clone()));
                }
                Role::Correlate => {
                    tracker.spawn(rempart_server::cluster::own_partitions(
                        services.clone(),
                        bus.clone(),
                        cancel.clone(),
                    ));
                    if config.anomaly.enabled {
                        tracker.spawn(rempart_server::cluster::own_anomaly(
                            services.clone(),
                            bus.clone(),
                            cancel.clone(),
                            config.anomaly.clone(),
                        ));
                    }
                    let (services, cancel, failed, fail) =
                        (services.clone(), cancel.clone(), failed.clone(), fail.clone());
                    let telling = bus.clone();
                    tracker.spawn(async move {
                        let lead = move || lead(Some(telling));
                        if let Err(e) = rempart_server::cluster::correlate(services, bus, cancel, lead).await {
                            tracing::error!(error = %e, "the correlator stopped");
                            *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                            fail.cancel();
                        }
                    });
                }
                Role::All | Role::Ingest | Role::Api => {}
            }
        }
        (role, None) => anyhow::bail!("`--role {role}` needs `[bus]`"),
    }
    if let Some(anomaly) = state.anomaly.clone().filter(|_| role == Role::All) {
        let store = state.store.clone();
        let cancel = cancel.clone();
        // The baselines' state is saved every minute and when the server stops.
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.tick().await;
            loop {
                let stop = tokio::select! {
                    () = cancel.cancelled() => true,
                    _ = tick.tick() => false,
                };
                if let Err(e) = anomaly.save(&*store).await {
                    tracing::warn!(error = %e, "baselines not saved");
                }
                if stop {
                    return;
                }
            }
        });
    }
    let takes_syslog = matches!(role, Role::All | Role::Ingest);
    let (http_limits, syslog_limits) = fit_to_file_limit(config, takes_syslog);
    let bound = if takes_syslog {
        let syslog = rempart_config::Syslog {
            connections: syslog_limits,
            ..config.syslog.clone()
        };
        rempart_server::syslog::start(&state, &syslog, config.ingest.batch_size, &tracker, cancel.clone())
            .await
            .map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    if let Some(settings) = &config.oidc {
        let oidc = rempart_server::oidc::Oidc::new(settings).map_err(|e| anyhow::anyhow!("`[oidc]`: {e}"))?;
        tracing::info!(issuer = %settings.issuer, client = %settings.client_id, "console sign-in through the identity provider");
        state.oidc = Some(Arc::new(oidc));
    }
    // Bearer tokens, personal data and prompts must not cross a network in clear.
    let tls = match &config.server.tls {
        Some(settings) => Some(Arc::new(
            rempart_server::tls::Tls::load(settings).map_err(|e| anyhow::anyhow!("`[server.tls]`: {e}"))?,
        )),
        None if listen.ip().is_loopback() => None,
        None if config.server.allow_plaintext => {
            tracing::warn!(
                %listen,
                "serving plain HTTP on a network address (`server.allow_plaintext = true`): tokens, personal data and prompts cross the network in clear"
            );
            None
        }
        None => anyhow::bail!(
            "refusing to serve plain HTTP on {listen}, which is not a loopback address: configure `[server.tls]` \
             (cert_file, key_file), or set `server.allow_plaintext = true` to accept the risk"
        ),
    };
    if let Some(tls) = &tls {
        state.console = Arc::new(rempart_server::console::Console {
            secure: true,
            ..rempart_server::console::Console::default()
        });
        state.cert_clients = Arc::new(
            config
                .server
                .tls
                .as_ref()
                .map(|t| t.clients.clone())
                .unwrap_or_default(),
        );
        spawn_tls_reload(&tracker, cancel.clone(), tls.clone());
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    ledger
        .append(
            Draft::new(
                "system",
                kind::SERVER_START,
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "role": role.as_str(),
                    "listen": addr,
                    "config": config.source.as_ref().map(|s| serde_json::json!({"path": s.path, "sha256": s.sha256})),
                    "rules": config.detection.rules,
                }),
            )
            .public(),
        )
        .await
        .context("cannot record the start in the audit ledger")?;
    if role.needs_bus() {
        spawn_heartbeat(&tracker, cancel.clone(), state.store.clone(), role, addr);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, %role, data_dir = %data_dir.display(), tls = tls.is_some(), "API listening");
    tracing::info!(url = %format!("{scheme}://{addr}/"), "console served");
    for (kind, a) in &bound {
        tracing::info!(%kind, addr = %a, "syslog listening");
    }
    if let Some(ready) = ready {
        ready(addr, &state);
    }
    let stop = cancel.clone();
    let failing = fail.clone();
    let shutdown = async move {
        tokio::select! {
            () = signalled => tracing::info!("shutting down: draining in-flight requests"),
            () = failing.cancelled() => tracing::error!("stopping: a role failed"),
        }
        stop.cancel();
    };
    let state_bus = state.bus.clone();
    let listen = rempart_server::listen::Listen {
        tls,
        limits: http_limits,
        max_body_bytes: config.server.max_body_bytes,
    };
    rempart_server::run(listener, state, listen, shutdown).await?;
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    if let Some(g) = gateway {
        g.close().await;
    }
    if let Err(e) = ledger
        .append(Draft::new("system", kind::SERVER_STOP, serde_json::json!({})).public())
        .await
    {
        tracing::error!(error = %e, "cannot record the stop in the audit ledger");
    }
    ledger.close().await;
    if let Some(bus) = state_bus {
        bus.close().await;
    }
    tracing::info!("stopped");
    match failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        Some(reason) => Err(anyhow::anyhow!(reason)),
        None => Ok(()),
    }
}

/// How often the listener's certificate, key, CA and CRL files are checked for a change.
const TLS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves a renewed certificate (or CA, or CRL) within [`TLS_RELOAD_EVERY`] of its files
/// changing; a file that does not load keeps the configuration in force and is reported.
/// Files the process keeps for itself besides the listeners' connections (the store, the
/// ledger and its witness, the bus, providers, connectors), at most a quarter of the limit.
const FILES_KEPT: u64 = 256;

/// Raises the soft limit on open files to the hard one, then lowers the API's and the syslog
/// listeners' connection caps to their share of it, so that connections are refused by a cap
/// the server chose (and counts) before accepting fails for want of a file descriptor.
fn fit_to_file_limit(config: &Config, takes_syslog: bool) -> (Connections, Connections) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the limit on open files; assuming 1024");
            1024
        }
    };
    let syslog_listeners = if takes_syslog {
        u64::from(config.syslog.tcp.is_some()) + u64::from(config.syslog.tls.is_some())
    } else {
        0
    };
    let share = limit.saturating_sub(FILES_KEPT.min(limit / 4)) / (1 + syslog_listeners);
    let share = u32::try_from(share).unwrap_or(u32::MAX).max(1);
    let fit = |mut c: Connections, listener: &str| {
        if c.max > share {
            tracing::warn!(
                listener,
                configured = c.max,
                allowed = share,
                file_limit = limit,
                "connection cap lowered to what the limit on open files allows"
            );
            c.max = share;
        }
        c.max_per_peer = c.max_per_peer.min(c.max);
        c
    };
    let http = fit(config.server.connections, "http");
    let syslog = fit(config.syslog.connections, "syslog");
    tracing::debug!(
        file_limit = limit,
        http = http.max,
        syslog = syslog.max,
        "connection caps"
    );
    (http, syslog)
}

fn spawn_tls_reload(tracker: &TaskTracker, cancel: CancellationToken, tls: Arc<rempart_server::tls::Tls>) {
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(TLS_RELOAD_EVERY);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match tls.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "TLS files changed but do not load; the previous certificate stays in force"),
            }
        }
    });
}

/// Polls every `[[intel.taxii]]` collection at start and then every `every_secs`: what a poll
/// brings is recorded (`intel.import`), then stored, and the reload task puts it in force. A
/// failed poll is logged and retried at the next interval; the indicators in force stay.
fn spawn_taxii_polls(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    config: &Config,
    store: Arc<dyn rempart_store::IntelStore>,
    ledger: &Ledger,
) {
    for feed in config.intel.taxii.clone() {
        let (store, ledger, cancel) = (store.clone(), ledger.clone(), cancel.clone());
        tracker.spawn(async move {
            loop {
                match poll_feed(&feed, &*store, &ledger).await {
                    Ok((stored, skipped)) => {
                        tracing::info!(collection = %feed.url, stored, skipped, "TAXII collection polled");
                    }
                    Err(e) => tracing::warn!(collection = %feed.url, error = %format!("{e:#}"), "TAXII poll failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(feed.every_secs)) => {}
                    () = cancel.cancelled() => return,
                }
            }
        });
    }
}

async fn poll_feed(
    feed: &rempart_config::TaxiiFeed,
    store: &dyn rempart_store::IntelStore,
    ledger: &Ledger,
) -> anyhow::Result<(u64, usize)> {
    let login = match (&feed.username, &feed.password_env) {
        (Some(u), Some(var)) => Some((
            u.clone(),
            std::env::var(var).with_context(|| format!("the TAXII password variable `{var}` is not set"))?,
        )),
        _ => None,
    };
    let imported = crate::intel::taxii::poll(&feed.url, login, feed.ca_file.as_deref()).await?;
    let records = rempart_server::intel::records(&imported, jiff::Timestamp::now())?;
    ledger
        .append(
            Draft::new(
                "taxii",
                kind::INTEL_IMPORT,
                serde_json::json!({"source": feed.url, "imported": records.len(), "skipped": imported.skipped.len()}),
            )
            .public(),
        )
        .await?;
    let stored = store.intel_put(&records).await?;
    Ok((stored, imported.skipped.len()))
}

/// Loads the stored indicators, then checks every [`RULE_RELOAD_CHECK`] for a new import
/// (`rempart intel import` from another process) and swaps the index whole.
async fn spawn_intel_reload(
    tracker: &TaskTracker,
    cancel: CancellationToken,
    state: &AppState,
    store: Arc<dyn rempart_store::IntelStore>,
) -> anyhow::Result<()> {
    let mut seen = store.intel_state().await?;
    let index = rempart_server::intel::load(&*store).await?;
    if !index.is_empty() {
        tracing::info!(indicators = index.len(), "threat-intelligence indicators loaded");
        state.intel.replace(Arc::new(index));
    }
    let intel = state.intel.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(RULE_RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            match store.intel_state().await {
                Ok(now) if now != seen => match rempart_server::intel::load(&*store).await {
                    Ok(index) => {
                        seen = now;
                        tracing::info!(indicators = index.len(), "threat-intelligence indicators reloaded");
                        intel.replace(Arc::new(index));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reload indicators; keeping those in force"),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check for new indicators"),
            }
        }
    });
    Ok(())
}

/// How often rule files are checked for changes.
const RULE_RELOAD_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// What the rule files look like now: paths, sizes and modification times.
fn rule_fingerprint(paths: &[std::path::PathBuf]) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut files = rempart_ingest::files::walk(paths).unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (f, len, modified)
        })
        .collect()
}

/// Reloads the rules when their files change, without a restart. A reload that loads no rule
/// keeps the rules in force; each reload is recorded in the ledger.
fn spawn_rule_reload(tracker: &TaskTracker, cancel: CancellationToken, state: &AppState, config: &Config) {
    let paths = config.detection.rules.clone();
    let attack = config.detection.attack.clone();
    let rules = state.rules.clone();
    let ledger = state.ledger.clone();
    tracker.spawn(async move {
        let mut seen = rule_fingerprint(&paths);
        let mut tick = tokio::time::interval(RULE_RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            let (now, paths2) = (rule_fingerprint(&paths), paths.clone());
            if now == seen {
                continue;
            }
            seen = now;
            let attack2 = attack.clone();
            let loaded =
                tokio::task::spawn_blocking(move || crate::detect::load_rules(&paths2, attack2.as_deref())).await;
            match loaded {
                Ok(Ok((set, report))) if !report.loaded.is_empty() => {
                    let record = Draft::new(
                        "system",
                        kind::RULES_RELOAD,
                        serde_json::json!({"loaded": report.loaded.len(), "rejected": report.rejected.len()}),
                    )
                    .public();
                    if let Err(e) = ledger.append(record).await {
                        tracing::error!(error = %e, "rules changed but the reload could not be recorded; keeping the old rules");
                        continue;
                    }
                    rules.replace(Arc::new(set));
                    tracing::info!(loaded = report.loaded.len(), rejected = report.rejected.len(), "detection rules reloaded");
                }
                Ok(Ok((_, report))) => {
                    tracing::warn!(rejected = report.rejected.len(), "changed rules load nothing; keeping the rules in force");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload rules; keeping the rules in force"),
                Err(e) => tracing::warn!(error = %e, "rule reload failed"),
            }
        }
    });
}

/// How often a process of a cluster records that it is alive.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// Records this process in the shared store every [`HEARTBEAT`] (for `rempart cluster
/// status`), and removes it when it stops.
fn spawn_heartbeat(
    tracker: &TaskTracker,
    cancel: CancellationToken,
    store: Arc<dyn Store>,
    role: Role,
    addr: SocketAddr,
) {
    let now = jiff::Timestamp::now();
    let mut member = rempart_store::Member {
        id: instance::application(),
        role: role.as_str().to_owned(),
        host: instance::host(),
        pid: std::process::id(),
        listen: Some(addr.to_string()),
        started: now,
        seen: now,
    };
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => break,
            }
            member.seen = jiff::Timestamp::now();
            if let Err(e) = store.member_beat(&member).await {
                tracing::warn!(error = %e, "cannot record this process as alive");
            }
        }
        if let Err(e) = store.member_leave(&member.id).await {
            tracing::warn!(error = %e, "cannot record this process as stopped");
        }
    });
}

/// Deletes events, and ledger payloads (keeping their hashes), past retention once an hour.
fn spawn_retention(
    tracker: &TaskTracker,
    cancel: CancellationToken,
    store: Arc<dyn Store>,
    ledger: Ledger,
    days: u32,
    audit_days: u32,
) {
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = cancel.cancelled() => return,
            }
            let cut = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
            match store.prune_events(cut).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, days, "retention pruned events"),
                Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
            }
            let cut = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(audit_days));
            match ledger.prune_payloads("system", cut).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, days = audit_days, "retention pruned ledger payloads"),
                Err(e) => tracing::warn!(error = %e, "ledger payload pruning failed"),
            }
        }
    });
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled, so that a signal arriving while the server starts is not lost (nor fatal).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut int, mut term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = int => {}
                () = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

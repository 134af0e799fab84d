//! `rempart serve`: the API and syslog listeners until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rempart_audit::{Draft, Ledger, kind};
use rempart_config::Config;
use rempart_ingest::decode::DecodeOptions;
use rempart_server::AppState;
use rempart_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::instance;

pub async fn run(data_dir: &Path, config: Config, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let store = instance::open_store(data_dir).await?;
    let ledger = instance::open_ledger(data_dir, &config, store.clone()).await?;
    let privacy = instance::privacy(&config, &ledger, store.clone())?;
    serve_store(
        store,
        ledger,
        privacy,
        data_dir,
        &config,
        listen.unwrap_or(config.server.listen),
        None,
    )
    .await
}

/// Serves `store` until a shutdown signal; prints where it listens. `ready` is told the
/// bound address (for the demo's banner).
pub async fn serve_store(
    store: Arc<dyn Store>,
    ledger: Ledger,
    privacy: Arc<rempart_privacy::Privacy>,
    data_dir: &Path,
    config: &Config,
    listen: SocketAddr,
    ready: Option<&dyn Fn(SocketAddr)>,
) -> anyhow::Result<()> {
    let decode = DecodeOptions {
        timestamp_field: config.ingest.timestamp_field.clone(),
        ..DecodeOptions::default()
    };
    let mut state = AppState::new(store.clone(), ledger.clone(), decode);
    state.privacy = Some(privacy);
    if !config.detection.rules.is_empty() {
        let (rules, report) = crate::detect::load_rules(&config.detection.rules, config.detection.attack.as_deref())?;
        tracing::info!(
            loaded = report.loaded.len(),
            rejected = report.rejected.len(),
            "detection rules loaded"
        );
        for r in &report.rejected {
            tracing::warn!(file = %r.file, line = r.line, reason = %r.reason, "rule rejected");
        }
        state.rules = Some(Arc::new(rules));
    }
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let bound = rempart_server::syslog::start(
        &state,
        &config.syslog,
        config.ingest.batch_size,
        &tracker,
        cancel.clone(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    spawn_retention(
        &tracker,
        cancel.clone(),
        store,
        ledger.clone(),
        config.retention.events_days,
        config.audit.retention_days,
    );
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
                    "listen": addr,
                    "config": config.source.as_ref().map(|s| serde_json::json!({"path": s.path, "sha256": s.sha256})),
                    "rules": config.detection.rules,
                }),
            )
            .public(),
        )
        .await
        .context("cannot record the start in the audit ledger")?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "API listening");
    for (kind, a) in &bound {
        tracing::info!(%kind, addr = %a, "syslog listening");
    }
    if let Some(ready) = ready {
        ready(addr);
    }
    let stop = cancel.clone();
    rempart_server::run(listener, state, config.server.max_body_bytes, async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        stop.cancel();
    })
    .await?;
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    if let Err(e) = ledger
        .append(Draft::new("system", kind::SERVER_STOP, serde_json::json!({})).public())
        .await
    {
        tracing::error!(error = %e, "cannot record the stop in the audit ledger");
    }
    ledger.close().await;
    tracing::info!("stopped");
    Ok(())
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! `rempart cluster`: how the processes of a cluster, its bus and its store are doing.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;
use jiff::Timestamp;
use serde_json::json;

use crate::instance;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The processes alive and their roles, the holders of the correlator's, the anomaly
    /// detectors' and each correlation partition's leases, the bus's streams with each
    /// consumer's lag, and whether the store answers
    Status,
}

/// A process not seen for this long is reported as gone.
const GONE_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);

pub async fn run(
    data_dir: &Path,
    config: &rempart_config::Config,
    command: ClusterCommand,
    json: bool,
) -> anyhow::Result<()> {
    let ClusterCommand::Status = command;
    let store = instance::open_store(data_dir, config).await?;
    store.ping().await.context("the store does not answer")?;
    let members = store.members().await.context("cannot list the processes")?;
    let holder = store
        .lease_holder(rempart_server::cluster::CORRELATOR_LEASE)
        .await
        .context("cannot read the correlator lease")?;
    // Who owns what a single process must run: the anomaly detectors and each Sigma
    // correlation partition.
    let mut owned = vec![rempart_server::cluster::ANOMALY_LEASE.to_owned()];
    if let Some(bus) = &config.bus {
        owned.extend((0..bus.correlation_partitions).map(rempart_server::cluster::partition_name));
    }
    let mut owners = Vec::with_capacity(owned.len());
    for lease in owned {
        let holder = store
            .lease_holder(&lease)
            .await
            .with_context(|| format!("cannot read the lease `{lease}`"))?;
        owners.push((lease, holder));
    }
    let bus = match &config.bus {
        Some(settings) => Some(
            rempart_bus::Bus::connect(settings, &instance::application())
                .await
                .context("cannot reach the bus")?
                .status()
                .await
                .context("cannot read the bus's streams")?,
        ),
        None => None,
    };
    let now = Timestamp::now();
    let alive = |m: &rempart_store::Member| now.duration_since(m.seen) <= GONE_AFTER;
    let store_kind = if config.store.url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    if json {
        let processes: Vec<_> = members
            .iter()
            .map(|m| {
                json!({
                    "id": m.id, "role": m.role, "host": m.host, "pid": m.pid, "listen": m.listen,
                    "started": m.started, "seen": m.seen, "alive": alive(m),
                    "correlator": holder.as_deref() == Some(m.id.as_str()),
                })
            })
            .collect();
        let owners: Vec<_> = owners
            .iter()
            .map(|(lease, holder)| json!({"lease": lease, "holder": holder}))
            .collect();
        let status = json!({
            "store": {"kind": store_kind, "answers": true},
            "processes": processes,
            "correlator": holder,
            "owners": owners,
            "bus": bus,
        });
        writeln!(crate::out::stdout(), "{status}")?;
        return Ok(());
    }
    let mut out = crate::out::stdout();
    writeln!(out, "store: {store_kind}, answers")?;
    if members.is_empty() {
        writeln!(out, "processes: none recorded (one process serves the embedded store)")?;
    } else {
        writeln!(out, "processes:")?;
        for m in &members {
            let state = if alive(m) { "alive" } else { "gone" };
            let lease = if holder.as_deref() == Some(m.id.as_str()) {
                "  (correlator lease)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {:<10} {:<5} {}  {}  seen {}{lease}",
                m.role,
                state,
                m.id,
                m.listen.as_deref().unwrap_or("-"),
                m.seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )?;
        }
    }
    match &holder {
        Some(h) => writeln!(out, "correlator lease: held by {h}")?,
        None if config.bus.is_some() => writeln!(out, "correlator lease: not held (no correlator is running)")?,
        None => {}
    }
    if config.bus.is_some() {
        writeln!(out, "owners:")?;
        for (lease, holder) in &owners {
            writeln!(out, "  {lease:<22} {}", holder.as_deref().unwrap_or("not held"))?;
        }
    }
    match &bus {
        Some(bus) => {
            writeln!(
                out,
                "bus: {} (connected to {} {})",
                bus.servers, bus.server, bus.version
            )?;
            for s in &bus.streams {
                writeln!(
                    out,
                    "  {:<15} {} messages, {} bytes, {} replica(s); consumer {}: lag {} ({} pending, {} unacknowledged), {} redelivered",
                    s.name,
                    s.messages,
                    s.bytes,
                    s.replicas,
                    s.consumer.name,
                    s.consumer.lag(),
                    s.consumer.pending,
                    s.consumer.unacknowledged,
                    s.consumer.redelivered,
                )?;
            }
        }
        None => writeln!(out, "bus: none configured (`[bus]`)")?,
    }
    Ok(())
}

//! `[bus]`: the NATS JetStream servers the processes of a cluster pass work through.
//!
//! Without it, one process does everything (`serve --role all`, the default). With it, each
//! process runs the roles it is started with, and ingest, detection and correlation meet on
//! JetStream streams kept on the servers' disks:
//!
//! ```toml
//! [bus]
//! servers = ["tls://nats1.soc.example:4222", "tls://nats2.soc.example:4222", "tls://nats3.soc.example:4222"]
//! ca_file = "/etc/rempart/nats-ca.pem"
//! token_file = "/run/credentials/rempart/nats-token"   # or token_env = "REMPART_NATS_TOKEN"
//! replicas = 3
//! max_bytes = 68719476736                              # the events stream's cap (64 GiB)
//! ```
//!
//! As for `[store]`, the secret is never written in a server address.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Problem;
use crate::incidents::bounded;

/// The bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bus {
    /// `nats://host:port` or `tls://host:port`, one per server of the NATS cluster.
    pub servers: Vec<String>,
    /// The CA that signed the servers' certificates (else the system's roots).
    pub ca_file: Option<PathBuf>,
    /// A file holding the authentication token (its first line).
    pub token_file: Option<PathBuf>,
    /// A variable holding the authentication token.
    pub token_env: Option<String>,
    /// Copies JetStream keeps of each stream (1, 3 or 5: a quorum of the NATS cluster).
    pub replicas: u8,
    /// Most bytes the events stream holds before it refuses new batches (senders are then
    /// told to retry: nothing acknowledged is ever dropped).
    pub max_bytes: u64,
    /// Partitions of the Sigma correlation rules' groups: each owned by one `correlate`
    /// process at a time, which keeps their windows and checkpoints them (1–256).
    pub correlation_partitions: u32,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            servers: Vec::new(),
            ca_file: None,
            token_file: None,
            token_env: None,
            replicas: 1,
            max_bytes: 8 << 30,
            correlation_partitions: 8,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBus {
    servers: Option<Vec<String>>,
    ca_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    replicas: Option<i64>,
    max_bytes: Option<i64>,
    correlation_partitions: Option<i64>,
}

pub(crate) fn validate(raw: Option<RawBus>, problems: &mut Vec<Problem>) -> Option<Bus> {
    let raw = raw?;
    let mut out = Bus::default();
    let servers = raw.servers.unwrap_or_default();
    if servers.is_empty() {
        problems.push(Problem {
            path: "bus.servers".into(),
            message: "name at least one NATS server (`nats://host:4222` or `tls://host:4222`)".into(),
        });
    }
    for (i, s) in servers.iter().enumerate() {
        let path = format!("bus.servers[{i}]");
        let Some((scheme, rest)) = s.split_once("://") else {
            problems.push(Problem {
                path,
                message: format!("`{s}` is not a `nats://host:port` or `tls://host:port` address"),
            });
            continue;
        };
        if !matches!(scheme, "nats" | "tls") {
            problems.push(Problem {
                path,
                message: format!("`{scheme}://`: expected `nats://` or `tls://`"),
            });
        } else if rest.contains('@') {
            problems.push(Problem {
                path,
                message: "holds credentials: give the token in `token_file` or `token_env` instead".into(),
            });
        } else if rest.is_empty() || rest.contains('/') {
            problems.push(Problem {
                path,
                message: format!("`{s}` is not a `host:port` address"),
            });
        }
    }
    if raw.token_file.is_some() && raw.token_env.is_some() {
        problems.push(Problem {
            path: "bus.token_file".into(),
            message: "give `token_file` or `token_env`, not both".into(),
        });
    }
    for (path, file) in [("bus.token_file", &raw.token_file), ("bus.ca_file", &raw.ca_file)] {
        if let Some(f) = file
            && !f.is_file()
        {
            problems.push(Problem {
                path: path.into(),
                message: format!("file `{}` does not exist", f.display()),
            });
        }
    }
    match raw.replicas {
        None => {}
        Some(n @ (1 | 3 | 5)) => out.replicas = n as u8,
        Some(n) => problems.push(Problem {
            path: "bus.replicas".into(),
            message: format!("{n}: JetStream keeps 1, 3 or 5 copies"),
        }),
    }
    if let Some(n) = bounded(problems, "bus.max_bytes", raw.max_bytes, (64 << 20)..=i64::MAX) {
        out.max_bytes = n;
    }
    if let Some(n) = bounded(
        problems,
        "bus.correlation_partitions",
        raw.correlation_partitions,
        1..=256,
    ) {
        out.correlation_partitions = u32::try_from(n).unwrap_or(out.correlation_partitions);
    }
    out.servers = servers;
    out.ca_file = raw.ca_file;
    out.token_file = raw.token_file;
    out.token_env = raw.token_env;
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use crate::Config;

    #[test]
    fn a_bus_reads_and_bad_addresses_are_named() {
        let cfg = Config::parse(
            "version = 1\n[bus]\nservers = [\"nats://127.0.0.1:4222\", \"tls://n2.example:4222\"]\ntoken_env = \"T\"\nreplicas = 3\n",
            "t.toml",
        )
        .unwrap();
        let bus = cfg.bus.unwrap();
        assert_eq!(bus.servers.len(), 2);
        assert_eq!(bus.replicas, 3);
        assert_eq!(bus.token_env.as_deref(), Some("T"));
        assert_eq!(Config::default().bus, None, "one process, no bus, by default");
        let err = Config::parse(
            "version = 1\n[bus]\nservers = [\"nats://u:secret@n1:4222\", \"http://n2\", \"n3:4222\"]\nreplicas = 2\nmax_bytes = 5\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        for expect in [
            "`bus.servers[0]`: holds credentials",
            "`bus.servers[1]`: `http://`: expected",
            "`bus.servers[2]`: `n3:4222` is not a",
            "`bus.replicas`: 2: JetStream keeps 1, 3 or 5 copies",
            "`bus.max_bytes`: 5 is outside",
        ] {
            assert!(err.contains(expect), "{expect} in {err}");
        }
        assert!(!err.contains("secret"), "the secret is not repeated: {err}");
        let err = Config::parse("version = 1\n[bus]\n", "t.toml").unwrap_err().to_string();
        assert!(err.contains("`bus.servers`: name at least one"), "{err}");
    }
}

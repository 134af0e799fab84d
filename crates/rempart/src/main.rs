//! The `rempart` command line.
//!
//! Exit codes: 0 success; 1 the command failed (a one-line reason on stderr); 2 the command
//! line itself was wrong (clap's usage error).

mod anomaly;
mod audit;
mod benign;
mod cli;
mod cluster;
mod demo;
mod detect;
mod gateway;
mod incidents;
mod ingest;
mod injection;
mod instance;
mod intel;
mod out;
mod privacy;
mod respond;
mod serve;
mod store;
mod triage;
mod tuning;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: decoding allocates many small strings and maps per event, and glibc's malloc
/// spent a fifth of ingest time in allocation and free (measured with `perf`, see
/// BENCHMARKS.md). Its arenas keep transparent huge pages: they cost up to 0.4 s of system
/// time while SigmaHQ's rules load (fresh huge pages zeroed), and detection runs 3 to 6 %
/// faster on them for as long as the process lives.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Warned>().is_some() => {
            let _ = writeln!(std::io::stderr(), "warning: {e}");
            ExitCode::from(Warned::STATUS)
        }
        Err(e) => {
            // One line: the error and its causes, joined.
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            let _ = writeln!(std::io::stderr(), "error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// A command that did its work but ends on a condition its caller must act on, told by its own
/// exit status ([`Warned::STATUS`]) rather than by failure: `audit verify` on a ledger that
/// verifies while its witness is missing.
#[derive(Debug)]
pub struct Warned(pub String);

impl std::fmt::Display for Warned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Warned {}

impl Warned {
    /// The exit status: 0 is success, 1 failure, 2 a usage error (clap's).
    pub const STATUS: u8 = 3;
}

fn init_tracing(verbose: u8) {
    // sqlx warns of every statement over a second; a sweep or a stored hunt is such a
    // statement by design, so those warnings show from `-v` on.
    let default = match verbose {
        0 => "warn,rempart=info,sqlx::query=error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

//! `edgekeeper bench`: a load generator that speaks the ZooKeeper client protocol (through
//! `ek-jute`, over plain tokio TCP) to any server, edgekeeper or Apache ZooKeeper.
//!
//! Three modes:
//! - `load`: sessions spread round-robin over `--servers`, each keeping `--in-flight`
//!   requests outstanding, drawing ops from a mix (create, setData, getData, exists,
//!   multi) over keys created beforehand; warm-up, then a phase bounded by op count and/or
//!   duration; per-op HDR-histogram latency percentiles.
//! - `failover`: writers at a fixed rate; the leader (found with `srvr`) is killed with
//!   SIGKILL; reports the longest gap between successful writes.
//! - `startup`: launches a server command and times launch → first served read.
//!
//! Each mode prints one human line per op (or one line) and then one JSON line to
//! stdout; progress goes to stderr. The crate never links a server: it only talks to one
//! over the network (and, in `failover` and `startup`, signals processes the caller
//! names). Individual request errors are counted, not fatal; a lost connection in `load`
//! fails the run.
#![warn(missing_docs)]

mod conn;
mod error;
mod failover;
mod load;
mod mix;
mod process;
mod session;
mod startup;
mod stats;
mod tree;
mod writer;

use std::io::Write;

use serde::Serialize;

pub use error::BenchError;
pub use failover::{run_failover, FailoverArgs, FailoverReport, ServerPid};
pub use load::{run_load, LoadArgs, LoadReport, OpReport};
pub use mix::{OpKind, OpMix};
pub use startup::{run_startup, StartupArgs, StartupReport};
pub use stats::LatencySummary;

/// Benchmark any ZooKeeper-protocol server (edgekeeper or Apache ZooKeeper): `load`,
/// `failover` or `startup`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// The measurement to run.
    #[command(subcommand)]
    pub mode: BenchMode,
}

/// The bench modes.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum BenchMode {
    /// Load with an op mix; latency percentiles per op, then throughput.
    Load(LoadArgs),
    /// Writers at a fixed rate while the leader is killed; the longest write gap.
    Failover(FailoverArgs),
    /// Launch a server command; time to its first served read.
    Startup(StartupArgs),
}

/// Runs the chosen mode and prints its report: the human line(s), then one JSON line.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    match args.mode {
        BenchMode::Load(args) => {
            let report = run_load(&args).await?;
            print_report(&report.human_lines(), &report)
        }
        BenchMode::Failover(args) => {
            let report = run_failover(&args).await?;
            print_report(&[report.human_line()], &report)
        }
        BenchMode::Startup(args) => {
            let report = run_startup(&args).await?;
            print_report(&[report.human_line()], &report)
        }
    }
}

/// Writes `lines` and then `report` as one JSON line to stdout.
fn print_report(lines: &[String], report: &impl Serialize) -> Result<(), BenchError> {
    let json = serde_json::to_string(report)
        .map_err(|error| BenchError::Output(std::io::Error::other(error)))?;
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}").map_err(BenchError::Output)?;
    }
    writeln!(stdout, "{json}").map_err(BenchError::Output)?;
    stdout.flush().map_err(BenchError::Output)
}

/// Parses a number of seconds (fractions allowed, at least 0).
fn parse_secs(text: &str) -> Result<f64, String> {
    let trimmed = text.trim().trim_end_matches('s');
    match trimmed.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..=1e9).contains(&secs) => Ok(secs),
        _ => Err(format!("'{text}': expected seconds, e.g. 10 or 0.5")),
    }
}

#[cfg(test)]
mod tests;

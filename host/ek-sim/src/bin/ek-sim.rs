//! `ek-sim`: runs the deterministic simulator over a range of seeds, or replays one.
//!
//! ```text
//! ek-sim --seeds 10000 [--start 0] [--voters 3|5] [--observers K] [--steps M]
//! EK_SIM_SEED=1234 ek-sim [same flags]      # replay one seed with a verbose trace
//! ```

use clap::Parser;
use ek_sim::{FaultRates, SimConfig};
use std::process::ExitCode;

/// Deterministic simulation of an edgekeeper ensemble under network, disk and crash faults.
#[derive(Parser, Debug)]
#[command(name = "ek-sim", version)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Voting servers (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    voters: u64,
    /// Observers.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=8))]
    observers: u64,
    /// Steps under faults per seed (then heal and converge).
    #[arg(long, default_value_t = 4_000)]
    steps: u64,
    /// Simulated clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Keys the clients write.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    keys: u64,
    /// Run without faults (a perfect network and disks).
    #[arg(long)]
    no_faults: bool,
    /// Links as independent datagrams (loss and reordering inside a stream), beyond the
    /// transport contract of ek_zab::Peer; the default is a reconnecting stream.
    #[arg(long)]
    datagram: bool,
    /// Probability that a packet is lost.
    #[arg(long)]
    drop: Option<f64>,
    /// Probability that a packet is delivered twice.
    #[arg(long)]
    duplicate: Option<f64>,
    /// Probability that a packet ignores its link's FIFO order.
    #[arg(long)]
    reorder: Option<f64>,
    /// Test knob: disks report writes durable before they are (must be caught).
    #[arg(long)]
    break_ack_before_fsync: bool,
    /// Test knob: the leader answers clients when it proposes (must be caught).
    #[arg(long)]
    break_reply_before_commit: bool,
    /// Print one line per seed.
    #[arg(long)]
    each: bool,
}

fn config(args: &Args) -> SimConfig {
    let mut config = SimConfig::new(args.voters as usize, args.observers as usize);
    config.steps = args.steps;
    config.clients = args.clients;
    config.keys = args.keys as usize;
    if args.no_faults {
        config.faults = FaultRates::none();
    }
    if args.datagram {
        config.faults.link = ek_sim::LinkModel::Datagram;
    }
    if let Some(drop) = args.drop {
        config.faults.drop = drop;
    }
    if let Some(duplicate) = args.duplicate {
        config.faults.duplicate = duplicate;
    }
    if let Some(reorder) = args.reorder {
        config.faults.reorder = reorder;
    }
    config.knobs.ack_before_fsync = args.break_ack_before_fsync;
    config.knobs.reply_before_commit = args.break_reply_before_commit;
    config
}

fn replay(seed: u64, mut config: SimConfig) -> ExitCode {
    config.verbose = true;
    println!("replaying seed {seed}: {}", config.cli_flags());
    match ek_sim::run(seed, &config) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = config(&args);
    if let Ok(value) = std::env::var("EK_SIM_SEED") {
        return match value.trim().parse::<u64>() {
            Ok(seed) => replay(seed, config),
            Err(e) => {
                eprintln!("EK_SIM_SEED={value:?} is not a u64: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // The wall clock only measures throughput for the summary; it never reaches a run.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let (mut committed, mut steps) = (0u64, 0u64);
    for seed in args.start..args.start.saturating_add(args.seeds) {
        match ek_sim::run(seed, &config) {
            Ok(report) => {
                if args.each {
                    println!("{report}");
                }
                committed += report.committed;
                steps += report.steps;
            }
            Err(failure) => {
                eprintln!("{failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{} seeds passed ({}..{}), {steps} steps, {committed} txns committed, {:.1} seeds/s",
        args.seeds,
        args.start,
        args.start.saturating_add(args.seeds),
        args.seeds as f64 / seconds
    );
    ExitCode::SUCCESS
}

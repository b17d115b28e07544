//! The `edgekeeper` binary: `serve` runs a node (with its controllers and plugin host),
//! `ctl` is a small zkCli, `certs` makes the cluster CA and node certificates,
//! `local-cluster` runs an ensemble on one machine, `plugin` is the plugin tooling.
//!
//! This crate parses the command line and the config file, sets up logging and hands a
//! validated `ek_server::Config` to `ek_server::run`. It never implements server behaviour
//! itself, and it is the only crate that uses anyhow.

mod certs;
mod config;
mod ctl;
mod local_cluster;
mod logging;
mod plugin;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use crate::config::LogFormat;

/// Worker threads of the tokio runtime of `ctl` and `bench` (a node uses `worker_threads`).
const WORKER_THREADS: usize = 2;

/// edgekeeper: a ZooKeeper-compatible coordination service for edge clusters.
#[derive(Debug, Parser)]
#[command(name = "edgekeeper", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a node (standalone, ./data, client port 2181, admin port 8080 unless configured).
    Serve(ServeArgs),
    /// A small zkCli for any ZooKeeper-protocol server.
    Ctl(ctl::CtlArgs),
    /// Benchmark any ZooKeeper-protocol server: load, failover, startup.
    Bench(ek_bench::BenchArgs),
    /// The cluster CA and node certificates for mutual TLS between nodes.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Run an ensemble of N voters (and K observers) on this machine, one process per node,
    /// with its CA, certificates, configs and data under DIR.
    LocalCluster(local_cluster::LocalClusterArgs),
    /// Build, test, install, list and remove Wasm plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file (see docs/configuration.md); without it every key has its default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log line format; overrides `[log] format`.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Tracing filter, e.g. `info` or `info,ek_server=debug`; overrides `[log] level`.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Ctl(args) => runtime().and_then(|runtime| runtime.block_on(ctl::run(args))),
        Command::Certs(command) => certs::run(command),
        Command::Bench(args) => runtime().and_then(|runtime| {
            runtime
                .block_on(ek_bench::run(args))
                .map_err(anyhow::Error::from)
        }),
        Command::LocalCluster(args) => local_cluster::run(args),
        Command::Plugin(command) => plugin::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(WORKER_THREADS)
}

fn runtime_with(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, mut log, plugins) = config::load(args.config.as_deref())?;
    if let Some(format) = args.log_format {
        log.format = format;
    }
    if let Some(level) = args.log_level {
        config::check_log_level(&level)
            .map_err(|reason| anyhow::anyhow!("--log-level '{level}': {reason}"))?;
        log.level = level;
    }
    logging::init(&log)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config_file = %args.config.as_deref().unwrap_or(Path::new("(none)")).display(),
        node_id = config.node_id,
        data_dir = %config.data_dir.display(),
        client_addr = %config.client_addr,
        admin_addr = %config.admin_addr,
        "edgekeeper starting"
    );
    let runtime = runtime_with(config.worker_threads as usize)?;
    let control = plugins.enabled.then(|| control_config(&config, &plugins));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    // On a signal the controllers stop first (their sessions close, so this node's
    // ephemeral status and membership nodes go at once), then the node.
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), done_rx).await;
    };
    runtime.block_on(ek_server::run_with(
        config,
        shutdown,
        move |node| match control {
            Some(control) => {
                tokio::spawn(async move {
                    ek_control::run(node, control, stop_rx).await;
                    let _ = done_tx.send(());
                });
            }
            None => drop(done_tx),
        },
    ))?;
    tracing::info!("edgekeeper stopped");
    Ok(())
}

fn control_config(
    config: &ek_server::Config,
    plugins: &config::PluginSettings,
) -> ek_control::ControlConfig {
    let mut control =
        ek_control::ControlConfig::new(&config.data_dir, config.client_addr.to_string());
    if let Some(dir) = &plugins.cache_dir {
        control.cache_dir = dir.clone();
    }
    control.scaling_interval = Duration::from_millis(plugins.scaling_interval_ms);
    control.registrar_interval = Duration::from_millis(plugins.registrar_interval_ms);
    control.max_call_timeout = Duration::from_millis(plugins.max_call_timeout_ms);
    control.sources = plugins
        .sources
        .iter()
        .map(|(name, file)| ek_control::RecordSource {
            name: name.clone(),
            file: file.clone(),
        })
        .collect();
    control
}

/// Completes on the first Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = sigterm() => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

#[cfg(unix)]
async fn sigterm() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            terminate.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn sigterm() {
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests;

//! The edgekeeper node runtime: it owns the data tree, the txn log and the write pipeline,
//! accepts ZooKeeper clients on TCP, and serves admin HTTP.
//!
//! It never parses command lines or config files; the `edgekeeper` binary does that and
//! hands over a [`Config`]. Protocol decisions live in the pure crates (`ek-tree`,
//! `ek-jute`, `ek-watch`); this crate drives them with tokio and the disk.
#![warn(missing_docs)]

mod client;
mod commit;
mod config;
mod conn;
mod core;
mod forward;
mod fourlw;
mod handshake;
mod local;
mod pipeline;
mod reads;
mod replication;
mod replies;
mod requests;
mod session;
mod storage;

pub use config::{Config, Ensemble, Member, MemberRole};
pub use local::{
    under_prefix, Change, ChangeBatch, ChangeKind, LocalError, LocalRead, LocalReadResult,
    LocalSession, NodeHandle, ServerState, Subscription,
};

use crate::client::ConnId;
use crate::core::{Core, CoreMsg};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data dir could not be opened or recovered.
    #[error("data dir {dir}: {source}")]
    Storage {
        /// The data dir.
        dir: std::path::PathBuf,
        /// What went wrong.
        source: ek_log::LogError,
    },
    /// The ensemble configuration or the peer transport is unusable.
    #[error("ensemble: {0}")]
    Ensemble(String),
    /// The recovered state does not make a valid tree.
    #[error("data dir {dir}: {reason}")]
    Recovery {
        /// The data dir.
        dir: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Runs a node until `shutdown` completes, then stops it cleanly.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    run_with(config, shutdown, |_| ()).await
}

/// As [`run`], and hands `attach` a [`NodeHandle`] for in-process clients (the plugin host,
/// controllers) once the node's core is running. The handle stops working when the node
/// stops.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    attach: impl FnOnce(NodeHandle),
) -> Result<(), ServerError> {
    let started = Instant::now();
    let metrics = Arc::new(ek_admin::Metrics::new());
    metrics.set_server_state(ek_admin::ServerState::Looking);
    let admin = Arc::new(ek_admin::AdminState::new(metrics.clone()));
    let (core_tx, core_rx) = mpsc::unbounded_channel();
    let recovered = storage::recover(&config, core_tx.clone(), metrics.clone())?;
    let storage::Recovered {
        tree,
        txns,
        epochs,
        log,
        snapshots,
    } = recovered;
    // Each start of a node draws different election jitter and session nonces.
    let seed =
        config.node_id ^ (core::now_ms() as u64).rotate_left(17) ^ u64::from(std::process::id());
    let zab_config = replication::zab_config(&config, seed);
    let persisted = replication::persisted_state(epochs.0, epochs.1, tree.last_zxid(), txns);
    let peer =
        ek_zab::Peer::new(zab_config.clone(), persisted, ek_zab::Time::ZERO).map_err(|err| {
            ServerError::Recovery {
                dir: config.data_dir.clone(),
                reason: err.to_string(),
            }
        })?;
    let transport = replication::start_transport(&config, core_tx.clone())?;
    let repl = replication::Replication::new(
        peer,
        &zab_config,
        transport.clone(),
        config.ensemble.is_some(),
        started,
        &tree,
    );
    let client_listener = bind(config.client_addr).await?;
    let admin_listener = bind(config.admin_addr).await?;
    let (admin_stop_tx, admin_stop_rx) = oneshot::channel::<()>();
    let admin_task = tokio::spawn(ek_admin::serve(admin_listener, admin.clone(), async {
        let _ = admin_stop_rx.await;
    }));
    let (throttle_tx, throttle_rx) = watch::channel(false);
    let core = Core::new(
        config.clone(),
        tree,
        log,
        snapshots,
        repl,
        metrics.clone(),
        admin.clone(),
        core_tx.clone(),
        throttle_tx,
        started,
    );
    let (core_stop_tx, core_stop_rx) = oneshot::channel();
    let core_task = tokio::spawn(core.run(core_rx, core_stop_rx));
    attach(NodeHandle::new(
        core_tx.clone(),
        metrics.clone(),
        config.node_id,
    ));
    tracing::info!(
        client = %config.client_addr,
        admin = %config.admin_addr,
        data_dir = %config.data_dir.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "edgekeeper serving"
    );
    accept_loop(
        &config,
        client_listener,
        core_tx,
        metrics,
        throttle_rx,
        shutdown,
    )
    .await;
    tracing::info!("shutting down");
    admin.set_ready(false);
    let _ = core_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), core_task).await;
    if let Some(transport) = transport {
        if let Ok(transport) = Arc::try_unwrap(transport) {
            transport.close().await;
        }
    }
    let _ = admin_stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), admin_task).await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

async fn accept_loop(
    config: &Config,
    listener: TcpListener,
    core_tx: mpsc::UnboundedSender<CoreMsg>,
    metrics: Arc<ek_admin::Metrics>,
    throttle: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let mut next_conn = 1u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = ConnId(next_conn);
                    next_conn += 1;
                    let params = conn::ConnParams {
                        max_frame_bytes: config.max_frame_bytes,
                        metrics: metrics.clone(),
                        throttle: throttle.clone(),
                    };
                    tokio::spawn(conn::serve(stream, peer, conn, core_tx.clone(), params));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => return,
        }
    }
}

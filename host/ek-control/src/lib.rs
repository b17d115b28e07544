//! Controllers that run inside an edgekeeper node, as in-process clients of it:
//!
//! - the **plugin manager**: plugins ship through the tree (`/edgekeeper/plugins/<name>`);
//!   every node sees the commit, checks and compiles the component locally, and runs it
//!   where its placement says (`leader`: only on the current leader; `every-node`);
//! - the **scaling loop** (leader): each interval, every workload under `/scaling/` is
//!   put to its policy plugin and the decision recorded under `/scaling/<workload>/decision`;
//! - the **registrar loop** (leader): service records from configured sources are fed to
//!   the registrar plugins, which write `/services/...`;
//! - the node's **membership** node `/edgekeeper/cluster/members/<node-id>` (ephemeral).
//!
//! Everything here talks to the node through [`ek_server::NodeHandle`]: sessions, ACLs and
//! the ZAB write path are the ones clients use. Plugin calls run on blocking threads, never
//! on the runtime's.

#![warn(missing_docs)]

mod env;
mod manager;
mod registrar;
mod scaling;
mod tree;
mod watcher;

use ek_server::NodeHandle;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

pub use registrar::read_records;
pub use scaling::{MetricSpec, ScalingSpec};

/// A static source of service records for the registrar loop: a JSON file holding a list
/// of records (`ek_plugin::ServiceRecord`), re-read every interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSource {
    /// The source's name, passed to `reconcile`.
    pub name: String,
    /// The file.
    pub file: PathBuf,
}

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Where compiled plugins are cached (never replicated).
    pub cache_dir: PathBuf,
    /// How often the scaling loop evaluates every workload (HPA's default: 15 s).
    pub scaling_interval: Duration,
    /// How often the registrar loop feeds the registrars.
    pub registrar_interval: Duration,
    /// Sources of service records.
    pub sources: Vec<RecordSource>,
    /// The node's client address, published in its membership node.
    pub client_addr: String,
    /// The longest any plugin call may run, whatever its manifest asks.
    pub max_call_timeout: Duration,
}

impl ControlConfig {
    /// Defaults for a node whose data lives in `data_dir`.
    pub fn new(data_dir: &std::path::Path, client_addr: String) -> ControlConfig {
        ControlConfig {
            cache_dir: data_dir.join("plugin-cache"),
            scaling_interval: Duration::from_secs(15),
            registrar_interval: Duration::from_secs(10),
            sources: Vec::new(),
            client_addr,
            max_call_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs the controllers until `stop` turns true or the node stops.
pub async fn run(node: NodeHandle, config: ControlConfig, mut stop: watch::Receiver<bool>) {
    let mut manager = manager::Manager::new(node, config);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            batch = manager.next_plugin_change() => manager.on_plugin_change(batch).await,
            _ = tick.tick() => {
                if manager.node_closed() {
                    break;
                }
                manager.tick().await;
            }
        }
    }
    manager.shutdown().await;
}

//! The edgekeeper node runtime: it owns the data tree, the txn log and the write pipeline,
//! accepts ZooKeeper clients on TCP, and serves admin HTTP.
//!
//! It never parses command lines or config files; the `edgekeeper` binary does that and
//! hands over a [`Config`].
#![warn(missing_docs)]

mod config;

pub use config::Config;

use std::future::Future;

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs a node until `shutdown` completes, then stops it cleanly.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let _ = config;
    shutdown.await;
    Ok(())
}

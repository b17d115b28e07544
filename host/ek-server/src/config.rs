use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything a node needs to run, already validated by the binary.
///
/// The TOML keys of the config file have the same names; `docs/configuration.md`
/// documents each with its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Directory for the txn log, snapshots and the lock file.
    pub data_dir: PathBuf,
    /// ZooKeeper protocol listener (clients and four-letter words).
    pub client_addr: SocketAddr,
    /// Admin HTTP listener (`/healthz`, `/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    /// The basic time unit in ms (ZooKeeper's `tickTime`).
    pub tick_ms: u32,
    /// Lowest session timeout granted, in ms (default 2 ticks).
    pub min_session_timeout_ms: u32,
    /// Highest session timeout granted, in ms (default 20 ticks).
    pub max_session_timeout_ms: u32,
    /// Largest request frame accepted, in bytes (ZooKeeper's `jute.maxbuffer`).
    pub max_frame_bytes: u32,
    /// Largest znode data accepted, in bytes.
    pub max_data_bytes: u32,
    /// Take a snapshot after this many txns (ZooKeeper's `snapCount`).
    pub snapshot_every_txns: u64,
    /// How many snapshots (and the log they need) to keep.
    pub snapshots_retained: u32,
    /// How often the leader looks for empty containers and expired TTL nodes, in ms.
    pub reaper_interval_ms: u32,
    /// Most connections accepted from one IP address; 0 = unlimited.
    pub max_client_connections: u32,
    /// `user:base64(sha1(user:password))` of the `super` digest user, if any.
    pub super_digest: Option<String>,
    /// This node's id (1 for a standalone node).
    pub node_id: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./data"),
            client_addr: SocketAddr::from(([0, 0, 0, 0], 2181)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            max_frame_bytes: 1_048_575,
            max_data_bytes: 1_048_576,
            snapshot_every_txns: 100_000,
            snapshots_retained: 3,
            reaper_interval_ms: 60_000,
            max_client_connections: 60,
            super_digest: None,
            node_id: 1,
        }
    }
}

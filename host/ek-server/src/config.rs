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
    /// Worker threads of the node's async runtime (the binary sizes its runtime with it).
    /// One keeps every task of the node on one thread, which on a small box shared with
    /// other processes avoids cross-thread wake-ups; the txn log has its own thread.
    pub worker_threads: u32,
    /// The replicated ensemble this node belongs to; `None` runs a standalone node (an
    /// ensemble of one voter, with no peer transport).
    pub ensemble: Option<Ensemble>,
}

/// Whether a member votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Votes in elections and counts in every quorum; may lead.
    Voter,
    /// Follows the leader and serves clients; never votes, never counts in a quorum.
    Observer,
}

/// One member of the ensemble, as every node's config lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's id (`node_id` in its own config); its certificate names
    /// `node-<id>.edgekeeper`.
    pub id: u64,
    /// The UDP address its QUIC peer endpoint listens on.
    pub peer_addr: SocketAddr,
    /// The address its ZooKeeper clients use (reported in `conf`, used by tooling).
    pub client_addr: SocketAddr,
    /// Voter or observer.
    pub role: MemberRole,
}

/// The ensemble: its members, the TLS material of this node and the replication timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ensemble {
    /// Every member, this node included.
    pub members: Vec<Member>,
    /// Where this node's QUIC endpoint binds; by default its own member's `peer_addr`.
    pub peer_listen: Option<SocketAddr>,
    /// The cluster CA certificate (PEM), the only trust anchor between nodes.
    pub ca_cert: PathBuf,
    /// This node's certificate (PEM), signed by the cluster CA.
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
    /// ZAB's tick in ms (ZooKeeper's `tickTime` as used by `initLimit` and `syncLimit`).
    pub zab_tick_ms: u32,
    /// Ticks a learner may take to connect and sync with a new leader (`initLimit`).
    pub init_limit_ticks: u32,
    /// Ticks a leader and its learners may stay silent before the other side counts as
    /// dead (`syncLimit`): the failure-detection window.
    pub sync_limit_ticks: u32,
    /// Interval of QUIC keep-alives between peers, in ms.
    pub peer_keepalive_ms: u32,
    /// A QUIC connection that hears nothing for this long is closed, in ms.
    pub peer_idle_timeout_ms: u32,
}

impl Ensemble {
    /// The LAN defaults for the timing fields, with the given members and TLS files.
    pub fn new(members: Vec<Member>, ca_cert: PathBuf, cert: PathBuf, key: PathBuf) -> Ensemble {
        Ensemble {
            members,
            peer_listen: None,
            ca_cert,
            cert,
            key,
            zab_tick_ms: 50,
            init_limit_ticks: 40,
            sync_limit_ticks: 4,
            peer_keepalive_ms: 200,
            peer_idle_timeout_ms: 2000,
        }
    }
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
            worker_threads: 1,
            ensemble: None,
        }
    }
}

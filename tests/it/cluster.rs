//! Starts a replicated edgekeeper ensemble (one process per node, all on loopback) for a
//! test, with per-node SIGKILL and restart, optional fault-injecting [`Proxy`] between the
//! nodes' QUIC endpoints, and probes: `srvr` (mode, zxid), `hash` (digest), `cons` (which
//! node holds a session) and the admin endpoint (`/metrics`, `/healthz`).
//!
//! Each node gets a directory under one temp dir: `tls/` (certificates from
//! `edgekeeper certs`), `data/`, `edgekeeper.toml` and `server.log`. Every wait polls a
//! condition until a generous deadline ([`CLUSTER_WAIT`]); nothing asserts how fast
//! anything happened. Processes are SIGKILLed when the [`Cluster`] drops, and if a test is
//! failing at that moment every node's log tail is printed.
//!
//! With `EK_KEEP_CLUSTER=1` the cluster directory (configs, data, logs) is kept.
//!
//! Cluster tests run one at a time ([`turn`]): on two shared cores, two debug-build
//! ensembles side by side would starve each other's heartbeats. They run only against
//! edgekeeper (the ensemble config is edgekeeper's own), so [`turn`] skips them when
//! `EK_TEST_ZOOKEEPER=1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use zookeeper_client as zk;

use crate::harness::{edgekeeper_bin, free_addr, run_bounded, Flavor};
use crate::proxy::{NodeId, Proxy};

mod probes;

/// How long any single wait on the cluster may take (elections, catch-up, convergence).
pub(crate) const CLUSTER_WAIT: Duration = Duration::from_secs(60);

/// How long one cluster test may take in all, once it has its [`turn`].
const CLUSTER_TEST_DEADLINE: Duration = Duration::from_secs(420);

/// Session timeout of the test clients: long enough to ride out an election on a busy box.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[ensemble]` timing of every test node: a failure-detection window of 1 s (10 ticks
/// of 100 ms) instead of the default 200 ms, so that heartbeats survive two busy cores
/// running debug builds; a dead peer is still noticed within about a second.
const ENSEMBLE_TIMING: &str = "zab_tick_ms = 100\n\
                               init_limit_ticks = 100\n\
                               sync_limit_ticks = 10\n\
                               peer_keepalive_ms = 300\n\
                               peer_idle_timeout_ms = 3000\n";

/// The names the per-kind learner sync counter may have: the one the interface named, and
/// the unprefixed one `ek-admin` renders.
const SYNCS_FAMILIES: [&str; 2] = ["edgekeeper_zab_syncs_total", "zab_syncs_total"];

/// How a node takes part in the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Votes and counts in quorums.
    Voter,
    /// Follows and serves clients; never votes.
    Observer,
}

/// What `srvr` says about a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Leads the ensemble.
    Leader,
    /// Follows a leader.
    Follower,
    /// Observes a leader.
    Observer,
    /// Runs alone (no `[ensemble]`): never expected here.
    Standalone,
    /// Answers, but is not in a quorum ("not currently serving requests").
    NotServing,
}

/// The shape of a cluster to start.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    voters: usize,
    observers: usize,
    proxy: bool,
    extra_config: String,
}

impl Spec {
    /// `voters` voters (ids 1..=voters) then `observers` observers (the next ids).
    pub(crate) fn new(voters: usize, observers: usize) -> Spec {
        Spec {
            voters,
            observers,
            proxy: false,
            extra_config: String::new(),
        }
    }

    /// Puts a fault-injecting [`Proxy`] between the nodes.
    pub(crate) fn with_proxy(mut self) -> Spec {
        self.proxy = true;
        self
    }

    /// Adds top-level TOML lines (e.g. `snapshot_every_txns = 100`) to every node's config.
    pub(crate) fn with_config(mut self, lines: &str) -> Spec {
        self.extra_config.push_str(lines);
        self.extra_config.push('\n');
        self
    }
}

/// Permission for one cluster test to run; the next waits until it drops.
pub(crate) struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

/// Waits until no other cluster test runs; `None` (the test should return) when the tests
/// run against Apache ZooKeeper, whose ensembles these tests do not configure.
pub(crate) async fn turn() -> Option<Turn> {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: cluster tests configure edgekeeper ensembles only");
        return None;
    }
    static SERIAL: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    let serial = Arc::clone(SERIAL.get_or_init(Default::default));
    Some(Turn {
        _guard: serial.lock_owned().await,
    })
}

/// Runs a cluster test body, failing the test if it does not finish in time.
pub(crate) async fn bounded_test(body: impl Future<Output = ()>) {
    if tokio::time::timeout(CLUSTER_TEST_DEADLINE, body)
        .await
        .is_err()
    {
        panic!("cluster test did not finish within {CLUSTER_TEST_DEADLINE:?}");
    }
}

/// One node: its files, addresses and process.
struct Node {
    role: Role,
    dir: PathBuf,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    /// Where its QUIC endpoint binds (`peer_listen`).
    peer_real: SocketAddr,
    /// The process, while the test has not killed it (locked only briefly, to reap it).
    child: Mutex<Option<Child>>,
}

impl Node {
    fn is_running(&self) -> bool {
        lock(&self.child).is_some()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running ensemble; every process is SIGKILLed on drop.
pub(crate) struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
    proxy: Option<Proxy>,
    dir: TempDir,
}

impl Cluster {
    /// Makes certificates and configs, starts every node, and waits until one leader leads
    /// all of them and every node serves.
    pub(crate) async fn start(spec: Spec) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ek-cluster-")
            .tempdir()
            .expect("create a temp dir");
        let mut nodes = BTreeMap::new();
        let roles = std::iter::repeat_n(Role::Voter, spec.voters)
            .chain(std::iter::repeat_n(Role::Observer, spec.observers));
        for (index, role) in roles.enumerate() {
            let id = index as NodeId + 1;
            let node_dir = dir.path().join(format!("node-{id}"));
            fs::create_dir_all(&node_dir).expect("create the node dir");
            nodes.insert(
                id,
                Node {
                    role,
                    dir: node_dir,
                    client_addr: free_addr(),
                    admin_addr: free_addr(),
                    peer_real: free_udp_addr(),
                    child: Mutex::new(None),
                },
            );
        }
        let proxy = spec.proxy.then(|| {
            let real: Vec<(NodeId, SocketAddr)> = nodes
                .iter()
                .map(|(&id, node)| (id, node.peer_real))
                .collect();
            Proxy::start(&real)
        });
        let mut cluster = Cluster { nodes, proxy, dir };
        tokio::task::block_in_place(|| cluster.make_certificates());
        for id in cluster.ids() {
            let config = cluster.config(id, &spec);
            fs::write(cluster.config_path(id), config).expect("write edgekeeper.toml");
        }
        for id in cluster.ids() {
            cluster.spawn(id);
        }
        for id in cluster.ids() {
            cluster.wait_answering(id).await;
        }
        cluster.leader().await;
        cluster
    }

    /// Every node id, ascending.
    pub(crate) fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The voters' ids.
    pub(crate) fn voters(&self) -> Vec<NodeId> {
        self.ids_where(|node| node.role == Role::Voter)
    }

    /// The ids of nodes whose process runs (not killed by the test).
    pub(crate) fn live(&self) -> Vec<NodeId> {
        self.ids_where(Node::is_running)
    }

    fn ids_where(&self, keep: impl Fn(&Node) -> bool) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, node)| keep(node))
            .map(|(&id, _)| id)
            .collect()
    }

    fn node(&self, id: NodeId) -> &Node {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// Node `id`'s client address, `127.0.0.1:<port>`.
    pub(crate) fn client_addr(&self, id: NodeId) -> SocketAddr {
        self.node(id).client_addr
    }

    /// A connect string naming the client addresses of `ids`.
    pub(crate) fn connect_string(&self, ids: &[NodeId]) -> String {
        let addrs: Vec<String> = ids
            .iter()
            .map(|&id| self.client_addr(id).to_string())
            .collect();
        addrs.join(",")
    }

    /// The proxy between the nodes; panics if the cluster was started without one.
    pub(crate) fn proxy(&self) -> &Proxy {
        self.proxy
            .as_ref()
            .expect("start the cluster with Spec::with_proxy to inject faults")
    }

    /// Node `id`'s data directory (its `data_dir`).
    pub(crate) fn data_dir(&self, id: NodeId) -> PathBuf {
        self.node(id).dir.join("data")
    }

    fn config_path(&self, id: NodeId) -> PathBuf {
        self.node(id).dir.join("edgekeeper.toml")
    }

    fn log_path(&self, id: NodeId) -> PathBuf {
        self.node(id).dir.join("server.log")
    }

    fn tls_dir(&self, id: NodeId) -> PathBuf {
        self.node(id).dir.join("tls")
    }

    /// Runs `edgekeeper certs init` once and `certs issue` per node.
    fn make_certificates(&self) {
        let ca_dir = self.dir.path().join("ca");
        let mut init = Command::new(edgekeeper_bin());
        init.args(["certs", "init", "--dir"]).arg(&ca_dir);
        check_success(run_bounded(init, "edgekeeper certs init"), "certs init");
        for id in self.ids() {
            let mut issue = Command::new(edgekeeper_bin());
            issue
                .args(["certs", "issue", "--ca-dir"])
                .arg(&ca_dir)
                .args(["--node-id", &id.to_string(), "--out"])
                .arg(self.tls_dir(id));
            check_success(run_bounded(issue, "edgekeeper certs issue"), "certs issue");
        }
    }

    /// Node `id`'s config: loopback addresses, fast ticks, the whole membership. With the
    /// proxy, every `peer_addr` is the proxy's stand-in and `peer_listen` the real port.
    fn config(&self, id: NodeId, spec: &Spec) -> String {
        let node = self.node(id);
        let tls = self.tls_dir(id);
        let mut config = format!(
            "node_id = {id}\n\
             data_dir = \"{}\"\n\
             client_addr = \"{}\"\n\
             admin_addr = \"{}\"\n\
             tick_ms = 500\n\
             min_session_timeout_ms = 1000\n\
             max_session_timeout_ms = 60000\n\
             reaper_interval_ms = 500\n\
             max_client_connections = 0\n\
             {}\n\
             [log]\n\
             level = \"info\"\n\
             \n\
             [ensemble]\n\
             ca_cert = \"{}\"\n\
             cert = \"{}\"\n\
             key = \"{}\"\n\
             peer_listen = \"{}\"\n\
             {}\n",
            self.data_dir(id).display(),
            node.client_addr,
            node.admin_addr,
            spec.extra_config,
            tls.join("ca.pem").display(),
            tls.join("node.pem").display(),
            tls.join("node.key").display(),
            node.peer_real,
            ENSEMBLE_TIMING,
        );
        for (&member_id, member) in &self.nodes {
            let peer_addr = match &self.proxy {
                Some(proxy) => proxy.addr(member_id),
                None => member.peer_real,
            };
            let role = match member.role {
                Role::Voter => "voter",
                Role::Observer => "observer",
            };
            let _ = write!(
                config,
                "\n[[ensemble.members]]\n\
                 id = {member_id}\n\
                 peer_addr = \"{peer_addr}\"\n\
                 client_addr = \"{}\"\n\
                 role = \"{role}\"\n",
                member.client_addr
            );
        }
        config
    }

    /// Starts node `id`'s process (on its existing data dir) without waiting for it.
    pub(crate) fn spawn(&mut self, id: NodeId) {
        assert!(!self.node(id).is_running(), "node {id} is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("open the node log");
        let bin = edgekeeper_bin();
        assert!(
            bin.is_file(),
            "edgekeeper binary not found at {}: build it with `cargo build --workspace --bins` \
             or set EDGEKEEPER_BIN",
            bin.display()
        );
        let child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(self.config_path(id))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start node {id}: {error}"));
        *lock(&self.node(id).child) = Some(child);
    }

    /// Kills node `id` with SIGKILL (no goodbye to anyone) and reaps it.
    pub(crate) fn kill9(&mut self, id: NodeId) {
        if let Some(mut child) = lock(&self.node(id).child).take() {
            // Already exited is fine: kill then fails, wait still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `id` again on its data dir and ports; waits until it answers `ruok`
    /// (not until it serves: see [`Cluster::wait_serving`]).
    pub(crate) async fn restart(&mut self, id: NodeId) {
        self.kill9(id);
        self.spawn(id);
        self.wait_answering(id).await;
    }

    /// The exit status of node `id` if its process has exited on its own.
    pub(crate) fn exit_status(&self, id: NodeId) -> Option<ExitStatus> {
        let mut child = lock(&self.node(id).child);
        child.as_mut()?.try_wait().ok().flatten()
    }

    /// Waits until node `id` answers `ruok` with `imok`; panics if its process exits.
    async fn wait_answering(&self, id: NodeId) {
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            if self.four_letter_word(id, "ruok").await.as_deref() == Some("imok") {
                return;
            }
            if let Some(status) = self.exit_status(id) {
                panic!(
                    "node {id} exited with {status} before it answered ruok; log:\n{}",
                    self.log_tail(id)
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not answer ruok within {CLUSTER_WAIT:?}; log:\n{}",
                self.log_tail(id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of node `id`'s log.
    pub(crate) fn log_tail(&self, id: NodeId) -> String {
        let text = fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Node `id`'s whole log.
    pub(crate) fn log(&self, id: NodeId) -> String {
        fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Every node's log tail, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for id in self.ids() {
            let state = if self.node(id).is_running() {
                "running"
            } else {
                "killed"
            };
            let _ = write!(
                out,
                "--- node {id} ({state}) log tail ---\n{}\n",
                self.log_tail(id)
            );
        }
        out
    }

    /// A `zookeeper-client` session on node `id` alone.
    pub(crate) async fn client_at(&self, id: NodeId) -> zk::Client {
        self.connect(&self.connect_string(&[id])).await
    }

    /// A session on any of the nodes `ids` (the client picks; it moves on after a failure).
    pub(crate) async fn client_any(&self, ids: &[NodeId]) -> zk::Client {
        self.connect(&self.connect_string(ids)).await
    }

    /// A session that names every node in its connect string but is attached to node
    /// `id` now, so that killing `id` makes it move. The client picks a node at random, so
    /// this connects until one lands on `id` (closing the others).
    pub(crate) async fn client_on(&self, id: NodeId) -> zk::Client {
        let all = self.connect_string(&self.ids());
        for _ in 0..100 {
            let client = self.connect(&all).await;
            let session_id = client.session_id().0;
            let node = self
                .wait_for("the new session to show in cons", || {
                    self.node_of_session(session_id)
                })
                .await;
            if node == id {
                return client;
            }
        }
        panic!("100 sessions in a row avoided node {id}");
    }

    /// Connects with [`SESSION_TIMEOUT`] to `connect_string`.
    pub(crate) async fn connect(&self, connect_string: &str) -> zk::Client {
        let connect = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .connect(connect_string);
        match tokio::time::timeout(CLUSTER_WAIT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "cannot connect to {connect_string}: {error}\n{}",
                self.logs()
            ),
            Err(_) => panic!(
                "connecting to {connect_string} took over {CLUSTER_WAIT:?}\n{}",
                self.logs()
            ),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("cluster in {}:\n{}", self.dir.path().display(), self.logs());
        }
        for id in self.ids() {
            self.kill9(id);
        }
        if std::env::var_os("EK_KEEP_CLUSTER").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("kept the cluster dir {}", self.dir.path().display());
        }
    }
}

fn check_success(output: std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "edgekeeper {what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A loopback UDP address with a port that was free a moment ago.
pub(crate) fn free_udp_addr() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("local_addr")
}

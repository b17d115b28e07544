//! A fault-injecting UDP proxy to put between the QUIC endpoints of cluster nodes.
//!
//! For each node `i` the proxy binds a front socket `P_i` on loopback that stands in for
//! node `i`: every node's config lists `P_i` as node `i`'s `peer_addr`, while node `i`'s own
//! endpoint binds its real address `R_i` (`peer_listen`). A node's QUIC endpoint sends
//! everything from its one socket `R_j`, so a datagram arriving at `P_i` from `R_j` is
//! traffic from node `j` to node `i`. The proxy forwards it to `R_i` from a socket `S_ji` of
//! its own, one per ordered pair, so node `i`'s answer to `S_ji` is known to go back to node
//! `j`; the proxy sends that answer to `R_j` from `P_i`, the address node `j` talks to.
//! QUIC identifies peers by their certificates, not their addresses, and neither side
//! ever sees an address change, so the proxy is invisible until a fault is switched on.
//!
//! Faults are decided per datagram, per direction: a partition drops everything between
//! two sides (both ways), and a drop probability drops datagrams at random with a seeded
//! PRNG. Datagrams from unknown sources are dropped. Everything runs on one thread (a
//! current-thread tokio runtime) that stops when the [`Proxy`] drops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::net::UdpSocket;

/// A node id as the ensemble config spells it.
pub(crate) type NodeId = u64;

/// Largest datagram forwarded; QUIC stays far below it.
const DATAGRAM_BYTES_MAX: usize = 65_536;

/// Seed of the drop PRNG: runs are repeatable for a given sequence of datagrams.
const DROP_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The running proxy; stops (and joins its thread) on drop.
pub(crate) struct Proxy {
    fronts: BTreeMap<NodeId, SocketAddr>,
    faults: Arc<Mutex<Faults>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the proxy forwarded and dropped so far, over all pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProxyCounters {
    /// Datagrams passed on.
    pub(crate) forwarded: u64,
    /// Datagrams dropped by a partition or the drop probability.
    pub(crate) dropped: u64,
    /// Datagrams dropped because their source is no node the proxy knows.
    pub(crate) unknown: u64,
}

/// The fault switches, shared with the forwarding tasks.
struct Faults {
    /// Ordered pairs `(from, to)` whose datagrams are dropped.
    blocked: HashSet<(NodeId, NodeId)>,
    /// Chance of dropping any datagram, in millionths.
    drop_per_million: u32,
    /// xorshift64* state for the drop decision.
    rng: u64,
    counters: ProxyCounters,
}

impl Faults {
    /// Whether a datagram from `from` to `to` goes through; counts the decision.
    fn admit(&mut self, from: NodeId, to: NodeId) -> bool {
        let pass = !self.blocked.contains(&(from, to)) && !self.random_drop();
        if pass {
            self.counters.forwarded += 1;
        } else {
            self.counters.dropped += 1;
        }
        pass
    }

    fn random_drop(&mut self) -> bool {
        if self.drop_per_million == 0 {
            return false;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let draw = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % 1_000_000;
        draw < u64::from(self.drop_per_million)
    }
}

/// Everything the forwarding tasks need: the sockets (std ones until the proxy thread
/// adopts them into its runtime) and who is where.
struct Routes<S> {
    /// `P_i` by node.
    fronts: HashMap<NodeId, S>,
    /// `S_ji` by `(j, i)`.
    pairs: HashMap<(NodeId, NodeId), S>,
    /// `R_i` by node.
    real: HashMap<NodeId, SocketAddr>,
    /// Node by `R_i`.
    by_real: HashMap<SocketAddr, NodeId>,
    faults: Arc<Mutex<Faults>>,
}

impl Proxy {
    /// Starts a proxy for `nodes`, each `(id, real address)`: binds one front socket per
    /// node and one socket per ordered pair of nodes, all on 127.0.0.1.
    pub(crate) fn start(nodes: &[(NodeId, SocketAddr)]) -> Proxy {
        let bind = || {
            let socket = StdUdpSocket::bind("127.0.0.1:0").expect("bind a proxy socket");
            socket.set_nonblocking(true).expect("non-blocking socket");
            socket
        };
        let mut fronts = BTreeMap::new();
        let mut front_sockets = HashMap::new();
        for &(id, real) in nodes {
            assert!(real.ip().is_loopback(), "the proxy is for loopback only");
            let socket = bind();
            fronts.insert(id, socket.local_addr().expect("local_addr"));
            front_sockets.insert(id, socket);
        }
        let mut pair_sockets = HashMap::new();
        for &(from, _) in nodes {
            for &(to, _) in nodes {
                if from != to {
                    pair_sockets.insert((from, to), bind());
                }
            }
        }
        let faults = Arc::new(Mutex::new(Faults {
            blocked: HashSet::new(),
            drop_per_million: 0,
            rng: DROP_SEED,
            counters: ProxyCounters::default(),
        }));
        let routes = Routes {
            fronts: front_sockets,
            pairs: pair_sockets,
            real: nodes.iter().copied().collect(),
            by_real: nodes.iter().map(|&(id, addr)| (addr, id)).collect(),
            faults: Arc::clone(&faults),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ek-it-proxy".into())
            .spawn(move || serve(routes, stopped))
            .expect("spawn the proxy thread");
        Proxy {
            fronts,
            faults,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The address that stands in for node `id` (its `peer_addr` in every config).
    pub(crate) fn addr(&self, id: NodeId) -> SocketAddr {
        *self
            .fronts
            .get(&id)
            .unwrap_or_else(|| panic!("node {id} is not behind the proxy"))
    }

    /// Drops everything between `side_a` and `side_b`, both ways, until [`Proxy::heal`].
    /// Traffic within each side still flows.
    pub(crate) fn partition(&self, side_a: &[NodeId], side_b: &[NodeId]) {
        let mut faults = self.faults();
        for &a in side_a {
            for &b in side_b {
                if a != b {
                    faults.blocked.insert((a, b));
                    faults.blocked.insert((b, a));
                }
            }
        }
    }

    /// Cuts `id` off from every other node, both ways.
    pub(crate) fn isolate(&self, id: NodeId) {
        let others: Vec<NodeId> = self.fronts.keys().copied().filter(|&n| n != id).collect();
        self.partition(&[id], &others);
    }

    /// Drops each datagram with probability `probability` (0.0 to 1.0), independently.
    pub(crate) fn set_drop_probability(&self, probability: f64) {
        assert!(
            (0.0..=1.0).contains(&probability),
            "a probability, not {probability}"
        );
        self.faults().drop_per_million = (probability * 1_000_000.0).round() as u32;
    }

    /// Ends every partition and random drop.
    pub(crate) fn heal(&self) {
        let mut faults = self.faults();
        faults.blocked.clear();
        faults.drop_per_million = 0;
    }

    /// What was forwarded and dropped so far.
    pub(crate) fn counters(&self) -> ProxyCounters {
        self.faults().counters
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(faults: &Mutex<Faults>) -> MutexGuard<'_, Faults> {
    // A panicking test thread must not take the proxy down with it.
    faults.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The proxy thread: adopts the sockets into a current-thread runtime, forwards on every
/// socket until `stopped`, then drops the runtime, which cancels every task.
fn serve(routes: Routes<StdUdpSocket>, stopped: tokio::sync::oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("proxy runtime");
    runtime.block_on(async move {
        let adopt = |socket| Arc::new(UdpSocket::from_std(socket).expect("adopt a socket"));
        let routes = Arc::new(Routes {
            fronts: routes
                .fronts
                .into_iter()
                .map(|(id, socket)| (id, adopt(socket)))
                .collect(),
            pairs: routes
                .pairs
                .into_iter()
                .map(|(pair, socket)| (pair, adopt(socket)))
                .collect(),
            real: routes.real,
            by_real: routes.by_real,
            faults: routes.faults,
        });
        for &id in routes.fronts.keys() {
            tokio::spawn(forward_requests(Arc::clone(&routes), id));
        }
        for &pair in routes.pairs.keys() {
            tokio::spawn(forward_replies(Arc::clone(&routes), pair));
        }
        let _ = stopped.await;
    });
}

/// Datagrams to node `to` (arriving at its front `P_to`) from any other node: forwarded
/// to `R_to` from the socket of the pair.
async fn forward_requests(routes: Arc<Routes<Arc<UdpSocket>>>, to: NodeId) {
    let front = Arc::clone(&routes.fronts[&to]);
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    loop {
        // Errors here are ICMP echoes of earlier sends to a dead node: keep going.
        let Ok((len, source)) = front.recv_from(&mut buf).await else {
            continue;
        };
        let from = match routes.by_real.get(&source) {
            Some(&from) if from != to => from,
            _ => {
                lock(&routes.faults).counters.unknown += 1;
                continue;
            }
        };
        if lock(&routes.faults).admit(from, to) {
            let pair = &routes.pairs[&(from, to)];
            let _ = pair.send_to(&buf[..len], routes.real[&to]).await;
        }
    }
}

/// Node `to`'s answers to node `from`, arriving at the pair socket `S_from,to`: sent to
/// `R_from` from `P_to`, where node `from` expects them.
async fn forward_replies(routes: Arc<Routes<Arc<UdpSocket>>>, (from, to): (NodeId, NodeId)) {
    let pair = Arc::clone(&routes.pairs[&(from, to)]);
    let expected = routes.real[&to];
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    loop {
        let Ok((len, source)) = pair.recv_from(&mut buf).await else {
            continue;
        };
        if source != expected {
            lock(&routes.faults).counters.unknown += 1;
            continue;
        }
        if lock(&routes.faults).admit(to, from) {
            let front = &routes.fronts[&to];
            let _ = front.send_to(&buf[..len], routes.real[&from]).await;
        }
    }
}

#[cfg(test)]
mod tests;

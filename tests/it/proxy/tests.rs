//! The proxy with plain UDP sockets standing in for nodes: forwarding both ways, partitions,
//! isolation, heal, unknown senders and random drops.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::{NodeId, Proxy, ProxyCounters};

/// How long a datagram that should arrive may take (loopback; generous for a busy box).
const ARRIVE: Duration = Duration::from_secs(10);
/// How long to listen for a datagram that must not arrive. A longer wait only makes the
/// check stricter, never flaky: the proxy drops at forwarding time.
const SILENCE: Duration = Duration::from_millis(300);

/// A fake node: a loopback UDP socket.
struct Node {
    id: NodeId,
    socket: UdpSocket,
}

impl Node {
    fn bind(id: NodeId) -> Node {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        Node { id, socket }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local_addr")
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        self.socket.send_to(bytes, to).expect("send_to");
    }

    /// The next datagram and its source, or `None` if nothing comes within `wait`.
    fn recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = [0u8; 2048];
        match self.socket.recv_from(&mut buf) {
            Ok((len, source)) => Some((buf[..len].to_vec(), source)),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(error) => panic!("recv on node {}: {error}", self.id),
        }
    }

    fn expect(&self, bytes: &[u8]) -> SocketAddr {
        let (got, source) = self
            .recv(ARRIVE)
            .unwrap_or_else(|| panic!("node {} got nothing within {ARRIVE:?}", self.id));
        assert_eq!(got, bytes, "node {} got the wrong datagram", self.id);
        source
    }

    fn expect_nothing(&self, why: &str) {
        if let Some((got, source)) = self.recv(SILENCE) {
            panic!(
                "node {} got {:?} from {source}, but {why}",
                self.id,
                String::from_utf8_lossy(&got)
            );
        }
    }
}

/// Waits until the proxy has decided on as many datagrams as `condition` wants, so that a
/// check for silence is not passed by a datagram the proxy has not looked at yet.
fn settle(proxy: &Proxy, condition: impl Fn(ProxyCounters) -> bool) {
    let deadline = std::time::Instant::now() + ARRIVE;
    while !condition(proxy.counters()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the proxy did not get to its datagrams: {:?}",
            proxy.counters()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn three_nodes() -> (Proxy, [Node; 3]) {
    let nodes = [Node::bind(1), Node::bind(2), Node::bind(3)];
    let proxy = Proxy::start(&nodes.each_ref().map(|node| (node.id, node.addr())));
    (proxy, nodes)
}

/// Node `from` sends to node `to` through the proxy, `to` answers the source it saw, and
/// the answer reaches `from` from `to`'s proxy address. Returns the source `to` saw.
fn round_trip(proxy: &Proxy, from: &Node, to: &Node) -> SocketAddr {
    let request = format!("request {}->{}", from.id, to.id);
    from.send(request.as_bytes(), proxy.addr(to.id));
    let seen = to.expect(request.as_bytes());
    let reply = format!("reply {}->{}", to.id, from.id);
    to.send(reply.as_bytes(), seen);
    let reply_source = from.expect(reply.as_bytes());
    assert_eq!(
        reply_source,
        proxy.addr(to.id),
        "node {} must see node {}'s answers come from the address it dialled",
        from.id,
        to.id
    );
    seen
}

#[test]
fn forwards_datagrams_and_replies_between_every_pair() {
    let (proxy, [one, two, three]) = three_nodes();
    let one_to_two = round_trip(&proxy, &one, &two);
    let three_to_two = round_trip(&proxy, &three, &two);
    assert_ne!(
        one_to_two, three_to_two,
        "each sender needs its own source address at the receiver"
    );
    assert_ne!(one_to_two, one.addr(), "traffic goes through the proxy");
    round_trip(&proxy, &two, &one);
    round_trip(&proxy, &three, &one);
    round_trip(&proxy, &one, &three);
    // The same pair keeps the same source, so QUIC sees no migration.
    assert_eq!(round_trip(&proxy, &one, &two), one_to_two);
    let counters = proxy.counters();
    assert_eq!(
        (counters.forwarded, counters.dropped),
        (12, 0),
        "{counters:?}"
    );
}

#[test]
fn partition_cuts_both_directions_and_heal_restores_them() {
    let (proxy, [one, two, three]) = three_nodes();
    let seen_by_two = round_trip(&proxy, &one, &two);

    proxy.partition(&[1], &[2, 3]);
    one.send(b"lost", proxy.addr(2));
    two.send(b"lost reply", seen_by_two);
    one.send(b"lost", proxy.addr(3));
    settle(&proxy, |counters| counters.dropped == 3);
    two.expect_nothing("1 and 2 are partitioned");
    one.expect_nothing("2's answers to 1 cross the partition too");
    three.expect_nothing("1 and 3 are partitioned");
    round_trip(&proxy, &two, &three);
    round_trip(&proxy, &three, &two);

    proxy.heal();
    assert_eq!(round_trip(&proxy, &one, &two), seen_by_two);
    round_trip(&proxy, &three, &one);
    assert_eq!(proxy.counters().dropped, 3);
}

#[test]
fn isolate_cuts_one_node_from_all_others() {
    let (proxy, [one, two, three]) = three_nodes();
    proxy.isolate(3);
    three.send(b"lost", proxy.addr(1));
    two.send(b"lost", proxy.addr(3));
    settle(&proxy, |counters| counters.dropped == 2);
    one.expect_nothing("3 is isolated");
    three.expect_nothing("3 is isolated");
    round_trip(&proxy, &one, &two);
    round_trip(&proxy, &two, &one);
    proxy.heal();
    round_trip(&proxy, &three, &one);
    round_trip(&proxy, &two, &three);
}

#[test]
fn datagrams_from_unknown_sources_are_dropped() {
    let (proxy, [one, _two, _three]) = three_nodes();
    let stranger = Node::bind(99);
    stranger.send(b"who am I", proxy.addr(1));
    // A node sending to its own stand-in is not forwarded either.
    one.send(b"to myself", proxy.addr(1));
    settle(&proxy, |counters| counters.unknown == 2);
    one.expect_nothing("neither the stranger nor node 1 itself is forwarded to node 1");
    assert_eq!(proxy.counters().forwarded, 0);
}

#[test]
fn drop_probability_one_drops_everything_and_zero_nothing() {
    let (proxy, [one, two, _three]) = three_nodes();
    proxy.set_drop_probability(1.0);
    for _ in 0..20 {
        one.send(b"dropped", proxy.addr(2));
    }
    settle(&proxy, |counters| counters.dropped == 20);
    two.expect_nothing("every datagram is dropped");
    proxy.set_drop_probability(0.0);
    round_trip(&proxy, &one, &two);
}

#[test]
fn drop_probability_one_half_drops_some_but_not_all() {
    let (proxy, [one, two, _three]) = three_nodes();
    proxy.set_drop_probability(0.5);
    let sent = 200;
    for n in 0..sent {
        one.send(format!("{n}").as_bytes(), proxy.addr(2));
    }
    settle(&proxy, |counters| {
        counters.forwarded + counters.dropped == sent
    });
    let counters = proxy.counters();
    let mut received = 0;
    while two.recv(SILENCE).is_some() {
        received += 1;
    }
    assert_eq!(
        received, counters.forwarded,
        "every admitted datagram arrives"
    );
    assert!(
        (40..=160).contains(&received),
        "about half of {sent} should pass, {received} did"
    );
    proxy.heal();
    round_trip(&proxy, &one, &two);
}

//! Restarts and kills.

use super::*;

/// Sends one message each way between nodes `a` and `b` and waits for both.
async fn ping_pong(nodes: &mut [Node], a: usize, b: usize, text: &str) {
    let (id_a, id_b) = (nodes[a].id(), nodes[b].id());
    nodes[a].send(id_b, Channel::Replication, text.to_string());
    nodes[b].send(id_a, Channel::Replication, text.to_string());
    for (at, from) in [(a, id_b), (b, id_a)] {
        let expected = Bytes::from(text.to_string());
        nodes[at]
            .expect(&format!("{text:?} from {from}"), |e| {
                matches!(e, Incoming::Message { from: f, payload, .. } if *f == from && *payload == expected)
            })
            .await;
    }
}

#[tokio::test]
async fn a_restarted_peer_reconnects_and_down_up_are_reported() {
    let mut nodes = cluster(&[1, 2]);
    all_up(&mut nodes).await;
    ping_pong(&mut nodes, 0, 1, "before").await;

    // Restart the lower id (the one that is dialed).
    nodes[0].restart().await;
    nodes[1].expect_down(PeerId(1)).await;
    nodes[1].expect_up(PeerId(1)).await;
    nodes[0].expect_up(PeerId(2)).await;
    ping_pong(&mut nodes, 0, 1, "after restarting node 1").await;
    assert_eq!(nodes[1].metrics().reconnects, 1);

    // Restart the higher id (the dialer).
    nodes[1].restart().await;
    nodes[0].expect_down(PeerId(2)).await;
    nodes[0].expect_up(PeerId(2)).await;
    nodes[1].expect_up(PeerId(1)).await;
    ping_pong(&mut nodes, 0, 1, "after restarting node 2").await;
    assert_eq!(nodes[0].metrics().reconnects, 1);
}

#[tokio::test]
async fn a_killed_peer_is_detected_by_the_idle_timeout() {
    let mut nodes = cluster(&[1, 2, 3]);
    all_up(&mut nodes).await;
    // Node 2 is dialed by 3 and dials 1, so both roles see a silent death.
    nodes[1].transport.take().unwrap().kill();
    nodes[0].expect_down(PeerId(2)).await;
    nodes[2].expect_down(PeerId(2)).await;
    assert!(!nodes[0].transport().is_up(PeerId(2)));
    // The survivors still talk.
    ping_pong(&mut nodes, 0, 2, "survivors").await;
    for survivor in [0, 2] {
        let sent = nodes[survivor]
            .transport()
            .send(PeerId(2), Channel::Election, Bytes::new());
        assert_eq!(sent, Err(crate::SendError::PeerDown(PeerId(2))));
    }
}

#[tokio::test]
async fn a_killed_peer_that_comes_back_is_reported_up_again() {
    let mut nodes = cluster(&[1, 2]);
    all_up(&mut nodes).await;
    let node = &mut nodes[0];
    node.transport.take().unwrap().kill();
    node.events = None;
    nodes[1].expect_down(PeerId(1)).await;
    // Start again on the same address: node 2 keeps redialing with backoff.
    nodes[0].transport = None;
    let socket = {
        let deadline = Instant::now() + WAIT;
        loop {
            match UdpSocket::bind(nodes[0].config.listen) {
                Ok(socket) => break socket,
                Err(err) => {
                    assert!(Instant::now() < deadline, "rebind: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    let (transport, events) =
        Transport::start_with_socket(nodes[0].config.clone(), socket).unwrap();
    nodes[0].transport = Some(transport);
    nodes[0].events = Some(events);
    nodes[0].expect_up(PeerId(2)).await;
    nodes[1].expect_up(PeerId(1)).await;
    ping_pong(&mut nodes, 0, 1, "back").await;
}

//! Refusals: foreign CA, wrong node id, protocol version.

use super::*;

/// Nodes 1 and 3 are correct; node 2 is altered by `bad`, which gets the cluster CA.
/// Waits until nodes 1 and 3 connect to each other and node 2's connections have been
/// refused, then checks that nobody ever saw node 2 up, nor node 2 anybody.
async fn node_2_is_refused(bad: impl FnOnce(&CertificateAuthority, &mut NetConfig)) {
    init_tracing();
    let ca = ca();
    let mut configs = configs(&[1, 2, 3], |id| tls_for(&ca, &ca, id));
    bad(&ca, &mut configs[1].0);
    let mut nodes = start_all(configs);
    nodes[0].expect_up(PeerId(3)).await;
    nodes[2].expect_up(PeerId(1)).await;
    // Node 2 dials node 1 and is dialed by node 3; each refusal is counted by the side
    // that refuses (and by the dialer).
    eventually("both of node 2's connections are refused", || {
        let refusals = |i: usize| nodes[i].metrics().handshake_failures;
        refusals(0) + refusals(1) >= 1 && refusals(1) + refusals(2) >= 1
    })
    .await;
    assert_no_peer_up(&mut nodes[1], Duration::from_millis(500)).await;
    for i in [0, 2] {
        assert_no_peer_up(&mut nodes[i], Duration::ZERO).await;
        assert!(!nodes[i].transport().is_up(PeerId(2)));
        assert_eq!(
            nodes[i].metrics().peer_ups,
            1,
            "only the correct peer is up"
        );
    }
    assert_eq!(nodes[1].metrics().peer_ups, 0);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let rogue = ca();
    node_2_is_refused(|cluster_ca, config| {
        // Node 2 trusts the cluster CA, so the refusals are the other nodes' doing.
        config.tls = tls_for(cluster_ca, &rogue, 2);
    })
    .await;
}

#[tokio::test]
async fn a_valid_certificate_for_another_node_id_is_refused() {
    node_2_is_refused(|cluster_ca, config| {
        // Signed by the cluster CA, but naming node 5.
        config.tls = tls_for(cluster_ca, cluster_ca, 5);
    })
    .await;
}

#[tokio::test]
async fn a_protocol_version_mismatch_is_refused() {
    node_2_is_refused(|_, config| config.protocol_version = crate::PROTOCOL_VERSION + 1).await;
}

#[tokio::test]
async fn the_refusing_side_counts_a_foreign_ca() {
    // Two nodes: node 2 presents a foreign certificate but trusts the cluster CA, so
    // only node 1's client verifier can refuse it.
    init_tracing();
    let ca = ca();
    let rogue = super::ca();
    let mut configs = configs(&[1, 2], |id| tls_for(&ca, &ca, id));
    configs[1].0.tls = tls_for(&ca, &rogue, 2);
    let mut nodes = start_all(configs);
    eventually("node 1 refuses node 2's certificate", || {
        nodes[0].metrics().handshake_failures >= 1
    })
    .await;
    assert_no_peer_up(&mut nodes[0], Duration::from_millis(300)).await;
    assert_no_peer_up(&mut nodes[1], Duration::ZERO).await;
}

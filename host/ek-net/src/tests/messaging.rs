//! Messages in order on every channel, bulk streams, frame limits.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::SendError;

/// Sends `count` messages per channel from every node to every other node, then checks
/// that each receiver got each sender's messages of each channel complete and in order.
async fn exchange(nodes: &mut [Node], count: u32) {
    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    for seq in 0..count {
        for node in nodes.iter() {
            for &to in ids.iter().filter(|&&to| to != node.id()) {
                for channel in Channel::ALL {
                    node.send(to, channel, payload(node.id(), channel, seq));
                }
            }
        }
    }
    let expected_total = (ids.len() - 1) * Channel::ALL.len() * count as usize;
    for node in nodes.iter_mut() {
        let mut next: HashMap<(PeerId, Channel), u32> = HashMap::new();
        let mut received = 0;
        while received < expected_total {
            let event = node
                .expect("a message", |e| matches!(e, Incoming::Message { .. }))
                .await;
            let Incoming::Message {
                from,
                channel,
                payload: got,
            } = event
            else {
                unreachable!()
            };
            let seq = next.entry((from, channel)).or_insert(0);
            assert_eq!(
                got,
                payload(from, channel, *seq),
                "{}: out of order",
                node.id()
            );
            *seq += 1;
            received += 1;
        }
        for &from in ids.iter().filter(|&&from| from != node.id()) {
            for channel in Channel::ALL {
                assert_eq!(
                    next.get(&(from, channel)),
                    Some(&count),
                    "{from} {channel:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn two_nodes_exchange_messages_in_order_on_every_channel() {
    let mut nodes = cluster(&[1, 2]);
    all_up(&mut nodes).await;
    exchange(&mut nodes, 300).await;
    for node in &nodes {
        let metrics = node.metrics();
        assert_eq!(metrics.messages_received, 900);
        assert_eq!(metrics.messages_dropped, 0);
        assert_eq!(metrics.peer_ups, 1);
    }
    eventually("every message counted as sent", || {
        nodes.iter().all(|node| node.metrics().messages_sent == 900)
    })
    .await;
}

#[tokio::test]
async fn three_nodes_form_a_mesh_and_exchange_messages_in_order() {
    let mut nodes = cluster(&[1, 2, 3]);
    all_up(&mut nodes).await;
    exchange(&mut nodes, 100).await;
    for node in &nodes {
        assert_eq!(
            node.metrics().peer_ups,
            2,
            "{}: one connection per peer",
            node.id()
        );
    }
}

#[tokio::test]
async fn send_to_a_down_or_unknown_peer_fails_fast_and_counts() {
    init_tracing();
    let ca = ca();
    // Node 1 is configured but never started; node 2 keeps dialing it.
    let mut configs = configs(&[1, 2], |id| tls_for(&ca, &ca, id));
    configs.remove(0);
    let nodes = start_all(configs);
    let transport = nodes[0].transport();
    let down = transport.send(PeerId(1), Channel::Replication, Bytes::from_static(b"x"));
    assert_eq!(down, Err(SendError::PeerDown(PeerId(1))));
    let unknown = transport.send(PeerId(9), Channel::Replication, Bytes::from_static(b"x"));
    assert_eq!(unknown, Err(SendError::UnknownPeer(PeerId(9))));
    assert!(!transport.is_up(PeerId(1)));
    assert_eq!(transport.metrics().messages_dropped, 1);
    eventually("dials to the absent peer fail and are retried", || {
        transport.metrics().dial_failures >= 1
    })
    .await;
    assert_eq!(
        transport.metrics().handshake_failures,
        0,
        "absence is not a refusal"
    );
}

/// A deterministic byte source standing in for a snapshot file.
fn snapshot_chunk(index: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(index);
    (0..len).map(|_| rng.u8(..)).collect()
}

#[tokio::test]
async fn multi_megabyte_snapshot_arrives_intact_while_messages_flow() {
    const CHUNK_LEN: usize = 64 << 10;
    const CHUNKS: u64 = 96; // 6 MiB
    const MESSAGES: u32 = 2000;
    let mut nodes = cluster(&[1, 2]);
    all_up(&mut nodes).await;
    let (sender, receiver) = (PeerId(2), PeerId(1));

    let mut expected_crc = 0u32;
    for index in 0..CHUNKS {
        expected_crc = crc32c::crc32c_append(expected_crc, &snapshot_chunk(index, CHUNK_LEN));
    }
    let mut stream = nodes[1]
        .transport()
        .send_stream(receiver, Channel::Snapshot)
        .await
        .unwrap();
    assert_eq!(stream.peer(), receiver);
    let writer = tokio::spawn(async move {
        // One chunk in memory at a time; writes wait for flow-control credit.
        for index in 0..CHUNKS {
            stream
                .write_all(&snapshot_chunk(index, CHUNK_LEN))
                .await
                .unwrap();
        }
        stream.finish().await.unwrap();
    });
    let messages = nodes[1].transport.take().unwrap();
    let pump = tokio::spawn(async move {
        for seq in 0..MESSAGES {
            messages
                .send(
                    receiver,
                    Channel::Replication,
                    payload(sender, Channel::Replication, seq),
                )
                .unwrap();
            if seq % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        messages
    });

    let mut reader = None;
    let mut next_seq = 0;
    let node = &mut nodes[0];
    while reader.is_none() || next_seq < MESSAGES {
        match node.expect("a message or a stream", |_| true).await {
            Incoming::Stream {
                from,
                channel,
                reader: stream,
            } => {
                assert_eq!((from, channel), (sender, Channel::Snapshot));
                reader = Some(tokio::spawn(async move {
                    let mut stream = stream;
                    let mut buf = vec![0u8; 16 << 10];
                    let (mut crc, mut total) = (0u32, 0u64);
                    loop {
                        let n = stream.read(&mut buf).await.expect("snapshot read");
                        if n == 0 {
                            return (crc, total);
                        }
                        crc = crc32c::crc32c_append(crc, &buf[..n]);
                        total += n as u64;
                    }
                }));
            }
            Incoming::Message {
                from,
                channel,
                payload: got,
            } => {
                assert_eq!((from, channel), (sender, Channel::Replication));
                assert_eq!(got, payload(sender, channel, next_seq));
                next_seq += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (crc, total) = timeout(WAIT, reader.unwrap())
        .await
        .expect("snapshot in time")
        .unwrap();
    assert_eq!(total, CHUNKS * CHUNK_LEN as u64);
    assert_eq!(crc, expected_crc, "snapshot checksum");
    timeout(WAIT, writer)
        .await
        .expect("writer finishes")
        .unwrap();
    let transport = pump.await.unwrap();
    assert_eq!(transport.metrics().streams_sent, 1);
    assert_eq!(nodes[0].metrics().streams_received, 1);
}

#[tokio::test]
async fn an_abandoned_stream_reads_as_an_error_not_a_short_snapshot() {
    let mut nodes = cluster(&[1, 2]);
    all_up(&mut nodes).await;
    let mut stream = nodes[0]
        .transport()
        .send_stream(PeerId(2), Channel::Snapshot)
        .await
        .unwrap();
    stream.write_all(&[7u8; 100_000]).await.unwrap();
    let Incoming::Stream { mut reader, .. } = nodes[1]
        .expect("a stream", |e| matches!(e, Incoming::Stream { .. }))
        .await
    else {
        unreachable!()
    };
    let mut first = [0u8; 1000];
    timeout(WAIT, reader.read_exact(&mut first))
        .await
        .expect("first bytes")
        .unwrap();
    drop(stream); // the sender gives up half way
    let mut sink = Vec::new();
    let result = timeout(WAIT, reader.read_to_end(&mut sink))
        .await
        .expect("read ends");
    assert!(result.is_err(), "read {} bytes and a clean end", sink.len());
    // The connection itself is unharmed.
    nodes[0].send(PeerId(2), Channel::Election, "still here");
    nodes[1]
        .expect("a message", |e| matches!(e, Incoming::Message { .. }))
        .await;
    assert!(nodes[1].transport().is_up(PeerId(1)));
}

#[tokio::test]
async fn oversize_frames_are_refused_without_harming_the_transport() {
    init_tracing();
    let ca = ca();
    let mut configs = configs(&[1, 2], |id| tls_for(&ca, &ca, id));
    configs[0].0.max_frame_len = 1024; // node 1 accepts small frames only
    let mut nodes = start_all(configs);
    all_up(&mut nodes).await;

    // The sender's own limit: refused locally, nothing sent.
    let huge = Bytes::from(vec![0u8; 2048]);
    let local = nodes[0]
        .transport()
        .send(PeerId(2), Channel::Replication, huge.clone());
    assert_eq!(
        local,
        Err(SendError::TooLarge {
            len: 2048,
            max: 1024
        })
    );
    assert!(nodes[0].transport().is_up(PeerId(2)));

    // The receiver's limit: node 2 may send 2 KiB, node 1 refuses the frame and closes.
    nodes[1].send(PeerId(1), Channel::Replication, huge);
    nodes[0].expect_down(PeerId(2)).await;
    nodes[1].expect_down(PeerId(1)).await;
    assert_eq!(nodes[0].metrics().oversize_frames, 1);

    // Both reconnect and carry on.
    nodes[0].expect_up(PeerId(2)).await;
    nodes[1].expect_up(PeerId(1)).await;
    nodes[1].send(PeerId(1), Channel::Replication, "small");
    let event = nodes[0]
        .expect("a message", |e| matches!(e, Incoming::Message { .. }))
        .await;
    let Incoming::Message { payload, .. } = event else {
        unreachable!()
    };
    assert_eq!(payload, Bytes::from_static(b"small"));
    assert!(nodes[0].metrics().reconnects >= 1);
}

use super::*;
use crate::testing::{create, delete, txn, Leader, SESSION};
use ek_types::{TxnBody, WriteOp};

fn busy_tree() -> DataTree {
    let mut leader = Leader::new();
    let open = txn(1, SESSION, TxnBody::CreateSession { timeout_ms: 10_000 });
    leader.tree.apply(&open).expect("session");
    leader.counter = 1;
    for path in ["/a", "/a/b", "/a/c", "/e"] {
        leader
            .write(&create(path, if path == "/e" { 1 } else { 0 }))
            .expect("create");
    }
    leader.write(&create("/a/s-", 2)).expect("seq");
    leader.write(&delete("/a/c")).expect("delete");
    let set_acl = WriteOp::SetAcl {
        path: "/a/b".into(),
        acl: Acl::read_unsafe(),
        version: -1,
    };
    leader.write(&set_acl).expect("acl");
    leader.tree
}

fn bytes_of(tree: &DataTree) -> Vec<u8> {
    let mut bytes = Vec::new();
    tree.snapshot().write_to(&mut bytes).expect("write");
    bytes
}

#[test]
fn round_trip_keeps_everything() {
    let tree = busy_tree();
    let bytes = bytes_of(&tree);
    let read = DataTree::read_snapshot(&mut bytes.as_slice()).expect("read");
    assert_eq!(read.digest(), tree.digest());
    assert_eq!(read.last_zxid(), tree.last_zxid());
    assert_eq!(read.node_count(), tree.node_count());
    assert_eq!(read.ephemerals_of(SESSION), ["/e"]);
    assert_eq!(read.session_timeout(SESSION), Some(10_000));
    assert_eq!(read.acl_count(), tree.acl_count());
    assert_eq!(read.approximate_data_size(), tree.approximate_data_size());
    assert_eq!(read.children("/a"), tree.children("/a"));
    let (before, after) = (tree.node("/a").expect("a"), read.node("/a").expect("a"));
    assert_eq!(
        (before.stat(), before.child_creates()),
        (after.stat(), after.child_creates())
    );
    assert_eq!(
        bytes_of(&read),
        bytes,
        "a reread tree writes the same bytes"
    );
}

#[test]
fn snapshot_is_frozen() {
    let mut leader = Leader::new();
    leader.write(&create("/a", 0)).expect("a");
    let snapshot = leader.tree.snapshot();
    leader.write(&create("/b", 0)).expect("b");
    let mut bytes = Vec::new();
    snapshot.write_to(&mut bytes).expect("write");
    let read = DataTree::read_snapshot(&mut bytes.as_slice()).expect("read");
    assert!(read.node("/a").is_some() && read.node("/b").is_none());
    assert_eq!(read.digest(), snapshot.digest());
    fn assert_send<T: Send + 'static>(_: &T) {}
    assert_send(&snapshot);
}

#[test]
fn corrupt_bytes_are_rejected_without_panics() {
    let bytes = bytes_of(&busy_tree());
    for len in 0..bytes.len() {
        assert!(
            DataTree::read_snapshot(&mut &bytes[..len]).is_err(),
            "truncated at {len}"
        );
    }
    for index in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[index] ^= flip;
            // Most flips are caught; none may panic or pass with a wrong digest.
            if let Ok(tree) = DataTree::read_snapshot(&mut corrupt.as_slice()) {
                assert_eq!(tree.digest(), tree.recompute_digest());
            }
        }
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        DataTree::read_snapshot(&mut trailing.as_slice()),
        Err(SnapshotError::TrailingBytes)
    ));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(
        DataTree::read_snapshot(&mut magic.as_slice()),
        Err(SnapshotError::BadMagic)
    ));
}

/// Writes a hand-made snapshot from records.
fn handmade(digest: u64, nodes: &[(&str, i32)]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    let mut buf = Vec::new();
    let header = Header {
        format_version: FORMAT_VERSION,
        last_zxid: Zxid::ZERO,
        digest,
        acl_count: 1,
        session_count: 0,
        node_count: nodes.len() as u64,
    };
    write_frame(&mut bytes, &mut buf, &header).expect("header");
    let acl = AclRecord {
        id: 0,
        acl: Acl::open_unsafe(),
    };
    write_frame(&mut bytes, &mut buf, &acl).expect("acl");
    for (path, num_children) in nodes {
        let stat = StatRecord {
            czxid: Zxid::ZERO,
            mzxid: Zxid::ZERO,
            pzxid: Zxid::ZERO,
            ctime: 0,
            mtime: 0,
            ephemeral_owner: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            num_children: *num_children,
            child_creates: 0,
            acl: 0,
        };
        let record = NodeRecordOut {
            path,
            data: Some(&[]),
            stat,
        };
        write_frame(&mut bytes, &mut buf, &record).expect("node");
    }
    bytes
}

#[test]
fn structural_checks() {
    let read = |bytes: Vec<u8>| DataTree::read_snapshot(&mut bytes.as_slice()).map(|_| ());
    assert!(matches!(
        read(handmade(0, &[("/a", 0)])),
        Err(SnapshotError::NoRoot)
    ));
    assert!(matches!(
        read(handmade(0, &[("/", 1), ("/a/b", 0)])),
        Err(SnapshotError::NoParent(path)) if path == "/a/b"
    ));
    assert!(matches!(
        read(handmade(0, &[("/", 2), ("/a", 0)])),
        Err(SnapshotError::ChildCount {
            stored: 2,
            actual: 1,
            ..
        })
    ));
    assert!(matches!(
        read(handmade(0, &[("/", 1), ("/a", 0), ("/a", 0)])),
        Err(SnapshotError::DuplicateNode(_))
    ));
    assert!(matches!(
        read(handmade(0, &[("/", 0), ("a", 0)])),
        Err(SnapshotError::BadPath(_))
    ));
    assert!(matches!(
        read(handmade(1, &[("/", 0)])),
        Err(SnapshotError::DigestMismatch { stored: 1, .. })
    ));
}

/// A tree with `/null` created with null data, `/empty` with empty data, and `/set` set
/// to null after a create with data.
fn null_data_tree() -> DataTree {
    let mut leader = Leader::new();
    for (path, data) in [("/null", None), ("/empty", Some(Vec::new()))] {
        let op = WriteOp::Create {
            opcode: ek_types::OpCode::Create,
            path: path.into(),
            data,
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl_ms: 0,
        };
        leader.write(&op).expect("create");
    }
    leader.write(&create("/set", 0)).expect("create /set");
    let set = WriteOp::SetData {
        path: "/set".into(),
        data: None,
        version: -1,
    };
    leader.write(&set).expect("set null");
    leader.tree
}

#[test]
fn null_data_survives_apply_and_snapshots() {
    let tree = null_data_tree();
    let reread = DataTree::read_snapshot(&mut bytes_of(&tree).as_slice()).expect("read");
    assert_eq!(bytes_of(&reread), bytes_of(&tree));
    for read in [&tree, &reread] {
        for path in ["/null", "/set"] {
            let node = read.node(path).expect("node");
            assert_eq!(node.data(), None, "{path} keeps null data");
            assert_eq!(node.stat().data_length, 0, "null data has dataLength 0");
        }
        let empty = read.node("/empty").expect("empty");
        assert_eq!(
            empty.data(),
            Some(&[][..]),
            "empty data stays empty, not null"
        );
        assert_eq!(empty.stat().data_length, 0);
        assert_eq!(read.digest(), tree.digest());
        assert_eq!(read.digest(), read.recompute_digest());
    }
}

#[test]
fn null_and_empty_data_hash_differently() {
    let tree = null_data_tree();
    let mut other = Leader::new();
    let open = |path: &str, data: Option<Vec<u8>>| WriteOp::Create {
        opcode: ek_types::OpCode::Create,
        path: path.into(),
        data,
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: 0,
    };
    // The same history except that `/null` gets empty data.
    other
        .write(&open("/null", Some(Vec::new())))
        .expect("create");
    other
        .write(&open("/empty", Some(Vec::new())))
        .expect("create");
    other.write(&create("/set", 0)).expect("create /set");
    let set = WriteOp::SetData {
        path: "/set".into(),
        data: None,
        version: -1,
    };
    other.write(&set).expect("set null");
    assert_eq!(
        other.tree.node("/null").expect("n").stat(),
        tree.node("/null").expect("n").stat()
    );
    assert_ne!(other.tree.digest(), tree.digest());
    // Deterministic: replaying the same history gives the same digest.
    assert_eq!(null_data_tree().digest(), tree.digest());
}

use super::*;
use crate::testing::{create, delete, txn, Leader, SESSION};
use ek_types::{ErrorCode, Stat, WriteOp};

fn cversion_and_children(leader: &Leader, path: &str) -> (i32, i32) {
    let stat = leader.tree.node(path).expect("node").stat();
    (stat.cversion, stat.num_children)
}

fn created_path(applied: &Applied) -> String {
    match &applied.results[..] {
        [OpResult::Create { path, .. }] => path.clone(),
        other => panic!("not a create: {other:?}"),
    }
}

#[test]
fn golden_trace_of_zk_wire_section_7() {
    let mut leader = Leader::new();
    leader.write(&create("/p", 0)).expect("create /p");
    assert_eq!(cversion_and_children(&leader, "/p"), (0, 0));
    leader.write(&create("/p/a", 0)).expect("create /p/a");
    assert_eq!(cversion_and_children(&leader, "/p"), (1, 1));
    leader.write(&delete("/p/a")).expect("delete /p/a");
    assert_eq!(cversion_and_children(&leader, "/p"), (2, 0));
    let first = leader.write(&create("/p/s-", 2)).expect("seq");
    assert_eq!(created_path(&first), "/p/s-0000000001");
    assert_eq!(cversion_and_children(&leader, "/p"), (3, 1));
    let second = leader.write(&create("/p/s-", 2)).expect("seq");
    assert_eq!(created_path(&second), "/p/s-0000000002");
    assert_eq!(cversion_and_children(&leader, "/p"), (4, 2));
    leader.write(&delete("/p/s-0000000001")).expect("delete");
    assert_eq!(cversion_and_children(&leader, "/p"), (5, 1));
    let third = leader.write(&create("/p/s-", 2)).expect("seq");
    assert_eq!(created_path(&third), "/p/s-0000000003");
    assert_eq!(cversion_and_children(&leader, "/p"), (6, 2));
    assert_eq!(leader.tree.digest(), leader.tree.recompute_digest());
}

#[test]
fn stats_and_events_of_create_and_set_data() {
    let mut leader = Leader::new();
    let created = leader.write(&create("/a", 0)).expect("create");
    let zxid1 = Zxid::new(1, 1);
    let expected = Stat {
        czxid: zxid1,
        mzxid: zxid1,
        pzxid: zxid1,
        ctime: 1_001,
        mtime: 1_001,
        data_length: 1,
        ..Stat::default()
    };
    assert_eq!(
        created.results,
        [OpResult::Create {
            opcode: OpCode::Create2,
            path: "/a".into(),
            stat: expected
        }]
    );
    assert_eq!(
        created.events,
        [
            (EventType::NodeCreated, "/a".to_string()),
            (EventType::NodeChildrenChanged, "/".to_string())
        ]
    );
    let root = leader.tree.node("/").expect("root").stat();
    assert_eq!(
        (root.cversion, root.pzxid, root.num_children),
        (1, zxid1, 2)
    );

    let set = WriteOp::SetData {
        path: "/a".into(),
        data: Some(b"hello".to_vec()),
        version: 0,
    };
    let changed = leader.write(&set).expect("set");
    let stat = leader.tree.node("/a").expect("a").stat();
    assert_eq!(changed.results, [OpResult::SetData { stat }]);
    assert_eq!(
        (stat.version, stat.mzxid, stat.mtime, stat.data_length),
        (1, Zxid::new(1, 2), 1_002, 5)
    );
    assert_eq!(stat.czxid, zxid1);
    assert_eq!(
        changed.events,
        [(EventType::NodeDataChanged, "/a".to_string())]
    );
}

#[test]
fn stats_and_events_of_acl_check_and_delete() {
    let mut leader = Leader::new();
    leader.write(&create("/a", 0)).expect("create");
    let set_acl = WriteOp::SetAcl {
        path: "/a".into(),
        acl: Acl::read_unsafe(),
        version: 0,
    };
    let acl_changed = leader.write(&set_acl).expect("set acl");
    let stat = leader.tree.node("/a").expect("a").stat();
    assert_eq!(stat.aversion, 1);
    assert_eq!(acl_changed.results, [OpResult::SetAcl { stat }]);
    assert!(acl_changed.events.is_empty());

    let check = WriteOp::Check {
        path: "/a".into(),
        version: 0,
    };
    let checked = leader.write(&check).expect("check");
    assert_eq!(checked.results, [OpResult::Check]);
    assert!(checked.events.is_empty());

    let deleted = leader.write(&delete("/a")).expect("delete");
    assert_eq!(deleted.results, [OpResult::Delete]);
    assert_eq!(
        deleted.events,
        [
            (EventType::NodeDeleted, "/a".to_string()),
            (EventType::NodeChildrenChanged, "/".to_string())
        ]
    );
    assert_eq!(leader.tree.last_zxid(), Zxid::new(1, 4));
}

#[test]
fn sessions_are_recorded_and_closed() {
    let mut tree = DataTree::new();
    let open = txn(1, SESSION, TxnBody::CreateSession { timeout_ms: 30_000 });
    assert_eq!(tree.apply(&open).expect("open").results, []);
    assert_eq!(tree.session_timeout(SESSION), Some(30_000));
    let body = TxnBody::Create {
        path: "/e".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        ephemeral_owner: SESSION.0,
    };
    tree.apply(&txn(2, SESSION, body)).expect("create");
    let close = TxnBody::CloseSession {
        paths_to_delete: vec!["/gone".into(), "/e".into()],
    };
    let closed = tree.apply(&txn(3, SESSION, close)).expect("close");
    assert!(closed.results.is_empty());
    assert_eq!(closed.events[0], (EventType::NodeDeleted, "/e".to_string()));
    assert_eq!(tree.session_timeout(SESSION), None);
    assert_eq!(tree.sessions().count(), 0);
    assert_eq!(tree.ephemeral_count(), 0);
}

/// Applies `body` expecting `error`, and checks nothing changed.
fn assert_rejected(tree: &mut DataTree, counter: u32, body: TxnBody, error: ApplyError) {
    let digest = tree.digest();
    let (count, last, sessions) = (tree.node_count(), tree.last_zxid(), tree.sessions().count());
    assert_eq!(tree.apply(&txn(counter, SESSION, body)), Err(error));
    assert_eq!(tree.digest(), digest);
    assert_eq!(tree.recompute_digest(), digest);
    assert_eq!((tree.node_count(), tree.last_zxid()), (count, last));
    assert_eq!(tree.sessions().count(), sessions);
}

fn create_body(path: &str) -> TxnBody {
    TxnBody::Create {
        path: path.into(),
        data: Some(vec![1, 2]),
        acl: Acl::read_unsafe(),
        ephemeral_owner: 0,
    }
}

/// A tree with `/a/b`, the ephemeral `/e`, and last zxid 3.
fn three_node_tree() -> DataTree {
    let mut tree = DataTree::new();
    tree.apply(&txn(1, SESSION, create_body("/a")))
        .expect("create");
    let eph = TxnBody::Create {
        path: "/e".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        ephemeral_owner: SESSION.0,
    };
    tree.apply(&txn(2, SESSION, eph)).expect("ephemeral");
    tree.apply(&txn(3, SESSION, create_body("/a/b")))
        .expect("create");
    tree
}

/// Txns that do not fit [`three_node_tree`], with their errors.
fn bad_cases() -> Vec<(TxnBody, ApplyError)> {
    vec![
        (create_body("/a"), ApplyError::NodeExists("/a".into())),
        (create_body("/x/y"), ApplyError::NoParent("/x/y".into())),
        (
            create_body("/e/y"),
            ApplyError::EphemeralParent("/e/y".into()),
        ),
        (create_body("bad"), ApplyError::BadPath("bad".into())),
        (
            TxnBody::Delete { path: "/a".into() },
            ApplyError::NotEmpty("/a".into()),
        ),
        (TxnBody::Delete { path: "/".into() }, ApplyError::DeleteRoot),
        (
            TxnBody::Delete { path: "/zz".into() },
            ApplyError::NoNode("/zz".into()),
        ),
        (
            TxnBody::Check { path: "/zz".into() },
            ApplyError::NoNode("/zz".into()),
        ),
        (
            TxnBody::SetData {
                path: "/zz".into(),
                data: Some(vec![]),
                version: 1,
            },
            ApplyError::NoNode("/zz".into()),
        ),
        (
            TxnBody::Multi(vec![TxnBody::CreateSession { timeout_ms: 1 }]),
            ApplyError::BadMultiOp,
        ),
        // A multi whose last op fails undoes its creates, deletes, setData and setACL.
        (
            TxnBody::Multi(vec![
                create_body("/m"),
                create_body("/m/n"),
                TxnBody::Delete {
                    path: "/a/b".into(),
                },
                TxnBody::SetData {
                    path: "/a".into(),
                    data: Some(vec![9; 9]),
                    version: 7,
                },
                TxnBody::SetAcl {
                    path: "/a".into(),
                    acl: Acl::open_unsafe(),
                    version: 3,
                },
                TxnBody::Delete { path: "/e".into() },
                create_body("/a"),
            ]),
            ApplyError::NodeExists("/a".into()),
        ),
        (
            TxnBody::CloseSession {
                paths_to_delete: vec!["/e".into(), "/a".into()],
            },
            ApplyError::NotEmpty("/a".into()),
        ),
    ]
}

#[test]
fn bad_txns_change_nothing() {
    let mut tree = three_node_tree();
    for (body, error) in bad_cases() {
        assert_rejected(&mut tree, 4, body, error);
    }
    assert_eq!(tree.ephemerals_of(SESSION), ["/e"]);
    assert_eq!(tree.acl_count(), 2);
    let stale = ApplyError::StaleZxid {
        zxid: Zxid::new(1, 3),
        last: Zxid::new(1, 3),
    };
    assert_rejected(&mut tree, 3, create_body("/new"), stale);
}

#[test]
fn multi_applies_under_one_zxid() {
    let mut leader = Leader::new();
    let caller = crate::Caller {
        session_id: SESSION,
        ids: &[],
    };
    let ops = [
        create("/m", 0),
        create("/m/s-", 2),
        create("/m/s-", 2),
        delete("/m/s-0000000000"),
    ];
    let body = leader
        .prep
        .multi(&leader.tree, &caller, &ops, &crate::testing::ctx(1))
        .expect("multi");
    let applied = leader.apply(&txn(1, SESSION, body));
    assert_eq!(applied.results.len(), 4);
    assert_eq!(applied.events.len(), 8);
    assert_eq!(leader.tree.children("/m"), Some(vec!["s-0000000001"]));
    let stat = leader.tree.node("/m/s-0000000001").expect("node").stat();
    assert_eq!(stat.czxid, Zxid::new(1, 1));
    assert_eq!(
        leader.write(&create("/m", 0)).err(),
        Some(ErrorCode::NodeExists)
    );
}

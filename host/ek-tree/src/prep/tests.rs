use super::*;
use crate::testing::{create, ctx, delete, txn, Leader, SESSION};
use ek_types::{perms, OpCode, CONTAINER_OWNER, TTL_MAX_MS};

fn create_with(opcode: OpCode, path: &str, flags: i32, ttl_ms: i64) -> WriteOp {
    WriteOp::Create {
        opcode,
        path: path.to_string(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        flags,
        ttl_ms,
    }
}

fn acl_of(perms: i32, scheme: &str, id: &str) -> Vec<Acl> {
    vec![Acl {
        perms,
        id: Id::new(scheme, id),
    }]
}

fn bob() -> Id {
    Id::new("digest", crate::acl::digest_id("bob:pw"))
}

#[test]
fn create_argument_errors() {
    let mut leader = Leader::new();
    leader.write(&create("/p", 0)).expect("create");
    let too_big = WriteOp::Create {
        opcode: OpCode::Create,
        path: "/big".into(),
        data: Some(vec![0; (1 << 20) + 1]),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: 0,
    };
    let cases = [
        create_with(OpCode::Create, "/x", 7, 0),
        create_with(OpCode::Create, "/x", -1, 0),
        create_with(OpCode::SetData, "/x", 0, 0),
        create_with(OpCode::Create, "/x", 4, 0),
        create_with(OpCode::CreateContainer, "/x", 0, 0),
        create_with(OpCode::Create2, "/x", 5, 100),
        create_with(OpCode::CreateTtl, "/x", 0, 100),
        create_with(OpCode::CreateTtl, "/x", 5, 0),
        create_with(OpCode::CreateTtl, "/x", 6, TTL_MAX_MS + 1),
        create_with(OpCode::Create, "x", 0, 0),
        create_with(OpCode::Create, "", 0, 0),
        create_with(OpCode::Create, "/p/", 0, 0),
        create_with(OpCode::Create, "/p/.", 0, 0),
        create_with(OpCode::Create, "/p/\u{1}", 0, 0),
        create_with(OpCode::Create, "/p/a\0", 0, 0),
        too_big,
    ];
    for op in cases {
        assert_eq!(
            leader.propose(&op).err(),
            Some(ErrorCode::BadArguments),
            "{op:?}"
        );
    }
    // As in ZooKeeper, only the parent part of a create path is looked up before the
    // whole path is validated, so an empty component in it reads as a missing parent.
    let empty_component = create_with(OpCode::Create, "/p//x", 0, 0);
    assert_eq!(
        leader.propose(&empty_component).err(),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(leader.prep.pending_paths(), 0);
}

#[test]
fn create_modes_set_owners() {
    let mut leader = Leader::new();
    let cases = [
        (create_with(OpCode::Create, "/e", 1, 0), SESSION.0),
        (
            create_with(OpCode::CreateContainer, "/c", 4, 0),
            CONTAINER_OWNER,
        ),
        (
            create_with(OpCode::CreateTtl, "/t", 5, 5_000),
            EphemeralKind::Ttl(5_000).to_owner(),
        ),
        (
            create_with(OpCode::CreateTtl, "/t-", 6, TTL_MAX_MS),
            EphemeralKind::Ttl(TTL_MAX_MS).to_owner(),
        ),
        (create_with(OpCode::Create2, "/p", 0, 0), 0),
    ];
    for (op, owner) in cases {
        let txn = leader.propose(&op).expect("create");
        match &txn.body {
            TxnBody::Create {
                ephemeral_owner, ..
            } => assert_eq!(*ephemeral_owner, owner, "{op:?}"),
            other => panic!("{other:?}"),
        }
        leader.apply(&txn);
    }
    assert!(leader.tree.node("/t-0000000003").is_some());
    // Sequential with a trailing slash: the name is the ten digits.
    let txn = leader.propose(&create("/p/", 2)).expect("seq");
    assert!(matches!(&txn.body, TxnBody::Create { path, .. } if path == "/p/0000000000"));
}

#[test]
fn create_tree_errors() {
    let mut leader = Leader::new();
    leader.write(&create("/p", 0)).expect("create");
    leader.write(&create("/e", 1)).expect("ephemeral");
    assert_eq!(
        leader.propose(&create("/x/y", 0)).err(),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(
        leader.propose(&create("/p", 0)).err(),
        Some(ErrorCode::NodeExists)
    );
    assert_eq!(
        leader.propose(&create("/", 0)).err(),
        Some(ErrorCode::NodeExists)
    );
    assert_eq!(
        leader.propose(&create("/e/c", 0)).err(),
        Some(ErrorCode::NoChildrenForEphemerals)
    );
    let no_acl = WriteOp::Create {
        opcode: OpCode::Create,
        path: "/q".into(),
        data: Some(vec![]),
        acl: vec![],
        flags: 0,
        ttl_ms: 0,
    };
    assert_eq!(leader.propose(&no_acl).err(), Some(ErrorCode::InvalidAcl));
    let no_session = leader.propose_as(SessionId::NONE, &[], &create("/q", 1));
    assert_eq!(no_session.err(), Some(ErrorCode::SessionExpired));
}

#[test]
fn acl_checks_guard_every_op() {
    let mut leader = Leader::new();
    let locked = WriteOp::Create {
        opcode: OpCode::Create,
        path: "/locked".into(),
        data: Some(vec![]),
        acl: acl_of(perms::ALL, "digest", &bob().id),
        flags: 0,
        ttl_ms: 0,
    };
    leader.write(&locked).expect("create");
    leader
        .write_as(&[bob()], &create("/locked/child", 0))
        .expect("bob creates");
    let set = WriteOp::SetData {
        path: "/locked".into(),
        data: Some(vec![]),
        version: -1,
    };
    let set_acl = WriteOp::SetAcl {
        path: "/locked".into(),
        acl: Acl::open_unsafe(),
        version: -1,
    };
    let check = WriteOp::Check {
        path: "/locked".into(),
        version: -1,
    };
    let ops = [
        create("/locked/x", 0),
        delete("/locked/child"),
        set,
        set_acl,
        check,
    ];
    let stranger = [Id::new("ip", "127.0.0.1"), Id::new("digest", "eve:x")];
    for op in &ops {
        assert_eq!(
            leader.propose_as(SESSION, &stranger, op).err(),
            Some(ErrorCode::NoAuth),
            "{op:?}"
        );
    }
    for op in &ops {
        let superuser = [Id::new("super", "")];
        leader
            .propose_as(SESSION, &superuser, op)
            .expect("super may do anything");
        leader.prep.clear();
    }
}

#[test]
fn auth_acl_needs_an_authenticated_id() {
    let mut leader = Leader::new();
    let auth = WriteOp::Create {
        opcode: OpCode::Create,
        path: "/mine".into(),
        data: Some(vec![]),
        acl: acl_of(perms::ALL, "auth", ""),
        flags: 0,
        ttl_ms: 0,
    };
    let ip_only = [Id::new("ip", "127.0.0.1")];
    assert_eq!(
        leader.propose_as(SESSION, &ip_only, &auth).err(),
        Some(ErrorCode::InvalidAcl)
    );
    leader
        .write_as(&[Id::new("ip", "127.0.0.1"), bob()], &auth)
        .expect("create");
    let node = leader.tree.node("/mine").expect("node");
    assert_eq!(
        node.acl(),
        acl_of(perms::ALL, "digest", &bob().id).as_slice()
    );
}

#[test]
fn bad_versions() {
    let mut leader = Leader::new();
    leader.write(&create("/a", 0)).expect("create");
    leader.write(&create("/a/b", 0)).expect("create");
    let bad_version = [
        WriteOp::Delete {
            path: "/a/b".into(),
            version: 3,
        },
        WriteOp::SetData {
            path: "/a".into(),
            data: Some(vec![]),
            version: 1,
        },
        WriteOp::SetAcl {
            path: "/a".into(),
            acl: Acl::open_unsafe(),
            version: 1,
        },
        WriteOp::Check {
            path: "/a".into(),
            version: 2,
        },
    ];
    for op in &bad_version {
        assert_eq!(
            leader.propose(op).err(),
            Some(ErrorCode::BadVersion),
            "{op:?}"
        );
    }
}

#[test]
fn missing_nodes_and_undeletable_paths() {
    let mut leader = Leader::new();
    leader.write(&create("/a", 0)).expect("create");
    leader.write(&create("/a/b", 0)).expect("create");
    let no_node = [
        delete("/zz"),
        delete("/zz/y"),
        WriteOp::SetData {
            path: "/zz".into(),
            data: Some(vec![]),
            version: -1,
        },
        WriteOp::SetAcl {
            path: "/zz".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        },
        WriteOp::Check {
            path: "/zz".into(),
            version: -1,
        },
    ];
    for op in &no_node {
        assert_eq!(leader.propose(op).err(), Some(ErrorCode::NoNode), "{op:?}");
    }
    assert_eq!(
        leader.propose(&delete("/a")).err(),
        Some(ErrorCode::NotEmpty)
    );
    for path in [
        "/",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "/a/",
        "a",
    ] {
        assert_eq!(
            leader.propose(&delete(path)).err(),
            Some(ErrorCode::BadArguments),
            "{path}"
        );
    }
    let bad_acl = WriteOp::SetAcl {
        path: "/a".into(),
        acl: vec![],
        version: -1,
    };
    assert_eq!(leader.propose(&bad_acl).err(), Some(ErrorCode::InvalidAcl));
    let too_big = WriteOp::SetData {
        path: "/a".into(),
        data: Some(vec![0; (1 << 20) + 1]),
        version: -1,
    };
    assert_eq!(
        leader.propose(&too_big).err(),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(leader.prep.pending_paths(), 0);
}

#[test]
fn versions_wrap_past_minus_one() {
    assert_eq!(ops::next_version(0, -1), Ok(1));
    assert_eq!(ops::next_version(4, 4), Ok(5));
    assert_eq!(ops::next_version(i32::MAX, -1), Ok(i32::MIN));
    assert_eq!(ops::next_version(-2, -1), Ok(0));
    assert_eq!(ops::next_version(4, 5), Err(ErrorCode::BadVersion));
}

#[test]
fn pipelined_writes_see_pending_changes() {
    let mut leader = Leader::new();
    let first = leader.propose(&create("/p", 0)).expect("parent");
    let second = leader
        .propose(&create("/p/s-", 2))
        .expect("child of a pending parent");
    let third = leader.propose(&create("/p/s-", 2)).expect("second child");
    assert!(matches!(&third.body, TxnBody::Create { path, .. } if path == "/p/s-0000000001"));
    assert_eq!(
        leader.propose(&create("/p", 0)).err(),
        Some(ErrorCode::NodeExists)
    );
    let fourth = leader
        .propose(&delete("/p/s-0000000000"))
        .expect("delete pending");
    assert_eq!(
        leader.propose(&delete("/p/s-0000000000")).err(),
        Some(ErrorCode::NoNode)
    );
    let set = WriteOp::SetData {
        path: "/p".into(),
        data: Some(vec![]),
        version: 0,
    };
    let fifth = leader.propose(&set).expect("version 0");
    let set_again = WriteOp::SetData {
        path: "/p".into(),
        data: Some(vec![]),
        version: 1,
    };
    let sixth = leader.propose(&set_again).expect("pending version 1");
    for txn in [first, second, third, fourth, fifth, sixth] {
        leader.apply(&txn);
    }
    assert_eq!(leader.prep.pending_paths(), 0);
    assert_eq!(leader.tree.children("/p"), Some(vec!["s-0000000001"]));
    assert_eq!(leader.tree.node("/p").expect("p").stat().version, 2);
}

#[test]
fn applied_keeps_later_records() {
    let mut leader = Leader::new();
    let first = leader.propose(&create("/a", 0)).expect("a");
    let _second = leader.propose(&create("/a/b", 0)).expect("b");
    leader.apply(&first);
    // /a's record from the second txn (its child count) is still pending.
    assert_eq!(
        leader.propose(&delete("/a")).err(),
        Some(ErrorCode::NotEmpty)
    );
    leader.prep.clear();
    assert_eq!(leader.prep.pending_paths(), 0);
    leader
        .propose(&delete("/a"))
        .expect("after clear, the tree rules");
}

#[test]
fn multi_failure_layout_and_nothing_pending() {
    let mut leader = Leader::new();
    leader.write(&create("/a", 0)).expect("a");
    let caller = Caller {
        session_id: SESSION,
        ids: &[],
    };
    let ops = [
        create("/m", 0),
        create("/m/x", 0),
        create("/a", 0),
        delete("/a"),
        create("/n", 0),
    ];
    let results = leader
        .prep
        .multi(&leader.tree, &caller, &ops, &ctx(2))
        .expect_err("fails");
    assert_eq!(
        results,
        [
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NodeExists),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert_eq!(leader.prep.pending_paths(), 0);
    // Later ops see earlier ones: a check on a node created in the same multi passes.
    let ops = [
        create("/m", 0),
        WriteOp::Check {
            path: "/m".into(),
            version: 0,
        },
        delete("/m"),
    ];
    let body = leader
        .prep
        .multi(&leader.tree, &caller, &ops, &ctx(2))
        .expect("ok");
    assert!(matches!(&body, TxnBody::Multi(bodies) if bodies.len() == 3));
    assert_eq!(
        leader.prep.multi(&leader.tree, &caller, &[], &ctx(3)),
        Ok(TxnBody::Multi(vec![]))
    );
}

#[test]
fn close_session_lists_tree_and_pending_ephemerals() {
    let mut leader = Leader::new();
    leader.write(&create("/e1", 1)).expect("e1");
    leader.write(&create("/e2", 1)).expect("e2");
    let other = SessionId(99);
    let theirs = leader
        .propose_as(other, &[], &create("/theirs", 1))
        .expect("other session");
    leader.apply(&theirs);
    let pending_create = leader.propose(&create("/e3", 1)).expect("pending create");
    let pending_delete = leader.propose(&delete("/e1")).expect("pending delete");
    let ctx = ctx(leader.counter + 1);
    let body = leader.prep.close_session(&leader.tree, SESSION, &ctx);
    assert_eq!(
        body,
        TxnBody::CloseSession {
            paths_to_delete: vec!["/e2".into(), "/e3".into()]
        }
    );
    assert_eq!(
        leader.propose(&create("/late", 0)).err(),
        Some(ErrorCode::SessionExpired)
    );
    let caller = Caller {
        session_id: SESSION,
        ids: &[],
    };
    let failed = leader
        .prep
        .multi(&leader.tree, &caller, &[create("/m", 0)], &ctx);
    assert_eq!(
        failed,
        Err(vec![OpResult::Error(ErrorCode::SessionExpired)])
    );
    leader.apply(&pending_create);
    leader.apply(&pending_delete);
    leader.counter += 1;
    leader.apply(&txn(leader.counter, SESSION, body));
    assert_eq!(leader.tree.ephemerals_of(SESSION), Vec::<String>::new());
    assert_eq!(leader.tree.ephemerals_of(other), ["/theirs"]);
    assert_eq!(leader.prep.pending_paths(), 0);
    assert_eq!(leader.tree.node("/").expect("root").stat().num_children, 2);
}

#[test]
fn reap_rechecks_against_pending_state() {
    let mut leader = Leader::new();
    leader
        .write(&create_with(OpCode::CreateContainer, "/c", 4, 0))
        .expect("c");
    leader.write(&create("/c/x", 0)).expect("child");
    let ctx1 = ctx(leader.counter + 1);
    assert_eq!(leader.prep.reap(&leader.tree, "/c", 0, &ctx1), None);
    let removal = leader.propose(&delete("/c/x")).expect("pending delete");
    let ctx2 = ctx(leader.counter + 1);
    let reaped = leader
        .prep
        .reap(&leader.tree, "/c", 0, &ctx2)
        .expect("empty once pending");
    assert_eq!(reaped, TxnBody::Delete { path: "/c".into() });
    assert_eq!(
        leader.prep.reap(&leader.tree, "/c", 0, &ctx2),
        None,
        "already pending"
    );
    assert_eq!(leader.prep.reap(&leader.tree, "/", 0, &ctx2), None);
    leader.apply(&removal);
    leader.counter += 1;
    leader.apply(&txn(leader.counter, SessionId::NONE, reaped));
    assert!(leader.tree.node("/c").is_none());

    leader
        .write(&create_with(OpCode::CreateTtl, "/t", 5, 10))
        .expect("ttl");
    let mtime = leader.tree.node("/t").expect("t").stat().mtime;
    let ctx3 = ctx(leader.counter + 1);
    assert_eq!(
        leader.prep.reap(&leader.tree, "/t", mtime + 10, &ctx3),
        None
    );
    let touch = WriteOp::SetData {
        path: "/t".into(),
        data: Some(vec![]),
        version: -1,
    };
    let _pending_touch = leader.propose(&touch).expect("touch");
    let ctx4 = ctx(leader.counter + 1);
    // The pending setData moved mtime, so the TTL has not run out yet.
    assert_eq!(
        leader.prep.reap(&leader.tree, "/t", mtime + 11, &ctx4),
        None
    );
    assert!(leader
        .prep
        .reap(&leader.tree, "/t", ctx4.time_ms + 11, &ctx4)
        .is_some());
}

#[test]
fn sequence_suffix_wraps_like_java() {
    let mut leader = Leader::new();
    leader.write(&create("/p", 0)).expect("p");
    let key = crate::key::key_of("/p").expect("key");
    leader
        .tree
        .modify_node(&key, |node| node.child_creates = i32::MAX);
    let first = leader.propose(&create("/p/s-", 2)).expect("seq");
    let second = leader.propose(&create("/p/s-", 2)).expect("seq");
    assert!(matches!(&first.body, TxnBody::Create { path, .. } if path == "/p/s-2147483647"));
    assert!(matches!(&second.body, TxnBody::Create { path, .. } if path == "/p/s--2147483648"));
}

use super::*;
use crate::testing::{create, delete, Leader, SESSION};
use ek_types::{perms, OpCode, Stat, WriteOp};

#[test]
fn new_tree_has_system_nodes() {
    let tree = DataTree::new();
    assert_eq!(tree.node_count(), 4);
    assert_eq!(tree.children("/"), Some(vec!["zookeeper"]));
    assert_eq!(tree.children("/zookeeper"), Some(vec!["config", "quota"]));
    assert_eq!(tree.children("/zookeeper/quota"), Some(vec![]));
    assert_eq!(tree.children("/nope"), None);
    let config = tree.node("/zookeeper/config").expect("config");
    assert_eq!(config.acl(), Acl::read_unsafe().as_slice());
    assert_eq!(config.stat(), Stat::default());
    assert_eq!(
        tree.node("/").expect("root").acl(),
        Acl::open_unsafe().as_slice()
    );
    assert_eq!(tree.node("/").expect("root").stat().num_children, 1);
    assert_eq!(tree.acl_count(), 2);
    assert_eq!(tree.last_zxid(), Zxid::ZERO);
    assert_eq!(tree.digest(), tree.recompute_digest());
    assert_eq!(tree.approximate_data_size(), (1 + 10 + 16 + 17) as u64);
}

#[test]
fn children_and_descendant_counts() {
    let mut leader = Leader::new();
    for path in ["/a", "/a/b", "/a/b/c", "/a-b", "/a/d", "/b"] {
        leader.write(&create(path, 0)).expect("create");
    }
    let tree = &leader.tree;
    assert_eq!(tree.children("/a"), Some(vec!["b", "d"]));
    assert_eq!(tree.children("/"), Some(vec!["a", "a-b", "b", "zookeeper"]));
    assert_eq!(tree.all_children_number("/a"), Some(3));
    assert_eq!(tree.all_children_number("/a/d"), Some(0));
    assert_eq!(tree.all_children_number("/"), Some(9));
    assert_eq!(tree.all_children_number("/x"), None);
    assert_eq!(tree.node("/a").expect("a").stat().num_children, 2);
}

#[test]
fn ephemerals_are_indexed_per_session() {
    let mut leader = Leader::new();
    leader.write(&create("/app", 0)).expect("create");
    leader.write(&create("/app/e1", 1)).expect("create");
    leader.write(&create("/app/s-", 3)).expect("create");
    leader.write(&create("/other", 1)).expect("create");
    let tree = &leader.tree;
    assert_eq!(tree.ephemeral_count(), 3);
    assert_eq!(
        tree.ephemerals_of(SESSION),
        ["/app/e1", "/app/s-0000000001", "/other"]
    );
    assert_eq!(
        tree.ephemerals_under(SESSION, "/app"),
        ["/app/e1", "/app/s-0000000001"]
    );
    assert_eq!(
        tree.ephemerals_under(SESSION, "/"),
        tree.ephemerals_of(SESSION)
    );
    assert!(tree.ephemerals_of(SessionId(7)).is_empty());
    assert_eq!(
        tree.node("/other").expect("e").stat().ephemeral_session(),
        Some(SESSION)
    );
}

#[test]
fn reap_candidates_follow_container_and_ttl_rules() {
    let mut leader = Leader::new();
    let container = WriteOp::Create {
        opcode: OpCode::CreateContainer,
        path: "/c".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        flags: 4,
        ttl_ms: 0,
    };
    let ttl = WriteOp::Create {
        opcode: OpCode::CreateTtl,
        path: "/t".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl_ms: 100,
    };
    leader.write(&container).expect("container");
    leader.write(&ttl).expect("ttl");
    let t_mtime = leader.tree.node("/t").expect("t").stat().mtime;
    // A container that never had a child stays; the TTL node waits for its TTL.
    assert!(leader.tree.reap_candidates(t_mtime + 100).is_empty());
    assert_eq!(leader.tree.reap_candidates(t_mtime + 101), ["/t"]);
    leader.write(&create("/c/x", 0)).expect("child");
    leader.write(&create("/t/x", 0)).expect("child");
    assert!(leader.tree.reap_candidates(i64::MAX).is_empty());
    leader.write(&delete("/c/x")).expect("delete");
    leader.write(&delete("/t/x")).expect("delete");
    assert_eq!(leader.tree.reap_candidates(i64::MAX), ["/c", "/t"]);
    assert_eq!(leader.tree.reap_candidates(0), ["/c"]);
}

#[test]
fn acl_table_is_shared_and_freed() {
    let mut leader = Leader::new();
    for index in 0..10 {
        leader
            .write(&create(&format!("/n{index}"), 0))
            .expect("create");
    }
    assert_eq!(leader.tree.acl_count(), 2);
    let read_only = WriteOp::SetAcl {
        path: "/n0".into(),
        acl: vec![Acl {
            perms: perms::READ | perms::ADMIN,
            id: ek_types::Id::new("ip", "10.0.0.0/8"),
        }],
        version: -1,
    };
    leader.write(&read_only).expect("set acl");
    assert_eq!(leader.tree.acl_count(), 3);
    leader.write(&delete("/n0")).expect("delete");
    assert_eq!(leader.tree.acl_count(), 2);
    assert_eq!(leader.tree.digest(), leader.tree.recompute_digest());
}

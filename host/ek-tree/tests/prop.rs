//! Property tests of the tree and prep through the public API.

use ek_tree::acl::check;
use ek_tree::{ApplyError, Caller, DataTree, Prep, PrepContext};
use ek_types::{
    perms, Acl, ErrorCode, Id, OpCode, OpResult, SessionId, Txn, TxnBody, WriteOp, Zxid,
};
use proptest::prelude::*;

const SESSION: SessionId = SessionId(0x0100_0000_0000_0001);

fn ctx(counter: u32) -> PrepContext {
    PrepContext {
        zxid: Zxid::new(1, counter),
        time_ms: 5_000 + i64::from(counter),
        max_data_bytes: 64,
    }
}

fn txn(counter: u32, body: TxnBody) -> Txn {
    let ctx = ctx(counter);
    Txn {
        zxid: ctx.zxid,
        session_id: SESSION,
        cxid: 0,
        time_ms: ctx.time_ms,
        body,
        digest: None,
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|names| format!("/{}", names.join("/")))
}

fn op_strategy() -> impl Strategy<Value = WriteOp> {
    let acl = prop::sample::select(vec![Acl::open_unsafe(), Acl::read_unsafe()]);
    // Null (`None`) and empty data must stay distinct through apply, digest and snapshots.
    let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..8));
    prop_oneof![
        (path_strategy(), data.clone(), 0..4i32, acl.clone()).prop_map(
            |(path, data, flags, acl)| {
                WriteOp::Create {
                    opcode: OpCode::Create2,
                    path,
                    data,
                    acl,
                    flags,
                    ttl_ms: 0,
                }
            }
        ),
        (path_strategy(), -1..1i32).prop_map(|(path, version)| WriteOp::Delete { path, version }),
        (path_strategy(), data, -1..2i32).prop_map(|(path, data, version)| WriteOp::SetData {
            path,
            data,
            version
        }),
        (path_strategy(), acl, -1..1i32).prop_map(|(path, acl, version)| WriteOp::SetAcl {
            path,
            acl,
            version
        }),
        (path_strategy(), -1..1i32).prop_map(|(path, version)| WriteOp::Check { path, version }),
    ]
}

/// A client request: one op or a multi.
fn request_strategy() -> impl Strategy<Value = Vec<WriteOp>> {
    prop_oneof![
        3 => op_strategy().prop_map(|op| vec![op]),
        1 => prop::collection::vec(op_strategy(), 0..4),
    ]
}

/// Preps a request; returns the body or the per-op errors.
fn prep(
    prep: &mut Prep,
    tree: &DataTree,
    ops: &[WriteOp],
    counter: u32,
) -> Result<TxnBody, Vec<OpResult>> {
    let caller = Caller {
        session_id: SESSION,
        ids: &[],
    };
    if let [op] = ops {
        prep.write(tree, &caller, op, &ctx(counter))
            .map_err(|code| vec![OpResult::Error(code)])
    } else {
        prep.multi(tree, &caller, ops, &ctx(counter))
    }
}

/// What a request got: its results, or its errors as prep gave them.
type Outcome = Result<Vec<OpResult>, Vec<OpResult>>;

/// Runs requests one by one (prep, apply) and, on a second tree, pipelined (prep a
/// batch, then apply it); returns both trees and both outcome lists.
fn run(requests: &[Vec<WriteOp>], batch: usize) -> [(DataTree, Vec<Outcome>); 2] {
    let mut out = Vec::new();
    for batch in [1, batch] {
        let (mut tree, mut prepper, mut counter) = (DataTree::new(), Prep::new(), 0u32);
        let mut outcomes = Vec::new();
        for chunk in requests.chunks(batch) {
            let mut txns = Vec::new();
            for ops in chunk {
                match prep(&mut prepper, &tree, ops, counter + 1) {
                    Ok(body) => {
                        counter += 1;
                        txns.push((outcomes.len(), txn(counter, body)));
                        outcomes.push(Ok(vec![]));
                    }
                    Err(results) => outcomes.push(Err(results)),
                }
            }
            for (index, txn) in txns {
                let applied = tree.apply(&txn).expect("prepped txns apply");
                prepper.applied(txn.zxid);
                outcomes[index] = Ok(applied.results);
            }
        }
        out.push((tree, outcomes));
    }
    let second = out.pop().expect("two runs");
    let first = out.pop().expect("two runs");
    [first, second]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn same_txns_same_digest_and_pipelining_changes_nothing(
        requests in prop::collection::vec(request_strategy(), 0..40),
        batch in 1..6usize,
    ) {
        let [(serial, serial_out), (piped, piped_out)] = run(&requests, batch);
        prop_assert_eq!(serial_out, piped_out);
        prop_assert_eq!(serial.digest(), piped.digest());
        prop_assert_eq!(serial.digest(), serial.recompute_digest());
        prop_assert_eq!(piped.digest(), piped.recompute_digest());
        prop_assert_eq!(serial.node_count(), piped.node_count());
    }

    #[test]
    fn snapshot_round_trip(requests in prop::collection::vec(request_strategy(), 0..40)) {
        let [(tree, _), _] = run(&requests, 1);
        let mut bytes = Vec::new();
        tree.snapshot().write_to(&mut bytes).expect("write");
        let read = DataTree::read_snapshot(&mut bytes.as_slice()).expect("read");
        prop_assert_eq!(read.digest(), tree.digest());
        prop_assert_eq!(read.last_zxid(), tree.last_zxid());
        prop_assert_eq!(read.node_count(), tree.node_count());
        prop_assert_eq!(read.ephemerals_of(SESSION), tree.ephemerals_of(SESSION));
        let mut stack = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            let (a, b) = (tree.node(&path).expect("node"), read.node(&path).expect("node"));
            prop_assert_eq!((a.data(), a.stat(), a.acl()), (b.data(), b.stat(), b.acl()));
            prop_assert_eq!(tree.children(&path), read.children(&path));
            for name in tree.children(&path).unwrap_or_default() {
                stack.push(ek_types::path::join(&path, name));
            }
        }
    }

    #[test]
    fn failing_multi_is_all_or_nothing(
        requests in prop::collection::vec(request_strategy(), 0..20),
        good in prop::collection::vec(op_strategy(), 0..4),
        failing_at in 0..4usize,
    ) {
        let [(mut tree, _), _] = run(&requests, 1);
        let mut prepper = Prep::new();
        // Deleting the root always fails with BadArguments.
        let mut ops = good.clone();
        let failing_at = failing_at.min(ops.len());
        ops.insert(failing_at, WriteOp::Delete { path: "/".into(), version: -1 });
        let digest = tree.digest();
        let caller = Caller { session_id: SESSION, ids: &[] };
        let results = prepper.multi(&tree, &caller, &ops, &ctx(100)).expect_err("fails");
        prop_assert_eq!(results.len(), ops.len());
        let first_error = results.iter().position(|r| *r != OpResult::Error(ErrorCode::Ok)).expect("an error");
        prop_assert!(first_error <= failing_at);
        for (index, result) in results.iter().enumerate() {
            let expected_ok = index < first_error;
            let after = index > first_error;
            prop_assert_eq!(*result == OpResult::Error(ErrorCode::Ok), expected_ok);
            prop_assert_eq!(*result == OpResult::Error(ErrorCode::RuntimeInconsistency), after);
        }
        prop_assert_eq!(prepper.pending_paths(), 0);
        // At apply time too: a multi ending in a bad op changes nothing.
        if let Ok(TxnBody::Multi(mut bodies)) = prepper.multi(&tree, &caller, &good, &ctx(100)) {
            bodies.push(TxnBody::Delete { path: "/".into() });
            let last = tree.last_zxid();
            prop_assert_eq!(tree.apply(&txn(100, TxnBody::Multi(bodies))), Err(ApplyError::DeleteRoot));
            prop_assert_eq!(tree.last_zxid(), last);
        }
        prop_assert_eq!(tree.digest(), digest);
        prop_assert_eq!(tree.recompute_digest(), digest);
    }

    #[test]
    fn sequential_suffix_counts_child_creates(steps in prop::collection::vec(any::<bool>(), 1..30)) {
        let (mut tree, mut prepper, mut counter) = (DataTree::new(), Prep::new(), 0u32);
        let mut apply = |tree: &mut DataTree, prepper: &mut Prep, op: WriteOp| {
            let body = prep(prepper, tree, &[op], counter + 1).ok()?;
            counter += 1;
            let applied = tree.apply(&txn(counter, body)).expect("applies");
            prepper.applied(Zxid::new(1, counter));
            Some(applied.results)
        };
        let parent = WriteOp::Create {
            opcode: OpCode::Create, path: "/p".into(), data: Some(vec![]), acl: Acl::open_unsafe(), flags: 0, ttl_ms: 0,
        };
        apply(&mut tree, &mut prepper, parent).expect("parent");
        let (mut live, mut creates, mut deletes) = (Vec::<String>::new(), 0, 0);
        for create in steps {
            if create || live.is_empty() {
                let op = WriteOp::Create {
                    opcode: OpCode::Create2, path: "/p/n-".into(), data: Some(vec![]), acl: Acl::open_unsafe(), flags: 2, ttl_ms: 0,
                };
                let results = apply(&mut tree, &mut prepper, op).expect("create");
                let Some(OpResult::Create { path, .. }) = results.first() else { panic!("{results:?}") };
                prop_assert_eq!(path.clone(), format!("/p/n-{creates:010}"));
                live.push(path.clone());
                creates += 1;
            } else {
                let path = live.remove(0);
                apply(&mut tree, &mut prepper, WriteOp::Delete { path, version: -1 }).expect("delete");
                deletes += 1;
            }
            let stat = tree.node("/p").expect("p").stat();
            prop_assert_eq!(stat.cversion, creates + deletes);
            prop_assert_eq!(stat.num_children as usize, live.len());
        }
    }

    #[test]
    fn create_path_validation(name in "[a/.\\x00\\x01é\u{e000}]{0,6}") {
        let path = format!("/{name}");
        let (tree, mut prepper) = (DataTree::new(), Prep::new());
        let caller = Caller { session_id: SESSION, ids: &[] };
        let op = WriteOp::Create {
            opcode: OpCode::Create, path: path.clone(), data: Some(vec![]), acl: Acl::open_unsafe(), flags: 0, ttl_ms: 0,
        };
        let result = prepper.write(&tree, &caller, &op, &ctx(1));
        let valid = ek_types::path::validate(&path).is_ok();
        match result {
            Ok(_) => prop_assert!(valid),
            Err(ErrorCode::BadArguments) => prop_assert!(!valid || path == "/"),
            Err(ErrorCode::NoNode) => prop_assert!(name.contains('/')),
            Err(ErrorCode::NodeExists) => prop_assert!(path == "/"),
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn acl_check_matches_a_model(
        entries in prop::collection::vec((0..32i32, 0..4usize), 0..4),
        held in prop::collection::vec(0..4usize, 0..3),
        perm in prop::sample::select(vec![perms::READ, perms::WRITE, perms::CREATE, perms::DELETE, perms::ADMIN]),
        is_super in any::<bool>(),
    ) {
        let universe = [
            Id::anyone(),
            Id::new("digest", "bob:h"),
            Id::new("ip", "10.0.0.0/8"),
            Id::new("x509", "CN=a"),
        ];
        let caller_ids = [
            Id::new("ip", "127.0.0.1"),
            Id::new("digest", "bob:h"),
            Id::new("ip", "10.2.3.4"),
            Id::new("x509", "CN=a"),
        ];
        let acl: Vec<Acl> = entries.iter().map(|(p, i)| Acl { perms: *p, id: universe[*i].clone() }).collect();
        let mut ids: Vec<Id> = held.iter().map(|i| caller_ids[*i].clone()).collect();
        if is_super {
            ids.push(Id::new("super", ""));
        }
        // Caller id i matches universe entry i (0 never: ip 127.0.0.1 is not in 10/8, but
        // world matches everyone).
        let model = is_super || acl.is_empty() || entries.iter().any(|(p, i)| {
            p & perm != 0 && (*i == 0 || held.contains(i))
        });
        prop_assert_eq!(check(&acl, perm, &ids), model);
    }
}

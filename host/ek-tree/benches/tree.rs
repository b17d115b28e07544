//! Tree suite: prep+apply of creates and setData, and getData-style lookups, on a tree
//! of 10k nodes.

use criterion::{criterion_group, criterion_main, Criterion};
use ek_tree::{Caller, DataTree, Prep, PrepContext};
use ek_types::{Acl, OpCode, SessionId, Txn, WriteOp, Zxid};
use std::hint::black_box;

const NODES: u32 = 10_000;

struct Leader {
    tree: DataTree,
    prep: Prep,
    counter: u32,
}

impl Leader {
    fn write(&mut self, op: &WriteOp) {
        self.counter += 1;
        let ctx = PrepContext {
            zxid: Zxid::new(1, self.counter),
            time_ms: i64::from(self.counter),
            max_data_bytes: 1 << 20,
        };
        let caller = Caller {
            session_id: SessionId(1),
            ids: &[],
        };
        let body = self
            .prep
            .write(&self.tree, &caller, op, &ctx)
            .expect("prep");
        let txn = Txn {
            zxid: ctx.zxid,
            session_id: caller.session_id,
            cxid: 0,
            time_ms: ctx.time_ms,
            body,
            digest: None,
        };
        self.tree.apply(&txn).expect("apply");
        self.prep.applied(ctx.zxid);
    }
}

fn create(path: String) -> WriteOp {
    WriteOp::Create {
        opcode: OpCode::Create,
        path,
        data: Some(vec![7; 100]),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: 0,
    }
}

fn populated() -> Leader {
    let mut leader = Leader {
        tree: DataTree::new(),
        prep: Prep::new(),
        counter: 0,
    };
    for dir in 0..100 {
        leader.write(&create(format!("/d{dir}")));
        for leaf in 0..(NODES / 100 - 1) {
            leader.write(&create(format!("/d{dir}/n{leaf}")));
        }
    }
    leader
}

fn tree_suite(c: &mut Criterion) {
    let mut leader = populated();
    let mut next = 0u64;
    c.bench_function("prep_apply_create", |b| {
        b.iter(|| {
            next += 1;
            leader.write(&create(format!("/d{}/new{next}", next % 100)));
        })
    });
    let mut index = 0u32;
    c.bench_function("get_data", |b| {
        b.iter(|| {
            index = (index + 1) % (NODES / 100 - 1);
            let path = format!("/d{}/n{index}", index % 100);
            let node = leader.tree.node(black_box(&path)).expect("node");
            black_box((node.data().map(<[u8]>::len), node.stat()))
        })
    });
    c.bench_function("prep_apply_set_data", |b| {
        b.iter(|| {
            index = (index + 1) % (NODES / 100 - 1);
            leader.write(&WriteOp::SetData {
                path: format!("/d{}/n{index}", index % 100),
                data: Some(vec![9; 100]),
                version: -1,
            });
        })
    });
    c.bench_function("snapshot", |b| b.iter(|| black_box(leader.tree.snapshot())));
}

criterion_group!(benches, tree_suite);
criterion_main!(benches);

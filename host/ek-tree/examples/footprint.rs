//! Memory of a tree of 100,000 znodes of 100 B, created the way `edgekeeper bench load
//! --mix create=100 --sessions 32` names them: `cargo run --release -p ek-tree --example
//! footprint`. Prints the process's resident memory before and after.

use ek_tree::{Caller, DataTree, Prep, PrepContext};
use ek_types::{Acl, OpCode, SessionId, Txn, WriteOp, Zxid};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut tree = DataTree::new();
    let mut prep = Prep::new();
    let mut counter = 0u32;
    let mut write = |tree: &mut DataTree, path: String| {
        counter += 1;
        let ctx = PrepContext {
            zxid: Zxid::new(1, counter),
            time_ms: i64::from(counter),
            max_data_bytes: 1 << 20,
        };
        let caller = Caller {
            session_id: SessionId(1),
            ids: &[],
        };
        let op = WriteOp::Create {
            opcode: OpCode::Create,
            path,
            data: Some(vec![7; 100]),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl_ms: 0,
        };
        let body = prep.write(tree, &caller, &op, &ctx).expect("prep");
        let txn = Txn {
            zxid: ctx.zxid,
            session_id: caller.session_id,
            cxid: 0,
            time_ms: ctx.time_ms,
            body,
            digest: None,
        };
        tree.apply(&txn).expect("apply");
        prep.applied(ctx.zxid);
    };
    for dir in ["/ekbench", "/ekbench/znodes", "/ekbench/znodes/new"] {
        write(&mut tree, dir.to_owned());
    }
    let before = rss_kib();
    for n in 0..100_000u32 {
        let (session, seq) = (n % 32, n / 32);
        write(&mut tree, format!("/ekbench/znodes/new/s{session}-{seq}"));
    }
    let after = rss_kib();
    println!(
        "100,000 znodes: RSS {before} KiB -> {after} KiB, {} bytes per znode",
        (after - before) * 1024 / 100_000
    );
}

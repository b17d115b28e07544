//! Test watcher. What a call does is chosen by its first change's path, `/cmd/<command>`
//! (see `run`); any other batch runs the default: log each change and keep a counter at
//! `/out/count` (create it, then set it at its version).

wit_bindgen::generate!({ path: "../../../../../wit", world: "watcher" });

use edgekeeper::plugin::types::{ChangeKind, Level};
use edgekeeper::plugin::{clock, config, log, tree, txn};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Calls this instance has seen (shows whether the host reused it).
static CALLS: AtomicU32 = AtomicU32::new(0);
/// Memory the `grow` command keeps.
static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct Plugin;

impl Guest for Plugin {
    fn on_changes(batch: ChangeBatch) -> Result<(), String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let command = batch
            .changes
            .first()
            .and_then(|change| change.path.strip_prefix("/cmd/"))
            .unwrap_or("")
            .to_owned();
        run(&command, calls, &batch)
    }
}

fn run(command: &str, calls: u32, batch: &ChangeBatch) -> Result<(), String> {
    match command {
        "count" => log::log(Level::Info, &format!("call {calls}")),
        "spin" => {
            let mut n = batch.zxid;
            loop {
                n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "panic" => panic!("boom from guest at zxid {}", batch.zxid),
        "hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "try-hog" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut block = Vec::new();
                block
                    .try_reserve_exact(1 << 20)
                    .map_err(|err| format!("allocation failed after {} MiB: {err}", hoard.len()))?;
                block.resize(1 << 20, 1u8);
                hoard.push(block);
            }
        }
        "grow" => {
            let mib: usize = config::get("grow-mib")
                .and_then(|v| v.parse().ok())
                .unwrap_or(4);
            let mut kept = KEPT.lock().map_err(|_| "poisoned".to_owned())?;
            kept.push(vec![7u8; mib << 20]);
            log::log(Level::Info, &format!("grew by {mib} MiB"));
        }
        "err-after-write" => {
            txn::create("/out/x", b"x", txn::CreateMode::Persistent)
                .map_err(|e| format!("{e:?}"))?;
            return Err("changed my mind".into());
        }
        "out-of-grant" => {
            txn::create("/forbidden/x", b"x", txn::CreateMode::Persistent)
                .map_err(|e| format!("create refused: {e:?}"))?;
        }
        "read-outside" => {
            tree::get("/secret").map_err(|e| format!("read refused: {e:?}"))?;
        }
        "bad-path" => {
            txn::create("/out//x", b"x", txn::CreateMode::Persistent)
                .map_err(|e| format!("create refused: {e:?}"))?;
        }
        "big-write" => {
            let data = vec![b'x'; (1 << 20) + 1];
            txn::create("/out/big", &data, txn::CreateMode::Persistent)
                .map_err(|e| format!("create refused: {e:?}"))?;
        }
        "many-ops" => {
            for i in 0..1_001 {
                txn::create(&format!("/out/n{i}"), b"", txn::CreateMode::Persistent)
                    .map_err(|e| format!("op {i} refused: {e:?}"))?;
            }
        }
        "print" => {
            println!("hello on stdout");
            eprintln!("hello on stderr");
        }
        "flood" => {
            for i in 0..2_000 {
                log::log(Level::Debug, &format!("log line {i}"));
            }
            for i in 0..2_000 {
                println!("stdout line {i} {}", "x".repeat(100));
            }
        }
        "config" => {
            for (key, value) in config::entries() {
                log::log(Level::Info, &format!("config {key}={value}"));
            }
            if config::get("no-such-key").is_some() {
                return Err("config::get invented a key".into());
            }
        }
        "clock" => log::log(Level::Info, &format!("now {}", clock::now_ms())),
        _ => counter(batch)?,
    }
    Ok(())
}

fn counter(batch: &ChangeBatch) -> Result<(), String> {
    for change in &batch.changes {
        let kind = match change.kind {
            ChangeKind::Created => "created",
            ChangeKind::Deleted => "deleted",
            ChangeKind::DataChanged => "data-changed",
        };
        let version = change.stat.map(|s| s.version).unwrap_or(-1);
        log::log(
            Level::Info,
            &format!(
                "{kind} {} at {} (version {version})",
                change.path, change.zxid
            ),
        );
    }
    match tree::exists("/out/count").map_err(|e| format!("{e:?}"))? {
        None => txn::create("/out/count", b"1", txn::CreateMode::Persistent),
        Some(stat) => {
            let (data, _) = tree::get("/out/count").map_err(|e| format!("{e:?}"))?;
            let n: u64 = String::from_utf8_lossy(&data).parse().unwrap_or(0);
            txn::set(
                "/out/count",
                (n + 1).to_string().as_bytes(),
                Some(stat.version),
            )
        }
    }
    .map_err(|e| format!("{e:?}"))
}

export!(Plugin);

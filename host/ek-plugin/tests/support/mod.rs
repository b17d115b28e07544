//! The test guests of `tests/guests/`, built once per test process for wasm32-wasip2, and
//! small helpers shared by the tests and the bench.
#![allow(dead_code, unreachable_pub)]

use ek_plugin::fixture::{MemEnv, MemTree};
use ek_plugin::{Change, ChangeBatch, ChangeKind, Manifest, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the guests are built: `$CARGO_TARGET_DIR/guests`, or `guests/` in the target
/// directory this test binary was built into.
fn guest_target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("guests");
    }
    // <target>/<profile>/deps/<this test binary>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_owned))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("guests")
}

/// The component of test guest `name` (the folder under `tests/guests/`, e.g. `watcher`).
pub fn guest(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let target = guest_target_dir();
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target)
            // Flags meant for the host build must not reach the guests.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo to build the test guests");
        assert!(
            output.status.success(),
            "building the test guests failed (is the wasm32-wasip2 target installed?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("wasm32-wasip2/release")
    });
    let file = dir.join(format!("ekt_{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|err| panic!("read {}: {err}", file.display()))
}

/// A manifest from TOML; it must parse. Without a `timeout-ms` of its own it gets 10 s: a
/// debug build on a busy machine is slow, and only the tests of deadlines need short ones.
pub fn manifest(toml: &str) -> Manifest {
    let mut manifest =
        Manifest::from_toml(toml).unwrap_or_else(|err| panic!("manifest: {err}\n{toml}"));
    manifest.limits.timeout_ms.get_or_insert(10_000);
    manifest
}

/// A leader watcher named `w` that reads `/out` and `/cmd`, writes `/out`, plus `extra`
/// (keys, then tables).
pub fn watcher_manifest(extra: &str) -> Manifest {
    manifest(&format!(
        "name = \"w\"\nversion = \"1\"\nworld = \"watcher\"\nplacement = \"leader\"\n\
         read-prefixes = [\"/out\", \"/cmd\"]\nwrite-prefixes = [\"/out\"]\n\
         watch-prefixes = [\"/cmd\", \"/out\"]\n{extra}"
    ))
}

/// A scaling policy named `p` that reads `/scaling`, plus `extra`.
pub fn policy_manifest(extra: &str) -> Manifest {
    manifest(&format!(
        "name = \"p\"\nversion = \"1\"\nworld = \"scaling-policy\"\n\
         read-prefixes = [\"/scaling\"]\n{extra}"
    ))
}

/// A registrar named `r` that reads and writes `/services`, plus `extra`.
pub fn registrar_manifest(extra: &str) -> Manifest {
    manifest(&format!(
        "name = \"r\"\nversion = \"1\"\nworld = \"registrar\"\n\
         read-prefixes = [\"/services\"]\nwrite-prefixes = [\"/services\"]\n{extra}"
    ))
}

/// A runtime whose compile cache is shared by every test (and kept between runs, next to
/// the built guests): compiling in a debug build is slow. Tests of the cache itself make
/// their own.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(guest_target_dir().join("plugin-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// An in-memory node holding `nodes` (parents made as needed).
pub fn node(nodes: &[(&str, &str)]) -> MemEnv {
    let mut tree = MemTree::new();
    for (path, data) in nodes {
        tree.seed(path, data.as_bytes().to_vec(), false)
            .expect("seed");
    }
    MemEnv::new(tree)
}

/// A batch of one change to `/cmd/<command>`: the test watcher runs that command.
pub fn cmd(command: &str) -> ChangeBatch {
    ChangeBatch {
        snapshot: false,
        zxid: 7,
        changes: vec![Change {
            kind: ChangeKind::DataChanged,
            path: format!("/cmd/{command}"),
            zxid: 7,
            stat: None,
        }],
    }
}

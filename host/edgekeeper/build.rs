//! Link flags of the `edgekeeper` binary: what keeps an idle node's resident code small
//! (docs/benchmarks.md, "Idle memory"). Both need LLD, Rust's default linker on
//! x86_64-unknown-linux-gnu since 1.90; `EDGEKEEPER_PLAIN_LINK=1` leaves them out for
//! another linker.

fn main() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=EDGEKEEPER_PLAIN_LINK");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !linux || std::env::var_os("EDGEKEEPER_PLAIN_LINK").is_some() {
        return;
    }
    // Relative relocations packed as RELR (glibc ≥ 2.36): the loader reads a few KB at
    // start-up instead of ~650 KB of `.rela.dyn`, which would otherwise stay resident.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    // The functions a node runs (start-up, serving, idle ticks; as leader, follower and
    // standalone) laid out together at the front of `.text`, so the kernel's 64 KB
    // fault-around maps them and little else. `bench/link-order.sh` regenerates the list;
    // a name that no longer exists is skipped, so a stale list only costs memory.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/link-order.txt");
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

//! The guest plugins of `guest-plugins/`, compiled once per test process for
//! `wasm32-wasip2` (into `$CARGO_TARGET_DIR/guests`, as `.ci/run` builds them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// `guest-plugins/<rel>`, e.g. `examples/hpa-policy`.
pub(crate) fn guest_dir(rel: &str) -> PathBuf {
    repo().join("guest-plugins").join(rel)
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("guests"),
        None => {
            // target/<profile>/deps/it-<hash> -> target/guests
            let exe = std::env::current_exe().expect("current_exe");
            exe.ancestors()
                .nth(3)
                .expect("test binary under target/<profile>/deps")
                .join("guests")
        }
    }
}

/// The component of guest crate `crate_name` (underscores), building all guests first.
pub(crate) fn wasm(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target = target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(repo().join("guest-plugins/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run cargo for the guest plugins");
        assert!(
            output.status.success(),
            "building the guest plugins failed (is `rustup target add wasm32-wasip2` done?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("wasm32-wasip2").join("release")
    });
    let path = dir.join(format!("{crate_name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

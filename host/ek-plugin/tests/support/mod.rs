//! The guest plugins of `guest-plugins/`, built once per test process for wasm32-wasip2.
#![allow(dead_code, unreachable_pub)]

use ek_plugin::Manifest;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/ek-plugin is two levels down")
        .to_owned()
}

/// The component of guest crate `name` (underscores).
pub fn wasm(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir).join("guests"),
            None => repo().join("target").join("guests"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
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
            .expect("run cargo");
        assert!(
            output.status.success(),
            "guest build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target.join("wasm32-wasip2/release")
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).expect("read the component")
}

/// The manifest in `guest-plugins/<rel>/manifest.toml`.
pub fn manifest(rel: &str) -> Manifest {
    let text =
        std::fs::read_to_string(repo().join("guest-plugins").join(rel).join("manifest.toml"))
            .expect("read the manifest");
    Manifest::from_toml(&text).expect("parse the manifest")
}

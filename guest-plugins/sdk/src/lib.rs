//! The guest SDK for edgekeeper plugins.
//!
//! A plugin implements one of three traits ([`Watcher`], [`ScalingPolicy`], [`Registrar`])
//! with plain Rust types, and exports it with the matching macro ([`export_watcher!`],
//! [`export_scaling_policy!`], [`export_registrar!`]); the crate enables the matching
//! feature of this SDK (`watcher`, `scaling-policy`, `registrar`), so its component
//! imports only that world's interfaces. Everything the plugin may do goes through
//! [`Host`]: reads of the node's replica, buffered writes, log, clock, config. On wasm the
//! host is the node; in native `cargo test` it is a [`MockHost`].
//!
//! ```ignore
//! struct Double;
//! impl edgekeeper_plugin::ScalingPolicy for Double {
//!     fn decide(_host: &mut dyn Host, w: Workload) -> Result<Decision, String> {
//!         let n = (w.current_replicas * 2).clamp(w.min_replicas, w.max_replicas);
//!         Ok(Decision { desired_replicas: n, recommendation: n, reason: "double".into() })
//!     }
//! }
//! edgekeeper_plugin::export_scaling_policy!(Double);
//! ```

mod mock;
mod types;

#[doc(hidden)]
pub mod wasm;

pub use mock::{MockHost, MockOp};
pub use types::*;

/// What a plugin may do. Reads see the node's local replica (only under the manifest's
/// read prefixes); writes are buffered and committed as one multi after the call returns
/// `Ok` (only under the write prefixes).
pub trait Host {
    /// A node's data and stat.
    fn get(&mut self, path: &str) -> Result<(Vec<u8>, Stat), TreeError>;
    /// A node's stat, or `None`.
    fn exists(&mut self, path: &str) -> Result<Option<Stat>, TreeError>;
    /// A node's child names, sorted.
    fn children(&mut self, path: &str) -> Result<Vec<String>, TreeError>;
    /// Buffers a create.
    fn create(&mut self, path: &str, data: &[u8], mode: CreateMode) -> Result<(), TreeError>;
    /// Buffers a set (with `version`, only if the node is at it).
    fn set(&mut self, path: &str, data: &[u8], version: Option<i32>) -> Result<(), TreeError>;
    /// Buffers a delete.
    fn delete(&mut self, path: &str, version: Option<i32>) -> Result<(), TreeError>;
    /// Buffers a version check.
    fn check(&mut self, path: &str, version: i32) -> Result<(), TreeError>;
    /// Writes to the plugin's log.
    fn log(&mut self, level: Level, msg: &str);
    /// Wall-clock ms since the Unix epoch.
    fn now_ms(&mut self) -> i64;
    /// A value of the manifest's `[config]`.
    fn config(&mut self, key: &str) -> Option<String>;
    /// All of the manifest's `[config]`.
    fn config_entries(&mut self) -> Vec<(String, String)>;
}

/// A watcher: committed changes in, writes out.
pub trait Watcher {
    /// Called with the start-up snapshot (`batch.snapshot`), then with each batch of
    /// committed changes in zxid order.
    fn on_changes(host: &mut dyn Host, batch: ChangeBatch) -> Result<(), String>;
}

/// A scaling policy: a workload in, a decision out. It cannot write.
pub trait ScalingPolicy {
    /// Decides the workload's replica count.
    fn decide(host: &mut dyn Host, workload: Workload) -> Result<Decision, String>;
}

/// A registrar: the full set of a source's records in, registrations written.
pub trait Registrar {
    /// Brings the registrations of `source` in line with `records`.
    fn reconcile(
        host: &mut dyn Host,
        source: String,
        records: Vec<ServiceRecord>,
    ) -> Result<(), String>;
}

/// Exports a [`Watcher`] as the component's `watcher` world (needs feature `watcher`).
#[macro_export]
macro_rules! export_watcher {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::wasm::watcher::Guest for Export {
                fn on_changes(
                    batch: $crate::wasm::watcher::ChangeBatch,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let mut host = $crate::wasm::watcher::WasmHost;
                    <$plugin as $crate::Watcher>::on_changes(
                        &mut host,
                        $crate::wasm::watcher::batch(batch),
                    )
                }
            }
    $crate::wasm::watcher::export!(Export with_types_in $crate::wasm::watcher);
        };
    };
}

/// Exports a [`ScalingPolicy`] as the component's `scaling-policy` world (needs feature
/// `scaling-policy`).
#[macro_export]
macro_rules! export_scaling_policy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::wasm::policy::Guest for Export {
                fn decide(
                    workload: $crate::wasm::policy::Workload,
                ) -> ::core::result::Result<$crate::wasm::policy::Decision, ::std::string::String>
                {
                    let mut host = $crate::wasm::policy::WasmHost;
                    <$plugin as $crate::ScalingPolicy>::decide(
                        &mut host,
                        $crate::wasm::policy::workload(workload),
                    )
                    .map($crate::wasm::policy::decision)
                }
            }
    $crate::wasm::policy::export!(Export with_types_in $crate::wasm::policy);
        };
    };
}

/// Exports a [`Registrar`] as the component's `registrar` world (needs feature
/// `registrar`).
#[macro_export]
macro_rules! export_registrar {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::wasm::registrar::Guest for Export {
                fn reconcile(
                    source: ::std::string::String,
                    records: ::std::vec::Vec<$crate::wasm::registrar::ServiceRecord>,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    let mut host = $crate::wasm::registrar::WasmHost;
                    <$plugin as $crate::Registrar>::reconcile(
                        &mut host,
                        source,
                        records
                            .into_iter()
                            .map($crate::wasm::registrar::record)
                            .collect(),
                    )
                }
            }
    $crate::wasm::registrar::export!(Export with_types_in $crate::wasm::registrar);
        };
    };
}

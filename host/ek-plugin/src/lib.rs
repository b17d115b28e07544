//! The wasmtime host for edgekeeper plugins: manifests, install-time checks (world,
//! exports, imports, WIT version, sha256), compilation with an on-disk cache, sandboxed
//! calls (epoch deadlines, memory caps, a deny-all WASI), the failure policy, per-plugin
//! metrics, and the fixture runner behind `edgekeeper plugin test`.
//!
//! This crate knows nothing of the node: plugins read through [`HostEnv`] and their
//! writes come back as [`TxnOp`]s for the caller to submit.
//!
//! - [`Runtime`]: one wasmtime engine (epoch interruption; fuel only for `plugin test`),
//!   the linkers of the three worlds and an epoch ticker thread. [`Runtime::load`] checks
//!   a component (sha256, world, import allow-list, WIT version), compiles it or loads
//!   this node's own cached compilation, and instantiates it once.
//! - [`Plugin`]: one loaded plugin with its failure policy. Its calls are synchronous and
//!   CPU-bound: make them on a blocking thread (`spawn_blocking`), never inside an async
//!   task (wasmtime-wasi's synchronous bindings enter a tokio runtime of their own, or
//!   the caller's).
//! - [`fixture`]: the runner behind `edgekeeper plugin test`.
//!
//! Neither the deadline nor fuel can interrupt a host function: [`HostEnv`] reads must
//! answer quickly.

mod bindings;
mod convert;
pub mod fixture;
mod host;
mod manifest;
mod plugin;
mod runtime;
mod types;

pub use host::{HostEnv, MAX_OP_BYTES, MAX_TXN_BYTES, MAX_TXN_OPS};
pub use manifest::{
    check_path, check_wit_version, under_prefix, FileGrant, Limits, Manifest, ManifestError,
    Placement, World, WIT_VERSION,
};
pub use plugin::{
    render_prometheus, CallError, CallOutput, Plugin, PluginStats, PluginStatus, DURATION_BUCKETS,
    FIRST_BACKOFF, MAX_BACKOFF, RECYCLE_AFTER_CALLS, SUSPEND_AFTER, SUSPEND_FOR,
};
pub use runtime::{sha256_hex, Loaded, Runtime, RuntimeConfig, WASI_ALLOWED, WASI_FILES};
pub use types::{
    Change, ChangeBatch, ChangeKind, CreateMode, Decision, Endpoint, Level, Metric, PastDecision,
    Pod, PodValue, ServiceRecord, Stat, TargetKind, TreeError, TxnOp, Workload,
};

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The engine could not be made.
    #[error("engine: {0}")]
    Engine(String),
    /// The manifest is invalid.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The bytes are not the ones the manifest names.
    #[error("the manifest says sha256 {manifest} but the component has sha256 {actual}")]
    Hash {
        /// What the manifest says.
        manifest: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// Not a component.
    #[error("not a component: {0}")]
    NotAComponent(String),
    /// Cranelift refused it.
    #[error("cannot compile: {0}")]
    Compile(String),
    /// It does not implement the manifest's world.
    #[error("wrong world: {0}")]
    WrongWorld(String),
    /// It imports something plugins may not have.
    #[error("import refused: {0}")]
    Import(String),
    /// It targets a WIT version this host does not offer.
    #[error("WIT version mismatch: {0}")]
    WitVersion(String),
    /// Its imports could not be linked.
    #[error("cannot link: {0}")]
    Link(String),
    /// It failed to instantiate.
    #[error("{0}")]
    Instantiate(String),
    /// A directory grant could not be opened.
    #[error("{0}")]
    Grant(String),
}

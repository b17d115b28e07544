//! What a plugin's imports do: the per-store state and the host functions of the
//! `edgekeeper:plugin` interfaces. Every function is bounded: reads go to the node's local
//! replica through [`HostEnv`], writes only fill a buffer, logs are capped.

use crate::bindings::{clock, config, log, tree, txn, types as wit};
use crate::manifest::{check_path, Manifest};
use crate::types::{CreateMode, Level, Stat, TreeError, TxnOp};
use std::sync::Arc;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Largest data of one buffered write.
pub const MAX_OP_BYTES: usize = 1024 * 1024;
/// Largest buffered transaction, in bytes of data.
pub const MAX_TXN_BYTES: usize = 4 * 1024 * 1024;
/// Most ops in one buffered transaction.
pub const MAX_TXN_OPS: usize = 1_000;
/// Most log entries kept per call.
const MAX_LOG_ENTRIES: usize = 256;
/// Most log bytes kept per call.
const MAX_LOG_BYTES: usize = 64 * 1024;
/// Capacity of the captured stdout and stderr of one instance (wasmtime's
/// `MemoryOutputPipe` cannot be drained, so an instance whose pipes pass
/// [`PIPE_RECYCLE_BYTES`] is replaced; a guest that prints more than this in one call
/// fails to print, which Rust's `println!` turns into a panic).
pub(crate) const PIPE_BYTES: usize = 1024 * 1024;
/// Captured output after which a warm instance is replaced.
const PIPE_RECYCLE_BYTES: usize = 64 * 1024;
/// Longest log message kept (longer ones are cut).
const MAX_LOG_MESSAGE: usize = 4096;

/// The node, as plugins see it: reads of the local replica. Implementations must answer
/// quickly and never wait on the network: they run inside a plugin call, where neither the
/// deadline nor anything else can interrupt them.
pub trait HostEnv: Send + Sync {
    /// The node's data and stat.
    fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), TreeError>;
    /// The node's stat, or `None`.
    fn exists(&self, path: &str) -> Result<Option<Stat>, TreeError>;
    /// The node's child names, sorted.
    fn children(&self, path: &str) -> Result<Vec<String>, TreeError>;
    /// Wall-clock ms since the Unix epoch.
    fn now_ms(&self) -> i64;
}

macro_rules! forward_host_env {
    ($($ty:ty),*) => {$(
        impl<T: HostEnv + ?Sized> HostEnv for $ty {
            fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), TreeError> {
                (**self).get(path)
            }
            fn exists(&self, path: &str) -> Result<Option<Stat>, TreeError> {
                (**self).exists(path)
            }
            fn children(&self, path: &str) -> Result<Vec<String>, TreeError> {
                (**self).children(path)
            }
            fn now_ms(&self) -> i64 {
                (**self).now_ms()
            }
        }
    )*};
}

// So that `&Arc<dyn HostEnv>` (and friends) can be passed where `&dyn HostEnv` is asked.
forward_host_env!(&T, Box<T>, Arc<T>);

/// A `HostEnv` for code run with no node (instantiation smoke tests).
pub(crate) struct NoNode;

impl HostEnv for NoNode {
    fn get(&self, _: &str) -> Result<(Vec<u8>, Stat), TreeError> {
        Err(TreeError::Unavailable("no node".into()))
    }
    fn exists(&self, _: &str) -> Result<Option<Stat>, TreeError> {
        Err(TreeError::Unavailable("no node".into()))
    }
    fn children(&self, _: &str) -> Result<Vec<String>, TreeError> {
        Err(TreeError::Unavailable("no node".into()))
    }
    fn now_ms(&self) -> i64 {
        0
    }
}

scoped_tls_hkt::scoped_thread_local!(
    /// The caller's node, lent to the host functions for the length of one call (a
    /// store's data must be `'static`, the caller's `&dyn HostEnv` is not).
    static ENV: for<'a> &'a dyn HostEnv
);

/// Runs `f` (a call into the guest) with `env` as the node its host functions read.
pub(crate) fn with_node<R>(env: &dyn HostEnv, f: impl FnOnce() -> R) -> R {
    ENV.set(env, f)
}

/// Runs `f` on the node lent by [`with_node`], or on [`NoNode`] outside a call.
fn node<R>(f: impl FnOnce(&dyn HostEnv) -> R) -> R {
    if ENV.is_set() {
        ENV.with(|env| f(env))
    } else {
        f(&NoNode)
    }
}

/// The store's resource limiter: wasmtime's [`StoreLimits`], plus what the host needs to
/// know afterwards (the largest memory granted, whether a growth was refused).
pub(crate) struct Limiter {
    limits: StoreLimits,
    /// The largest linear memory granted so far, in bytes.
    pub(crate) peak_memory: usize,
    /// A memory growth was refused since the flag was last cleared.
    pub(crate) refused: bool,
}

impl Limiter {
    pub(crate) fn new(memory_bytes: usize) -> Limiter {
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            // A refused growth makes `memory.grow` return -1: Rust's allocator reports an
            // error (try_reserve) or aborts (a trap), rather than the host trapping.
            .trap_on_grow_failure(false)
            // A component instantiates a handful of core instances, tables and memories.
            .instances(32)
            .tables(32)
            .memories(8)
            .table_elements(100_000)
            .build();
        Limiter {
            limits,
            peak_memory: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.refused = true;
        }
        Ok(granted)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The data of one plugin instance's store.
pub(crate) struct State {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) ops: Vec<TxnOp>,
    op_bytes: usize,
    pub(crate) logs: Vec<(Level, String)>,
    log_bytes: usize,
    log_truncated: bool,
    pub(crate) limiter: Limiter,
    wasi: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of stdout and stderr already moved into a call's log.
    seen: [usize; 2],
    /// What the guest wrote to stderr during the last call (a panic message, usually).
    pub(crate) call_stderr: String,
}

impl State {
    pub(crate) fn new(manifest: Arc<Manifest>) -> Result<State, crate::PluginError> {
        let stdout = MemoryOutputPipe::new(PIPE_BYTES);
        let stderr = MemoryOutputPipe::new(PIPE_BYTES);
        // Deny all: no args, env, network, inherited stdio or preopens; output is captured.
        let mut builder = WasiCtx::builder();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(files) = &manifest.files {
            builder
                .preopened_dir(&files.host_dir, &files.guest_dir, FsPerms::ReadWrite)
                .map_err(|err| {
                    crate::PluginError::Grant(format!(
                        "cannot open {} for the plugin: {err}",
                        files.host_dir.display()
                    ))
                })?;
        }
        let limiter = Limiter::new(manifest.effective_memory_bytes());
        Ok(State {
            manifest,
            ops: Vec::new(),
            op_bytes: 0,
            logs: Vec::new(),
            log_bytes: 0,
            log_truncated: false,
            limiter,
            wasi: builder.build(),
            table: ResourceTable::new(),
            stdout,
            stderr,
            seen: [0, 0],
            call_stderr: String::new(),
        })
    }

    /// Starts a call: a clean buffer and log.
    pub(crate) fn begin(&mut self) {
        self.ops.clear();
        self.op_bytes = 0;
        self.logs.clear();
        self.log_bytes = 0;
        self.log_truncated = false;
        self.limiter.refused = false;
        self.call_stderr.clear();
    }

    /// Ends a call: moves the output the guest printed during it into the log.
    pub(crate) fn finish(&mut self) {
        let pipes = [
            (self.stdout.contents(), Level::Info),
            (self.stderr.contents(), Level::Warn),
        ];
        for (i, (bytes, level)) in pipes.into_iter().enumerate() {
            let new = bytes.get(self.seen[i]..).unwrap_or_default();
            if new.is_empty() {
                continue;
            }
            self.seen[i] = bytes.len();
            let text = String::from_utf8_lossy(new).into_owned();
            if i == 1 {
                self.call_stderr = text.chars().take(2048).collect();
            }
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                self.push_log(level, line.to_owned());
            }
        }
    }

    /// True when the captured output is large: time for a fresh instance.
    pub(crate) fn output_large(&self) -> bool {
        self.seen.iter().any(|seen| *seen >= PIPE_RECYCLE_BYTES)
    }

    /// Logs a line to `tracing` (target `plugin`) and keeps it for the call's output,
    /// up to [`MAX_LOG_ENTRIES`] lines and [`MAX_LOG_BYTES`] bytes per call; past that,
    /// one "log truncated" line and nothing more.
    pub(crate) fn push_log(&mut self, level: Level, mut msg: String) {
        if self.log_truncated {
            return;
        }
        if msg.len() > MAX_LOG_MESSAGE {
            let mut end = MAX_LOG_MESSAGE;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push('…');
        }
        let (level, msg) =
            if self.logs.len() >= MAX_LOG_ENTRIES || self.log_bytes + msg.len() > MAX_LOG_BYTES {
                self.log_truncated = true;
                (Level::Warn, "log truncated".to_owned())
            } else {
                (level, msg)
            };
        let name = self.manifest.name.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin = name, "{msg}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin = name, "{msg}"),
            Level::Info => tracing::info!(target: "plugin", plugin = name, "{msg}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin = name, "{msg}"),
            Level::Error => tracing::error!(target: "plugin", plugin = name, "{msg}"),
        }
        self.log_bytes += msg.len();
        self.logs.push((level, msg));
    }

    fn check_read(&self, path: &str) -> Result<(), wit::TreeError> {
        check_path(path).map_err(wit::TreeError::BadArguments)?;
        if !self.manifest.may_read(path) {
            return Err(wit::TreeError::OutOfScope(path.to_owned()));
        }
        Ok(())
    }

    fn buffer(&mut self, op: TxnOp, data_len: usize) -> Result<(), wit::TreeError> {
        let path = op.path();
        check_path(path).map_err(wit::TreeError::BadArguments)?;
        if path == "/" {
            return Err(wit::TreeError::BadArguments(
                "the root cannot be written".into(),
            ));
        }
        if !self.manifest.may_write(path) {
            return Err(wit::TreeError::OutOfScope(path.to_owned()));
        }
        if data_len > MAX_OP_BYTES {
            return Err(wit::TreeError::TooLarge(MAX_OP_BYTES as u32));
        }
        if self.op_bytes + data_len > MAX_TXN_BYTES {
            return Err(wit::TreeError::TooLarge(MAX_TXN_BYTES as u32));
        }
        if self.ops.len() >= MAX_TXN_OPS {
            return Err(wit::TreeError::BadArguments(format!(
                "more than {MAX_TXN_OPS} ops in one transaction"
            )));
        }
        self.op_bytes += data_len;
        self.ops.push(op);
        Ok(())
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub(crate) fn stat_to_wit(stat: Stat) -> wit::Stat {
    wit::Stat {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        pzxid: stat.pzxid,
        ctime_ms: stat.ctime_ms,
        mtime_ms: stat.mtime_ms,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        ephemeral_owner: stat.ephemeral_owner,
        data_length: stat.data_length,
        num_children: stat.num_children,
    }
}

fn error_to_wit(err: TreeError) -> wit::TreeError {
    match err {
        TreeError::NoNode => wit::TreeError::NoNode,
        TreeError::NodeExists => wit::TreeError::NodeExists,
        TreeError::NotEmpty => wit::TreeError::NotEmpty,
        TreeError::BadVersion => wit::TreeError::BadVersion,
        TreeError::NoChildrenForEphemerals => wit::TreeError::NoChildrenForEphemerals,
        TreeError::BadArguments(s) => wit::TreeError::BadArguments(s),
        TreeError::OutOfScope(s) => wit::TreeError::OutOfScope(s),
        TreeError::TooLarge(n) => wit::TreeError::TooLarge(n),
        TreeError::NoAuth => wit::TreeError::NoAuth,
        TreeError::Unavailable(s) => wit::TreeError::Unavailable(s),
    }
}

impl wit::Host for State {}

impl tree::Host for State {
    fn get(&mut self, p: String) -> Result<(Vec<u8>, wit::Stat), wit::TreeError> {
        self.check_read(&p)?;
        node(|env| env.get(&p))
            .map(|(data, stat)| (data, stat_to_wit(stat)))
            .map_err(error_to_wit)
    }

    fn exists(&mut self, p: String) -> Result<Option<wit::Stat>, wit::TreeError> {
        self.check_read(&p)?;
        node(|env| env.exists(&p))
            .map(|stat| stat.map(stat_to_wit))
            .map_err(error_to_wit)
    }

    fn children(&mut self, p: String) -> Result<Vec<String>, wit::TreeError> {
        self.check_read(&p)?;
        node(|env| env.children(&p)).map_err(error_to_wit)
    }
}

impl txn::Host for State {
    fn create(
        &mut self,
        p: String,
        data: Vec<u8>,
        mode: txn::CreateMode,
    ) -> Result<(), wit::TreeError> {
        let mode = match mode {
            txn::CreateMode::Persistent => CreateMode::Persistent,
            txn::CreateMode::Ephemeral => CreateMode::Ephemeral,
            txn::CreateMode::PersistentSequential => CreateMode::PersistentSequential,
            txn::CreateMode::EphemeralSequential => CreateMode::EphemeralSequential,
        };
        let len = data.len();
        self.buffer(
            TxnOp::Create {
                path: p,
                data,
                mode,
            },
            len,
        )
    }

    fn set(
        &mut self,
        p: String,
        data: Vec<u8>,
        expected_version: Option<i32>,
    ) -> Result<(), wit::TreeError> {
        let len = data.len();
        self.buffer(
            TxnOp::Set {
                path: p,
                data,
                version: expected_version,
            },
            len,
        )
    }

    fn delete(&mut self, p: String, expected_version: Option<i32>) -> Result<(), wit::TreeError> {
        self.buffer(
            TxnOp::Delete {
                path: p,
                version: expected_version,
            },
            0,
        )
    }

    fn check(&mut self, p: String, expected_version: i32) -> Result<(), wit::TreeError> {
        self.buffer(
            TxnOp::Check {
                path: p,
                version: expected_version,
            },
            0,
        )
    }
}

impl log::Host for State {
    fn log(&mut self, level: wit::Level, msg: String) {
        let level = match level {
            wit::Level::Trace => Level::Trace,
            wit::Level::Debug => Level::Debug,
            wit::Level::Info => Level::Info,
            wit::Level::Warn => Level::Warn,
            wit::Level::Error => Level::Error,
        };
        self.push_log(level, msg);
    }
}

impl clock::Host for State {
    fn now_ms(&mut self) -> i64 {
        node(|env| env.now_ms())
    }
}

impl config::Host for State {
    fn get(&mut self, key: String) -> Option<String> {
        self.manifest.config.get(&key).cloned()
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        self.manifest
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

//! What a plugin's imports do: the per-store state and the host functions of the
//! `edgekeeper:plugin` interfaces. Every function is bounded: reads go to the node's local
//! replica through [`HostEnv`], writes only fill a buffer, logs are capped.

use crate::bindings::{clock, config, log, tree, txn, types as wit};
use crate::manifest::{check_path, Manifest};
use crate::types::{CreateMode, Level, Stat, TreeError, TxnOp};
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

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
/// Capacity of the captured stdout and stderr, per instance.
pub(crate) const PIPE_BYTES: usize = 64 * 1024;

/// The node, as plugins see it: reads of the local replica. Implementations must answer
/// quickly and never wait on the network (they run inside a plugin call).
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

/// A `HostEnv` for calls made with no node (instantiation smoke tests).
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

/// The data of one plugin instance's store.
pub(crate) struct State {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) env: Arc<dyn HostEnv>,
    pub(crate) ops: Vec<TxnOp>,
    pub(crate) op_bytes: usize,
    pub(crate) logs: Vec<(Level, String)>,
    log_bytes: usize,
    log_truncated: bool,
    pub(crate) limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    /// Bytes of stdout and stderr already moved into a call's log.
    seen: [usize; 2],
    /// What the guest wrote to stderr during the last call (a panic message, usually).
    pub(crate) call_stderr: String,
}

impl State {
    pub(crate) fn new(
        manifest: Arc<Manifest>,
        limits: StoreLimits,
    ) -> Result<State, crate::PluginError> {
        let stdout = MemoryOutputPipe::new(PIPE_BYTES);
        let stderr = MemoryOutputPipe::new(PIPE_BYTES);
        let mut builder = WasiCtx::builder();
        // Deny all: no args, env, network or inherited stdio; output is captured.
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        if let Some(files) = &manifest.files {
            builder
                .preopened_dir(
                    &files.host_dir,
                    &files.guest_dir,
                    wasmtime_wasi::FsPerms::ReadWrite,
                )
                .map_err(|err| {
                    crate::PluginError::Grant(format!(
                        "cannot open {} for the plugin: {err}",
                        files.host_dir.display()
                    ))
                })?;
        }
        Ok(State {
            manifest,
            env: Arc::new(NoNode),
            ops: Vec::new(),
            op_bytes: 0,
            logs: Vec::new(),
            log_bytes: 0,
            log_truncated: false,
            limits,
            wasi: builder.build(),
            table: ResourceTable::new(),
            stdout,
            stderr,
            seen: [0, 0],
            call_stderr: String::new(),
        })
    }

    /// Starts a call: a clean buffer and log.
    pub(crate) fn begin(&mut self, env: Arc<dyn HostEnv>) {
        self.env = env;
        self.ops.clear();
        self.op_bytes = 0;
        self.logs.clear();
        self.log_bytes = 0;
        self.log_truncated = false;
    }

    /// Ends a call: drops the node handle, moves captured output into the log.
    pub(crate) fn finish(&mut self) {
        self.env = Arc::new(NoNode);
        let pipes = [
            (self.stdout.contents(), Level::Info),
            (self.stderr.contents(), Level::Warn),
        ];
        for (i, (bytes, level)) in pipes.into_iter().enumerate() {
            let new = bytes.get(self.seen[i]..).unwrap_or_default();
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

    /// True when the captured output is half full: time for a fresh instance.
    pub(crate) fn output_nearly_full(&self) -> bool {
        self.seen.iter().any(|seen| *seen >= PIPE_BYTES / 2)
    }

    pub(crate) fn push_log(&mut self, level: Level, msg: String) {
        let name = self.manifest.name.clone();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin = %name, "{msg}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin = %name, "{msg}"),
            Level::Info => tracing::info!(target: "plugin", plugin = %name, "{msg}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin = %name, "{msg}"),
            Level::Error => tracing::error!(target: "plugin", plugin = %name, "{msg}"),
        }
        if self.logs.len() >= MAX_LOG_ENTRIES || self.log_bytes + msg.len() > MAX_LOG_BYTES {
            if !self.log_truncated {
                self.log_truncated = true;
                self.logs.push((Level::Warn, "log truncated".to_owned()));
            }
            return;
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
        let path = op.path().to_owned();
        check_path(&path).map_err(wit::TreeError::BadArguments)?;
        if path == "/" {
            return Err(wit::TreeError::BadArguments(
                "the root cannot be written".into(),
            ));
        }
        if !self.manifest.may_write(&path) {
            return Err(wit::TreeError::OutOfScope(path));
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
        self.env
            .get(&p)
            .map(|(data, stat)| (data, stat_to_wit(stat)))
            .map_err(error_to_wit)
    }

    fn exists(&mut self, p: String) -> Result<Option<wit::Stat>, wit::TreeError> {
        self.check_read(&p)?;
        self.env
            .exists(&p)
            .map(|stat| stat.map(stat_to_wit))
            .map_err(error_to_wit)
    }

    fn children(&mut self, p: String) -> Result<Vec<String>, wit::TreeError> {
        self.check_read(&p)?;
        self.env.children(&p).map_err(error_to_wit)
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
        let msg: String = msg.chars().take(4096).collect();
        self.push_log(level, msg);
    }
}

impl clock::Host for State {
    fn now_ms(&mut self) -> i64 {
        self.env.now_ms()
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

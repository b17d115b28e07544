//! The engine, install-time checks, compilation and the on-disk cache.

use crate::bindings::{policy, registrar, watcher};
use crate::host::State;
use crate::manifest::{check_wit_version, Manifest, World};
use crate::PluginError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// A `Hasher` that feeds sha256, for a hash that is the same in every process.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// How the runtime runs plugins.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: compile every time).
    pub cache_dir: Option<PathBuf>,
    /// Count fuel: a deterministic cost meter (`plugin test`), not a limit.
    pub fuel: bool,
    /// The epoch tick that deadlines are counted in.
    pub epoch_tick: Duration,
    /// The longest deadline any manifest may ask for.
    pub max_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: None,
            fuel: false,
            epoch_tick: Duration::from_millis(10),
            max_timeout: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) config: RuntimeConfig,
    linkers: [Linker<State>; 3],
    compat: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One wasmtime engine with its epoch ticker and the linkers of the three worlds. Cheap
/// to clone; the ticker stops when the last clone goes.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

/// A component that passed every check, compiled, and instantiated once. Cheap to clone.
#[derive(Clone)]
pub struct Loaded {
    pub(crate) inner: Arc<LoadedInner>,
    /// True when the compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// How long compiling (or loading from the cache) took.
    pub compile_time: Duration,
}

pub(crate) struct LoadedInner {
    pub(crate) runtime: Runtime,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) pre: Pre,
    sha256: String,
}

#[derive(Clone)]
pub(crate) enum Pre {
    Watcher(watcher::WatcherPre<State>),
    Policy(policy::ScalingPolicyPre<State>),
    Registrar(registrar::RegistrarPre<State>),
}

impl Loaded {
    /// The manifest it was loaded with.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }
    /// The component's sha256, hex.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }
    /// Its world.
    pub fn world(&self) -> World {
        self.inner.manifest.world
    }
    /// True when the compiled code came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
    /// How long compiling (or loading from the cache) took.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }
    pub(crate) fn manifest_arc(&self) -> &Arc<Manifest> {
        &self.inner.manifest
    }
    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.inner.manifest.name)
            .field("world", &self.world())
            .field("sha256", &self.inner.sha256)
            .field("from_cache", &self.from_cache)
            .field("compile_time", &self.compile_time)
            .finish()
    }
}

fn wt(err: wasmtime::Error) -> String {
    format!("{err:?}")
}

impl Runtime {
    /// Makes the engine, the linkers and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        wasm.consume_fuel(config.fuel);
        let engine = Engine::new(&wasm).map_err(|err| PluginError::Engine(wt(err)))?;
        let linker = |world: World| -> Result<Linker<State>, PluginError> {
            let mut linker = Linker::<State>::new(&engine);
            // Semver-compatible imports (a guest built against 0.1.0 on a 0.1.x host).
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
                .map_err(|err| PluginError::Engine(wt(err)))?;
            let added = match world {
                World::Watcher => {
                    watcher::Watcher::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
                }
                World::ScalingPolicy => {
                    policy::ScalingPolicy::add_to_linker::<State, HasSelf<State>>(
                        &mut linker,
                        |s| s,
                    )
                }
                World::Registrar => {
                    registrar::Registrar::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
                }
            };
            added.map_err(|err| PluginError::Engine(wt(err)))?;
            Ok(linker)
        };
        let linkers = [
            linker(World::Watcher)?,
            linker(World::ScalingPolicy)?,
            linker(World::Registrar)?,
        ];
        // Stable across restarts (unlike std's hashers): sha256 of what wasmtime hashes.
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hex(&hasher.0.finalize()[..16]);
        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        let tick = config.epoch_tick.max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|err| PluginError::Engine(format!("cannot start the epoch ticker: {err}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                config,
                linkers,
                compat,
                stop,
            }),
        })
    }

    /// The engine's compatibility hash (part of every cache key).
    pub fn compatibility_hash(&self) -> String {
        self.inner.compat.clone()
    }

    pub(crate) fn linker(&self, world: World) -> &Linker<State> {
        match world {
            World::Watcher => &self.inner.linkers[0],
            World::ScalingPolicy => &self.inner.linkers[1],
            World::Registrar => &self.inner.linkers[2],
        }
    }

    /// Checks, compiles (or loads from the cache) and instantiates once: the manifest is
    /// valid, the bytes are the ones it names (when it names a sha256), the component
    /// exports its world's function, imports only what the allow-list grants at a WIT
    /// version this host offers, links, and instantiates within its limits.
    pub fn load(&self, manifest: &Manifest, wasm: &[u8]) -> Result<Loaded, PluginError> {
        manifest
            .validate()
            .map_err(|err| PluginError::Manifest(err.to_string()))?;
        let sha256 = sha256_hex(wasm);
        if let Some(expected) = &manifest.sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(PluginError::Hash {
                    manifest: expected.clone(),
                    actual: sha256,
                });
            }
        }
        if !wasm.starts_with(b"\0asm") {
            return Err(PluginError::NotAComponent(
                "not a WebAssembly binary".into(),
            ));
        }
        if wasm.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(PluginError::NotAComponent(
                "a core module, not a component: build for wasm32-wasip2".into(),
            ));
        }
        let started = Instant::now();
        let (component, from_cache) = self.compile(&sha256, wasm)?;
        let compile_time = started.elapsed();
        check_exports(&self.inner.engine, &component, manifest.world)?;
        check_imports(&self.inner.engine, &component, manifest)?;
        let instance_pre = self
            .linker(manifest.world)
            .instantiate_pre(&component)
            .map_err(|err| PluginError::Link(wt(err)))?;
        let link = |err: wasmtime::Error| PluginError::Link(wt(err));
        let pre = match manifest.world {
            World::Watcher => Pre::Watcher(watcher::WatcherPre::new(instance_pre).map_err(link)?),
            World::ScalingPolicy => {
                Pre::Policy(policy::ScalingPolicyPre::new(instance_pre).map_err(link)?)
            }
            World::Registrar => {
                Pre::Registrar(registrar::RegistrarPre::new(instance_pre).map_err(link)?)
            }
        };
        let loaded = Loaded {
            inner: Arc::new(LoadedInner {
                runtime: self.clone(),
                manifest: Arc::new(manifest.clone()),
                pre,
                sha256,
            }),
            from_cache,
            compile_time,
        };
        // Smoke test: it must instantiate (start functions, memory within its cap).
        crate::plugin::Instance::new(&loaded, &crate::host::NoNode)
            .map_err(PluginError::Instantiate)?;
        Ok(loaded)
    }

    /// The same component with another manifest of the same world and the same imports
    /// (e.g. other config or prefixes); nothing is compiled again.
    pub fn reload(&self, loaded: &Loaded, manifest: Manifest) -> Result<Loaded, PluginError> {
        manifest
            .validate()
            .map_err(|err| PluginError::Manifest(err.to_string()))?;
        if manifest.world != loaded.world() {
            return Err(PluginError::WrongWorld(format!(
                "{} is a {} plugin, not a {}",
                manifest.name,
                loaded.world().as_str(),
                manifest.world.as_str()
            )));
        }
        if manifest.files.is_some() != loaded.manifest().files.is_some() {
            return Err(PluginError::Manifest(
                "reload cannot add or remove a [files] grant; load again".into(),
            ));
        }
        let inner = LoadedInner {
            runtime: loaded.inner.runtime.clone(),
            manifest: Arc::new(manifest),
            pre: loaded.inner.pre.clone(),
            sha256: loaded.inner.sha256.clone(),
        };
        let reloaded = Loaded {
            inner: Arc::new(inner),
            ..loaded.clone()
        };
        crate::plugin::Instance::new(&reloaded, &crate::host::NoNode)
            .map_err(PluginError::Instantiate)?;
        Ok(reloaded)
    }

    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.inner.config.cache_dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", self.inner.compat)))
    }

    fn compile(&self, sha256: &str, wasm: &[u8]) -> Result<(Component, bool), PluginError> {
        let engine = &self.inner.engine;
        if let Some(path) = self.cache_path(sha256) {
            match load_cached(engine, &path) {
                Ok(Some(component)) => return Ok((component, true)),
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(path = %path.display(), reason, "discarding a bad cache entry");
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(path.with_extension("sha256"));
                }
            }
        }
        let component =
            Component::new(engine, wasm).map_err(|err| PluginError::Compile(wt(err)))?;
        if let Some(path) = self.cache_path(sha256) {
            if let Err(err) = store_cached(&component, &path) {
                tracing::warn!(path = %path.display(), %err, "cannot cache the compiled plugin");
            }
        }
        Ok((component, false))
    }
}

/// Writes the compiled component and, beside it, the sha256 of the file, each atomically.
fn store_cached(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|err| std::io::Error::other(wt(err)))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let write = |target: &Path, data: &[u8]| -> std::io::Result<()> {
        // A name of its own per writer: two loads of one plugin may race to cache it.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = target.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let result = std::fs::write(&tmp, data)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, target));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    };
    // The checksum goes last: a file without one is never loaded.
    let _ = std::fs::remove_file(path.with_extension("sha256"));
    write(path, &bytes)?;
    write(
        &path.with_extension("sha256"),
        sha256_hex(&bytes).as_bytes(),
    )
}

/// Loads a cached compilation; `Ok(None)` when there is none.
fn load_cached(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let expected = match std::fs::read_to_string(path.with_extension("sha256")) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    if sha256_hex(&bytes) != expected.trim() {
        return Err("checksum mismatch (corrupted or tampered)".into());
    }
    deserialize(engine, &bytes).map(Some)
}

/// Loads precompiled code this node wrote itself. The only unsafe code of the crate.
///
/// From bytes already read and checked in memory rather than `deserialize_file`: a mapped
/// file could change between the check and its use. That costs ~0.3 ms of CPU more per
/// load (shared/reference/wasm-plugins.md), once per plugin per start.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
    // SAFETY: wasmtime requires the bytes to come from `Component::serialize` of a
    // compatible engine, because it maps them as executable code without validating them.
    // They do: only this node writes its cache directory (it is never replicated), each
    // file is named after the component's sha256 and the engine's compatibility hash (so
    // an engine with other settings or another wasmtime build never reads it), and the
    // sha256 recorded beside the file, written after it and checked against these very
    // bytes just before this call, shows they are what this node wrote, whole and
    // unchanged (no corruption, no truncation, no tampering short of rewriting both).
    unsafe { Component::deserialize(engine, bytes) }.map_err(wt)
}

/// The `edgekeeper:plugin` interfaces each world may import.
fn own_imports(world: World) -> &'static [&'static str] {
    match world {
        World::Watcher | World::Registrar => &["types", "tree", "txn", "log", "clock", "config"],
        World::ScalingPolicy => &["types", "tree", "log", "clock", "config"],
    }
}

/// WASI 0.2 interfaces any plugin may import. Rust's `std` for `wasm32-wasip2` imports
/// the `io` and `cli` ones even when the plugin uses none of them; clocks and randomness
/// are harmless (`HashMap`'s seed, `Instant`, `SystemTime`). All are served by a deny-all
/// context: no arguments, no environment, empty stdin, captured stdout and stderr.
pub const WASI_ALLOWED: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// WASI interfaces allowed only with a `[files]` grant (then served by one preopened
/// directory). Anything else, `wasi:sockets` and `wasi:http` included, is refused.
pub const WASI_FILES: &[&str] = &["wasi:filesystem/types", "wasi:filesystem/preopens"];

fn check_imports(
    engine: &Engine,
    component: &Component,
    manifest: &Manifest,
) -> Result<(), PluginError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        if let Some(own) = interface.strip_prefix("edgekeeper:plugin/") {
            check_wit_version(version)
                .map_err(|reason| PluginError::WitVersion(format!("{name}: {reason}")))?;
            if !own_imports(manifest.world).contains(&own) {
                return Err(PluginError::Import(format!(
                    "{name}: the {} world has no `{own}` interface{}",
                    manifest.world.as_str(),
                    if own == "txn" {
                        " (a scaling policy returns its decision; it cannot write)"
                    } else {
                        ""
                    }
                )));
            }
            continue;
        }
        let wasi = WASI_ALLOWED.contains(&interface) || WASI_FILES.contains(&interface);
        if wasi && !version.starts_with("0.2.") {
            return Err(PluginError::Import(format!(
                "{name}: this host offers WASI 0.2 (wasm32-wasip2), not {:?}",
                version
            )));
        }
        if WASI_ALLOWED.contains(&interface) {
            continue;
        }
        if WASI_FILES.contains(&interface) {
            if manifest.files.is_some() {
                continue;
            }
            return Err(PluginError::Import(format!(
                "{name}: filesystem access needs a [files] grant in the manifest"
            )));
        }
        return Err(PluginError::Import(format!(
            "{name} is not on the allow-list (plugins get their world's edgekeeper:plugin \
             interfaces and a deny-all WASI: no sockets, no filesystem without a [files] grant)"
        )));
    }
    Ok(())
}

/// The component must export its world's function, and nothing else.
fn check_exports(engine: &Engine, component: &Component, world: World) -> Result<(), PluginError> {
    let ty = component.component_type();
    let exports: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(name, item)| {
            (
                name.to_owned(),
                matches!(item.ty, ComponentItem::ComponentFunc(_)),
            )
        })
        .collect();
    let wanted = world.export();
    let names: Vec<&str> = exports.iter().map(|(name, _)| name.as_str()).collect();
    let listed = if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    };
    if !exports.iter().any(|(name, func)| name == wanted && *func) {
        let hint = [World::Watcher, World::ScalingPolicy, World::Registrar]
            .into_iter()
            .find(|other| names.contains(&other.export()))
            .map(|other| format!("; it looks like a {} plugin", other.as_str()))
            .unwrap_or_default();
        return Err(PluginError::WrongWorld(format!(
            "the manifest says world {} but the component does not export `{wanted}` \
             (it exports: {listed}){hint}",
            world.as_str(),
        )));
    }
    if let Some(extra) = names.iter().find(|name| **name != wanted) {
        return Err(PluginError::WrongWorld(format!(
            "the component exports `{extra}`, which the {} world does not have (it exports: \
             {listed})",
            world.as_str(),
        )));
    }
    Ok(())
}

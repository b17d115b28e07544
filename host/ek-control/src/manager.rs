//! The plugin manager: follows `/edgekeeper/plugins/` on this node, loads each plugin the
//! tree names (reassembling its chunks, checking its hash and imports, compiling or
//! loading it from the on-disk cache), swaps in a new version only once it loaded, runs
//! each where its placement says, and reports what it runs in
//! `/edgekeeper/plugins/<name>/status/<node-id>`.

use crate::env::now_ms;
use crate::tree;
use crate::watcher::{self, WatcherHandle};
use crate::ControlConfig;
use ek_plugin::{Manifest, Placement, Plugin, Runtime, RuntimeConfig, World};
use ek_server::{ChangeBatch, LocalError, LocalSession, NodeHandle, Subscription};
use ek_types::Id;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where plugins live in the tree.
pub(crate) const PLUGINS: &str = "/edgekeeper/plugins";
/// Where nodes register themselves.
pub(crate) const MEMBERS: &str = "/edgekeeper/cluster/members";

/// Session timeout of the node's controller and plugin sessions.
const SESSION_TIMEOUT_MS: u32 = 10_000;
/// The most often a status node is rewritten when only its counters changed.
const STATUS_REFRESH: Duration = Duration::from_secs(5);
/// How long to wait before retrying a failed session or subscription.
const RETRY: Duration = Duration::from_millis(500);
/// Bound on the nodes under `/edgekeeper/plugins` (manifests, chunks, statuses).
const MAX_PLUGIN_NODES: usize = 100_000;

/// A plugin's own session, opened when it first writes.
#[derive(Clone)]
pub(crate) struct PluginSession {
    node: NodeHandle,
    name: String,
    session: Arc<tokio::sync::Mutex<Option<Arc<LocalSession>>>>,
}

impl PluginSession {
    fn new(node: NodeHandle, name: &str) -> PluginSession {
        PluginSession {
            node,
            name: name.to_owned(),
            session: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The identity a plugin's reads and writes are checked with.
    pub(crate) fn ids(name: &str) -> Vec<Id> {
        vec![Id::new("edgekeeper", format!("plugin:{name}"))]
    }

    /// Submits a plugin's ops as one multi on its session (opened or reopened as needed).
    pub(crate) async fn submit(&self, ops: &[ek_plugin::TxnOp]) -> Result<(), LocalError> {
        if ops.is_empty() {
            return Ok(());
        }
        let session = {
            let mut slot = self.session.lock().await;
            match slot.as_ref() {
                Some(session) if !session.is_closed() => session.clone(),
                _ => {
                    let session = Arc::new(
                        self.node
                            .session(PluginSession::ids(&self.name), SESSION_TIMEOUT_MS)
                            .await?,
                    );
                    *slot = Some(session.clone());
                    session
                }
            }
        };
        tree::submit(&session, ops).await
    }

    async fn close(&self) {
        if let Some(session) = self.session.lock().await.take() {
            if let Ok(session) = Arc::try_unwrap(session) {
                session.close().await;
            }
        }
    }
}

/// What a slot's last activity left to report.
#[derive(Default)]
pub(crate) struct Report {
    /// The last failure of a call, a write or an upgrade, with when.
    pub(crate) last_error: Option<(i64, String)>,
    /// Multis submitted and refused.
    pub(crate) txns: u64,
    pub(crate) txn_failures: u64,
}

impl Report {
    pub(crate) fn error(&mut self, error: String) {
        self.last_error = Some((now_ms(), error));
    }
}

/// A loaded plugin on this node.
pub(crate) struct Slot {
    pub(crate) manifest: Manifest,
    manifest_bytes: Vec<u8>,
    pub(crate) plugin: Arc<Mutex<Plugin>>,
    from_cache: bool,
    pub(crate) session: PluginSession,
    pub(crate) report: Arc<Mutex<Report>>,
    watcher: Option<WatcherHandle>,
}

impl Slot {
    pub(crate) fn world(&self) -> World {
        self.manifest.world
    }

    fn placement(&self) -> Placement {
        self.manifest.effective_placement()
    }
}

/// A plugin the tree names that could not be loaded here (and no older version runs).
struct Failed {
    sha256: String,
    manifest_bytes: Vec<u8>,
    error: String,
}

pub(crate) struct Manager {
    pub(crate) node: NodeHandle,
    pub(crate) config: ControlConfig,
    runtime: Option<Runtime>,
    pub(crate) slots: BTreeMap<String, Slot>,
    failed: BTreeMap<String, Failed>,
    /// The node's own session: statuses, membership, decisions.
    pub(crate) session: Option<Arc<LocalSession>>,
    subscription: Option<Subscription>,
    /// What each status node was last written with (its key fields, its full text), and
    /// when.
    written: BTreeMap<String, (String, String, Instant)>,
    leader: bool,
    member_written: Option<String>,
    next_retry: Instant,
    pub(crate) next_scaling: Instant,
    pub(crate) next_registrar: Instant,
    /// Plugins shown in `/metrics`.
    registry: Arc<Mutex<BTreeMap<String, Arc<Mutex<Plugin>>>>>,
    metrics_added: bool,
}

impl Manager {
    pub(crate) fn new(node: NodeHandle, config: ControlConfig) -> Manager {
        let now = Instant::now();
        Manager {
            node,
            config,
            runtime: None,
            slots: BTreeMap::new(),
            failed: BTreeMap::new(),
            session: None,
            subscription: None,
            written: BTreeMap::new(),
            leader: false,
            member_written: None,
            next_retry: now,
            next_scaling: now,
            next_registrar: now,
            registry: Arc::new(Mutex::new(BTreeMap::new())),
            metrics_added: false,
        }
    }

    pub(crate) fn node_closed(&self) -> bool {
        self.node.is_closed()
    }

    /// The next batch of changes under `/edgekeeper/plugins`; pends while there is no
    /// subscription. `None` means the subscription ended.
    pub(crate) async fn next_plugin_change(&mut self) -> Option<ChangeBatch> {
        match self.subscription.as_mut() {
            Some(sub) => sub.changes.recv().await,
            None => std::future::pending().await,
        }
    }

    pub(crate) async fn on_plugin_change(&mut self, batch: Option<ChangeBatch>) {
        let Some(batch) = batch else {
            // Fell behind or the tree was replaced: start over from a new snapshot.
            self.subscription = None;
            return;
        };
        let mut names: Vec<String> = batch
            .changes
            .iter()
            .filter_map(|change| manifest_name(&change.path))
            .collect();
        names.dedup();
        for name in names {
            self.reconcile(&name).await;
        }
    }

    pub(crate) async fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_retry && !self.ensure_session_and_subscription().await {
            self.next_retry = now + RETRY;
        }
        let leader = self.node.is_leader();
        if leader != self.leader {
            self.leader = leader;
            tracing::info!(leader, "plugin placement: leadership changed");
            let names: Vec<String> = self.slots.keys().cloned().collect();
            for name in names {
                self.place(&name);
            }
        }
        self.write_member().await;
        if leader && now >= self.next_scaling {
            self.next_scaling = now + self.config.scaling_interval;
            crate::scaling::round(self).await;
        }
        if leader && now >= self.next_registrar {
            self.next_registrar = now + self.config.registrar_interval;
            crate::registrar::round(self).await;
        }
        self.write_statuses().await;
    }

    /// Opens the node's session and the subscription when missing. False on failure.
    async fn ensure_session_and_subscription(&mut self) -> bool {
        if self
            .session
            .as_ref()
            .is_none_or(|session| session.is_closed())
        {
            self.written.clear();
            self.member_written = None;
            match self
                .node
                .session(
                    vec![Id::new("edgekeeper", "controller")],
                    SESSION_TIMEOUT_MS,
                )
                .await
            {
                Ok(session) => self.session = Some(Arc::new(session)),
                Err(err) => {
                    tracing::debug!(%err, "controller session not available yet");
                    return false;
                }
            }
        }
        if self.subscription.is_none() {
            let prefixes = vec![PLUGINS.to_owned()];
            match self.node.subscribe(prefixes, 1024, MAX_PLUGIN_NODES).await {
                Ok(sub) => {
                    let mut names: Vec<String> = sub
                        .snapshot
                        .iter()
                        .filter_map(|(path, _)| manifest_name(path))
                        .collect();
                    names.dedup();
                    self.subscription = Some(sub);
                    // Everything loaded or failed that the tree no longer names goes.
                    let known: Vec<String> = self
                        .slots
                        .keys()
                        .chain(self.failed.keys())
                        .cloned()
                        .collect();
                    for name in known.into_iter().chain(names) {
                        self.reconcile(&name).await;
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "cannot follow {PLUGINS} yet");
                    return false;
                }
            }
        }
        true
    }

    fn runtime(&mut self) -> Result<Runtime, String> {
        if let Some(runtime) = &self.runtime {
            return Ok(runtime.clone());
        }
        // Made on first use: a node without plugins pays nothing for wasmtime.
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(self.config.cache_dir.clone()),
            fuel: false,
            epoch_tick: Duration::from_millis(10),
            max_timeout: self.config.max_call_timeout,
        })
        .map_err(|err| format!("cannot start the plugin runtime: {err}"))?;
        if !self.metrics_added {
            self.metrics_added = true;
            let registry = self.registry.clone();
            self.node
                .metrics()
                .add_renderer(Box::new(move |out| render_metrics(&registry, out)));
        }
        self.runtime = Some(runtime.clone());
        Ok(runtime)
    }

    /// Brings plugin `name` on this node in line with the tree.
    async fn reconcile(&mut self, name: &str) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let manifest_path = format!("{PLUGINS}/{name}/manifest");
        let manifest_bytes = match tree::get(&session, &manifest_path).await {
            Ok(Some((data, _))) => data,
            Ok(None) => {
                self.unload(name).await;
                return;
            }
            Err(err) => {
                tracing::warn!(plugin = name, %err, "cannot read the manifest; will retry");
                self.subscription = None;
                return;
            }
        };
        let unchanged = self
            .slots
            .get(name)
            .map(|slot| slot.manifest_bytes == manifest_bytes)
            .or_else(|| {
                self.failed
                    .get(name)
                    .map(|failed| failed.manifest_bytes == manifest_bytes)
            })
            .unwrap_or(false);
        if unchanged {
            return;
        }
        match self.load(name, &session, &manifest_bytes).await {
            Ok((manifest, plugin, from_cache)) => {
                self.failed.remove(name);
                let old = self.slots.remove(name);
                let (session_, report) = match &old {
                    Some(old) => (old.session.clone(), old.report.clone()),
                    None => (
                        PluginSession::new(self.node.clone(), name),
                        Arc::new(Mutex::new(Report::default())),
                    ),
                };
                if let Some(mut old) = old {
                    if let Some(watcher) = old.watcher.take() {
                        watcher.stop().await;
                    }
                }
                tracing::info!(
                    plugin = name,
                    version = %manifest.version,
                    world = ?manifest.world,
                    from_cache,
                    "plugin loaded"
                );
                let plugin = Arc::new(Mutex::new(plugin));
                if let Ok(mut registry) = self.registry.lock() {
                    registry.insert(name.to_owned(), plugin.clone());
                }
                self.slots.insert(
                    name.to_owned(),
                    Slot {
                        manifest,
                        manifest_bytes,
                        plugin,
                        from_cache,
                        session: session_,
                        report,
                        watcher: None,
                    },
                );
                self.place(name);
            }
            Err((sha256, error)) => {
                tracing::warn!(plugin = name, error, "plugin not loaded");
                match self.slots.get(name) {
                    // The old version keeps running; its status says why the new one
                    // did not replace it.
                    Some(slot) => {
                        if let Ok(mut report) = slot.report.lock() {
                            report.error(format!("version {sha256} not loaded: {error}"));
                        }
                        // Remember the bytes so the same manifest is not retried each tick.
                        if let Some(slot) = self.slots.get_mut(name) {
                            slot.manifest_bytes = manifest_bytes;
                        }
                    }
                    None => {
                        self.failed.insert(
                            name.to_owned(),
                            Failed {
                                sha256,
                                manifest_bytes,
                                error,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Reads, checks and loads a plugin; on failure, its sha256 (if known) and why.
    async fn load(
        &mut self,
        name: &str,
        session: &LocalSession,
        manifest_bytes: &[u8],
    ) -> Result<(Manifest, Plugin, bool), (String, String)> {
        let started = std::time::Instant::now();
        let manifest = Manifest::from_json(manifest_bytes)
            .map_err(|err| (String::new(), format!("bad manifest: {err}")))?;
        if manifest.name != name {
            return Err((
                String::new(),
                format!(
                    "the manifest names plugin {:?} but lives under {name:?}",
                    manifest.name
                ),
            ));
        }
        let sha256 = manifest
            .sha256
            .clone()
            .ok_or_else(|| (String::new(), "the manifest has no sha256".to_owned()))?;
        let blobs = format!("{PLUGINS}/{name}/blobs/{sha256}");
        let chunks = tree::children(session, &blobs)
            .await
            .map_err(|err| (sha256.clone(), format!("cannot list {blobs}: {err}")))?;
        let mut order: Vec<(u32, String)> = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let index = chunk
                .parse::<u32>()
                .map_err(|_| (sha256.clone(), format!("unexpected chunk {blobs}/{chunk}")))?;
            order.push((index, chunk));
        }
        order.sort();
        if order.is_empty() || order.iter().enumerate().any(|(i, (n, _))| *n as usize != i) {
            return Err((
                sha256.clone(),
                format!("the chunks under {blobs} are missing or not numbered 0..n"),
            ));
        }
        let mut wasm = Vec::new();
        for (_, chunk) in &order {
            let path = format!("{blobs}/{chunk}");
            match tree::get(session, &path).await {
                Ok(Some((data, _))) => wasm.extend_from_slice(&data),
                Ok(None) => return Err((sha256.clone(), format!("{path} vanished"))),
                Err(err) => return Err((sha256.clone(), format!("cannot read {path}: {err}"))),
            }
        }
        let runtime = self.runtime().map_err(|err| (sha256.clone(), err))?;
        let to_load = manifest.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load(&to_load, &wasm))
            .await
            .map_err(|err| (sha256.clone(), format!("the loader failed: {err}")))?
            .map_err(|err| (sha256.clone(), err.to_string()))?;
        let from_cache = loaded.from_cache();
        tracing::info!(
            plugin = name,
            from_cache,
            compile_ms = loaded.compile_time().as_millis() as u64,
            load_ms = started.elapsed().as_millis() as u64,
            "plugin checked and compiled"
        );
        Ok((manifest, Plugin::new(loaded), from_cache))
    }

    /// Starts or stops a plugin's activity on this node as its placement says.
    fn place(&mut self, name: &str) {
        let leader = self.leader;
        let node = self.node.clone();
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let active = slot.placement() == Placement::EveryNode || leader;
        if slot.world() != World::Watcher {
            // Policies and registrars are called by the loops, which run on the leader.
            return;
        }
        match (&slot.watcher, active) {
            (None, true) => {
                slot.watcher = Some(watcher::start(
                    node,
                    name.to_owned(),
                    slot.manifest.clone(),
                    slot.plugin.clone(),
                    slot.session.clone(),
                    slot.report.clone(),
                ));
            }
            (Some(_), false) => {
                if let Some(watcher) = slot.watcher.take() {
                    watcher.abort();
                }
            }
            _ => {}
        }
    }

    /// True when this node runs `slot` now.
    pub(crate) fn is_active(&self, slot: &Slot) -> bool {
        slot.placement() == Placement::EveryNode || self.leader
    }

    async fn unload(&mut self, name: &str) {
        self.failed.remove(name);
        if let Ok(mut registry) = self.registry.lock() {
            registry.remove(name);
        }
        if let Some(mut slot) = self.slots.remove(name) {
            tracing::info!(plugin = name, "plugin removed");
            if let Some(watcher) = slot.watcher.take() {
                watcher.stop().await;
            }
            slot.session.close().await;
        }
        if self.written.remove(name).is_some() {
            if let Some(session) = &self.session {
                let path = status_path(name, self.node.node_id());
                if let Err(err) = tree::delete(session, &path).await {
                    tracing::debug!(%err, path, "cannot delete the status node");
                }
            }
        }
    }

    /// The status this node reports for `name`.
    fn status_json(&self, name: &str) -> Option<serde_json::Value> {
        let node = self.node.node_id();
        if let Some(failed) = self.failed.get(name) {
            return Some(serde_json::json!({
                "node": node,
                "state": "failed",
                "active": false,
                "sha256": failed.sha256,
                "error": failed.error,
            }));
        }
        let slot = self.slots.get(name)?;
        let status = slot.plugin.try_lock().ok().map(|plugin| plugin.status());
        let report = slot.report.lock().ok();
        let active = self.is_active(slot);
        let mut value = serde_json::json!({
            "node": node,
            "version": slot.manifest.version,
            "sha256": slot.manifest.sha256,
            "world": slot.manifest.world,
            "placement": slot.placement(),
            "active": active,
            "state": if active { "running" } else { "standby" },
            "from-cache": slot.from_cache,
        });
        if let Some(status) = status {
            if let Ok(status) = serde_json::to_value(&status) {
                if let Some(state) = status.get("state").and_then(|s| s.as_str()) {
                    if state != "running" {
                        value["state"] = serde_json::Value::from(state);
                    }
                }
                value["runtime"] = status;
            }
        }
        if let Some(report) = report {
            value["txns"] = report.txns.into();
            value["txn-failures"] = report.txn_failures.into();
            if let Some((at, error)) = &report.last_error {
                value["error"] = serde_json::Value::from(error.clone());
                value["error-at-ms"] = (*at).into();
            }
        }
        Some(value)
    }

    /// Writes each plugin's status node when it changed (counters: at most every few s).
    async fn write_statuses(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let names: Vec<String> = self
            .slots
            .keys()
            .chain(self.failed.keys())
            .cloned()
            .collect();
        for name in names {
            let Some(value) = self.status_json(&name) else {
                continue;
            };
            let text = value.to_string();
            // Counters change on every call; the rest decides whether to write now.
            let mut key = value.clone();
            if let Some(object) = key.as_object_mut() {
                object.remove("runtime");
                object.remove("txns");
            }
            let key = format!("{key}|{}", value["runtime"]["state"]);
            let due = match self.written.get(&name) {
                // Counters alone refresh it at most every few seconds, and only when they
                // moved: an idle plugin's status is not rewritten.
                Some((last_key, last_text, at)) => {
                    *last_key != key || (at.elapsed() >= STATUS_REFRESH && text != *last_text)
                }
                None => true,
            };
            if !due {
                continue;
            }
            let dir = format!("{PLUGINS}/{name}/status");
            let path = status_path(&name, self.node.node_id());
            let result = async {
                tree::ensure_path(&session, &dir).await?;
                put_ephemeral(&session, &path, text.clone().into_bytes()).await
            }
            .await;
            match result {
                Ok(()) => {
                    self.written.insert(name, (key, text, Instant::now()));
                }
                Err(err) => tracing::debug!(%err, path, "cannot write the plugin status"),
            }
        }
    }

    /// Publishes this node under `/edgekeeper/cluster/members/<node-id>`, once the cluster
    /// has plugins: a cluster that does not use them keeps a tree exactly like ZooKeeper's.
    async fn write_member(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if self.slots.is_empty() && self.failed.is_empty() {
            return;
        }
        let state = self.node.state();
        let value = serde_json::json!({
            "id": self.node.node_id(),
            "state": state.as_str(),
            "client": self.config.client_addr,
        })
        .to_string();
        if self.member_written.as_deref() == Some(value.as_str()) {
            return;
        }
        let path = format!("{MEMBERS}/{}", self.node.node_id());
        let result = async {
            tree::ensure_path(&session, MEMBERS).await?;
            put_ephemeral(&session, &path, value.clone().into_bytes()).await
        }
        .await;
        match result {
            Ok(()) => self.member_written = Some(value),
            Err(err) => tracing::debug!(%err, "cannot publish cluster membership"),
        }
    }

    pub(crate) async fn shutdown(&mut self) {
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            if let Some(mut slot) = self.slots.remove(&name) {
                if let Some(watcher) = slot.watcher.take() {
                    watcher.abort();
                }
            }
        }
        if let Some(session) = self.session.take() {
            if let Ok(session) = Arc::try_unwrap(session) {
                session.close().await;
            }
        }
    }
}

/// `/edgekeeper/plugins/<name>/manifest` → `name`.
fn manifest_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PLUGINS)?.strip_prefix('/')?;
    let (name, tail) = rest.split_once('/')?;
    (tail == "manifest").then(|| name.to_owned())
}

fn status_path(name: &str, node: u64) -> String {
    format!("{PLUGINS}/{name}/status/{node}")
}

/// Writes an ephemeral node owned by `session`: one left by an earlier session of this
/// node is replaced, not updated (it would vanish when that session expires).
async fn put_ephemeral(
    session: &LocalSession,
    path: &str,
    data: Vec<u8>,
) -> Result<(), LocalError> {
    if let Some((_, stat)) = tree::get(session, path).await? {
        if stat.ephemeral_owner != session.id() {
            tree::delete(session, path).await?;
        }
    }
    tree::put(session, path, data, 1).await
}

fn render_metrics(registry: &Mutex<BTreeMap<String, Arc<Mutex<Plugin>>>>, out: &mut String) {
    let Ok(registry) = registry.lock() else {
        return;
    };
    let stats: Vec<ek_plugin::PluginStats> = registry
        .values()
        .filter_map(|plugin| plugin.try_lock().ok().map(|plugin| plugin.stats()))
        .collect();
    ek_plugin::render_prometheus(&stats, out);
}

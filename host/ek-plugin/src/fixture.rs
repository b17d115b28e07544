//! The runner behind `edgekeeper plugin test`: a plugin in the real host, against an
//! in-memory tree seeded from a fixture, with no cluster. Each call's output is one JSON
//! line; a call's writes are applied (atomically, with ZooKeeper's rules) before the next
//! call; the fixture's `expect` entries are checked.

use crate::host::HostEnv;
use crate::runtime::{Loaded, Runtime};
use crate::types::{
    unbase64, ChangeBatch, CreateMode, ServiceRecord, Stat, TreeError, TxnOp, Workload,
};
use crate::{CallError, Plugin};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Fixture {
    /// Nodes to seed the tree with (parents are made as needed).
    #[serde(default)]
    pub tree: Vec<SeedNode>,
    /// Replaces the manifest's `[config]` when given.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// Per call, what must hold.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// One node of the seed tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SeedNode {
    pub path: String,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub data_base64: Option<String>,
    #[serde(default)]
    pub ephemeral: bool,
}

/// One call of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Call {
    /// A watcher batch.
    OnChanges(ChangeBatch),
    /// A scaling decision.
    Decide(Workload),
    /// A registrar reconcile.
    Reconcile {
        source: String,
        records: Vec<ServiceRecord>,
    },
}

/// What a call must produce (only the fields given are checked).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub ops: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub decision: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub logs_contain: Vec<String>,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct FixtureReport {
    /// Calls made.
    pub calls: usize,
    /// Expectations that failed, one line each.
    pub mismatches: Vec<String>,
}

/// Why a fixture could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixtureError {
    /// A seed node is invalid.
    #[error("tree: {0}")]
    Seed(String),
    /// A call does not fit the plugin's world.
    #[error("call {index}: {reason}")]
    Call {
        /// Which call.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The plugin could not be instantiated with the fixture's config.
    #[error("{0}")]
    Load(String),
    /// Output could not be written.
    #[error("output: {0}")]
    Output(String),
}

#[derive(Debug, Clone)]
struct MemNode {
    data: Vec<u8>,
    stat: Stat,
    /// Children created so far (the sequential counter).
    child_creates: u32,
}

/// An in-memory tree with ZooKeeper's rules, for fixtures.
#[derive(Debug, Clone)]
pub struct MemTree {
    nodes: BTreeMap<String, MemNode>,
    zxid: u64,
    now_ms: i64,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

impl Default for MemTree {
    fn default() -> MemTree {
        MemTree::new()
    }
}

impl MemTree {
    /// A tree holding only the root.
    pub fn new() -> MemTree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_owned(),
            MemNode {
                data: Vec::new(),
                stat: Stat::default(),
                child_creates: 0,
            },
        );
        MemTree {
            nodes,
            zxid: 0,
            now_ms: 1_700_000_000_000,
        }
    }

    /// The last zxid.
    pub fn zxid(&self) -> u64 {
        self.zxid
    }

    /// Creates `path` (and missing parents) with `data`, for seeding.
    pub fn seed(&mut self, path: &str, data: Vec<u8>, ephemeral: bool) -> Result<(), String> {
        crate::check_path(path)?;
        let mut at = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            at.push('/');
            at.push_str(part);
            let last = i + 1 == parts.len();
            if self.nodes.contains_key(&at) {
                if last {
                    if let Some(node) = self.nodes.get_mut(&at) {
                        node.data = data.clone();
                        node.stat.data_length = data.len() as u32;
                    }
                }
                continue;
            }
            let mode = if last && ephemeral {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            };
            let bytes = if last { data.clone() } else { Vec::new() };
            self.create(&at, bytes, mode)
                .map_err(|err| format!("{at}: {err}"))?;
        }
        Ok(())
    }

    fn next_zxid(&mut self) -> u64 {
        self.zxid += 1;
        self.now_ms += 1;
        self.zxid
    }

    fn create(&mut self, path: &str, data: Vec<u8>, mode: CreateMode) -> Result<String, TreeError> {
        let parent_path = parent_of(path).to_owned();
        let parent = self.nodes.get(&parent_path).ok_or(TreeError::NoNode)?;
        if parent.stat.ephemeral_owner != 0 {
            return Err(TreeError::NoChildrenForEphemerals);
        }
        let sequential = matches!(
            mode,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        );
        let path = if sequential {
            format!("{path}{:010}", parent.child_creates)
        } else {
            path.to_owned()
        };
        if self.nodes.contains_key(&path) {
            return Err(TreeError::NodeExists);
        }
        let zxid = self.next_zxid();
        let now = self.now_ms;
        let ephemeral = matches!(
            mode,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        );
        if let Some(parent) = self.nodes.get_mut(&parent_path) {
            parent.child_creates += 1;
            parent.stat.cversion += 1;
            parent.stat.num_children += 1;
            parent.stat.pzxid = zxid;
        }
        self.nodes.insert(
            path.clone(),
            MemNode {
                stat: Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime_ms: now,
                    mtime_ms: now,
                    ephemeral_owner: if ephemeral { 1 } else { 0 },
                    data_length: data.len() as u32,
                    ..Stat::default()
                },
                data,
                child_creates: 0,
            },
        );
        Ok(path)
    }

    fn check_version(node: &MemNode, version: Option<i32>) -> Result<(), TreeError> {
        match version {
            Some(v) if v != -1 && v != node.stat.version => Err(TreeError::BadVersion),
            _ => Ok(()),
        }
    }

    fn apply_one(&mut self, op: &TxnOp) -> Result<(), TreeError> {
        match op {
            TxnOp::Create { path, data, mode } => self.create(path, data.clone(), *mode).map(drop),
            TxnOp::Set {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get(path).ok_or(TreeError::NoNode)?;
                Self::check_version(node, *version)?;
                let zxid = self.next_zxid();
                let now = self.now_ms;
                if let Some(node) = self.nodes.get_mut(path) {
                    node.data = data.clone();
                    node.stat.version += 1;
                    node.stat.mzxid = zxid;
                    node.stat.mtime_ms = now;
                    node.stat.data_length = data.len() as u32;
                }
                Ok(())
            }
            TxnOp::Delete { path, version } => {
                if path == "/" {
                    return Err(TreeError::BadArguments("the root cannot be deleted".into()));
                }
                let node = self.nodes.get(path).ok_or(TreeError::NoNode)?;
                Self::check_version(node, *version)?;
                if node.stat.num_children > 0 {
                    return Err(TreeError::NotEmpty);
                }
                let zxid = self.next_zxid();
                self.nodes.remove(path);
                if let Some(parent) = self.nodes.get_mut(parent_of(path)) {
                    parent.stat.num_children = parent.stat.num_children.saturating_sub(1);
                    parent.stat.cversion += 1;
                    parent.stat.pzxid = zxid;
                }
                Ok(())
            }
            TxnOp::Check { path, version } => {
                let node = self.nodes.get(path).ok_or(TreeError::NoNode)?;
                Self::check_version(node, Some(*version))
            }
        }
    }

    /// Applies `ops` as one multi: all or nothing. The error names the failing op.
    pub fn apply(&mut self, ops: &[TxnOp]) -> Result<(), (usize, TreeError)> {
        let before = self.clone();
        for (i, op) in ops.iter().enumerate() {
            if let Err(err) = self.apply_one(op) {
                *self = before;
                return Err((i, err));
            }
        }
        Ok(())
    }
}

/// A [`MemTree`] shared with plugin calls.
#[derive(Clone, Default)]
pub struct MemEnv {
    tree: Arc<Mutex<MemTree>>,
}

impl MemEnv {
    /// Wraps a tree.
    pub fn new(tree: MemTree) -> MemEnv {
        MemEnv {
            tree: Arc::new(Mutex::new(tree)),
        }
    }

    /// Applies a call's writes.
    pub fn apply(&self, ops: &[TxnOp]) -> Result<(), (usize, TreeError)> {
        match self.tree.lock() {
            Ok(mut tree) => tree.apply(ops),
            Err(_) => Err((0, TreeError::Unavailable("poisoned".into()))),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&MemTree) -> Result<T, TreeError>) -> Result<T, TreeError> {
        let tree = self
            .tree
            .lock()
            .map_err(|_| TreeError::Unavailable("poisoned".into()))?;
        f(&tree)
    }
}

impl HostEnv for MemEnv {
    fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), TreeError> {
        self.with(|tree| {
            let node = tree.nodes.get(path).ok_or(TreeError::NoNode)?;
            Ok((node.data.clone(), node.stat))
        })
    }

    fn exists(&self, path: &str) -> Result<Option<Stat>, TreeError> {
        self.with(|tree| Ok(tree.nodes.get(path).map(|node| node.stat)))
    }

    fn children(&self, path: &str) -> Result<Vec<String>, TreeError> {
        self.with(|tree| {
            if !tree.nodes.contains_key(path) {
                return Err(TreeError::NoNode);
            }
            let prefix = if path == "/" {
                "/".to_owned()
            } else {
                format!("{path}/")
            };
            Ok(tree
                .nodes
                .range(prefix.clone()..)
                .take_while(|(p, _)| p.starts_with(&prefix))
                .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains('/'))
                .map(|(p, _)| p[prefix.len()..].to_owned())
                .collect())
        })
    }

    fn now_ms(&self) -> i64 {
        self.tree.lock().map(|tree| tree.now_ms).unwrap_or(0)
    }
}

/// Runs `fixture` against `loaded`, writing one JSON line per call to `out`.
pub fn run(
    runtime: &Runtime,
    loaded: &Loaded,
    fixture: &Fixture,
    out: &mut dyn std::io::Write,
) -> Result<FixtureReport, FixtureError> {
    let mut tree = MemTree::new();
    for node in &fixture.tree {
        let data = match (&node.data, &node.data_base64) {
            (_, Some(b64)) => unbase64(b64)
                .ok_or_else(|| FixtureError::Seed(format!("{}: bad data-base64", node.path)))?,
            (Some(text), None) => text.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        tree.seed(&node.path, data, node.ephemeral)
            .map_err(FixtureError::Seed)?;
    }
    let loaded = match &fixture.config {
        Some(config) => {
            let mut manifest = loaded.manifest().clone();
            manifest.config = config.clone();
            runtime
                .reload(loaded, manifest)
                .map_err(|err| FixtureError::Load(err.to_string()))?
        }
        None => loaded.clone(),
    };
    let mem = MemEnv::new(tree);
    let env: Arc<dyn HostEnv> = Arc::new(mem.clone());
    let mut plugin = Plugin::new(loaded);
    let mut report = FixtureReport::default();
    for (index, call) in fixture.calls.iter().enumerate() {
        report.calls += 1;
        let (result, decision) = match call {
            Call::OnChanges(batch) => {
                let mut batch = batch.clone();
                // Stats the fixture left out come from the tree.
                for change in &mut batch.changes {
                    if change.stat.is_none() {
                        change.stat = mem.exists(&change.path).ok().flatten();
                    }
                }
                (plugin.on_changes(&env, &batch), None)
            }
            Call::Decide(workload) => match plugin.decide(&env, workload) {
                Ok((decision, output)) => (Ok(output), Some(decision)),
                Err(err) => (Err(err), None),
            },
            Call::Reconcile { source, records } => (plugin.reconcile(&env, source, records), None),
        };
        if let Err(CallError::WrongWorld(world)) = &result {
            return Err(FixtureError::Call {
                index,
                reason: format!("a {world} plugin cannot take this call"),
            });
        }
        let mut line = serde_json::json!({ "call": index, "ok": result.is_ok() });
        let expect = fixture.expect.get(index);
        match &result {
            Ok(output) => {
                let ops: Vec<serde_json::Value> = output.ops.iter().map(TxnOp::to_json).collect();
                line["ops"] = serde_json::Value::from(ops.clone());
                line["logs"] = serde_json::Value::from(
                    output
                        .logs
                        .iter()
                        .map(|(level, msg)| serde_json::json!({"level": level, "msg": msg}))
                        .collect::<Vec<_>>(),
                );
                if let Some(fuel) = output.fuel_used {
                    line["fuel"] = fuel.into();
                }
                if let Some(decision) = &decision {
                    line["decision"] = serde_json::to_value(decision).unwrap_or_default();
                }
                if let Err((op, err)) = mem.apply(&output.ops) {
                    line["txn-error"] = serde_json::Value::from(format!("op {op}: {err}"));
                }
                if let Some(expect) = expect {
                    check(
                        index,
                        expect,
                        true,
                        None,
                        &ops,
                        decision.as_ref(),
                        &output.logs,
                        &mut report,
                    );
                }
            }
            Err(err) => {
                line["error"] = serde_json::Value::from(err.to_string());
                if let Some(expect) = expect {
                    check(
                        index,
                        expect,
                        false,
                        Some(&err.to_string()),
                        &[],
                        None,
                        &[],
                        &mut report,
                    );
                }
            }
        }
        writeln!(out, "{line}").map_err(|err| FixtureError::Output(err.to_string()))?;
    }
    if fixture.expect.len() > fixture.calls.len() {
        report.mismatches.push(format!(
            "the fixture expects {} calls but makes {}",
            fixture.expect.len(),
            fixture.calls.len()
        ));
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn check(
    index: usize,
    expect: &Expect,
    ok: bool,
    error: Option<&str>,
    ops: &[serde_json::Value],
    decision: Option<&crate::Decision>,
    logs: &[(crate::Level, String)],
    report: &mut FixtureReport,
) {
    let mut miss = |what: String| report.mismatches.push(format!("call {index}: {what}"));
    let want_ok = expect.ok.unwrap_or(expect.error.is_none());
    if want_ok != ok {
        miss(format!(
            "expected ok={want_ok}, got ok={ok}{}",
            error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
        return;
    }
    if let (Some(want), Some(got)) = (&expect.error, error) {
        if !got.contains(want.as_str()) {
            miss(format!(
                "expected an error containing {want:?}, got {got:?}"
            ));
        }
    }
    if let Some(want) = &expect.ops {
        if want.as_slice() != ops {
            miss(format!(
                "expected ops {}, got {}",
                serde_json::Value::from(want.clone()),
                serde_json::Value::from(ops.to_vec())
            ));
        }
    }
    if let Some(want) = &expect.decision {
        let got = decision
            .and_then(|d| serde_json::to_value(d).ok())
            .unwrap_or_default();
        for (key, value) in want {
            let field = &got[key.as_str()];
            let equal = match (field.as_str(), value.as_str()) {
                // For the reason, a substring is enough.
                (Some(got), Some(want)) if key == "reason" => got.contains(want),
                _ => field == value,
            };
            if !equal {
                miss(format!("expected decision {key} = {value}, got {field}"));
            }
        }
    }
    for want in &expect.logs_contain {
        if !logs.iter().any(|(_, msg)| msg.contains(want.as_str())) {
            miss(format!("expected a log line containing {want:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_tree_follows_zookeeper_rules() {
        let mut tree = MemTree::new();
        tree.seed("/a/b", b"x".to_vec(), false).unwrap();
        let create = |path: &str, mode| TxnOp::Create {
            path: path.into(),
            data: Vec::new(),
            mode,
        };
        assert_eq!(
            tree.apply(&[create("/a/q-", CreateMode::PersistentSequential)]),
            Ok(())
        );
        let env = MemEnv::new(tree.clone());
        assert_eq!(env.children("/a").unwrap(), vec!["b", "q-0000000001"]);
        // All or nothing: the second op fails, the first is undone.
        let result = tree.apply(&[
            create("/a/c", CreateMode::Persistent),
            create("/missing/x", CreateMode::Persistent),
        ]);
        assert_eq!(result, Err((1, TreeError::NoNode)));
        assert!(!tree.nodes.contains_key("/a/c"));
        assert_eq!(
            tree.apply(&[TxnOp::Delete {
                path: "/a".into(),
                version: None
            }]),
            Err((0, TreeError::NotEmpty))
        );
        assert_eq!(
            tree.apply(&[TxnOp::Set {
                path: "/a/b".into(),
                data: b"y".to_vec(),
                version: Some(3)
            }]),
            Err((0, TreeError::BadVersion))
        );
        tree.seed("/e", Vec::new(), true).unwrap();
        assert_eq!(
            tree.apply(&[create("/e/x", CreateMode::Persistent)]),
            Err((0, TreeError::NoChildrenForEphemerals))
        );
    }
}

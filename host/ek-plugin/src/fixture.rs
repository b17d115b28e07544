//! The runner behind `edgekeeper plugin test`: a plugin in the real host, against an
//! in-memory tree seeded from a fixture, with no cluster. Each call's output is one JSON
//! line; a call's writes are applied (atomically, with ZooKeeper's rules) before the next
//! call; the fixture's `expect` entries are checked.

use crate::host::HostEnv;
use crate::runtime::{Loaded, Runtime};
use crate::types::{
    unbase64, ChangeBatch, CreateMode, ServiceRecord, Stat, TreeError, TxnOp, Workload,
};
use crate::{CallError, Level, Plugin};
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
    pub ops: Option<Vec<TxnOp>>,
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
        // ZooKeeper numbers sequential children with the parent's cversion, which every
        // create and delete of a child bumps.
        let path = if sequential {
            format!("{path}{:010}", parent.stat.cversion)
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

/// Runs `fixture` against `loaded`, writing one JSON line per call to `out`: the calls
/// run in order on one [`Plugin`] (so a watcher keeps its warm instance, and the failure
/// policy applies as on a node), and each ok call's writes are applied to the in-memory
/// tree, as one multi, before the next call.
pub fn run(
    runtime: &Runtime,
    loaded: &Loaded,
    fixture: &Fixture,
    out: &mut dyn std::io::Write,
) -> Result<FixtureReport, FixtureError> {
    let mem = MemEnv::new(seed(fixture)?);
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
    let mut plugin = Plugin::new(loaded);
    let mut report = FixtureReport::default();
    for (index, call) in fixture.calls.iter().enumerate() {
        report.calls += 1;
        let (result, decision) = call_once(&mut plugin, &mem, call);
        if let Err(CallError::WrongWorld) = &result {
            return Err(FixtureError::Call {
                index,
                reason: format!(
                    "a {} plugin cannot take this call",
                    plugin.loaded().world().as_str()
                ),
            });
        }
        let logs = match &result {
            Ok(output) => output.logs.clone(),
            Err(_) => plugin.last_logs().to_vec(),
        };
        let mut line = serde_json::json!({ "call": index, "ok": result.is_ok() });
        let mut got = Got {
            ok: result.is_ok(),
            error: None,
            ops: &[],
            decision: decision.as_ref(),
            logs: &logs,
        };
        match &result {
            Ok(output) => {
                line["ops"] = serde_json::Value::from(
                    output.ops.iter().map(TxnOp::to_json).collect::<Vec<_>>(),
                );
                if let Some(decision) = &decision {
                    line["decision"] = serde_json::to_value(decision).unwrap_or_default();
                }
                if let Some(fuel) = output.fuel_used {
                    line["fuel"] = fuel.into();
                }
                if let Err((op, err)) = mem.apply(&output.ops) {
                    line["txn-error"] = serde_json::Value::from(format!("op {op}: {err}"));
                }
                got.ops = &output.ops;
            }
            Err(err) => {
                line["error"] = serde_json::Value::from(err.to_string());
                got.error = Some(err.to_string());
            }
        }
        line["logs"] = serde_json::Value::from(
            logs.iter()
                .map(|(level, msg)| serde_json::json!({"level": level, "msg": msg}))
                .collect::<Vec<_>>(),
        );
        if let Some(expect) = fixture.expect.get(index) {
            let misses = check(expect, &got);
            report
                .mismatches
                .extend(misses.into_iter().map(|m| format!("call {index}: {m}")));
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

/// The fixture's tree.
fn seed(fixture: &Fixture) -> Result<MemTree, FixtureError> {
    let mut tree = MemTree::new();
    for node in &fixture.tree {
        let data = match (&node.data, &node.data_base64) {
            (Some(_), Some(_)) => {
                return Err(FixtureError::Seed(format!(
                    "{}: give data or data-base64, not both",
                    node.path
                )))
            }
            (_, Some(b64)) => unbase64(b64)
                .ok_or_else(|| FixtureError::Seed(format!("{}: bad data-base64", node.path)))?,
            (Some(text), None) => text.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        tree.seed(&node.path, data, node.ephemeral)
            .map_err(FixtureError::Seed)?;
    }
    Ok(tree)
}

/// Makes one call of a fixture.
fn call_once(
    plugin: &mut Plugin,
    mem: &MemEnv,
    call: &Call,
) -> (
    Result<crate::CallOutput, CallError>,
    Option<crate::Decision>,
) {
    match call {
        Call::OnChanges(batch) => {
            let mut batch = batch.clone();
            // Stats the fixture left out come from the tree.
            for change in &mut batch.changes {
                if change.stat.is_none() && change.kind != crate::ChangeKind::Deleted {
                    change.stat = mem.exists(&change.path).ok().flatten();
                }
            }
            (plugin.on_changes(mem, &batch), None)
        }
        Call::Decide(workload) => match plugin.decide(mem, workload) {
            Ok((decision, output)) => (Ok(output), Some(decision)),
            Err(err) => (Err(err), None),
        },
        Call::Reconcile { source, records } => (plugin.reconcile(mem, source, records), None),
    }
}

/// What a call produced, as `expect` sees it.
struct Got<'a> {
    ok: bool,
    error: Option<String>,
    ops: &'a [TxnOp],
    decision: Option<&'a crate::Decision>,
    logs: &'a [(Level, String)],
}

/// What differs between `expect` and `got`, one line each.
fn check(expect: &Expect, got: &Got<'_>) -> Vec<String> {
    let mut misses = Vec::new();
    let want_ok = expect.ok.unwrap_or(expect.error.is_none());
    if want_ok != got.ok {
        misses.push(format!(
            "expected ok={want_ok}, got ok={}{}",
            got.ok,
            got.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
        return misses;
    }
    if let (Some(want), Some(error)) = (&expect.error, &got.error) {
        if !error.contains(want.as_str()) {
            misses.push(format!(
                "expected an error containing {want:?}, got {error:?}"
            ));
        }
    }
    if let Some(want) = &expect.ops {
        if want.as_slice() != got.ops {
            let json = |ops: &[TxnOp]| {
                serde_json::Value::from(ops.iter().map(TxnOp::to_json).collect::<Vec<_>>())
            };
            misses.push(format!(
                "expected ops {}, got {}",
                json(want),
                json(got.ops)
            ));
        }
    }
    if let Some(want) = &expect.decision {
        let decision = got
            .decision
            .and_then(|d| serde_json::to_value(d).ok())
            .unwrap_or_default();
        for (key, value) in want {
            let field = &decision[key.as_str()];
            let equal = match (field.as_str(), value.as_str()) {
                // For the reason, a substring is enough.
                (Some(got), Some(want)) if key == "reason" => got.contains(want),
                _ => field == value,
            };
            if !equal {
                misses.push(format!("expected decision {key} = {value}, got {field}"));
            }
        }
    }
    for want in &expect.logs_contain {
        if !got.logs.iter().any(|(_, msg)| msg.contains(want.as_str())) {
            misses.push(format!("expected a log line containing {want:?}"));
        }
    }
    misses
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

    #[test]
    fn versions_and_checks_follow_zookeeper() {
        let mut tree = MemTree::new();
        tree.seed("/a", b"0".to_vec(), false).unwrap();
        let set = |version| TxnOp::Set {
            path: "/a".into(),
            data: b"1".to_vec(),
            version,
        };
        assert_eq!(tree.apply(&[set(Some(0))]), Ok(()));
        assert_eq!(tree.apply(&[set(Some(0))]), Err((0, TreeError::BadVersion)));
        // -1 and none match any version.
        assert_eq!(tree.apply(&[set(Some(-1)), set(None)]), Ok(()));
        let env = MemEnv::new(tree.clone());
        let (data, stat) = env.get("/a").unwrap();
        assert_eq!((data.as_slice(), stat.version), (&b"1"[..], 3));
        assert_eq!(stat.data_length, 1);
        assert!(stat.mzxid > stat.czxid);
        let check = |version| TxnOp::Check {
            path: "/a".into(),
            version,
        };
        assert_eq!(tree.apply(&[check(3)]), Ok(()));
        // A failed check undoes the ops before it.
        assert_eq!(
            tree.apply(&[set(None), check(3)]),
            Err((1, TreeError::BadVersion))
        );
        assert_eq!(MemEnv::new(tree.clone()).get("/a").unwrap().1.version, 3);
        let delete = |path: &str, version| TxnOp::Delete {
            path: path.into(),
            version,
        };
        assert_eq!(
            tree.apply(&[delete("/a", Some(2))]),
            Err((0, TreeError::BadVersion))
        );
        assert_eq!(
            tree.apply(&[delete("/missing", None)]),
            Err((0, TreeError::NoNode))
        );
        assert_eq!(tree.apply(&[check(0)]).map_err(|e| e.0), Err(0));
        assert_eq!(tree.apply(&[delete("/a", Some(3))]), Ok(()));
        assert_eq!(MemEnv::new(tree).exists("/a").unwrap(), None);
    }

    #[test]
    fn sequential_names_count_the_parents_child_changes() {
        let mut tree = MemTree::new();
        tree.seed("/q", Vec::new(), false).unwrap();
        let seq = |mode| TxnOp::Create {
            path: "/q/item-".into(),
            data: Vec::new(),
            mode,
        };
        tree.apply(&[seq(CreateMode::PersistentSequential)])
            .unwrap();
        tree.apply(&[TxnOp::Delete {
            path: "/q/item-0000000000".into(),
            version: None,
        }])
        .unwrap();
        tree.apply(&[
            seq(CreateMode::EphemeralSequential),
            seq(CreateMode::PersistentSequential),
        ])
        .unwrap();
        let env = MemEnv::new(tree.clone());
        assert_eq!(
            env.children("/q").unwrap(),
            vec!["item-0000000002", "item-0000000003"]
        );
        let (_, stat) = env.get("/q/item-0000000002").unwrap();
        assert_ne!(stat.ephemeral_owner, 0);
        let (_, parent) = env.get("/q").unwrap();
        assert_eq!((parent.cversion, parent.num_children), (4, 2));
        assert_eq!(env.children("/missing"), Err(TreeError::NoNode));
        assert_eq!(env.children("/").unwrap(), vec!["q"]);
        // Creating what exists fails; so does the root's deletion.
        assert_eq!(
            tree.apply(&[TxnOp::Create {
                path: "/q".into(),
                data: Vec::new(),
                mode: CreateMode::Persistent
            }]),
            Err((0, TreeError::NodeExists))
        );
        assert!(tree
            .apply(&[TxnOp::Delete {
                path: "/".into(),
                version: None
            }])
            .is_err());
    }

    #[test]
    fn seeding_makes_parents_and_rejects_bad_paths() {
        let mut tree = MemTree::new();
        tree.seed("/a/b/c", b"x".to_vec(), false).unwrap();
        let env = MemEnv::new(tree.clone());
        assert_eq!(env.get("/a/b").unwrap().0, b"");
        assert_eq!(env.get("/a/b/c").unwrap().0, b"x");
        assert!(tree.seed("a/b", Vec::new(), false).is_err());
        assert!(tree.seed("/a/", Vec::new(), false).is_err());
        tree.seed("/e", Vec::new(), true).unwrap();
        assert!(tree.seed("/e/child", Vec::new(), false).is_err());
    }

    #[test]
    fn expectations_report_what_differs() {
        let logs = vec![(Level::Info, "hello world".to_owned())];
        let ops = vec![TxnOp::Delete {
            path: "/a".into(),
            version: None,
        }];
        let decision = crate::Decision {
            desired_replicas: 3,
            recommendation: 4,
            reason: "ratio 1.50".into(),
        };
        let got = Got {
            ok: true,
            error: None,
            ops: &ops,
            decision: Some(&decision),
            logs: &logs,
        };
        let expect: Expect = serde_json::from_str(
            r#"{ "ok": true, "ops": [ { "op": "delete", "path": "/a", "version": null } ],
                 "decision": { "desired-replicas": 3, "reason": "1.5" },
                 "logs-contain": [ "hello" ] }"#,
        )
        .unwrap();
        assert!(
            check(&expect, &got).is_empty(),
            "{:?}",
            check(&expect, &got)
        );
        let expect: Expect = serde_json::from_str(
            r#"{ "ops": [], "decision": { "desired-replicas": 2, "recommendation": 4 },
                 "logs-contain": [ "bye" ] }"#,
        )
        .unwrap();
        assert_eq!(check(&expect, &got).len(), 3, "{:?}", check(&expect, &got));
        let expect: Expect = serde_json::from_str(r#"{ "error": "boom" }"#).unwrap();
        let misses = check(&expect, &got);
        assert_eq!(misses, vec!["expected ok=false, got ok=true".to_owned()]);
        let failed = Got {
            ok: false,
            error: Some("trap: boom!".into()),
            ..got
        };
        assert!(check(&expect, &failed).is_empty());
    }
}

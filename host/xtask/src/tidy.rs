//! `cargo xtask tidy`: the architecture invariants of `ARCHITECTURE.md`, as code.
//!
//! 1. The pure crates (`ek-types`, `ek-tree`, `ek-watch`, `ek-jute`) neither declare nor
//!    transitively pull in (through normal or build dependencies) tokio, quinn, rustls,
//!    wasmtime, kube, hyper (or their `-*` family crates) or the I/O crates `ek-log`,
//!    `ek-server`, `ek-admin`. `ek-types` depends only on serde and thiserror.
//! 2. Only `edgekeeper` (plus `xtask` and `ek-tests`) depends on anyhow; dev-dependencies
//!    are free.
//! 3. Each pure crate has a `clippy.toml` whose `disallowed-methods` bans the clocks and
//!    the thread RNG.
//! 4. Every crate under `host/` has `version.workspace = true` (= "0.0.0") and lives in a
//!    folder named like its package.
//!
//! The checks work on the JSON of `cargo metadata` (with the resolve graph) plus a file
//! reader, so the tests can feed them a fabricated workspace.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// Crates that must stay pure: no I/O, no tokio, no clock, no randomness.
const PURE_CRATES: &[&str] = &["ek-types", "ek-tree", "ek-watch", "ek-jute", "ek-zab"];
/// External crates (and their `name-*` families) a pure crate must not pull in.
const IO_FAMILIES: &[&str] = &["tokio", "quinn", "rustls", "wasmtime", "kube", "hyper"];
/// Workspace crates that do I/O.
const IO_CRATES: &[&str] = &["ek-log", "ek-server", "ek-admin"];
/// The only normal dependencies of `ek-types`.
const EK_TYPES_DEPS: &[&str] = &["serde", "serde_bytes", "thiserror"];
/// The only crates that may depend on anyhow (outside dev-dependencies).
const ANYHOW_USERS: &[&str] = &["edgekeeper", "xtask", "ek-tests"];
/// Methods each pure crate's `clippy.toml` must list in `disallowed-methods`.
const BANNED_METHODS: &[&str] = &[
    "std::time::Instant::now",
    "std::time::SystemTime::now",
    "rand::thread_rng",
];
/// The workspace version every crate inherits.
const WORKSPACE_VERSION: &str = "0.0.0";

/// What `cargo metadata --format-version 1` prints, as far as tidy needs it.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    resolve: Option<Resolve>,
    workspace_root: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    version: String,
    id: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    /// The package name (not the `rename`).
    name: String,
    /// `None` for normal, `"dev"` or `"build"`.
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Debug, Deserialize)]
struct NodeDep {
    pkg: String,
    #[serde(default)]
    dep_kinds: Vec<DepKind>,
}

#[derive(Debug, Deserialize)]
struct DepKind {
    kind: Option<String>,
}

impl NodeDep {
    /// Whether the edge is compiled into the crate (normal or build), not only its tests.
    fn is_non_dev(&self) -> bool {
        self.dep_kinds.is_empty()
            || self
                .dep_kinds
                .iter()
                .any(|k| k.kind.as_deref() != Some("dev"))
    }
}

/// One broken invariant, attributed to a crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Violation {
    krate: String,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.krate, self.message)
    }
}

/// The workspace root (two levels above this crate).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/xtask sits two levels below the workspace root")
        .to_path_buf()
}

/// Runs every check on the workspace at `root`.
pub(crate) fn run(root: &Path) -> Result<Vec<Violation>, String> {
    let meta = load_metadata(root)?;
    Ok(check(&meta, &|path| std::fs::read_to_string(path).ok()))
}

/// Human-readable list of violations, one a line.
pub(crate) fn report(violations: &[Violation]) -> String {
    let mut out = format!(
        "tidy: {} architecture violation(s) (see ARCHITECTURE.md):",
        violations.len()
    );
    for v in violations {
        out.push_str("\n  - ");
        out.push_str(&v.to_string());
    }
    out
}

/// `cargo metadata --format-version 1` for the workspace at `root`, deps resolved.
pub(crate) fn load_metadata(root: &Path) -> Result<Metadata, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cannot parse cargo metadata output: {e}"))
}

/// Runs every check; `read` returns a file's text, or `None` if it does not exist.
pub(crate) fn check(meta: &Metadata, read: &dyn Fn(&Path) -> Option<String>) -> Vec<Violation> {
    let mut out = Vec::new();
    let by_id: HashMap<&str, &Package> = meta.packages.iter().map(|p| (p.id.as_str(), p)).collect();
    let members: Vec<&Package> = meta
        .workspace_members
        .iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect();

    for &name in PURE_CRATES {
        match members.iter().find(|p| p.name == name) {
            None => out.push(violation(name, "pure crate is missing from the workspace")),
            Some(pkg) => {
                check_pure_deps(pkg, meta, &by_id, &mut out);
                check_clippy_toml(pkg, read, &mut out);
            }
        }
    }
    for pkg in &members {
        check_anyhow(pkg, &mut out);
        check_naming(pkg, &meta.workspace_root, read, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn violation(krate: &str, message: impl Into<String>) -> Violation {
    Violation {
        krate: krate.to_string(),
        message: message.into(),
    }
}

/// Whether a pure crate must not have `name` among its (transitive) dependencies.
fn is_forbidden(name: &str) -> bool {
    IO_CRATES.contains(&name)
        || IO_FAMILIES.iter().any(|family| {
            name == *family
                || name
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
}

fn is_dev(kind: &Option<String>) -> bool {
    kind.as_deref() == Some("dev")
}

/// Invariant 1: declared and transitive dependencies of a pure crate.
fn check_pure_deps(
    pkg: &Package,
    meta: &Metadata,
    by_id: &HashMap<&str, &Package>,
    out: &mut Vec<Violation>,
) {
    let mut reported = BTreeSet::new();
    for dep in pkg.dependencies.iter().filter(|d| !is_dev(&d.kind)) {
        if is_forbidden(&dep.name) {
            out.push(violation(
                &pkg.name,
                format!("pure crate depends on `{}` (Cargo.toml)", dep.name),
            ));
            reported.insert(dep.name.clone());
        }
        if pkg.name == "ek-types" && !EK_TYPES_DEPS.contains(&dep.name.as_str()) {
            out.push(violation(
                &pkg.name,
                format!(
                    "depends on `{}`; ek-types may depend only on {} (plus dev-dependencies)",
                    dep.name,
                    EK_TYPES_DEPS.join(", ")
                ),
            ));
        }
    }

    let Some(resolve) = &meta.resolve else {
        return;
    };
    let nodes: HashMap<&str, &Node> = resolve.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let name_of = |id: &str| by_id.get(id).map_or(id.to_string(), |p| p.name.clone());
    // Breadth-first over normal and build edges, keeping the parent to print the path.
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([pkg.id.as_str()]);
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in node.deps.iter().filter(|d| d.is_non_dev()) {
            let dep_id = dep.pkg.as_str();
            if dep_id == pkg.id || parent.contains_key(dep_id) {
                continue;
            }
            parent.insert(dep_id, id);
            let dep_name = name_of(dep_id);
            if is_forbidden(&dep_name) {
                if reported.insert(dep_name.clone()) {
                    let mut chain = vec![dep_name.clone()];
                    let mut cur = id;
                    while cur != pkg.id {
                        chain.push(name_of(cur));
                        cur = parent[cur];
                    }
                    chain.push(pkg.name.clone());
                    chain.reverse();
                    out.push(violation(
                        &pkg.name,
                        format!(
                            "pure crate pulls in `{dep_name}` through {}",
                            chain.join(" -> ")
                        ),
                    ));
                }
                continue; // One path per forbidden crate is enough.
            }
            queue.push_back(dep_id);
        }
    }
}

/// Invariant 2: anyhow only in the binary.
fn check_anyhow(pkg: &Package, out: &mut Vec<Violation>) {
    if ANYHOW_USERS.contains(&pkg.name.as_str()) {
        return;
    }
    if pkg
        .dependencies
        .iter()
        .any(|d| d.name == "anyhow" && !is_dev(&d.kind))
    {
        out.push(violation(
            &pkg.name,
            format!(
                "depends on `anyhow`; only {} may (libraries use typed thiserror errors)",
                ANYHOW_USERS.join(", ")
            ),
        ));
    }
}

/// Invariant 3: the pure crate's `clippy.toml` bans clocks and the thread RNG.
fn check_clippy_toml(
    pkg: &Package,
    read: &dyn Fn(&Path) -> Option<String>,
    out: &mut Vec<Violation>,
) {
    let Some(dir) = pkg.manifest_path.parent() else {
        return;
    };
    let path = dir.join("clippy.toml");
    let Some(text) = read(&path) else {
        out.push(violation(
            &pkg.name,
            format!(
                "pure crate has no clippy.toml banning {}",
                BANNED_METHODS.join(", ")
            ),
        ));
        return;
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            out.push(violation(
                &pkg.name,
                format!("clippy.toml does not parse: {e}"),
            ));
            return;
        }
    };
    // Entries are either `"path"` or `{ path = "...", reason = "..." }`.
    let banned: BTreeSet<&str> = table
        .get("disallowed-methods")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| match entry {
            toml::Value::String(path) => Some(path.as_str()),
            toml::Value::Table(t) => t.get("path").and_then(toml::Value::as_str),
            _ => None,
        })
        .collect();
    for method in BANNED_METHODS {
        if !banned.contains(method) {
            out.push(violation(
                &pkg.name,
                format!("clippy.toml `disallowed-methods` does not ban `{method}`"),
            ));
        }
    }
}

/// Invariant 4: crates under `host/` take the workspace version and live in a folder named
/// like the package.
fn check_naming(
    pkg: &Package,
    root: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    out: &mut Vec<Violation>,
) {
    let Some(dir) = pkg.manifest_path.parent() else {
        return;
    };
    if dir.parent() != Some(root.join("host").as_path()) {
        return;
    }
    let folder = dir.file_name().map(|f| f.to_string_lossy().into_owned());
    if folder.as_deref() != Some(pkg.name.as_str()) {
        out.push(violation(
            &pkg.name,
            format!(
                "lives in host/{}; the folder must be named like the package",
                folder.unwrap_or_default()
            ),
        ));
    }
    if pkg.version != WORKSPACE_VERSION {
        out.push(violation(
            &pkg.name,
            format!(
                "version is {}; crates use the workspace version {WORKSPACE_VERSION}",
                pkg.version
            ),
        ));
    }
    let inherits = read(&pkg.manifest_path)
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|manifest| {
            manifest
                .get("package")?
                .get("version")?
                .get("workspace")?
                .as_bool()
        })
        == Some(true);
    if !inherits {
        out.push(violation(
            &pkg.name,
            "Cargo.toml must say `version.workspace = true`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The architecture invariants hold on this workspace.
    #[test]
    fn tidy() {
        let violations = run(&project_root()).unwrap_or_else(|e| panic!("tidy: {e}"));
        assert!(violations.is_empty(), "{}", report(&violations));
    }

    const ROOT: &str = "/ws";

    fn id(name: &str) -> String {
        format!("{name}#0.0.0")
    }

    /// A package at `/ws/<dir>/Cargo.toml` with `(name, kind)` dependencies.
    fn package(name: &str, dir: &str, version: &str, deps: &[(&str, Option<&str>)]) -> Value {
        json!({
            "name": name,
            "version": version,
            "id": id(name),
            "manifest_path": format!("{ROOT}/{dir}/Cargo.toml"),
            "dependencies": deps
                .iter()
                .map(|(n, k)| json!({ "name": n, "kind": k, "rename": null, "optional": false }))
                .collect::<Vec<_>>(),
        })
    }

    /// Resolve nodes from the packages' declared dependencies.
    fn nodes(packages: &[Value]) -> Vec<Value> {
        packages
            .iter()
            .map(|p| {
                let deps: Vec<Value> = p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        json!({
                            "name": d["name"].as_str().unwrap().replace('-', "_"),
                            "pkg": id(d["name"].as_str().unwrap()),
                            "dep_kinds": [{ "kind": d["kind"], "target": null }],
                        })
                    })
                    .collect();
                json!({ "id": p["id"], "deps": deps, "features": [] })
            })
            .collect()
    }

    fn metadata(members: &[Value], others: &[Value]) -> Metadata {
        let all: Vec<Value> = members.iter().chain(others).cloned().collect();
        serde_json::from_value(json!({
            "packages": all,
            "workspace_members": members.iter().map(|p| p["id"].clone()).collect::<Vec<_>>(),
            "resolve": { "nodes": nodes(&all), "root": null },
            "workspace_root": ROOT,
            "version": 1,
        }))
        .unwrap()
    }

    const GOOD_CLIPPY: &str = r#"
disallowed-methods = [
    { path = "std::time::Instant::now", reason = "pure" },
    "std::time::SystemTime::now",
    { path = "rand::thread_rng" },
]
"#;
    const GOOD_MANIFEST: &str = "[package]\nname = \"x\"\nversion.workspace = true\n";

    fn fake_fs(files: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (PathBuf::from(format!("{ROOT}/{p}")), t.to_string()))
            .collect();
        move |path: &Path| files.get(path).cloned()
    }

    fn messages(violations: &[Violation]) -> Vec<String> {
        violations.iter().map(Violation::to_string).collect()
    }

    #[test]
    fn clean_workspace_passes() {
        let members = [
            package(
                "ek-types",
                "host/ek-types",
                "0.0.0",
                &[
                    ("serde", None),
                    ("thiserror", None),
                    ("postcard", Some("dev")),
                ],
            ),
            package(
                "ek-tree",
                "host/ek-tree",
                "0.0.0",
                &[("ek-types", None), ("tokio", Some("dev"))],
            ),
            package("ek-watch", "host/ek-watch", "0.0.0", &[("ek-types", None)]),
            package("ek-zab", "host/ek-zab", "0.0.0", &[("ek-types", None)]),
            package(
                "ek-jute",
                "host/ek-jute",
                "0.0.0",
                &[("ek-types", None), ("bytes", None)],
            ),
            package(
                "ek-server",
                "host/ek-server",
                "0.0.0",
                &[("ek-tree", None), ("tokio", None), ("anyhow", Some("dev"))],
            ),
            package(
                "edgekeeper",
                "host/edgekeeper",
                "0.0.0",
                &[("ek-server", None), ("anyhow", None)],
            ),
            package("ek-tests", "tests", "0.0.0", &[("tokio", Some("dev"))]),
        ];
        let others = [
            package("serde", "reg/serde", "1.0.0", &[]),
            package("thiserror", "reg/thiserror", "2.0.0", &[]),
            package("postcard", "reg/postcard", "1.0.0", &[]),
            package("bytes", "reg/bytes", "1.0.0", &[]),
            package("tokio", "reg/tokio", "1.0.0", &[("bytes", None)]),
            package("anyhow", "reg/anyhow", "1.0.0", &[]),
        ];
        let mut files = Vec::new();
        for m in &members {
            let dir = m["manifest_path"]
                .as_str()
                .unwrap()
                .strip_prefix("/ws/")
                .unwrap()
                .strip_suffix("/Cargo.toml")
                .unwrap()
                .to_string();
            files.push((format!("{dir}/Cargo.toml"), GOOD_MANIFEST));
            files.push((format!("{dir}/clippy.toml"), GOOD_CLIPPY));
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        let violations = check(&metadata(&members, &others), &fake_fs(&files));
        assert!(violations.is_empty(), "{}", report(&violations));
    }

    #[test]
    fn catches_violations() {
        let members = [
            // Not allowed in ek-types, and an I/O crate.
            package(
                "ek-types",
                "host/ek-types",
                "0.0.0",
                &[("serde", None), ("bytes", None), ("ek-log", None)],
            ),
            // tokio arrives transitively through a harmless-looking crate.
            package(
                "ek-tree",
                "host/ek-tree",
                "0.0.0",
                &[("ek-types", None), ("cache", None)],
            ),
            // Declared directly (build dependency), and a family crate transitively.
            package(
                "ek-jute",
                "host/ek-jute",
                "0.0.0",
                &[("ek-types", None), ("hyper", Some("build")), ("net", None)],
            ),
            // ek-watch is missing; ek-server uses anyhow; a misnamed, misversioned crate.
            package(
                "ek-server",
                "host/ek-server",
                "0.0.0",
                &[("ek-tree", None), ("anyhow", None)],
            ),
            package("ek-stuff", "host/ek-things", "0.1.0", &[]),
        ];
        let others = [
            package("serde", "reg/serde", "1.0.0", &[]),
            package("bytes", "reg/bytes", "1.0.0", &[]),
            package("ek-log", "reg/ek-log", "0.0.0", &[]),
            package("cache", "reg/cache", "1.0.0", &[("tokio", None)]),
            package("tokio", "reg/tokio", "1.0.0", &[("bytes", None)]),
            package("hyper", "reg/hyper", "1.0.0", &[]),
            package("net", "reg/net", "1.0.0", &[("quinn-proto", None)]),
            package("quinn-proto", "reg/quinn-proto", "1.0.0", &[]),
            package("anyhow", "reg/anyhow", "1.0.0", &[]),
        ];
        let read = fake_fs(&[
            ("host/ek-types/Cargo.toml", GOOD_MANIFEST),
            ("host/ek-types/clippy.toml", GOOD_CLIPPY),
            ("host/ek-tree/Cargo.toml", GOOD_MANIFEST),
            // no host/ek-tree/clippy.toml
            ("host/ek-jute/Cargo.toml", GOOD_MANIFEST),
            (
                "host/ek-jute/clippy.toml",
                "disallowed-methods = [\"std::time::Instant::now\"]\n",
            ),
            ("host/ek-server/Cargo.toml", GOOD_MANIFEST),
            (
                "host/ek-things/Cargo.toml",
                "[package]\nname = \"ek-stuff\"\nversion = \"0.1.0\"\n",
            ),
        ]);
        let violations = check(&metadata(&members, &others), &read);
        let expected = [
            "ek-jute: clippy.toml `disallowed-methods` does not ban `rand::thread_rng`",
            "ek-jute: clippy.toml `disallowed-methods` does not ban `std::time::SystemTime::now`",
            "ek-jute: pure crate depends on `hyper` (Cargo.toml)",
            "ek-jute: pure crate pulls in `ek-log` through ek-jute -> ek-types -> ek-log",
            "ek-jute: pure crate pulls in `quinn-proto` through ek-jute -> net -> quinn-proto",
            "ek-server: depends on `anyhow`; only edgekeeper, xtask, ek-tests may (libraries use typed thiserror errors)",
            "ek-stuff: Cargo.toml must say `version.workspace = true`",
            "ek-stuff: lives in host/ek-things; the folder must be named like the package",
            "ek-stuff: version is 0.1.0; crates use the workspace version 0.0.0",
            "ek-tree: pure crate has no clippy.toml banning std::time::Instant::now, std::time::SystemTime::now, rand::thread_rng",
            "ek-tree: pure crate pulls in `ek-log` through ek-tree -> ek-types -> ek-log",
            "ek-tree: pure crate pulls in `tokio` through ek-tree -> cache -> tokio",
            "ek-types: depends on `bytes`; ek-types may depend only on serde, serde_bytes, thiserror (plus dev-dependencies)",
            "ek-types: depends on `ek-log`; ek-types may depend only on serde, serde_bytes, thiserror (plus dev-dependencies)",
            "ek-types: pure crate depends on `ek-log` (Cargo.toml)",
            "ek-watch: pure crate is missing from the workspace",
            "ek-zab: pure crate is missing from the workspace",
        ];
        assert_eq!(messages(&violations), expected, "{}", report(&violations));
    }

    #[test]
    fn forbidden_names() {
        for name in [
            "tokio",
            "tokio-util",
            "hyper-util",
            "kube-runtime",
            "ek-admin",
            "wasmtime",
        ] {
            assert!(is_forbidden(name), "{name}");
        }
        for name in ["tokioish", "serde", "ek-types", "rustlsx", "bytes"] {
            assert!(!is_forbidden(name), "{name}");
        }
    }
}

//! WebAssembly plugins end to end: the components of `guest-plugins/` (built by
//! [`crate::guests`]), the `edgekeeper plugin` tool (`build`, `test`, `install`, `list`, `remove`),
//! and real `edgekeeper` nodes that ship plugins through the tree, call them, act on what
//! they return and keep serving clients when a plugin misbehaves.
//!
//! Plugins are edgekeeper's own, so every test here is skipped with `EK_TEST_ZOOKEEPER=1`.
//! Tests that start nodes take a cluster [`turn`]: compiling components in a debug build
//! and a plugin that spins on purpose load two cores as much as an ensemble does. Every
//! wait polls a condition until [`PLUGIN_WAIT`]; nothing asserts how fast anything happened.

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use zookeeper_client as zk;

use crate::cluster::{bounded_test, turn, Cluster, Spec};
use crate::guests::{example_dir, hostile_dir, install, install_output, plugin, text, wasm};
use crate::harness::{bounded, client, edgekeeper_bin, run_bounded, Flavor, Server};
use crate::load::OPEN;
use crate::proxy::NodeId;

/// How long any one wait on a plugin may take: loading compiles the component, which a
/// debug build on two busy cores does slowly.
const PLUGIN_WAIT: Duration = Duration::from_secs(120);

/// How long one single-node plugin test may take in all.
const NODE_TEST_DEADLINE: Duration = Duration::from_secs(400);

/// `[plugins]` of the single-node tests, as a top-level inline table (the harness puts
/// extra lines before the top-level keys, where a `[plugins]` header would swallow them).
fn plugins_config(source: Option<&Path>) -> String {
    let sources = source
        .map(|file| {
            format!(
                ", sources = [{{ name = \"static\", file = \"{}\" }}]",
                file.display()
            )
        })
        .unwrap_or_default();
    format!("plugins = {{ scaling_interval_ms = 200, registrar_interval_ms = 200{sources} }}")
}

fn edgekeeper_only() -> bool {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: plugins are edgekeeper's (EK_TEST_ZOOKEEPER is set)");
        return false;
    }
    true
}

/// `edgekeeper plugin install` that must fail; its message.
fn install_refused(server: &str, component: &Path, manifest: &Path) -> String {
    let output = install_output(server, component, manifest, &[]);
    assert!(
        !output.status.success(),
        "installing {} with {} succeeded: {}",
        component.display(),
        manifest.display(),
        text(&output)
    );
    text(&output)
}

/// `edgekeeper plugin test <wasm> --input <fixture> [--manifest <manifest>]`.
fn plugin_test(component: &Path, fixture: &Path, manifest: Option<&Path>) -> Output {
    let mut args = vec![
        OsStr::new("test"),
        component.as_os_str(),
        OsStr::new("--input"),
        fixture.as_os_str(),
    ];
    if let Some(manifest) = manifest {
        args.extend([OsStr::new("--manifest"), manifest.as_os_str()]);
    }
    plugin(&args)
}

/// The JSON lines `plugin test` printed, each checked to be the next call's.
fn call_lines(output: &Output, what: &str) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{what}: {line:?} is not JSON: {error}"))
        })
        .collect();
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["call"], index, "{what}: line {index} is {line}");
        assert!(
            line["ok"].is_boolean(),
            "{what}: line {index} has no ok: {line}"
        );
    }
    lines
}

/// The sha256 of a file, in lowercase hex.
fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Writes `text` to `path` through a rename, so a reader never sees half of it.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write the temp file");
    std::fs::rename(&tmp, path).expect("rename the temp file");
}

/// A manifest in `dir` named `file`, made of `text`.
fn manifest_file(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write the manifest");
    path
}

/// Polls `probe` until it gives a value; after [`PLUGIN_WAIT`] fails with `what` and
/// `context()` (log tails, the last status).
async fn eventually<T, F, Fut>(what: &str, context: impl Fn() -> String, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PLUGIN_WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {PLUGIN_WAIT:?} waiting for {what}\n{}",
                context()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a single-node test body within [`NODE_TEST_DEADLINE`].
async fn node_test(body: impl Future<Output = ()>) {
    if tokio::time::timeout(NODE_TEST_DEADLINE, body)
        .await
        .is_err()
    {
        panic!("plugin test did not finish within {NODE_TEST_DEADLINE:?}");
    }
}

/// A znode's data as JSON; `None` if it is missing or not JSON.
async fn json(client: &zk::Client, path: &str) -> Option<Value> {
    let (data, _) = client.get_data(path).await.ok()?;
    serde_json::from_slice(&data).ok()
}

async fn exists(client: &zk::Client, path: &str) -> bool {
    bounded("exists", client.check_stat(path))
        .await
        .unwrap_or_else(|error| panic!("stat {path}: {error}"))
        .is_some()
}

/// Creates or overwrites `path` with `data`, creating missing parents (empty).
async fn put(client: &zk::Client, path: &str, data: &str) {
    let mut at = String::new();
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    for (index, part) in parts.iter().enumerate() {
        at.push('/');
        at.push_str(part);
        let last = index + 1 == parts.len();
        let bytes = if last { data.as_bytes() } else { b"" };
        match bounded("create", client.create(&at, bytes, OPEN)).await {
            Ok(_) => {}
            Err(zk::Error::NodeExists) if last => {
                bounded("set_data", client.set_data(&at, bytes, None))
                    .await
                    .unwrap_or_else(|error| panic!("set {at}: {error}"));
            }
            Err(zk::Error::NodeExists) => {}
            Err(error) => panic!("create {at}: {error}"),
        }
    }
}

/// Every status node of plugin `name`: (node id, JSON).
async fn statuses(client: &zk::Client, name: &str) -> Vec<(String, Value)> {
    let dir = format!("/edgekeeper/plugins/{name}/status");
    let mut out = Vec::new();
    for node in client.list_children(&dir).await.unwrap_or_default() {
        if let Some(status) = json(client, &format!("{dir}/{node}")).await {
            out.push((node, status));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The status of plugin `name` on a single node, once there is one.
async fn status(client: &zk::Client, name: &str) -> Option<Value> {
    let mut all = statuses(client, name).await;
    (all.len() == 1).then(|| all.remove(0).1)
}

/// A status field as text ("" when absent).
fn field<'a>(status: &'a Value, key: &str) -> &'a str {
    status[key].as_str().unwrap_or("")
}

/// `GET /metrics` on an admin address.
async fn metrics(admin: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(admin).await.ok()?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    };
    bounded("GET /metrics", exchange)
        .await
        .unwrap_or_else(|| panic!("the admin endpoint {admin} did not answer"))
}

/// The value of `family{plugin="<plugin>"}` in Prometheus text, if present.
fn plugin_sample(body: &str, family: &str, plugin: &str) -> Option<f64> {
    let label = format!("plugin=\"{plugin}\"");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            let (name, labels) = sample.split_once('{')?;
            (name == family && labels.split(',').any(|l| l.trim_end_matches('}') == label))
                .then(|| value.trim().parse().ok())
                .flatten()
        })
}

// ---------------------------------------------------------------------------------------
// The tool, without a cluster.

/// Every example, with its guest crate.
const EXAMPLES: [(&str, &str); 5] = [
    ("hpa-policy", "hpa_policy"),
    ("hysteresis-policy", "hysteresis_policy"),
    ("service-registrar", "service_registrar"),
    ("config-file-sync", "config_file_sync"),
    ("health-rollup", "health_rollup"),
];

#[test]
fn plugin_test_passes_every_example_fixture() {
    if !edgekeeper_only() {
        return;
    }
    let mut fixtures_run = 0;
    for (example, crate_name) in EXAMPLES {
        let component = wasm(crate_name);
        let mut fixtures: Vec<PathBuf> = std::fs::read_dir(example_dir(example).join("fixtures"))
            .unwrap_or_else(|error| panic!("{example} has no fixtures/: {error}"))
            .map(|entry| entry.expect("read fixtures/").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        fixtures.sort();
        assert!(!fixtures.is_empty(), "{example} has no fixtures");
        for fixture in fixtures {
            let what = fixture.display().to_string();
            // The manifest is found beside the fixture or one level up.
            let output = plugin_test(&component, &fixture, None);
            assert!(output.status.success(), "{what}: {}", text(&output));
            let calls: Value =
                serde_json::from_slice(&std::fs::read(&fixture).expect("read the fixture"))
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
            let expected = calls["calls"].as_array().map_or(0, Vec::len);
            assert!(expected > 0, "{what} makes no calls");
            assert_eq!(
                call_lines(&output, &what).len(),
                expected,
                "{what}: {}",
                text(&output)
            );
            fixtures_run += 1;
        }
    }
    assert!(fixtures_run >= EXAMPLES.len());
}

#[test]
fn plugin_test_fails_a_wrong_expectation_and_names_it() {
    if !edgekeeper_only() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let original = example_dir("hpa-policy").join("fixtures/scale-up.json");
    let mut fixture: Value =
        serde_json::from_slice(&std::fs::read(&original).expect("read scale-up.json"))
            .expect("scale-up.json is JSON");
    // The first call scales 2 pods at 100 % of a 50 % target to 4; expect 5 instead.
    let expected = &mut fixture["expect"][0]["decision"]["desired-replicas"];
    assert_eq!(
        *expected, 4,
        "scale-up.json changed: call 0 no longer expects 4"
    );
    *expected = 5.into();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, fixture.to_string()).expect("write the fixture");
    let manifest = example_dir("hpa-policy").join("manifest.toml");
    let output = plugin_test(&wasm("hpa_policy"), &wrong, Some(&manifest));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("call 0") && message.contains("desired-replicas") && message.contains('5'),
        "the mismatch is not named: {message}"
    );
    // The calls still ran and printed their lines; only call 0 is wrong.
    let lines = call_lines(&output, "wrong.json");
    assert_eq!(lines.len(), 3, "{}", text(&output));
    assert_eq!(lines[0]["decision"]["desired-replicas"], 4, "{}", lines[0]);
    assert!(
        !message.contains("call 1") && !message.contains("call 2"),
        "{message}"
    );

    // Without --manifest, a fixture with no manifest beside it or above is refused.
    let output = plugin_test(&wasm("hpa_policy"), &wrong, None);
    assert!(!output.status.success());
    assert!(text(&output).contains("manifest"), "{}", text(&output));
}

#[test]
fn plugin_build_names_the_component_it_built() {
    if !edgekeeper_only() {
        return;
    }
    let built = wasm("hpa_policy");
    // <guests>/wasm32-wasip2/release/hpa_policy.wasm: build into the same target dir, so
    // cargo finds everything fresh.
    let target = built.ancestors().nth(3).expect("the guests' target dir");
    let mut command = Command::new(edgekeeper_bin());
    command
        .args(["plugin", "build", "--package", "hpa-policy"])
        .arg(example_dir("hpa-policy"))
        .env("CARGO_TARGET_DIR", target);
    let output = run_bounded(command, "edgekeeper plugin build");
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let named: Vec<&str> = stdout.lines().collect();
    assert_eq!(named, [built.to_string_lossy()], "{}", text(&output));
}

/// A fixture of one call, no expectations: a start-up snapshot of `/hostile/a` for a
/// watcher, or a workload named `bad` for a policy.
fn one_call_fixture(dir: &Path, watcher: bool) -> PathBuf {
    let fixture = if watcher {
        r#"{ "tree": [ { "path": "/hostile/a", "data": "x" } ],
             "calls": [ { "on-changes": { "snapshot": true, "zxid": 1, "changes": [
                 { "kind": "created", "path": "/hostile/a", "zxid": 1 } ] } } ] }"#
    } else {
        r#"{ "calls": [ { "decide": { "namespace": "default", "name": "bad",
             "current-replicas": 1, "min-replicas": 1, "max-replicas": 3,
             "pods": [], "metrics": [], "recent": [], "settings": {}, "now-ms": 1000 } } ] }"#
    };
    let path = dir.join(if watcher {
        "watcher.json"
    } else {
        "policy.json"
    });
    std::fs::write(&path, fixture).expect("write the fixture");
    path
}

#[test]
fn plugin_test_reports_what_hostile_plugins_do() {
    if !edgekeeper_only() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let watcher = one_call_fixture(dir.path(), true);
    let policy = one_call_fixture(dir.path(), false);
    let cases = [
        (
            "out-of-grant",
            "hostile_out_of_grant",
            &watcher,
            &["out of scope", "/forbidden/x"][..],
        ),
        ("spin", "hostile_spin", &watcher, &["timed out"][..]),
        (
            "trap",
            "hostile_trap",
            &policy,
            &["trap", "hostile trap plugin deciding bad"][..],
        ),
        (
            "memory-hog",
            "hostile_memory_hog",
            &policy,
            &["out of memory"][..],
        ),
    ];
    for (name, crate_name, fixture, needles) in cases {
        let manifest = hostile_dir(name).join("manifest.toml");
        let output = plugin_test(&wasm(crate_name), fixture, Some(&manifest));
        // No expectations: the run itself succeeds and reports the failed call.
        assert!(output.status.success(), "{name}: {}", text(&output));
        let lines = call_lines(&output, name);
        assert_eq!(lines.len(), 1, "{name}: {}", text(&output));
        assert_eq!(lines[0]["ok"], false, "{name}: {}", lines[0]);
        let error = field(&lines[0], "error");
        for needle in needles {
            assert!(
                error.contains(needle),
                "{name}: {needle:?} not in {error:?}"
            );
        }
    }
    // An expected error passes: `error` matches a substring.
    let expected = dir.path().join("expected.json");
    let mut fixture: Value =
        serde_json::from_slice(&std::fs::read(&watcher).expect("read")).expect("JSON");
    fixture["expect"] = serde_json::json!([{ "ok": false, "error": "out of scope" }]);
    std::fs::write(&expected, fixture.to_string()).expect("write");
    let manifest = hostile_dir("out-of-grant").join("manifest.toml");
    let output = plugin_test(&wasm("hostile_out_of_grant"), &expected, Some(&manifest));
    assert!(output.status.success(), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_refuses_bad_components_before_writing_anything() {
    if !edgekeeper_only() {
        return;
    }
    let server = Server::start();
    let addr = server.addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let hpa = wasm("hpa_policy");

    // A policy component under a watcher manifest: it lacks the watcher's export.
    let watcher = manifest_file(
        dir,
        "watcher.toml",
        "name = \"wrong-world\"\nversion = \"0.1.0\"\nworld = \"watcher\"\n\
         read-prefixes = [\"/scaling\"]\nwatch-prefixes = [\"/scaling\"]\n",
    );
    let message = install_refused(&addr, &hpa, &watcher);
    assert!(
        message.contains("watcher") && message.contains("on-changes"),
        "the world or the missing export is not named: {message}"
    );
    // And the other way round: a watcher under a scaling-policy manifest.
    let policy = manifest_file(
        dir,
        "policy.toml",
        "name = \"not-a-policy\"\nversion = \"0.1.0\"\nworld = \"scaling-policy\"\n\
         read-prefixes = [\"/edgekeeper/cluster\"]\n",
    );
    let message = install_refused(&addr, &wasm("health_rollup"), &policy);
    assert!(
        message.contains("scaling-policy") && message.contains("decide"),
        "the world or the missing export is not named: {message}"
    );
    // A watcher that uses files, without a [files] grant: its filesystem import is refused.
    let no_files = manifest_file(
        dir,
        "no-files.toml",
        "name = \"no-files\"\nversion = \"0.1.0\"\nworld = \"watcher\"\n\
         read-prefixes = [\"/config/web\"]\nwatch-prefixes = [\"/config/web\"]\n",
    );
    let message = install_refused(&addr, &wasm("config_file_sync"), &no_files);
    assert!(
        message.contains("wasi:filesystem") && message.contains("[files]"),
        "the refused import is not named: {message}"
    );

    // A manifest whose sha256 is not the component's: both hashes are named.
    let wrong_sha = "0".repeat(64);
    let text = std::fs::read_to_string(example_dir("hpa-policy").join("manifest.toml"))
        .expect("read the manifest");
    let hashed = manifest_file(
        dir,
        "hashed.toml",
        &format!("sha256 = \"{wrong_sha}\"\n{text}"),
    );
    let message = install_refused(&addr, &hpa, &hashed);
    assert!(
        message.contains(&wrong_sha) && message.contains(&sha256_hex(&hpa)),
        "the two hashes are not named: {message}"
    );
    // A WIT version this host does not offer.
    let newer = manifest_file(dir, "newer.toml", &format!("wit = \"0.2.0\"\n{text}"));
    let message = install_refused(&addr, &hpa, &newer);
    assert!(
        message.contains("0.2.0"),
        "the WIT version is not named: {message}"
    );
    // Not a component at all.
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").expect("write");
    install_refused(
        &addr,
        &junk,
        &example_dir("hpa-policy").join("manifest.toml"),
    );

    // Nothing reached the tree: a node writes under /edgekeeper only once a plugin is in.
    let client = client(&server).await;
    assert!(
        !exists(&client, "/edgekeeper").await,
        "a refused install wrote to the tree"
    );
}

// ---------------------------------------------------------------------------------------
// Examples through one real node.

/// Waits for `/scaling/<workload>/decision` to satisfy `accept`; returns it.
async fn decision(
    server: &Server,
    client: &zk::Client,
    workload: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/scaling/{workload}/decision");
    eventually(
        &format!("the wanted decision at {path}"),
        || server.log_tail(),
        || async {
            json(client, &path)
                .await
                .filter(|decision| accept(decision))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_policies_decide_in_a_node() {
    if !edgekeeper_only() {
        return;
    }
    let Some(_turn) = turn().await else { return };
    node_test(async {
        let server = Server::start_with(&plugins_config(None));
        let addr = server.addr();
        let client = client(&server).await;
        for (example, crate_name) in [("hpa-policy", "hpa_policy"), ("hysteresis-policy", "hysteresis_policy")] {
            install(&addr, &wasm(crate_name), &example_dir(example).join("manifest.toml"));
        }
        // A workload naming a policy nobody installed gets no decision.
        put(&client, "/scaling/ghost/spec", r#"{"policy":"nobody","min-replicas":1,"max-replicas":3}"#).await;

        // hpa-policy: 2 pods at 100 % of a 50 % target → 4 replicas.
        put(&client, "/scaling/web/spec", r#"{"policy":"hpa-policy","min-replicas":1,"max-replicas":10,"metrics":[{"name":"cpu","target-kind":"utilization","target":50}]}"#).await;
        put(&client, "/scaling/web/current", r#"{"replicas":2}"#).await;
        for pod in ["web-a", "web-b"] {
            put(&client, &format!("/scaling/web/pods/{pod}"), r#"{"ready":true,"metrics":{"cpu":100}}"#).await;
        }
        let web = decision(&server, &client, "web", |d| d["desired-replicas"] == 4).await;
        assert_eq!(web["policy"], "hpa-policy", "{web}");
        assert!(field(&web, "reason").contains("cpu"), "no reason: {web}");
        assert_eq!(web["current-replicas"], 2, "{web}");
        assert!(!exists(&client, "/scaling/ghost/decision").await, "a decision without a policy");

        // hysteresis-policy, as its README says: above 80 % one more, below 60 % one less,
        // in between hold. The test applies each decision as an agent would.
        put(&client, "/scaling/api/spec", r#"{"policy":"hysteresis-policy","min-replicas":1,"max-replicas":5,"metrics":[{"name":"cpu","target-kind":"utilization","target":70}]}"#).await;
        put(&client, "/scaling/api/current", r#"{"replicas":2}"#).await;
        put(&client, "/scaling/api/pods/api-a", r#"{"ready":true,"metrics":{"cpu":90}}"#).await;
        put(&client, "/scaling/api/pods/api-b", r#"{"ready":true,"metrics":{"cpu":86}}"#).await;
        let up = decision(&server, &client, "api", |d| d["desired-replicas"] == 3).await;
        assert!(field(&up, "reason").contains("scale up"), "{up}");
        assert_eq!(up["policy"], "hysteresis-policy", "{up}");
        put(&client, "/scaling/api/current", r#"{"replicas":3}"#).await;
        put(&client, "/scaling/api/pods/api-a", r#"{"ready":true,"metrics":{"cpu":40}}"#).await;
        put(&client, "/scaling/api/pods/api-b", r#"{"ready":true,"metrics":{"cpu":40}}"#).await;
        let down = decision(&server, &client, "api", |d| {
            d["desired-replicas"] == 2 && d["current-replicas"] == 3
        })
        .await;
        assert!(field(&down, "reason").contains("scale down"), "{down}");
        put(&client, "/scaling/api/current", r#"{"replicas":2}"#).await;
        for pod in ["api-a", "api-b"] {
            let path = format!("/scaling/api/pods/{pod}");
            put(&client, &path, r#"{"ready":true,"metrics":{"cpu":65}}"#).await;
        }
        let hold = decision(&server, &client, "api", |d| {
            d["current-replicas"] == 2 && field(d, "reason").contains("hold")
        })
        .await;
        assert_eq!(hold["desired-replicas"], 2, "{hold}");
        // The history the policy sees next time is kept in the decision.
        assert!(hold["recent"].as_array().is_some_and(|recent| recent.len() >= 3), "{hold}");

        assert_policy_metrics(&server).await;
        let list = plugin(&["list", "--server", &addr]);
        let listed = text(&list);
        assert!(list.status.success(), "{listed}");
        let hpa_sha = sha256_hex(&wasm("hpa_policy"));
        assert!(
            listed.contains("hpa-policy 0.1.0 scaling-policy") && listed.contains(&hpa_sha),
            "{listed}"
        );
        assert!(listed.contains("hysteresis-policy"), "{listed}");

        let mut server = server;
        drop(client);
        tokio::task::block_in_place(|| server.restart());
        let client = crate::harness::client(&server).await;
        let reloaded = eventually(
            "hpa-policy loaded from the cache after a restart",
            || server.log_tail(),
            || async {
                status(&client, "hpa-policy")
                    .await
                    .filter(|s| s["from-cache"] == true && s["sha256"] == hpa_sha.as_str())
            },
        )
        .await;
        assert_eq!(reloaded["state"], "running", "{reloaded}");
        let since = now_ms();
        decision(&server, &client, "web", |d| {
            d["at-ms"].as_i64().is_some_and(|at| at > since) && d["desired-replicas"] == 4
        })
        .await;
        a_corrupt_upgrade_keeps_the_old_version(&server, &client, &hpa_sha).await;
    })
    .await;
}

/// hysteresis-policy's README: above 80 % it scales up by one "and keeps adding one replica
/// per evaluation until utilisation is back at or below 70 %". The loop evaluates every
/// interval whether or not the last decision was applied yet, so the episode must survive
/// evaluations that repeat the same decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: past-decision has no current-replicas, so an episode whose whole recorded history is one repeated decision is not seen as a scale-up (WIT 0.1.1 will add it)"]
async fn hysteresis_keeps_scaling_up_until_back_at_target() {
    if !edgekeeper_only() {
        return;
    }
    let Some(_turn) = turn().await else { return };
    node_test(async {
        let server = Server::start_with(&plugins_config(None));
        let client = client(&server).await;
        install(
            &server.addr(),
            &wasm("hysteresis_policy"),
            &example_dir("hysteresis-policy").join("manifest.toml"),
        );
        put(&client, "/scaling/api/spec", r#"{"policy":"hysteresis-policy","min-replicas":1,"max-replicas":5,"metrics":[{"name":"cpu","target-kind":"utilization","target":70}]}"#).await;
        put(&client, "/scaling/api/current", r#"{"replicas":2}"#).await;
        let pods = |cpu: u32| {
            let client = &client;
            async move {
                for pod in ["api-a", "api-b"] {
                    let report = format!(r#"{{"ready":true,"metrics":{{"cpu":{cpu}}}}}"#);
                    put(client, &format!("/scaling/api/pods/{pod}"), &report).await;
                }
            }
        };
        pods(90).await;
        // The episode starts, and the decision is made (at least) twice before it is applied.
        decision(&server, &client, "api", |d| {
            let recent = d["recent"].as_array().cloned().unwrap_or_default();
            recent.iter().filter(|past| past["desired-replicas"] == 3).count() >= 2
        })
        .await;
        put(&client, "/scaling/api/current", r#"{"replicas":3}"#).await;
        pods(75).await;
        let next = decision(&server, &client, "api", |d| {
            d["current-replicas"] == 3 && field(d, "reason").contains("75")
        })
        .await;
        assert_eq!(
            next["desired-replicas"], 4,
            "75 % is still above the 70 % target after scaling up: {next}"
        );
    })
    .await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64
}

/// Writes a manifest whose chunks do not hash to its sha256 straight into the tree (as a
/// torn or tampered upload would): the node refuses it, says why in the status, and the
/// version it ran keeps deciding.
async fn a_corrupt_upgrade_keeps_the_old_version(
    server: &Server,
    client: &zk::Client,
    old_sha: &str,
) {
    let base = "/edgekeeper/plugins/hpa-policy";
    let mut manifest = json(client, &format!("{base}/manifest"))
        .await
        .expect("the manifest JSON");
    assert_eq!(manifest["sha256"], old_sha, "{manifest}");
    let bogus = "ab".repeat(32);
    put(
        client,
        &format!("{base}/blobs/{bogus}/0"),
        "not a component",
    )
    .await;
    manifest["sha256"] = bogus.clone().into();
    manifest["version"] = "9.9.9".into();
    put(client, &format!("{base}/manifest"), &manifest.to_string()).await;
    let refused = eventually(
        "the corrupt version refused in the status",
        || server.log_tail(),
        || async {
            status(client, "hpa-policy")
                .await
                .filter(|s| field(s, "error").contains(&bogus))
        },
    )
    .await;
    assert!(field(&refused, "error").contains("not loaded"), "{refused}");
    assert_eq!(refused["sha256"], old_sha, "{refused}");
    assert_eq!(refused["version"], "0.1.0", "{refused}");
    assert_eq!(refused["state"], "running", "{refused}");
    let since = now_ms();
    let decided = decision(server, client, "web", |d| {
        d["at-ms"].as_i64().is_some_and(|at| at > since)
    })
    .await;
    assert_eq!(decided["policy-version"], "0.1.0", "{decided}");
    assert_eq!(decided["desired-replicas"], 4, "{decided}");
}

/// The node's `/metrics` counts the policies' calls and times them.
async fn assert_policy_metrics(server: &Server) {
    let body = metrics(server.admin_addr()).await;
    for plugin in ["hpa-policy", "hysteresis-policy"] {
        let calls = plugin_sample(&body, "edgekeeper_plugin_calls_total", plugin);
        assert!(
            calls.is_some_and(|calls| calls >= 1.0),
            "no calls of {plugin} in:\n{body}"
        );
        let timed = plugin_sample(
            &body,
            "edgekeeper_plugin_call_duration_seconds_count",
            plugin,
        );
        assert_eq!(
            timed, calls,
            "the call histogram of {plugin} disagrees:\n{body}"
        );
        let errors = plugin_sample(&body, "edgekeeper_plugin_errors_total", plugin);
        assert_eq!(errors, Some(0.0), "{plugin} failed:\n{body}");
    }
}

/// Service records of `default/web`: the endpoints given (address, ready), port 8080.
fn web_records(endpoints: &[(&str, bool)]) -> String {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, ready)| {
            serde_json::json!({ "address": address, "port": 8080, "ready": ready, "node": "edge-1" })
        })
        .collect();
    serde_json::json!([{ "namespace": "default", "name": "web", "labels": { "app": "web" },
                         "endpoints": endpoints }])
    .to_string()
}

/// The children of `path`, sorted; none when it does not exist.
async fn children(client: &zk::Client, path: &str) -> Vec<String> {
    let mut children = client.list_children(path).await.unwrap_or_default();
    children.sort();
    children
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_and_watchers_act_in_a_node() {
    if !edgekeeper_only() {
        return;
    }
    let Some(_turn) = turn().await else { return };
    node_test(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let services = dir.path().join("services.json");
        write_atomically(
            &services,
            &web_records(&[("10.0.0.5", true), ("10.0.0.6", true), ("10.0.0.7", false)]),
        );
        let server = Server::start_with(&plugins_config(Some(&services)));
        let addr = server.addr();
        let client = client(&server).await;
        registrar_follows_its_source(&server, &client, &services).await;
        config_file_sync_renders_files(&server, &client, dir.path()).await;
        health_rollup_counts_the_node(&server, &client).await;

        // Removal unloads the plugin and clears its nodes; a second removal is refused.
        let removed = plugin(&["remove", "service-registrar", "--server", &addr]);
        assert!(removed.status.success(), "{}", text(&removed));
        assert!(!exists(&client, "/edgekeeper/plugins/service-registrar").await);
        let list = plugin(&["list", "--server", &addr]);
        assert!(list.status.success(), "{}", text(&list));
        assert!(
            !text(&list).contains("service-registrar"),
            "{}",
            text(&list)
        );
        assert!(text(&list).contains("health-rollup"), "{}", text(&list));
        let again = plugin(&["remove", "service-registrar", "--server", &addr]);
        assert!(!again.status.success(), "{}", text(&again));
        assert!(text(&again).contains("not installed"), "{}", text(&again));
        idle_status_stays_put(&client, "health-rollup").await;
    })
    .await;
}

async fn registrar_follows_its_source(server: &Server, client: &zk::Client, services: &Path) {
    install(
        &server.addr(),
        &wasm("service_registrar"),
        &example_dir("service-registrar").join("manifest.toml"),
    );
    let web = "/services/default/web";
    let both = vec!["10.0.0.5:8080".to_owned(), "10.0.0.6:8080".to_owned()];
    eventually(
        "both ready endpoints registered",
        || server.log_tail(),
        || async { (children(client, web).await == both).then_some(()) },
    )
    .await;
    let endpoint = json(client, &format!("{web}/10.0.0.5:8080"))
        .await
        .expect("endpoint JSON");
    assert_eq!(endpoint["address"], "10.0.0.5", "{endpoint}");
    assert_eq!(endpoint["port"], 8080, "{endpoint}");
    assert_eq!(endpoint["ready"], true, "{endpoint}");
    assert_eq!(endpoint["labels"]["app"], "web", "{endpoint}");
    let owner = json(client, web).await.expect("service JSON");
    assert_eq!(owner["source"], "static", "{owner}");

    // The source loses an endpoint: its registration goes, the other stays.
    write_atomically(
        services,
        &web_records(&[("10.0.0.5", true), ("10.0.0.7", false)]),
    );
    eventually(
        "the removed endpoint to be deregistered",
        || server.log_tail(),
        || async { (children(client, web).await == both[..1]).then_some(()) },
    )
    .await;
    // Two multis (the registrations, the removal), both committed; counters reach the
    // status node within a few seconds.
    let status = eventually(
        "two txns in the status",
        || server.log_tail(),
        || async {
            status(client, "service-registrar")
                .await
                .filter(|s| s["txns"].as_u64().is_some_and(|txns| txns >= 2))
        },
    )
    .await;
    assert_eq!(status["active"], true, "{status}");
    assert_eq!(status["txn-failures"], 0, "{status}");
}

async fn config_file_sync_renders_files(server: &Server, client: &zk::Client, dir: &Path) {
    let out = dir.join("config-out");
    std::fs::create_dir_all(&out).expect("make the granted directory");
    let text = std::fs::read_to_string(example_dir("config-file-sync").join("manifest.toml"))
        .expect("read the manifest");
    let granted = text
        .lines()
        .map(|line| match line.starts_with("host-dir") {
            true => format!("host-dir = \"{}\"", out.display()),
            false => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(granted, text, "the manifest has no host-dir to fill in");
    let manifest = manifest_file(dir, "config-file-sync.toml", &granted);
    install(&server.addr(), &wasm("config_file_sync"), &manifest);

    put(client, "/config/web/port", "8080").await;
    put(client, "/config/web/tls/cert.pem", "CERT").await;
    let port = out.join("port");
    let file_is = |path: PathBuf, want: &'static str| async move {
        (std::fs::read(&path).ok()? == want.as_bytes()).then_some(())
    };
    let context = || {
        let files: Vec<_> = std::fs::read_dir(&out)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name())
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "files in {}: {files:?}\n{}",
            out.display(),
            server.log_tail()
        )
    };
    eventually("port rendered", context, || file_is(port.clone(), "8080")).await;
    eventually("tls/cert.pem rendered", context, || {
        file_is(out.join("tls/cert.pem"), "CERT")
    })
    .await;
    bounded("set", client.set_data("/config/web/port", b"9090", None))
        .await
        .expect("set /config/web/port");
    eventually("port rewritten", context, || file_is(port.clone(), "9090")).await;
    bounded("delete", client.delete("/config/web/port", None))
        .await
        .expect("delete /config/web/port");
    eventually("port removed", context, || async {
        (!port.exists()).then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(out.join("tls/cert.pem")).ok().as_deref(),
        Some(&b"CERT"[..])
    );

    // A plugin reads as a client with its own identity: a node only its creator may read
    // is refused to it, and never reaches a file.
    let owner = crate::harness::client(server).await;
    bounded("auth", owner.auth("digest", b"ops:secret"))
        .await
        .expect("add digest auth");
    let private = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    bounded(
        "create",
        owner.create("/config/web/secret", b"hunter2", &private),
    )
    .await
    .expect("create /config/web/secret");
    eventually(
        "config-file-sync refused the private node",
        context,
        || async {
            status(client, "config-file-sync")
                .await
                .filter(|s| field(s, "error").contains("not authorised"))
        },
    )
    .await;
    assert!(
        !out.join("secret").exists(),
        "a plugin read a node its ACL denies it"
    );
}

async fn stat_version(client: &zk::Client, path: &str) -> i32 {
    let stat = bounded("stat", client.check_stat(path))
        .await
        .expect("stat");
    stat.unwrap_or_else(|| panic!("{path} vanished")).version
}

/// A plugin that is not called has nothing new to report: its status node is not written
/// again (a write is a replicated transaction) while two status refresh periods (5 s) pass.
/// The status is first waited on until it records the plugin's one write (`txns` ≥ 1):
/// a status written between the call and its commit is rightly refreshed once.
async fn idle_status_stays_put(client: &zk::Client, name: &str) {
    eventually(
        "the status records the plugin's write",
        String::new,
        || async {
            status(client, name)
                .await
                .filter(|s| s["txns"].as_u64().unwrap_or(0) >= 1)
        },
    )
    .await;
    let path = {
        let all = statuses(client, name).await;
        assert_eq!(all.len(), 1, "{all:?}");
        format!("/edgekeeper/plugins/{name}/status/{}", all[0].0)
    };
    let before = stat_version(client, &path).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = stat_version(client, &path).await;
    assert_eq!(
        before,
        after,
        "{path} was rewritten {} times while {name} was idle: {:?}",
        after - before,
        json(client, &path).await
    );
}

async fn health_rollup_counts_the_node(server: &Server, client: &zk::Client) {
    install(
        &server.addr(),
        &wasm("health_rollup"),
        &example_dir("health-rollup").join("manifest.toml"),
    );
    let members = children(client, "/edgekeeper/cluster/members").await;
    assert_eq!(
        members.len(),
        1,
        "the node is not a member once plugins run: {members:?}"
    );
    let health = eventually(
        "/edgekeeper/cluster/health",
        || server.log_tail(),
        || async { json(client, "/edgekeeper/cluster/health").await },
    )
    .await;
    assert_eq!(health["members"], 1, "{health}");
    assert_eq!(health["names"], serde_json::json!(members), "{health}");
    let member = json(
        client,
        &format!("/edgekeeper/cluster/members/{}", members[0]),
    )
    .await
    .expect("member JSON");
    assert_eq!(member["client"], server.addr(), "{member}");
}

// ---------------------------------------------------------------------------------------
// Hostile plugins through one real node.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_contained_and_the_node_keeps_serving() {
    if !edgekeeper_only() {
        return;
    }
    let Some(_turn) = turn().await else { return };
    node_test(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start_with(&plugins_config(None));
        let addr = server.addr();
        let client = client(&server).await;
        put(&client, "/hostile/a", "x").await;
        // The spinning watcher gets 3 s per call (not 100 ms), so it spins for a while
        // each time, and clients are served meanwhile.
        let spin_text = std::fs::read_to_string(hostile_dir("spin").join("manifest.toml"))
            .expect("read the manifest");
        assert!(
            !spin_text.contains("timeout-ms"),
            "the spin manifest sets its own deadline"
        );
        let spin_text = match spin_text.contains("[limits]") {
            true => spin_text.replace("[limits]", "[limits]\ntimeout-ms = 3000"),
            false => format!("{spin_text}\n[limits]\ntimeout-ms = 3000\n"),
        };
        let spin = manifest_file(dir.path(), "spin.toml", &spin_text);
        install(&addr, &wasm("hostile_spin"), &spin);
        for (name, crate_name) in [
            ("out-of-grant", "hostile_out_of_grant"),
            ("trap", "hostile_trap"),
            ("memory-hog", "hostile_memory_hog"),
        ] {
            install(
                &addr,
                &wasm(crate_name),
                &hostile_dir(name).join("manifest.toml"),
            );
        }
        put(
            &client,
            "/scaling/bad/spec",
            r#"{"policy":"hostile-trap","min-replicas":1,"max-replicas":3}"#,
        )
        .await;
        put(
            &client,
            "/scaling/hog/spec",
            r#"{"policy":"hostile-memory-hog","min-replicas":1,"max-replicas":3}"#,
        )
        .await;

        // Until the spinner is suspended (5 timeouts in a row), clients keep being served.
        let mut served = 0;
        let spin = eventually(
            "hostile-spin suspended",
            || server.log_tail(),
            || {
                served += 1;
                let client = &client;
                let path = format!("/alive-{served}");
                async move {
                    bounded("create", client.create(&path, b"yes", OPEN))
                        .await
                        .unwrap_or_else(|error| {
                            panic!("create {path} while a plugin spins: {error}")
                        });
                    let (data, _) = bounded("get", client.get_data(&path)).await.expect("get");
                    assert_eq!(data, b"yes");
                    status(client, "hostile-spin")
                        .await
                        .filter(|s| s["state"] == "suspended")
                }
            },
        )
        .await;
        assert!(field(&spin, "error").contains("timed out"), "{spin}");
        assert!(
            spin["runtime"]["timeouts"].as_u64().is_some_and(|n| n >= 5),
            "{spin}"
        );

        let hostile_status = |name: &'static str, needle: &'static str| {
            let client = &client;
            let server = &server;
            async move {
                eventually(
                    &format!("{name}'s status error to mention {needle:?}"),
                    || server.log_tail(),
                    || async move {
                        status(client, name)
                            .await
                            .filter(|s| field(s, "error").contains(needle))
                    },
                )
                .await
            }
        };
        hostile_status("hostile-trap", "hostile trap plugin deciding bad").await;
        hostile_status("hostile-memory-hog", "out of memory").await;
        hostile_status("hostile-out-of-grant", "out of scope").await;
        let grant = status(&client, "hostile-out-of-grant")
            .await
            .expect("a status");
        assert!(field(&grant, "error").contains("/forbidden/x"), "{grant}");

        assert!(
            !exists(&client, "/forbidden/x").await,
            "a write outside the grant committed"
        );
        assert!(
            !exists(&client, "/forbidden").await,
            "a write outside the grant committed"
        );
        for workload in ["bad", "hog"] {
            let path = format!("/scaling/{workload}/decision");
            assert!(
                !exists(&client, &path).await,
                "a failed policy decided {path}"
            );
        }
        let body = metrics(server.admin_addr()).await;
        for (family, plugin) in [
            ("edgekeeper_plugin_timeouts_total", "hostile-spin"),
            ("edgekeeper_plugin_traps_total", "hostile-trap"),
            ("edgekeeper_plugin_oom_total", "hostile-memory-hog"),
            ("edgekeeper_plugin_errors_total", "hostile-out-of-grant"),
        ] {
            let value = plugin_sample(&body, family, plugin);
            assert!(
                value.is_some_and(|n| n >= 1.0),
                "{family} of {plugin}: {value:?}\n{body}"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Distribution across a real 3-node cluster.

/// `[plugins]` of the cluster test (the cluster puts extra lines before `[log]`).
const CLUSTER_PLUGINS: &str = "[plugins]\nscaling_interval_ms = 200\nregistrar_interval_ms = 200";

/// Statuses of `name` from nodes in `ids` only.
async fn statuses_of(client: &zk::Client, name: &str, ids: &[NodeId]) -> Vec<(NodeId, Value)> {
    statuses(client, name)
        .await
        .into_iter()
        .filter_map(|(node, status)| Some((node.parse::<NodeId>().ok()?, status)))
        .filter(|(node, _)| ids.contains(node))
        .collect()
}

/// Waits until every node in `ids` reports plugin `name` loaded at `sha256`.
async fn wait_loaded_everywhere(
    cluster: &Cluster,
    client: &zk::Client,
    name: &str,
    sha256: &str,
    ids: &[NodeId],
) -> Vec<(NodeId, Value)> {
    eventually(
        &format!("{name} {sha256} on nodes {ids:?}"),
        || cluster.logs(),
        || async {
            let all = statuses_of(client, name, ids).await;
            let loaded = all.len() == ids.len()
                && all
                    .iter()
                    .all(|(_, s)| s["sha256"] == sha256 && s["state"] != "failed");
            loaded.then_some(all)
        },
    )
    .await
}

/// Waits until exactly one node of `ids` runs plugin `name` actively; returns it.
async fn the_active_node(
    cluster: &Cluster,
    client: &zk::Client,
    name: &str,
    ids: &[NodeId],
) -> NodeId {
    eventually(
        &format!("exactly one active {name} among {ids:?}"),
        || cluster.logs(),
        || async {
            let all = statuses_of(client, name, ids).await;
            let active: Vec<NodeId> = all
                .iter()
                .filter(|(_, s)| s["active"] == true)
                .map(|(n, _)| *n)
                .collect();
            let standby = all.iter().filter(|(_, s)| s["state"] == "standby").count();
            (all.len() == ids.len() && active.len() == 1 && standby == ids.len() - 1)
                .then(|| active[0])
        },
    )
    .await
}

async fn health_members(cluster: &Cluster, client: &zk::Client, members: usize) -> Value {
    eventually(
        &format!("{members} members in /edgekeeper/cluster/health"),
        || cluster.logs(),
        || async {
            json(client, "/edgekeeper/cluster/health")
                .await
                .filter(|h| h["members"] == members)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_ship_to_every_node_upgrade_and_follow_the_leader() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let mut cluster = Cluster::start(Spec::new(3, 0).with_config(CLUSTER_PLUGINS)).await;
        let ids = cluster.ids();
        let client = cluster.client_any(&ids).await;
        let first = cluster.client_addr(ids[0]).to_string();

        // Installed once, through one node: every node loads it; only the leader runs it.
        install(
            &first,
            &wasm("health_rollup"),
            &example_dir("health-rollup").join("manifest.toml"),
        );
        let rollup_sha = sha256_hex(&wasm("health_rollup"));
        wait_loaded_everywhere(&cluster, &client, "health-rollup", &rollup_sha, &ids).await;
        health_members(&cluster, &client, 3).await;
        let leader = cluster.leader().await;
        assert_eq!(
            the_active_node(&cluster, &client, "health-rollup", &ids).await,
            leader
        );

        upgrade_in_place(&cluster, &client, &first, &ids).await;

        // The leader dies: the new leader runs the leader plugins.
        cluster.kill9(leader);
        let survivors: Vec<NodeId> = ids.iter().copied().filter(|&id| id != leader).collect();
        let new_leader = cluster.leader_among(&survivors).await;
        health_members(&cluster, &client, 2).await;
        assert_eq!(
            the_active_node(&cluster, &client, "health-rollup", &survivors).await,
            new_leader
        );
        eventually(
            "decisions from the new leader",
            || cluster.logs(),
            || async {
                json(&client, "/scaling/web/decision")
                    .await
                    .filter(|d| d["node"] == new_leader)
            },
        )
        .await;

        // Removal: every node unloads it and its nodes go.
        let survivor = cluster.client_addr(new_leader).to_string();
        let removed = plugin(&["remove", "health-rollup", "--server", &survivor]);
        assert!(
            removed.status.success(),
            "{}\n{}",
            text(&removed),
            cluster.logs()
        );
        for &id in &survivors {
            eventually(
                &format!("node {id} to unload health-rollup"),
                || cluster.logs(),
                || async { cluster.log(id).contains("plugin removed").then_some(()) },
            )
            .await;
        }
        // Every node unloaded it: nothing may write its status again.
        assert!(
            !exists(&client, "/edgekeeper/plugins/health-rollup").await,
            "a removed plugin's nodes are back: {:?}",
            statuses(&client, "health-rollup").await
        );
        let list = plugin(&["list", "--server", &survivor]);
        assert!(
            list.status.success() && !text(&list).contains("health-rollup"),
            "{}",
            text(&list)
        );
        assert!(text(&list).contains("policy 2.0.0"), "{}", text(&list));
    })
    .await;
}

/// Installs policy `policy` as hpa-policy (1.0.0), then replaces it with hysteresis-policy
/// (2.0.0): every node moves to the new component, and the leader's decisions come from it.
async fn upgrade_in_place(cluster: &Cluster, client: &zk::Client, server: &str, ids: &[NodeId]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = |version: &str| {
        manifest_file(
            dir.path(),
            &format!("policy-{version}.toml"),
            &format!("name = \"policy\"\nversion = \"{version}\"\nworld = \"scaling-policy\"\nread-prefixes = [\"/scaling\"]\n"),
        )
    };
    put(client, "/scaling/web/spec", r#"{"policy":"policy","min-replicas":1,"max-replicas":10,"metrics":[{"name":"cpu","target-kind":"utilization","target":50}]}"#).await;
    put(client, "/scaling/web/current", r#"{"replicas":2}"#).await;
    for pod in ["web-a", "web-b"] {
        put(
            client,
            &format!("/scaling/web/pods/{pod}"),
            r#"{"ready":true,"metrics":{"cpu":100}}"#,
        )
        .await;
    }
    let decided = |version: &'static str, desired: u32| async move {
        eventually(
            &format!("a decision by policy {version}"),
            || cluster.logs(),
            || async {
                json(client, "/scaling/web/decision")
                    .await
                    .filter(|d| d["policy-version"] == version && d["desired-replicas"] == desired)
            },
        )
        .await
    };

    install(server, &wasm("hpa_policy"), &manifest("1.0.0"));
    let v1 = sha256_hex(&wasm("hpa_policy"));
    wait_loaded_everywhere(cluster, client, "policy", &v1, ids).await;
    decided("1.0.0", 4).await; // hpa: 100 % of 50 % on 2 pods → 4

    install(server, &wasm("hysteresis_policy"), &manifest("2.0.0"));
    let v2 = sha256_hex(&wasm("hysteresis_policy"));
    assert_ne!(v1, v2);
    let loaded = wait_loaded_everywhere(cluster, client, "policy", &v2, ids).await;
    for (node, status) in &loaded {
        assert_eq!(status["version"], "2.0.0", "node {node}: {status}");
    }
    decided("2.0.0", 3).await; // hysteresis: above 80 % → one more than 2
    let blobs = children(client, "/edgekeeper/plugins/policy/blobs").await;
    assert_eq!(blobs, vec![v2], "the old version's chunks were kept");
}

//! Wasm plugins end to end: components compiled from `guest-plugins/`, the `edgekeeper
//! plugin` tooling, and real nodes that load them from the tree, call them and act on what
//! they return. Edgekeeper only (ZooKeeper has no plugins).

use crate::cluster::{bounded_test, turn, Cluster, Spec};
use crate::guests::{guest_dir, install, text, wasm};
use crate::harness::{Flavor, Server};
use crate::load::OPEN;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

/// Compiling a component with a debug build of the node can take a while on a busy box.
const PLUGIN_WAIT: Duration = Duration::from_secs(180);

fn edgekeeper_only() -> bool {
    if Flavor::from_env() != Flavor::Edgekeeper {
        eprintln!("skipped: plugins are edgekeeper's");
        return false;
    }
    true
}

/// `edgekeeper plugin <args> <paths>`.
fn plugin(args: &[&str], paths: &[&Path]) -> Output {
    let all: Vec<&OsStr> = args
        .iter()
        .map(OsStr::new)
        .chain(paths.iter().map(|path| path.as_os_str()))
        .collect();
    crate::guests::plugin(&all)
}

/// Polls `probe` until it returns `Some`, for up to [`PLUGIN_WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PLUGIN_WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PLUGIN_WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn json(client: &zk::Client, path: &str) -> Option<serde_json::Value> {
    let (data, _) = client.get_data(path).await.ok()?;
    serde_json::from_slice(&data).ok()
}

async fn put(client: &zk::Client, path: &str, data: &str) {
    let mut at = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        at.push('/');
        at.push_str(part);
        let bytes = if i + 1 == parts.len() {
            data.as_bytes()
        } else {
            b""
        };
        match client.create(&at, bytes, OPEN).await {
            Ok(_) => {}
            Err(zk::Error::NodeExists) if i + 1 == parts.len() => {
                client.set_data(&at, bytes, None).await.expect("set");
            }
            Err(zk::Error::NodeExists) => {}
            Err(err) => panic!("create {at}: {err}"),
        }
    }
}

/// A copy of `manifest` with `edit` applied to its text, in `dir`.
fn manifest_copy(manifest: &Path, dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(manifest).expect("read the manifest");
    let path = dir.join(format!(
        "{}-{}.toml",
        manifest
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("m"),
        std::process::id()
    ));
    std::fs::write(&path, edit(text)).expect("write the manifest copy");
    path
}

#[test]
fn plugin_test_passes_every_example_fixture_and_catches_a_wrong_expectation() {
    if !edgekeeper_only() {
        return;
    }
    let examples = [
        ("hpa-policy", "hpa_policy"),
        ("hysteresis-policy", "hysteresis_policy"),
        ("service-registrar", "service_registrar"),
        ("config-file-sync", "config_file_sync"),
        ("health-rollup", "health_rollup"),
    ];
    let mut ran = 0;
    for (dir, crate_name) in examples {
        let component = wasm(crate_name);
        let fixtures = guest_dir(&format!("examples/{dir}/fixtures"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .expect("fixtures dir")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{dir} has no fixtures");
        for fixture in files {
            let output = plugin(&["test", "--input"], &[&fixture, &component]);
            assert!(
                output.status.success(),
                "{}: {}",
                fixture.display(),
                text(&output)
            );
            let calls: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&fixture).expect("fixture")).expect("json");
            let lines = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|line| line.starts_with("{\"call\""))
                .count();
            assert_eq!(
                lines,
                calls["calls"].as_array().map_or(0, Vec::len),
                "{}",
                fixture.display()
            );
            ran += 1;
        }
    }
    assert!(ran >= 5);
    // A fixture whose expectation is wrong fails, naming the difference.
    let dir = tempfile::tempdir().expect("tempdir");
    let original = guest_dir("examples/hpa-policy/fixtures/scale-up.json");
    let wrong = std::fs::read_to_string(&original)
        .expect("fixture")
        .replace(
            "\"desired-replicas\": 4, \"recommendation\": 4",
            "\"desired-replicas\": 5",
        );
    let fixture = dir.path().join("wrong.json");
    std::fs::write(&fixture, wrong).expect("write");
    let manifest = guest_dir("examples/hpa-policy/manifest.toml");
    let output = plugin(
        &["test", "--manifest"],
        &[
            &manifest,
            Path::new("--input"),
            &fixture,
            &wasm("hpa_policy"),
        ],
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("expected decision desired-replicas = 5, got 4"),
        "{}",
        text(&output)
    );
}

#[test]
fn install_refuses_a_wrong_world_and_a_wrong_hash_before_touching_the_cluster() {
    if !edgekeeper_only() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // No server listens here: the checks must fail first.
    let server = "127.0.0.1:1";
    let watcher = manifest_copy(
        &guest_dir("examples/health-rollup/manifest.toml"),
        dir.path(),
        |t| t,
    );
    let output = plugin(
        &["install", "--server", server, "--manifest"],
        &[&watcher, &wasm("hpa_policy")],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("wrong world")
            && message.contains("on-changes")
            && message.contains("scaling-policy"),
        "{message}"
    );
    let hashed = manifest_copy(
        &guest_dir("examples/hpa-policy/manifest.toml"),
        dir.path(),
        |t| format!("sha256 = \"{}\"\n{t}", "0".repeat(64)),
    );
    let output = plugin(
        &["install", "--server", server, "--manifest"],
        &[&hashed, &wasm("hpa_policy")],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains(&"0".repeat(64)) && message.contains("has sha256"),
        "{message}"
    );
    // A policy that asks for a newer WIT than the host offers.
    let newer = manifest_copy(
        &guest_dir("examples/hpa-policy/manifest.toml"),
        dir.path(),
        |t| format!("wit = \"0.2.0\"\n{t}"),
    );
    let output = plugin(
        &["test", "--manifest"],
        &[
            &newer,
            Path::new("--input"),
            &guest_dir("examples/hpa-policy/fixtures/scale-up.json"),
            &wasm("hpa_policy"),
        ],
    );
    assert!(!output.status.success());
    assert!(text(&output).contains("@0.2.0"), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_run_in_a_real_node() {
    if !edgekeeper_only() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let services = dir.path().join("services.json");
    std::fs::write(
        &services,
        r#"[{"namespace":"default","name":"web","labels":{"app":"web"},
            "endpoints":[{"address":"10.0.0.5","port":8080,"ready":true},
                         {"address":"10.0.0.6","port":8080,"ready":true}]}]"#,
    )
    .expect("write services");
    let server = Server::start_with(&format!(
        "plugins = {{ scaling_interval_ms = 200, registrar_interval_ms = 200, sources = [{{ name = \"static\", file = \"{}\" }}] }}",
        services.display()
    ));
    let addr = server.addr();
    let client = crate::harness::client(&server).await;
    install(
        &addr,
        &wasm("hpa_policy"),
        &guest_dir("examples/hpa-policy/manifest.toml"),
    );
    install(
        &addr,
        &wasm("hysteresis_policy"),
        &guest_dir("examples/hysteresis-policy/manifest.toml"),
    );
    install(
        &addr,
        &wasm("service_registrar"),
        &guest_dir("examples/service-registrar/manifest.toml"),
    );
    install(
        &addr,
        &wasm("health_rollup"),
        &guest_dir("examples/health-rollup/manifest.toml"),
    );
    let out_dir = dir.path().join("config-out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let sync_manifest = manifest_copy(
        &guest_dir("examples/config-file-sync/manifest.toml"),
        dir.path(),
        |t| {
            t.replace(
                "/var/lib/edgekeeper/config/web",
                &out_dir.display().to_string(),
            )
        },
    );
    install(&addr, &wasm("config_file_sync"), &sync_manifest);

    // hpa-policy: two pods at 100 % of a 50 % target → 4 replicas.
    put(&client, "/scaling/web/spec", r#"{"policy":"hpa-policy","min-replicas":1,"max-replicas":10,"metrics":[{"name":"cpu","target-kind":"utilization","target":50}]}"#).await;
    put(&client, "/scaling/web/current", r#"{"replicas":2}"#).await;
    put(
        &client,
        "/scaling/web/pods/web-a",
        r#"{"ready":true,"metrics":{"cpu":100}}"#,
    )
    .await;
    put(
        &client,
        "/scaling/web/pods/web-b",
        r#"{"ready":true,"metrics":{"cpu":100}}"#,
    )
    .await;
    let decision = eventually("a scaling decision", || async {
        json(&client, "/scaling/web/decision")
            .await
            .filter(|d| d["desired-replicas"] == 4)
    })
    .await;
    assert!(
        decision["reason"]
            .as_str()
            .is_some_and(|r| r.contains("cpu")),
        "{decision}"
    );
    assert_eq!(decision["policy"], "hpa-policy");

    // hysteresis-policy: 90 % is above its 80 % threshold → one more replica.
    put(&client, "/scaling/api/spec", r#"{"policy":"hysteresis-policy","min-replicas":1,"max-replicas":5,"metrics":[{"name":"cpu","target-kind":"utilization","target":70}]}"#).await;
    put(&client, "/scaling/api/current", r#"{"replicas":3}"#).await;
    put(
        &client,
        "/scaling/api/pods/api-a",
        r#"{"ready":true,"metrics":{"cpu":90}}"#,
    )
    .await;
    let decision = eventually("a hysteresis decision", || async {
        json(&client, "/scaling/api/decision")
            .await
            .filter(|d| d["desired-replicas"] == 4)
    })
    .await;
    assert!(
        decision["reason"]
            .as_str()
            .is_some_and(|r| r.contains("> 80%")),
        "{decision}"
    );

    // service-registrar: both endpoints registered; one removed from the source → gone.
    let endpoint = eventually("registered endpoints", || async {
        let children = client.list_children("/services/default/web").await.ok()?;
        (children.len() == 2).then_some(())?;
        json(&client, "/services/default/web/10.0.0.5:8080").await
    })
    .await;
    assert_eq!(endpoint["port"], 8080);
    std::fs::write(
        &services,
        r#"[{"namespace":"default","name":"web","endpoints":[{"address":"10.0.0.5","port":8080,"ready":true}]}]"#,
    )
    .expect("rewrite services");
    eventually("the removed endpoint to go", || async {
        let children = client.list_children("/services/default/web").await.ok()?;
        (children == vec!["10.0.0.5:8080".to_owned()]).then_some(())
    })
    .await;

    // health-rollup: the node registers itself; the summary follows.
    let health = eventually("the health summary", || async {
        json(&client, "/edgekeeper/cluster/health").await
    })
    .await;
    assert_eq!(health["members"], 1, "{health}");

    // config-file-sync: nodes become files, changes follow, deletions remove them.
    put(&client, "/config/web/port", "8080").await;
    put(&client, "/config/web/tls/cert.pem", "CERT").await;
    let port = out_dir.join("port");
    let deadline = Instant::now() + PLUGIN_WAIT;
    loop {
        let rendered = std::fs::read(&port).ok().as_deref() == Some(&b"8080"[..])
            && std::fs::read(out_dir.join("tls/cert.pem")).ok().as_deref() == Some(&b"CERT"[..]);
        if rendered {
            break;
        }
        if Instant::now() > deadline {
            let status = json(&client, "/edgekeeper/plugins/config-file-sync/status/1").await;
            panic!("the files were not rendered; the plugin's status: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .set_data("/config/web/port", b"9090", None)
        .await
        .expect("set");
    eventually("the changed file", || async {
        (std::fs::read(&port).ok()? == b"9090").then_some(())
    })
    .await;
    client
        .delete("/config/web/port", None)
        .await
        .expect("delete");
    eventually("the removed file", || async {
        (!port.exists()).then_some(())
    })
    .await;

    // Every plugin reports itself running on node 1, and the metrics show the calls.
    for name in [
        "hpa-policy",
        "hysteresis-policy",
        "service-registrar",
        "health-rollup",
        "config-file-sync",
    ] {
        let status = json(&client, &format!("/edgekeeper/plugins/{name}/status/1")).await;
        let status = status.unwrap_or_else(|| panic!("no status for {name}"));
        assert_eq!(status["state"], "running", "{name}: {status}");
    }
    let metrics = http_get(server.admin_addr(), "/metrics");
    assert!(
        metrics.contains("plugin_calls_total{plugin=\"hpa-policy\"}")
            && metrics.contains("plugin_call_duration_seconds_count{plugin=\"health-rollup\"}"),
        "{metrics}"
    );
    let list = plugin(&["list", "--server", &addr], &[]);
    assert!(
        list.status.success() && text(&list).contains("hpa-policy 0.1.0 scaling-policy"),
        "{}",
        text(&list)
    );
    // Removal unloads it everywhere and clears the tree.
    let removed = plugin(&["remove", "hpa-policy", "--server", &addr], &[]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert_eq!(
        client
            .check_stat("/edgekeeper/plugins/hpa-policy")
            .await
            .expect("stat"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_stopped_and_the_node_keeps_serving() {
    if !edgekeeper_only() {
        return;
    }
    let server = Server::start_with("plugins = { scaling_interval_ms = 200 }");
    let addr = server.addr();
    let client = crate::harness::client(&server).await;
    put(&client, "/hostile/a", "x").await;
    for (name, krate) in [
        ("spin", "hostile_spin"),
        ("out-of-grant", "hostile_out_of_grant"),
        ("trap", "hostile_trap"),
        ("memory-hog", "hostile_memory_hog"),
    ] {
        install(
            &addr,
            &wasm(krate),
            &guest_dir(&format!("hostile/{name}/manifest.toml")),
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
    let status = |name: &'static str, needle: &'static str| {
        let client = &client;
        async move {
            eventually(
                &format!("{name}'s status to mention {needle:?}"),
                || async {
                    let status =
                        json(client, &format!("/edgekeeper/plugins/{name}/status/1")).await?;
                    status.to_string().contains(needle).then_some(status)
                },
            )
            .await
        }
    };
    status("hostile-spin", "timed out").await;
    let trap = status("hostile-trap", "hostile trap plugin deciding bad").await;
    assert_ne!(trap["state"], "running", "{trap}");
    status("hostile-memory-hog", "memory").await;
    status("hostile-out-of-grant", "out of scope: /forbidden/x").await;
    // The node answers clients throughout, and nothing was written outside the grant.
    for i in 0..20 {
        let path = format!("/alive-{i}");
        client
            .create(&path, b"yes", OPEN)
            .await
            .expect("create while plugins misbehave");
        assert_eq!(client.get_data(&path).await.expect("get").0, b"yes");
    }
    assert_eq!(client.check_stat("/forbidden/x").await.expect("stat"), None);
    assert_eq!(
        client
            .check_stat("/scaling/bad/decision")
            .await
            .expect("stat"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_ship_to_every_node_upgrade_in_place_and_leader_plugins_move() {
    let Some(_turn) = turn().await else { return };
    bounded_test(async {
        let cluster =
            Cluster::start(Spec::new(3, 0).with_config("plugins = { scaling_interval_ms = 500 }"))
                .await;
        let ids = cluster.ids();
        let connect = cluster.connect_string(&ids);
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(20))
            .connect(&connect)
            .await
            .expect("connect");
        let first = cluster.client_addr(ids[0]).to_string();
        // Installed once, through one node: every node loads it.
        install(
            &first,
            &wasm("health_rollup"),
            &guest_dir("examples/health-rollup/manifest.toml"),
        );
        let statuses = |name: &'static str| {
            let client = &client;
            async move {
                let dir = format!("/edgekeeper/plugins/{name}/status");
                let mut out = Vec::new();
                for node in client.list_children(&dir).await.unwrap_or_default() {
                    if let Some(status) = json(client, &format!("{dir}/{node}")).await {
                        out.push((node, status));
                    }
                }
                out
            }
        };
        // `install` waited for every node (it asks `conf` how many there are).
        let loaded = statuses("health-rollup").await;
        assert_eq!(loaded.len(), 3, "{loaded:?}");
        eventually("three members in the health summary", || async {
            json(&client, "/edgekeeper/cluster/health")
                .await
                .filter(|h| h["members"] == 3)
        })
        .await;
        let leader = cluster.leader().await;
        let active: Vec<String> = statuses("health-rollup")
            .await
            .into_iter()
            .filter(|(_, s)| s["active"] == true)
            .map(|(node, _)| node)
            .collect();
        assert_eq!(
            active,
            vec![leader.to_string()],
            "only the leader runs a leader plugin"
        );

        // An upgrade: another component under the same name replaces the old on every node.
        let dir = tempfile::tempdir().expect("tempdir");
        let as_policy = |source: &str| {
            manifest_copy(&guest_dir(source), dir.path(), |t| {
                t.replace("name = \"hpa-policy\"", "name = \"policy\"")
                    .replace("name = \"hysteresis-policy\"", "name = \"policy\"")
            })
        };
        let v1 = as_policy("examples/hpa-policy/manifest.toml");
        install(&first, &wasm("hpa_policy"), &v1);
        let v2 = as_policy("examples/hysteresis-policy/manifest.toml");
        install(&first, &wasm("hysteresis_policy"), &v2);
        let sha2 = ek_sha(&wasm("hysteresis_policy"));
        eventually("every node on the new version", || async {
            let all = statuses("policy").await;
            (all.len() == 3 && all.iter().all(|(_, s)| s["sha256"] == sha2.as_str())).then_some(())
        })
        .await;

        // The leader dies: the new leader runs the leader plugin, which records 2 members.
        let mut cluster = cluster;
        cluster.kill9(leader);
        let survivors: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
        let new_leader = cluster.leader_among(&survivors).await;
        eventually("the health summary after the failover", || async {
            json(&client, "/edgekeeper/cluster/health")
                .await
                .filter(|h| h["members"] == 2)
        })
        .await;
        let active = eventually("exactly one active instance", || async {
            let active: Vec<String> = statuses("health-rollup")
                .await
                .into_iter()
                .filter(|(node, s)| s["active"] == true && *node != leader.to_string())
                .map(|(node, _)| node)
                .collect();
            (active.len() == 1).then_some(active)
        })
        .await;
        assert_eq!(active, vec![new_leader.to_string()]);

        // Removal: every node unloads it, its nodes go.
        let survivor = cluster.client_addr(new_leader).to_string();
        let removed = plugin(&["remove", "health-rollup", "--server", &survivor], &[]);
        assert!(removed.status.success(), "{}", text(&removed));
        assert_eq!(
            client
                .check_stat("/edgekeeper/plugins/health-rollup")
                .await
                .expect("stat"),
            None
        );
    })
    .await;
}

fn ek_sha(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints a hash")
        .to_owned()
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("send");
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body
}

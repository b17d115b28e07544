//! The host against real components compiled from `guest-plugins/`: each world, the
//! install-time checks, the sandbox's limits, the failure policy and the cache.

mod support;

use ek_plugin::fixture::{MemEnv, MemTree};
use ek_plugin::{
    CallError, ChangeBatch, HostEnv, Metric, Plugin, PluginError, Runtime, RuntimeConfig,
    TargetKind, Workload,
};
use std::sync::Arc;
use std::time::Duration;
use support::{manifest, wasm};

fn runtime(cache: Option<&std::path::Path>) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: cache.map(|dir| dir.to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn env_with(nodes: &[(&str, &str)]) -> Arc<dyn HostEnv> {
    let mut tree = MemTree::new();
    for (path, data) in nodes {
        tree.seed(path, data.as_bytes().to_vec(), false)
            .expect("seed");
    }
    Arc::new(MemEnv::new(tree))
}

fn workload() -> Workload {
    Workload {
        namespace: "default".into(),
        name: "web".into(),
        current_replicas: 2,
        min_replicas: 1,
        max_replicas: 10,
        pods: Vec::new(),
        metrics: vec![Metric {
            name: "cpu".into(),
            target_kind: TargetKind::Utilization,
            target: 50.0,
            per_pod: vec![
                ek_plugin::PodValue {
                    pod: "a".into(),
                    value: 100.0,
                },
                ek_plugin::PodValue {
                    pod: "b".into(),
                    value: 100.0,
                },
            ],
            value: None,
        }],
        recent: Vec::new(),
        settings: Default::default(),
        now_ms: 1_000_000,
    }
}

fn batch() -> ChangeBatch {
    ChangeBatch {
        snapshot: true,
        zxid: 1,
        changes: Vec::new(),
    }
}

#[test]
fn each_world_loads_and_runs() {
    let rt = runtime(None);
    let env = env_with(&[("/edgekeeper/cluster/members/1", r#"{"state":"leader"}"#)]);
    let policy = rt
        .load(&manifest("examples/hpa-policy"), &wasm("hpa_policy"))
        .expect("load");
    let (decision, _) = Plugin::new(policy)
        .decide(&env, &workload())
        .expect("decide");
    assert_eq!(decision.desired_replicas, 4);
    let watcher = rt
        .load(&manifest("examples/health-rollup"), &wasm("health_rollup"))
        .expect("load");
    let out = Plugin::new(watcher)
        .on_changes(&env, &batch())
        .expect("on-changes");
    assert_eq!(out.ops.len(), 1, "{:?}", out.ops);
    assert_eq!(out.ops[0].path(), "/edgekeeper/cluster/health");
    let registrar = rt
        .load(
            &manifest("examples/service-registrar"),
            &wasm("service_registrar"),
        )
        .expect("load");
    let records = vec![ek_plugin::ServiceRecord {
        namespace: "default".into(),
        name: "web".into(),
        endpoints: vec![ek_plugin::Endpoint {
            address: "10.0.0.1".into(),
            port: 80,
            ready: true,
            node: None,
        }],
        labels: Default::default(),
    }];
    let out = Plugin::new(registrar)
        .reconcile(&env, "static", &records)
        .expect("reconcile");
    assert_eq!(out.ops.len(), 4, "{:?}", out.ops);
}

#[test]
fn install_time_checks_refuse_with_clear_errors() {
    let rt = runtime(None);
    // A policy presented as a watcher.
    let mut wrong = manifest("examples/health-rollup");
    wrong.name = "x".into();
    let err = rt.load(&wrong, &wasm("hpa_policy")).err().expect("refused");
    assert!(matches!(err, PluginError::WrongWorld(_)), "{err}");
    assert!(err.to_string().contains("on-changes"), "{err}");
    // Filesystem access without a [files] grant.
    let mut no_grant = manifest("examples/config-file-sync");
    no_grant.files = None;
    let err = rt
        .load(&no_grant, &wasm("config_file_sync"))
        .err()
        .expect("refused");
    assert!(matches!(err, PluginError::Import(_)), "{err}");
    assert!(err.to_string().contains("wasi:filesystem"), "{err}");
    // Bytes that are not the manifest's.
    let mut hashed = manifest("examples/hpa-policy");
    hashed.sha256 = Some("0".repeat(64));
    let err = rt
        .load(&hashed, &wasm("hpa_policy"))
        .err()
        .expect("refused");
    assert!(matches!(err, PluginError::Hash { .. }), "{err}");
    // A newer WIT than this host offers.
    let mut newer = manifest("examples/hpa-policy");
    newer.wit = "0.2.0".into();
    let err = rt.load(&newer, &wasm("hpa_policy")).err().expect("refused");
    assert!(err.to_string().contains("@0.2.0"), "{err}");
    // Not a component at all.
    let err = rt
        .load(&manifest("examples/hpa-policy"), b"\0asm\x01\0\0\0")
        .err()
        .expect("refused");
    assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
}

#[test]
fn a_runaway_plugin_times_out_backs_off_and_is_suspended() {
    let rt = runtime(None);
    let spin = rt
        .load(&manifest("hostile/spin"), &wasm("hostile_spin"))
        .expect("load");
    let mut plugin = Plugin::new(spin);
    let env = env_with(&[]);
    let mut timeouts = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        match plugin.on_changes(&env, &batch()) {
            Err(CallError::Timeout(_)) => timeouts += 1,
            Err(CallError::Backoff { retry_in }) => std::thread::sleep(retry_in),
            Err(CallError::Suspended { reason }) => {
                assert!(reason.contains("timed out"), "{reason}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "never suspended");
    }
    assert_eq!(timeouts, ek_plugin::SUSPEND_AFTER);
    assert_eq!(plugin.status().state, "suspended");
    assert_eq!(plugin.stats().timeouts, u64::from(ek_plugin::SUSPEND_AFTER));
    plugin.resume();
    assert!(matches!(
        plugin.on_changes(&env, &batch()),
        Err(CallError::Timeout(_))
    ));
}

#[test]
fn traps_and_memory_exhaustion_are_contained() {
    let rt = runtime(None);
    let env = env_with(&[]);
    let trap = rt
        .load(&manifest("hostile/trap"), &wasm("hostile_trap"))
        .expect("load");
    match Plugin::new(trap).decide(&env, &workload()) {
        Err(CallError::Trap { message }) => {
            assert!(
                message.contains("hostile trap plugin deciding web"),
                "{message}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let hog = rt
        .load(&manifest("hostile/memory-hog"), &wasm("hostile_memory_hog"))
        .expect("load");
    match Plugin::new(hog.clone()).decide(&env, &workload()) {
        Err(CallError::OutOfMemory(_)) | Err(CallError::Trap { .. }) => {}
        other => panic!("expected the hog to be stopped, got {other:?}"),
    }
    // Asking politely (try_reserve): the allocation fails inside the guest, which reports it.
    let mut polite = hog.manifest().clone();
    polite.config.insert("mode".into(), "try".into());
    let polite = rt.reload(&hog, polite).expect("reload");
    match Plugin::new(polite).decide(&env, &workload()) {
        Err(CallError::Plugin(message)) => assert!(message.contains("allocation"), "{message}"),
        other => panic!("expected the guest's own error, got {other:?}"),
    }
}

#[test]
fn writes_outside_the_grant_are_refused_and_nothing_is_buffered() {
    let rt = runtime(None);
    let env = env_with(&[]);
    let loaded = rt
        .load(
            &manifest("hostile/out-of-grant"),
            &wasm("hostile_out_of_grant"),
        )
        .expect("load");
    match Plugin::new(loaded.clone()).on_changes(&env, &batch()) {
        Err(CallError::Plugin(message)) => {
            assert!(message.contains("out of scope: /forbidden/x"), "{message}")
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    let mut ignore = loaded.manifest().clone();
    ignore.config.insert("mode".into(), "ignore".into());
    let ignoring = rt.reload(&loaded, ignore).expect("reload");
    let out = Plugin::new(ignoring)
        .on_changes(&env, &batch())
        .expect("ok");
    assert!(out.ops.is_empty(), "{:?}", out.ops);
    assert!(out.logs.iter().any(|(_, msg)| msg.contains("ignored")));
}

#[test]
fn compiled_components_are_cached_and_a_corrupt_cache_is_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wasm("hysteresis_policy");
    let manifest = manifest("examples/hysteresis-policy");
    let first = runtime(Some(dir.path()))
        .load(&manifest, &bytes)
        .expect("load");
    assert!(!first.from_cache());
    let second = runtime(Some(dir.path()))
        .load(&manifest, &bytes)
        .expect("load");
    assert!(
        second.from_cache(),
        "a restart loads the cached compilation"
    );
    // Corrupt the cached file: detected by its checksum, discarded, recompiled.
    let cached = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cached file");
    let mut data = std::fs::read(&cached).expect("read");
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&cached, data).expect("write");
    let third = runtime(Some(dir.path()))
        .load(&manifest, &bytes)
        .expect("load");
    assert!(!third.from_cache());
    let env = env_with(&[]);
    Plugin::new(third)
        .decide(&env, &workload())
        .expect("the recompiled plugin works");
}

//! Per-call overhead of plugins in the real host, with the test guests of
//! `tests/guests/`: a watcher batch of one change (warm instance: the counter reads the
//! tree twice and buffers one write), a scaling decision (a fresh instance per call, as
//! the scaling loop runs it; one tree read, two log lines), and a cold load from the
//! on-disk compile cache (what a restarting node pays per plugin: read + checksum +
//! deserialize + link + the smoke instantiation).
//!
//! `cargo bench -p ek-plugin --bench plugin_call` (`-- --test` runs each once).

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use ek_plugin::{Metric, Plugin, PodValue, Runtime, RuntimeConfig, TargetKind, Workload};
use support::{cmd, guest, node, policy_manifest, runtime, watcher_manifest};

fn calls(c: &mut Criterion) {
    let runtime = runtime();
    let env = node(&[("/out/count", "1"), ("/scaling/web/spec", "{}")]);

    let watcher = runtime
        .load(&watcher_manifest(""), &guest("watcher"))
        .expect("load");
    let mut watcher = Plugin::new(watcher);
    let batch = cmd("");
    c.bench_function("watcher_on_changes_1_change", |b| {
        b.iter(|| watcher.on_changes(&env, &batch).expect("call"))
    });

    let policy = runtime
        .load(&policy_manifest(""), &guest("policy"))
        .expect("load");
    let mut policy = Plugin::new(policy);
    let workload = Workload {
        namespace: "default".into(),
        name: "web".into(),
        current_replicas: 3,
        min_replicas: 1,
        max_replicas: 10,
        pods: Vec::new(),
        metrics: vec![Metric {
            name: "cpu".into(),
            target_kind: TargetKind::Utilization,
            target: 70.0,
            per_pod: (0..3)
                .map(|i| PodValue {
                    pod: format!("p{i}"),
                    value: 65.0,
                })
                .collect(),
            value: None,
        }],
        recent: Vec::new(),
        settings: Default::default(),
        now_ms: 0,
    };
    c.bench_function("policy_decide_fresh_instance", |b| {
        b.iter(|| policy.decide(&env, &workload).expect("call"))
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let cached = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let manifest = policy_manifest("");
    let bytes = guest("policy");
    cached
        .load(&manifest, &bytes)
        .expect("the first load compiles");
    c.bench_function("load_policy_from_cache", |b| {
        b.iter(|| {
            let loaded = cached.load(&manifest, &bytes).expect("load");
            assert!(loaded.from_cache());
            loaded
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = calls
}
criterion_main!(benches);

//! Per-call overhead of plugins in the real host, with real components from
//! `guest-plugins/`: a watcher batch of one change (warm instance), a scaling decision
//! (a fresh instance per call, as the scaling loop runs it), and a cold load from the
//! on-disk compile cache (what a restarting node pays per plugin).
//!
//! `cargo bench -p ek-plugin --bench plugin_call`

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use ek_plugin::fixture::{MemEnv, MemTree};
use ek_plugin::{
    Change, ChangeBatch, ChangeKind, HostEnv, Metric, Plugin, PodValue, Runtime, RuntimeConfig,
    TargetKind, Workload,
};
use std::sync::Arc;

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let mut tree = MemTree::new();
    tree.seed(
        "/edgekeeper/cluster/members/1",
        br#"{"state":"leader"}"#.to_vec(),
        false,
    )
    .expect("seed");
    tree.seed(
        "/edgekeeper/cluster/health",
        br#"{"members":1,"names":["1"],"states":{"leader":1},"zxid":1}"#.to_vec(),
        false,
    )
    .expect("seed");
    let env: Arc<dyn HostEnv> = Arc::new(MemEnv::new(tree));

    let watcher = runtime
        .load(
            &support::manifest("examples/health-rollup"),
            &support::wasm("health_rollup"),
        )
        .expect("load");
    let mut watcher = Plugin::new(watcher);
    let batch = ChangeBatch {
        snapshot: false,
        zxid: 2,
        changes: vec![Change {
            kind: ChangeKind::DataChanged,
            path: "/edgekeeper/cluster/members/1".into(),
            zxid: 2,
            stat: None,
        }],
    };
    c.bench_function("watcher_on_changes_1_change", |b| {
        b.iter(|| watcher.on_changes(&env, &batch).expect("call"))
    });

    let policy = runtime
        .load(
            &support::manifest("examples/hysteresis-policy"),
            &support::wasm("hysteresis_policy"),
        )
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
    let manifest = support::manifest("examples/hpa-policy");
    let bytes = support::wasm("hpa_policy");
    cached.load(&manifest, &bytes).expect("first load compiles");
    c.bench_function("load_from_cache_hpa_policy", |b| {
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

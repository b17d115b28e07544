//! Trigger cost with 10k registered watches.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ek_types::EventType;
use ek_watch::{WatchKind, WatchRegistry, WatcherId};
use std::hint::black_box;

const WATCHES: u64 = 10_000;

/// 10k watchers, each with a data watch on its own node `/app/<n>` and a child watch on
/// `/app`, plus 100 recursive watches on `/app`.
fn spread_registry() -> WatchRegistry {
    let mut registry = WatchRegistry::new();
    for id in 0..WATCHES {
        registry.add(WatcherId(id), &format!("/app/{id}"), WatchKind::Data);
        registry.add(WatcherId(id), "/app", WatchKind::Child);
    }
    for id in 0..100 {
        registry.add(WatcherId(id), "/app", WatchKind::PersistentRecursive);
    }
    registry
}

/// 10k watchers with a persistent watch on the same path.
fn persistent_registry() -> WatchRegistry {
    let mut registry = WatchRegistry::new();
    for id in 0..WATCHES {
        registry.add(WatcherId(id), "/config", WatchKind::Persistent);
    }
    registry
}

fn bench_trigger(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger");
    let mut out = Vec::new();

    let mut registry = spread_registry();
    group.bench_function("miss_among_10k", |b| {
        b.iter(|| {
            out.clear();
            registry.trigger(
                1,
                EventType::NodeDataChanged,
                black_box("/other/x"),
                &mut out,
            );
            black_box(out.len())
        })
    });
    group.bench_function("recursive_ancestor_among_10k", |b| {
        // Fires the 100 recursive watches on /app; no one-shot watch on /app/none/x.
        b.iter(|| {
            out.clear();
            registry.trigger(
                1,
                EventType::NodeDataChanged,
                black_box("/app/none/x"),
                &mut out,
            );
            black_box(out.len())
        })
    });

    let mut registry = persistent_registry();
    group.bench_function("persistent_fanout_10k", |b| {
        b.iter(|| {
            out.clear();
            registry.trigger(
                1,
                EventType::NodeDataChanged,
                black_box("/config"),
                &mut out,
            );
            black_box(out.len())
        })
    });

    let registry = spread_registry();
    group.bench_function("one_shot_children_fanout_10k", |b| {
        b.iter_batched(
            || registry.clone(),
            |mut registry| {
                let mut out = Vec::new();
                registry.trigger(1, EventType::NodeChildrenChanged, "/app", &mut out);
                // Returned so that dropping the registry stays outside the timing.
                (registry, out)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    c.bench_function("remove_watcher_among_10k", |b| {
        b.iter_batched(
            || registry.clone(),
            |mut registry| {
                black_box(registry.remove_watcher(WatcherId(42)));
                registry
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench_trigger);
criterion_main!(benches);

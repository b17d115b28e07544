//! Compares the registry with a naive model (a set of triples, scanned in full for every
//! event) over random operation sequences.

use crate::{WatchEvent, WatchKind, WatchRegistry, WatcherId, WatcherType};
use ek_types::EventType;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Includes siblings that share a prefix (`/ab`, `/a/bc`) to catch string-prefix bugs.
const PATHS: [&str; 8] = ["/", "/a", "/a/b", "/a/b/c", "/a/bc", "/ab", "/b", "/b/a"];

#[derive(Clone, Debug)]
enum Op {
    Add(u64, &'static str, WatchKind),
    Trigger(EventType, &'static str),
    Check(u64, &'static str, WatcherType),
    Remove(u64, &'static str, WatcherType),
    RemoveWatcher(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let watcher = 0..4u64;
    let path = proptest::sample::select(&PATHS[..]);
    let kind = proptest::sample::select(&WatchKind::ALL[..]);
    let event = proptest::sample::select(vec![
        EventType::NodeCreated,
        EventType::NodeDeleted,
        EventType::NodeDataChanged,
        EventType::NodeChildrenChanged,
        EventType::None,
    ]);
    let watcher_type = (1..=5i32).prop_map(|code| WatcherType::from_code(code).unwrap());
    prop_oneof![
        4 => (watcher.clone(), path.clone(), kind).prop_map(|(w, p, k)| Op::Add(w, p, k)),
        4 => (event, path.clone()).prop_map(|(e, p)| Op::Trigger(e, p)),
        1 => (watcher.clone(), path.clone(), watcher_type.clone())
            .prop_map(|(w, p, t)| Op::Check(w, p, t)),
        1 => (watcher.clone(), path, watcher_type).prop_map(|(w, p, t)| Op::Remove(w, p, t)),
        1 => watcher.prop_map(Op::RemoveWatcher),
    ]
}

/// The rules of zk-wire.md §10, written as directly as possible.
#[derive(Default)]
struct Model {
    watches: BTreeSet<(u64, &'static str, WatchKind)>,
}

fn is_in_subtree(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.starts_with(&format!("{root}/"))
}

fn fires(kind: WatchKind, watch_path: &str, event: EventType, path: &str) -> bool {
    use EventType::*;
    let node_event = matches!(event, NodeCreated | NodeDeleted | NodeDataChanged);
    match kind {
        WatchKind::Data | WatchKind::Exist => watch_path == path && node_event,
        WatchKind::Child => {
            watch_path == path && matches!(event, NodeChildrenChanged | NodeDeleted)
        }
        WatchKind::Persistent => watch_path == path && event != None,
        WatchKind::PersistentRecursive => node_event && is_in_subtree(path, watch_path),
    }
}

fn selects(watcher_type: WatcherType, kind: WatchKind) -> bool {
    match watcher_type {
        WatcherType::Children => kind == WatchKind::Child,
        WatcherType::Data => matches!(kind, WatchKind::Data | WatchKind::Exist),
        WatcherType::Any => true,
        WatcherType::Persistent => kind == WatchKind::Persistent,
        WatcherType::PersistentRecursive => kind == WatchKind::PersistentRecursive,
    }
}

impl Model {
    fn trigger(&mut self, event: EventType, path: &str) -> Vec<u64> {
        let fired: Vec<(u64, &'static str, WatchKind)> = self
            .watches
            .iter()
            .filter(|(_, watch_path, kind)| fires(*kind, watch_path, event, path))
            .copied()
            .collect();
        let watchers: BTreeSet<u64> = fired.iter().map(|(watcher, _, _)| *watcher).collect();
        for watch in fired {
            if watch.2.is_one_shot() {
                self.watches.remove(&watch);
            }
        }
        watchers.into_iter().collect()
    }

    fn matching(&self, watcher: u64, path: &str, watcher_type: WatcherType) -> Vec<Triple> {
        self.watches
            .iter()
            .filter(|(w, p, k)| *w == watcher && *p == path && selects(watcher_type, *k))
            .copied()
            .collect()
    }
}

type Triple = (u64, &'static str, WatchKind);

fn assert_same_state(registry: &WatchRegistry, model: &Model) {
    registry.assert_consistent();
    let got: Vec<(u64, String, WatchKind)> = registry
        .registrations()
        .into_iter()
        .map(|(watcher, path, kind)| (watcher.0, path.to_string(), kind))
        .collect();
    let want: Vec<(u64, String, WatchKind)> = model
        .watches
        .iter()
        .map(|(watcher, path, kind)| (*watcher, path.to_string(), *kind))
        .collect();
    assert_eq!(got, want);
    assert_eq!(registry.watch_count(), model.watches.len());
    let paths: BTreeSet<&str> = model.watches.iter().map(|(_, path, _)| *path).collect();
    let watchers: BTreeSet<u64> = model.watches.iter().map(|(w, _, _)| *w).collect();
    assert_eq!(registry.path_count(), paths.len());
    assert_eq!(registry.watcher_count(), watchers.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn registry_matches_naive_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut registry = WatchRegistry::new();
        let mut model = Model::default();
        for (step, op) in ops.into_iter().enumerate() {
            let zxid = step as i64;
            match op {
                Op::Add(watcher, path, kind) => {
                    let added = registry.add(WatcherId(watcher), path, kind);
                    prop_assert_eq!(added, model.watches.insert((watcher, path, kind)));
                }
                Op::Trigger(event, path) => {
                    let mut out = Vec::new();
                    registry.trigger(zxid, event, path, &mut out);
                    let want: Vec<(WatcherId, WatchEvent)> = model
                        .trigger(event, path)
                        .into_iter()
                        .map(|watcher| {
                            let path = Arc::from(path);
                            (WatcherId(watcher), WatchEvent { event, path, zxid })
                        })
                        .collect();
                    prop_assert_eq!(out, want);
                }
                Op::Check(watcher, path, watcher_type) => {
                    let found = registry.check(WatcherId(watcher), path, watcher_type);
                    let expected = !model.matching(watcher, path, watcher_type).is_empty();
                    prop_assert_eq!(found, expected);
                }
                Op::Remove(watcher, path, watcher_type) => {
                    let removed = registry.remove(WatcherId(watcher), path, watcher_type);
                    let matching = model.matching(watcher, path, watcher_type);
                    for watch in &matching {
                        model.watches.remove(watch);
                    }
                    prop_assert_eq!(removed, !matching.is_empty());
                }
                Op::RemoveWatcher(watcher) => {
                    let removed = registry.remove_watcher(WatcherId(watcher));
                    let before = model.watches.len();
                    model.watches.retain(|(w, _, _)| *w != watcher);
                    prop_assert_eq!(removed, before - model.watches.len());
                }
            }
            assert_same_state(&registry, &model);
        }
    }
}

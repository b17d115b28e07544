//! Unit tests of each rule of zk-wire.md §10, plus a model-based property test.

mod model;

use crate::{
    NodeVersionInfo, SetWatchLists, WatchEvent, WatchKind, WatchRegistry, WatcherId, WatcherType,
    IMMEDIATE_ZXID,
};
use ek_types::EventType::{self, *};
use std::sync::Arc;
use WatchKind::*;

const ZXID: i64 = 0x1_0000_0007;

fn w(id: u64) -> WatcherId {
    WatcherId(id)
}

/// Triggers one event and returns who was notified, checking the event's fields.
fn fire(registry: &mut WatchRegistry, event: EventType, path: &str) -> Vec<u64> {
    let mut out = Vec::new();
    registry.trigger(ZXID, event, path, &mut out);
    registry.assert_consistent();
    out.into_iter()
        .map(|(watcher, watch_event)| {
            let expected = WatchEvent {
                event,
                path: Arc::from(path),
                zxid: ZXID,
            };
            assert_eq!(watch_event, expected);
            watcher.0
        })
        .collect()
}

fn registry_with(watches: &[(u64, &str, WatchKind)]) -> WatchRegistry {
    let mut registry = WatchRegistry::new();
    for (watcher, path, kind) in watches {
        assert!(registry.add(w(*watcher), path, *kind));
    }
    registry.assert_consistent();
    registry
}

#[test]
fn data_and_exist_watches_fire_on_node_events_of_their_path() {
    for kind in [Data, Exist] {
        for event in [NodeCreated, NodeDeleted, NodeDataChanged] {
            let mut registry = registry_with(&[(1, "/a", kind)]);
            assert_eq!(fire(&mut registry, event, "/a"), [1], "{kind:?} {event:?}");
        }
        let mut registry = registry_with(&[(1, "/a", kind)]);
        assert!(fire(&mut registry, NodeChildrenChanged, "/a").is_empty());
        assert!(fire(&mut registry, NodeDataChanged, "/a/b").is_empty());
        assert!(fire(&mut registry, NodeDataChanged, "/").is_empty());
        assert!(registry.contains(w(1), "/a", kind));
    }
}

#[test]
fn child_watches_fire_on_children_changed_and_delete_of_their_path() {
    for event in [NodeChildrenChanged, NodeDeleted] {
        let mut registry = registry_with(&[(1, "/a", Child)]);
        assert_eq!(fire(&mut registry, event, "/a"), [1], "{event:?}");
    }
    let mut registry = registry_with(&[(1, "/a", Child)]);
    assert!(fire(&mut registry, NodeCreated, "/a").is_empty());
    assert!(fire(&mut registry, NodeDataChanged, "/a").is_empty());
    assert!(fire(&mut registry, NodeChildrenChanged, "/").is_empty());
    assert!(registry.contains(w(1), "/a", Child));
}

#[test]
fn one_shot_watches_are_removed_when_fired() {
    let mut registry = registry_with(&[(1, "/a", Data), (2, "/a", Child), (3, "/a", Exist)]);
    assert_eq!(fire(&mut registry, NodeDataChanged, "/a"), [1, 3]);
    assert_eq!(
        fire(&mut registry, NodeDataChanged, "/a"),
        Vec::<u64>::new()
    );
    assert_eq!(registry.watch_count(), 1);
    assert_eq!(fire(&mut registry, NodeChildrenChanged, "/a"), [2]);
    assert!(fire(&mut registry, NodeChildrenChanged, "/a").is_empty());
    assert!(registry.is_empty());
    assert_eq!((registry.path_count(), registry.watcher_count()), (0, 0));
}

#[test]
fn tree_event_pairs_notify_path_and_parent_watchers() {
    // delete /a/b: (NodeDeleted, /a/b) then (NodeChildrenChanged, /a).
    let mut registry = registry_with(&[
        (1, "/a/b", Data),
        (2, "/a/b", Child),
        (3, "/a", Child),
        (4, "/a", Data),
    ]);
    assert_eq!(fire(&mut registry, NodeDeleted, "/a/b"), [1, 2]);
    assert_eq!(fire(&mut registry, NodeChildrenChanged, "/a"), [3]);
    assert_eq!(registry.registrations(), [(w(4), Arc::from("/a"), Data)]);

    // create /a/c: (NodeCreated, /a/c) then (NodeChildrenChanged, /a).
    let mut registry = registry_with(&[(1, "/a/c", Exist), (3, "/a", Child)]);
    assert_eq!(fire(&mut registry, NodeCreated, "/a/c"), [1]);
    assert_eq!(fire(&mut registry, NodeChildrenChanged, "/a"), [3]);
    assert!(registry.is_empty());
}

#[test]
fn add_deduplicates_per_watcher_path_and_kind() {
    let mut registry = WatchRegistry::new();
    assert!(registry.add(w(1), "/a", Data));
    assert!(!registry.add(w(1), "/a", Data));
    assert!(registry.add(w(1), "/a", Exist));
    assert!(registry.add(w(2), "/a", Data));
    assert!(registry.add(w(1), "/b", Data));
    registry.assert_consistent();
    assert_eq!(registry.watch_count(), 4);
    assert_eq!(registry.path_count(), 2);
    assert_eq!(registry.watcher_count(), 2);
    assert_eq!(registry.kinds(w(1), "/a"), [Data, Exist]);
    // Registered twice, fired once: the second registration did not queue a second event.
    assert_eq!(fire(&mut registry, NodeDataChanged, "/a"), [1, 2]);
}

#[test]
fn a_watcher_gets_one_event_however_many_watches_match() {
    let mut registry = registry_with(&[
        (1, "/a", Data),
        (1, "/a", Exist),
        (1, "/a", Persistent),
        (1, "/a", PersistentRecursive),
        (1, "/", PersistentRecursive),
        (1, "/a", Child),
    ]);
    assert_eq!(fire(&mut registry, NodeDeleted, "/a"), [1]);
    assert_eq!(
        registry.kinds(w(1), "/a"),
        [Persistent, PersistentRecursive]
    );
    assert_eq!(registry.kinds(w(1), "/"), [PersistentRecursive]);
    assert_eq!(registry.watch_count(), 3);
}

#[test]
fn persistent_watches_fire_every_event_of_their_path_and_stay() {
    let mut registry = registry_with(&[(1, "/a", Persistent)]);
    for event in [
        NodeCreated,
        NodeDataChanged,
        NodeChildrenChanged,
        NodeDeleted,
    ] {
        assert_eq!(fire(&mut registry, event, "/a"), [1], "{event:?}");
    }
    assert!(fire(&mut registry, NodeCreated, "/a/b").is_empty());
    assert!(fire(&mut registry, NodeDataChanged, "/a/b").is_empty());
    assert!(fire(&mut registry, NodeChildrenChanged, "/").is_empty());
    assert!(fire(&mut registry, EventType::None, "/a").is_empty());
    assert_eq!(
        registry.registrations(),
        [(w(1), Arc::from("/a"), Persistent)]
    );
}

#[test]
fn recursive_watches_fire_node_events_of_the_subtree_but_never_children_changed() {
    let mut registry = registry_with(&[(1, "/a", PersistentRecursive)]);
    for path in ["/a", "/a/b", "/a/b/c/d"] {
        for event in [NodeCreated, NodeDataChanged, NodeDeleted] {
            assert_eq!(fire(&mut registry, event, path), [1], "{event:?} {path}");
        }
        assert!(
            fire(&mut registry, NodeChildrenChanged, path).is_empty(),
            "{path}"
        );
    }
    // Neither the parent, a sibling, nor a sibling sharing the name's prefix.
    for path in ["/", "/b", "/ab", "/a0/b"] {
        assert!(
            fire(&mut registry, NodeDataChanged, path).is_empty(),
            "{path}"
        );
    }
    assert_eq!(registry.watch_count(), 1);
}

#[test]
fn a_recursive_watch_on_the_root_covers_every_node() {
    let mut registry = registry_with(&[(7, "/", PersistentRecursive)]);
    for path in ["/", "/a", "/zookeeper/quota", "/x/y/z"] {
        assert_eq!(fire(&mut registry, NodeCreated, path), [7], "{path}");
    }
    assert!(fire(&mut registry, NodeChildrenChanged, "/").is_empty());
}

#[test]
fn events_are_ordered_by_watcher_id_across_path_and_ancestors() {
    let mut registry = registry_with(&[
        (5, "/a/b", Data),
        (2, "/a", PersistentRecursive),
        (9, "/", PersistentRecursive),
        (1, "/a/b", Persistent),
        (5, "/", PersistentRecursive),
        (3, "/a/b/c", PersistentRecursive),
        (4, "/b", PersistentRecursive),
    ]);
    assert_eq!(fire(&mut registry, NodeDataChanged, "/a/b"), [1, 2, 5, 9]);
    assert!(!registry.contains(w(5), "/a/b", Data));
    assert_eq!(fire(&mut registry, NodeDataChanged, "/a/b"), [1, 2, 5, 9]);
}

#[test]
fn events_carry_the_trigger_zxid_and_come_out_in_call_order() {
    let mut registry = registry_with(&[(1, "/a", Persistent), (2, "/a/b", Data)]);
    let mut out = Vec::new();
    registry.trigger(10, NodeCreated, "/a/b", &mut out);
    registry.trigger(10, NodeChildrenChanged, "/a", &mut out);
    registry.trigger(11, NodeDataChanged, "/a", &mut out);
    let got: Vec<(u64, EventType, &str, i64)> = out
        .iter()
        .map(|(watcher, event)| (watcher.0, event.event, &*event.path, event.zxid))
        .collect();
    assert_eq!(
        got,
        [
            (2, NodeCreated, "/a/b", 10),
            (1, NodeChildrenChanged, "/a", 10),
            (1, NodeDataChanged, "/a", 11),
        ]
    );
}

/// Every kind on /a for watcher 1, plus decoys that no check/remove on (1, /a) may touch.
fn registry_with_all_kinds() -> WatchRegistry {
    let mut watches: Vec<(u64, &str, WatchKind)> = Vec::new();
    for kind in WatchKind::ALL {
        watches.extend([
            (1, "/a", kind),
            (2, "/a", kind),
            (1, "/a/b", kind),
            (1, "/", kind),
        ]);
    }
    registry_with(&watches)
}

#[test]
fn check_and_remove_select_kinds_by_watcher_type() {
    let cases: [(WatcherType, &[WatchKind]); 5] = [
        (WatcherType::Children, &[Child]),
        (WatcherType::Data, &[Data, Exist]),
        (WatcherType::Any, &WatchKind::ALL),
        (WatcherType::Persistent, &[Persistent]),
        (WatcherType::PersistentRecursive, &[PersistentRecursive]),
    ];
    for (watcher_type, removed) in cases {
        let mut registry = registry_with_all_kinds();
        assert!(registry.check(w(1), "/a", watcher_type), "{watcher_type:?}");
        assert!(
            registry.remove(w(1), "/a", watcher_type),
            "{watcher_type:?}"
        );
        registry.assert_consistent();
        let kept: Vec<WatchKind> = WatchKind::ALL
            .into_iter()
            .filter(|kind| !removed.contains(kind))
            .collect();
        assert_eq!(registry.kinds(w(1), "/a"), kept, "{watcher_type:?}");
        assert_eq!(
            registry.watch_count(),
            20 - removed.len(),
            "{watcher_type:?}"
        );
        assert!(
            !registry.check(w(1), "/a", watcher_type),
            "{watcher_type:?}"
        );
        assert!(
            !registry.remove(w(1), "/a", watcher_type),
            "{watcher_type:?}"
        );
    }
}

#[test]
fn check_and_remove_answer_no_watcher_without_a_matching_watch() {
    let mut registry = registry_with(&[(1, "/a", Data), (1, "/b", Persistent)]);
    let misses = [
        (2, "/a", WatcherType::Data),
        (1, "/x", WatcherType::Any),
        (1, "/a/b", WatcherType::Any),
        (1, "/", WatcherType::Any),
        (1, "/a", WatcherType::Children),
        (1, "/a", WatcherType::Persistent),
        (1, "/b", WatcherType::Data),
        (1, "/b", WatcherType::Children),
        (1, "/b", WatcherType::PersistentRecursive),
    ];
    for (watcher, path, watcher_type) in misses {
        assert!(
            !registry.check(w(watcher), path, watcher_type),
            "{path} {watcher_type:?}"
        );
        assert!(
            !registry.remove(w(watcher), path, watcher_type),
            "{path} {watcher_type:?}"
        );
    }
    registry.assert_consistent();
    assert_eq!(registry.watch_count(), 2);
}

#[test]
fn removed_watches_no_longer_fire() {
    let mut registry = registry_with(&[(1, "/", PersistentRecursive), (2, "/a", Child)]);
    assert!(registry.remove(w(1), "/", WatcherType::PersistentRecursive));
    assert!(registry.remove(w(2), "/a", WatcherType::Any));
    assert!(fire(&mut registry, NodeDeleted, "/a").is_empty());
    assert!(registry.is_empty());
    assert_eq!((registry.path_count(), registry.watcher_count()), (0, 0));
}

#[test]
fn remove_watcher_drops_every_watch_of_one_connection() {
    let mut registry = registry_with(&[
        (1, "/a", Data),
        (1, "/a", Persistent),
        (1, "/b", Child),
        (1, "/", PersistentRecursive),
        (2, "/a", Data),
        (2, "/", PersistentRecursive),
    ]);
    assert_eq!(registry.remove_watcher(w(1)), 4);
    registry.assert_consistent();
    assert_eq!(registry.remove_watcher(w(1)), 0);
    assert_eq!(registry.remove_watcher(w(3)), 0);
    assert_eq!(registry.watch_count(), 2);
    assert_eq!(registry.watcher_count(), 1);
    assert_eq!(registry.path_count(), 2);
    assert!(registry.paths_of(w(1)).is_empty());
    assert_eq!(fire(&mut registry, NodeDataChanged, "/a"), [2]);
    assert_eq!(fire(&mut registry, NodeDeleted, "/b"), [2]);
}

#[test]
fn listings_are_sorted() {
    let registry = registry_with(&[
        (3, "/b", Data),
        (1, "/b", Child),
        (1, "/a", Persistent),
        (2, "/a/c", Exist),
        (1, "/a", Data),
    ]);
    let paths = |list: &[&str]| list.iter().map(|path| Arc::from(*path)).collect::<Vec<_>>();
    assert_eq!(
        registry.watches_by_watcher(),
        [
            (w(1), paths(&["/a", "/b"])),
            (w(2), paths(&["/a/c"])),
            (w(3), paths(&["/b"])),
        ]
    );
    assert_eq!(
        registry.watches_by_path(),
        [
            (Arc::from("/a"), vec![w(1)]),
            (Arc::from("/a/c"), vec![w(2)]),
            (Arc::from("/b"), vec![w(1), w(3)]),
        ]
    );
    assert_eq!(registry.watchers_of("/b"), [w(1), w(3)]);
    assert!(registry.watchers_of("/nope").is_empty());
    assert_eq!(registry.paths_of(w(1)), paths(&["/a", "/b"]));
    assert_eq!(
        (
            registry.watch_count(),
            registry.path_count(),
            registry.watcher_count()
        ),
        (5, 3, 3)
    );
}

fn node(mzxid: i64, pzxid: i64) -> Option<NodeVersionInfo> {
    Some(NodeVersionInfo { mzxid, pzxid })
}

/// The tree as `setWatches` sees it after a client that saw zxid 10 reconnects.
fn lookup(path: &str) -> Option<NodeVersionInfo> {
    match path {
        "/same" => node(10, 10),
        "/data-changed" => node(11, 5),
        "/children-changed" => node(5, 11),
        _ => Option::None,
    }
}

fn immediate(event: EventType, path: &str) -> WatchEvent {
    WatchEvent {
        event,
        path: Arc::from(path),
        zxid: IMMEDIATE_ZXID,
    }
}

fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| path.to_string()).collect()
}

#[test]
fn set_watches_sends_missed_events_now_and_registers_the_rest() {
    let lists = SetWatchLists {
        data: strings(&["/gone", "/data-changed", "/children-changed", "/same"]),
        exist: strings(&["/same", "/gone"]),
        child: strings(&["/gone", "/children-changed", "/data-changed", "/same"]),
        persistent: strings(&["/gone", "/same"]),
        persistent_recursive: strings(&["/"]),
    };
    let mut registry = WatchRegistry::new();
    let mut out = Vec::new();
    registry.set_watches(w(4), 10, &lists, lookup, &mut out);
    registry.assert_consistent();
    assert_eq!(
        out,
        [
            immediate(NodeDeleted, "/gone"),
            immediate(NodeDataChanged, "/data-changed"),
            immediate(NodeCreated, "/same"),
            immediate(NodeDeleted, "/gone"),
            immediate(NodeChildrenChanged, "/children-changed"),
        ]
    );
    let registered: Vec<(String, WatchKind)> = registry
        .registrations()
        .into_iter()
        .map(|(watcher, path, kind)| {
            assert_eq!(watcher, w(4));
            (path.to_string(), kind)
        })
        .collect();
    let expected = [
        ("/", PersistentRecursive),
        ("/children-changed", Data),
        ("/data-changed", Child),
        ("/gone", Exist),
        ("/gone", Persistent),
        ("/same", Data),
        ("/same", Child),
        ("/same", Persistent),
    ];
    let expected: Vec<(String, WatchKind)> = expected
        .into_iter()
        .map(|(path, kind)| (path.to_string(), kind))
        .collect();
    assert_eq!(registered, expected);
}

#[test]
fn set_watches_with_no_lists_does_nothing() {
    let mut registry = WatchRegistry::new();
    let mut out = Vec::new();
    registry.set_watches(w(1), 0, &SetWatchLists::default(), lookup, &mut out);
    assert!(out.is_empty());
    assert!(registry.is_empty());
}

#[test]
fn restored_watches_fire_like_new_ones() {
    let lists = SetWatchLists {
        exist: strings(&["/gone"]),
        ..SetWatchLists::default()
    };
    let mut registry = WatchRegistry::new();
    let mut out = Vec::new();
    registry.set_watches(w(1), 10, &lists, lookup, &mut out);
    assert!(out.is_empty());
    assert_eq!(fire(&mut registry, NodeCreated, "/gone"), [1]);
    assert!(registry.is_empty());
}

#[test]
fn wire_codes_round_trip() {
    for code in 1..=5 {
        let watcher_type = WatcherType::from_code(code).expect("known code");
        assert_eq!(watcher_type.code(), code);
    }
    assert_eq!(WatcherType::from_code(0), Option::None);
    assert_eq!(WatcherType::from_code(6), Option::None);
    assert_eq!(WatchKind::from_add_watch_mode(0), Some(Persistent));
    assert_eq!(WatchKind::from_add_watch_mode(1), Some(PersistentRecursive));
    assert_eq!(WatchKind::from_add_watch_mode(2), Option::None);
    let one_shot: Vec<WatchKind> = WatchKind::ALL
        .into_iter()
        .filter(|kind| kind.is_one_shot())
        .collect();
    assert_eq!(one_shot, [Data, Exist, Child]);
}

//! The registry itself: path → watchers and watcher → paths, kept in step.

use crate::kind::{KindSet, WatchKind, WatcherId, WatcherType};
use ek_types::{path, EventType};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// One notification for one watcher: the `WatcherEvent` body (its state is always
/// SyncConnected) plus the zxid for the `ReplyHeader{xid: -1, zxid, err: 0}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// What happened.
    pub event: EventType,
    /// The absolute, un-chrooted path the event is about (the server strips nothing).
    pub path: Arc<str>,
    /// The zxid of the triggering txn, or [`IMMEDIATE_ZXID`] for events sent at once by
    /// `setWatches`.
    pub zxid: i64,
}

/// The header zxid of notifications that `setWatches` sends at once (a ZooKeeper quirk).
pub const IMMEDIATE_ZXID: i64 = -1;

/// The watches registered on one path.
#[derive(Clone, Debug, Default)]
struct PathWatches {
    /// Every watcher with at least one watch here, and the kinds it has. Ordered so that
    /// events come out by watcher id without a sort in the common case.
    kinds: BTreeMap<WatcherId, KindSet>,
    /// The watchers whose kinds include `PersistentRecursive`: an index, so that walking the
    /// ancestors of an event's path never scans the one-shot watches registered there.
    recursive: BTreeSet<WatcherId>,
}

/// Every watch of every connection of one server.
///
/// Paths are taken as given: the caller validates them (`ek_types::path::validate`) before
/// they reach the registry. A watch is a (watcher, path, kind) triple; adding one twice
/// keeps one. Call [`WatchRegistry::trigger`] for each event the tree reports, in apply
/// order, and send the returned notifications before any later reply on each connection.
/// [`WatchRegistry::remove_watcher`] when a connection closes.
#[derive(Clone, Debug, Default)]
pub struct WatchRegistry {
    by_path: HashMap<Arc<str>, PathWatches>,
    /// For each watcher, the paths where it has at least one watch (the keys of `by_path`,
    /// shared), so that dropping a connection costs only its own watches.
    by_watcher: HashMap<WatcherId, HashSet<Arc<str>>>,
    /// Number of (watcher, path, kind) triples.
    watch_count: usize,
    /// Number of `PersistentRecursive` watches; while zero, triggers skip the ancestor walk.
    recursive_count: usize,
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> WatchRegistry {
        WatchRegistry::default()
    }

    /// Registers a watch. Returns `false` (and changes nothing) when the watcher already has
    /// a watch of this kind on this path.
    pub fn add(&mut self, watcher: WatcherId, path: &str, kind: WatchKind) -> bool {
        let key = match self.by_path.get_key_value(path) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(path),
        };
        let entry = self.by_path.entry(Arc::clone(&key)).or_default();
        let kinds = entry.kinds.entry(watcher).or_default();
        if kinds.contains(kind) {
            return false;
        }
        let new_pair = kinds.is_empty();
        *kinds = kinds.or(KindSet::of(&[kind]));
        if kind == WatchKind::PersistentRecursive {
            entry.recursive.insert(watcher);
            self.recursive_count += 1;
        }
        self.watch_count += 1;
        if new_pair {
            self.by_watcher.entry(watcher).or_default().insert(key);
        }
        true
    }

    /// Fires the watches that `event` on `path` triggers and appends one notification per
    /// watcher to `out`, ordered by watcher id. One-shot watches that fired are removed.
    ///
    /// A watcher gets at most one notification per call, however many of its watches
    /// match. The tree reports a create as (NodeCreated, p) then (NodeChildrenChanged,
    /// parent), a delete as (NodeDeleted, p) then (NodeChildrenChanged, parent), and a
    /// setData as (NodeDataChanged, p): one call each.
    pub fn trigger(
        &mut self,
        zxid: i64,
        event: EventType,
        path: &str,
        out: &mut Vec<(WatcherId, WatchEvent)>,
    ) {
        let mut fired = Vec::new();
        self.fire_on_path(event, path, &mut fired);
        let mut merged = false;
        if KindSet::fires_ancestors(event) && self.recursive_count > 0 {
            for ancestor in strict_ancestors(path) {
                if let Some(entry) = self.by_path.get(ancestor) {
                    merged |= !entry.recursive.is_empty();
                    fired.extend(entry.recursive.iter().copied());
                }
            }
        }
        if fired.is_empty() {
            return;
        }
        // Watches on the path itself come out sorted already; ancestors add more.
        if merged {
            fired.sort_unstable();
            fired.dedup();
        }
        let path: Arc<str> = Arc::from(path);
        out.extend(fired.into_iter().map(|watcher| {
            let path = Arc::clone(&path);
            (watcher, WatchEvent { event, path, zxid })
        }));
    }

    /// Fires the watches registered on exactly `path`, pushing their watchers in id order.
    fn fire_on_path(&mut self, event: EventType, path: &str, fired: &mut Vec<WatcherId>) {
        let mask = KindSet::fired_on_path(event);
        if mask.is_empty() {
            return;
        }
        let Some(entry) = self.by_path.get_mut(path) else {
            return;
        };
        let mut emptied = Vec::new();
        let mut removed_count = 0;
        entry.kinds.retain(|watcher, kinds| {
            let hit = kinds.and(mask);
            if hit.is_empty() {
                return true;
            }
            fired.push(*watcher);
            let one_shot = hit.and(KindSet::ONE_SHOT);
            removed_count += one_shot.len();
            *kinds = kinds.without(one_shot);
            if kinds.is_empty() {
                emptied.push(*watcher);
                return false;
            }
            true
        });
        self.watch_count -= removed_count;
        if entry.kinds.is_empty() {
            self.by_path.remove(path);
        }
        for watcher in emptied {
            self.forget_path_of(watcher, path);
        }
    }

    /// `checkWatches` (17): whether the watcher has a watch of `watcher_type` on exactly
    /// `path`. `false` means NoWatcher (-121).
    pub fn check(&self, watcher: WatcherId, path: &str, watcher_type: WatcherType) -> bool {
        self.kinds_on(watcher, path)
            .is_some_and(|kinds| !kinds.and(watcher_type.kinds()).is_empty())
    }

    /// `removeWatches` (18): removes the watcher's watches of `watcher_type` on exactly
    /// `path`. Returns `false` (NoWatcher, -121) when there was none. No event is sent: the
    /// client synthesizes the `*WatchRemoved` events itself.
    pub fn remove(&mut self, watcher: WatcherId, path: &str, watcher_type: WatcherType) -> bool {
        !self.unset(watcher, path, watcher_type.kinds()).is_empty()
    }

    /// Drops every watch of a watcher whose connection closed, in time proportional to its
    /// own watches. Fires nothing. Returns how many watches it dropped.
    pub fn remove_watcher(&mut self, watcher: WatcherId) -> usize {
        let Some(paths) = self.by_watcher.remove(&watcher) else {
            return 0;
        };
        let mut removed_count = 0;
        for path in paths {
            let Some(entry) = self.by_path.get_mut(&path) else {
                continue;
            };
            if let Some(kinds) = entry.kinds.remove(&watcher) {
                removed_count += kinds.len();
                if kinds.contains(WatchKind::PersistentRecursive) {
                    entry.recursive.remove(&watcher);
                    self.recursive_count -= 1;
                }
            }
            if entry.kinds.is_empty() {
                self.by_path.remove(&path);
            }
        }
        self.watch_count -= removed_count;
        removed_count
    }

    /// Clears `mask` from the watcher's kinds on `path` and returns the kinds it cleared.
    fn unset(&mut self, watcher: WatcherId, path: &str, mask: KindSet) -> KindSet {
        let Some(entry) = self.by_path.get_mut(path) else {
            return KindSet::EMPTY;
        };
        let Some(kinds) = entry.kinds.get_mut(&watcher) else {
            return KindSet::EMPTY;
        };
        let cleared = kinds.and(mask);
        if cleared.is_empty() {
            return cleared;
        }
        *kinds = kinds.without(cleared);
        let pair_gone = kinds.is_empty();
        if pair_gone {
            entry.kinds.remove(&watcher);
        }
        if cleared.contains(WatchKind::PersistentRecursive) {
            entry.recursive.remove(&watcher);
            self.recursive_count -= 1;
        }
        if entry.kinds.is_empty() {
            self.by_path.remove(path);
        }
        self.watch_count -= cleared.len();
        if pair_gone {
            self.forget_path_of(watcher, path);
        }
        cleared
    }

    /// Removes `path` from the watcher's reverse index after its last watch there went.
    fn forget_path_of(&mut self, watcher: WatcherId, path: &str) {
        if let Some(paths) = self.by_watcher.get_mut(&watcher) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
    }

    fn kinds_on(&self, watcher: WatcherId, path: &str) -> Option<KindSet> {
        self.by_path.get(path)?.kinds.get(&watcher).copied()
    }
}

/// Counters and listings for the four-letter words (`wchs`, `wchc`, `wchp`, `mntr`) and
/// metrics. Listings are sorted so that their output is deterministic.
impl WatchRegistry {
    /// Number of watches: (watcher, path, kind) triples.
    pub fn watch_count(&self) -> usize {
        self.watch_count
    }

    /// Number of distinct paths with at least one watch.
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// Number of distinct watchers with at least one watch.
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// Whether no watch is registered.
    pub fn is_empty(&self) -> bool {
        self.watch_count == 0
    }

    /// Whether the watcher has a watch of exactly this kind on exactly this path.
    pub fn contains(&self, watcher: WatcherId, path: &str, kind: WatchKind) -> bool {
        self.kinds_on(watcher, path)
            .is_some_and(|kinds| kinds.contains(kind))
    }

    /// The kinds of the watcher's watches on exactly this path, in [`WatchKind::ALL`] order.
    pub fn kinds(&self, watcher: WatcherId, path: &str) -> Vec<WatchKind> {
        self.kinds_on(watcher, path)
            .map_or_else(Vec::new, |kinds| kinds.iter().collect())
    }

    /// The paths where the watcher has at least one watch, sorted.
    pub fn paths_of(&self, watcher: WatcherId) -> Vec<Arc<str>> {
        let mut paths: Vec<Arc<str>> = match self.by_watcher.get(&watcher) {
            Some(paths) => paths.iter().cloned().collect(),
            None => Vec::new(),
        };
        paths.sort_unstable();
        paths
    }

    /// The watchers with at least one watch on exactly this path, sorted.
    pub fn watchers_of(&self, path: &str) -> Vec<WatcherId> {
        match self.by_path.get(path) {
            Some(entry) => entry.kinds.keys().copied().collect(),
            None => Vec::new(),
        }
    }

    /// `wchc`: every watcher with the paths it watches, both sorted.
    pub fn watches_by_watcher(&self) -> Vec<(WatcherId, Vec<Arc<str>>)> {
        let mut watchers: Vec<WatcherId> = self.by_watcher.keys().copied().collect();
        watchers.sort_unstable();
        watchers
            .into_iter()
            .map(|watcher| (watcher, self.paths_of(watcher)))
            .collect()
    }

    /// `wchp`: every watched path with its watchers, both sorted.
    pub fn watches_by_path(&self) -> Vec<(Arc<str>, Vec<WatcherId>)> {
        let mut paths: Vec<(Arc<str>, Vec<WatcherId>)> = self
            .by_path
            .iter()
            .map(|(path, entry)| (Arc::clone(path), entry.kinds.keys().copied().collect()))
            .collect();
        paths.sort_unstable_by(|left, right| left.0.cmp(&right.0));
        paths
    }

    /// Every watch as a (watcher, path, kind) triple, sorted.
    pub fn registrations(&self) -> Vec<(WatcherId, Arc<str>, WatchKind)> {
        let mut triples: Vec<(WatcherId, Arc<str>, WatchKind)> = Vec::new();
        for (path, entry) in &self.by_path {
            for (watcher, kinds) in &entry.kinds {
                triples.extend(kinds.iter().map(|kind| (*watcher, Arc::clone(path), kind)));
            }
        }
        triples.sort_unstable();
        triples
    }

    /// Panics unless both indexes and the counters agree. For tests.
    #[cfg(test)]
    pub(crate) fn assert_consistent(&self) {
        let mut watch_count = 0;
        let mut recursive_count = 0;
        let mut pair_count = 0;
        for (path, entry) in &self.by_path {
            assert!(!entry.kinds.is_empty(), "empty entry kept for {path}");
            for (watcher, kinds) in &entry.kinds {
                assert!(!kinds.is_empty(), "empty kinds kept for {watcher:?} {path}");
                watch_count += kinds.len();
                pair_count += 1;
                let recursive = kinds.contains(WatchKind::PersistentRecursive);
                assert_eq!(entry.recursive.contains(watcher), recursive);
                recursive_count += usize::from(recursive);
                assert!(self.by_watcher[watcher].contains(path));
            }
            assert!(entry.recursive.iter().all(|w| entry.kinds.contains_key(w)));
        }
        let reverse_count: usize = self.by_watcher.values().map(HashSet::len).sum();
        assert!(self.by_watcher.values().all(|paths| !paths.is_empty()));
        assert_eq!(reverse_count, pair_count);
        assert_eq!(watch_count, self.watch_count);
        assert_eq!(recursive_count, self.recursive_count);
    }
}

/// The proper ancestors of a valid path, nearest first: `/a/b/c` → `/a/b`, `/a`, `/`.
fn strict_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        if current == "/" || current.is_empty() {
            return None;
        }
        current = path::parent(current);
        Some(current)
    })
}

#[cfg(test)]
mod ancestor_tests {
    use super::strict_ancestors;

    #[test]
    fn strict_ancestors_walk_to_the_root() {
        let walk = |path| strict_ancestors(path).collect::<Vec<_>>();
        assert_eq!(walk("/a/b/c"), ["/a/b", "/a", "/"]);
        assert_eq!(walk("/a"), ["/"]);
        assert!(walk("/").is_empty());
    }
}

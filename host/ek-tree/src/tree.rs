//! The data tree: storage, indexes, reads and the mutation primitives `apply` builds on.

use crate::acl_table::{AclEntry, AclTable};
use crate::key::{children_range, key_of, path_of, split_key, Key};
use crate::node::{node_hash, Node, NodeRef, Stored};
use ek_types::{Acl, EphemeralKind, SessionId, Zxid};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// The replicated state: znodes, ACLs, sessions, the last applied zxid and the digest.
///
/// Changed only by [`DataTree::apply`]; every replica that applies the same txns holds the
/// same tree and the same [`DataTree::digest`].
#[derive(Debug)]
pub struct DataTree {
    /// Every znode by key (see `key.rs`). The record (stat and data in one allocation)
    /// sits behind a thin pointer, so a map leaf holds 24-byte entries: B-tree leaves are
    /// often half empty, and their slots cost whether used or not.
    pub(crate) nodes: imbl::OrdMap<Key, Stored>,
    /// Interned ACL lists.
    pub(crate) acls: AclTable,
    /// Session id to negotiated timeout in ms.
    pub(crate) sessions: imbl::OrdMap<SessionId, i32>,
    /// Keys of the plain ephemerals of each session.
    ephemerals: HashMap<SessionId, BTreeSet<Key>>,
    /// Keys of containers and TTL nodes, the reaper's candidates.
    reapable: BTreeSet<Key>,
    /// The zxid of the last applied txn.
    pub(crate) last_zxid: Zxid,
    /// Wrapping sum of every node's hash.
    digest: u64,
    /// Sum of path and data lengths.
    data_size: u64,
    /// Number of plain ephemerals.
    ephemeral_count: usize,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper` and `/zookeeper/quota` (world:anyone ALL) and
    /// `/zookeeper/config` (world:anyone READ), all with zero stats.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty();
        let system = [
            ("/", 1, Acl::open_unsafe()),
            ("/zookeeper", 2, Acl::open_unsafe()),
            ("/zookeeper/quota", 0, Acl::open_unsafe()),
            ("/zookeeper/config", 0, Acl::read_unsafe()),
        ];
        for (path, num_children, acl) in system {
            let mut node = DataTree::new_node(0, Zxid::ZERO, 0);
            node.num_children = num_children;
            node.acl = tree.acls.acquire(&acl);
            let key: Key = Key::from(key_of(path).unwrap_or_default());
            tree.insert_node(key, Stored::new(node, Some(&[])));
        }
        tree
    }

    /// A tree without any node, for snapshot loading.
    pub(crate) fn empty() -> DataTree {
        DataTree {
            nodes: imbl::OrdMap::new(),
            acls: AclTable::default(),
            sessions: imbl::OrdMap::new(),
            ephemerals: HashMap::new(),
            reapable: BTreeSet::new(),
            last_zxid: Zxid::ZERO,
            digest: 0,
            data_size: 0,
            ephemeral_count: 0,
        }
    }

    /// The stat fields a create at `zxid`/`time_ms` gives a node (ACL id left at 0).
    pub(crate) fn new_node(owner: i64, zxid: Zxid, time_ms: i64) -> Node {
        Node {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner: owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            num_children: 0,
            child_creates: 0,
            acl: 0,
            null_data: false,
        }
    }

    /// The node at `path`.
    pub fn node(&self, path: &str) -> Option<NodeRef<'_>> {
        let key = key_of(path)?;
        self.node_by_key(&key)
    }

    pub(crate) fn node_by_key(&self, key: &str) -> Option<NodeRef<'_>> {
        let node = self.nodes.get(key)?;
        let acl = self.acls.get(node.acl)?;
        Some(NodeRef { node, acl })
    }

    /// The names of the children of `path`, in byte order, or `None` if it does not exist.
    pub fn children(&self, path: &str) -> Option<Vec<&str>> {
        let key = key_of(path)?;
        let node = self.nodes.get(key.as_str())?;
        let (low, high) = children_range(path);
        let range = (
            Bound::Included(low.as_str()),
            Bound::Excluded(high.as_str()),
        );
        let mut names = Vec::with_capacity(node.num_children.max(0) as usize);
        for (child, _) in self.nodes.range::<_, str>(range) {
            let (_, name) = split_key(child);
            if !name.is_empty() {
                names.push(name);
            }
        }
        Some(names)
    }

    /// The number of all descendants of `path` (getAllChildrenNumber), or `None` if it does
    /// not exist.
    pub fn all_children_number(&self, path: &str) -> Option<usize> {
        if path == "/" {
            return Some(self.nodes.len().saturating_sub(1));
        }
        self.node(path)?;
        let mut count = 0;
        let mut stack = vec![path.to_string()];
        while let Some(parent) = stack.pop() {
            for name in self.children(&parent).unwrap_or_default() {
                count += 1;
                stack.push(ek_types::path::join(&parent, name));
            }
        }
        Some(count)
    }

    /// The negotiated timeout of a live session.
    pub fn session_timeout(&self, session: SessionId) -> Option<i32> {
        self.sessions.get(&session).copied()
    }

    /// Every live session with its timeout in ms, by id.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        self.sessions.iter().map(|(id, timeout)| (*id, *timeout))
    }

    /// The paths of the ephemerals a session owns, sorted.
    pub fn ephemerals_of(&self, session: SessionId) -> Vec<String> {
        let mut paths: Vec<String> = self
            .ephemerals
            .get(&session)
            .map(|keys| keys.iter().map(|key| path_of(key)).collect())
            .unwrap_or_default();
        paths.sort();
        paths
    }

    /// getEphemerals (103): the session's ephemerals whose path starts with `prefix` (as a
    /// string, as ZooKeeper compares it; `/` gives all), sorted.
    pub fn ephemerals_under(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let mut paths = self.ephemerals_of(session);
        paths.retain(|path| path.starts_with(prefix));
        paths
    }

    /// The number of znodes, the root and system nodes included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The number of distinct ACL lists in the shared table.
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    /// The number of plain (session) ephemerals.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemeral_count
    }

    /// The sum of path and data lengths over all nodes, in bytes (ZooKeeper's
    /// `approximateDataSize`).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// The zxid of the last applied txn.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The digest of the whole tree, maintained incrementally.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest recomputed from every node, for tests and snapshot checks.
    pub fn recompute_digest(&self) -> u64 {
        self.nodes.iter().fold(0u64, |sum, (key, node)| {
            sum.wrapping_add(node_hash(key, node, self.acl_hash(node)))
        })
    }

    /// Containers with no children and cversion > 0, and TTL nodes with no children
    /// whose `mtime + ttl < now_ms`, sorted. The leader proposes deletes for these.
    pub fn reap_candidates(&self, now_ms: i64) -> Vec<String> {
        let mut paths: Vec<String> = self
            .reapable
            .iter()
            .filter(|key| {
                self.nodes
                    .get(key.as_ref())
                    .is_some_and(|node| is_expired(node, now_ms))
            })
            .map(|key| path_of(key))
            .collect();
        paths.sort();
        paths
    }

    fn acl_hash(&self, node: &Node) -> u64 {
        self.acls.get(node.acl).map_or(0, |entry| entry.hash)
    }

    pub(crate) fn acl_entry(&self, node: &Node) -> Option<&AclEntry> {
        self.acls.get(node.acl)
    }

    /// Adds a node whose ACL reference the caller already took.
    pub(crate) fn insert_node(&mut self, key: Key, node: Stored) {
        self.digest = self
            .digest
            .wrapping_add(node_hash(&key, &node, self.acl_hash(&node)));
        self.data_size += (key.len() + node.data_len()) as u64;
        match EphemeralKind::from_owner(node.ephemeral_owner) {
            EphemeralKind::Session(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(key.clone());
                self.ephemeral_count += 1;
            }
            EphemeralKind::Container | EphemeralKind::Ttl(_) => {
                self.reapable.insert(key.clone());
            }
            EphemeralKind::Persistent => {}
        }
        self.nodes.insert(key, node);
    }

    /// Removes a node and releases its ACL reference.
    pub(crate) fn remove_node(&mut self, key: &str) -> Option<(Key, Stored)> {
        let (key, node) = self.nodes.remove_with_key(key)?;
        self.digest = self
            .digest
            .wrapping_sub(node_hash(&key, &node, self.acl_hash(&node)));
        self.data_size -= (key.len() + node.data_len()) as u64;
        match EphemeralKind::from_owner(node.ephemeral_owner) {
            EphemeralKind::Session(session) => {
                if let Some(keys) = self.ephemerals.get_mut(&session) {
                    keys.remove(key.as_ref());
                    if keys.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
                self.ephemeral_count -= 1;
            }
            EphemeralKind::Container | EphemeralKind::Ttl(_) => {
                self.reapable.remove(key.as_ref());
            }
            EphemeralKind::Persistent => {}
        }
        self.acls.release(node.acl);
        Some((key, node))
    }

    /// Changes a node in place (not its owner) and returns its record from before.
    pub(crate) fn modify_node(
        &mut self,
        key: &str,
        change: impl FnOnce(&mut Node),
    ) -> Option<Node> {
        let node = self.nodes.get_mut(key)?;
        let old = Node::clone(node);
        let old_hash = node_hash(key, node, self.acls.get(node.acl).map_or(0, |e| e.hash));
        node.modify(change);
        let new_hash = node_hash(key, node, self.acls.get(node.acl).map_or(0, |e| e.hash));
        self.digest = self.digest.wrapping_sub(old_hash).wrapping_add(new_hash);
        Some(old)
    }

    /// Replaces a node's data and changes its stat fields (not its owner); returns its
    /// record from before.
    pub(crate) fn replace_node_data(
        &mut self,
        key: &str,
        data: Option<&[u8]>,
        change: impl FnOnce(&mut Node),
    ) -> Option<Stored> {
        let node = self.nodes.get_mut(key)?;
        let acl_hash = self.acls.get(node.acl).map_or(0, |e| e.hash);
        let old_hash = node_hash(key, node, acl_hash);
        let mut header = Node::clone(node);
        change(&mut header);
        let old = std::mem::replace(node, Stored::new(header, data));
        let new_hash = node_hash(key, node, acl_hash);
        self.digest = self.digest.wrapping_sub(old_hash).wrapping_add(new_hash);
        self.data_size = self.data_size - old.data_len() as u64 + node.data_len() as u64;
        Some(old)
    }

    /// Rebuilds the digest from scratch (snapshot loading).
    pub(crate) fn reset_digest(&mut self) {
        self.digest = self.recompute_digest();
    }
}

/// Whether a container or TTL node is due for reaping.
pub(crate) fn is_expired(node: &Node, now_ms: i64) -> bool {
    reapable_now(
        node.ephemeral_owner,
        node.num_children,
        node.cversion,
        node.mtime,
        now_ms,
    )
}

/// The reaping rule on bare fields, shared with prep's pending records.
pub(crate) fn reapable_now(
    owner: i64,
    num_children: i32,
    cversion: i32,
    mtime: i64,
    now_ms: i64,
) -> bool {
    if num_children != 0 {
        return false;
    }
    match EphemeralKind::from_owner(owner) {
        EphemeralKind::Container => cversion > 0,
        EphemeralKind::Ttl(ttl) => mtime.saturating_add(ttl) < now_ms,
        EphemeralKind::Persistent | EphemeralKind::Session(_) => false,
    }
}

#[cfg(test)]
mod tests;

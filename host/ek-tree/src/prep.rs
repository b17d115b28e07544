//! Write prep: turns client writes into txn bodies against the tree plus the changes of
//! txns already produced but not yet applied (ZooKeeper's `PrepRequestProcessor` and its
//! `outstandingChanges`).
//!
//! The leader calls [`Prep`] in proposal order on one thread; after the tree applied the
//! txn with zxid `z`, it calls [`Prep::applied`]`(z)` so the pending records the tree now
//! reflects are dropped.

mod ops;

use crate::key::key_of;
use crate::tree::{reapable_now, DataTree};
use ek_types::{Acl, EphemeralKind, ErrorCode, Id, OpResult, SessionId, TxnBody, WriteOp, Zxid};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Who issues a write.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The caller's session.
    pub session_id: SessionId,
    /// Every id of the connection: `ip:<address>`, `digest:...`, `super:` and so on.
    pub ids: &'a [Id],
}

/// What the leader fixes for the txn being prepped.
#[derive(Clone, Copy, Debug)]
pub struct PrepContext {
    /// The zxid the txn will carry.
    pub zxid: Zxid,
    /// The leader's wall clock in ms, stamped into the txn.
    pub time_ms: i64,
    /// The largest data a create or setData may carry.
    pub max_data_bytes: usize,
}

/// What prep knows of one node: the fields its rules read.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) num_children: i32,
    pub(crate) child_creates: i32,
    pub(crate) owner: i64,
    pub(crate) mtime: i64,
    pub(crate) acl: Arc<[Acl]>,
}

/// The pending state of paths changed by txns not yet applied, and of closing sessions.
#[derive(Debug, Default)]
pub struct Prep {
    /// Path to (zxid of the latest change, state after it; `None` = deleted).
    latest: HashMap<String, (Zxid, Option<Pending>)>,
    /// Every recorded change in zxid order, to drop them as they are applied.
    order: VecDeque<(Zxid, String)>,
    /// Sessions whose close is pending, with the close txn's zxid.
    closing: BTreeMap<SessionId, Zxid>,
}

/// The state seen while prepping one request: tree, then pending, then this request's
/// own earlier ops.
pub(crate) struct Scratch<'a> {
    tree: &'a DataTree,
    latest: &'a HashMap<String, (Zxid, Option<Pending>)>,
    overlay: BTreeMap<String, Option<Pending>>,
}

impl Scratch<'_> {
    /// The state of `path` as the txns so far leave it.
    pub(crate) fn get(&self, path: &str) -> Option<Pending> {
        if let Some(state) = self.overlay.get(path) {
            return state.clone();
        }
        if let Some((_, state)) = self.latest.get(path) {
            return state.clone();
        }
        let key = key_of(path)?;
        let node = self.tree.node_by_key(&key)?;
        let stat = node.stat();
        Some(Pending {
            version: stat.version,
            cversion: stat.cversion,
            aversion: stat.aversion,
            num_children: stat.num_children,
            child_creates: node.child_creates(),
            owner: stat.ephemeral_owner,
            mtime: stat.mtime,
            acl: node.acl_shared(),
        })
    }

    /// Records the state of `path` after this op.
    pub(crate) fn set(&mut self, path: &str, state: Option<Pending>) {
        self.overlay.insert(path.to_string(), state);
    }

    /// Records the removal of a node without children, updating its parent.
    pub(crate) fn remove(&mut self, path: &str) {
        let parent_path = ek_types::path::parent(path);
        if let Some(mut parent) = self.get(parent_path) {
            parent.num_children -= 1;
            parent.cversion = parent.cversion.wrapping_add(1);
            self.set(parent_path, Some(parent));
        }
        self.set(path, None);
    }
}

impl Prep {
    /// No pending changes.
    pub fn new() -> Prep {
        Prep::default()
    }

    fn scratch<'a>(&'a self, tree: &'a DataTree) -> Scratch<'a> {
        Scratch {
            tree,
            latest: &self.latest,
            overlay: BTreeMap::new(),
        }
    }

    fn commit(&mut self, overlay: BTreeMap<String, Option<Pending>>, zxid: Zxid) {
        for (path, state) in overlay {
            self.order.push_back((zxid, path.clone()));
            self.latest.insert(path, (zxid, state));
        }
    }

    fn session_check(&self, caller: &Caller<'_>) -> Result<(), ErrorCode> {
        if self.closing.contains_key(&caller.session_id) {
            return Err(ErrorCode::SessionExpired);
        }
        Ok(())
    }

    /// Preps one write (create*, delete, setData, setACL, check). On error nothing is
    /// recorded.
    pub fn write(
        &mut self,
        tree: &DataTree,
        caller: &Caller<'_>,
        op: &WriteOp,
        ctx: &PrepContext,
    ) -> Result<TxnBody, ErrorCode> {
        self.session_check(caller)?;
        let mut scratch = self.scratch(tree);
        let body = ops::prep_op(&mut scratch, caller, op, ctx)?;
        let overlay = scratch.overlay;
        self.commit(overlay, ctx.zxid);
        Ok(body)
    }

    /// Preps a multi: ops are checked in order against the state the earlier ones leave.
    /// On failure the error holds one result per op, ZooKeeper's layout (`Error(Ok)` before
    /// the failing op, its code, `Error(RuntimeInconsistency)` after), and nothing is
    /// recorded.
    pub fn multi(
        &mut self,
        tree: &DataTree,
        caller: &Caller<'_>,
        ops: &[WriteOp],
        ctx: &PrepContext,
    ) -> Result<TxnBody, Vec<OpResult>> {
        let session = self.session_check(caller);
        let mut scratch = self.scratch(tree);
        let mut bodies = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let prepped = session.and_then(|()| ops::prep_op(&mut scratch, caller, op, ctx));
            match prepped {
                Ok(body) => bodies.push(body),
                Err(code) => return Err(multi_failure(ops.len(), index, code)),
            }
        }
        let overlay = scratch.overlay;
        self.commit(overlay, ctx.zxid);
        Ok(TxnBody::Multi(bodies))
    }

    /// Preps a session close: lists its ephemerals (tree ∪ pending creates − pending
    /// deletes, sorted), records their deletes, and marks the session closing so its later
    /// writes fail with SessionExpired.
    pub fn close_session(
        &mut self,
        tree: &DataTree,
        session: SessionId,
        ctx: &PrepContext,
    ) -> TxnBody {
        let paths = self.closing_paths(tree, session);
        let mut scratch = self.scratch(tree);
        for path in &paths {
            scratch.remove(path);
        }
        let overlay = scratch.overlay;
        self.commit(overlay, ctx.zxid);
        self.closing.insert(session, ctx.zxid);
        TxnBody::CloseSession {
            paths_to_delete: paths.into_iter().collect(),
        }
    }

    /// The ephemerals a close of `session` would delete now (tree ∪ pending creates −
    /// pending deletes, sorted), without recording anything. A caller that must split a
    /// large close into several txns sizes them with this, then calls
    /// [`Prep::close_session`] with the zxid of the last one.
    pub fn closing_paths(&self, tree: &DataTree, session: SessionId) -> BTreeSet<String> {
        let mut paths: BTreeSet<String> = tree.ephemerals_of(session).into_iter().collect();
        for (path, (_, state)) in &self.latest {
            let owned = state.as_ref().is_some_and(|node| {
                EphemeralKind::from_owner(node.owner) == EphemeralKind::Session(session)
            });
            if owned {
                paths.insert(path.clone());
            } else {
                paths.remove(path);
            }
        }
        paths
    }

    /// Preps the leader's delete of a container or TTL node found by
    /// [`DataTree::reap_candidates`], if the rule still holds once pending changes are
    /// counted.
    pub fn reap(
        &mut self,
        tree: &DataTree,
        path: &str,
        now_ms: i64,
        ctx: &PrepContext,
    ) -> Option<TxnBody> {
        let mut scratch = self.scratch(tree);
        let node = scratch.get(path)?;
        if !reapable_now(
            node.owner,
            node.num_children,
            node.cversion,
            node.mtime,
            now_ms,
        ) {
            return None;
        }
        scratch.remove(path);
        let overlay = scratch.overlay;
        self.commit(overlay, ctx.zxid);
        Some(TxnBody::Delete {
            path: path.to_string(),
        })
    }

    /// The tree has applied every txn up to `zxid`: drops the records it now reflects.
    pub fn applied(&mut self, zxid: Zxid) {
        while let Some((recorded, _)) = self.order.front() {
            if *recorded > zxid {
                break;
            }
            let Some((_, path)) = self.order.pop_front() else {
                break;
            };
            if self
                .latest
                .get(&path)
                .is_some_and(|(latest, _)| *latest <= zxid)
            {
                self.latest.remove(&path);
            }
        }
        self.closing.retain(|_, close_zxid| *close_zxid > zxid);
    }

    /// Forgets everything pending (leadership lost; proposals abandoned).
    pub fn clear(&mut self) {
        self.latest.clear();
        self.order.clear();
        self.closing.clear();
    }

    /// The number of paths with a pending change.
    pub fn pending_paths(&self) -> usize {
        self.latest.len()
    }
}

/// ZooKeeper's per-op results of a failed multi.
fn multi_failure(len: usize, failed: usize, code: ErrorCode) -> Vec<OpResult> {
    (0..len)
        .map(|index| {
            OpResult::Error(match index.cmp(&failed) {
                std::cmp::Ordering::Less => ErrorCode::Ok,
                std::cmp::Ordering::Equal => code,
                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;

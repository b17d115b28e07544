//! `DataTree::apply`: txns in, results and watch events out, all or nothing.

use crate::key::{key_of, parent_key, path_of, Key};
use crate::node::{Node, Stored};
use crate::tree::DataTree;
use ek_types::{Acl, EphemeralKind, EventType, OpCode, OpResult, SessionId, Txn, TxnBody, Zxid};
use std::sync::Arc;

/// What applying one txn did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// One result per op: one for a single op, one per sub-op of a multi, none for session
    /// txns. `TxnBody::Create` does not say which create opcode the client used, so create
    /// results carry [`OpCode::Create2`]; the server answers with its request's opcode.
    pub results: Vec<OpResult>,
    /// The watch events the txn fires, in order, with the path each fires on.
    pub events: Vec<(EventType, String)>,
}

/// Why a txn does not fit the tree. Well-prepped txns never fail; this means a bug or
/// corruption, and the tree is left exactly as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The txn's zxid is not above the last applied one.
    #[error("txn {zxid} is not after the last applied txn {last}")]
    StaleZxid {
        /// The txn's zxid.
        zxid: Zxid,
        /// The tree's last applied zxid.
        last: Zxid,
    },
    /// A path in the txn is not a valid znode path.
    #[error("invalid path {0:?}")]
    BadPath(String),
    /// The node the op changes does not exist.
    #[error("no node {0}")]
    NoNode(String),
    /// The node to create already exists.
    #[error("node {0} exists")]
    NodeExists(String),
    /// The parent of the node to create does not exist.
    #[error("parent of {0} does not exist")]
    NoParent(String),
    /// The parent of the node to create is a session ephemeral.
    #[error("parent of {0} is ephemeral")]
    EphemeralParent(String),
    /// The node to delete has children.
    #[error("node {0} has children")]
    NotEmpty(String),
    /// The txn deletes the root.
    #[error("the root cannot be deleted")]
    DeleteRoot,
    /// A multi holds a session txn or another multi.
    #[error("a multi may not contain a session txn or a multi")]
    BadMultiOp,
}

/// How to restore the tree if a later op of the txn fails.
pub(crate) enum Undo {
    /// A node was added under this key.
    Inserted(Key),
    /// A node under this key was replaced or removed; this was it, with its ACL.
    Replaced(Key, Stored, Arc<[Acl]>),
    /// The stat fields of the node under this key were changed (not its data or owner);
    /// these were they, with its ACL.
    Modified(Key, Node, Arc<[Acl]>),
    /// A session's timeout was changed (or added, or removed); this was it.
    Session(SessionId, Option<i32>),
}

/// The per-txn context every op sees.
struct Step<'a> {
    zxid: Zxid,
    time_ms: i64,
    undo: &'a mut Vec<Undo>,
    applied: &'a mut Applied,
}

impl DataTree {
    /// Applies a committed txn: advances `last_zxid`, returns the results and the watch
    /// events. On error nothing changed.
    pub fn apply(&mut self, txn: &Txn) -> Result<Applied, ApplyError> {
        if txn.zxid <= self.last_zxid {
            return Err(ApplyError::StaleZxid {
                zxid: txn.zxid,
                last: self.last_zxid,
            });
        }
        let mut undo = Vec::new();
        let mut applied = Applied::default();
        let mut step = Step {
            zxid: txn.zxid,
            time_ms: txn.time_ms,
            undo: &mut undo,
            applied: &mut applied,
        };
        match self.apply_body(txn.session_id, &txn.body, &mut step) {
            Ok(()) => {
                self.last_zxid = txn.zxid;
                Ok(applied)
            }
            Err(error) => {
                self.roll_back(undo);
                Err(error)
            }
        }
    }

    fn apply_body(
        &mut self,
        session: SessionId,
        body: &TxnBody,
        step: &mut Step<'_>,
    ) -> Result<(), ApplyError> {
        match body {
            TxnBody::CreateSession { timeout_ms } => {
                let old = self.sessions.insert(session, *timeout_ms);
                step.undo.push(Undo::Session(session, old));
            }
            TxnBody::CloseSession { paths_to_delete } => {
                for path in paths_to_delete {
                    if self.node(path).is_some() {
                        self.delete(path, step)?;
                    }
                }
                let old = self.sessions.remove(&session);
                step.undo.push(Undo::Session(session, old));
            }
            TxnBody::Multi(ops) => {
                for op in ops {
                    let result = self.apply_op(op, step)?;
                    step.applied.results.push(result);
                }
            }
            TxnBody::Error { .. } => {}
            op => {
                let result = self.apply_op(op, step)?;
                step.applied.results.push(result);
            }
        }
        Ok(())
    }

    fn apply_op(&mut self, op: &TxnBody, step: &mut Step<'_>) -> Result<OpResult, ApplyError> {
        match op {
            TxnBody::Create {
                path,
                data,
                acl,
                ephemeral_owner,
            } => self.create(path, data.as_deref(), acl, *ephemeral_owner, step),
            TxnBody::Delete { path } => self.delete(path, step).map(|()| OpResult::Delete),
            TxnBody::SetData {
                path,
                data,
                version,
            } => {
                let key = existing_key(self, path)?;
                let (zxid, time_ms) = (step.zxid, step.time_ms);
                let acl = self.acl_arc_of(&key);
                let edit = |node: &mut Node| {
                    node.version = *version;
                    node.mzxid = zxid;
                    node.mtime = time_ms;
                };
                let stat = match self.replace_node_data(&key, data.as_deref(), edit) {
                    Some(old) => {
                        step.undo
                            .push(Undo::Replaced(Key::from(key.as_str()), old, acl));
                        self.nodes
                            .get(key.as_str())
                            .map(|node| node.stat())
                            .unwrap_or_default()
                    }
                    None => ek_types::Stat::default(),
                };
                step.applied
                    .events
                    .push((EventType::NodeDataChanged, path.clone()));
                Ok(OpResult::SetData { stat })
            }
            TxnBody::SetAcl { path, acl, version } => {
                let key = existing_key(self, path)?;
                let new_id = self.acls.acquire(acl);
                let mut old_id = new_id;
                let stat = self.change(&key, step, |node| {
                    old_id = node.acl;
                    node.acl = new_id;
                    node.aversion = *version;
                });
                self.acls.release(old_id);
                Ok(OpResult::SetAcl { stat })
            }
            TxnBody::Check { path } => existing_key(self, path).map(|_| OpResult::Check),
            TxnBody::CreateSession { .. }
            | TxnBody::CloseSession { .. }
            | TxnBody::Multi(_)
            | TxnBody::Error { .. } => Err(ApplyError::BadMultiOp),
        }
    }

    fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        step: &mut Step<'_>,
    ) -> Result<OpResult, ApplyError> {
        if ek_types::path::validate(path).is_err() {
            return Err(ApplyError::BadPath(path.to_string()));
        }
        let key = key_of(path).ok_or_else(|| ApplyError::BadPath(path.to_string()))?;
        if self.nodes.contains_key(key.as_str()) {
            return Err(ApplyError::NodeExists(path.to_string()));
        }
        let parent = parent_key(&key);
        let parent_owner = match self.nodes.get(parent.as_str()) {
            Some(node) => node.ephemeral_owner,
            None => return Err(ApplyError::NoParent(path.to_string())),
        };
        if matches!(
            EphemeralKind::from_owner(parent_owner),
            EphemeralKind::Session(_)
        ) {
            return Err(ApplyError::EphemeralParent(path.to_string()));
        }
        let zxid = step.zxid;
        self.change(&parent, step, |node| {
            node.cversion = node.cversion.wrapping_add(1);
            node.child_creates = node.child_creates.wrapping_add(1);
            node.num_children += 1;
            node.pzxid = zxid;
        });
        let mut node = DataTree::new_node(owner, zxid, step.time_ms);
        node.acl = self.acls.acquire(acl);
        let node = Stored::new(node, data);
        let stat = node.stat();
        let key: Key = Key::from(key);
        self.insert_node(key.clone(), node);
        step.undo.push(Undo::Inserted(key));
        let events = &mut step.applied.events;
        events.push((EventType::NodeCreated, path.to_string()));
        events.push((EventType::NodeChildrenChanged, path_of(&parent)));
        Ok(OpResult::Create {
            opcode: OpCode::Create2,
            path: path.to_string(),
            stat,
        })
    }

    fn delete(&mut self, path: &str, step: &mut Step<'_>) -> Result<(), ApplyError> {
        if path == "/" {
            return Err(ApplyError::DeleteRoot);
        }
        let key = existing_key(self, path)?;
        let has_children = self
            .nodes
            .get(key.as_str())
            .is_some_and(|n| n.num_children != 0);
        if has_children {
            return Err(ApplyError::NotEmpty(path.to_string()));
        }
        let parent = parent_key(&key);
        let zxid = step.zxid;
        self.change(&parent, step, |node| {
            node.cversion = node.cversion.wrapping_add(1);
            node.num_children -= 1;
            node.pzxid = zxid;
        });
        let acl = self.acl_arc_of(&key);
        if let Some((key, node)) = self.remove_node(&key) {
            step.undo.push(Undo::Replaced(key, node, acl));
        }
        let events = &mut step.applied.events;
        events.push((EventType::NodeDeleted, path.to_string()));
        events.push((EventType::NodeChildrenChanged, path_of(&parent)));
        Ok(())
    }

    /// Modifies an existing node, records the undo, and returns its new stat.
    fn change(
        &mut self,
        key: &str,
        step: &mut Step<'_>,
        edit: impl FnOnce(&mut Node),
    ) -> ek_types::Stat {
        let acl = self.acl_arc_of(key);
        let Some(old) = self.modify_node(key, edit) else {
            return ek_types::Stat::default();
        };
        step.undo.push(Undo::Modified(Key::from(key), old, acl));
        self.nodes
            .get(key)
            .map(|node| node.stat())
            .unwrap_or_default()
    }

    fn acl_arc_of(&self, key: &str) -> Arc<[Acl]> {
        self.nodes
            .get(key)
            .and_then(|node| self.acl_entry(node))
            .map_or_else(|| Arc::from(Vec::new()), |entry| entry.acl.clone())
    }

    fn roll_back(&mut self, undo: Vec<Undo>) {
        for record in undo.into_iter().rev() {
            match record {
                Undo::Inserted(key) => {
                    self.remove_node(&key);
                }
                Undo::Replaced(key, node, acl) => {
                    self.remove_node(&key);
                    let acl = self.acls.acquire(&acl);
                    let mut node = node;
                    node.modify(|node| node.acl = acl);
                    self.insert_node(key, node);
                }
                Undo::Modified(key, mut header, acl) => {
                    if let Some((key, current)) = self.remove_node(&key) {
                        header.acl = self.acls.acquire(&acl);
                        self.insert_node(key, Stored::new(header, current.data()));
                    }
                }
                Undo::Session(session, Some(timeout)) => {
                    self.sessions.insert(session, timeout);
                }
                Undo::Session(session, None) => {
                    self.sessions.remove(&session);
                }
            }
        }
    }
}

/// The key of an existing node, or the matching error.
fn existing_key(tree: &DataTree, path: &str) -> Result<String, ApplyError> {
    let key = key_of(path).ok_or_else(|| ApplyError::BadPath(path.to_string()))?;
    if tree.nodes.contains_key(key.as_str()) {
        Ok(key)
    } else {
        Err(ApplyError::NoNode(path.to_string()))
    }
}

#[cfg(test)]
mod tests;

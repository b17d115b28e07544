//! One znode's stored record, its hash, and the borrowed view readers get.

use crate::acl_table::{AclEntry, AclId};
use ek_types::{Acl, Stat, Zxid};
use std::ops::Deref;
use std::sync::Arc;

/// A znode's persisted stat fields. `dataLength` is the data's length (0 for null data);
/// children live in the map under this node's key prefix and are counted in
/// `num_children`. The data itself sits after these fields in the same allocation
/// ([`Stored`]).
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// Zxid of the create.
    pub(crate) czxid: Zxid,
    /// Zxid of the last setData (or the create).
    pub(crate) mzxid: Zxid,
    /// Zxid of the last child create or delete (or the create).
    pub(crate) pzxid: Zxid,
    /// Create time, ms.
    pub(crate) ctime: i64,
    /// Last setData time, ms.
    pub(crate) mtime: i64,
    /// 0, the owning session, the container marker or the TTL encoding.
    pub(crate) ephemeral_owner: i64,
    /// Data version.
    pub(crate) version: i32,
    /// Child creates plus child deletes.
    pub(crate) cversion: i32,
    /// ACL version.
    pub(crate) aversion: i32,
    /// Current number of children.
    pub(crate) num_children: i32,
    /// Child creates only: the next sequential suffix (zk-wire §7 golden trace).
    pub(crate) child_creates: i32,
    /// Id into the ACL table.
    pub(crate) acl: AclId,
    /// ZooKeeper's null data, distinct from empty (the stored data is then empty).
    pub(crate) null_data: bool,
}

impl Node {
    /// The jute `Stat` of this node, given its data's length.
    pub(crate) fn stat_with(&self, data_len: usize) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: data_len as i32,
            num_children: self.num_children,
            pzxid: self.pzxid,
        }
    }
}

/// A znode as the map stores it: the stat fields and the data in one reference-counted
/// allocation behind a thin pointer (one allocation per znode instead of two, and an
/// 8-byte map value). Shared with snapshots; a change to a shared record copies it.
#[derive(Clone, Debug)]
pub(crate) struct Stored(triomphe::ThinArc<Node, u8>);

impl Stored {
    /// A record of `node` holding `data` (`None`: null data).
    pub(crate) fn new(mut node: Node, data: Option<&[u8]>) -> Stored {
        node.null_data = data.is_none();
        Stored(triomphe::ThinArc::from_header_and_slice(
            node,
            data.unwrap_or_default(),
        ))
    }

    /// The data; `None` for null data.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        (!self.0.header.header.null_data).then_some(&self.0.slice)
    }

    /// The data's length; null data counts as 0, as ZooKeeper's `dataLength` does.
    pub(crate) fn data_len(&self) -> usize {
        self.0.slice.len()
    }

    /// The jute `Stat`.
    pub(crate) fn stat(&self) -> Stat {
        self.stat_with(self.data_len())
    }

    /// Changes the stat fields, in place when no snapshot or reader shares the record.
    pub(crate) fn modify(&mut self, change: impl FnOnce(&mut Node)) {
        let mut change = Some(change);
        self.0.with_arc_mut(|arc| {
            if let Some(inner) = triomphe::Arc::get_mut(arc) {
                if let Some(change) = change.take() {
                    let null = inner.header().null_data;
                    change(inner.header_mut());
                    inner.header_mut().null_data = null;
                }
            }
        });
        if let Some(change) = change {
            let mut node = self.0.header.header.clone();
            change(&mut node);
            *self = Stored::new(node, self.data());
        }
    }
}

impl Deref for Stored {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.0.header.header
    }
}

/// The digest contribution of one node: xxh3 of its path, data, stat fields, sequence
/// counter and ACL content hash, each length-prefixed or fixed-width so that no two
/// different nodes feed the same bytes.
pub(crate) fn node_hash(key: &str, node: &Stored, acl_hash: u64) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    crate::key::hash_path(key, &mut hasher);
    // Null data hashes as the length `u64::MAX`, which no real data has, so null and
    // empty data contribute different bytes.
    match node.data() {
        Some(data) => {
            hasher.update(&(data.len() as u64).to_le_bytes());
            hasher.update(data);
        }
        None => hasher.update(&u64::MAX.to_le_bytes()),
    }
    for wide in [
        node.czxid.0,
        node.mzxid.0,
        node.pzxid.0,
        node.ctime,
        node.mtime,
        node.ephemeral_owner,
    ] {
        hasher.update(&wide.to_le_bytes());
    }
    for narrow in [
        node.version,
        node.cversion,
        node.aversion,
        node.num_children,
        node.child_creates,
    ] {
        hasher.update(&narrow.to_le_bytes());
    }
    hasher.update(&acl_hash.to_le_bytes());
    hasher.digest()
}

/// A borrowed view of one znode.
#[derive(Clone, Copy, Debug)]
pub struct NodeRef<'a> {
    pub(crate) node: &'a Stored,
    pub(crate) acl: &'a AclEntry,
}

impl<'a> NodeRef<'a> {
    /// The data; `None` for null data (ZooKeeper's getData returns null), which is
    /// distinct from empty.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.node.data()
    }

    /// The jute `Stat`.
    pub fn stat(&self) -> Stat {
        self.node.stat()
    }

    /// The ACL.
    pub fn acl(&self) -> &'a [Acl] {
        &self.acl.acl
    }

    /// The ACL as a shared list (a reference count bump, no copy).
    pub fn acl_shared(&self) -> Arc<[Acl]> {
        self.acl.acl.clone()
    }

    /// How many children were ever created under this node: the suffix the next
    /// sequential child gets (it does not count deletes, unlike `Stat::cversion`).
    pub fn child_creates(&self) -> i32 {
        self.node.child_creates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Node {
        let mut node = crate::tree::DataTree::new_node(0, Zxid::new(1, 1), 5);
        node.version = 3;
        node
    }

    #[test]
    fn null_and_empty_data_stay_apart() {
        let null = Stored::new(header(), None);
        let empty = Stored::new(header(), Some(&[]));
        assert_eq!(null.data(), None);
        assert_eq!(empty.data(), Some(&[][..]));
        assert_eq!((null.data_len(), empty.data_len()), (0, 0));
        assert_ne!(node_hash("k", &null, 0), node_hash("k", &empty, 0));
    }

    #[test]
    fn modify_changes_a_unique_record_in_place_and_copies_a_shared_one() {
        let mut unique = Stored::new(header(), Some(b"data"));
        unique.modify(|node| node.version = 4);
        assert_eq!((unique.version, unique.data()), (4, Some(&b"data"[..])));

        let mut record = Stored::new(header(), None);
        let reader = record.clone();
        record.modify(|node| {
            node.version = 9;
            node.null_data = false; // a change cannot turn null data into empty data
        });
        assert_eq!((record.version, record.data()), (9, None));
        assert_eq!(
            (reader.version, reader.data()),
            (3, None),
            "the reader's copy moved"
        );
        assert_eq!(record.stat().data_length, 0);
    }
}

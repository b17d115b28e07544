//! One znode's stored record, its hash, and the borrowed view readers get.

use crate::acl_table::{AclEntry, AclId};
use ek_types::{Acl, Stat, Zxid};
use std::sync::Arc;

/// A znode as stored: data plus the persisted stat fields. `dataLength` is the data's
/// length (0 for null data); children live in the map under this node's key prefix and
/// are counted in `num_children`.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The data, shared with readers and snapshots; `None` is ZooKeeper's null data,
    /// distinct from empty (same size as a bare `Arc<[u8]>`: the pointer is the niche).
    pub(crate) data: Option<Arc<[u8]>>,
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
}

impl Node {
    /// The data's length; null data counts as 0, as ZooKeeper's `dataLength` does.
    pub(crate) fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |data| data.len())
    }

    /// The jute `Stat` of this node.
    pub(crate) fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: self.data_len() as i32,
            num_children: self.num_children,
            pzxid: self.pzxid,
        }
    }
}

/// The digest contribution of one node: xxh3 of its path, data, stat fields, sequence
/// counter and ACL content hash, each length-prefixed or fixed-width so that no two
/// different nodes feed the same bytes.
pub(crate) fn node_hash(key: &str, node: &Node, acl_hash: u64) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    crate::key::hash_path(key, &mut hasher);
    // Null data hashes as the length `u64::MAX`, which no real data has, so null and
    // empty data contribute different bytes.
    match &node.data {
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
    pub(crate) node: &'a Node,
    pub(crate) acl: &'a AclEntry,
}

impl<'a> NodeRef<'a> {
    /// The data; `None` for null data (ZooKeeper's getData returns null), which is
    /// distinct from empty.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.node.data.as_deref()
    }

    /// The data as a shared buffer (a reference count bump, no copy); `None` for null.
    pub fn data_shared(&self) -> Option<Arc<[u8]>> {
        self.node.data.clone()
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

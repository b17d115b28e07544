//! O(1) snapshots of the tree and their streaming binary format.
//!
//! Format, version 2 (version 1 had no null data): the 8 magic bytes `EKTREE\0\x01`, then
//! frames of a little-endian `u32` length followed by that many bytes of postcard: one
//! [`Header`], then `acl_count` [`AclRecord`]s, `session_count` [`SessionRecord`]s and
//! `node_count` node records (by key order, so parents come before children), and nothing
//! after.

use crate::acl_table::{AclEntry, AclId};
use crate::key::{key_of, parent_key, path_of, Key};
use crate::node::{Node, Stored};
use crate::tree::DataTree;
use ek_types::{Acl, SessionId, Zxid};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Read, Write};
use std::sync::Arc;

const MAGIC: [u8; 8] = *b"EKTREE\x00\x01";
const FORMAT_VERSION: u32 = 2;
/// No frame is larger; a corrupt length beyond it fails before any allocation.
const FRAME_BYTES_MAX: u32 = 256 << 20;

/// A frozen copy of the tree, cheap to take (three persistent-map root clones) and safe
/// to stream from another thread while the tree moves on.
#[derive(Clone, Debug)]
pub struct TreeSnapshot {
    nodes: imbl::OrdMap<Key, Stored>,
    acls: imbl::OrdMap<AclId, AclEntry>,
    sessions: imbl::OrdMap<SessionId, i32>,
    last_zxid: Zxid,
    digest: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format_version: u32,
    last_zxid: Zxid,
    digest: u64,
    acl_count: u64,
    session_count: u64,
    node_count: u64,
}

#[derive(Serialize, Deserialize)]
struct AclRecord {
    id: AclId,
    acl: Vec<Acl>,
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    session_id: SessionId,
    timeout_ms: i32,
}

/// A node as written; [`NodeRecord`] is the same layout, owned, as read.
#[derive(Serialize)]
struct NodeRecordOut<'a> {
    path: &'a str,
    /// `None` is null data, distinct from empty.
    data: Option<&'a [u8]>,
    stat: StatRecord,
}

#[derive(Deserialize)]
struct NodeRecord {
    path: String,
    data: Option<Vec<u8>>,
    stat: StatRecord,
}

#[derive(Serialize, Deserialize)]
struct StatRecord {
    czxid: Zxid,
    mzxid: Zxid,
    pzxid: Zxid,
    ctime: i64,
    mtime: i64,
    ephemeral_owner: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    num_children: i32,
    child_creates: i32,
    acl: AclId,
}

/// Why snapshot bytes were rejected.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading failed, or the bytes ended early.
    #[error("snapshot read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes do not start with the snapshot magic.
    #[error("not a tree snapshot")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    /// A frame's length is beyond the limit.
    #[error("snapshot frame of {0} bytes is too large")]
    FrameTooLarge(u32),
    /// A frame does not decode as the record expected there.
    #[error("snapshot record does not decode: {0}")]
    Decode(String),
    /// Bytes follow the last record.
    #[error("trailing bytes after the snapshot")]
    TrailingBytes,
    /// Two ACL records share an id.
    #[error("ACL id {0} appears twice")]
    DuplicateAcl(AclId),
    /// A node path is not a valid znode path.
    #[error("invalid node path {0:?}")]
    BadPath(String),
    /// Two node records share a path.
    #[error("node {0} appears twice")]
    DuplicateNode(String),
    /// A node names an ACL id the snapshot does not hold.
    #[error("node {path} uses unknown ACL id {acl}")]
    UnknownAcl {
        /// The node.
        path: String,
        /// The missing id.
        acl: AclId,
    },
    /// The root is missing.
    #[error("the snapshot has no root node")]
    NoRoot,
    /// A node's parent is missing.
    #[error("node {0} has no parent")]
    NoParent(String),
    /// A node's stored child count differs from the nodes under it.
    #[error("node {path} says {stored} children but has {actual}")]
    ChildCount {
        /// The node.
        path: String,
        /// Its `num_children`.
        stored: i32,
        /// Nodes found under it.
        actual: i64,
    },
    /// The digest of the nodes read differs from the one stored.
    #[error("digest {computed:#x} differs from stored {stored:#x}")]
    DigestMismatch {
        /// The digest in the header.
        stored: u64,
        /// The digest of what was read.
        computed: u64,
    },
}

impl DataTree {
    /// Freezes the current state. O(1); call it between two applies.
    pub fn snapshot(&self) -> TreeSnapshot {
        TreeSnapshot {
            nodes: self.nodes.clone(),
            acls: self.acls.entries().clone(),
            sessions: self.sessions.clone(),
            last_zxid: self.last_zxid,
            digest: self.digest(),
        }
    }

    /// Reads a snapshot written by [`TreeSnapshot::write_to`], checking parent links, child
    /// counts, ACL references and the digest. Never panics on corrupt bytes.
    pub fn read_snapshot(r: &mut dyn Read) -> Result<DataTree, SnapshotError> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut buf = Vec::new();
        let header: Header = read_frame(r, &mut buf)?;
        if header.format_version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(header.format_version));
        }
        let acls = read_acls(r, &mut buf, header.acl_count)?;
        let mut tree = DataTree::empty();
        tree.last_zxid = header.last_zxid;
        for _ in 0..header.session_count {
            let record: SessionRecord = read_frame(r, &mut buf)?;
            tree.sessions.insert(record.session_id, record.timeout_ms);
        }
        read_nodes(r, &mut buf, header.node_count, &acls, &mut tree)?;
        if r.read(&mut [0u8; 1])? != 0 {
            return Err(SnapshotError::TrailingBytes);
        }
        check_links(&tree)?;
        tree.reset_digest();
        if tree.digest() != header.digest {
            return Err(SnapshotError::DigestMismatch {
                stored: header.digest,
                computed: tree.digest(),
            });
        }
        Ok(tree)
    }
}

impl TreeSnapshot {
    /// The zxid of the last txn the snapshot includes.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The tree digest at the snapshot.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Streams the snapshot in the versioned format (buffered internally).
    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(64 << 10, w);
        w.write_all(&MAGIC)?;
        let mut buf = Vec::new();
        let header = Header {
            format_version: FORMAT_VERSION,
            last_zxid: self.last_zxid,
            digest: self.digest,
            acl_count: self.acls.len() as u64,
            session_count: self.sessions.len() as u64,
            node_count: self.nodes.len() as u64,
        };
        write_frame(&mut w, &mut buf, &header)?;
        for (id, entry) in self.acls.iter() {
            let acl = entry.acl.to_vec();
            write_frame(&mut w, &mut buf, &AclRecord { id: *id, acl })?;
        }
        for (session_id, timeout_ms) in self.sessions.iter() {
            let record = SessionRecord {
                session_id: *session_id,
                timeout_ms: *timeout_ms,
            };
            write_frame(&mut w, &mut buf, &record)?;
        }
        for (key, node) in self.nodes.iter() {
            let path = path_of(key);
            let record = NodeRecordOut {
                path: &path,
                data: node.data(),
                stat: stat_record(node),
            };
            write_frame(&mut w, &mut buf, &record)?;
        }
        w.flush()
    }
}

fn stat_record(node: &Node) -> StatRecord {
    StatRecord {
        czxid: node.czxid,
        mzxid: node.mzxid,
        pzxid: node.pzxid,
        ctime: node.ctime,
        mtime: node.mtime,
        ephemeral_owner: node.ephemeral_owner,
        version: node.version,
        cversion: node.cversion,
        aversion: node.aversion,
        num_children: node.num_children,
        child_creates: node.child_creates,
        acl: node.acl,
    }
}

fn write_frame<T: Serialize>(
    w: &mut dyn Write,
    buf: &mut Vec<u8>,
    value: &T,
) -> std::io::Result<()> {
    buf.clear();
    let bytes = postcard::to_extend(value, std::mem::take(buf))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    *buf = bytes;
    let len = u32::try_from(buf.len())
        .ok()
        .filter(|len| *len <= FRAME_BYTES_MAX)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "record too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(buf)
}

fn read_frame<T: serde::de::DeserializeOwned>(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
) -> Result<T, SnapshotError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > FRAME_BYTES_MAX {
        return Err(SnapshotError::FrameTooLarge(len));
    }
    buf.clear();
    // `take` + `read_to_end` grows the buffer only as bytes arrive.
    let got = r.take(u64::from(len)).read_to_end(buf)?;
    if got != len as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    postcard::from_bytes(buf).map_err(|e| SnapshotError::Decode(e.to_string()))
}

fn read_acls(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
    count: u64,
) -> Result<BTreeMap<AclId, Arc<[Acl]>>, SnapshotError> {
    let mut acls = BTreeMap::new();
    for _ in 0..count {
        let record: AclRecord = read_frame(r, buf)?;
        if acls.insert(record.id, Arc::from(record.acl)).is_some() {
            return Err(SnapshotError::DuplicateAcl(record.id));
        }
    }
    Ok(acls)
}

fn read_nodes(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
    count: u64,
    acls: &BTreeMap<AclId, Arc<[Acl]>>,
    tree: &mut DataTree,
) -> Result<(), SnapshotError> {
    let mut refs: BTreeMap<AclId, u64> = BTreeMap::new();
    let mut records = Vec::new();
    for _ in 0..count {
        let record: NodeRecord = read_frame(r, buf)?;
        if ek_types::path::validate(&record.path).is_err() {
            return Err(SnapshotError::BadPath(record.path));
        }
        if !acls.contains_key(&record.stat.acl) {
            let acl = record.stat.acl;
            return Err(SnapshotError::UnknownAcl {
                path: record.path,
                acl,
            });
        }
        *refs.entry(record.stat.acl).or_default() += 1;
        records.push(record);
    }
    // Unreferenced lists are dropped; referenced ones get their exact counts.
    for (id, count) in &refs {
        if let Some(acl) = acls.get(id) {
            tree.acls.insert_entry(*id, acl.clone(), *count);
        }
    }
    for record in records {
        let key: Key = Key::from(key_of(&record.path).unwrap_or_default());
        if tree.nodes.contains_key(key.as_ref()) {
            return Err(SnapshotError::DuplicateNode(record.path));
        }
        let node = node_from_record(record);
        tree.insert_node(key, node);
    }
    Ok(())
}

fn node_from_record(record: NodeRecord) -> Stored {
    let stat = record.stat;
    let node = Node {
        czxid: stat.czxid,
        mzxid: stat.mzxid,
        pzxid: stat.pzxid,
        ctime: stat.ctime,
        mtime: stat.mtime,
        ephemeral_owner: stat.ephemeral_owner,
        version: stat.version,
        cversion: stat.cversion,
        aversion: stat.aversion,
        num_children: stat.num_children,
        child_creates: stat.child_creates,
        acl: stat.acl,
        null_data: false,
    };
    Stored::new(node, record.data.as_deref())
}

/// Every node but the root has a parent, and every stored child count is right.
fn check_links(tree: &DataTree) -> Result<(), SnapshotError> {
    let root = key_of("/").unwrap_or_default();
    if !tree.nodes.contains_key(root.as_str()) {
        return Err(SnapshotError::NoRoot);
    }
    let mut counts: HashMap<String, i64> = HashMap::new();
    for (key, _) in tree.nodes.iter() {
        if key.as_ref() == root {
            continue;
        }
        let parent = parent_key(key);
        if !tree.nodes.contains_key(parent.as_str()) {
            return Err(SnapshotError::NoParent(path_of(key)));
        }
        *counts.entry(parent).or_default() += 1;
    }
    for (key, node) in tree.nodes.iter() {
        let actual = counts.get(key.as_ref()).copied().unwrap_or(0);
        if i64::from(node.num_children) != actual {
            return Err(SnapshotError::ChildCount {
                path: path_of(key),
                stored: node.num_children,
                actual,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

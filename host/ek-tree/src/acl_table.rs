//! The deduplicated, reference-counted ACL table (ZooKeeper's `ReferenceCountedACLCache`).
//!
//! Most znodes share one of a handful of ACL lists, so nodes hold a 4-byte id instead of
//! the list. Ids are internal: they are never hashed into the digest (the list's content
//! hash is), so two replicas with different ids for the same list stay equal.

use ek_types::Acl;
use std::collections::HashMap;
use std::sync::Arc;

/// The id of an interned ACL list.
pub(crate) type AclId = u32;

/// One interned list.
#[derive(Clone, Debug)]
pub(crate) struct AclEntry {
    /// The list itself.
    pub(crate) acl: Arc<[Acl]>,
    /// xxh3 of the list's content, mixed into the hash of every node using it.
    pub(crate) hash: u64,
    /// How many nodes use it; the entry goes when this reaches zero.
    refs: u64,
}

/// Interned ACL lists by id, plus the reverse index.
#[derive(Clone, Debug, Default)]
pub(crate) struct AclTable {
    /// Persistent, so snapshots share it.
    entries: imbl::OrdMap<AclId, AclEntry>,
    /// List to id, for interning.
    index: HashMap<Arc<[Acl]>, AclId>,
    /// The next id to try.
    next_id: AclId,
}

/// The content hash of an ACL list.
pub(crate) fn acl_hash(acl: &[Acl]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&(acl.len() as u64).to_le_bytes());
    for entry in acl {
        hasher.update(&entry.perms.to_le_bytes());
        for part in [&entry.id.scheme, &entry.id.id] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.digest()
}

impl AclTable {
    /// Takes one reference to `acl`, interning it if new.
    pub(crate) fn acquire(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.index.get(acl) {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.refs += 1;
            }
            return id;
        }
        let shared: Arc<[Acl]> = Arc::from(acl);
        let id = self.free_id();
        self.insert_entry(id, shared, 1);
        id
    }

    /// Inserts an entry with a known id (snapshot load) and reference count.
    pub(crate) fn insert_entry(&mut self, id: AclId, acl: Arc<[Acl]>, refs: u64) {
        let hash = acl_hash(&acl);
        self.index.insert(acl.clone(), id);
        self.entries.insert(id, AclEntry { acl, hash, refs });
        self.next_id = self.next_id.max(id.wrapping_add(1));
    }

    fn free_id(&mut self) -> AclId {
        while self.entries.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Drops one reference; the entry goes with the last one.
    pub(crate) fn release(&mut self, id: AclId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 {
            if let Some(entry) = self.entries.remove(&id) {
                self.index.remove(&entry.acl);
            }
        }
    }

    /// The entry for an id.
    pub(crate) fn get(&self, id: AclId) -> Option<&AclEntry> {
        self.entries.get(&id)
    }

    /// The persistent map, for snapshots.
    pub(crate) fn entries(&self) -> &imbl::OrdMap<AclId, AclEntry> {
        &self.entries
    }

    /// Number of distinct lists.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_frees() {
        let mut table = AclTable::default();
        let open = Acl::open_unsafe();
        let a = table.acquire(&open);
        let b = table.acquire(&open);
        let c = table.acquire(&Acl::read_unsafe());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(table.len(), 2);
        table.release(a);
        assert_eq!(table.len(), 2);
        table.release(b);
        assert_eq!(table.len(), 1);
        assert!(table.get(a).is_none());
        assert_eq!(table.acquire(&open), table.acquire(&open));
    }
}

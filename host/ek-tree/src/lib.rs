//! The edgekeeper data tree: znodes with their data, `Stat` and ACLs, the replicated
//! session table, an incrementally maintained digest, O(1) snapshots with a streaming
//! binary format, ZooKeeper's ACL rules, and the leader's write prep that turns client
//! writes into deterministic [`ek_types::Txn`] bodies while earlier writes are still in
//! flight.
//!
//! This crate is pure. It never does I/O of its own (snapshots stream into and out of a
//! caller's `Write`/`Read`), never reads a clock (times come in the txn or as arguments),
//! never draws randomness, and never spawns or blocks. It does not know about watches,
//! connections or the ZAB log: `DataTree::apply` reports the watch events a txn fires and
//! the caller delivers them.
//!
//! # Design
//!
//! * **Storage.** All znodes live in one persistent B+tree (`imbl::OrdMap`) keyed by an
//!   encoding of the path in which the *last* `/` is replaced by `\u{2}` (a byte no valid
//!   path contains). Plain byte order on those keys puts the children of a node next to
//!   each other, so `getChildren` is a range scan and no node stores a child set: a leaf
//!   znode costs its key, its data (`Option<Arc<[u8]>>`, `None` for ZooKeeper's null
//!   data; shared with readers and snapshots), a fixed 88-byte record of stat fields, and
//!   a 4-byte id into a reference-counted, deduplicated ACL table (ZooKeeper's
//!   `ReferenceCountedACLCache`).
//! * **Snapshots.** Because the node map, the ACL table and the session table are
//!   persistent maps, [`DataTree::snapshot`] is O(1): it clones three tree roots. The apply
//!   thread takes it between txns and hands the [`TreeSnapshot`] (`Send + 'static`) to a
//!   writer thread, which streams it with [`TreeSnapshot::write_to`]. Later writes copy
//!   only the B+tree leaves they touch. A `std::collections::HashMap` would have made every
//!   snapshot an O(n) copy on the apply thread.
//! * **Digest.** A wrapping sum over nodes of xxh3-64 of (path, data, with null and empty
//!   data hashed differently, every persisted stat field, the sequence counter, and a hash
//!   of the ACL), as ZooKeeper's `DigestCalculator` sums per-node CRCs. It is updated by
//!   subtracting a node's old hash and adding its new one on every change;
//!   [`DataTree::recompute_digest`] recomputes it from scratch. xxh3 is specified and
//!   stable across platforms and releases, unlike `std`'s `RandomState`.
//! * **Apply is all-or-nothing.** Every mutation goes through a few primitives that keep
//!   the indexes and the digest right and push an undo record; a txn that does not fit the
//!   tree is rolled back and reported as an [`ApplyError`].
//! * **Prep** ([`Prep`]) keeps ZooKeeper's `outstandingChanges`: the state of every path
//!   touched by a txn that was produced but not yet applied, so pipelined writes validate
//!   against the tree as it will be.
#![warn(missing_docs)]

pub mod acl;
mod acl_table;
mod apply;
mod key;
mod node;
mod prep;
mod snapshot;
#[cfg(test)]
mod testing;
mod tree;

pub use apply::{Applied, ApplyError};
pub use node::NodeRef;
pub use prep::{Caller, Prep, PrepContext};
pub use snapshot::{SnapshotError, TreeSnapshot};
pub use tree::DataTree;

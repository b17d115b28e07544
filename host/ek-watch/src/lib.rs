//! The server-side watch registry of edgekeeper, with ZooKeeper's semantics
//! (zk-wire.md §10): one-shot data, exist and child watches, persistent and persistent
//! recursive watches (`addWatch`), triggering from the tree's events,
//! `checkWatches`/`removeWatches`, `setWatches` after a reconnect, and the counts and
//! listings behind `wchs`, `wchc`, `wchp` and `mntr`.
//!
//! The registry only decides who is notified of what. It never does I/O, never reads a
//! clock, never sends anything and never validates paths: the server validates paths,
//! feeds events in apply order, and writes the notifications it gets back to each
//! connection before any later reply.
#![warn(missing_docs)]

mod kind;
mod registry;
mod set_watches;

pub use kind::{WatchKind, WatcherId, WatcherType};
pub use registry::{WatchEvent, WatchRegistry, IMMEDIATE_ZXID};
pub use set_watches::{NodeVersionInfo, SetWatchLists};

#[cfg(test)]
mod tests;

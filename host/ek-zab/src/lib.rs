//! The ZooKeeper Atomic Broadcast (ZAB) core of edgekeeper, as a sans-IO state machine:
//! Fast Leader Election, discovery, synchronisation (DIFF / TRUNC / SNAP), broadcast, and
//! observers, following `shared/reference/zab.md` (the spec; its §11 pitfalls are named in
//! comments where they are prevented).
//!
//! [`Peer`] is one server. It is fed messages, timeouts and storage completions, and it
//! emits messages, storage requests, committed txns and events; see its documentation for
//! the call order. Txns are opaque bytes ([`Entry::data`]); the server encodes
//! `ek_types::Txn` there and applies them to the tree in the order
//! [`Peer::poll_commit`] gives them.
//!
//! This crate never does I/O, never reads a clock (time comes in as [`Time`]), never draws
//! randomness except from a PRNG seeded by [`ZabConfig::rng_seed`], never spawns or blocks,
//! and never decodes txns. Handlers touch no globals, so the same inputs give the same
//! outputs: a simulator or a model checker can drive it.
//!
//! Not covered yet: on-disk DIFF (a learner behind the in-memory window gets a SNAP),
//! dynamic reconfiguration, hierarchical quorums, REVALIDATE and session ownership (the
//! server carries those in [`Peer::forward`] payloads), ObserverMaster.

mod broadcast;
mod discovery;
mod election;
mod leader;
mod learner;
mod log;
mod observer;
mod peer;
mod sync;
mod types;

pub use peer::Peer;
pub use types::{
    Entry, Event, Message, Notification, PersistId, PersistRequest, PersistedState, ProposeError,
    RequestError, Role, ServerId, ServerState, StartError, SyncKind, Time, Vote, ZabConfig,
};

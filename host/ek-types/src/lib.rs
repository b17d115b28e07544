//! Shared vocabulary of edgekeeper: zxids, session ids, paths, ACLs, `Stat`, ZooKeeper error
//! codes and create modes, client write operations, and the deterministic transactions that
//! every replica applies in zxid order.
//!
//! This crate is pure: it never does I/O, never reads a clock and never draws randomness.
//! Everything here serialises with serde (postcard on disk and between peers).
#![warn(missing_docs)]

mod acl;
mod error;
mod event;
mod ids;
mod mode;
mod ops;
pub mod path;
mod stat;
mod txn;

pub use acl::{perms, Acl, Id};
pub use error::ErrorCode;
pub use event::{EventType, STATE_SYNC_CONNECTED};
pub use ids::{SessionId, Zxid};
pub use mode::{CreateMode, EphemeralKind, CONTAINER_OWNER, TTL_MAX_MS};
pub use ops::{OpCode, OpResult, WriteOp};
pub use stat::Stat;
pub use txn::{TreeDigest, Txn, TxnBody};

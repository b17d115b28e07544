//! The edgekeeper node runtime: it owns the data tree, the txn log and the write pipeline,
//! accepts ZooKeeper clients on TCP, and serves admin HTTP.
//!
//! It never parses command lines or config files; the `edgekeeper` binary does that and
//! hands over a [`Config`].
#![warn(missing_docs)]

mod config;

pub use config::Config;

//! edgekeeper's integration tests: real server processes on loopback, driven by real
//! ZooKeeper clients (the Rust `zookeeper-client` crate, zkCli, kazoo) and by raw frames.
//!
//! By default each test starts the `edgekeeper` binary; with `EK_TEST_ZOOKEEPER=1` each
//! starts Apache ZooKeeper instead, which proves the tests against the reference. See
//! `harness` for how servers are found, configured and awaited.

mod bad_input;
mod crash;
mod ctl;
mod harness;
mod kazoo;
mod zk_clients;
mod zkcli;

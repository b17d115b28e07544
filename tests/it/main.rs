//! edgekeeper's integration tests: real server processes on loopback, driven by real
//! ZooKeeper clients (the Rust `zookeeper-client` crate, zkCli, kazoo) and by raw frames.
//!
//! By default each test starts the `edgekeeper` binary; with `EK_TEST_ZOOKEEPER=1` each
//! starts Apache ZooKeeper instead, which proves the tests against the reference. See
//! `harness` for how servers are found, configured and awaited. The cluster tests
//! (`replication`, `failover`) start replicated edgekeeper ensembles through `cluster`,
//! optionally behind the fault-injecting UDP `proxy`, and run only against edgekeeper.
//! `plugin_e2e` covers the same ground more briefly (the two suites are to be folded into one).
//! `plugins` drives the `edgekeeper plugin` tool and real nodes and ensembles with the
//! example and hostile guest plugins, which `guests` builds once per test process.

mod bad_input;
mod cluster;
mod crash;
mod ctl;
mod failover;
mod guests;
mod harness;
mod kazoo;
mod load;
mod plugin_e2e;
mod plugins;
mod proxy;
mod replication;
mod zk_clients;
mod zkcli;

//! Host bindings generated from `wit/edgekeeper-plugin.wit`, one module per world. The
//! shared interfaces (types, tree, txn, log, clock, config) are generated once, in
//! `watcher`, and reused by the other two worlds, so one set of host impls serves all.

#![allow(missing_docs, unreachable_pub, clippy::all)]

pub(crate) mod watcher {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "watcher",
    });
}

pub(crate) mod policy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scaling-policy",
        with: {
            "edgekeeper:plugin/types": super::watcher::edgekeeper::plugin::types,
            "edgekeeper:plugin/tree": super::watcher::edgekeeper::plugin::tree,
            "edgekeeper:plugin/log": super::watcher::edgekeeper::plugin::log,
            "edgekeeper:plugin/clock": super::watcher::edgekeeper::plugin::clock,
            "edgekeeper:plugin/config": super::watcher::edgekeeper::plugin::config,
        },
    });
}

pub(crate) mod registrar {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "registrar",
        with: {
            "edgekeeper:plugin/types": super::watcher::edgekeeper::plugin::types,
            "edgekeeper:plugin/tree": super::watcher::edgekeeper::plugin::tree,
            "edgekeeper:plugin/txn": super::watcher::edgekeeper::plugin::txn,
            "edgekeeper:plugin/log": super::watcher::edgekeeper::plugin::log,
            "edgekeeper:plugin/clock": super::watcher::edgekeeper::plugin::clock,
            "edgekeeper:plugin/config": super::watcher::edgekeeper::plugin::config,
        },
    });
}

pub(crate) use watcher::edgekeeper::plugin::{clock, config, log, tree, txn, types};

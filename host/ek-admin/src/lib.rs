//! Node metrics and the admin HTTP endpoint of edgekeeper.
//!
//! [`Metrics`] is what the node updates from its hot path: gauges, counters and latency
//! histograms, all plain atomics, rendered in the Prometheus text exposition format with
//! ZooKeeper's metric names. [`serve`] answers `GET /metrics`, `/healthz` and `/readyz`
//! over HTTP/1.1 for Prometheus and Kubernetes probes.
//!
//! This crate never touches the data tree, sessions or the log: the node pushes numbers
//! in (directly, or from the [`AdminState::with_refresh`] hook), and this crate only
//! counts and reports them. It serves no TLS and no client protocol.
#![warn(missing_docs)]

mod http;
mod metrics;

#[cfg(test)]
mod expo;

pub use http::{serve, serve_with_config, AdminConfig, AdminState, RefreshHook};
pub use metrics::{
    ExtraRenderer, Gauges, LatencySummary, Metrics, ServerState, SyncKind, ZabGauges, CONTENT_TYPE,
};

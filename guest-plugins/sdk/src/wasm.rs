//! The wit-bindgen glue, one module per world (each behind its feature): the generated
//! bindings, `WasmHost` (the [`Host`](crate::Host) the node provides) and conversions to
//! the SDK's plain types. Used through the export macros, not directly.
#![allow(missing_docs, clippy::all)]

/// Conversions and the `WasmHost` over the interfaces every world imports; `$txn` says
/// whether the world imports `txn`.
macro_rules! host_glue {
    ($($txn:ident)?) => {
        use self::edgekeeper::plugin::types as wit;

        pub(crate) fn stat(s: wit::Stat) -> crate::Stat {
            crate::Stat {
                czxid: s.czxid,
                mzxid: s.mzxid,
                pzxid: s.pzxid,
                ctime_ms: s.ctime_ms,
                mtime_ms: s.mtime_ms,
                version: s.version,
                cversion: s.cversion,
                aversion: s.aversion,
                ephemeral_owner: s.ephemeral_owner,
                data_length: s.data_length,
                num_children: s.num_children,
            }
        }

        pub(crate) fn error(e: wit::TreeError) -> crate::TreeError {
            match e {
                wit::TreeError::NoNode => crate::TreeError::NoNode,
                wit::TreeError::NodeExists => crate::TreeError::NodeExists,
                wit::TreeError::NotEmpty => crate::TreeError::NotEmpty,
                wit::TreeError::BadVersion => crate::TreeError::BadVersion,
                wit::TreeError::NoChildrenForEphemerals => crate::TreeError::NoChildrenForEphemerals,
                wit::TreeError::BadArguments(s) => crate::TreeError::BadArguments(s),
                wit::TreeError::OutOfScope(s) => crate::TreeError::OutOfScope(s),
                wit::TreeError::TooLarge(n) => crate::TreeError::TooLarge(n),
                wit::TreeError::NoAuth => crate::TreeError::NoAuth,
                wit::TreeError::Unavailable(s) => crate::TreeError::Unavailable(s),
            }
        }

        /// The node, seen from inside the component.
        pub struct WasmHost;

        impl crate::Host for WasmHost {
            fn get(&mut self, path: &str) -> Result<(Vec<u8>, crate::Stat), crate::TreeError> {
                self::edgekeeper::plugin::tree::get(path)
                    .map(|(data, s)| (data, stat(s)))
                    .map_err(error)
            }
            fn exists(&mut self, path: &str) -> Result<Option<crate::Stat>, crate::TreeError> {
                self::edgekeeper::plugin::tree::exists(path)
                    .map(|s| s.map(stat))
                    .map_err(error)
            }
            fn children(&mut self, path: &str) -> Result<Vec<String>, crate::TreeError> {
                self::edgekeeper::plugin::tree::children(path).map_err(error)
            }
            fn create(&mut self, path: &str, data: &[u8], mode: crate::CreateMode) -> Result<(), crate::TreeError> {
                host_glue!(@create $($txn)? path, data, mode)
            }
            fn set(&mut self, path: &str, data: &[u8], version: Option<i32>) -> Result<(), crate::TreeError> {
                host_glue!(@set $($txn)? path, data, version)
            }
            fn delete(&mut self, path: &str, version: Option<i32>) -> Result<(), crate::TreeError> {
                host_glue!(@delete $($txn)? path, version)
            }
            fn check(&mut self, path: &str, version: i32) -> Result<(), crate::TreeError> {
                host_glue!(@check $($txn)? path, version)
            }
            fn log(&mut self, level: crate::Level, msg: &str) {
                let level = match level {
                    crate::Level::Trace => wit::Level::Trace,
                    crate::Level::Debug => wit::Level::Debug,
                    crate::Level::Info => wit::Level::Info,
                    crate::Level::Warn => wit::Level::Warn,
                    crate::Level::Error => wit::Level::Error,
                };
                self::edgekeeper::plugin::log::log(level, msg)
            }
            fn now_ms(&mut self) -> i64 {
                self::edgekeeper::plugin::clock::now_ms()
            }
            fn config(&mut self, key: &str) -> Option<String> {
                self::edgekeeper::plugin::config::get(key)
            }
            fn config_entries(&mut self) -> Vec<(String, String)> {
                self::edgekeeper::plugin::config::entries()
            }
        }
    };
    (@create txn $path:ident, $data:ident, $mode:ident) => {{
        use self::edgekeeper::plugin::txn::{self, CreateMode as M};
        let mode = match $mode {
            crate::CreateMode::Persistent => M::Persistent,
            crate::CreateMode::Ephemeral => M::Ephemeral,
            crate::CreateMode::PersistentSequential => M::PersistentSequential,
            crate::CreateMode::EphemeralSequential => M::EphemeralSequential,
        };
        txn::create($path, $data, mode).map_err(error)
    }};
    (@set txn $path:ident, $data:ident, $version:ident) => {
        self::edgekeeper::plugin::txn::set($path, $data, $version).map_err(error)
    };
    (@delete txn $path:ident, $version:ident) => {
        self::edgekeeper::plugin::txn::delete($path, $version).map_err(error)
    };
    (@check txn $path:ident, $version:ident) => {
        self::edgekeeper::plugin::txn::check($path, $version).map_err(error)
    };
    (@create $path:ident, $data:ident, $mode:ident) => {{
        let _ = ($path, $data, $mode);
        Err(crate::TreeError::BadArguments("this world cannot write".into()))
    }};
    (@set $path:ident, $data:ident, $version:ident) => {{
        let _ = ($path, $data, $version);
        Err(crate::TreeError::BadArguments("this world cannot write".into()))
    }};
    (@delete $path:ident, $version:ident) => {{
        let _ = ($path, $version);
        Err(crate::TreeError::BadArguments("this world cannot write".into()))
    }};
    (@check $path:ident, $version:ident) => {{
        let _ = ($path, $version);
        Err(crate::TreeError::BadArguments("this world cannot write".into()))
    }};
}

#[cfg(feature = "watcher")]
pub mod watcher {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "watcher",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "edgekeeper_plugin::wasm::watcher",
    });

    host_glue!(txn);

    pub fn batch(b: ChangeBatch) -> crate::ChangeBatch {
        crate::ChangeBatch {
            snapshot: b.snapshot,
            zxid: b.zxid,
            changes: b
                .changes
                .into_iter()
                .map(|c| crate::Change {
                    kind: match c.kind {
                        wit::ChangeKind::Created => crate::ChangeKind::Created,
                        wit::ChangeKind::Deleted => crate::ChangeKind::Deleted,
                        wit::ChangeKind::DataChanged => crate::ChangeKind::DataChanged,
                    },
                    path: c.path,
                    zxid: c.zxid,
                    stat: c.stat.map(stat),
                })
                .collect(),
        }
    }
}

#[cfg(feature = "scaling-policy")]
pub mod policy {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "scaling-policy",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "edgekeeper_plugin::wasm::policy",
    });

    host_glue!();

    pub fn workload(w: Workload) -> crate::Workload {
        crate::Workload {
            namespace: w.namespace,
            name: w.name,
            current_replicas: w.current_replicas,
            min_replicas: w.min_replicas,
            max_replicas: w.max_replicas,
            pods: w
                .pods
                .into_iter()
                .map(|p| crate::Pod {
                    name: p.name,
                    ready: p.ready,
                })
                .collect(),
            metrics: w
                .metrics
                .into_iter()
                .map(|m| crate::Metric {
                    name: m.name,
                    target_kind: match m.target_kind {
                        TargetKind::Utilization => crate::TargetKind::Utilization,
                        TargetKind::AverageValue => crate::TargetKind::AverageValue,
                        TargetKind::Value => crate::TargetKind::Value,
                    },
                    target: m.target,
                    per_pod: m
                        .per_pod
                        .into_iter()
                        .map(|v| crate::PodValue {
                            pod: v.pod,
                            value: v.value,
                        })
                        .collect(),
                    value: m.value,
                })
                .collect(),
            recent: w
                .recent
                .into_iter()
                .map(|d| crate::PastDecision {
                    at_ms: d.at_ms,
                    recommendation: d.recommendation,
                    desired_replicas: d.desired_replicas,
                })
                .collect(),
            settings: w.settings,
            now_ms: w.now_ms,
        }
    }

    pub fn decision(d: crate::Decision) -> Decision {
        Decision {
            desired_replicas: d.desired_replicas,
            recommendation: d.recommendation,
            reason: d.reason,
        }
    }
}

#[cfg(feature = "registrar")]
pub mod registrar {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "registrar",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "edgekeeper_plugin::wasm::registrar",
    });

    host_glue!(txn);

    pub fn record(r: ServiceRecord) -> crate::ServiceRecord {
        crate::ServiceRecord {
            namespace: r.namespace,
            name: r.name,
            endpoints: r
                .endpoints
                .into_iter()
                .map(|e| crate::Endpoint {
                    address: e.address,
                    port: e.port,
                    ready: e.ready,
                    node: e.node,
                })
                .collect(),
            labels: r.labels,
        }
    }
}

//! Conversions between the crate's own types and the `bindgen!` types of the worlds.

use crate::bindings::{policy, registrar, types as wit, watcher};
use crate::host::stat_to_wit;
use crate::types::{ChangeBatch, ChangeKind, Decision, ServiceRecord, TargetKind, Workload};

pub(crate) fn batch(batch: &ChangeBatch) -> watcher::ChangeBatch {
    watcher::ChangeBatch {
        snapshot: batch.snapshot,
        zxid: batch.zxid,
        changes: batch
            .changes
            .iter()
            .map(|change| wit::Change {
                kind: match change.kind {
                    ChangeKind::Created => wit::ChangeKind::Created,
                    ChangeKind::Deleted => wit::ChangeKind::Deleted,
                    ChangeKind::DataChanged => wit::ChangeKind::DataChanged,
                },
                path: change.path.clone(),
                zxid: change.zxid,
                stat: change.stat.map(stat_to_wit),
            })
            .collect(),
    }
}

pub(crate) fn workload(workload: &Workload) -> policy::Workload {
    policy::Workload {
        namespace: workload.namespace.clone(),
        name: workload.name.clone(),
        current_replicas: workload.current_replicas,
        min_replicas: workload.min_replicas,
        max_replicas: workload.max_replicas,
        pods: workload
            .pods
            .iter()
            .map(|pod| policy::Pod {
                name: pod.name.clone(),
                ready: pod.ready,
            })
            .collect(),
        metrics: workload
            .metrics
            .iter()
            .map(|metric| policy::Metric {
                name: metric.name.clone(),
                target_kind: match metric.target_kind {
                    TargetKind::Utilization => policy::TargetKind::Utilization,
                    TargetKind::AverageValue => policy::TargetKind::AverageValue,
                    TargetKind::Value => policy::TargetKind::Value,
                },
                target: metric.target,
                per_pod: metric
                    .per_pod
                    .iter()
                    .map(|sample| policy::PodValue {
                        pod: sample.pod.clone(),
                        value: sample.value,
                    })
                    .collect(),
                value: metric.value,
            })
            .collect(),
        recent: workload
            .recent
            .iter()
            .map(|past| policy::PastDecision {
                at_ms: past.at_ms,
                recommendation: past.recommendation,
                desired_replicas: past.desired_replicas,
            })
            .collect(),
        settings: workload
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        now_ms: workload.now_ms,
    }
}

pub(crate) fn decision(decision: policy::Decision) -> Decision {
    Decision {
        desired_replicas: decision.desired_replicas,
        recommendation: decision.recommendation,
        reason: decision.reason,
    }
}

pub(crate) fn records(records: &[ServiceRecord]) -> Vec<registrar::ServiceRecord> {
    records
        .iter()
        .map(|record| registrar::ServiceRecord {
            namespace: record.namespace.clone(),
            name: record.name.clone(),
            endpoints: record
                .endpoints
                .iter()
                .map(|endpoint| registrar::Endpoint {
                    address: endpoint.address.clone(),
                    port: endpoint.port,
                    ready: endpoint.ready,
                    node: endpoint.node.clone(),
                })
                .collect(),
            labels: record
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
        .collect()
}

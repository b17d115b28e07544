//! The scaling loop (leader only). Each interval, every workload under `/scaling/` is put
//! to the policy plugin its spec names, and the decision is recorded:
//!
//! ```text
//! /scaling/<workload>/spec        JSON ScalingSpec, written by the operator
//! /scaling/<workload>/current     {"replicas": N}, written by whoever applies decisions
//!                                 (absent: the number of pods)
//! /scaling/<workload>/pods/<pod>  {"ready": true, "metrics": {"cpu": 91.5}}, per pod, by agents
//! /scaling/<workload>/values      {"queue-depth": 12}, workload-wide metric values
//! /scaling/<workload>/decision    written here: desired replicas, reason, time, history
//! ```

use crate::env::{now_ms, NodeEnv};
use crate::manager::{Manager, PluginSession};
use crate::tree;
use ek_plugin::{CallError, Decision, World};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where workloads live.
pub(crate) const SCALING: &str = "/scaling";
/// Decisions older than this drop out of a workload's history.
const HISTORY_MS: i64 = 30 * 60 * 1000;
/// At most this many past decisions are kept.
const HISTORY_LEN: usize = 128;

/// A workload's scaling spec (`/scaling/<workload>/spec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScalingSpec {
    /// The scaling-policy plugin to ask.
    pub policy: String,
    /// Defaults to `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Defaults to the workload's node name.
    #[serde(default)]
    pub name: Option<String>,
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// What to measure and the target for each.
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    /// Free-form settings for the policy (tolerance, windows, policies, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// One metric of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetricSpec {
    /// The metric's name, as agents report it.
    pub name: String,
    /// `utilization`, `average-value` or `value`.
    pub target_kind: String,
    /// The target.
    pub target: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PodReport {
    #[serde(default)]
    ready: Option<bool>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct Current {
    replicas: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Past {
    at_ms: i64,
    recommendation: u32,
    desired_replicas: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PreviousDecision {
    #[serde(default)]
    recent: Vec<Past>,
}

/// Evaluates every workload once.
pub(crate) async fn round(manager: &mut Manager) {
    let Some(session) = manager.session.clone() else {
        return;
    };
    let has_policy = manager
        .slots
        .values()
        .any(|slot| slot.world() == World::ScalingPolicy);
    if !has_policy {
        return;
    }
    let workloads = match tree::children(&session, SCALING).await {
        Ok(workloads) => workloads,
        Err(err) => {
            tracing::debug!(%err, "cannot list workloads");
            return;
        }
    };
    for workload in workloads {
        if let Err(err) = evaluate(manager, &session, &workload).await {
            tracing::warn!(workload, err, "scaling: workload not evaluated");
        }
    }
}

async fn evaluate(
    manager: &Manager,
    session: &ek_server::LocalSession,
    workload: &str,
) -> Result<(), String> {
    let base = format!("{SCALING}/{workload}");
    let read = |what: &'static str| {
        let path = format!("{base}/{what}");
        async move {
            tree::get(session, &path)
                .await
                .map_err(|err| format!("cannot read {path}: {err}"))
        }
    };
    let Some((spec, _)) = read("spec").await? else {
        return Ok(());
    };
    let spec: ScalingSpec =
        serde_json::from_slice(&spec).map_err(|err| format!("bad {base}/spec: {err}"))?;
    let slot = manager
        .slots
        .get(&spec.policy)
        .filter(|slot| slot.world() == World::ScalingPolicy)
        .ok_or_else(|| format!("policy plugin {:?} is not loaded", spec.policy))?;
    let pods_dir = format!("{base}/pods");
    let pod_names = tree::children(session, &pods_dir)
        .await
        .map_err(|err| format!("cannot list {pods_dir}: {err}"))?;
    let mut pods = Vec::new();
    for pod in pod_names {
        let path = format!("{pods_dir}/{pod}");
        let report = match tree::get(session, &path).await {
            Ok(Some((data, _))) => serde_json::from_slice::<PodReport>(&data).unwrap_or_else(|err| {
                tracing::debug!(path, %err, "unreadable pod report; treated as missing metrics");
                PodReport::default()
            }),
            _ => continue,
        };
        pods.push((pod, report));
    }
    let current = match read("current").await? {
        Some((data, _)) => {
            serde_json::from_slice::<Current>(&data)
                .map_err(|err| format!("bad {base}/current: {err}"))?
                .replicas
        }
        None => pods.len() as u32,
    };
    let values: BTreeMap<String, f64> = match read("values").await? {
        Some((data, _)) => {
            serde_json::from_slice(&data).map_err(|err| format!("bad {base}/values: {err}"))?
        }
        None => BTreeMap::new(),
    };
    let previous: PreviousDecision = match read("decision").await? {
        Some((data, _)) => serde_json::from_slice(&data).unwrap_or_default(),
        None => PreviousDecision::default(),
    };
    let now = now_ms();
    let recent: Vec<Past> = previous
        .recent
        .into_iter()
        .filter(|past| now - past.at_ms <= HISTORY_MS)
        .collect();
    let metrics: Vec<serde_json::Value> = spec
        .metrics
        .iter()
        .map(|metric| {
            let per_pod: Vec<serde_json::Value> = pods
                .iter()
                .filter_map(|(pod, report)| {
                    report
                        .metrics
                        .get(&metric.name)
                        .map(|value| serde_json::json!({ "pod": pod, "value": value }))
                })
                .collect();
            serde_json::json!({
                "name": metric.name,
                "target-kind": metric.target_kind,
                "target": metric.target,
                "per-pod": per_pod,
                "value": values.get(&metric.name),
            })
        })
        .collect();
    let input = serde_json::json!({
        "namespace": spec.namespace.clone().unwrap_or_else(|| "default".to_owned()),
        "name": spec.name.clone().unwrap_or_else(|| workload.to_owned()),
        "current-replicas": current,
        "min-replicas": spec.min_replicas,
        "max-replicas": spec.max_replicas,
        "pods": pods.iter().map(|(pod, report)| serde_json::json!({
            "name": pod,
            "ready": report.ready.unwrap_or(true),
        })).collect::<Vec<_>>(),
        "metrics": metrics,
        "recent": recent,
        "settings": spec.settings,
        "now-ms": now,
    });
    let input: ek_plugin::Workload =
        serde_json::from_value(input).map_err(|err| format!("cannot build the input: {err}"))?;
    let env: std::sync::Arc<dyn ek_plugin::HostEnv> = std::sync::Arc::new(NodeEnv::new(
        manager.node.clone(),
        PluginSession::ids(&spec.policy),
    ));
    let plugin = slot.plugin.clone();
    let result = tokio::task::spawn_blocking(move || match plugin.lock() {
        Ok(mut plugin) => plugin.decide(&env, &input),
        Err(_) => Err(CallError::Host("plugin lock poisoned".to_owned())),
    })
    .await
    .map_err(|err| format!("call thread failed: {err}"))?;
    let decision: Decision = match result {
        Ok((decision, _)) => decision,
        Err(err) => {
            // A refusal while backing off or suspended is not news: keep the failure that
            // caused it in the status.
            let refusal = matches!(err, CallError::Backoff { .. } | CallError::Suspended { .. });
            if !refusal {
                if let Ok(mut report) = slot.report.lock() {
                    report.error(format!("{workload}: {err}"));
                }
            }
            return Err(format!("policy {}: {err}", spec.policy));
        }
    };
    let desired = decision
        .desired_replicas
        .clamp(spec.min_replicas, spec.max_replicas.max(spec.min_replicas));
    let mut recent = recent;
    recent.push(Past {
        at_ms: now,
        recommendation: decision.recommendation,
        desired_replicas: desired,
    });
    if recent.len() > HISTORY_LEN {
        recent.drain(..recent.len() - HISTORY_LEN);
    }
    let record = serde_json::json!({
        "desired-replicas": desired,
        "recommendation": decision.recommendation,
        "current-replicas": current,
        "reason": decision.reason,
        "policy": spec.policy,
        "policy-version": slot.manifest.version,
        "at-ms": now,
        "node": manager.node.node_id(),
        "recent": recent,
    });
    tree::put(
        session,
        &format!("{base}/decision"),
        record.to_string().into_bytes(),
        0,
    )
    .await
    .map_err(|err| format!("cannot record the decision: {err}"))?;
    tracing::info!(
        workload,
        current,
        desired,
        reason = %decision.reason,
        "scaling decision"
    );
    Ok(())
}

//! Kubernetes' HorizontalPodAutoscaler algorithm (autoscaling/v2), as a scaling policy:
//!
//! 1. Per metric: `desired = ceil(current × usage / target)` (utilization and average-value
//!    average over the pods that report; value metrics use the workload-wide value and
//!    the ready pod count), skipped within the tolerance (0.1). Pods missing a sample count
//!    as 100 % of target when scaling down and 0 % when scaling up; not-ready pods count as
//!    0 % when scaling up (utilization metrics); if that recomputation reverses the
//!    direction or lands within the tolerance, the metric proposes no change.
//! 2. Several metrics: the largest proposal; a metric without data blocks a scale-down.
//! 3. Stabilisation over the recent recommendations: scale-down takes the highest in the
//!    window (300 s), scale-up the lowest (0 s).
//! 4. Behavior policies limit the change per period (defaults: up `max(Percent 100/15 s,
//!    Pods 4/15 s)`, down `Percent 100/15 s`), counted from the recent decisions.
//! 5. Clamp to min/max.
//!
//! Settings (strings in the workload spec): `tolerance`, `scale-up-stabilization-s`,
//! `scale-down-stabilization-s`, `scale-up-policies` / `scale-down-policies` (JSON lists of
//! `{"type": "Pods"|"Percent", "value": N, "period-s": S}`), `scale-up-select` /
//! `scale-down-select` (`Max`, `Min`, `Disabled`).

use edgekeeper_plugin::{Decision, Host, Level, Metric, ScalingPolicy, TargetKind, Workload};
use serde::Deserialize;

/// The policy.
pub struct Hpa;

/// One behavior policy.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RatePolicy {
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    pub value: u32,
    #[serde(rename = "period-s")]
    pub period_s: u32,
}

/// Pods or Percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PolicyKind {
    Pods,
    Percent,
}

/// How policies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

/// The parsed settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub tolerance: f64,
    pub up_window_ms: i64,
    pub down_window_ms: i64,
    pub up_policies: Vec<RatePolicy>,
    pub down_policies: Vec<RatePolicy>,
    pub up_select: Select,
    pub down_select: Select,
}

fn number(w: &Workload, key: &str, default: f64) -> Result<f64, String> {
    match w.setting(key) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("setting {key:?} must be a non-negative number, got {text:?}")),
    }
}

fn policies(w: &Workload, key: &str, default: Vec<RatePolicy>) -> Result<Vec<RatePolicy>, String> {
    match w.setting(key) {
        None => Ok(default),
        Some(text) => {
            let list: Vec<RatePolicy> =
                serde_json::from_str(text).map_err(|err| format!("setting {key:?}: {err}"))?;
            if list.iter().any(|p| p.period_s == 0 || p.period_s > 1800) {
                return Err(format!("setting {key:?}: period-s must be 1..=1800"));
            }
            Ok(list)
        }
    }
}

fn select(w: &Workload, key: &str) -> Result<Select, String> {
    match w.setting(key) {
        None | Some("Max") => Ok(Select::Max),
        Some("Min") => Ok(Select::Min),
        Some("Disabled") => Ok(Select::Disabled),
        Some(other) => Err(format!(
            "setting {key:?} must be Max, Min or Disabled, got {other:?}"
        )),
    }
}

impl Behavior {
    /// Kubernetes' defaults, overridden by the workload's settings.
    pub fn from(w: &Workload) -> Result<Behavior, String> {
        let pct = |value, period_s| RatePolicy {
            kind: PolicyKind::Percent,
            value,
            period_s,
        };
        Ok(Behavior {
            tolerance: number(w, "tolerance", 0.1)?,
            up_window_ms: (number(w, "scale-up-stabilization-s", 0.0)? * 1000.0) as i64,
            down_window_ms: (number(w, "scale-down-stabilization-s", 300.0)? * 1000.0) as i64,
            up_policies: policies(
                w,
                "scale-up-policies",
                vec![
                    pct(100, 15),
                    RatePolicy {
                        kind: PolicyKind::Pods,
                        value: 4,
                        period_s: 15,
                    },
                ],
            )?,
            down_policies: policies(w, "scale-down-policies", vec![pct(100, 15)])?,
            up_select: select(w, "scale-up-select")?,
            down_select: select(w, "scale-down-select")?,
        })
    }
}

/// What one metric proposes.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// A replica count, with how it was reached.
    Replicas(u32, String),
    /// No usable data.
    Invalid(String),
}

/// The per-metric replica calculation (Kubernetes' `GetResourceReplicas` and friends).
pub fn propose(w: &Workload, metric: &Metric, tolerance: f64) -> Proposal {
    let current = w.current_replicas;
    if metric.target <= 0.0 {
        return Proposal::Invalid(format!("{}: target must be > 0", metric.name));
    }
    if metric.target_kind == TargetKind::Value {
        let Some(value) = metric.value else {
            return Proposal::Invalid(format!("{}: no value", metric.name));
        };
        let ratio = value / metric.target;
        if (ratio - 1.0).abs() <= tolerance {
            return Proposal::Replicas(
                current,
                format!("{} {value}/{} within tolerance", metric.name, metric.target),
            );
        }
        let ready = if w.pods.is_empty() {
            current
        } else {
            w.pods.iter().filter(|p| p.ready).count() as u32
        };
        let n = (ratio * f64::from(ready)).ceil() as u32;
        return Proposal::Replicas(
            n,
            format!("{} {value}/{} → {n}", metric.name, metric.target),
        );
    }
    // Per-pod metrics. Without a pod list, every pod with a sample counts as ready.
    let known: Vec<(&str, bool)> = if w.pods.is_empty() {
        metric
            .per_pod
            .iter()
            .map(|s| (s.pod.as_str(), true))
            .collect()
    } else {
        w.pods.iter().map(|p| (p.name.as_str(), p.ready)).collect()
    };
    let sample = |pod: &str| {
        metric
            .per_pod
            .iter()
            .find(|s| s.pod == pod)
            .map(|s| s.value)
    };
    // Not-ready pods are set aside for resource (utilization) metrics only.
    let set_aside_unready = metric.target_kind == TargetKind::Utilization;
    let mut used: Vec<f64> = Vec::new();
    let mut missing = 0usize;
    let mut unready = 0usize;
    for (pod, ready) in &known {
        match sample(pod) {
            Some(_) if !ready && set_aside_unready => unready += 1,
            Some(value) => used.push(value),
            None => missing += 1,
        }
    }
    if used.is_empty() {
        return Proposal::Invalid(format!("{}: no samples from ready pods", metric.name));
    }
    let usage = used.iter().sum::<f64>() / used.len() as f64;
    let ratio = usage / metric.target;
    let what = format!("{} {usage:.1}/{}", metric.name, metric.target);
    if missing == 0 && unready == 0 {
        if (ratio - 1.0).abs() <= tolerance {
            return Proposal::Replicas(current, format!("{what} within tolerance"));
        }
        let n = (ratio * used.len() as f64).ceil() as u32;
        return Proposal::Replicas(n, format!("{what} → {n}"));
    }
    let scale_up = ratio > 1.0;
    let mut all = used.clone();
    // Missing pods: 100 % of target on scale down, 0 % on scale up.
    let fill = if scale_up { 0.0 } else { metric.target };
    all.extend(std::iter::repeat_n(fill, missing));
    // Not-ready pods: 0 % when the first pass scales up; otherwise left out.
    if scale_up {
        all.extend(std::iter::repeat_n(0.0, unready));
    }
    let new_ratio = all.iter().sum::<f64>() / all.len() as f64 / metric.target;
    let reversed = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    if (new_ratio - 1.0).abs() <= tolerance || reversed {
        return Proposal::Replicas(
            current,
            format!("{what}, {missing} missing / {unready} not ready: no change after adjustment"),
        );
    }
    let n = (new_ratio * all.len() as f64).ceil() as u32;
    Proposal::Replicas(
        n,
        format!("{what}, {missing} missing / {unready} not ready → {n}"),
    )
}

/// Replicas added (positive) or removed within `period_ms` before `now`, from the history.
fn changed_in_period(w: &Workload, period_ms: i64, up: bool) -> u32 {
    let mut total = 0u32;
    for pair in w.recent.windows(2) {
        if pair[1].at_ms <= w.now_ms - period_ms {
            continue;
        }
        let (before, after) = (pair[0].desired_replicas, pair[1].desired_replicas);
        if up && after > before {
            total += after - before;
        } else if !up && before > after {
            total += before - after;
        }
    }
    total
}

/// The most replicas the up policies allow now.
fn up_limit(w: &Workload, b: &Behavior) -> u32 {
    let current = w.current_replicas;
    if b.up_select == Select::Disabled || b.up_policies.is_empty() {
        return current;
    }
    let proposals = b.up_policies.iter().map(|p| {
        let start =
            current.saturating_sub(changed_in_period(w, i64::from(p.period_s) * 1000, true));
        match p.kind {
            PolicyKind::Pods => start + p.value,
            PolicyKind::Percent => {
                (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as u32
            }
        }
    });
    match b.up_select {
        Select::Min => proposals.min().unwrap_or(current),
        _ => proposals.max().unwrap_or(current),
    }
}

/// The fewest replicas the down policies allow now.
fn down_limit(w: &Workload, b: &Behavior) -> u32 {
    let current = w.current_replicas;
    if b.down_select == Select::Disabled || b.down_policies.is_empty() {
        return current;
    }
    let proposals = b.down_policies.iter().map(|p| {
        let start = current + changed_in_period(w, i64::from(p.period_s) * 1000, false);
        match p.kind {
            PolicyKind::Pods => start.saturating_sub(p.value),
            PolicyKind::Percent => {
                (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)).max(0.0) as u32
            }
        }
    });
    match b.down_select {
        // "Max" picks the policy that allows the biggest change: the lowest count.
        Select::Min => proposals.max().unwrap_or(current),
        _ => proposals.min().unwrap_or(current),
    }
}

/// The whole algorithm.
pub fn decide(w: &Workload) -> Result<Decision, String> {
    let b = Behavior::from(w)?;
    let current = w.current_replicas;
    let (min, max) = (w.min_replicas, w.max_replicas.max(w.min_replicas));
    if current > max {
        return Ok(Decision {
            desired_replicas: max,
            recommendation: max,
            reason: format!("{current} replicas is above max {max}"),
        });
    }
    if current < min {
        return Ok(Decision {
            desired_replicas: min,
            recommendation: min,
            reason: format!("{current} replicas is below min {min}"),
        });
    }
    if w.metrics.is_empty() {
        return Err("the workload has no metrics".into());
    }
    let mut best: Option<u32> = None;
    let mut reasons = Vec::new();
    let mut invalid = Vec::new();
    for metric in &w.metrics {
        match propose(w, metric, b.tolerance) {
            Proposal::Replicas(n, why) => {
                best = Some(best.map_or(n, |b| b.max(n)));
                reasons.push(why);
            }
            Proposal::Invalid(why) => invalid.push(why),
        }
    }
    let Some(mut recommendation) = best else {
        return Err(format!("no metric has data: {}", invalid.join("; ")));
    };
    if !invalid.is_empty() && recommendation < current {
        reasons.push(format!("not scaling down: {}", invalid.join("; ")));
        recommendation = current;
    }
    let raw = recommendation;
    // Stabilisation over the recorded recommendations (and this one).
    let mut up_rec = raw;
    let mut down_rec = raw;
    for past in &w.recent {
        if past.at_ms > w.now_ms - b.up_window_ms {
            up_rec = up_rec.min(past.recommendation);
        }
        if past.at_ms > w.now_ms - b.down_window_ms {
            down_rec = down_rec.max(past.recommendation);
        }
    }
    let mut stabilised = current;
    if stabilised < up_rec {
        stabilised = up_rec;
    }
    if stabilised > down_rec {
        stabilised = down_rec;
    }
    if stabilised != raw {
        reasons.push(format!("stabilised {raw} → {stabilised}"));
    }
    // Rate limits.
    let mut desired = stabilised;
    if desired > current {
        let limit = up_limit(w, &b).min(max);
        if desired > limit {
            reasons.push(format!("scale-up limited to {limit} by policy"));
            desired = limit;
        }
    } else if desired < current {
        let limit = down_limit(w, &b).max(min);
        if desired < limit {
            reasons.push(format!("scale-down limited to {limit} by policy"));
            desired = limit;
        }
    }
    let clamped = desired.clamp(min, max);
    if clamped != desired {
        reasons.push(format!("clamped to [{min}, {max}]"));
    }
    Ok(Decision {
        desired_replicas: clamped,
        recommendation: raw,
        reason: reasons.join("; "),
    })
}

impl ScalingPolicy for Hpa {
    fn decide(host: &mut dyn Host, workload: Workload) -> Result<Decision, String> {
        let decision = decide(&workload)?;
        host.log(
            Level::Info,
            &format!(
                "{}/{}: {} → {} ({})",
                workload.namespace,
                workload.name,
                workload.current_replicas,
                decision.desired_replicas,
                decision.reason
            ),
        );
        Ok(decision)
    }
}

edgekeeper_plugin::export_scaling_policy!(Hpa);

#[cfg(test)]
mod tests;

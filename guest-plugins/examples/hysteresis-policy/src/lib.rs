//! A scaling policy with hysteresis. Utilisation is the average of the first
//! `utilization` metric over the pods that report it:
//!
//! - above `up` (80 %): scale up by one, and keep scaling up by one each evaluation until
//!   utilisation is back at or below `target` (70 %): an "up episode";
//! - below `down` (60 %): scale down by one;
//! - otherwise: hold.
//!
//! The up episode is read from the workload's recent decisions: the last change of the
//! desired count (repeated decisions skipped) was an increase. Settings (`up`, `target`, `down`) come from the workload's spec; results are
//! clamped to min/max.

use edgekeeper_plugin::{Decision, Host, Level, ScalingPolicy, TargetKind, Workload};

/// The policy.
pub struct Hysteresis;

fn setting(w: &Workload, key: &str, default: f64) -> Result<f64, String> {
    match w.setting(key) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("setting {key:?} is not a number: {text:?}")),
    }
}

/// Average utilisation of the first utilisation metric, in percent.
pub fn utilisation(w: &Workload) -> Option<f64> {
    let metric = w
        .metrics
        .iter()
        .find(|m| m.target_kind == TargetKind::Utilization)?;
    if metric.per_pod.is_empty() {
        return None;
    }
    Some(metric.per_pod.iter().map(|s| s.value).sum::<f64>() / metric.per_pod.len() as f64)
}

/// The decision, from the workload alone.
pub fn decide(w: &Workload) -> Result<Decision, String> {
    let up = setting(w, "up", 80.0)?;
    let target = setting(w, "target", 70.0)?;
    let down = setting(w, "down", 60.0)?;
    if !(down <= target && target <= up) {
        return Err(format!(
            "settings must satisfy down <= target <= up, got {down}/{target}/{up}"
        ));
    }
    let current = w.current_replicas;
    let clamp = |n: u32| n.clamp(w.min_replicas, w.max_replicas.max(w.min_replicas));
    let Some(util) = utilisation(w) else {
        return Ok(Decision {
            desired_replicas: clamp(current),
            recommendation: current,
            reason: "no utilisation samples: hold".into(),
        });
    };
    let in_episode = was_up(w);
    let (wanted, why) = if util > up {
        (
            current + 1,
            format!("utilisation {util:.1}% > {up}%: scale up"),
        )
    } else if in_episode && util > target {
        (
            current + 1,
            format!(
                "utilisation {util:.1}% still above {target}% after scaling up: keep scaling up"
            ),
        )
    } else if util < down {
        (
            current.saturating_sub(1),
            format!("utilisation {util:.1}% < {down}%: scale down"),
        )
    } else {
        (
            current,
            format!("utilisation {util:.1}% within [{down}%, {up}%]: hold"),
        )
    };
    let desired = clamp(wanted);
    let reason = if desired != wanted {
        format!(
            "{why}; clamped to {desired} (min {}, max {})",
            w.min_replicas, w.max_replicas
        )
    } else {
        why
    };
    Ok(Decision {
        desired_replicas: desired,
        recommendation: wanted,
        reason,
    })
}

/// True when the last change of the desired count was an increase. Decisions repeat
/// (each evaluation records one until the count is applied), so repeats are skipped.
fn was_up(w: &Workload) -> bool {
    let mut counts = w.recent.iter().rev().map(|d| d.desired_replicas);
    let Some(last) = counts.next() else {
        return false;
    };
    counts
        .find(|n| *n != last)
        .is_some_and(|before| before < last)
}

impl ScalingPolicy for Hysteresis {
    fn decide(host: &mut dyn Host, workload: Workload) -> Result<Decision, String> {
        let decision = decide(&workload)?;
        host.log(
            Level::Info,
            &format!(
                "{}/{}: {}",
                workload.namespace, workload.name, decision.reason
            ),
        );
        Ok(decision)
    }
}

edgekeeper_plugin::export_scaling_policy!(Hysteresis);

#[cfg(test)]
mod tests {
    use super::*;
    use edgekeeper_plugin::{Metric, PastDecision, PodValue};

    fn workload(current: u32, util: &[f64], recent: &[u32]) -> Workload {
        Workload {
            namespace: "default".into(),
            name: "web".into(),
            current_replicas: current,
            min_replicas: 1,
            max_replicas: 5,
            pods: Vec::new(),
            metrics: vec![Metric {
                name: "cpu".into(),
                target_kind: TargetKind::Utilization,
                target: 70.0,
                per_pod: util
                    .iter()
                    .enumerate()
                    .map(|(i, v)| PodValue {
                        pod: format!("p{i}"),
                        value: *v,
                    })
                    .collect(),
                value: None,
            }],
            recent: recent
                .iter()
                .enumerate()
                .map(|(i, n)| PastDecision {
                    at_ms: i as i64,
                    recommendation: *n,
                    desired_replicas: *n,
                })
                .collect(),
            settings: Vec::new(),
            now_ms: 100,
        }
    }

    #[test]
    fn scales_up_above_80_and_keeps_going_until_70() {
        assert_eq!(
            decide(&workload(2, &[90.0, 85.0], &[]))
                .unwrap()
                .desired_replicas,
            3
        );
        // 75 %: between target and up. In an up episode: keep going; otherwise hold.
        assert_eq!(
            decide(&workload(3, &[75.0], &[2, 3]))
                .unwrap()
                .desired_replicas,
            4
        );
        assert_eq!(
            decide(&workload(3, &[75.0], &[3, 3]))
                .unwrap()
                .desired_replicas,
            3
        );
        // Back at 70 %: the episode ends.
        assert_eq!(
            decide(&workload(4, &[70.0], &[3, 4]))
                .unwrap()
                .desired_replicas,
            4
        );
    }

    #[test]
    fn scales_down_below_60_and_clamps() {
        assert_eq!(
            decide(&workload(3, &[50.0], &[])).unwrap().desired_replicas,
            2
        );
        let d = decide(&workload(1, &[10.0], &[])).unwrap();
        assert_eq!((d.desired_replicas, d.recommendation), (1, 0));
        assert!(d.reason.contains("clamped"), "{}", d.reason);
        assert_eq!(
            decide(&workload(5, &[99.0], &[])).unwrap().desired_replicas,
            5
        );
    }

    #[test]
    fn bad_settings_are_an_error() {
        let mut w = workload(2, &[50.0], &[]);
        w.settings = vec![("up".into(), "fast".into())];
        assert!(decide(&w).unwrap_err().contains("not a number"));
        w.settings = vec![("down".into(), "90".into())];
        assert!(decide(&w).is_err());
    }

    #[test]
    fn no_samples_hold() {
        let d = decide(&workload(3, &[], &[])).unwrap();
        assert_eq!(d.desired_replicas, 3);
    }
}

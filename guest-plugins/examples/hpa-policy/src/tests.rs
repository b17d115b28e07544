use super::*;
use edgekeeper_plugin::{PastDecision, Pod, PodValue};

fn cpu(samples: &[(&str, f64)], target: f64) -> Metric {
    Metric {
        name: "cpu".into(),
        target_kind: TargetKind::Utilization,
        target,
        per_pod: samples
            .iter()
            .map(|(pod, value)| PodValue {
                pod: (*pod).into(),
                value: *value,
            })
            .collect(),
        value: None,
    }
}

fn workload(current: u32, pods: &[(&str, bool)], metrics: Vec<Metric>) -> Workload {
    Workload {
        namespace: "default".into(),
        name: "web".into(),
        current_replicas: current,
        min_replicas: 1,
        max_replicas: 20,
        pods: pods
            .iter()
            .map(|(name, ready)| Pod {
                name: (*name).into(),
                ready: *ready,
            })
            .collect(),
        metrics,
        recent: Vec::new(),
        settings: Vec::new(),
        now_ms: 1_000_000,
    }
}

fn desired(w: &Workload) -> u32 {
    decide(w).unwrap().desired_replicas
}

#[test]
fn the_documented_example_doubles() {
    // "if the current metric value is 200m, and the desired value is 100m, the number of
    // replicas will be doubled"
    let w = workload(
        2,
        &[("a", true), ("b", true)],
        vec![cpu(&[("a", 200.0), ("b", 200.0)], 100.0)],
    );
    assert_eq!(desired(&w), 4);
    // "if the current value is instead 50m, you'll halve the number of replicas" (within
    // the down policy of 100 % per 15 s; no history, so no stabilisation holds it).
    let w = workload(
        4,
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        vec![cpu(
            &[("a", 50.0), ("b", 50.0), ("c", 50.0), ("d", 50.0)],
            100.0,
        )],
    );
    assert_eq!(desired(&w), 2);
}

#[test]
fn within_tolerance_nothing_moves() {
    let w = workload(
        3,
        &[("a", true), ("b", true), ("c", true)],
        vec![cpu(&[("a", 108.0), ("b", 109.0), ("c", 110.0)], 100.0)],
    );
    assert_eq!(desired(&w), 3);
    let mut w = workload(3, &[("a", true)], vec![cpu(&[("a", 112.0)], 100.0)]);
    w.pods.clear();
    assert_eq!(desired(&w), 2, "112 % of one pod: ceil(1.12 × 1) = 2");
    w.settings = vec![("tolerance".into(), "0.2".into())];
    assert_eq!(desired(&w), 3, "a wider tolerance holds");
}

#[test]
fn missing_pods_damp_both_directions() {
    // Scale up: the missing pod counts as 0 %: (200 + 200 + 0) / 3 = 133 % → ceil(1.33 × 3) = 4.
    let pods = [("a", true), ("b", true), ("c", true)];
    let w = workload(3, &pods, vec![cpu(&[("a", 200.0), ("b", 200.0)], 100.0)]);
    assert_eq!(desired(&w), 4);
    // Scale down: the missing pod counts as 100 %: (20 + 100 + 100) / 3 = 73 % → 3 × .73 → 3.
    let w = workload(3, &pods, vec![cpu(&[("a", 20.0)], 100.0)]);
    let d = decide(&w).unwrap();
    assert_eq!(d.desired_replicas, 3);
    // A recomputation that reverses direction means no change: 105 % first pass is within
    // tolerance anyway; take 130 % with two missing: (130 + 0 + 0) / 3 = 43 % → reversed.
    let w = workload(3, &pods, vec![cpu(&[("a", 130.0)], 100.0)]);
    assert_eq!(desired(&w), 3);
}

#[test]
fn not_ready_pods_count_as_idle_when_scaling_up() {
    // a, b ready at 150 %, c not ready: first pass 150 % → up; with c at 0: 100 % → no change.
    let pods = [("a", true), ("b", true), ("c", false)];
    let w = workload(
        3,
        &pods,
        vec![cpu(&[("a", 150.0), ("b", 150.0), ("c", 10.0)], 100.0)],
    );
    assert_eq!(desired(&w), 3);
    // At 300 %: (300 + 300 + 0) / 3 = 200 % → 6.
    let w = workload(
        3,
        &pods,
        vec![cpu(&[("a", 300.0), ("b", 300.0), ("c", 10.0)], 100.0)],
    );
    assert_eq!(desired(&w), 6);
}

#[test]
fn several_metrics_take_the_largest_and_missing_data_blocks_scale_down() {
    let pods = [("a", true), ("b", true)];
    let queue = Metric {
        name: "queue".into(),
        target_kind: TargetKind::Value,
        target: 10.0,
        per_pod: Vec::new(),
        value: Some(30.0),
    };
    let w = workload(
        2,
        &pods,
        vec![cpu(&[("a", 50.0), ("b", 50.0)], 100.0), queue.clone()],
    );
    assert_eq!(desired(&w), 6, "queue 30/10 × 2 ready pods");
    let broken = Metric {
        value: None,
        ..queue
    };
    let w = workload(
        4,
        &[("a", true), ("b", true), ("c", true), ("d", true)],
        vec![
            cpu(&[("a", 10.0), ("b", 10.0), ("c", 10.0), ("d", 10.0)], 100.0),
            broken,
        ],
    );
    let d = decide(&w).unwrap();
    assert_eq!(d.desired_replicas, 4);
    assert!(d.reason.contains("not scaling down"), "{}", d.reason);
}

#[test]
fn scale_down_is_stabilised_over_the_window() {
    let pods = [("a", true), ("b", true), ("c", true), ("d", true)];
    let mut w = workload(
        4,
        &pods,
        vec![cpu(
            &[("a", 25.0), ("b", 25.0), ("c", 25.0), ("d", 25.0)],
            100.0,
        )],
    );
    // A recommendation of 4 two minutes ago holds the scale-down (window 300 s).
    w.recent = vec![PastDecision {
        at_ms: w.now_ms - 120_000,
        recommendation: 4,
        desired_replicas: 4,
    }];
    let d = decide(&w).unwrap();
    assert_eq!((d.desired_replicas, d.recommendation), (4, 1));
    // Ten minutes ago: outside the window.
    w.recent[0].at_ms = w.now_ms - 600_000;
    assert_eq!(desired(&w), 1);
    // A shorter window from the settings.
    w.recent[0].at_ms = w.now_ms - 120_000;
    w.settings = vec![("scale-down-stabilization-s".into(), "60".into())];
    assert_eq!(desired(&w), 1);
}

#[test]
fn scale_up_is_rate_limited_by_the_policies() {
    let w = workload(
        2,
        &[("a", true), ("b", true)],
        vec![cpu(&[("a", 1000.0), ("b", 1000.0)], 100.0)],
    );
    // Defaults: max(100 % → 4, +4 pods → 6) = 6.
    let d = decide(&w).unwrap();
    assert_eq!((d.desired_replicas, d.recommendation), (6, 20));
    let mut w = w;
    w.settings = vec![(
        "scale-up-policies".into(),
        r#"[{"type":"Pods","value":1,"period-s":60}]"#.into(),
    )];
    assert_eq!(desired(&w), 3);
    // One replica was already added 30 s ago: the period's budget is spent.
    w.recent = vec![
        PastDecision {
            at_ms: w.now_ms - 40_000,
            recommendation: 1,
            desired_replicas: 1,
        },
        PastDecision {
            at_ms: w.now_ms - 30_000,
            recommendation: 2,
            desired_replicas: 2,
        },
    ];
    assert_eq!(desired(&w), 2);
    w.settings
        .push(("scale-up-select".into(), "Disabled".into()));
    w.recent.clear();
    assert_eq!(desired(&w), 2);
}

#[test]
fn min_and_max_bound_everything() {
    let mut w = workload(
        2,
        &[("a", true), ("b", true)],
        vec![cpu(&[("a", 900.0), ("b", 900.0)], 100.0)],
    );
    w.max_replicas = 5;
    assert_eq!(desired(&w), 5);
    w.current_replicas = 9;
    assert_eq!(desired(&w), 5, "above max goes to max");
    let mut w = workload(
        2,
        &[("a", true), ("b", true)],
        vec![cpu(&[("a", 1.0), ("b", 1.0)], 100.0)],
    );
    w.min_replicas = 2;
    assert_eq!(desired(&w), 2);
}

#[test]
fn bad_settings_and_no_data_are_errors() {
    let mut w = workload(2, &[("a", true)], vec![cpu(&[], 100.0)]);
    assert!(decide(&w).unwrap_err().contains("no metric has data"));
    w.metrics = vec![cpu(&[("a", 50.0)], 100.0)];
    w.settings = vec![("scale-up-select".into(), "Sometimes".into())];
    assert!(decide(&w).is_err());
    w.settings = vec![("scale-down-policies".into(), "[{".into())];
    assert!(decide(&w).is_err());
}

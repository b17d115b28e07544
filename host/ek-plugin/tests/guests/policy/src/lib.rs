//! Test scaling policy: HPA's ratio rule on the first metric (per-pod average against the
//! target), clamped to the workload's bounds. Workloads named `spin`, `panic` and `err`
//! misbehave on purpose.

wit_bindgen::generate!({ path: "../../../../../wit", world: "scaling-policy" });

use edgekeeper::plugin::types::Level;
use edgekeeper::plugin::{log, tree};

struct Plugin;

impl Guest for Plugin {
    fn decide(w: Workload) -> Result<Decision, String> {
        match w.name.as_str() {
            "spin" => {
                let mut n = w.now_ms as u64;
                loop {
                    n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "panic" => panic!("policy panic deciding {}", w.name),
            "err" => return Err("no usable metric".into()),
            _ => {}
        }
        match tree::get(&format!("/scaling/{}/spec", w.name)) {
            Ok((data, _)) => log::log(
                Level::Debug,
                &format!("spec {}", String::from_utf8_lossy(&data)),
            ),
            Err(err) => log::log(Level::Debug, &format!("no spec: {err:?}")),
        }
        let metric = w.metrics.first().ok_or("no metrics")?;
        if metric.per_pod.is_empty() || metric.target <= 0.0 {
            return Err(format!("metric {} has no samples", metric.name));
        }
        let average =
            metric.per_pod.iter().map(|s| s.value).sum::<f64>() / metric.per_pod.len() as f64;
        let ratio = average / metric.target;
        let recommendation = (f64::from(w.current_replicas) * ratio).ceil() as u32;
        let desired = recommendation.clamp(w.min_replicas, w.max_replicas);
        log::log(Level::Info, &format!("decide {}: {desired}", w.name));
        Ok(Decision {
            desired_replicas: desired,
            recommendation,
            reason: format!("ratio {ratio:.2}"),
        })
    }
}

export!(Plugin);

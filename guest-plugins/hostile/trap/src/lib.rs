//! Hostile: a scaling policy that panics (on wasm, an `unreachable` trap).

use edgekeeper_plugin::{Decision, Host, ScalingPolicy, Workload};

pub struct Trap;

impl ScalingPolicy for Trap {
    fn decide(_host: &mut dyn Host, workload: Workload) -> Result<Decision, String> {
        panic!("hostile trap plugin deciding {}", workload.name);
    }
}

edgekeeper_plugin::export_scaling_policy!(Trap);

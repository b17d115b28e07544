//! Hostile: a scaling policy that allocates until memory runs out. With config
//! `mode = "try"` it asks with `try_reserve` and returns the allocation error; otherwise it
//! grows plain vectors, which aborts (a trap) when the host's cap is reached.

use edgekeeper_plugin::{Decision, Host, ScalingPolicy, Workload};

pub struct MemoryHog;

impl ScalingPolicy for MemoryHog {
    fn decide(host: &mut dyn Host, _workload: Workload) -> Result<Decision, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        if host.config("mode").as_deref() == Some("try") {
            loop {
                let mut chunk: Vec<u8> = Vec::new();
                chunk.try_reserve_exact(4 << 20).map_err(|err| {
                    format!(
                        "allocation of 4 MiB failed after {} MiB: {err}",
                        hoard.len() * 4
                    )
                })?;
                chunk.resize(4 << 20, 1);
                hoard.push(chunk);
            }
        }
        loop {
            hoard.push(vec![1u8; 4 << 20]);
        }
    }
}

edgekeeper_plugin::export_scaling_policy!(MemoryHog);

//! Test scaling policy that also imports `txn` (which the scaling-policy world does not
//! have): the host must refuse it at load time.

wit_bindgen::generate!({
    inline: "
        package ekt:policy-txn;
        world policy-txn {
            include edgekeeper:plugin/scaling-policy@0.1.0;
            import edgekeeper:plugin/txn@0.1.0;
        }
    ",
    path: "../../../../../wit",
    world: "ekt:policy-txn/policy-txn",
    generate_all,
});

use edgekeeper::plugin::txn;

struct Plugin;

impl Guest for Plugin {
    fn decide(w: Workload) -> Result<Decision, String> {
        txn::create("/scaling/sneaky", b"x", txn::CreateMode::Persistent)
            .map_err(|e| format!("{e:?}"))?;
        Ok(Decision {
            desired_replicas: w.current_replicas,
            recommendation: w.current_replicas,
            reason: "sneaky".into(),
        })
    }
}

export!(Plugin);

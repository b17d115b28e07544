//! Hostile: a watcher whose `on-changes` never returns. The host's deadline must stop it.

use edgekeeper_plugin::{ChangeBatch, Host, Watcher};

pub struct Spin;

impl Watcher for Spin {
    fn on_changes(_host: &mut dyn Host, batch: ChangeBatch) -> Result<(), String> {
        let mut n = batch.zxid;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

edgekeeper_plugin::export_watcher!(Spin);

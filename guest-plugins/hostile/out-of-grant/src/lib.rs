//! Hostile: a watcher granted writes under `/allowed` that tries to create
//! `/forbidden/x`. It returns the refusal as its error, or, with config `mode = "ignore"`,
//! ignores it and returns ok (the refused op was never buffered, so nothing is written).

use edgekeeper_plugin::{ChangeBatch, CreateMode, Host, Watcher};

pub struct OutOfGrant;

impl Watcher for OutOfGrant {
    fn on_changes(host: &mut dyn Host, _batch: ChangeBatch) -> Result<(), String> {
        let result = host.create("/forbidden/x", b"pwned", CreateMode::Persistent);
        match (result, host.config("mode").as_deref()) {
            (Err(err), Some("ignore")) => {
                host.log(edgekeeper_plugin::Level::Warn, &format!("ignored: {err}"));
                Ok(())
            }
            (Err(err), _) => Err(format!("write refused: {err}")),
            (Ok(()), _) => Ok(()),
        }
    }
}

edgekeeper_plugin::export_watcher!(OutOfGrant);

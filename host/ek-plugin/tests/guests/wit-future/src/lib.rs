//! Test watcher built against a future `edgekeeper:plugin@0.2.0`: the host (0.1) must
//! refuse it at load time, naming both versions.

wit_bindgen::generate!({
    inline: "
        package edgekeeper:plugin@0.2.0;
        interface log {
            enum level { trace, debug, info, warn, error }
            log: func(level: level, msg: string);
        }
        world watcher {
            import log;
            export on-changes: func(zxid: u64) -> result<_, string>;
        }
    ",
    world: "edgekeeper:plugin/watcher@0.2.0",
});

use edgekeeper::plugin::log;

struct Plugin;

impl Guest for Plugin {
    fn on_changes(zxid: u64) -> Result<(), String> {
        log::log(log::Level::Info, &format!("zxid {zxid}"));
        Ok(())
    }
}

export!(Plugin);

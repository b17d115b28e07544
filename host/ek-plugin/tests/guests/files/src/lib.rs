//! Test watcher that writes a file (`/out/zxid-<zxid>`) through WASI: it needs the
//! manifest's `[files]` grant (guest dir `/out`).

wit_bindgen::generate!({ path: "../../../../../wit", world: "watcher" });

struct Plugin;

impl Guest for Plugin {
    fn on_changes(batch: ChangeBatch) -> Result<(), String> {
        let path = format!("/out/zxid-{}", batch.zxid);
        std::fs::write(&path, batch.changes.len().to_string())
            .map_err(|err| format!("{path}: {err}"))?;
        // Nothing outside the grant is reachable.
        if std::fs::read_dir("/").is_ok() && std::fs::metadata("/etc/passwd").is_ok() {
            return Err("escaped the grant".into());
        }
        Ok(())
    }
}

export!(Plugin);

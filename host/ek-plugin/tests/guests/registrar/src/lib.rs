//! Test registrar: writes each record at `/services/<namespace>/<name>` (its ready
//! endpoints, `address:port` per line), creating or setting it. Source `err` writes and
//! then fails.

wit_bindgen::generate!({ path: "../../../../../wit", world: "registrar" });

use edgekeeper::plugin::{tree, txn};

struct Plugin;

impl Guest for Plugin {
    fn reconcile(source: String, records: Vec<ServiceRecord>) -> Result<(), String> {
        for record in &records {
            let path = format!("/services/{}/{}", record.namespace, record.name);
            let data: Vec<String> = record
                .endpoints
                .iter()
                .filter(|e| e.ready)
                .map(|e| format!("{}:{}", e.address, e.port))
                .collect();
            let data = data.join("\n");
            let result = match tree::exists(&path).map_err(|e| format!("{e:?}"))? {
                Some(stat) => txn::set(&path, data.as_bytes(), Some(stat.version)),
                None => txn::create(&path, data.as_bytes(), txn::CreateMode::Persistent),
            };
            result.map_err(|e| format!("{path}: {e:?}"))?;
        }
        if source == "err" {
            return Err("source err always fails".into());
        }
        Ok(())
    }
}

export!(Plugin);

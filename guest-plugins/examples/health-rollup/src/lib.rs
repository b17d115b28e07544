//! A watcher (on the leader) that rolls the members under `/edgekeeper/cluster/members`
//! (ephemeral nodes, one per live node or agent, data like
//! `{"id":1,"state":"leader","client":"127.0.0.1:2181"}`) up into one summary,
//! `/edgekeeper/cluster/health`:
//! `{"members":N,"names":[…],"states":{"leader":1,"follower":2},"zxid":Z}`.
//! Members whose data is not JSON with a `state` count as `unknown`. It writes only when
//! the summary changed, and it does not watch its own output, so it never loops.

use edgekeeper_plugin::{ChangeBatch, CreateMode, Host, Level, TreeError, Watcher};
use std::collections::BTreeMap;

/// The watcher.
pub struct HealthRollup;

const MEMBERS: &str = "/edgekeeper/cluster/members";
const HEALTH: &str = "/edgekeeper/cluster/health";

/// The summary of the current members (without the zxid).
pub fn summary(host: &mut dyn Host) -> Result<serde_json::Value, TreeError> {
    let names = match host.children(MEMBERS) {
        Ok(names) => names,
        Err(TreeError::NoNode) => Vec::new(),
        Err(err) => return Err(err),
    };
    let mut states: BTreeMap<String, u32> = BTreeMap::new();
    let mut live = Vec::new();
    for name in names {
        let data = match host.get(&format!("{MEMBERS}/{name}")) {
            Ok((data, _)) => data,
            // Gone between the listing and the read: not a member any more.
            Err(TreeError::NoNode) => continue,
            Err(err) => return Err(err),
        };
        let state = serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        *states.entry(state).or_default() += 1;
        live.push(name);
    }
    Ok(serde_json::json!({ "members": live.len(), "names": live, "states": states }))
}

impl Watcher for HealthRollup {
    fn on_changes(host: &mut dyn Host, batch: ChangeBatch) -> Result<(), String> {
        let mut value = summary(host).map_err(|e| e.to_string())?;
        let current = match host.get(HEALTH) {
            Ok((data, stat)) => Some((
                serde_json::from_slice::<serde_json::Value>(&data).ok(),
                stat.version,
            )),
            Err(TreeError::NoNode) => None,
            Err(err) => return Err(err.to_string()),
        };
        if let Some((Some(old), _)) = &current {
            let mut old = old.clone();
            if let Some(object) = old.as_object_mut() {
                object.remove("zxid");
            }
            if old == value {
                return Ok(());
            }
        }
        value["zxid"] = batch.zxid.into();
        let text = value.to_string();
        match current {
            Some((_, version)) => host.set(HEALTH, text.as_bytes(), Some(version)),
            None => host.create(HEALTH, text.as_bytes(), CreateMode::Persistent),
        }
        .map_err(|e| e.to_string())?;
        host.log(Level::Info, &format!("cluster health: {text}"));
        Ok(())
    }
}

edgekeeper_plugin::export_watcher!(HealthRollup);

#[cfg(test)]
mod tests {
    use super::*;
    use edgekeeper_plugin::MockHost;

    fn batch(zxid: u64) -> ChangeBatch {
        ChangeBatch {
            snapshot: false,
            zxid,
            changes: Vec::new(),
        }
    }

    #[test]
    fn summarises_and_writes_only_on_change() {
        let mut host = MockHost::new();
        host.put(
            "/edgekeeper/cluster/members/1",
            br#"{"id":1,"state":"leader"}"#,
            true,
        );
        host.put(
            "/edgekeeper/cluster/members/2",
            br#"{"id":2,"state":"follower"}"#,
            true,
        );
        host.put("/edgekeeper/cluster/members/agent", b"not json", true);
        HealthRollup::on_changes(&mut host, batch(7)).unwrap();
        host.commit().unwrap();
        let health: serde_json::Value = serde_json::from_slice(host.data(HEALTH).unwrap()).unwrap();
        assert_eq!(health["members"], 3);
        assert_eq!(health["states"]["leader"], 1);
        assert_eq!(health["states"]["unknown"], 1);
        assert_eq!(health["zxid"], 7);
        // Nothing changed: no write.
        HealthRollup::on_changes(&mut host, batch(8)).unwrap();
        assert!(host.ops.is_empty());
        // A member leaves.
        host.delete("/edgekeeper/cluster/members/agent", None)
            .unwrap();
        host.commit().unwrap();
        HealthRollup::on_changes(&mut host, batch(9)).unwrap();
        assert_eq!(host.ops.len(), 1);
        host.commit().unwrap();
        let health: serde_json::Value = serde_json::from_slice(host.data(HEALTH).unwrap()).unwrap();
        assert_eq!(health["members"], 2);
    }

    #[test]
    fn no_members_is_an_empty_summary() {
        let mut host = MockHost::new();
        host.put("/edgekeeper/cluster", b"", false);
        HealthRollup::on_changes(&mut host, batch(1)).unwrap();
        host.commit().unwrap();
        let health: serde_json::Value = serde_json::from_slice(host.data(HEALTH).unwrap()).unwrap();
        assert_eq!(health["members"], 0);
    }
}

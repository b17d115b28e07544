//! A registrar: each service record of a source becomes
//! `/services/<namespace>/<name>/<address>:<port>` with JSON data
//! `{"address", "port", "ready", "node", "labels"}`. The service node
//! `/services/<namespace>/<name>` records its owner (`{"source": …}`): a registrar only
//! changes and removes services its source owns, so several sources can share the tree.
//! Only ready endpoints are registered unless config `include-not-ready` is `"true"`.
//! Each reconcile writes only the difference, as one transaction.

use edgekeeper_plugin::{CreateMode, Host, Level, Registrar, ServiceRecord, TreeError};
use std::collections::{BTreeMap, BTreeSet};

/// The registrar.
pub struct ServiceRegistrar;

const ROOT: &str = "/services";

fn owner_of(host: &mut dyn Host, path: &str) -> Result<Option<String>, TreeError> {
    match host.get(path) {
        Ok((data, _)) => Ok(serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v.get("source").and_then(|s| s.as_str()).map(str::to_owned))),
        Err(TreeError::NoNode) => Ok(None),
        Err(err) => Err(err),
    }
}

fn children(host: &mut dyn Host, path: &str) -> Result<Vec<String>, TreeError> {
    match host.children(path) {
        Ok(children) => Ok(children),
        Err(TreeError::NoNode) => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.chars().any(char::is_control)
}

/// Buffers the writes that make `/services` match `records` for `source`; returns how
/// many nodes it creates, updates and deletes.
pub fn reconcile(
    host: &mut dyn Host,
    source: &str,
    records: &[ServiceRecord],
) -> Result<(usize, usize, usize), String> {
    let include_not_ready = host.config("include-not-ready").as_deref() == Some("true");
    let err = |e: TreeError| e.to_string();
    // Desired: service path -> endpoint name -> data.
    let mut desired: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for record in records {
        if !valid_segment(&record.namespace) || !valid_segment(&record.name) {
            host.log(
                Level::Warn,
                &format!(
                    "skipping a record with a bad name: {}/{}",
                    record.namespace, record.name
                ),
            );
            continue;
        }
        let labels: BTreeMap<&str, &str> = record
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let endpoints = desired
            .entry((record.namespace.clone(), record.name.clone()))
            .or_default();
        for endpoint in &record.endpoints {
            if !endpoint.ready && !include_not_ready {
                continue;
            }
            let name = format!("{}:{}", endpoint.address, endpoint.port);
            if !valid_segment(&name) {
                continue;
            }
            let data = serde_json::json!({
                "address": endpoint.address,
                "port": endpoint.port,
                "ready": endpoint.ready,
                "node": endpoint.node,
                "labels": labels,
            });
            endpoints.insert(name, data.to_string().into_bytes());
        }
    }
    let (mut created, mut updated, mut deleted) = (0, 0, 0);
    let owner = serde_json::json!({ "source": source })
        .to_string()
        .into_bytes();
    let mut made: BTreeSet<String> = BTreeSet::new();
    let root_exists = host.exists(ROOT).map_err(err)?.is_some();
    if !root_exists && !desired.is_empty() {
        host.create(ROOT, b"", CreateMode::Persistent)
            .map_err(err)?;
        made.insert(ROOT.to_owned());
        created += 1;
    }
    for ((namespace, name), endpoints) in &desired {
        let ns_path = format!("{ROOT}/{namespace}");
        if !made.contains(&ns_path)
            && (!root_exists || host.exists(&ns_path).map_err(err)?.is_none())
        {
            host.create(&ns_path, b"", CreateMode::Persistent)
                .map_err(err)?;
            made.insert(ns_path.clone());
            created += 1;
        }
        let service = format!("{ns_path}/{name}");
        let existing_owner = if made.contains(&ns_path) {
            None
        } else {
            owner_of(host, &service).map_err(err)?
        };
        let exists = !made.contains(&ns_path) && host.exists(&service).map_err(err)?.is_some();
        if exists && existing_owner.as_deref() != Some(source) {
            host.log(
                Level::Warn,
                &format!("{service} belongs to another source; left alone"),
            );
            continue;
        }
        if !exists {
            host.create(&service, &owner, CreateMode::Persistent)
                .map_err(err)?;
            created += 1;
        }
        let current: BTreeSet<String> = if exists {
            children(host, &service).map_err(err)?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        for (endpoint, data) in endpoints {
            let path = format!("{service}/{endpoint}");
            if current.contains(endpoint) {
                let (old, stat) = host.get(&path).map_err(err)?;
                if old != *data {
                    host.set(&path, data, Some(stat.version)).map_err(err)?;
                    updated += 1;
                }
            } else {
                host.create(&path, data, CreateMode::Persistent)
                    .map_err(err)?;
                created += 1;
            }
        }
        for endpoint in current.iter().filter(|e| !endpoints.contains_key(*e)) {
            host.delete(&format!("{service}/{endpoint}"), None)
                .map_err(err)?;
            deleted += 1;
        }
    }
    // Services of this source that the source no longer lists go, with their endpoints.
    if root_exists {
        for namespace in children(host, ROOT).map_err(err)? {
            let ns_path = format!("{ROOT}/{namespace}");
            for name in children(host, &ns_path).map_err(err)? {
                if desired.contains_key(&(namespace.clone(), name.clone())) {
                    continue;
                }
                let service = format!("{ns_path}/{name}");
                if owner_of(host, &service).map_err(err)?.as_deref() != Some(source) {
                    continue;
                }
                for endpoint in children(host, &service).map_err(err)? {
                    host.delete(&format!("{service}/{endpoint}"), None)
                        .map_err(err)?;
                    deleted += 1;
                }
                host.delete(&service, None).map_err(err)?;
                deleted += 1;
            }
        }
    }
    Ok((created, updated, deleted))
}

impl Registrar for ServiceRegistrar {
    fn reconcile(
        host: &mut dyn Host,
        source: String,
        records: Vec<ServiceRecord>,
    ) -> Result<(), String> {
        let (created, updated, deleted) = reconcile(host, &source, &records)?;
        if created + updated + deleted > 0 {
            host.log(
                Level::Info,
                &format!(
                    "source {source}: {created} created, {updated} updated, {deleted} deleted"
                ),
            );
        }
        Ok(())
    }
}

edgekeeper_plugin::export_registrar!(ServiceRegistrar);

#[cfg(test)]
mod tests {
    use super::*;
    use edgekeeper_plugin::{Endpoint, MockHost};

    fn record(name: &str, endpoints: &[(&str, u16, bool)]) -> ServiceRecord {
        ServiceRecord {
            namespace: "default".into(),
            name: name.into(),
            endpoints: endpoints
                .iter()
                .map(|(a, p, r)| Endpoint {
                    address: (*a).into(),
                    port: *p,
                    ready: *r,
                    node: None,
                })
                .collect(),
            labels: vec![("app".into(), name.into())],
        }
    }

    fn run(host: &mut MockHost, source: &str, records: &[ServiceRecord]) -> (usize, usize, usize) {
        let counts = reconcile(host, source, records).unwrap();
        host.commit().unwrap();
        counts
    }

    #[test]
    fn registers_updates_and_removes_only_its_own() {
        let mut host = MockHost::new();
        let web = record(
            "web",
            &[
                ("10.0.0.1", 80, true),
                ("10.0.0.2", 80, true),
                ("10.0.0.3", 80, false),
            ],
        );
        assert_eq!(
            run(&mut host, "static", std::slice::from_ref(&web)),
            (5, 0, 0)
        );
        let data = host.data("/services/default/web/10.0.0.1:80").unwrap();
        let value: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(value["port"], 80);
        assert_eq!(value["labels"]["app"], "web");
        assert!(
            host.data("/services/default/web/10.0.0.3:80").is_none(),
            "not ready"
        );
        // Idempotent.
        assert_eq!(run(&mut host, "static", &[web]), (0, 0, 0));
        // Another source's service is not touched.
        host.put("/services/default/db", br#"{"source":"other"}"#, false);
        host.put("/services/default/db/10.0.0.9:5432", b"{}", false);
        // One endpoint goes, one changes readiness filter; the service list shrinks later.
        let web = record("web", &[("10.0.0.1", 80, true)]);
        assert_eq!(run(&mut host, "static", &[web]), (0, 0, 1));
        assert!(host.data("/services/default/web/10.0.0.2:80").is_none());
        assert_eq!(run(&mut host, "static", &[]), (0, 0, 2));
        assert!(host.data("/services/default/web").is_none());
        assert!(host.data("/services/default/db/10.0.0.9:5432").is_some());
    }

    #[test]
    fn not_ready_endpoints_register_when_configured() {
        let mut host = MockHost::new().with_config("include-not-ready", "true");
        run(
            &mut host,
            "static",
            &[record("web", &[("10.0.0.3", 80, false)])],
        );
        assert!(host.data("/services/default/web/10.0.0.3:80").is_some());
    }

    #[test]
    fn refuses_writes_outside_its_grant() {
        let mut host = MockHost::new();
        host.write_prefixes = Some(vec!["/elsewhere".into()]);
        let err = reconcile(
            &mut host,
            "static",
            &[record("web", &[("10.0.0.1", 80, true)])],
        )
        .unwrap_err();
        assert!(err.contains("out of scope"), "{err}");
    }
}

//! The registrar loop (leader only): each interval, the full set of service records of
//! each configured source goes to every registrar plugin, which writes the difference to
//! `/services/...` through its buffered txn. Sources are static JSON files for now (a list
//! of records as `ek_plugin::ServiceRecord`); the k3s bridge adds another source later.

use crate::env::NodeEnv;
use crate::manager::{Manager, PluginSession};
use ek_plugin::{CallError, ServiceRecord, World};
use std::path::Path;

/// Reads a static source file: a JSON list of service records.
pub fn read_records(file: &Path) -> Result<Vec<ServiceRecord>, String> {
    let text =
        std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()))?;
    serde_json::from_slice(&text).map_err(|err| format!("{}: {err}", file.display()))
}

/// Feeds every source to every registrar once.
pub(crate) async fn round(manager: &mut Manager) {
    if manager.config.sources.is_empty() {
        return;
    }
    let registrars: Vec<String> = manager
        .slots
        .iter()
        .filter(|(_, slot)| slot.world() == World::Registrar && manager.is_active(slot))
        .map(|(name, _)| name.clone())
        .collect();
    if registrars.is_empty() {
        return;
    }
    for source in manager.config.sources.clone() {
        let file = source.file.clone();
        let records = match tokio::task::spawn_blocking(move || read_records(&file)).await {
            Ok(Ok(records)) => records,
            Ok(Err(err)) => {
                tracing::warn!(
                    source = source.name,
                    err,
                    "registrar source unreadable; skipped"
                );
                continue;
            }
            Err(err) => {
                tracing::warn!(source = source.name, %err, "registrar source read failed");
                continue;
            }
        };
        for name in &registrars {
            let Some(slot) = manager.slots.get(name) else {
                continue;
            };
            let env: std::sync::Arc<dyn ek_plugin::HostEnv> =
                std::sync::Arc::new(NodeEnv::new(manager.node.clone(), PluginSession::ids(name)));
            let plugin = slot.plugin.clone();
            let source_name = source.name.clone();
            let input = records.clone();
            let result = tokio::task::spawn_blocking(move || match plugin.lock() {
                Ok(mut plugin) => plugin.reconcile(&env, &source_name, &input),
                Err(_) => Err(CallError::Host("plugin lock poisoned".to_owned())),
            })
            .await
            .unwrap_or_else(|err| Err(CallError::Host(format!("call thread failed: {err}"))));
            match result {
                Ok(output) => {
                    let submitted = slot.session.submit(&output.ops).await;
                    if let Ok(mut report) = slot.report.lock() {
                        if !output.ops.is_empty() {
                            report.txns += 1;
                        }
                        if let Err(err) = &submitted {
                            report.txn_failures += 1;
                            report.error(format!(
                                "source {}: txn of {} ops refused: {err}",
                                source.name,
                                output.ops.len()
                            ));
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(plugin = name, source = source.name, %err, "reconcile failed");
                    // Refusals while backing off or suspended keep the real failure shown.
                    let refusal =
                        matches!(err, CallError::Backoff { .. } | CallError::Suspended { .. });
                    if let (false, Ok(mut report)) = (refusal, slot.report.lock()) {
                        report.error(format!("source {}: {err}", source.name));
                    }
                }
            }
        }
    }
}

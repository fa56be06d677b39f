//! The ML tier's registry in the engine's store: every version (sidecar, training
//! metrics, ONNX bytes, state) in `models`, the deployment with its history and the
//! model-vs-Bayesian comparison in the setting `ml_registry`. Written on every change to
//! the registry, read back when an engine starts on the store.

use serde::{Deserialize, Serialize};

use super::ModelRecord;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ml::{Comparison, Deployment, MlSnapshot, StoredModel};
use crate::time;

const SETTING: &str = "ml_registry";

/// The registry without its models (those are rows of `models`).
#[derive(Serialize, Deserialize)]
struct Registry {
    versions: Vec<String>,
    deployment: Deployment,
    history: Vec<Deployment>,
    comparison: Comparison,
}

impl Engine {
    /// Write the ML registry to the store (after a change to it).
    pub(crate) fn save_ml_registry(&self) -> Result<()> {
        let snapshot = self.ml_snapshot();
        let infos = self.models();
        let store = self.store();
        for stored in &snapshot.versions {
            let version = &stored.sidecar.version;
            let info = infos.iter().find(|i| &i.version == version);
            let registered = time::parse_rfc3339(&stored.registered_at).unwrap_or(0);
            store.model_put(&ModelRecord {
                version: version.clone(),
                status: info.map_or_else(|| "registered".into(), |i| i.state.clone()),
                sidecar: serde_json::to_value(&stored.sidecar).unwrap_or_default(),
                metrics: info.and_then(|i| serde_json::to_value(&i.metrics).ok()).unwrap_or_default(),
                bytes: Some(stored.onnx.clone()),
                path: None,
                created_ms: registered,
                updated_ms: time::now_ms(),
            })?;
        }
        let registry = Registry {
            versions: snapshot.versions.iter().map(|v| v.sidecar.version.clone()).collect(),
            deployment: snapshot.deployment,
            history: snapshot.history,
            comparison: snapshot.comparison,
        };
        let json = serde_json::to_string(&registry).map_err(|e| Error::Store(format!("ml registry: {e}")))?;
        store.setting_put(SETTING, &json)
    }

    /// Read the ML registry back from the store, if one was written.
    pub(crate) fn load_ml_registry(&self) -> Result<()> {
        let store = self.store();
        let Some(json) = store.setting_get(SETTING)? else { return Ok(()) };
        let registry: Registry = serde_json::from_str(&json)
            .map_err(|e| Error::Store(format!("{}: unreadable ml registry: {e}", store.url())))?;
        let mut versions = Vec::with_capacity(registry.versions.len());
        for version in &registry.versions {
            let model = store.model_get(version)?.ok_or_else(|| {
                Error::Store(format!("{}: model {version:?} of the ml registry is missing", store.url()))
            })?;
            versions.push(StoredModel {
                sidecar: serde_json::from_value(model.sidecar).map_err(|e| {
                    Error::Store(format!("{}: unreadable sidecar of model {version:?}: {e}", store.url()))
                })?,
                registered_at: time::format_rfc3339(model.created_ms),
                onnx: model.bytes.unwrap_or_default(),
            });
        }
        self.restore_ml(MlSnapshot {
            versions,
            deployment: registry.deployment,
            history: registry.history,
            comparison: registry.comparison,
        })
    }
}

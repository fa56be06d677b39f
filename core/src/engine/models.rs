//! The ML tier's model registry: register, deploy (canary or shadow), roll back, and
//! status. A durable store keeps the registry: every version (sidecar, training
//! metrics, ONNX bytes, state) in `models`, the deployment with its history and the
//! model-vs-Bayesian comparison in the setting `ml_registry`, written on every change
//! and read back when an engine starts on the store.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ml::{Comparison, Deployment, MlSnapshot, MlStatus, ModelInfo, Sidecar, StoredModel};
use crate::store::ModelRecord;
use crate::time;

use super::Engine;

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
    /// Add a model version to the registry: an ONNX file and its sidecar. The model is
    /// loaded once to prove it matches its feature contract and runs; a mismatch is
    /// refused with an error naming it, and nothing deployed changes.
    pub fn register_model(&self, onnx: Vec<u8>, sidecar: Sidecar, now_ms: Option<u64>) -> Result<ModelInfo> {
        self.ml_changed(self.ml.register(onnx, sidecar, now_ms.unwrap_or_else(time::now_ms)))
    }

    /// A durable store keeps the registry: write it after a change.
    fn ml_changed<T>(&self, result: Result<T>) -> Result<T> {
        let value = result?;
        if self.persist.is_some() {
            self.save_ml_registry()?;
        }
        Ok(value)
    }

    /// [`register_model`](Self::register_model) from files: `model.onnx` and its sidecar
    /// (`sidecar`, else `model.json` beside it).
    pub fn register_model_files(
        &self,
        model: impl AsRef<std::path::Path>,
        sidecar: Option<&std::path::Path>,
        now_ms: Option<u64>,
    ) -> Result<ModelInfo> {
        self.ml_changed(self.ml.register_files(model.as_ref(), sidecar, now_ms.unwrap_or_else(time::now_ms)))
    }

    /// Registered versions, with their training metrics and deployment state.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.ml.versions()
    }

    /// Serve `version` to `canary_percent` % of jobs (0–100, sticky per `job_id`; 100 is
    /// a full rollout), and turn the ML tier on (`strategy.ml_enabled`). The previous
    /// deployment is kept for [`rollback_model`](Self::rollback_model).
    pub fn deploy_model(
        &self,
        version: &str,
        canary_percent: f64,
        now_ms: Option<u64>,
    ) -> Result<Deployment> {
        let d = self.ml.deploy(version, canary_percent, now_ms.unwrap_or_else(time::now_ms))?;
        self.enable_ml()?;
        self.ml_changed(Ok(d))
    }

    /// Run `version` in shadow: it decides alongside every decision, its choice is
    /// compared with the one served (agreement, and both predictions scored on the
    /// outcomes), and it is never served. `None` stops the shadow.
    pub fn shadow_model(&self, version: Option<&str>, now_ms: Option<u64>) -> Result<Deployment> {
        let d = self.ml.shadow(version, now_ms.unwrap_or_else(time::now_ms))?;
        self.enable_ml()?;
        self.ml_changed(Ok(d))
    }

    /// Return to the previous deployment (its models stay loaded: instant).
    pub fn rollback_model(&self, now_ms: Option<u64>) -> Result<Deployment> {
        self.ml_changed(self.ml.rollback(now_ms.unwrap_or_else(time::now_ms)))
    }

    /// No model serves or watches any more: decisions come from the Bayesian tier.
    pub fn rollback_to_bayesian(&self, now_ms: Option<u64>) -> Result<Deployment> {
        self.ml_changed(self.ml.rollback_to_bayesian(now_ms.unwrap_or_else(time::now_ms)))
    }

    /// The ML tier: runtime, deployment, versions, ML-vs-Bayesian comparison, failures.
    pub fn ml_status(&self) -> MlStatus {
        self.ml.status(self.settings().strategy.ml_enabled)
    }

    /// The registry as plain data, for a store to persist.
    pub fn ml_snapshot(&self) -> MlSnapshot {
        self.ml.snapshot()
    }

    /// Replace the registry from a snapshot (see [`MlTier::restore`](crate::ml)): versions
    /// are checked; a deployment that cannot be loaded here is kept and reported
    /// unavailable while decisions come from the Bayesian tier.
    pub fn restore_ml(&self, snapshot: MlSnapshot) -> Result<()> {
        let deployed = snapshot.deployment.serving.is_some() || snapshot.deployment.shadow.is_some();
        self.ml.restore(snapshot)?;
        if deployed {
            self.enable_ml()?;
        }
        Ok(())
    }

    fn enable_ml(&self) -> Result<()> {
        if self.settings().strategy.ml_enabled {
            return Ok(());
        }
        self.update_settings(|s| {
            s.strategy.ml_enabled = true;
            Ok(())
        })
    }
    /// Write the ML registry to the store (after a change to it).
    fn save_ml_registry(&self) -> Result<()> {
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
    pub(super) fn load_ml_registry(&self) -> Result<()> {
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

//! The registry as plain data: stored versions, what is deployed, how the model does
//! against the tiers below it, and the tier's status for operators. A store persists
//! [`MlSnapshot`]; [`MlStatus`] answers `GET /ml/status`.

use serde::{Deserialize, Serialize};

use crate::error::Result;

use super::sidecar::{Sidecar, TrainingMetrics};

/// Outcomes a serving model needs before its live calibration is compared with training.
pub const DRIFT_MIN_OUTCOMES: u64 = 50;

/// A registered version: the model's bytes and its sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    pub sidecar: Sidecar,
    pub registered_at: String,
    /// The ONNX file (base64 in JSON).
    #[serde(with = "bytes_base64")]
    pub onnx: Vec<u8>,
}

/// What is deployed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The version serving decisions, if any…
    pub serving: Option<String>,
    /// …to this share of jobs (0–100, sticky per `job_id`).
    #[serde(default)]
    pub canary_percent: f64,
    /// A version deciding alongside, compared but never served.
    pub shadow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// Outcomes of the decisions one side made (or, in shadow, would have made).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    pub decisions: u64,
    /// Retries whose outcome was recorded.
    pub outcomes: u64,
    pub successes: u64,
    pub delay_ms_total: u64,
    /// Σ (predicted P(success) − outcome)² over outcomes: lower is better.
    pub squared_error_total: f64,
    /// Derived: successes / outcomes.
    #[serde(default)]
    pub success_rate: f64,
    /// Derived: mean delay of the decisions.
    #[serde(default)]
    pub mean_delay_ms: f64,
    /// Derived: Brier score of the predictions (mean squared error).
    #[serde(default)]
    pub brier: f64,
}

impl ArmStats {
    pub(super) fn derive(&mut self) {
        let per = |x: f64, n: u64| if n == 0 { 0.0 } else { x / n as f64 };
        self.success_rate = per(self.successes as f64, self.outcomes);
        self.mean_delay_ms = per(self.delay_ms_total as f64, self.decisions);
        self.brier = per(self.squared_error_total, self.outcomes);
    }

    pub(super) fn outcome(&mut self, predicted: f64, success: bool) {
        self.outcomes += 1;
        self.successes += u64::from(success);
        let y = if success { 1.0 } else { 0.0 };
        self.squared_error_total += (predicted - y) * (predicted - y);
    }
}

/// ML against the tiers below it, on the same traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Jobs the canary served from the model.
    pub ml: ArmStats,
    /// The other jobs, decided by the Bayesian tier (or the rules before it has learned).
    pub bayesian: ArmStats,
    /// The shadow model on the jobs it watched: its predictions at the delay actually
    /// served are scored against the outcomes, next to the served tier's.
    pub shadow: ShadowStats,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowStats {
    pub decisions: u64,
    /// Decisions where the shadow model's delay fell in the same API bucket (0–1 s,
    /// 1–5 s, 5–15 s…) as the one served.
    pub agreements: u64,
    #[serde(default)]
    pub agreement_rate: f64,
    /// The shadow model's predictions scored on outcomes…
    pub model: ArmStats,
    /// …and the served decisions' `estimated_success` on the same outcomes.
    pub served: ArmStats,
}

impl Comparison {
    pub(super) fn derive(&mut self) {
        self.ml.derive();
        self.bayesian.derive();
        self.shadow.model.derive();
        self.shadow.served.derive();
        let s = &mut self.shadow;
        s.agreement_rate = if s.decisions == 0 { 0.0 } else { s.agreements as f64 / s.decisions as f64 };
    }
}

/// The registry's state: everything a store needs to persist and restore.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MlSnapshot {
    pub versions: Vec<StoredModel>,
    pub deployment: Deployment,
    /// Earlier deployments, most recent last (what `rollback` returns to).
    pub history: Vec<Deployment>,
    pub comparison: Comparison,
}

impl MlSnapshot {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<MlSnapshot> {
        crate::api::from_json(json)
    }
}

/// A version as listed (without the bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub version: String,
    pub name: String,
    pub model_type: String,
    pub features: Vec<String>,
    pub metrics: TrainingMetrics,
    pub registered_at: String,
    pub size_bytes: u64,
    /// `serving`, `canary`, `shadow` or `registered`.
    pub state: String,
}

/// The ML tier's condition, for operators (the API's `GET /ml/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlStatus {
    /// `strategy.ml_enabled`.
    pub enabled: bool,
    /// Whether ONNX Runtime is loaded and every deployed model with it.
    pub available: bool,
    /// The ONNX Runtime library in use.
    pub runtime: Option<String>,
    /// Why the tier is unavailable, when it is.
    pub reason: Option<String>,
    pub deployment: Deployment,
    pub versions: Vec<ModelInfo>,
    pub comparison: Comparison,
    /// Inferences that failed (the decision came from the tier below).
    pub errors_total: u64,
    /// Decisions the model should have served, or watched, while the tier was unavailable.
    pub unavailable_total: u64,
}

impl MlStatus {
    /// How far the serving model's live Brier score has moved above its training Brier
    /// score, relative to it (0.3 = 30 % worse calibrated than when trained); `None` until
    /// [`DRIFT_MIN_OUTCOMES`] outcomes were seen or when the model reported no Brier score.
    pub fn drift(&self) -> Option<f64> {
        let serving = self.deployment.serving.as_deref()?;
        let trained = self.versions.iter().find(|m| m.version == serving)?.metrics.brier?;
        let live = &self.comparison.ml;
        if live.outcomes < DRIFT_MIN_OUTCOMES || trained <= 0.0 {
            return None;
        }
        Some(((live.brier - trained) / trained).max(0.0))
    }

    /// The serving model's version and its accuracy as its trainer measured it (hold-out).
    pub fn serving_accuracy(&self) -> Option<(&str, f64)> {
        let serving = self.deployment.serving.as_deref()?;
        let model = self.versions.iter().find(|m| m.version == serving)?;
        Some((model.version.as_str(), model.metrics.accuracy?))
    }
}

mod bytes_base64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

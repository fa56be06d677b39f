//! The sidecar JSON that travels with a model: what it is, its feature contract, the
//! delays it chooses among and how it scored in training.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::check_label;
use crate::error::{Error, Result};

use super::features::{FeatureColumn, FeatureSpec, ENCODING};
use super::plan::DEFAULT_CANDIDATES_MS;

/// Most candidate delays a sidecar may list (all are scored in one run).
pub const MAX_CANDIDATES: usize = 64;
/// A calibration band with fewer hold-out rows than this lowers the confidence.
const FULL_CALIBRATION_ROWS: f64 = 50.0;

/// The sidecar JSON that travels with a model: what it is, its feature contract and how
/// it scored in training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub name: String,
    pub version: String,
    /// `logistic_regression`, `gradient_boosting`, …: reported, not interpreted.
    pub model_type: String,
    /// Must be [`ENCODING`].
    pub encoding: String,
    pub features: Vec<FeatureColumn>,
    /// The probability output's name (default: `probabilities`, else the last output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Delays to evaluate, ascending (default: [`DEFAULT_CANDIDATES_MS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_delays_ms: Vec<u64>,
    #[serde(default)]
    pub metrics: TrainingMetrics,
    /// Reliability on the hold-out set: predicted vs observed success per band.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<CalibrationBin>,
    /// Feature name → importance (any positive scale); the strongest are named in rationales.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_importance: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_at: Option<String>,
    /// Anything else the trainer wants to keep (data source, parameters…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

/// Training metrics as the trainer measured them (hold-out unless named otherwise).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brier: Option<f64>,
    /// Expected calibration error: mean |observed − predicted| over bands, weighted by rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_error: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Cross-validation and any other figures.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub predicted: f64,
    pub observed: f64,
    pub count: u64,
}

impl Sidecar {
    pub fn from_json(json: &str) -> Result<Sidecar> {
        let sidecar: Sidecar = crate::api::from_json(json)?;
        sidecar.validate()?;
        Ok(sidecar)
    }

    /// Checks every field; returns the feature spec it describes.
    pub fn validate(&self) -> Result<FeatureSpec> {
        check_label("name", &self.name, true)?;
        check_label("version", &self.version, true)?;
        check_label("model_type", &self.model_type, true)?;
        if self.encoding != ENCODING {
            return Err(Error::invalid(
                "encoding",
                format!("{:?} is not supported; this engine reads {ENCODING:?}", self.encoding),
            ));
        }
        let spec = FeatureSpec::new(&self.features)?;
        let d = &self.candidate_delays_ms;
        if d.len() > MAX_CANDIDATES {
            return Err(Error::invalid("candidate_delays_ms", format!("at most {MAX_CANDIDATES} delays")));
        }
        if d.windows(2).any(|w| w[0] >= w[1]) || d.iter().any(|&x| x > 86_400_000) {
            return Err(Error::invalid(
                "candidate_delays_ms",
                "must be strictly ascending, each at most 24 h",
            ));
        }
        for (i, b) in self.calibration.iter().enumerate() {
            let ok = [b.lo, b.hi, b.predicted, b.observed].iter().all(|x| (0.0..=1.0).contains(x));
            if !ok || b.lo > b.hi {
                return Err(Error::invalid(
                    format!("calibration[{i}]"),
                    "lo ≤ hi, predicted and observed must be probabilities (0–1)",
                ));
            }
        }
        if let Some((name, _)) = self.feature_importance.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid(format!("feature_importance.{name}"), "must be a finite number"));
        }
        Ok(spec)
    }

    pub(super) fn candidates(&self) -> Vec<u64> {
        if self.candidate_delays_ms.is_empty() {
            DEFAULT_CANDIDATES_MS.to_vec()
        } else {
            self.candidate_delays_ms.clone()
        }
    }

    /// Confidence in a prediction `p`: how well the hold-out confirmed predictions like it
    /// (1 − |observed − predicted| in its band, discounted when the band had few rows);
    /// without bands, 1 − the overall calibration error; without either, 0.5.
    pub fn confidence(&self, p: f64) -> f64 {
        let band = self.calibration.iter().find(|b| p >= b.lo && p <= b.hi);
        match (band, self.metrics.calibration_error) {
            (Some(b), _) => {
                let rows = (b.count as f64 / FULL_CALIBRATION_ROWS).min(1.0).sqrt();
                ((1.0 - (b.observed - b.predicted).abs()) * rows).clamp(0.0, 1.0)
            }
            (None, Some(ece)) => (1.0 - ece).clamp(0.0, 1.0),
            (None, None) => 0.5,
        }
    }

    /// Up to three feature names by importance, strongest first.
    pub(super) fn strongest(&self) -> Vec<String> {
        let mut ranked: Vec<(&String, f64)> =
            self.feature_importance.iter().map(|(k, v)| (k, v.abs())).filter(|(_, v)| *v > 0.0).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.into_iter().take(3).map(|(k, _)| k.clone()).collect()
    }
}

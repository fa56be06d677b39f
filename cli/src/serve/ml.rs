//! The API document's model management: `ml/train` (runs the Python trainer on attempt
//! history and registers what it made), `ml/deploy` (canary or shadow), `ml/rollback`,
//! plus the registry (`ml/models`) and the tier's status (`ml/status`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use smartretry::ml::{MlStatus, ModelInfo};

use super::api::Body;
use super::error::ApiError;
use super::App;

type Shared = State<Arc<App>>;

/// Outcomes a model needs before its live calibration is compared with training.
pub const DRIFT_MIN_OUTCOMES: u64 = 50;

/// How far the serving model's live Brier score has moved above its training Brier
/// score, relative to it (0.3 = 30 % worse calibrated than when trained); `None` until
/// enough outcomes were seen or when the model reported no Brier score.
pub fn drift(status: &MlStatus) -> Option<f64> {
    let serving = status.deployment.serving.as_deref()?;
    let trained = status.versions.iter().find(|m| m.version == serving)?.metrics.brier?;
    let live = &status.comparison.ml;
    if live.outcomes < DRIFT_MIN_OUTCOMES || trained <= 0.0 {
        return None;
    }
    Some(((live.brier - trained) / trained).max(0.0))
}

/// The serving model's accuracy as measured by its trainer (hold-out).
pub fn accuracy(status: &MlStatus) -> Option<(String, f64)> {
    let serving = status.deployment.serving.as_deref()?;
    let model = status.versions.iter().find(|m| m.version == serving)?;
    Some((model.version.clone(), model.metrics.accuracy?))
}

pub async fn status(State(app): Shared) -> Json<MlStatus> {
    Json(app.engine.ml_status())
}

pub async fn models(State(app): Shared) -> Json<serde_json::Value> {
    Json(json!({ "models": app.engine.models() }))
}

#[derive(Deserialize)]
pub struct RegisterRequest {
    /// An .onnx file on the server's host…
    model_path: PathBuf,
    /// …and its sidecar (default: the same name with .json).
    #[serde(default)]
    sidecar_path: Option<PathBuf>,
}

/// Register a model already trained and exported (files on the server's host).
pub async fn register(State(app): Shared, Body(r): Body<RegisterRequest>) -> Result<Response, ApiError> {
    let info = app.engine.register_model_files(&r.model_path, r.sidecar_path.as_deref(), None)?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[derive(Deserialize)]
pub struct ModelRef {
    version: String,
}

#[derive(Deserialize)]
pub struct DeployRequest {
    model: ModelRef,
    #[serde(default)]
    canary_percent: Option<f64>,
    /// Run it in shadow instead: decides alongside, compared, never served.
    #[serde(default)]
    shadow: bool,
}

pub async fn deploy(State(app): Shared, Body(r): Body<DeployRequest>) -> Result<Response, ApiError> {
    let deployment = if r.shadow {
        app.engine.shadow_model(Some(&r.model.version), None)?
    } else {
        app.engine.deploy_model(&r.model.version, r.canary_percent.unwrap_or(100.0), None)?
    };
    eprintln!("{} model deployment: {}", now(), serde_json::to_string(&deployment).unwrap_or_default());
    Ok(Json(deployment).into_response())
}

/// Back to the previous deployment (or to no model when there was none);
/// `{"to": "bayesian"}` serves no model at all.
pub async fn rollback(State(app): Shared, body: Bytes) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    struct To {
        to: Option<String>,
    }
    let to = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body", "must be UTF-8 JSON"))?;
        smartretry::model::from_json_strict::<To>(text)?.to
    };
    let deployment = match to.as_deref() {
        // Instant: to the previous model, or to the Bayesian tier when there was none.
        None | Some("previous") => match app.engine.rollback_model(None) {
            Err(smartretry::Error::NotFound { .. }) => app.engine.rollback_to_bayesian(None)?,
            other => other?,
        },
        Some("bayesian") => app.engine.rollback_to_bayesian(None)?,
        Some(other) => {
            return Err(ApiError::invalid(
                "to",
                format!("expected \"previous\" or \"bayesian\", got {other:?}"),
            ))
        }
    };
    eprintln!("{} model rollback: {}", now(), serde_json::to_string(&deployment).unwrap_or_default());
    Ok(Json(deployment).into_response())
}

fn now() -> String {
    smartretry::time::format_rfc3339(smartretry::time::now_ms())
}

#[derive(Deserialize)]
pub struct TrainRequest {
    /// `logistic` (or `logistic_regression`) or `gradient_boosting`: which of the
    /// trained models the answer describes (both are registered).
    #[serde(default = "default_model_type")]
    model_type: String,
    /// Attempt history on the server's host: JSON lines (`simulate --export`) or a
    /// SQLite store.
    history: PathBuf,
    /// Feature names (the trainer's default set when absent).
    #[serde(default)]
    features: Option<Vec<String>>,
    /// Hold-out share (the document's `validation_set`).
    #[serde(default)]
    validation_set: Option<f64>,
    /// Folds of cross-validation.
    #[serde(default)]
    cross_validation: Option<u32>,
}

fn default_model_type() -> String {
    "logistic".into()
}

/// The Python that runs the trainer: `SMARTRETRY_PYTHON`, else a `.venv` here or above,
/// else `python3`.
pub fn trainer_python() -> PathBuf {
    std::env::var_os("SMARTRETRY_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let venv = std::env::current_dir()
            .ok()
            .and_then(|cwd| cwd.ancestors().map(|d| d.join(".venv/bin/python")).find(|p| p.exists()));
        venv.unwrap_or_else(|| PathBuf::from("python3"))
    })
}

/// Train on the given history, register both models, answer in the document's shape.
pub async fn train(State(app): Shared, Body(r): Body<TrainRequest>) -> Result<Response, ApiError> {
    let kind = match r.model_type.as_str() {
        "logistic" | "logistic_regression" => "logistic_regression",
        "gradient_boosting" | "gb" => "gradient_boosting",
        other => {
            return Err(ApiError::invalid(
                "model_type",
                format!("expected \"logistic\" or \"gradient_boosting\", got {other:?}"),
            ))
        }
    };
    if let Some(v) = r.validation_set {
        if !(0.05..=0.5).contains(&v) {
            return Err(ApiError::invalid("validation_set", "must be 0.05–0.5"));
        }
    }
    if let Some(k) = r.cross_validation {
        if !(2..=20).contains(&k) {
            return Err(ApiError::invalid("cross_validation", "must be 2–20 folds"));
        }
    }
    if !r.history.exists() {
        return Err(ApiError::invalid(
            "history",
            format!("{} does not exist on the server", r.history.display()),
        ));
    }
    let out = std::env::temp_dir().join(format!(
        "smartretry-train-{}-{}",
        std::process::id(),
        smartretry::time::now_ms()
    ));
    std::fs::create_dir_all(&out)
        .map_err(|e| ApiError::from(smartretry::Error::Model(format!("{}: {e}", out.display()))))?;
    let mut args: Vec<String> = vec!["-m".into(), "smartretry.train".into(), "--json".into()];
    args.extend([
        "--history".into(),
        r.history.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    if let Some(v) = r.validation_set {
        args.extend(["--holdout".into(), v.to_string()]);
    }
    if let Some(k) = r.cross_validation {
        args.extend(["--folds".into(), k.to_string()]);
    }
    if let Some(features) = &r.features {
        let file = out.join("features.json");
        let list: Vec<_> = features.iter().map(|name| json!({ "name": name })).collect();
        std::fs::write(&file, serde_json::to_string(&list).unwrap_or_default())
            .map_err(|e| ApiError::from(smartretry::Error::Model(e.to_string())))?;
        args.extend(["--features".into(), file.display().to_string()]);
    }
    let python = trainer_python();
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new(&python).args(&args).output())
            .await
            .map_err(|e| ApiError::from(smartretry::Error::Model(e.to_string())))?
            .map_err(|e| {
                ApiError::from(smartretry::Error::Model(format!(
                    "cannot run the trainer: {e}; set SMARTRETRY_PYTHON"
                )))
            })?;
    let result = (|| {
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason =
                stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").to_string();
            return Err(smartretry::Error::Model(format!("training failed: {reason}")));
        }
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| smartretry::Error::Model(format!("the trainer's report is not JSON: {e}")))?;
        let mut chosen: Option<ModelInfo> = None;
        for m in report["models"].as_array().into_iter().flatten() {
            let (Some(model), Some(sidecar)) = (m["model"].as_str(), m["sidecar"].as_str()) else { continue };
            let info = app.engine.register_model_files(model, Some(std::path::Path::new(sidecar)), None)?;
            if info.model_type == kind {
                chosen = Some(info);
            }
        }
        let info =
            chosen.ok_or_else(|| smartretry::Error::Model(format!("the trainer made no {kind} model")))?;
        Ok((info, report["rows"].as_u64().unwrap_or(0)))
    })();
    let _ = std::fs::remove_dir_all(&out);
    let (info, rows) = result?;
    let holdout = r.validation_set.unwrap_or(0.2);
    let validation_samples = (rows as f64 * holdout).round() as u64;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "version": info.version,
            "model_type": info.model_type,
            "features": info.features,
            "trained_at": info.registered_at,
            "accuracy": info.metrics.accuracy,
            "f1_score": info.metrics.f1,
            "auc": info.metrics.auc,
            "validation_set": format!("{:.0}% of {rows} samples", holdout * 100.0),
            "enabled": false,
            "metadata": {
                "training_samples": rows - validation_samples,
                "validation_samples": validation_samples,
                "feature_count": info.features.len(),
            },
        })),
    )
        .into_response())
}

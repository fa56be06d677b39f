//! `POST /ml/train` in the API document's shape: the history comes from the request
//! (`history`: attempts in the API's shape) or from the store (`training_period` back,
//! default 30 days); the Python trainer (`python -m smartretry.train`) makes both models,
//! both are registered, and the answer describes the one asked for.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use smartretry::ml::ModelInfo;
use smartretry::{time, Attempt, OutcomeRecord};

use super::app::App;
use super::error::ApiError;
use super::extract::Body;

type Shared = State<Arc<App>>;

/// Most outcomes read from the store for one training.
pub const MAX_TRAINING_ROWS: usize = 500_000;

#[derive(Deserialize)]
pub struct TrainRequest {
    /// `logistic` (or `logistic_regression`) or `gradient_boosting`: which of the
    /// trained models the answer describes (both are registered).
    #[serde(default = "default_model_type")]
    model_type: String,
    /// Feature names (the trainer's default set when absent).
    #[serde(default)]
    features: Option<Vec<String>>,
    /// How far back the store's history is read (`720h`); not with `history`.
    #[serde(default)]
    training_period: Option<String>,
    /// Hold-out share (the document's `validation_set`).
    #[serde(default)]
    validation_set: Option<f64>,
    /// Folds of cross-validation.
    #[serde(default)]
    cross_validation: Option<u32>,
    #[serde(default)]
    hyperparameters: Hyperparameters,
    /// The attempts to learn from, instead of the store's.
    #[serde(default)]
    history: Option<Vec<Attempt>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Hyperparameters {
    /// Gradient boosting's shrinkage (0–1].
    learning_rate: Option<f64>,
    /// Logistic regression's L2 strength (> 0; the inverse of scikit-learn's C).
    regularization: Option<f64>,
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

/// A store outcome as a line of the trainer's history (the API's Attempt shape).
fn outcome_line(o: &OutcomeRecord) -> serde_json::Value {
    let mut line = json!({
        "job_id": o.job_id, "job_type": o.job_type, "error_class": o.error_class,
        "attempt_number": o.attempt_number, "delay_ms": o.delay_ms,
        "since_first_failure_ms": o.clock_ms, "success": o.success, "now_ms": o.at_ms,
    });
    if let Some(t) = &o.tenant {
        line["tenant"] = json!(t);
    }
    line
}

fn model_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(smartretry::Error::Model(e.to_string()))
}

/// Check the request; the trainer's model kind and its extra arguments.
fn check(r: &TrainRequest) -> Result<(&'static str, Vec<String>), ApiError> {
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
    let mut args = Vec::new();
    if let Some(v) = r.validation_set {
        if !(0.05..=0.5).contains(&v) {
            return Err(ApiError::invalid("validation_set", "must be 0.05–0.5"));
        }
        args.extend(["--holdout".into(), v.to_string()]);
    }
    if let Some(k) = r.cross_validation {
        if !(2..=20).contains(&k) {
            return Err(ApiError::invalid("cross_validation", "must be 2–20 folds"));
        }
        args.extend(["--folds".into(), k.to_string()]);
    }
    if let Some(lr) = r.hyperparameters.learning_rate {
        if !(lr > 0.0 && lr <= 1.0) {
            return Err(ApiError::invalid("hyperparameters.learning_rate", "must be in (0, 1]"));
        }
        args.extend(["--learning-rate".into(), lr.to_string()]);
    }
    if let Some(l2) = r.hyperparameters.regularization {
        if !(l2.is_finite() && l2 > 0.0) {
            return Err(ApiError::invalid("hyperparameters.regularization", "must be a number > 0"));
        }
        args.extend(["--regularization".into(), l2.to_string()]);
    }
    if r.history.is_some() && r.training_period.is_some() {
        return Err(ApiError::invalid("training_period", "give history or training_period, not both"));
    }
    Ok((kind, args))
}

/// Write the history to train on (the request's, else the store's) as JSON lines.
fn write_history(app: &App, r: &TrainRequest, file: &std::path::Path) -> Result<usize, ApiError> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(model_error)?);
    let rows = match &r.history {
        Some(attempts) => {
            for (i, a) in attempts.iter().enumerate() {
                a.validate().map_err(|e| ApiError::from(e.within(&format!("history[{i}]"))))?;
                writeln!(out, "{}", serde_json::to_string(a).map_err(model_error)?).map_err(model_error)?;
            }
            attempts.len()
        }
        None => {
            let period = r.training_period.as_deref().unwrap_or("720h");
            let ms =
                time::parse_duration_ms(period).map_err(|why| ApiError::invalid("training_period", why))?;
            let since = time::now_ms().saturating_sub(ms);
            let outcomes = app.engine.outcomes(since, MAX_TRAINING_ROWS)?;
            for o in &outcomes {
                writeln!(out, "{}", outcome_line(o)).map_err(model_error)?;
            }
            outcomes.len()
        }
    };
    out.flush().map_err(model_error)?;
    if rows == 0 {
        let from = if r.history.is_some() { "history" } else { "training_period" };
        return Err(ApiError::invalid(from, "no attempts to learn from"));
    }
    Ok(rows)
}

/// Train, register both models, answer in the document's shape.
pub async fn train(State(app): Shared, Body(r): Body<TrainRequest>) -> Result<Response, ApiError> {
    let (kind, extra) = check(&r)?;
    let out = std::env::temp_dir().join(format!(
        "smartretry-train-{}-{}",
        std::process::id(),
        smartretry::time::now_ms()
    ));
    std::fs::create_dir_all(&out)
        .map_err(|e| ApiError::from(smartretry::Error::Model(format!("{}: {e}", out.display()))))?;
    let history = out.join("history.jsonl");
    let written = {
        let app = Arc::clone(&app);
        tokio::task::spawn_blocking(move || write_history(&app, &r, &history).map(|rows| (rows, r, history)))
            .await
            .map_err(model_error)?
    };
    let (_, r, history) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&out);
            return Err(e);
        }
    };
    let mut args: Vec<String> = vec!["-m".into(), "smartretry.train".into(), "--json".into()];
    args.extend([
        "--history".into(),
        history.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    args.extend(extra);
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
    let (info, rows) = result.map_err(super::ml::unprocessable)?;
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

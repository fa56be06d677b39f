//! The API document's model management: `ml/train` (runs the Python trainer on attempt
//! history from the request or the store, and registers what it made), `ml/deploy`
//! (canary or shadow), `ml/rollback`, plus the registry (`ml/models`: a model uploaded as
//! bytes, or read from the one configured model directory) and the tier's status.
//!
//! No request names a file on the server's host: nothing outside the model directory is
//! opened, and no answer says whether some path exists.

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

use super::app::App;
use super::error::ApiError;
use super::extract::Body;

type Shared = State<Arc<App>>;

pub async fn status(State(app): Shared) -> Json<MlStatus> {
    Json(app.engine.ml_status())
}

pub async fn models(State(app): Shared) -> Json<serde_json::Value> {
    Json(json!({ "models": app.engine.models() }))
}

/// A model to register: its ONNX bytes (base64) with the sidecar, or a file name in the
/// server's model directory (the sidecar beside it, or named).
#[derive(Deserialize)]
pub struct RegisterRequest {
    #[serde(default)]
    onnx_base64: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// The sidecar document, or (with `model`) the name of its file in the directory.
    #[serde(default)]
    sidecar: Option<serde_json::Value>,
}

/// A model the runtime could not take: 422 naming why (the tier below keeps deciding).
pub(super) fn unprocessable(e: smartretry::Error) -> ApiError {
    match e {
        smartretry::Error::Model(why) => {
            let mut out =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Model refused", format!("model: {why}"));
            out.body.field = Some("model".into());
            out
        }
        other => ApiError::from(other),
    }
}

/// `name` inside the model directory, or why not (never saying what exists elsewhere).
fn in_model_dir(app: &App, field: &str, name: &str) -> Result<PathBuf, ApiError> {
    let dir = app.model_dir.as_deref().ok_or_else(|| {
        ApiError::invalid(
            field,
            "this server reads no model files (server.ml.model_dir is not set): upload the bytes as onnx_base64",
        )
    })?;
    let relative = std::path::Path::new(name);
    let plain = relative.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if name.is_empty() || !plain {
        return Err(ApiError::invalid(
            field,
            "must be a file name inside the model directory (no /.., no absolute path)",
        ));
    }
    // A link may point out of the directory: resolve, then check again.
    let path = std::fs::canonicalize(dir.join(relative))
        .ok()
        .filter(|p| p.starts_with(dir) && p.is_file())
        .ok_or_else(|| {
        ApiError::invalid(field, format!("{name:?} is not a file in the model directory"))
    })?;
    Ok(path)
}

/// Read at most `max` bytes of `path` (a size the file claims is not trusted).
fn read_capped(path: &std::path::Path, max: usize, field: &str) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ApiError::invalid(field, format!("cannot be read: {}", e.kind())))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::invalid(field, format!("cannot be read: {}", e.kind())))?;
    if bytes.len() > max {
        return Err(too_big(field, max));
    }
    Ok(bytes)
}

fn too_big(field: &str, max: usize) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Model too large",
        format!("{field}: larger than this server's limit of {max} bytes (server.ml.max_model_bytes)"),
    );
    e.body.field = Some(field.into());
    e
}

/// Register a model: uploaded bytes, or a file of the model directory. A model that does
/// not parse, or does not match its sidecar, is refused (422) naming why.
pub async fn register(State(app): Shared, Body(r): Body<RegisterRequest>) -> Result<Response, ApiError> {
    let max = app.max_model_bytes;
    let (onnx, sidecar) = match (r.onnx_base64, r.model) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("model", "give onnx_base64 or model, not both")),
        (None, None) => {
            return Err(ApiError::invalid(
                "onnx_base64",
                "give the model's bytes (onnx_base64) or a file name of the model directory (model)",
            ))
        }
        (Some(b64), None) => {
            use base64::Engine as _;
            if b64.len() / 4 * 3 > max + 3 {
                return Err(too_big("onnx_base64", max));
            }
            let onnx = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::invalid("onnx_base64", format!("not base64: {e}")))?;
            let sidecar = match r.sidecar {
                Some(doc @ serde_json::Value::Object(_)) => doc,
                Some(_) => {
                    return Err(ApiError::invalid("sidecar", "expected the sidecar document (a JSON object)"))
                }
                None => return Err(ApiError::invalid("sidecar", "required with onnx_base64")),
            };
            (onnx, sidecar)
        }
        (None, Some(name)) => {
            let path = in_model_dir(&app, "model", &name)?;
            let onnx = read_capped(&path, max, "model")?;
            let sidecar = match r.sidecar {
                Some(doc @ serde_json::Value::Object(_)) => doc,
                Some(serde_json::Value::String(file)) => read_sidecar(&app, &file)?,
                Some(_) => return Err(ApiError::invalid("sidecar", "expected a document or a file name")),
                None => {
                    let beside = std::path::Path::new(&name).with_extension("json");
                    read_sidecar(&app, &beside.to_string_lossy())?
                }
            };
            (onnx, sidecar)
        }
    };
    // The trainer's document (it may carry more than this version reads).
    let sidecar: smartretry::Sidecar = smartretry::from_value(sidecar).map_err(|e| e.within("sidecar"))?;
    let info = tokio::task::spawn_blocking(move || app.engine.register_model(onnx, sidecar, None))
        .await
        .map_err(|e| ApiError::from(smartretry::Error::Model(e.to_string())))?
        .map_err(unprocessable)?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

fn read_sidecar(app: &App, name: &str) -> Result<serde_json::Value, ApiError> {
    let path = in_model_dir(app, "sidecar", name)?;
    let bytes = read_capped(&path, 1024 * 1024, "sidecar")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("sidecar", "must be UTF-8 JSON"))?;
    smartretry::from_json(text).map_err(|e| ApiError::from(e.within("sidecar")))
}

#[derive(Deserialize)]
pub struct ModelRef {
    version: String,
    /// As the API document sends it: checked against the registered version's type.
    #[serde(default)]
    model_type: Option<String>,
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
    if let Some(asked) = &r.model.model_type {
        let registered = app.engine.models().into_iter().find(|m| m.version == r.model.version);
        let same = |m: &ModelInfo| {
            m.model_type == *asked || m.model_type.strip_suffix("_regression") == Some(asked.as_str())
        };
        if let Some(m) = registered.filter(|m| !same(m)) {
            return Err(ApiError::invalid(
                "model.model_type",
                format!("version {:?} is a {} model, not {asked:?}", m.version, m.model_type),
            ));
        }
    }
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
        smartretry::from_json_strict::<To>(text)?.to
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

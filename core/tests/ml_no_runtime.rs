//! The ML tier when the ONNX Runtime library is missing (its own test process: the
//! runtime is loaded, or found missing, once per process). Nothing here needs Python.
//! The engines use ONNX Runtime only: with tract built in (feature `tract`), the default
//! backend would serve from tract without the library.

use smartretry::ml::{Deployment, FeatureColumn, MlBackend, MlSnapshot, StoredModel, TrainingMetrics};
use smartretry::{Config, Engine, Error, Features, Method, Sidecar};

const NOW: u64 = 1_700_000_000_000;
const MISSING: &str = "/nonexistent/onnxruntime/libonnxruntime.so.1";

fn sidecar(version: &str) -> Sidecar {
    Sidecar {
        name: "recovery".into(),
        version: version.into(),
        model_type: "logistic_regression".into(),
        encoding: smartretry::ml::ENCODING.into(),
        features: vec![FeatureColumn {
            name: "candidate_delay_ms".into(),
            transform: Some("log1p".into()),
            encoding: None,
            buckets: None,
        }],
        output: None,
        candidate_delays_ms: Vec::new(),
        metrics: TrainingMetrics::default(),
        calibration: Vec::new(),
        feature_importance: Default::default(),
        trained_at: None,
        training: None,
    }
}

fn engine() -> Engine {
    let mut config = Config::default();
    config.strategy.ml_enabled = true;
    Engine::builder().config(config).ml_runtime(MISSING).ml_backend(MlBackend::Ort).seed(3).build().unwrap()
}

#[test]
fn without_the_runtime_decisions_come_from_below_and_say_so() {
    let engine = engine();
    let status = engine.ml_status();
    assert!(!status.available);
    assert_eq!(status.runtime, None);
    let reason = status.reason.unwrap();
    assert!(reason.contains("ML tier unavailable") && reason.contains(MISSING), "{reason}");

    let f = Features::new("payment", 1).with_http_status(503);
    let d = engine.decide(&f, Some(NOW)).unwrap();
    assert!(d.should_retry);
    assert_eq!(d.method, Method::Rules);
    assert!(d.rationale.contains("ML tier unavailable"), "{}", d.rationale);
    assert!(d.rationale.contains("so the tier below decided"), "{}", d.rationale);
    assert_eq!(engine.metrics().ml_unavailable_total, 1);
}

#[test]
fn a_model_cannot_be_registered_without_the_runtime() {
    let engine = engine();
    let err = engine.register_model(b"not checked yet".to_vec(), sidecar("v1"), Some(NOW)).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
    assert!(err.to_string().contains(MISSING), "{err}");
    assert!(engine.models().is_empty());
}

#[test]
fn a_restored_deployment_waits_for_the_runtime_while_bayesian_decides() {
    let engine = Engine::builder().ml_runtime(MISSING).ml_backend(MlBackend::Ort).seed(3).build().unwrap();
    let snapshot = MlSnapshot {
        versions: vec![StoredModel {
            sidecar: sidecar("v1"),
            registered_at: "2026-11-23T00:00:00Z".into(),
            onnx: vec![8, 1, 18, 0],
        }],
        deployment: Deployment { serving: Some("v1".into()), canary_percent: 100.0, ..Deployment::default() },
        ..MlSnapshot::default()
    };
    engine.restore_ml(snapshot.clone()).unwrap();
    assert_eq!(engine.ml_snapshot().versions, snapshot.versions);
    let status = engine.ml_status();
    assert!(status.enabled && !status.available, "{status:?}");
    assert_eq!(status.deployment.serving.as_deref(), Some("v1"));
    let d = engine.decide(&Features::new("payment", 1).with_error_class("timeout"), Some(NOW)).unwrap();
    assert_ne!(d.method, Method::Ml);
    assert!(d.rationale.contains("ML tier unavailable"), "{}", d.rationale);
    assert_eq!(engine.metrics().ml_unavailable_total, 1);

    // A snapshot naming a version it does not hold is refused, naming the field.
    let mut bad = snapshot;
    bad.deployment.serving = Some("v9".into());
    let err = engine.restore_ml(bad).unwrap_err();
    assert_eq!(err.field(), Some("deployment"));
}

#[cfg(feature = "tract")]
mod ml_models;

/// With tract built in, the default backend needs no library: the tier stays available.
/// (This process never finds ONNX Runtime, so it is the place for it; the model needs Python.)
#[cfg(feature = "tract")]
#[test]
fn without_the_onnx_runtime_library_tract_still_serves() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ml-tract-only-models");
    let dir = match ml_models::make_models(&out) {
        Ok(dir) => dir,
        Err(why) => return ml_models::skip(&why),
    };
    let engine = Engine::builder().ml_runtime(MISSING).seed(3).build().unwrap();
    let status = engine.ml_status();
    assert!(status.available, "{status:?}");
    assert!(status.runtime.as_deref().is_some_and(|r| r.contains("tract")), "{status:?}");
    let info = engine.register_model_files(dir.join("recovery_gb.onnx"), None, Some(NOW)).unwrap();
    engine.deploy_model(&info.version, 100.0, Some(NOW)).unwrap();
    assert_eq!(
        engine.decide(&Features::new("payment", 1).with_error_class("timeout"), Some(NOW)).unwrap().method,
        Method::Ml
    );
    // A model only ONNX Runtime could serve is refused, naming both reasons.
    let err = engine.register_model_files(dir.join("recovery_scaled.onnx"), None, Some(NOW)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Scaler") && text.contains(MISSING), "{text}");
}

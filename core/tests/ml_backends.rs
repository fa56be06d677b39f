//! The two inference backends serve the same models: ONNX Runtime (`ort`) and tract give
//! the same probabilities, and the same decisions, on the models the trainer's exporter
//! makes (skl2onnx logistic regression and gradient boosting). Needs the `tract` feature:
//!
//! ```text
//! scripts/venv.sh && cargo test -p smartretry --features tract --test ml_backends
//! ```
#![cfg(feature = "tract")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use smartretry::ml::{FeatureSpec, MlBackend, Scorer, DEFAULT_CANDIDATES_MS};
use smartretry::{Engine, Error, Features, Method, Sidecar};

mod ml_models;

const NOW: u64 = 1_700_000_000_000;
/// float32 arithmetic in a different order: the backends may differ in the last bits.
const TOLERANCE: f32 = 1e-5;

/// The test models when they and ONNX Runtime are there (else the test skips, or fails
/// under `make test`).
fn models() -> Option<&'static Path> {
    static MODELS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = MODELS.get_or_init(|| {
        ml_models::make_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("ml-backend-models"))
    });
    let ort = Engine::builder().ml_backend(MlBackend::Ort).build().map(|e| e.ml_status());
    match (made, ort) {
        (Ok(dir), Ok(status)) if status.available => Some(dir.as_path()),
        (Err(why), _) => {
            ml_models::skip(why);
            None
        }
        (_, status) => {
            ml_models::skip(&format!("no ONNX Runtime: {:?}", status.map(|s| s.reason)));
            None
        }
    }
}

fn sidecar(dir: &Path, stem: &str) -> Sidecar {
    Sidecar::from_json(&std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap()).unwrap()
}

fn load(dir: &Path, stem: &str, backend: MlBackend) -> smartretry::Result<Scorer> {
    let sidecar = sidecar(dir, stem);
    let width = sidecar.validate()?.width();
    let bytes = std::fs::read(dir.join(format!("{stem}.onnx"))).unwrap();
    Scorer::load(backend, None, &bytes, width, sidecar.output.as_deref(), stem)
}

/// Failures of every kind the test models know, at varied points of their recovery.
fn failures() -> Vec<Features> {
    (0..200u64)
        .map(|i| Features {
            since_first_failure_ms: Some((i * 7_919) % 120_000),
            ..Features::new("payment", 1 + (i % 2) as u32).with_error_class(match i % 3 {
                0 => "timeout",
                1 => "service_unavailable",
                _ => "connection_reset",
            })
        })
        .collect()
}

/// 16 candidate rows per failure, as the engine builds them.
fn rows(spec: &FeatureSpec) -> (Vec<f32>, usize) {
    let mut rows = Vec::new();
    let mut n = 0;
    for f in failures() {
        for &delay in &DEFAULT_CANDIDATES_MS {
            spec.push_row(&f, delay, NOW, &mut rows);
            n += 1;
        }
    }
    (rows, n)
}

#[test]
fn both_backends_give_the_same_probabilities() {
    let Some(dir) = models() else { return };
    for stem in ["recovery", "recovery_gb"] {
        let ort = load(dir, stem, MlBackend::Ort).unwrap();
        let tract = load(dir, stem, MlBackend::Tract).unwrap();
        assert_eq!((ort.backend(), tract.backend()), (MlBackend::Ort, MlBackend::Tract));
        let spec = sidecar(dir, stem).validate().unwrap();
        let (rows, n) = rows(&spec);
        // One batch of all rows, and the engine's batches of 16.
        for batch in [n, DEFAULT_CANDIDATES_MS.len()] {
            let (mut by_ort, mut by_tract) = (Vec::new(), Vec::new());
            for chunk in rows.chunks(batch * spec.width()) {
                let k = chunk.len() / spec.width();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                ort.predict(chunk, k, &mut a).unwrap();
                tract.predict(chunk, k, &mut b).unwrap();
                by_ort.extend(a);
                by_tract.extend(b);
            }
            assert_eq!(by_ort.len(), n);
            let worst = by_ort.iter().zip(&by_tract).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= TOLERANCE, "{stem}, batches of {batch}: differ by up to {worst}");
            // The rows do span the model's range: equal outputs are not two constants.
            let (lo, hi) = by_ort.iter().fold((1f32, 0f32), |(lo, hi), &p| (lo.min(p), hi.max(p)));
            assert!(lo < 0.1 && hi > 0.9, "{stem}: probabilities only span {lo}–{hi}");
        }
    }
}

/// An engine serving `stem` from `backend` to every job, guardrails out of the way.
fn serving(dir: &Path, stem: &str, backend: MlBackend) -> Engine {
    let mut config = smartretry::Config { ml_backend: backend, ..Default::default() };
    config.strategy.circuit_breaker.enabled = false;
    let g = &mut config.strategy.guardrails;
    (g.max_budget_percent, g.adaptive_throttle) = (100.0, false);
    let engine = Engine::builder().config(config).seed(7).build().unwrap();
    let info = engine.register_model_files(dir.join(format!("{stem}.onnx")), None, Some(NOW)).unwrap();
    engine.deploy_model(&info.version, 100.0, Some(NOW)).unwrap();
    engine
}

#[test]
fn both_backends_make_the_same_decisions() {
    let Some(dir) = models() else { return };
    for stem in ["recovery", "recovery_gb"] {
        let (ort, tract) = (serving(dir, stem, MlBackend::Ort), serving(dir, stem, MlBackend::Tract));
        for f in failures() {
            let (a, b) = (ort.decide(&f, Some(NOW)).unwrap(), tract.decide(&f, Some(NOW)).unwrap());
            assert_eq!((a.method, b.method), (Method::Ml, Method::Ml), "{}", b.rationale);
            assert_eq!(a.delay_ms, b.delay_ms, "{stem}: {f:?}");
            assert!((a.estimated_success - b.estimated_success).abs() <= f64::from(TOLERANCE));
        }
    }
}

#[test]
fn a_model_tract_cannot_load_is_served_by_onnx_runtime() {
    let Some(dir) = models() else { return };
    // StandardScaler + logistic regression, as `smartretry.train` exports it: skl2onnx
    // makes a `Scaler` node, an `ai.onnx.ml` operator tract does not implement.
    let err = load(dir, "recovery_scaled", MlBackend::Tract).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
    assert!(err.to_string().contains("not loadable by tract") && err.to_string().contains("Scaler"), "{err}");
    let auto = load(dir, "recovery_scaled", MlBackend::Auto).unwrap();
    assert_eq!(auto.backend(), MlBackend::Ort);
    let engine = serving(dir, "recovery_scaled", MlBackend::Auto);
    let d = engine.decide(&failures()[0], Some(NOW)).unwrap();
    assert_eq!(d.method, Method::Ml, "{}", d.rationale);
    // The models tract can load are served by the preferred backend.
    assert_eq!(
        load(dir, "recovery", MlBackend::Auto).unwrap().backend(),
        smartretry::ml::backend::PREFERRED[0]
    );
}

//! The ML tier with real ONNX models made by `tests/ml/make_models.py` (scikit-learn and
//! onnx.helper) and the real ONNX Runtime library (the `onnxruntime` wheel in `.venv`,
//! or `ORT_DYLIB_PATH`).
//!
//! `make test` (scripts/test.sh) prepares both and sets `SMARTRETRY_REQUIRE_ML=1`: then a
//! missing piece fails these tests. A bare `cargo test` without them skips, saying why.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use smartretry::ml::MlSnapshot;
use smartretry::{Attempt, Engine, Error, Features, Method};

const NOW: u64 = 1_700_000_000_000;

mod ml_models;

/// The test models, made once per test process; `None` (with the reason printed) when
/// Python with scikit-learn or the runtime is missing and the run does not require them.
fn models() -> Option<&'static Path> {
    static MODELS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = MODELS
        .get_or_init(|| ml_models::make_models(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("ml-models")));
    let engine = Engine::new();
    let runtime = engine.ml_status().runtime;
    match (made, runtime) {
        (Ok(dir), Some(_)) => Some(dir.as_path()),
        (made, runtime) => {
            let why = match made {
                Err(e) => e.clone(),
                Ok(_) => format!("no ONNX Runtime: {:?}", runtime.or(engine.ml_status().reason)),
            };
            ml_models::skip(&why);
            None
        }
    }
}

/// An engine with the test models registered. The circuit breaker, the retry budget and
/// adaptive throttling are off: these tests send bursts of failures that would (rightly)
/// trip them and hide the tiers' choices.
fn engine_with(dir: &Path, stems: &[&str]) -> Engine {
    let mut config = smartretry::Config::default();
    config.strategy.circuit_breaker.enabled = false;
    let g = &mut config.strategy.guardrails;
    (g.max_budget_percent, g.adaptive_throttle) = (100.0, false);
    let engine = Engine::builder().config(config).seed(7).build().expect("engine");
    for stem in stems {
        engine.register_model_files(dir.join(format!("{stem}.onnx")), None, Some(NOW)).expect(stem);
    }
    engine
}

fn failure(job: &str, class: &str, attempt: u32) -> Features {
    Features {
        job_id: Some(job.into()),
        since_first_failure_ms: Some(0),
        ..Features::new("payment", attempt).with_error_class(class).with_http_status(503)
    }
}

#[test]
fn a_deployed_model_decides_by_what_it_learned() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    engine.deploy_model("lr-1", 100.0, Some(NOW)).unwrap();
    let fast = engine.decide(&failure("j1", "timeout", 1), Some(NOW)).unwrap();
    let slow = engine.decide(&failure("j2", "service_unavailable", 1), Some(NOW)).unwrap();
    for d in [&fast, &slow] {
        assert_eq!(d.method, Method::Ml, "{}", d.rationale);
        assert!(d.rationale.contains("test-recovery lr-1"), "{}", d.rationale);
        assert!(d.rationale.contains("strongest features: candidate_delay_ms"), "{}", d.rationale);
        assert!(d.confidence > 0.5 && d.confidence <= 1.0, "{}", d.confidence);
    }
    // Recovery takes ~8 s for timeouts and ~60 s for 503s in the training data.
    assert!((5_000..=25_000).contains(&fast.delay_ms), "{fast:?}");
    assert!((30_000..=200_000).contains(&slow.delay_ms), "{slow:?}");
    assert!(slow.delay_ms > 2 * fast.delay_ms);
    // Guardrails still bind a model's choice.
    let mut g = engine.guardrails();
    g.max_delay_ms = 20_000;
    engine.update_guardrails(g).unwrap();
    let capped = engine.decide(&failure("j3", "service_unavailable", 1), Some(NOW)).unwrap();
    assert_eq!(capped.delay_ms, 20_000);
    assert!(capped.policy_guardrails.iter().any(|g| g == "max_delay"));
}

#[test]
fn gradient_boosting_models_serve_too() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery_gb"]);
    engine.deploy_model("gb-1", 100.0, Some(NOW)).unwrap();
    let d = engine.decide(&failure("j1", "timeout", 1), Some(NOW)).unwrap();
    assert_eq!(d.method, Method::Ml, "{}", d.rationale);
    assert!(d.rationale.contains("gradient_boosting"), "{}", d.rationale);
}

#[test]
fn the_canary_share_is_sticky_per_job() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    engine.deploy_model("lr-1", 30.0, Some(NOW)).unwrap();
    let by_model =
        |job: &str| engine.decide(&failure(job, "timeout", 1), Some(NOW)).unwrap().method == Method::Ml;
    let first: Vec<bool> = (0..1_000).map(|i| by_model(&format!("job-{i}"))).collect();
    let share = first.iter().filter(|&&m| m).count();
    assert!((240..=360).contains(&share), "{share} of 1000 served by the model at 30 %");
    let again: Vec<bool> = (0..1_000).map(|i| by_model(&format!("job-{i}"))).collect();
    assert_eq!(first, again, "a job stays on its side of the canary");
    let c = engine.ml_status().comparison;
    assert_eq!(c.ml.decisions + c.bayesian.decisions, 2_000);
    assert_eq!(c.ml.decisions, 2 * share as u64);
}

#[test]
fn outcomes_are_compared_between_model_and_bayesian() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    engine.deploy_model("lr-1", 50.0, Some(NOW)).unwrap();
    for i in 0..200 {
        let (job, now) = (format!("job-{i}"), NOW + i * 60_000);
        let d = engine.decide(&failure(&job, "timeout", 1), Some(now)).unwrap();
        let success = d.delay_ms >= 8_000;
        let attempt = Attempt::new(&job, "payment", 2, success)
            .with_error_class("timeout")
            .with_delay_ms(d.delay_ms)
            .with_since_first_failure_ms(d.delay_ms);
        engine.record(&attempt, Some(now + d.delay_ms)).unwrap();
    }
    let c = engine.ml_status().comparison;
    assert_eq!(c.ml.outcomes + c.bayesian.outcomes, 200);
    assert!(c.ml.outcomes > 50 && c.bayesian.outcomes > 50, "{c:?}");
    // The model knows timeouts recover after ~8 s; the rules' 2 s backoff does not.
    assert!(c.ml.success_rate > c.bayesian.success_rate, "{c:?}");
}

#[test]
fn a_shadow_model_is_compared_not_served() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    engine.shadow_model(Some("lr-1"), Some(NOW)).unwrap();
    for i in 0..50 {
        let (job, now) = (format!("job-{i}"), NOW + i * 60_000);
        let d = engine.decide(&failure(&job, "timeout", 1), Some(now)).unwrap();
        assert_ne!(d.method, Method::Ml, "{}", d.rationale);
        let attempt = Attempt::new(&job, "payment", 2, d.delay_ms >= 8_000)
            .with_error_class("timeout")
            .with_delay_ms(d.delay_ms);
        engine.record(&attempt, Some(now + d.delay_ms)).unwrap();
    }
    let status = engine.ml_status();
    let s = &status.comparison.shadow;
    assert_eq!(s.decisions, 50);
    assert_eq!(s.model.outcomes, 50);
    assert_eq!(s.served.outcomes, 50);
    // The model waits for the ~8 s recovery from the start; the rules retry after ~2 s
    // and the Bayesian tier then learns to overshoot: they rarely agree, and the model's
    // predictions score better on the outcomes.
    assert!(s.agreement_rate < 0.5, "{s:?}");
    assert!((8_000.0..=25_000.0).contains(&s.model.mean_delay_ms), "{s:?}");
    assert!(s.model.brier < s.served.brier, "{s:?}");
    assert_eq!(status.versions[0].state, "shadow");
}

#[test]
fn rollback_returns_to_the_previous_model_then_to_bayesian() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery", "recovery_gb"]);
    let f = failure("j1", "timeout", 1);
    let err = engine.rollback_model(Some(NOW)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    engine.deploy_model("lr-1", 100.0, Some(NOW)).unwrap();
    engine.deploy_model("gb-1", 100.0, Some(NOW)).unwrap();
    assert!(engine.decide(&f, Some(NOW)).unwrap().rationale.contains("gb-1"));
    let back = engine.rollback_model(Some(NOW)).unwrap();
    assert_eq!(back.serving.as_deref(), Some("lr-1"));
    assert!(engine.decide(&f, Some(NOW)).unwrap().rationale.contains("lr-1"));
    engine.rollback_to_bayesian(Some(NOW)).unwrap();
    let d = engine.decide(&f, Some(NOW)).unwrap();
    assert_ne!(d.method, Method::Ml);
    assert!(!d.rationale.contains("lr-1"), "{}", d.rationale);
    // …and rolling back from Bayesian restores the model.
    engine.rollback_model(Some(NOW)).unwrap();
    assert_eq!(engine.decide(&f, Some(NOW)).unwrap().method, Method::Ml);
}

#[test]
fn the_registry_survives_a_snapshot_round_trip() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery", "recovery_gb"]);
    engine.deploy_model("lr-1", 40.0, Some(NOW)).unwrap();
    engine.shadow_model(Some("gb-1"), Some(NOW)).unwrap();
    let json = engine.ml_snapshot().to_json();
    let restored = Engine::builder().seed(7).build().unwrap();
    restored.restore_ml(MlSnapshot::from_json(&json).unwrap()).unwrap();
    assert_eq!(restored.ml_snapshot(), engine.ml_snapshot());
    let status = restored.ml_status();
    assert!(status.available && status.enabled, "{status:?}");
    assert_eq!(status.deployment.serving.as_deref(), Some("lr-1"));
    assert_eq!(status.deployment.shadow.as_deref(), Some("gb-1"));
    for i in 0..20 {
        let f = failure(&format!("job-{i}"), "timeout", 1);
        assert_eq!(engine.decide(&f, Some(NOW)).unwrap(), restored.decide(&f, Some(NOW)).unwrap());
    }
    assert_eq!(restored.rollback_model(Some(NOW)).unwrap().shadow, None);
}

#[test]
fn versions_carry_their_metrics_and_state() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery", "recovery_gb"]);
    engine.deploy_model("gb-1", 25.0, Some(NOW)).unwrap();
    let models = engine.models();
    assert_eq!(models.len(), 2);
    let lr = &models[0];
    assert_eq!((lr.version.as_str(), lr.state.as_str()), ("lr-1", "registered"));
    assert!(lr.metrics.accuracy.unwrap() > 0.8, "{:?}", lr.metrics);
    assert_eq!(lr.features[2], "candidate_delay_ms");
    assert_eq!(models[1].state, "canary");
    let err = engine.register_model_files(dir.join("recovery.onnx"), None, Some(NOW)).unwrap_err();
    assert_eq!(err.field(), Some("version"));
    let err = engine.deploy_model("nope", 10.0, Some(NOW)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    let err = engine.deploy_model("lr-1", 120.0, Some(NOW)).unwrap_err();
    assert_eq!(err.field(), Some("canary_percent"));
}

// --- faults -------------------------------------------------------------------------

#[test]
fn a_corrupt_model_is_refused_and_the_deployed_one_keeps_serving() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    engine.deploy_model("lr-1", 100.0, Some(NOW)).unwrap();
    let err = engine.register_model_files(dir.join("corrupt.onnx"), None, Some(NOW)).unwrap_err();
    assert!(matches!(err, Error::Model(_)), "{err}");
    assert!(err.to_string().contains("corrupt-1: not a loadable ONNX model"), "{err}");
    assert_eq!(engine.models().len(), 1);
    let d = engine.decide(&failure("j1", "timeout", 1), Some(NOW)).unwrap();
    assert_eq!(d.method, Method::Ml);
    assert!(d.rationale.contains("lr-1"));
}

#[test]
fn a_model_whose_input_does_not_match_its_sidecar_is_refused() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["recovery"]);
    let err = engine.register_model_files(dir.join("wrong_width.onnx"), None, Some(NOW)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("has 5 columns, but the sidecar's features make 7"), "{text}");
    // A sidecar naming a feature the engine does not know is refused by name.
    let mut sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("recovery.json")).unwrap()).unwrap();
    sidecar["version"] = "lr-2".into();
    sidecar["features"][0]["name"] = "moon_phase".into();
    let bad = dir.join("bad_sidecar.json");
    std::fs::write(&bad, sidecar.to_string()).unwrap();
    let err = engine.register_model_files(dir.join("recovery.onnx"), Some(&bad), Some(NOW)).unwrap_err();
    assert_eq!(err.field(), Some("sidecar.features[0].name"), "{err}");
}

#[test]
fn a_model_failing_at_inference_falls_back_to_bayesian_and_is_counted() {
    let Some(dir) = models() else { return };
    let engine = engine_with(dir, &["fails_at_inference"]);
    engine.deploy_model("gated-1", 100.0, Some(NOW)).unwrap();
    // attempt_number 1 is inside the model's table: it serves.
    let ok = engine.decide(&failure("j1", "timeout", 1), Some(NOW)).unwrap();
    assert_eq!(ok.method, Method::Ml, "{}", ok.rationale);
    // attempt_number 2 makes its Gather fail: the tier below decides, and says why.
    let d = engine.decide(&failure("j2", "timeout", 2), Some(NOW)).unwrap();
    assert!(d.should_retry);
    assert_ne!(d.method, Method::Ml);
    assert!(d.rationale.contains("model test-recovery gated-1 failed: inference failed"), "{}", d.rationale);
    assert!(d.rationale.contains("so the tier below decided"), "{}", d.rationale);
    assert_eq!(engine.metrics().ml_errors_total, 1);
    assert_eq!(engine.ml_status().errors_total, 1);
}

#[test]
fn the_registry_in_a_sqlite_store_survives_a_restart() {
    let Some(dir) = models() else { return };
    let db = std::env::temp_dir().join(format!("smartretry-ml-registry-{}.db", std::process::id()));
    let _ = smartretry::store::SqliteStore::remove_database(&db);
    let open = || {
        let mut config = smartretry::Config::default();
        config.strategy.circuit_breaker.enabled = false;
        config.store = format!("sqlite://{}", db.display());
        Engine::builder().config(config).seed(7).build().expect("engine")
    };
    let (snapshot, decisions) = {
        let engine = open();
        for stem in ["recovery", "recovery_gb"] {
            engine.register_model_files(dir.join(format!("{stem}.onnx")), None, Some(NOW)).expect(stem);
        }
        engine.deploy_model("lr-1", 40.0, Some(NOW)).unwrap();
        engine.shadow_model(Some("gb-1"), Some(NOW)).unwrap();
        let decisions: Vec<_> = (0..10)
            .map(|i| engine.decide(&failure(&format!("job-{i}"), "timeout", 1), Some(NOW)).unwrap().method)
            .collect();
        (engine.ml_snapshot(), decisions)
    };
    let engine = open();
    assert_eq!(engine.ml_snapshot().versions, snapshot.versions, "versions with their bytes");
    assert_eq!(engine.ml_snapshot().deployment, snapshot.deployment);
    let status = engine.ml_status();
    assert!(status.available && status.enabled, "{status:?}");
    let again: Vec<_> = (0..10)
        .map(|i| engine.decide(&failure(&format!("job-{i}"), "timeout", 1), Some(NOW)).unwrap().method)
        .collect();
    assert_eq!(again, decisions, "the same canary split and model after the restart");
    let rows = engine.store().model_list().unwrap();
    let states: Vec<_> = rows.iter().map(|m| (m.version.as_str(), m.status.as_str())).collect();
    assert_eq!(states, [("gb-1", "shadow"), ("lr-1", "canary")]);
    let _ = smartretry::store::SqliteStore::remove_database(&db);
}

//! Model management over HTTP with real ONNX models (made by `tests/ml/make_models.py`)
//! and the real ONNX Runtime. Like core/tests/ml.rs: `make test` sets
//! `SMARTRETRY_REQUIRE_ML=1` and then a missing piece fails; a bare `cargo test` skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{temp_dir, Server};
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models() -> Option<PathBuf> {
    let python = std::env::var_os("SMARTRETRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let out = temp_dir("serve-ml-models");
    let made = Command::new(&python).arg(repo().join("tests/ml/make_models.py")).arg(&out).output();
    let why = match made {
        Ok(o) if o.status.success() => match smartretry::Engine::new().ml_status().runtime {
            Some(_) => return Some(out),
            None => "no ONNX Runtime (ORT_DYLIB_PATH, or the onnxruntime wheel in .venv)".to_string(),
        },
        Ok(o) => format!("make_models.py failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => format!("{}: {e} (scripts/venv.sh makes it)", python.display()),
    };
    if std::env::var("SMARTRETRY_REQUIRE_ML").is_ok_and(|v| v == "1") {
        panic!("SMARTRETRY_REQUIRE_ML=1 but the ML endpoints cannot be tested: {why}");
    }
    eprintln!("skipping: {why}");
    None
}

#[tokio::test]
async fn models_are_registered_deployed_measured_and_rolled_back() {
    let Some(dir) = models() else { return };
    let config = temp_dir("serve-ml").join("config.json");
    // Bursts of failures would (rightly) trip the breaker and the budget and hide the tier.
    std::fs::write(
        &config,
        r#"{"strategy": {"circuit_breaker": {"enabled": false},
            "guardrails": {"max_budget_percent": 100, "adaptive_throttle": false}}}"#,
    )
    .unwrap();
    let server =
        Server::start(&["--config", config.to_str().unwrap()], &[("RETRY_MODEL_DIR", dir.to_str().unwrap())]);
    let mut c = server.client();
    let status = c.get("/ml/status").await.unwrap().json();
    assert_eq!(
        (status["enabled"].as_bool(), status["available"].as_bool()),
        (Some(false), Some(true)),
        "{status}"
    );

    let r = c.post("/ml/models", &json!({"model": "recovery.onnx"})).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["version"], "lr-1");
    let r = c.post("/ml/models", &json!({"model": "wrong_width.onnx"})).await.unwrap();
    assert_eq!(r.status, 422, "a model whose inputs do not match its sidecar is refused: {}", r.body);
    assert!(r.json()["details"].as_str().unwrap().contains("5 columns"), "the mismatch is named: {}", r.body);
    // Uploaded as bytes, with its sidecar.
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let mut sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("recovery.json")).unwrap()).unwrap();
    sidecar["version"] = json!("lr-uploaded");
    let onnx = std::fs::read(dir.join("recovery.onnx")).unwrap();
    let r = c.post("/ml/models", &json!({"onnx_base64": b64(&onnx), "sidecar": sidecar})).await.unwrap();
    assert_eq!((r.status, r.json()["version"].as_str()), (201, Some("lr-uploaded")), "{}", r.body);
    // Bytes that are no model: 422 naming why, not a 500.
    sidecar["version"] = json!("garbage");
    let r = c
        .post("/ml/models", &json!({"onnx_base64": b64(b"not an onnx model at all"), "sidecar": sidecar}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (422, Some("model")), "{}", r.body);
    assert!(r.json()["details"].as_str().unwrap().len() > "model: ".len(), "{}", r.body);
    // Nothing outside the model directory is opened, and no answer says what exists there.
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.onnx")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("outside.onnx")).unwrap();
    let mut answers = Vec::new();
    for name in
        ["/dev/zero", "../../etc/hostname", "zero.onnx", "outside.onnx", "missing.onnx", "/etc/passwd"]
    {
        let r = c.post("/ml/models", &json!({"model": name})).await.unwrap();
        assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("model")), "{name}: {}", r.body);
        answers.push(r.json()["details"].as_str().unwrap().replace(name, "NAME"));
    }
    assert_eq!(answers[2], answers[4], "a link out of the directory reads like a missing file");
    assert_eq!(answers[3], answers[4]);
    assert_eq!(answers[0], answers[5], "absolute paths: one answer whatever exists");
    let listed = c.get("/ml/models").await.unwrap().json();
    assert_eq!(listed["models"].as_array().unwrap().len(), 2, "{listed}");

    let r =
        c.post("/ml/deploy", &json!({"model": {"version": "nope"}, "canary_percent": 10.0})).await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let r = c
        .post(
            "/ml/deploy",
            &json!({"model": {"version": "lr-1", "model_type": "logistic"}, "canary_percent": 100.0}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["serving"].as_str()), (200, Some("lr-1")), "{}", r.body);

    let failure = json!({"job_type": "payment", "error_class": "timeout", "http_status": 503,
                         "attempt_number": 1, "job_id": "j1", "since_first_failure_ms": 0});
    let d = c.post("/recommendation", &failure).await.unwrap().json();
    assert_eq!(d["method"], "ml", "{d}");
    assert!(d["rationale"].as_str().unwrap().contains("lr-1"), "{d}");
    let metrics = c.get("/metrics").await.unwrap().body;
    assert!(metrics.contains("smartretry_recommendations_total{method=\"ml\"} 1\n"), "{metrics}");
    assert!(metrics.contains("smartretry_model_accuracy{version=\"lr-1\"} "), "{metrics}");
    assert!(metrics.contains("smartretry_ml_available 1\n"), "{metrics}");

    let r = c.post("/ml/rollback", &json!({"to": "sideways"})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("to")));
    let r = c.send(hyper::Method::POST, "/ml/rollback", None).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["serving"].is_null(), "back to no model: {}", r.body);
    let d = c
        .post(
            "/recommendation",
            &json!({"job_type": "payment", "error_class": "timeout", "http_status": 503,
                                                "attempt_number": 1, "job_id": "j2"}),
        )
        .await
        .unwrap()
        .json();
    assert_ne!(d["method"], "ml", "{d}");
    assert!(server.logged("model rollback"));
}

#[tokio::test]
async fn training_runs_the_trainer_on_history_and_registers_its_models() {
    let Some(_) = models() else { return };
    let python = std::env::var_os("SMARTRETRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let has_trainer =
        Command::new(&python).args(["-c", "import smartretry.train"]).status().is_ok_and(|s| s.success());
    if !has_trainer {
        assert!(
            std::env::var("SMARTRETRY_REQUIRE_ML").map_or(true, |v| v != "1")
                || !repo().join("python/smartretry/train.py").exists(),
            "the trainer is in the repository but not importable from {}",
            python.display()
        );
        eprintln!("skipping: smartretry.train is not importable from {}", python.display());
        return;
    }
    // Training data: the simulator's attempt history.
    let dir = temp_dir("serve-ml-train");
    let history = dir.join("history.jsonl");
    let sim = Command::new(env!("CARGO_BIN_EXE_smartretry"))
        .args(["simulate", "--scenario", "db_maintenance", "--out"])
        .arg(&dir)
        .arg("--export")
        .arg(&history)
        .output()
        .unwrap();
    assert!(sim.status.success(), "{}", String::from_utf8_lossy(&sim.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let server = Server::start(&[], &[("SMARTRETRY_PYTHON", python.to_str().unwrap())]);
    // Training fits two models with cross-validation in a Python process: seconds of CPU,
    // far more than the client's 10 s default allows on a loaded 2-core machine.
    let mut c = server.client().with_timeout(std::time::Duration::from_secs(180));
    // A server path is no longer a thing to give: refused like any unknown shape.
    let r = c.post("/ml/train", &json!({"model_type": "logistic", "history": "/etc/passwd"})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("history")), "{}", r.body);
    let r = c.post("/ml/train", &json!({"model_type": "logistic", "training_period": "720h"})).await.unwrap();
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("training_period")),
        "nothing stored yet: {}",
        r.body
    );
    // The API document's body, with the history inline.
    let r = c
        .post(
            "/ml/train",
            &json!({"model_type": "logistic", "features": ["attempt_number", "since_first_failure_ms", "candidate_delay_ms"],
                    "validation_set": 0.2, "cross_validation": 3,
                    "hyperparameters": {"learning_rate": 0.05, "regularization": 0.5}, "history": lines}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let t = r.json();
    for key in [
        "version",
        "model_type",
        "features",
        "trained_at",
        "accuracy",
        "f1_score",
        "validation_set",
        "enabled",
        "metadata",
    ] {
        assert!(!t[key].is_null(), "train answer lacks {key}: {t}");
    }
    assert_eq!(t["model_type"], "logistic_regression");
    assert_eq!(t["metadata"]["feature_count"], 3, "{t}");
    assert!(t["validation_set"].as_str().unwrap().starts_with("20% of "), "{t}");
    let models = c.get("/ml/models").await.unwrap().json();
    assert_eq!(models["models"].as_array().unwrap().len(), 2, "both trained models are registered: {models}");
    // From the store: the same attempts recorded through the API (at the wall clock).
    for mut line in lines {
        line.as_object_mut().unwrap().remove("now_ms");
        assert_eq!(c.post("/attempt", &line).await.unwrap().status, 202);
    }
    let r = c
        .post(
            "/ml/train",
            &json!({"model_type": "gradient_boosting", "training_period": "1h", "cross_validation": 3}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["model_type"], "gradient_boosting");
    let r = c
        .post("/ml/train", &json!({"model_type": "logistic", "hyperparameters": {"learning_rat": 0.1}}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("hyperparameters.learning_rat")),
        "{}",
        r.body
    );
}

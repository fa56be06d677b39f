//! Runs the cross-language conformance vectors in `tests/vectors/*.json`.
//!
//! A vector is `{name, seed, config?, steps: [...]}`; each step is one engine call with
//! its `now_ms` and either `expect` (a subset of the result's JSON that must match;
//! `rationale_contains` checks a substring) or `expect_error` (`{kind, field}`). A step
//! may carry `repeat` (run it n times) and `step_ms` (advance the clock between runs).
//! Every binding runs the same files and must produce the same results.
//!
//! `SMARTRETRY_BLESS=1 cargo test --test vectors` rewrites each decide's `expect` with
//! the engine's full answer (review the diff before committing it).

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use smartretry::from_value;
use smartretry::{Config, Engine, Error, Policy};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Every key of `expected` matches in `actual` (numbers within 1e-9).
fn matches(expected: &Value, actual: &Value, path: &str, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                if k == "rationale_contains" {
                    let rationale = a.get("rationale").and_then(Value::as_str).unwrap_or("");
                    if !rationale.contains(v.as_str().unwrap_or("")) {
                        errors.push(format!("{path}.rationale {rationale:?} lacks {v}"));
                    }
                    continue;
                }
                match a.get(k) {
                    Some(inner) => matches(v, inner, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k} missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                matches(x, y, &format!("{path}[{i}]"), errors);
            }
        }
        (Value::Number(_), Value::Number(_)) => {
            if (num(expected).unwrap_or(f64::NAN) - num(actual).unwrap_or(f64::NAN)).abs() > 1e-9 {
                errors.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
        _ if expected == actual => {}
        _ => errors.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

fn run_step(engine: &Engine, step: &Value, now: u64) -> Result<Value, Error> {
    let op = step["op"].as_str().unwrap_or_default();
    match op {
        "decide" => engine.decide(&from_value(step["features"].clone())?, Some(now)).map(|d| js(&d)),
        "record" => engine.record(&from_value(step["attempt"].clone())?, Some(now)).map(|()| Value::Null),
        "preview" => {
            let max = step["max_attempts"].as_u64().unwrap_or(5) as u32;
            engine.preview(&from_value(step["features"].clone())?, max, Some(now)).map(|p| js(&p))
        }
        "stats" => engine
            .stats(
                step["job_type"].as_str().unwrap_or_default(),
                step["error_class"].as_str().unwrap_or_default(),
                step["window_ms"].as_u64(),
                Some(now),
            )
            .map(|s| js(&s)),
        "emergency_stop" => {
            engine.emergency_stop(step["on"].as_bool().unwrap_or(true));
            Ok(Value::Null)
        }
        "update_guardrails" => engine.patch_guardrails(&step["guardrails"]).map(|g| js(&g)),
        "add_policy" => {
            engine.add_policy(from_value::<Policy>(step["policy"].clone())?).map(|()| Value::Null)
        }
        "remove_policy" => engine.remove_policy(step["name"].as_str().unwrap_or_default()).map(|p| js(&p)),
        "record_successes" => engine
            .record_successes(
                step["job_type"].as_str().unwrap_or_default(),
                step["tenant"].as_str(),
                step["count"].as_u64().unwrap_or(1),
                Some(now),
            )
            .map(|()| Value::Null),
        "policies" => Ok(js(&engine.policies())),
        "add_override" => engine
            .add_override(from_value(step["override"].clone())?, Some(now))
            .map(|replaced| js(&replaced)),
        "remove_override" => {
            engine.remove_override(step["name"].as_str().unwrap_or_default()).map(|o| js(&o))
        }
        "overrides" => Ok(js(&engine.overrides(Some(now)))),
        "health" => engine.health(step["job_type"].as_str().unwrap_or_default(), Some(now)).map(|h| js(&h)),
        "guardrails" => Ok(js(&engine.guardrails())),
        other => panic!("unknown op {other:?}"),
    }
}

fn js<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

const BLESSED_FIELDS: [&str; 8] = [
    "should_retry",
    "delay_ms",
    "method",
    "policy",
    "max_attempts",
    "policy_guardrails",
    "confidence",
    "estimated_success",
];

#[test]
fn conformance_vectors() {
    let bless = std::env::var("SMARTRETRY_BLESS").is_ok_and(|v| v == "1");
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "vectors present: {files:?}");
    let (mut failures, mut checked) = (Vec::new(), 0);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut vector: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = vector["name"].as_str().unwrap_or("?").to_string();
        let config: Config = if vector["config"].is_object() {
            from_value(vector["config"].clone()).unwrap()
        } else {
            Config::default()
        };
        let engine =
            Engine::builder().config(config).seed(vector["seed"].as_u64().unwrap_or(0)).build().unwrap();
        let steps = vector["steps"].as_array_mut().expect("steps");
        for (i, step) in steps.iter_mut().enumerate() {
            let repeat = step["repeat"].as_u64().unwrap_or(1);
            let step_ms = step["step_ms"].as_u64().unwrap_or(0);
            let mut now = step["now_ms"].as_u64().expect("now_ms");
            let mut result = Ok(Value::Null);
            for _ in 0..repeat {
                result = run_step(&engine, step, now);
                now += step_ms;
            }
            let at = format!("{name} step {i} ({})", step["op"]);
            match (result, step.get("expect_error")) {
                (Err(e), Some(expected)) => {
                    let actual = json!({"kind": e.kind(), "field": e.field()});
                    let mut errs = Vec::new();
                    matches(expected, &actual, &at, &mut errs);
                    failures.extend(errs);
                }
                (Err(e), None) => failures.push(format!("{at}: unexpected error {e}")),
                (Ok(v), Some(_)) => failures.push(format!("{at}: expected an error, got {v}")),
                (Ok(actual), None) => {
                    if bless && step["op"] == "decide" {
                        let mut blessed = Map::new();
                        if let Some(keep) = step["expect"].get("rationale_contains") {
                            blessed.insert("rationale_contains".into(), keep.clone());
                        }
                        for f in BLESSED_FIELDS {
                            blessed.insert(f.into(), actual[f].clone());
                        }
                        step["expect"] = Value::Object(blessed);
                    }
                    if let Some(expected) = step.get("expect") {
                        let mut errs = Vec::new();
                        matches(expected, &actual, &at, &mut errs);
                        failures.extend(errs);
                    }
                }
            }
            checked += 1;
        }
        if bless {
            std::fs::write(file, serde_json::to_string_pretty(&vector).unwrap() + "\n").unwrap();
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 50, "{checked} steps checked");
}

//! The JSON examples of the API document deserialize into our types and serialize back
//! to the same shapes (every original key, with the same value; extra fields allowed).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use smartretry::Config;
use smartretry::{from_json, Stats};
use smartretry::{Attempt, Decision, Features, Guardrails, Policy, Preview, Strategy};

/// Every key of `original` is in `actual` with an equal value (numbers compared as f64).
fn assert_contains(original: &Value, actual: &Value, path: &str) {
    match (original, actual) {
        (Value::Object(o), Value::Object(a)) => {
            for (k, v) in o {
                let inner = a.get(k).unwrap_or_else(|| panic!("{path}.{k} missing after round trip"));
                assert_contains(v, inner, &format!("{path}.{k}"));
            }
        }
        (Value::Array(o), Value::Array(a)) => {
            assert_eq!(o.len(), a.len(), "{path}: array length");
            for (i, (x, y)) in o.iter().zip(a).enumerate() {
                assert_contains(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(o), Value::Number(a)) => {
            assert!((o.as_f64().unwrap() - a.as_f64().unwrap()).abs() < 1e-9, "{path}: {o} != {a}")
        }
        _ => assert_eq!(original, actual, "{path}"),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(example: Value) -> T {
    let parsed: T = from_json(&example.to_string()).expect("example parses");
    let back = serde_json::to_value(&parsed).unwrap();
    assert_contains(&example, &back, "");
    parsed
}

#[test]
fn attempt_history_example() {
    let a: Attempt = round_trip(json!({
      "job_id": "task_123", "job_type": "email_send", "attempt_number": 2,
      "error_class": "rate_limit", "error_code": "429", "status": "failed",
      "queue": "default", "tenant": "customer_a", "payload_size": 1024, "time_of_day": 14,
      "worker_version": "v1.2.3", "health": {"cpu_usage": 0.75, "memory_usage": 0.60},
      "delay_ms": 5000, "success": false, "timestamp": "2025-01-15T14:30:00Z",
      "processing_time": "00:05.250"
    }));
    a.validate().unwrap();
    assert_eq!(a.time_ms(0), 1_736_951_400_000);
}

#[test]
fn retry_features_example() {
    let f: Features = round_trip(json!({
      "job_type": "email_send", "error_class": "rate_limit", "error_code": "429",
      "attempt_number": 2, "queue": "default", "tenant": "customer_a", "payload_size": 1024,
      "time_of_day": 14, "worker_version": "v1.2.3", "health": {"downstream_latency": 250.0},
      "since_last_failure": "00:02:30", "recent_failures": 3, "avg_processing_time": "00:04.500"
    }));
    f.validate().unwrap();
    assert_eq!(f.since_last_failure_ms(), Some(150_000));
}

#[test]
fn recommendation_examples() {
    let d: Decision = round_trip(json!({
      "should_retry": true, "delay_ms": 8000, "max_attempts": 5, "confidence": 0.85,
      "rationale": "Bayesian model predicts 85% success with 8s delay", "method": "bayesian",
      "estimated_success": 0.85, "next_evaluation": "2025-01-15T14:30:08Z", "policy_guardrails": []
    }));
    assert_eq!(d.method, smartretry::Method::Bayesian);
    let _: Features = round_trip(json!({
      "job_type": "email_send", "error_class": "rate_limit", "error_code": "429",
      "attempt_number": 2, "queue": "default", "payload_size": 1024, "time_of_day": 14,
      "since_last_failure": "00:02:30"
    }));
}

#[test]
fn preview_example() {
    let p: Preview = round_trip(json!({
      "job_id": "email_send_preview", "current_attempt": 1,
      "features": {"job_type": "email_send", "error_class": "rate_limit", "attempt_number": 1},
      "recommendations": [{"should_retry": true, "delay_ms": 2000, "confidence": 0.80, "method": "rules"}],
      "timeline": [{"attempt_number": 2, "scheduled_time": "2025-01-15T14:30:02Z", "estimated_success": 0.70,
                    "delay_ms": 2000, "method": "rules", "rationale": "Rate limit policy matched"}],
      "generated_at": "2025-01-15T14:30:00Z"
    }));
    assert_eq!(p.timeline[0].attempt_number, 2);
}

#[test]
fn record_and_stats_examples() {
    let _: Attempt = round_trip(json!({
      "job_id": "task_123", "job_type": "email_send", "attempt_number": 2, "error_class": "timeout",
      "status": "failed", "success": false, "delay_ms": 4000, "timestamp": "2025-01-15T14:30:00Z"
    }));
    let _: Stats = round_trip(json!({
      "job_type": "email_send", "error_class": "timeout", "total_attempts": 150, "successful_retries": 120,
      "failed_retries": 30, "avg_delay_ms": 4500.0, "success_rate": 0.80,
      "last_updated": "2025-01-15T14:30:00Z", "window_start": "2025-01-14T14:30:00Z",
      "window_end": "2025-01-15T14:30:00Z"
    }));
}

#[test]
fn policy_examples() {
    let listed: Policy = round_trip(json!({
      "name": "rate_limit", "error_patterns": ["429", "rate_limit"], "max_attempts": 5,
      "base_delay_ms": 5000, "max_delay_ms": 60000, "backoff_multiplier": 2.0,
      "jitter_percent": 25.0, "priority": 100
    }));
    listed.validate().unwrap();
    let added: Policy = round_trip(json!({
      "name": "custom_timeout", "error_patterns": ["timeout", "connection_timeout"],
      "job_type_patterns": ["critical_.*"], "max_attempts": 3, "base_delay_ms": 2000,
      "max_delay_ms": 30000, "backoff_multiplier": 2.0, "jitter_percent": 20.0, "priority": 90
    }));
    added.validate().unwrap();
}

#[test]
fn strategy_and_guardrails_examples() {
    let guardrails = json!({
      "max_attempts": 10, "max_delay_ms": 300000, "max_budget_percent": 20.0,
      "per_tenant_limits": true, "emergency_stop": false, "explainability_required": true
    });
    let s: Strategy = round_trip(json!({
      "name": "production", "enabled": true, "policies": [], "bayesian_threshold": 0.70,
      "ml_enabled": true, "guardrails": guardrails,
      "data_collection": {"enabled": true, "sample_rate": 1.0, "retention_days": 30,
                          "aggregation_interval": "5m", "feature_extraction": true}
    }));
    s.validate().unwrap();
    let g: Guardrails = round_trip(json!({
      "max_attempts": 8, "max_delay_ms": 180000, "max_budget_percent": 15.0,
      "per_tenant_limits": true, "emergency_stop": false, "explainability_required": true
    }));
    g.validate().unwrap();
}

#[test]
fn configuration_file_example() {
    let example = json!({
      "enabled": true, "redis_addr": "localhost:6379", "redis_password": "", "redis_db": 0,
      "strategy": {
        "name": "production", "enabled": true, "bayesian_threshold": 0.70, "ml_enabled": true,
        "guardrails": {"max_attempts": 10, "max_delay_ms": 300000, "max_budget_percent": 20.0,
                       "per_tenant_limits": true, "emergency_stop": false, "explainability_required": true},
        "data_collection": {"enabled": true, "sample_rate": 1.0, "retention_days": 30,
                            "aggregation_interval": "5m", "feature_extraction": true}
      },
      "cache": {"enabled": true, "ttl": "5m", "max_entries": 1000},
      "api": {"enabled": true, "port": 8080, "path": "/api/v1/retry"}
    });
    let config = Config::from_json(&example.to_string()).unwrap();
    assert_contains(&example, &serde_json::to_value(&config).unwrap(), "");
    assert_eq!(config.strategy.policies.len(), 4, "absent policies mean the defaults");
}

#[test]
fn unknown_fields_are_ignored_and_missing_ones_named() {
    let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"brand_new_field":{"x":1}}"#).unwrap();
    assert_eq!(f.job_type, "a");
    let err =
        smartretry::Attempt::from_json(r#"{"job_type":"a","attempt_number":1,"success":true}"#).unwrap_err();
    assert_eq!(err.field(), Some("job_id"));
    assert_eq!(err.to_string(), "invalid input: job_id: missing field `job_id`");
}

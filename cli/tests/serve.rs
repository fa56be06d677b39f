//! `smartretry serve` as a client sees it: a real server process on a free loopback
//! port, spoken to over HTTP. Shapes follow the API document.

mod common;

use std::time::Duration;

use common::{receiver, temp_dir, Server, TOKEN};
use serde_json::{json, Value};

fn assert_error_shape(body: &Value, status: u16) {
    assert_eq!(body["status"], status, "{body}");
    for key in ["error", "timestamp", "details"] {
        assert!(body[key].is_string(), "error JSON lacks {key}: {body}");
    }
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
}

#[tokio::test]
async fn recommendation_and_preview_have_the_documents_shapes() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let r = c
        .post(
            "/recommendation",
            &json!({"job_type": "email_send", "error_class": "rate_limit", "error_code": "429",
                    "attempt_number": 2, "queue": "default", "payload_size": 1024,
                    "time_of_day": 14, "since_last_failure": "00:02:30"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/json"));
    let d = r.json();
    for key in [
        "should_retry",
        "delay_ms",
        "max_attempts",
        "confidence",
        "rationale",
        "method",
        "estimated_success",
        "next_evaluation",
        "policy_guardrails",
    ] {
        assert!(!d[key].is_null(), "decision lacks {key}: {d}");
    }
    assert_eq!(d["should_retry"], true);
    assert_eq!(d["policy"], "rate_limit");
    assert_eq!(d["max_attempts"], 6);
    let recent = c.get("/recommendations").await.unwrap().json();
    let recent = recent["recommendations"].as_array().unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["features"]["job_type"], "email_send");
    assert_eq!(recent[0]["decision"]["delay_ms"], d["delay_ms"]);

    let r = c
        .post(
            "/preview",
            &json!({"features": {"job_type": "email_send", "error_class": "rate_limit", "attempt_number": 1},
                    "max_attempts": 5}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.json();
    assert_eq!(p["job_id"], "email_send_preview");
    assert_eq!(p["current_attempt"], 1);
    assert_eq!(p["features"]["job_type"], "email_send");
    let timeline = p["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 4, "attempts 2..=5: {p}");
    assert_eq!(timeline[0]["attempt_number"], 2);
    let times: Vec<&str> = timeline.iter().map(|t| t["scheduled_time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "timeline goes forward: {times:?}");
    assert!(timeline.iter().all(|t| t["rationale"].as_str().is_some_and(|r| !r.is_empty())));
    assert_eq!(p["recommendations"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn invalid_bodies_get_400_naming_the_field() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let cases = [
        (json!({"attempt_number": 2}), "job_type"),
        (json!({"job_type": "a", "attempt_number": 1, "http_status": "x"}), "http_status"),
        (json!({"job_type": "a", "attempt_number": 0}), "attempt_number"),
        (json!({"job_type": "", "attempt_number": 1}), "job_type"),
        (json!({"job_type": "a", "attempt_number": 2, "since_last_failure": "soon"}), "since_last_failure"),
    ];
    for (body, field) in cases {
        let r = c.post("/recommendation", &body).await.unwrap();
        assert_eq!(r.status, 400, "{body} -> {}", r.body);
        let e = r.json();
        assert_error_shape(&e, 400);
        assert_eq!(e["field"], field, "{e}");
        assert!(e["details"].as_str().unwrap().contains(field), "{e}");
    }
    let r = c.send(hyper::Method::POST, "/recommendation", Some("{not json".into())).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("body")), "{}", r.body);
    let r = c
        .post("/preview", &json!({"features": {"job_type": "a", "attempt_number": 1}, "max_attempts": 0}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("max_attempts")), "{}", r.body);
    let r = c.get("/stats?job_type=email_send").await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("error_class")), "{}", r.body);
    let r = c.get("/stats?job_type=a&error_class=b&window=yesterday").await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("window")), "{}", r.body);
    let r = c.put("/guardrails", &json!({"max_attempts": 0})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("max_attempts")), "{}", r.body);
    let r = c.get("/no-such-thing").await.unwrap();
    assert_error_shape(&r.json(), 404);
    let r = c.delete("/strategy").await.unwrap();
    assert_error_shape(&r.json(), 405);
}

/// Strictness must not refuse what the API document itself sends.
#[tokio::test]
async fn the_api_documents_request_bodies_are_accepted() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let bodies: [(&str, &str, Value, u16); 6] = [
        (
            "POST",
            "/recommendation",
            json!({"job_type": "email_send", "error_class": "rate_limit", "error_code": "429",
            "attempt_number": 2, "queue": "default", "payload_size": 1024, "time_of_day": 14,
            "since_last_failure": "00:02:30"}),
            200,
        ),
        (
            "POST",
            "/preview",
            json!({"features": {"job_type": "email_send", "error_class": "rate_limit",
            "attempt_number": 1}, "max_attempts": 5}),
            200,
        ),
        (
            "POST",
            "/attempt",
            json!({"job_id": "task_123", "job_type": "email_send", "attempt_number": 2,
            "error_class": "timeout", "status": "failed", "success": false, "delay_ms": 4000,
            "timestamp": "2025-01-15T14:30:00Z"}),
            202,
        ),
        (
            "POST",
            "/policies",
            json!({"name": "custom_timeout", "error_patterns": ["timeout", "connection_timeout"],
            "job_type_patterns": ["critical_.*"], "max_attempts": 3, "base_delay_ms": 2000, "max_delay_ms": 30000,
            "backoff_multiplier": 2.0, "jitter_percent": 20.0, "priority": 90}),
            201,
        ),
        ("POST", "/bayesian/update", json!({"job_type": "email_send", "error_class": "timeout"}), 200),
        (
            "PUT",
            "/guardrails",
            json!({"max_attempts": 8, "max_delay_ms": 180000, "max_budget_percent": 15.0,
            "per_tenant_limits": true, "emergency_stop": false, "explainability_required": true}),
            200,
        ),
    ];
    for (method, path, body, status) in bodies {
        let r = c.send(method.parse().unwrap(), path, Some(body.to_string().into())).await.unwrap();
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    }
}

#[tokio::test]
async fn unknown_fields_and_parameters_are_refused_naming_them() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let cases: [(&str, &str, Value, &str); 12] = [
        ("PUT", "/guardrails", json!({"max_atempts": 1}), "max_atempts"),
        ("POST", "/recommendation", json!({"job_type": "a", "attempt_number": 1, "tenat": "t"}), "tenat"),
        ("POST", "/recommendation", json!({"job_typ": "a", "attempt_number": 1}), "job_typ"),
        (
            "POST",
            "/preview",
            json!({"features": {"job_type": "a", "attempt_number": 1, "x": 1}}),
            "features.x",
        ),
        ("POST", "/preview", json!({"features": {"job_type": "a", "attempt_number": 1}, "max": 2}), "max"),
        (
            "POST",
            "/attempt",
            json!({"job_id": "j", "job_type": "a", "attempt_number": 1, "success": true, "ok": 1}),
            "ok",
        ),
        ("POST", "/policies", json!({"name": "p", "max_attempt": 2}), "max_attempt"),
        ("POST", "/overrides", json!({"name": "o", "retries_disabled": true, "scope": "x"}), "scope"),
        ("POST", "/emergency-stop", json!({"enabled": true, "why": "x"}), "why"),
        ("POST", "/bayesian/update", json!({"job_type": "a", "error_class": "b", "now": 1}), "now"),
        (
            "POST",
            "/dlq",
            json!({"job_id": "j", "job_type": "a", "failure_reason": "x", "paylod": "p"}),
            "paylod",
        ),
        ("POST", "/ml/deploy", json!({"model": {"version": "v", "id": 1}}), "model.id"),
    ];
    for (method, path, body, field) in cases {
        let r = c.send(method.parse().unwrap(), path, Some(body.to_string().into())).await.unwrap();
        assert_eq!(r.status, 400, "{path} {body} -> {}", r.body);
        let e = r.json();
        assert_error_shape(&e, 400);
        assert_eq!(e["field"], field, "{e}");
        assert!(e["details"].as_str().unwrap().contains("unknown field"), "{e}");
    }
    // The issue's case: nothing changed.
    assert_eq!(c.get("/guardrails").await.unwrap().json()["max_attempts"], 10);
    for (path, param) in [
        ("/recommendations?limt=5", "limt"),
        ("/stats?job_type=a&error_class=b&windw=1h", "windw"),
        ("/dlq?stauts=open", "stauts"),
        ("/released/a?failed_at_ms=1&since=2", "since"),
    ] {
        let r = c.get(path).await.unwrap();
        assert_eq!((r.status, r.json()["field"].as_str()), (400, Some(param)), "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn writes_need_the_write_token_and_reads_a_read_token() {
    let server = Server::start(&[], &[("RETRY_API_READ_TOKEN", "reader-1")]);
    let mut anonymous = server.anonymous();
    let mut wrong = server.anonymous().with_token(Some("guess".into()));
    let mut reader = server.anonymous().with_token(Some("reader-1".into()));
    let mutations: [(&str, &str, Value); 7] = [
        ("POST", "/recommendation", json!({"job_type": "a", "attempt_number": 1})),
        ("POST", "/attempt", json!({"job_id": "j", "job_type": "a", "attempt_number": 1, "success": true})),
        ("POST", "/policies", json!({"name": "p"})),
        ("PUT", "/guardrails", json!({"max_attempts": 3})),
        ("POST", "/bayesian/update", json!({"job_type": "a", "error_class": "timeout"})),
        ("POST", "/emergency-stop", json!({"enabled": true})),
        ("POST", "/overrides", json!({"name": "o", "retries_disabled": true})),
    ];
    for (method, path, body) in &mutations {
        let method: hyper::Method = method.parse().unwrap();
        for (who, client, status) in
            [("anonymous", &mut anonymous, 401), ("wrong", &mut wrong, 401), ("reader", &mut reader, 403)]
        {
            let r = client.send(method.clone(), path, Some(body.to_string().into())).await.unwrap();
            assert_eq!(r.status, status, "{who} {path}: {}", r.body);
            assert_error_shape(&r.json(), status);
        }
    }
    let r = anonymous.delete("/policies/fallback").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(reader.delete("/policies/fallback").await.unwrap().status, 403);
    // Nothing changed: the emergency stop is still off, the fallback policy still there.
    let r = reader.get("/emergency-stop").await.unwrap();
    assert_eq!(r.json()["emergency_stop"], false);
    let policies = reader.get("/policies").await.unwrap().json();
    assert_eq!(policies["policies"].as_array().unwrap().len(), 4);
    // Reads (payloads, recommendations, analytics, settings) need a token; probes do not.
    for path in [
        "/strategy",
        "/guardrails",
        "/policies",
        "/analytics",
        "/recommendations",
        "/alerts",
        "/emergency-stop",
        "/dlq",
        "/health/payments",
        "/ml/status",
    ] {
        assert_eq!(anonymous.get(path).await.unwrap().status, 401, "{path}");
        assert_eq!(wrong.get(path).await.unwrap().status, 401, "{path}");
        assert_eq!(reader.get(path).await.unwrap().status, 200, "{path}");
        assert_eq!(server.client().get(path).await.unwrap().status, 200, "{path}");
    }
    for path in ["/health", "/metrics", "/openapi.json"] {
        assert_eq!(anonymous.get(path).await.unwrap().status, 200, "{path}");
    }
    let root_metrics = server.url.split("/api/").next().unwrap().to_string();
    let r = smartretry_cli::client::Client::new(&root_metrics).unwrap().get("/metrics").await.unwrap();
    assert_eq!(r.status, 200);
    let preview = json!({"features": {"job_type": "a", "attempt_number": 1}});
    assert_eq!(anonymous.post("/preview", &preview).await.unwrap().status, 401);
    assert_eq!(reader.post("/preview", &preview).await.unwrap().status, 200);
    // The scheme is case-insensitive (RFC 9110).
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let header = format!("Authorization: {scheme} {TOKEN}");
        let (status, body) = common::raw(&server.url, "GET", "/strategy", &[&header], "");
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let m = server.client().get("/metrics").await.unwrap().body;
    assert!(m.contains("smartretry_auth_refused_total "), "{m}");
}

#[tokio::test]
async fn health_and_metrics_can_be_closed_too() {
    let server = Server::start(&[], &[("RETRY_API_OPEN", "none")]);
    for path in ["/health", "/metrics"] {
        assert_eq!(server.anonymous().get(path).await.unwrap().status, 401, "{path}");
        assert_eq!(server.client().get(path).await.unwrap().status, 200, "{path}");
    }
    assert_eq!(server.anonymous().get("/openapi.json").await.unwrap().status, 200);
}

/// The token printed by a first start without RETRY_API_TOKEN.
fn printed_token(server: &Server) -> Option<String> {
    // The line after the token: the token's line has arrived whole.
    server.logged("Send it as");
    let log = server.stderr();
    let line = log.lines().find_map(|l| l.trim().strip_prefix("RETRY_API_TOKEN="))?;
    Some(line.trim().to_string())
}

#[tokio::test]
async fn a_first_start_without_a_token_generates_one_prints_it_once_and_keeps_it() {
    let dir = common::temp_dir("generated-token");
    let server = Server::start_in(&dir, &[], &[("RETRY_API_TOKEN", "")]);
    let token = printed_token(&server).expect("a generated token is printed");
    assert_eq!(token.len(), 64);
    let mut c = server.anonymous().with_token(Some(token.clone()));
    let first = json!({"job_type": "a", "attempt_number": 1});
    assert_eq!(c.post("/recommendation", &first).await.unwrap().status, 200, "the first request works");
    assert_eq!(server.anonymous().post("/recommendation", &first).await.unwrap().status, 401);
    drop(server);
    // Restarted on the same state: the same token, not printed again.
    let server = Server::start_in(&dir, &[], &[("RETRY_API_TOKEN", "")]);
    assert!(server.logged("using the API token generated on"));
    assert_eq!(printed_token(&server), None, "{}", server.stderr());
    let mut c = server.anonymous().with_token(Some(token.clone()));
    assert_eq!(c.post("/recommendation", &first).await.unwrap().status, 200);
    drop(server);
    // --new-token replaces it.
    let server = Server::start_in(&dir, &["--new-token"], &[("RETRY_API_TOKEN", "")]);
    let new = printed_token(&server).expect("a new token is printed");
    assert_ne!(new, token);
    let mut old = server.anonymous().with_token(Some(token));
    assert_eq!(old.post("/recommendation", &first).await.unwrap().status, 401);
    let mut c = server.anonymous().with_token(Some(new));
    assert_eq!(c.post("/recommendation", &first).await.unwrap().status, 200);
}

#[tokio::test]
async fn request_bodies_are_size_limited() {
    let server = Server::start(&["--max-body-bytes", "1024"], &[]);
    let mut c = server.client();
    let big = json!({"job_type": "a", "attempt_number": 1, "worker_version": "v".repeat(2000)});
    let r = c.post("/recommendation", &big).await.unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    assert_error_shape(&r.json(), 413);
    assert!(r.json()["details"].as_str().unwrap().contains("1024"));
    let r = c.post("/recommendation", &json!({"job_type": "a", "attempt_number": 1})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn recorded_attempts_show_in_stats_and_feed_the_bayesian_update() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let key = json!({"job_type": "email_send", "error_class": "timeout"});
    let r = c.post("/bayesian/update", &key).await.unwrap();
    assert_eq!(r.status, 404, "nothing learned yet: {}", r.body);
    for i in 0..30u32 {
        let attempt = json!({"job_id": format!("task_{i}"), "job_type": "email_send", "attempt_number": 2,
                             "error_class": "timeout", "status": "failed", "success": i % 3 != 0,
                             "delay_ms": 4000 + u64::from(i) * 100});
        let r = c.post("/attempt", &attempt).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let r = c.get("/stats?job_type=email_send&error_class=timeout&window=24h").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    assert_eq!(s["total_attempts"], 30);
    assert_eq!(s["successful_retries"], 20);
    assert_eq!(s["failed_retries"], 10);
    assert!((s["success_rate"].as_f64().unwrap() - 0.667).abs() < 0.001, "{s}");
    assert!((s["avg_delay_ms"].as_f64().unwrap() - 5450.0).abs() < 0.001, "{s}");
    for key in ["last_updated", "window_start", "window_end"] {
        assert!(s[key].is_string(), "{key}: {s}");
    }
    let r = c.post("/bayesian/update", &key).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stats"]["total_attempts"], 30);
    let metrics = c.get("/metrics").await.unwrap().body;
    assert!(metrics.contains("smartretry_attempts_recorded_total 30\n"), "{metrics}");
    assert!(metrics.contains("smartretry_learned_keys 1\n"), "{metrics}");
}

#[tokio::test]
async fn policies_are_listed_added_used_and_removed() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let list = c.get("/policies").await.unwrap().json();
    let names: Vec<&str> =
        list["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["rate_limit", "service_unavailable", "validation", "fallback"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let custom = json!({"name": "custom_timeout", "error_patterns": ["timeout", "connection_timeout"],
                        "job_type_patterns": ["critical_.*"], "max_attempts": 3, "base_delay_ms": 2000,
                        "max_delay_ms": 30000, "backoff_multiplier": 2.0, "jitter_percent": 20.0, "priority": 90});
    let r = c.post("/policies", &custom).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.post("/policies", &custom).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("name")), "duplicate: {}", r.body);
    let failure = json!({"job_type": "critical_billing", "error_class": "timeout", "attempt_number": 1});
    let d = c.post("/recommendation", &failure).await.unwrap().json();
    assert_eq!(d["policy"], "custom_timeout", "{d}");
    assert_eq!(d["max_attempts"], 3, "{d}");
    let r = c.delete("/policies/custom_timeout").await.unwrap();
    assert_eq!((r.status, r.json()["removed"]["name"].as_str()), (200, Some("custom_timeout")));
    let r = c.delete("/policies/custom_timeout").await.unwrap();
    assert_eq!(r.status, 404);
    assert_error_shape(&r.json(), 404);
    let d = c.post("/recommendation", &failure).await.unwrap().json();
    assert_ne!(d["policy"], "custom_timeout", "{d}");
}

#[tokio::test]
async fn operators_override_a_queue_and_one_job_then_remove_them() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let cap = json!({"name": "cap-payments", "queue": "payments", "max_attempts": 2});
    let r = c.post("/overrides", &cap).await.unwrap();
    assert_eq!((r.status, r.json()["replaced"].clone()), (201, Value::Null), "{}", r.body);
    let r =
        c.post("/overrides", &json!({"name": "ctrl-o", "job_id": "job-7", "delay_ms": 45000})).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r = c.post("/overrides", &json!({"name": "bad", "max_attempts": 0})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("max_attempts")), "{}", r.body);
    let list = c.get("/overrides").await.unwrap().json();
    let names: Vec<&str> =
        list["overrides"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ctrl-o", "cap-payments"]);

    let d = c
        .post(
            "/recommendation",
            &json!({"job_type": "capture", "attempt_number": 2, "http_status": 503, "queue": "payments"}),
        )
        .await
        .unwrap();
    assert_eq!(d.status, 200, "an override's refusal is an answer, not load shedding: {}", d.body);
    let d = d.json();
    assert_eq!(
        (d["should_retry"].as_bool(), d["policy_guardrails"].clone()),
        (Some(false), json!(["override"]))
    );
    let d = c
        .post(
            "/recommendation",
            &json!({"job_type": "export", "attempt_number": 1, "http_status": 503, "job_id": "job-7"}),
        )
        .await
        .unwrap()
        .json();
    assert_eq!(d["delay_ms"], 45000, "{d}");

    let r = c.delete("/overrides/ctrl-o").await.unwrap();
    assert_eq!((r.status, r.json()["removed"]["delay_ms"].as_u64()), (200, Some(45000)));
    let r = c.delete("/overrides/ctrl-o").await.unwrap();
    assert_eq!(r.status, 404);
    assert_error_shape(&r.json(), 404);
    let h = c.get("/health/capture").await.unwrap();
    assert_eq!((h.status, h.json()["job_type"].as_str()), (200, Some("capture")), "{}", h.body);
}

#[tokio::test]
async fn guardrails_emergency_stop_and_429() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let g = c.put("/guardrails", &json!({"max_attempts": 8, "max_delay_ms": 180000})).await.unwrap();
    assert_eq!(g.status, 200, "{}", g.body);
    let g = g.json();
    assert_eq!((g["max_attempts"].as_u64(), g["max_delay_ms"].as_u64()), (Some(8), Some(180_000)));
    assert_eq!(g["max_budget_percent"], 20.0, "untouched fields are kept: {g}");
    let strategy = c.get("/strategy").await.unwrap().json();
    assert_eq!(strategy["guardrails"]["max_attempts"], 8);
    for key in ["name", "enabled", "policies", "bayesian_threshold", "ml_enabled", "data_collection"] {
        assert!(!strategy[key].is_null(), "strategy lacks {key}");
    }

    // A permanent failure is a final "no", not a guardrail refusal.
    let r = c
        .post("/recommendation", &json!({"job_type": "signup", "http_status": 400, "attempt_number": 1}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["should_retry"].as_bool()), (200, Some(false)), "{}", r.body);

    let r = c.post("/emergency-stop", &json!({"enabled": true, "reason": "incident 42"})).await.unwrap();
    assert_eq!((r.status, r.json()["emergency_stop"].as_bool()), (200, Some(true)));
    let r = c
        .post("/recommendation", &json!({"job_type": "signup", "http_status": 503, "attempt_number": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    let e = r.json();
    assert_error_shape(&e, 429);
    assert_eq!(e["decision"]["should_retry"], false);
    assert_eq!(e["decision"]["policy_guardrails"], json!(["emergency_stop"]));
    assert!(e["error"].as_str().unwrap().contains("emergency_stop"));
    assert_eq!(c.get("/strategy").await.unwrap().json()["guardrails"]["emergency_stop"], true);
    assert_eq!(c.get("/health").await.unwrap().json()["status"], "emergency_stop");
    let metrics = c.get("/metrics").await.unwrap().body;
    assert!(metrics.contains("smartretry_emergency_stop 1\n"), "{metrics}");
    assert!(metrics.contains("smartretry_guardrail_triggers_total{guardrail=\"emergency_stop\"} 1\n"));
    assert!(metrics.contains("smartretry_guardrail_refusals_http_total 1\n"));
    assert!(server.logged("incident 42"));

    c.post("/emergency-stop", &json!({"enabled": false})).await.unwrap();
    let r = c
        .post("/recommendation", &json!({"job_type": "signup", "http_status": 503, "attempt_number": 1}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["should_retry"].as_bool()), (200, Some(true)), "{}", r.body);
}

#[tokio::test]
async fn a_spent_retry_budget_answers_429() {
    let config = temp_dir("budget").join("config.json");
    std::fs::write(
        &config,
        r#"{"strategy": {"guardrails": {"max_budget_percent": 0, "min_retries_per_sec": 0.1, "budget_window_ms": 10000}}}"#,
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let mut c = server.client();
    let failure = json!({"job_type": "sync", "http_status": 503, "attempt_number": 2});
    let first = c.post("/recommendation", &failure).await.unwrap();
    assert_eq!(first.status, 200, "one retry fits the 0.1/s floor over 10 s: {}", first.body);
    let second = c.post("/recommendation", &failure).await.unwrap();
    assert_eq!(second.status, 429, "{}", second.body);
    assert_eq!(second.json()["decision"]["policy_guardrails"], json!(["retry_budget"]));
    let a = c.get("/analytics").await.unwrap().json();
    assert_eq!(
        (a["retry_budget"]["retries"].as_u64(), a["retry_budget"]["allowed"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    for n in 1..=5 {
        c.post("/recommendation", &json!({"job_type": "a", "http_status": 503, "attempt_number": n}))
            .await
            .unwrap();
    }
    let r = c.get("/metrics").await.unwrap();
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"), "{}", r.content_type);
    let mut families = Vec::new();
    for line in r.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
        let bare = name.split('{').next().unwrap();
        assert!(bare.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'), "{line:?}");
        assert!(!name.contains('{') || name.ends_with('}'), "{line:?}");
    }
    for family in [
        "smartretry_recommendations_total",
        "smartretry_guardrail_triggers_total",
        "smartretry_circuit_breaker_state",
        "smartretry_retry_budget_ratio",
        "smartretry_learned_keys",
        "smartretry_decision_latency_seconds",
    ] {
        assert!(families.iter().any(|f| f == family), "{family} missing");
    }
    // Every recommendation was timed, the refused ones too (attempts 3–5 of 3 have none left).
    assert!(r.body.contains("smartretry_decision_latency_seconds_count 5\n"), "{}", r.body);
    let total: u64 = r
        .body
        .lines()
        .filter(|l| l.starts_with("smartretry_recommendations_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 5);
    // Also at the root, where scrapers look by default.
    let root = smartretry_cli::client::Client::new(&server.url.replace("/api/v1/retry", ""))
        .unwrap()
        .get("/metrics")
        .await
        .unwrap();
    assert_eq!(root.status, 200);
    assert!(root.body.contains("smartretry_decision_latency_seconds_count 5\n"));
}

#[tokio::test]
async fn a_job_waiting_out_an_outage_is_released_when_calls_get_through() {
    // Without the breaker, whose cool-down would hold the jobs 30 s regardless.
    let dir = temp_dir("released");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"strategy": {"circuit_breaker": {"enabled": false}}}"#).unwrap();
    let server = Server::start(&[], &[("RETRY_CONFIG", config.to_str().unwrap())]);
    let mut c = server.client();
    let ok = json!({"job_id": "ok", "job_type": "webhook", "attempt_number": 1, "success": true});
    assert_eq!(c.post("/attempt", &ok).await.unwrap().status, 202);
    let mut last = Value::Null;
    for i in 0..30 {
        let failure = json!({"job_type": "webhook", "attempt_number": 1, "http_status": 503, "job_id": format!("w{i}")});
        last = c.post("/recommendation", &failure).await.unwrap().json();
    }
    let every = last["check_in_ms"].as_u64().unwrap_or_else(|| panic!("down for every caller: {last}"));
    assert!(every >= 1_000 && last["delay_ms"].as_u64().unwrap() >= 2 * every, "{last}");
    let failed_at = smartretry::time::now_ms();
    let ask = format!("/released/webhook?failed_at_ms={failed_at}");
    let r = c.get(&ask).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"job_type": "webhook", "failed_at_ms": failed_at, "released": false}));

    tokio::time::sleep(Duration::from_millis(5)).await;
    let back = json!({"job_id": "back", "job_type": "webhook", "attempt_number": 1, "success": true});
    assert_eq!(c.post("/attempt", &back).await.unwrap().status, 202);
    assert_eq!(c.get(&ask).await.unwrap().json()["released"], true);
    let metrics = c.get("/metrics").await.unwrap();
    assert!(metrics.body.contains("\nsmartretry_released_total 1\n"), "{}", metrics.body);

    let bad = c.get("/released/webhook?failed_at_ms=soon").await.unwrap();
    assert_eq!(bad.status, 400);
    assert_error_shape(&bad.json(), 400);
    assert!(bad.body.contains("failed_at_ms"), "{}", bad.body);
    let missing = c.get("/released/webhook").await.unwrap();
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("failed_at_ms"), "{}", missing.body);
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let server = Server::start(&[], &[]);
    let doc = server.anonymous().get("/openapi.json").await.unwrap().json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/v1/retry");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/recommendation", "post"),
        ("/preview", "post"),
        ("/attempt", "post"),
        ("/stats", "get"),
        ("/policies", "get"),
        ("/policies", "post"),
        ("/policies/{name}", "delete"),
        ("/bayesian/update", "post"),
        ("/strategy", "get"),
        ("/guardrails", "put"),
        ("/health", "get"),
        ("/metrics", "get"),
        ("/emergency-stop", "post"),
        ("/recommendations", "get"),
        ("/ml/train", "post"),
        ("/ml/deploy", "post"),
        ("/ml/rollback", "post"),
        ("/ml/models", "get"),
        ("/ml/status", "get"),
        ("/overrides", "get"),
        ("/overrides", "post"),
        ("/overrides/{name}", "delete"),
        ("/health/{job_type}", "get"),
        ("/released/{job_type}", "get"),
        ("/dlq", "get"),
        ("/dlq", "post"),
        ("/dlq/{id}", "get"),
        ("/dlq/{id}/retry", "post"),
        ("/dlq/{id}/resolve", "post"),
        ("/dlq/{id}/notes", "post"),
        ("/settings/changes", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} undocumented");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(doc["components"]["schemas"].get(name).is_some(), "dangling $ref {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_once_per_cooldown_to_log_and_webhook() {
    let (hook, posted) = receiver().await;
    let config = temp_dir("alerts").join("config.json");
    std::fs::write(
        &config,
        json!({"server": {"alerts": {"interval": "100ms", "cooldown": "1h", "failure_rate": 0.5,
                                     "failure_rate_min_calls": 10, "guardrail_overrides_per_minute": 30}}})
        .to_string(),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--alert-webhook", &hook], &[]);
    let mut c = server.client();
    // One success makes outcomes count, then a run of 503s opens the breaker.
    let ok = json!({"job_id": "p0", "job_type": "payments", "attempt_number": 1, "success": true});
    assert_eq!(c.post("/attempt", &ok).await.unwrap().status, 202);
    for i in 0..30 {
        let f = json!({"job_type": "payments", "http_status": 503, "attempt_number": 1, "job_id": format!("p{i}")});
        c.post("/recommendation", &f).await.unwrap();
    }
    let wanted = ["high_failure_rate", "breaker_open", "frequent_guardrail_overrides"];
    let mut names = Vec::new();
    for i in 0..100 {
        // Guardrails keep acting on new failures (the breaker defers their retries): the
        // override rate is measured between two checks, so keep some arriving.
        let f = json!({"job_type": "payments", "http_status": 503, "attempt_number": 1, "job_id": format!("q{i}")});
        c.post("/recommendation", &f).await.unwrap();
        names = posted
            .lock()
            .unwrap()
            .iter()
            .map(|a| a["alert"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>();
        if wanted.iter().all(|w| names.iter().any(|n| n == w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in wanted {
        assert!(names.iter().any(|n| n == w), "{w} not posted: {names:?}\n{}", server.stderr());
    }
    // The conditions hold for many more checks, but the cooldown keeps each to one post.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let alerts = posted.lock().unwrap().clone();
    for w in wanted {
        assert_eq!(alerts.iter().filter(|a| a["alert"] == w).count(), 1, "{w}: {alerts:?}");
    }
    let breaker = alerts.iter().find(|a| a["alert"] == "breaker_open").unwrap();
    assert_eq!(breaker["subject"], "payments");
    assert_eq!(breaker["severity"], "critical");
    assert!(server.logged("\"alert\":\"frequent_guardrail_overrides\""), "{}", server.stderr());
    let log = server.stderr();
    assert_eq!(log.matches("alert: ").count(), 3, "{log}");
    assert!(log.contains("\"alert\":\"breaker_open\""), "{log}");
    let listed = c.get("/alerts").await.unwrap().json();
    assert_eq!(listed["alerts"].as_array().unwrap().len(), 3);
    let metrics = c.get("/metrics").await.unwrap().body;
    assert!(
        metrics.contains("smartretry_circuit_breaker_state{job_type=\"payments\",state=\"open\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("smartretry_alerts_total 3\n"));
}

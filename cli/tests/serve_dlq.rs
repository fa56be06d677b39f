//! The dead-letter queue and the SQLite store over HTTP: what an operator does with a
//! job that ran out of retries, and state that survives a restart.

mod common;

use std::time::Duration;

use common::{temp_dir, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_inspected_retried_and_resolved_and_survive_a_restart() {
    let dir = temp_dir("serve-dlq");
    let db = dir.join("state.db");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"server": {"alerts": {"interval": "100ms", "dlq_size": 2}}}"#).unwrap();
    let args = ["--db", db.to_str().unwrap(), "--config", config.to_str().unwrap()];
    let server = Server::start(&args, &[]);
    let mut c = server.client();
    let mut ids = Vec::new();
    for job in ["order-1", "order-2"] {
        let entry = json!({
            "job_id": job, "job_type": "order_sync", "error_class": "timeout", "tenant": "acme",
            "failure_reason": "gave up after 3 attempts", "payload_ref": format!("s3://jobs/{job}"),
            "attempts": [
                {"job_id": job, "job_type": "order_sync", "attempt_number": 1, "error_class": "timeout", "success": false, "delay_ms": 0},
                {"job_id": job, "job_type": "order_sync", "attempt_number": 2, "error_class": "timeout", "success": false, "delay_ms": 2000},
                {"job_id": job, "job_type": "order_sync", "attempt_number": 3, "error_class": "timeout", "success": false, "delay_ms": 4000}
            ]
        });
        let r = c.post("/dlq", &entry).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let r = c
        .post("/dlq", &json!({"job_id": "", "job_type": "order_sync", "failure_reason": "x"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("job_id")), "{}", r.body);
    for body in [
        json!({"job_id": "j", "job_type": "order_sync"}),
        json!({"job_id": "j", "job_type": "t", "failure_reason": " "}),
    ] {
        let r = c.post("/dlq", &body).await.unwrap();
        assert_eq!(
            (r.status, r.json()["field"].as_str()),
            (400, Some("failure_reason")),
            "required: {}",
            r.body
        );
    }
    let r = server.anonymous().post("/dlq", &json!({"job_id": "x", "job_type": "y"})).await.unwrap();
    assert_eq!(r.status, 401);

    let list = c.get("/dlq?status=open").await.unwrap().json();
    assert_eq!(list["dead_letters"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["open"], 2);
    let one = c.get(&format!("/dlq/{}", ids[0])).await.unwrap().json();
    assert_eq!(one["attempts"].as_array().unwrap().len(), 3, "the history comes along: {one}");
    assert_eq!(one["payload_ref"], "s3://jobs/order-1");

    // Two open dead letters reach the alert threshold.
    let mut alerted = false;
    for _ in 0..100 {
        let alerts = c.get("/alerts").await.unwrap().json();
        if alerts["alerts"].as_array().unwrap().iter().any(|a| a["alert"] == "dlq_size") {
            alerted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alerted, "no dlq_size alert: {}", server.stderr());

    let r = c.post(&format!("/dlq/{}/retry", ids[0]), &json!({})).await.unwrap();
    assert_eq!(
        (r.status, r.json()["status"].as_str(), r.json()["manual_retries"].as_u64()),
        (200, Some("retried"), Some(1)),
        "{}",
        r.body
    );
    let r = c
        .post(&format!("/dlq/{}/resolve", ids[1]), &json!({"note": "customer cancelled the order"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("resolved")), "{}", r.body);
    assert_eq!(r.json()["resolution_note"], "customer cancelled the order");
    let r = c.post(&format!("/dlq/{}/retry", ids[1]), &json!({})).await.unwrap();
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("status")),
        "a resolved entry is not retried: {}",
        r.body
    );
    let r = c.post(&format!("/dlq/{}/resolve", ids[1]), &json!({})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("note")), "{}", r.body);
    // Notes are a history: a second resolution and a plain note add to it, each with who.
    let r = c
        .post(&format!("/dlq/{}/resolve", ids[1]), &json!({"note": "refund issued instead", "by": "ops-bob"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .post(&format!("/dlq/{}/notes", ids[1]), &json!({"note": "customer informed", "by": "ops-eve"}))
        .await;
    assert_eq!(r.unwrap().status, 201);
    let notes = c.get(&format!("/dlq/{}", ids[1])).await.unwrap().json()["notes"].clone();
    let seen: Vec<(&str, &str)> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["by"].as_str().unwrap(), n["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("unknown", "customer cancelled the order"),
            ("ops-bob", "refund issued instead"),
            ("ops-eve", "customer informed")
        ]
    );
    let r = c.get("/dlq/dlq_nope").await.unwrap();
    assert_eq!(r.status, 404);
    let r = c.get("/dlq?status=lost").await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("status")));
    let metrics = c.get("/metrics").await.unwrap().body;
    for line in [
        "smartretry_dlq_size{status=\"open\"} 0\n",
        "smartretry_dlq_size{status=\"retried\"} 1\n",
        "smartretry_dlq_size{status=\"resolved\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line}{metrics}");
    }
    drop(server);

    // Same file, new process: the queue is still there.
    let server = Server::start(&args, &[]);
    let mut c = server.client();
    let one = c.get(&format!("/dlq/{}", ids[1])).await.unwrap().json();
    assert_eq!(one["status"], "resolved", "{one}");
    assert_eq!(one["resolution_note"], "refund issued instead");
    assert_eq!(one["notes"].as_array().unwrap().len(), 3, "{one}");
}

#[tokio::test]
async fn inline_payloads_up_to_the_documented_mib_are_kept() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    // 1 MiB of JSON payload (the core's limit), inside a body over the server's 64 KiB.
    let text = "x".repeat((1 << 20) - 2);
    let entry =
        json!({"job_id": "big", "job_type": "export", "failure_reason": "no attempts left", "payload": text});
    let r = c.post("/dlq", &entry).await.unwrap();
    assert_eq!(r.status, 201, "{}", &r.body[..r.body.len().min(300)]);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.get(&format!("/dlq/{id}")).await.unwrap().json()["payload"].as_str().unwrap().len(),
        text.len()
    );
    let over = json!({"job_id": "bigger", "job_type": "export", "failure_reason": "x", "payload": "x".repeat(1 << 20)});
    let r = c.post("/dlq", &over).await.unwrap();
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (400, Some("payload")),
        "{}",
        &r.body[..r.body.len().min(300)]
    );
    // Other endpoints keep the server's limit.
    let big = json!({"job_type": "a", "attempt_number": 1, "worker_version": "v".repeat(100_000)});
    assert_eq!(c.post("/recommendation", &big).await.unwrap().status, 413);
}

#[tokio::test]
async fn a_job_given_up_on_goes_to_the_queue_when_asked() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    let permanent = json!({"job_type": "signup", "http_status": 400, "attempt_number": 1, "job_id": "u-1", "tenant": "acme"});
    // Off by default.
    let r = c.post("/recommendation", &permanent).await.unwrap();
    assert_eq!((r.status, r.json()["should_retry"].as_bool()), (200, Some(false)));
    assert_eq!(c.get("/dlq").await.unwrap().json()["open"], 0);
    // Per request.
    let r = c.post("/recommendation?dead_letter=true", &permanent).await.unwrap();
    assert_eq!(r.status, 200);
    let list = c.get("/dlq").await.unwrap().json();
    let entry = &list["dead_letters"][0];
    assert_eq!((entry["job_id"].as_str(), entry["tenant"].as_str()), (Some("u-1"), Some("acme")), "{list}");
    assert!(entry["failure_reason"].as_str().unwrap().starts_with("Not retrying"), "{entry}");
    // A retry granted is no give-up; a bad parameter is named.
    let transient = json!({"job_type": "signup", "http_status": 503, "attempt_number": 1, "job_id": "u-2"});
    assert_eq!(c.post("/recommendation?dead_letter=true", &transient).await.unwrap().status, 200);
    assert_eq!(c.get("/dlq").await.unwrap().json()["open"], 1);
    let r = c.post("/recommendation?dead_letter=yes", &permanent).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("dead_letter")));
    let r = c.post("/recommendation?dead_lettr=true", &permanent).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("dead_lettr")));

    // For every recommendation, by configuration.
    let dir = temp_dir("serve-dlq-auto");
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"server": {"dlq": {"on_give_up": true}}}"#).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let mut c = server.client();
    let r = c.post("/recommendation", &permanent).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/dlq").await.unwrap().json()["open"], 1);
    assert_eq!(c.post("/recommendation?dead_letter=false", &permanent).await.unwrap().status, 200);
    assert_eq!(c.get("/dlq").await.unwrap().json()["open"], 1, "switched off for that request");
}

#[tokio::test]
async fn sqlite_is_the_default_store() {
    let dir = temp_dir("serve-default-db");
    let server = Server::start_in(&dir, &[], &[]);
    let r = server
        .client()
        .post("/dlq", &json!({"job_id": "j", "job_type": "t", "failure_reason": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(dir.join("smartretry.db").exists(), "serve keeps its state in ./smartretry.db by default");
}

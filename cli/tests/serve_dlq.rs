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
    let r = c.post("/dlq", &json!({"job_id": "", "job_type": "order_sync"})).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("job_id")), "{}", r.body);
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
    assert_eq!(one["resolution_note"], "customer cancelled the order");
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

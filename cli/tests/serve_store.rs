//! Fault tests of `smartretry serve` on its store: a real redis-server started here and
//! killed with SIGKILL, real SQLite files, real `kill -9` of the server.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{receiver, temp_dir, Server};
use serde_json::{json, Value};

/// Poll `probe` every 100 ms until it gives `Some`; its value and how long it took.
async fn until<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_redis_outage_shows_in_health_metrics_log_and_alerts_within_seconds_and_so_does_recovery() {
    let redis = RedisServer::start("outage");
    let (hook, posted) = receiver().await;
    let config = temp_dir("store-outage").join("config.json");
    std::fs::write(&config, json!({"store": format!("{}?timeout_ms=200", redis.url())}).to_string()).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--alert-webhook", &hook], &[]);
    let mut c = server.client();
    let health = c.get("/health").await.unwrap().json();
    assert_eq!(
        (health["status"].as_str(), health["store"]["status"].as_str()),
        (Some("ok"), Some("ok")),
        "{health}"
    );

    let (port, dir) = redis.kill();
    let killed = Instant::now();
    // Outcomes keep being accepted and wait in the buffer.
    for i in 0..20 {
        let a = json!({"job_id": format!("j{i}"), "job_type": "sync", "attempt_number": 1, "success": true});
        assert_eq!(c.post("/attempt", &a).await.unwrap().status, 202);
    }
    let (health, _) = until(Duration::from_secs(10), "/health says degraded", || {
        let mut c = server.client();
        async move { Some(c.get("/health").await.ok()?.json()).filter(|h: &Value| h["status"] == "degraded") }
    })
    .await;
    assert_eq!(health["store"]["status"], "degraded", "{health}");
    assert!(health["reason"].as_str().unwrap().starts_with("store: "), "{health}");
    assert!(health["since"].as_str().is_some(), "{health}");
    let (_, _) =
        until(Duration::from_secs(10), "smartretry_store_up 0", || {
            let mut c = server.client();
            async move {
                (metric(&c.get("/metrics").await.ok()?.body, "smartretry_store_up")? == 0.0).then_some(())
            }
        })
        .await;
    assert!(server.logged("store: degraded"), "{}", server.stderr());
    let (_, _) = until(Duration::from_secs(10), "the store_down alert is posted", || {
        let got = posted.lock().unwrap().iter().any(|a| a["alert"] == "store_down");
        async move { got.then_some(()) }
    })
    .await;
    let all_four = killed.elapsed();
    let m = c.get("/metrics").await.unwrap().body;
    assert!(metric(&m, "smartretry_store_buffered").unwrap() >= 20.0, "{m}");
    assert!(metric(&m, "smartretry_store_write_errors_total").unwrap() >= 1.0, "{m}");
    // Decisions keep flowing meanwhile.
    let r = c
        .post("/recommendation", &json!({"job_type": "sync", "attempt_number": 1, "http_status": 503}))
        .await;
    assert_eq!(r.unwrap().status, 200);

    let redis = RedisServer::on_port(port, dir);
    let back = Instant::now();
    let (health, _) = until(Duration::from_secs(10), "/health says ok again", || {
        let mut c = server.client();
        async move { Some(c.get("/health").await.ok()?.json()).filter(|h: &Value| h["status"] == "ok") }
    })
    .await;
    assert_eq!(health["store"]["status"], "ok");
    let (_, _) = until(Duration::from_secs(10), "recovered: alert, log, gauge, buffer written", || {
        let recovered = posted.lock().unwrap().iter().any(|a| a["alert"] == "store_recovered");
        let mut c = server.client();
        let logged = server.stderr().contains("store: ok again");
        async move {
            let m = c.get("/metrics").await.ok()?.body;
            let up =
                metric(&m, "smartretry_store_up")? == 1.0 && metric(&m, "smartretry_store_buffered")? == 0.0;
            (recovered && logged && up).then_some(())
        }
    })
    .await;
    println!(
        "store down: health, metric, log line and alert within {:.1}s of kill -9; recovery seen within {:.1}s",
        all_four.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    drop(redis);
}

#[tokio::test]
async fn strict_health_answers_503_while_the_store_is_down() {
    let redis = RedisServer::start("strict");
    let config = temp_dir("store-strict").join("config.json");
    std::fs::write(
        &config,
        json!({"store": format!("{}?timeout_ms=200", redis.url()), "server": {"strict_health": true}})
            .to_string(),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()], &[]);
    assert_eq!(server.anonymous().get("/health").await.unwrap().status, 200);
    let _down = redis.kill();
    let (status, _) = until(Duration::from_secs(10), "503", || {
        let mut c = server.anonymous();
        async move { Some(c.get("/health").await.ok()?.status).filter(|s| *s == 503) }
    })
    .await;
    assert_eq!(status, 503);
}

//! Alert delivery as an operator meets it: several webhooks, one slow and one dead, many
//! subjects firing at once, and a restart.

mod common;

use std::time::{Duration, Instant};

use common::{receiver, receiver_with_delay, Server};
use serde_json::json;

#[tokio::test]
async fn alerts_reach_every_webhook_at_once_fold_past_the_cap_and_survive_a_restart() {
    let (good, got) = receiver().await;
    let (slow, slow_got) = receiver_with_delay(Duration::from_secs(3)).await;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{dead_port}/hook");
    let dir = common::temp_dir("alert-delivery");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"server": {"alerts": {
            "interval": "4s", "cooldown": "1h", "failure_rate": 0.5, "failure_rate_min_calls": 10,
            "guardrail_overrides_per_minute": 1000000, "max_per_rule": 3,
            "webhook_url": good, "webhooks": [slow, dead], "webhook_timeout": "300ms", "webhook_attempts": 2
        }}})
        .to_string(),
    )
    .unwrap();
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()], &[]);
    let started = Instant::now();
    let mut c = server.client();
    // Twelve downstreams fail at once: their breakers open before the first check (4 s).
    for t in 0..12 {
        let job_type = format!("svc{t:02}");
        let ok = json!({"job_id": format!("{job_type}-ok"), "job_type": job_type, "attempt_number": 1, "success": true});
        assert_eq!(c.post("/attempt", &ok).await.unwrap().status, 202);
        for i in 0..30 {
            let f = json!({"job_type": job_type, "http_status": 503, "attempt_number": 1, "job_id": format!("{job_type}-{i}")});
            c.post("/recommendation", &f).await.unwrap();
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the traffic outlasted the first check: {:?}",
        started.elapsed()
    );
    // Per rule: three subjects one by one, then one summary of the other nine.
    let complete = |alerts: &[serde_json::Value]| {
        ["breaker_open", "high_failure_rate"].iter().all(|rule| {
            alerts.iter().filter(|a| a["alert"] == *rule).count() == 4
                && alerts.iter().any(|a| a["alert"] == *rule && a["subject"] == "9 more")
        })
    };
    while !complete(&got.lock().unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}\n{}",
            got.lock().unwrap(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = got.lock().unwrap().len();
    assert_eq!(delivered, 8, "24 firings folded into 8 alerts");
    // The good webhook had everything while the slow one had not answered once: posts
    // run concurrently, a slow or dead receiver holds nobody up.
    assert!(slow_got.lock().unwrap().is_empty(), "the slow webhook answered first?");
    let summary =
        got.lock().unwrap().iter().find(|a| a["subject"].as_str().unwrap().ends_with(" more")).cloned();
    assert!(summary.unwrap()["message"].as_str().unwrap().contains("svc"));
    // The slow and dead ones: tried twice each (smartretry decides the wait), then counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = c.get("/metrics").await.unwrap().body;
        if m.contains(&format!("smartretry_alert_deliveries_total{{outcome=\"failed\"}} {}\n", 2 * delivered))
        {
            assert!(
                m.contains(&format!(
                    "smartretry_alert_deliveries_total{{outcome=\"delivered\"}} {delivered}\n"
                )),
                "{m}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{m}\n{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.logged(&format!("not delivered to {dead}")), "{}", server.stderr());
    let history = c.get("/alerts?limit=5").await.unwrap().json();
    assert_eq!(
        (history["total"].as_u64(), history["alerts"].as_array().unwrap().len()),
        (Some(delivered as u64), 5)
    );
    let all = c.get("/alerts").await.unwrap().json()["alerts"].clone();
    drop(server);

    // Restarted on the same state: the history is there, and nothing fires again within
    // the cooldown.
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()], &[]);
    let mut c = server.client();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after = c.get("/alerts").await.unwrap().json();
    assert_eq!(after["alerts"], all, "{after}");
    assert_eq!(got.lock().unwrap().len(), delivered, "nothing fired twice");
    assert_eq!(c.get("/alerts?limt=1").await.unwrap().status, 400);
}

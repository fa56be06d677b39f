//! Operators' settings as state: what one server is told reaches every server on the same
//! Redis within a second, survives a `kill -9` and restart on SQLite, and is listed.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{temp_dir, Server};
use serde_json::{json, Value};
use smartretry_cli::client::Client;

/// Poll `path` on `c` until `ok` holds; how long it took.
async fn seen(c: &mut Client, path: &str, ok: impl Fn(&Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let v = c.get(path).await.unwrap().json();
        if ok(&v) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{path}: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_server_reaches_the_other_within_a_second() {
    let redis = RedisServer::start("settings");
    let config = temp_dir("settings-fleet").join("config.json");
    std::fs::write(&config, json!({"store": redis.url()}).to_string()).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let (a, b) = (Server::start(&args, &[]), Server::start(&args, &[]));
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(cb.get("/guardrails").await.unwrap().json()["max_attempts"], 10);

    assert_eq!(ca.put("/guardrails", &json!({"max_attempts": 4})).await.unwrap().status, 200);
    let guardrails = seen(&mut cb, "/guardrails", |g| g["max_attempts"] == 4).await;
    let policy = json!({"name": "ledger", "job_type_patterns": ["ledger.*"], "max_attempts": 2,
                        "base_delay_ms": 100, "max_delay_ms": 1000});
    assert_eq!(cb.post("/policies", &policy).await.unwrap().status, 201);
    let policies = seen(&mut ca, "/policies", |p| {
        p["policies"].as_array().unwrap().iter().any(|x| x["name"] == "ledger")
    })
    .await;
    let o = json!({"name": "slow-acme", "tenant": "acme", "min_delay_ms": 5000});
    assert_eq!(ca.post("/overrides", &o).await.unwrap().status, 201);
    let overrides = seen(&mut cb, "/overrides", |v| v["overrides"].as_array().unwrap().len() == 1).await;
    let stop = json!({"enabled": true, "reason": "payments incident", "by": "ops-alice"});
    assert_eq!(cb.post("/emergency-stop", &stop).await.unwrap().status, 200);
    let emergency =
        seen(&mut ca, "/emergency-stop", |e| e["emergency_stop"] == true && e["by"] == "ops-alice").await;
    let state = ca.get("/emergency-stop").await.unwrap().json();
    assert_eq!(state["reason"], "payments incident");
    assert!(state["at"].as_str().is_some(), "{state}");
    // Both servers list the same changes, newest first, each with its version.
    let changes = ca.get("/settings/changes").await.unwrap().json();
    assert_eq!(changes, cb.get("/settings/changes").await.unwrap().json());
    let what: Vec<&str> =
        changes["changes"].as_array().unwrap().iter().map(|c| c["what"].as_str().unwrap()).collect();
    assert_eq!(what.len(), 4, "{changes}");
    assert!(what[0].starts_with("emergency stop on: payments incident"), "{what:?}");
    assert_eq!(what[3], "guardrails: max_attempts 10 → 4");
    assert_eq!(changes["version"], 4);
    println!(
        "two servers on one redis-server: guardrails seen on the other after {:.0} ms, a policy after {:.0} ms, \
         an override after {:.0} ms, the emergency stop after {:.0} ms",
        guardrails.as_secs_f64() * 1e3,
        policies.as_secs_f64() * 1e3,
        overrides.as_secs_f64() * 1e3,
        emergency.as_secs_f64() * 1e3
    );
    for d in [guardrails, policies, overrides, emergency] {
        assert!(d < Duration::from_secs(1), "{d:?}");
    }
    // A third server starting later starts with them.
    let c3 = Server::start(&args, &[]);
    assert_eq!(c3.client().get("/guardrails").await.unwrap().json()["max_attempts"], 4);
}

#[tokio::test]
async fn settings_survive_kill_9_and_a_restart_on_sqlite() {
    let dir = temp_dir("settings-sqlite");
    let db = dir.join("state.db");
    let args = ["--db", db.to_str().unwrap()];
    let mut server = Server::start(&args, &[]);
    let mut c = server.client();
    assert_eq!(
        c.put("/guardrails", &json!({"max_attempts": 4, "max_delay_ms": 60000})).await.unwrap().status,
        200
    );
    let o = json!({"name": "no-retry-42", "job_id": "42", "retries_disabled": true});
    assert_eq!(c.post("/overrides", &o).await.unwrap().status, 201);
    let stop = json!({"enabled": true, "reason": "deploy freeze", "by": "ops-bob"});
    assert_eq!(c.post("/emergency-stop", &stop).await.unwrap().status, 200);
    server.kill();

    let server = Server::start(&args, &[]);
    let mut c = server.client();
    let g = c.get("/guardrails").await.unwrap().json();
    assert_eq!((g["max_attempts"].as_u64(), g["max_delay_ms"].as_u64()), (Some(4), Some(60_000)), "{g}");
    assert_eq!(c.get("/overrides").await.unwrap().json()["overrides"][0]["name"], "no-retry-42");
    let e = c.get("/emergency-stop").await.unwrap().json();
    assert_eq!(
        (e["emergency_stop"].as_bool(), e["reason"].as_str(), e["by"].as_str()),
        (Some(true), Some("deploy freeze"), Some("ops-bob"))
    );
    let changes = c.get("/settings/changes?limit=2").await.unwrap().json();
    assert_eq!(changes["changes"].as_array().unwrap().len(), 2);
    assert_eq!(changes["version"], 3);
    assert_eq!(c.get("/settings/changes?offset=1").await.unwrap().status, 400);
}

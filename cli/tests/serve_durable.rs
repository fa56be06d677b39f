//! What a 202 from `POST /attempt` promises, proved with `kill -9`: writers post outcomes
//! as fast as they can, the server is killed mid-stream (SIGKILL: no shutdown, no flush),
//! and the store is read back. Durable acknowledgements lose none; buffered ones may lose
//! the last ~50 ms (the figure is printed, not asserted).

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::RedisServer;
use common::{temp_dir, Server};
use serde_json::json;

/// Post outcomes from `writers` connections until the server dies; the acknowledged job ids.
async fn post_until_killed(server: &mut Server, query: &str, writers: usize, run: Duration) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut c = server.client().with_timeout(Duration::from_secs(15));
        let (acked, path) = (Arc::clone(&acked), format!("/attempt{query}"));
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let job_id = format!("w{w}-{i}");
                let a = json!({"job_id": job_id, "job_type": "ledger", "attempt_number": 2, "error_class": "timeout",
                               "delay_ms": 1000, "success": i % 3 == 0});
                match c.post(&path, &a).await {
                    Ok(r) if r.status == 202 => acked.lock().unwrap().push(job_id),
                    Ok(r) => panic!("{}: {}", r.status, r.body),
                    Err(_) => return, // killed
                }
            }
        }));
    }
    tokio::time::sleep(run).await;
    server.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

fn sqlite_job_ids(db: &std::path::Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT job_id FROM outcomes").unwrap();
    let ids = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect();
    ids
}

fn lost(acked: &[String], kept: &HashSet<String>) -> usize {
    acked.iter().filter(|id| !kept.contains(*id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_acks_lose_nothing_to_kill_9_on_sqlite() {
    let dir = temp_dir("durable-sqlite");
    let db = dir.join("state.db");
    let mut server = Server::start(&["--db", db.to_str().unwrap()], &[]);
    let acked = post_until_killed(&mut server, "?ack=durable", 8, Duration::from_millis(1500)).await;
    let kept = sqlite_job_ids(&db);
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
    assert_eq!(lost(&acked, &kept), 0, "durable acknowledgements lost to kill -9");

    let buffered_db = dir.join("buffered.db");
    let mut server = Server::start(&["--db", buffered_db.to_str().unwrap()], &[]);
    let buffered = post_until_killed(&mut server, "", 8, Duration::from_millis(1500)).await;
    let kept_buffered = sqlite_job_ids(&buffered_db);
    println!(
        "SQLite, kill -9 mid-stream: durable {} acknowledged, 0 lost; buffered {} acknowledged, {} lost",
        acked.len(),
        buffered.len(),
        lost(&buffered, &kept_buffered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_acks_lose_nothing_to_kill_9_on_redis() {
    let redis = RedisServer::start("durable");
    let config = temp_dir("durable-redis").join("config.json");
    std::fs::write(&config, json!({"store": redis.url(), "server": {"attempt_ack": "durable"}}).to_string())
        .unwrap();
    let mut server = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let acked = post_until_killed(&mut server, "", 8, Duration::from_millis(1500)).await;
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--raw", "XRANGE", "smartretry:outcomes", "-", "+"])
        .output()
        .expect("redis-cli comes with redis-server");
    let text = String::from_utf8_lossy(&out.stdout);
    let kept: HashSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["job_id"].as_str().map(str::to_string))
        .collect();
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
    assert_eq!(lost(&acked, &kept), 0, "durable acknowledgements lost to kill -9");
    println!("Redis, kill -9 of the server mid-stream: durable {} acknowledged, 0 lost", acked.len());
}

#[tokio::test]
async fn a_durable_ack_the_store_cannot_give_is_a_503_and_bad_modes_are_named() {
    let redis = RedisServer::start("durable-down");
    let config = temp_dir("durable-down").join("config.json");
    std::fs::write(&config, json!({"store": format!("{}?timeout_ms=200", redis.url())}).to_string()).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()], &[]);
    let mut c = server.client().with_timeout(Duration::from_secs(30));
    let a = json!({"job_id": "j", "job_type": "ledger", "attempt_number": 1, "success": true});
    let r = c.post("/attempt?ack=durable", &a).await.unwrap();
    assert_eq!((r.status, r.json()["ack"].as_str()), (202, Some("durable")), "{}", r.body);
    assert_eq!(c.post("/attempt", &a).await.unwrap().json()["ack"], "buffered");
    let _down = redis.kill();
    let r = c.post("/attempt?ack=durable", &a).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.json()["details"].as_str().unwrap().contains("buffered"), "{}", r.body);
    let r = c.post("/attempt?ack=eventually", &a).await.unwrap();
    assert_eq!((r.status, r.json()["field"].as_str()), (400, Some("ack")));
}

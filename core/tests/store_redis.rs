//! The Redis store against a real `redis-server` started on a free loopback port (see
//! `scripts/ensure-redis.sh`): workers learn together (a second process starts warm),
//! share the retry budget, breakers, the emergency stop and the dead-letter queue, and
//! keep deciding while Redis is down, buffering records (bounded) until it is back.

#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{failure, teach, T0};
use smartretry::{Attempt, Config, DeadLetterQuery, Engine, Features, Guardrails, Method, NewDeadLetter};

const FLUSH: Duration = Duration::from_secs(10);

/// A redis-server of our own, stopped (and its directory removed) on drop.
struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start(name: &str) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("smartretry-redis-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        RedisServer::on_port(port, dir)
    }

    fn on_port(port: u16, dir: PathBuf) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/ensure-redis.sh installs it)");
        let server = RedisServer { child, port, dir };
        wait_until("redis-server answers", || {
            std::net::TcpStream::connect(("127.0.0.1", server.port)).is_ok()
        });
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn stop(mut self) -> (u16, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = (self.port, std::mem::take(&mut self.dir));
        std::mem::forget(self);
        out
    }

    fn stream_len(&self) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("XLEN").arg("smartretry:outcomes").query(&mut c).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait for something the writer threads do in the background (never a speed limit:
/// the bound only keeps a broken build from hanging).
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(30), "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn calm() -> Guardrails {
    Guardrails { adaptive_throttle: false, ..Default::default() }
}

fn engine(url: &str) -> Engine {
    Engine::builder().seed(5).guardrails(calm()).store(url).build().unwrap()
}

/// Run by `a_second_worker_process_starts_warm` in a child process: teach and exit.
#[test]
#[ignore = "run as a child process by a_second_worker_process_starts_warm"]
fn fleet_worker_child() {
    let url = std::env::var("SMARTRETRY_TEST_REDIS").expect("the parent test sets it");
    let e = engine(&url);
    teach(&e, "payment_capture", 60);
    e.flush(FLUSH).unwrap();
}

#[test]
fn a_second_worker_process_starts_warm() {
    let redis = RedisServer::start("warm");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fleet_worker_child", "--include-ignored", "--quiet"])
        .env("SMARTRETRY_TEST_REDIS", redis.url())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the first worker process failed");
    assert_eq!(redis.stream_len(), 120, "the first worker's outcomes are in the shared stream");

    let second = engine(&redis.url());
    let d = second.decide(&failure("payment_capture"), Some(T0 + 200_000)).unwrap();
    assert_eq!(d.method, Method::Bayesian, "warm from the fleet's outcomes: {}", d.rationale);
    assert!((6_000..=13_000).contains(&d.delay_ms), "inside the 6–12 s recovery window: {}", d.delay_ms);
    let cold = Engine::builder().seed(5).guardrails(calm()).build().unwrap();
    assert_eq!(cold.decide(&failure("payment_capture"), Some(T0 + 200_000)).unwrap().method, Method::Rules);
}

#[test]
fn running_workers_learn_from_each_other() {
    let redis = RedisServer::start("together");
    let a = engine(&redis.url());
    let b = engine(&redis.url());
    assert_eq!(b.decide(&failure("export"), Some(T0)).unwrap().method, Method::Rules);
    teach(&a, "export", 40);
    a.flush(FLUSH).unwrap();
    wait_until("b folds in a's outcomes", || b.metrics().fleet_outcomes_total >= 80);
    let d = b.decide(&failure("export"), Some(T0 + 100_000)).unwrap();
    assert_eq!(d.method, Method::Bayesian, "{}", d.rationale);
    let stats = b.stats("export", "timeout", None, Some(T0 + 100_000)).unwrap();
    assert_eq!(stats.total_attempts, 80, "b's statistics count a's attempts");
    assert_eq!(a.metrics().fleet_outcomes_total, 0, "a does not learn its own outcomes twice");
}

#[test]
fn the_emergency_stop_breakers_budget_and_dead_letters_are_shared() {
    let redis = RedisServer::start("shared");
    let mut config = Config { store: redis.url(), ..Config::default() };
    config.strategy.guardrails = Guardrails { min_retries_per_sec: 0.0, max_budget_percent: 20.0, ..calm() };
    config.strategy.circuit_breaker.consecutive_failures = 3;
    config.seed = Some(9);
    let a = Engine::from_config(config.clone()).unwrap();
    let b = Engine::from_config(config).unwrap();

    // The emergency stop, from either side.
    a.emergency_stop(true);
    wait_until("b stops", || b.is_emergency_stopped());
    let d = b.decide(&Features::new("sync", 1).with_http_status(503), None).unwrap();
    assert!(!d.should_retry && d.policy_guardrails.iter().any(|g| g == "emergency_stop"));
    b.emergency_stop(false);
    wait_until("a resumes", || !a.is_emergency_stopped());

    // The retry budget: b alone has seen no first attempts, so it may retry nothing;
    // with a's 100 it may spend 20 % of the fleet's.
    a.record_successes("ledger", None, 100, None).unwrap();
    a.flush(FLUSH).unwrap();
    wait_until("b sees a's first attempts", || {
        b.flush(FLUSH).unwrap();
        b.decide(&Features::new("ledger", 2).with_http_status(503), None).unwrap().should_retry
    });
    let granted = 1
        + (0..40)
            .filter(|_| {
                b.decide(&Features::new("ledger", 2).with_http_status(503), None).unwrap().should_retry
            })
            .count();
    assert_eq!(granted, 20, "20 % of the fleet's 100 first attempts");
    b.flush(FLUSH).unwrap();
    wait_until("a sees b's retries", || {
        a.flush(FLUSH).unwrap();
        let d = a.decide(&Features::new("ledger", 2).with_http_status(503), None).unwrap();
        d.policy_guardrails.iter().any(|g| g == "retry_budget")
    });

    // A breaker a opens is open on b.
    let now = smartretry::time::now_ms();
    a.record(&Attempt::new("ok", "mailer", 1, true), Some(now)).unwrap();
    for _ in 0..3 {
        a.decide(&Features::new("mailer", 1).with_http_status(503), Some(now)).unwrap();
    }
    a.flush(FLUSH).unwrap();
    wait_until("b's breaker opens", || {
        b.flush(FLUSH).unwrap();
        b.breakers(Some(now)).iter().any(|s| s.key == "mailer" && s.state == smartretry::BreakerState::Open)
    });

    // Dead letters are one queue.
    let dl = a
        .add_dead_letter(
            NewDeadLetter {
                job_id: "j1".into(),
                job_type: "mailer".into(),
                failure_reason: "no attempts left".into(),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(b.dead_letter(&dl.id).unwrap().job_id, "j1");
    assert_eq!(b.dead_letters(&DeadLetterQuery::default()).unwrap().len(), 1);
    b.resolve_dead_letter(&dl.id, "re-sent", None).unwrap();
    assert_eq!(a.dead_letter(&dl.id).unwrap().resolution_note.as_deref(), Some("re-sent"));
}

#[test]
fn decisions_keep_flowing_while_redis_is_down_and_records_wait_for_it() {
    let redis = RedisServer::start("outage");
    let mut config =
        Config { store: format!("{}?timeout_ms=100", redis.url()), store_buffer: 50, ..Config::default() };
    config.strategy.data_collection.sample_rate = 0.0;
    config.strategy.guardrails = calm();
    let e = Engine::from_config(config).unwrap();
    teach(&e, "sync", 20);
    e.flush(FLUSH).unwrap();
    assert_eq!(redis.stream_len(), 40);

    let (port, dir) = redis.stop();
    let attempt = |i: u32| {
        Attempt::new(format!("down{i}"), "sync", 2, true).with_error_class("timeout").with_delay_ms(500)
    };
    for i in 0..30 {
        e.record(&attempt(i), Some(T0 + 500_000)).unwrap();
    }
    wait_until("the engine notices", || e.metrics().store_degraded);
    assert!(e.flush(Duration::from_secs(1)).is_err(), "flush says the store is unreachable");
    let d = e.decide(&failure("sync"), Some(T0 + 500_000)).unwrap();
    assert!(d.should_retry, "decisions keep flowing");
    assert!(d.rationale.contains("store is unreachable"), "{}", d.rationale);
    for i in 30..80 {
        e.record(&attempt(i), Some(T0 + 500_000)).unwrap();
    }
    let m = e.metrics();
    assert_eq!(m.store_buffered, 50, "bounded");
    assert_eq!(m.store_dropped_total, 30, "80 records, room for 50: 30 dropped and counted");
    assert!(m.store_errors_total >= 1);

    // Back (empty: this server keeps nothing on disk): what was buffered is written.
    let redis = RedisServer::on_port(port, dir);
    wait_until("the buffer drains", || e.metrics().store_buffered == 0 && !e.metrics().store_degraded);
    e.flush(FLUSH).unwrap();
    assert_eq!(redis.stream_len(), 50, "every record within the bound reached Redis");
    let d = e.decide(&failure("sync"), Some(T0 + 500_000)).unwrap();
    assert!(!d.rationale.contains("unreachable"), "{}", d.rationale);
}

#[test]
fn outcomes_older_than_the_retention_leave_the_stream() {
    let redis = RedisServer::start("retention");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    // An entry Redis took long ago (its id is its time: 1 s after the epoch).
    let _: String = redis::cmd("XADD")
        .arg("smartretry:outcomes")
        .arg("1000-0")
        .arg("w")
        .arg("old")
        .arg("r")
        .arg("{}")
        .query(&mut c)
        .unwrap();
    let e = engine(&redis.url());
    let now = smartretry::time::now_ms();
    e.record(&Attempt::new("j", "sync", 1, true), Some(now)).unwrap();
    e.flush(FLUSH).unwrap();
    let first: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg("smartretry:outcomes").arg("-").arg("+").query(&mut c).unwrap();
    assert!(first.iter().all(|(id, _)| id != "1000-0"), "trimmed by age: {first:?}");
    assert_eq!(redis.stream_len(), 1, "today's outcome stays");
}

#[test]
fn bad_redis_urls_name_the_field() {
    let err = Engine::builder().store("redis://").build().err().unwrap();
    assert_eq!(err.field(), Some("store"));
    let err = Engine::builder().store("redis://127.0.0.1:1/0?timeout_ms=0").build().err().unwrap();
    assert_eq!(err.field(), Some("store.timeout_ms"));
    // A password never shows in metrics.
    let e = Engine::builder().store("redis://:hunter2@127.0.0.1:1/0?timeout_ms=50").build().unwrap();
    assert!(!e.metrics().store.contains("hunter2"), "{}", e.metrics().store);
}

//! The SQLite store, on real files: what survives a restart (learned statistics, the
//! breaker, the emergency stop, the dead-letter queue, the model registry), what is
//! forgotten (history past retention), what is sampled (the audit trail), and the errors
//! a locked, corrupt or too-new file gives.

#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::time::Duration;

mod common;

use common::{failure, teach, T0};
use smartretry::store::{ModelRecord, SqliteStore};
use smartretry::{
    Attempt, Config, DeadLetterQuery, DeadLetterStatus, Engine, Error, Features, Guardrails, Method,
    NewDeadLetter,
};

const DAY: u64 = 86_400_000;
const FLUSH: Duration = Duration::from_secs(10);

/// A fresh database path under the system temp dir, removed (with its WAL) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("smartretry-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir.join("state.db"))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn engine(db: &TempDb) -> Engine {
    // Throttling would defer retries of a downstream taught mostly failures.
    let calm = Guardrails { adaptive_throttle: false, ..Default::default() };
    Engine::builder().seed(7).guardrails(calm).store(db.url()).build().unwrap()
}

#[test]
fn a_restarted_engine_decides_as_well_as_before() {
    let db = TempDb::new("restart");
    let now = T0 + 200_000;
    let (before, stats_before) = {
        let e = engine(&db);
        teach(&e, "payment_capture", 60);
        e.flush(FLUSH).unwrap();
        let d = e.decide(&failure("payment_capture"), Some(now)).unwrap();
        (d, e.stats("payment_capture", "timeout", None, Some(now)).unwrap())
    };
    assert_eq!(before.method, Method::Bayesian, "{}", before.rationale);

    let e = engine(&db);
    let after = e.decide(&failure("payment_capture"), Some(now)).unwrap();
    assert_eq!(after.method, Method::Bayesian, "learned, not cold: {}", after.rationale);
    let (a, b) = (after.delay_ms as f64, before.delay_ms as f64);
    assert!((a - b).abs() <= 0.15 * b, "delay {a} vs {b} before the restart");
    assert!((after.confidence - before.confidence).abs() < 0.05);
    let stats_after = e.stats("payment_capture", "timeout", None, Some(now)).unwrap();
    assert_eq!(stats_after.buckets, stats_before.buckets, "bucket counts survive");
    assert_eq!(stats_after.total_attempts, 120, "the attempt history is reloaded for stats");
    assert!(e.metrics().store.starts_with("sqlite://"), "{}", e.metrics().store);

    // A memory engine knows nothing of it.
    let cold = Engine::builder().seed(7).build().unwrap();
    assert_eq!(cold.decide(&failure("payment_capture"), Some(now)).unwrap().method, Method::Rules);
}

#[test]
fn history_older_than_retention_is_forgotten() {
    let db = TempDb::new("retention");
    let mut config = Config::default();
    config.strategy.data_collection.retention_days = 30;
    config.store = db.url();
    let e = Engine::from_config(config).unwrap();
    let attempt =
        |id: &str| Attempt::new(id, "sync", 2, false).with_error_class("timeout").with_delay_ms(1_000);
    e.record(&attempt("old"), Some(T0)).unwrap();
    e.record(&attempt("recent"), Some(T0 + 20 * DAY)).unwrap();
    e.flush(FLUSH).unwrap();
    assert_eq!(e.outcomes(0, 100).unwrap().len(), 2);
    e.record(&attempt("now"), Some(T0 + 40 * DAY)).unwrap();
    e.flush(FLUSH).unwrap();
    let kept: Vec<String> = e.outcomes(0, 100).unwrap().into_iter().map(|o| o.job_id).collect();
    assert_eq!(kept, ["recent", "now"], "40 days on, the 40-day-old attempt is gone");
}

#[test]
fn the_audit_trail_is_sampled_by_sample_rate() {
    for (rate, name) in [(1.0, "audit-all"), (0.25, "audit-quarter"), (0.0, "audit-none")] {
        let db = TempDb::new(name);
        let mut config = Config::default();
        config.strategy.data_collection.sample_rate = rate;
        config.store = db.url();
        config.seed = Some(3);
        let e = Engine::from_config(config).unwrap();
        for i in 0..400 {
            let f =
                Features { job_id: Some(format!("j{i}")), ..Features::new("sync", 1).with_http_status(503) };
            e.decide(&f, Some(T0 + i)).unwrap();
        }
        e.flush(FLUSH).unwrap();
        let trail = e.audit_trail(1_000).unwrap();
        let expected = 400.0 * rate;
        assert!(
            (trail.len() as f64 - expected).abs() <= 0.2 * 400.0 * rate.max(0.01),
            "{rate}: {}",
            trail.len()
        );
        if let Some(last) = trail.first() {
            assert_eq!(last.features.job_type, "sync");
            assert!(last.decision.should_retry && !last.decision.rationale.is_empty());
        }
    }
}

#[test]
fn past_max_audit_per_sec_sampled_decisions_are_shed_and_counted() {
    let db = TempDb::new("audit-cap");
    let mut config = Config::default();
    config.strategy.data_collection.max_audit_per_sec = 100;
    config.store = db.url();
    let e = Engine::from_config(config).unwrap();
    let started = std::time::Instant::now();
    for i in 0..400 {
        let f = Features { job_id: Some(format!("j{i}")), ..Features::new("sync", 1).with_http_status(503) };
        e.decide(&f, Some(T0 + i)).unwrap();
    }
    // The cap is per second of real time: a slow run may span more than one window.
    let windows = started.elapsed().as_secs() + 2;
    e.flush(FLUSH).unwrap();
    let kept = e.audit_trail(1_000).unwrap().len() as u64;
    let shed = e.metrics().audit_shed_total;
    assert_eq!(kept + shed, 400, "every sampled decision is either kept or counted as shed");
    assert!(kept >= 100 && kept <= 100 * windows, "kept {kept} over at most {windows} windows");
    assert_eq!(e.metrics().store_dropped_total, 0, "shedding is not a buffer overflow");
}

#[test]
fn remove_database_deletes_the_file_with_its_wal_and_shared_memory() {
    let db = TempDb::new("remove");
    let e = engine(&db);
    e.record(&Attempt::new("j", "sync", 2, true), Some(1_000)).unwrap();
    e.flush(FLUSH).unwrap();
    let files = || ["", "-wal", "-shm"].map(|s| PathBuf::from(format!("{}{s}", db.0.display())).exists());
    assert_eq!(files(), [true, true, true], "an open engine in WAL mode keeps three files");
    drop(e);
    smartretry::store::SqliteStore::remove_database(&db.0).unwrap();
    assert_eq!(files(), [false, false, false]);
    smartretry::store::SqliteStore::remove_database(&db.0).expect("absent files are not an error");
}

#[test]
fn the_dead_letter_queue_keeps_history_and_notes_across_restarts() {
    let db = TempDb::new("dlq");
    let id = {
        let e = engine(&db);
        let attempts: Vec<Attempt> = (1..=3)
            .map(|n| {
                Attempt::new("order-17", "invoice_send", n, false)
                    .with_error_class("service_unavailable")
                    .with_delay_ms(1_000 * u64::from(n))
            })
            .collect();
        let entry = e
            .add_dead_letter(
                NewDeadLetter {
                    job_id: "order-17".into(),
                    job_type: "invoice_send".into(),
                    error_class: Some("service_unavailable".into()),
                    failure_reason: "Attempt 3 of 3 failed: no attempts left.".into(),
                    attempts,
                    payload_ref: Some("s3://jobs/order-17.json".into()),
                    ..Default::default()
                },
                Some(T0),
            )
            .unwrap();
        e.add_dead_letter(
            NewDeadLetter {
                job_id: "order-18".into(),
                job_type: "report".into(),
                failure_reason: "no attempts left".into(),
                ..Default::default()
            },
            Some(T0 + 1),
        )
        .unwrap();
        entry.id
    };

    let e = engine(&db);
    assert_eq!(e.dead_letter_count(None).unwrap(), 2);
    let listed = e.dead_letters(&DeadLetterQuery::default()).unwrap();
    assert_eq!(
        listed.iter().map(|d| d.job_id.as_str()).collect::<Vec<_>>(),
        ["order-18", "order-17"],
        "newest first"
    );
    let only = e
        .dead_letters(&DeadLetterQuery { job_type: Some("invoice_send".into()), ..Default::default() })
        .unwrap();
    assert_eq!(only.len(), 1);

    let entry = e.dead_letter(&id).unwrap();
    assert_eq!(entry.attempts.len(), 3, "full attempt history");
    assert_eq!(entry.attempts[2].delay_ms, 3_000);
    assert_eq!(entry.payload_ref.as_deref(), Some("s3://jobs/order-17.json"));

    let retried = e.retry_dead_letter(&id, Some(T0 + 10)).unwrap();
    assert_eq!((retried.status, retried.manual_retries), (DeadLetterStatus::Retried, 1));
    let resolved =
        e.resolve_dead_letter(&id, "Invoice sent by hand after the outage.", Some(T0 + 20)).unwrap();
    assert_eq!(resolved.status, DeadLetterStatus::Resolved);
    assert_eq!(e.dead_letter_count(Some(DeadLetterStatus::Open)).unwrap(), 1);
    drop(e);

    let e = engine(&db);
    let entry = e.dead_letter(&id).unwrap();
    assert_eq!(entry.resolution_note.as_deref(), Some("Invoice sent by hand after the outage."));
    assert_eq!(entry.manual_retries, 1);
    let err = e.retry_dead_letter(&id, None).unwrap_err();
    assert_eq!(err.field(), Some("status"), "{err}");
    let err = e.resolve_dead_letter(&id, "  ", None).unwrap_err();
    assert_eq!(err.field(), Some("note"));
    // Notes are append-only: resolving again adds one, the first stays, each says who.
    let again = e
        .note_dead_letter(&id, "Customer confirmed receipt.", Some("ops-alice"), true, Some(T0 + 30))
        .unwrap();
    let notes: Vec<_> = again.notes.iter().map(|n| (n.by.as_str(), n.text.as_str(), n.resolved)).collect();
    assert_eq!(
        notes,
        [
            ("unknown", "Invoice sent by hand after the outage.", true),
            ("ops-alice", "Customer confirmed receipt.", true)
        ]
    );
    assert_eq!(again.resolution_note.as_deref(), Some("Customer confirmed receipt."));
    let err = e
        .add_dead_letter(
            NewDeadLetter { job_id: "j".into(), job_type: "x".into(), ..Default::default() },
            None,
        )
        .unwrap_err();
    assert_eq!(err.field(), Some("failure_reason"), "required");
    assert!(matches!(e.dead_letter("dlq_missing"), Err(Error::NotFound { .. })));
    let err = e
        .add_dead_letter(
            NewDeadLetter { job_id: "".into(), job_type: "x".into(), ..Default::default() },
            None,
        )
        .unwrap_err();
    assert_eq!(err.field(), Some("job_id"));
}

#[test]
fn an_open_breaker_and_the_emergency_stop_survive_a_restart() {
    let db = TempDb::new("breaker");
    let mut config = Config::default();
    config.strategy.circuit_breaker.consecutive_failures = 3;
    config.store = db.url();
    config.seed = Some(1);
    let now = smartretry::time::now_ms();
    {
        let e = Engine::from_config(config.clone()).unwrap();
        e.record(&Attempt::new("ok", "ledger", 1, true), Some(now)).unwrap();
        for _ in 0..3 {
            e.decide(&Features::new("ledger", 1).with_http_status(503), Some(now)).unwrap();
        }
        assert_eq!(e.breakers(Some(now))[0].state, smartretry::BreakerState::Open);
        e.emergency_stop(true);
        e.flush(FLUSH).unwrap();
    }
    let e = Engine::from_config(config.clone()).unwrap();
    assert!(e.is_emergency_stopped(), "an operator's stop outlives the process");
    e.emergency_stop(false);
    let d = e.decide(&Features::new("ledger", 1).with_http_status(503), Some(now + 1_000)).unwrap();
    assert_eq!(d.method, Method::Breaker, "{}", d.rationale);
    assert!(d.delay_ms >= 28_000, "waits for the cool-down that began before the restart: {}", d.delay_ms);
    e.flush(FLUSH).unwrap();
    drop(e);
    assert!(!Engine::from_config(config).unwrap().is_emergency_stopped());
}

#[test]
fn the_model_registry_persists_versions() {
    let db = TempDb::new("models");
    {
        let e = engine(&db);
        let model = ModelRecord {
            version: "v1".into(),
            status: "shadow".into(),
            sidecar: serde_json::json!({"features": ["attempt_number", "http_status"]}),
            metrics: serde_json::json!({"auc": 0.81}),
            bytes: Some(vec![8, 1, 2, 3]),
            path: None,
            created_ms: T0,
            updated_ms: T0,
        };
        e.store().model_put(&model).unwrap();
        e.store().model_put(&ModelRecord { version: "v2".into(), created_ms: T0 + 1, ..model }).unwrap();
    }
    let e = engine(&db);
    let v1 = e.store().model_get("v1").unwrap().unwrap();
    assert_eq!(v1.bytes.as_deref(), Some(&[8u8, 1, 2, 3][..]));
    assert_eq!(v1.metrics["auc"], 0.81);
    let all = e.store().model_list().unwrap();
    assert_eq!(all.iter().map(|m| m.version.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
    assert!(all.iter().all(|m| m.bytes.is_none()), "listing leaves the bytes out");
}

#[test]
fn migrations_are_versioned_and_a_newer_file_is_refused() {
    let db = TempDb::new("migrations");
    let store = SqliteStore::open(&db.0, Duration::from_secs(1)).unwrap();
    assert_eq!(store.schema_version().unwrap(), smartretry::store::SQLITE_SCHEMA_VERSION);
    drop(store);
    // Opening again changes nothing.
    let store = SqliteStore::open(&db.0, Duration::from_secs(1)).unwrap();
    assert_eq!(store.schema_version().unwrap(), smartretry::store::SQLITE_SCHEMA_VERSION);
    drop(store);
    rusqlite::Connection::open(&db.0).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
    let err = Engine::builder().store(db.url()).build().err().expect("refused");
    let text = err.to_string();
    assert!(text.contains(&db.0.display().to_string()) && text.contains("newer"), "{text}");
}

#[test]
fn a_corrupt_or_locked_file_names_the_file() {
    let db = TempDb::new("corrupt");
    std::fs::write(&db.0, vec![0x5a; 8_192]).unwrap();
    let err = Engine::builder().store(db.url()).build().err().expect("corrupt file refused");
    assert_eq!(err.kind(), "store");
    let text = err.to_string();
    assert!(text.contains(&db.0.display().to_string()), "{text}");
    assert!(text.contains("not a database"), "{text}");

    let db = TempDb::new("locked");
    drop(SqliteStore::open(&db.0, Duration::from_secs(1)).unwrap());
    let holder = rusqlite::Connection::open(&db.0).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE; INSERT INTO settings VALUES ('x', 'y');").unwrap();
    let err =
        Engine::builder().store(format!("{}?busy_timeout_ms=100", db.url())).build().err().expect("locked");
    let text = err.to_string();
    assert!(text.contains(&db.0.display().to_string()) && text.contains("locked"), "{text}");
}

#[test]
fn store_urls_are_checked() {
    let err = Engine::builder().store("ftp://somewhere").build().err().unwrap();
    assert_eq!(err.field(), Some("store"));
    let err = Engine::builder().store("sqlite://").build().err().unwrap();
    assert_eq!(err.field(), Some("store"));
    let err = Engine::builder().store("sqlite:///tmp/x.db?busy_timeout_ms=soon").build().err().unwrap();
    assert_eq!(err.field(), Some("store.busy_timeout_ms"));
    let e = Engine::builder().store("memory").build().unwrap();
    assert_eq!(e.metrics().store, "memory");
    let mut c = Config::default();
    c.apply_env([("RETRY_STORE", "sqlite:///var/lib/smartretry.db")]).unwrap();
    assert_eq!(c.store_url(), "sqlite:///var/lib/smartretry.db");
    let mut c = Config::default();
    c.apply_env([("RETRY_REDIS_ADDR", "10.0.0.5:6380"), ("RETRY_REDIS_PASSWORD", "s3cret")]).unwrap();
    assert_eq!(c.store_url(), "redis://10.0.0.5:6380/0");
    assert_eq!(c.redis_password, "s3cret");
}

#[test]
fn the_file_is_held_to_its_row_caps_whatever_the_labels() {
    let tmp = TempDb::new("caps");
    let db = tmp.0.clone();
    let url = format!("{}?max_learned=50&max_breakers=20&max_outcomes=300&max_audit=100", tmp.url());
    let mut config = Config { store: url, seed: Some(1), ..Config::default() };
    config.strategy.guardrails = Guardrails { adaptive_throttle: false, ..Default::default() };
    config.strategy.circuit_breaker.consecutive_failures = 3;
    let e = Engine::from_config(config).unwrap();
    // 2,000 job types never seen again (key churn): each learns, and opens its breaker.
    for i in 0..2_000u64 {
        let job_type = format!("churn_{i}");
        let t = T0 + i * 10;
        let attempt =
            |n, ok| Attempt::new(format!("j{i}"), job_type.clone(), n, ok).with_error_class("timeout");
        e.record(&attempt(2, false).with_delay_ms(1_000), Some(t)).unwrap();
        e.record(&attempt(3, true).with_delay_ms(2_000), Some(t)).unwrap();
        e.record(&Attempt::new("ok", job_type.clone(), 1, true), Some(t)).unwrap();
        for _ in 0..3 {
            e.decide(&Features::new(job_type.clone(), 1).with_http_status(503), Some(t)).unwrap();
        }
        // Rows of one write share its time, so "oldest first" cannot order a batch larger
        // than the cap: flush often enough (as a running writer does) that none is.
        if i % 20 == 19 {
            e.flush(Duration::from_secs(30)).unwrap();
        }
    }
    e.flush(Duration::from_secs(30)).unwrap();
    drop(e);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert!(count("learned") <= 55, "learned: {}", count("learned"));
    assert!(count("circuit_breaker_state") <= 22, "breakers: {}", count("circuit_breaker_state"));
    assert_eq!(count("outcomes"), 300);
    assert!(count("audit") <= 100, "audit: {}", count("audit"));
    // The newest survive: a restart still knows the last job types.
    let newest: i64 = conn
        .query_row("SELECT count(*) FROM learned WHERE job_type = 'churn_1999'", [], |r| r.get(0))
        .unwrap();
    assert!(newest >= 1, "the most recent key is kept");
    let err =
        Engine::builder().store(format!("sqlite://{}?max_learned=0", db.display())).build().err().unwrap();
    assert_eq!(err.field(), Some("store.max_learned"));
}

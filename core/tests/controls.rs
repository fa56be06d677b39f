//! The documents' remaining controls, as a user meets them: overrides per queue, tenant,
//! job type and job; context-aware configuration; priority; health-aware backoff;
//! lifecycle events.

use std::time::Duration;

use smartretry::EventKind;
use smartretry::{
    Attempt, BreakerState, Config, Decision, Engine, Features, Guardrails, Method, Override, Priority,
};

const T0: u64 = 1_700_000_000_000;

fn engine() -> Engine {
    Engine::builder().seed(42).build().unwrap()
}

fn guards(d: &Decision) -> Vec<&str> {
    d.policy_guardrails.iter().map(|g| g.as_ref()).collect()
}

fn over(name: &str) -> Override {
    Override { name: name.into(), ..Default::default() }
}

fn metric(e: &Engine, name: &str) -> u64 {
    e.metrics().guardrail_triggers.iter().find(|(g, _)| g == name).map_or(0, |(_, n)| *n)
}

// ---- overrides -------------------------------------------------------------------

#[test]
fn an_operator_caps_a_queue_and_a_tenant_overrides_it() {
    let e = engine();
    e.add_override(
        Override { queue: Some("payments".into()), max_attempts: Some(2), ..over("cap-payments") },
        Some(T0),
    )
    .unwrap();
    e.add_override(
        Override { tenant: Some("acme".into()), max_attempts: Some(3), ..over("acme-more") },
        Some(T0),
    )
    .unwrap();

    // Attempt 2 of a payments job: the queue's cap of 2 attempts stops it.
    let f = Features::new("capture", 2).with_http_status(503).with_queue("payments");
    let d = e.decide(&f, Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(d.max_attempts, 2);
    assert_eq!(guards(&d), ["override"]);
    assert!(
        d.rationale.contains(r#"override "cap-payments" (queue=payments): max attempts 2"#),
        "{}",
        d.rationale
    );

    // The same job for tenant acme: the tenant's override is more specific and wins.
    let d = e.decide(&f.clone().with_tenant("acme"), Some(T0)).unwrap();
    assert!(d.should_retry, "{}", d.rationale);
    assert_eq!(d.max_attempts, 3);
    assert!(d.rationale.contains(r#"override "acme-more" (tenant=acme)"#), "{}", d.rationale);

    // Other queues are untouched.
    let d = e.decide(&Features::new("capture", 2).with_http_status(503), Some(T0)).unwrap();
    assert!(d.should_retry && d.policy_guardrails.is_empty(), "{d:?}");
    assert!(metric(&e, "override") >= 2);
}

#[test]
fn a_manual_delay_for_one_job_and_retries_disabled_for_a_job_type() {
    let e = engine();
    e.add_override(
        Override { job_id: Some("job-7".into()), delay_ms: Some(45_000), ..over("ctrl-o-job-7") },
        Some(T0),
    )
    .unwrap();
    let f = Features::new("export", 1).with_http_status(503).with_job_id("job-7");
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!((d.should_retry, d.delay_ms, d.method), (true, 45_000, Method::Guardrail));
    assert!(
        d.rationale.starts_with("Retry 2 of 6 in 45s: the delay an operator set for job_id=job-7"),
        "{}",
        d.rationale
    );
    assert_eq!(guards(&d), ["override"]);
    // The global guardrails still bound an operator's delay.
    e.update_guardrails(Guardrails { max_delay_ms: 30_000, ..Guardrails::default() }).unwrap();
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!(d.delay_ms, 30_000);
    assert_eq!(guards(&d), ["override", "max_delay"]);

    e.add_override(
        Override { job_type: Some("export".into()), retries_disabled: Some(true), ..over("pause-exports") },
        Some(T0),
    )
    .unwrap();
    let d = e.decide(&Features::new("export", 1).with_http_status(503), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert!(
        d.rationale.starts_with("Not retrying: retries are disabled for job_type=export"),
        "{}",
        d.rationale
    );
    // The job-level override says nothing about retries_disabled, so the job type's applies.
    assert!(!e.decide(&f, Some(T0)).unwrap().should_retry);
}

#[test]
fn an_override_may_name_a_policy_bound_delays_and_set_a_deadline() {
    let e = engine();
    e.add_override(
        Override {
            job_type: Some("report".into()),
            policy: Some("rate_limit".into()),
            min_delay_ms: Some(9_000),
            deadline_ms: Some(60_000),
            ..over("reports")
        },
        Some(T0),
    )
    .unwrap();
    let f = Features::new("report", 1).with_http_status(500);
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!((d.policy.as_str(), d.max_attempts), ("rate_limit", 6));
    assert!(d.delay_ms >= 9_000);
    assert!(guards(&d).contains(&"override"));
    let late = f.clone().with_since_first_failure_ms(55_000);
    let d = e.decide(&late, Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(guards(&d), ["override", "deadline"], "the min delay, then the deadline it ran into");

    let err = e.add_override(Override { policy: Some("nope".into()), ..over("x") }, Some(T0)).unwrap_err();
    assert_eq!(err.field(), Some("policy"));
}

#[test]
fn overrides_are_listed_removed_and_expire() {
    let e = engine();
    e.add_override(Override { queue: Some("q".into()), max_attempts: Some(2), ..over("q") }, Some(T0))
        .unwrap();
    e.add_override(
        Override {
            job_id: Some("j".into()),
            delay_ms: Some(1),
            expires_at_ms: Some(T0 + 60_000),
            ..over("j")
        },
        Some(T0),
    )
    .unwrap();
    let names: Vec<_> = e.overrides(Some(T0)).into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["j", "q"], "most specific first");
    assert_eq!(e.metrics().overrides_active, 2);
    assert_eq!(e.overrides(Some(T0 + 60_000)).len(), 1, "the expired one is gone");
    assert_eq!(e.remove_override("q").unwrap().max_attempts, Some(2));
    assert!(matches!(e.remove_override("q"), Err(smartretry::Error::NotFound { .. })));
    assert!(e.overrides(Some(T0)).is_empty());
}

#[test]
fn the_emergency_stop_beats_every_override() {
    let e = engine();
    e.add_override(
        Override { delay_ms: Some(1_000), retries_disabled: Some(false), ..over("all") },
        Some(T0),
    )
    .unwrap();
    e.emergency_stop(true);
    let d = e.decide(&Features::new("a", 1).with_http_status(503), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(guards(&d), ["emergency_stop"]);
}

// ---- context-aware configuration --------------------------------------------------

/// The seed document's DEFAULT_RETRY_CONFIGS (004), verbatim but for TypeScript → JSON;
/// the Python and Node tests load the same file.
const DEFAULT_RETRY_CONFIGS: &str = include_str!("../../tests/fixtures/default_retry_configs.json");

fn with_contexts(contexts: &str, guardrails: &str) -> Engine {
    let json = format!(r#"{{"contexts": {contexts}, "strategy": {{"guardrails": {guardrails}}}}}"#);
    Engine::builder().config(Config::from_json(&json).unwrap()).seed(7).build().unwrap()
}

#[test]
fn the_documents_default_retry_configs_shape_decisions() {
    let e = with_contexts(DEFAULT_RETRY_CONFIGS, "{}");
    // connection_pool.acquire_connection: 5 attempts, 500 ms base, equal jitter ([d/2, d]).
    let f = Features::new("connection_pool.acquire_connection", 1).with_error_class("pool_exhausted");
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!(d.max_attempts, 5);
    assert!((250..=500).contains(&d.delay_ms), "{}", d.delay_ms);
    assert!(d.rationale.contains("settings of the connection_pool context"), "{}", d.rationale);
    // session_manager: full jitter in [0, 1 s]; breaker opens after 5 straight failures for 60 s.
    for i in 0..5u64 {
        e.record(&Attempt::new(format!("s{i}"), "session_manager.create_session", 1, true), Some(T0))
            .unwrap();
    }
    for _ in 0..5 {
        let d = e
            .decide(&Features::new("session_manager.create_session", 1).with_http_status(503), Some(T0))
            .unwrap();
        assert!(d.delay_ms <= 1_000 || guards(&d).contains(&"circuit_breaker"), "{d:?}");
    }
    let b = e.breakers(Some(T0));
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].state, b[0].open_until_ms), (BreakerState::Open, Some(T0 + 60_000)));
    // A job type outside every context keeps the defaults.
    let d = e.decide(&Features::new("billing", 1).with_http_status(503), Some(T0)).unwrap();
    assert_eq!(d.max_attempts, 6);
    assert!(!d.rationale.contains("context"), "{}", d.rationale);
}

#[test]
fn a_context_caps_its_retries_per_minute() {
    let e = with_contexts(r#"{"pool": {"retry_budget_per_minute": 3}}"#, "{}");
    let f = |i: u32| Features::new("pool.acquire", 1).with_http_status(503).with_job_id(format!("j{i}"));
    let granted = (0..5).filter(|&i| e.decide(&f(i), Some(T0)).unwrap().should_retry).count();
    assert_eq!(granted, 3);
    let d = e.decide(&f(9), Some(T0)).unwrap();
    assert_eq!(guards(&d), ["retry_budget"]);
    assert!(d.rationale.contains("the pool context used 3 of its 3 retries per minute"), "{}", d.rationale);
    assert!(e.decide(&f(9), Some(T0 + 61_000)).unwrap().should_retry, "a minute later the budget is back");
}

#[test]
fn adaptive_off_in_a_context_keeps_the_rules() {
    let e = with_contexts(r#"{"static": {"adaptive": false}}"#, "{}");
    let d = e.decide(&Features::new("static.job", 1).with_http_status(503), Some(T0)).unwrap();
    assert!(d.rationale.contains("adaptive tiers disabled"), "{}", d.rationale);
}

#[test]
fn bad_contexts_are_refused_with_the_field() {
    let err = Config::from_json(r#"{"contexts": {"pool": {"maxConcurrentRetries": 0}}}"#).unwrap_err();
    assert_eq!(err.field(), Some("contexts.pool.max_concurrent_retries"));
    let err = Config::from_json(r#"{"contexts": {"pool": {"retries": 3}}}"#).unwrap_err();
    assert_eq!(err.field(), Some("contexts.pool.retries"));
}

// ---- priority ------------------------------------------------------------------------

const TIGHT_BUDGET: &str =
    r#"{"min_retries_per_sec": 0, "max_budget_percent": 20, "per_tenant_limits": false}"#;

#[test]
fn reserved_headroom_keeps_retries_for_critical_work() {
    let e = with_contexts("{}", TIGHT_BUDGET);
    for i in 0..50 {
        e.record_successes("sync", None, 1, Some(T0 + i)).unwrap();
    }
    let retry = |p: Option<Priority>, i: u32| {
        let mut f = Features::new("sync", 2).with_http_status(503).with_job_id(format!("{p:?}{i}"));
        f.priority = p;
        e.decide(&f, Some(T0 + 100)).unwrap().should_retry
    };
    let low = (0..10).filter(|&i| retry(Some(Priority::Low), i)).count();
    assert_eq!(low, 5, "low may use half of the 10-retry budget");
    let normal = (0..10).filter(|&i| retry(Some(Priority::Normal), i)).count();
    assert_eq!(normal, 3, "normal may use 80 %: 8, of which low took 5");
    let critical = (0..10).filter(|&i| retry(Some(Priority::Critical), i)).count();
    assert_eq!(critical, 2, "the last 20 % is there for critical work");
}

#[test]
fn critical_work_may_bypass_global_backpressure_but_never_the_emergency_stop() {
    let e = with_contexts(DEFAULT_RETRY_CONFIGS, TIGHT_BUDGET);
    let f = |p: Priority| {
        Features::new("campaign_orchestrator.execute_action", 2).with_http_status(503).with_priority(p)
    };
    // No first attempts: the budget is 0.
    let d = e.decide(&f(Priority::High), Some(T0)).unwrap();
    assert_eq!((d.should_retry, guards(&d)), (false, vec!["retry_budget"]));
    let d = e.decide(&f(Priority::Critical), Some(T0)).unwrap();
    assert!(d.should_retry, "{}", d.rationale);
    assert!(
        d.rationale.contains("critical priority went past the global retry budget (the campaign_orchestrator context does not respect global backpressure)"),
        "{}",
        d.rationale
    );
    e.emergency_stop(true);
    let d = e.decide(&f(Priority::Critical), Some(T0)).unwrap();
    assert_eq!((d.should_retry, guards(&d)), (false, vec!["emergency_stop"]));
}

// ---- health-aware backoff -----------------------------------------------------------

#[test]
fn unhealthy_signals_stretch_and_healthy_ones_shorten_rules_delays() {
    let e = engine();
    let base = Features::new("api", 1).with_http_status(503).with_job_id("h");
    let plain = e.preview(&base, 2, Some(T0)).unwrap().recommendations[0].delay_ms;
    let sick = base.clone().with_health("error_rate", 0.9).with_health("latency_ms", 4_000.0);
    let d = e.preview(&sick, 2, Some(T0)).unwrap().recommendations.remove(0);
    assert!(d.delay_ms > plain, "{} vs {plain}", d.delay_ms);
    assert!(
        d.rationale.contains("downstream health 18/100 (latency 4s, error rate 90%) stretches it to"),
        "{}",
        d.rationale
    );
    let fine = base.clone().with_health("cpu", 0.1).with_health("latency_ms", 200.0);
    let d = e.preview(&fine, 2, Some(T0)).unwrap().recommendations.remove(0);
    assert!(d.delay_ms < plain, "{} vs {plain}", d.delay_ms);
    assert!(d.rationale.contains("shortens it to"), "{}", d.rationale);
}

#[test]
fn the_engines_own_view_stretches_delays_and_health_reports_it() {
    let e = engine();
    e.record_successes("flaky", None, 2, Some(T0)).unwrap();
    for i in 0..18 {
        e.decide(&Features::new("flaky", 1).with_http_status(500).with_job_id(format!("f{i}")), Some(T0))
            .unwrap();
    }
    let h = e.health("flaky", Some(T0)).unwrap();
    assert_eq!((h.requests, h.success_rate), (20, Some(0.1)));
    assert!(h.score.unwrap() < 50.0 && h.delay_factor > 1.0, "{h:?}");
    let d = e.decide(&Features::new("flaky", 1).with_http_status(500).with_job_id("x"), Some(T0)).unwrap();
    assert!(d.rationale.contains("downstream health"), "{}", d.rationale);
    assert!(d.rationale.contains("success rate") && d.rationale.contains("breaker open"), "{}", d.rationale);
    let quiet = e.health("quiet", Some(T0)).unwrap();
    assert_eq!((quiet.score, quiet.delay_factor), (None, 1.0));
    assert_eq!(e.health("", Some(T0)).unwrap_err().field(), Some("job_type"));
}

// ---- lifecycle events ----------------------------------------------------------------

#[test]
fn subscribers_see_the_lifecycle_of_a_job() {
    let e = engine();
    let sub = e.subscribe(&[], 64).unwrap();
    let f = Features::new("mail", 1).with_http_status(503).with_job_id("m1");
    let d = e.decide(&f, Some(T0)).unwrap();
    e.record(&Attempt::new("m1", "mail", 2, false).with_delay_ms(d.delay_ms), Some(T0 + d.delay_ms)).unwrap();
    e.decide(&Features::new("mail", 6).with_http_status(503).with_job_id("m1"), Some(T0)).unwrap();
    e.record(&Attempt::new("m2", "mail", 2, true), Some(T0)).unwrap();
    let kinds: Vec<_> = sub.drain().iter().map(|ev| ev.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::RetryScheduled, EventKind::RetryFailed, EventKind::GaveUp, EventKind::RetrySucceeded]
    );
    let counts = e.metrics().events_total;
    assert!(counts.contains(&("gave_up".to_string(), 1)), "{counts:?}");
}

#[test]
fn guardrail_and_breaker_events_carry_what_happened() {
    let e = Engine::builder()
        .config(
            Config::from_json(r#"{"strategy": {"circuit_breaker": {"consecutive_failures": 2}}}"#).unwrap(),
        )
        .seed(1)
        .build()
        .unwrap();
    let sub = e.subscribe(&[EventKind::GuardrailTriggered, EventKind::BreakerStateChanged], 64).unwrap();
    e.record_successes("pay", None, 1, Some(T0)).unwrap();
    for _ in 0..2 {
        e.decide(&Features::new("pay", 1).with_http_status(503), Some(T0)).unwrap();
    }
    let events = sub.drain();
    let breaker = events.iter().find(|ev| ev.kind == EventKind::BreakerStateChanged).expect("breaker event");
    assert_eq!(
        (breaker.breaker_from, breaker.breaker_to),
        (Some(BreakerState::Closed), Some(BreakerState::Open))
    );
    let guard = events.iter().find(|ev| ev.kind == EventKind::GuardrailTriggered).expect("guardrail event");
    assert_eq!(guard.guardrails, ["circuit_breaker"]);
    let json = serde_json::to_value(&**guard).unwrap();
    assert_eq!(json["type"], "guardrail_triggered");
}

#[test]
fn a_stalled_subscriber_never_stalls_decisions() {
    let e = engine();
    let stalled = e.subscribe(&[], 4).unwrap();
    for i in 0..1_000 {
        e.decide(&Features::new("bulk", 1).with_http_status(503).with_job_id(format!("b{i}")), Some(T0))
            .unwrap();
    }
    assert_eq!(stalled.drain().len(), 4);
    assert!(stalled.dropped() >= 996);
    assert_eq!(e.metrics().events_dropped_total, stalled.dropped());
    // Dropping the subscription ends it; a waiting receiver would have been woken.
    assert!(matches!(stalled.recv(Some(Duration::from_millis(1))), Ok(None)));
    drop(stalled);
    e.decide(&Features::new("bulk", 1).with_http_status(503), Some(T0)).unwrap();
}

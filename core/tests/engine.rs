//! Engine behaviour a user depends on: each tier, each guardrail naming itself, learning,
//! previews, stats, policies, thread safety and reproducibility.

use std::sync::{Arc, Mutex};

use smartretry::{Attempt, Config, Engine, Error, Features, Guardrails, Method, Policy};

const T0: u64 = 1_700_000_000_000;

fn engine() -> Engine {
    Engine::builder().seed(42).build().unwrap()
}

fn failure(status: u16, attempt: u32) -> Features {
    Features::new("payment_capture", attempt).with_http_status(status)
}

fn guards(d: &smartretry::Decision) -> Vec<&str> {
    d.policy_guardrails.iter().map(|g| g.as_ref()).collect()
}

/// Teach the engine that `job` recovers 6–12 s after its first failure.
fn teach_recovery(e: &Engine, job: &str, class: &str, outcomes: u32) {
    for i in 0..outcomes {
        let t = T0 + u64::from(i) * 1_000;
        let fail = Attempt::new(format!("f{i}"), job, 2, false)
            .with_error_class(class)
            .with_delay_ms(2_000)
            .with_since_first_failure_ms(2_000);
        e.record(&fail, Some(t)).unwrap();
        let ok_at = 6_000 + u64::from(i % 7) * 1_000;
        let ok = Attempt::new(format!("s{i}"), job, 3, true)
            .with_error_class(class)
            .with_delay_ms(ok_at - 2_000)
            .with_since_first_failure_ms(ok_at);
        e.record(&ok, Some(t)).unwrap();
    }
}

#[test]
fn default_policies_follow_the_decision_matrix() {
    let e = engine();
    let d = e.decide(&failure(503, 1), Some(T0)).unwrap();
    assert!(d.should_retry);
    assert_eq!((d.method, d.policy.as_str(), d.max_attempts), (Method::Rules, "service_unavailable", 6));
    assert!((1_600..=2_400).contains(&d.delay_ms), "2 s ± 20 %: {}", d.delay_ms);
    assert!(d.rationale.contains("service_unavailable policy"), "{}", d.rationale);
    assert_eq!(d.next_evaluation, smartretry::time::format_rfc3339(T0 + d.delay_ms));

    // 429: aggressive 3^n from 5 s, ±25 %.
    let d = e.decide(&failure(429, 2), Some(T0)).unwrap();
    assert_eq!(d.policy, "rate_limit");
    assert!((11_250..=18_750).contains(&d.delay_ms), "15 s ± 25 %: {}", d.delay_ms);

    // Timeouts: linear from 2 s.
    let d = e.decide(&Features::new("sync", 2).with_error_class("TimeoutError"), Some(T0)).unwrap();
    assert!((3_200..=4_800).contains(&d.delay_ms), "4 s ± 20 %: {}", d.delay_ms);

    // 500: fallback, exponential from 1 s.
    let d = e.decide(&failure(500, 1), Some(T0)).unwrap();
    assert_eq!(d.policy, "fallback");
    assert!((850..=1_150).contains(&d.delay_ms), "{}", d.delay_ms);

    // The policy's attempt limit.
    let d = e.decide(&failure(503, 6), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(d.method, Method::Rules);
    assert!(d.rationale.contains("no attempts left"), "{}", d.rationale);
}

#[test]
fn permanent_failures_are_never_retried() {
    let e = engine();
    for status in [400, 401, 403, 404, 422] {
        let d = e.decide(&failure(status, 1), Some(T0)).unwrap();
        assert!(!d.should_retry, "{status}");
        assert_eq!(d.delay_ms, 0);
        assert!(!d.rationale.is_empty());
    }
    // A user policy that would retry 404s is overruled by the never-retry guardrail.
    e.add_policy(Policy {
        error_patterns: vec!["404".into()],
        priority: 500,
        ..Policy::new("retry_404", 5, 100, 1_000)
    })
    .unwrap();
    let d = e.decide(&failure(404, 1), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!((d.method, guards(&d)), (Method::Guardrail, vec!["never_retry"]));
}

#[test]
fn non_idempotent_calls_are_not_retried_after_effectful_failures() {
    let e = engine();
    let d = e.decide(&failure(504, 1).with_idempotent(false), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(guards(&d), vec!["non_idempotent"]);
    // A 429 was rejected before processing: safe to retry even a payment.
    let d = e.decide(&failure(429, 1).with_idempotent(false), Some(T0)).unwrap();
    assert!(d.should_retry);
    // A refused connection never reached the server.
    let f = Features::new("orders", 1).with_error_class("ECONNREFUSED").with_idempotent(false);
    assert!(e.decide(&f, Some(T0)).unwrap().should_retry);
}

#[test]
fn emergency_stop_wins_over_everything() {
    let e = engine();
    e.emergency_stop(true);
    let d = e.decide(&failure(503, 1), Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!((d.method, guards(&d)), (Method::Guardrail, vec!["emergency_stop"]));
    assert!(e.guardrails().emergency_stop);
    e.emergency_stop(false);
    assert!(e.decide(&failure(503, 1), Some(T0)).unwrap().should_retry);
}

#[test]
fn retry_after_sets_the_delay_in_both_forms() {
    let e = engine();
    let mut f = failure(429, 1);
    f.retry_after = Some("30".into());
    let d = e.decide(&f, Some(T0)).unwrap();
    // The server said when; up to 5 % later so its callers do not return together.
    assert!((30_000..=31_500).contains(&d.delay_ms), "{}", d.delay_ms);
    assert!(d.rationale.contains("Retry-After"), "{}", d.rationale);

    f.retry_after =
        Some(httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(T0 + 45_000)));
    assert!((45_000..=47_250).contains(&e.decide(&f, Some(T0)).unwrap().delay_ms));

    // A second job told of the same reset confirms it: one header alone is not shared.
    let mut g = failure(429, 1);
    g.retry_after_ms = Some(40_000);
    e.decide(&g, Some(T0 + 5_000)).unwrap();
    // Another job of the same key, told nothing, waits for the same reset.
    let d = e.decide(&failure(429, 1), Some(T0 + 10_000)).unwrap();
    assert!((35_000..=36_750).contains(&d.delay_ms), "{}", d.delay_ms);
    assert!(d.rationale.contains("other jobs' Retry-After"), "{}", d.rationale);

    // Asked to wait longer than we ever would: capped at the max delay, and said so.
    f.retry_after = None;
    f.retry_after_ms = Some(3_600_000);
    let d = e.decide(&f, Some(T0)).unwrap();
    assert!(d.should_retry && d.delay_ms == 300_000, "{d:?}");
    assert!(guards(&d).contains(&"retry_after"), "{d:?}");
    assert!(d.rationale.contains("capped at the max delay (5m)"), "{}", d.rationale);
}

#[test]
fn delay_bounds_and_deadline_name_themselves() {
    let e = Engine::builder()
        .seed(1)
        .guardrails(Guardrails { max_delay_ms: 3_000, min_delay_ms: 1_500, ..Default::default() })
        .build()
        .unwrap();
    let d = e.decide(&failure(429, 3), Some(T0)).unwrap();
    assert_eq!((d.delay_ms, guards(&d)), (3_000, vec!["max_delay"]));
    let d = e.decide(&failure(500, 1), Some(T0)).unwrap();
    assert_eq!((d.delay_ms, guards(&d)), (1_500, vec!["min_delay"]));

    let mut f = failure(503, 2).with_since_first_failure_ms(9_000);
    f.deadline_ms = Some(10_000);
    let d = e.decide(&f, Some(T0)).unwrap();
    assert!(!d.should_retry);
    assert_eq!(guards(&d).last(), Some(&"deadline"), "after any clip that acted first");
}

#[test]
fn retry_budget_and_tenant_fairness() {
    let g = Guardrails { min_retries_per_sec: 0.0, max_budget_percent: 50.0, ..Default::default() };
    let e = Engine::builder().seed(3).guardrails(g).build().unwrap();
    // 10 first-attempt failures from a noisy tenant, 2 from a quiet one: 6 retries allowed.
    let decide = |tenant: &str| e.decide(&failure(500, 1).with_tenant(tenant), Some(T0)).unwrap();
    let noisy: Vec<_> = (0..10).map(|_| decide("noisy")).collect();
    let granted = noisy.iter().filter(|d| d.should_retry).count();
    assert!(granted <= 3, "the noisy tenant gets at most half the budget: {granted}");
    assert!(noisy.iter().any(|d| guards(d) == vec!["tenant_fairness"]));
    assert!(noisy.iter().any(|d| guards(d) == vec!["retry_budget"]));
    assert!(decide("quiet").should_retry);
    assert!(decide("quiet").should_retry);
    let spent = e.decide(&failure(500, 1), Some(T0)).unwrap();
    assert!(spent.should_retry || guards(&spent) == vec!["retry_budget"]);
}

#[test]
fn bayesian_tier_takes_over_once_confident() {
    let e = engine();
    let f = Features::new("payment_capture", 1)
        .with_error_class("service_unavailable")
        .with_since_first_failure_ms(0);
    teach_recovery(&e, "payment_capture", "service_unavailable", 2);
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!(d.method, Method::Rules);
    assert!(d.rationale.contains("Bayesian tier has 4 of 10 samples"), "{}", d.rationale);

    teach_recovery(&e, "payment_capture", "service_unavailable", 40);
    let d = e.decide(&f, Some(T0 + 100_000)).unwrap();
    assert_eq!(d.method, Method::Bayesian, "{}", d.rationale);
    // Every retry from 6 s on succeeded, every one at 2 s failed: aim at the first bin of
    // successes (5.6–7.1 s, where they landed at 6.5 s on average) plus ≤ 10 % spread.
    assert!((6_000..=7_200).contains(&d.delay_ms), "lands where successes land: {}", d.delay_ms);
    assert!(d.confidence >= 0.7 && d.estimated_success > 0.8, "{d:?}");
    assert!(d.rationale.starts_with("Learned recovery curve"), "{}", d.rationale);

    let stats = e.stats("payment_capture", "service_unavailable", None, Some(T0 + 100_000)).unwrap();
    assert_eq!((stats.total_attempts, stats.successful_retries), (84, 42));
    assert_eq!(stats.buckets[2].label, "5-15s");
    assert!(stats.buckets[2].success_probability > 0.9);
    assert!(matches!(e.refit("payment_capture", "nope"), Err(Error::NotFound { .. })));
    e.refit("payment_capture", "service_unavailable").unwrap();
}

#[test]
fn disabled_engine_uses_rules_only() {
    let config = Config { enabled: false, ..Default::default() };
    let e = Engine::builder().config(config).seed(1).build().unwrap();
    teach_recovery(&e, "payment_capture", "service_unavailable", 60);
    let f = Features::new("payment_capture", 1).with_error_class("service_unavailable");
    let d = e.decide(&f, Some(T0)).unwrap();
    assert_eq!(d.method, Method::Rules);
    assert!(d.rationale.contains("adaptive tiers disabled"));
}

#[test]
fn circuit_breaker_opens_and_delays_retries() {
    let g = Guardrails { adaptive_throttle: false, ..Default::default() };
    let e = Engine::builder().seed(42).guardrails(g).build().unwrap();
    let job = "inventory";
    e.record(&Attempt::new("ok", job, 1, true), Some(T0)).unwrap();
    for i in 0..30 {
        e.decide(&Features::new(job, 1).with_http_status(502), Some(T0 + i)).unwrap();
    }
    let open = e.breakers(Some(T0 + 40));
    assert_eq!(open[0].state, smartretry::BreakerState::Open);
    let d = e.decide(&Features::new(job, 1).with_http_status(502), Some(T0 + 40)).unwrap();
    assert!(d.should_retry);
    assert_eq!(d.method, Method::Breaker);
    assert!(guards(&d).contains(&"circuit_breaker"));
    assert!(d.delay_ms >= 29_000, "waits out the cool-down: {}", d.delay_ms);
}

#[test]
fn adaptive_throttling_defers_retries_to_an_overloaded_downstream() {
    let e = engine();
    // One call in four accepted: overloaded, not down (under a fifth is an outage, where
    // probe-and-release takes over).
    let mut decisions = Vec::new();
    for i in 0..200 {
        if i % 4 == 0 {
            e.record(&Attempt::new(format!("ok{i}"), "search", 1, true), Some(T0 + i)).unwrap();
        } else {
            decisions
                .push(e.decide(&Features::new("search", 1).with_http_status(500), Some(T0 + i)).unwrap());
        }
    }
    let throttled = decisions.iter().filter(|d| guards(d).contains(&"adaptive_throttle")).count();
    // 200 requests and 50 accepts: p = (200 − 2·50) / 201 ≈ 0.5 by the end. A throttled
    // retry is deferred to when, at that rate, it would be let through (its planned ~1 s
    // over 1 − p), not dropped and not parked for a flat minute: the job survives.
    assert!(throttled > 40, "{throttled}");
    assert!(decisions.iter().all(|d| d.check_in_ms.is_none()), "not down: nobody is held");
    for d in decisions.iter().filter(|d| guards(d).contains(&"adaptive_throttle")) {
        assert!(d.should_retry && d.delay_ms > 1_000, "{d:?}");
        if !guards(d).contains(&"circuit_breaker") {
            assert!(d.delay_ms < 10_000, "{d:?}");
        }
        assert!(d.rationale.contains("adaptive throttling"), "{}", d.rationale);
    }
}

/// Jobs of one downstream failing one after another, none accepted: an outage.
fn outage(e: &Engine, job: &str, from: u64, failures: u64) -> Vec<(u64, smartretry::Decision)> {
    (0..failures)
        .map(|i| {
            let at = from + i * 200;
            let f = Features::new(job, 1).with_job_id(format!("{job}-{i}")).with_http_status(503);
            (at, e.decide(&f, Some(at)).unwrap())
        })
        .collect()
}

#[test]
fn while_a_downstream_is_down_jobs_take_turns_to_probe_and_the_rest_check_in() {
    let e = engine();
    e.record(&Attempt::new("ok", "webhook", 1, true), Some(T0)).unwrap();
    let decisions = outage(&e, "webhook", T0 + 1_000, 60);
    assert!(decisions[..8].iter().all(|(_, d)| d.check_in_ms.is_none()), "8 failures are not an outage yet");
    let held: Vec<_> = decisions.iter().filter(|(_, d)| d.check_in_ms.is_some()).collect();
    assert!(held.len() >= 40, "{}", held.len());
    let mut probes: Vec<u64> = held.iter().map(|(at, d)| at + d.delay_ms).collect();
    probes.sort_unstable();
    for pair in probes.windows(2) {
        assert!(pair[1] - pair[0] >= 1_000, "one probe at a time: {probes:?}");
    }
    let spread = held.iter().filter(|(_, d)| guards(d).contains(&"probe_and_release")).count();
    assert!(spread >= 10, "{spread} retries moved off another job's probe");
    for (_, d) in &held {
        assert!(d.should_retry && d.delay_ms <= 300_000, "{d:?}");
        assert!(d.rationale.contains("retry as soon as calls to webhook get through"), "{}", d.rationale);
        let every = d.check_in_ms.unwrap();
        assert!((1_000..=10_000).contains(&every) && every * 2 <= d.delay_ms, "{d:?}");
    }
}

#[test]
fn a_call_that_gets_through_after_a_job_failed_releases_it() {
    let e = engine();
    e.record(&Attempt::new("ok", "webhook", 1, true), Some(T0)).unwrap();
    let decisions = outage(&e, "webhook", T0 + 1_000, 40);
    let (failed_at, last) = decisions.last().unwrap();
    assert!(last.check_in_ms.is_some());
    assert!(!e.released("webhook", *failed_at, Some(failed_at + 5_000)).unwrap(), "still down");
    // Past the breaker's 30 s cool-down: an open breaker holds them regardless.
    assert!(!e.released("webhook", *failed_at, Some(failed_at + 20_000)).unwrap());
    let back = failed_at + 31_000;
    e.record_successes("webhook", None, 1, Some(back)).unwrap();
    assert!(e.released("webhook", *failed_at, Some(back + 1)).unwrap(), "back since the job failed");
    assert!(
        !e.released("webhook", back + 1, Some(back + 2)).unwrap(),
        "not news to a job that failed after it"
    );
    assert!(!e.released("search", *failed_at, Some(back + 1)).unwrap(), "another downstream");
    // A failure after the good call holds the waiting jobs again.
    e.decide(&Features::new("webhook", 1).with_http_status(503), Some(back + 10)).unwrap();
    assert!(!e.released("webhook", *failed_at, Some(back + 20)).unwrap());
    assert_eq!(e.metrics().released_total, 1);

    assert_eq!(e.released("", 0, Some(T0)).unwrap_err().field(), Some("job_type"));
    assert_eq!(e.released("webhook", T0 + 10, Some(T0)).unwrap_err().field(), Some("failed_at_ms"));
}

#[test]
fn a_downstream_that_fails_a_third_of_calls_is_not_down() {
    let e = engine();
    for i in 0..300u64 {
        let at = T0 + i * 100;
        if i % 3 == 0 {
            let d = e.decide(&Features::new("payment", 1).with_http_status(503), Some(at)).unwrap();
            assert!(d.check_in_ms.is_none(), "{d:?}");
        } else {
            e.record_successes("payment", None, 1, Some(at)).unwrap();
        }
    }
}

#[test]
fn preview_lays_out_the_schedule_and_changes_nothing() {
    let e = engine();
    let f = Features::new("email_send", 1).with_error_class("service_unavailable");
    let before = e.metrics();
    let p = e.preview(&f, 10, Some(T0)).unwrap();
    assert_eq!(e.metrics(), before, "a preview is not a decision");
    assert_eq!(p.job_id, "email_send_preview");
    assert_eq!(p.timeline.len(), 5, "service_unavailable allows 6 attempts");
    let mut t = T0;
    for (i, step) in p.timeline.iter().enumerate() {
        assert_eq!(step.attempt_number, i as u32 + 2);
        t += step.delay_ms;
        assert_eq!(step.scheduled_time, smartretry::time::format_rfc3339(t));
        assert!(step.delay_ms <= 60_000);
    }
    assert!(!p.recommendations.last().unwrap().should_retry);
    assert_eq!(e.preview(&f, 10, Some(T0)).unwrap(), p, "previews are reproducible");
    assert_eq!(e.preview(&f, 0, None).unwrap_err().field(), Some("max_attempts"));
}

#[test]
fn policies_can_be_added_listed_and_removed() {
    let e = engine();
    let custom = Policy {
        error_patterns: vec!["timeout".into(), "connection_timeout".into()],
        job_type_patterns: vec!["critical_.*".into()],
        priority: 95,
        ..Policy::new("custom_timeout", 4, 500, 5_000)
    };
    e.add_policy(custom).unwrap();
    assert_eq!(e.policies().len(), 5);
    let d = e.decide(&Features::new("critical_payment", 1).with_error_class("timeout"), Some(T0)).unwrap();
    assert_eq!((d.policy.as_str(), d.max_attempts), ("custom_timeout", 4));
    let err = e.add_policy(Policy::new("bad name!", 3, 1, 2)).unwrap_err();
    assert_eq!(err.field(), Some("name"));
    e.remove_policy("custom_timeout").unwrap();
    assert_eq!(e.policies().len(), 4);
    assert!(e.remove_policy("custom_timeout").is_err());
}

#[test]
fn bad_input_is_rejected_with_the_field_and_changes_nothing() {
    let e = engine();
    let err = e.decide(&Features::new("x", 0), Some(T0)).unwrap_err();
    assert_eq!((err.kind(), err.field()), ("invalid_input", Some("attempt_number")));
    let err = e.record(&Attempt::new("", "x", 1, true), Some(T0)).unwrap_err();
    assert_eq!(err.field(), Some("job_id"));
    assert_eq!(e.metrics().decisions_total, 0);
    let err = e.update_guardrails(Guardrails { max_attempts: 0, ..Default::default() }).unwrap_err();
    assert_eq!(err.field(), Some("max_attempts"));
    assert_eq!(e.guardrails().max_attempts, 10, "the old guardrails stay");
    let err = e.patch_guardrails(&serde_json::json!({"max_delay_ms": -5})).unwrap_err();
    assert_eq!(err.field(), Some("max_delay_ms"));
}

#[test]
fn same_seed_same_decisions() {
    let run = |seed: u64| {
        let e = Engine::builder().seed(seed).build().unwrap();
        (1..5).map(|n| e.decide(&failure(429, n), Some(T0)).unwrap().delay_ms).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn learned_keys_are_capped() {
    let e = Engine::builder().seed(1).max_keys(64).build().unwrap();
    for i in 0..5_000 {
        e.record(&Attempt::new("j", format!("job{i}"), 2, true).with_error_class("timeout"), Some(T0))
            .unwrap();
    }
    let m = e.metrics();
    assert!(m.learned_keys <= 64 + 16, "{}", m.learned_keys);
    assert!(m.key_evictions_total >= 4_900, "{}", m.key_evictions_total);
}

#[test]
fn one_engine_serves_many_threads() {
    let e = Arc::new(engine());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for i in 0..2_000u64 {
                    let now = T0 + i;
                    e.decide(&failure(503, 1).with_tenant(format!("t{t}")), Some(now)).unwrap();
                    let a = Attempt::new(format!("{t}-{i}"), "payment_capture", 2, i % 3 == 0)
                        .with_error_class("service_unavailable")
                        .with_since_first_failure_ms(i % 20_000);
                    e.record(&a, Some(now)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let m = e.metrics();
    assert_eq!((m.decisions_total, m.records_total), (8_000, 8_000));
    assert_eq!(m.retries_total + m.refusals_total, 8_000);
}

#[test]
fn audit_hook_sees_sampled_decisions() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let e = Engine::builder()
        .seed(5)
        .on_decision(move |f, d, now| sink.lock().unwrap().push((f.job_type.clone(), d.method, now)))
        .build()
        .unwrap();
    e.decide(&failure(503, 1), Some(T0)).unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[("payment_capture".to_string(), Method::Rules, T0)]);
}

/// The cache of matched policies (the config's `cache`): repeated subjects are hits, and a
/// policy added by an operator is served at once (the cache goes with the old settings).
#[test]
fn matched_policies_are_cached_and_a_new_policy_is_served_at_once() {
    let e = engine();
    let f = failure(503, 1);
    for i in 0..10 {
        assert_eq!(e.decide(&f, Some(T0 + i)).unwrap().policy, "service_unavailable");
    }
    let m = e.metrics();
    assert_eq!((m.policy_cache_misses_total, m.policy_cache_hits_total), (1, 9));
    let mine = smartretry::Policy {
        error_patterns: vec!["503".into()],
        priority: 500,
        ..smartretry::Policy::new("mine", 4, 100, 1_000)
    };
    e.add_policy(mine).unwrap();
    assert_eq!(e.decide(&f, Some(T0 + 20)).unwrap().policy, "mine");
    let off = Engine::from_config(smartretry::Config {
        cache: smartretry::CacheConfig { enabled: false, ..Default::default() },
        seed: Some(1),
        ..Default::default()
    })
    .unwrap();
    off.decide(&f, Some(T0)).unwrap();
    assert_eq!(off.metrics().policy_cache_misses_total + off.metrics().policy_cache_hits_total, 0);
}

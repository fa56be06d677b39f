//! Decisions a user would defend (issue 18): no cold-start stall, the caller's
//! `max_attempts` wins both ways, a job ends by its deadline, failures that say nothing
//! about the job do not use up its attempts, and one hostile hint is clamped and
//! forgotten.

use smartretry::{Attempt, Engine, Features, Guardrails, Method, DEFAULT_DEADLINE_MS};

const T0: u64 = 1_700_000_000_000;

fn engine() -> Engine {
    Engine::builder().seed(7).build().unwrap()
}

fn guards(d: &smartretry::Decision) -> Vec<&'static str> {
    d.policy_guardrails.iter().map(|g| g.as_str()).collect()
}

fn failure(job_type: &str, attempt: u32, status: u16) -> Features {
    Features::new(job_type, attempt).with_http_status(status)
}

/// A process that has seen outcomes, then 40 new job types each failing once: every
/// first retry comes at its rules delay (503: 2 s ± 20 %), never a throttled minute.
#[test]
fn a_fresh_engine_and_forty_new_job_types_retry_at_their_rules_delay() {
    let e = engine();
    e.record(&Attempt::new("warm", "warmup", 2, true), Some(T0)).unwrap();
    e.record_successes("warmup", None, 5, Some(T0)).unwrap();
    for i in 0..40 {
        let d = e.decide(&failure(&format!("new_type_{i}"), 1, 503), Some(T0 + i)).unwrap();
        assert!(d.should_retry, "{d:?}");
        assert!(d.delay_ms <= 2_400, "job type {i}: {d:?}");
        assert!(guards(&d).is_empty(), "job type {i}: {d:?}");
    }
}

/// `max_attempts` from the caller is authoritative in both directions, up to the
/// guardrail an operator sets.
#[test]
fn the_callers_max_attempts_wins_both_ways() {
    let e = engine();
    let mut f = failure("export", 1, 503);
    f.max_attempts = Some(10);
    for attempt in 1..=5 {
        f.attempt_number = attempt;
        let d = e.decide(&f, Some(T0)).unwrap();
        assert!(d.should_retry && d.max_attempts == 10, "attempt {attempt}: {d:?}");
    }
    // A 503 that lasts five calls succeeds on call 6.
    f.attempt_number = 9;
    assert!(e.decide(&f, Some(T0)).unwrap().should_retry);
    f.attempt_number = 10;
    let d = e.decide(&f, Some(T0)).unwrap();
    assert!(!d.should_retry && d.rationale.contains("Attempt 10 of 10"), "{d:?}");
    // Fewer than the policy's.
    f.max_attempts = Some(2);
    f.attempt_number = 2;
    assert!(!e.decide(&f, Some(T0)).unwrap().should_retry);
    // The operator's guardrail caps it, and says so.
    let capped = Engine::builder().seed(7).guardrails(Guardrails { max_attempts: 4, ..Default::default() });
    let capped = capped.build().unwrap();
    f.max_attempts = Some(10);
    f.attempt_number = 4;
    let d = capped.decide(&f, Some(T0)).unwrap();
    assert!(!d.should_retry && guards(&d) == ["max_attempts"], "{d:?}");
    assert_eq!(d.method, Method::Guardrail);
}

/// A job ends by its deadline: 30 minutes from its first failure unless the call says
/// otherwise.
#[test]
fn a_job_ends_by_its_deadline() {
    let e = engine();
    assert_eq!(DEFAULT_DEADLINE_MS, 30 * 60_000);
    let late = failure("report", 2, 503).with_since_first_failure_ms(DEFAULT_DEADLINE_MS - 100);
    let d = e.decide(&late, Some(T0)).unwrap();
    assert!(!d.should_retry && guards(&d) == ["deadline"], "{d:?}");
    assert!(d.rationale.contains("30m deadline"), "{}", d.rationale);
    let mut longer = late.clone();
    longer.deadline_ms = Some(2 * DEFAULT_DEADLINE_MS);
    assert!(e.decide(&longer, Some(T0)).unwrap().should_retry, "the call's own deadline wins");
}

/// A hostile Retry-After is capped at the max delay, the rationale says it in human
/// terms, and the next decision on that key is not moved by it.
#[test]
fn a_hostile_retry_after_is_clamped_and_forgotten() {
    let e = engine();
    let mut f = failure("email", 1, 429).with_job_id("hostile");
    f.retry_after = Some("99999999999".into());
    let d = e.decide(&f, Some(T0)).unwrap();
    assert!(d.should_retry && d.delay_ms == 300_000, "{d:?}");
    assert!(
        d.rationale.contains("3171y") && d.rationale.contains("capped at the max delay (5m)"),
        "{}",
        d.rationale
    );
    assert!(!d.rationale.contains("29066254h"), "{}", d.rationale);
    let next = e.decide(&failure("email", 1, 429).with_job_id("next"), Some(T0 + 1_000)).unwrap();
    assert!(next.delay_ms <= 6_250, "the key is not poisoned: {next:?}");
}

/// Retries a rate limiter refused (flow control: the call is accepted once the window
/// resets) do not use up attempts; a caller that names its own number keeps it unless the
/// reset is known. The job still ends by its deadline.
#[test]
fn retries_a_rate_limit_refused_do_not_use_up_attempts() {
    let e = engine();
    let (mut at, mut since) = (T0, 0);
    for attempt in 1..=12u32 {
        let f = failure("search_api", attempt, 429).with_job_id("job-1").with_since_first_failure_ms(since);
        let d = e.decide(&f, Some(at)).unwrap();
        assert!(d.should_retry, "attempt {attempt}: {d:?}");
        if attempt >= 2 {
            assert!(
                d.rationale.contains("did not use up an attempt (a rate limit refused it"),
                "{}",
                d.rationale
            );
        }
        at += d.delay_ms;
        since += d.delay_ms;
    }
    // A 503 after them: the eleven refusals are remembered, the attempt it used is its own.
    let f = failure("search_api", 13, 503).with_job_id("job-1").with_since_first_failure_ms(since);
    let d = e.decide(&f, Some(at)).unwrap();
    assert!(d.should_retry && d.max_attempts == 17, "{d:?}");
    // The caller's own three: kept for 429s whose reset nobody knows…
    let mut mine = failure("quota_api", 3, 429).with_job_id("job-2");
    mine.max_attempts = Some(3);
    let d = e.decide(&mine, Some(at)).unwrap();
    assert!(!d.should_retry && d.rationale.contains("Attempt 3 of 3"), "{d:?}");
    // …not for a refusal the server scheduled (Retry-After).
    mine.retry_after = Some("2".into());
    let d = e.decide(&mine, Some(at)).unwrap();
    assert!(d.should_retry && d.rationale.contains("did not use up an attempt"), "{d:?}");
    // The deadline ends even a rate-limited job.
    let mut late = failure("search_api", 2, 429).with_job_id("job-3");
    late.since_first_failure_ms = Some(DEFAULT_DEADLINE_MS - 10);
    let d = e.decide(&late, Some(at)).unwrap();
    assert!(!d.should_retry && guards(&d) == ["deadline"], "{d:?}");
}

/// A real outage still trips protection: jobs of a downstream that accepted calls and
/// then failed every one are held by probe-and-release and checked in on; a host that
/// checks in may hold them past the max delay, up to their deadline, without using up
/// attempts.
#[test]
fn a_real_outage_is_held_by_probe_and_release_without_using_up_attempts() {
    let e = engine();
    e.record_successes("ledger", None, 20, Some(T0)).unwrap();
    let mut last = None;
    for i in 0..40u64 {
        let at = T0 + 20_000 + i * 500;
        let f = failure("ledger", 2, 503).with_job_id(format!("l{i}")).with_since_first_failure_ms(1_000);
        last = Some(e.decide(&f, Some(at)).unwrap());
    }
    let d = last.unwrap();
    assert!(d.check_in_ms.is_some(), "down: jobs check in ({d:?})");
    assert!(d.rationale.contains("did not use up an attempt"), "{}", d.rationale);
    // The host checks in: from now on its jobs may wait past the 5 m max delay.
    let now = T0 + 60_000;
    assert!(!e.released("ledger", T0 + 40_000, Some(now)).unwrap());
    let mut f = failure("ledger", 6, 503).with_job_id("l39").with_since_first_failure_ms(40_000);
    f.max_attempts = Some(6);
    let d = e.decide(&f, Some(now)).unwrap();
    assert!(d.should_retry && d.max_attempts > 6, "free failures while down extend the count: {d:?}");
}

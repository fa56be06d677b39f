//! Safety, proven over random sequences of failures, outcomes, clock jumps, guardrail
//! changes and emergency stops: no panic, no guardrail exceeded, permanent and
//! non-idempotent failures never retried, the emergency stop always wins.

use proptest::prelude::*;
use smartretry::classify;
use smartretry::{Attempt, Engine, Features, Guardrails};

#[derive(Debug, Clone)]
enum Op {
    Decide(Features),
    Record(Attempt),
    Jump(i64),
    Emergency(bool),
    Guardrails { max_attempts: u32, max_delay_ms: u64, min_delay_ms: u64, max_total_ms: Option<u64> },
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![Just("payment".to_string()), Just("search".to_string()), "[a-z_]{1,12}", "\\PC{0,300}",]
}

fn error_class() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("timeout".to_string()),
        Just("rate_limit".to_string()),
        Just("validation".to_string()),
        Just("ECONNRESET".to_string()),
        Just("ECONNREFUSED".to_string()),
        Just("NotFound".to_string()),
        Just("invalid_api_key".to_string()),
        "\\PC{0,40}",
    ])
}

fn status() -> impl Strategy<Value = Option<u16>> {
    prop::option::of(
        prop_oneof![4 => prop::sample::select(vec![400u16, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504]), 1 => any::<u16>()],
    )
}

prop_compose! {
    fn features()(
        job_type in label(), attempt in 0u32..14, error_class in error_class(), http_status in status(),
        tenant in prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        idempotent in prop::option::of(any::<bool>()), retry_after_ms in prop::option::of(0u64..2_000_000),
        retry_after in prop::option::of(prop_oneof![Just("120".to_string()), "\\PC{0,12}"]),
        since_first in prop::option::of(0u64..5_000_000), deadline in prop::option::of(0u64..2_000_000),
        job_id in prop::option::of("[a-z0-9]{1,8}"),
    ) -> Features {
        Features {
            job_type, attempt_number: attempt, error_class, http_status, tenant: tenant.map(String::from),
            idempotent, retry_after_ms, retry_after, since_first_failure_ms: since_first, deadline_ms: deadline,
            job_id, ..Default::default()
        }
    }
}

prop_compose! {
    fn attempt()(
        job_type in label(), attempt in 0u32..14, error_class in error_class(), success in any::<bool>(),
        delay in 0u64..10_000_000, since_first in prop::option::of(0u64..u64::MAX), job_id in "[a-z0-9]{0,8}",
        timestamp in prop::option::of(prop_oneof![Just("2025-01-15T14:30:00Z".to_string()), "\\PC{0,25}"]),
    ) -> Attempt {
        Attempt {
            job_id, job_type, attempt_number: attempt, error_class, success, delay_ms: delay,
            since_first_failure_ms: since_first, timestamp, ..Default::default()
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => features().prop_map(Op::Decide),
        6 => attempt().prop_map(Op::Record),
        2 => (-10_000_000i64..100_000_000).prop_map(Op::Jump),
        1 => any::<bool>().prop_map(Op::Emergency),
        3 => (0u32..20, prop_oneof![0u64..10_000, 0u64..1_000_000], prop_oneof![Just(0u64), 0u64..20_000], prop::option::of(0u64..500_000)).prop_map(
            |(max_attempts, max_delay_ms, min_delay_ms, max_total_ms)| Op::Guardrails { max_attempts, max_delay_ms, min_delay_ms, max_total_ms }
        ),
    ]
}

fn check(
    f: &Features,
    d: &smartretry::Decision,
    g: &Guardrails,
    emergency: bool,
    now: u64,
) -> Result<(), TestCaseError> {
    prop_assert!(!d.rationale.is_empty(), "every decision explains itself");
    prop_assert!((0.0..=1.0).contains(&d.confidence) && (0.0..=1.0).contains(&d.estimated_success));
    prop_assert!(d.delay_ms <= g.max_delay_ms, "max delay: {} > {}", d.delay_ms, g.max_delay_ms);
    // Failures that did not use up an attempt (a known rate-limit reset, a downstream
    // down for every caller) raise the count past the guardrail; the deadline bounds them.
    let free = d.rationale.contains("did not use up an attempt");
    prop_assert!(
        d.max_attempts <= g.max_attempts || free || !d.should_retry,
        "{} attempts: {}",
        d.max_attempts,
        d.rationale
    );
    if !d.should_retry {
        prop_assert_eq!(d.delay_ms, 0);
        return Ok(());
    }
    let kind = classify(f.http_status, f.error_class.as_deref(), f.error_code.as_deref());
    prop_assert!(!emergency, "the emergency stop wins");
    prop_assert!(kind.retryable(), "{:?} is never retried", kind);
    prop_assert!(f.is_idempotent() || !kind.may_have_taken_effect(), "non-idempotent after {:?}", kind);
    prop_assert!(f.attempt_number < d.max_attempts, "attempt {} of {}", f.attempt_number, d.max_attempts);
    prop_assert!(d.delay_ms >= g.min_delay_ms, "min delay");
    if let Some(ra) = f.retry_after_ms(now) {
        // Never sooner than the server asked, unless past the max delay (capped there).
        prop_assert!(d.delay_ms >= ra.min(g.max_delay_ms), "Retry-After floor: {} < {}", d.delay_ms, ra);
    }
    let elapsed = f.since_first_failure_ms.unwrap_or(0);
    let own = f.deadline_ms.unwrap_or(g.default_deadline_ms);
    for limit in [Some(own), g.max_total_ms].into_iter().flatten() {
        prop_assert!(elapsed + d.delay_ms <= limit, "deadline");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_breaks_a_guardrail(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        let engine = Engine::builder().seed(seed).max_keys(64).build().unwrap();
        let mut now: u64 = 1_700_000_000_000;
        for op in ops {
            match op {
                Op::Decide(f) => match engine.decide(&f, Some(now)) {
                    Ok(d) => check(&f, &d, &engine.guardrails(), engine.is_emergency_stopped(), now)?,
                    Err(e) => {
                        prop_assert_eq!(e.kind(), "invalid_input");
                        prop_assert!(f.validate().is_err(), "only invalid input is refused: {}", e);
                        prop_assert!(e.field().is_some_and(|x| !x.is_empty()));
                    }
                },
                Op::Record(a) => {
                    if let Err(e) = engine.record(&a, Some(now)) {
                        prop_assert!(a.validate().is_err(), "{}", e);
                        prop_assert!(e.field().is_some());
                    }
                }
                Op::Jump(ms) => now = now.saturating_add_signed(ms),
                Op::Emergency(on) => engine.emergency_stop(on),
                Op::Guardrails { max_attempts, max_delay_ms, min_delay_ms, max_total_ms } => {
                    let before = engine.guardrails();
                    let next = Guardrails { max_attempts, max_delay_ms, min_delay_ms, max_total_ms, ..before.clone() };
                    match engine.update_guardrails(next.clone()) {
                        Ok(()) => prop_assert_eq!(engine.guardrails(), next),
                        Err(e) => {
                            prop_assert!(e.field().is_some());
                            prop_assert_eq!(engine.guardrails(), before, "a refused update changes nothing");
                        }
                    }
                }
            }
        }
        let m = engine.metrics();
        prop_assert!(m.learned_keys <= 64 + 16, "bounded keys: {}", m.learned_keys);
    }

    /// Within one budget window, retries granted never exceed the budget, and one
    /// tenant never exceeds its share, whatever the clock does inside the window.
    #[test]
    fn retry_budget_and_tenant_share_hold(
        pct in 0.0f64..100.0, floor_per_sec in 0.0f64..0.2, share in 0.05f64..1.0,
        calls in prop::collection::vec((0usize..3, 1u32..4, 0u64..5_999), 1..300),
    ) {
        let g = Guardrails {
            max_budget_percent: pct, min_retries_per_sec: floor_per_sec, tenant_max_share: share,
            budget_window_ms: 60_000, ..Default::default()
        };
        let engine = Engine::builder().seed(9).guardrails(g).build().unwrap();
        let tenants = ["a", "b", "c"];
        let (mut firsts, mut granted, mut by_tenant) = (0u64, 0u64, [0u64; 3]);
        for (t, attempt, offset) in calls {
            let f = Features::new("svc", attempt).with_http_status(500).with_tenant(tenants[t]);
            let d = engine.decide(&f, Some(1_700_000_040_000 + offset)).unwrap();
            firsts += u64::from(attempt == 1);
            if d.should_retry {
                granted += 1;
                by_tenant[t] += 1;
                let allowed = (floor_per_sec * 60.0 + pct / 100.0 * firsts as f64).floor();
                prop_assert!(granted as f64 <= allowed, "{granted} retries > budget {allowed}");
                prop_assert!(by_tenant[t] as f64 <= (allowed * share).ceil(), "tenant over its share");
            }
        }
    }
}

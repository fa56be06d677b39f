//! Instruction counts of a rules-tier `decide`, for callgrind (stable under load):
//!
//! ```text
//! cargo build --release -p smartretry --example decide_cost
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/decide_cost plain 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/decide_cost plain 20000
//! ```
//!
//! (instructions of the second − the first) / 20000 = one decision. Modes: `plain`
//! (nothing configured), `overrides` (three overrides, one applies), `subscriber` (a
//! subscriber to every event, drained every 1,000 decisions), `both`, `bayesian` (a
//! learned key: the Bayesian tier answers), `refused` (a 400: never retried), `retry` (a
//! job's second failure, with its id).

use smartretry::{Attempt, Engine, Features, Method, Override};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let engine = Engine::builder().seed(1).build().expect("the default engine builds");
    let t0 = 1_700_000_000_000u64;
    let mut f = Features::new("payment_capture", 1).with_http_status(503);
    if mode == "refused" {
        f = f.with_http_status(400);
    }
    if mode == "retry" {
        // A job's second failure: whether it used up an attempt is counted.
        f = Features::new("payment_capture", 2).with_http_status(503).with_job_id("job-1");
    }
    if mode == "bayesian" {
        learn(&engine, t0 - 60);
        f = f.with_since_first_failure_ms(0);
        let d = engine.decide(&f, Some(t0)).expect("valid features");
        assert_eq!(d.method, Method::Bayesian, "{}", d.rationale);
    }
    if mode == "overrides" || mode == "both" {
        let over = |name: &str| Override { name: name.into(), ..Default::default() };
        for o in [
            Override { queue: Some("payments".into()), max_attempts: Some(4), ..over("payments") },
            Override { tenant: Some("acme".into()), max_delay_ms: Some(20_000), ..over("acme") },
            Override { job_id: Some("job-7".into()), delay_ms: Some(5_000), ..over("job-7") },
        ] {
            engine.add_override(o, Some(t0)).expect("a valid override");
        }
        f = f.with_queue("payments");
    }
    let events =
        (mode == "subscriber" || mode == "both").then(|| engine.subscribe(&[], 1 << 12).expect("subscribes"));
    // Healthy background traffic so the budget grants retries (as in benches/engine.rs).
    for i in 0..n {
        let now = t0 + i;
        if i % 100 == 0 {
            engine.record_successes(&f.job_type, None, 1_000, Some(now)).expect("valid");
        }
        std::hint::black_box(engine.decide(&f, Some(now)).expect("valid features"));
        if i % 1_000 == 0 {
            if let Some(e) = &events {
                e.drain();
            }
        }
    }
}

/// Sixty retry outcomes of the key (as in benches/common): half fail 2 s after the first
/// failure, half succeed 6–12 s after it, so the Bayesian tier is confident.
fn learn(engine: &Engine, t: u64) {
    for n in 0..60u64 {
        let success = n % 2 == 1;
        let at = if success { 6_000 + (n % 7) * 1_000 } else { 2_000 + (n % 10) * 50 };
        let a = Attempt::new(format!("job-{n}"), "payment_capture", 2, success)
            .with_error_class("service_unavailable")
            .with_delay_ms(at)
            .with_since_first_failure_ms(at);
        engine.record(&a, Some(t + n)).expect("a valid attempt");
    }
}

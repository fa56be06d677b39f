//! Criterion benchmarks of the engine's hot paths: `decide` (rules tier, never-retry
//! path, Bayesian tier), `record`, and one `decide` + `record` pair. Goals (issue,
//! 2-core machine): `decide` median ≤ 1 µs, ≥ 1,000,000 pairs per second per core.
//! See `docs/performance.md`.
//!
//! ```text
//! cargo bench -p smartretry --bench engine
//! ```
//!
//! How the traffic is modelled:
//! - Virtual time: each iteration is 1 ms after the previous one, so the sliding
//!   windows (retry budget, throttling, breakers) roll as under ~1,000 failures a second.
//! - Healthy background traffic, fed outside the timing (criterion's batch setup): each
//!   failure comes after ten successful first attempts of its job type. Without them a
//!   stream made only of failures spends the retry budget (20 % of first attempts) and
//!   most decisions become refusals; `decide/rules_only_budget_spent` times that case.
//! - Inputs (`Features`, `Attempt`) are built in the setup, as a caller builds them just
//!   before calling, and dropped outside the timing; the `Decision` is dropped inside.
//!
//! After each benchmark the decision mix (which tier answered, which guardrails acted)
//! is printed to stderr, so each number comes with the path it measured.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
mod common;

use common::{failure, job_type, outcome, T0};
use smartretry::{Attempt, Engine, Features, Method, MetricsSnapshot, Override};

const KEYS: usize = 10_000;

/// Retry outcomes fed to each learned key: half fail 2 s after the first failure, half
/// succeed 6–12 s after it, so the 5–15 s bucket is likely and confident.
const OUTCOMES_PER_KEY: u64 = 60;
/// Inputs prepared per timed batch (1 s of virtual time).
const BATCH: BatchSize = BatchSize::NumIterations(1_000);

fn over(name: &str) -> Override {
    Override { name: name.into(), ..Default::default() }
}

fn engine() -> Engine {
    Engine::builder().seed(1).build().expect("the default engine builds")
}

/// An engine that has learned `keys` keys, and the virtual time reached.
fn learned_engine(keys: usize) -> (Engine, u64) {
    let engine = engine();
    let mut now = T0;
    for n in 0..OUTCOMES_PER_KEY {
        for i in 0..keys {
            engine.record(&outcome(i, n), Some(now)).expect("a valid attempt");
        }
        now += 1;
    }
    (engine, now)
}

/// xorshift64*: a cheap, reproducible key picker.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// The untimed side of each iteration: pick a key, advance the clock, report the
/// healthy first attempts of that job type (in two batches of five, so the breaker
/// counts two successes per failure).
struct Traffic {
    now: u64,
    rng: Rng,
    job_types: Vec<String>,
}

impl Traffic {
    fn new(now: u64, job_types: Vec<String>) -> Self {
        Traffic { now, rng: Rng(0x9e37_79b9_7f4a_7c15), job_types }
    }

    fn next(&mut self, e: &Engine) -> (usize, u64) {
        let i = self.rng.below(self.job_types.len());
        self.now += 1;
        for _ in 0..2 {
            e.record_successes(&self.job_types[i], None, 5, Some(self.now)).expect("a valid job type");
        }
        (i, self.now)
    }
}

/// What the engine did between two metric snapshots.
fn report_mix(name: &str, before: &MetricsSnapshot, after: &MetricsSnapshot) {
    let decisions = after.decisions_total - before.decisions_total;
    if decisions == 0 {
        return;
    }
    let pct = |n: u64| 100.0 * n as f64 / decisions as f64;
    let grew = |a: &u64, b: &u64| a > b;
    let methods: Vec<String> = after
        .decisions_by_method
        .iter()
        .zip(&before.decisions_by_method)
        .filter(|((_, a), (_, b))| grew(a, b))
        .map(|((m, a), (_, b))| format!("{} {:.1}%", m.as_str(), pct(a - b)))
        .collect();
    let guards: Vec<String> = after
        .guardrail_triggers
        .iter()
        .zip(&before.guardrail_triggers)
        .filter(|((_, a), (_, b))| grew(a, b))
        .map(|((g, a), (_, b))| format!("{g} {:.1}%", pct(a - b)))
        .collect();
    eprintln!(
        "  [{name}] {decisions} decisions: retry {:.1}%; by tier: {}; guardrails: {}",
        pct(after.retries_total - before.retries_total),
        methods.join(", "),
        if guards.is_empty() { "none".to_string() } else { guards.join(", ") },
    );
}

/// Checks, outside the timing, that a learned key is answered by the Bayesian tier.
fn assert_bayesian(e: &Engine, f: &Features, now: u64) {
    let d = e.decide(f, Some(now)).expect("valid features");
    assert_eq!(d.method, Method::Bayesian, "{}: {}", f.job_type, d.rationale);
    assert!(d.should_retry, "{}: {}", f.job_type, d.rationale);
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));

    // Rules tier: nothing learned, a 503 on the first attempt; the retry is granted.
    let e = engine();
    let f = Features::new("payment_capture", 1).with_http_status(503);
    let mut traffic = Traffic::new(T0, vec![f.job_type.clone()]);
    let before = e.metrics();
    group.bench_function("rules_only", |b| {
        b.iter_batched_ref(
            || traffic.next(&e).1,
            |now| {
                black_box(e.decide(black_box(&f), Some(*now)).expect("valid features"));
            },
            BATCH,
        )
    });
    report_mix("decide/rules_only", &before, &e.metrics());

    // The same failure with no successes reported: the budget refuses ~79 % of retries.
    let e = engine();
    let mut now = T0;
    let before = e.metrics();
    group.bench_function("rules_only_budget_spent", |b| {
        b.iter(|| {
            now += 1;
            e.decide(black_box(&f), Some(now)).expect("valid features")
        })
    });
    report_mix("decide/rules_only_budget_spent", &before, &e.metrics());

    // The rules tier with operator overrides in force (a queue cap, a tenant's, one job's
    // delay), of which the queue's applies, and a subscriber to every lifecycle event
    // that drains its queue between batches: what the controls add to a decision.
    let e = engine();
    for o in [
        Override { queue: Some("payments".into()), max_attempts: Some(4), ..over("payments") },
        Override { tenant: Some("acme".into()), max_delay_ms: Some(20_000), ..over("acme") },
        Override { job_id: Some("job-7".into()), delay_ms: Some(5_000), ..over("job-7") },
    ] {
        e.add_override(o, Some(T0)).expect("a valid override");
    }
    let events = e.subscribe(&[], 1 << 16).expect("a subscription");
    let fq = f.clone().with_queue("payments");
    let mut traffic = Traffic::new(T0, vec![f.job_type.clone()]);
    let before = e.metrics();
    group.bench_function("rules_overrides_and_subscriber", |b| {
        b.iter_batched_ref(
            || {
                events.drain();
                traffic.next(&e).1
            },
            |now| {
                black_box(e.decide(black_box(&fq), Some(*now)).expect("valid features"));
            },
            BATCH,
        )
    });
    report_mix("decide/rules_overrides_and_subscriber", &before, &e.metrics());
    drop(events);

    // Never-retry path: a 400 validation error.
    let e = engine();
    let f = Features::new("payment_capture", 1).with_http_status(400);
    let mut now = T0;
    let before = e.metrics();
    group.bench_function("rules_refused", |b| {
        b.iter(|| {
            now += 1;
            e.decide(black_box(&f), Some(now)).expect("valid features")
        })
    });
    report_mix("decide/rules_refused", &before, &e.metrics());

    // Bayesian tier on one learned key: everything in cache.
    let (e, now) = learned_engine(1);
    let f = failure(0);
    assert_bayesian(&e, &f, now);
    let mut traffic = Traffic::new(now, vec![job_type(0)]);
    let before = e.metrics();
    group.bench_function("bayesian_1_key", |b| {
        b.iter_batched_ref(
            || traffic.next(&e).1,
            |now| {
                black_box(e.decide(black_box(&f), Some(*now)).expect("valid features"));
            },
            BATCH,
        )
    });
    report_mix("decide/bayesian_1_key", &before, &e.metrics());

    // Bayesian tier, 10,000 confident keys decided in random order.
    let (e, now) = learned_engine(KEYS);
    for i in (0..KEYS).step_by(997) {
        assert_bayesian(&e, &failure(i), now);
    }
    let mut traffic = Traffic::new(now, (0..KEYS).map(job_type).collect());
    let before = e.metrics();
    group.bench_function("bayesian_10k_keys", |b| {
        b.iter_batched_ref(
            || {
                let (i, now) = traffic.next(&e);
                (failure(i), now)
            },
            |(f, now)| {
                black_box(e.decide(black_box(f), Some(*now)).expect("valid features"));
            },
            BATCH,
        )
    });
    report_mix("decide/bayesian_10k_keys", &before, &e.metrics());
    group.finish();
}

fn bench_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record/throughput");
    group.throughput(Throughput::Elements(1));

    // One warm key: its model exists and is refit every 20 outcomes.
    let (e, mut now) = learned_engine(1);
    let attempts: Vec<Attempt> = (0..64).map(|n| outcome(0, n)).collect();
    let mut n = 0;
    group.bench_function("warm_key", |b| {
        b.iter(|| {
            now += 1;
            n = (n + 1) % attempts.len();
            e.record(black_box(&attempts[n]), Some(now)).expect("a valid attempt")
        })
    });

    // Rotating keys: a random one of 10,000 learned keys per call.
    let (e, mut now) = learned_engine(KEYS);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut n = 0;
    group.bench_function("rotating_10k_keys", |b| {
        b.iter_batched_ref(
            || {
                now += 1;
                n += 1;
                (outcome(rng.below(KEYS), n), now)
            },
            |(a, now)| e.record(black_box(a), Some(*now)).expect("a valid attempt"),
            BATCH,
        )
    });
    group.finish();
}

fn bench_pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide_record_pair");
    group.throughput(Throughput::Elements(1));
    let (e, now) = learned_engine(KEYS);
    let mut traffic = Traffic::new(now, (0..KEYS).map(job_type).collect());
    let before = e.metrics();
    group.bench_function("bayesian_10k_keys", |b| {
        b.iter_batched_ref(
            || {
                let (i, now) = traffic.next(&e);
                (failure(i), outcome(i, now), now)
            },
            |(f, a, now)| {
                black_box(e.decide(black_box(f), Some(*now)).expect("valid features"));
                e.record(black_box(a), Some(*now)).expect("a valid attempt");
            },
            BATCH,
        )
    });
    report_mix("decide_record_pair/bayesian_10k_keys", &before, &e.metrics());
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decide, bench_record, bench_pair
}
criterion_main!(benches);

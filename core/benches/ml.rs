//! The ML tier's latency: one `decide` served by an ONNX model (all 16 candidate delays
//! scored in one batched run, then the Bayesian objective over them), next to the raw
//! ONNX Runtime call for one row and for the batch. Goal (issue 7): single-job ML
//! decision p99 ≤ 20 µs on this machine. Criterion gives the means; the percentiles come
//! from timing 100,000 calls one by one (printed after each group).
//!
//! ```text
//! scripts/venv.sh && cargo bench -p smartretry --bench ml
//! ```
//!
//! The models are made by `tests/ml/make_models.py` (scikit-learn → skl2onnx) with the
//! repository's `.venv` Python (or `SMARTRETRY_PYTHON`); the runtime is found as the
//! engine finds it (ORT_DYLIB_PATH, the wheel in `.venv`…). Without them the benchmark
//! says so and exits.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use smartretry::{Config, Engine, Features, Method};

const T0: u64 = 1_700_000_000_000;

fn models() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("SMARTRETRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv/bin/python"));
    let out = repo.join("target/ml-bench-models");
    let made = Command::new(&python).arg(repo.join("tests/ml/make_models.py")).arg(&out).output();
    match made {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!("ml bench skipped: make_models.py failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("ml bench skipped: no Python at {} ({e}); run scripts/venv.sh", python.display());
            None
        }
    }
}

/// An engine serving `stem`'s model to every job, with the shared guardrails out of the
/// way (a benchmark's stream of failures would spend the budget and open breakers).
fn serving(dir: &Path, stem: &str) -> Option<Engine> {
    let mut config = Config::default();
    config.strategy.circuit_breaker.enabled = false;
    let g = &mut config.strategy.guardrails;
    (g.max_budget_percent, g.adaptive_throttle, g.per_tenant_limits) = (100.0, false, false);
    let engine = Engine::builder().config(config).seed(1).build().ok()?;
    let info = match engine.register_model_files(dir.join(format!("{stem}.onnx")), None, Some(T0)) {
        Ok(info) => info,
        Err(e) => {
            eprintln!("ml bench skipped: {e}");
            return None;
        }
    };
    engine.deploy_model(&info.version, 100.0, Some(T0)).ok()?;
    Some(engine)
}

fn failure(i: u64) -> Features {
    Features {
        job_id: Some(format!("job-{}", i % 1_000)),
        since_first_failure_ms: Some((i % 7) * 1_000),
        ..Features::new("payment", 1).with_error_class(if i % 2 == 0 {
            "timeout"
        } else {
            "service_unavailable"
        })
    }
}

/// p50 / p99 / p99.9 of `n` calls timed one by one.
fn percentiles(n: usize, mut call: impl FnMut(u64)) -> String {
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let start = Instant::now();
        call(i);
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)];
    format!("p50 {:?}, p99 {:?}, p99.9 {:?} over {n} calls", at(0.5), at(0.99), at(0.999))
}

fn bench(c: &mut Criterion) {
    let Some(dir) = models() else { return };
    for (stem, label) in [("recovery", "logistic_regression"), ("recovery_gb", "gradient_boosting")] {
        let Some(engine) = serving(&dir, stem) else { return };
        let probe = engine.decide(&failure(0), Some(T0)).expect("decides");
        assert_eq!(probe.method, Method::Ml, "{}", probe.rationale);
        let inputs: Vec<Features> = (0..1_000).map(failure).collect();
        let mut group = c.benchmark_group("ml");
        group.measurement_time(Duration::from_secs(4));
        let mut i = 0u64;
        group.bench_function(format!("decide/{label}"), |b| {
            b.iter(|| {
                i += 1;
                black_box(engine.decide(&inputs[(i % 1_000) as usize], Some(T0 + i)).expect("decides"))
            })
        });
        group.finish();
        let line = percentiles(100_000, |i| {
            black_box(engine.decide(&inputs[(i % 1_000) as usize], Some(T0 + i)).expect("decides"));
        });
        eprintln!("ml/decide/{label}: {line}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

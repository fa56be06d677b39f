//! The ML tier's latency, per inference backend, side by side in one run: one `decide`
//! served by an ONNX model (all 16 candidate delays scored in one batched run, then the
//! Bayesian objective over them) and the raw inference of that one batch of 16 rows, for
//! ONNX Runtime (`ort`) and, with the `tract` feature, tract-onnx; for the logistic
//! regression and the gradient boosting test models, and for the trainer's
//! StandardScaler + logistic regression pipeline. Goal (issue 7): single-job ML decision
//! p99 ≤ 20 µs on this machine.
//!
//! Each case is timed call by call (100,000 calls: p50, p99, p99.9), then by criterion
//! (its mean); a table with both and the tract / ort ratios closes the run.
//!
//! ```text
//! scripts/venv.sh && cargo bench -p smartretry --bench ml --features tract
//! ```
//!
//! The models are made by `tests/ml/make_models.py` (scikit-learn → skl2onnx) with the
//! repository's `.venv` Python (or `SMARTRETRY_PYTHON`); ONNX Runtime is found as the
//! engine finds it (ORT_DYLIB_PATH, the wheel in `.venv`…). Without them the benchmark
//! says so and exits.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use smartretry::ml::{backend::built_in, FeatureSpec, MlBackend, Scorer};
use smartretry::{Config, Engine, Features, Method, Sidecar};

#[path = "../tests/ml_models/mod.rs"]
#[allow(dead_code)] // `skip` is for the tests
mod ml_models;

const T0: u64 = 1_700_000_000_000;
const CALLS: usize = 100_000;
const BUDGET: Duration = Duration::from_secs(10);
const MODELS: [(&str, &str); 3] = [
    ("recovery", "logistic_regression"),
    ("recovery_gb", "gradient_boosting"),
    ("recovery_scaled", "scaler+logistic (trainer)"),
];

/// An engine serving `stem`'s model from `backend` to every job, with the shared
/// guardrails out of the way (a benchmark's stream of failures would spend the budget
/// and open breakers).
fn serving(dir: &Path, stem: &str, backend: MlBackend) -> smartretry::Result<Engine> {
    let mut config = Config { ml_backend: backend, ..Config::default() };
    config.strategy.circuit_breaker.enabled = false;
    let g = &mut config.strategy.guardrails;
    (g.max_budget_percent, g.adaptive_throttle, g.per_tenant_limits) = (100.0, false, false);
    let engine = Engine::builder().config(config).seed(1).build()?;
    let info = engine.register_model_files(dir.join(format!("{stem}.onnx")), None, Some(T0))?;
    engine.deploy_model(&info.version, 100.0, Some(T0))?;
    Ok(engine)
}

/// `stem`'s model loaded by `backend` alone, its feature spec and sidecar.
fn scorer(dir: &Path, stem: &str, backend: MlBackend) -> smartretry::Result<(Scorer, FeatureSpec, Sidecar)> {
    let json = std::fs::read_to_string(dir.join(format!("{stem}.json")))
        .map_err(|e| smartretry::Error::Model(format!("{stem}.json: {e}")))?;
    let sidecar = Sidecar::from_json(&json)?;
    let spec = sidecar.validate()?;
    let bytes = std::fs::read(dir.join(format!("{stem}.onnx")))
        .map_err(|e| smartretry::Error::Model(format!("{stem}: {e}")))?;
    let scorer = Scorer::load(backend, None, &bytes, spec.width(), sidecar.output.as_deref(), stem)?;
    Ok((scorer, spec, sidecar))
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

/// p50, p99, p99.9 in ns of up to `CALLS` calls timed one by one (fewer when they take
/// longer than `BUDGET` in all), and the number of calls.
fn percentiles(mut call: impl FnMut(u64)) -> ([f64; 3], usize) {
    let mut ns: Vec<f64> = Vec::with_capacity(CALLS);
    let began = Instant::now();
    for i in 0..CALLS as u64 {
        let start = Instant::now();
        call(i);
        ns.push(start.elapsed().as_nanos() as f64);
        if ns.len() >= 1_000 && began.elapsed() > BUDGET {
            break;
        }
    }
    ns.sort_by(f64::total_cmp);
    let n = ns.len();
    ([0.5, 0.99, 0.999].map(|q| ns[((n as f64 * q) as usize).min(n - 1)]), n)
}

/// Slow cases (tract's tree ensembles take milliseconds) get criterion's flat sampling:
/// its default would run one for minutes.
fn sampling(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, p50_ns: f64) {
    group.sampling_mode(if p50_ns > 100_000.0 { SamplingMode::Flat } else { SamplingMode::Auto });
    group.sample_size(if p50_ns > 100_000.0 { 10 } else { 100 });
}

struct Row {
    case: String,
    model: &'static str,
    backend: MlBackend,
    /// p50, p99, p99.9 (ns) and the number of calls timed.
    timed: ([f64; 3], usize),
    criterion_id: String,
}

/// criterion's mean (ns) of a benchmark it saved under `dir`.
fn criterion_mean(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("ml").join(id).join("new/estimates.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["mean"]["point_estimate"].as_f64()
}

fn main() {
    let out = ml_models::repo().join("target/ml-bench-models");
    let dir = match ml_models::make_models(&out) {
        Ok(dir) => dir,
        Err(why) => return eprintln!("ml bench skipped: {why}"),
    };
    let criterion_dir = ml_models::repo().join("target/criterion");
    let mut c = Criterion::default()
        .configure_from_args()
        .output_directory(&criterion_dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let backends: Vec<MlBackend> =
        [MlBackend::Ort, MlBackend::Tract].into_iter().filter(|&b| built_in(b)).collect();
    if backends.len() < 2 {
        eprintln!("tract is not built in: ONNX Runtime only (add --features tract to compare)");
    }
    let inputs: Vec<Features> = (0..1_000).map(failure).collect();
    let mut rows: Vec<Row> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut group = c.benchmark_group("ml");
    for (stem, model) in MODELS {
        for &backend in &backends {
            let name = format!("{backend:?}").to_lowercase();
            let engine = match serving(&dir, stem, backend) {
                Ok(engine) => engine,
                Err(e) => {
                    refused.push(format!("{model} / {name}: {e}"));
                    continue;
                }
            };
            let probe = engine.decide(&failure(0), Some(T0)).expect("decides");
            assert_eq!(probe.method, Method::Ml, "{}", probe.rationale);
            let decide = |i: u64| {
                black_box(engine.decide(&inputs[(i % 1_000) as usize], Some(T0 + i)).expect("decides"));
            };
            eprintln!("timing decide {model} / {name}");
            let timed = percentiles(decide);
            sampling(&mut group, timed.0[0]);
            let id = format!("decide_{stem}_{name}");
            group.bench_function(&id, |b| {
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    decide(i)
                })
            });
            rows.push(Row { case: "decide".into(), model, backend, timed, criterion_id: id });

            // The same batch the engine runs: 16 candidate rows of one failure.
            let (scorer, spec, sidecar) = scorer(&dir, stem, backend).expect("loads as the engine did");
            let candidates = if sidecar.candidate_delays_ms.is_empty() {
                smartretry::ml::DEFAULT_CANDIDATES_MS.to_vec()
            } else {
                sidecar.candidate_delays_ms.clone()
            };
            let mut batch = Vec::new();
            for &delay in &candidates {
                spec.push_row(&failure(1), delay, T0, &mut batch);
            }
            let mut p = Vec::with_capacity(candidates.len());
            let mut infer = |_: u64| {
                scorer.predict(black_box(&batch), candidates.len(), &mut p).expect("runs");
                black_box(&p);
            };
            let timed = percentiles(&mut infer);
            sampling(&mut group, timed.0[0]);
            let id = format!("infer16_{stem}_{name}");
            group.bench_function(&id, |b| b.iter(|| infer(0)));
            rows.push(Row {
                case: format!("infer ({} rows)", candidates.len()),
                model,
                backend,
                timed,
                criterion_id: id,
            });
        }
    }
    group.finish();
    c.final_summary();

    let us = |ns: f64| format!("{:.2} µs", ns / 1_000.0);
    println!("\ncase             model                        backend  p50          p99          p99.9        calls    criterion mean");
    for r in &rows {
        let mean = criterion_mean(&criterion_dir, &r.criterion_id).map_or("-".into(), us);
        println!(
            "{:<16} {:<28} {:<8} {:<12} {:<12} {:<12} {:<8} {mean}",
            r.case,
            r.model,
            format!("{:?}", r.backend).to_lowercase(),
            us(r.timed.0[0]),
            us(r.timed.0[1]),
            us(r.timed.0[2]),
            r.timed.1,
        );
    }
    println!("\ntract / ort (below 1: tract is faster)");
    for r in rows.iter().filter(|r| r.backend == MlBackend::Tract) {
        let Some(o) =
            rows.iter().find(|o| o.backend == MlBackend::Ort && o.case == r.case && o.model == r.model)
        else {
            continue;
        };
        let mean = |row: &Row| criterion_mean(&criterion_dir, &row.criterion_id);
        let mean_ratio = mean(r).zip(mean(o)).map_or("-".into(), |(t, o)| format!("{:.2}", t / o));
        println!(
            "{:<16} {:<28} p50 {:.2}  p99 {:.2}  criterion mean {mean_ratio}",
            r.case,
            r.model,
            r.timed.0[0] / o.timed.0[0],
            r.timed.0[1] / o.timed.0[1],
        );
    }
    for line in &refused {
        println!("not loadable: {line}");
    }
}

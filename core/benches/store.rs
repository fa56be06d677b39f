//! `decide` with a durable or fleet store against memory, and how many records per
//! second each store persists. Goal (issue 8): `decide` p99 with any store within 2×
//! memory. The Redis rows need `redis-server` on the PATH (`scripts/ensure-redis.sh`);
//! one is started on a free loopback port and stopped afterwards.
//!
//! ```text
//! cargo bench -p smartretry --bench store
//! ```
//!
//! Prints a percentile table (each call timed on its own), then criterion's means.

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;

mod common;

use common::{failure, outcome, T0};
use smartretry::{Config, Engine, Guardrails};

const KEYS: usize = 100;
const CALLS: usize = 100_000;
const PERSISTED: u64 = 100_000;

struct Redis(Child, u16, std::path::PathBuf);

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let dir = std::env::temp_dir().join(format!("smartretry-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Redis(child, port, dir))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.2);
    }
}

fn engine(store: &str, sample_rate: f64) -> Engine {
    // Throttling and the budget would refuse most of a benchmark's retries: measure the
    // tiers, not the refusals.
    let mut config = Config { store: store.to_string(), seed: Some(1), ..Config::default() };
    config.strategy.guardrails = Guardrails {
        adaptive_throttle: false,
        max_budget_percent: 100.0,
        min_retries_per_sec: 1e9,
        ..Default::default()
    };
    config.strategy.data_collection.sample_rate = sample_rate;
    let e = Engine::from_config(config).expect("engine");
    for i in 0..KEYS {
        for n in 0..60 {
            e.record(&outcome(i, n), Some(T0)).expect("record");
        }
    }
    e.flush(Duration::from_secs(60)).expect("flush");
    e
}

fn percentiles(e: &Engine) -> (f64, f64, f64) {
    let features: Vec<_> = (0..KEYS).map(failure).collect();
    let mut ns = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let t = Instant::now();
        black_box(e.decide(&features[i % KEYS], Some(T0 + 1_000)).expect("decide"));
        ns.push(t.elapsed().as_nanos() as f64);
    }
    ns.sort_by(f64::total_cmp);
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    (at(0.5), at(0.99), at(0.999))
}

/// Records per second from the first `record` until the store has them all.
fn persisted_per_second(e: &Engine) -> f64 {
    let start = Instant::now();
    for n in 0..PERSISTED {
        e.record(&outcome((n as usize) % KEYS, 1_000 + n), Some(T0 + 2_000)).expect("record");
    }
    e.flush(Duration::from_secs(120)).expect("flush");
    PERSISTED as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("smartretry-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let redis = Redis::start();
    let mut stores =
        vec![("memory", "memory".to_string()), ("sqlite", format!("sqlite://{}/bench", dir.display()))];
    match &redis {
        Some(r) => stores.push(("redis", format!("redis://127.0.0.1:{}/0", r.1))),
        None => eprintln!("redis-server not available: the Redis rows are skipped"),
    }
    // A fresh database (or Redis database) per run, so runs do not share a writer's backlog.
    let url = |base: &str, run: usize| match base {
        b if b.starts_with("sqlite") => format!("{b}-{run}.db"),
        b if b.starts_with("redis") => format!("{}{}", &b[..b.len() - 1], run % 16),
        b => b.to_string(),
    };

    println!("store    sample_rate  decide p50   p99      p99.9     p99 vs memory   records/s persisted");
    let mut run = 0;
    for rate in [1.0, 0.1] {
        let mut memory_p99 = None;
        for (name, base) in &stores {
            run += 1;
            let e = engine(&url(base, run), rate);
            let (p50, p99, p999) = percentiles(&e);
            let memory = *memory_p99.get_or_insert(p99);
            let persisted = if *name == "memory" || rate < 1.0 {
                "-".to_string()
            } else {
                format!("{:.0}", persisted_per_second(&e))
            };
            println!(
                "{name:<8} {rate:>11} {p50:>7.0} ns {p99:>6.0} ns {p999:>7.0} ns {:>8.2}×        {persisted}",
                p99 / memory
            );
        }
    }

    let mut c = Criterion::default().configure_from_args().warm_up_time(Duration::from_secs(1));
    let features: Vec<_> = (0..KEYS).map(failure).collect();
    let mut group = c.benchmark_group("decide_with_store");
    for (name, base) in &stores {
        run += 1;
        let e = engine(&url(base, run), 1.0);
        let mut i = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(e.decide(&features[i], Some(T0 + 1_000)).expect("decide"))
            })
        });
    }
    group.finish();
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}

//! The demo: a virtual-time run against a simulated flaky payment API, printing how the
//! engine moves from the rules tier to Bayesian delays, and why.
//!
//! The downstream: 70 % of calls succeed first time; a failed call's 503 clears 3–5 s
//! after it happened (90 % of the time) or never (10 %). The API document's
//! `service_unavailable` policy retries after ~2 s (usually too early) and ~4 s more.
//! After enough outcomes the Bayesian tier sees that retries in the 5–15 s bucket
//! succeed and those in 1–5 s fail, and recommends a single well-placed retry.
//!
//! The engine keeps its state in SQLite (the default of the demo and of `smartretry
//! serve`); at the end it is stopped and started again on the same file, and its first
//! decision shows it kept what it learned.
//!
//! `cargo run -p smartretry --example demo [seed] [path.db]`

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::time::Duration;

use smartretry::fmt_ms;
use smartretry::store::SqliteStore;
use smartretry::{mix64, rand01};
use smartretry::{Attempt, Decision, Engine, Features, Method};

const JOBS: u64 = 600;
const ARRIVAL_MS: u64 = 400;
const T0: u64 = 1_736_951_400_000; // 2025-01-15T14:30:00Z

struct Job {
    id: u64,
    started: u64,
    recovers_after: Option<u64>,
    /// The tier that answered the first failure: 0 = rules, 1 = Bayesian.
    era: usize,
    retries: u32,
    wasted: u32,
    recovered_after: Option<u64>,
    /// When the previous attempt ran.
    last_attempt: u64,
}

fn main() -> Result<(), smartretry::Error> {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2025);
    let db =
        std::env::args().nth(2).map_or_else(|| PathBuf::from("target/demo/smartretry.db"), PathBuf::from);
    let store = fresh_sqlite(&db)?;
    let engine = Engine::builder().seed(seed).store(&store).build()?;
    let mut rng = mix64(seed);
    let mut next_rand = move || {
        rng = mix64(rng);
        rand01(rng)
    };

    println!("smartretry demo (seed {seed}): {JOBS} payment_capture calls, one every {ARRIVAL_MS} ms of virtual time");
    println!("downstream: 70% succeed at once; a 503 clears 3-5 s later (90%) or never (10%)\n");

    // (time, job index, attempt number), earliest first.
    let mut queue = BinaryHeap::new();
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let started = T0 + i * ARRIVAL_MS;
        if next_rand() < 0.7 {
            engine.record_successes("payment_capture", None, 1, Some(started))?;
            continue;
        }
        let recovers_after = (next_rand() < 0.9).then(|| 3_000 + (next_rand() * 2_000.0) as u64);
        jobs.push(Job {
            id: i,
            started,
            recovers_after,
            era: 0,
            retries: 0,
            wasted: 0,
            recovered_after: None,
            last_attempt: started,
        });
        queue.push(Reverse((started, jobs.len() - 1, 1u32)));
    }

    let (mut shown, mut last_method) = (0, None);
    while let Some(Reverse((now, j, attempt))) = queue.pop() {
        let job = &mut jobs[j];
        let elapsed = now - job.started;
        if attempt > 1 {
            let success = job.recovers_after.is_some_and(|r| elapsed >= r);
            let outcome = Attempt {
                since_first_failure_ms: Some(elapsed),
                delay_ms: now - job.last_attempt,
                error_class: Some("service_unavailable".into()),
                ..Attempt::new(format!("job-{}", job.id), "payment_capture", attempt, success)
            };
            engine.record(&outcome, Some(now))?;
            if success {
                job.recovered_after = Some(elapsed);
                continue;
            }
            job.wasted += 1;
        }
        job.last_attempt = now;
        let failure = Features {
            job_id: Some(format!("job-{}", job.id)),
            error_class: Some("service_unavailable".into()),
            http_status: Some(503),
            since_first_failure_ms: Some(elapsed),
            ..Features::new("payment_capture", attempt)
        };
        let d = engine.decide(&failure, Some(now))?;
        if attempt == 1 {
            job.era = usize::from(d.method == Method::Bayesian);
            if last_method != Some(d.method) {
                println!(
                    "── job {}: first failures are now answered by the {} tier ──",
                    job.id,
                    d.method.as_str()
                );
                last_method = Some(d.method);
                shown = 0;
            }
            shown += 1;
        }
        if shown <= 2 {
            print_decision(now - T0, job.id, attempt, &d);
        }
        if d.should_retry {
            job.retries += 1;
            queue.push(Reverse((now + d.delay_ms, j, attempt + 1)));
        }
    }
    print_summary(&jobs);

    let m = engine.metrics();
    println!(
        "\nengine: {} decisions ({} retries, {} refusals), {} outcomes recorded, {} refits, {} learned key(s)",
        m.decisions_total, m.retries_total, m.refusals_total, m.records_total, m.refits_total, m.learned_keys
    );
    let stats = engine.stats(
        "payment_capture",
        "service_unavailable",
        None,
        Some(T0 + JOBS * ARRIVAL_MS + 60_000),
    )?;
    println!("learned buckets (time since first failure):");
    for b in stats.buckets.iter().filter(|b| b.successes + b.failures > 0) {
        println!(
            "  {:<7} {:>4} ok {:>4} failed   p(success)={:.2}  confidence={:.2}",
            b.label, b.successes, b.failures, b.success_probability, b.confidence
        );
    }

    // Stop the engine and start a new one on the same file: it decides as before.
    engine.flush(Duration::from_secs(10))?;
    drop(engine);
    let restarted = Engine::builder().seed(seed).store(&store).build()?;
    let now = T0 + JOBS * ARRIVAL_MS + 60_000;
    let failure = Features {
        job_id: Some("job-after-restart".into()),
        error_class: Some("service_unavailable".into()),
        http_status: Some(503),
        since_first_failure_ms: Some(0),
        ..Features::new("payment_capture", 1)
    };
    let d = restarted.decide(&failure, Some(now))?;
    println!(
        "\nrestarted on {} ({} learned key(s) restored):",
        db.display(),
        restarted.metrics().learned_keys
    );
    print_decision(now - T0, JOBS, 1, &d);
    Ok(())
}

/// A store URL for an empty SQLite file at `path` (the demo starts from nothing each run).
fn fresh_sqlite(path: &std::path::Path) -> Result<String, smartretry::Error> {
    let fail = |e: std::io::Error| smartretry::Error::config("store", format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    SqliteStore::remove_database(path).map_err(fail)?;
    Ok(format!("sqlite://{}", path.display()))
}

fn print_summary(jobs: &[Job]) {
    println!(
        "\n{:<22} {:>5} {:>10} {:>16} {:>12} {:>11} {:>5}",
        "first failure decided", "jobs", "recovered", "mean time to ok", "retries/job", "wasted/job", "lost"
    );
    for (era, name) in ["by rules", "by bayesian"].iter().enumerate() {
        let group: Vec<_> = jobs.iter().filter(|j| j.era == era).collect();
        if group.is_empty() {
            continue;
        }
        let n = group.len() as f64;
        let recovered: Vec<u64> = group.iter().filter_map(|j| j.recovered_after).collect();
        let mean_ok = recovered.iter().sum::<u64>() / (recovered.len().max(1) as u64);
        println!(
            "{name:<22} {:>5} {:>10} {:>16} {:>12.2} {:>11.2} {:>5}",
            group.len(),
            recovered.len(),
            fmt_ms(mean_ok),
            group.iter().map(|j| f64::from(j.retries)).sum::<f64>() / n,
            group.iter().map(|j| f64::from(j.wasted)).sum::<f64>() / n,
            group.len() - recovered.len(),
        );
    }
}

fn print_decision(at_ms: u64, job: u64, attempt: u32, d: &Decision) {
    let action =
        if d.should_retry { format!("retry in {}", fmt_ms(d.delay_ms)) } else { "give up".to_string() };
    println!(
        "t={:>6} job {:>3} attempt {} failed → {:<15} [{} {:.2}] {}",
        fmt_ms(at_ms),
        job,
        attempt,
        action,
        d.method.as_str(),
        d.confidence,
        d.rationale
    );
}

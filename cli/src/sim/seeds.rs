//! Several seeds at once: every scenario run for each seed, summarised per scenario in
//! tables to paste (`simulate --seeds 1-6 --markdown`), with the questions the product is
//! judged on answered per seed: is smartretry as fast as the best static baseline, does
//! it lose recoverable jobs the 2-4-8-16-32 schedule saves, how many retries does it
//! spend, how close is it to the best-schedule bound.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::report::{duration, Table};
use super::{bound::Bound, Figures, Scenario, SmartRetry};

/// The static baselines (the rows a user would otherwise run).
const STATIC: [&str; 4] = [
    "traditional_2s_doubling",
    "exponential_full_jitter",
    "tenacity_random_exponential",
    "api_fallback_policy",
];
/// The schedule smartretry must lose no more recoverable jobs than.
const DOUBLING: &str = "traditional_2s_doubling";

/// What the summary's columns mean.
pub const LEGEND: &str = "\
restricted = restricted mean time to success: the mean over every failed job, a lost job counting the deadline; \
×oracle = over the oracle's\n\
vs best static = smartretry's restricted mean over the best static baseline's of the same seed (above 1 = slower)\n\
lost recoverable vs 2-4-8-16-32 = recoverable jobs smartretry lost / the 2 s doubling schedule lost\n\
×bound = smartretry's mean time to success ×oracle over the best-schedule bound's at smartretry's own retries per \
recovered job (only where jobs recover on their own clocks)\n";

/// `1-6`, `1,3,5` or `7`: the seeds to run, in order, without repeats.
pub fn parse(text: &str) -> Result<Vec<u64>, String> {
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("seeds: {s:?} is not a number"));
    let mut seeds = Vec::new();
    for part in text.split(',') {
        let range = match part.split_once('-') {
            Some((from, to)) => number(from)?..=number(to)?,
            None => number(part)?..=number(part)?,
        };
        if range.is_empty() || range.end() - range.start() >= 1_000 {
            return Err(format!("seeds: {part:?} must be a range low-high of at most 1,000 seeds"));
        }
        seeds.extend(range.filter(|s| !seeds.contains(s)).collect::<Vec<_>>());
    }
    Ok(seeds)
}

/// One scenario run with one seed.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed: u64,
    pub rows: Vec<Figures>,
    /// smartretry's mean time to success ×oracle over the best-schedule bound's at
    /// smartretry's own retries per recovered job; or why there is no bound.
    pub vs_bound: Result<Option<f64>, String>,
}

impl SeedRun {
    pub fn new(scenario: &Scenario, seed: u64, model: Option<&std::path::Path>) -> SeedRun {
        let rows: Vec<Figures> =
            super::compare(scenario, seed, model).into_iter().map(|r| r.figures).collect();
        let vs_bound = super::bound(scenario, seed).map(|b| vs_bound(&b, &rows));
        SeedRun { seed, rows, vs_bound }
    }

    fn row(&self, policy: &str) -> Option<&Figures> {
        self.rows.iter().find(|r| r.policy == policy)
    }

    fn smart(&self) -> Option<&Figures> {
        self.row(SmartRetry::HEADLINE)
    }

    /// The static baseline with the lowest restricted mean time to success.
    fn best_static(&self) -> Option<&Figures> {
        STATIC
            .iter()
            .filter_map(|p| self.row(p))
            .min_by(|a, b| a.restricted_mean_tts_ms.total_cmp(&b.restricted_mean_tts_ms))
    }

    fn restricted_x_oracle(&self, r: &Figures) -> f64 {
        r.restricted_mean_tts_ms / self.row("oracle").map_or(1.0, |o| o.restricted_mean_tts_ms.max(1.0))
    }
}

fn vs_bound(bound: &Bound, rows: &[Figures]) -> Option<f64> {
    let smart = rows.iter().find(|r| r.policy == SmartRetry::HEADLINE)?;
    let oracle = rows.iter().find(|r| r.policy == "oracle")?;
    let at_its_retries = bound.ratio_at(smart.retries_per_recovered_job)?;
    Some(smart.mean_time_to_success_ms / oracle.mean_time_to_success_ms.max(1.0) / at_its_retries)
}

/// `f` over every item, on as many threads as the machine offers, results in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

/// Every scenario × seed, in parallel; per scenario its runs in seed order.
pub fn run_all(scenarios: &[Scenario], seeds: &[u64], model: Option<&std::path::Path>) -> Vec<Vec<SeedRun>> {
    let pairs: Vec<(usize, u64)> =
        (0..scenarios.len()).flat_map(|s| seeds.iter().map(move |&seed| (s, seed))).collect();
    let mut runs = par_map(&pairs, |&(s, seed)| SeedRun::new(&scenarios[s], seed, model)).into_iter();
    scenarios.iter().map(|_| runs.by_ref().take(seeds.len()).collect()).collect()
}

fn seed_list(seeds: &[u64]) -> String {
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if seeds.len() > 1 && b - a + 1 == seeds.len() as u64 => format!("{a}–{b}"),
        _ => seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
    }
}

fn mean_range(values: &[f64], digits: usize) -> String {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() > 1 && (max - min) * 10f64.powi(digits as i32) >= 1.0 {
        format!("{mean:.digits$} ({min:.digits$}–{max:.digits$})")
    } else {
        format!("{mean:.digits$}")
    }
}

/// One scenario over its seeds: every policy across seeds, then smartretry per seed
/// against the references.
pub fn scenario_summary(scenario: &Scenario, runs: &[SeedRun], markdown: bool) -> String {
    let seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    let mut out = String::new();
    let heading = if markdown { "###" } else { "==" };
    let _ = writeln!(
        out,
        "{heading} {} — {} (deadline {}, seeds {})\n",
        scenario.name,
        scenario.description,
        duration(scenario.deadline_ms),
        seed_list(&seeds)
    );
    let mut policies = Table::new(&[
        "policy",
        "restricted ×oracle",
        "retries / recovered job",
        "lost (all seeds)",
        "lost recoverable (all seeds)",
    ]);
    let names: Vec<&str> =
        runs.first().map_or(Vec::new(), |r| r.rows.iter().map(|f| f.policy.as_str()).collect());
    for name in names {
        let rows: Vec<(&SeedRun, &Figures)> = runs.iter().filter_map(|r| Some((r, r.row(name)?))).collect();
        let ratios: Vec<f64> = rows.iter().map(|(run, f)| run.restricted_x_oracle(f)).collect();
        let retries: Vec<f64> =
            rows.iter().filter(|(_, f)| f.recovered > 0).map(|(_, f)| f.retries_per_recovered_job).collect();
        policies.push(vec![
            name.to_string(),
            mean_range(&ratios, 2),
            if retries.is_empty() { "-".into() } else { mean_range(&retries, 2) },
            rows.iter().map(|(_, f)| f.lost).sum::<u32>().to_string(),
            rows.iter().map(|(_, f)| f.lost_recoverable).sum::<u32>().to_string(),
        ]);
    }
    out.push_str(&policies.render(markdown));
    out.push('\n');
    let mut per_seed = Table::new(&[
        "seed",
        "smartretry restricted",
        "best static (restricted)",
        "vs best static",
        "lost recoverable vs 2-4-8-16-32",
        "retries / recovered job",
        "retries on permanent failures",
        "×bound at its retries",
    ]);
    for run in runs {
        let (Some(smart), Some(best), Some(doubling)) = (run.smart(), run.best_static(), run.row(DOUBLING))
        else {
            continue;
        };
        per_seed.push(vec![
            run.seed.to_string(),
            format!("{:.1}s", smart.restricted_mean_tts_ms / 1_000.0),
            format!("{} {:.1}s", best.policy, best.restricted_mean_tts_ms / 1_000.0),
            format!("{:.3}", smart.restricted_mean_tts_ms / best.restricted_mean_tts_ms.max(1.0)),
            format!("{} / {}", smart.lost_recoverable, doubling.lost_recoverable),
            format!("{:.2}", smart.retries_per_recovered_job),
            smart.retries_on_permanent_failures.to_string(),
            match &run.vs_bound {
                Ok(Some(x)) => format!("{x:.2}"),
                _ => "-".into(),
            },
        ]);
    }
    out.push_str(&per_seed.render(markdown));
    if let Some(Err(why)) = runs.first().map(|r| &r.vs_bound) {
        let _ = writeln!(out, "\nno best-schedule bound: {why}");
    }
    out.push('\n');
    out
}

/// One line per scenario: the worst seed on each question the product is judged on.
pub fn digest(scenarios: &[Scenario], all: &[Vec<SeedRun>], markdown: bool) -> String {
    let mut t = Table::new(&[
        "scenario",
        "restricted vs best static (worst seed)",
        "seeds slower than best static",
        "lost recoverable smartretry / 2-4-8-16-32 (all seeds)",
        "seeds losing more recoverable",
        "retries / recovered job (worst)",
        "retries on permanent failures",
        "×bound (worst)",
    ]);
    for (scenario, runs) in scenarios.iter().zip(all) {
        let seeds: Vec<(&Figures, &Figures, &Figures, &SeedRun)> =
            runs.iter().filter_map(|r| Some((r.smart()?, r.best_static()?, r.row(DOUBLING)?, r))).collect();
        let vs_best: Vec<f64> = seeds
            .iter()
            .map(|(s, b, _, _)| s.restricted_mean_tts_ms / b.restricted_mean_tts_ms.max(1.0))
            .collect();
        let worst = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let retries: Vec<f64> = seeds
            .iter()
            .filter(|(s, ..)| s.recovered > 0)
            .map(|(s, ..)| s.retries_per_recovered_job)
            .collect();
        let bounds: Vec<f64> = seeds.iter().filter_map(|(.., r)| r.vs_bound.clone().ok().flatten()).collect();
        t.push(vec![
            scenario.name.clone(),
            format!("{:.3}", worst(&vs_best)),
            format!("{} of {}", vs_best.iter().filter(|&&v| v > 1.0).count(), seeds.len()),
            format!(
                "{} / {}",
                seeds.iter().map(|(s, ..)| s.lost_recoverable).sum::<u32>(),
                seeds.iter().map(|(_, _, d, _)| d.lost_recoverable).sum::<u32>()
            ),
            format!(
                "{} of {}",
                seeds.iter().filter(|(s, _, d, _)| s.lost_recoverable > d.lost_recoverable).count(),
                seeds.len()
            ),
            if retries.is_empty() { "-".into() } else { format!("{:.2}", worst(&retries)) },
            seeds.iter().map(|(s, ..)| s.retries_on_permanent_failures).sum::<u32>().to_string(),
            if bounds.is_empty() { "-".into() } else { format!("{:.2}", worst(&bounds)) },
        ]);
    }
    t.render(markdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_ranges_or_lists() {
        assert_eq!(parse("1-6"), Ok(vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(parse("1,3, 5"), Ok(vec![1, 3, 5]));
        assert_eq!(parse("2-3,3,9"), Ok(vec![2, 3, 9]));
        assert!(parse("6-1").unwrap_err().contains("6-1"));
        assert!(parse("1,x").unwrap_err().contains("\"x\""));
        assert!(parse("1-5000").is_err());
    }

    #[test]
    fn par_map_keeps_the_order() {
        let items: Vec<u64> = (0..50).collect();
        assert_eq!(par_map(&items, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn seed_lists_read_as_ranges_when_they_are() {
        assert_eq!(seed_list(&[1, 2, 3, 4, 5, 6]), "1–6");
        assert_eq!(seed_list(&[1, 3]), "1, 3");
        assert_eq!(seed_list(&[7]), "7");
        assert_eq!(mean_range(&[1.0, 2.0, 3.0], 2), "2.00 (1.00–3.00)");
        assert_eq!(mean_range(&[1.5, 1.5], 2), "1.50");
    }
}

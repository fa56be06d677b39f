//! The maths on a key's counts: bucket summaries for stats, the recovery curve
//! (isotonic regression) and the dynamic program that plans retries on it.

use super::config::BayesConfig;
use super::grid::{BINS, BIN_EDGES_MS};

/// The weak prior of each bin (a Beta(½, ½)).
pub(super) const PRIOR: f32 = 0.5;
/// Share of still-failing jobs assumed to recover in each unexplored bin past the data.
pub const EXPLORE_SHARE: f32 = 0.2;

/// Plans are made for 1, 2 and 3+ retries left: the last retry is placed to catch the
/// slow tail, earlier ones to catch the bulk.
pub const PLAN_DEPTH: usize = 3;

/// Success probability and confidence of one API bucket from raw counts, for `stats`.
pub fn bucket_summary(successes: u64, failures: u64, key_samples: u64, cfg: &BayesConfig) -> (f64, f64) {
    let penalty = (key_samples as f64 / f64::from(cfg.full_confidence_samples.max(1))).min(1.0).sqrt();
    beta_summary(successes as f64, failures as f64, penalty)
}

/// Posterior mean and confidence of a Beta(1 + s, 1 + f).
pub(super) fn beta_summary(s: f64, f: f64, penalty: f64) -> (f64, f64) {
    let (alpha, beta) = (1.0 + s, 1.0 + f);
    let n = alpha + beta;
    let sd = (alpha * beta / (n * n * (n + 1.0))).sqrt();
    (alpha / n, (1.0 - 2.0 * 1.645 * sd).clamp(0.0, 1.0) * penalty)
}

/// The recovery curve `F(t) = 1 − Π (1 − hazard)` from a life table: each retry outcome
/// puts its job at risk in every bin since its previous failure, and a success is a
/// recovery in the bin of the retry (the latest it can have happened). Unlike pooling
/// outcomes by retry time, this stays unbiased when later retries only happen to jobs
/// whose earlier ones failed. Bins after the last one anybody was at risk in recover a
/// share ([`EXPLORE_SHARE`]) of the jobs still failing: unexplored later times look worth
/// a try, which is how a schedule that gave up too early gets corrected.
pub(super) fn recovery_curve(events: &[f32; BINS], at_risk: &[f32; BINS]) -> [f32; BINS] {
    let last_seen = at_risk.iter().rposition(|&r| r > 1e-6);
    let mut cdf = [0f32; BINS];
    let mut survival = 1.0f32;
    for i in 0..BINS {
        let hazard = match last_seen {
            // A bin nobody was exposed in says nothing: no recovery is assumed there.
            Some(last) if i <= last && at_risk[i] <= 1e-6 => 0.0,
            Some(last) if i <= last => (events[i] + PRIOR * 0.1) / (at_risk[i] + PRIOR * 0.2),
            Some(_) => EXPLORE_SHARE,
            None => 0.0,
        };
        survival *= 1.0 - hazard.clamp(0.0, 1.0);
        cdf[i] = 1.0 - survival;
    }
    cdf
}

/// The objective's two prices, in ms of waiting, for a key whose failed jobs are half
/// recovered after `median_ms`: one retry, and a lost job (no retries left). Shared by
/// the Bayesian plan and the ML tier, so both choose delays by the same trade-off.
pub fn plan_costs(median_ms: f64, cfg: &BayesConfig) -> (f64, f64) {
    let retry = (cfg.retry_cost * median_ms).max(cfg.min_retry_cost_ms as f64);
    // A lost job is expensive in absolute terms too (a dead letter, a person): at least
    // the deadline it had, so a key that recovered fast until now does not spend its
    // last attempts in quick hops when recovery suddenly slows.
    let lost = (cfg.lost_job_cost * median_ms).max(cfg.lost_job_ms).max(retry);
    (retry, lost)
}

/// For each bin a job may have failed in and each number of retries left, the bin of
/// the retry that minimises expected time to success plus retry costs plus the cost of
/// losing the job, by backward induction over the grid.
pub(super) fn plan_table(
    cdf: &[f32; BINS],
    at_ms: &[u32; BINS],
    cfg: &BayesConfig,
) -> [[u8; BINS]; PLAN_DEPTH] {
    let t = at_ms.map(f64::from);
    let survival = cdf.map(|f| (1.0 - f64::from(f)).max(1e-6));
    let mut lower = [0f64; BINS];
    for i in 1..BINS {
        lower[i] = BIN_EDGES_MS[i - 1] as f64;
    }
    // One retry costs a share of this key's typical recovery time (where F reaches ½):
    // the same trade-off whether recovery takes 300 ms or 15 minutes.
    let median = t[cdf.iter().position(|&f| f >= 0.5).unwrap_or(BINS - 1)];
    let (retry, lost) = plan_costs(median, cfg);
    // after[i]: expected cost once unrecovered at the start of bin i with one retry
    // fewer; `BINS` is past the grid. With no retries left, the job is lost.
    let mut after = [lost; BINS + 1];
    let mut tables = [[0u8; BINS]; PLAN_DEPTH];
    for table in &mut tables {
        let mut value = [lost; BINS + 1];
        for from in 0..BINS {
            let inv_s_from = if from == 0 { 1.0 } else { 1.0 / survival[from - 1] };
            let (mut best, mut best_cost) = (BINS - 1, f64::INFINITY);
            for j in from..BINS {
                let cost = (t[j] - lower[from]) + retry + survival[j] * inv_s_from * after[j + 1];
                if cost < best_cost {
                    (best, best_cost) = (j, cost);
                }
            }
            table[from] = best as u8;
            value[from] = best_cost;
        }
        after = value;
    }
    tables
}

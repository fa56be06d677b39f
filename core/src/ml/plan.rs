//! Choosing a delay from a model's predictions, by the Bayesian tier's objective.
//!
//! The model gives, for each candidate delay `d`, P(the retry succeeds | this failure,
//! wait `d`): the chance the job has recovered by then. Waiting longer can only help a
//! recovery that has not happened, so the curve is made monotone (running maximum)
//! before it is used. Then, exactly as the Bayesian plan does over its grid, a short
//! backward induction picks the first retry that minimises expected time to success +
//! a cost per retry + the cost of losing the job when attempts run out
//! ([`crate::bayes::plan_costs`]), looking up to [`PLAN_DEPTH`] retries ahead.

use crate::bayes::{plan_costs, BayesConfig, PLAN_DEPTH};

/// Candidate delays evaluated when the sidecar names none: 250 ms to 10 min, about
/// half again each step (16 rows: one batched run).
pub const DEFAULT_CANDIDATES_MS: [u64; 16] = [
    250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 120_000,
    300_000, 600_000,
];

/// The delay chosen among the candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub index: usize,
    pub delay_ms: u64,
    /// P(success) at that delay (from the monotone curve).
    pub p_success: f64,
}

/// Pick among `delays_ms` (ascending, non-empty) given the model's success
/// probabilities `p` (same length) for a job with `retries_left` retries.
pub fn choose(delays_ms: &[u64], p: &[f32], retries_left: u32, cfg: &BayesConfig) -> Choice {
    let k = delays_ms.len().min(p.len());
    debug_assert!(k > 0 && k <= 64);
    // Monotone recovery curve over the candidates.
    let mut curve = [0f64; 64];
    let mut best = 0f64;
    for i in 0..k {
        let pi = f64::from(p[i]);
        best = best.max(if pi.is_finite() { pi.clamp(0.0, 1.0) } else { 0.0 });
        curve[i] = best;
    }
    let t = |i: usize| delays_ms[i] as f64;
    let median = t((0..k).find(|&i| curve[i] >= 0.5).unwrap_or(k - 1));
    let (retry, lost) = plan_costs(median, cfg);
    let survival = |i: usize| (1.0 - curve[i]).max(1e-6);
    // value[j]: expected cost once the retry at candidate j failed, with the retries of
    // the previous round left; with none left the job is lost.
    let mut value = [lost; 64];
    let depth = (retries_left.clamp(1, PLAN_DEPTH as u32)) as usize;
    let mut first = 0;
    for round in 0..depth {
        let mut next = [lost; 64];
        let last_round = round + 1 == depth;
        // From "now" (the last round) or from each candidate j a previous retry failed at.
        for from in (0..k).map(Some).chain(std::iter::once(None)) {
            if last_round != from.is_none() {
                continue;
            }
            let (t0, s0, lo) = match from {
                Some(j) => (t(j), survival(j), j + 1),
                None => (0.0, 1.0, 0),
            };
            let (mut pick, mut cost) = (lo.min(k - 1), f64::INFINITY);
            for (i, after) in value.iter().enumerate().take(k).skip(lo) {
                let c = (t(i) - t0) + retry + survival(i) / s0 * after;
                if c < cost {
                    (pick, cost) = (i, c);
                }
            }
            match from {
                Some(j) => next[j] = if cost.is_finite() { cost } else { lost },
                None => first = pick,
            }
        }
        value = next;
    }
    Choice { index: first, delay_ms: delays_ms[first], p_success: curve[first] }
}

/// The model's P(success) at `delay_ms`, interpolated in log-time between candidates
/// (for comparing a shadow model with the delay actually served).
pub fn at_delay(delays_ms: &[u64], p: &[f32], delay_ms: u64) -> f64 {
    let k = delays_ms.len().min(p.len());
    let i = delays_ms[..k].partition_point(|&d| d < delay_ms);
    if i == 0 {
        return f64::from(p[0]);
    }
    if i >= k {
        return f64::from(p[k - 1]);
    }
    let (a, b) = ((delays_ms[i - 1] as f64).ln_1p(), (delays_ms[i] as f64).ln_1p());
    let w = if b > a { ((delay_ms as f64).ln_1p() - a) / (b - a) } else { 1.0 };
    f64::from(p[i - 1]) * (1.0 - w) + f64::from(p[i]) * w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that recovers at a known time: P(success) is ~0 before it and ~1 after.
    fn step(at_ms: u64) -> Vec<f32> {
        DEFAULT_CANDIDATES_MS.iter().map(|&d| if d >= at_ms { 0.97 } else { 0.02 }).collect()
    }

    #[test]
    fn a_sharp_recovery_is_met_on_time() {
        let c = choose(&DEFAULT_CANDIDATES_MS, &step(10_000), 3, &BayesConfig::default());
        assert_eq!(c.delay_ms, 10_000);
        assert!(c.p_success > 0.9);
    }

    #[test]
    fn the_curve_is_made_monotone() {
        let mut p = step(5_000);
        p[10] = 0.1; // a dip the model should not have: waiting longer cannot hurt
        let c = choose(&DEFAULT_CANDIDATES_MS, &p, 1, &BayesConfig::default());
        assert_eq!(c.delay_ms, 5_000);
    }

    #[test]
    fn with_retries_to_spare_an_even_curve_is_tried_early() {
        // Recovery spread evenly in time: with several retries left, a quick first try
        // is cheap; with the last retry, waiting for the bulk is better.
        let p: Vec<f32> =
            DEFAULT_CANDIDATES_MS.iter().map(|&d| (d as f32 / 60_000.0).min(1.0) * 0.95).collect();
        let cfg = BayesConfig::default();
        let many = choose(&DEFAULT_CANDIDATES_MS, &p, 3, &cfg);
        let last = choose(&DEFAULT_CANDIDATES_MS, &p, 1, &cfg);
        assert!(many.delay_ms < last.delay_ms, "{many:?} vs {last:?}");
    }

    #[test]
    fn interpolation_is_in_log_time() {
        let d = [1_000, 10_000];
        let p = [0.0f32, 1.0];
        assert_eq!(at_delay(&d, &p, 500), 0.0);
        assert_eq!(at_delay(&d, &p, 20_000), 1.0);
        let mid = at_delay(&d, &p, 3_163);
        assert!((mid - 0.5).abs() < 0.01, "{mid}");
    }
}

//! Bayesian tier: learns, per (job_type, error_class), *when* a failed job recovers,
//! and plans the next retry from it.
//!
//! # Which clock it learns on
//!
//! Observations are placed on the **time since the job's first failure** when the
//! caller supplies `since_first_failure_ms`, and on the **delay before the attempt**
//! (`delay_ms`, the time since the last failure) otherwise.
//!
//! Time since the first failure is the downstream's *recovery clock*: a payment API that
//! is back 6–12 s after an incident started is back 6–12 s after the job first failed,
//! whichever retry we are on. Learning on it lets the engine say "retry 9 s after the
//! first failure", which is what beats a static schedule. The product documents name the
//! time since the last failure; with no `since_first_failure_ms` the two clocks coincide
//! for the first retry, and for later retries the delay clock is the honest fallback.
//! Features and attempts use the same rule, so a key is learned and asked on one clock.
//!
//! # The model
//!
//! Each retry outcome at clock value `x` is a *current-status* observation of the job's
//! recovery time `R`: a success says `R ≤ x`, a failure says `R > x`. Outcomes are kept
//! as Beta-Binomial counts on a fine log-spaced grid (48 bins, 100 ms to 1 h, each 25 %
//! wider than the last) with a weak Beta(½, ½) prior per bin, so unexplored times look
//! worth a try. The recovery curve `F(t) = P(R ≤ t)` is the weighted isotonic
//! (monotone) regression of the bins' posterior means: the maximum-likelihood estimate
//! for current-status data. Old evidence fades with a half-life counted in samples, so a
//! downstream whose recovery time drifts is re-learned.
//!
//! From `F`, a small dynamic program over the grid picks, for every elapsed time, the
//! next retry time that minimises expected time to success plus a cost per retry
//! (`retry_cost` × the key's median recovery time, at least `min_retry_cost_ms`) plus the
//! cost of losing the job when attempts run out (`lost_job_cost` × that median).
//!
//! # The API document's contract, kept
//!
//! A key has no model until it has [`BayesConfig::min_samples`] outcomes and is refit
//! every [`BayesConfig::refit_every`] new ones (decisions read the last fit: one
//! lookup). Stats report the document's eight buckets (0–1 s … 15 min+) with their
//! success probability and confidence: `1 − width of the 90 % credible interval`,
//! scaled by `sqrt(min(1, samples / 50))`. The engine may follow a plan that retries
//! *later* than the rules tier at any confidence (waiting is the safe direction and
//! is how the model explores), but retries *earlier* than the rules only when the
//! plan's confidence reaches `bayesian_threshold`.

mod config;
mod curve;
mod grid;
mod key;
mod learner;

pub use config::BayesConfig;
pub use curve::{bucket_summary, plan_costs, PLAN_DEPTH};
pub use grid::{bucket_of, BUCKETS, BUCKET_BOUNDS_MS, BUCKET_LABELS};
pub use key::{KeyModel, Plan};
pub use learner::{Learner, Scope};

#[cfg(test)]
mod tests {
    use super::grid::*;
    use super::key::*;
    use super::learner::*;
    use super::*;

    fn cfg() -> BayesConfig {
        BayesConfig::default()
    }

    #[test]
    fn buckets_follow_the_api_document() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999), 0);
        assert_eq!(bucket_of(1_000), 1);
        assert_eq!(bucket_of(14_999), 2);
        assert_eq!(bucket_of(59_999), 4);
        assert_eq!(bucket_of(60_000), 5);
        assert_eq!(bucket_of(900_000), 7);
        assert_eq!(bucket_of(u64::MAX), 7);
    }

    #[test]
    fn the_fine_grid_spans_100ms_to_an_hour() {
        assert_eq!(BIN_EDGES_MS[0], 100);
        assert!(BIN_EDGES_MS.windows(2).all(|w| w[1] > w[0]));
        assert!((3_000_000..5_000_000).contains(&BIN_EDGES_MS[BINS - 1]), "{}", BIN_EDGES_MS[BINS - 1]);
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(100), 0);
        assert_eq!(bin_of(101), 1);
        assert_eq!(bin_of(u64::MAX), BINS - 1);
    }

    #[test]
    fn no_model_below_ten_samples_and_refit_every_twenty() {
        let mut m = KeyModel::default();
        for i in 0..9 {
            assert!(!m.observe(0, 8_000 + i, true, &cfg()));
        }
        assert!(m.plan(0, 2).is_none());
        assert!(m.observe(0, 8_000, true, &cfg()), "10th sample fits");
        let refits = (0..40).filter(|_| m.observe(0, 8_000, true, &cfg())).count();
        assert_eq!(refits, 2, "then every 20 samples");
    }

    #[test]
    fn the_curve_is_unbiased_under_sequential_retries() {
        // Jobs recover uniformly 6–12 s after failing; each is retried at 10.3 s and, if
        // that fails, at 11.9 s. Only jobs that failed at 10.3 s reach 11.9 s: pooling
        // outcomes by retry time would put F(11.9 s) near ½, the truth is ~0.98.
        let mut m = KeyModel::default();
        for i in 0..600u64 {
            let recovery = 6_000 + (i * 7_919) % 6_000;
            if recovery <= 10_300 {
                m.observe(0, 10_300, true, &cfg());
            } else {
                m.observe(0, 10_300, false, &cfg());
                m.observe(10_300, 11_900, recovery <= 11_900, &cfg());
            }
        }
        m.refit(&cfg());
        let f = m.fit().unwrap();
        assert!((f.cdf(bin_of(10_300)) - 0.72).abs() < 0.05, "{}", f.cdf(bin_of(10_300)));
        assert!(f.cdf(bin_of(11_900)) > 0.95, "{}", f.cdf(bin_of(11_900)));
        assert!(f.curve().windows(2).all(|w| w[1] >= w[0]), "monotone");
    }

    /// Jobs recover 6–12 s after the first failure; each is retried at 2, 6, 9, 12 and
    /// 20 s until it succeeds.
    fn payment_model(jobs: u64) -> KeyModel {
        let mut m = KeyModel::default();
        for i in 0..jobs {
            retry_until_success(&mut m, 6_000 + (i * 7_919) % 6_000, &[2_000, 6_000, 9_000, 12_000, 20_000]);
        }
        m.refit(&cfg());
        m
    }

    fn retry_until_success(m: &mut KeyModel, recovery: u64, schedule: &[u64]) {
        let mut prev = 0;
        for &x in schedule {
            let ok = x >= recovery;
            m.observe(prev, x, ok, &cfg());
            if ok {
                break;
            }
            prev = x;
        }
    }

    #[test]
    fn plans_the_first_retry_inside_the_recovery_window() {
        let m = payment_model(60);
        let plan = m.plan(0, 2).unwrap();
        assert!((7_000..=12_500).contains(&plan.delay_ms), "{plan:?}");
        assert!(plan.confidence >= 0.7, "{plan:?}");
        // After failing at 11 s, the next try is soon, not another full wait.
        let later = m.plan(11_000, 1).unwrap();
        assert!(later.delay_ms <= 3_000, "{later:?}");
        let fit = m.fit().unwrap();
        assert_eq!(m.bucket_counts(1), (0, 60), "every retry at 2 s failed");
        assert!(fit.cdf(bin_of(5_000)) < 0.05 && fit.cdf(bin_of(12_000)) > 0.95, "{:?}", fit.curve());
    }

    #[test]
    fn unexplored_later_times_look_worth_a_try() {
        // Only early failures seen (a schedule that gives up too soon): the plan waits
        // past them rather than repeating what failed.
        let mut m = KeyModel::default();
        for i in 0..40 {
            m.observe(0, 2_000 + i, false, &cfg());
            m.observe(2_000 + i, 6_000 + i, false, &cfg());
        }
        let plan = m.plan(0, 2).unwrap();
        assert!(plan.delay_ms > 6_000, "{plan:?}");
    }

    #[test]
    fn old_evidence_fades() {
        let mut m = payment_model(60);
        // Recovery now takes 30–40 s.
        for i in 0..400u64 {
            retry_until_success(&mut m, 30_000 + (i * 7_919) % 10_000, &[10_000, 25_000, 35_000, 45_000]);
        }
        m.refit(&cfg());
        let plan = m.plan(0, 2).unwrap();
        assert!(plan.delay_ms >= 25_000, "{plan:?}");
    }

    /// One job retried by the model's own plan (the rules' 2 s doubling until it has
    /// one), as the engine does: the model learns from the retries it chose, and one
    /// planned retry in 32 is brought forward to 40–100 % of its delay (exploration).
    fn follow_plan(m: &mut KeyModel, recovery: u64) {
        let mut elapsed = 0;
        for attempt in 1..=5u32 {
            let explore =
                (m.samples() % 32 == 7).then(|| 0.4 + 0.6 * ((m.samples() * 7_919) % 100) as f64 / 100.0);
            let delay = m
                .plan(elapsed, 6 - attempt)
                .map_or(2_000 << (attempt - 1), |p| (p.delay_ms as f64 * explore.unwrap_or(1.0)) as u64);
            let x = elapsed + delay;
            let ok = x >= recovery;
            m.observe(elapsed, x, ok, &cfg());
            if ok {
                return;
            }
            elapsed = x;
        }
    }

    #[test]
    fn recovery_earlier_than_the_first_retries_is_found() {
        // Jobs recover in 2–4 s; the rules retry at 2 s (fails) then 6 s (succeeds), so
        // every first success only says "between 2 and 6 s". Spreading part of each such
        // recovery over its interval lets the plan move inside it instead of repeating 6 s.
        let mut m = KeyModel::default();
        for i in 0..400u64 {
            follow_plan(&mut m, 2_000 + (i * 7_919) % 2_000);
        }
        let plan = m.plan(0, 3).unwrap();
        assert!(plan.delay_ms <= 4_500, "{plan:?}");
    }

    #[test]
    fn a_curve_that_keeps_mispredicting_fades_faster_than_the_half_life() {
        let mut m = KeyModel::default();
        for i in 0..400u64 {
            follow_plan(&mut m, 2_000 + (i * 7_919) % 2_000);
        }
        assert!(m.surprise.abs() < DRIFT_SURPRISE, "settled: {}", m.surprise);
        // Recovery now takes 10–20 s: the planned retries keep failing, and the weight
        // of new evidence grows faster than the half-life alone would make it.
        let (weight, samples) = (m.weight, m.samples);
        for i in 0..40u64 {
            follow_plan(&mut m, 10_000 + (i * 7_919) % 10_000);
        }
        let plain = 2f32.powf((m.samples - samples) as f32 / cfg().half_life_samples as f32);
        assert!(m.surprise < -DRIFT_SURPRISE, "{}", m.surprise);
        assert!(m.weight / weight > 2.0 * plain, "{} vs {plain}", m.weight / weight);
    }

    #[test]
    fn a_model_survives_encoding_and_rejects_other_bytes() {
        let m = payment_model(60);
        let back = KeyModel::decode(&m.encode(), &cfg()).unwrap();
        assert_eq!(back.encode(), m.encode());
        assert_eq!(back.plan(0, 2), m.plan(0, 2), "the same fit, so the same plan");
        assert!(KeyModel::decode(&m.encode()[1..], &cfg()).is_none());
        let mut bad = m.encode();
        bad[0] = 99;
        assert!(KeyModel::decode(&bad, &cfg()).is_none());
        for scope in [Scope::Key, Scope::Tenant("a:b"), Scope::Hour(7), Scope::Degraded] {
            assert_eq!(Scope::parse(&scope.to_string()), Some(scope));
        }
        assert_eq!(Scope::parse("hour:24"), None);
    }

    #[test]
    fn key_count_is_capped_and_evictions_counted() {
        let learner = Learner::new(32);
        for i in 0..1_000 {
            learner.update(&format!("job{i}"), "timeout", Scope::Key, |m| m.observe(0, 1_000, true, &cfg()));
        }
        assert!(learner.len() <= 32 + SHARDS);
        assert!(learner.evictions() >= 1_000 - 48);
        assert!(learner.with("job999", "timeout", Scope::Key, |m| m.samples()).is_some(), "recent key kept");
        assert!(learner.with("job0", "timeout", Scope::Key, |m| m.samples()).is_none(), "old key evicted");
        assert!(
            learner.with("job999", "timeout", Scope::Tenant("a"), |m| m.samples()).is_none(),
            "scopes are apart"
        );
    }
}

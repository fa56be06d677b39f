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

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;
use serde::{Deserialize, Serialize};

/// Lower bounds of the API document's delay buckets, in ms; the last is open-ended.
pub const BUCKET_BOUNDS_MS: [u64; BUCKETS] = [0, 1_000, 5_000, 15_000, 30_000, 60_000, 300_000, 900_000];
pub const BUCKETS: usize = 8;
pub const BUCKET_LABELS: [&str; BUCKETS] =
    ["0-1s", "1-5s", "5-15s", "15-30s", "30-60s", "1-5m", "5-15m", "15m+"];

/// Fine grid of the recovery curve.
pub const BINS: usize = 48;
/// Upper edge of each fine bin, ms: 100 ms growing by 25 % per bin (the last is ~1 h).
pub const BIN_EDGES_MS: [u64; BINS] = bin_edges();
/// The share of an interval-censored recovery spread evenly over its interval.
const INTERVAL_SPREAD: f32 = 0.1;
/// Outcomes averaged in the surprise (about this many recent ones).
const SURPRISE_SPAN: f32 = 16.0;
/// Mean |outcome − prediction| beyond which the curve is taken to be stale…
const DRIFT_SURPRISE: f32 = 0.15;
/// …and old evidence fades this many times faster.
const DRIFT_SPEEDUP: f32 = 8.0;
const PRIOR: f32 = 0.5;
/// Share of still-failing jobs assumed to recover in each unexplored bin past the data.
pub const EXPLORE_SHARE: f32 = 0.2;
/// The least a lost job costs the plan, ms.
pub const MIN_LOST_COST_MS: f64 = 120_000.0;
/// Plans are made for 1, 2 and 3+ retries left: the last retry is placed to catch the
/// slow tail, earlier ones to catch the bulk.
pub const PLAN_DEPTH: usize = 3;
const SHARDS: usize = 16;
/// Layout of [`KeyModel::encode`]: a version byte, 4 × 48 + 1 + 4 × 8 four-byte counts,
/// then samples, since_fit, reset_at_ms and surprise (8 + 4 + 8 + 4 bytes).
const ENCODING_VERSION: u8 = 2;
const ENCODED_LEN: usize = 1 + 4 * (4 * BINS + 1 + 4 * BUCKETS) + 24;

const fn bin_edges() -> [u64; BINS] {
    let mut edges = [0u64; BINS];
    let mut edge = 100u64;
    let mut i = 0;
    while i < BINS {
        edges[i] = edge;
        edge = (edge * 5).div_ceil(4);
        i += 1;
    }
    edges
}

/// The fine bin holding clock value `x_ms` (bin `i` covers `(edge[i-1], edge[i]]`).
pub fn bin_of(x_ms: u64) -> usize {
    BIN_EDGES_MS.partition_point(|&edge| edge < x_ms).min(BINS - 1)
}

pub fn bucket_of(x_ms: u64) -> usize {
    BUCKET_BOUNDS_MS.iter().rposition(|&lo| x_ms >= lo).unwrap_or(0)
}

/// Tuning of the Bayesian tier: the config's `bayesian` section (the API document's
/// sample thresholds by default), with the strategy's `bayesian_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BayesConfig {
    /// A plan earlier than the rules needs this confidence: the strategy's
    /// `bayesian_threshold` (set by [`Strategy::bayes`](crate::Strategy::bayes); not a
    /// field of the `bayesian` section).
    #[serde(skip)]
    pub threshold: f64,
    pub min_samples: u32,
    pub refit_every: u32,
    pub full_confidence_samples: u32,
    /// Evidence halves in weight after this many newer outcomes of a key (drift).
    pub half_life_samples: u32,
    /// Cost of one retry as a fraction of the key's median recovery time (load vs latency)…
    pub retry_cost: f64,
    /// …and at least this many ms.
    pub min_retry_cost_ms: u64,
    /// Cost of losing a job when attempts run out, in median recovery times.
    pub lost_job_cost: f64,
    /// Share of learned retries moved earlier (to 40–100 % of the planned delay) to keep
    /// learning how soon jobs recover: a curve only knows the times somebody tried.
    pub explore_rate: f64,
    /// Learn each tenant's recovery apart, so a noisy tenant cannot slow quiet ones.
    pub tenant_scopes: bool,
    /// Learn recovery per hour of day (maintenance windows).
    pub hour_scopes: bool,
    /// Learn recovery apart for failures that begin while the downstream is degraded
    /// (an outage, a maintenance window) and while it is healthy (a blip).
    pub state_scopes: bool,
    /// Outcomes a tenant or hour view needs before it is preferred to the whole key.
    pub scope_min_samples: u32,
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig {
            threshold: 0.70,
            min_samples: 10,
            refit_every: 20,
            full_confidence_samples: 50,
            half_life_samples: 400,
            retry_cost: 0.25,
            min_retry_cost_ms: 250,
            lost_job_cost: 10.0,
            explore_rate: 0.03,
            tenant_scopes: true,
            hour_scopes: false,
            state_scopes: true,
            scope_min_samples: 20,
        }
    }
}

/// A snapshot of the learned recovery curve and the plan derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// `F(edge[i])`: probability that a failed job has recovered by the bin's upper edge.
    recovered: [u16; BINS],
    /// For a job that failed inside bin `i` with `k + 1` retries left: the bin of the next retry.
    pub next: [[u8; BINS]; PLAN_DEPTH],
    /// When to retry within each bin (ms): where successes landed, else its upper edge.
    pub at_ms: [u32; BINS],
    /// Evidence weight (decayed sample count).
    pub weight: f32,
    /// Confidence of each API bucket (from recent outcomes).
    pub bucket_confidence: [f32; BUCKETS],
    pub samples: u64,
}

/// What the tier plans for a job that failed at `elapsed_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub delay_ms: u64,
    /// Probability that the retry succeeds, given the job has not recovered yet.
    pub p_success: f64,
    /// `F` at the retry time: share of failed jobs recovered by then.
    pub recovered_by: f64,
    pub confidence: f64,
    /// The retry after this one, should it fail (clock value), if any.
    pub then_at_ms: Option<u64>,
    pub samples: u64,
}

/// Fixed-size learning state of one key (about 1 KiB with a fit, whatever the traffic).
#[derive(Debug, Clone)]
pub struct KeyModel {
    ok: [f32; BINS],
    /// Weighted sum of where successes landed in each bin (seconds), to aim inside it.
    ok_at: [f32; BINS],
    /// Weighted number of jobs known unrecovered while passing through each bin…
    at_risk: [f32; BINS],
    /// …and of those that recovered in it (spread over their interval).
    events: [f32; BINS],
    /// Weight of the next observation; grows so older ones fade (renormalised).
    weight: f32,
    bucket_ok: [u32; BUCKETS],
    bucket_fail: [u32; BUCKETS],
    /// The same, fading like the rest of the evidence (for confidence).
    recent_ok: [f32; BUCKETS],
    recent_fail: [f32; BUCKETS],
    samples: u64,
    since_fit: u32,
    /// Recent outcomes minus what the curve predicted for them (a moving average): far
    /// from 0, the downstream changed and old evidence should fade faster.
    surprise: f32,
    fit: Option<Box<Fit>>,
    /// When the key's rate limit resets next, as narrowed by every job's evidence
    /// (only its latest moment is kept by [`KeyModel::encode`]).
    pub reset: crate::reset::Reset,
}

impl Fit {
    /// `F` at the upper edge of bin `i` (kept in 16-bit fixed point: 1/65535 is plenty).
    pub fn cdf(&self, i: usize) -> f32 {
        f32::from(self.recovered[i.min(BINS - 1)]) / f32::from(u16::MAX)
    }

    pub fn curve(&self) -> [f32; BINS] {
        std::array::from_fn(|i| self.cdf(i))
    }
}

impl Default for KeyModel {
    fn default() -> Self {
        KeyModel {
            ok: [0.0; BINS],
            ok_at: [0.0; BINS],
            at_risk: [0.0; BINS],
            events: [0.0; BINS],
            weight: 1.0,
            bucket_ok: [0; BUCKETS],
            bucket_fail: [0; BUCKETS],
            recent_ok: [0.0; BUCKETS],
            recent_fail: [0.0; BUCKETS],
            samples: 0,
            since_fit: 0,
            surprise: 0.0,
            fit: None,
            reset: crate::reset::Reset::default(),
        }
    }
}

impl KeyModel {
    /// Learn one retry outcome at clock value `x_ms`, of a job last known unrecovered at
    /// `prev_ms` (its previous failure; 0 for the first retry). Returns whether it refit.
    pub fn observe(&mut self, prev_ms: u64, x_ms: u64, success: bool, cfg: &BayesConfig) -> bool {
        let (bin, bucket) = (bin_of(x_ms), bucket_of(x_ms));
        let first = if prev_ms == 0 { 0 } else { (bin_of(prev_ms) + 1).min(bin) };
        if let Some(fit) = self.fit.as_deref() {
            let before = if first == 0 { 0.0 } else { fit.cdf(first - 1) };
            let predicted = (fit.cdf(bin) - before) / (1.0 - before).max(1e-6);
            let outcome = if success { 1.0 } else { 0.0 };
            self.surprise += (outcome - predicted.clamp(0.0, 1.0) - self.surprise) / SURPRISE_SPAN;
        }
        if success {
            self.ok[bin] += self.weight;
            self.ok_at[bin] += self.weight * (x_ms as f32 / 1_000.0);
            self.bucket_ok[bucket] = self.bucket_ok[bucket].saturating_add(1);
            self.recent_ok[bucket] += self.weight;
        } else {
            self.bucket_fail[bucket] = self.bucket_fail[bucket].saturating_add(1);
            self.recent_fail[bucket] += self.weight;
        }
        // The job was at risk of recovering in every bin from its last failure to now. A
        // success says it recovered somewhere in that interval: spread the recovery over
        // the interval by the current curve (a streaming step of Turnbull's
        // self-consistency for interval-censored data), and count the job at risk in each
        // bin with the probability it had not yet recovered there.
        let mut share = [0f32; BINS];
        match self.fit.as_deref().filter(|_| success) {
            Some(fit) => {
                for (i, slot) in share.iter_mut().enumerate().take(bin + 1).skip(first) {
                    *slot = fit.cdf(i) - if i == 0 { 0.0 } else { fit.cdf(i - 1) };
                }
                let total: f32 = share[first..=bin].iter().sum();
                if total > 1e-6 {
                    share[first..=bin].iter_mut().for_each(|m| *m /= total);
                } else {
                    share[bin] = 1.0;
                }
            }
            None => share[bin] = 1.0,
        }
        // Inside one interval the data cannot tell where the recovery happened, and the
        // curve learned so far came from the same intervals: following it alone keeps
        // the mass wherever the first fit put it (at the retry times of the rules). A
        // share spread evenly over the interval keeps every point of it in play.
        if success && bin > first {
            let even = INTERVAL_SPREAD / (bin + 1 - first) as f32;
            share[first..=bin].iter_mut().for_each(|m| *m = *m * (1.0 - INTERVAL_SPREAD) + even);
        }
        let mut still_failing = 1.0f32;
        let bins =
            self.at_risk[first..=bin].iter_mut().zip(&mut self.events[first..=bin]).zip(&share[first..=bin]);
        for ((risk, events), &recovered_here) in bins {
            *risk += self.weight * if success { still_failing } else { 1.0 };
            if success {
                *events += self.weight * recovered_here;
                still_failing -= recovered_here;
            }
        }
        // Instead of shrinking every old count, grow the next observation's weight.
        // A curve that keeps mispredicting describes a downstream that is gone: then
        // evidence fades DRIFT_SPEEDUP times faster until the predictions agree again.
        let half_life = if self.surprise.abs() > DRIFT_SURPRISE {
            (cfg.half_life_samples as f32 / DRIFT_SPEEDUP).max(1.0)
        } else {
            cfg.half_life_samples.max(1) as f32
        };
        self.weight *= 2f32.powf(1.0 / half_life);
        if self.weight > 1e6 {
            let shrink = 1.0 / self.weight;
            self.ok
                .iter_mut()
                .chain(&mut self.recent_ok)
                .chain(&mut self.recent_fail)
                .chain(&mut self.ok_at)
                .chain(&mut self.at_risk)
                .chain(&mut self.events)
                .for_each(|c| *c *= shrink);
            self.weight = 1.0;
        }
        self.samples += 1;
        self.since_fit = self.since_fit.saturating_add(1);
        let due = match self.fit {
            None => self.samples >= u64::from(cfg.min_samples),
            Some(_) => self.since_fit >= cfg.refit_every,
        };
        if due {
            self.refit(cfg);
        }
        due
    }

    /// Recompute the recovery curve and the plan now (the API's `bayesian/update`).
    pub fn refit(&mut self, cfg: &BayesConfig) {
        self.since_fit = 0;
        if self.samples < u64::from(cfg.min_samples) {
            self.fit = None;
            return;
        }
        // Evidence in units of "recent samples".
        let scale = 1.0 / self.weight.max(f32::MIN_POSITIVE);
        let scaled = |counts: &[f32; BINS]| counts.map(|c| c * scale);
        let weight = (self.recent_ok.iter().sum::<f32>() + self.recent_fail.iter().sum::<f32>()) * scale;
        let cdf = recovery_curve(&scaled(&self.events), &scaled(&self.at_risk));
        let mut at_ms = BIN_EDGES_MS.map(|edge| edge.min(u64::from(u32::MAX)) as u32);
        for (i, at) in at_ms.iter_mut().enumerate() {
            if self.ok[i] > 0.0 {
                let landed = (f64::from(self.ok_at[i] / self.ok[i]) * 1_000.0) as u32;
                let lower = if i == 0 { 0 } else { BIN_EDGES_MS[i - 1] as u32 + 1 };
                *at = landed.clamp(lower, BIN_EDGES_MS[i] as u32);
            }
        }
        // Re-plan only when the curve or the retry points moved: the plan is a function of
        // both, and a settled key's refits then cost a few hundred instructions.
        let moved = self.fit.as_deref().is_none_or(|old| {
            old.curve().iter().zip(&cdf).any(|(a, b)| (a - b).abs() > 0.01)
                || old.at_ms.iter().zip(&at_ms).any(|(&a, &b)| a.abs_diff(b) * 50 > a.max(1))
        });
        let next = match self.fit.as_deref() {
            Some(old) if !moved => old.next,
            _ => plan_table(&cdf, &at_ms, cfg),
        };
        let penalty = (f64::from(weight) / f64::from(cfg.full_confidence_samples.max(1))).min(1.0).sqrt();
        let mut bucket_confidence = [0f32; BUCKETS];
        for (b, conf) in bucket_confidence.iter_mut().enumerate() {
            let (s, f) = (f64::from(self.recent_ok[b] * scale), f64::from(self.recent_fail[b] * scale));
            *conf = beta_summary(s, f, penalty).1 as f32;
        }
        self.fit = Some(Box::new(Fit {
            recovered: cdf.map(|f| (f.clamp(0.0, 1.0) * f32::from(u16::MAX)).round() as u16),
            next,
            at_ms,
            weight,
            bucket_confidence,
            samples: self.samples,
        }));
    }

    pub fn fit(&self) -> Option<&Fit> {
        self.fit.as_deref()
    }

    /// The learning state as bytes (the fit is not kept: [`KeyModel::decode`] refits),
    /// for stores that keep learned statistics across restarts.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.push(ENCODING_VERSION);
        for counts in [&self.ok, &self.ok_at, &self.at_risk, &self.events] {
            counts.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
        }
        out.extend_from_slice(&self.weight.to_le_bytes());
        for counts in [&self.bucket_ok, &self.bucket_fail] {
            counts.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
        }
        for counts in [&self.recent_ok, &self.recent_fail] {
            counts.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
        }
        out.extend_from_slice(&self.samples.to_le_bytes());
        out.extend_from_slice(&self.since_fit.to_le_bytes());
        out.extend_from_slice(&self.reset.at_ms.to_le_bytes());
        out.extend_from_slice(&self.surprise.to_le_bytes());
        out
    }

    /// Read what [`KeyModel::encode`] wrote and refit; `None` for bytes of another layout.
    pub fn decode(bytes: &[u8], cfg: &BayesConfig) -> Option<KeyModel> {
        if bytes.len() != ENCODED_LEN || bytes[0] != ENCODING_VERSION {
            return None;
        }
        let mut rest = &bytes[1..];
        let mut take4 = || {
            let (head, tail) = rest.split_at(4);
            rest = tail;
            [head[0], head[1], head[2], head[3]]
        };
        let mut m = KeyModel::default();
        for counts in [&mut m.ok, &mut m.ok_at, &mut m.at_risk, &mut m.events] {
            counts.iter_mut().for_each(|c| *c = f32::from_le_bytes(take4()));
        }
        m.weight = f32::from_le_bytes(take4());
        for counts in [&mut m.bucket_ok, &mut m.bucket_fail] {
            counts.iter_mut().for_each(|c| *c = u32::from_le_bytes(take4()));
        }
        for counts in [&mut m.recent_ok, &mut m.recent_fail] {
            counts.iter_mut().for_each(|c| *c = f32::from_le_bytes(take4()));
        }
        let samples = u64::from(u32::from_le_bytes(take4())) | u64::from(u32::from_le_bytes(take4())) << 32;
        let since_fit = u32::from_le_bytes(take4());
        let reset_at = u64::from(u32::from_le_bytes(take4())) | u64::from(u32::from_le_bytes(take4())) << 32;
        let surprise = f32::from_le_bytes(take4());
        let finite = m.ok.iter().chain(&m.ok_at).chain(&m.at_risk).chain(&m.events).all(|c| c.is_finite());
        if !(finite && m.weight.is_finite() && m.weight > 0.0) {
            return None;
        }
        m.samples = samples;
        m.reset = crate::reset::Reset::at(reset_at);
        m.surprise = if surprise.is_finite() { surprise } else { 0.0 };
        m.refit(cfg);
        m.since_fit = since_fit;
        Some(m)
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Raw (not decayed) outcomes per API bucket.
    pub fn bucket_counts(&self, b: usize) -> (u64, u64) {
        (u64::from(self.bucket_ok[b]), u64::from(self.bucket_fail[b]))
    }

    /// The next retry for a job that failed `elapsed_ms` after its first failure and has
    /// `retries_left` retries (at least 1) before its attempts run out.
    pub fn plan(&self, elapsed_ms: u64, retries_left: u32) -> Option<Plan> {
        let fit = self.fit.as_deref()?;
        let depth = (retries_left.clamp(1, PLAN_DEPTH as u32) - 1) as usize;
        let here = bin_of(elapsed_ms);
        let target = usize::from(fit.next[depth][here]).max(here);
        let mut at = u64::from(fit.at_ms[target]);
        if at <= elapsed_ms {
            // Already past where this bin's successes land: go one bin on.
            at = u64::from(fit.at_ms[(target + 1).min(BINS - 1)]).max(elapsed_ms + 100);
        }
        let f_now = f64::from(if here == 0 { 0.0 } else { fit.cdf(here - 1) });
        let f_at = f64::from(fit.cdf(bin_of(at)));
        let survive = (1.0 - f_now).max(1e-9);
        let then_at_ms =
            (depth > 0).then(|| usize::from(fit.next[depth - 1][(bin_of(at) + 1).min(BINS - 1)]));
        Some(Plan {
            delay_ms: at - elapsed_ms,
            p_success: ((f_at - f_now) / survive).clamp(0.0, 1.0),
            recovered_by: f_at,
            confidence: f64::from(fit.bucket_confidence[bucket_of(at)]),
            then_at_ms: then_at_ms.filter(|&b| b > bin_of(at)).map(|b| u64::from(fit.at_ms[b])),
            samples: fit.samples,
        })
    }
}

/// Success probability and confidence of one API bucket from raw counts, for `stats`.
pub fn bucket_summary(successes: u64, failures: u64, key_samples: u64, cfg: &BayesConfig) -> (f64, f64) {
    let penalty = (key_samples as f64 / f64::from(cfg.full_confidence_samples.max(1))).min(1.0).sqrt();
    beta_summary(successes as f64, failures as f64, penalty)
}

/// Posterior mean and confidence of a Beta(1 + s, 1 + f).
fn beta_summary(s: f64, f: f64, penalty: f64) -> (f64, f64) {
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
fn recovery_curve(events: &[f32; BINS], at_risk: &[f32; BINS]) -> [f32; BINS] {
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
    // MIN_LOST_COST_MS, so a key that recovered fast until now does not spend its last
    // attempts in quick hops when recovery suddenly slows.
    let lost = (cfg.lost_job_cost * median_ms).max(MIN_LOST_COST_MS).max(retry);
    (retry, lost)
}

/// For each bin a job may have failed in and each number of retries left, the bin of
/// the retry that minimises expected time to success plus retry costs plus the cost of
/// losing the job, by backward induction over the grid.
fn plan_table(cdf: &[f32; BINS], at_ms: &[u32; BINS], cfg: &BayesConfig) -> [[u8; BINS]; PLAN_DEPTH] {
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

/// A narrower view of a key: everything, one tenant, or one hour of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Key,
    Tenant(&'a str),
    Hour(u8),
    /// Failures that began while the downstream was degraded (the everyday ones are `Key`).
    Degraded,
}

impl<'a> Scope<'a> {
    fn hash_into(self, h: &mut impl Hasher) {
        match self {
            Scope::Key => h.write_u8(0),
            Scope::Tenant(t) => {
                h.write_u8(1);
                h.write(t.as_bytes());
            }
            Scope::Hour(hour) => {
                h.write_u8(2);
                h.write_u8(hour);
            }
            Scope::Degraded => h.write_u8(3),
        }
    }

    /// Whether a stored scope label is this scope (compared without allocating).
    fn is(self, stored: &str) -> bool {
        match self {
            Scope::Key => stored.is_empty(),
            Scope::Tenant(t) => stored.strip_prefix("tenant:") == Some(t),
            Scope::Hour(hour) => stored.strip_prefix("hour:").and_then(|h| h.parse().ok()) == Some(hour),
            Scope::Degraded => stored == "state:degraded",
        }
    }

    /// The scope a stored label names (the inverse of `Display`); `None` for an unknown label.
    pub fn parse(stored: &'a str) -> Option<Scope<'a>> {
        match stored {
            "" => Some(Scope::Key),
            "state:degraded" => Some(Scope::Degraded),
            _ => {
                if let Some(t) = stored.strip_prefix("tenant:") {
                    Some(Scope::Tenant(t))
                } else {
                    stored
                        .strip_prefix("hour:")
                        .and_then(|h| h.parse().ok())
                        .filter(|h| *h < 24)
                        .map(Scope::Hour)
                }
            }
        }
    }

    /// How a rationale names it: "", " for tenant acme", " for failures while …".
    pub fn describe(self) -> Described<'a> {
        Described(self)
    }
}

/// A scope as a rationale phrase, written without allocating.
pub struct Described<'a>(Scope<'a>);

impl crate::say::Say for Described<'_> {
    fn say(&self, out: &mut String) {
        match self.0 {
            Scope::Key => {}
            Scope::Tenant(t) => crate::say!(out, " for tenant ", t),
            Scope::Hour(h) => crate::say!(out, " for hour ", u32::from(h), " UTC"),
            Scope::Degraded => out.push_str(" for failures while the downstream is degraded"),
        }
    }
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Key => Ok(()),
            Scope::Tenant(t) => write!(f, "tenant:{t}"),
            Scope::Hour(h) => write!(f, "hour:{h}"),
            Scope::Degraded => f.write_str("state:degraded"),
        }
    }
}

/// One learned key: the labels (kept to verify hash hits and to report) and its model.
#[derive(Debug, Clone)]
pub struct Entry {
    pub job_type: Box<str>,
    pub error_class: Box<str>,
    /// `""` for the key itself, `tenant:<t>` or `hour:<h>` for a narrower view of it.
    pub scope: Box<str>,
    pub model: KeyModel,
}

/// All learned keys, sharded to keep lock hold times short, each shard an LRU so the
/// number of keys is capped whatever labels callers send.
pub struct Learner {
    /// Grown on demand (an idle engine holds almost nothing), capped at `per_shard`.
    shards: Vec<Mutex<LruCache<u64, Entry>>>,
    per_shard: usize,
    /// Seeded per engine (foldhash: fast, and keyed so hostile labels cannot aim for collisions).
    hasher: foldhash::fast::RandomState,
    evictions: AtomicU64,
}

impl Learner {
    pub fn new(max_keys: usize) -> Self {
        Learner {
            shards: (0..SHARDS).map(|_| Mutex::new(LruCache::unbounded())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: foldhash::fast::RandomState::default(),
            evictions: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(&self, job_type: &str, error_class: &str, scope: Scope<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(job_type.as_bytes());
        h.write_u8(0xff);
        h.write(error_class.as_bytes());
        scope.hash_into(&mut h);
        h.finish()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, LruCache<u64, Entry>> {
        let m = &self.shards[(key as usize) % SHARDS];
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is(e: &Entry, job_type: &str, error_class: &str, scope: Scope<'_>) -> bool {
        &*e.job_type == job_type && &*e.error_class == error_class && scope.is(&e.scope)
    }

    /// Read a key without creating it (deciding must not grow memory).
    pub fn with<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&KeyModel) -> R,
    ) -> Option<R> {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        match shard.get(&key) {
            Some(e) if Self::is(e, job_type, error_class, scope) => Some(f(&e.model)),
            _ => None,
        }
    }

    /// Change an existing key; `None` when it is not learned.
    pub fn with_mut<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&mut KeyModel) -> R,
    ) -> Option<R> {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        match shard.get_mut(&key) {
            Some(e) if Self::is(e, job_type, error_class, scope) => Some(f(&mut e.model)),
            _ => None,
        }
    }

    /// Update a key, creating it (and evicting the least recently used) as needed.
    pub fn update<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&mut KeyModel) -> R,
    ) -> R {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        if let Some(e) = shard.get_mut(&key) {
            if Self::is(e, job_type, error_class, scope) {
                return f(&mut e.model);
            }
        }
        let mut entry = Entry {
            job_type: job_type.into(),
            error_class: error_class.into(),
            scope: scope.to_string().into(),
            model: KeyModel::default(),
        };
        let out = f(&mut entry.model);
        if shard.len() >= self.per_shard && !shard.contains(&key) {
            shard.pop_lru();
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        shard.push(key, entry);
        out
    }

    /// One key's learning state as bytes (for a store to persist), read under its lock.
    pub fn encoded(&self, job_type: &str, error_class: &str, scope: Scope<'_>) -> Option<Vec<u8>> {
        self.with(job_type, error_class, scope, KeyModel::encode)
    }

    /// Put a key's learning state back (from a store), replacing what was there.
    pub fn restore(&self, job_type: &str, error_class: &str, scope: Scope<'_>, model: KeyModel) {
        self.update(job_type, error_class, scope, |m| *m = model);
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.len()).unwrap_or(0)).sum()
    }
}

#[cfg(test)]
mod tests {
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

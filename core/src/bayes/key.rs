//! What the tier knows of one key: its outcomes on the grid, the fitted recovery curve
//! ([`Fit`]) and the plan read from it ([`Plan`]); fixed-size, encoded for the stores.

use super::config::BayesConfig;
use super::curve::{beta_summary, plan_table, recovery_curve, PLAN_DEPTH};
use super::grid::{bin_of, bucket_of, BINS, BIN_EDGES_MS, BUCKETS};

/// The share of an interval-censored recovery spread evenly over its interval.
const INTERVAL_SPREAD: f32 = 0.1;
/// Outcomes averaged in the surprise (about this many recent ones).
const SURPRISE_SPAN: f32 = 16.0;
/// Mean |outcome − prediction| beyond which the curve is taken to be stale…
pub(super) const DRIFT_SURPRISE: f32 = 0.15;
/// …and old evidence fades this many times faster.
const DRIFT_SPEEDUP: f32 = 8.0;
/// Layout of [`KeyModel::encode`]: a version byte, 4 × 48 + 1 + 4 × 8 four-byte counts,
/// then samples, since_fit, reset_at_ms and surprise (8 + 4 + 8 + 4 bytes).
const ENCODING_VERSION: u8 = 2;
const ENCODED_LEN: usize = 1 + 4 * (4 * BINS + 1 + 4 * BUCKETS) + 24;

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
    pub(super) weight: f32,
    bucket_ok: [u32; BUCKETS],
    bucket_fail: [u32; BUCKETS],
    /// The same, fading like the rest of the evidence (for confidence).
    recent_ok: [f32; BUCKETS],
    recent_fail: [f32; BUCKETS],
    pub(super) samples: u64,
    since_fit: u32,
    /// Recent outcomes minus what the curve predicted for them (a moving average): far
    /// from 0, the downstream changed and old evidence should fade faster.
    pub(super) surprise: f32,
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

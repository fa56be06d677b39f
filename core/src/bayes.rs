//! Bayesian tier: a Beta-Binomial success probability per delay bucket, per
//! (job_type, error_class).
//!
//! # Which clock the buckets index
//!
//! A bucket is indexed by the **time since the job's first failure** when the caller
//! supplies `since_first_failure_ms`, and by the **delay before the attempt**
//! (`delay_ms`, i.e. the time since the last failure) otherwise.
//!
//! Time since the first failure is the downstream's *recovery clock*: a payment API that
//! is back 6–12 s after an incident started is back 6–12 s after the job first failed,
//! whichever retry we are on. Indexing by it lets the engine say "the next retry should
//! land 9 s after the first failure", which is what beats a static schedule. The product
//! documents name the time since the last failure; with no `since_first_failure_ms` the
//! two clocks coincide for the first retry, and for later retries the delay clock is the
//! honest fallback (it is what the caller told us). Features and attempts use the same
//! rule, so a key is never fed one clock and asked with the other by a well-behaved
//! client.
//!
//! # When it answers
//!
//! A key has no model until it has [`BayesConfig::min_samples`] retry outcomes; the model
//! is refit every [`BayesConfig::refit_every`] new outcomes (decisions read the last
//! fit, so deciding costs one lookup). A bucket qualifies when its posterior mean
//! success probability and its confidence both reach `bayesian_threshold`; the engine
//! recommends the earliest qualifying bucket still ahead of the job, else the rules tier
//! answers.
//!
//! Confidence is `1 − width of the 90 % credible interval`, scaled by
//! `sqrt(min(1, samples / 50))` so that a key with few samples cannot sound sure.

use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

/// Lower bounds of the API document's delay buckets, in ms; the last is open-ended.
pub const BUCKET_BOUNDS_MS: [u64; BUCKETS] = [0, 1_000, 5_000, 15_000, 30_000, 60_000, 300_000, 900_000];
pub const BUCKETS: usize = 8;
pub const BUCKET_LABELS: [&str; BUCKETS] =
    ["0-1s", "1-5s", "5-15s", "15-30s", "30-60s", "1-5m", "5-15m", "15m+"];
/// Shortest recommended step, so a recommendation inside a bucket never means "now".
const MIN_STEP_MS: u64 = 100;
const SHARDS: usize = 16;

/// Tuning of the Bayesian tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesConfig {
    pub threshold: f64,
    pub min_samples: u32,
    pub refit_every: u32,
    pub full_confidence_samples: u32,
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig { threshold: 0.70, min_samples: 10, refit_every: 20, full_confidence_samples: 50 }
    }
}

pub fn bucket_of(x_ms: u64) -> usize {
    BUCKET_BOUNDS_MS.iter().rposition(|&lo| x_ms >= lo).unwrap_or(0)
}

fn bucket_end(b: usize) -> u64 {
    BUCKET_BOUNDS_MS.get(b + 1).copied().unwrap_or(u64::MAX)
}

/// A snapshot of the posterior, taken at each refit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub p: [f32; BUCKETS],
    pub confidence: [f32; BUCKETS],
    /// Where successes landed within each bucket (mean clock value), ms.
    pub target_ms: [u64; BUCKETS],
    pub samples: u64,
}

/// Fixed-size learning state of one key (≈ 300 bytes, whatever the traffic).
#[derive(Debug, Clone, Default)]
pub struct KeyModel {
    successes: [u32; BUCKETS],
    failures: [u32; BUCKETS],
    success_at_sum: [u64; BUCKETS],
    samples: u64,
    since_fit: u32,
    fit: Option<Fit>,
    /// Lifetime totals for stats.
    pub attempts: u64,
    pub attempt_successes: u64,
    pub delay_sum_ms: u64,
    pub last_ms: u64,
}

/// What the tier says about a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// Fewer than `min_samples` outcomes.
    NoModel {
        samples: u64,
    },
    /// A model, but no bucket ahead is both likely and confident enough.
    NotConfident {
        samples: u64,
        best: Option<(usize, f64, f64)>,
    },
    Recommend {
        delay_ms: u64,
        bucket: usize,
        p: f64,
        confidence: f64,
        samples: u64,
    },
}

impl KeyModel {
    /// Learn one retry outcome at clock value `x_ms`. Returns whether it refit.
    pub fn observe(&mut self, x_ms: u64, success: bool, cfg: &BayesConfig) -> bool {
        let b = bucket_of(x_ms);
        if success {
            self.successes[b] = self.successes[b].saturating_add(1);
            self.success_at_sum[b] = self.success_at_sum[b].saturating_add(x_ms);
        } else {
            self.failures[b] = self.failures[b].saturating_add(1);
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

    /// Recompute the posterior snapshot now (the API's `bayesian/update`).
    pub fn refit(&mut self, cfg: &BayesConfig) {
        self.since_fit = 0;
        if self.samples < u64::from(cfg.min_samples) {
            self.fit = None;
            return;
        }
        let penalty = (self.samples as f64 / f64::from(cfg.full_confidence_samples.max(1))).min(1.0).sqrt();
        let mut fit = Fit {
            p: [0.0; BUCKETS],
            confidence: [0.0; BUCKETS],
            target_ms: [0; BUCKETS],
            samples: self.samples,
        };
        #[allow(clippy::needless_range_loop)] // four parallel per-bucket arrays
        for b in 0..BUCKETS {
            let (s, f) = (f64::from(self.successes[b]), f64::from(self.failures[b]));
            let (alpha, beta) = (1.0 + s, 1.0 + f);
            let n = alpha + beta;
            let mean = alpha / n;
            let sd = (alpha * beta / (n * n * (n + 1.0))).sqrt();
            let width = 2.0 * 1.645 * sd;
            fit.p[b] = mean as f32;
            fit.confidence[b] = ((1.0 - width).clamp(0.0, 1.0) * penalty) as f32;
            fit.target_ms[b] = if self.successes[b] > 0 {
                self.success_at_sum[b] / u64::from(self.successes[b])
            } else {
                let end = bucket_end(b).min(BUCKET_BOUNDS_MS[b].saturating_mul(2).max(1_000));
                (BUCKET_BOUNDS_MS[b] + end) / 2
            };
        }
        self.fit = Some(fit);
    }

    pub fn fit(&self) -> Option<&Fit> {
        self.fit.as_ref()
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn bucket_counts(&self, b: usize) -> (u64, u64) {
        (u64::from(self.successes[b]), u64::from(self.failures[b]))
    }

    /// The earliest bucket ahead of `elapsed_ms` that is likely and confident enough.
    pub fn recommend(&self, elapsed_ms: u64, cfg: &BayesConfig) -> Answer {
        let Some(fit) = &self.fit else {
            return Answer::NoModel { samples: self.samples };
        };
        let mut best: Option<(usize, f64, f64)> = None;
        #[allow(clippy::needless_range_loop)] // bucket index is the answer
        for b in 0..BUCKETS {
            if bucket_end(b) <= elapsed_ms {
                continue;
            }
            let (p, conf) = (f64::from(fit.p[b]), f64::from(fit.confidence[b]));
            if p >= cfg.threshold && conf >= cfg.threshold {
                let target = fit.target_ms[b].max(BUCKET_BOUNDS_MS[b]);
                let delay_ms = target.saturating_sub(elapsed_ms).max(MIN_STEP_MS);
                return Answer::Recommend { delay_ms, bucket: b, p, confidence: conf, samples: fit.samples };
            }
            if best.is_none_or(|(_, bp, _)| p > bp) {
                best = Some((b, p, conf));
            }
        }
        Answer::NotConfident { samples: fit.samples, best }
    }

    /// Posterior mean at clock value `x_ms` (0.5 with no model): the success estimate
    /// reported when another tier chose the delay.
    pub fn success_at(&self, x_ms: u64) -> Option<f64> {
        self.fit.as_ref().map(|f| f64::from(f.p[bucket_of(x_ms)]))
    }
}

/// One learned key: the labels (kept to verify hash hits and to report) and its model.
#[derive(Debug, Clone)]
pub struct Entry {
    pub job_type: Box<str>,
    pub error_class: Box<str>,
    pub model: KeyModel,
}

/// All learned keys, sharded to keep lock hold times short, each shard an LRU so the
/// number of keys is capped whatever labels callers send.
pub struct Learner {
    shards: Vec<Mutex<LruCache<u64, Entry>>>,
    hasher: std::hash::RandomState,
    evictions: AtomicU64,
}

impl Learner {
    pub fn new(max_keys: usize) -> Self {
        let per_shard = NonZeroUsize::new(max_keys.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        Learner {
            shards: (0..SHARDS).map(|_| Mutex::new(LruCache::new(per_shard))).collect(),
            hasher: std::hash::RandomState::new(),
            evictions: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(&self, job_type: &str, error_class: &str) -> u64 {
        // Keyed (random per engine) so hostile labels cannot aim for collisions.
        let mut h = self.hasher.build_hasher();
        h.write(job_type.as_bytes());
        h.write_u8(0xff);
        h.write(error_class.as_bytes());
        h.finish()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, LruCache<u64, Entry>> {
        let m = &self.shards[(key as usize) % SHARDS];
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read a key without creating it (deciding must not grow memory).
    pub fn with<R>(&self, job_type: &str, error_class: &str, f: impl FnOnce(&KeyModel) -> R) -> Option<R> {
        let key = self.key(job_type, error_class);
        let mut shard = self.shard(key);
        match shard.get(&key) {
            Some(e) if &*e.job_type == job_type && &*e.error_class == error_class => Some(f(&e.model)),
            _ => None,
        }
    }

    /// Change an existing key; `None` when it is not learned.
    pub fn with_mut<R>(
        &self,
        job_type: &str,
        error_class: &str,
        f: impl FnOnce(&mut KeyModel) -> R,
    ) -> Option<R> {
        let key = self.key(job_type, error_class);
        let mut shard = self.shard(key);
        match shard.get_mut(&key) {
            Some(e) if &*e.job_type == job_type && &*e.error_class == error_class => Some(f(&mut e.model)),
            _ => None,
        }
    }

    /// Update a key, creating it (and evicting the least recently used) as needed.
    pub fn update<R>(&self, job_type: &str, error_class: &str, f: impl FnOnce(&mut KeyModel) -> R) -> R {
        let key = self.key(job_type, error_class);
        let mut shard = self.shard(key);
        if let Some(e) = shard.get_mut(&key) {
            if &*e.job_type == job_type && &*e.error_class == error_class {
                return f(&mut e.model);
            }
        }
        let mut entry =
            Entry { job_type: job_type.into(), error_class: error_class.into(), model: KeyModel::default() };
        let out = f(&mut entry.model);
        if let Some((old_key, _)) = shard.push(key, entry) {
            if old_key != key {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        out
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.len()).unwrap_or(0)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies of every key (for stats listings); not for hot paths.
    pub fn snapshot(&self) -> Vec<Entry> {
        let mut all = Vec::new();
        for s in &self.shards {
            let g = s.lock().unwrap_or_else(|p| p.into_inner());
            all.extend(g.iter().map(|(_, e)| e.clone()));
        }
        all.sort_by(|a, b| (&a.job_type, &a.error_class).cmp(&(&b.job_type, &b.error_class)));
        all
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
    fn no_model_below_ten_samples_and_refit_every_twenty() {
        let mut m = KeyModel::default();
        for i in 0..9 {
            assert!(!m.observe(8_000 + i, true, &cfg()));
        }
        assert_eq!(m.recommend(0, &cfg()), Answer::NoModel { samples: 9 });
        assert!(m.observe(8_000, true, &cfg()), "10th sample fits");
        let refits = (0..40).filter(|_| m.observe(8_000, true, &cfg())).count();
        assert_eq!(refits, 2, "then every 20 samples");
    }

    #[test]
    fn recommends_where_successes_land_once_confident() {
        let mut m = KeyModel::default();
        // Retries before 5 s fail; retries 6–12 s after the first failure succeed.
        for i in 0..30u64 {
            m.observe(2_000 + i * 50, false, &cfg());
            m.observe(6_000 + (i % 7) * 1_000, true, &cfg());
        }
        m.refit(&cfg());
        match m.recommend(0, &cfg()) {
            Answer::Recommend { bucket, delay_ms, p, confidence, .. } => {
                assert_eq!(bucket, 2);
                assert!((8_000..=10_000).contains(&delay_ms), "{delay_ms}");
                assert!(p > 0.9 && confidence >= 0.7, "{p} {confidence}");
            }
            other => panic!("expected a recommendation, got {other:?}"),
        }
        // Already 9 s in: the same bucket, a short step.
        match m.recommend(9_500, &cfg()) {
            Answer::Recommend { bucket: 2, delay_ms, .. } => assert_eq!(delay_ms, MIN_STEP_MS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn few_samples_are_not_confident() {
        let mut m = KeyModel::default();
        for _ in 0..12 {
            m.observe(3_000, true, &cfg());
        }
        assert!(matches!(m.recommend(0, &cfg()), Answer::NotConfident { best: Some((1, _, _)), .. }));
    }

    #[test]
    fn key_count_is_capped_and_evictions_counted() {
        let learner = Learner::new(32);
        for i in 0..1_000 {
            learner.update(&format!("job{i}"), "timeout", |m| m.observe(1_000, true, &cfg()));
        }
        assert!(learner.len() <= 32 + SHARDS);
        assert!(learner.evictions() >= 1_000 - 48);
        assert!(learner.with("job999", "timeout", |m| m.samples()).is_some(), "recent key kept");
        assert!(learner.with("job0", "timeout", |m| m.samples()).is_none(), "old key evicted");
    }
}

//! What was seen: windowed statistics and the learned buckets of a key, a refit on
//! demand, the sampled audit trail and the attempt history of a durable store.

use std::sync::atomic::Ordering;

use crate::api::{round3, BucketStats, Features, Stats};
use crate::bayes::{bucket_summary, Scope, BUCKETS, BUCKET_BOUNDS_MS, BUCKET_LABELS};
use crate::error::{Error, Result};
use crate::store::{AuditRecord, HistoryStore, OutcomeRecord};
use crate::time;

use super::Engine;

/// Default window of `stats`.
pub const DEFAULT_STATS_WINDOW_MS: u64 = 86_400_000;

impl Engine {
    /// What was seen for (job_type, error_class) over the last `window_ms` (default 24 h).
    pub fn stats(
        &self,
        job_type: &str,
        error_class: &str,
        window_ms: Option<u64>,
        now_ms: Option<u64>,
    ) -> Result<Stats> {
        Features::new(job_type, 1).with_error_class(error_class).validate()?;
        if window_ms == Some(0) {
            return Err(Error::invalid("window", "must be longer than 0"));
        }
        let now = now_ms.unwrap_or_else(time::now_ms);
        let start = now.saturating_sub(window_ms.unwrap_or(DEFAULT_STATS_WINDOW_MS));
        let s = self.settings();
        let t = self.history.totals(self.learner.key(job_type, error_class, Scope::Key), start, now);
        // The key's everyday view and its degraded-period view, merged by raw counts.
        let mut counts = [(0u64, 0u64); BUCKETS];
        let mut samples = 0u64;
        for scope in [Scope::Key, Scope::Degraded] {
            self.learner.with(job_type, error_class, scope, |m| {
                samples += m.samples();
                for (b, c) in counts.iter_mut().enumerate() {
                    let (ok, failed) = m.bucket_counts(b);
                    *c = (c.0 + ok, c.1 + failed);
                }
            });
        }
        let buckets = if samples == 0 {
            Vec::new()
        } else {
            counts
                .iter()
                .enumerate()
                .map(|(b, &(successes, failures))| {
                    let (p, confidence) = bucket_summary(successes, failures, samples, &s.bayes);
                    BucketStats {
                        label: BUCKET_LABELS[b].to_string(),
                        min_ms: BUCKET_BOUNDS_MS[b],
                        max_ms: BUCKET_BOUNDS_MS.get(b + 1).copied(),
                        successes,
                        failures,
                        success_probability: round3(p),
                        confidence: round3(confidence),
                    }
                })
                .collect()
        };
        Ok(Stats {
            job_type: job_type.to_string(),
            error_class: error_class.to_string(),
            total_attempts: t.attempts,
            successful_retries: t.successes,
            failed_retries: t.attempts - t.successes,
            avg_delay_ms: if t.attempts == 0 { 0.0 } else { t.delay_sum_ms as f64 / t.attempts as f64 },
            success_rate: if t.attempts == 0 { 0.0 } else { round3(t.successes as f64 / t.attempts as f64) },
            last_updated: t.last_ms.map(time::format_rfc3339),
            window_start: time::format_rfc3339(start),
            window_end: time::format_rfc3339(now),
            buckets,
        })
    }

    /// Refit the Bayesian model of one key now (the API's `bayesian/update`).
    pub fn refit(&self, job_type: &str, error_class: &str) -> Result<()> {
        let s = self.settings();
        let refitted = [Scope::Key, Scope::Degraded]
            .into_iter()
            .filter_map(|scope| self.learner.with_mut(job_type, error_class, scope, |m| m.refit(&s.bayes)))
            .count();
        if refitted == 0 {
            return Err(Error::NotFound { what: format!("learned key ({job_type}, {error_class})") });
        }
        self.metrics.refits.fetch_add(refitted as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The most recent sampled decisions (`data_collection.sample_rate`), newest first;
    /// empty with the memory store.
    pub fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        self.store.audit(limit)
    }

    /// Recorded outcomes at or after `since_ms`, oldest first (a durable store's
    /// attempt history: the ML tier's training data).
    pub fn outcomes(&self, since_ms: u64, limit: usize) -> Result<Vec<OutcomeRecord>> {
        self.store.outcomes(since_ms, limit)
    }
}

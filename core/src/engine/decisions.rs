//! `decide` and `preview`: the engine hands its state to the [`decide`](crate::decide)
//! pipeline, then counts, announces and audits what came out.

use std::sync::atomic::Ordering;

use crate::api::{Decision, Features, Preview, TimelineEntry};
use crate::backoff::{mix64, rand01};
use crate::decide::{evaluate, Mode, Settings, World};
use crate::error::{Error, Result};
use crate::store::AuditRecord;
use crate::time;

use super::Engine;

/// Most attempts a preview lays out.
pub const MAX_PREVIEW_ATTEMPTS: u32 = 100;

impl Engine {
    /// Should this failure be retried, and after how long?
    pub fn decide(&self, features: &Features, now_ms: Option<u64>) -> Result<Decision> {
        features.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let settings = self.settings();
        let bits = mix64(self.seed ^ mix64(self.counter.fetch_add(1, Ordering::Relaxed)));
        let mut decision = evaluate(&self.world(&settings, now, bits, Mode::Live), features);
        if let Some(p) = &self.persist {
            if p.queue.stats.degraded.load(Ordering::Relaxed) {
                decision
                    .rationale
                    .push_str(" (the store is unreachable: decided from this engine's own state)");
            }
        }
        self.count(&decision);
        self.emit_decision(features, &decision, now);
        if (self.audit.is_some() || self.persist.is_some())
            && rand01(mix64(bits ^ 0xa5a5)) < settings.strategy.data_collection.sample_rate
        {
            if let Some(hook) = &self.audit {
                hook(features, &decision, now);
            }
            let cap = settings.strategy.data_collection.max_audit_per_sec;
            if let Some(p) = self.persist.as_ref().filter(|p| p.queue.admit_audit(cap)) {
                p.queue.push_audit(AuditRecord {
                    at_ms: now,
                    features: features.clone(),
                    decision: decision.clone(),
                });
            }
        }
        Ok(decision)
    }

    /// The schedule the engine would follow from this failure if every retry failed.
    /// Changes no state.
    pub fn preview(&self, features: &Features, max_attempts: u32, now_ms: Option<u64>) -> Result<Preview> {
        features.validate()?;
        if max_attempts == 0 || max_attempts > MAX_PREVIEW_ATTEMPTS {
            return Err(Error::invalid(
                "max_attempts",
                format!("must be 1–{MAX_PREVIEW_ATTEMPTS}, got {max_attempts}"),
            ));
        }
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let identity = features.job_id.as_deref().unwrap_or(&features.job_type);
        let base_bits = mix64(self.seed ^ std::hash::BuildHasher::hash_one(&FixedState, identity));
        let mut f = features.clone();
        let first_elapsed = f.since_first_failure_ms.unwrap_or(0);
        let (mut offset, mut recommendations, mut timeline) = (0u64, Vec::new(), Vec::new());
        while f.attempt_number < max_attempts {
            let bits = mix64(base_bits ^ u64::from(f.attempt_number));
            let d = evaluate(&self.world(&s, now.saturating_add(offset), bits, Mode::Preview), &f);
            if d.should_retry {
                offset = offset.saturating_add(d.delay_ms);
                timeline.push(TimelineEntry {
                    attempt_number: f.attempt_number + 1,
                    scheduled_time: time::format_rfc3339(now.saturating_add(offset)),
                    estimated_success: d.estimated_success,
                    delay_ms: d.delay_ms,
                    method: d.method,
                    rationale: d.rationale.clone(),
                    confidence: d.confidence,
                });
            }
            let stop = !d.should_retry;
            f.since_last_failure_ms = Some(d.delay_ms);
            f.since_last_failure = None;
            f.since_first_failure_ms = Some(first_elapsed.saturating_add(offset));
            f.retry_after_ms = None;
            f.retry_after = None;
            f.attempt_number += 1;
            recommendations.push(d);
            if stop {
                break;
            }
        }
        Ok(Preview {
            job_id: features.job_id.clone().unwrap_or_else(|| format!("{}_preview", features.job_type)),
            current_attempt: features.attempt_number,
            features: features.clone(),
            recommendations,
            timeline,
            generated_at: time::format_rfc3339(now),
        })
    }

    /// What one decision reads: this engine's state, the clock, the bits, the mode.
    fn world<'a>(&'a self, settings: &'a Settings, now: u64, bits: u64, mode: Mode) -> World<'a> {
        World {
            settings,
            emergency: &self.emergency,
            learner: &self.learner,
            ml: &self.ml,
            guard: &self.guard,
            context_caps: &self.context_state,
            now,
            bits,
            mode,
            events: &self.events,
        }
    }
}

/// A fixed hasher so previews are reproducible across processes.
struct FixedState;

impl std::hash::BuildHasher for FixedState {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

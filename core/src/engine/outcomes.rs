//! Learning from outcomes: `record` (one attempt), `record_successes` (first attempts
//! that went through, counted in one call) and `released` (probe-and-release's check-in).

use std::sync::atomic::Ordering;

use crate::api::{Attempt, Features};
use crate::bayes::Scope;
use crate::classify::{classify, ErrorKind};
use crate::error::{Error, Result};
use crate::store::{HistoryRecord, HistoryStore, OutcomeRecord};
use crate::time;

use super::Engine;

impl Engine {
    /// Learn from what happened on an attempt.
    pub fn record(&self, attempt: &Attempt, now_ms: Option<u64>) -> Result<()> {
        attempt.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let at = attempt.time_ms(now);
        let s = self.settings();
        let kind =
            classify(attempt.http_status, attempt.error_class.as_deref(), attempt.error_code.as_deref());
        let label = attempt.error_class.as_deref().unwrap_or(kind.as_str());
        // Only retries teach the delay model: a first attempt waited for nothing.
        let learns = s.adaptive && attempt.attempt_number > 1;
        let x = attempt.since_first_failure_ms.unwrap_or(attempt.delay_ms);
        let first_failure = at.saturating_sub(x);
        let t = &s.bayes;
        // A failure that began while the downstream was degraded is learned apart from the
        // key's everyday failures (read under the same lock that counts this outcome).
        let (degraded, transitions) = {
            let mut guard = self.guard();
            guard.on_outcome(attempt, now, &s.strategy.guardrails, s.breaker_for(&attempt.job_type));
            (
                learns && t.state_scopes && guard.degraded_at(&attempt.job_type, first_failure),
                guard.take_transitions(),
            )
        };
        self.metrics.records.fetch_add(1, Ordering::Relaxed);
        if s.strategy.ml_enabled {
            self.ml.outcome(&attempt.job_id, attempt.attempt_number, attempt.success);
        }
        self.after_outcome(attempt, at, transitions, &s);
        if !s.adaptive {
            return Ok(());
        }
        if learns && attempt.success && kind == ErrorKind::RateLimit {
            // A rate-limited job got through: the reset has come by now.
            self.learner
                .with_mut(&attempt.job_type, label, Scope::Key, |m| m.reset.on_retry_outcome(at, true));
        }
        if learns {
            let scopes = [
                Some(if degraded { Scope::Degraded } else { Scope::Key }),
                attempt.tenant.as_deref().filter(|_| t.tenant_scopes).map(Scope::Tenant),
                t.hour_scopes.then(|| {
                    Scope::Hour(attempt.time_of_day.unwrap_or_else(|| time::hour_of_day(first_failure)))
                }),
            ];
            for scope in scopes.into_iter().flatten() {
                let refit = self.learner.update(&attempt.job_type, label, scope, |m| {
                    m.observe(x.saturating_sub(attempt.delay_ms), x, attempt.success, &s.bayes)
                });
                if refit {
                    self.metrics.refits.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(p) = &self.persist {
                p.queue.push_outcome(OutcomeRecord {
                    scopes: scopes.iter().flatten().map(|sc| sc.to_string()).collect(),
                    ..outcome_record(attempt, label, at, x)
                });
            }
        } else if let Some(p) = &self.persist {
            p.queue.push_outcome(outcome_record(attempt, label, at, x));
        }
        self.history.append(HistoryRecord {
            key: self.learner.key(&attempt.job_type, label, Scope::Key),
            at_ms: at,
            delay_ms: attempt.delay_ms,
            success: attempt.success,
        });
        Ok(())
    }

    /// Has `job_type`'s downstream come back since `failed_at_ms`, when a waiting job's
    /// last attempt failed? Ask at each of a decision's `check_in_ms`: `true` once calls
    /// made after that failure are being accepted again and the breaker is not open, so
    /// the job should retry now instead of at the planned delay (probe-and-release).
    pub fn released(&self, job_type: &str, failed_at_ms: u64, now_ms: Option<u64>) -> Result<bool> {
        Features::new(job_type, 1).validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        if failed_at_ms > now {
            return Err(Error::invalid("failed_at_ms", "is later than now"));
        }
        let released = self.guard().released(job_type, failed_at_ms, now);
        if released {
            self.metrics.released.fetch_add(1, Ordering::Relaxed);
        }
        Ok(released)
    }

    /// First attempts that succeeded, counted in one call (a host's fast path: the
    /// budget and the breaker need to know about successes, not each one separately).
    pub fn record_successes(
        &self,
        job_type: &str,
        tenant: Option<&str>,
        count: u64,
        now_ms: Option<u64>,
    ) -> Result<()> {
        let probe = Features {
            job_type: job_type.to_string(),
            attempt_number: 1,
            tenant: tenant.map(str::to_string),
            ..Default::default()
        };
        probe.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let transitions = {
            let mut guard = self.guard();
            guard.on_first_successes(
                job_type,
                tenant,
                count,
                now,
                &s.strategy.guardrails,
                s.breaker_for(job_type),
            );
            guard.take_transitions()
        };
        self.emit_transitions(transitions);
        Ok(())
    }
}

/// An attempt as the attempt history keeps it.
fn outcome_record(a: &Attempt, label: &str, at: u64, clock_ms: u64) -> OutcomeRecord {
    OutcomeRecord {
        at_ms: at,
        job_id: a.job_id.clone(),
        job_type: a.job_type.clone(),
        error_class: label.to_string(),
        tenant: a.tenant.clone(),
        attempt_number: a.attempt_number,
        delay_ms: a.delay_ms,
        clock_ms,
        success: a.success,
        scopes: Vec::new(),
    }
}

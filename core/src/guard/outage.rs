//! How a downstream stands, as the engine sees it from its outcomes: unhealthy enough to
//! stretch delays, degraded enough for failures to be learned apart, down for every
//! caller (probe-and-release: jobs take turns to probe it and the rest wait to be
//! released), or back.

use crate::breaker::BreakerState;
use crate::health::{Signals, View};

use super::downstream::{
    DEGRADED_MIN_REQUESTS, DOWN_ACCEPTS_ONE_IN, DOWN_FAILED_IN_A_ROW, DOWN_FOR_MS, MAX_PROBE_SPACING_MS,
    MIN_PROBE_SPACING_MS,
};
use super::state::GuardState;

impl GuardState {
    /// Whether the engine's own view of `job_type`'s downstream is bad enough to stretch
    /// delays: degraded (fewer than half of ≥ 10 calls accepted) or its breaker not closed,
    /// once its outcomes are reported. A cheap test before computing a health score.
    pub fn unhealthy(&mut self, job_type: &str, now: u64) -> bool {
        self.downstreams.get_mut(job_type).is_some_and(|d| {
            d.evidence.outcomes
                && (d.health.at(now)
                    || d.breaker.as_ref().is_some_and(|b| b.state(now) != BreakerState::Closed))
        })
    }

    /// Whether `job_type`'s downstream is down for every caller: fewer than a tenth of at
    /// least [`DEGRADED_MIN_REQUESTS`] calls accepted over the throttle window, or
    /// nothing accepted for [`DOWN_FOR_MS`] while [`DOWN_FAILED_IN_A_ROW`] calls failed,
    /// once its outcomes are reported. Jobs that fail then wait for the same event, its
    /// return, so they are told to check in ([`GuardState::released`]) rather than only sleep.
    pub fn down(&mut self, job_type: &str, now: u64) -> bool {
        self.downstreams.get_mut(job_type).is_some_and(|d| {
            let (requests, accepts) = d.calls.sum(now);
            let failing = !d.run.accepted && d.run.calls >= DOWN_FAILED_IN_A_ROW;
            d.evidence.outcomes
                && ((failing && now.saturating_sub(d.run.since_ms) >= DOWN_FOR_MS)
                    || (requests >= DEGRADED_MIN_REQUESTS && accepts * DOWN_ACCEPTS_ONE_IN < requests))
        })
    }

    /// When a job that wants to retry at `wanted` probes `job_type`'s downstream while it
    /// is down: `wanted`, or one spacing after the last probe claimed if that is later.
    /// A job whose turn would come after `latest` keeps to its own limits and waits until
    /// then, without a turn. The spacing grows with the outage, an eighth of how long
    /// the downstream has been degraded (1–30 s): the longer it has been down, the longer
    /// it is likely to stay down, and a return is found within an eighth of its age.
    /// Constant time: turns go in order, however many jobs wait.
    pub fn claim_probe(&mut self, job_type: &str, now: u64, wanted: u64, latest: u64) -> u64 {
        let Some(d) = self.downstreams.get_mut(job_type) else { return wanted };
        let down_for = now.saturating_sub(d.health.since.unwrap_or(now));
        let spacing = (down_for / 8).clamp(MIN_PROBE_SPACING_MS, MAX_PROBE_SPACING_MS);
        let turn = wanted.max(d.next_probe_ms);
        if turn > latest {
            return latest.max(wanted);
        }
        d.next_probe_ms = turn + spacing;
        turn
    }

    /// Whether `job_type`'s downstream has come back since `since` (when a waiting job
    /// failed): the calls made after it are being accepted (no failure since the first
    /// of them) and its breaker is not open. One accepted call is enough: while a
    /// downstream is down nothing gets through, so the first call that does is the news;
    /// a false alarm costs the released jobs one retry each, and the failure that follows
    /// holds the rest again.
    pub fn released(&mut self, job_type: &str, since: u64, now: u64) -> bool {
        self.downstreams.get_mut(job_type).is_some_and(|d| {
            d.evidence.check_ins = true;
            d.run.accepted
                && d.run.since_ms >= since
                && d.breaker.as_ref().is_none_or(|b| b.state(now) != BreakerState::Open)
        })
    }

    /// Whether the host of `job_type`'s jobs checks in while they wait
    /// ([`GuardState::released`] was asked): such jobs may wait for its return up to
    /// their deadline, past the max delay, since they are woken the moment it is back.
    pub fn checks_in(&self, job_type: &str) -> bool {
        self.downstreams.peek(job_type).is_some_and(|d| d.evidence.check_ins)
    }

    /// The engine's own view of `job_type`'s downstream: its success rate over the
    /// throttle window (once it has seen outcomes and enough calls) and its breaker.
    pub fn health_view(&mut self, job_type: &str, now: u64) -> (View, Signals, Option<u64>) {
        match self.downstreams.get_mut(job_type) {
            None => (View::default(), Signals::default(), None),
            Some(d) => {
                let (requests, accepts) = d.calls.sum(now);
                let view = View {
                    success_rate: (d.evidence.outcomes && requests >= DEGRADED_MIN_REQUESTS)
                        .then(|| accepts as f64 / requests as f64),
                    requests,
                    breaker: d.breaker.as_ref().map(|b| b.state(now)),
                };
                (view, d.signals, d.signals_at_ms)
            }
        }
    }

    /// Whether `job_type`'s downstream was degraded at time `t`, as far as learning goes
    /// (fewer than a quarter of calls accepted:
    /// [`LEARNED_APART_ACCEPTS_ONE_IN`](super::downstream::LEARNED_APART_ACCEPTS_ONE_IN)).
    pub fn degraded_at(&mut self, job_type: &str, t: u64) -> bool {
        self.downstreams.get(job_type).is_some_and(|d| d.learning_state.at(t))
    }
}

//! [`GuardState`]: the guardrails' and breakers' mutable state, one record behind one
//! lock in the engine, and how what `decide` and `record` report is counted into it
//! (the counting protocol of the module's story). What the counts allow is read in
//! `admit.rs` (budgets, caps, throttling), `outage.rs` (health, down, probe turns) and
//! `breakers.rs`.

use std::collections::HashMap;

use lru::LruCache;

use crate::api::{Attempt, Features};
use crate::breaker::{Breaker, BreakerConfig, BreakerState};
use crate::health::Signals;
use crate::store::FleetCounts;
use crate::window::SlidingWindow;

use super::downstream::{Downstream, DEGRADED_MIN_REQUESTS, LEARNED_APART_ACCEPTS_ONE_IN};
use super::settings::Guardrails;

/// A breaker that changed state: (downstream, from, to, when).
pub type Transition = (String, BreakerState, BreakerState, u64);

/// A breaker-relevant event.
#[derive(Clone, Copy)]
enum Outcome {
    /// A call that failed; `first` when it was a job's first attempt.
    Failure {
        first: bool,
    },
    Successes(u64),
}

/// Mutable guardrail and breaker state, behind one lock in the engine.
pub struct GuardState {
    /// a = first attempts, b = retries granted.
    pub(super) budget: SlidingWindow,
    pub(super) tenants: LruCache<String, SlidingWindow>,
    pub(super) downstreams: LruCache<String, Downstream>,
    /// Most tenants and downstreams tracked (the caches grow on demand up to it).
    pub(super) max_keys: usize,
    pub(super) in_flight: HashMap<Box<str>, u64>,
    pub(super) anonymous: u64,
    /// Per job id, its failures that did not use up an attempt (`decide/free.rs`); the
    /// jobs that failed least recently are forgotten past [`MAX_TRACKED_JOBS`].
    free_failures: LruCache<Box<str>, u32>,
    /// Breaker transitions not yet taken by the engine.
    pub(super) transitions: Vec<Transition>,
    /// Breakers that opened or closed since a store last took them (job type, when).
    pub(super) breaker_changes: Vec<(String, u64)>,
    /// What the other workers of a fleet spend (see `store::Fleet`); zero alone.
    pub(super) fleet: FleetCounts,
    pub(super) fleet_tenants: HashMap<String, u64>,
}

/// Most breaker changes kept for the store between two flushes.
const MAX_BREAKER_CHANGES: usize = 1_024;

/// Most jobs whose free failures are remembered: a job forgotten counts every attempt
/// again (a few MB at most, however many jobs fail).
pub const MAX_TRACKED_JOBS: usize = 65_536;

impl GuardState {
    pub fn new(max_keys: usize, g: &Guardrails) -> Self {
        GuardState {
            budget: SlidingWindow::new(g.budget_window_ms),
            tenants: LruCache::unbounded(),
            downstreams: LruCache::unbounded(),
            max_keys: max_keys.max(1),
            in_flight: HashMap::new(),
            anonymous: 0,
            free_failures: LruCache::unbounded(),
            transitions: Vec::new(),
            breaker_changes: Vec::new(),
            fleet: FleetCounts::default(),
            fleet_tenants: HashMap::new(),
        }
    }

    /// New window sizes take effect on the next counts; existing counts are kept.
    pub fn reconfigure(&mut self, g: &Guardrails) {
        if self.budget.window_ms() != SlidingWindow::new(g.budget_window_ms).window_ms() {
            self.budget = SlidingWindow::new(g.budget_window_ms);
            self.tenants.clear();
        }
        let throttle_window = SlidingWindow::new(g.throttle_window_ms).window_ms();
        for (_, d) in self.downstreams.iter_mut().filter(|(_, d)| d.calls.window_ms() != throttle_window) {
            d.calls = SlidingWindow::new(g.throttle_window_ms);
        }
    }

    /// First attempts count toward the retry budget (and the tenant's share of it).
    #[inline]
    fn count_first_attempts(&mut self, tenant: Option<&str>, first: u64, now: u64, g: &Guardrails) {
        self.budget.add(now, first, 0);
        if let (Some(t), true) = (tenant, g.per_tenant_limits) {
            self.tenants
                .get_or_insert_mut_ref(t, || SlidingWindow::new(g.budget_window_ms))
                .add(now, first, 0);
        }
    }

    /// Calls to a downstream feed adaptive throttling, its health, and its breaker.
    /// Returns whether the downstream now looks unhealthy (see [`GuardState::unhealthy`]).
    fn count_calls(
        &mut self,
        job_type: &str,
        outcome: Outcome,
        now: u64,
        g: &Guardrails,
        b: &BreakerConfig,
    ) -> bool {
        let d = bounded(&mut self.downstreams, self.max_keys, job_type, || Downstream::new(g));
        let (requests, accepts) = match outcome {
            // Its peers that succeeded are not reported: not a call the rates can weigh.
            Outcome::Failure { first: true } if !d.evidence.first_successes => (0, 0),
            Outcome::Failure { .. } => (1, 0),
            Outcome::Successes(n) => (n, n),
        };
        if requests > 0 {
            d.calls.add(now, requests, accepts);
            if d.run.add(accepts > 0, requests, now) && d.run.accepted {
                d.next_probe_ms = 0; // back: the turns of the outage are over
            }
            let (requests, accepts) = d.calls.sum(now);
            d.health.update(requests >= DEGRADED_MIN_REQUESTS && accepts * 2 < requests, now);
            let learned_apart = accepts * LEARNED_APART_ACCEPTS_ONE_IN < requests;
            d.learning_state.update(requests >= DEGRADED_MIN_REQUESTS && learned_apart, now);
        }
        // The breaker acts only once this downstream's outcomes are reported (a caller
        // that only ever decides would otherwise see nothing but failures).
        if b.enabled && requests > 0 && d.evidence.outcomes {
            let breaker = d.breaker.get_or_insert_with(|| Breaker::new(b));
            note_transition(&mut self.transitions, job_type, &mut d.reported, breaker.state(now), now);
            let before = breaker.open_until();
            match outcome {
                Outcome::Failure { .. } => breaker.on_failure(now, b),
                Outcome::Successes(n) => breaker.on_successes(now, n, b),
            }
            note_transition(&mut self.transitions, job_type, &mut d.reported, breaker.state(now), now);
            if breaker.open_until() != before && self.breaker_changes.len() < MAX_BREAKER_CHANGES {
                self.breaker_changes.push((job_type.to_string(), now));
            }
        }
        d.evidence.outcomes && (d.health.since.is_some() || d.reported != BreakerState::Closed)
    }

    /// A failure was reported (through `decide`). A rate-limit failure (429) is the
    /// server's explicit flow control, answered by `Retry-After` and learned resets: it
    /// spends budget but does not count against the breaker or adaptive throttling.
    /// Returns whether the downstream now looks unhealthy ([`GuardState::unhealthy`]).
    pub fn on_failure(
        &mut self,
        f: &Features,
        rate_limited: bool,
        now: u64,
        g: &Guardrails,
        b: &BreakerConfig,
    ) -> bool {
        self.count_first_attempts(f.tenant.as_deref(), u64::from(f.attempt_number == 1), now, g);
        let first = f.attempt_number == 1;
        let unhealthy = !rate_limited && self.count_calls(&f.job_type, Outcome::Failure { first }, now, g, b);
        if !f.health.is_empty() {
            let signals = Signals::from_map(&f.health);
            if let Some(d) = self.downstreams.peek_mut(f.job_type.as_str()) {
                d.signals = signals;
                d.signals_at_ms = Some(now);
            }
        }
        unhealthy
    }

    /// An outcome was recorded.
    pub fn on_outcome(&mut self, a: &Attempt, now: u64, g: &Guardrails, b: &BreakerConfig) {
        self.in_flight.remove(a.job_id.as_str());
        self.note_reported(&a.job_type, a.success, a.success && a.attempt_number == 1, g);
        if a.success {
            self.count_first_attempts(a.tenant.as_deref(), u64::from(a.attempt_number == 1), now, g);
            let _ = self.count_calls(&a.job_type, Outcome::Successes(1), now, g, b);
        }
    }

    /// First attempts that succeeded, reported in a batch by a host's fast path.
    pub fn on_first_successes(
        &mut self,
        job_type: &str,
        tenant: Option<&str>,
        count: u64,
        now: u64,
        g: &Guardrails,
        b: &BreakerConfig,
    ) {
        self.note_reported(job_type, count > 0, count > 0, g);
        self.count_first_attempts(tenant, count, now, g);
        if count > 0 {
            let _ = self.count_calls(job_type, Outcome::Successes(count), now, g, b);
        }
    }

    /// The caller reported an outcome of `job_type`'s downstream.
    fn note_reported(&mut self, job_type: &str, accepted: bool, first_success: bool, g: &Guardrails) {
        let e = &mut bounded(&mut self.downstreams, self.max_keys, job_type, || Downstream::new(g)).evidence;
        e.outcomes = true;
        e.accepted |= accepted;
        e.first_successes |= first_success;
    }

    /// How many of job `job_id`'s failures did not use up an attempt.
    pub fn free_failures(&mut self, job_id: &str) -> u32 {
        self.free_failures.get(job_id).copied().unwrap_or(0)
    }

    /// One more failure of `job_id` that did not use up an attempt.
    pub fn note_free_failure(&mut self, job_id: &str) {
        if let Some(n) = self.free_failures.get_mut(job_id) {
            *n = n.saturating_add(1);
            return;
        }
        if self.free_failures.len() >= MAX_TRACKED_JOBS {
            self.free_failures.pop_lru();
        }
        self.free_failures.put(job_id.into(), 1);
    }

    /// Breaker transitions since the last call (no allocation when there were none).
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    /// The latest time the guardrails counted (the engine's clock as they last saw it).
    pub fn latest_ms(&self) -> u64 {
        self.budget.latest_ms()
    }
}

/// Queue an event when a breaker's state differs from the one last reported.
#[inline]
pub(super) fn note_transition(
    out: &mut Vec<Transition>,
    key: &str,
    reported: &mut BreakerState,
    now_state: BreakerState,
    now: u64,
) {
    if *reported != now_state {
        out.push((key.to_string(), *reported, now_state, now));
        *reported = now_state;
    }
}

/// The value for `key` in a cache capped at `cap` entries, created (and the least
/// recently used dropped) when absent.
pub(super) fn bounded<'a, V>(
    cache: &'a mut LruCache<String, V>,
    cap: usize,
    key: &str,
    make: impl FnOnce() -> V,
) -> &'a mut V {
    if cache.len() >= cap && !cache.contains(key) {
        cache.pop_lru();
    }
    cache.get_or_insert_mut_ref(key, make)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_transitions_are_reported_once() {
        let g = Guardrails::default();
        let b = BreakerConfig { consecutive_failures: 2, open_ms: 1_000, ..Default::default() };
        let mut s = GuardState::new(100, &g);
        s.on_outcome(&Attempt::new("j0", "pay", 1, true), 0, &g, &b);
        s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        assert!(s.take_transitions().is_empty());
        s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        let t = s.take_transitions();
        assert_eq!(t, [("pay".to_string(), BreakerState::Closed, BreakerState::Open, 0)]);
        s.on_failure(&Features::new("pay", 1), false, 2_000, &g, &b);
        let states: Vec<_> = s.take_transitions().into_iter().map(|(_, a, b, _)| (a, b)).collect();
        assert_eq!(
            states,
            [(BreakerState::Open, BreakerState::HalfOpen), (BreakerState::HalfOpen, BreakerState::Open)]
        );
    }
}

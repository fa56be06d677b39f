//! Guardrails: limits that can only make a decision safer (fewer or later retries),
//! each naming itself in `policy_guardrails` when it acts.
//!
//! The shared, stateful ones live here:
//! - **retry budget** (gRPC retry throttling, Finagle `RetryBudget`): retries in a sliding
//!   window may not exceed `max_budget_percent` of first attempts, plus a floor of
//!   `min_retries_per_sec` so a quiet service can still retry;
//! - **tenant fairness**: one tenant may spend at most `tenant_max_share` of that budget,
//!   even while it is alone, so quiet tenants arriving later still find retries left
//!   (calls without a tenant are not subject to it);
//! - **adaptive throttling** (Google SRE book, "Handling Overload"): per downstream,
//!   reject a retry locally with probability `max(0, (requests − K·accepts) /
//!   (requests + 1))` over a sliding window. For durable jobs a rejected retry is not
//!   dropped (that would lose the job): it is deferred by half the throttle window, so
//!   an overloaded downstream sees fewer retries now and the job survives the overload;
//! - **concurrency**: at most `max_concurrent_retries` scheduled retries in flight.
//!
//! Counting protocol: `decide` is the failure signal (a request that was not accepted;
//! a first attempt when `attempt_number == 1`), `record` with `success = true` is the
//! success signal. Evidence is kept per downstream, never shared between job types:
//! - the breaker, health and the down signal act only for a downstream whose outcomes
//!   are reported (a caller that only ever decides would see nothing but failures);
//! - adaptive throttling acts only on a downstream that has accepted calls before and
//!   holds at least [`MIN_EVIDENCE_CALLS`] calls in its window: a new job type's first
//!   failure is not an overload;
//! - a host that never reports first-attempt successes (an HTTP API caller reporting
//!   retries only) would make every downstream look failing, since the first attempts
//!   that succeeded are invisible: until a downstream reports one, its first-attempt
//!   failures are not counted as calls, and it is judged by its retries alone.

use std::collections::HashMap;

use lru::LruCache;
use serde::{Deserialize, Serialize};

use crate::api::{Attempt, Features, Guardrail, Priority};
use crate::breaker::{Admit, Breaker, BreakerConfig, BreakerSnapshot, BreakerState};
use crate::error::{Error, Result};
use crate::health::{Signals, View};
use crate::store::FleetCounts;
use crate::window::SlidingWindow;

/// Hard limits, in the API document's shape plus the budget, fairness, throttling and
/// concurrency settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardrails {
    pub max_attempts: u32,
    pub max_delay_ms: u64,
    pub min_delay_ms: u64,
    /// Retries as a percentage of first attempts in `budget_window_ms`.
    pub max_budget_percent: f64,
    pub per_tenant_limits: bool,
    pub emergency_stop: bool,
    /// Every decision carries its rationale and the guardrails that acted: the engine
    /// always explains, so this must be `true` (the API document's field, checked).
    pub explainability_required: bool,
    pub budget_window_ms: u64,
    pub min_retries_per_sec: f64,
    pub tenant_max_share: f64,
    /// Total time from the first failure after which no retry starts, whatever a call,
    /// a policy or an override says (an operator's hard limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_ms: Option<u64>,
    /// The deadline of a job whose call, policy and overrides name none, from its first
    /// failure: a job ends by it, not by a count alone (holds while a downstream is down
    /// may run to it), and a job lost past it is a dead letter someone must replay.
    pub default_deadline_ms: u64,
    pub respect_retry_after: bool,
    pub adaptive_throttle: bool,
    pub throttle_k: f64,
    pub throttle_window_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_retries: Option<u32>,
    /// How long after its scheduled time a retry that never reported counts as done.
    pub in_flight_ttl_ms: u64,
    /// While a downstream is down for every caller, jobs take turns to probe it and the
    /// rest wait to be released (`Decision::check_in_ms`, `Engine::released`).
    pub probe_and_release: bool,
    /// The share of the retry budget and of concurrency caps each priority may use;
    /// the rest is kept for higher priorities. Calls that state no priority are not
    /// ranked and may use all of it.
    pub priority_shares: PriorityShares,
}

/// Shares (0–1) of the budget and caps per priority, non-decreasing from low to critical.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityShares {
    pub low: f64,
    pub normal: f64,
    pub high: f64,
    pub critical: f64,
}

impl Default for PriorityShares {
    fn default() -> Self {
        PriorityShares { low: 0.5, normal: 0.8, high: 0.9, critical: 1.0 }
    }
}

impl PriorityShares {
    /// The share of `priority` (1 when none is stated).
    pub fn of(&self, priority: Option<Priority>) -> f64 {
        match priority {
            None => 1.0,
            Some(Priority::Low) => self.low,
            Some(Priority::Normal) => self.normal,
            Some(Priority::High) => self.high,
            Some(Priority::Critical) => self.critical,
        }
    }

    fn validate(&self) -> Result<()> {
        let shares =
            [("low", self.low), ("normal", self.normal), ("high", self.high), ("critical", self.critical)];
        for (i, (name, v)) in shares.iter().enumerate() {
            if !(0.0..=1.0).contains(v) {
                return Err(Error::config(format!("priority_shares.{name}"), "must be 0–1"));
            }
            if i > 0 && *v < shares[i - 1].1 {
                return Err(Error::config(
                    format!("priority_shares.{name}"),
                    format!("must be ≥ the {} share (a higher priority never gets less)", shares[i - 1].0),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_attempts: 10,
            max_delay_ms: 300_000,
            min_delay_ms: 0,
            max_budget_percent: 20.0,
            per_tenant_limits: true,
            emergency_stop: false,
            explainability_required: true,
            budget_window_ms: 60_000,
            min_retries_per_sec: 10.0,
            tenant_max_share: 0.5,
            max_total_ms: None,
            default_deadline_ms: DEFAULT_DEADLINE_MS,
            respect_retry_after: true,
            adaptive_throttle: true,
            throttle_k: 2.0,
            throttle_window_ms: 120_000,
            max_concurrent_retries: None,
            in_flight_ttl_ms: 60_000,
            probe_and_release: true,
            priority_shares: PriorityShares::default(),
        }
    }
}

const DAY_MS: u64 = 86_400_000;

/// A job's deadline when nothing names one: 30 minutes from its first failure.
pub const DEFAULT_DEADLINE_MS: u64 = 1_800_000;

impl Guardrails {
    pub fn validate(&self) -> Result<()> {
        let cfg = |field: &'static str, reason: &str| Err(Error::config(field, reason));
        if !(1..=100).contains(&self.max_attempts) {
            return cfg("max_attempts", "must be 1–100");
        }
        if !self.explainability_required {
            return cfg(
                "explainability_required",
                "must be true: every decision carries its rationale (this engine cannot decide without explaining)",
            );
        }
        if self.max_delay_ms == 0 || self.max_delay_ms > DAY_MS {
            return cfg("max_delay_ms", "must be 1 ms – 24 h");
        }
        if self.min_delay_ms > self.max_delay_ms {
            return cfg("min_delay_ms", "must be ≤ max_delay_ms");
        }
        if !(0.0..=100.0).contains(&self.max_budget_percent) {
            return cfg("max_budget_percent", "must be 0–100");
        }
        if !(1_000..=DAY_MS).contains(&self.budget_window_ms) {
            return cfg("budget_window_ms", "must be 1 s – 24 h");
        }
        if !(self.min_retries_per_sec.is_finite() && self.min_retries_per_sec >= 0.0) {
            return cfg("min_retries_per_sec", "must be a number ≥ 0");
        }
        if !(self.tenant_max_share > 0.0 && self.tenant_max_share <= 1.0) {
            return cfg("tenant_max_share", "must be in (0, 1]");
        }
        if self.max_total_ms == Some(0) {
            return cfg("max_total_ms", "must be > 0 when set");
        }
        if !(1_000..=7 * DAY_MS).contains(&self.default_deadline_ms) {
            return cfg("default_deadline_ms", "must be 1 s – 7 days");
        }
        if !(self.throttle_k.is_finite() && self.throttle_k >= 1.0) {
            return cfg("throttle_k", "must be a number ≥ 1");
        }
        if !(1_000..=DAY_MS).contains(&self.throttle_window_ms) {
            return cfg("throttle_window_ms", "must be 1 s – 24 h");
        }
        if self.max_concurrent_retries == Some(0) {
            return cfg("max_concurrent_retries", "must be ≥ 1 when set");
        }
        if self.in_flight_ttl_ms == 0 || self.in_flight_ttl_ms > DAY_MS {
            return cfg("in_flight_ttl_ms", "must be 1 ms – 24 h");
        }
        self.priority_shares.validate()
    }

    /// These guardrails with the fields of a JSON object replaced (a partial update).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Guardrails> {
        let serde_json::Value::Object(fields) = patch else {
            return Err(Error::invalid("guardrails", "expected a JSON object"));
        };
        let mut merged =
            serde_json::to_value(self).map_err(|e| Error::invalid("guardrails", e.to_string()))?;
        if let serde_json::Value::Object(base) = &mut merged {
            for (k, v) in fields {
                base.insert(k.clone(), v.clone());
            }
        }
        let next: Guardrails = crate::api::from_value_strict(merged)?;
        next.validate()?;
        Ok(next)
    }
}

/// A stateful guardrail that refused a retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// `allowed` is the caller's priority's part of `limit`.
    Concurrency {
        in_flight: u64,
        allowed: u64,
        limit: u32,
    },
    Tenant {
        used: u64,
        allowed: u64,
    },
    /// `allowed` is the caller's priority's part of `total`.
    Budget {
        used: u64,
        allowed: u64,
        total: u64,
    },
}

/// A retry the stateful guardrails let through.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Admitted {
    /// Adaptive throttling rejected it with this probability: defer it.
    pub throttled: Option<f64>,
    /// The global limit a critical retry went past (`respect_global_backpressure: false`).
    pub bypassed: Option<&'static str>,
}

impl Refusal {
    pub fn guardrail(self) -> Guardrail {
        match self {
            Refusal::Concurrency { .. } => Guardrail::Concurrency,
            Refusal::Tenant { .. } => Guardrail::TenantFairness,
            Refusal::Budget { .. } => Guardrail::RetryBudget,
        }
    }
}

/// Who a retry is for.
#[derive(Debug, Clone, Copy)]
pub struct RetryContext<'a> {
    pub job_type: &'a str,
    pub tenant: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub retry_at_ms: u64,
    /// The caller's priority's share of the budget and caps ([`PriorityShares::of`]).
    pub share: f64,
    /// Past the global budget, throttling and concurrency cap (critical work whose
    /// context does not respect global backpressure).
    pub bypass_global: bool,
}

/// What one downstream (job type) has done lately: one record, one lookup per event.
struct Downstream {
    /// a = requests, b = accepts (adaptive throttling and health).
    calls: SlidingWindow,
    health: HealthLog,
    /// When it was degraded enough for failures to be learned apart (fewer than a
    /// quarter of calls accepted): a downstream failing a third of its calls is not.
    learning_state: HealthLog,
    breaker: Option<Breaker>,
    /// The breaker state last reported in an event.
    reported: BreakerState,
    /// The caller's last health signals, and when.
    signals: Signals,
    signals_at_ms: Option<u64>,
    /// The latest run of calls that all failed or were all accepted: a long failing run
    /// says it is down, an accepted one that it is back.
    run: Run,
    /// While it is down: the earliest time the next probe may go (one spacing after the
    /// last one claimed).
    next_probe_ms: u64,
    /// What its caller reports: the evidence the guardrails need before they act.
    evidence: Reported,
}

/// What a caller has reported about one downstream so far.
#[derive(Debug, Clone, Copy, Default)]
struct Reported {
    /// Any outcome (`record`, `record_successes`).
    outcomes: bool,
    /// A call it accepted.
    accepted: bool,
    /// A first attempt that succeeded: first-attempt failures are then one side of a
    /// rate whose other side is known, and count as calls.
    first_successes: bool,
    /// Jobs that wait for it check in (`released`).
    check_ins: bool,
}

impl Downstream {
    /// Adaptive throttling's rejection probability (the SRE book's client-side
    /// throttling): `max(0, (requests − K·accepts) / (requests + 1))` over the window,
    /// once the downstream has accepted calls and the window holds
    /// [`MIN_EVIDENCE_CALLS`]. A downstream that never accepted a call is not
    /// overloaded on failures alone: it is new, or down (probe-and-release's case).
    fn rejection(&mut self, now: u64, g: &Guardrails) -> f64 {
        let (requests, accepts) = self.calls.sum(now);
        if !self.evidence.accepted || requests < MIN_EVIDENCE_CALLS {
            return 0.0;
        }
        ((requests as f64 - g.throttle_k * accepts as f64) / (requests as f64 + 1.0)).max(0.0)
    }

    fn new(g: &Guardrails) -> Downstream {
        Downstream {
            calls: SlidingWindow::new(g.throttle_window_ms),
            health: HealthLog::default(),
            learning_state: HealthLog::default(),
            breaker: None,
            reported: BreakerState::Closed,
            signals: Signals::default(),
            signals_at_ms: None,
            run: Run::default(),
            next_probe_ms: 0,
            evidence: Reported::default(),
        }
    }
}

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

/// Fewest calls in a downstream's window before adaptive throttling may act on it, the
/// same floor health, degraded and down judgements use ([`DEGRADED_MIN_REQUESTS`]).
/// Below it an acceptance rate under a half is within chance (two of four calls
/// failing says nothing), and Finagle's retry budget likewise always allows 10
/// retries per second whatever the ratio: protection needs a minimum of traffic.
pub const MIN_EVIDENCE_CALLS: u64 = DEGRADED_MIN_REQUESTS;

/// The retry budget as operators see it (`/metrics`, the TUI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSnapshot {
    pub window_ms: u64,
    /// First attempts seen in the window (the budget grows with them).
    pub first_attempts: u64,
    /// Retries granted in the window.
    pub retries: u64,
    /// Retries the window allows: the per-second floor plus `max_budget_percent` of first attempts.
    pub allowed: u64,
}

/// Mutable guardrail and breaker state, behind one lock in the engine.
pub struct GuardState {
    /// a = first attempts, b = retries granted.
    budget: SlidingWindow,
    tenants: LruCache<String, SlidingWindow>,
    downstreams: LruCache<String, Downstream>,
    /// Most tenants and downstreams tracked (the caches grow on demand up to it).
    max_keys: usize,
    in_flight: HashMap<Box<str>, u64>,
    anonymous: u64,
    /// Per job id, its failures that did not use up an attempt (`decide/free.rs`); the
    /// jobs that failed least recently are forgotten past [`MAX_TRACKED_JOBS`].
    free_failures: LruCache<Box<str>, u32>,
    /// Breaker transitions not yet taken by the engine.
    transitions: Vec<Transition>,
    /// Breakers that opened or closed since a store last took them (job type, when).
    breaker_changes: Vec<(String, u64)>,
    /// What the other workers of a fleet spend (see `store::Fleet`); zero alone.
    fleet: FleetCounts,
    fleet_tenants: HashMap<String, u64>,
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

    /// Whether the host of `job_type`'s jobs checks in while they wait
    /// ([`GuardState::released`] was asked): such jobs may wait for its return up to
    /// their deadline, past the max delay, since they are woken the moment it is back.
    pub fn checks_in(&self, job_type: &str) -> bool {
        self.downstreams.peek(job_type).is_some_and(|d| d.evidence.check_ins)
    }

    /// Breaker transitions since the last call (no allocation when there were none).
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
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

    /// Breakers that opened or closed since the last call, as they stood then.
    pub fn take_breaker_changes(&mut self) -> Vec<BreakerSnapshot> {
        let changes = std::mem::take(&mut self.breaker_changes);
        let mut out: Vec<BreakerSnapshot> = changes
            .into_iter()
            .filter_map(|(key, at)| {
                let d = self.downstreams.peek_mut(&key)?;
                d.breaker.as_mut().map(|b| b.snapshot(&key, at))
            })
            .collect();
        // The latest word per breaker.
        out.reverse();
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.key.clone()));
        out
    }

    /// Hold `job_type`'s breaker open until `until` (a restored or fleet-shared state).
    pub fn adopt_open_breaker(
        &mut self,
        job_type: &str,
        until: u64,
        now: u64,
        g: &Guardrails,
        b: &BreakerConfig,
    ) {
        if !b.enabled || until <= now {
            return;
        }
        let d = bounded(&mut self.downstreams, self.max_keys, job_type, || Downstream::new(g));
        d.breaker.get_or_insert_with(|| Breaker::new(b)).adopt_open(until, now, b);
    }

    /// The latest time the guardrails counted (the engine's clock as they last saw it).
    pub fn latest_ms(&self) -> u64 {
        self.budget.latest_ms()
    }

    /// This worker's share of the fleet-wide guardrails, over the budget window.
    pub fn own_counts(&mut self, now: u64) -> FleetCounts {
        let (first_attempts, retries) = self.budget.sum(now);
        let tenant_retries = self
            .tenants
            .iter_mut()
            .filter_map(|(t, w)| Some((t.clone(), w.sum(now).1)).filter(|(_, n)| *n > 0))
            .collect();
        FleetCounts { first_attempts, retries, in_flight: self.in_flight.len() as u64, tenant_retries }
    }

    /// What the rest of the fleet spends, added to this worker's counts by every check.
    pub fn set_fleet(&mut self, mut others: FleetCounts) {
        self.fleet_tenants = std::mem::take(&mut others.tenant_retries).into_iter().collect();
        self.fleet = others;
    }

    /// Whether `job_type`'s downstream was degraded at time `t`, as far as learning goes
    /// (fewer than a quarter of calls accepted: [`LEARNED_APART_ACCEPTS_ONE_IN`]).
    pub fn degraded_at(&mut self, job_type: &str, t: u64) -> bool {
        self.downstreams.get(job_type).is_some_and(|d| d.learning_state.at(t))
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

    /// The circuit breaker's word on a retry of `job_type`.
    pub fn breaker_admit(&mut self, job_type: &str, now: u64, b: &BreakerConfig, commit: bool) -> Admit {
        if !b.enabled {
            return Admit::Yes;
        }
        match self.downstreams.get_mut(job_type) {
            Some(Downstream { breaker: Some(br), reported, .. }) => {
                let admit = br.admit(now, b, commit);
                if commit {
                    note_transition(&mut self.transitions, job_type, reported, br.state(now), now);
                }
                admit
            }
            _ => Admit::Yes,
        }
    }

    /// The shared retry budget at `now`: what was spent and what the window allows.
    pub fn budget(&mut self, now: u64, g: &Guardrails) -> BudgetSnapshot {
        let (first_attempts, retries) = self.budget.sum(now);
        // A fleet's other workers spend the same budget (zero when alone).
        let (first_attempts, retries) =
            (first_attempts + self.fleet.first_attempts, retries + self.fleet.retries);
        let window_ms = self.budget.window_ms();
        let window_s = window_ms as f64 / 1_000.0;
        let allowed = (g.min_retries_per_sec * window_s
            + g.max_budget_percent / 100.0 * first_attempts as f64)
            .floor() as u64;
        BudgetSnapshot { window_ms, first_attempts, retries, allowed }
    }

    pub fn breakers(&mut self, now: u64) -> Vec<BreakerSnapshot> {
        let mut out: Vec<_> = self
            .downstreams
            .iter_mut()
            .filter_map(|(k, d)| d.breaker.as_mut().map(|b| b.snapshot(k, now)))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Check the stateful guardrails for one retry; with `commit`, spend its share of each.
    /// `roll` is a uniform random number in [0, 1) for adaptive throttling; `Ok(Some(p))`
    /// means the retry was throttled (with probability `p`) and must be deferred.
    pub fn admit_retry(
        &mut self,
        ctx: &RetryContext<'_>,
        now: u64,
        roll: f64,
        g: &Guardrails,
        commit: bool,
    ) -> std::result::Result<Admitted, Refusal> {
        let mut admitted = Admitted::default();
        let part =
            |total: u64| if ctx.share >= 1.0 { total } else { (total as f64 * ctx.share).floor() as u64 };
        if let Some(limit) = g.max_concurrent_retries {
            if self.in_flight.len() >= part(u64::from(limit)) as usize {
                self.in_flight.retain(|_, expires| *expires > now);
            }
            let in_flight = self.in_flight.len() as u64 + self.fleet.in_flight;
            let replacing = ctx.job_id.is_some_and(|id| self.in_flight.contains_key(id));
            let allowed = part(u64::from(limit));
            if in_flight >= allowed && !replacing {
                if !ctx.bypass_global {
                    return Err(Refusal::Concurrency { in_flight, allowed, limit });
                }
                admitted.bypassed = Some("concurrency");
            }
        }
        let BudgetSnapshot { retries, allowed: total, .. } = self.budget(now, g);
        let allowed = part(total);
        if retries >= allowed {
            if !ctx.bypass_global {
                return Err(Refusal::Budget { used: retries, allowed, total });
            }
            admitted.bypassed = Some("retry_budget");
        }
        if let (Some(t), true) = (ctx.tenant, g.per_tenant_limits) {
            let tenant_allowed = ((total as f64) * g.tenant_max_share).ceil() as u64;
            let fleet_used = self.fleet_tenants.get(t).copied().unwrap_or(0);
            let used = self.tenants.get_mut(t).map_or(0, |w| w.sum(now).1) + fleet_used;
            if used >= tenant_allowed {
                return Err(Refusal::Tenant { used, allowed: tenant_allowed });
            }
        }
        if g.adaptive_throttle {
            let p = self.downstreams.get_mut(ctx.job_type).map_or(0.0, |d| d.rejection(now, g));
            if roll < p {
                if ctx.bypass_global {
                    admitted.bypassed = admitted.bypassed.or(Some("adaptive_throttle"));
                } else {
                    admitted.throttled = Some(p);
                }
            }
        }
        if commit {
            self.budget.add(now, 0, 1);
            if let (Some(t), true) = (ctx.tenant, g.per_tenant_limits) {
                self.tenants
                    .get_or_insert_mut_ref(t, || SlidingWindow::new(g.budget_window_ms))
                    .add(now, 0, 1);
            }
            if g.max_concurrent_retries.is_some() {
                let key: Box<str> = match ctx.job_id {
                    Some(id) => id.into(),
                    None => {
                        self.anonymous += 1;
                        format!("\u{0}anonymous-{}", self.anonymous).into()
                    }
                };
                self.in_flight.insert(key, ctx.retry_at_ms.saturating_add(g.in_flight_ttl_ms));
            }
        }
        Ok(admitted)
    }
}

/// Queue an event when a breaker's state differs from the one last reported.
#[inline]
fn note_transition(
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

/// When a downstream was degraded: too few of its requests accepted over the throttle
/// window (at least [`DEGRADED_MIN_REQUESTS`] of them; under a half for health, under a
/// quarter for learning). Kept as a few recent intervals so an outcome can be filed
/// under the state its job first failed in.
#[derive(Debug, Clone, Default)]
struct HealthLog {
    since: Option<u64>,
    past: std::collections::VecDeque<(u64, u64)>,
}

pub const DEGRADED_MIN_REQUESTS: u64 = 10;
/// Failures that begin while fewer than one call in this many is accepted are learned
/// apart from blips (the degraded view, [`GuardState::degraded_at`]). A quarter, not
/// the health score's half: a payment API failing 30 % of its calls dips under a half
/// now and then, and its jobs then got a degraded view learned from few samples.
const LEARNED_APART_ACCEPTS_ONE_IN: u64 = 4;
/// Down: fewer than one call in this many accepted over the throttle window, or nothing
/// accepted for this long while this many calls failed (see [`GuardState::down`]). The
/// run notices an outage within seconds, where the window still holds the minutes
/// before it. Its length in time keeps a burst of jobs that each fail at first and
/// recover on their own clocks within seconds (every first attempt failing, the
/// retries getting through) from passing for an outage: releasing them when one of
/// them gets through would only spend their retries.
const DOWN_ACCEPTS_ONE_IN: u64 = 10;
const DOWN_FAILED_IN_A_ROW: u64 = 10;
const DOWN_FOR_MS: u64 = 10_000;
/// Bounds of the spacing between probes of a downstream that is down.
const MIN_PROBE_SPACING_MS: u64 = 1_000;
const MAX_PROBE_SPACING_MS: u64 = 30_000;
const HEALTH_INTERVALS: usize = 8;

/// A run of calls with the same outcome: how many, and since when.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    accepted: bool,
    calls: u64,
    since_ms: u64,
}

impl Run {
    /// Counts `calls` with this outcome; returns whether they start a new run.
    fn add(&mut self, accepted: bool, calls: u64, now: u64) -> bool {
        let new = accepted != self.accepted || self.calls == 0;
        if new {
            *self = Run { accepted, calls: 0, since_ms: now };
        }
        self.calls += calls;
        new
    }
}

impl HealthLog {
    fn update(&mut self, degraded: bool, now: u64) {
        match (self.since, degraded) {
            (None, true) => self.since = Some(now),
            (Some(start), false) => {
                if self.past.len() == HEALTH_INTERVALS {
                    self.past.pop_front();
                }
                self.past.push_back((start, now));
                self.since = None;
            }
            _ => {}
        }
    }

    fn at(&self, t: u64) -> bool {
        self.since.is_some_and(|s| t >= s) || self.past.iter().any(|&(a, b)| (a..b).contains(&t))
    }
}

/// The value for `key` in a cache capped at `cap` entries, created (and the least
/// recently used dropped) when absent.
fn bounded<'a, V>(
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

    fn ctx<'a>(tenant: Option<&'a str>, job_id: Option<&'a str>) -> RetryContext<'a> {
        RetryContext { job_type: "pay", tenant, job_id, retry_at_ms: 0, share: 1.0, bypass_global: false }
    }

    #[test]
    fn budget_caps_retries_at_a_percentage_of_first_attempts() {
        let g = Guardrails { min_retries_per_sec: 0.0, per_tenant_limits: false, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..50 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        let granted = (0..50).filter(|_| s.admit_retry(&ctx(None, None), 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 10, "20 % of 50 first attempts");
        // The window slides: a minute later the budget is fresh but there are no requests.
        assert!(matches!(
            s.admit_retry(&ctx(None, None), 61_000, 0.5, &g, true),
            Err(Refusal::Budget { allowed: 0, .. })
        ));
    }

    #[test]
    fn a_noisy_tenant_cannot_take_the_whole_budget() {
        let g = Guardrails { min_retries_per_sec: 0.0, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..100 {
            s.on_failure(&Features::new("pay", 1).with_tenant("noisy"), false, 0, &g, &b);
        }
        s.on_failure(&Features::new("pay", 1).with_tenant("quiet"), false, 0, &g, &b);
        let noisy =
            (0..100).filter(|_| s.admit_retry(&ctx(Some("noisy"), None), 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(noisy, 10, "half of the 20-retry budget (20 % of 101 first attempts)");
        assert!(s.admit_retry(&ctx(Some("quiet"), None), 0, 0.5, &g, true).is_ok());
    }

    #[test]
    fn adaptive_throttle_follows_the_sre_formula() {
        let g = Guardrails { min_retries_per_sec: 1_000.0, ..Default::default() };
        let b = BreakerConfig { enabled: false, ..Default::default() };
        let mut s = GuardState::new(100, &g);
        s.on_outcome(&Attempt::new("j0", "pay", 1, true), 0, &g, &b); // 1 request, 1 accept
        for _ in 0..9 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        // p = (10 − 2·1) / 11
        let p = 8.0 / 11.0;
        assert!(s.admit_retry(&ctx(None, None), 0, p + 0.01, &g, false).is_ok());
        assert_eq!(s.admit_retry(&ctx(None, None), 0, p - 0.01, &g, false).map(|a| a.throttled), Ok(Some(p)));
    }

    #[test]
    fn concurrency_cap_releases_on_outcome_or_expiry() {
        let g = Guardrails { max_concurrent_retries: Some(2), in_flight_ttl_ms: 1_000, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        assert!(s.admit_retry(&ctx(None, Some("a")), 0, 0.5, &g, true).is_ok());
        assert!(s.admit_retry(&ctx(None, Some("b")), 0, 0.5, &g, true).is_ok());
        assert!(matches!(
            s.admit_retry(&ctx(None, Some("c")), 0, 0.5, &g, true),
            Err(Refusal::Concurrency { .. })
        ));
        assert!(s.admit_retry(&ctx(None, Some("a")), 0, 0.5, &g, true).is_ok(), "same job, same slot");
        s.on_outcome(&Attempt::new("a", "pay", 2, false), 10, &g, &b);
        assert!(s.admit_retry(&ctx(None, Some("c")), 10, 0.5, &g, true).is_ok());
        assert!(s.admit_retry(&ctx(None, Some("d")), 2_000, 0.5, &g, true).is_ok(), "b and c expired");
    }

    #[test]
    fn lower_priorities_leave_headroom_and_critical_may_bypass() {
        let g = Guardrails { min_retries_per_sec: 0.0, per_tenant_limits: false, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..50 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        let low = RetryContext { share: g.priority_shares.of(Some(Priority::Low)), ..ctx(None, None) };
        let granted = (0..10).filter(|_| s.admit_retry(&low, 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 5, "low may use half of the 10-retry budget");
        assert_eq!(
            s.admit_retry(&low, 0, 0.5, &g, true),
            Err(Refusal::Budget { used: 5, allowed: 5, total: 10 })
        );
        let critical = RetryContext { share: 1.0, ..ctx(None, None) };
        let granted = (0..10).filter(|_| s.admit_retry(&critical, 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 5, "the reserved half is there for higher priorities");
        let bypass = RetryContext { bypass_global: true, ..critical };
        assert_eq!(s.admit_retry(&bypass, 0, 0.5, &g, true).map(|a| a.bypassed), Ok(Some("retry_budget")));
    }

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

    #[test]
    fn patch_updates_some_fields_and_names_bad_ones() {
        let g = Guardrails::default();
        let next = g.patched(&serde_json::json!({"max_attempts": 8, "max_delay_ms": 180000})).unwrap();
        assert_eq!((next.max_attempts, next.max_delay_ms, next.max_budget_percent), (8, 180_000, 20.0));
        let err = g.patched(&serde_json::json!({"max_budget_percent": 150.0})).unwrap_err();
        assert_eq!(err.field(), Some("max_budget_percent"));
        let err = g.patched(&serde_json::json!({"max_attempts": "many"})).unwrap_err();
        assert_eq!(err.field(), Some("max_attempts"));
    }
}

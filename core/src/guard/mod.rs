//! Guardrails: limits that can only make a decision safer (fewer or later retries),
//! each naming itself in `policy_guardrails` when it acts.
//!
//! The shared, stateful ones live in this module:
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
//!   holds at least [`MIN_EVIDENCE_CALLS`](downstream::MIN_EVIDENCE_CALLS) calls in its
//!   window: a new job type's first failure is not an overload;
//! - a host that never reports first-attempt successes (an HTTP API caller reporting
//!   retries only) would make every downstream look failing, since the first attempts
//!   that succeeded are invisible: until a downstream reports one, its first-attempt
//!   failures are not counted as calls, and it is judged by its retries alone.
//!
//! # Where each part lives
//!
//! - `settings.rs`: what operators set, [`Guardrails`] and [`PriorityShares`], and how
//!   each setting is checked;
//! - `downstream.rs`: what one downstream has done lately (its calls, degraded intervals,
//!   latest run, breaker and reported evidence), and the thresholds that judge it;
//! - `state.rs`: [`GuardState`], the one record behind the engine's lock, and how
//!   `decide` and `record` are counted into it (the counting protocol above);
//! - `admit.rs`: whether one more retry may go: budget, tenant share, concurrency cap
//!   and adaptive throttling, with a fleet's spending counted in;
//! - `outage.rs`: how a downstream stands (unhealthy, degraded, down or back) and the
//!   probe turns while it is down;
//! - `breakers.rs`: each downstream's circuit breaker as the state holds it.
//!
//! Files import downward in that order (`admit`, `outage` and `breakers` add methods to
//! `GuardState`); code outside uses the re-exports below, `crate::guard::X`.

mod admit;
mod breakers;
mod downstream;
mod outage;
mod settings;
mod state;

pub use admit::{Admitted, BudgetSnapshot, Refusal, RetryContext};
pub use settings::{Guardrails, PriorityShares, DEFAULT_DEADLINE_MS};
pub use state::{GuardState, Transition};

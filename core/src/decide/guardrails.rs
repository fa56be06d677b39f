//! Stage 5, the guardrails: they can only make a decision safer (fewer retries, later
//! retries), and each names itself in `policy_guardrails`. In order: the circuit
//! breaker, the server's `Retry-After`, the min and max delay, the deadline, the caps
//! and budgets (the context's own, concurrency, the tenant's share, the retry budget,
//! adaptive throttling) and probe-and-release. The first guard that refuses ends the
//! pass.

use std::ops::ControlFlow::{self, Break, Continue};

use crate::api::{Guardrail, Method, Priority};
use crate::backoff::{mix64, rand01};
use crate::breaker::Admit;
use crate::contexts;
use crate::guard::{Admitted, GuardState, Guardrails, Refusal, RetryContext};
use crate::say;
use crate::say::{Ms, Pct};

use super::case::Case;
use super::controls::{context_refusal, reserved};
use super::draft::{Draft, World};

/// Whether the pass goes on to the next guard (`Break`: a guard refused).
type Flow = ControlFlow<()>;

/// What every guard of one pass reads.
struct Pass<'a> {
    w: &'a World<'a>,
    c: &'a Case<'a>,
    g: &'a Guardrails,
    deadline: Deadline,
    /// Whether this decision commits (counts a retry, spends budget, claims a turn).
    commit: bool,
    bits: u64,
}

/// Floors, caps, deadline, breaker and the shared budgets, in that order.
#[inline]
pub(super) fn apply(w: &World<'_>, c: &Case<'_>, state: &mut GuardState, d: &mut Draft) {
    let g = &w.settings.strategy.guardrails;
    let p = Pass {
        w,
        c,
        g,
        deadline: Deadline { limit: c.deadline_ms, elapsed: c.f.since_first_failure_ms.unwrap_or(0) },
        commit: w.live(),
        bits: mix64(w.bits),
    };
    let _ = guard(&p, state, d);
}

#[inline]
fn guard(p: &Pass<'_>, state: &mut GuardState, d: &mut Draft) -> Flow {
    circuit_breaker(p, state, d)?;
    retry_after(p, d)?;
    min_delay(p.g, d);
    max_delay(p.g, d);
    deadline(p, d)?;
    caps_and_budgets(p, state, d)?;
    probe_and_release(p, state, d);
    Continue(())
}

/// An open breaker holds the retry until it half-opens; past the max delay, no retry.
#[inline]
fn circuit_breaker(p: &Pass<'_>, state: &mut GuardState, d: &mut Draft) -> Flow {
    let (f, g) = (p.c.f, p.g);
    let breaker = p.c.context.map_or(&p.w.settings.strategy.circuit_breaker, |c| &c.breaker);
    if let Admit::Wait(wait) = state.breaker_admit(&f.job_type, p.w.now, breaker, p.commit) {
        if wait > g.max_delay_ms {
            d.refuse(
                Method::Breaker,
                Some(Guardrail::CircuitBreaker),
                format!(
                    "Circuit breaker for {} is open for {}, beyond the {} max delay.",
                    f.job_type,
                    Ms(wait),
                    Ms(g.max_delay_ms)
                ),
            );
            return Break(());
        }
        if wait > d.delay_ms {
            d.method = Method::Breaker;
            d.clip(
                Guardrail::CircuitBreaker,
                wait,
                format_args!("circuit breaker for {} is open, so wait {}", f.job_type, Ms(wait)),
            );
        }
    }
    Continue(())
}

/// Never sooner than the server asked, up to the max delay: a wait past it is capped
/// there (a hint is a hint: one hostile or mistaken header never parks a job for days),
/// and the deadline guard after it refuses a retry that would start too late.
#[inline]
fn retry_after(p: &Pass<'_>, d: &mut Draft) -> Flow {
    let g = p.g;
    if !g.respect_retry_after {
        return Continue(());
    }
    let Some(ra) = p.c.f.retry_after_ms(p.w.now) else { return Continue(()) };
    if ra > g.max_delay_ms {
        d.method = Method::Guardrail;
        d.clip(
            Guardrail::RetryAfter,
            g.max_delay_ms,
            format_args!(
                "the server asked to wait {} (Retry-After), capped at the max delay ({})",
                Ms(ra),
                Ms(g.max_delay_ms)
            ),
        );
    } else if ra > d.delay_ms {
        d.clip(Guardrail::RetryAfter, ra, format_args!("raised to the server's Retry-After of {}", Ms(ra)));
    }
    Continue(())
}

#[inline]
fn min_delay(g: &Guardrails, d: &mut Draft) {
    if d.delay_ms < g.min_delay_ms {
        d.clip(
            Guardrail::MinDelay,
            g.min_delay_ms,
            format_args!("raised to the {} min delay", Ms(g.min_delay_ms)),
        );
    }
}

#[inline]
fn max_delay(g: &Guardrails, d: &mut Draft) {
    if d.delay_ms > g.max_delay_ms {
        d.clip(
            Guardrail::MaxDelay,
            g.max_delay_ms,
            format_args!("capped at the {} max delay", Ms(g.max_delay_ms)),
        );
    }
}

/// The job's deadline (`Case::deadline_ms`) against the time spent since its first
/// failure.
struct Deadline {
    limit: u64,
    elapsed: u64,
}

impl Deadline {
    /// The deadline a retry after `delay_ms` would start past, if any.
    fn past(&self, delay_ms: u64) -> Option<u64> {
        Some(self.limit).filter(|&limit| self.elapsed.saturating_add(delay_ms) > limit)
    }

    fn refuse(&self, d: &mut Draft, limit: u64) -> Flow {
        d.refuse(
            Method::Guardrail,
            Some(Guardrail::Deadline),
            format!(
                "A retry in {} would start after the {} deadline ({} already spent).",
                Ms(d.delay_ms),
                Ms(limit),
                Ms(self.elapsed)
            ),
        );
        Break(())
    }

    /// How long a job may still wait.
    fn room(&self) -> u64 {
        self.limit.saturating_sub(self.elapsed)
    }
}

/// No retry that would start after the deadline.
#[inline]
fn deadline(p: &Pass<'_>, d: &mut Draft) -> Flow {
    match p.deadline.past(d.delay_ms) {
        Some(limit) => p.deadline.refuse(d, limit),
        None => Continue(()),
    }
}

/// The context's own caps, then the shared ones (concurrency, the tenant's share, the
/// retry budget) and adaptive throttling; a granted retry is counted against them.
#[inline]
fn caps_and_budgets(p: &Pass<'_>, state: &mut GuardState, d: &mut Draft) -> Flow {
    let (f, g, context, now) = (p.c.f, p.g, p.c.context, p.w.now);
    let priority = f.priority.or(context.and_then(|c| c.context.priority));
    let bypass_global = priority == Some(Priority::Critical)
        && context.is_some_and(|c| c.context.respect_global_backpressure == Some(false));
    let ctx = RetryContext {
        job_type: &f.job_type,
        tenant: f.tenant.as_deref(),
        job_id: f.job_id.as_deref(),
        retry_at_ms: now.saturating_add(d.delay_ms),
        share: g.priority_shares.of(priority),
        bypass_global,
    };
    if let Err((guard, why)) = context_caps(p, &ctx, priority, false) {
        d.refuse(Method::Guardrail, Some(guard), why);
        return Break(());
    }
    let admitted = state.admit_retry(&ctx, now, rand01(p.bits), g, p.commit);
    if admitted.is_ok() && p.commit {
        let _ = context_caps(p, &ctx, priority, true);
    }
    if let Ok(Admitted { bypassed: Some(limit), .. }) = admitted {
        say!(
            &mut d.rationale,
            "; critical priority went past the global ",
            limit.replace('_', " "),
            " (the ",
            context.map_or("", |c| c.name.as_str()),
            " context does not respect global backpressure)"
        );
    }
    match admitted.map(|a| a.throttled) {
        Ok(None) => Continue(()),
        Ok(Some(probability)) => adaptive_throttle(p, state, probability, d),
        Err(refusal) => {
            let why = budget_refusal(p, refusal, priority);
            d.refuse(Method::Guardrail, Some(refusal.guardrail()), why);
            Break(())
        }
    }
}

/// The caps of the job type's context (if it has any); with `commit`, count the retry.
#[inline]
fn context_caps(
    p: &Pass<'_>,
    ctx: &RetryContext<'_>,
    priority: Option<Priority>,
    commit: bool,
) -> Result<(), (Guardrail, String)> {
    match p.c.context.filter(|c| c.has_limits) {
        None => Ok(()),
        Some(c) => capped_context(p, c, ctx, priority, commit),
    }
}

fn capped_context(
    p: &Pass<'_>,
    c: &contexts::ResolvedContext,
    ctx: &RetryContext<'_>,
    priority: Option<Priority>,
    commit: bool,
) -> Result<(), (Guardrail, String)> {
    let mut usage = p.w.context_caps();
    usage.admit(c, ctx.job_id, ctx.retry_at_ms, p.g.in_flight_ttl_ms, ctx.share, p.w.now, commit).map_err(
        |refusal| {
            let guard = match refusal {
                contexts::ContextRefusal::Concurrency(..) => Guardrail::Concurrency,
                contexts::ContextRefusal::Budget(..) => Guardrail::RetryBudget,
            };
            (guard, context_refusal(c, refusal, priority))
        },
    )
}

/// Why a shared cap refused the retry.
fn budget_refusal(p: &Pass<'_>, refusal: Refusal, priority: Option<Priority>) -> String {
    match refusal {
        Refusal::Concurrency { in_flight, allowed, limit } => format!(
            "Not retrying: {in_flight} retries are already in flight (limit {limit}{}).",
            reserved(priority, allowed, u64::from(limit))
        ),
        Refusal::Tenant { used, allowed } => format!(
            "Not retrying: tenant {} used {used} of its {allowed} retries in the budget window.",
            p.c.f.tenant.as_deref().unwrap_or("?")
        ),
        Refusal::Budget { used, allowed, total } => format!(
            "Not retrying: the retry budget is spent ({used} of {total} retries in the window{}).",
            reserved(priority, allowed, total)
        ),
    }
}

/// An overloaded downstream rejects this share `p` of retries: a throttled retry is
/// deferred to when, at that rate, it would have been let through, the planned delay
/// over 1 − p (derived from what was learned or the rules, never a flat wait), capped
/// at the max delay; none past the deadline. A downstream down for every caller is
/// probe-and-release's (its jobs take turns), not throttling's.
#[inline]
fn adaptive_throttle(p: &Pass<'_>, state: &mut GuardState, probability: f64, d: &mut Draft) -> Flow {
    let (f, g) = (p.c.f, p.g);
    if g.probe_and_release && state.down(&f.job_type, p.w.now) {
        return Continue(());
    }
    let planned = d.delay_ms.max(g.min_delay_ms).max(1_000) as f64;
    let defer = ((planned / (1.0 - probability).max(0.05)) as u64).min(g.max_delay_ms);
    if let Some(limit) = p.deadline.past(defer.max(d.delay_ms)) {
        d.delay_ms = defer.max(d.delay_ms);
        return p.deadline.refuse(d, limit);
    }
    if defer > d.delay_ms {
        d.method = Method::Guardrail;
        d.clip(
            Guardrail::AdaptiveThrottle,
            defer,
            format_args!(
                "{} is overloaded (adaptive throttling rejects {} of retries), so this one is deferred to {}",
                f.job_type,
                Pct(probability),
                Ms(defer)
            ),
        );
    }
    Continue(())
}

/// Probe-and-release, while the downstream is down: one job at a time probes it, the
/// others wait (no later than the max delay and the deadline allow) and check in, and
/// the first call that gets through releases them all (`Engine::released`).
#[inline]
fn probe_and_release(p: &Pass<'_>, state: &mut GuardState, d: &mut Draft) {
    let (f, now) = (p.c.f, p.w.now);
    if !(p.commit && p.g.probe_and_release && state.down(&f.job_type, now)) {
        return;
    }
    // Jobs whose host checks in are woken the moment it is back: they may wait for it up
    // to their deadline. The others keep to the max delay.
    let most = if state.checks_in(&f.job_type) {
        p.deadline.room()
    } else {
        p.g.max_delay_ms.min(p.deadline.room())
    };
    let latest = now.saturating_add(most);
    let planned = now.saturating_add(d.delay_ms);
    let at = state.claim_probe(&f.job_type, now, planned, latest);
    if at > planned {
        d.clip(
                Guardrail::ProbeAndRelease,
            at - now,
            format_args!(
                "{} is down for every caller and other jobs probe it sooner, so wait {} unless they find it back",
                f.job_type,
                Ms(at - now)
            ),
        );
    }
    let every = check_in_interval(d.delay_ms);
    if d.delay_ms >= 2 * every {
        d.check_in_ms = Some(every);
        say!(
            &mut d.rationale,
            "; check in every ",
            Ms(every),
            " and retry as soon as calls to ",
            f.job_type.as_str(),
            " get through again"
        );
    }
}

/// How often a job waiting `delay_ms` for a downstream that is down asks whether it is
/// back: a sixteenth of the wait, 1–10 s, so a release costs a few seconds at most and a
/// waiting job wakes at most 16 times.
fn check_in_interval(delay_ms: u64) -> u64 {
    (delay_ms / 16).clamp(1_000, 10_000)
}

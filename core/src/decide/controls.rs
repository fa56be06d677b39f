//! Stage 4, the controls: what operators and callers set around a decision. An
//! override's fixed delay replaces the tiers' choice; the job type's context is named;
//! health-aware backoff stretches or shortens the rules' delay within the policy's
//! bounds; an override's min and max delay clamp it. (The context's own caps are
//! admitted with the shared budgets, in [`super::guardrails`].)

use crate::api::{Guardrail, Method, Priority};
use crate::contexts;
use crate::guard::GuardState;
use crate::health::{self, Signals};
use crate::say;
use crate::say::Ms;

use super::case::Case;
use super::draft::{Draft, World};

/// An override's fixed delay replaces whatever the tiers chose.
#[inline]
pub(super) fn fixed_delay(c: &Case<'_>, d: &mut Draft) {
    let Some((delay, o)) = c.overrides.delay_ms else { return };
    d.delay_ms = delay;
    d.method = Method::Guardrail;
    d.confidence = 1.0;
    d.rules_bounds = None;
    d.name(Guardrail::Override);
    d.rationale.clear();
    say!(
        &mut d.rationale,
        "Retry ",
        c.retry_number(),
        " of ",
        c.max_attempts,
        " in ",
        Ms(delay),
        ": the delay an operator set for ",
        o.scope()
    );
}

/// A granted retry says whose settings it followed.
#[inline]
pub(super) fn name_context(c: &Case<'_>, d: &mut Draft) {
    if let Some(ctx) = c.context.filter(|_| d.retry) {
        say!(&mut d.rationale, "; settings of the ", ctx.name.as_str(), " context");
    }
}

/// Health-aware backoff: stretch or shorten the rules tier's delay by the downstream's
/// health score, within the policy's bounds, and say so. `unhealthy` is known when this
/// failure was just counted (a live decision).
pub(super) fn adjust_for_health(
    w: &World<'_>,
    c: &Case<'_>,
    state: &mut GuardState,
    unhealthy: Option<bool>,
    d: &mut Draft,
) {
    let Some((lo, hi)) = d.rules_bounds else { return };
    let (f, now) = (c.f, w.now);
    let cfg = &w.settings.strategy.health;
    if !cfg.enabled || c.context.is_some_and(|ctx| !ctx.health_aware()) {
        return;
    }
    // Without the caller's signals only an unhealthy view can change the delay (it only
    // ever stretches): most decisions stop here, before any score is computed.
    if f.health.is_empty() && !unhealthy.unwrap_or_else(|| state.unhealthy(&f.job_type, now)) {
        return;
    }
    let adaptation = c.context.and_then(|ctx| ctx.context.adaptation_factor).unwrap_or(cfg.adaptation_factor);
    let (view, _, _) = state.health_view(&f.job_type, now);
    let signals = if f.health.is_empty() { Signals::default() } else { Signals::from_map(&f.health) };
    let Some(score) = health::score(signals, view, cfg) else { return };
    let factor = health::factor(&score, adaptation);
    if factor == 1.0 && signals.is_empty() {
        return;
    }
    let before = d.delay_ms;
    d.delay_ms = health::adjust(before, factor, lo, hi);
    d.rationale.push_str("; ");
    score.describe(&mut d.rationale);
    match d.delay_ms.cmp(&before) {
        std::cmp::Ordering::Greater => say!(&mut d.rationale, " stretches it to ", Ms(d.delay_ms)),
        std::cmp::Ordering::Less => say!(&mut d.rationale, " shortens it to ", Ms(d.delay_ms)),
        std::cmp::Ordering::Equal => d.rationale.push_str(" leaves it as is"),
    }
}

/// The overrides' min and max delay for the scope (the global guardrails come after).
#[inline]
pub(super) fn clamp_to_overrides(c: &Case<'_>, d: &mut Draft) {
    let ov = c.overrides;
    if let Some((lo, o)) = ov.min_delay_ms.filter(|&(lo, _)| d.delay_ms < lo) {
        d.clip(
            Guardrail::Override,
            lo,
            format_args!("raised to the {} min delay set for {}", Ms(lo), o.scope()),
        );
    }
    if let Some((hi, o)) = ov.max_delay_ms.filter(|&(hi, _)| d.delay_ms > hi) {
        d.clip(
            Guardrail::Override,
            hi,
            format_args!("capped at the {} max delay set for {}", Ms(hi), o.scope()),
        );
    }
}

/// Every decision an override shaped names it and says how (unless the emergency stop
/// spoke: it overrides the overrides).
#[inline]
pub(super) fn name_overrides(c: &Case<'_>, d: &mut Draft) {
    if !c.overrides.is_empty() && !d.guards.contains(&Guardrail::EmergencyStop) {
        d.name(Guardrail::Override);
        c.overrides.describe(&mut d.rationale);
    }
}

/// "; low priority may use 5 of them, the rest is kept for higher priorities" when a
/// priority's share is what bound.
pub(super) fn reserved(priority: Option<Priority>, allowed: u64, total: u64) -> String {
    match priority {
        Some(p) if allowed < total => format!(
            "; {} priority may use {allowed} of them, the rest is kept for higher priorities",
            p.as_str()
        ),
        _ => String::new(),
    }
}

/// Why the job type's context refused a retry.
pub(super) fn context_refusal(
    c: &contexts::ResolvedContext,
    refusal: contexts::ContextRefusal,
    priority: Option<Priority>,
) -> String {
    match refusal {
        contexts::ContextRefusal::Concurrency(n, allowed, cap) => format!(
            "Not retrying: {n} retries of the {} context are in flight (its limit is {cap}{}).",
            c.name,
            reserved(priority, allowed, u64::from(cap))
        ),
        contexts::ContextRefusal::Budget(window, used, allowed, cap) => format!(
            "Not retrying: the {} context used {used} of its {cap} retries per {window}{}.",
            c.name,
            reserved(priority, allowed, u64::from(cap))
        ),
    }
}

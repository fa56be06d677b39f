//! The controls around a decision: operator overrides, context caps, priority,
//! health-aware backoff and lifecycle events (the engine's `impl` for them, kept apart
//! from the tiers in `engine.rs`).

use super::*;

impl Engine {
    /// The caps of the job type's context (if it has any); with `commit`, count the retry.
    #[inline]
    pub(super) fn admit_context(
        &self,
        controls: &Controls<'_>,
        ctx: &RetryContext<'_>,
        priority: Option<Priority>,
        now: u64,
        g: &Guardrails,
        commit: bool,
    ) -> std::result::Result<(), (&'static str, String)> {
        match controls.context.filter(|c| c.has_limits) {
            None => Ok(()),
            Some(c) => self.admit_capped_context(c, ctx, priority, now, g, commit),
        }
    }

    fn admit_capped_context(
        &self,
        c: &contexts::Resolved,
        ctx: &RetryContext<'_>,
        priority: Option<Priority>,
        now: u64,
        g: &Guardrails,
        commit: bool,
    ) -> std::result::Result<(), (&'static str, String)> {
        let mut usage = self.context_state.lock().unwrap_or_else(|p| p.into_inner());
        usage.admit(c, ctx.job_id, ctx.retry_at_ms, g.in_flight_ttl_ms, ctx.share, now, commit).map_err(
            |refusal| {
                let guard = match refusal {
                    contexts::Refusal::Concurrency(..) => "concurrency",
                    contexts::Refusal::Budget(..) => "retry_budget",
                };
                (guard, context_refusal(c, refusal, priority))
            },
        )
    }

    #[inline]
    pub(super) fn emit_transitions(&self, transitions: Vec<Transition>) {
        if !transitions.is_empty() {
            self.emit_each_transition(transitions);
        }
    }

    fn emit_each_transition(&self, transitions: Vec<Transition>) {
        for (key, from, to, at) in transitions {
            self.events.emit(EventKind::BreakerStateChanged, || Event {
                breaker_from: Some(from),
                breaker_to: Some(to),
                ..Event::new(EventKind::BreakerStateChanged, at, &key)
            });
        }
    }

    /// The lifecycle events of a decision: scheduled or gave up, and any guardrail.
    pub(super) fn emit_decision(&self, f: &Features, d: &Decision, now: u64) {
        let event = |kind| Event {
            job_id: f.job_id.clone(),
            tenant: f.tenant.clone(),
            queue: f.queue.clone(),
            attempt_number: Some(f.attempt_number),
            error_class: Some(d.error_class.clone()),
            delay_ms: d.should_retry.then_some(d.delay_ms),
            method: Some(d.method),
            guardrails: d.policy_guardrails.iter().map(|g| g.to_string()).collect(),
            rationale: Some(d.rationale.clone()),
            ..Event::new(kind, now, &f.job_type)
        };
        let kind = if d.should_retry { EventKind::RetryScheduled } else { EventKind::GaveUp };
        self.events.emit(kind, || event(kind));
        if !d.policy_guardrails.is_empty() {
            self.events.emit(EventKind::GuardrailTriggered, || event(EventKind::GuardrailTriggered));
        }
    }

    /// Events of an outcome, and the context caps' slot it frees.
    pub(super) fn after_outcome(&self, a: &Attempt, at: u64, transitions: Vec<Transition>, s: &Settings) {
        self.emit_transitions(transitions);
        if a.attempt_number > 1 {
            let kind = if a.success { EventKind::RetrySucceeded } else { EventKind::RetryFailed };
            self.events.emit(kind, || Event {
                job_id: Some(a.job_id.clone()),
                tenant: a.tenant.clone(),
                queue: a.queue.clone(),
                attempt_number: Some(a.attempt_number),
                error_class: a.error_class.clone(),
                delay_ms: Some(a.delay_ms),
                ..Event::new(kind, at, &a.job_type)
            });
        }
        if s.contexts.get(&a.job_type).is_some_and(|c| c.has_limits) {
            self.context_state.lock().unwrap_or_else(|p| p.into_inner()).release(&a.job_id);
        }
    }

    /// The overrides in force, most specific first (expired ones are dropped).
    pub fn overrides(&self, now_ms: Option<u64>) -> Vec<Override> {
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        if s.overrides.clone().purge(now) {
            let _ = self.update_settings(|s| {
                s.overrides.purge(now);
                Ok(())
            });
        }
        self.settings().overrides.list()
    }

    /// Add an override (validated; a named policy must exist); one of the same name is
    /// replaced and returned.
    pub fn add_override(&self, o: Override, now_ms: Option<u64>) -> Result<Option<Override>> {
        let now = now_ms.unwrap_or_else(time::now_ms);
        o.validate(now)?;
        let mut replaced = None;
        self.update_settings(|s| {
            if let Some(name) = &o.policy {
                if s.policies.get(name).is_none() {
                    return Err(Error::invalid("policy", format!("no policy named {name:?}")));
                }
            }
            s.overrides.purge(now);
            replaced = s.overrides.upsert(o);
            Ok(())
        })?;
        Ok(replaced)
    }

    /// Remove an override by name and return it.
    pub fn remove_override(&self, name: &str) -> Result<Override> {
        let mut removed = None;
        self.update_settings(|s| {
            removed = Some(s.overrides.remove(name)?);
            Ok(())
        })?;
        removed.ok_or_else(|| Error::NotFound { what: format!("override {name:?}") })
    }

    /// The health of `job_type`'s downstream: its score, the factor rules-tier delays
    /// get, the engine's own view and the last signals a caller sent.
    pub fn health(&self, job_type: &str, now_ms: Option<u64>) -> Result<HealthReport> {
        Features::new(job_type, 1).validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let (view, signals, signals_at_ms) = self.guard().health_view(job_type, now);
        let cfg = &s.strategy.health;
        let context = s.contexts.get(job_type);
        let adaptation = context.and_then(|c| c.context.adaptation_factor).unwrap_or(cfg.adaptation_factor);
        let on = cfg.enabled && context.is_none_or(|c| c.health_aware());
        let score = health::score(signals, view, cfg);
        Ok(HealthReport {
            job_type: job_type.to_string(),
            score: score.map(|s| round3(s.value)),
            delay_factor: score.filter(|_| on).map_or(1.0, |s| round3(health::factor(&s, adaptation))),
            success_rate: view.success_rate.map(round3),
            requests: view.requests,
            breaker_state: view.breaker,
            signals,
            signals_at_ms,
        })
    }

    /// Receive lifecycle events of `kinds` (all when empty) in a queue of `capacity`;
    /// when it is full, new events are dropped (and counted), never waited for.
    pub fn subscribe(&self, kinds: &[EventKind], capacity: usize) -> Result<Subscription> {
        self.events.subscribe(kinds, capacity)
    }

    /// Subscriptions open now (a closed or dropped one no longer counts).
    pub fn event_subscribers(&self) -> usize {
        self.events.subscribers()
    }
}

/// What shapes a decision beyond the policy: the job type's context and the overrides.
pub(super) struct Controls<'a> {
    pub(super) context: Option<&'a contexts::Resolved>,
    pub(super) overrides: &'a Overrides<'a>,
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

pub(super) fn context_refusal(
    c: &contexts::Resolved,
    refusal: contexts::Refusal,
    priority: Option<Priority>,
) -> String {
    match refusal {
        contexts::Refusal::Concurrency(n, allowed, cap) => format!(
            "Not retrying: {n} retries of the {} context are in flight (its limit is {cap}{}).",
            c.name,
            reserved(priority, allowed, u64::from(cap))
        ),
        contexts::Refusal::Budget(window, used, allowed, cap) => format!(
            "Not retrying: the {} context used {used} of its {cap} retries per {window}{}.",
            c.name,
            reserved(priority, allowed, u64::from(cap))
        ),
    }
}

/// An override's fixed delay replaces whatever the tiers chose.
#[inline]
pub(super) fn fixed_delay(ov: &Overrides<'_>, f: &Features, max_attempts: u32, d: &mut Draft) {
    let Some((delay, o)) = ov.delay_ms else { return };
    d.delay_ms = delay;
    d.method = Method::Guardrail;
    d.confidence = 1.0;
    d.rules_bounds = None;
    d.name("override");
    d.rationale.clear();
    say!(
        &mut d.rationale,
        "Retry ",
        f.attempt_number + 1,
        " of ",
        max_attempts,
        " in ",
        Ms(delay),
        ": the delay an operator set for ",
        o.scope()
    );
}

/// The overrides' min and max delay for the scope (the global guardrails come after).
#[inline]
pub(super) fn clamp_to_overrides(ov: &Overrides<'_>, d: &mut Draft) {
    if let Some((lo, o)) = ov.min_delay_ms.filter(|&(lo, _)| d.delay_ms < lo) {
        d.clip("override", lo, format_args!("raised to the {} min delay set for {}", Ms(lo), o.scope()));
    }
    if let Some((hi, o)) = ov.max_delay_ms.filter(|&(hi, _)| d.delay_ms > hi) {
        d.clip("override", hi, format_args!("capped at the {} max delay set for {}", Ms(hi), o.scope()));
    }
}

/// Health-aware backoff: stretch or shorten the rules tier's delay by the downstream's
/// health score, within the policy's bounds, and say so.
pub(super) fn adjust_for_health(
    f: &Features,
    s: &Settings,
    context: Option<&contexts::Resolved>,
    state: &mut GuardState,
    now: u64,
    unhealthy: Option<bool>,
    d: &mut Draft,
) {
    let Some((lo, hi)) = d.rules_bounds else { return };
    let cfg = &s.strategy.health;
    if !cfg.enabled || context.is_some_and(|c| !c.health_aware()) {
        return;
    }
    // Without the caller's signals only an unhealthy view can change the delay (it only
    // ever stretches): most decisions stop here, before any score is computed.
    if f.health.is_empty() && !unhealthy.unwrap_or_else(|| state.unhealthy(&f.job_type, now)) {
        return;
    }
    let adaptation = context.and_then(|c| c.context.adaptation_factor).unwrap_or(cfg.adaptation_factor);
    let (view, _, _) = state.health_view(&f.job_type, now);
    let signals = if f.health.is_empty() { Signals::default() } else { Signals::from_map(&f.health) };
    let Some(score) = health::score(signals, view, &s.strategy.health) else { return };
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

//! Lifecycle events of decisions and outcomes (scheduled, gave up, guardrail
//! triggered, retry succeeded or failed, breaker state changed) and subscriptions.

use crate::api::{Attempt, Decision, Features};
use crate::decide::Settings;
use crate::error::Result;
use crate::events::{Event, EventKind, Subscription};
use crate::guard::Transition;

use super::Engine;

impl Engine {
    #[inline]
    pub(super) fn emit_transitions(&self, transitions: Vec<Transition>) {
        if !transitions.is_empty() {
            self.events.breaker_changes(transitions);
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
            guardrails: d.policy_guardrails.iter().map(|g| g.as_str().to_string()).collect(),
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

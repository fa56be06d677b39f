//! Stage 2, hard refusals: cases never retried, whatever any tier thinks. The emergency
//! stop wins over everything; then permanent failures, a policy that does not retry, no
//! attempts left, a call that is not idempotent and may have taken effect, and an
//! operator's switch that disables retries.

use crate::api::{Guardrail, Method};
use crate::classify::ErrorKind;

use super::case::Case;
use super::draft::World;

/// Why a failure is not retried: the method that says so, the guardrail it names (if
/// any) and the sentence.
pub(super) type HardRefusal = (Method, Option<Guardrail>, String);

/// The first hard refusal that applies, if any.
#[inline]
pub(super) fn refusal(w: &World<'_>, c: &Case<'_>) -> Option<HardRefusal> {
    let (f, kind, label, policy) = (c.f, c.kind, c.label, c.policy);
    if w.emergency_stop() {
        return Some((
            Method::Guardrail,
            Some(Guardrail::EmergencyStop),
            "Emergency stop is on: all retries are halted.".into(),
        ));
    }
    if !kind.retryable() {
        let why = if kind == ErrorKind::Programming {
            format!(
                "Not retrying: {label} is a programming error, a bug in the calling code: a retry \
                 runs the same code and fails the same way (name its type in retry_on to retry it)."
            )
        } else {
            format!(
                "Not retrying: {label} failures ({}) are permanent and need a fix, not a retry.",
                kind.as_str()
            )
        };
        let guard = policy.retries().then_some(Guardrail::NeverRetry);
        let method = if guard.is_some() { Method::Guardrail } else { Method::Rules };
        return Some((method, guard, why));
    }
    if !policy.retries() && c.policy_max <= 1 && f.max_attempts.is_none() {
        return Some((
            Method::Rules,
            None,
            format!("The {} policy does not retry {label} failures.", policy.name),
        ));
    }
    if f.attempt_number >= c.max_attempts {
        // The guardrail names itself only when it, not the policy or the caller, binds.
        let g = &w.settings.strategy.guardrails;
        let asked = f.max_attempts.unwrap_or(c.policy_max);
        let (method, guard) = if c.attempts_allowed() == g.max_attempts && g.max_attempts < asked {
            (Method::Guardrail, Some(Guardrail::MaxAttempts))
        } else {
            (Method::Rules, None)
        };
        return Some((
            method,
            guard,
            format!("Attempt {} of {} failed: no attempts left.", f.attempt_number, c.max_attempts),
        ));
    }
    if !f.is_idempotent() && kind.may_have_taken_effect() {
        return Some((
            Method::Guardrail,
            Some(Guardrail::NonIdempotent),
            format!(
                "Not retrying a non-idempotent call after a {} failure that may have taken effect.",
                kind.as_str()
            ),
        ));
    }
    if let Some((true, o)) = c.overrides.retries_disabled {
        return Some((
            Method::Guardrail,
            Some(Guardrail::Override),
            format!("Not retrying: retries are disabled for {}", o.scope()),
        ));
    }
    None
}

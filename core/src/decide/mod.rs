//! One decision, told in call order. A failure comes in as [`Features`]; the engine hands
//! in a [`World`] (the settings snapshot, what was learned, the guard state, the clock,
//! this decision's random bits, and whether it is live or a preview), and each stage
//! works on one [`Draft`]: it may refuse it, move its delay (clip) and name itself.
//!
//! 1. **The case** (`case.rs`): classify the failure (`503` → `service_unavailable`), pick
//!    the policy (an override's, else the matched one shaped by the job type's context),
//!    the attempts it gets (the caller's number when it names one, else the policy's, up
//!    to the guardrails' and an override's) and its deadline (30 minutes unless the
//!    call, its policy or an operator says otherwise). Failures that did not use up an
//!    attempt (a known rate-limit reset, a downstream down for all) are added to the
//!    attempts once they run out (`free.rs`). A live failure also teaches the key's
//!    rate-limit reset (`learned.rs`).
//! 2. **Hard refusals** (`refusals.rs`): the emergency stop, permanent failures, a policy
//!    that does not retry, no attempts left, a non-idempotent call that may have taken
//!    effect, retries disabled by an operator. These end the story: no tier is asked.
//! 3. **The tiers** (`tiers.rs`, `learned.rs`): the server's `Retry-After` (or the rate
//!    limit's learned reset) if it said when; else the ML tier's plan, else the Bayesian
//!    tier's, when the one rule `tiers::judge` follows it (later than the rules at any
//!    confidence, earlier only when confident and not on the final attempt); else the
//!    rules tier's backoff. The rationale says what the tiers that did not decide had.
//! 4. **The controls** (`controls.rs`): an operator's fixed delay replaces the tiers'
//!    choice; the failure is counted in the guard state (live), health-aware backoff
//!    moves a rules delay within its bounds, and an override's min and max delay clamp it.
//! 5. **The guardrails** (`guardrails.rs`), one function each: circuit breaker,
//!    `Retry-After`, min and max delay, deadline, caps and budgets (context, concurrency,
//!    tenant, retry budget, adaptive throttling), probe-and-release. They only ever make
//!    a decision safer, and the first that refuses ends the pass.
//!
//! The draft becomes a [`Decision`]: retry or not, the delay, the tier that decided
//! (`method`), its confidence, the guardrails that acted and one sentence saying why.

mod case;
mod controls;
mod draft;
mod free;
mod guardrails;
mod learned;
mod policy_cache;
mod refusals;
mod settings;
mod tiers;

pub(crate) use draft::{Mode, World};
pub(crate) use settings::Settings;

use crate::api::{round3, Decision, Features, Method};
use crate::classify::ErrorKind;
use crate::ml::Advice;
use crate::overrides::OverridesInForce;
use crate::time;

use case::Case;
use draft::Draft;

/// Decide on one failure (already validated).
pub(crate) fn evaluate(w: &World<'_>, f: &Features) -> Decision {
    let s = w.settings;
    // 1. The case.
    let kind = case::classify_failure(f);
    let context = s.contexts.get(&f.job_type);
    let ov = if s.overrides.is_empty() { OverridesInForce::default() } else { s.overrides.resolve(f, w.now) };
    let policy = case::policy(s, f, kind, context, &ov, w.now, w.live());
    let mut c = Case::new(s, f, kind, &policy, context, &ov);
    free::count(w, &mut c);
    let mut d = Draft::new(s.adaptive && context.is_none_or(|c| c.learning()));
    if s.adaptive && w.live() {
        learned::remember_reset(w, &c);
    }

    // 2. Hard refusals, else 3. the tiers and an operator's fixed delay.
    let mut advice = Advice::default();
    if let Some((method, guard, why)) = refusals::refusal(w, &c) {
        d.refuse(method, guard, why);
    } else {
        advice = tiers::choose(w, &c, &mut d);
        if d.method != Method::Ml {
            tiers::ml_note(w, &advice, &mut d);
        }
        controls::fixed_delay(&c, &mut d);
    }
    controls::name_context(&c, &mut d);

    // 4. The controls that read the downstream's state, and 5. the guardrails, under the
    // one guard lock.
    let mut state = w.guard();
    // Whether the downstream looks unhealthy, known from counting this failure (live).
    let unhealthy = w.live().then(|| {
        let breaker = context.map_or(&s.strategy.circuit_breaker, |c| &c.breaker);
        state.on_failure(f, kind == ErrorKind::RateLimit, w.now, &s.strategy.guardrails, breaker)
    });
    if d.retry && d.rules_bounds.is_some() {
        controls::adjust_for_health(w, &c, &mut state, unhealthy, &mut d);
    }
    if d.retry {
        controls::clamp_to_overrides(&c, &mut d);
        guardrails::apply(w, &c, &mut state, &mut d);
    }
    free::remember(w, &c, &mut state, &mut d);
    let transitions = state.take_transitions();
    drop(state);
    if !transitions.is_empty() {
        w.events.breaker_changes(transitions);
    }
    controls::name_overrides(&c, &mut d);

    let decision = Decision {
        should_retry: d.retry,
        delay_ms: d.delay_ms,
        max_attempts: c.max_attempts,
        confidence: round3(d.confidence),
        rationale: d.rationale,
        method: d.method,
        estimated_success: round3(d.estimated),
        next_evaluation: time::format_rfc3339(w.now.saturating_add(d.delay_ms)),
        check_in_ms: d.check_in_ms.filter(|_| d.retry),
        policy_guardrails: d.guards,
        error_class: c.label.to_string(),
        policy: c.policy.name.clone(),
    };
    if w.live() && s.strategy.ml_enabled {
        w.ml.observe(f, &decision, &advice);
    }
    decision
}

//! Stage 3, the tiers: who chooses the delay. In order: the server's own word (its
//! `Retry-After`, or the rate-limit reset learned from other jobs), the ML tier's plan,
//! the Bayesian tier's plan, the rules tier's backoff. A learned plan (ML or Bayesian) is
//! followed by one rule, [`judge`]: later than the rules at any confidence (waiting is the
//! safe direction, and how a model explores), earlier only when confident and not on the
//! final attempt.

use crate::api::Method;
use crate::backoff::{mix64, rand01, Backoff, BackoffStrategy};
use crate::bayes::{Plan, Scope};
use crate::ml::Advice;
use crate::say;
use crate::say::{Ms, Pct, Two};

use super::case::Case;
use super::draft::{Draft, World};
use super::learned::{learned, Learned};

/// A learned plan whose retry is less likely than this to succeed is not followed.
pub const MIN_PLAN_SUCCESS: f64 = 0.05;

/// What a learned tier offers for the next retry.
pub(super) struct Offer {
    pub(super) delay_ms: u64,
    /// How likely the retry is to succeed then.
    pub(super) p_success: f64,
    pub(super) confidence: f64,
}

/// Whether a learned plan is followed, and if not, why.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Follow,
    /// The retry is unlikely to succeed (below [`MIN_PLAN_SUCCESS`]).
    Hopeless,
    /// Earlier than the rules, on the final attempt.
    FinalAttempt,
    /// Earlier than the rules, below the confidence threshold.
    NeedsConfidence,
}

/// The one rule for following a learned plan, the ML tier's as the Bayesian tier's:
/// later than the rules at any confidence, earlier only when confident and not on the
/// final attempt (a curve gone stale, recovery having just slowed down, must not spend
/// the last attempt early), and never a retry unlikely to succeed.
#[inline]
pub(super) fn judge(offer: &Offer, rules_delay: u64, retries_left: u32, threshold: f64) -> Verdict {
    let useful = offer.p_success >= MIN_PLAN_SUCCESS;
    let may_be_earlier = offer.confidence >= threshold && retries_left > 1;
    if useful && (offer.delay_ms >= rules_delay || may_be_earlier) {
        Verdict::Follow
    } else if offer.p_success < MIN_PLAN_SUCCESS {
        Verdict::Hopeless
    } else if retries_left <= 1 {
        Verdict::FinalAttempt
    } else {
        Verdict::NeedsConfidence
    }
}

/// Later only, up to 10 %: jobs that failed together do not return together.
#[inline]
fn spread(delay_ms: u64, bits: u64) -> u64 {
    (delay_ms as f64 * 0.1 * rand01(mix64(bits ^ 0x5eed))) as u64
}

/// Choose the delay (and say why); returns what the ML tier advised.
#[inline]
pub(super) fn choose(w: &World<'_>, c: &Case<'_>, d: &mut Draft) -> Advice {
    let (f, s, now, bits) = (c.f, w.settings, w.now, w.bits);
    // The call's own schedule, when it brings one, is the rules tier for this call.
    let backoff = f.backoff.as_ref().map_or_else(|| c.policy.backoff(c.kind), |b| b.backoff());
    let prev = f.since_last_failure_ms().unwrap_or(backoff.base_ms);
    let rules_delay = backoff.delay(f.attempt_number, prev, rand01(bits));
    let retries_left = c.retries_left();
    let learned = if d.adaptive { learned(w, c) } else { None };
    if server_said_when(w, c, learned.as_ref(), rules_delay, d) {
        return Advice::default();
    }
    let advice = if d.adaptive && s.strategy.ml_enabled {
        w.ml.advise(f, now, retries_left, &s.bayes, bits, w.live())
    } else {
        Advice::default()
    };
    if let Some(Ok(p)) = &advice.serve {
        let offer =
            Offer { delay_ms: p.choice.delay_ms, p_success: p.choice.p_success, confidence: p.confidence };
        if judge(&offer, rules_delay, retries_left, s.bayes.threshold) == Verdict::Follow {
            d.method = Method::Ml;
            d.delay_ms = offer.delay_ms + spread(offer.delay_ms, bits);
            d.confidence = offer.confidence;
            d.estimated = offer.p_success;
            say!(
                &mut d.rationale,
                "Retry ",
                c.retry_number(),
                " of ",
                c.max_attempts,
                " in ",
                Ms(d.delay_ms),
                ": "
            );
            p.describe(&mut d.rationale);
            return advice;
        }
    }
    bayesian_or_rules(w, c, &backoff, rules_delay, learned, d);
    advice
}

/// The server said when (its `Retry-After`, or the key's learned rate-limit reset): that
/// beats any guess. Up to 5 % later, so the callers it told do not all return in the
/// same millisecond. False when it said nothing usable.
#[inline]
fn server_said_when(
    w: &World<'_>,
    c: &Case<'_>,
    learned: Option<&Learned<'_>>,
    rules_delay: u64,
    d: &mut Draft,
) -> bool {
    let now = w.now;
    let respect = w.settings.strategy.guardrails.respect_retry_after;
    let own = c.f.retry_after_ms(now).filter(|_| respect);
    // A reset predicted from the learned period is a real one but maybe not the next
    // (the period may be a multiple of the true one): taken only when no later than
    // the rules would wait.
    let shared = learned
        .map(|l| l.reset)
        .filter(|r| respect && !(r.periodic_at(now) && r.wait_from(now).is_some_and(|w| w > rules_delay)));
    let Some((wait, whose)) =
        own.map(|ra| (ra, None)).or(shared.and_then(|r| Some((r.wait_from(now)?, Some(r)))))
    else {
        return false;
    };
    // A hint past the max delay is capped there (the Retry-After guardrail says so).
    let spread = (wait as f64 * 0.05 * rand01(mix64(w.bits ^ 0x5eed))) as u64;
    d.delay_ms = wait.saturating_add(spread).min(w.settings.strategy.guardrails.max_delay_ms);
    d.confidence = 0.9;
    d.estimated = learned.and_then(|l| l.plan).map_or(0.9, |p| p.recovered_by.max(0.5));
    say!(&mut d.rationale, "Retry ", c.retry_number(), " of ", c.max_attempts, " in ", Ms(d.delay_ms), ": ");
    match whose {
        None => d.rationale.push_str("the server asked for it (Retry-After)"),
        Some(reset) if reset.periodic_at(now) => say!(
            &mut d.rationale,
            "the rate limit resets every ",
            Ms(reset.period_ms.unwrap_or_default()),
            ", learned from other jobs' Retry-After and retries, and the next reset is then"
        ),
        Some(reset) => say!(
            &mut d.rationale,
            "the rate limit resets then, learned from other jobs' Retry-After and retries (known to within ",
            Ms(reset.uncertainty_ms()),
            ")"
        ),
    }
    true
}

/// The Bayesian tier's plan when [`judge`] follows it, else the rules' backoff.
#[inline]
fn bayesian_or_rules(
    w: &World<'_>,
    c: &Case<'_>,
    backoff: &Backoff,
    rules_delay: u64,
    learned: Option<Learned<'_>>,
    d: &mut Draft,
) {
    let verdict = learned.as_ref().and_then(|l| l.plan).map(|plan| {
        let offer = Offer { delay_ms: plan.delay_ms, p_success: plan.p_success, confidence: plan.confidence };
        judge(&offer, rules_delay, c.retries_left(), w.settings.bayes.threshold)
    });
    match (verdict, learned) {
        (Some(Verdict::Follow), Some(Learned { scope, plan: Some(plan), .. })) => {
            bayesian(w, c, scope, &plan, rules_delay, d)
        }
        (verdict, learned) => rules(w, c, backoff, rules_delay, learned.map(|l| (l.plan, verdict)), d),
    }
}

/// Follow the Bayesian tier's plan (now and then brought forward, to explore), and say
/// what the learned curve sees.
fn bayesian(w: &World<'_>, c: &Case<'_>, scope: Scope<'_>, plan: &Plan, rules_delay: u64, d: &mut Draft) {
    let (f, s, bits) = (c.f, w.settings, w.bits);
    let elapsed = f.since_first_failure_ms.unwrap_or(0);
    let retry = c.retry_number();
    let explore = rand01(mix64(bits ^ 0xe7)) < s.bayes.explore_rate;
    d.method = Method::Bayesian;
    d.delay_ms = if explore {
        (plan.delay_ms as f64 * (0.4 + 0.6 * rand01(mix64(bits ^ 0x7e)))) as u64
    } else {
        plan.delay_ms + spread(plan.delay_ms, bits)
    };
    d.confidence = plan.confidence;
    d.estimated = plan.p_success;
    let clock = if f.since_first_failure_ms.is_some() { "of the first failure" } else { "of delay" };
    say!(
        &mut d.rationale,
        "Learned recovery curve",
        scope.describe(),
        ": ",
        Pct(plan.recovered_by),
        " of failed jobs recover within ",
        Ms(elapsed + plan.delay_ms),
        " ",
        clock,
        ", so retry ",
        retry,
        " of ",
        c.max_attempts,
        " in ",
        Ms(d.delay_ms),
        " (",
        Pct(plan.p_success),
        " likely to succeed now; ",
        plan.samples,
        " samples, confidence ",
        Two(plan.confidence),
    );
    if let Some(then) = plan.then_at_ms {
        say!(&mut d.rationale, "; next at ", Ms(then), " if this fails");
    }
    d.rationale.push(')');
    if explore {
        say!(
            &mut d.rationale,
            ", brought forward from ",
            Ms(plan.delay_ms),
            " to learn how soon jobs recover (",
            Pct(s.bayes.explore_rate),
            " of learned retries explore)"
        );
    }
    if plan.confidence < s.bayes.threshold {
        say!(
            &mut d.rationale,
            ", followed below confidence ",
            Two(s.bayes.threshold),
            " because it waits longer than the rules' ",
            Ms(rules_delay),
            " (later is the safe direction)"
        );
    }
}

/// The rules tier's backoff, saying what the Bayesian tier had: nothing yet, too few
/// samples, or a plan [`judge`] did not follow, and why.
#[inline]
fn rules(
    w: &World<'_>,
    c: &Case<'_>,
    backoff: &Backoff,
    rules_delay: u64,
    learned: Option<(Option<Plan>, Option<Verdict>)>,
    d: &mut Draft,
) {
    let (f, s) = (c.f, w.settings);
    let elapsed = f.since_first_failure_ms.unwrap_or(0);
    let retry = c.retry_number();
    d.delay_ms = rules_delay;
    d.rules_bounds = Some((backoff.min_ms, backoff.max_ms));
    if f.backoff.is_some() {
        say!(&mut d.rationale, "The call's own schedule for ", c.label, ": ");
    } else {
        say!(&mut d.rationale, "The ", c.policy.name, " policy matched ", c.label, ": ");
    }
    say!(
        &mut d.rationale,
        strategy_name(backoff.strategy),
        " backoff gives ",
        Ms(d.delay_ms),
        " before retry ",
        retry,
        " of ",
        c.max_attempts
    );
    if !d.adaptive {
        d.rationale.push_str(" (adaptive tiers disabled)");
        return;
    }
    let (plan, verdict) = match learned {
        None => return d.rationale.push_str(" (nothing learned yet for this key)"),
        Some((None, _)) => {
            let samples = w.learner.with(&f.job_type, c.label, Scope::Key, |m| m.samples()).unwrap_or(0);
            return say!(
                &mut d.rationale,
                " (Bayesian tier has ",
                samples,
                " of ",
                s.bayes.min_samples,
                " samples)"
            );
        }
        Some((Some(plan), verdict)) => (plan, verdict),
    };
    d.estimated = plan.p_success;
    match verdict {
        Some(Verdict::Hopeless) => say!(
            &mut d.rationale,
            " (the learned curve sees little chance of recovery after ",
            Ms(elapsed),
            ": ",
            Pct(plan.p_success),
            ")"
        ),
        Some(Verdict::FinalAttempt) => say!(
            &mut d.rationale,
            " (the learned plan would retry in ",
            Ms(plan.delay_ms),
            "; the final attempt keeps the rules' patience)"
        ),
        _ => say!(
            &mut d.rationale,
            " (the learned plan, retry in ",
            Ms(plan.delay_ms),
            ", is earlier and needs confidence ",
            Two(s.bayes.threshold),
            "; it has ",
            Two(plan.confidence),
            ")"
        ),
    }
}

/// Say why the ML tier did not decide, when it should have; count its failures.
#[inline]
pub(super) fn ml_note(w: &World<'_>, advice: &Advice, d: &mut Draft) {
    let live = w.live();
    if let Some(why) = &advice.unavailable {
        if live {
            w.ml.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        say!(&mut d.rationale, "; ", why.as_ref(), ", so the tier below decided");
        return;
    }
    if let Some(Err(_)) = &advice.shadow {
        if live {
            w.ml.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    match &advice.serve {
        Some(Err(why)) => {
            if live {
                w.ml.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            say!(&mut d.rationale, "; ML tier: ", why.as_str(), ", so the tier below decided");
        }
        Some(Ok(p)) => {
            let m = &p.model.sidecar;
            say!(
                &mut d.rationale,
                "; model ",
                m.name,
                " ",
                m.version,
                " would retry in ",
                Ms(p.choice.delay_ms),
                " (",
                Pct(p.choice.p_success),
                " likely, confidence ",
                Two(p.confidence),
                "): earlier than the rules needs confidence and retries to spare"
            );
        }
        None => {}
    }
}

fn strategy_name(s: BackoffStrategy) -> &'static str {
    match s {
        BackoffStrategy::Exponential => "exponential",
        BackoffStrategy::Linear => "linear",
        BackoffStrategy::Fibonacci => "fibonacci",
        BackoffStrategy::Aggressive => "aggressive (3^n)",
        BackoffStrategy::Constant => "constant",
    }
}

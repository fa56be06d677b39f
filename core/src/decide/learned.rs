//! What the Bayesian tier knows about a failure: the plan of the most specific view with
//! enough evidence, and when the key's rate limit resets. Also where a failure teaches
//! the reset (its `Retry-After`, or a retry refused because the reset had not come).

use crate::bayes::{Plan, Scope};
use crate::classify::ErrorKind;
use crate::reset::Reset;
use crate::time;

use super::case::Case;
use super::draft::World;

/// The plan of the view chosen, and when the key's rate limit resets (learned from
/// every job of the key).
pub(super) struct Learned<'f> {
    pub(super) scope: Scope<'f>,
    pub(super) plan: Option<Plan>,
    pub(super) reset: Reset,
}

/// The plan of the most specific view with enough evidence (the tenant's, then the
/// degraded period's, then the hour's, then the whole key's). `None` when nothing is
/// learned for the key.
#[inline]
pub(super) fn learned<'f>(w: &World<'_>, c: &Case<'f>) -> Option<Learned<'f>> {
    let (f, label, t) = (c.f, c.label, &w.settings.bayes);
    let elapsed = f.since_first_failure_ms.unwrap_or(0);
    let retries_left = c.retries_left();
    let (plan, reset) =
        w.learner.with(&f.job_type, label, Scope::Key, |m| (m.plan(elapsed, retries_left), m.reset))?;
    let first_failure = w.now.saturating_sub(elapsed);
    let narrow = [
        f.tenant.as_deref().filter(|_| t.tenant_scopes).map(Scope::Tenant),
        (t.state_scopes && w.guard().degraded_at(&f.job_type, first_failure)).then_some(Scope::Degraded),
        t.hour_scopes.then(|| Scope::Hour(f.time_of_day.unwrap_or_else(|| time::hour_of_day(first_failure)))),
    ];
    for scope in narrow.into_iter().flatten() {
        let narrow_plan = w.learner.with(&f.job_type, label, scope, |m| {
            m.fit()
                .filter(|fit| fit.weight >= t.scope_min_samples as f32)
                .and_then(|_| m.plan(elapsed, retries_left))
        });
        if let Some(Some(plan)) = narrow_plan {
            return Some(Learned { scope, plan: Some(plan), reset });
        }
    }
    Some(Learned { scope: Scope::Key, plan, reset })
}

/// Learn when the key's rate limit resets from this failure: its `Retry-After`, and a
/// retry refused (the reset had not come). A rate limit resets for every caller at
/// once, so jobs told nothing can wait for the same reset.
#[inline]
pub(super) fn remember_reset(w: &World<'_>, c: &Case<'_>) {
    let (f, now) = (c.f, w.now);
    let ra = f.retry_after_ms(now);
    let refused_retry = c.kind == ErrorKind::RateLimit && f.attempt_number > 1;
    if ra.is_none() && !refused_retry {
        return;
    }
    w.learner.update(&f.job_type, c.label, Scope::Key, |m| {
        if refused_retry {
            m.reset.on_refused_after_reset(now, ra);
            m.reset.on_retry_outcome(now, false);
        }
        if let Some(ra) = ra {
            m.reset.on_retry_after(now, ra);
        }
    });
}

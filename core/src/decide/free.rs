//! Failures that do not use up an attempt. A retry turned away by a rate limiter whose
//! reset is known (the server's `Retry-After`, or the reset learned from other jobs) was
//! refused on schedule, and a job failing while its downstream is down for every caller
//! waits for the same event as the rest: neither says anything about the job itself, so
//! neither counts toward `max_attempts`. The job still ends by its deadline.

use crate::bayes::Scope;
use crate::classify::ErrorKind;
use crate::guard::GuardState;
use crate::say;

use super::case::Case;
use super::draft::{Draft, World};

/// Why a failure does not use up an attempt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Why {
    /// A rate limit whose reset is known refused the retry.
    ResetKnown,
    /// The downstream is down for every caller (probe-and-release).
    Down,
}

/// Why this failure does not use up an attempt, if it does not. Read before the failure
/// is counted; a first attempt is not a retry, so it always uses one.
fn why(w: &World<'_>, c: &Case<'_>, state: &mut GuardState) -> Option<Why> {
    let (f, g) = (c.f, &w.settings.strategy.guardrails);
    if f.attempt_number < 2 {
        return None;
    }
    if c.kind == ErrorKind::RateLimit && g.respect_retry_after {
        let reset_known = f.retry_after_ms(w.now).is_some()
            || w.learner
                .with(&f.job_type, c.label, Scope::Key, |m| m.reset.wait_from(w.now).is_some())
                .unwrap_or(false);
        if reset_known {
            return Some(Why::ResetKnown);
        }
    }
    (g.probe_and_release && state.down(&f.job_type, w.now)).then_some(Why::Down)
}

/// Whether this failure uses up an attempt and, once the attempts it was allowed run
/// out, how many of its failures did not (the job's earlier ones are remembered by id):
/// those are added to `c.max_attempts`.
#[inline]
pub(super) fn count(w: &World<'_>, c: &mut Case<'_>) {
    if c.f.attempt_number < 2 || c.max_attempts <= 1 {
        return;
    }
    let mut state = w.guard();
    c.free_now = why(w, c, &mut state);
    if c.f.attempt_number >= c.max_attempts {
        let before = c.f.job_id.as_deref().map_or(0, |id| state.free_failures(id));
        c.free = before + u32::from(c.free_now.is_some());
        c.max_attempts = c.max_attempts.saturating_add(c.free);
    }
}

/// Remember (live) that this job's failure did not use up an attempt, and say so.
#[inline]
pub(super) fn remember(w: &World<'_>, c: &Case<'_>, state: &mut GuardState, d: &mut Draft) {
    let Some(why) = c.free_now else { return };
    if let (true, Some(id)) = (w.live(), c.f.job_id.as_deref()) {
        state.note_free_failure(id);
    }
    if d.retry {
        let reason = match why {
            Why::ResetKnown => "the rate limit's reset is known",
            Why::Down => "its downstream is down for every caller",
        };
        say!(&mut d.rationale, "; this failure did not use up an attempt (", reason, ")");
    }
}

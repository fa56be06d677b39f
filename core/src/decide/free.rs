//! Failures that do not use up an attempt. A retry a rate limiter refused (429) was turned
//! away by flow control: the server is up and takes the call once its window resets, so
//! the refusal says nothing about the job (in bursts the windows fill again and again, and
//! a count would give up on jobs any later window accepts). A caller that names its own
//! `max_attempts` keeps that count for 429s unless the reset is known (the server's
//! `Retry-After`, or the reset learned from other jobs). A job failing while its
//! downstream is down for every caller waits for the same event as the rest. Neither
//! counts toward `max_attempts`; the job still ends by its deadline, and the retry budget
//! still bounds the load.

use crate::bayes::Scope;
use crate::classify::ErrorKind;
use crate::guard::GuardState;
use crate::say;

use super::case::{Case, FreeFailure};
use super::draft::{Draft, World};

/// Why this failure does not use up an attempt, if it does not. Read before the failure
/// is counted; a first attempt is not a retry, so it always uses one.
fn why(w: &World<'_>, c: &Case<'_>, state: &mut GuardState) -> Option<FreeFailure> {
    let g = &w.settings.strategy.guardrails;
    if c.f.attempt_number < 2 {
        return None;
    }
    if c.kind == ErrorKind::RateLimit {
        // A caller that named its own number of attempts keeps it, unless the server (or
        // the key's learned reset) says when the window resets: then the refusal is on
        // schedule, not a failure of the job.
        let f = c.f;
        let counted = f.max_attempts.is_some()
            && !(g.respect_retry_after
                && (f.retry_after_ms(w.now).is_some()
                    || w.learner
                        .with(&f.job_type, c.label, Scope::Key, |m| m.reset.wait_from(w.now).is_some())
                        .unwrap_or(false)));
        if !counted {
            return Some(FreeFailure::RateLimited);
        }
    }
    (g.probe_and_release && state.down(&c.f.job_type, w.now)).then_some(FreeFailure::Down)
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
            FreeFailure::RateLimited => {
                "a rate limit refused it: the call is accepted once its window resets"
            }
            FreeFailure::Down => "its downstream is down for every caller",
        };
        say!(&mut d.rationale, "; this failure did not use up an attempt (", reason, ")");
    }
}

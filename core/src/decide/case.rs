//! Stage 1, the case: what failed (its class), which policy and context govern it, the
//! overrides in force for it and how many attempts it gets.

use std::borrow::Cow;

use crate::api::Features;
use crate::classify::{classify, ErrorKind};
use crate::contexts;
use crate::overrides::OverridesInForce;
use crate::policy::{Policy, Subject};

use super::settings::Settings;

/// The facts every later stage reads about one failure.
pub(super) struct Case<'a> {
    pub(super) f: &'a Features,
    pub(super) kind: ErrorKind,
    /// The class decisions are learned and explained under: the caller's, else the kind's.
    pub(super) label: &'a str,
    pub(super) policy: &'a Policy,
    /// The attempts the policy allows (or an override's number for it).
    pub(super) policy_max: u32,
    /// The attempts this job gets: the caller's when it names a number (up to the
    /// guardrail and an override), else the policy's; plus its failures that did not use
    /// one up ([`Case::free`]).
    pub(super) max_attempts: u32,
    /// Failures of this job that did not use up an attempt (a rate limit whose reset was
    /// known, a downstream down for every caller), this one included. Counted only once
    /// the attempts run out (`free.rs`).
    pub(super) free: u32,
    /// Why this failure does not use up an attempt, when it does not.
    pub(super) free_now: Option<FreeFailure>,
    /// The job's deadline from its first failure: the earliest of the operator's hard
    /// limit (`max_total_ms`), an override's, and the call's (else its policy's, else
    /// the guardrails' `default_deadline_ms`).
    pub(super) deadline_ms: u64,
    /// The job type's context, when it belongs to one.
    pub(super) context: Option<&'a contexts::ResolvedContext>,
    pub(super) overrides: &'a OverridesInForce<'a>,
}

/// Why a failure does not use up an attempt (`free.rs` decides it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum FreeFailure {
    /// A rate limiter refused the retry (429).
    RateLimited,
    /// The downstream is down for every caller (probe-and-release).
    Down,
}

/// The class of `f`'s failure, once the caller's say is heard (`expected`: a type it
/// named to retry is not taken for a programming error).
#[inline]
pub(super) fn classify_failure(f: &Features) -> ErrorKind {
    classify(f.http_status, f.error_class.as_deref(), f.error_code.as_deref())
        .expected_by_caller(f.expected == Some(true))
}

/// The policy of the failure: the one an override names, else the matched one (through
/// the cache of matched policies), shaped by the job type's context.
#[inline]
pub(super) fn policy<'s>(
    s: &'s Settings,
    f: &Features,
    kind: ErrorKind,
    context: Option<&contexts::ResolvedContext>,
    ov: &OverridesInForce<'_>,
    now: u64,
    live: bool,
) -> Cow<'s, Policy> {
    let subject = Subject {
        job_type: &f.job_type,
        error_class: f.error_class.as_deref(),
        error_code: f.error_code.as_deref(),
        http_status: f.http_status,
        kind,
    };
    let matched = s.policies.at(s.policy_cache.slot(&s.policies, &subject, now, live));
    match (ov.policy.and_then(|(name, _)| s.policies.get(name)), context) {
        (Some(named), _) => Cow::Borrowed(named),
        (None, Some(c)) => c.context.shape(matched),
        (None, None) => Cow::Borrowed(matched),
    }
}

impl<'a> Case<'a> {
    #[inline]
    pub(super) fn new(
        s: &Settings,
        f: &'a Features,
        kind: ErrorKind,
        policy: &'a Policy,
        context: Option<&'a contexts::ResolvedContext>,
        overrides: &'a OverridesInForce<'a>,
    ) -> Case<'a> {
        let g = &s.strategy.guardrails;
        let policy_max = overrides.max_attempts.map_or(policy.max_attempts, |(n, _)| n);
        // The caller's number is authoritative both ways, up to what operators set.
        let asked =
            f.max_attempts.map_or(policy_max, |n| overrides.max_attempts.map_or(n, |(o, _)| n.min(o)));
        let own_deadline = f.deadline_ms.or(policy.deadline_ms).unwrap_or(g.default_deadline_ms);
        let deadline_ms = [Some(own_deadline), g.max_total_ms, overrides.deadline_ms.map(|(d, _)| d)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(own_deadline);
        Case {
            f,
            kind,
            label: f.error_class.as_deref().unwrap_or(kind.as_str()),
            policy,
            policy_max,
            max_attempts: asked.min(g.max_attempts),
            free: 0,
            free_now: None,
            deadline_ms,
            context,
            overrides,
        }
    }

    /// Retries left after this failure (at least one: asked only when one is granted).
    #[inline]
    pub(super) fn retries_left(&self) -> u32 {
        self.max_attempts.saturating_sub(self.f.attempt_number).max(1)
    }

    /// The attempts the caller, the policy and the operators allow, before free ones.
    #[inline]
    pub(super) fn attempts_allowed(&self) -> u32 {
        self.max_attempts - self.free
    }

    /// The number of the retry being decided.
    #[inline]
    pub(super) fn retry_number(&self) -> u32 {
        self.f.attempt_number + 1
    }
}

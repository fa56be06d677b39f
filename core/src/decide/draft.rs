//! What every stage works on: the [`World`] a decision reads (handed in by the engine)
//! and the [`Draft`] it writes, refused, clipped and named by the stages in turn.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::api::{Guardrail, Method};
use crate::bayes::Learner;
use crate::contexts::ContextState;
use crate::events::EventBus;
use crate::guard::GuardState;
use crate::ml::MlTier;

use super::settings::Settings;

/// Confidence reported for a static rules-tier delay: a heuristic, not a measurement.
pub const RULES_CONFIDENCE: f64 = 0.5;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A real failure: counted, and a granted retry spends budget.
    Live,
    /// A what-if (preview): reads state, changes nothing.
    Preview,
}

/// Everything a decision reads besides the failure itself: the settings snapshot, the
/// learned and guard state, the ML tier, the clock, the randomness and the mode.
pub(crate) struct World<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) emergency: &'a AtomicBool,
    pub(crate) learner: &'a Learner,
    pub(crate) ml: &'a MlTier,
    pub(crate) guard: &'a Mutex<GuardState>,
    /// Counts of the contexts' own caps (locked only for contexts that have caps).
    pub(crate) context_caps: &'a Mutex<ContextState>,
    pub(crate) now: u64,
    /// This decision's random bits (every random choice derives from them).
    pub(crate) bits: u64,
    pub(crate) mode: Mode,
    /// Where the breaker transitions a decision causes are announced.
    pub(crate) events: &'a EventBus,
}

impl World<'_> {
    #[inline]
    pub(super) fn live(&self) -> bool {
        self.mode == Mode::Live
    }

    #[inline]
    pub(super) fn emergency_stop(&self) -> bool {
        self.emergency.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn guard(&self) -> MutexGuard<'_, GuardState> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    pub(super) fn context_caps(&self) -> MutexGuard<'_, ContextState> {
        self.context_caps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A decision in the making.
pub(super) struct Draft {
    pub(super) retry: bool,
    pub(super) delay_ms: u64,
    pub(super) method: Method,
    pub(super) confidence: f64,
    pub(super) estimated: f64,
    pub(super) guards: Vec<Guardrail>,
    pub(super) rationale: String,
    /// The learning tiers may answer (the engine's and the context's switch).
    pub(super) adaptive: bool,
    /// Set when the rules tier's backoff gave the delay: its bounds, within which
    /// health-aware backoff may move it.
    pub(super) rules_bounds: Option<(u64, u64)>,
    /// Set while the downstream is down: how often the waiting job checks in.
    pub(super) check_in_ms: Option<u64>,
}

impl Draft {
    /// A retry by the rules tier, before any stage has spoken.
    #[inline]
    pub(super) fn new(adaptive: bool) -> Draft {
        Draft {
            retry: true,
            delay_ms: 0,
            method: Method::Rules,
            confidence: RULES_CONFIDENCE,
            estimated: 0.5,
            guards: Vec::new(),
            rationale: String::with_capacity(256),
            adaptive,
            rules_bounds: None,
            check_in_ms: None,
        }
    }

    /// No retry: `method` decided it (naming `guard`, if one), for the reason `why`.
    pub(super) fn refuse(&mut self, method: Method, guard: Option<Guardrail>, why: impl AsRef<str>) {
        self.retry = false;
        self.delay_ms = 0;
        self.method = method;
        self.confidence = 1.0;
        self.estimated = 0.0;
        if let Some(g) = guard {
            self.guards.push(g);
        }
        self.rationale.clear();
        self.rationale.push_str(why.as_ref());
    }

    /// `guard` moved the delay to `delay_ms`; `note` says why, after the rationale so far.
    pub(super) fn clip(&mut self, guard: Guardrail, delay_ms: u64, note: std::fmt::Arguments<'_>) {
        self.delay_ms = delay_ms;
        self.name(guard);
        let _ = write!(self.rationale, "; {note}");
    }

    /// Name a guardrail once.
    pub(super) fn name(&mut self, guard: Guardrail) {
        if !self.guards.contains(&guard) {
            self.guards.push(guard);
        }
    }
}

//! What one downstream (job type) has done lately, kept apart from every other: its
//! calls over the throttle window, when it was degraded, its latest run of failures or
//! successes, its breaker, and what its caller has reported. The thresholds that judge
//! it (degraded, learned apart, down, probe spacing) live here beside the counts they
//! read; the judgements themselves are `GuardState`'s (`outage.rs`, `breakers.rs`).

use crate::breaker::{Breaker, BreakerState};
use crate::health::Signals;
use crate::window::SlidingWindow;

use super::settings::Guardrails;

/// What one downstream (job type) has done lately: one record, one lookup per event.
pub(super) struct Downstream {
    /// a = requests, b = accepts (adaptive throttling and health).
    pub(super) calls: SlidingWindow,
    pub(super) health: HealthLog,
    /// When it was degraded enough for failures to be learned apart (fewer than a
    /// quarter of calls accepted): a downstream failing a third of its calls is not.
    pub(super) learning_state: HealthLog,
    pub(super) breaker: Option<Breaker>,
    /// The breaker state last reported in an event.
    pub(super) reported: BreakerState,
    /// The caller's last health signals, and when.
    pub(super) signals: Signals,
    pub(super) signals_at_ms: Option<u64>,
    /// The latest run of calls that all failed or were all accepted: a long failing run
    /// says it is down, an accepted one that it is back.
    pub(super) run: Run,
    /// While it is down: the earliest time the next probe may go (one spacing after the
    /// last one claimed).
    pub(super) next_probe_ms: u64,
    /// What its caller reports: the evidence the guardrails need before they act.
    pub(super) evidence: Reported,
}

/// What a caller has reported about one downstream so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reported {
    /// Any outcome (`record`, `record_successes`).
    pub(super) outcomes: bool,
    /// A call it accepted.
    pub(super) accepted: bool,
    /// A first attempt that succeeded: first-attempt failures are then one side of a
    /// rate whose other side is known, and count as calls.
    pub(super) first_successes: bool,
    /// Jobs that wait for it check in (`released`).
    pub(super) check_ins: bool,
}

impl Downstream {
    /// Adaptive throttling's rejection probability (the SRE book's client-side
    /// throttling): `max(0, (requests − K·accepts) / (requests + 1))` over the window,
    /// once the downstream has accepted calls and the window holds
    /// [`MIN_EVIDENCE_CALLS`]. A downstream that never accepted a call is not
    /// overloaded on failures alone: it is new, or down (probe-and-release's case).
    pub(super) fn rejection(&mut self, now: u64, g: &Guardrails) -> f64 {
        let (requests, accepts) = self.calls.sum(now);
        if !self.evidence.accepted || requests < MIN_EVIDENCE_CALLS {
            return 0.0;
        }
        ((requests as f64 - g.throttle_k * accepts as f64) / (requests as f64 + 1.0)).max(0.0)
    }

    pub(super) fn new(g: &Guardrails) -> Downstream {
        Downstream {
            calls: SlidingWindow::new(g.throttle_window_ms),
            health: HealthLog::default(),
            learning_state: HealthLog::default(),
            breaker: None,
            reported: BreakerState::Closed,
            signals: Signals::default(),
            signals_at_ms: None,
            run: Run::default(),
            next_probe_ms: 0,
            evidence: Reported::default(),
        }
    }
}

/// Fewest calls in a downstream's window before adaptive throttling may act on it, the
/// same floor health, degraded and down judgements use ([`DEGRADED_MIN_REQUESTS`]).
/// Below it an acceptance rate under a half is within chance (two of four calls
/// failing says nothing), and Finagle's retry budget likewise always allows 10
/// retries per second whatever the ratio: protection needs a minimum of traffic.
pub const MIN_EVIDENCE_CALLS: u64 = DEGRADED_MIN_REQUESTS;

/// When a downstream was degraded: too few of its requests accepted over the throttle
/// window (at least [`DEGRADED_MIN_REQUESTS`] of them; under a half for health, under a
/// quarter for learning). Kept as a few recent intervals so an outcome can be filed
/// under the state its job first failed in.
#[derive(Debug, Clone, Default)]
pub(super) struct HealthLog {
    pub(super) since: Option<u64>,
    past: std::collections::VecDeque<(u64, u64)>,
}

pub const DEGRADED_MIN_REQUESTS: u64 = 10;
/// Failures that begin while fewer than one call in this many is accepted are learned
/// apart from blips (the degraded view, `GuardState::degraded_at`). A quarter, not
/// the health score's half: a payment API failing 30 % of its calls dips under a half
/// now and then, and its jobs then got a degraded view learned from few samples.
pub(super) const LEARNED_APART_ACCEPTS_ONE_IN: u64 = 4;

/// Down: fewer than one call in this many accepted over the throttle window, or nothing
/// accepted for this long while this many calls failed (see `GuardState::down`). The
/// run notices an outage within seconds, where the window still holds the minutes
/// before it. Its length in time keeps a burst of jobs that each fail at first and
/// recover on their own clocks within seconds (every first attempt failing, the
/// retries getting through) from passing for an outage: releasing them when one of
/// them gets through would only spend their retries.
pub(super) const DOWN_ACCEPTS_ONE_IN: u64 = 10;
pub(super) const DOWN_FAILED_IN_A_ROW: u64 = 10;
pub(super) const DOWN_FOR_MS: u64 = 10_000;

/// Bounds of the spacing between probes of a downstream that is down.
pub(super) const MIN_PROBE_SPACING_MS: u64 = 1_000;
pub(super) const MAX_PROBE_SPACING_MS: u64 = 30_000;
const HEALTH_INTERVALS: usize = 8;

/// A run of calls with the same outcome: how many, and since when.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Run {
    pub(super) accepted: bool,
    pub(super) calls: u64,
    pub(super) since_ms: u64,
}

impl Run {
    /// Counts `calls` with this outcome; returns whether they start a new run.
    pub(super) fn add(&mut self, accepted: bool, calls: u64, now: u64) -> bool {
        let new = accepted != self.accepted || self.calls == 0;
        if new {
            *self = Run { accepted, calls: 0, since_ms: now };
        }
        self.calls += calls;
        new
    }
}

impl HealthLog {
    pub(super) fn update(&mut self, degraded: bool, now: u64) {
        match (self.since, degraded) {
            (None, true) => self.since = Some(now),
            (Some(start), false) => {
                if self.past.len() == HEALTH_INTERVALS {
                    self.past.pop_front();
                }
                self.past.push_back((start, now));
                self.since = None;
            }
            _ => {}
        }
    }

    pub(super) fn at(&self, t: u64) -> bool {
        self.since.is_some_and(|s| t >= s) || self.past.iter().any(|&(a, b)| (a..b).contains(&t))
    }
}

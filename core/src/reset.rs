//! When a key's rate limit resets, learned from every job of the key.
//!
//! A rate limit resets for every caller at once, so what one job learns about the next
//! reset holds for all of them. The estimate is an interval: the reset is later than
//! `after_ms` and no later than `at_ms`. Three kinds of evidence narrow it:
//!
//! - a `Retry-After` of whole seconds (the header's only resolution) says the reset is
//!   within the second before `now + Retry-After`;
//! - a retry that got through at `t` says the reset is no later than `t`;
//! - a retry refused at `t` (still limited) says it is later than `t`.
//!
//! Fixed windows reset at the same point of the second every time, so the sub-second
//! phase of a reset pinned down to within [`PHASE_WIDTH_MS`] carries over to the next
//! one, whose `Retry-After` then places it almost exactly. Evidence the phase does not
//! explain (a retry refused after the reset it predicted) forgets it.
//!
//! Hints come from servers and every job of the key follows the estimate, so one hint
//! never moves it alone: a hint about a reset the key does not know yet is held until a
//! second one agrees with it (or it falls on the key's learned period), and a hint
//! beyond [`MAX_SHARED_WAIT_MS`] is no window's reset at all. One broken or hostile
//! header then delays only the job it was sent to, and that job's own wait is clamped
//! by the guardrails.

/// A reset pinned down to this width or better teaches its sub-second phase.
pub const PHASE_WIDTH_MS: u64 = 250;
/// Shorter periods are not told apart from no period at all.
const MIN_PERIOD_MS: u64 = 2_000;
/// `Retry-After` values are whole seconds: the true wait is up to this much shorter.
const HEADER_RESOLUTION_MS: u64 = 1_000;
/// Rate-limit windows reset within seconds to minutes; a header asking for more than an
/// hour speaks of one caller's quota (or is broken), not of a reset other jobs share.
pub const MAX_SHARED_WAIT_MS: u64 = 3_600_000;

/// The next reset of a key's rate limit, as narrowed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reset {
    /// The reset is known to come later than this…
    pub after_ms: u64,
    /// …and no later than this (0: no reset known).
    pub at_ms: u64,
    /// Where in the second resets happen (`at_ms % 1000` of a narrowed reset) and how
    /// uncertain that is, once learned.
    pub phase: Option<Phase>,
    /// How often the limit resets (whole seconds), once two narrowed resets agree on it:
    /// a job refused with no word of the next reset waits for the next period's.
    pub period_ms: Option<u64>,
    /// A reset one hint spoke of that nothing has confirmed yet: `(after, at]`.
    pub unconfirmed: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub offset_ms: u64,
    pub width_ms: u64,
}

impl Reset {
    /// A reset known from an older layout or a store: only its latest moment.
    pub fn at(at_ms: u64) -> Reset {
        Reset { at_ms, ..Reset::default() }
    }

    /// A `Retry-After` of `wait_ms` given at `now`.
    pub fn on_retry_after(&mut self, now: u64, wait_ms: u64) {
        if wait_ms > MAX_SHARED_WAIT_MS {
            return;
        }
        let latest = now.saturating_add(wait_ms);
        let whole_seconds = wait_ms > 0 && wait_ms % HEADER_RESOLUTION_MS == 0;
        let earliest = if whole_seconds { latest - HEADER_RESOLUTION_MS } else { latest.saturating_sub(1) };
        self.narrow(earliest.max(now), latest);
    }

    /// A retry of a rate-limited job finished at `t`: through (`success`) or refused.
    pub fn on_retry_outcome(&mut self, t: u64, success: bool) {
        if !self.pending(t) {
            return;
        }
        if success {
            self.at_ms = t;
        } else {
            self.after_ms = self.after_ms.max(t);
        }
        self.learn_phase();
    }

    /// A retry was refused at `t`, told to wait `retry_after_ms` if anything. Refused
    /// within a second after the reset it was sent for, and not told of a later window's
    /// reset: the phase did not hold.
    pub fn on_refused_after_reset(&mut self, t: u64, retry_after_ms: Option<u64>) {
        let soon = self.at_ms.saturating_add(HEADER_RESOLUTION_MS);
        // Told of a reset beyond what a misplaced phase (under a second) and the header's
        // rounding (another second) explain: that is the next window's.
        let next_window = retry_after_ms.is_some_and(|ra| t.saturating_add(ra) > soon + HEADER_RESOLUTION_MS);
        if self.at_ms > 0 && t >= self.at_ms && t < soon && !next_window {
            self.phase = None;
        }
    }

    /// Whether `t` falls before the reset still being narrowed.
    fn pending(&self, t: u64) -> bool {
        t > self.after_ms && t < self.at_ms
    }

    /// The reset is in `(earliest, latest]`: narrow the current one, or start the next
    /// once a second piece of evidence agrees that there is a next one.
    fn narrow(&mut self, earliest: u64, latest: u64) {
        if latest <= self.after_ms {
            return; // about a reset already past
        }
        if earliest < self.at_ms {
            self.after_ms = self.after_ms.max(earliest);
            self.at_ms = self.at_ms.min(latest);
            self.learn_phase();
            return;
        }
        let (earliest, latest) = match self.unconfirmed.take() {
            Some((a, b)) if earliest < b && a < latest => (earliest.max(a), latest.min(b)),
            _ if self.on_period(earliest, latest) => (earliest, latest),
            _ => {
                self.unconfirmed = Some((earliest, latest));
                return;
            }
        };
        let previous = (self.at_ms, self.uncertainty_ms());
        self.after_ms = earliest;
        self.at_ms = latest;
        if let Some(p) = self.phase {
            // The one moment of (earliest, latest] at the learned phase.
            let aligned =
                earliest + 1 + (p.offset_ms + HEADER_RESOLUTION_MS - (earliest + 1) % 1_000) % 1_000;
            if aligned <= latest {
                self.at_ms = aligned;
                self.after_ms = earliest.max(aligned.saturating_sub(p.width_ms));
            }
        }
        self.learn_period(previous);
        self.learn_phase();
    }

    /// Whether a reset in `(earliest, latest]` is one the learned period predicts.
    fn on_period(&self, earliest: u64, latest: u64) -> bool {
        let (Some(period), true) = (self.period_ms, self.at_ms > 0) else { return false };
        let next = self.at_ms + (latest.saturating_sub(self.at_ms) / period) * period;
        (earliest..=latest.saturating_add(HEADER_RESOLUTION_MS)).contains(&next)
            || (earliest..=latest).contains(&(next + period))
    }

    /// Two resets each known to within [`PHASE_WIDTH_MS`]: their distance is a whole
    /// number of periods, so the period divides every such distance (their greatest
    /// common divisor, which may still be a multiple of the true one: the resets it
    /// predicts are real ones, not always the next).
    fn learn_period(&mut self, (previous_ms, previous_width): (u64, u64)) {
        let width = self.uncertainty_ms();
        if previous_ms == 0 || previous_width > PHASE_WIDTH_MS || width > PHASE_WIDTH_MS {
            return;
        }
        let distance = self.at_ms.saturating_sub(previous_ms);
        let seconds = (distance + HEADER_RESOLUTION_MS / 2) / HEADER_RESOLUTION_MS * HEADER_RESOLUTION_MS;
        if seconds == 0 || distance.abs_diff(seconds) > previous_width + width {
            return;
        }
        let period = gcd(self.period_ms.unwrap_or(seconds), seconds);
        // Down to the header's own resolution, the resets follow no fixed window.
        self.period_ms = (period >= MIN_PERIOD_MS).then_some(period);
    }

    fn learn_phase(&mut self) {
        let width = self.at_ms.saturating_sub(self.after_ms);
        if width <= PHASE_WIDTH_MS && self.phase.is_none_or(|p| width <= p.width_ms) {
            self.phase = Some(Phase { offset_ms: self.at_ms % 1_000, width_ms: width });
        }
    }

    /// How long from `now` until the reset has surely happened: the one being narrowed,
    /// else the next of a learned period.
    pub fn wait_from(&self, now: u64) -> Option<u64> {
        if self.at_ms > now {
            return Some(self.at_ms - now);
        }
        let period = self.period_ms.filter(|_| self.at_ms > 0 && self.phase.is_some())?;
        let next = self.at_ms + ((now - self.at_ms) / period + 1) * period;
        Some(next - now)
    }

    /// Whether [`Reset::wait_from`] at `now` comes from the learned period.
    pub fn periodic_at(&self, now: u64) -> bool {
        self.at_ms <= now && self.wait_from(now).is_some()
    }

    /// How narrowly the coming reset is known (ms), for the rationale.
    pub fn uncertainty_ms(&self) -> u64 {
        self.at_ms.saturating_sub(self.after_ms)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_second_headers_from_different_moments_narrow_the_reset() {
        // The limit resets at 10_000. Headers round the wait up to whole seconds.
        let mut r = Reset::default();
        r.on_retry_after(8_300, 2_000); // (9_300, 10_300]
        assert_eq!((r.at_ms, r.wait_from(8_300)), (0, None), "one hint alone is not shared");
        r.on_retry_after(9_100, 1_000); // (9_100, 10_100]: agrees, so both hold
        assert_eq!((r.after_ms, r.at_ms), (9_300, 10_100));
        r.on_retry_after(9_950, 1_000); // (9_950, 10_950]
        assert_eq!((r.after_ms, r.at_ms), (9_950, 10_100));
        assert!(r.after_ms < 10_000 && 10_000 <= r.at_ms, "the true reset stays inside");
    }

    #[test]
    fn outcomes_narrow_it_too_and_the_phase_places_the_next_reset() {
        let mut r = Reset::default();
        r.on_retry_after(9_100, 1_000); // (9_100, 10_100]
        r.on_retry_after(9_200, 1_000); // (9_200, 10_200]: confirmed, (9_200, 10_100]
        r.on_retry_outcome(9_800, false); // still limited at 9_800
        r.on_retry_outcome(10_040, true); // through at 10_040
        assert_eq!((r.after_ms, r.at_ms), (9_800, 10_040));
        assert_eq!(r.phase, Some(Phase { offset_ms: 40, width_ms: 240 }));
        r.on_retry_after(9_900, 1_000); // (9_900, 10_900]: narrows to (9_900, 10_040]
        assert_eq!(r.phase, Some(Phase { offset_ms: 40, width_ms: 140 }));
        // The next window resets at 20_000; headers at 19_400 and 19_500 say "1 s":
        // (19_400, 20_400] and (19_500, 20_500].
        r.on_retry_after(19_400, 1_000);
        assert_eq!(r.at_ms, 10_040, "a new reset needs a second word");
        r.on_retry_after(19_500, 1_000);
        assert_eq!(r.at_ms, 20_040, "the learned phase, not the header's rounding");
        assert_eq!(r.after_ms, 19_900);
        assert_eq!(r.wait_from(19_500), Some(540));
        // A header about the reset in hand changes nothing it already knows better.
        r.on_retry_after(19_700, 1_000);
        assert_eq!(r.at_ms, 20_040);
        assert_eq!(r.period_ms, Some(10_000), "two narrowed resets 10 s apart");
        // Refused with no word of the reset, after it: wait for the next period's.
        assert_eq!(r.wait_from(37_000), Some(3_040));
        assert!(r.periodic_at(37_000));
        // Resets 30 s apart fall on the 10 s period: one header is enough.
        r.on_retry_after(49_500, 1_000);
        assert_eq!((r.at_ms, r.period_ms), (50_040, Some(10_000)));
        // 15 s apart is off the period: held until a second header agrees, then 5 s.
        r.on_retry_after(64_500, 1_000);
        assert_eq!(r.at_ms, 50_040);
        r.on_retry_after(64_600, 1_000);
        assert_eq!((r.at_ms, r.period_ms), (65_040, Some(5_000)));
        // 1 s apart: no fixed window worth the name.
        r.on_retry_after(65_500, 1_000);
        r.on_retry_after(65_600, 1_000);
        assert_eq!((r.at_ms, r.period_ms), (66_040, None));
    }

    #[test]
    fn a_phase_that_does_not_hold_is_forgotten() {
        let mut r = Reset::default();
        r.on_retry_after(9_950, 1_000);
        r.on_retry_after(9_960, 1_000);
        r.on_retry_outcome(10_010, true);
        assert!(r.phase.is_some());
        r.on_retry_after(19_500, 1_000);
        r.on_retry_after(19_600, 1_000);
        let predicted = r.at_ms;
        assert_eq!(predicted, 20_010);
        r.on_refused_after_reset(predicted + 5, Some(10_000));
        assert!(r.phase.is_some(), "refused because the next window filled up: the phase holds");
        r.on_refused_after_reset(predicted + 5, Some(1_000));
        assert_eq!(r.phase, None);
        // Old news does not move a later reset.
        r.on_retry_after(5_000, 1_000);
        r.on_retry_after(5_000, 1_000);
        assert_eq!(r.at_ms, predicted);
    }

    #[test]
    fn one_hostile_header_moves_nothing() {
        let mut r = Reset::default();
        r.on_retry_after(9_100, 1_000);
        r.on_retry_after(9_200, 1_000);
        let known = (r.after_ms, r.at_ms);
        // A header about a reset far later than the one in hand, while that one is pending:
        r.on_retry_after(9_300, 600_000);
        assert_eq!((r.after_ms, r.at_ms), known, "held, not followed");
        assert_eq!(r.wait_from(9_300), Some(known.1 - 9_300));
        // Beyond an hour: no window's reset, not even held.
        r.on_retry_after(9_400, 99_999_999_999_000);
        r.on_retry_after(9_500, 99_999_999_999_000);
        assert_eq!((r.after_ms, r.at_ms), known);
        // The same far reset said twice is the server's word.
        r.on_retry_after(9_600, 600_000);
        assert_eq!(r.at_ms, 609_300);
    }
}

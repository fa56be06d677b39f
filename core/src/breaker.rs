//! Circuit breaker per downstream (job type): closed → open when the failure rate over
//! a sliding window (or a run of consecutive failures) crosses a threshold; open →
//! half-open after a cool-down; half-open lets a bounded number of probes through and
//! closes after that many successes, or re-opens on a failure.
//!
//! The engine never blocks a call: while open, it *schedules* retries after the
//! cool-down. Only `half_open_probes` retries are scheduled for the moment the breaker
//! turns half-open; the rest wait one more cool-down for the probes' verdict, so a
//! recovering downstream is not met by a thundering herd.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::window::SlidingWindow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Failure rate (0–1] over `window_ms` that opens the breaker…
    pub failure_rate_threshold: f64,
    /// …once at least this many outcomes were seen in the window.
    pub min_calls: u32,
    pub window_ms: u64,
    /// Consecutive failures that open it regardless of rate; 0 = off.
    pub consecutive_failures: u32,
    /// Cool-down before half-open.
    pub open_ms: u64,
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            failure_rate_threshold: 0.5,
            min_calls: 20,
            window_ms: 60_000,
            consecutive_failures: 0,
            open_ms: 30_000,
            half_open_probes: 3,
        }
    }
}

impl BreakerConfig {
    pub fn validate(&self) -> Result<()> {
        let rate = self.failure_rate_threshold;
        if !(rate.is_finite() && rate > 0.0 && rate <= 1.0) {
            return Err(Error::config("failure_rate_threshold", "must be in (0, 1]"));
        }
        if self.min_calls == 0 {
            return Err(Error::config("min_calls", "must be at least 1"));
        }
        if !(1_000..=86_400_000).contains(&self.window_ms) {
            return Err(Error::config("window_ms", "must be 1 s – 24 h"));
        }
        if !(1..=86_400_000).contains(&self.open_ms) {
            return Err(Error::config("open_ms", "must be 1 ms – 24 h"));
        }
        if self.half_open_probes == 0 {
            return Err(Error::config("half_open_probes", "must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

/// Whether a retry may go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Not before this many ms from now.
    Wait(u64),
}

#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    /// a = failures, b = successes.
    window: SlidingWindow,
    consecutive: u32,
    open_until: u64,
    probes_scheduled: u32,
    half_open_since: u64,
    probes_granted: u32,
    probe_successes: u32,
}

/// A breaker as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    pub key: String,
    pub state: BreakerState,
    pub failures: u64,
    pub successes: u64,
    pub failure_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
}

impl Breaker {
    pub fn new(cfg: &BreakerConfig) -> Self {
        Breaker {
            state: BreakerState::Closed,
            window: SlidingWindow::new(cfg.window_ms),
            consecutive: 0,
            open_until: 0,
            probes_scheduled: 0,
            half_open_since: 0,
            probes_granted: 0,
            probe_successes: 0,
        }
    }

    /// The state at `now` (an open breaker whose cool-down has passed is half-open).
    pub fn state(&self, now: u64) -> BreakerState {
        match self.state {
            BreakerState::Open if now >= self.open_until => BreakerState::HalfOpen,
            s => s,
        }
    }

    fn open(&mut self, now: u64, cfg: &BreakerConfig) {
        self.state = BreakerState::Open;
        self.open_until = now.saturating_add(cfg.open_ms);
        self.probes_scheduled = 0;
        self.consecutive = 0;
    }

    fn settle(&mut self, now: u64, cfg: &BreakerConfig) {
        if self.state == BreakerState::Open && now >= self.open_until {
            self.state = BreakerState::HalfOpen;
            self.half_open_since = now;
            self.probes_granted = self.probes_scheduled.min(cfg.half_open_probes);
            self.probe_successes = 0;
        }
        if self.state == BreakerState::HalfOpen && now >= self.half_open_since.saturating_add(cfg.open_ms) {
            // Probes never reported back: start a fresh round rather than stay stuck.
            self.half_open_since = now;
            self.probes_granted = 0;
        }
    }

    /// Open until `until` (another worker's breaker opened, or a restarted engine's was
    /// open): later only, never shortening a cool-down already running.
    pub fn adopt_open(&mut self, until: u64, now: u64, cfg: &BreakerConfig) {
        if until > now && (self.state != BreakerState::Open || until > self.open_until) {
            if self.state != BreakerState::Open {
                self.open(now, cfg);
            }
            self.open_until = until;
        }
    }

    /// When an open breaker half-opens.
    pub fn open_until(&self) -> Option<u64> {
        (self.state == BreakerState::Open).then_some(self.open_until)
    }

    pub fn on_failure(&mut self, now: u64, cfg: &BreakerConfig) {
        self.settle(now, cfg);
        match self.state {
            BreakerState::Closed => {
                self.window.add(now, 1, 0);
                self.consecutive = self.consecutive.saturating_add(1);
                let (fails, oks) = self.window.sum(now);
                let calls = fails + oks;
                let by_rate = calls >= u64::from(cfg.min_calls)
                    && fails as f64 >= cfg.failure_rate_threshold * calls as f64;
                let by_run = cfg.consecutive_failures > 0 && self.consecutive >= cfg.consecutive_failures;
                if by_rate || by_run {
                    self.open(now, cfg);
                }
            }
            BreakerState::HalfOpen => self.open(now, cfg),
            BreakerState::Open => {}
        }
    }

    #[cfg(test)]
    pub fn on_success(&mut self, now: u64, cfg: &BreakerConfig) {
        self.on_successes(now, 1, cfg);
    }

    /// `count` successes at once (a host's batch of first-attempt successes).
    pub fn on_successes(&mut self, now: u64, count: u64, cfg: &BreakerConfig) {
        self.settle(now, cfg);
        match self.state {
            BreakerState::Closed => {
                self.window.add(now, 0, count);
                self.consecutive = 0;
            }
            BreakerState::HalfOpen => {
                self.probe_successes =
                    self.probe_successes.saturating_add(count.min(u64::from(u32::MAX)) as u32);
                if self.probe_successes >= cfg.half_open_probes {
                    self.state = BreakerState::Closed;
                    self.window = SlidingWindow::new(cfg.window_ms);
                    self.consecutive = 0;
                }
            }
            BreakerState::Open => {}
        }
    }

    /// May a retry be scheduled now? `commit` reserves a probe slot.
    pub fn admit(&mut self, now: u64, cfg: &BreakerConfig, commit: bool) -> Admit {
        self.settle(now, cfg);
        match self.state {
            BreakerState::Closed => Admit::Yes,
            BreakerState::Open => {
                let until_half_open = self.open_until.saturating_sub(now);
                if self.probes_scheduled < cfg.half_open_probes {
                    if commit {
                        self.probes_scheduled += 1;
                    }
                    Admit::Wait(until_half_open)
                } else {
                    Admit::Wait(until_half_open.saturating_add(cfg.open_ms))
                }
            }
            BreakerState::HalfOpen => {
                if self.probes_granted < cfg.half_open_probes {
                    if commit {
                        self.probes_granted += 1;
                    }
                    Admit::Yes
                } else {
                    Admit::Wait(self.half_open_since.saturating_add(cfg.open_ms).saturating_sub(now).max(1))
                }
            }
        }
    }

    pub fn snapshot(&mut self, key: &str, now: u64) -> BreakerSnapshot {
        let (failures, successes) = self.window.sum(now);
        let calls = failures + successes;
        let state = self.state(now);
        BreakerSnapshot {
            key: key.to_string(),
            state,
            failures,
            successes,
            failure_rate: if calls == 0 { 0.0 } else { failures as f64 / calls as f64 },
            open_until_ms: (state == BreakerState::Open).then_some(self.open_until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failure_rate_then_half_opens_and_closes() {
        let cfg = BreakerConfig { min_calls: 10, ..Default::default() };
        let mut b = Breaker::new(&cfg);
        for t in 0..4 {
            b.on_success(t, &cfg);
        }
        for t in 0..5 {
            b.on_failure(10 + t, &cfg);
        }
        assert_eq!(b.state(20), BreakerState::Closed, "9 calls: below min_calls");
        b.on_failure(20, &cfg);
        assert_eq!(b.state(20), BreakerState::Open, "6/10 failed");
        // Three probes are scheduled for the end of the cool-down, the rest later.
        for _ in 0..3 {
            assert_eq!(b.admit(1_000, &cfg, true), Admit::Wait(29_020));
        }
        assert_eq!(b.admit(1_000, &cfg, true), Admit::Wait(59_020));
        assert_eq!(b.state(30_020), BreakerState::HalfOpen);
        assert!(
            matches!(b.admit(30_020, &cfg, true), Admit::Wait(_)),
            "the three scheduled probes are the half-open quota"
        );
        for t in 0..3 {
            b.on_success(30_100 + t, &cfg);
        }
        assert_eq!(b.state(30_200), BreakerState::Closed);
        assert_eq!(b.admit(30_200, &cfg, true), Admit::Yes);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let cfg = BreakerConfig { consecutive_failures: 3, ..Default::default() };
        let mut b = Breaker::new(&cfg);
        for t in 0..3 {
            b.on_failure(t, &cfg);
        }
        assert_eq!(b.state(3), BreakerState::Open);
        assert_eq!(b.state(30_002), BreakerState::HalfOpen);
        b.on_failure(30_005, &cfg);
        assert_eq!(b.state(30_005), BreakerState::Open);
        assert_eq!(b.admit(30_005, &cfg, false), Admit::Wait(30_000));
    }

    #[test]
    fn probes_that_never_report_do_not_wedge_it() {
        let cfg = BreakerConfig { consecutive_failures: 1, half_open_probes: 1, ..Default::default() };
        let mut b = Breaker::new(&cfg);
        b.on_failure(0, &cfg);
        assert_eq!(b.admit(30_000, &cfg, true), Admit::Yes);
        assert!(matches!(b.admit(30_001, &cfg, true), Admit::Wait(_)));
        assert_eq!(b.admit(60_001, &cfg, true), Admit::Yes, "a new probe round");
    }

    #[test]
    fn a_batch_of_successes_counts_as_many() {
        let cfg = BreakerConfig { min_calls: 10, ..Default::default() };
        let mut b = Breaker::new(&cfg);
        b.on_successes(0, 64, &cfg);
        for t in 0..30 {
            b.on_failure(t, &cfg);
        }
        assert_eq!(b.state(30), BreakerState::Closed, "30 failures in 94 calls");
    }

    #[test]
    fn invalid_config_names_the_field() {
        let bad = BreakerConfig { failure_rate_threshold: 1.5, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().field(), Some("failure_rate_threshold"));
    }
}

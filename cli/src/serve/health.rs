//! The store's health, watched every second: the engine's writer reports failed writes
//! and fleet syncs, and a read of the store proves it answers even when nothing is being
//! written. A change of state is one log line and an alert (`store_down`, then
//! `store_recovered`); `/health`, `/metrics` and `/analytics` show the current one.
//!
//! While the store is down decisions keep flowing from the engine's own state and
//! outcomes wait in its bounded buffer (`store_buffered`); see docs/store.md.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use smartretry::{time, Engine};

/// How often the store is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A key read to prove the store answers (never written).
const PROBE_KEY: &str = "server.health_probe";

/// The store as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    /// `ok` or `degraded`.
    pub status: &'static str,
    pub url: String,
    /// Why it is degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when it is in this state (RFC 3339).
    pub since: String,
    /// Outcomes and audit records waiting to be written.
    pub buffered: u64,
    /// Records the full buffer had to drop.
    pub dropped_total: u64,
    /// Failed writes and syncs.
    pub errors_total: u64,
}

impl StoreStatus {
    pub fn is_up(&self) -> bool {
        self.status == "ok"
    }
}

/// The last state seen and since when.
pub struct StoreHealth {
    state: Mutex<(Option<String>, u64)>,
}

impl StoreHealth {
    pub fn new(now: u64) -> StoreHealth {
        StoreHealth { state: Mutex::new((None, now)) }
    }

    /// The store's status as of the last check, with the engine's counters of now.
    pub fn status(&self, engine: &Engine) -> StoreStatus {
        let (reason, since) = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let m = engine.metrics();
        StoreStatus {
            status: if reason.is_some() { "degraded" } else { "ok" },
            url: m.store,
            reason,
            since: time::format_rfc3339(since),
            buffered: m.store_buffered,
            dropped_total: m.store_dropped_total,
            errors_total: m.store_errors_total,
        }
    }

    /// Take a new observation; `Some((was_down, since))` when the state changed.
    pub(super) fn observe(&self, reason: Option<String>, now: u64) -> Option<(Option<String>, u64)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0.is_some() == reason.is_some() {
            if reason.is_some() {
                state.0 = reason; // the newest reason, same since
            }
            return None;
        }
        let before = std::mem::replace(&mut *state, (reason, now));
        Some(before)
    }
}

/// Why the store is degraded now, or `None`: a failed read, else the writer's report.
pub(super) fn probe(engine: &Engine) -> Option<String> {
    let m = engine.metrics();
    if let Err(e) = engine.store().setting_get(PROBE_KEY) {
        return Some(e.to_string());
    }
    m.store_degraded
        .then(|| format!("writes to the store are failing ({} errors so far)", m.store_errors_total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_reported_once_with_since() {
        let h = StoreHealth::new(0);
        assert_eq!(h.observe(None, 1_000), None);
        assert_eq!(h.observe(Some("refused".into()), 2_000), Some((None, 0)));
        assert_eq!(h.observe(Some("timed out".into()), 3_000), None, "still down: no new transition");
        assert_eq!(h.state.lock().unwrap().clone(), (Some("timed out".into()), 2_000));
        assert_eq!(h.observe(None, 9_000), Some((Some("timed out".into()), 2_000)));
    }
}

//! Counters for operators: decisions by tier, retries and refusals, guardrails that
//! acted, records, refits, and the state of the ML tier, events and store.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::api::{Decision, Guardrail, Method};

use super::writer::StoreStats;
use super::Engine;

/// A copy of the engine's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub decisions_total: u64,
    pub decisions_by_method: Vec<(Method, u64)>,
    pub retries_total: u64,
    pub refusals_total: u64,
    pub guardrail_triggers: Vec<(String, u64)>,
    pub records_total: u64,
    pub refits_total: u64,
    pub learned_keys: u64,
    pub key_evictions_total: u64,
    /// Decisions whose policy came from the cache of matched policies (the config's
    /// `cache`), and those that matched it anew.
    pub policy_cache_hits_total: u64,
    pub policy_cache_misses_total: u64,
    pub emergency_stop: bool,
    /// Model inferences that failed (each decision then came from the tier below).
    #[serde(default)]
    pub ml_errors_total: u64,
    /// Decisions the ML tier should have taken part in while it was unavailable.
    #[serde(default)]
    pub ml_unavailable_total: u64,
    /// Lifecycle events by kind (counted whether or not anybody subscribes).
    pub events_total: Vec<(String, u64)>,
    /// Events a full subscriber queue dropped.
    pub events_dropped_total: u64,
    pub overrides_active: u64,
    /// Where state lives (`memory`, `sqlite:///…`, `redis://…`, without secrets).
    pub store: String,
    /// Records waiting to be written (bounded by `store_buffer`).
    pub store_buffered: u64,
    pub store_written_total: u64,
    /// Records dropped because the buffer was full while the store was unreachable.
    pub store_dropped_total: u64,
    /// Sampled decisions not written to the audit trail: past `max_audit_per_sec`.
    pub audit_shed_total: u64,
    pub store_errors_total: u64,
    /// The last write or fleet sync failed: decisions run on this engine's state alone.
    pub store_degraded: bool,
    /// Outcomes other workers of a fleet recorded, learned here.
    pub fleet_outcomes_total: u64,
    /// Check-ins answered "the downstream is back: retry now" (probe-and-release).
    #[serde(default)]
    pub released_total: u64,
}

impl Engine {
    pub(super) fn count(&self, d: &Decision) {
        let m = &self.metrics;
        m.decisions[d.method as usize].fetch_add(1, Ordering::Relaxed);
        if d.should_retry {
            m.retries.fetch_add(1, Ordering::Relaxed);
        } else {
            m.refusals.fetch_add(1, Ordering::Relaxed);
        }
        for &g in &d.policy_guardrails {
            m.guardrails[g as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let (m, settings) = (&self.metrics, self.settings());
        let store_stat =
            |read: fn(&StoreStats) -> u64| self.persist.as_ref().map_or(0, |p| read(&p.queue.stats));
        let by_method: Vec<_> =
            Method::ALL.iter().zip(&m.decisions).map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        MetricsSnapshot {
            decisions_total: by_method.iter().map(|(_, v)| v).sum(),
            decisions_by_method: by_method,
            retries_total: m.retries.load(Ordering::Relaxed),
            refusals_total: m.refusals.load(Ordering::Relaxed),
            guardrail_triggers: Guardrail::ALL
                .iter()
                .zip(&m.guardrails)
                .map(|(g, n)| (g.as_str().to_string(), n.load(Ordering::Relaxed)))
                .collect(),
            records_total: m.records.load(Ordering::Relaxed),
            refits_total: m.refits.load(Ordering::Relaxed),
            learned_keys: self.learner.len() as u64,
            key_evictions_total: self.learner.evictions(),
            policy_cache_hits_total: settings.policy_cache.hits(),
            policy_cache_misses_total: settings.policy_cache.misses(),
            emergency_stop: self.is_emergency_stopped(),
            ml_errors_total: self.ml.errors.load(Ordering::Relaxed),
            ml_unavailable_total: self.ml.unavailable.load(Ordering::Relaxed),
            events_total: self
                .events
                .counts()
                .into_iter()
                .map(|(k, n)| (k.as_str().to_string(), n))
                .collect(),
            events_dropped_total: self.events.dropped(),
            overrides_active: settings.overrides.len() as u64,
            store: self.store.url(),
            store_buffered: self.persist.as_ref().map_or(0, |p| p.queue.buffered()),
            store_written_total: store_stat(|s| s.written.load(Ordering::Relaxed)),
            store_dropped_total: store_stat(|s| s.dropped.load(Ordering::Relaxed)),
            audit_shed_total: store_stat(|s| s.audit_shed.load(Ordering::Relaxed)),
            store_errors_total: store_stat(|s| s.errors.load(Ordering::Relaxed)),
            store_degraded: self
                .persist
                .as_ref()
                .is_some_and(|p| p.queue.stats.degraded.load(Ordering::Relaxed)),
            fleet_outcomes_total: store_stat(|s| s.fleet_applied.load(Ordering::Relaxed)),
            released_total: m.released.load(Ordering::Relaxed),
        }
    }
}

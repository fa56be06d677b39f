//! The engine: what an application holds. It owns the state decisions read (a settings
//! snapshot, learned recovery curves, guard state, the ML tier), hands it to the
//! [`decide`](crate::decide) pipeline as a `World`, and does what follows a decision:
//! metrics, lifecycle events, the audit trail and the store.
//!
//! `&self` everywhere; state is behind short locks (sharded learned keys, one guardrail
//! lock, a copy-on-write settings snapshot), so one engine serves many threads. Time is
//! passed in (`now_ms`, wall clock when `None`) and randomness comes from the engine's
//! seed, so a run is reproducible from its inputs.
//!
//! - `builder.rs`: [`EngineBuilder`](builder::EngineBuilder) and
//!   [`EngineOptions`](builder::EngineOptions), how an engine is made;
//! - `decisions.rs`: `decide` and `preview`;
//! - `outcomes.rs`: `record`, `record_successes`, `released`: learning from outcomes;
//! - `stats.rs`: what was seen (stats, refit, audit trail, attempt history);
//! - `admin.rs`: policies, guardrails, the emergency stop, overrides, health;
//! - `metrics.rs`, `events.rs`: counters for operators, lifecycle events;
//! - `dlq.rs`, `models.rs`: the dead-letter queue and the ML model registry;
//! - `operator.rs`, `operate.rs`: the operators' settings as versioned state in the store;
//! - `writer.rs`: the background writer of a durable store.

pub(crate) mod admin;
pub(crate) mod builder;
pub(crate) mod decisions;
pub(crate) mod dlq;
pub(crate) mod events;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod operate;
pub(crate) mod operator;
pub(crate) mod outcomes;
pub(crate) mod stats;
pub(crate) mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::api::{Decision, Features, Guardrail, Method};
use crate::backoff::mix64;
use crate::bayes::Learner;
use crate::contexts::ContextState;
use crate::decide::Settings;
use crate::error::Result;
use crate::events::EventBus;
use crate::guard::GuardState;
use crate::ml::MlTier;
use crate::store::{MemoryHistory, Store};

use writer::Persister;

/// Called with a sample of decisions (`data_collection.sample_rate`): the audit trail.
pub type AuditHook = Arc<dyn Fn(&Features, &Decision, u64) + Send + Sync>;

/// Counters for operators; all monotonic.
#[derive(Default)]
pub(crate) struct Metrics {
    /// By [`Method`], indexed by its discriminant (the order of `Method::ALL`).
    pub(crate) decisions: [AtomicU64; Method::ALL.len()],
    pub(crate) retries: AtomicU64,
    pub(crate) refusals: AtomicU64,
    /// By [`Guardrail`], indexed the same way.
    pub(crate) guardrails: [AtomicU64; Guardrail::ALL.len()],
    pub(crate) records: AtomicU64,
    pub(crate) refits: AtomicU64,
    pub(crate) released: AtomicU64,
}

/// The retry engine. Cheap to share (`Arc<Engine>`); every method takes `&self`.
pub struct Engine {
    settings: Arc<RwLock<Arc<Settings>>>,
    emergency: Arc<AtomicBool>,
    learner: Arc<Learner>,
    guard: Arc<Mutex<GuardState>>,
    history: Arc<MemoryHistory>,
    seed: u64,
    counter: AtomicU64,
    metrics: Metrics,
    audit: Option<AuditHook>,
    ml: MlTier,
    events: Arc<EventBus>,
    /// Counts of the contexts' own caps (locked only for contexts that have caps).
    context_state: Mutex<ContextState>,
    store: Arc<dyn Store>,
    /// The writer thread of a durable store (none for memory).
    persist: Option<Persister>,
    /// The operators' settings version applied, and the emergency stop's story.
    operator: Arc<operator::OperatorState>,
}

impl Engine {
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Where this engine keeps its state.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Wait until every outcome and audit record so far is in the store (at most
    /// `timeout`); an error says the store is unreachable (the records stay buffered).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        match &self.persist {
            Some(p) => p.flush(timeout),
            None => Ok(()),
        }
    }

    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn guard(&self) -> MutexGuard<'_, GuardState> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state the writer thread shares with this engine.
    fn shared(&self) -> writer::Shared {
        writer::Shared {
            learner: Arc::clone(&self.learner),
            history: Arc::clone(&self.history),
            guard: Arc::clone(&self.guard),
            emergency: Arc::clone(&self.emergency),
            settings: Arc::clone(&self.settings),
            operator: Arc::clone(&self.operator),
        }
    }

    /// 64 bits unique to this engine and call (ids of dead letters).
    fn unique_bits(&self, now: u64) -> u64 {
        mix64(self.seed ^ mix64(now) ^ mix64(self.counter.fetch_add(1, Ordering::Relaxed) ^ 0xd1e))
    }

    /// Change the settings: a changed copy replaces the snapshot (decisions under way
    /// keep the one they read).
    fn update_settings(&self, change: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut slot = self.settings.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(slot.to_changed(change)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        assert!(Engine::builder().build().is_ok());
    }
}

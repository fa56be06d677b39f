//! How an engine is made: a config, a seed, hooks and a store.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use crate::api::{Decision, Features};
use crate::backoff::mix64;
use crate::bayes::Learner;
use crate::config::Config;
use crate::contexts::ContextState;
use crate::decide::Settings;
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::guard::{GuardState, Guardrails};
use crate::ml::MlTier;
use crate::policy::Policy;
use crate::store::{MemoryHistory, Store};
use crate::time;

use super::writer::{Persister, Shared};
use super::{AuditHook, Engine, Metrics};

/// Builds an [`Engine`] from a config, a seed and hooks.
#[derive(Default)]
pub struct EngineBuilder {
    config: Config,
    seed: Option<u64>,
    audit: Option<AuditHook>,
    store: Option<Arc<dyn Store>>,
}

impl EngineBuilder {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Makes every random choice reproducible.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.config.strategy.guardrails = guardrails;
        self
    }

    pub fn policies(mut self, policies: Vec<Policy>) -> Self {
        self.config.strategy.policies = policies;
        self
    }

    /// The ONNX Runtime library for the ML tier (see [`crate::ml`] for the default search).
    pub fn ml_runtime(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.ml_runtime_path = Some(path.into());
        self
    }

    /// Which inference backend serves models (default [`MlBackend::Auto`](crate::ml::MlBackend)).
    pub fn ml_backend(mut self, backend: crate::ml::MlBackend) -> Self {
        self.config.ml_backend = backend;
        self
    }

    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.config.max_keys = max_keys;
        self
    }

    /// Where state lives: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.config.store = url.into();
        self
    }

    /// A store opened by the caller (shared by several engines, or a custom one).
    pub fn store_handle(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn on_decision(mut self, hook: impl Fn(&Features, &Decision, u64) + Send + Sync + 'static) -> Self {
        self.audit = Some(Arc::new(hook));
        self
    }

    pub fn build(self) -> Result<Engine> {
        self.config.validate()?;
        let settings = Settings::new(&self.config)?;
        let seed = self.seed.or(self.config.seed).unwrap_or_else(|| {
            let state = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), time::now_ms());
            mix64(state)
        });
        let guardrails = &settings.strategy.guardrails;
        let shared = Shared {
            emergency: Arc::new(AtomicBool::new(guardrails.emergency_stop)),
            guard: Arc::new(Mutex::new(GuardState::new(self.config.max_keys, guardrails))),
            learner: Arc::new(Learner::new(self.config.max_keys)),
            history: Arc::new(MemoryHistory::new(self.config.history_capacity)),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            operator: Arc::default(),
        };
        let store = match self.store {
            Some(store) => store,
            None => crate::store::open(&self.config.store_url(), Some(&self.config.redis_password))?,
        };
        let persist = if store.durable() {
            let mut restored = store.restore(self.config.history_capacity)?;
            let cursor = std::mem::take(&mut restored.cursor);
            shared.restore(restored);
            // The operators' settings as last stored (an unreachable fleet store: later).
            match shared.sync_operator_settings(&*store) {
                Err(Error::Store(_)) if store.fleet().is_some() => {}
                other => {
                    other?;
                }
            }
            Some(Persister::start(Arc::clone(&store), shared.clone(), self.config.store_buffer, cursor)?)
        } else {
            None
        };
        let engine = Engine {
            emergency: shared.emergency,
            guard: shared.guard,
            learner: shared.learner,
            history: shared.history,
            settings: shared.settings,
            operator: shared.operator,
            seed,
            counter: AtomicU64::new(0),
            metrics: Metrics::default(),
            audit: self.audit,
            ml: MlTier::new(self.config.ml_runtime_path.clone(), self.config.ml_backend),
            events: Arc::new(EventBus::default()),
            context_state: Mutex::new(ContextState::default()),
            store,
            persist,
        };
        if engine.persist.is_some() {
            match engine.load_ml_registry() {
                // An unreachable fleet store starts the engine without the registry
                // (decisions come from the tiers below; deploy again or restart).
                Err(Error::Store(_)) if engine.store.fleet().is_some() => {}
                other => other?,
            }
        }
        Ok(engine)
    }
}

impl Engine {
    /// An engine with the API document's defaults and a random seed.
    pub fn new() -> Engine {
        Engine::builder().build().unwrap_or_else(|_| unreachable_default())
    }

    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub fn from_config(config: Config) -> Result<Engine> {
        Engine::builder().config(config).build()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// Unreachable: the default config always validates (a unit test proves it).
#[cold]
fn unreachable_default() -> Engine {
    panic!("the default configuration failed validation")
}

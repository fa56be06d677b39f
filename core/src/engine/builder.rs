//! How an engine is made: a config, a seed, hooks and a store.

use std::path::PathBuf;
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
use crate::ml::{MlBackend, MlTier};
use crate::policy::Policy;
use crate::store::{MemoryHistory, Store};
use crate::time;

use super::writer::{Persister, Shared};
use super::{AuditHook, Engine, Metrics};

/// Builds an [`Engine`] from a config, a seed and hooks. The setters other than
/// [`config`](Self::config) override the config's fields, in whatever order they are
/// called.
#[derive(Default)]
pub struct EngineBuilder {
    config: Config,
    seed: Option<u64>,
    audit: Option<AuditHook>,
    store_handle: Option<Arc<dyn Store>>,
    store: Option<String>,
    guardrails: Option<Guardrails>,
    policies: Option<Vec<Policy>>,
    ml_runtime: Option<PathBuf>,
    ml_backend: Option<MlBackend>,
    max_keys: Option<usize>,
}

impl EngineBuilder {
    /// The whole configuration (the other setters still win over its fields).
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
        self.guardrails = Some(guardrails);
        self
    }

    pub fn policies(mut self, policies: Vec<Policy>) -> Self {
        self.policies = Some(policies);
        self
    }

    /// The ONNX Runtime library for the ML tier (see [`crate::ml`] for the default search).
    pub fn ml_runtime(mut self, path: impl Into<PathBuf>) -> Self {
        self.ml_runtime = Some(path.into());
        self
    }

    /// Which inference backend serves models (default [`MlBackend::Auto`]).
    pub fn ml_backend(mut self, backend: MlBackend) -> Self {
        self.ml_backend = Some(backend);
        self
    }

    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = Some(max_keys);
        self
    }

    /// Where state lives: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store = Some(url.into());
        self
    }

    /// A store opened by the caller (shared by several engines, or a custom one).
    pub fn store_handle(mut self, store: Arc<dyn Store>) -> Self {
        self.store_handle = Some(store);
        self
    }

    /// The configuration with the setters' fields over it.
    fn resolved_config(&mut self) -> Config {
        let mut c = std::mem::take(&mut self.config);
        if let Some(store) = self.store.take() {
            c.store = store;
        }
        if let Some(g) = self.guardrails.take() {
            c.strategy.guardrails = g;
        }
        if let Some(p) = self.policies.take() {
            c.strategy.policies = p;
        }
        if let Some(path) = self.ml_runtime.take() {
            c.ml_runtime_path = Some(path);
        }
        if let Some(b) = self.ml_backend.take() {
            c.ml_backend = b;
        }
        if let Some(n) = self.max_keys.take() {
            c.max_keys = n;
        }
        c
    }

    pub fn on_decision(mut self, hook: impl Fn(&Features, &Decision, u64) + Send + Sync + 'static) -> Self {
        self.audit = Some(Arc::new(hook));
        self
    }

    pub fn build(mut self) -> Result<Engine> {
        let config = self.resolved_config();
        config.validate()?;
        let settings = Settings::new(&config)?;
        let seed = self.seed.or(config.seed).unwrap_or_else(|| {
            let state = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), time::now_ms());
            mix64(state)
        });
        let guardrails = &settings.strategy.guardrails;
        let shared = Shared {
            emergency: Arc::new(AtomicBool::new(guardrails.emergency_stop)),
            guard: Arc::new(Mutex::new(GuardState::new(config.max_keys, guardrails))),
            learner: Arc::new(Learner::new(config.max_keys)),
            history: Arc::new(MemoryHistory::new(config.history_capacity)),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            operator: Arc::default(),
        };
        let store = match self.store_handle {
            Some(store) => store,
            None => crate::store::open(&config.store_url(), Some(&config.redis_password))?,
        };
        let persist = if store.durable() {
            let mut restored = store.restore(config.history_capacity)?;
            let cursor = std::mem::take(&mut restored.cursor);
            shared.restore(restored);
            // The operators' settings as last stored (an unreachable fleet store: later).
            match shared.sync_operator_settings(&*store) {
                Err(Error::Store(_)) if store.fleet().is_some() => {}
                other => {
                    other?;
                }
            }
            Some(Persister::start(Arc::clone(&store), shared.clone(), config.store_buffer, cursor)?)
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
            ml: MlTier::new(config.ml_runtime_path.clone(), config.ml_backend),
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

/// What a host gives to make an engine: the one way every binding (Python, Node, Kotlin,
/// Go) builds one, so each reads the configuration, the environment and the store the
/// same way and names the same fields in its errors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineOptions {
    /// The configuration file's JSON (`None`: the defaults)…
    pub config_json: Option<String>,
    /// …or the path of such a file (not both).
    pub config_path: Option<PathBuf>,
    /// Apply the `RETRY_*` environment variables over the configuration.
    pub env: bool,
    /// Where state lives, over the configuration's `store` (`memory`,
    /// `sqlite:///path.db`, `redis://host:port/db`).
    pub store: Option<String>,
    /// Makes every random choice reproducible (default: the configuration's, else random).
    pub seed: Option<u64>,
    /// The ONNX Runtime library for the ML tier (default: found installed).
    pub ml_runtime: Option<PathBuf>,
}

impl EngineOptions {
    /// The configuration these options describe.
    pub fn config(&self) -> Result<Config> {
        let mut config = match (&self.config_json, &self.config_path) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("config", "give the configuration as JSON or as a path, not both"))
            }
            (Some(json), None) => Config::from_json(json)?,
            (None, Some(path)) => Config::from_file(path)?,
            (None, None) => Config::default(),
        };
        if self.env {
            config.apply_env(std::env::vars())?;
        }
        Ok(config)
    }

    /// The builder these options describe (add hooks or a store handle, then build).
    pub fn builder(&self) -> Result<EngineBuilder> {
        let mut builder = Engine::builder().config(self.config()?);
        if let Some(store) = &self.store {
            builder = builder.store(store.clone());
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        if let Some(path) = &self.ml_runtime {
            builder = builder.ml_runtime(path.clone());
        }
        Ok(builder)
    }

    pub fn build(&self) -> Result<Engine> {
        self.builder()?.build()
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

    /// An engine from a host's options (see [`EngineOptions`]).
    pub fn with_options(options: &EngineOptions) -> Result<Engine> {
        options.build()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setter_wins_over_the_config_whatever_the_order() {
        let config = Config { max_keys: 7, ..Config::default() };
        let e = Engine::builder().max_keys(3).store("memory").config(config).build().unwrap();
        assert_eq!(e.store().url(), "memory");
        let mut b = Engine::builder().max_keys(3).config(Config { max_keys: 7, ..Config::default() });
        assert_eq!(b.resolved_config().max_keys, 3);
    }

    #[test]
    fn options_name_what_is_wrong() {
        let both = EngineOptions {
            config_json: Some("{}".into()),
            config_path: Some("x.json".into()),
            ..EngineOptions::default()
        };
        assert_eq!(both.build().err().and_then(|e| e.field().map(str::to_string)).as_deref(), Some("config"));
        let bad_store = EngineOptions { store: Some("ftp://x".into()), ..EngineOptions::default() };
        assert_eq!(
            bad_store.build().err().and_then(|e| e.field().map(str::to_string)).as_deref(),
            Some("store")
        );
        let seeded = EngineOptions { config_json: Some(r#"{"seed": 5}"#.into()), ..EngineOptions::default() };
        assert_eq!(seeded.build().unwrap().seed(), 5);
        let over = EngineOptions { seed: Some(9), ..seeded };
        assert_eq!(over.build().unwrap().seed(), 9);
    }

    #[test]
    fn an_engine_always_explains() {
        let quiet = Guardrails { explainability_required: false, ..Guardrails::default() };
        let e = Engine::builder().guardrails(quiet).build().err().expect("refused");
        assert!(e.field().is_some_and(|f| f.ends_with("explainability_required")), "{e}");
    }
}

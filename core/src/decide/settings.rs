//! The settings a decision reads: one immutable snapshot, swapped whole (copy on write)
//! when an operator changes policies, guardrails or overrides, so a decision never sees
//! half a change and never waits for one.

use std::sync::Arc;

use crate::bayes::BayesConfig;
use crate::breaker::BreakerConfig;
use crate::config::{Config, Strategy};
use crate::contexts::ContextSet;
use crate::error::Result;
use crate::overrides::OverrideSet;
use crate::policy::PolicySet;

use super::policy_cache::{CacheCounts, PolicyCache};

pub(crate) struct Settings {
    pub(crate) strategy: Strategy,
    pub(crate) policies: PolicySet,
    /// The Bayesian tier's tuning, with the strategy's threshold.
    pub(crate) bayes: BayesConfig,
    /// The learning tiers may answer (the engine, the strategy and data collection are on).
    pub(crate) adaptive: bool,
    pub(crate) overrides: OverrideSet,
    pub(crate) contexts: Arc<ContextSet>,
    /// The matched policy per subject (the config's `cache`), emptied with every change.
    pub(crate) policy_cache: PolicyCache,
}

impl Settings {
    pub(crate) fn new(config: &Config) -> Result<Settings> {
        let strategy = config.strategy.clone();
        let policies = PolicySet::new(strategy.policies.clone())?;
        Ok(Settings {
            bayes: strategy.bayes(),
            adaptive: config.enabled && strategy.enabled && strategy.data_collection.enabled,
            overrides: OverrideSet::default(),
            contexts: Arc::new(ContextSet::new(&config.contexts, &strategy.circuit_breaker)?),
            policy_cache: PolicyCache::new(&config.cache, Arc::new(CacheCounts::default())),
            policies,
            strategy,
        })
    }

    /// A copy to change (the contexts are shared: they only change with a new engine).
    pub(crate) fn to_changed(&self, change: impl FnOnce(&mut Settings) -> Result<()>) -> Result<Settings> {
        let mut next = Settings {
            strategy: self.strategy.clone(),
            policies: self.policies.clone(),
            bayes: self.bayes,
            adaptive: self.adaptive,
            overrides: self.overrides.clone(),
            contexts: Arc::clone(&self.contexts),
            policy_cache: self.policy_cache.emptied(),
        };
        change(&mut next)?;
        next.bayes = next.strategy.bayes();
        Ok(next)
    }

    /// The breaker settings of `job_type`'s downstream (its context's, else the strategy's).
    pub(crate) fn breaker_for(&self, job_type: &str) -> &BreakerConfig {
        self.contexts.get(job_type).map_or(&self.strategy.circuit_breaker, |c| &c.breaker)
    }
}

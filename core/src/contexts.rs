//! Context-aware configuration: defaults per service and per operation, from the
//! configuration file's `contexts` map. A key is a job type or a prefix of one at a
//! `.`, `:` or `/` boundary (`session_manager` covers `session_manager.create_session`);
//! the longest matching key wins, and fields it leaves unset come from shorter ones.
//!
//! A context shapes the retrying policies of its job types (attempts, base and max
//! delay, backoff, jitter), turns the learning tier and health-aware backoff on or off,
//! tunes the breaker of its downstreams, caps its retries in flight and per minute and
//! hour, sets a default priority, and may let critical work past global backpressure.
//! Field names follow the API's snake_case; the documents' camelCase names are accepted
//! too, so `DEFAULT_RETRY_CONFIGS` loads as written.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::api::{Priority, MAX_LABEL_LEN};
use crate::backoff::{BackoffStrategy, Jitter};
use crate::breaker::BreakerConfig;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::window::SlidingWindow;

const DAY_MS: u64 = 86_400_000;
const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// A backoff shape; `adaptive` is exponential with health-aware adjustment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextBackoff {
    Exponential,
    Linear,
    Fibonacci,
    Aggressive,
    Constant,
    Adaptive,
}

/// One context's settings; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Informational (the documents' `serviceType` / `operationType`).
    #[serde(default, alias = "serviceType", skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    #[serde(default, alias = "operationType", skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<String>,
    #[serde(default, alias = "maxAttempts", skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, alias = "baseDelay", skip_serializing_if = "Option::is_none")]
    pub base_delay_ms: Option<u64>,
    #[serde(default, alias = "maxDelay", skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    #[serde(default, alias = "backoffStrategy", skip_serializing_if = "Option::is_none")]
    pub backoff: Option<ContextBackoff>,
    #[serde(default, alias = "jitterType", skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
    /// The learning tiers (Bayesian, ML) and health-aware backoff; `false` = rules only.
    #[serde(default, alias = "enableAdaptiveBackoff", skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<bool>,
    /// Health-aware backoff alone (the documents' resource-aware retry).
    #[serde(default, alias = "enableResourceAwareRetry", skip_serializing_if = "Option::is_none")]
    pub health_aware: Option<bool>,
    #[serde(default, alias = "adaptationFactor", skip_serializing_if = "Option::is_none")]
    pub adaptation_factor: Option<f64>,
    #[serde(default, alias = "enableCircuitBreaker", skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<bool>,
    /// Consecutive failures that open the breaker.
    #[serde(default, alias = "circuitBreakerThreshold", skip_serializing_if = "Option::is_none")]
    pub circuit_breaker_threshold: Option<u32>,
    /// How long it stays open before probing.
    #[serde(default, alias = "circuitBreakerTimeout", skip_serializing_if = "Option::is_none")]
    pub circuit_breaker_timeout_ms: Option<u64>,
    #[serde(default, alias = "maxConcurrentRetries", skip_serializing_if = "Option::is_none")]
    pub max_concurrent_retries: Option<u32>,
    #[serde(default, alias = "retryBudgetPerMinute", skip_serializing_if = "Option::is_none")]
    pub retry_budget_per_minute: Option<u32>,
    #[serde(default, alias = "retryBudgetPerHour", skip_serializing_if = "Option::is_none")]
    pub retry_budget_per_hour: Option<u32>,
    /// `false` lets critical-priority retries past the global retry budget, adaptive
    /// throttling and the global concurrency cap (never the emergency stop, the breaker
    /// or this context's own caps).
    #[serde(default, alias = "respectGlobalBackpressure", skip_serializing_if = "Option::is_none")]
    pub respect_global_backpressure: Option<bool>,
    /// Priority of this context's jobs when a call states none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

impl Context {
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.max_attempts {
            if !(1..=100).contains(&n) {
                return Err(Error::config("max_attempts", format!("must be 1–100, got {n}")));
            }
        }
        for (field, v) in [("base_delay_ms", self.base_delay_ms), ("max_delay_ms", self.max_delay_ms)] {
            if v.is_some_and(|v| v > DAY_MS) {
                return Err(Error::config(field, "must be at most 24 h"));
            }
        }
        if let (Some(base), Some(max)) = (self.base_delay_ms, self.max_delay_ms) {
            if max < base {
                return Err(Error::config("max_delay_ms", format!("must be ≥ base_delay_ms ({base})")));
            }
        }
        if let Some(Jitter::Percent(p)) = self.jitter {
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::config("jitter", "percent must be 0–100"));
            }
        }
        if self.adaptation_factor.is_some_and(|a| !(0.0..=2.0).contains(&a)) {
            return Err(Error::config("adaptation_factor", "must be 0–2"));
        }
        if self.circuit_breaker_threshold == Some(0) {
            return Err(Error::config("circuit_breaker_threshold", "must be ≥ 1"));
        }
        if self.circuit_breaker_timeout_ms.is_some_and(|t| t == 0 || t > DAY_MS) {
            return Err(Error::config("circuit_breaker_timeout_ms", "must be 1 ms – 24 h"));
        }
        if self.max_concurrent_retries == Some(0) {
            return Err(Error::config("max_concurrent_retries", "must be ≥ 1"));
        }
        Ok(())
    }

    /// `self` with the fields it leaves unset taken from `parent`.
    fn inherit(&self, parent: &Context) -> Context {
        macro_rules! pick {
            ($($f:ident),*) => { Context { $($f: self.$f.clone().or_else(|| parent.$f.clone()),)* } };
        }
        pick!(
            service_type,
            operation_type,
            max_attempts,
            base_delay_ms,
            max_delay_ms,
            backoff,
            jitter,
            adaptive,
            health_aware,
            adaptation_factor,
            circuit_breaker,
            circuit_breaker_threshold,
            circuit_breaker_timeout_ms,
            max_concurrent_retries,
            retry_budget_per_minute,
            retry_budget_per_hour,
            respect_global_backpressure,
            priority
        )
    }

    fn has_limits(&self) -> bool {
        self.max_concurrent_retries.is_some()
            || self.retry_budget_per_minute.is_some()
            || self.retry_budget_per_hour.is_some()
    }

    /// `policy` reshaped by this context (a policy that never retries stays so).
    pub fn shape<'p>(&self, policy: &'p Policy) -> Cow<'p, Policy> {
        let reshapes = self.max_attempts.is_some()
            || self.base_delay_ms.is_some()
            || self.max_delay_ms.is_some()
            || self.backoff.is_some()
            || self.jitter.is_some();
        if !reshapes || !policy.retries() {
            return Cow::Borrowed(policy);
        }
        let mut p = policy.clone();
        if let Some(n) = self.max_attempts {
            p.max_attempts = n;
        }
        if let Some(b) = self.base_delay_ms {
            p.base_delay_ms = b;
        }
        if let Some(m) = self.max_delay_ms {
            p.max_delay_ms = m;
        }
        p.max_delay_ms = p.max_delay_ms.max(p.base_delay_ms);
        if let Some(b) = self.backoff {
            p.strategy = Some(match b {
                ContextBackoff::Exponential | ContextBackoff::Adaptive => BackoffStrategy::Exponential,
                ContextBackoff::Linear => BackoffStrategy::Linear,
                ContextBackoff::Fibonacci => BackoffStrategy::Fibonacci,
                ContextBackoff::Aggressive => BackoffStrategy::Aggressive,
                ContextBackoff::Constant => BackoffStrategy::Constant,
            });
        }
        if self.jitter.is_some() {
            p.jitter = self.jitter;
        }
        Cow::Owned(p)
    }
}

/// A context resolved for a job type: its merged settings and derived configs.
#[derive(Debug, Clone)]
pub struct ResolvedContext {
    pub name: String,
    pub context: Context,
    pub breaker: BreakerConfig,
    pub has_limits: bool,
}

impl ResolvedContext {
    pub fn learning(&self) -> bool {
        self.context.adaptive != Some(false)
    }

    pub fn health_aware(&self) -> bool {
        self.context.health_aware.unwrap_or(self.context.adaptive != Some(false))
    }
}

/// Every context of the configuration, resolved once at load.
#[derive(Debug, Clone, Default)]
pub struct ContextSet {
    by_key: HashMap<String, ResolvedContext>,
}

impl ContextSet {
    pub fn new(contexts: &BTreeMap<String, Context>, breaker: &BreakerConfig) -> Result<ContextSet> {
        let mut by_key = HashMap::new();
        for (key, ctx) in contexts {
            if key.trim().is_empty() || key.len() > MAX_LABEL_LEN {
                return Err(Error::config(format!("contexts.{key}"), "keys must be 1–256 bytes"));
            }
            ctx.validate().map_err(|e| e.within(&format!("contexts.{key}")))?;
            // Merge from the shortest matching prefix to the key itself.
            let mut merged = Context::default();
            for prefix in prefixes(key).collect::<Vec<_>>().into_iter().rev() {
                if let Some(parent) = contexts.get(prefix) {
                    merged = parent.inherit(&merged);
                }
            }
            let c = &merged;
            let mut b = breaker.clone();
            if let Some(on) = c.circuit_breaker {
                b.enabled = on;
            }
            if let Some(t) = c.circuit_breaker_threshold {
                b.consecutive_failures = t;
            }
            if let Some(ms) = c.circuit_breaker_timeout_ms {
                b.open_ms = ms;
            }
            b.validate().map_err(|e| e.within(&format!("contexts.{key}.circuit_breaker")))?;
            let has_limits = merged.has_limits();
            by_key.insert(
                key.clone(),
                ResolvedContext { name: key.clone(), context: merged, breaker: b, has_limits },
            );
        }
        Ok(ContextSet { by_key })
    }

    /// The context of `job_type`: the longest key equal to it or a prefix of it.
    #[inline]
    pub fn get(&self, job_type: &str) -> Option<&ResolvedContext> {
        if self.by_key.is_empty() {
            return None;
        }
        self.lookup(job_type)
    }

    fn lookup(&self, job_type: &str) -> Option<&ResolvedContext> {
        prefixes(job_type).find_map(|p| self.by_key.get(p))
    }
}

/// `a.b.c`, `a.b`, `a`: the key and its prefixes at `.`, `:` or `/`, longest first.
fn prefixes(key: &str) -> impl Iterator<Item = &str> {
    let cuts = key.char_indices().filter(|(_, c)| matches!(c, '.' | ':' | '/')).map(|(i, _)| i);
    std::iter::once(key).chain(cuts.collect::<Vec<_>>().into_iter().rev().map(move |i| &key[..i]))
}

/// A context's cap that refused a retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ContextRefusal {
    /// (in flight, allowed for this priority, the cap)
    Concurrency(u64, u64, u32),
    /// (window name, used, allowed for this priority, the cap)
    Budget(&'static str, u64, u64, u32),
}

#[derive(Default)]
struct Usage {
    in_flight: HashMap<Box<str>, u64>,
    minute: Option<SlidingWindow>,
    hour: Option<SlidingWindow>,
    anonymous: u64,
}

/// The per-context caps' counts (one entry per configured context that has caps).
#[derive(Default)]
pub struct ContextState {
    usage: HashMap<String, Usage>,
}

impl ContextState {
    /// May one more retry of context `r` go ahead? `share` is the caller's priority share
    /// (1 = the whole cap); with `commit`, count it.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        r: &ResolvedContext,
        job_id: Option<&str>,
        retry_at_ms: u64,
        ttl_ms: u64,
        share: f64,
        now: u64,
        commit: bool,
    ) -> std::result::Result<(), ContextRefusal> {
        let c = &r.context;
        let u = self.usage.entry(r.name.clone()).or_default();
        let for_priority = |cap: u32| (f64::from(cap) * share).floor() as u64;
        if let Some(cap) = c.max_concurrent_retries {
            u.in_flight.retain(|_, expires| *expires > now);
            let n = u.in_flight.len() as u64;
            let replacing = job_id.is_some_and(|id| u.in_flight.contains_key(id));
            if !replacing && n >= for_priority(cap) {
                return Err(ContextRefusal::Concurrency(n, for_priority(cap), cap));
            }
        }
        let windows =
            [("minute", MINUTE_MS, c.retry_budget_per_minute), ("hour", HOUR_MS, c.retry_budget_per_hour)];
        for (name, window_ms, cap) in windows {
            if let Some(cap) = cap {
                let w = if name == "minute" { &mut u.minute } else { &mut u.hour };
                let used = w.get_or_insert_with(|| SlidingWindow::new(window_ms)).sum(now).0;
                if used >= for_priority(cap) {
                    return Err(ContextRefusal::Budget(name, used, for_priority(cap), cap));
                }
            }
        }
        if commit {
            for w in [&mut u.minute, &mut u.hour].into_iter().flatten() {
                w.add(now, 1, 0);
            }
            if c.max_concurrent_retries.is_some() {
                let key: Box<str> = match job_id {
                    Some(id) => id.into(),
                    None => {
                        u.anonymous += 1;
                        format!("\u{0}anonymous-{}", u.anonymous).into()
                    }
                };
                u.in_flight.insert(key, retry_at_ms.saturating_add(ttl_ms));
            }
        }
        Ok(())
    }

    /// An outcome for `job_id` arrived: its slot is free.
    pub fn release(&mut self, job_id: &str) {
        for u in self.usage.values_mut() {
            u.in_flight.remove(job_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed document's `DEFAULT_RETRY_CONFIGS` (shared with every language's tests).
    const DEFAULT_RETRY_CONFIGS: &str = include_str!("../../tests/fixtures/default_retry_configs.json");

    fn set(json: &str) -> ContextSet {
        let contexts: BTreeMap<String, Context> = crate::api::from_json(json).unwrap();
        ContextSet::new(&contexts, &BreakerConfig::default()).unwrap()
    }

    #[test]
    fn the_documents_defaults_load_as_written() {
        let s = set(DEFAULT_RETRY_CONFIGS);
        let sm = s.get("session_manager.create_session").unwrap();
        assert_eq!(sm.name, "session_manager");
        assert_eq!((sm.breaker.consecutive_failures, sm.breaker.open_ms), (5, 60_000));
        let policy = Policy::new("service_unavailable", 3, 2_000, 30_000);
        let shaped = sm.context.shape(&policy);
        assert_eq!((shaped.max_attempts, shaped.base_delay_ms, shaped.max_delay_ms), (3, 1_000, 30_000));
        assert_eq!(shaped.jitter, Some(Jitter::Full));
        let cp = s.get("connection_pool:acquire_connection").unwrap();
        assert_eq!(cp.context.max_concurrent_retries, Some(20));
        assert!(cp.has_limits && cp.health_aware());
        let co = s.get("campaign_orchestrator").unwrap();
        assert_eq!(co.context.respect_global_backpressure, Some(false));
        assert!(s.get("billing").is_none());
        assert!(s.get("session_manager_v2").is_none(), "prefixes stop at a separator");
    }

    #[test]
    fn the_longest_key_wins_and_inherits_the_rest() {
        let s = set(r#"{"session_manager": {"maxAttempts": 3, "baseDelay": 1000},
                "session_manager.create_session": {"max_attempts": 5}}"#);
        let r = s.get("session_manager.create_session").unwrap();
        assert_eq!(
            (r.name.as_str(), r.context.max_attempts, r.context.base_delay_ms),
            ("session_manager.create_session", Some(5), Some(1_000))
        );
        assert_eq!(s.get("session_manager.execute_action").unwrap().context.max_attempts, Some(3));
    }

    #[test]
    fn bad_contexts_name_the_path() {
        let parse = |json: &str| {
            let contexts: BTreeMap<String, Context> = crate::api::from_json(json)?;
            ContextSet::new(&contexts, &BreakerConfig::default())
        };
        let err = parse(r#"{"pool": {"maxAttempts": 0}}"#).unwrap_err();
        assert_eq!(err.field(), Some("contexts.pool.max_attempts"));
        let err = parse(r#"{"pool": {"baseDelay": 500, "maxDelay": 100}}"#).unwrap_err();
        assert_eq!(err.field(), Some("contexts.pool.max_delay_ms"));
        let err = parse(r#"{"pool": {"backoffStrategy": "random"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("pool.backoffStrategy"));
    }

    #[test]
    fn caps_reserve_headroom_for_higher_priorities() {
        let s = set(r#"{"pool": {"maxConcurrentRetries": 4, "retryBudgetPerMinute": 10}}"#);
        let r = s.get("pool").unwrap();
        let mut st = ContextState::default();
        let admit =
            |st: &mut ContextState, id: &str, share: f64| st.admit(r, Some(id), 0, 60_000, share, 0, true);
        assert!(admit(&mut st, "a", 0.5).is_ok());
        assert!(admit(&mut st, "b", 0.5).is_ok());
        assert_eq!(
            admit(&mut st, "c", 0.5),
            Err(ContextRefusal::Concurrency(2, 2, 4)),
            "low gets half the slots"
        );
        assert!(admit(&mut st, "c", 1.0).is_ok());
        assert!(admit(&mut st, "d", 1.0).is_ok());
        assert_eq!(admit(&mut st, "e", 1.0), Err(ContextRefusal::Concurrency(4, 4, 4)));
        st.release("a");
        assert!(admit(&mut st, "e", 1.0).is_ok(), "an outcome frees its slot");
    }
}

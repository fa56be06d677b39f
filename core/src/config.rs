//! Configuration in the shape of the API document's configuration example, from a JSON
//! file and `RETRY_*` environment variables, validated with errors naming the field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bayes::BayesConfig;
use crate::breaker::BreakerConfig;
use crate::contexts::{Context, ContextSet};
use crate::error::{Error, Result};
use crate::guard::Guardrails;
use crate::health::HealthConfig;
use crate::policy::{Policy, PolicySet};
use crate::time::parse_duration_ms;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `false` turns the adaptive tiers off: rules and guardrails only, nothing learned.
    pub enabled: bool,
    /// Where state lives: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`.
    /// Empty with a `redis_addr` means that Redis.
    pub store: String,
    /// Outcomes and audit records held while a store is unreachable; the oldest beyond
    /// it are dropped and counted (`store_dropped_total`).
    pub store_buffer: usize,
    pub redis_addr: String,
    pub redis_password: String,
    pub redis_db: u32,
    pub strategy: Strategy,
    pub cache: CacheConfig,
    pub api: ApiConfig,
    /// Seed for every random choice (jitter, throttling); absent = random per engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Most (job_type, error_class) keys learned at once; the least recently used go.
    pub max_keys: usize,
    /// Attempts kept in memory for windowed statistics.
    pub history_capacity: usize,
    /// The ONNX Runtime library for the ML tier (default: `ORT_DYLIB_PATH`, else an
    /// installed `onnxruntime` wheel or `onnxruntime-node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ml_runtime_path: Option<std::path::PathBuf>,
    /// Which inference backend serves models: `auto` (default: every backend built in,
    /// the faster first), `ort` (ONNX Runtime) or `tract` (feature `tract`); see docs/ml.md.
    #[serde(skip_serializing_if = "crate::ml::MlBackend::is_auto")]
    pub ml_backend: crate::ml::MlBackend,
    /// Defaults per service / operation, keyed by job type or a prefix of it
    /// (`session_manager`, `session_manager.create_session`); see [`crate::contexts`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, Context>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            store: String::new(),
            store_buffer: 100_000,
            redis_addr: String::new(),
            redis_password: String::new(),
            redis_db: 0,
            strategy: Strategy::default(),
            cache: CacheConfig::default(),
            api: ApiConfig::default(),
            seed: None,
            max_keys: 100_000,
            history_capacity: 100_000,
            ml_runtime_path: None,
            ml_backend: crate::ml::MlBackend::Auto,
            contexts: BTreeMap::new(),
        }
    }
}

/// The strategy in force (the API's `GET /strategy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Strategy {
    pub name: String,
    pub enabled: bool,
    pub policies: Vec<Policy>,
    pub bayesian_threshold: f64,
    pub ml_enabled: bool,
    pub guardrails: Guardrails,
    pub data_collection: DataCollection,
    pub circuit_breaker: BreakerConfig,
    pub bayesian: BayesConfig,
    /// Health-aware backoff of rules-tier delays.
    pub health: HealthConfig,
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy {
            name: "default".into(),
            enabled: true,
            policies: Policy::defaults(),
            bayesian_threshold: 0.70,
            ml_enabled: false,
            guardrails: Guardrails::default(),
            data_collection: DataCollection::default(),
            circuit_breaker: BreakerConfig::default(),
            bayesian: BayesConfig::default(),
            health: HealthConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataCollection {
    /// `false`: outcomes still feed budgets and breakers, but nothing is learned or kept.
    pub enabled: bool,
    /// Fraction of decisions passed to the audit hook.
    pub sample_rate: f64,
    /// Most sampled decisions a durable store writes to its audit trail per second (0: no
    /// limit). Past it they are shed and counted (`audit_shed_total`): the writer's busy
    /// time is time the deciding threads share the machine with it (docs/store.md).
    pub max_audit_per_sec: u32,
    pub retention_days: u32,
    pub aggregation_interval: String,
    pub feature_extraction: bool,
}

impl Default for DataCollection {
    fn default() -> Self {
        DataCollection {
            enabled: true,
            sample_rate: 1.0,
            max_audit_per_sec: 1_000,
            retention_days: 30,
            aggregation_interval: "5m".into(),
            feature_extraction: true,
        }
    }
}

/// The cache of matched policies (the API document's `cache` section): which policy
/// governs a (job type, HTTP status, error class and code) is worked out once and kept,
/// emptied whenever an operator changes the settings. `metrics()` counts its hits and
/// misses (`smartretry_policy_cache_hits_total` on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// An entry older than this is matched again ("5m").
    pub ttl: String,
    /// Most subjects kept; the least recently used go (0: keep none).
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, ttl: "5m".into(), max_entries: 1000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    pub enabled: bool,
    pub port: u16,
    pub path: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { enabled: true, port: 8080, path: "/api/v1/retry".into() }
    }
}

impl Strategy {
    /// The Bayesian tier's tuning with the strategy's threshold, and a lost job priced at
    /// the default deadline.
    pub fn bayes(&self) -> BayesConfig {
        BayesConfig {
            threshold: self.bayesian_threshold,
            lost_job_ms: self.guardrails.default_deadline_ms as f64,
            ..self.bayesian
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::config("name", "must not be empty"));
        }
        if !(0.0..=1.0).contains(&self.bayesian_threshold) {
            return Err(Error::config("bayesian_threshold", "must be 0–1"));
        }
        PolicySet::new(self.policies.clone()).map_err(as_config)?;
        self.guardrails.validate().map_err(|e| e.within("guardrails"))?;
        self.circuit_breaker.validate().map_err(|e| e.within("circuit_breaker"))?;
        self.health.validate().map_err(|e| e.within("health"))?;
        let dc = &self.data_collection;
        if !(0.0..=1.0).contains(&dc.sample_rate) {
            return Err(Error::config("data_collection.sample_rate", "must be 0–1"));
        }
        parse_duration_ms(&dc.aggregation_interval)
            .map_err(|r| Error::config("data_collection.aggregation_interval", r))?;
        let b = &self.bayesian;
        if b.min_samples == 0
            || b.refit_every == 0
            || b.full_confidence_samples == 0
            || b.half_life_samples == 0
        {
            return Err(Error::config("bayesian", "sample thresholds must be ≥ 1"));
        }
        if !(b.retry_cost.is_finite() && (0.0..=10.0).contains(&b.retry_cost)) {
            return Err(Error::config("bayesian.retry_cost", "must be 0–10"));
        }
        if !(0.0..=0.5).contains(&b.explore_rate) {
            return Err(Error::config("bayesian.explore_rate", "must be 0–0.5"));
        }
        if !(b.lost_job_cost.is_finite() && (0.0..=1_000.0).contains(&b.lost_job_cost)) {
            return Err(Error::config("bayesian.lost_job_cost", "must be 0–1000"));
        }
        Ok(())
    }
}

impl Config {
    /// Parse a configuration document; errors name the field (`strategy.guardrails.max_attempts`),
    /// and a field the document should not have (`strategy.guardrails.max_atempts: unknown
    /// field`): a misspelt setting is refused, never silently left at its default.
    pub fn from_json(json: &str) -> Result<Config> {
        let config: Config = crate::api::from_json_strict(json).map_err(as_config)?;
        config.validate()?;
        Ok(config)
    }

    /// Read a JSON file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config("config_file", format!("{}: {e}", path.display())))?;
        Config::from_json(&text).map_err(|e| match e {
            Error::Config { field, reason } => {
                Error::config(field, format!("{reason} (in {})", path.display()))
            }
            other => other,
        })
    }

    /// Defaults, then `RETRY_*` variables of this process's environment.
    pub fn from_env() -> Result<Config> {
        let mut config = Config::default();
        config.apply_env(std::env::vars())?;
        Ok(config)
    }

    /// Override fields from `RETRY_*` variables; errors name the variable. A `RETRY_*`
    /// variable smartretry does not read (see [`ENV_VARS`]) is refused, named, with the
    /// closest known name: a misspelt one would otherwise change nothing, silently.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            match key {
                "RETRY_ENABLED" => self.enabled = parse_bool(key, value)?,
                "RETRY_ML_ENABLED" => self.strategy.ml_enabled = parse_bool(key, value)?,
                "RETRY_SAMPLE_RATE" => {
                    self.strategy.data_collection.sample_rate = parse_fraction(key, value)?
                }
                "RETRY_BAYESIAN_THRESHOLD" => self.strategy.bayesian_threshold = parse_fraction(key, value)?,
                "RETRY_REDIS_ADDR" => self.redis_addr = value.to_string(),
                "RETRY_STORE" => self.store = value.to_string(),
                "RETRY_REDIS_PASSWORD" => self.redis_password = value.to_string(),
                _ if key.starts_with("RETRY_") && !ENV_VARS.iter().any(|(k, _)| *k == key) => {
                    return Err(unknown_variable(key))
                }
                _ => {}
            }
        }
        self.validate()
    }

    /// The store to open: `store`, else Redis at `redis_addr` (`host:port` or a URL).
    pub fn store_url(&self) -> String {
        let addr = self.redis_addr.trim();
        if !self.store.trim().is_empty() || addr.is_empty() {
            self.store.trim().to_string()
        } else if addr.contains("://") {
            addr.to_string()
        } else {
            format!("redis://{addr}/{}", self.redis_db)
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.strategy.validate().map_err(|e| e.within("strategy"))?;
        if !(1..=100_000_000).contains(&self.store_buffer) {
            return Err(Error::config("store_buffer", "must be 1–100,000,000"));
        }
        if self.max_keys == 0 || self.max_keys > 10_000_000 {
            return Err(Error::config("max_keys", "must be 1–10,000,000"));
        }
        if self.history_capacity > 10_000_000 {
            return Err(Error::config("history_capacity", "must be ≤ 10,000,000"));
        }
        if !crate::ml::backend::built_in(self.ml_backend) {
            return Err(Error::config(
                "ml_backend",
                format!(
                    "{:?} is not built in (the smartretry crate's `tract` or `onnx` feature is off)",
                    self.ml_backend
                ),
            ));
        }
        parse_duration_ms(&self.cache.ttl).map_err(|r| Error::config("cache.ttl", r))?;
        if !self.api.path.starts_with('/') {
            return Err(Error::config("api.path", "must start with '/'"));
        }
        ContextSet::new(&self.contexts, &self.strategy.circuit_breaker)?;
        Ok(())
    }
}

/// Every `RETRY_*` environment variable smartretry reads, and what reads it. The prefix is
/// smartretry's: any other `RETRY_*` variable is refused by [`Config::apply_env`].
pub const ENV_VARS: &[(&str, &str)] = &[
    ("RETRY_ENABLED", "the adaptive tiers on or off"),
    ("RETRY_SAMPLE_RATE", "strategy.data_collection.sample_rate"),
    ("RETRY_ML_ENABLED", "strategy.ml_enabled"),
    ("RETRY_BAYESIAN_THRESHOLD", "strategy.bayesian_threshold"),
    ("RETRY_STORE", "store"),
    ("RETRY_REDIS_ADDR", "redis_addr"),
    ("RETRY_REDIS_PASSWORD", "redis_password"),
    ("RETRY_CONFIG", "smartretry serve: the config file"),
    ("RETRY_API_ADDR", "smartretry serve: the listening address"),
    ("RETRY_DB", "smartretry serve: the SQLite file"),
    ("RETRY_MAX_BODY_BYTES", "smartretry serve: the request size limit"),
    ("RETRY_ALERT_WEBHOOK", "smartretry serve: where alerts are posted"),
    ("RETRY_API_TOKEN", "smartretry serve, tui, loadtest: the write token"),
    ("RETRY_API_READ_TOKEN", "smartretry serve: the read-only token"),
    ("RETRY_API_OPEN", "smartretry serve: endpoints open without a token"),
    ("RETRY_STRICT_HEALTH", "smartretry serve: /health answers 503 while degraded"),
    ("RETRY_MODEL_DIR", "smartretry serve: the directory models may be read from"),
    ("RETRY_API_URL", "smartretry tui: the server's URL"),
];

fn unknown_variable(key: &str) -> Error {
    let closest = ENV_VARS.iter().map(|(k, _)| *k).min_by_key(|k| edit_distance(k, key));
    let hint = match closest {
        Some(k) if edit_distance(k, key) <= 3 => format!("did you mean {k}? "),
        _ => String::new(),
    };
    let known: Vec<&str> = ENV_VARS.iter().map(|(k, _)| *k).collect();
    Error::config(
        key.to_string(),
        format!(
            "not a variable smartretry reads: {hint}(RETRY_* is smartretry's prefix; known: {})",
            known.join(", ")
        ),
    )
}

/// Levenshtein distance (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn as_config(e: Error) -> Error {
    match e {
        Error::InvalidInput { field, reason } => Error::Config { field, reason },
        other => other,
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(key.to_string(), format!("expected true or false, got {value:?}"))),
    }
}

fn parse_fraction(key: &str, value: &str) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(Error::config(key.to_string(), format!("expected a number from 0 to 1, got {value:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_names_bad_variables() {
        let mut c = Config::default();
        c.apply_env([("RETRY_BAYESIAN_THRESHOLD", "0.8"), ("RETRY_ENABLED", "false"), ("PATH", "x")])
            .unwrap();
        assert_eq!(c.strategy.bayesian_threshold, 0.8);
        assert!(!c.enabled);
        let err = c.apply_env([("RETRY_SAMPLE_RATE", "1.5")]).unwrap_err();
        assert_eq!(err.field(), Some("RETRY_SAMPLE_RATE"));
        let err = c.apply_env([("RETRY_ML_ENABLED", "maybe")]).unwrap_err();
        assert_eq!(err.field(), Some("RETRY_ML_ENABLED"));
        let err = c.apply_env([("RETRY_BAYESIAN_TRESHOLD", "0.8")]).unwrap_err();
        assert_eq!(err.field(), Some("RETRY_BAYESIAN_TRESHOLD"));
        assert!(err.to_string().contains("did you mean RETRY_BAYESIAN_THRESHOLD?"), "{err}");
        c.apply_env([("RETRY_API_TOKEN", "x"), ("SMARTRETRY_PYTHON", "y"), ("MY_RETRY_X", "z")]).unwrap();
    }

    #[test]
    fn unknown_fields_in_the_file_are_named() {
        let err = Config::from_json(r#"{"strategy":{"guardrails":{"max_atempts":1}}}"#).unwrap_err();
        assert_eq!(err.field(), Some("strategy.guardrails.max_atempts"));
        assert_eq!(err.kind(), "config");
        let err = Config::from_json(r#"{"max_key":10}"#).unwrap_err();
        assert_eq!(err.field(), Some("max_key"));
    }

    #[test]
    fn nested_errors_name_the_path() {
        let err = Config::from_json(r#"{"strategy":{"guardrails":{"max_attempts":0}}}"#).unwrap_err();
        assert_eq!(err.field(), Some("strategy.guardrails.max_attempts"));
        assert_eq!(err.kind(), "config");
        let err = Config::from_json(r#"{"strategy":{"bayesian_threshold":"high"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("strategy.bayesian_threshold"));
        let err = Config::from_json(r#"{"cache":{"ttl":"soon"}}"#).unwrap_err();
        assert_eq!(err.field(), Some("cache.ttl"));
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let err = Config::from_file("/nonexistent/smartretry.json").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/smartretry.json"), "{err}");
    }
}

//! Where state lives.
//!
//! - [`MemoryStore`] (the library's default): one process, nothing kept after it exits.
//! - [`SqliteStore`] (`sqlite:///path.db`): attempt history with retention, learned
//!   statistics (a restarted engine decides as well as before it stopped), the sampled
//!   decision audit trail, the dead-letter queue, circuit-breaker state, the emergency
//!   stop and the model registry, in one WAL-mode file with versioned migrations.
//! - [`RedisStore`] (`redis://host:port/db`): the same, shared by a fleet, plus the
//!   state workers learn and spend together (see `store::redis`).
//!
//! The decision path never touches a durable store: it reads the engine's own state.
//! Outcomes and audit records go to a bounded queue that a writer thread flushes in
//! batches (`store::persist`); while the store is unreachable they wait there, and what
//! does not fit is dropped and counted (`store_dropped_total`).

mod memory;
mod models;
pub(crate) mod persist;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use memory::{MemoryHistory, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};

use crate::breaker::BreakerSnapshot;
use crate::dlq::{DeadLetter, DeadLetterQuery, DeadLetterStatus};
use crate::error::{Error, Result};
use crate::model::{Decision, Features};

/// One attempt, as kept for statistics (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRecord {
    /// The engine's hash of (job_type, error_class).
    pub key: u64,
    pub at_ms: u64,
    pub delay_ms: u64,
    pub success: bool,
}

/// Totals of one key over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    pub attempts: u64,
    pub successes: u64,
    pub delay_sum_ms: u64,
    pub last_ms: Option<u64>,
}

/// Attempt history: append-only, queried by key and window.
pub trait HistoryStore: Send + Sync {
    fn append(&self, record: HistoryRecord);
    fn totals(&self, key: u64, from_ms: u64, to_ms: u64) -> WindowTotals;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A recorded attempt, as a durable store keeps it (a row of the attempt history, an
/// entry of a fleet's shared outcome stream, a line of the ML tier's training data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub at_ms: u64,
    pub job_id: String,
    pub job_type: String,
    /// The class the engine learned under (the given one, or the classified one).
    pub error_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub attempt_number: u32,
    /// How long the caller waited before this attempt.
    pub delay_ms: u64,
    /// Where the outcome sits on the learning clock: time since the job's first failure
    /// when known, else the delay.
    pub clock_ms: u64,
    pub success: bool,
    /// The learned views this outcome taught (`""` the key, `state:degraded`,
    /// `tenant:<t>`, `hour:<h>`); empty when it taught nothing (a first attempt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// One sampled decision (`data_collection.sample_rate`): what failed and what was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: u64,
    pub features: Features,
    pub decision: Decision,
}

/// One learned view of a key, as bytes ([`crate::bayes::KeyModel::encode`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedRow {
    pub job_type: String,
    pub error_class: String,
    pub scope: String,
    pub model: Vec<u8>,
}

/// A model version in the registry (the ML tier's sidecar, metrics and bytes or path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub version: String,
    /// `registered`, `shadow`, `canary`, `active`, `retired`… (the ML tier's words).
    pub status: String,
    /// The feature contract and anything else the sidecar JSON says.
    #[serde(default)]
    pub sidecar: serde_json::Value,
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The ONNX bytes, when kept in the store rather than at `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub updated_ms: u64,
}

/// What the writer thread hands a store in one go (one transaction in SQLite, one
/// pipeline in Redis).
#[derive(Debug, Default)]
pub struct Batch {
    pub outcomes: Vec<OutcomeRecord>,
    pub audits: Vec<AuditRecord>,
    /// The learned views the outcomes changed, as they now stand.
    pub learned: Vec<LearnedRow>,
    /// Breakers whose state changed since the last batch.
    pub breakers: Vec<BreakerSnapshot>,
    pub emergency_stop: Option<bool>,
    /// Forget history and audit records older than this (`data_collection.retention_days`).
    pub prune_before_ms: Option<u64>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
            && self.audits.is_empty()
            && self.learned.is_empty()
            && self.breakers.is_empty()
            && self.emergency_stop.is_none()
    }
}

/// What an engine starting on a store takes back from it.
#[derive(Debug, Default)]
pub struct Restored {
    pub learned: Vec<LearnedRow>,
    /// The most recent outcomes (oldest first), for windowed statistics.
    pub outcomes: Vec<OutcomeRecord>,
    pub breakers: Vec<BreakerSnapshot>,
    pub emergency_stop: Option<bool>,
    /// The outcomes teach the learner too (a fleet's stream keeps no learned views).
    pub relearn: bool,
    /// Where this engine's fleet sync continues in the shared outcome stream.
    pub cursor: String,
}

/// A place an engine keeps its state. Implementations are thread-safe; the engine calls
/// `write` from one writer thread and the other methods from callers' threads, never on
/// the decision path.
pub trait Store: Send + Sync {
    /// The store as a URL, without secrets (`sqlite:///var/lib/x.db`, `redis://h:6379/0`).
    fn url(&self) -> String;

    /// Whether the engine should run a writer thread for it (memory: no).
    fn durable(&self) -> bool {
        true
    }

    fn write(&self, batch: &Batch) -> Result<()>;

    /// Learned views, breakers, the emergency stop and the last `history_limit` outcomes.
    fn restore(&self, history_limit: usize) -> Result<Restored>;

    /// The most recent outcomes at or after `since_ms`, oldest first, at most `limit`.
    fn outcomes(&self, since_ms: u64, limit: usize) -> Result<Vec<OutcomeRecord>>;

    /// The most recent audit records, newest first.
    fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>>;

    /// Insert or replace a dead letter.
    fn dlq_put(&self, entry: &DeadLetter) -> Result<()>;
    fn dlq_get(&self, id: &str) -> Result<Option<DeadLetter>>;
    /// Newest first, filtered and paged.
    fn dlq_list(&self, query: &DeadLetterQuery) -> Result<Vec<DeadLetter>>;
    fn dlq_count(&self, status: Option<DeadLetterStatus>) -> Result<u64>;

    /// Insert or replace a model version.
    fn model_put(&self, model: &ModelRecord) -> Result<()>;
    fn model_get(&self, version: &str) -> Result<Option<ModelRecord>>;
    /// Every version, oldest first, without their bytes.
    fn model_list(&self) -> Result<Vec<ModelRecord>>;

    /// A named JSON document (the ML tier's deployment…); `None` when never written.
    fn setting_get(&self, key: &str) -> Result<Option<String>>;
    fn setting_put(&self, key: &str, json: &str) -> Result<()>;

    /// The fleet-shared state, when this store is shared by several engines (Redis).
    fn fleet(&self) -> Option<&dyn Fleet> {
        None
    }
}

/// State several engines share through one store, synchronised by each engine's writer
/// thread. Every call is bounded by the store's timeout.
pub trait Fleet: Send + Sync {
    /// This engine's id among the workers.
    fn worker_id(&self) -> &str;
    /// Outcomes other workers recorded after `cursor` (advanced), at most `max`.
    fn pull_outcomes(&self, cursor: &mut String, max: usize) -> Result<Vec<OutcomeRecord>>;
    /// Publish this worker's counts and read every other live worker's.
    fn exchange(&self, mine: &FleetCounts, now_ms: u64) -> Result<FleetView>;
}

/// One worker's share of the fleet-wide guardrails, over the budget window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetCounts {
    pub first_attempts: u64,
    pub retries: u64,
    pub in_flight: u64,
    /// Retries granted per tenant (tenants with none are left out).
    pub tenant_retries: Vec<(String, u64)>,
}

/// What the rest of the fleet is doing, as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    /// The sum of every other live worker's counts.
    pub others: FleetCounts,
    pub workers: u64,
    pub emergency_stop: Option<bool>,
    /// Breakers some worker opened: (job type, open until, epoch ms).
    pub open_breakers: Vec<(String, u64)>,
}

/// Open a store from a URL: `memory` (or empty), `sqlite:///path.db`, `sqlite://rel.db`
/// (`?busy_timeout_ms=N`), `redis://[:password@]host:port/db` (`?timeout_ms=N`).
/// `redis_password` is used when the URL carries none (`RETRY_REDIS_PASSWORD`).
pub fn open(url: &str, redis_password: Option<&str>) -> Result<Arc<dyn Store>> {
    let url = url.trim();
    let (scheme, _) = url.split_once("://").unwrap_or((url, ""));
    match scheme {
        "" | "memory" | "mem" => Ok(Arc::new(MemoryStore::default())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteStore::open_url(url)?)),
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(RedisStore::open(&RedisOptions::from_url(url, redis_password)?)?)),
        _ => {
            let _ = redis_password;
            Err(Error::config(
                "store",
                format!(
                    "unsupported store {url:?}: expected \"memory\", \"sqlite:///path.db\" or \"redis://host:port/db\"{}",
                    if cfg!(all(feature = "sqlite", feature = "redis")) {
                        ""
                    } else {
                        " (this build lacks the sqlite or redis feature)"
                    }
                ),
            ))
        }
    }
}

/// `key=value` pairs after `?` in a store URL, and the URL without them.
pub(crate) fn split_query(url: &str) -> (&str, Vec<(&str, &str)>) {
    match url.split_once('?') {
        Some((base, query)) => (
            base,
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect(),
        ),
        None => (url, Vec::new()),
    }
}

/// A millisecond count from a store URL's query, naming the parameter when it is bad.
pub(crate) fn query_ms(params: &[(&str, &str)], name: &str, default: u64) -> Result<u64> {
    match params.iter().find(|(k, _)| *k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<u64>() {
            Ok(ms) if (1..=600_000).contains(&ms) => Ok(ms),
            _ => Err(Error::config(format!("store.{name}"), format!("expected 1–600000 ms, got {v:?}"))),
        },
    }
}

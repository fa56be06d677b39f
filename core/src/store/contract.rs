//! The contract between an engine and where it keeps state: the [`Store`] trait (and
//! [`Fleet`], for state a fleet of engines shares), the records that cross it, and the
//! attempt history's own small trait.

use serde::{Deserialize, Serialize};

use crate::api::{Decision, Features};
use crate::breaker::BreakerSnapshot;
use crate::dlq::{DeadLetter, DeadLetterQuery, DeadLetterStatus};
use crate::error::Result;

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

    /// The operators' settings document (guardrails, policies, overrides, the emergency
    /// stop) and its version; `None` when never written.
    fn settings_load(&self) -> Result<Option<(u64, String)>> {
        Ok(None)
    }

    /// Store `doc` as version `expected + 1` if the stored version is still `expected`
    /// (0: never written), appending `change` to the settings audit list (the newest
    /// [`SETTINGS_AUDIT_MAX`] kept). `false`: another engine wrote first, nothing changed.
    fn settings_commit(&self, expected: u64, doc: &str, change: &str) -> Result<bool> {
        let _ = (expected, doc, change);
        Err(crate::error::Error::Store("this store keeps no operator settings".into()))
    }

    /// The settings audit list, newest first.
    fn settings_audit(&self, limit: usize) -> Result<Vec<String>> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// The fleet-shared state, when this store is shared by several engines (Redis).
    fn fleet(&self) -> Option<&dyn Fleet> {
        None
    }
}

/// Changes of the operators' settings each store keeps (newest first).
pub const SETTINGS_AUDIT_MAX: usize = 1_000;

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

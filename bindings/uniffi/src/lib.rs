//! Kotlin and C bindings of the smartretry engine: conversions only.
//!
//! - [`Engine`] and the records below are exported with uniffi proc-macros; the
//!   in-repo `uniffi-bindgen` binary turns this library into Kotlin
//!   (`bindings/kotlin/src/main/kotlin/dev/smartretry/smartretry_uniffi.kt`).
//!   Numbers are signed (`Int`/`Long` in Kotlin, not `UInt`/`ULong`); a negative one
//!   is an `InvalidInput` error naming the field.
//! - [`ffi`] is a small `extern "C"` layer over the same engine for Go's cgo, with
//!   JSON in and out; `bindings/go/smartretry.h` is its header (checked by a test).
//! - [`compact`]: the two hot calls (decide, record) in a compact binary form, for Go
//!   (through [`ffi`]) and for the Kotlin helpers (`smartretry_jvm_*`, JNA direct mapping).
//!
//! Every entry point runs inside [`error::guarded`], so a panic becomes an error value.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smartretry::from_value;

pub mod compact;
pub mod error;
pub mod ffi;

use error::guarded;
pub use error::{Result, SmartRetryError};

uniffi::setup_scaffolding!();

use smartretry::{BreakerState, EventKind, Method};

// The core's own enums, exposed as they are (uniffi needs their variants spelled out
// here; a variant the core adds and this list lacks fails to compile).

/// Which tier made a decision.
#[uniffi::remote(Enum)]
pub enum Method {
    Rules,
    Bayesian,
    Ml,
    Guardrail,
    Breaker,
}

/// How much a job matters: critical work may pass global backpressure (never the
/// emergency stop); low work is the first to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, uniffi::Enum)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

impl From<Priority> for smartretry::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => smartretry::Priority::Low,
            Priority::Normal => smartretry::Priority::Normal,
            Priority::High => smartretry::Priority::High,
            Priority::Critical => smartretry::Priority::Critical,
        }
    }
}

/// What failed: the inputs to a retry decision (the API document's `Features`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Features {
    pub job_type: String,
    /// The attempt that just failed, 1-based.
    pub attempt_number: i32,
    #[uniffi(default)]
    pub error_class: Option<String>,
    #[uniffi(default)]
    pub error_code: Option<String>,
    #[uniffi(default)]
    pub http_status: Option<i32>,
    #[uniffi(default)]
    pub queue: Option<String>,
    #[uniffi(default)]
    pub tenant: Option<String>,
    #[uniffi(default)]
    pub payload_size: Option<i64>,
    /// Hour of day (0–23, UTC); derived from `now_ms` when absent.
    #[uniffi(default)]
    pub time_of_day: Option<i32>,
    #[uniffi(default)]
    pub job_id: Option<String>,
    /// Time since this job's first failure.
    #[uniffi(default)]
    pub since_first_failure_ms: Option<i64>,
    #[uniffi(default)]
    pub since_last_failure_ms: Option<i64>,
    /// A `Retry-After` already in milliseconds.
    #[uniffi(default)]
    pub retry_after_ms: Option<i64>,
    /// A raw `Retry-After` header (delta-seconds or HTTP-date).
    #[uniffi(default)]
    pub retry_after: Option<String>,
    /// `false` marks a call that must not run twice (a payment, an order).
    #[uniffi(default)]
    pub idempotent: Option<bool>,
    #[uniffi(default)]
    pub priority: Option<Priority>,
    #[uniffi(default)]
    pub worker_version: Option<String>,
    #[uniffi(default)]
    #[serde(default)]
    pub health: HashMap<String, f64>,
    /// Total time allowed from the first failure; no retry may start later.
    #[uniffi(default)]
    pub deadline_ms: Option<i64>,
    /// The caller's own attempt limit, on top of the policy's and the guardrails'.
    #[uniffi(default)]
    pub max_attempts: Option<i32>,
    /// The caller named this failure's type among those to retry: not taken for a
    /// programming error.
    #[uniffi(default)]
    pub expected: Option<bool>,
    /// The call's own schedule, as the JSON `checkRetryOptions` returns for it
    /// (`Features.backoff` in the API document): the rules tier for the call.
    #[uniffi(default)]
    #[serde(skip)]
    pub backoff_json: Option<String>,
}

/// What happened on one attempt (the API document's `Attempt`): the engine learns from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Attempt {
    pub job_id: String,
    pub job_type: String,
    pub attempt_number: i32,
    pub success: bool,
    /// How long the caller waited before this attempt.
    #[uniffi(default = 0)]
    #[serde(default)]
    pub delay_ms: i64,
    #[uniffi(default)]
    pub error_class: Option<String>,
    #[uniffi(default)]
    pub error_code: Option<String>,
    #[uniffi(default)]
    pub http_status: Option<i32>,
    #[uniffi(default)]
    pub queue: Option<String>,
    #[uniffi(default)]
    pub tenant: Option<String>,
    /// Time from the job's first failure to this attempt.
    #[uniffi(default)]
    pub since_first_failure_ms: Option<i64>,
    #[uniffi(default)]
    pub payload_size: Option<i64>,
    #[uniffi(default)]
    pub time_of_day: Option<i32>,
    #[uniffi(default)]
    pub worker_version: Option<String>,
    /// When the attempt happened (RFC 3339); defaults to the call's `now_ms`.
    #[uniffi(default)]
    pub timestamp: Option<String>,
}

/// The engine's answer: retry or not, after how long, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Decision {
    pub should_retry: bool,
    pub delay_ms: i64,
    pub max_attempts: i32,
    pub confidence: f64,
    /// One human sentence.
    pub rationale: String,
    pub method: Method,
    pub estimated_success: f64,
    /// When to ask again (RFC 3339): now + delay.
    pub next_evaluation: String,
    /// Every guardrail that changed this decision, in the order they acted.
    pub policy_guardrails: Vec<String>,
    /// The error class the engine learned under.
    #[serde(default)]
    pub error_class: String,
    /// The rules-tier policy that matched.
    #[serde(default)]
    pub policy: String,
    /// Set while the downstream is down for every caller: wait out `delay_ms`, but every
    /// `check_in_ms` ask `Engine.released` whether calls get through again, and retry
    /// at once if they do.
    #[uniffi(default)]
    #[serde(default)]
    pub check_in_ms: Option<i64>,
}

/// One future attempt of a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct TimelineEntry {
    pub attempt_number: i32,
    pub scheduled_time: String,
    pub estimated_success: f64,
    pub delay_ms: i64,
    pub method: Method,
    pub rationale: String,
    pub confidence: f64,
}

/// The schedule the engine would follow if every retry failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Preview {
    pub job_id: String,
    pub current_attempt: i32,
    pub features: Features,
    pub recommendations: Vec<Decision>,
    pub timeline: Vec<TimelineEntry>,
    pub generated_at: String,
}

/// One delay bucket of the Bayesian tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct BucketStats {
    pub label: String,
    pub min_ms: i64,
    #[serde(default)]
    pub max_ms: Option<i64>,
    pub successes: i64,
    pub failures: i64,
    pub success_probability: f64,
    pub confidence: f64,
}

/// What the engine has seen for one (job type, error class) in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Stats {
    pub job_type: String,
    pub error_class: String,
    pub total_attempts: i64,
    pub successful_retries: i64,
    pub failed_retries: i64,
    pub avg_delay_ms: f64,
    pub success_rate: f64,
    #[serde(default)]
    pub last_updated: Option<String>,
    pub window_start: String,
    pub window_end: String,
    #[serde(default)]
    pub buckets: Vec<BucketStats>,
}

/// Hard limits every decision obeys. Change some with `copy(...)` and
/// `Engine.updateGuardrails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, uniffi::Record)]
pub struct Guardrails {
    pub max_attempts: i32,
    pub max_delay_ms: i64,
    pub min_delay_ms: i64,
    /// Retries as a percentage of first attempts in `budget_window_ms`.
    pub max_budget_percent: f64,
    pub per_tenant_limits: bool,
    pub emergency_stop: bool,
    pub explainability_required: bool,
    pub budget_window_ms: i64,
    pub min_retries_per_sec: f64,
    pub tenant_max_share: f64,
    /// Total time from the first failure after which no retry starts.
    #[serde(default)]
    pub max_total_ms: Option<i64>,
    pub respect_retry_after: bool,
    pub adaptive_throttle: bool,
    pub throttle_k: f64,
    pub throttle_window_ms: i64,
    #[serde(default)]
    pub max_concurrent_retries: Option<i32>,
    /// How long after its scheduled time a retry that never reported counts as done.
    pub in_flight_ttl_ms: i64,
    /// While a downstream is down for every caller, jobs take turns to probe it and the
    /// rest wait to be released (`Decision.check_in_ms`, `Engine.released`).
    #[uniffi(default = true)]
    #[serde(default = "yes")]
    pub probe_and_release: bool,
    /// The deadline of a job whose call, policy and overrides name none, from its first
    /// failure (30 minutes).
    #[uniffi(default = 1800000)]
    #[serde(default = "default_deadline_ms")]
    pub default_deadline_ms: i64,
}

fn yes() -> bool {
    true
}

fn default_deadline_ms() -> i64 {
    smartretry::DEFAULT_DEADLINE_MS as i64
}

/// What a lifecycle event is about.
#[uniffi::remote(Enum)]
pub enum EventKind {
    /// `decide` granted a retry.
    RetryScheduled,
    /// A retry (attempt ≥ 2) was recorded as a success.
    RetrySucceeded,
    /// A retry (attempt ≥ 2) was recorded as a failure.
    RetryFailed,
    /// `decide` refused: the caller stops and the job is dead-lettered.
    GaveUp,
    /// A guardrail changed a decision (its names are in `guardrails`).
    GuardrailTriggered,
    /// A downstream's circuit breaker moved (`breaker_from` → `breaker_to`).
    BreakerStateChanged,
}

/// A downstream's circuit breaker.
#[uniffi::remote(Enum)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// One lifecycle event. Fields that do not apply to its kind are null.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Event {
    pub kind: EventKind,
    /// When it happened (the call's `now_ms`).
    pub at_ms: i64,
    /// The job type (for a breaker, the downstream it guards).
    pub job_type: String,
    pub job_id: Option<String>,
    pub tenant: Option<String>,
    pub queue: Option<String>,
    pub attempt_number: Option<i32>,
    pub error_class: Option<String>,
    /// The delay of a scheduled retry, or the wait before a recorded one.
    pub delay_ms: Option<i64>,
    pub method: Option<Method>,
    pub guardrails: Vec<String>,
    pub rationale: Option<String>,
    pub breaker_from: Option<BreakerState>,
    pub breaker_to: Option<BreakerState>,
}

impl From<&smartretry::Event> for Event {
    fn from(e: &smartretry::Event) -> Self {
        Event {
            kind: e.kind,
            at_ms: signed(e.at_ms),
            job_type: e.job_type.clone(),
            job_id: e.job_id.clone(),
            tenant: e.tenant.clone(),
            queue: e.queue.clone(),
            attempt_number: e.attempt_number.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
            error_class: e.error_class.clone(),
            delay_ms: e.delay_ms.map(signed),
            method: e.method,
            guardrails: e.guardrails.clone(),
            rationale: e.rationale.clone(),
            breaker_from: e.breaker_from,
            breaker_to: e.breaker_to,
        }
    }
}

/// A host number as the core's unsigned one, or `InvalidInput` naming `field`.
fn unsigned<T: TryFrom<i64>>(field: &str, value: i64) -> Result<T> {
    T::try_from(value).map_err(|_| {
        let reason = if value < 0 { "must not be negative".to_string() } else { "too large".to_string() };
        SmartRetryError::invalid(field, format!("{reason}, got {value}"))
    })
}

fn opt_unsigned<T: TryFrom<i64>>(field: &str, value: Option<impl Into<i64>>) -> Result<Option<T>> {
    value.map(|v| unsigned(field, v.into())).transpose()
}

/// `now_ms` of every call: absent means the wall clock.
fn now(now_ms: Option<i64>) -> Result<Option<u64>> {
    opt_unsigned("now_ms", now_ms)
}

/// A shape the core serialises, in this crate's record form (or back), through JSON:
/// the field names are the same, and a failed conversion names the field.
fn convert<A: Serialize, B: DeserializeOwned>(value: &A) -> Result<B> {
    let json = serde_json::to_value(value).map_err(|e| SmartRetryError::invalid("value", e.to_string()))?;
    Ok(from_value(json)?)
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain data shapes cannot fail (string keys, finite or null floats).
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

impl Features {
    /// The core's `Features`. Written out (not through JSON) because it is the hot path.
    pub fn to_core(&self) -> Result<smartretry::Features> {
        let f = self.clone();
        Ok(smartretry::Features {
            job_type: f.job_type,
            attempt_number: unsigned("attempt_number", f.attempt_number.into())?,
            error_class: f.error_class,
            error_code: f.error_code,
            http_status: opt_unsigned("http_status", f.http_status)?,
            queue: f.queue,
            tenant: f.tenant,
            payload_size: opt_unsigned("payload_size", f.payload_size)?,
            time_of_day: opt_unsigned("time_of_day", f.time_of_day)?,
            job_id: f.job_id,
            since_first_failure_ms: opt_unsigned("since_first_failure_ms", f.since_first_failure_ms)?,
            since_last_failure_ms: opt_unsigned("since_last_failure_ms", f.since_last_failure_ms)?,
            retry_after_ms: opt_unsigned("retry_after_ms", f.retry_after_ms)?,
            retry_after: f.retry_after,
            idempotent: f.idempotent,
            priority: f.priority.map(Into::into),
            worker_version: f.worker_version,
            health: f.health.into_iter().collect(),
            deadline_ms: opt_unsigned("deadline_ms", f.deadline_ms)?,
            max_attempts: opt_unsigned("max_attempts", f.max_attempts)?,
            expected: f.expected,
            backoff: f
                .backoff_json
                .as_deref()
                .map(|json| smartretry::from_json(json).map_err(|e| e.within("backoff")))
                .transpose()?,
            ..smartretry::Features::default()
        })
    }
}

impl Attempt {
    pub fn to_core(&self) -> Result<smartretry::Attempt> {
        let a = self.clone();
        Ok(smartretry::Attempt {
            job_id: a.job_id,
            job_type: a.job_type,
            attempt_number: unsigned("attempt_number", a.attempt_number.into())?,
            success: a.success,
            delay_ms: unsigned("delay_ms", a.delay_ms)?,
            error_class: a.error_class,
            error_code: a.error_code,
            http_status: opt_unsigned("http_status", a.http_status)?,
            queue: a.queue,
            tenant: a.tenant,
            since_first_failure_ms: opt_unsigned("since_first_failure_ms", a.since_first_failure_ms)?,
            payload_size: opt_unsigned("payload_size", a.payload_size)?,
            time_of_day: opt_unsigned("time_of_day", a.time_of_day)?,
            worker_version: a.worker_version,
            timestamp: a.timestamp,
            ..smartretry::Attempt::default()
        })
    }
}

/// Saturates instead of wrapping: a core value above `i64::MAX` ms is ~292 million years.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl From<smartretry::Decision> for Decision {
    fn from(d: smartretry::Decision) -> Self {
        Decision {
            should_retry: d.should_retry,
            delay_ms: signed(d.delay_ms),
            max_attempts: i32::try_from(d.max_attempts).unwrap_or(i32::MAX),
            confidence: d.confidence,
            rationale: d.rationale,
            method: d.method,
            estimated_success: d.estimated_success,
            next_evaluation: d.next_evaluation,
            policy_guardrails: d.policy_guardrails.iter().map(|g| g.as_str().to_string()).collect(),
            error_class: d.error_class,
            policy: d.policy,
            check_in_ms: d.check_in_ms.map(signed),
        }
    }
}

/// Waits up to `timeout_ms` for a lifecycle event, then takes every one queued behind
/// it: one crossing carries a burst, and an idle poll costs one wait. `None` once the
/// subscription is closed and drained.
pub(crate) fn poll_events(
    sub: &smartretry::Subscription,
    timeout_ms: u64,
) -> Option<Vec<Arc<smartretry::Event>>> {
    match sub.recv(Some(std::time::Duration::from_millis(timeout_ms))) {
        Ok(Some(first)) => {
            let mut events = vec![first];
            events.extend(sub.drain());
            Some(events)
        }
        Ok(None) => Some(Vec::new()),
        Err(smartretry::Closed) => None,
    }
}

/// The API document's JSON of a Features object, parsed (errors name the field).
#[uniffi::export]
pub fn features_from_json(json: String) -> Result<Features> {
    guarded(|| {
        let core = smartretry::Features::from_json(&json)?;
        let mut features: Features = convert(&core)?;
        features.backoff_json = core.backoff.as_ref().map(to_json);
        Ok(features)
    })
}

/// Checks the options of `RetryOptions` (the JSON of the options given, by their Kotlin
/// names: durations in ms) against the core's options contract, and returns them in
/// the engine's units (`job_type`, `deadline_ms`, `backoff`…) as JSON. The error names
/// the option (`maxAttempts`, `backoff.max`).
#[uniffi::export]
pub fn check_retry_options(options_json: String) -> Result<String> {
    guarded(|| Ok(to_json(&check_options(smartretry::options::Host::Kotlin, &options_json)?)))
}

/// The options of a retried call, checked for `host` (Kotlin's RetryOptions, Go's Options).
pub fn check_options(host: smartretry::options::Host, options_json: &str) -> Result<smartretry::CallOptions> {
    let value: serde_json::Value = smartretry::from_json(options_json)?;
    let serde_json::Value::Object(fields) = value else {
        return Err(SmartRetryError::invalid("options", "expected a JSON object"));
    };
    let given: Vec<(String, smartretry::options::Given)> =
        fields.iter().map(|(k, v)| (k.clone(), smartretry::options::Given::from_json(v))).collect();
    Ok(smartretry::options::validate(host, &given)?)
}

/// The API document's JSON of an Attempt object, parsed (errors name the field).
#[uniffi::export]
pub fn attempt_from_json(json: String) -> Result<Attempt> {
    guarded(|| convert(&smartretry::Attempt::from_json(&json)?))
}

/// The API document's snake_case JSON of a record, for logs and other services.
macro_rules! json_method {
    ($($record:ident),*) => {$(
        #[uniffi::export]
        impl $record {
            /// This value in the API document's snake_case JSON.
            pub fn to_json(&self) -> String {
                to_json(self)
            }
        }
    )*};
}
json_method!(Decision, Preview, Stats, Guardrails, Features, Attempt);

/// The retry engine. Safe to share between threads and coroutines; every method is
/// synchronous and cheap (no I/O, no waiting): the host sleeps, not the engine.
#[derive(uniffi::Object)]
pub struct Engine {
    inner: smartretry::Engine,
}

impl Engine {
    pub fn core(&self) -> &smartretry::Engine {
        &self.inner
    }
}

#[uniffi::export]
impl Engine {
    /// `seed` makes every random choice (jitter, throttling) reproducible;
    /// `config_json` is the configuration file's JSON; `store` is where state lives
    /// (`"memory"`, `"sqlite:///path.db"`, `"redis://host:port/db"`), over the
    /// configuration's `store`. A bad one is a `Config` error on `store`.
    #[uniffi::constructor(default(seed = None, config_json = None, store = None))]
    pub fn new(seed: Option<i64>, config_json: Option<String>, store: Option<String>) -> Result<Arc<Self>> {
        guarded(|| {
            let options = smartretry::EngineOptions {
                config_json,
                store,
                // A seed is bits, not a quantity: a negative Long is as good as any.
                seed: seed.map(|s| s as u64),
                ..smartretry::EngineOptions::default()
            };
            Ok(Arc::new(Engine { inner: options.build()? }))
        })
    }

    /// Should this failure be retried, and after how long?
    #[uniffi::method(default(now_ms = None))]
    pub fn decide(&self, features: Features, now_ms: Option<i64>) -> Result<Decision> {
        guarded(|| Ok(self.inner.decide(&features.to_core()?, now(now_ms)?)?.into()))
    }

    /// Tells the engine what happened on an attempt, so it learns.
    #[uniffi::method(default(now_ms = None))]
    pub fn record(&self, attempt: Attempt, now_ms: Option<i64>) -> Result<()> {
        guarded(|| Ok(self.inner.record(&attempt.to_core()?, now(now_ms)?)?))
    }

    /// A weak handle on this engine for the Kotlin helpers' hot calls (`compact.rs`,
    /// `smartretry_jvm_*`): they decide and record through it without generic
    /// marshalling. Release it with `smartretry_jvm_release`; once the engine is closed a
    /// call through it is an error, never a dangling pointer.
    pub fn hot_handle(self: Arc<Self>) -> i64 {
        compact::hot_handle(&self)
    }

    /// Has `job_type`'s downstream come back since a job's attempt failed at
    /// `failed_at_ms` (Unix ms, when it called `decide`)? Ask at each of a decision's
    /// `check_in_ms`: `true` once a call made since then got through (retry at once).
    #[uniffi::method(default(now_ms = None))]
    pub fn released(&self, job_type: String, failed_at_ms: i64, now_ms: Option<i64>) -> Result<bool> {
        guarded(|| {
            Ok(self.inner.released(&job_type, unsigned("failed_at_ms", failed_at_ms)?, now(now_ms)?)?)
        })
    }

    /// Counts `count` first attempts of `job_type` that succeeded: the retry budget's base.
    #[uniffi::method(default(tenant = None, count = 1, now_ms = None))]
    pub fn record_successes(
        &self,
        job_type: String,
        tenant: Option<String>,
        count: i64,
        now_ms: Option<i64>,
    ) -> Result<()> {
        guarded(|| {
            let count = unsigned("count", count)?;
            Ok(self.inner.record_successes(&job_type, tenant.as_deref(), count, now(now_ms)?)?)
        })
    }

    /// The schedule the engine would follow from this failure if every retry failed.
    #[uniffi::method(default(max_attempts = 5, now_ms = None))]
    pub fn preview(&self, features: Features, max_attempts: i32, now_ms: Option<i64>) -> Result<Preview> {
        guarded(|| {
            let max = unsigned("max_attempts", max_attempts.into())?;
            convert(&self.inner.preview(&features.to_core()?, max, now(now_ms)?)?)
        })
    }

    /// What was seen for (job type, error class) over the last `window_ms` (default 24 h).
    #[uniffi::method(default(window_ms = None, now_ms = None))]
    pub fn stats(
        &self,
        job_type: String,
        error_class: String,
        window_ms: Option<i64>,
        now_ms: Option<i64>,
    ) -> Result<Stats> {
        guarded(|| {
            let window = opt_unsigned("window_ms", window_ms)?;
            convert(&self.inner.stats(&job_type, &error_class, window, now(now_ms)?)?)
        })
    }

    /// The rules tier's policies, highest priority first, as the configuration file's
    /// JSON array.
    pub fn policies_json(&self) -> Result<String> {
        guarded(|| Ok(to_json(&self.inner.policies())))
    }

    /// Adds a policy given as the configuration file's JSON object; a name already in
    /// use is `InvalidInput` on `name`.
    pub fn add_policy_json(&self, policy_json: String) -> Result<()> {
        guarded(|| Ok(self.inner.add_policy(smartretry::from_json(&policy_json)?)?))
    }

    /// Removes a policy by name and returns it as JSON; `NotFound` if there is none.
    pub fn remove_policy(&self, name: String) -> Result<String> {
        guarded(|| Ok(to_json(&self.inner.remove_policy(&name)?)))
    }

    /// The operator overrides in force, as a JSON array.
    #[uniffi::method(default(now_ms = None))]
    pub fn overrides_json(&self, now_ms: Option<i64>) -> Result<String> {
        guarded(|| Ok(to_json(&self.inner.overrides(now(now_ms)?))))
    }

    /// Adds an operator override given as JSON (the API document's shape); returns the
    /// one it replaced, as JSON, or null.
    #[uniffi::method(default(now_ms = None))]
    pub fn add_override_json(&self, override_json: String, now_ms: Option<i64>) -> Result<Option<String>> {
        guarded(|| {
            let o = smartretry::from_json(&override_json)?;
            Ok(self.inner.add_override(o, now(now_ms)?)?.map(|r| to_json(&r)))
        })
    }

    /// Removes an override by name and returns it as JSON; `NotFound` if there is none.
    pub fn remove_override(&self, name: String) -> Result<String> {
        guarded(|| Ok(to_json(&self.inner.remove_override(&name)?)))
    }

    /// What the engine knows of a job type's downstream health, as JSON.
    #[uniffi::method(default(now_ms = None))]
    pub fn health_json(&self, job_type: String, now_ms: Option<i64>) -> Result<String> {
        guarded(|| Ok(to_json(&self.inner.health(&job_type, now(now_ms)?)?)))
    }

    /// The guardrails in force.
    pub fn guardrails(&self) -> Result<Guardrails> {
        guarded(|| convert(&self.inner.guardrails()))
    }

    /// Replaces the guardrails this record holds (validated; nothing changes on error).
    /// Settings the record does not carry (the priority shares) are kept as they are.
    pub fn update_guardrails(&self, guardrails: Guardrails) -> Result<()> {
        guarded(|| {
            let patch = serde_json::to_value(&guardrails)
                .map_err(|e| SmartRetryError::invalid("guardrails", e.to_string()))?;
            self.inner.patch_guardrails(&patch)?;
            Ok(())
        })
    }

    /// Changes the guardrail fields present in a JSON object and returns all of them.
    pub fn patch_guardrails(&self, patch_json: String) -> Result<Guardrails> {
        guarded(|| {
            let patch: serde_json::Value = smartretry::from_json(&patch_json)?;
            convert(&self.inner.patch_guardrails(&patch)?)
        })
    }

    /// The emergency stop: while on, nothing is retried.
    pub fn emergency_stop(&self, on: bool) {
        self.inner.emergency_stop(on);
    }

    pub fn is_emergency_stopped(&self) -> bool {
        self.inner.is_emergency_stopped()
    }

    /// Waits until every outcome and audit record so far is in the store (at most
    /// `timeout_ms`); a `Store` error says it is unreachable (the records stay buffered).
    #[uniffi::method(default(timeout_ms = 10_000))]
    pub fn flush(&self, timeout_ms: i64) -> Result<()> {
        guarded(|| {
            let ms = unsigned("timeout_ms", timeout_ms)?;
            Ok(self.inner.flush(std::time::Duration::from_millis(ms))?)
        })
    }

    /// Counters of decisions, guardrails, events and the store, as JSON.
    pub fn metrics_json(&self) -> String {
        to_json(&self.inner.metrics())
    }

    /// Receives lifecycle events of `kinds` (all when empty) in a queue of `capacity`;
    /// when it is full, new events are dropped (and counted), never waited for.
    #[uniffi::method(default(capacity = 1024))]
    pub fn subscribe(&self, kinds: Vec<EventKind>, capacity: i32) -> Result<Arc<EventSubscription>> {
        guarded(|| {
            let sub = self.inner.subscribe(&kinds, unsigned("capacity", capacity.into())?)?;
            Ok(Arc::new(EventSubscription { inner: sub }))
        })
    }

    /// Subscriptions open now.
    pub fn event_subscribers(&self) -> i32 {
        i32::try_from(self.inner.event_subscribers()).unwrap_or(i32::MAX)
    }
}

/// A subscription made by `Engine.subscribe`: a bounded queue of lifecycle events.
/// Poll it from one thread at a time; `unsubscribe` may come from any thread.
#[derive(uniffi::Object)]
pub struct EventSubscription {
    inner: smartretry::Subscription,
}

#[uniffi::export]
impl EventSubscription {
    /// Waits up to `timeout_ms` for an event, then takes every one queued, oldest
    /// first; empty when none came in time, null once unsubscribed and drained.
    pub fn poll(&self, timeout_ms: i64) -> Result<Option<Vec<Event>>> {
        guarded(|| {
            let events = poll_events(&self.inner, unsigned("timeout_ms", timeout_ms)?);
            Ok(events.map(|events| events.iter().map(|e| Event::from(&**e)).collect()))
        })
    }

    /// Ends the subscription: a waiting `poll` returns at once.
    pub fn unsubscribe(&self) {
        self.inner.close();
    }

    /// Events lost because the queue was full.
    pub fn dropped(&self) -> i64 {
        signed(self.inner.dropped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_numbers_are_named_errors() {
        let engine = Engine::new(Some(1), None, None).unwrap();
        let f = Features { job_type: "a".into(), attempt_number: -1, ..Default::default() };
        let err = engine.decide(f, None).unwrap_err();
        assert_eq!(err.field(), Some("attempt_number"));
        let f = Features { job_type: "a".into(), attempt_number: 1, ..Default::default() };
        assert_eq!(engine.decide(f, Some(-5)).unwrap_err().field(), Some("now_ms"));
    }

    #[test]
    fn a_subscription_polls_typed_events_until_unsubscribed() {
        let engine = Engine::new(Some(1), None, None).unwrap();
        let sub = engine.subscribe(vec![EventKind::RetryScheduled], 8).unwrap();
        assert_eq!(engine.event_subscribers(), 1);
        let f = Features {
            job_type: "pay".into(),
            job_id: Some("j1".into()),
            attempt_number: 1,
            http_status: Some(503),
            ..Default::default()
        };
        engine.decide(f, Some(1_700_000_000_000)).unwrap();
        let events = sub.poll(1_000).unwrap().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].kind, events[0].job_id.as_deref()), (EventKind::RetryScheduled, Some("j1")));
        assert_eq!(sub.poll(0).unwrap(), Some(vec![]));
        sub.unsubscribe();
        assert_eq!(sub.poll(1_000).unwrap(), None);
        assert_eq!(engine.event_subscribers(), 0);
        assert_eq!(
            engine.subscribe(vec![], 0).err().and_then(|e| e.field().map(str::to_string)).as_deref(),
            Some("capacity")
        );
    }

    #[test]
    fn released_says_whether_calls_got_through_since_a_failure() {
        let engine = Engine::new(Some(1), None, None).unwrap();
        let now = 1_700_000_000_000;
        assert!(!engine.released("pay".into(), now - 10, Some(now)).unwrap());
        engine.record_successes("pay".into(), None, 1, Some(now)).unwrap();
        assert!(engine.released("pay".into(), now - 10, Some(now)).unwrap());
        assert!(engine.metrics_json().contains("\"released_total\":1"));
        let field = |r: Result<bool>| r.unwrap_err().field().map(str::to_string);
        assert_eq!(field(engine.released("pay".into(), -1, None)).as_deref(), Some("failed_at_ms"));
        assert_eq!(field(engine.released("pay".into(), now + 1, Some(now))).as_deref(), Some("failed_at_ms"));
        assert_eq!(field(engine.released("".into(), now, Some(now))).as_deref(), Some("job_type"));
        assert_eq!(field(engine.released("pay".into(), now, Some(-1))).as_deref(), Some("now_ms"));
    }

    #[test]
    fn a_bad_store_is_a_config_error_on_store() {
        let err = Engine::new(None, None, Some("ftp://elsewhere".into())).err().expect("refused");
        assert_eq!((err.kind(), err.field()), ("config", Some("store")));
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let err = guarded::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(err, SmartRetryError::Internal { reason: "boom".into() });
    }

    #[test]
    fn records_round_trip_the_core_shapes() {
        let engine = Engine::new(Some(7), None, None).unwrap();
        let f =
            features_from_json(r#"{"job_type":"pay","attempt_number":1,"http_status":503}"#.into()).unwrap();
        assert_eq!(f.http_status, Some(503));
        let d = engine.decide(f.clone(), Some(1_700_000_000_000)).unwrap();
        assert!(d.should_retry);
        assert_eq!(d.policy, "service_unavailable");
        let p = engine.preview(f, 4, Some(1_700_000_000_000)).unwrap();
        assert_eq!(p.current_attempt, 1);
        assert!(!p.timeline.is_empty());
        let g = engine.guardrails().unwrap();
        assert!(g.probe_and_release);
        engine.update_guardrails(Guardrails { max_attempts: 2, probe_and_release: false, ..g }).unwrap();
        assert_eq!(engine.guardrails().unwrap().max_attempts, 2);
        assert!(!engine.guardrails().unwrap().probe_and_release);
        let err = engine.update_guardrails(Guardrails { max_attempts: 0, ..engine.guardrails().unwrap() });
        assert_eq!(err.unwrap_err().field(), Some("max_attempts"));
    }
}

//! The data shapes of the API document: what failed (`Features`), what happened
//! (`Attempt`), what to do (`Decision`), a schedule (`Preview`) and what was learned
//! (`Stats`). snake_case JSON. [`from_json`] ignores fields a shape does not have (so a
//! newer writer's records still read); [`from_json_strict`], used for everything a person
//! or a client sends (HTTP bodies, the config file), refuses them, naming each.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::time;

/// Longest label (job type, error class, tenant…) accepted. Labels become learning keys,
/// so an unbounded label would be an unbounded allocation per key.
pub const MAX_LABEL_LEN: usize = 256;
/// Highest attempt number accepted; far above any sane policy, low enough that
/// backoff arithmetic stays exact.
pub const MAX_ATTEMPT_NUMBER: u32 = 10_000;

/// What failed: the inputs to a retry decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub job_type: String,
    /// The attempt that just failed, 1-based.
    pub attempt_number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, deserialize_with = "string_or_number", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<u64>,
    /// Hour of day (0–23, UTC); derived from `now_ms` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_of_day: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Time since this job's first failure: the downstream's recovery clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_first_failure_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_last_failure_ms: Option<u64>,
    /// The API document's text form (`"00:02:30"`), used when `since_last_failure_ms` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_last_failure: Option<String>,
    /// A `Retry-After` already converted to milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// A raw `Retry-After` header (delta-seconds or HTTP-date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// `false` marks a call that must not run twice (a payment, an order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// How much this job matters when retry budgets and concurrency caps bind
    /// (`low`, `normal`, `high`, `critical`, or 0–3). Absent = not ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_version: Option<String>,
    /// Downstream health signals (`latency_ms`, `error_rate`, `cpu`, `queue_depth`; others
    /// are kept but not scored); see [`crate::health`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_processing_time: Option<String>,
    /// Total time the caller allows from the first failure; no retry may start later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The caller's own attempt limit (a decorator's `max_attempts`), on top of the
    /// policy's and the guardrails'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The call's own schedule (a helper's `wait=`/`backoff` option): the rules tier for
    /// this call, in place of the matched policy's backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<crate::options::CallBackoff>,
    /// `true` when the caller named this failure's type among those to retry (a helper's
    /// `retry_on`): it is then not taken for a programming error (`TypeError`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<bool>,
}

impl Features {
    /// Minimal features: a job type and the attempt that failed.
    pub fn new(job_type: impl Into<String>, attempt_number: u32) -> Self {
        Features { job_type: job_type.into(), attempt_number, ..Default::default() }
    }

    pub fn with_error_class(mut self, class: impl Into<String>) -> Self {
        self.error_class = Some(class.into());
        self
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn with_since_first_failure_ms(mut self, ms: u64) -> Self {
        self.since_first_failure_ms = Some(ms);
        self
    }

    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    pub fn with_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    pub fn with_job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }

    pub fn with_health(mut self, signal: impl Into<String>, value: f64) -> Self {
        self.health.insert(signal.into(), value);
        self
    }

    /// Parse JSON, naming the offending field on error.
    pub fn from_json(json: &str) -> Result<Self> {
        from_json(json)
    }

    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(true)
    }

    /// Checks every range and length; the engine calls it before deciding.
    pub fn validate(&self) -> Result<()> {
        check_label("job_type", &self.job_type, true)?;
        check_attempt("attempt_number", self.attempt_number)?;
        check_opt_label("error_class", &self.error_class)?;
        check_opt_label("error_code", &self.error_code)?;
        check_opt_label("queue", &self.queue)?;
        check_opt_label("tenant", &self.tenant)?;
        check_opt_label("job_id", &self.job_id)?;
        check_opt_label("worker_version", &self.worker_version)?;
        if let Some(s) = self.http_status {
            check_status("http_status", s)?;
        }
        if let Some(h) = self.time_of_day {
            if h > 23 {
                return Err(Error::invalid("time_of_day", format!("must be 0–23, got {h}")));
            }
        }
        if let Some(text) = &self.since_last_failure {
            time::parse_duration_ms(text).map_err(|r| Error::invalid("since_last_failure", r))?;
        }
        if let Some(text) = &self.retry_after {
            // A server's header, not the caller's input: an unreadable one is no hint.
            check_label("retry_after", text, false)?;
        }
        if let Some(n) = self.max_attempts {
            check_attempt("max_attempts", n)?;
        }
        if let Some(text) = &self.avg_processing_time {
            time::parse_duration_ms(text).map_err(|r| Error::invalid("avg_processing_time", r))?;
        }
        if let Some(b) = &self.backoff {
            b.validate()?;
        }
        if self.health.len() > 64 {
            return Err(Error::invalid("health", "at most 64 signals"));
        }
        for (name, value) in &self.health {
            check_label("health", name, true)?;
            if !value.is_finite() {
                return Err(Error::invalid(format!("health.{name}"), "must be a finite number"));
            }
        }
        Ok(())
    }

    /// `since_last_failure_ms`, else the parsed text form.
    pub fn since_last_failure_ms(&self) -> Option<u64> {
        self.since_last_failure_ms
            .or_else(|| self.since_last_failure.as_deref().and_then(|t| time::parse_duration_ms(t).ok()))
    }

    /// `retry_after_ms`, else the raw header resolved against `now_ms`.
    pub fn retry_after_ms(&self, now_ms: u64) -> Option<u64> {
        self.retry_after_ms.or_else(|| {
            self.retry_after.as_deref().and_then(|v| crate::classify::parse_retry_after(v, now_ms))
        })
    }
}

/// How much a job matters when retry budgets and concurrency caps bind: a lower
/// priority may use only part of them, so the rest stays for higher ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    /// 0 (low) – 3 (critical): the documents' `ConnectionPriority` index.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// `low`, `normal`, `high`, `critical` (any case).
    pub fn parse(text: &str) -> Result<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
            Error::invalid("priority", format!("expected low, normal, high or critical, got {text:?}"))
        })
    }
}

impl<'de> Deserialize<'de> for Priority {
    /// A name, or the index 0–3 (the documents' `ConnectionPriority` enum).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Index(i64),
        }
        use serde::de::Error as _;
        match Raw::deserialize(d)? {
            Raw::Name(n) => Priority::parse(&n)
                .map_err(|_| D::Error::custom(format!("expected low, normal, high or critical, got {n:?}"))),
            Raw::Index(i) => usize::try_from(i)
                .ok()
                .and_then(|i| Priority::ALL.get(i).copied())
                .ok_or_else(|| D::Error::custom(format!("expected 0–3 (low–critical), got {i}"))),
        }
    }
}

/// What happened on one attempt: the engine learns from these.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub job_id: String,
    pub job_type: String,
    pub attempt_number: u32,
    pub success: bool,
    /// How long the caller waited before this attempt.
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, deserialize_with = "string_or_number", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Time from the job's first failure to this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_first_failure_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_of_day: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_version: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, f64>,
    /// When the attempt happened (RFC 3339); defaults to the `now_ms` of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time: Option<String>,
}

impl Attempt {
    pub fn new(
        job_id: impl Into<String>,
        job_type: impl Into<String>,
        attempt_number: u32,
        success: bool,
    ) -> Self {
        Attempt {
            job_id: job_id.into(),
            job_type: job_type.into(),
            attempt_number,
            success,
            ..Default::default()
        }
    }

    pub fn with_error_class(mut self, class: impl Into<String>) -> Self {
        self.error_class = Some(class.into());
        self
    }

    pub fn with_delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    pub fn with_since_first_failure_ms(mut self, ms: u64) -> Self {
        self.since_first_failure_ms = Some(ms);
        self
    }

    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    pub fn from_json(json: &str) -> Result<Self> {
        from_json(json)
    }

    pub fn validate(&self) -> Result<()> {
        check_label("job_id", &self.job_id, true)?;
        check_label("job_type", &self.job_type, true)?;
        check_attempt("attempt_number", self.attempt_number)?;
        check_opt_label("error_class", &self.error_class)?;
        check_opt_label("error_code", &self.error_code)?;
        check_opt_label("tenant", &self.tenant)?;
        check_opt_label("queue", &self.queue)?;
        if let Some(s) = self.http_status {
            check_status("http_status", s)?;
        }
        if let Some(h) = self.time_of_day {
            if h > 23 {
                return Err(Error::invalid("time_of_day", format!("must be 0–23, got {h}")));
            }
        }
        if let Some(ts) = &self.timestamp {
            time::parse_rfc3339(ts).map_err(|r| Error::invalid("timestamp", r))?;
        }
        if let Some(text) = &self.processing_time {
            time::parse_duration_ms(text).map_err(|r| Error::invalid("processing_time", r))?;
        }
        Ok(())
    }

    /// When the attempt happened: `now_ms`, else `timestamp`, else `fallback`.
    pub fn time_ms(&self, fallback: u64) -> u64 {
        self.now_ms
            .or_else(|| self.timestamp.as_deref().and_then(|t| time::parse_rfc3339(t).ok()))
            .unwrap_or(fallback)
    }
}

/// A guardrail that changed a decision, as named in its `policy_guardrails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guardrail {
    EmergencyStop,
    NeverRetry,
    NonIdempotent,
    MaxAttempts,
    CircuitBreaker,
    RetryAfter,
    MinDelay,
    MaxDelay,
    Deadline,
    RetryBudget,
    TenantFairness,
    AdaptiveThrottle,
    Concurrency,
    Override,
    ProbeAndRelease,
}

impl Guardrail {
    /// Every guardrail, in the order metrics list them.
    pub const ALL: [Guardrail; Guardrail::ProbeAndRelease as usize + 1] = [
        Guardrail::EmergencyStop,
        Guardrail::NeverRetry,
        Guardrail::NonIdempotent,
        Guardrail::MaxAttempts,
        Guardrail::CircuitBreaker,
        Guardrail::RetryAfter,
        Guardrail::MinDelay,
        Guardrail::MaxDelay,
        Guardrail::Deadline,
        Guardrail::RetryBudget,
        Guardrail::TenantFairness,
        Guardrail::AdaptiveThrottle,
        Guardrail::Concurrency,
        Guardrail::Override,
        Guardrail::ProbeAndRelease,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Guardrail::EmergencyStop => "emergency_stop",
            Guardrail::NeverRetry => "never_retry",
            Guardrail::NonIdempotent => "non_idempotent",
            Guardrail::MaxAttempts => "max_attempts",
            Guardrail::CircuitBreaker => "circuit_breaker",
            Guardrail::RetryAfter => "retry_after",
            Guardrail::MinDelay => "min_delay",
            Guardrail::MaxDelay => "max_delay",
            Guardrail::Deadline => "deadline",
            Guardrail::RetryBudget => "retry_budget",
            Guardrail::TenantFairness => "tenant_fairness",
            Guardrail::AdaptiveThrottle => "adaptive_throttle",
            Guardrail::Concurrency => "concurrency",
            Guardrail::Override => "override",
            Guardrail::ProbeAndRelease => "probe_and_release",
        }
    }

    /// Whether it refuses to protect the system (a stop, an open breaker, a spent
    /// budget, overload, a cap) rather than because of the failure itself: an HTTP API
    /// answers such a refusal 429. Permanent errors, attempts used up, a deadline or a
    /// non-idempotent call are the right answer for the failure, not load shedding.
    pub fn sheds_load(self) -> bool {
        matches!(
            self,
            Guardrail::EmergencyStop
                | Guardrail::CircuitBreaker
                | Guardrail::RetryBudget
                | Guardrail::TenantFairness
                | Guardrail::AdaptiveThrottle
                | Guardrail::Concurrency
        )
    }
}

impl AsRef<str> for Guardrail {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Guardrail {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for Guardrail {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl std::fmt::Display for Guardrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tier made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Rules,
    Bayesian,
    Ml,
    Guardrail,
    Breaker,
}

impl Method {
    pub const ALL: [Method; 5] =
        [Method::Rules, Method::Bayesian, Method::Ml, Method::Guardrail, Method::Breaker];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rules => "rules",
            Method::Bayesian => "bayesian",
            Method::Ml => "ml",
            Method::Guardrail => "guardrail",
            Method::Breaker => "breaker",
        }
    }
}

/// A probability or confidence as the API shows it: to three decimals.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The engine's answer: retry or not, after how long, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub should_retry: bool,
    pub delay_ms: u64,
    #[serde(default)]
    pub max_attempts: u32,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub method: Method,
    #[serde(default)]
    pub estimated_success: f64,
    /// When to ask again (RFC 3339): now + delay.
    #[serde(default)]
    pub next_evaluation: String,
    /// Set while the downstream is down for every caller: wait out `delay_ms`, but every
    /// this many ms ask `released` (`Engine::released`, `GET /v1/released`) whether it
    /// has come back, and retry at once if it has (probe-and-release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_in_ms: Option<u64>,
    /// Every guardrail that changed this decision, in the order they acted.
    #[serde(default)]
    pub policy_guardrails: Vec<Guardrail>,
    /// The error class the engine learned under (the given one, or the classified one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_class: String,
    /// The rules-tier policy that matched.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
}

/// One future attempt of a preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub attempt_number: u32,
    pub scheduled_time: String,
    pub estimated_success: f64,
    pub delay_ms: u64,
    pub method: Method,
    pub rationale: String,
    #[serde(default)]
    pub confidence: f64,
}

/// The schedule the engine would follow if every retry failed (the API's preview).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub job_id: String,
    pub current_attempt: u32,
    pub features: Features,
    pub recommendations: Vec<Decision>,
    pub timeline: Vec<TimelineEntry>,
    pub generated_at: String,
}

/// What the engine has seen for one (job_type, error_class) in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub job_type: String,
    pub error_class: String,
    pub total_attempts: u64,
    pub successful_retries: u64,
    pub failed_retries: u64,
    pub avg_delay_ms: f64,
    pub success_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    pub window_start: String,
    pub window_end: String,
    /// The Bayesian tier's view of this key, bucket by bucket.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<BucketStats>,
}

/// One delay bucket of the Bayesian tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    pub label: String,
    pub min_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
    pub successes: u64,
    pub failures: u64,
    pub success_probability: f64,
    pub confidence: f64,
}

/// Deserialize any shape from JSON; errors name the field path (`guardrails.max_attempts`).
pub fn from_json<T: DeserializeOwned>(json: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    from_deserializer(&mut de)
}

/// Deserialize any shape from a JSON value, naming the field on error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    from_deserializer(value)
}

/// Like [`from_json`], but a field the shape does not have is an error naming it
/// (`features.max_atempts: unknown field`), so a misspelt setting is never silently a no-op.
pub fn from_json_strict<T: DeserializeOwned>(json: &str) -> Result<T> {
    // Fast path: no path tracking; on any error parse again to name the field.
    let mut unknown = None;
    let parsed: std::result::Result<T, _> =
        serde_ignored::deserialize(&mut serde_json::Deserializer::from_str(json), |path| {
            unknown.get_or_insert_with(|| path.to_string());
        });
    match (parsed, unknown) {
        (Ok(value), None) => Ok(value),
        _ => Err(strict_error::<T, _>(&mut serde_json::Deserializer::from_str(json))),
    }
}

/// [`from_json_strict`] for a JSON value.
pub fn from_value_strict<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    let mut unknown = None;
    let parsed: std::result::Result<T, _> = serde_ignored::deserialize(value.clone(), |path| {
        unknown.get_or_insert_with(|| path.to_string());
    });
    match (parsed, unknown) {
        (Ok(value), None) => Ok(value),
        _ => Err(strict_error::<T, _>(value)),
    }
}

/// Why a strict parse failed: malformed JSON as such; else the first unknown field (a
/// misspelling also makes a required field "missing": the unknown one is the better clue);
/// else the parse error.
fn strict_error<'de, T: DeserializeOwned, D: Deserializer<'de, Error = serde_json::Error>>(de: D) -> Error {
    let mut unknown: Option<String> = None;
    let parsed: Result<T> = from_deserializer(serde_ignored::Deserializer::new(de, &mut |path| {
        unknown.get_or_insert_with(|| path.to_string());
    }));
    match (parsed, unknown) {
        (Err(Error::InvalidInput { field, reason }), _)
            if field == "body" && reason.starts_with("not valid JSON") =>
        {
            Error::InvalidInput { field, reason }
        }
        (_, Some(path)) => Error::invalid(path, "unknown field (not part of this shape: check the spelling)"),
        (Err(e), None) => e,
        (Ok(_), None) => Error::invalid("body", "could not be parsed"),
    }
}

fn from_deserializer<'de, T: DeserializeOwned, D: Deserializer<'de, Error = serde_json::Error>>(
    de: D,
) -> Result<T> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string());
        // Malformed JSON is the whole body's fault, wherever the parser stopped.
        if inner.is_syntax() || inner.is_eof() {
            return Error::invalid("body", format!("not valid JSON: {message}"));
        }
        // "missing field `x`" is reported at the parent; name the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "body".to_string(),
            None => path,
        };
        Error::invalid(field, message)
    })
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Int(i64),
    }
    Ok(Option::<Code>::deserialize(d)?.map(|c| match c {
        Code::Text(t) => t,
        Code::Int(i) => i.to_string(),
    }))
}

pub(crate) fn check_label(field: &'static str, value: &str, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(Error::invalid(field, format!("at most {MAX_LABEL_LEN} bytes, got {}", value.len())));
    }
    let control = if value.is_ascii() {
        value.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        value.chars().any(char::is_control)
    };
    if control {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_opt_label(field: &'static str, value: &Option<String>) -> Result<()> {
    match value {
        Some(v) => check_label(field, v, false),
        None => Ok(()),
    }
}

fn check_attempt(field: &'static str, n: u32) -> Result<()> {
    if n == 0 || n > MAX_ATTEMPT_NUMBER {
        return Err(Error::invalid(field, format!("must be 1–{MAX_ATTEMPT_NUMBER}, got {n}")));
    }
    Ok(())
}

fn check_status(field: &'static str, status: u16) -> Result<()> {
    if !(100..=599).contains(&status) {
        return Err(Error::invalid(field, format!("must be an HTTP status 100–599, got {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_guardrails_are_listed_in_the_order_metrics_index_them() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
        for (i, g) in Guardrail::ALL.iter().enumerate() {
            assert_eq!(*g as usize, i);
            assert_eq!(serde_json::to_value(g).unwrap(), g.as_str());
        }
    }

    #[test]
    fn strict_parsing_names_unknown_fields_with_their_path() {
        let err = from_json_strict::<Features>(r#"{"job_type":"a","attempt_number":1,"max_atempts":2}"#)
            .unwrap_err();
        assert_eq!(err.field(), Some("max_atempts"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_typ":"a","attempt_number":1}"#).unwrap_err();
        assert_eq!(err.field(), Some("job_typ"), "the misspelt field, not the missing one: {err}");
        #[derive(Debug, Deserialize)]
        struct Wrapper {
            #[allow(dead_code)]
            features: Features,
        }
        let err =
            from_json_strict::<Wrapper>(r#"{"features":{"job_type":"a","attempt_number":1,"tenat":"t"}}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("features.tenat"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_type":"a","#).unwrap_err();
        assert_eq!(err.field(), Some("body"), "{err}");
        let err = from_json_strict::<Features>(r#"{"job_type":"a","attempt_number":"x"}"#).unwrap_err();
        assert_eq!(err.field(), Some("attempt_number"), "{err}");
        let ok: Features =
            from_json_strict(r#"{"job_type":"a","attempt_number":1,"health":{"cpu":0.5}}"#).unwrap();
        assert_eq!(ok.health.len(), 1, "maps take any key");
        let v = serde_json::json!({"job_type": "a", "attempt_number": 1, "bogus": true});
        assert_eq!(from_value_strict::<Features>(v).unwrap_err().field(), Some("bogus"));
        // The lenient parser still reads what a newer writer added.
        assert!(from_json::<Features>(r#"{"job_type":"a","attempt_number":1,"new_field":1}"#).is_ok());
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = Features::from_json(r#"{"attempt_number": 1}"#).unwrap_err();
        assert_eq!(err.field(), Some("job_type"));
        let err = Attempt::from_json(r#"{"job_id":"j","job_type":"t","attempt_number":1}"#).unwrap_err();
        assert_eq!(err.field(), Some("success"));
    }

    #[test]
    fn wrong_type_is_named() {
        let err =
            Features::from_json(r#"{"job_type":"a","attempt_number":1,"http_status":"x"}"#).unwrap_err();
        assert_eq!(err.field(), Some("http_status"));
        let err = Features::from_json(r#"{"job_type":"a","attempt_number":-1}"#).unwrap_err();
        assert_eq!(err.field(), Some("attempt_number"));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let mut f = Features::new("a", 1);
        f.http_status = Some(700);
        assert_eq!(f.validate().unwrap_err().field(), Some("http_status"));
        let f = Features::new("a", 0);
        assert_eq!(f.validate().unwrap_err().field(), Some("attempt_number"));
        let f = Features::new("", 1);
        assert_eq!(f.validate().unwrap_err().field(), Some("job_type"));
        let mut f = Features::new("a", 1);
        f.health.insert("cpu".into(), f64::NAN);
        assert_eq!(f.validate().unwrap_err().field(), Some("health.cpu"));
        let mut f = Features::new("a", 1);
        f.since_last_failure = Some("soon".into());
        assert_eq!(f.validate().unwrap_err().field(), Some("since_last_failure"));
    }

    #[test]
    fn malformed_json_blames_the_body() {
        for text in ["{not json", "{\"job_type\": \"a\",", ""] {
            assert_eq!(Features::from_json(text).unwrap_err().field(), Some("body"), "{text}");
        }
    }

    #[test]
    fn priority_is_a_name_or_an_index() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":"Critical"}"#).unwrap();
        assert_eq!(f.priority, Some(Priority::Critical));
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":0}"#).unwrap();
        assert_eq!(f.priority, Some(Priority::Low));
        let err =
            Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":"urgent"}"#).unwrap_err();
        assert_eq!(err.field(), Some("priority"));
        let err = Features::from_json(r#"{"job_type":"a","attempt_number":1,"priority":7}"#).unwrap_err();
        assert_eq!(err.field(), Some("priority"));
        assert_eq!(serde_json::to_value(Priority::High).unwrap(), "high");
    }

    #[test]
    fn error_code_accepts_numbers_and_text() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":1,"error_code":429}"#).unwrap();
        assert_eq!(f.error_code.as_deref(), Some("429"));
    }

    #[test]
    fn text_durations_are_understood() {
        let f = Features::from_json(r#"{"job_type":"a","attempt_number":2,"since_last_failure":"00:02:30"}"#)
            .unwrap();
        assert_eq!(f.since_last_failure_ms(), Some(150_000));
    }
}

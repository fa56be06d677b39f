//! What to do: a [`Decision`] (with the [`Method`] that decided and the [`Guardrail`]s
//! that acted), a schedule ([`Preview`]) and what was learned ([`Stats`]).

use serde::{Deserialize, Serialize};

use super::features::Features;

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

//! What failed: the inputs to a retry decision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time;

use super::check::{check_attempt, check_label, check_opt_label, check_status_and_hour, string_or_number};
use super::json::from_json;
use super::priority::Priority;

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
        check_status_and_hour(self.http_status, self.time_of_day)?;
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

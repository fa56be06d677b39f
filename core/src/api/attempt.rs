//! What happened on one attempt: the engine learns from these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time;

use super::check::{check_attempt, check_label, check_opt_label, check_status_and_hour, string_or_number};
use super::json::from_json;

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
        check_status_and_hour(self.http_status, self.time_of_day)?;
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
